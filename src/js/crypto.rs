//! WebCrypto signature checks for JWTs: the public key arrives as JWK JSON and
//! the algorithm by its JOSE name; imported keys are kept per isolate.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
const imported = new Map();
const algorithms = {
  RS256: [{ name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }],
  RS384: [{ name: "RSASSA-PKCS1-v1_5", hash: "SHA-384" }],
  RS512: [{ name: "RSASSA-PKCS1-v1_5", hash: "SHA-512" }],
  PS256: [{ name: "RSA-PSS", hash: "SHA-256" }, { name: "RSA-PSS", saltLength: 32 }],
  PS384: [{ name: "RSA-PSS", hash: "SHA-384" }, { name: "RSA-PSS", saltLength: 48 }],
  PS512: [{ name: "RSA-PSS", hash: "SHA-512" }, { name: "RSA-PSS", saltLength: 64 }],
  ES256: [{ name: "ECDSA", namedCurve: "P-256" }, { name: "ECDSA", hash: "SHA-256" }],
  ES384: [{ name: "ECDSA", namedCurve: "P-384" }, { name: "ECDSA", hash: "SHA-384" }],
};
// Resolves to whether `signature` over `data` verifies with the key.
export function jws_verify(alg, jwk, data, signature) {
  const [importParams, verifyParams = importParams] = algorithms[alg];
  const id = alg + jwk;
  let key = imported.get(id);
  if (key === undefined) {
    key = crypto.subtle.importKey("jwk", JSON.parse(jwk), importParams, false, ["verify"]);
    // A key that fails to import is not kept, so a fixed JWKS can recover.
    key.catch(() => imported.delete(id));
    imported.set(id, key);
  }
  return key.then((key) => crypto.subtle.verify(verifyParams, key, signature, data));
}
"#)]
extern "C" {
    #[wasm_bindgen(catch)]
    fn jws_verify(
        alg: &str,
        jwk: &str,
        data: &[u8],
        signature: &[u8],
    ) -> Result<js_sys::Promise, JsValue>;
}

/// Whether `signature` over `data` verifies under `alg` (a JOSE name the glue
/// maps) with the public key `jwk`. A key WebCrypto will not import, or a
/// signature of the wrong length, does not verify.
pub(crate) async fn verify(alg: &str, jwk: &str, data: &[u8], signature: &[u8]) -> bool {
    let Ok(promise) = jws_verify(alg, jwk, data, signature) else {
        return false;
    };
    super::settled(&promise)
        .await
        .is_ok_and(|valid| valid.as_bool() == Some(true))
}

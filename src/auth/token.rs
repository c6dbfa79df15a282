//! The pure part of bearer JWTs: splitting a compact JWS, choosing the key for
//! its algorithm from a JWKS, and checking the claims. No I/O and no crypto
//! (the signature is checked by the runtime's WebCrypto), so it is tested
//! natively and on wasm32 alike.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

use super::Scope;

/// The signature algorithms accepted. `none` and the HMAC family never are: a
/// JWKS holds public keys, and an HMAC "verified" with a public key is the
/// algorithm-confusion attack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Algorithm {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
}

impl Algorithm {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "RS256" => Self::Rs256,
            "RS384" => Self::Rs384,
            "RS512" => Self::Rs512,
            "PS256" => Self::Ps256,
            "PS384" => Self::Ps384,
            "PS512" => Self::Ps512,
            "ES256" => Self::Es256,
            "ES384" => Self::Es384,
            _ => return None,
        })
    }

    /// Its JOSE name, which the WebCrypto glue maps to an algorithm.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
        }
    }

    /// The key type and, for EC, the curve a key must have to verify this.
    fn key_shape(self) -> (&'static str, Option<&'static str>) {
        match self {
            Self::Es256 => ("EC", Some("P-256")),
            Self::Es384 => ("EC", Some("P-384")),
            _ => ("RSA", None),
        }
    }
}

/// One public key of a JWKS, as published (RFC 7517). Members this verifier
/// does not use are ignored.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Jwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default, rename = "use")]
    usage: Option<String>,
    #[serde(default)]
    key_ops: Option<Vec<String>>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
    /// Present only in a private key, which a JWKS must never publish.
    #[serde(default)]
    d: Option<serde::de::IgnoredAny>,
    /// The key alone as JWK JSON, made once when the set is parsed.
    #[serde(skip)]
    public: String,
}

impl Jwk {
    /// Whether this key may verify `alg`: its type and curve fit, and what it
    /// declares (`alg`, `use`, `key_ops`) does not rule it out.
    fn fits(&self, alg: Algorithm) -> bool {
        let (kty, crv) = alg.key_shape();
        self.kty == kty
            && crv.is_none_or(|crv| self.crv.as_deref() == Some(crv))
            && self.alg.as_deref().is_none_or(|own| own == alg.name())
            && self.usage.as_deref().is_none_or(|usage| usage == "sig")
            && self
                .key_ops
                .as_ref()
                .is_none_or(|ops| ops.iter().any(|op| op == "verify"))
            && self.d.is_none()
    }

    /// The public key alone as JWK JSON, for WebCrypto's `importKey("jwk")`:
    /// only the members that make the key, so nothing else it declares can
    /// change how it is imported.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))] // read by the WebCrypto glue
    pub(crate) fn public_json(&self) -> &str {
        &self.public
    }

    fn to_public_json(&self) -> String {
        let member =
            |value: &Option<String>| serde_json::Value::from(value.as_deref().unwrap_or(""));
        let key = if self.kty == "RSA" {
            serde_json::json!({ "kty": "RSA", "n": member(&self.n), "e": member(&self.e) })
        } else {
            serde_json::json!({
                "kty": "EC", "crv": member(&self.crv), "x": member(&self.x), "y": member(&self.y)
            })
        };
        key.to_string()
    }
}

/// A JWKS document (`{"keys": [...]}`).
#[derive(Debug, Deserialize)]
pub(crate) struct JwkSet {
    keys: Vec<serde_json::Value>,
}

impl JwkSet {
    /// Parses a JWKS, keeping the keys this verifier can use and skipping the
    /// rest (symmetric keys, other key types, malformed entries), as RFC 7517
    /// §5 asks. A document with no usable key is an error.
    pub(crate) fn parse(text: &[u8]) -> Result<Vec<Jwk>, String> {
        let set: JwkSet = crate::json_text::from_json_bytes(text)
            .map_err(|e| format!("the JWKS is not a JWK set: {e}"))?;
        let keys: Vec<Jwk> = set
            .keys
            .into_iter()
            .filter_map(|key| serde_json::from_value::<Jwk>(key).ok())
            .filter(|key| {
                let rsa = key.kty == "RSA" && key.n.is_some() && key.e.is_some();
                let ec = key.kty == "EC" && key.crv.is_some() && key.x.is_some() && key.y.is_some();
                (rsa || ec) && key.d.is_none()
            })
            .map(|mut key| {
                key.public = key.to_public_json();
                key
            })
            .collect();
        if keys.is_empty() {
            return Err("the JWKS has no RSA or EC public key".to_owned());
        }
        Ok(keys)
    }
}

/// Why a token was refused. Its text goes to the client as the problem's
/// detail (RFC 6750's `error_description`); it never quotes the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// Not three base64url segments of JSON.
    Malformed(&'static str),
    /// `alg` is missing, `none`, symmetric or unknown.
    Algorithm(String),
    /// The header names extensions this verifier does not implement.
    Critical,
    /// No key in the JWKS has the token's `kid` and fits its `alg`.
    UnknownKey,
    /// The signature does not verify.
    Signature,
    /// `exp` is missing or past.
    Expired,
    /// `nbf` is in the future.
    NotYetValid,
    /// `iss` is not the configured issuer.
    Issuer,
    /// `aud` does not name the configured audience.
    Audience,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(what) => write!(f, "the bearer token is not a JWT: {what}"),
            Self::Algorithm(alg) => write!(
                f,
                "the token's algorithm {alg:?} is not accepted (RS256-512, PS256-512, ES256, ES384)"
            ),
            Self::Critical => f.write_str(
                "the token needs header extensions (`crit`) this server does not implement",
            ),
            Self::UnknownKey => f.write_str(
                "no key in the issuer's JWKS has the token's `kid` and fits its algorithm",
            ),
            Self::Signature => f.write_str("the token's signature does not verify"),
            Self::Expired => f.write_str("the token has expired or has no `exp`"),
            Self::NotYetValid => f.write_str("the token is not valid yet (`nbf`)"),
            Self::Issuer => f.write_str("the token is from another issuer (`iss`)"),
            Self::Audience => f.write_str("the token is for another audience (`aud`)"),
        }
    }
}

#[derive(Deserialize)]
struct Header {
    alg: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

/// A compact JWS split and decoded, its signature not yet checked.
#[derive(Debug)]
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))] // the signature is checked on wasm
pub(crate) struct Signed<'a> {
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<String>,
    /// `header.payload`, the bytes the signature covers.
    pub(crate) signing_input: &'a str,
    pub(crate) signature: Vec<u8>,
    payload: Vec<u8>,
}

/// Whether `token` has the shape of a compact JWS: three base64url segments,
/// the first a JSON object (`ey…`). API keys never do.
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("ey") && token.bytes().filter(|&b| b == b'.').count() == 2
}

/// Splits and decodes a compact JWS and checks its header.
pub(crate) fn split(token: &str) -> Result<Signed<'_>, Rejection> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::Malformed("it needs three `.`-separated parts"));
    };
    let decode = |part: &str, what: &'static str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| Rejection::Malformed(what))
    };
    let header: Header =
        crate::json_text::from_json_bytes(&decode(header, "its header is not base64url")?)
            .map_err(|_| Rejection::Malformed("its header is not a JSON object"))?;
    let alg = header.alg.unwrap_or_default();
    let alg = Algorithm::parse(&alg).ok_or(Rejection::Algorithm(alg))?;
    if header.crit.is_some() {
        return Err(Rejection::Critical);
    }
    Ok(Signed {
        alg,
        kid: header.kid,
        signing_input: &token[..token.len() - signature.len() - 1],
        signature: decode(signature, "its signature is not base64url")?,
        payload: decode(payload, "its payload is not base64url")?,
    })
}

/// The key that verifies `signed`: the one with its `kid` (or, when it names
/// none, the only key fitting its algorithm), provided it fits the algorithm.
pub(crate) fn choose<'k>(keys: &'k [Jwk], signed: &Signed<'_>) -> Option<&'k Jwk> {
    let mut fitting = keys.iter().filter(|key| key.fits(signed.alg));
    match &signed.kid {
        Some(kid) => fitting.find(|key| key.kid.as_deref() == Some(kid)),
        None => {
            let only = fitting.next()?;
            fitting.next().is_none().then_some(only)
        }
    }
}

/// Whether the set has a key with `kid` at all (to tell a rotation, worth
/// fetching the JWKS again for, from a token for the wrong algorithm).
pub(crate) fn knows_kid(keys: &[Jwk], kid: Option<&str>) -> bool {
    keys.iter().any(|key| key.kid.as_deref() == kid)
}

/// What the claims must say.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Expect<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) audience: &'a str,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub(crate) leeway_seconds: u32,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn contains(&self, wanted: &str) -> bool {
        match self {
            Self::One(one) => one == wanted,
            Self::Many(many) => many.iter().any(|one| one == wanted),
        }
    }
}

#[derive(Deserialize)]
struct Registered {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    aud: Option<OneOrMany>,
    #[serde(default)]
    exp: Option<f64>,
    #[serde(default)]
    nbf: Option<f64>,
    /// OAuth 2.0's space-separated scopes (RFC 8693 §4.2).
    #[serde(default)]
    scope: Option<String>,
    /// The same as a list or a string, as some issuers write it.
    #[serde(default)]
    scp: Option<OneOrMany>,
}

/// Scopes a token never grants: `*` (an identity provider's token is not the
/// root key) and OpenID Connect's standard scopes, which every sign-in carries
/// and which must not open a route that happens to share their name.
const IGNORED_SCOPES: &[&str] = &[
    "*",
    "openid",
    "profile",
    "email",
    "address",
    "phone",
    "offline_access",
];

/// The claims of a token whose signature verified and whose claims passed.
#[derive(Clone, Debug)]
pub(crate) struct Verified {
    pub(crate) subject: Option<String>,
    /// The scopes it carries that have a scope's form (`orders`,
    /// `orders:read`); others (`read:org`, URLs) cannot name a route tag and
    /// are dropped, as are `*` and OpenID Connect's standard scopes.
    pub(crate) scopes: Vec<Scope>,
    /// Every claim, for handlers that read their own.
    pub(crate) claims: serde_json::Value,
}

/// Checks the claims of `signed` (whose signature has verified) against
/// `expect` at `now_seconds`.
pub(crate) fn check_claims(
    signed: &Signed<'_>,
    expect: Expect<'_>,
    now_seconds: f64,
) -> Result<Verified, Rejection> {
    let claims: serde_json::Value = crate::json_text::from_json_bytes(&signed.payload)
        .ok()
        .filter(serde_json::Value::is_object)
        .ok_or(Rejection::Malformed("its payload is not a JSON object"))?;
    let registered = Registered::deserialize(&claims)
        .map_err(|_| Rejection::Malformed("a registered claim has the wrong type"))?;
    let leeway = f64::from(expect.leeway_seconds);
    match registered.exp {
        Some(exp) if now_seconds < exp + leeway => {}
        _ => return Err(Rejection::Expired),
    }
    if registered.nbf.is_some_and(|nbf| now_seconds + leeway < nbf) {
        return Err(Rejection::NotYetValid);
    }
    if registered.iss.as_deref() != Some(expect.issuer) {
        return Err(Rejection::Issuer);
    }
    if !registered
        .aud
        .is_some_and(|aud| aud.contains(expect.audience))
    {
        return Err(Rejection::Audience);
    }
    let mut names: Vec<String> = Vec::new();
    if let Some(scope) = &registered.scope {
        names.extend(scope.split_ascii_whitespace().map(str::to_owned));
    }
    match registered.scp {
        Some(OneOrMany::One(scp)) => names.extend(scp.split_ascii_whitespace().map(str::to_owned)),
        Some(OneOrMany::Many(scp)) => names.extend(scp),
        None => {}
    }
    let scopes = names
        .iter()
        .filter(|name| !IGNORED_SCOPES.contains(&name.as_str()))
        .filter_map(|name| Scope::parse(name).ok())
        .collect();
    Ok(Verified {
        subject: registered.sub,
        scopes,
        claims,
    })
}

/// Whether `url` may serve a JWKS: `https://` with a host, or `http://` to
/// this machine (a local identity provider in development). A `const fn`, so
/// a bad URL in a `const` configuration fails the build.
pub(crate) const fn is_jwks_url(url: &str) -> bool {
    const fn after(text: &[u8], prefix: &[u8]) -> Option<usize> {
        if text.len() < prefix.len() {
            return None;
        }
        let mut i = 0;
        while i < prefix.len() {
            if text[i] != prefix[i] {
                return None;
            }
            i += 1;
        }
        Some(prefix.len())
    }
    let bytes = url.as_bytes();
    let rest_at = if let Some(at) = after(bytes, b"https://") {
        // A host must follow.
        if at == bytes.len() || bytes[at] == b'/' || bytes[at] == b':' {
            return false;
        }
        at
    } else if let Some(at) = after(bytes, b"http://127.0.0.1") {
        at
    } else if let Some(at) = after(bytes, b"http://localhost") {
        at
    } else {
        return false;
    };
    // A local host name ends there: only a port or a path may follow.
    let local = bytes[4] == b':';
    if local && rest_at < bytes.len() && bytes[rest_at] != b':' && bytes[rest_at] != b'/' {
        return false;
    }
    // Nothing that cannot stand in a URL, and no credentials.
    let mut i = rest_at;
    while i < bytes.len() {
        let b = bytes[i];
        if b <= b' ' || b >= 0x7f || matches!(b, b'"' | b'<' | b'>' | b'\\' | b'@') {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn b64(text: &str) -> String {
        URL_SAFE_NO_PAD.encode(text)
    }

    fn token(header: &str, claims: &str) -> String {
        format!("{}.{}.{}", b64(header), b64(claims), b64("sig"))
    }

    const EXPECT: Expect<'static> = Expect {
        issuer: "https://idp.example",
        audience: "edgeway",
        leeway_seconds: 30,
    };
    const NOW: f64 = 1_800_000_000.0;

    fn claims(extra: &str) -> String {
        format!(
            r#"{{"iss":"https://idp.example","aud":"edgeway","exp":{},"sub":"ada"{extra}}}"#,
            NOW + 600.0
        )
    }

    fn checked(claims: &str) -> Result<Verified, Rejection> {
        let token = token(r#"{"alg":"ES256","kid":"k1"}"#, claims);
        check_claims(&split(&token).unwrap(), EXPECT, NOW)
    }

    fn keys() -> Vec<Jwk> {
        JwkSet::parse(
            br#"{"keys":[
                {"kty":"RSA","kid":"r1","n":"AQAB","e":"AQAB","alg":"RS256"},
                {"kty":"EC","kid":"e1","crv":"P-256","x":"AA","y":"AA","use":"sig"},
                {"kty":"EC","kid":"e2","crv":"P-384","x":"AA","y":"AA"},
                {"kty":"oct","kid":"h1","k":"c2VjcmV0"},
                {"kty":"RSA","kid":"p1","n":"AQAB","e":"AQAB","d":"AQAB"},
                {"kty":"EC","kid":"enc","crv":"P-256","x":"AA","y":"AA","use":"enc"}
            ]}"#,
        )
        .unwrap()
    }

    #[test]
    fn splits_a_compact_jws_and_keeps_the_signed_bytes() {
        let token = token(r#"{"alg":"RS256","kid":"r1","typ":"JWT"}"#, "{}");
        let signed = split(&token).unwrap();
        assert_eq!(signed.alg, Algorithm::Rs256);
        assert_eq!(signed.kid.as_deref(), Some("r1"));
        assert_eq!(signed.signature, b"sig");
        assert_eq!(signed.signing_input, token.rsplit_once('.').unwrap().0);
        assert!(looks_like_jwt(&token));
        assert!(!looks_like_jwt("ewk_0123456789abcdef_00"));
    }

    #[test]
    fn none_symmetric_and_unknown_algorithms_are_refused_before_any_key() {
        for alg in [
            r#""none""#,
            r#""HS256""#,
            r#""HS512""#,
            r#""RS1""#,
            r#""""#,
            "null",
        ] {
            let token = token(&format!(r#"{{"alg":{alg}}}"#), "{}");
            assert!(
                matches!(split(&token), Err(Rejection::Algorithm(_))),
                "{alg}"
            );
        }
        let token = token(r#"{"typ":"JWT"}"#, "{}");
        assert!(matches!(split(&token), Err(Rejection::Algorithm(_))));
        let crit = token_with(r#"{"alg":"ES256","crit":["b64"],"b64":false}"#);
        assert_eq!(split(&crit).unwrap_err(), Rejection::Critical);
    }

    fn token_with(header: &str) -> String {
        token(header, "{}")
    }

    #[test]
    fn malformed_tokens_say_what_is_wrong() {
        for bad in [
            "a.b",
            "a.b.c.d",
            "!!.e30.c2ln",
            "e30=.e30.c2ln",
            "bm90anNvbg.e30.c2ln",
        ] {
            assert!(matches!(split(bad), Err(Rejection::Malformed(_))), "{bad}");
        }
        let payload_not_object = token(r#"{"alg":"ES256"}"#, "[1]");
        let signed = split(&payload_not_object).unwrap();
        assert!(matches!(
            check_claims(&signed, EXPECT, NOW),
            Err(Rejection::Malformed(_))
        ));
        let wrong_type = token(r#"{"alg":"ES256"}"#, r#"{"exp":"tomorrow"}"#);
        let signed = split(&wrong_type).unwrap();
        assert!(matches!(
            check_claims(&signed, EXPECT, NOW),
            Err(Rejection::Malformed(_))
        ));
    }

    #[test]
    fn a_key_is_chosen_by_kid_and_must_fit_the_algorithm() {
        let keys = keys();
        // The symmetric, the private and the encryption key are not usable.
        assert_eq!(keys.len(), 4);
        let pick = |header: &str| {
            let token = token_with(header);
            choose(&keys, &split(&token).unwrap()).and_then(|k| k.kid.clone())
        };
        assert_eq!(pick(r#"{"alg":"RS256","kid":"r1"}"#).as_deref(), Some("r1"));
        assert_eq!(pick(r#"{"alg":"ES256","kid":"e1"}"#).as_deref(), Some("e1"));
        assert_eq!(pick(r#"{"alg":"ES384","kid":"e2"}"#).as_deref(), Some("e2"));
        // The RSA key declares RS256: PS256 and RS512 may not use it.
        assert_eq!(pick(r#"{"alg":"PS256","kid":"r1"}"#), None);
        assert_eq!(pick(r#"{"alg":"RS512","kid":"r1"}"#), None);
        // An EC key for the other curve, or for RSA, does not fit.
        assert_eq!(pick(r#"{"alg":"ES256","kid":"e2"}"#), None);
        assert_eq!(pick(r#"{"alg":"RS256","kid":"e1"}"#), None);
        assert_eq!(pick(r#"{"alg":"ES256","kid":"enc"}"#), None);
        assert_eq!(pick(r#"{"alg":"ES256","kid":"nope"}"#), None);
        // Without a kid: the only key that fits, never a guess between two.
        assert_eq!(pick(r#"{"alg":"ES384"}"#).as_deref(), Some("e2"));
        assert_eq!(pick(r#"{"alg":"RS256"}"#).as_deref(), Some("r1"));
        assert!(knows_kid(&keys, Some("r1")) && !knows_kid(&keys, Some("rotated")));
    }

    #[test]
    fn the_public_key_is_imported_without_what_else_the_jwk_declares() {
        let keys = keys();
        assert_eq!(
            keys[0].public_json(),
            r#"{"e":"AQAB","kty":"RSA","n":"AQAB"}"#
        );
        assert_eq!(
            keys[1].public_json(),
            r#"{"crv":"P-256","kty":"EC","x":"AA","y":"AA"}"#
        );
    }

    #[test]
    fn a_jwks_without_a_usable_key_is_an_error() {
        assert!(JwkSet::parse(b"{}").is_err());
        assert!(JwkSet::parse(b"not json").is_err());
        assert!(JwkSet::parse(br#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).is_err());
    }

    #[test]
    fn good_claims_pass_with_their_subject_and_route_scopes() {
        let verified = checked(&claims(
            r#","scope":"openid email orders:read * kv","scp":["jobs", "profile"]"#,
        ))
        .unwrap();
        assert_eq!(verified.subject.as_deref(), Some("ada"));
        let scopes: Vec<String> = verified.scopes.iter().map(ToString::to_string).collect();
        // `*` and the sign-in scopes grant nothing.
        assert_eq!(scopes, ["orders:read", "kv", "jobs"]);
        assert_eq!(verified.claims["sub"], "ada");
        // `aud` may be a list.
        let listed = claims("").replace(r#""aud":"edgeway""#, r#""aud":["other","edgeway"]"#);
        assert!(checked(&listed).is_ok());
    }

    #[test]
    fn time_issuer_and_audience_are_enforced() {
        let at = |exp: f64| claims("").replace(&format!("{}", NOW + 600.0), &exp.to_string());
        assert_eq!(checked(&at(NOW - 31.0)).unwrap_err(), Rejection::Expired);
        // Within the leeway a just-expired token still passes.
        assert!(checked(&at(NOW - 29.0)).is_ok());
        let no_exp = claims("").replace(&format!(r#","exp":{}"#, NOW + 600.0), "");
        assert_eq!(checked(&no_exp).unwrap_err(), Rejection::Expired);
        let nbf = |nbf: f64| claims(&format!(r#","nbf":{nbf}"#));
        assert_eq!(
            checked(&nbf(NOW + 31.0)).unwrap_err(),
            Rejection::NotYetValid
        );
        assert!(checked(&nbf(NOW + 29.0)).is_ok());
        let iss = claims("").replace("https://idp.example", "https://evil.example");
        assert_eq!(checked(&iss).unwrap_err(), Rejection::Issuer);
        let no_iss = claims("").replace(r#""iss":"https://idp.example","#, "");
        assert_eq!(checked(&no_iss).unwrap_err(), Rejection::Issuer);
        let aud = claims("").replace(r#""aud":"edgeway""#, r#""aud":["other"]"#);
        assert_eq!(checked(&aud).unwrap_err(), Rejection::Audience);
        let no_aud = claims("").replace(r#""aud":"edgeway","#, "");
        assert_eq!(checked(&no_aud).unwrap_err(), Rejection::Audience);
    }

    #[test]
    fn jwks_urls_are_https_or_this_machine() {
        for good in [
            "https://idp.example/.well-known/jwks.json",
            "https://idp.example",
            "http://127.0.0.1:8787/jwks.json",
            "http://localhost/jwks",
            "http://127.0.0.1",
        ] {
            assert!(is_jwks_url(good), "{good}");
        }
        for bad in [
            "",
            "idp.example/jwks",
            "http://idp.example/jwks",
            "https://",
            "https:///jwks",
            "https://idp.example/a b",
            "https://user@idp.example/",
            "http://127.0.0.1.evil.example/jwks",
            "http://localhost.evil.example/",
            "ftp://idp.example/",
        ] {
            assert!(!is_jwks_url(bad), "{bad}");
        }
    }
}

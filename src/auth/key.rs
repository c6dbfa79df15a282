//! The pure part of API keys: the token format, hashing and scopes. No I/O, so
//! it is tested natively and on wasm32 alike.

use ctutils::CtEq;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::http::Method;

/// What every issued key starts with, so a leaked key is recognisable (secret
/// scanners match on it) and a root secret is never mistaken for one.
pub(crate) const PREFIX: &str = "ewk_";
/// Hex digits of the public id.
const ID_HEX: usize = 16;
/// Hex digits of the secret: 256 random bits.
const SECRET_HEX: usize = 64;

/// A presented key split into its public id and its secret.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    pub(crate) id: &'a str,
    pub(crate) secret: &'a str,
}

/// Splits `ewk_<16 hex id>_<64 hex secret>`; anything else is `None`.
pub(crate) fn parse_token(token: &str) -> Option<Token<'_>> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let secret_ok = secret.len() == SECRET_HEX && secret.bytes().all(|b| b.is_ascii_hexdigit());
    (is_id(id) && secret_ok).then_some(Token { id, secret })
}

/// Whether `id` has the form of a key id.
pub(crate) fn is_id(id: &str) -> bool {
    id.len() == ID_HEX && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A fresh key: its id, the whole token (shown once, never stored) and the
/// hash of its secret (stored).
pub(crate) fn new_key() -> (String, String, [u8; 32]) {
    let id = crate::platform::random_hex::<{ ID_HEX / 2 }>();
    let secret = crate::platform::random_hex::<{ SECRET_HEX / 2 }>();
    let token = format!("{PREFIX}{id}_{secret}");
    (id, token, hash(&secret))
}

/// SHA-256 of a secret, as stored. Keys carry 256 random bits, so a fast hash is
/// enough: there is nothing for a slow one to protect against guessing.
pub(crate) fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Whether `secret` hashes to `stored`, in time that does not depend on where
/// they differ.
pub(crate) fn verify(secret: &str, stored: &[u8; 32]) -> bool {
    hash(secret).ct_eq(stored).to_bool()
}

/// One grant: every route with a tag, or only its reads (`GET`, `HEAD`).
///
/// Written `*` (everything), `<tag>` (every method on the routes tagged `tag`)
/// or `<tag>:read`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Scope {
    tag: Option<String>,
    read_only: bool,
}

impl Scope {
    /// Parses `*`, `<tag>` or `<tag>:read`; a tag is 1–64 of `a-z 0-9 . _ -`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "*" {
            return Ok(Self {
                tag: None,
                read_only: false,
            });
        }
        let (tag, read_only) = match text.strip_suffix(":read") {
            Some(tag) => (tag, true),
            None => (text, false),
        };
        let valid = (1..=64).contains(&tag.len())
            && tag
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
        if !valid {
            return Err(format!(
                "scope {text:?} is not `*`, `<tag>` or `<tag>:read` (a tag is 1-64 of a-z, 0-9, `.`, `_`, `-`)"
            ));
        }
        Ok(Self {
            tag: Some(tag.to_owned()),
            read_only,
        })
    }

    /// The route tag this scope names; `None` for `*`.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// Whether this scope lets `method` through on a route tagged `tag`. An
    /// untagged route needs `*`.
    pub fn allows(&self, tag: Option<&str>, method: &Method) -> bool {
        match (&self.tag, tag) {
            (None, _) => true,
            (Some(own), Some(tag)) if own == tag => {
                !self.read_only || matches!(method, Method::Get | Method::Head)
            }
            _ => false,
        }
    }

    /// Whether everything this scope allows, `other` allows too: what a key
    /// may grant is bounded by what it holds.
    pub fn within(&self, other: &Scope) -> bool {
        match (&other.tag, &self.tag) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(held), Some(own)) => held == own && (!other.read_only || self.read_only),
        }
    }
}

impl TryFrom<String> for Scope {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Scope::parse(&text)
    }
}

impl From<Scope> for String {
    fn from(scope: Scope) -> String {
        scope.to_string()
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.tag, self.read_only) {
            (None, _) => f.write_str("*"),
            (Some(tag), false) => f.write_str(tag),
            (Some(tag), true) => write!(f, "{tag}:read"),
        }
    }
}

/// Whether any of `scopes` lets `method` through on a route tagged `tag`.
pub(crate) fn allowed(scopes: &[Scope], tag: Option<&str>, method: &Method) -> bool {
    scopes.iter().any(|scope| scope.allows(tag, method))
}

/// The credential a request presents: `authorization: Bearer <key>` (scheme
/// case-insensitive) or `x-api-key: <key>`.
pub(crate) fn presented(authorization: Option<&str>, api_key: Option<&str>) -> Option<String> {
    if let Some(value) = authorization {
        return crate::http::bearer_token(value).map(str::to_owned);
    }
    api_key
        .map(|key| key.trim().to_owned())
        .filter(|key| !key.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn scope(text: &str) -> Scope {
        Scope::parse(text).unwrap()
    }

    #[test]
    fn new_keys_parse_and_verify_against_their_hash_only() {
        let (id, token, stored) = new_key();
        let parsed = parse_token(&token).unwrap();
        assert_eq!(parsed.id, id);
        assert!(is_id(&id));
        assert!(verify(parsed.secret, &stored));
        let (_, other, _) = new_key();
        assert!(!verify(parse_token(&other).unwrap().secret, &stored));
        assert_ne!(other, token);
    }

    #[test]
    fn malformed_tokens_do_not_parse() {
        let good = format!("ewk_{}_{}", "a".repeat(16), "b".repeat(64));
        assert!(parse_token(&good).is_some());
        for bad in [
            "",
            "ewk_",
            &good[1..],
            &good[..good.len() - 1],
            &format!("ewk_{}_{}", "a".repeat(15), "b".repeat(64)),
            &format!("ewk_{}_{}", "g".repeat(16), "b".repeat(64)),
            &format!("ewk_{}-{}", "a".repeat(16), "b".repeat(64)),
            &format!("ewk_{}_{}_", "a".repeat(16), "b".repeat(64)),
        ] {
            assert_eq!(parse_token(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn scopes_parse_and_print_back() {
        for text in ["*", "kv", "kv:read", "jobs.callback", "a-b_c"] {
            assert_eq!(scope(text).to_string(), text);
        }
        for bad in ["", ":read", "KV", "kv:write", "k v", &"x".repeat(65)] {
            assert!(Scope::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn scopes_allow_their_tag_and_read_scopes_only_reads() {
        assert!(scope("*").allows(None, &Method::Delete));
        assert!(scope("kv").allows(Some("kv"), &Method::Put));
        assert!(!scope("kv").allows(Some("fanout"), &Method::Get));
        assert!(!scope("kv").allows(None, &Method::Get));
        assert!(scope("kv:read").allows(Some("kv"), &Method::Get));
        assert!(scope("kv:read").allows(Some("kv"), &Method::Head));
        assert!(!scope("kv:read").allows(Some("kv"), &Method::Delete));
        assert!(allowed(
            &[scope("jobs"), scope("kv:read")],
            Some("kv"),
            &Method::Get
        ));
        assert!(!allowed(&[], Some("kv"), &Method::Get));
    }

    #[test]
    fn a_key_grants_only_what_it_holds() {
        assert!(scope("kv").within(&scope("*")));
        assert!(scope("kv:read").within(&scope("kv")));
        assert!(scope("kv:read").within(&scope("kv:read")));
        assert!(!scope("kv").within(&scope("kv:read")));
        assert!(!scope("*").within(&scope("kv")));
        assert!(!scope("fanout").within(&scope("kv")));
    }

    #[test]
    fn credentials_come_from_bearer_or_x_api_key() {
        assert_eq!(presented(Some("Bearer abc"), None).as_deref(), Some("abc"));
        assert_eq!(
            presented(Some("bearer  abc "), None).as_deref(),
            Some("abc")
        );
        assert_eq!(presented(Some("Basic abc"), None), None);
        assert_eq!(presented(Some("Bearer "), None), None);
        // An authorization header that is not ours does not fall back to x-api-key.
        assert_eq!(presented(Some("Basic abc"), Some("k")), None);
        assert_eq!(presented(None, Some(" k ")).as_deref(), Some("k"));
        assert_eq!(presented(None, None), None);
    }
}

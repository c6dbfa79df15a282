//! Typed Workers KV: JSON through serde, text and bytes, with every KV limit
//! checked before the runtime would throw.
//!
//! ```ignore
//! edgeway::binding!(pub Items: Kv = "ITEMS");
//!
//! async fn show(items: Items, Path(id): Path<String>) -> Result<Json<Item>, Error> {
//!     items.get_json(&id).await?.map(Json).ok_or_else(|| Error::not_found("no such item"))
//! }
//! ```

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, ErrorKind};

/// The longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// The largest value, in bytes (25 MiB).
pub const MAX_VALUE_BYTES: usize = 25 * 1024 * 1024;
/// The largest metadata, in bytes of serialized JSON.
pub const MAX_METADATA_BYTES: usize = 1024;
/// The shortest `expiration_ttl` and `cache_ttl`, in seconds.
pub const MIN_TTL_SECONDS: u64 = 60;

fn limit(kind: ErrorKind, detail: String, which: &'static str) -> Error {
    Error::new(kind, detail).with_member("limit", which)
}

/// Rejects empty keys, `.` and `..`, and keys over [`MAX_KEY_BYTES`].
pub fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() || key == "." || key == ".." {
        return Err(limit(
            ErrorKind::BadRequest,
            format!("{key:?} is not a valid KV key (empty, `.` and `..` are reserved)"),
            "kv-key",
        ));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(limit(
            ErrorKind::BadRequest,
            format!(
                "a KV key can be at most {MAX_KEY_BYTES} bytes; this one is {}",
                key.len()
            ),
            "kv-key",
        ));
    }
    Ok(())
}

/// Rejects list prefixes over [`MAX_KEY_BYTES`]: no key can start with one.
pub fn check_prefix(prefix: &str) -> Result<(), Error> {
    if prefix.len() > MAX_KEY_BYTES {
        return Err(limit(
            ErrorKind::BadRequest,
            format!(
                "a KV list prefix can be at most {MAX_KEY_BYTES} bytes; this one is {}",
                prefix.len()
            ),
            "kv-key",
        ));
    }
    Ok(())
}

/// Rejects values over [`MAX_VALUE_BYTES`] with a 413.
pub fn check_value(len: usize) -> Result<(), Error> {
    if len > MAX_VALUE_BYTES {
        return Err(limit(
            ErrorKind::PayloadTooLarge,
            format!("a KV value can be at most {MAX_VALUE_BYTES} bytes; this one is {len}"),
            "kv-value",
        ));
    }
    Ok(())
}

/// Rejects a TTL under [`MIN_TTL_SECONDS`].
pub fn check_ttl(name: &'static str, seconds: u64) -> Result<(), Error> {
    if seconds < MIN_TTL_SECONDS {
        return Err(limit(
            ErrorKind::BadRequest,
            format!("{name} is {seconds} s; KV requires at least {MIN_TTL_SECONDS} s"),
            "kv-ttl",
        ));
    }
    Ok(())
}

/// Options for a write.
#[derive(Clone, Debug, Default)]
pub struct PutOptions {
    expiration_ttl: Option<u64>,
    expiration: Option<u64>,
    metadata: Option<serde_json::Value>,
}

impl PutOptions {
    /// No expiry, no metadata.
    pub fn new() -> Self {
        Self::default()
    }

    /// Expire `seconds` from now (at least 60).
    pub fn expiration_ttl(mut self, seconds: u64) -> Self {
        self.expiration_ttl = Some(seconds);
        self
    }

    /// Expire at a Unix time, in seconds.
    pub fn expiration(mut self, unix_seconds: u64) -> Self {
        self.expiration = Some(unix_seconds);
        self
    }

    /// Attach metadata (at most 1024 bytes of JSON), returned by `list`.
    pub fn metadata(mut self, metadata: impl Serialize) -> Result<Self, Error> {
        self.metadata = Some(
            serde_json::to_value(metadata)
                .map_err(|e| Error::internal(format!("could not serialize KV metadata: {e}")))?,
        );
        Ok(self)
    }

    /// Checks every limit these options touch.
    pub fn check(&self) -> Result<(), Error> {
        if let Some(ttl) = self.expiration_ttl {
            check_ttl("expiration_ttl", ttl)?;
        }
        if let Some(metadata) = &self.metadata {
            let len = metadata.to_string().len();
            if len > MAX_METADATA_BYTES {
                return Err(limit(
                    ErrorKind::BadRequest,
                    format!("KV metadata can be at most {MAX_METADATA_BYTES} bytes of JSON; this is {len}"),
                    "kv-metadata",
                ));
            }
        }
        Ok(())
    }
}

/// One key from [`Kv::list`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KvKey {
    /// The key.
    pub name: String,
    /// When it expires, in Unix seconds.
    pub expiration: Option<u64>,
    /// Its metadata.
    pub metadata: Option<serde_json::Value>,
}

/// A KV namespace binding.
#[derive(Clone)]
pub struct Kv {
    store: worker::KvStore,
}

fn kv_error(op: &str, key: &str, err: worker::KvError) -> Error {
    Error::internal(format!("KV {op} of {key:?} failed: {err}"))
}

impl Kv {
    /// The namespace bound as `binding` in `env`.
    pub fn from_env(env: &worker::Env, binding: &str) -> Result<Self, Error> {
        env.kv(binding)
            .map(|store| Self { store })
            .map_err(|e| Error::internal(format!("no KV binding {binding:?}: {e}")))
    }

    /// The namespace bound as `binding`, for the request's worker.
    pub fn from_request(req: &crate::Request, binding: &str) -> Result<Self, Error> {
        Self::from_env(&req.env()?, binding)
    }

    /// Reads `key` as JSON. `cache_ttl` (≥ 60 s) lets the edge cache the read.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        self.get_json_cached(key, None).await
    }

    /// [`get_json`](Self::get_json) with an edge cache TTL.
    pub async fn get_json_cached<T: DeserializeOwned>(
        &self,
        key: &str,
        cache_ttl: Option<u64>,
    ) -> Result<Option<T>, Error> {
        match self.get_text_cached(key, cache_ttl).await? {
            Some(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
                Error::internal(format!("KV value of {key:?} is not the expected JSON: {e}"))
            }),
            None => Ok(None),
        }
    }

    /// Reads `key` as text.
    pub async fn get_text(&self, key: &str) -> Result<Option<String>, Error> {
        self.get_text_cached(key, None).await
    }

    /// [`get_text`](Self::get_text) with an edge cache TTL.
    pub async fn get_text_cached(
        &self,
        key: &str,
        cache_ttl: Option<u64>,
    ) -> Result<Option<String>, Error> {
        check_key(key)?;
        let mut get = self.store.get(key);
        if let Some(ttl) = cache_ttl {
            check_ttl("cache_ttl", ttl)?;
            get = get.cache_ttl(ttl);
        }
        #[cfg(feature = "ops")]
        crate::ops::count(crate::ops::Op::KvRead);
        get.text().await.map_err(|e| kv_error("get", key, e))
    }

    /// Reads `key` as bytes.
    pub async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        check_key(key)?;
        #[cfg(feature = "ops")]
        crate::ops::count(crate::ops::Op::KvRead);
        self.store
            .get(key)
            .bytes()
            .await
            .map_err(|e| kv_error("get", key, e))
    }

    /// Writes `value` as JSON.
    pub async fn put_json<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        options: PutOptions,
    ) -> Result<(), Error> {
        let text = serde_json::to_string(value).map_err(|e| {
            Error::internal(format!("could not serialize the KV value for {key:?}: {e}"))
        })?;
        self.put_text(key, &text, options).await
    }

    /// Writes text.
    pub async fn put_text(&self, key: &str, value: &str, options: PutOptions) -> Result<(), Error> {
        self.write(key, value.len(), &options, |store| store.put(key, value))
            .await
    }

    /// Writes bytes.
    pub async fn put_bytes(
        &self,
        key: &str,
        value: &[u8],
        options: PutOptions,
    ) -> Result<(), Error> {
        self.write(key, value.len(), &options, |store| {
            store.put_bytes(key, value)
        })
        .await
    }

    /// Checks every limit, then runs the write `start` begins.
    async fn write(
        &self,
        key: &str,
        len: usize,
        options: &PutOptions,
        start: impl FnOnce(&worker::KvStore) -> Result<worker::kv::PutOptionsBuilder, worker::KvError>,
    ) -> Result<(), Error> {
        check_key(key)?;
        check_value(len)?;
        options.check()?;
        let put = start(&self.store).map_err(|e| kv_error("put", key, e))?;
        #[cfg(feature = "ops")]
        crate::ops::count(crate::ops::Op::KvWrite);
        apply(put, options)?
            .execute()
            .await
            .map_err(|e| kv_error("put", key, e))
    }

    /// Deletes `key` (a no-op when absent).
    pub async fn delete(&self, key: &str) -> Result<(), Error> {
        check_key(key)?;
        #[cfg(feature = "ops")]
        crate::ops::count(crate::ops::Op::KvDelete);
        self.store
            .delete(key)
            .await
            .map_err(|e| kv_error("delete", key, e))
    }

    /// Every key under `prefix`, following cursors to the end. A page may be empty
    /// while `list_complete` is false; that does not end the listing.
    pub async fn list(&self, prefix: &str) -> Result<Vec<KvKey>, Error> {
        check_prefix(prefix)?;
        let mut pages = self.list_pages(prefix);
        let mut keys = Vec::new();
        while let Some(page) = pages.next_page().await? {
            keys.extend(page);
        }
        Ok(keys)
    }

    /// Page-by-page listing, for large namespaces.
    pub fn list_pages(&self, prefix: &str) -> KvPages {
        KvPages {
            store: self.store.clone(),
            prefix: prefix.to_owned(),
            cursor: None,
            page_size: None,
            done: false,
        }
    }
}

fn apply(
    mut put: worker::kv::PutOptionsBuilder,
    options: &PutOptions,
) -> Result<worker::kv::PutOptionsBuilder, Error> {
    if let Some(ttl) = options.expiration_ttl {
        put = put.expiration_ttl(ttl);
    }
    if let Some(at) = options.expiration {
        put = put.expiration(at);
    }
    if let Some(metadata) = &options.metadata {
        put = put
            .metadata(metadata)
            .map_err(|e| Error::internal(format!("KV metadata: {e}")))?;
    }
    Ok(put)
}

/// A listing in progress; see [`Kv::list_pages`].
pub struct KvPages {
    store: worker::KvStore,
    prefix: String,
    cursor: Option<String>,
    page_size: Option<u64>,
    done: bool,
}

impl KvPages {
    /// Keys per page (KV's default and maximum is 1000).
    pub fn page_size(mut self, keys: u64) -> Self {
        self.page_size = Some(keys.clamp(1, 1000));
        self
    }

    /// The next page of keys, or `None` once the listing is complete.
    pub async fn next_page(&mut self) -> Result<Option<Vec<KvKey>>, Error> {
        if self.done {
            return Ok(None);
        }
        let mut list = self.store.list().prefix(self.prefix.clone());
        if let Some(limit) = self.page_size {
            list = list.limit(limit);
        }
        if let Some(cursor) = self.cursor.take() {
            list = list.cursor(cursor);
        }
        #[cfg(feature = "ops")]
        crate::ops::count(crate::ops::Op::KvList);
        let page = list
            .execute()
            .await
            .map_err(|e| Error::internal(format!("KV list of {:?} failed: {e}", self.prefix)))?;
        let (done, cursor) = next_cursor(page.list_complete, page.cursor);
        self.done = done;
        self.cursor = cursor;
        Ok(Some(
            page.keys
                .into_iter()
                .map(|k| KvKey {
                    name: k.name,
                    expiration: k.expiration,
                    metadata: k.metadata,
                })
                .collect(),
        ))
    }
}

/// Whether a listing is done after a page, and the cursor to continue with.
/// Only `list_complete` ends it; an empty page with a cursor does not.
fn next_cursor(list_complete: bool, cursor: Option<String>) -> (bool, Option<String>) {
    match (list_complete, cursor) {
        (false, Some(cursor)) if !cursor.is_empty() => (false, Some(cursor)),
        // Incomplete without a cursor cannot continue; stop rather than loop forever.
        _ => (true, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::StatusCode;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn key_limits() {
        assert!(check_key("a").is_ok());
        assert!(check_key(&"k".repeat(512)).is_ok());
        let err = check_key(&"k".repeat(513)).unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert!(err.detail().contains("512"), "{}", err.detail());
        for bad in ["", ".", ".."] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        // 512 bytes, not characters.
        assert!(check_key(&"é".repeat(257)).is_err());
    }

    #[test]
    fn value_ttl_and_metadata_limits() {
        assert!(check_value(MAX_VALUE_BYTES).is_ok());
        assert_eq!(
            check_value(MAX_VALUE_BYTES + 1).unwrap_err().status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        let err = PutOptions::new().expiration_ttl(59).check().unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert!(
            err.detail().contains("expiration_ttl is 59"),
            "{}",
            err.detail()
        );
        assert!(PutOptions::new().expiration_ttl(60).check().is_ok());
        let big = PutOptions::new().metadata("x".repeat(1100)).unwrap();
        assert!(big.check().unwrap_err().detail().contains("1024"));
        assert!(check_ttl("cache_ttl", 30).is_err());
    }

    #[test]
    fn listing_follows_cursors_through_empty_pages() {
        assert_eq!(
            next_cursor(false, Some("c1".into())),
            (false, Some("c1".into()))
        );
        assert_eq!(next_cursor(true, Some("c1".into())), (true, None));
        assert_eq!(next_cursor(false, None), (true, None));
        assert_eq!(next_cursor(false, Some(String::new())), (true, None));
    }
}

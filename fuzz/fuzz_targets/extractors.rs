//! Extractor decoding: a query string, a JSON body and a urlencoded form, into
//! typed shapes and into generic values. Each must decode or return a 4xx error.
#![no_main]

use std::collections::BTreeMap;

use edgeway::{Form, FromRequest, FromRequestParts, Json, Method, Query, Request};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

#[derive(Deserialize)]
#[allow(dead_code)]
struct Paging {
    limit: Option<u32>,
    cursor: Option<String>,
    tags: Option<Vec<String>>,
    on: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Note {
    text: String,
    pinned: Option<bool>,
    tags: Vec<String>,
    meta: BTreeMap<String, serde_json::Value>,
}

fn client_error(err: edgeway::Error) {
    assert!(err.status().is_client_error(), "{err:?}");
}

fn with_body(content_type: &'static str, body: &[u8]) -> Request {
    Request::new(Method::Post, "/x")
        .with_header("content-type", content_type)
        .with_body(body.to_vec())
}

fuzz_target!(|data: &[u8]| {
    use edgeway::__private::block_on;
    if let Ok(text) = std::str::from_utf8(data) {
        let mut req = Request::new(Method::Get, format!("/x?{text}"));
        if let Err(e) = Query::<Paging>::from_request_parts(&mut req) {
            client_error(e);
        }
        let mut req = Request::new(Method::Get, format!("/x?{text}"));
        if let Err(e) = Query::<BTreeMap<String, String>>::from_request_parts(&mut req) {
            client_error(e);
        }
    }
    if let Err(e) = block_on(Json::<Note>::from_request(with_body("application/json", data))) {
        client_error(e);
    }
    if let Err(e) = block_on(Json::<serde_json::Value>::from_request(with_body("application/json", data))) {
        client_error(e);
    }
    if let Err(e) = block_on(Form::<Paging>::from_request(with_body(
        "application/x-www-form-urlencoded",
        data,
    ))) {
        client_error(e);
    }
});

//! SigV4 canonicalization: arbitrary paths, queries, headers and bodies sign
//! without panicking, in both forms, and signing is deterministic.
#![no_main]

use edgeway::aws::sigv4::{presign, sign, Credentials, SigningParams, SigningSettings, UnsignedRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parts = text.splitn(5, '\n');
    let method = parts.next().unwrap_or("GET");
    let path = parts.next().unwrap_or("/");
    let query = parts.next().unwrap_or("");
    let header_block = parts.next().unwrap_or("");
    let body = parts.next().unwrap_or("").as_bytes();
    let headers: Vec<(&str, &str)> = header_block
        .split('\r')
        .filter_map(|line| line.split_once(':'))
        .chain([("host", "lambda.us-east-1.amazonaws.com")])
        .collect();
    let credentials = Credentials::new("AKIDEXAMPLE", "secret").with_session_token("token");
    let request = UnsignedRequest::new(method, path, query, &headers, body);
    for normalize in [true, false] {
        let settings = SigningSettings {
            normalize_path: normalize,
            double_encode_path: normalize,
            content_sha256_header: !normalize,
            ..SigningSettings::default()
        };
        let params = SigningParams::new(&credentials, "us-east-1", "lambda", 1_700_000_000)
            .settings(settings);
        let a = sign(&request, &params);
        let b = sign(&request, &params);
        assert_eq!(a.signature, b.signature);
        assert_eq!(a.signature.len(), 64);
        let p = presign(&request, &params);
        assert_eq!(p.signature.len(), 64);
    }
});

//! A Lambda Invoke client: SigV4-signed `fetch` calls to the Invoke API.
//!
//! The request and the reading of the answer are pure ([`invoke_request`],
//! [`read_reply`]) and unit-tested; [`Lambda`] only adds the clock and `fetch`.
//!
//! ```no_run
//! # async fn run(env: &worker::Env) -> Result<(), edgeway::Error> {
//! use edgeway::aws::lambda::{Lambda, LambdaConfig};
//! let lambda = Lambda::new(LambdaConfig::from_env(env)?);
//! lambda.invoke_async("thumbnail", &serde_json::json!({"job": "j1"})).await?;
//! let sum: u32 = lambda.invoke("adder", &(1, 2)).await?;
//! # Ok(()) }
//! ```

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::sigv4::{sign, Credentials, SigningParams, UnsignedRequest};
use crate::error::{Error, ErrorKind};
use crate::outbound::{OutboundReply, OutboundRequest};

/// The largest payload of an asynchronous (`Event`) invocation: 1 MB.
pub const ASYNC_PAYLOAD_LIMIT: usize = 1024 * 1024;
/// The largest payload of a synchronous (`RequestResponse`) invocation: 6 MB.
pub const SYNC_PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;
/// How long a call may take. A synchronous invocation waits for the function.
pub const INVOKE_TIMEOUT_MS: u32 = 30_000;
/// The most of an Invoke answer read: a synchronous result is at most
/// [`SYNC_PAYLOAD_LIMIT`], and error documents are small.
pub const MAX_REPLY_BYTES: u32 = SYNC_PAYLOAD_LIMIT as u32 + 64 * 1024;
/// The Invoke API version in the path.
const API_PATH: &str = "/2015-03-31/functions/";

/// `Event` (queued by Lambda, answered with 202) or `RequestResponse` (waits for
/// the function's result).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvocationType {
    /// Asynchronous: Lambda queues the event and answers 202.
    Event,
    /// Synchronous: the answer is the function's result.
    RequestResponse,
}

impl InvocationType {
    fn header(self) -> &'static str {
        match self {
            Self::Event => "Event",
            Self::RequestResponse => "RequestResponse",
        }
    }

    fn payload_limit(self) -> usize {
        match self {
            Self::Event => ASYNC_PAYLOAD_LIMIT,
            Self::RequestResponse => SYNC_PAYLOAD_LIMIT,
        }
    }
}

/// Which function: a name, a partial ARN or an ARN, and optionally a version or
/// alias (`Qualifier`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    name: String,
    qualifier: Option<String>,
}

impl Function {
    /// A function by name or ARN.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            qualifier: None,
        }
    }

    /// Invokes this version or alias.
    pub fn qualifier(mut self, qualifier: impl Into<String>) -> Self {
        self.qualifier = Some(qualifier.into());
        self
    }

    /// Checks the name and qualifier against Lambda's rules, so a typo fails here
    /// with a clear message rather than as a signed 4xx from AWS.
    pub fn check(&self) -> Result<(), Error> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || "-_:".contains(c);
        if self.name.is_empty() || self.name.len() > 170 || !self.name.chars().all(allowed) {
            return Err(Error::bad_request(format!(
                "`{}` is not a Lambda function name or ARN (1 to 170 of A-Z a-z 0-9 - _ :)",
                self.name
            )));
        }
        if let Some(q) = &self.qualifier {
            let ok = !q.is_empty()
                && q.len() <= 128
                && q.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_$".contains(c));
            if !ok {
                return Err(Error::bad_request(format!(
                    "`{q}` is not a Lambda version or alias"
                )));
            }
        }
        Ok(())
    }
}

impl From<&str> for Function {
    fn from(name: &str) -> Self {
        Self::new(name)
    }
}

impl From<String> for Function {
    fn from(name: String) -> Self {
        Self::new(name)
    }
}

/// Where Lambda is and who calls it.
#[derive(Clone, Debug)]
pub struct LambdaConfig {
    /// The signing credentials.
    pub credentials: Credentials,
    /// The region, e.g. `eu-west-1`.
    pub region: String,
    /// The API origin, e.g. `https://lambda.eu-west-1.amazonaws.com` or a local
    /// emulator's `http://127.0.0.1:9001`.
    pub endpoint: String,
}

impl LambdaConfig {
    /// The regional AWS endpoint.
    pub fn new(credentials: Credentials, region: impl Into<String>) -> Self {
        let region = region.into();
        Self {
            endpoint: format!("https://lambda.{region}.amazonaws.com"),
            credentials,
            region,
        }
    }

    /// Another endpoint (a local emulator, a VPC endpoint).
    pub fn endpoint(mut self, origin: impl Into<String>) -> Self {
        self.endpoint = origin.into().trim_end_matches('/').to_owned();
        self
    }

    /// From the Worker's environment: the secrets `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY` and optional `AWS_SESSION_TOKEN`, the var
    /// `AWS_REGION`, and the optional var `LAMBDA_ENDPOINT`.
    pub fn from_env(env: &worker::Env) -> Result<Self, Error> {
        let text = |name: &str| crate::platform::setting(env, name);
        let required = |name: &str| {
            text(name).ok_or_else(|| Error::internal(format!("the Worker has no `{name}` set")))
        };
        let mut credentials = Credentials::new(
            required("AWS_ACCESS_KEY_ID")?,
            required("AWS_SECRET_ACCESS_KEY")?,
        );
        if let Some(token) = text("AWS_SESSION_TOKEN") {
            credentials = credentials.with_session_token(token);
        }
        let config = Self::new(credentials, required("AWS_REGION")?);
        Ok(match text("LAMBDA_ENDPOINT") {
            Some(origin) => config.endpoint(origin),
            None => config,
        })
    }
}

/// Builds the signed Invoke request for `payload` (JSON bytes) at Unix time `now`.
pub fn invoke_request(
    config: &LambdaConfig,
    function: &Function,
    invocation: InvocationType,
    payload: Vec<u8>,
    now: u64,
) -> Result<OutboundRequest, Error> {
    function.check()?;
    let limit = invocation.payload_limit();
    if payload.len() > limit {
        return Err(Error::new(
            ErrorKind::PayloadTooLarge,
            format!(
                "the Lambda payload is {} bytes; a {} invocation takes at most {limit}",
                payload.len(),
                invocation.header()
            ),
        ));
    }
    let origin = crate::http::url_origin(&config.endpoint);
    let host = origin.split_once("://").map_or(origin, |(_, host)| host);
    // On the wire the ARN's `:` is `%3A`; the signer encodes the path once more.
    let path = format!(
        "{API_PATH}{}/invocations",
        function.name.replace(':', "%3A")
    );
    let query = function
        .qualifier
        .as_ref()
        .map(|q| format!("Qualifier={q}"))
        .unwrap_or_default();
    let headers = [
        ("host", host),
        ("content-type", "application/json"),
        ("x-amz-invocation-type", invocation.header()),
    ];
    let request = UnsignedRequest::new("POST", &path, &query, &headers, &payload);
    let params = SigningParams::new(&config.credentials, &config.region, "lambda", now);
    let signed = sign(&request, &params);
    let mut out: Vec<(String, String)> = headers[1..]
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    out.extend(signed.headers.into_iter().map(|(n, v)| (n.to_owned(), v)));
    let url = if query.is_empty() {
        format!("{}{path}", config.endpoint)
    } else {
        format!("{}{path}?{query}", config.endpoint)
    };
    Ok(OutboundRequest {
        method: "POST",
        url,
        headers: out,
        body: payload,
        timeout_ms: INVOKE_TIMEOUT_MS,
        max_response_bytes: MAX_REPLY_BYTES,
    })
}

/// Reads Lambda's answer: the result body on success, or a typed [`Error`]:
/// [`ErrorKind::FunctionError`] when the function threw,
/// [`ErrorKind::Throttled`] on 429 (with `Retry-After` when given),
/// [`ErrorKind::Upstream`] on 5xx (both retryable), and the service's own error
/// type and message as [`ErrorKind::UpstreamRejected`] on any other status.
pub fn read_reply(invocation: InvocationType, reply: OutboundReply) -> Result<Vec<u8>, Error> {
    let expected = match invocation {
        InvocationType::Event => 202,
        InvocationType::RequestResponse => 200,
    };
    if reply.truncated {
        return Err(Error::new(
            ErrorKind::UpstreamRejected,
            format!(
                "Lambda answered {} with more than {MAX_REPLY_BYTES} bytes; the rest was not read",
                reply.status
            ),
        ));
    }
    if reply.status == expected {
        if let Some(kind) = reply.header("x-amz-function-error") {
            let message = function_error_message(&reply.body);
            return Err(Error::new(
                ErrorKind::FunctionError,
                format!("the function failed ({kind}): {message}"),
            )
            .with_member("functionError", kind));
        }
        return Ok(reply.body);
    }
    let doc = json_document(&reply.body);
    let error_type = reply
        .header("x-amzn-errortype")
        .map(|t| t.split(':').next().unwrap_or(t).to_owned())
        .or_else(|| json_field(doc.as_ref(), "__type"))
        .or_else(|| xml_element(&reply.body, "Code"))
        .unwrap_or_else(|| "UnknownError".into());
    let message = json_field(doc.as_ref(), "message")
        .or_else(|| json_field(doc.as_ref(), "Message"))
        .or_else(|| xml_element(&reply.body, "Message"))
        .unwrap_or_else(|| reply.excerpt(200));
    let detail = format!("Lambda answered {} {error_type}: {message}", reply.status);
    let error = match reply.status {
        429 => Error::new(ErrorKind::Throttled, detail),
        500..=599 => Error::new(ErrorKind::Upstream, detail),
        413 => Error::new(ErrorKind::PayloadTooLarge, detail),
        // Any other status (403 signature errors, 404 unknown function, or a
        // 2xx other than the one this invocation type returns) is a setup problem:
        // retrying will not help.
        _ => Error::new(ErrorKind::UpstreamRejected, detail),
    }
    .with_member("awsErrorType", error_type);
    Err(
        match reply
            .header("retry-after")
            .and_then(|v| v.trim().parse().ok())
        {
            Some(seconds) if error.is_retryable() => error.with_retry_after(seconds),
            _ => error,
        },
    )
}

/// An error reply's body as JSON, if it is: decoded once for every field read.
fn json_document(body: &[u8]) -> Option<serde_json::Value> {
    crate::json_text::from_json_bytes(body).ok()
}

fn json_field(doc: Option<&serde_json::Value>, field: &str) -> Option<String> {
    doc?.get(field)?.as_str().map(str::to_owned)
}

/// The text of the first `<name>` element: auth errors come back as AWS's XML
/// `ErrorResponse` even from JSON services.
fn xml_element(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find(&format!("<{name}>"))? + name.len() + 2;
    let end = start + text[start..].find(&format!("</{name}>"))?;
    Some(text[start..end].to_owned())
}

fn function_error_message(body: &[u8]) -> String {
    let doc = json_document(body);
    match (
        json_field(doc.as_ref(), "errorType"),
        json_field(doc.as_ref(), "errorMessage"),
    ) {
        (Some(t), Some(m)) => format!("{t}: {m}"),
        (None, Some(m)) => m,
        _ => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    }
}

/// The client: a [`LambdaConfig`] plus the clock and `fetch`.
#[derive(Clone, Debug)]
pub struct Lambda {
    config: LambdaConfig,
}

impl Lambda {
    /// A client for `config`.
    pub fn new(config: LambdaConfig) -> Self {
        Self { config }
    }

    /// The configuration.
    pub fn config(&self) -> &LambdaConfig {
        &self.config
    }

    /// Queues an invocation (`X-Amz-Invocation-Type: Event`); Lambda answers 202.
    pub async fn invoke_async<T: Serialize + ?Sized>(
        &self,
        function: impl Into<Function>,
        payload: &T,
    ) -> Result<(), Error> {
        self.call(function.into(), InvocationType::Event, payload)
            .await
            .map(drop)
    }

    /// Runs the function and decodes its result (`RequestResponse`).
    pub async fn invoke<T: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        function: impl Into<Function>,
        payload: &T,
    ) -> Result<R, Error> {
        let body = self
            .call(function.into(), InvocationType::RequestResponse, payload)
            .await?;
        crate::json_text::from_json_bytes(&body)
            .map_err(|e| Error::internal(format!("the function's result does not decode: {e}")))
    }

    async fn call<T: Serialize + ?Sized>(
        &self,
        function: Function,
        invocation: InvocationType,
        payload: &T,
    ) -> Result<Vec<u8>, Error> {
        let payload = serde_json::to_vec(payload)
            .map_err(|e| Error::internal(format!("the payload does not encode: {e}")))?;
        let now = (crate::platform::now_ms() / 1000.0) as u64;
        let request = invoke_request(&self.config, &function, invocation, payload, now)?;
        #[cfg(feature = "ops")]
        crate::ops::count(crate::ops::Op::LambdaInvocation);
        let reply = crate::outbound::send(&request).await?;
        read_reply(invocation, reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn config() -> LambdaConfig {
        LambdaConfig::new(
            Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            "us-east-2",
        )
    }

    fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> OutboundReply {
        OutboundReply {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
            truncated: false,
        }
    }

    #[test]
    fn an_answer_cut_at_the_cap_is_an_error_not_a_result() {
        let mut cut = reply(200, &[], "{\"partial\":");
        cut.truncated = true;
        let err = read_reply(InvocationType::RequestResponse, cut).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UpstreamRejected);
        assert!(err.detail().contains("more than"), "{}", err.detail());
        let whole = reply(200, &[], "{}");
        assert_eq!(
            read_reply(InvocationType::RequestResponse, whole).unwrap(),
            b"{}"
        );
    }

    #[test]
    fn an_arn_is_sent_encoded_once_and_signed_encoded_twice() {
        let arn = "arn:aws:lambda:us-west-2:892717189312:function:my-rusty-fun";
        let req = invoke_request(
            &config(),
            &Function::new(arn),
            InvocationType::Event,
            Vec::new(),
            1_620_747_645,
        )
        .unwrap();
        assert_eq!(
            req.url,
            "https://lambda.us-east-2.amazonaws.com/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-west-2%3A892717189312%3Afunction%3Amy-rusty-fun/invocations"
        );
        let header = |name: &str| {
            req.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("x-amz-invocation-type"), Some("Event"));
        assert_eq!(header("x-amz-date"), Some("20210511T154045Z"));
        let auth = header("authorization").unwrap();
        assert!(auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20210511/us-east-2/lambda/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-invocation-type, Signature="
        ));
    }

    #[test]
    fn a_qualifier_goes_in_the_query_and_the_endpoint_can_be_local() {
        let config = config().endpoint("http://127.0.0.1:9001/");
        let req = invoke_request(
            &config,
            &Function::new("thumbnail").qualifier("live"),
            InvocationType::RequestResponse,
            b"{}".to_vec(),
            0,
        )
        .unwrap();
        assert_eq!(
            req.url,
            "http://127.0.0.1:9001/2015-03-31/functions/thumbnail/invocations?Qualifier=live"
        );
    }

    #[test]
    fn payload_limits_are_checked_before_sending() {
        let over = vec![b' '; ASYNC_PAYLOAD_LIMIT + 1];
        let err = invoke_request(
            &config(),
            &Function::new("f"),
            InvocationType::Event,
            over.clone(),
            0,
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PayloadTooLarge);
        assert!(err.detail().contains("at most 1048576"));
        // The same payload fits a synchronous call.
        assert!(invoke_request(
            &config(),
            &Function::new("f"),
            InvocationType::RequestResponse,
            over,
            0
        )
        .is_ok());
    }

    #[test]
    fn bad_names_fail_before_signing() {
        for bad in ["", "has space", "../x", &"a".repeat(171)] {
            assert_eq!(
                Function::new(bad).check().unwrap_err().kind(),
                ErrorKind::BadRequest
            );
        }
        assert!(Function::new("f").qualifier("v/1").check().is_err());
        assert!(Function::new("f").qualifier("$LATEST").check().is_ok());
    }

    #[test]
    fn success_statuses_depend_on_the_invocation_type() {
        assert!(read_reply(InvocationType::Event, reply(202, &[], "")).is_ok());
        assert_eq!(
            read_reply(InvocationType::RequestResponse, reply(200, &[], "42")).unwrap(),
            b"42"
        );
    }

    #[test]
    fn a_function_error_is_typed_and_permanent() {
        let err = read_reply(
            InvocationType::RequestResponse,
            reply(
                200,
                &[("x-amz-function-error", "Unhandled")],
                r#"{"errorType":"ValueError","errorMessage":"bad image"}"#,
            ),
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FunctionError);
        assert!(!err.is_retryable());
        assert!(err.detail().contains("Unhandled") && err.detail().contains("bad image"));
        assert!(err
            .to_problem_json()
            .contains(r#""functionError":"Unhandled""#));
    }

    #[test]
    fn throttling_and_5xx_are_retryable() {
        let err = read_reply(
            InvocationType::Event,
            reply(
                429,
                &[
                    (
                        "x-amzn-errortype",
                        "TooManyRequestsException:http://internal",
                    ),
                    ("retry-after", "3"),
                ],
                r#"{"message":"Rate exceeded"}"#,
            ),
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Throttled);
        assert!(err.is_retryable());
        assert_eq!(err.retry_after(), Some(3));
        assert!(err
            .detail()
            .contains("TooManyRequestsException: Rate exceeded"));

        let err = read_reply(InvocationType::Event, reply(503, &[], "down")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Upstream);
        assert!(err.is_retryable());
    }

    #[test]
    fn xml_auth_errors_are_read() {
        let err = read_reply(
            InvocationType::Event,
            reply(
                403,
                &[],
                r#"<?xml version="1.0"?><ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error></Errors></ErrorResponse>"#,
            ),
        )
        .unwrap_err();
        assert!(err
            .detail()
            .contains("403 SignatureDoesNotMatch: The request signature"));
    }

    #[test]
    fn signature_errors_are_not_retryable() {
        let err = read_reply(
            InvocationType::Event,
            reply(
                403,
                &[],
                r#"{"__type":"SignatureDoesNotMatch","message":"The request signature we calculated does not match"}"#,
            ),
        )
        .unwrap_err();
        assert!(!err.is_retryable());
        assert_eq!(err.kind(), ErrorKind::UpstreamRejected);
        assert!(matches!(
            crate::queue::Failure::from(err),
            crate::queue::Failure::Permanent(r) if r.contains("403 SignatureDoesNotMatch")
        ));
    }
}

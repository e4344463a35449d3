//! Reading requests: source address, strict query/form decoding, JSON bodies, cookies.

use std::net::{IpAddr, Ipv4Addr};

use crate::params::Params;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt};

/// Largest body the auth endpoints read.
pub const MAX_BODY: usize = 16 * 1024;

/// A request that cannot be read. Each family decides how to answer it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// Over the endpoint's limit (in bytes).
    #[error("Request body too large (limit {0} bytes).")]
    TooLarge(usize),
    #[error("Unsupported Content-Type: send application/json or application/x-www-form-urlencoded.")]
    ContentType,
    #[error("Malformed JSON body: expected an object of string, number or boolean values.")]
    Json,
    #[error("Malformed form body or query string (bad percent-encoding or not UTF-8).")]
    Encoding,
    #[error("{0}")]
    Duplicate(String),
}

/// The caller's address: `requestContext.http.sourceIp` in Lambda, the TCP peer locally.
pub fn source_ip(req: &Request) -> IpAddr {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.as_deref().and_then(|ip| ip.parse().ok()),
        _ => None,
    }
    .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

pub fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The value of cookie `name`.
pub fn cookie<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Strict `application/x-www-form-urlencoded` decoding (query strings and form bodies):
/// `+` and `%20` are spaces; a `%` not followed by two hex digits, or bytes that are not
/// UTF-8, are errors rather than silently replaced; a repeated name is an error.
pub fn parse_urlencoded(s: &str) -> Result<Params, InputError> {
    let mut pairs = Vec::new();
    for part in s.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        pairs.push((decode_component(k)?, decode_component(v)?));
    }
    Params::from_pairs(pairs).map_err(|e| InputError::Duplicate(e.to_string()))
}

fn decode_component(s: &str) -> Result<String, InputError> {
    check_escapes(s)?;
    percent_decode(&s.replace('+', " "))
}

/// Every `%` must start an escape of two hex digits (the `percent-encoding` crate would pass
/// a stray `%` through unchanged).
fn check_escapes(s: &str) -> Result<(), InputError> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let ok = bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !ok {
                return Err(InputError::Encoding);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

fn percent_decode(s: &str) -> Result<String, InputError> {
    percent_encoding::percent_decode_str(s).decode_utf8().map(|c| c.into_owned()).map_err(|_| InputError::Encoding)
}

/// A path segment as API Gateway passes it, still percent-encoded (`auth0%7C…` → `auth0|…`),
/// strictly decoded: `+` stays `+`, a bad escape or bytes that are not UTF-8 are errors.
pub fn decode_path_segment(s: &str) -> Result<String, InputError> {
    check_escapes(s)?;
    percent_decode(s)
}

/// A path parameter of the route (`{id}`), still percent-encoded.
pub fn path_parameter(req: &Request, name: &str) -> Option<String> {
    req.path_parameters_ref().and_then(|p| p.first(name)).map(str::to_owned)
}

/// The query string's parameters.
pub fn query(req: &Request) -> Result<Params, InputError> {
    parse_urlencoded(req.uri().query().unwrap_or(""))
}

pub fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

fn media_type(req: &Request) -> String {
    header(req, "content-type").unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// Parameters from a JSON object or a form body, as OAuth endpoints accept both.
pub fn body_params(req: &Request) -> Result<Params, InputError> {
    let body = body_bytes(req);
    if body.len() > MAX_BODY {
        return Err(InputError::TooLarge(MAX_BODY));
    }
    match media_type(req).as_str() {
        "application/json" => json_params(body),
        "application/x-www-form-urlencoded" => {
            parse_urlencoded(std::str::from_utf8(body).map_err(|_| InputError::Encoding)?)
        }
        _ => Err(InputError::ContentType),
    }
}

fn json_params(body: &[u8]) -> Result<Params, InputError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| InputError::Json)?;
    let serde_json::Value::Object(map) = value else {
        return Err(InputError::Json);
    };
    let mut pairs = Vec::with_capacity(map.len());
    for (k, v) in map {
        let v = match v {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Null => continue,
            _ => return Err(InputError::Json),
        };
        pairs.push((k, v));
    }
    Params::from_pairs(pairs).map_err(|e| InputError::Duplicate(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencoded_is_strict() {
        let p = parse_urlencoded("scope=openid+offline_access&device=my%20device&x=%E2%9C%93").expect("valid");
        assert_eq!(p.get("scope"), Some("openid offline_access"));
        assert_eq!(p.get("device"), Some("my device"));
        assert_eq!(p.get("x"), Some("✓"));
        assert_eq!(parse_urlencoded("a=%zz"), Err(InputError::Encoding));
        assert_eq!(parse_urlencoded("a=%E2%9C"), Err(InputError::Encoding));
        assert_eq!(parse_urlencoded("a=%"), Err(InputError::Encoding));
        assert!(matches!(parse_urlencoded("a=1&a=2"), Err(InputError::Duplicate(_))));
        assert_eq!(parse_urlencoded("a=%2B").map(|p| p.get("a").map(str::to_owned)), Ok(Some("+".into())));
    }

    #[test]
    fn path_segments_are_strict() {
        assert_eq!(decode_path_segment("auth0%7Cabc").as_deref(), Ok("auth0|abc"));
        assert_eq!(decode_path_segment("a+b").as_deref(), Ok("a+b"));
        assert_eq!(decode_path_segment("bad%zz"), Err(InputError::Encoding));
        assert_eq!(decode_path_segment("%ff"), Err(InputError::Encoding));
        assert_eq!(decode_path_segment("%7"), Err(InputError::Encoding));
    }

    #[test]
    fn json_bodies() {
        let p = json_params(br#"{"a":"x","n":1,"b":true,"z":null}"#).expect("valid");
        assert_eq!(p.get("n"), Some("1"));
        assert_eq!(p.get("z"), None);
        assert_eq!(json_params(b"[1]"), Err(InputError::Json));
        assert_eq!(json_params(br#"{"a":{"b":1}}"#), Err(InputError::Json));
        assert_eq!(json_params(b"{"), Err(InputError::Json));
    }
}

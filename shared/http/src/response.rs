//! Writing responses: security headers, CORS, rate-limit headers, and `Retry-After` on every
//! 503. The error envelopes are each family's (`oauth`, `api_v2`, the dashboard handler).

use lambda_http::{Body, Response};
use rt_domain::ratelimit::RateStatus;
use serde::Serialize;

/// How long a client should wait after a 503 before it tries again, in seconds.
pub const RETRY_AFTER_SECS: &str = "1";

fn builder(status: u16) -> http::response::Builder {
    Response::builder().status(status)
}

/// Every response is finished here, so this is the one place that decides that a 503 (the
/// database is unavailable, whichever family answers) says when to come back.
fn finish(b: http::response::Builder, body: Body) -> Response<Body> {
    let mut r = b.body(body).unwrap_or_else(|_| {
        let mut r = Response::new(Body::Text(r#"{"error":"server_error"}"#.into()));
        *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        r
    });
    if r.status() == http::StatusCode::SERVICE_UNAVAILABLE && !r.headers().contains_key(http::header::RETRY_AFTER) {
        r.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from_static(RETRY_AFTER_SECS));
    }
    r
}

/// A JSON response. Token responses must not be cached (RFC 6749 §5.1).
pub fn json<T: Serialize>(status: u16, body: &T) -> Response<Body> {
    let text = serde_json::to_string(body).unwrap_or_else(|_| r#"{"error":"server_error"}"#.into());
    finish(
        builder(status)
            .header("content-type", "application/json; charset=utf-8")
            .header("cache-control", "no-store")
            .header("pragma", "no-cache")
            .header("x-content-type-options", "nosniff"),
        Body::Text(text),
    )
}

/// A JSON document that is already text (a published document such as `docs/openapi.json`),
/// cacheable as `cache_control` says.
pub fn json_document(status: u16, text: &str, cache_control: &str) -> Response<Body> {
    finish(
        builder(status)
            .header("content-type", "application/json; charset=utf-8")
            .header("cache-control", cache_control)
            .header("x-content-type-options", "nosniff"),
        Body::Text(text.to_owned()),
    )
}

/// `Strict-Transport-Security` for every answer of a deployed function: API Gateway serves
/// HTTPS only, so browsers should never try the issuer over plain HTTP (two years, subdomains
/// included). The local server (plain HTTP on loopback) does not send it.
pub const HSTS: &str = "max-age=63072000; includeSubDomains";

pub fn with_hsts(r: Response<Body>) -> Response<Body> {
    with_header(r, "strict-transport-security", HSTS)
}

pub fn with_header(mut r: Response<Body>, name: &'static str, value: &str) -> Response<Body> {
    if let Ok(v) = http::HeaderValue::from_str(value) {
        r.headers_mut().append(name, v);
    }
    r
}

/// `X-RateLimit-Limit/Remaining/Reset` (epoch seconds) and, when refused, `Retry-After`.
pub fn with_rate(mut r: Response<Body>, s: &RateStatus) -> Response<Body> {
    r = with_header(r, "x-ratelimit-limit", &s.limit.to_string());
    r = with_header(r, "x-ratelimit-remaining", &s.remaining.to_string());
    r = with_header(r, "x-ratelimit-reset", &s.reset.to_string());
    if let Some(after) = s.retry_after {
        r = with_header(r, "retry-after", &after.to_string());
    }
    r
}

/// CORS headers for an allowed `origin`.
pub fn with_cors(mut r: Response<Body>, origin: &str) -> Response<Body> {
    r = with_header(r, "access-control-allow-origin", origin);
    r = with_header(r, "vary", "Origin");
    r = with_header(
        r,
        "access-control-expose-headers",
        "X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After",
    );
    r
}

/// CORS for a browser caller: only the origins the client `client_id` registered may read the
/// answer (`Origin` not registered, no client, or no origin: the answer as it is).
pub async fn with_client_cors<S: rt_domain::ports::ClientStore>(
    store: &S,
    req: &lambda_http::Request,
    client_id: Option<&str>,
    r: Response<Body>,
) -> Response<Body> {
    let (Some(origin), Some(Ok(id))) =
        (crate::request::header(req, "origin"), client_id.map(rt_domain::ids::ClientId::parse))
    else {
        return r;
    };
    match store.get_client(&id, rt_domain::ports::Freshness::Cached).await {
        Ok(Some(c)) if c.allows_origin(origin) => with_cors(r, origin),
        _ => r,
    }
}

/// Answer to a CORS preflight.
pub fn preflight(origin: Option<&str>, methods: &str) -> Response<Body> {
    let mut r = finish(builder(204), Body::Empty);
    if let Some(o) = origin {
        r = with_header(r, "access-control-allow-origin", o);
        r = with_header(r, "vary", "Origin");
        r = with_header(r, "access-control-allow-methods", methods);
        r = with_header(r, "access-control-allow-headers", "Auth0-Client, Content-Type, Authorization");
        r = with_header(r, "access-control-max-age", "600");
    }
    r
}

/// A fresh nonce for a page's Content-Security-Policy.
pub fn nonce() -> String {
    rt_domain::random::alphanumeric(22)
}

/// An HTML page with a strict Content-Security-Policy. `nonce` authorises the page's one
/// inline `<style>`; `form_action` lists where its forms (and their redirects) may go.
pub fn html(status: u16, body: String, nonce: &str, form_action: &str) -> Response<Body> {
    let csp = format!(
        "default-src 'none'; style-src 'nonce-{nonce}'; img-src 'self' data:; form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    html_page(status, body, &csp, "no-referrer")
}

/// An HTML page with the given Content-Security-Policy and Referrer-Policy.
pub fn html_page(status: u16, body: String, csp: &str, referrer_policy: &str) -> Response<Body> {
    finish(
        builder(status)
            .header("content-type", "text/html; charset=utf-8")
            .header("cache-control", "no-store")
            .header("content-security-policy", csp)
            .header("x-frame-options", "DENY")
            .header("x-content-type-options", "nosniff")
            .header("referrer-policy", referrer_policy),
        Body::Text(body),
    )
}

/// A static file (the dashboard's stylesheet and script), cacheable for five minutes.
pub fn asset(content_type: &str, body: &str) -> Response<Body> {
    finish(
        builder(200)
            .header("content-type", content_type)
            .header("cache-control", "public, max-age=300")
            .header("x-content-type-options", "nosniff"),
        Body::Text(body.to_owned()),
    )
}

/// `204 No Content`.
pub fn no_content() -> Response<Body> {
    finish(builder(204), Body::Empty)
}

/// A 303 to `location`, after a form post or for a page that moved.
pub fn see_other(location: &str) -> Response<Body> {
    with_header(finish(builder(303).header("cache-control", "no-store"), Body::Empty), "location", location)
}

/// A 302 redirect that must not be cached.
pub fn redirect(location: &str) -> Response<Body> {
    let r =
        finish(builder(302).header("cache-control", "no-store").header("referrer-policy", "no-referrer"), Body::Empty);
    with_header(r, "location", location)
}

/// `url#k=v&…` with every value form-encoded.
/// `url` with `params` added to its query string (RFC 6749 §4.1.2: keeping the query the
/// callback was registered with).
pub fn with_query(url: &str, params: &[(&str, String)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}", ser.finish())
}

pub fn with_fragment(url: &str, params: &[(&str, String)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    format!("{url}#{}", ser.finish())
}

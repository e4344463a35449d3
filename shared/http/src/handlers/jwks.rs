//! `GET /.well-known/jwks.json`: the published public signing keys — current, next and
//! previous, never retired ones (CORS-enabled, cacheable for [`MAX_AGE_SECS`], the wait
//! between the steps of a key rotation: ARCHITECTURE.md).

use lambda_http::{Body, Request, Response};

use super::BoxFuture;
use crate::app::Published;
use crate::response::{json, with_header};

/// How long relying parties may cache the key set: a `next` key must be published at least
/// this long before it signs.
pub const MAX_AGE_SECS: u32 = 300;

/// Given the public keys (and the issuer, unused).
pub fn handle(keys: &Published, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        if req.method() != http::Method::GET {
            return super::method_not_allowed();
        }
        let mut r = json(200, &keys.verifier.jwks());
        r.headers_mut().remove("cache-control");
        r.headers_mut().remove("pragma");
        let r = with_header(r, "cache-control", &format!("public, max-age={MAX_AGE_SECS}"));
        with_header(r, "access-control-allow-origin", "*")
    })
}

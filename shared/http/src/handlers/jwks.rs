//! `GET /.well-known/jwks.json`: the public signing keys (CORS-enabled, cacheable).

use lambda_http::{Body, Request, Response};
use rt_jwt::VerifyingKey;

use super::BoxFuture;
use crate::response::{json, with_header};

/// Given the public key alone.
pub fn handle(key: &VerifyingKey, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        if req.method() != http::Method::GET {
            return super::method_not_allowed();
        }
        let mut r = json(200, &rt_jwt::jwks(key, &[]));
        r.headers_mut().remove("cache-control");
        r.headers_mut().remove("pragma");
        let r = with_header(r, "cache-control", "public, max-age=300");
        with_header(r, "access-control-allow-origin", "*")
    })
}

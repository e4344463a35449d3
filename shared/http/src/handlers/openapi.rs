//! `GET /openapi.json`: the OpenAPI 3.1 description of every public endpoint
//! (`docs/openapi.json`, compiled into the binary as it is in the repository; the parity test
//! `tests/api/openapi.rs` holds it to `template.yaml`'s routes and the fuzz test to the
//! handlers' answers).

use lambda_http::{Body, Request, Response};

use super::BoxFuture;
use crate::app::Base;
use crate::response::{json_document, with_header};

/// The document, byte for byte as `docs/openapi.json`.
pub const DOCUMENT: &str = include_str!("../../../../docs/openapi.json");

pub fn handle(_base: &Base, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        if req.method() != http::Method::GET {
            return super::method_not_allowed();
        }
        let r = json_document(200, DOCUMENT, "public, max-age=300");
        with_header(r, "access-control-allow-origin", "*")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_json() {
        let v: serde_json::Value = serde_json::from_str(DOCUMENT).expect("docs/openapi.json is JSON");
        assert_eq!(v.get("openapi").and_then(|s| s.as_str()), Some("3.1.0"));
        assert!(v.get("paths").and_then(|p| p.as_object()).is_some_and(|p| !p.is_empty()));
    }
}

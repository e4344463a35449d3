//! `GET /.well-known/openid-configuration`: OIDC discovery for what this service implements,
//! and only that: an endpoint, grant or response type is advertised by the change that serves
//! it (`flow::discovery_and_jwks` checks that every advertised endpoint is a route).

use lambda_http::{Body, Request, Response};
use serde_json::json;

use super::BoxFuture;
use crate::app::Published;
use crate::response::{json, with_header};

/// Given the issuer and the published keys: it offers the algorithms they sign.
pub fn handle(base: &Published, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        if req.method() != http::Method::GET {
            return super::method_not_allowed();
        }
        let iss = &base.issuer;
        let doc = json!({
            "issuer": iss,
            "authorization_endpoint": format!("{iss}authorize"),
            "token_endpoint": format!("{iss}oauth/token"),
            "revocation_endpoint": format!("{iss}oauth/revoke"),
            "userinfo_endpoint": format!("{iss}userinfo"),
            "jwks_uri": format!("{iss}.well-known/jwks.json"),
            "response_types_supported": ["code", "token", "id_token", "token id_token"],
            "response_modes_supported": ["query", "fragment"],
            "code_challenge_methods_supported": [rt_domain::code::S256],
            "grant_types_supported": [
                rt_domain::client::GRANT_AUTHORIZATION_CODE,
                rt_domain::client::GRANT_IMPLICIT,
                rt_domain::client::GRANT_JWT_BEARER,
                rt_domain::client::GRANT_CLIENT_CREDENTIALS,
                rt_domain::client::GRANT_REFRESH_TOKEN,
            ],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported":
                base.verifier.algorithms().iter().map(|a| a.as_str()).collect::<Vec<_>>(),
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "claims_supported": ["aud", "auth_time", "email", "email_verified", "exp", "iat", "iss", "name", "nickname", "sub", "updated_at"],
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
        });
        let r = json(200, &doc);
        with_header(r, "access-control-allow-origin", "*")
    })
}

//! `POST /oauth/revoke` (RFC 7009, Auth0 §7): revokes a refresh token's family. `200` with an
//! empty body whether or not there was such a token; `401` when the client cannot
//! authenticate.

use lambda_http::{Body, Request, Response};
use rt_domain::oauth_token as uc;
use rt_domain::token::RefreshToken;

use super::BoxFuture;
use super::oauth_token::{basic, client_auth};
use crate::app::App;
use crate::audit;
use crate::oauth::{OAuthError, error_response};
use crate::request;
use crate::response::with_client_cors;
use rt_domain::audit::{Actor, AuditEvent, Reason, Revocation};

pub fn handle(app: &App, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move { super::post_with_preflight(&req, post(app, &req)).await })
}

async fn post(app: &App, req: &Request) -> Response<Body> {
    let params = match request::body_params(req) {
        Ok(p) => p,
        Err(e) => return error_response(&e.into()),
    };
    let result = async {
        let auth = client_auth(basic(req)?, &params)?;
        let raw = params
            .get("token")
            .ok_or_else(|| OAuthError::InvalidRequest("Missing required parameter: token".into()))?;
        // Only refresh tokens are revocable here; any other token is "unknown" (RFC 7009 §2.2).
        let token = RefreshToken::parse(raw).ok();
        let id = token.as_ref().map(|t| t.id().to_string());
        let revoked = uc::revoke(&app.store, &app.authorize.rotation_keys, &auth, token).await?;
        tracing::info!(credential = id.as_deref().unwrap_or("-"), revoked = revoked.is_some(), "oauth/revoke");
        if let Some(cred) = revoked {
            let by = Revocation { reason: Reason::Token, by: Actor::Application(cred.client_id.clone()) };
            let e = AuditEvent::revoked(by, app.clock.now(), audit::source(req))
                .user(&cred.user_id, None)
                .device(Some(cred.device_name.as_str()))
                .credential(Some(&cred.id));
            let e = audit::with_client(&app.store, e, Some(cred.client_id.as_str())).await;
            audit::record(&app.store, &e).await;
        }
        Ok::<_, OAuthError>(auth.client_id)
    }
    .await;
    let (response, client_id) = match result {
        Ok(client_id) => (Response::builder().status(200).body(Body::Empty).unwrap_or_default(), Some(client_id)),
        Err(e) => (error_response(&e), params.get("client_id").map(str::to_owned)),
    };
    with_client_cors(&app.store, req, client_id.as_deref(), response).await
}

//! `POST /delegation` (legacy Auth0): a refresh token for a fresh id_token.

use lambda_http::{Body, Request, Response};
use rt_domain::delegation::{self as uc, DelegationError};
use rt_domain::ports::Freshness;
use serde::Serialize;

use super::BoxFuture;
use crate::app::App;
use crate::request;
use crate::response::{json, oauth_error, oauth_input_error, preflight, unavailable_oauth, with_cors, with_rate};

#[derive(Serialize)]
struct Success<'a> {
    token_type: &'static str,
    expires_in: i64,
    id_token: &'a str,
}

pub fn handle(app: &App, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        match *req.method() {
            http::Method::POST => post(app, &req).await,
            http::Method::OPTIONS => preflight(request::header(&req, "origin"), "POST, OPTIONS"),
            _ => super::method_not_allowed(),
        }
    })
}

fn error(e: &DelegationError) -> Response<Body> {
    let desc = e.to_string();
    match e {
        DelegationError::InvalidRequest(_) | DelegationError::UnsupportedGrantType | DelegationError::InvalidScope => {
            oauth_error(400, e.code(), &desc)
        }
        DelegationError::InvalidClient => oauth_error(401, e.code(), &desc),
        DelegationError::UnauthorizedClient | DelegationError::InvalidGrant(_) => oauth_error(403, e.code(), &desc),
        DelegationError::RateLimited(status) => with_rate(oauth_error(429, e.code(), &desc), status),
        DelegationError::Unavailable => unavailable_oauth(),
        DelegationError::Internal(detail) => {
            tracing::error!(error = %detail, "delegation: internal");
            oauth_error(500, e.code(), "Internal error.")
        }
    }
}

async fn post(app: &App, req: &Request) -> Response<Body> {
    let params = match request::body_params(req) {
        Ok(p) => p,
        Err(e) => return oauth_input_error(&e),
    };
    let parsed = match uc::parse_request(&params) {
        Ok(r) => r,
        Err(e) => return error(&e),
    };
    let now = app.clock.now();
    let ip = request::source_ip(req);
    let result = uc::delegate(&app.store, &app.keys, &app.delegation, &parsed, ip, now).await;
    let mut response = match &result {
        Ok(d) => with_rate(
            json(200, &Success { token_type: "Bearer", expires_in: d.expires_in, id_token: &d.id_token }),
            &d.rate,
        ),
        Err(e) => error(e),
    };
    if let Ok(d) = &result {
        tracing::info!(credential = %parsed.token.id(), remaining = d.rate.remaining, "delegation");
    } else if let Err(e) = &result {
        tracing::info!(credential = %parsed.token.id(), error = e.code(), "delegation refused");
    }
    // CORS: only origins the client registered may read the answer.
    if let Some(origin) = request::header(req, "origin") {
        use rt_domain::ports::ClientStore as _;
        if let Ok(Some(client)) = app.store.get_client(&parsed.client_id, Freshness::Cached).await
            && client.allows_origin(origin)
        {
            response = with_cors(response, origin);
        }
    }
    response
}

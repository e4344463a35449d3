//! `POST /oauth/token`: `client_credentials` (Management API tokens).

use base64::Engine as _;
use lambda_http::{Body, Request, Response};
use rt_domain::oauth_token::{self as uc, TokenError};
use serde::Serialize;

use super::BoxFuture;
use crate::app::App;
use crate::request;
use crate::response::{json, oauth_error, oauth_input_error, preflight, unavailable_oauth, with_header};

#[derive(Serialize)]
struct Success<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: i64,
    scope: &'a str,
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

/// `Authorization: Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
fn basic(req: &Request) -> Result<Option<(String, String)>, TokenError> {
    let Some(h) = request::header(req, "authorization") else { return Ok(None) };
    let bad = || TokenError::InvalidRequest("Malformed Authorization header.".into());
    let (scheme, value) = h.split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad());
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(value.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let params = request::parse_urlencoded(&format!("i={id}&s={secret}")).map_err(|_| bad())?;
    Ok(Some((params.get("i").unwrap_or("").to_owned(), params.get("s").unwrap_or("").to_owned())))
}

fn error(e: &TokenError) -> Response<Body> {
    match e {
        TokenError::Unavailable => unavailable_oauth(),
        TokenError::Internal(detail) => {
            tracing::error!(error = %detail, "oauth/token: internal");
            oauth_error(500, e.code(), "Internal error.")
        }
        TokenError::InvalidClient => {
            with_header(oauth_error(401, e.code(), &e.to_string()), "www-authenticate", "Basic realm=\"oauth\"")
        }
        _ => oauth_error(e.status(), e.code(), &e.to_string()),
    }
}

async fn post(app: &App, req: &Request) -> Response<Body> {
    let params = match request::body_params(req) {
        Ok(p) => p,
        Err(e) => return oauth_input_error(&e),
    };
    let result = async {
        let grant = params
            .get("grant_type")
            .ok_or_else(|| TokenError::InvalidRequest("Missing required parameter: grant_type".into()))?;
        if grant != rt_domain::client::GRANT_CLIENT_CREDENTIALS {
            return Err(TokenError::UnsupportedGrantType(grant.to_owned()));
        }
        let auth = uc::client_auth(basic(req)?, &params)?;
        uc::client_credentials(&app.store, &app.keys, &app.config.issuer, &auth, &params, app.clock.now()).await
    }
    .await;
    match result {
        Ok(t) => json(
            200,
            &Success { access_token: &t.access_token, token_type: "Bearer", expires_in: t.expires_in, scope: &t.scope },
        ),
        Err(e) => error(&e),
    }
}

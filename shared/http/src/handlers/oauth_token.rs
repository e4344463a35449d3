//! `POST /oauth/token`: `client_credentials` (Management API tokens).

use crate::params::Params;
use base64::Engine as _;
use lambda_http::{Body, Request, Response};
use rt_domain::oauth_token::{self as uc, ClientAuth};
use serde::Serialize;

use super::BoxFuture;
use crate::app::App;
use crate::oauth::{OAuthError, error_response};
use crate::request;
use crate::response::{json, preflight};

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
fn basic(req: &Request) -> Result<Option<(String, String)>, OAuthError> {
    let Some(h) = request::header(req, "authorization") else { return Ok(None) };
    let bad = || OAuthError::InvalidRequest("Malformed Authorization header.".into());
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

/// Who is calling: exactly one of Basic (`client_secret_basic`) or body credentials
/// (`client_secret_post`).
fn client_auth(basic: Option<(String, String)>, p: &Params) -> Result<ClientAuth, OAuthError> {
    match (basic, p.get("client_id")) {
        (Some((id, secret)), body_id) => {
            if body_id.is_some_and(|b| b != id) || p.get("client_secret").is_some() {
                return Err(OAuthError::InvalidRequest("Use one client authentication method, not two.".into()));
            }
            Ok(ClientAuth { client_id: id, client_secret: Some(secret.into()) })
        }
        (None, Some(id)) => Ok(ClientAuth {
            client_id: id.to_owned(),
            client_secret: p.get("client_secret").map(|s| s.to_owned().into()),
        }),
        (None, None) => Err(OAuthError::InvalidRequest("Missing required parameter: client_id".into())),
    }
}

async fn post(app: &App, req: &Request) -> Response<Body> {
    let result = async {
        let params = request::body_params(req)?;
        let grant = params
            .get("grant_type")
            .ok_or_else(|| OAuthError::InvalidRequest("Missing required parameter: grant_type".into()))?;
        if grant != rt_domain::client::GRANT_CLIENT_CREDENTIALS {
            return Err(OAuthError::UnsupportedGrantType(format!("Unsupported grant type: {grant}").into()));
        }
        let auth = client_auth(basic(req)?, &params)?;
        let asked = uc::ClientCredentialsRequest { audience: params.get("audience"), scope: params.get("scope") };
        Ok(uc::client_credentials(&app.store, &app.keys, &app.config.issuer, &auth, asked, app.clock.now()).await?)
    }
    .await;
    match result {
        Ok(t) => json(
            200,
            &Success { access_token: &t.access_token, token_type: "Bearer", expires_in: t.expires_in, scope: &t.scope },
        ),
        Err(e) => error_response(&e),
    }
}

//! `POST /oauth/token`: `client_credentials` (Management API tokens) and `refresh_token`
//! (with rotation for rotating clients).

use crate::params::Params;
use base64::Engine as _;
use lambda_http::{Body, Request, Response};
use rt_domain::client::TokenEndpointAuthMethod;
use rt_domain::delegation::INVALID_REFRESH_TOKEN;
use rt_domain::oauth_token::{self as uc, ClientAuth, TokenError};
use rt_domain::token::RefreshToken;
use secrecy::ExposeSecret as _;
use serde::Serialize;

use super::BoxFuture;
use super::delegation::exchange_event;
use crate::app::App;
use crate::audit;
use crate::oauth::{OAuthError, error_response};
use crate::request;
use crate::response::{json, with_client_cors, with_rate};
use rt_domain::audit::{AuditEvent, Grant};
use rt_domain::ids::DeviceCredentialId;

#[derive(Serialize)]
struct Success<'a> {
    access_token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    token_type: &'static str,
    expires_in: i64,
    scope: &'a str,
}

pub fn handle(app: &App, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move { super::post_with_preflight(&req, post(app, &req)).await })
}

/// `Authorization: Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
pub(super) fn basic(req: &Request) -> Result<Option<(String, String)>, OAuthError> {
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
pub(super) fn client_auth(basic: Option<(String, String)>, p: &Params) -> Result<ClientAuth, OAuthError> {
    match (basic, p.get("client_id")) {
        (Some((id, secret)), body_id) => {
            if body_id.is_some_and(|b| b != id) || p.get("client_secret").is_some() {
                return Err(OAuthError::InvalidRequest("Use one client authentication method, not two.".into()));
            }
            Ok(ClientAuth {
                client_id: id,
                client_secret: Some(secret.into()),
                method: TokenEndpointAuthMethod::ClientSecretBasic,
            })
        }
        (None, Some(id)) => {
            // `Params::get` treats an empty secret (node-auth0's default) as none.
            let secret = p.get("client_secret");
            let method = if secret.is_some() {
                TokenEndpointAuthMethod::ClientSecretPost
            } else {
                TokenEndpointAuthMethod::None
            };
            Ok(ClientAuth { client_id: id.to_owned(), client_secret: secret.map(|s| s.to_owned().into()), method })
        }
        (None, None) => Err(OAuthError::InvalidRequest("Missing required parameter: client_id".into())),
    }
}

async fn post(app: &App, req: &Request) -> Response<Body> {
    let params = match request::body_params(req) {
        Ok(p) => p,
        Err(e) => return error_response(&e.into()),
    };
    let response = match params.get("grant_type") {
        Some(rt_domain::client::GRANT_REFRESH_TOKEN) => refresh(app, req, &params).await,
        Some(rt_domain::client::GRANT_AUTHORIZATION_CODE) => {
            let r = authorization_code(app, req, &params).await;
            if let Err(e) = &r {
                failed(app, req, &params, Grant::Code, e).await;
            }
            r.unwrap_or_else(|e| error_response(&e))
        }
        _ => {
            let r = client_credentials(app, req, &params).await;
            if let Err(e) = &r {
                failed(app, req, &params, Grant::ClientCredentials, e).await;
            }
            r.unwrap_or_else(|e| error_response(&e))
        }
    };
    with_client_cors(&app.store, req, params.get("client_id"), response).await
}

/// The client a request authenticates as (HTTP Basic or the body), as sent.
fn client_id_of(req: &Request, params: &Params) -> Option<String> {
    basic(req).ok().flatten().map(|(id, _)| id).or_else(|| params.get("client_id").map(str::to_owned))
}

/// Records an `authorization_code` or `client_credentials` request its grant refused (one
/// refused by its wire format is not recorded).
async fn failed(app: &App, req: &Request, params: &Params, grant: Grant, e: &OAuthError) {
    let kind = match e {
        OAuthError::Token(t) => grant.of_token_error(t),
        _ => None,
    };
    if let Some(kind) = kind {
        let event = AuditEvent::new(kind, app.clock.now(), audit::source(req));
        let event = audit::with_client(&app.store, event, client_id_of(req, params).as_deref()).await;
        audit::record(&app.store, &event).await;
    }
}

async fn client_credentials(app: &App, req: &Request, params: &Params) -> Result<Response<Body>, OAuthError> {
    let grant = params
        .get("grant_type")
        .ok_or_else(|| OAuthError::InvalidRequest("Missing required parameter: grant_type".into()))?;
    if grant != rt_domain::client::GRANT_CLIENT_CREDENTIALS {
        return Err(OAuthError::UnsupportedGrantType(format!("Unsupported grant type: {grant}").into()));
    }
    let auth = client_auth(basic(req)?, params)?;
    let asked = uc::ClientCredentialsRequest { audience: params.get("audience"), scope: params.get("scope") };
    let now = app.clock.now();
    let t = uc::client_credentials(&app.store, &app.keys, &app.config.issuer, &auth, asked, now).await?;
    let e = AuditEvent::new(Grant::ClientCredentials.success(), now, audit::source(req))
        .describe(format!("Management API token issued (scope: {})", t.scope));
    let e = audit::with_client(&app.store, e, Some(&auth.client_id)).await;
    audit::record(&app.store, &e).await;
    let body = Success {
        access_token: &t.access_token,
        id_token: None,
        refresh_token: None,
        token_type: "Bearer",
        expires_in: t.expires_in,
        scope: &t.scope,
    };
    Ok(json(200, &body))
}

/// `grant_type=authorization_code` (with PKCE's `code_verifier`).
async fn authorization_code(app: &App, req: &Request, params: &Params) -> Result<Response<Body>, OAuthError> {
    let auth = client_auth(basic(req)?, params)?;
    let code =
        params.get("code").ok_or_else(|| OAuthError::InvalidRequest("Missing required parameter: code".into()))?;
    let asked =
        uc::CodeRequest { code, redirect_uri: params.get("redirect_uri"), code_verifier: params.get("code_verifier") };
    let settings = uc::RefreshSettings {
        exchange: &app.delegation,
        access_token_lifetime_secs: app.authorize.access_token_lifetime_secs,
        keys: &app.authorize.rotation_keys,
    };
    let now = app.clock.now();
    let t = uc::authorization_code(&app.store, &app.keys, &settings, &auth, asked, now).await?;
    tracing::info!(client = auth.client_id, credential = t.credential_id.as_deref().unwrap_or("-"), "code redeemed");
    let credential = t.credential_id.as_deref().and_then(|c| DeviceCredentialId::parse(c).ok());
    let mut e = AuditEvent::new(Grant::Code.success(), now, audit::source(req)).user(&t.user_id, None);
    if credential.is_some() {
        e = e.describe("Authorization code exchanged; refresh token issued").credential(credential.as_ref());
        e = e.device(t.device.as_deref());
    }
    let e = audit::with_client(&app.store, e, Some(&auth.client_id)).await;
    audit::record(&app.store, &e).await;
    let body = Success {
        access_token: &t.access_token,
        id_token: t.id_token.as_deref(),
        refresh_token: t.refresh_token.as_ref().map(|s| s.expose_secret()),
        token_type: "Bearer",
        expires_in: t.expires_in,
        scope: &t.scope.to_string(),
    };
    Ok(json(200, &body))
}

/// `grant_type=refresh_token`. Unrelated parameters (`redirect_uri` from spa-js, `device`)
/// are ignored.
async fn refresh(app: &App, req: &Request, params: &Params) -> Response<Body> {
    let result = async {
        let auth = client_auth(basic(req)?, params)?;
        let raw = params
            .get("refresh_token")
            .ok_or_else(|| OAuthError::InvalidRequest("Missing required parameter: refresh_token".into()))?;
        let token = RefreshToken::parse(raw).map_err(|_| TokenError::InvalidGrant(INVALID_REFRESH_TOKEN))?;
        let settings = uc::RefreshSettings {
            exchange: &app.delegation,
            access_token_lifetime_secs: app.authorize.access_token_lifetime_secs,
            keys: &app.authorize.rotation_keys,
        };
        let asked = uc::RefreshRequest { token, scope: params.get("scope") };
        let ip = request::source_ip(req);
        Ok::<_, OAuthError>(uc::refresh(&app.store, &app.keys, &settings, &auth, asked, ip, app.clock.now()).await?)
    }
    .await;
    // A request refused by its wire format (a missing parameter, a malformed token) never
    // reaches the store, and is not recorded; every outcome of the exchange itself is.
    let kind = match &result {
        Ok(_) => Some(Grant::Refresh.success()),
        Err(OAuthError::Token(e)) => Grant::Refresh.of_token_error(e),
        Err(_) => None,
    };
    let token = params.get("refresh_token").and_then(|t| RefreshToken::parse(t).ok());
    if let (Some(kind), Some(token)) = (kind, token) {
        let e = exchange_event(kind, req, &token, app.clock.now());
        let e = audit::with_client(&app.store, e, client_id_of(req, params).as_deref()).await;
        audit::record(&app.store, &e).await;
    }
    match result {
        Ok(t) => {
            let refresh_token = t.refresh_token.as_ref().map(|s| s.expose_secret());
            let body = Success {
                access_token: &t.access_token,
                id_token: t.id_token.as_deref(),
                refresh_token,
                token_type: "Bearer",
                expires_in: t.expires_in,
                scope: &t.scope.to_string(),
            };
            with_rate(json(200, &body), &t.rate)
        }
        Err(e) => {
            tracing::info!(error = e.status_and_code().1, "refresh refused");
            error_response(&e)
        }
    }
}

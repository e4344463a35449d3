//! `GET|POST /userinfo` (OIDC Core §5.3, Auth0 §8): the signed-in user's claims, for an access
//! token this service issued for it (`aud = {issuer}userinfo`), as far as its scope goes.

use lambda_http::{Body, Request, Response};
use rt_domain::claims::{AccessTokenClaims, IdTokenClaims};
use rt_domain::ids::UserId;
use rt_domain::oauth_token::TokenError;
use rt_domain::ports::UserStore as _;
use rt_domain::scope::Scope;
use serde::Serialize;

use super::BoxFuture;
use crate::app::Api;
use crate::oauth::{OAuthError, error_response};
use crate::request;
use crate::response::{json, preflight, with_client_cors, with_header};

pub fn handle(app: &Api, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        match *req.method() {
            http::Method::GET | http::Method::POST => get(app, &req).await,
            http::Method::OPTIONS => preflight(request::header(&req, "origin"), "GET, POST, OPTIONS"),
            _ => super::method_not_allowed(),
        }
    })
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: &'a str,
    error_description: &'a str,
}

/// RFC 6750 §3: `401` with `WWW-Authenticate: Bearer error="invalid_token"`.
fn invalid_token(description: &str) -> Response<Body> {
    let r = json(401, &Envelope { error: "invalid_token", error_description: description });
    with_header(r, "www-authenticate", "Bearer error=\"invalid_token\"")
}

async fn get(app: &Api, req: &Request) -> Response<Body> {
    let token = request::header(req, "authorization").and_then(|h| match h.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => Some(t.trim()),
        _ => None,
    });
    let Some(token) = token else { return invalid_token("Missing or malformed Authorization: Bearer header.") };
    let audience = format!("{}userinfo", app.issuer);
    let Ok(claims) = app.verifier.verify::<AccessTokenClaims>(token, &app.issuer, &audience, app.clock.now().secs())
    else {
        return invalid_token("The access token is invalid or expired.");
    };
    let (Ok(user_id), Ok(scope)) = (UserId::parse(&claims.sub), Scope::parse(&claims.scope)) else {
        return invalid_token("The access token is invalid or expired.");
    };
    let user = match app.store.get_user(&user_id).await {
        Ok(Some(u)) if !u.blocked => u,
        Ok(_) => return invalid_token("The user no longer exists or is blocked."),
        Err(e) => return error_response(&OAuthError::Token(TokenError::Store(e))),
    };
    // The claims an id_token of this scope carries about the user, and `sub`; none of the
    // token's own (`iss`, `aud`, times).
    let mut profile = IdTokenClaims::new(String::new(), user.id.to_string(), String::new(), 0, 0);
    rt_domain::authorize::add_profile_claims(&mut profile, &user, &scope);
    let mut body = serde_json::to_value(&profile).unwrap_or_default();
    if let Some(map) = body.as_object_mut() {
        for registered in ["iss", "aud", "iat", "exp"] {
            map.remove(registered);
        }
    }
    let r = json(200, &body);
    // CORS: the origins of the client the token was issued to.
    with_client_cors(&app.store, req, Some(&claims.azp), r).await
}

//! `GET /authorize` shows the login form; `POST /authorize` (the form) signs in and redirects
//! to the registered callback with the tokens in the fragment.

use crate::params::Params;
use askama::Template;
use lambda_http::{Body, Request, Response};
use rt_domain::authorize::{self as uc, AuthorizeRequest, LoginSuccess};
use secrecy::{ExposeSecret as _, SecretString};

use super::BoxFuture;
use crate::app::App;
use crate::audit;
use crate::oauth::{AuthorizeFailure, LoginAnswer, LoginFailure, authorize_error, callback, login_error};
use crate::request;
use crate::response::{html, nonce, redirect, with_header};
use crate::tx;
use rt_domain::audit::{AuditEvent, EventType};
use rt_domain::ids::DeviceCredentialId;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    nonce: &'a str,
    client_name: &'a str,
    action: &'a str,
    tx: &'a str,
    username: &'a str,
    error: Option<&'a str>,
    device: Option<&'a str>,
}

pub fn handle(app: &App, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        match *req.method() {
            http::Method::GET => get(app, &req).await,
            http::Method::POST => post(app, &req).await,
            _ => super::method_not_allowed(),
        }
    })
}

/// The callback's parameters: the code and `state` (RFC 6749 §4.1.2), or the issued tokens
/// (§4.2.2), where `token_type` and `expires_in` follow the access token, or the id_token
/// when there is none.
fn success_params(ok: &LoginSuccess) -> Vec<(&'static str, String)> {
    let mut f: Vec<(&'static str, String)> = Vec::new();
    if let Some(code) = &ok.code {
        f.push(("code", code.expose().to_owned()));
        if let Some(state) = &ok.state {
            f.push(("state", state.clone()));
        }
        return f;
    }
    if let Some((at, lifetime)) = &ok.access_token {
        f.push(("access_token", at.clone()));
        f.push(("token_type", "Bearer".into()));
        f.push(("expires_in", lifetime.to_string()));
    }
    if let Some((id, lifetime)) = &ok.id_token {
        f.push(("id_token", id.clone()));
        if ok.access_token.is_none() {
            f.push(("token_type", "Bearer".into()));
            f.push(("expires_in", lifetime.to_string()));
        }
    }
    if let Some(rt) = &ok.refresh_token {
        f.push(("refresh_token", rt.expose_secret().to_owned()));
    }
    f.push(("scope", ok.scope.to_string()));
    if let Some(state) = &ok.state {
        f.push(("state", state.clone()));
    }
    f
}

/// The origin of a redirect URI as a CSP source (`https://app.example.com`, `com.example.app:`),
/// or nothing when it cannot be expressed safely.
fn csp_source(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once(':')?;
    let scheme_ok = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok {
        return None;
    }
    if scheme != "http" && scheme != "https" {
        return Some(format!("{}:", scheme.to_ascii_lowercase()));
    }
    let authority = rest.strip_prefix("//")?.split(['/', '?', '#']).next()?;
    let authority_ok =
        !authority.is_empty() && authority.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
    authority_ok.then(|| format!("{scheme}://{authority}"))
}

struct Form<'a> {
    tx: &'a str,
    username: &'a str,
    error: Option<&'a str>,
}

fn login_page(status: u16, ar: &AuthorizeRequest, form: &Form<'_>) -> Response<Body> {
    let nonce = nonce();
    let page = LoginPage {
        nonce: &nonce,
        client_name: &ar.client.name,
        action: "/authorize",
        tx: form.tx,
        username: form.username,
        error: form.error,
        device: ar.device.as_ref().map(|d| d.as_str()),
    };
    let body = match page.render() {
        Ok(b) => b,
        Err(e) => return authorize_error(&AuthorizeFailure::Render(e)),
    };
    let form_action = match csp_source(&ar.redirect_uri) {
        Some(src) => format!("'self' {src}"),
        None => "'self'".to_owned(),
    };
    html(status, body, &nonce, &form_action)
}

fn login_cookie(app: &App, bind: &str, max_age: i64) -> String {
    let secure = if app.config.insecure_cookies() { "" } else { "; Secure" };
    let value = if max_age > 0 { bind } else { "" };
    format!("{}={value}; Path=/authorize; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}", tx::cookie_name(bind))
}

/// The parameters `/authorize` reads, from the query string (or the form's sealed copy of it),
/// and the browser's User-Agent.
fn authorize_params<'a>(p: &'a Params, req: &'a Request) -> uc::AuthorizeParams<'a> {
    uc::AuthorizeParams {
        code_challenge: p.get("code_challenge"),
        code_challenge_method: p.get("code_challenge_method"),
        user_agent: request::header(req, "user-agent"),
        client_id: p.get("client_id"),
        redirect_uri: p.get("redirect_uri"),
        response_type: p.get("response_type"),
        response_mode: p.get("response_mode"),
        scope: p.get("scope"),
        state: p.get("state"),
        nonce: p.get("nonce"),
        prompt: p.get("prompt"),
        device: p.get("device"),
    }
}

async fn get(app: &App, req: &Request) -> Response<Body> {
    let params = match request::query(req) {
        Ok(p) => p,
        Err(e) => return authorize_error(&e.into()),
    };
    let ar = match uc::validate(&app.store, &authorize_params(&params, req)).await {
        Ok(ar) => ar,
        Err(e) => return authorize_error(&e.into()),
    };
    let (sealed, bind) = tx::seal(&app.tx_key, &params, app.clock.now());
    let r = login_page(200, &ar, &Form { tx: &sealed, username: "", error: None });
    with_header(r, "set-cookie", &login_cookie(app, &bind, tx::TX_LIFETIME_SECS))
}

async fn post(app: &App, req: &Request) -> Response<Body> {
    let form: Params = match request::body_params(req) {
        Ok(p) => p,
        Err(e) => return authorize_error(&e.into()),
    };
    let Some(sealed) = form.get("tx") else {
        return authorize_error(&AuthorizeFailure::MissingTx);
    };
    let now = app.clock.now();
    let opened = match tx::open(&app.tx_key, sealed, |name| request::cookie(req, name).map(str::to_owned), now) {
        Ok(t) => t,
        Err(e) => return authorize_error(&e.into()),
    };
    // Re-validate: the client may have changed since the form was shown.
    let ar = match uc::validate(&app.store, &authorize_params(&opened.params, req)).await {
        Ok(ar) => ar,
        Err(e) => return authorize_error(&e.into()),
    };
    let username = form.get("username").unwrap_or("");
    let failed = |f: LoginFailure| match login_error(&f, &ar) {
        LoginAnswer::Form { status, message, retry_after } => {
            let r = login_page(status, &ar, &Form { tx: sealed, username, error: Some(&message) });
            match retry_after {
                Some(secs) => with_header(r, "retry-after", &secs.to_string()),
                None => r,
            }
        }
        LoginAnswer::Response(r) => r,
    };
    let password = match form.get("password") {
        Some(p) if !username.is_empty() => p,
        _ => return failed(LoginFailure::MissingCredentials),
    };
    let password = SecretString::from(password.to_owned());
    let ip = request::source_ip(req);
    match uc::login(&app.store, &app.keys, &app.authorize, &ar, username, &password, ip, now).await {
        Ok(ok) => {
            tracing::info!(client = %ar.client.id, credential = ok.credential_id.as_deref().unwrap_or("-"), "login");
            audit::record(&app.store, &signed_in(req, &ar, &ok, now)).await;
            let r = redirect(&callback(&ok.redirect_uri, ok.response_mode, &success_params(&ok)));
            with_header(r, "set-cookie", &login_cookie(app, &opened.bind, 0))
        }
        Err(e) => {
            audit::login_failed(&app.store, req, &e, Some(&ar.client), username, now).await;
            failed(e.into())
        }
    }
}

/// The audit event of a sign-in (`s`): the implicit flow's refresh token, when one was
/// issued, with its device; the code flow's device comes with the code's redemption.
fn signed_in(req: &Request, ar: &AuthorizeRequest, ok: &LoginSuccess, now: rt_domain::Timestamp) -> AuditEvent {
    let credential = ok.credential_id.as_deref().and_then(|c| DeviceCredentialId::parse(c).ok());
    let event = AuditEvent::new(EventType::SuccessLogin, now, audit::source(req))
        .client(&ar.client)
        .user(&ok.user_id, Some(&ok.email));
    match credential {
        Some(id) => event
            .describe("Successful login; refresh token issued")
            .device(ar.device.as_ref().map(|d| d.as_str()))
            .credential(Some(&id)),
        None => event,
    }
}

#[cfg(test)]
mod tests {
    use super::csp_source;

    #[test]
    fn csp_sources() {
        assert_eq!(csp_source("https://app.example.com/cb?x=1").as_deref(), Some("https://app.example.com"));
        assert_eq!(csp_source("http://127.0.0.1:3000/dev/callback").as_deref(), Some("http://127.0.0.1:3000"));
        assert_eq!(csp_source("com.example.app://callback").as_deref(), Some("com.example.app:"));
        assert_eq!(csp_source("https://a.com;script-src *").as_deref(), None);
        assert_eq!(csp_source("no-scheme"), None);
    }
}

//! `GET /authorize` shows the login form; `POST /authorize` (the form) signs in and redirects
//! to the registered callback with the tokens in the fragment.

use askama::Template;
use lambda_http::{Body, Request, Response};
use rt_domain::authorize::{self as uc, AuthorizeError, AuthorizeRequest, LoginError, RedirectError};
use rt_domain::params::Params;
use secrecy::SecretString;

use super::BoxFuture;
use crate::app::App;
use crate::request::{self, InputError};
use crate::response::{html, redirect, with_fragment, with_header};
use crate::tx;

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

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    nonce: &'a str,
    title: &'a str,
    message: &'a str,
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

fn nonce() -> String {
    rt_domain::random::alphanumeric(22)
}

fn error_page(status: u16, title: &str, message: &str) -> Response<Body> {
    let nonce = nonce();
    let body = ErrorPage { nonce: &nonce, title, message }.render().unwrap_or_else(|_| message.to_owned());
    let r = html(status, body, &nonce, "'none'");
    if status == 503 { with_header(r, "retry-after", "1") } else { r }
}

fn input_error_page(e: &InputError) -> Response<Body> {
    error_page(e.status(), "Invalid request", &e.to_string())
}

fn redirect_error(r: &RedirectError) -> Response<Body> {
    redirect(&with_fragment(&r.redirect_uri, &r.fragment()))
}

fn authorize_error(e: AuthorizeError) -> Response<Body> {
    match e {
        AuthorizeError::Page(p) => error_page(400, "Invalid request", &p.to_string()),
        AuthorizeError::Redirect(r) => redirect_error(&r),
        AuthorizeError::Store(s) => {
            tracing::error!(error = %s, "authorize: store");
            error_page(503, "Temporarily unavailable", "The service is temporarily unavailable. Try again in a moment.")
        }
    }
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
        Err(e) => {
            tracing::error!(error = %e, "login template");
            return error_page(500, "Error", "The login page could not be shown.");
        }
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

async fn get(app: &App, req: &Request) -> Response<Body> {
    let params = match request::query(req) {
        Ok(p) => p,
        Err(e) => return input_error_page(&e),
    };
    let ar = match uc::validate(&app.store, &params).await {
        Ok(ar) => ar,
        Err(e) => return authorize_error(e),
    };
    let (sealed, bind) = tx::seal(&app.tx_key, &params, app.clock.now());
    let r = login_page(200, &ar, &Form { tx: &sealed, username: "", error: None });
    with_header(r, "set-cookie", &login_cookie(app, &bind, tx::TX_LIFETIME_SECS))
}

async fn post(app: &App, req: &Request) -> Response<Body> {
    let form: Params = match request::body_params(req) {
        Ok(p) => p,
        Err(e) => return input_error_page(&e),
    };
    let Some(sealed) = form.get("tx") else {
        return error_page(400, "Invalid request", "The login form is incomplete. Start again from the application.");
    };
    let now = app.clock.now();
    let opened = match tx::open(&app.tx_key, sealed, |name| request::cookie(req, name).map(str::to_owned), now) {
        Ok(t) => t,
        Err(e) => return error_page(400, "Cannot sign in", &e.to_string()),
    };
    // Re-validate: the client may have changed since the form was shown.
    let ar = match uc::validate(&app.store, &opened.params).await {
        Ok(ar) => ar,
        Err(e) => return authorize_error(e),
    };
    let username = form.get("username").unwrap_or("");
    let again = |status: u16, msg: &str| login_page(status, &ar, &Form { tx: sealed, username, error: Some(msg) });
    let Some(password) = form.get("password") else {
        return again(400, "Enter your email and password.");
    };
    if username.is_empty() {
        return again(400, "Enter your email and password.");
    }
    let password = SecretString::from(password.to_owned());
    let ip = request::source_ip(req);
    match uc::login(&app.store, &app.keys, &app.authorize, &ar, username, &password, ip, now).await {
        Ok(ok) => {
            tracing::info!(client = %ar.client.id, credential = ok.credential_id.as_deref().unwrap_or("-"), "login");
            let r = redirect(&with_fragment(&ok.redirect_uri, &ok.fragment));
            with_header(r, "set-cookie", &login_cookie(app, &opened.bind, 0))
        }
        Err(LoginError::InvalidCredentials) => again(401, &LoginError::InvalidCredentials.to_string()),
        Err(e @ LoginError::Throttled { retry_after }) => {
            with_header(again(429, &e.to_string()), "retry-after", &retry_after.to_string())
        }
        Err(LoginError::Blocked) => redirect_error(&RedirectError {
            redirect_uri: ar.redirect_uri.clone(),
            error: "unauthorized",
            description: "user is blocked".into(),
            state: ar.state.clone(),
        }),
        Err(LoginError::Store(e)) => {
            tracing::error!(error = %e, "login: store");
            let r = again(503, "The service is temporarily unavailable. Try again in a moment.");
            with_header(r, "retry-after", "1")
        }
        Err(LoginError::Internal(e)) => {
            tracing::error!(error = %e, "login: internal");
            again(500, "Something went wrong. Try again.")
        }
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

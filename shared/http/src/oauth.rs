//! The OAuth family: every failure of `/delegation`, `/oauth/token` and `/authorize` becomes a
//! response here. The JSON endpoints answer RFC 6749 §5.2 `{"error","error_description"}`;
//! `/authorize` answers an error page while the callback is not trusted, the callback with
//! `#error=…` once it is (§4.2.2.1), or the login form again. Server-side failures are logged
//! here, once, and answered generically.

use std::borrow::Cow;

use askama::Template;
use lambda_http::{Body, Response};
use rt_domain::authorize::{AuthorizeError, AuthorizeRequest, LoginError, RedirectError, ResponseMode};
use rt_domain::delegation::DelegationError;
use rt_domain::oauth_token::TokenError;
use serde::Serialize;

use crate::failure;
use crate::request::InputError;
use crate::response::{html, json, nonce, redirect, with_fragment, with_header, with_query, with_rate};
use crate::tx::TxError;

const UNAVAILABLE: &str = "The service is temporarily unavailable, try again shortly.";

/// A failure of `/delegation` or `/oauth/token`.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The body could not be read.
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("Method not allowed.")]
    MethodNotAllowed,
    /// A parameter is missing or malformed.
    #[error("{0}")]
    InvalidRequest(Cow<'static, str>),
    #[error("{0}")]
    UnsupportedGrantType(Cow<'static, str>),
    #[error("{0}")]
    InvalidScope(Cow<'static, str>),
    #[error(transparent)]
    Delegation(#[from] DelegationError),
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// The status of a server-side failure with its RFC 6749 code.
fn server(status: u16) -> (u16, &'static str) {
    if status == 503 { (503, "temporarily_unavailable") } else { (500, "server_error") }
}

/// The status of an unreadable request, in every endpoint of this family.
fn input_status(e: &InputError) -> u16 {
    match e {
        InputError::TooLarge(_) => 413,
        InputError::ContentType => 415,
        InputError::Json | InputError::Encoding | InputError::Duplicate(_) => 400,
    }
}

impl OAuthError {
    /// The HTTP status and the RFC 6749 error code.
    pub fn status_and_code(&self) -> (u16, &'static str) {
        use DelegationError as D;
        use TokenError as T;
        match self {
            Self::Input(e) => (input_status(e), "invalid_request"),
            Self::MethodNotAllowed => (405, "invalid_request"),
            Self::InvalidRequest(_) => (400, "invalid_request"),
            Self::UnsupportedGrantType(_) => (400, "unsupported_grant_type"),
            Self::InvalidScope(_) => (400, "invalid_scope"),
            Self::Delegation(e) => match e {
                D::InvalidClient => (401, "invalid_client"),
                D::UnauthorizedClient => (403, "unauthorized_client"),
                D::InvalidGrant(_) => (403, "invalid_grant"),
                D::RateLimited(_) => (429, "too_many_requests"),
                D::Store(s) => server(failure::store_status(s)),
                D::Sign(_) => server(500),
            },
            Self::Token(e) => match e {
                T::InvalidRequest(_) => (400, "invalid_request"),
                T::InvalidClient => (401, "invalid_client"),
                T::UnauthorizedClient(_) => (403, "unauthorized_client"),
                T::AccessDenied(_) => (403, "access_denied"),
                T::InvalidScope(_) => (400, "invalid_scope"),
                T::InvalidGrant(_) | T::ReuseDetected => (403, "invalid_grant"),
                T::RateLimited(_) => (429, "too_many_requests"),
                T::Store(s) => server(failure::store_status(s)),
                T::Sign(_) => server(500),
            },
        }
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: &'a str,
    error_description: &'a str,
}

/// The answer of a JSON endpoint of this family to `e`.
pub fn error_response(e: &OAuthError) -> Response<Body> {
    let (status, code) = e.status_and_code();
    let description: Cow<'_, str> = match status {
        503 => UNAVAILABLE.into(),
        500.. => "Internal error.".into(),
        _ => e.to_string().into(),
    };
    if status >= 500 {
        failure::log("oauth", status, e);
    }
    let r = json(status, &Envelope { error: code, error_description: &description });
    match e {
        OAuthError::Delegation(DelegationError::RateLimited(rate))
        | OAuthError::Token(TokenError::RateLimited(rate)) => with_rate(r, rate),
        OAuthError::Token(TokenError::InvalidClient) => with_header(r, "www-authenticate", "Basic realm=\"oauth\""),
        _ => r,
    }
}

// ---------------------------------------------------------------- /authorize

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    nonce: &'a str,
    title: &'a str,
    message: &'a str,
}

/// A failure of `/authorize` before the login form can be shown (again).
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeFailure {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Request(#[from] AuthorizeError),
    /// The form was posted without its transaction.
    #[error("The login form is incomplete. Start again from the application.")]
    MissingTx,
    #[error(transparent)]
    Tx(#[from] TxError),
    #[error("cannot render the login page")]
    Render(#[source] askama::Error),
}

fn error_page(status: u16, title: &str, message: &str) -> Response<Body> {
    let nonce = nonce();
    let body = ErrorPage { nonce: &nonce, title, message }.render().unwrap_or_else(|_| message.to_owned());
    html(status, body, &nonce, "'none'")
}

/// The application's callback with the error in the query or the fragment, as its answer
/// would have been.
fn redirect_error(r: &RedirectError) -> Response<Body> {
    let mut params = vec![("error", r.error.to_owned()), ("error_description", r.description.clone())];
    if let Some(s) = &r.state {
        params.push(("state", s.clone()));
    }
    redirect(&callback(&r.redirect_uri, r.mode, &params))
}

/// The callback URL with `params` where `mode` puts them.
pub fn callback(redirect_uri: &str, mode: ResponseMode, params: &[(&str, String)]) -> String {
    match mode {
        ResponseMode::Query => with_query(redirect_uri, params),
        ResponseMode::Fragment => with_fragment(redirect_uri, params),
    }
}

/// The answer of `/authorize` to `f`: an error page (never a redirect to an unchecked
/// callback) or, once the client and callback are valid, the callback with the error.
pub fn authorize_error(f: &AuthorizeFailure) -> Response<Body> {
    let (status, title, message): (u16, &str, Cow<'_, str>) = match f {
        AuthorizeFailure::Request(AuthorizeError::Redirect(r)) => return redirect_error(r),
        AuthorizeFailure::Input(e) => (input_status(e), "Invalid request", f.to_string().into()),
        AuthorizeFailure::Request(AuthorizeError::Page(_)) | AuthorizeFailure::MissingTx => {
            (400, "Invalid request", f.to_string().into())
        }
        AuthorizeFailure::Tx(_) => (400, "Cannot sign in", f.to_string().into()),
        AuthorizeFailure::Request(AuthorizeError::Store(e)) if failure::store_status(e) == 503 => {
            (503, "Temporarily unavailable", "The service is temporarily unavailable. Try again in a moment.".into())
        }
        AuthorizeFailure::Request(AuthorizeError::Store(_)) => {
            (500, "Error", "Something went wrong. Try again.".into())
        }
        AuthorizeFailure::Render(_) => (500, "Error", "The login page could not be shown.".into()),
    };
    if status >= 500 {
        failure::log("authorize", status, f);
    }
    error_page(status, title, &message)
}

/// Why the posted login form did not sign the user in.
#[derive(Debug, thiserror::Error)]
pub enum LoginFailure {
    #[error("Enter your email and password.")]
    MissingCredentials,
    #[error(transparent)]
    Login(#[from] LoginError),
}

/// How `/authorize` answers a failed sign-in.
pub enum LoginAnswer {
    /// The login form again, with this status and message.
    Form { status: u16, message: Cow<'static, str>, retry_after: Option<i64> },
    /// Any other answer (the callback with an error).
    Response(Response<Body>),
}

pub fn login_error(f: &LoginFailure, ar: &AuthorizeRequest) -> LoginAnswer {
    let form = |status: u16, message: Cow<'static, str>| LoginAnswer::Form { status, message, retry_after: None };
    match f {
        LoginFailure::MissingCredentials => form(400, f.to_string().into()),
        LoginFailure::Login(e) => match e {
            LoginError::InvalidCredentials | LoginError::WrongPassword(_) | LoginError::NotAdministrator(_) => {
                form(401, e.to_string().into())
            }
            LoginError::Throttled { retry_after } => {
                LoginAnswer::Form { status: 429, message: e.to_string().into(), retry_after: Some(*retry_after) }
            }
            LoginError::Blocked => LoginAnswer::Response(redirect_error(&RedirectError {
                redirect_uri: ar.redirect_uri.clone(),
                mode: ar.response_mode,
                error: "unauthorized",
                description: "user is blocked".into(),
                state: ar.state.clone(),
            })),
            LoginError::Store(s) if failure::store_status(s) == 503 => {
                failure::log("authorize", 503, f);
                form(503, "The service is temporarily unavailable. Try again in a moment.".into())
            }
            LoginError::Store(_) | LoginError::Sign(_) => {
                failure::log("authorize", 500, f);
                form(500, "Something went wrong. Try again.".into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use rt_domain::authorize::PageError;

    use super::*;

    fn body(r: &Response<Body>) -> String {
        match r.body() {
            Body::Text(t) => t.clone(),
            _ => String::new(),
        }
    }

    #[test]
    fn every_503_says_when_to_come_back_and_hides_the_cause() {
        let e = OAuthError::Delegation(DelegationError::Store(rt_domain::ports::StoreError::unavailable("secret")));
        let r = error_response(&e);
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
        assert!(body(&r).contains("temporarily_unavailable") && !body(&r).contains("secret"));
        let e = OAuthError::Token(TokenError::Store(rt_domain::ports::StoreError::Corrupt("item".into())));
        let r = error_response(&e);
        assert_eq!(r.status(), 500);
        assert!(r.headers().get("retry-after").is_none());
        assert!(!body(&r).contains("item"));
        let page = authorize_error(&AuthorizeFailure::Request(AuthorizeError::Store(
            rt_domain::ports::StoreError::unavailable("x"),
        )));
        assert_eq!((page.status().as_u16(), page.headers().contains_key("retry-after")), (503, true));
    }

    #[test]
    fn client_errors_keep_their_description() {
        let r = error_response(&OAuthError::Token(TokenError::InvalidClient));
        assert_eq!(r.status(), 401);
        assert!(r.headers().contains_key("www-authenticate"));
        assert_eq!(error_response(&OAuthError::Input(InputError::TooLarge(crate::request::MAX_BODY))).status(), 413);
        assert_eq!(error_response(&OAuthError::Input(InputError::ContentType)).status(), 415);
        let page = authorize_error(&AuthorizeFailure::Request(AuthorizeError::Page(PageError::UnknownClient)));
        assert_eq!(page.status(), 400);
        assert!(body(&page).contains("Unknown client"));
    }
}

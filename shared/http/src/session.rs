//! Dashboard sessions: an HMAC-signed cookie (`HttpOnly; SameSite=Strict; Secure` but on a
//! loopback issuer), 8 hours at most, checked against the user on every request (still an
//! administrator, not blocked, not signed out since). Each session has its own CSRF token,
//! derived from the session id, carried by every state-changing form.

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rt_domain::clock::Timestamp;
use rt_domain::ids::UserId;
use rt_domain::ports::UserStore;
use rt_domain::token::constant_time_eq;
use rt_domain::user::User;
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::request;

pub const COOKIE: &str = "rt_admin";
pub const LOGIN_COOKIE: &str = "rt_admin_login";
pub const LIFETIME_SECS: i64 = 8 * 3600;

#[derive(Serialize, Deserialize)]
struct Payload {
    v: u8,
    uid: String,
    /// Issued at, milliseconds.
    iat: i64,
    /// Expiry, epoch seconds.
    exp: i64,
    sid: String,
}

pub struct Session {
    pub user: User,
    pub csrf: String,
}

fn key(k: &SecretBox<[u8; 32]>) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, k.expose_secret())
}

fn mac(k: &SecretBox<[u8; 32]>, data: &str) -> String {
    URL_SAFE_NO_PAD.encode(hmac::sign(&key(k), data.as_bytes()).as_ref())
}

/// The CSRF token of a session.
fn csrf_for(k: &SecretBox<[u8; 32]>, sid: &str) -> String {
    mac(k, &format!("csrf:{sid}"))
}

fn attributes(app: &App, max_age: i64) -> String {
    let secure = if app.config.insecure_cookies() { "" } else { "; Secure" };
    format!("Path=/dashboard; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

/// A new session for `user`: the `Set-Cookie` value and the session's CSRF token.
pub fn start(app: &App, user: &User, now: Timestamp) -> (String, String) {
    let payload = Payload {
        v: 1,
        uid: user.id.to_string(),
        iat: now.millis(),
        exp: now.secs() + LIFETIME_SECS,
        sid: URL_SAFE_NO_PAD.encode(rt_domain::random::bytes::<18>()),
    };
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap_or_default());
    let tag = mac(&app.session_key, &body);
    (format!("{COOKIE}={body}.{tag}; {}", attributes(app, LIFETIME_SECS)), csrf_for(&app.session_key, &payload.sid))
}

/// The `Set-Cookie` value that ends the session in this browser.
pub fn clear(app: &App) -> String {
    format!("{COOKIE}=; {}", attributes(app, 0))
}

/// The signed-in administrator, if the cookie is valid and the user still qualifies.
pub async fn current(app: &App, req: &lambda_http::Request) -> Option<Session> {
    let raw = request::cookie(req, COOKIE)?;
    let (body, tag) = raw.split_once('.')?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    hmac::verify(&key(&app.session_key), body.as_bytes(), &tag).ok()?;
    let payload: Payload = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
    let now = app.clock.now();
    if payload.v != 1 || now.secs() >= payload.exp {
        return None;
    }
    let uid = UserId::parse(&payload.uid).ok()?;
    let user = match app.store.get_user(&uid).await {
        Ok(Some(u)) => u,
        Ok(None) => return None,
        Err(e) => {
            // Answered as signed out (the sign-in page needs no database); logged once, here.
            tracing::error!(error = %crate::failure::Chain(&e), "dashboard session: store");
            return None;
        }
    };
    if !user.admin || user.blocked || payload.iat <= user.sessions_after.millis() {
        return None;
    }
    Some(Session { user, csrf: csrf_for(&app.session_key, &payload.sid) })
}

impl Session {
    /// Whether a posted form carries this session's CSRF token.
    pub fn csrf_ok(&self, posted: Option<&str>) -> bool {
        posted.is_some_and(|p| constant_time_eq(p.as_bytes(), self.csrf.as_bytes()))
    }
}

/// The sign-in form's double-submit value: a random cookie the form must repeat.
pub fn login_cookie(app: &App, value: &str) -> String {
    let secure = if app.config.insecure_cookies() { "" } else { "; Secure" };
    format!("{LOGIN_COOKIE}={value}; Path=/dashboard/login; Max-Age=1800; HttpOnly; SameSite=Strict{secure}")
}

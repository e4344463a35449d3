//! The administrators' dashboard under `/dashboard`: sign-in, Users, a user's Details and
//! Devices tabs, UNLINK (revoke a device's refresh tokens) and Revoke all. Server-rendered
//! (askama, escaping by default), strict CSP (no inline script or style), every state change a
//! POST with the session's CSRF token; works without JavaScript.

use crate::params::Params;
use askama::Template;
use lambda_http::{Body, Request, Response};
use rt_domain::audit::LogId;
use rt_domain::clock::Timestamp;
use rt_domain::dashboard;
use rt_domain::ids::UserId;
use rt_domain::management::logs;
use rt_domain::ports::{StoreError, UserStore, WalkCursor};
use rt_domain::user::User;
use secrecy::SecretString;

use super::BoxFuture;
use crate::api_v2::listing;
use crate::app::{App, Base};
use crate::audit;
use crate::failure;
use crate::request::{self, InputError};
use crate::response::{asset, html_page, see_other, with_header};
use crate::session::{self, Session};
use rt_domain::audit::{Actor, AuditEvent, EventType, Reason, Revocation};

const PER_PAGE: u32 = 20;
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'; connect-src 'self'";

fn html(status: u16, body: String) -> Response<Body> {
    html_page(status, body, CSP, "same-origin")
}

fn render<T: Template>(status: u16, page: &T) -> Response<Body> {
    match page.render() {
        Ok(body) => html(status, body),
        Err(e) => failure_page(&Failure::Render(e)),
    }
}

#[derive(Template)]
#[template(path = "dashboard/message.html")]
struct Message<'a> {
    title: &'a str,
    message: &'a str,
}

fn message(status: u16, title: &str, text: &str) -> Response<Body> {
    let body = Message { title, message: text }.render().unwrap_or_else(|_| text.to_owned());
    html(status, body)
}

/// Every way a dashboard request fails with a page of its own (the sign-in form answers its
/// own refusals).
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("Method not allowed.")]
    MethodNotAllowed,
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("This request did not come from the dashboard.")]
    NotFromDashboard,
    #[error("This request did not come from a signed-in dashboard page.")]
    NotFromSignedInPage,
    #[error("There is no such user.")]
    NoSuchUser,
    #[error("No such file.")]
    NoSuchFile,
    #[error("The search is longer than any e-mail address ({MAX_SEARCH_LEN} characters).")]
    SearchTooLong,
    #[error("This page link is not one the dashboard made.")]
    BadCheckpoint,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot render the page")]
    Render(#[source] askama::Error),
}

/// The dashboard family's one mapping: the status and page of each failure. Server-side
/// failures are logged here, once, and shown generically.
fn failure_page(f: &Failure) -> Response<Body> {
    let (status, title) = match f {
        Failure::MethodNotAllowed => (405, "Not allowed"),
        Failure::Input(_) | Failure::SearchTooLong | Failure::BadCheckpoint => (400, "Invalid request"),
        Failure::NotFromDashboard | Failure::NotFromSignedInPage => (403, "Forbidden"),
        Failure::NoSuchUser | Failure::NoSuchFile => (404, "Not found"),
        Failure::Store(e) if failure::store_status(e) == 503 => (503, "Temporarily unavailable"),
        Failure::Store(_) | Failure::Render(_) => (500, "Error"),
    };
    match status {
        503 => {
            failure::log("dashboard", status, f);
            message(status, title, "The service is temporarily unavailable. Try again in a moment.")
        }
        500.. => {
            failure::log("dashboard", status, f);
            message(status, title, "The page could not be shown.")
        }
        _ => message(status, title, &f.to_string()),
    }
}

fn store_error(e: StoreError) -> Response<Body> {
    failure_page(&Failure::Store(e))
}

/// `YYYY-MM-DD hh:mm UTC`.
fn date(t: Timestamp) -> String {
    utc(t, 16)
}

/// As [`date`], to the second.
fn date_seconds(t: Timestamp) -> String {
    utc(t, 19)
}

/// The date and the time of day of `t` in RFC 3339 up to byte `end` (16: minutes, 19: seconds).
fn utc(t: Timestamp, end: usize) -> String {
    let s = t.to_rfc3339();
    format!("{} {} UTC", s.get(..10).unwrap_or(""), s.get(11..end).unwrap_or(""))
}

fn user_href(id: &UserId) -> String {
    let enc: String = form_urlencoded::byte_serialize(id.as_str().as_bytes()).collect();
    format!("/dashboard/users/{enc}")
}

/// State-changing requests must come from our own pages: SameSite=Strict cookies, a CSRF
/// token, and (when the browser says) our own origin.
fn same_origin(app: &App, req: &Request) -> bool {
    match request::header(req, "origin") {
        None => true,
        Some(o) => app.config.issuer.trim_end_matches('/') == o,
    }
}

// ---------------------------------------------------------------- sign-in and sign-out

#[derive(Template)]
#[template(path = "dashboard/login.html")]
struct Login<'a> {
    login_csrf: &'a str,
    username: &'a str,
    error: Option<&'a str>,
}

/// `GET|POST /dashboard/login`, `POST /dashboard/logout`.
pub fn dashboard_login(app: &App, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        match (req.method().as_str(), req.uri().path()) {
            ("GET", _) => login_page(app, &req).await,
            ("POST", "/dashboard/logout") => logout(app, &req).await,
            ("POST", _) => login_post(app, &req).await,
            _ => failure_page(&Failure::MethodNotAllowed),
        }
    })
}

fn login_form(app: &App, status: u16, username: &str, error: Option<&str>) -> Response<Body> {
    let value = rt_domain::random::alphanumeric(32);
    let r = render(status, &Login { login_csrf: &value, username, error });
    with_header(r, "set-cookie", &session::login_cookie(app, &value))
}

async fn login_page(app: &App, req: &Request) -> Response<Body> {
    if session::current(app, req).await.is_some() {
        return see_other("/dashboard/users");
    }
    login_form(app, 200, "", None)
}

async fn login_post(app: &App, req: &Request) -> Response<Body> {
    let form = match request::body_params(req) {
        Ok(f) => f,
        Err(e) => return failure_page(&e.into()),
    };
    let posted = form.get("login_csrf");
    let cookie = request::cookie(req, session::LOGIN_COOKIE);
    let bound = matches!((posted, cookie), (Some(p), Some(c)) if rt_domain::token::constant_time_eq(p.as_bytes(), c.as_bytes()));
    if !bound || !same_origin(app, req) {
        return login_form(app, 403, "", Some("The sign-in form expired or came from another site. Try again."));
    }
    let username = form.get("username").unwrap_or("");
    let password = SecretString::from(form.get("password").unwrap_or("").to_owned());
    let now = app.clock.now();
    let signed_in =
        dashboard::sign_in(&app.store, &app.authorize, username, &password, request::source_ip(req), now).await;
    if let Err(e) = &signed_in {
        audit::login_failed(&app.store, req, e, None, username, now).await;
    }
    match signed_in {
        Ok(user) => {
            tracing::info!(admin = %user.id, "dashboard sign-in");
            let e = AuditEvent::new(EventType::SuccessLogin, now, audit::source(req))
                .describe("Successful login to the dashboard")
                .user(&user.id, Some(user.email.as_str()));
            audit::record(&app.store, &e).await;
            let r = see_other("/dashboard/users");
            with_header(r, "set-cookie", &session::start(app, &user, now).0)
        }
        Err(rt_domain::authorize::LoginError::Throttled { retry_after }) => {
            let r = login_form(app, 429, username, Some("Too many attempts. Try again later."));
            with_header(r, "retry-after", &retry_after.to_string())
        }
        Err(rt_domain::authorize::LoginError::Store(e)) => store_error(e),
        Err(_) => login_form(app, 401, username, Some("Wrong email or password, or not an administrator.")),
    }
}

async fn logout(app: &App, req: &Request) -> Response<Body> {
    let Some(s) = session::current(app, req).await else { return see_other("/dashboard/login") };
    let form = request::body_params(req).unwrap_or_default();
    if !s.csrf_ok(form.get("csrf")) || !same_origin(app, req) {
        return failure_page(&Failure::NotFromDashboard);
    }
    if let Err(e) = dashboard::sign_out(&app.store, &s.user.id, app.clock.now()).await {
        return store_error(e);
    }
    with_header(see_other("/dashboard/login"), "set-cookie", &session::clear(app))
}

// ---------------------------------------------------------------- users

struct UserRow {
    href: String,
    email: String,
    name: String,
    created: String,
    devices: u32,
}

#[derive(Template)]
#[template(path = "dashboard/users.html")]
struct Users<'a> {
    admin_email: &'a str,
    csrf: &'a str,
    q: &'a str,
    rows: Vec<UserRow>,
    total: u64,
    /// The first page's link, on a later page.
    first: Option<String>,
    next: Option<String>,
}

/// Longest search: an e-mail address's longest (RFC 5321); a longer prefix matches no one, and
/// DynamoDB refuses key conditions over 1 KiB.
const MAX_SEARCH_LEN: usize = 254;

/// `GET /dashboard`, `GET /dashboard/users`.
pub fn dashboard_users(app: &App, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        let Some(s) = session::current(app, &req).await else { return see_other("/dashboard/login") };
        if req.uri().path() == "/dashboard" {
            return see_other("/dashboard/users");
        }
        let q = request::query(&req).unwrap_or_default();
        users_page(app, &s, &q).await
    })
}

async fn users_page(app: &App, s: &Session, q: &Params) -> Response<Body> {
    let search = q.get("q").unwrap_or("").trim().to_lowercase();
    if search.len() > MAX_SEARCH_LEN {
        return failure_page(&Failure::SearchTooLong);
    }
    // Pages go by checkpoint (the last e-mail shown, opaque): a deep page costs what the
    // first does.
    let from = match q.get("from").filter(|f| !f.is_empty()) {
        None => None,
        Some(f) => match listing::decode_checkpoint(f) {
            Some(from) => Some(from),
            None => return failure_page(&Failure::BadCheckpoint),
        },
    };
    let prefix = (!search.is_empty()).then_some(search.as_str());
    let (batch, total) =
        match tokio::join!(app.store.walk_users(prefix, from.as_ref(), PER_PAGE), app.store.count_users(prefix)) {
            (Ok(b), Ok(t)) => (b, t),
            (Err(e), _) | (_, Err(e)) => return store_error(e),
        };
    // Each user item carries its live device count: no read per row.
    let rows = batch
        .items
        .iter()
        .map(|u| UserRow {
            href: user_href(&u.id),
            email: u.email.to_string(),
            name: u.name.clone(),
            created: date(u.created_at),
            devices: u.live_devices,
        })
        .collect();
    let link = |from: Option<&WalkCursor>| {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        if !search.is_empty() {
            ser.append_pair("q", &search);
        }
        if let Some(c) = from {
            ser.append_pair("from", &listing::checkpoint(c));
        }
        let query = ser.finish();
        if query.is_empty() { "/dashboard/users".to_owned() } else { format!("/dashboard/users?{query}") }
    };
    render(
        200,
        &Users {
            admin_email: s.user.email.as_str(),
            csrf: &s.csrf,
            q: &search,
            rows,
            total,
            first: from.is_some().then(|| link(None)),
            next: batch.next.as_ref().map(|c| link(Some(c))),
        },
    )
}

// ---------------------------------------------------------------- one user

struct DeviceRow {
    name: String,
    clients: String,
    tokens: usize,
    first_issued: String,
    last_used: String,
    /// When its last token expires, or "never".
    expires: String,
}

#[derive(Template)]
#[template(path = "dashboard/user.html")]
struct UserPage<'a> {
    admin_email: &'a str,
    csrf: &'a str,
    base_href: String,
    user_id: &'a str,
    user_email: &'a str,
    user_name: &'a str,
    email_verified: bool,
    created: String,
    updated: String,
    blocked: bool,
    admin: bool,
    devices_tab: bool,
    devices: Vec<DeviceRow>,
    token_total: usize,
    notice: Option<String>,
    history_tab: bool,
    history: Vec<HistoryRow>,
    /// The next (older) page of the History tab, when there may be one.
    older_href: Option<String>,
}

/// One row of the History tab: an audit event of the user.
struct HistoryRow {
    date: String,
    event: &'static str,
    code: &'static str,
    description: String,
    client: String,
    device: String,
    ip: String,
    user_agent: String,
}

/// Events on one page of the History tab.
const HISTORY_PER_PAGE: u32 = 25;

/// Which tab of a user's page.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tab {
    Details,
    Devices,
    History,
}

#[derive(Template)]
#[template(path = "dashboard/confirm.html")]
struct Confirm<'a> {
    admin_email: &'a str,
    csrf: &'a str,
    base_href: String,
    user_email: &'a str,
    device: &'a str,
    tokens: usize,
}

/// The user of a `/dashboard/users/{id}/…` path.
async fn path_user(app: &App, req: &Request) -> Result<User, Response<Body>> {
    let not_found = || failure_page(&Failure::NoSuchUser);
    let raw = request::path_parameter(req, "id").ok_or_else(not_found)?;
    let decoded = request::decode_path_segment(&raw).map_err(|_| not_found())?;
    let id = UserId::parse(&decoded).map_err(|_| not_found())?;
    match app.store.get_user(&id).await {
        Ok(Some(u)) => Ok(u),
        Ok(None) => Err(not_found()),
        Err(e) => Err(store_error(e)),
    }
}

/// `GET /dashboard/users/{id}`, `…/devices`, `…/devices/unlink` (the confirmation page).
pub fn dashboard_user(app: &App, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        let Some(s) = session::current(app, &req).await else { return see_other("/dashboard/login") };
        let user = match path_user(app, &req).await {
            Ok(u) => u,
            Err(r) => return r,
        };
        let path = req.uri().path().to_owned();
        let q = request::query(&req).unwrap_or_default();
        if path.ends_with("/devices/unlink") {
            confirm_page(app, &s, &user, q.get("device").unwrap_or("")).await
        } else if path.ends_with("/history") {
            user_page(app, &s, &user, Tab::History, &q).await
        } else if path.ends_with("/devices") {
            user_page(app, &s, &user, Tab::Devices, &q).await
        } else {
            user_page(app, &s, &user, Tab::Details, &q).await
        }
    })
}

/// The History tab's rows (newest first, `before` the cursor `q.before`) and the link to the
/// next page.
async fn history(app: &App, user: &User, q: &Params) -> Result<(Vec<HistoryRow>, Option<String>), StoreError> {
    let before = q.get("before").and_then(LogId::parse);
    let (events, next) = logs::history(&app.store, &user.id, before, HISTORY_PER_PAGE).await?;
    let or_dash = |v: Option<&str>| v.unwrap_or("—").to_owned();
    let rows = events
        .iter()
        .map(|e| HistoryRow {
            date: date_seconds(e.at()),
            event: e.kind.title(),
            code: e.kind.code(),
            description: e.description.clone(),
            client: or_dash(e.client_name.as_deref().or(e.client_id.as_ref().map(|c| c.as_str()))),
            device: or_dash(e.device.as_deref()),
            ip: or_dash(e.source.ip.as_deref()),
            user_agent: or_dash(e.source.user_agent.as_deref()),
        })
        .collect();
    let older = next.map(|id| format!("{}/history?before={id}", user_href(&user.id)));
    Ok((rows, older))
}

async fn user_page(app: &App, s: &Session, user: &User, tab: Tab, q: &Params) -> Response<Body> {
    let devices_tab = tab == Tab::Devices;
    let (history, older_href) = if tab == Tab::History {
        match history(app, user, q).await {
            Ok(h) => h,
            Err(e) => return store_error(e),
        }
    } else {
        (vec![], None)
    };
    let summaries = if devices_tab {
        match dashboard::devices(&app.store, &user.id, app.clock.now()).await {
            Ok(d) => d,
            Err(e) => return store_error(e),
        }
    } else {
        vec![]
    };
    let token_total = summaries.iter().map(|d| d.tokens).sum();
    let devices = summaries
        .into_iter()
        .map(|d| DeviceRow {
            name: d.device_name,
            clients: d.clients.join(", "),
            tokens: d.tokens,
            first_issued: date(d.first_issued),
            last_used: match d.last_used {
                Some((t, Some(ip))) => format!("{} from {ip}", date(t)),
                Some((t, None)) => date(t),
                None => "never".into(),
            },
            expires: d.expires_at.map_or_else(|| "never".into(), date),
        })
        .collect();
    let notice = match (q.get("unlinked"), q.get("revoked")) {
        (Some(device), _) => Some(format!("Unlinked {device}: its refresh tokens no longer work.")),
        (None, Some(n)) => Some(format!("Revoked all refresh tokens ({n}).")),
        _ => None,
    };
    render(
        200,
        &UserPage {
            admin_email: s.user.email.as_str(),
            csrf: &s.csrf,
            base_href: user_href(&user.id),
            user_id: user.id.as_str(),
            user_email: user.email.as_str(),
            user_name: &user.name,
            email_verified: user.email_verified,
            created: date(user.created_at),
            updated: date(user.updated_at),
            blocked: user.blocked,
            admin: user.admin,
            devices_tab,
            devices,
            token_total,
            notice,
            history_tab: tab == Tab::History,
            history,
            older_href,
        },
    )
}

async fn confirm_page(app: &App, s: &Session, user: &User, device: &str) -> Response<Body> {
    let devices = match dashboard::devices(&app.store, &user.id, app.clock.now()).await {
        Ok(d) => d,
        Err(e) => return store_error(e),
    };
    let Some(d) = devices.iter().find(|d| d.device_name == device) else {
        return see_other(&format!("{}/devices", user_href(&user.id)));
    };
    render(
        200,
        &Confirm {
            admin_email: s.user.email.as_str(),
            csrf: &s.csrf,
            base_href: user_href(&user.id),
            user_email: user.email.as_str(),
            device,
            tokens: d.tokens,
        },
    )
}

// ---------------------------------------------------------------- revocation

/// `POST /dashboard/users/{id}/devices/unlink` (form: `csrf`, `device`) and
/// `POST /dashboard/users/{id}/revoke-all` (form: `csrf`).
pub fn dashboard_revoke(app: &App, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        let forbidden = || failure_page(&Failure::NotFromSignedInPage);
        let Some(s) = session::current(app, &req).await else { return forbidden() };
        let form = match request::body_params(&req) {
            Ok(f) => f,
            Err(_) => return forbidden(),
        };
        if !s.csrf_ok(form.get("csrf")) || !same_origin(app, &req) {
            tracing::warn!(admin = %s.user.id, "dashboard: CSRF check failed");
            return forbidden();
        }
        let user = match path_user(app, &req).await {
            Ok(u) => u,
            Err(r) => return r,
        };
        let back = format!("{}/devices", user_href(&user.id));
        if req.uri().path().ends_with("/revoke-all") {
            return match dashboard::revoke_all(&app.store, &user.id, app.clock.now()).await {
                Ok(p) => {
                    tracing::info!(admin = %s.user.id, user = %user.id, revoked = p.deleted, "dashboard: revoke all");
                    let by = Revocation { reason: Reason::AllTokens, by: Actor::Dashboard(s.user.id.clone()) };
                    let e = AuditEvent::revoked(by, app.clock.now(), audit::source(&req))
                        .user(&user.id, Some(user.email.as_str()))
                        .count(p.deleted);
                    audit::record(&app.store, &e).await;
                    see_other(&format!("{back}?revoked={}", p.deleted))
                }
                Err(e) => store_error(e),
            };
        }
        let Some(device) = form.get("device") else { return see_other(&back) };
        match dashboard::unlink_device(&app.store, &user.id, device).await {
            Ok(n) => {
                tracing::info!(admin = %s.user.id, user = %user.id, revoked = n, "dashboard: unlink device");
                let by = Revocation { reason: Reason::Device, by: Actor::Dashboard(s.user.id.clone()) };
                let e = AuditEvent::revoked(by, app.clock.now(), audit::source(&req))
                    .user(&user.id, Some(user.email.as_str()))
                    .device(Some(device))
                    .count(n as u64);
                audit::record(&app.store, &e).await;
                let q: String =
                    form_urlencoded::Serializer::new(String::new()).append_pair("unlinked", device).finish();
                see_other(&format!("{back}?{q}"))
            }
            Err(e) => store_error(e),
        }
    })
}

// ---------------------------------------------------------------- assets

const CSS: &str = include_str!("../../assets/dashboard.css");
const JS: &str = include_str!("../../assets/dashboard.js");

/// `GET /dashboard/assets/{file}`: the stylesheet and the script.
pub fn dashboard_assets(_base: &Base, req: Request) -> BoxFuture<'_, Response<Body>> {
    Box::pin(async move {
        let file = request::path_parameter(&req, "file").unwrap_or_default();
        match file.as_str() {
            "dashboard.css" => asset("text/css; charset=utf-8", CSS),
            "dashboard.js" => asset("text/javascript; charset=utf-8", JS),
            _ => failure_page(&Failure::NoSuchFile),
        }
    })
}

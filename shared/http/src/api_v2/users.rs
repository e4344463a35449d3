//! `/api/v2/users`: Auth0's user object, the `q` search, the bodies of `POST` and `PATCH`.

use crate::params::Params;
use lambda_http::Request;
use rt_domain::audit::{Actor, AuditEvent, Reason, Revocation};
use rt_domain::clock::Timestamp;
use rt_domain::ids::{Email, USER_ID_PREFIX, UserId};
use rt_domain::management::users::{self, NewUser, UserPatch, UserQuery, UserSearch};
use rt_domain::management::{Entity, MgmtError, Page, Principal};
use rt_domain::password::MAX_PASSWORD_BYTES;
use rt_domain::ports::{AuditLog, CredentialStore, UserBatch, UserStore, WalkCursor};
use rt_domain::user::{CONNECTION, User};
use secrecy::SecretString;
use serde_json::{Value, json};

use super::body::Object;
use super::error::{ApiError, payload};
use super::listing::{Fields, checkpoint, paged, parse_checkpoint, parse_shallow_paging, select};
use super::{Reply, decode, json_body, path, query};
use crate::audit;

pub const FIELDS: &[&str] = &[
    "user_id",
    "email",
    "email_verified",
    "name",
    "nickname",
    "created_at",
    "updated_at",
    "identities",
    "blocked",
    "app_metadata",
    "user_metadata",
];
const MAX_NAME: usize = 300;
/// The properties `POST` and `PATCH` accept.
const WRITABLE: &[&str] = &[
    "connection",
    "email",
    "password",
    "name",
    "nickname",
    "email_verified",
    "verify_email",
    "blocked",
    "app_metadata",
];

/// Auth0's user object.
pub fn view(u: &User) -> Value {
    json!({
        "user_id": u.id.as_str(),
        "email": u.email.as_str(),
        "email_verified": u.email_verified,
        "name": u.name,
        "nickname": u.nickname,
        "created_at": u.created_at.to_rfc3339(),
        "updated_at": u.updated_at.to_rfc3339(),
        "identities": [{
            "connection": CONNECTION,
            "user_id": u.id.as_str().strip_prefix(USER_ID_PREFIX).unwrap_or(u.id.as_str()),
            "provider": "auth0",
            "isSocial": false,
        }],
        "blocked": u.blocked,
        "app_metadata": {"admin": u.admin},
        "user_metadata": {},
    })
}

/// `q`: `email:"a@b.c"`, `email:a@b.c`, `email:prefix*` or bare text (an e-mail prefix).
/// `(term, exact)`.
pub fn parse_query(q: &str) -> Result<(String, bool), ApiError> {
    let q = q.trim();
    let term = match q.split_once(':') {
        Some(("email", t)) => t.trim(),
        Some(_) => {
            return Err(ApiError::Query(
                "Only e-mail searches are supported: q=email:\"someone@example.com\" or q=email:some*".into(),
            ));
        }
        None => q,
    };
    let term = term.trim_matches('"').to_lowercase();
    if term.chars().any(|c| c.is_whitespace() || c.is_control()) || term.len() > 254 {
        return Err(ApiError::Query("Invalid search term".into()));
    }
    match term.strip_suffix('*') {
        Some(prefix) => Ok((prefix.to_owned(), false)),
        None if q.contains(':') => Ok((term, true)),
        None => Ok((term, false)),
    }
}

/// An id that cannot be a user's names no user.
fn parse_id(raw: &str) -> Result<UserId, ApiError> {
    UserId::parse(&decode(raw)?).map_err(|_| MgmtError::NotFound(Entity::User).into())
}

fn connection(o: &Object, required: bool) -> Result<(), ApiError> {
    match o.string("connection", 128)? {
        Some(c) if c == CONNECTION => Ok(()),
        Some(_) => Err(ApiError::Body("The connection does not exist.".into())),
        None if required => Err(payload("Missing required property: connection")),
        None => Ok(()),
    }
}

fn email(o: &Object) -> Result<Option<Email>, ApiError> {
    o.string("email", 254)?
        .map(|e| Email::parse(&e).map_err(|_| payload("Object didn't pass validation for format email")))
        .transpose()
}

fn password(o: &Object) -> Result<Option<SecretString>, ApiError> {
    Ok(o.string("password", MAX_PASSWORD_BYTES)?.map(SecretString::from))
}

/// `app_metadata.admin`, the only application metadata this service keeps.
fn admin(o: &Object) -> Result<Option<bool>, ApiError> {
    match o.object("app_metadata", &["admin"])? {
        Some(meta) => meta.bool("admin"),
        None => Ok(None),
    }
}

/// The body of `POST /users`.
fn new_user(body: Value) -> Result<NewUser, ApiError> {
    let o = Object::parse(body, WRITABLE)?;
    connection(&o, true)?;
    let email = email(&o)?.ok_or_else(|| payload("Missing required property: email"))?;
    let password = password(&o)?.ok_or_else(|| payload("Missing required property: password"))?;
    Ok(NewUser {
        email,
        password,
        name: o.string("name", MAX_NAME)?,
        nickname: o.string("nickname", MAX_NAME)?,
        email_verified: o.bool("email_verified")?.unwrap_or(false),
        admin: admin(&o)?.unwrap_or(false),
        blocked: o.bool("blocked")?.unwrap_or(false),
    })
}

/// The body of `PATCH /users/{id}`.
fn user_patch(body: Value) -> Result<UserPatch, ApiError> {
    let o = Object::parse(body, WRITABLE)?;
    connection(&o, false)?;
    let password = password(&o)?;
    let email = email(&o)?;
    Ok(UserPatch {
        name: o.string("name", MAX_NAME)?,
        nickname: o.string("nickname", MAX_NAME)?,
        email,
        password,
        email_verified: o.bool("email_verified")?,
        blocked: o.bool("blocked")?,
        admin: admin(&o)?,
    })
}

/// `GET /users`
pub async fn list<S: UserStore>(store: &S, who: Principal, req: &Request) -> Result<Reply, ApiError> {
    let p = query(req)?;
    who.require(users::READ)?;
    if let Some((from, take)) = parse_checkpoint(&p)? {
        return list_from(store, &who, &p, from, take).await;
    }
    let paging = parse_shallow_paging(&p)?;
    let fields = Fields::parse(&p, FIELDS)?;
    let nothing = || Ok(Reply::Json(200, paged("users", &Page::empty(paging), &fields, view)));
    // Every user is in the one connection; an exact search for what is no e-mail address
    // matches no one.
    let Some(search) = search(&p)? else { return nothing() };
    let page = users::list(store, &who, UserQuery { search, paging }).await?;
    Ok(Reply::Json(200, paged("users", &page, &fields, view)))
}

/// `q` as a search (`Some(None)`: every user); `None` when it can match no one (another
/// connection, an exact search for what is no e-mail address).
fn search(p: &Params) -> Result<Option<Option<UserSearch>>, ApiError> {
    if p.get("connection").is_some_and(|c| c != CONNECTION) {
        return Ok(None);
    }
    Ok(match p.get("q").map(parse_query).transpose()? {
        None => Some(None),
        Some((term, true)) => Email::parse(&term).ok().map(|email| Some(UserSearch::Exact(email))),
        Some((prefix, false)) => Some(Some(UserSearch::Prefix(prefix))),
    })
}

/// `GET /users?from=…&take=…`: a checkpoint page, `{"users": […], "next": "<checkpoint>"}`
/// (`next` absent on the last page), as Auth0's checkpoint-paginated listings answer.
async fn list_from<S: UserStore>(
    store: &S,
    who: &Principal,
    p: &Params,
    from: Option<WalkCursor>,
    take: u32,
) -> Result<Reply, ApiError> {
    let fields = Fields::parse(p, FIELDS)?;
    let batch = match search(p)? {
        Some(search) => users::list_from(store, who, search, from, take).await?,
        None => UserBatch::default(),
    };
    let mut out = serde_json::Map::new();
    out.insert("users".into(), batch.items.iter().map(|u| select(&fields, view(u))).collect());
    if let Some(next) = &batch.next {
        out.insert("next".into(), checkpoint(next).into());
    }
    Ok(Reply::Json(200, Value::Object(out)))
}

/// `GET /users/{id}`
pub async fn get<S: UserStore>(store: &S, who: Principal, req: &Request) -> Result<Reply, ApiError> {
    let (raw, p) = (path(req, "id")?, query(req)?);
    who.require(users::READ)?;
    let fields = Fields::parse(&p, FIELDS)?;
    let user = users::get(store, &who, &parse_id(&raw)?).await?;
    Ok(Reply::Json(200, select(&fields, view(&user))))
}

/// `POST /users`
pub async fn create<S: UserStore>(store: &S, who: Principal, req: &Request, now: Timestamp) -> Result<Reply, ApiError> {
    let body = json_body(req)?;
    who.require(users::CREATE)?;
    let user = users::create(store, &who, new_user(body)?, now).await?;
    Ok(Reply::Json(201, view(&user)))
}

/// `PATCH /users/{id}`
pub async fn update<S: UserStore + CredentialStore + AuditLog>(
    store: &S,
    who: Principal,
    req: &Request,
    now: Timestamp,
) -> Result<Reply, ApiError> {
    let (raw, body) = (path(req, "id")?, json_body(req)?);
    who.require(users::UPDATE)?;
    let id = parse_id(&raw)?;
    let patch = user_patch(body)?;
    // What revokes every refresh token of the user (the audit log says so).
    let reason = match (&patch.password, patch.blocked) {
        (Some(_), _) => Some(Reason::PasswordChange),
        (None, Some(true)) => Some(Reason::Block),
        _ => None,
    };
    let user = users::update(store, &who, &id, patch, now).await?;
    if let Some(reason) = reason {
        revoked(store, &who, req, reason, &user.id, Some(user.email.as_str()), now).await;
    }
    Ok(Reply::Json(200, view(&user)))
}

/// Records that every refresh token of `user` was revoked through the Management API.
async fn revoked<S: AuditLog>(
    store: &S,
    who: &Principal,
    req: &Request,
    reason: Reason,
    user: &UserId,
    email: Option<&str>,
    now: Timestamp,
) {
    let by = Revocation { reason, by: Actor::ManagementApi(who.client_id.clone()) };
    audit::record(store, &AuditEvent::revoked(by, now, audit::source(req)).user(user, email)).await;
}

/// `DELETE /users/{id}`: 204 even when there is no such user, as Auth0.
pub async fn delete<S: UserStore + CredentialStore + AuditLog>(
    store: &S,
    who: Principal,
    req: &Request,
    now: Timestamp,
) -> Result<Reply, ApiError> {
    let raw = path(req, "id")?;
    who.require(users::DELETE)?;
    if let Ok(id) = UserId::parse(&decode(&raw)?) {
        users::delete(store, &who, &id).await?;
        revoked(store, &who, req, Reason::UserDeleted, &id, None, now).await;
    }
    Ok(Reply::NoContent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries() {
        assert_eq!(parse_query("email:\"A@B.co\"").ok(), Some(("a@b.co".into(), true)));
        assert_eq!(parse_query("email:ali*").ok(), Some(("ali".into(), false)));
        assert_eq!(parse_query("ali").ok(), Some(("ali".into(), false)));
        assert!(parse_query("name:x").is_err());
        assert!(parse_query("a b").is_err());
    }

    #[test]
    fn bodies() {
        let ok = json!({"connection": CONNECTION, "email": "A@Example.com", "password": "Sup3r-secret",
                        "app_metadata": {"admin": true}});
        let u = new_user(ok).expect("valid");
        assert_eq!((u.email.as_str(), u.admin, u.name), ("a@example.com", true, None));
        let missing = new_user(json!({"email": "a@example.com", "password": "x"})).expect_err("no connection");
        assert!(missing.to_string().contains("connection"));
        let meta = user_patch(json!({"app_metadata": {"role": "x"}})).expect_err("unknown metadata");
        assert!(meta.to_string().contains("Additional properties"));
        let p = user_patch(json!({"name": "N", "blocked": true})).expect("valid");
        assert_eq!((p.name.as_deref(), p.blocked, p.password.is_none()), (Some("N"), Some(true), true));
    }
}

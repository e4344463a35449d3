//! `/api/v2/users`: list (with an e-mail search), get, create, update, delete. A password
//! change, a block or a deletion revokes every refresh token of the user in one write (the
//! exchange checks the user item); the token records are then removed.

use secrecy::SecretString;
use serde_json::{Map, Value, json};

use super::{
    Fields, MgmtError, PURGE_BUDGET, Principal, body_object, only_known, opt_bool, opt_string, paged, parse_bool,
    parse_page, path_param, select,
};
use crate::clock::Timestamp;
use crate::ids::{Email, USER_ID_PREFIX, UserId};
use crate::params::Params;
use crate::password::{self, PasswordHash};
use crate::ports::{CreateUser, CredentialStore, UpdateUser, UserStore};
use crate::user::{CONNECTION, User};

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
pub const READ: &[&str] = &["read:users"];
pub const CREATE: &[&str] = &["create:users"];
pub const UPDATE: &[&str] = &["update:users"];
pub const DELETE: &[&str] = &["delete:users"];
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

fn not_found() -> MgmtError {
    MgmtError::not_found("The user does not exist.", "inexistent_user")
}

fn parse_id(raw: &str) -> Result<UserId, MgmtError> {
    UserId::parse(&path_param(raw)?).map_err(|_| not_found())
}

/// `q`: `email:"a@b.c"`, `email:a@b.c`, `email:prefix*` or bare text (an e-mail prefix).
pub fn parse_query(q: &str) -> Result<(String, bool), MgmtError> {
    let q = q.trim();
    let term = match q.split_once(':') {
        Some(("email", t)) => t.trim(),
        Some(_) => {
            return Err(MgmtError::bad_query(
                "Only e-mail searches are supported: q=email:\"someone@example.com\" or q=email:some*",
            ));
        }
        None => q,
    };
    let term = term.trim_matches('"').to_lowercase();
    if term.chars().any(|c| c.is_whitespace() || c.is_control()) || term.len() > 254 {
        return Err(MgmtError::bad_query("Invalid search term"));
    }
    match term.strip_suffix('*') {
        Some(prefix) => Ok((prefix.to_owned(), false)),
        None if q.contains(':') => Ok((term, true)),
        None => Ok((term, false)),
    }
}

pub async fn list<S: UserStore>(store: &S, who: &Principal, p: &Params) -> Result<Value, MgmtError> {
    who.require(READ)?;
    let page = parse_page(p)?;
    let totals = parse_bool(p, "include_totals")?.unwrap_or(false);
    let fields = Fields::parse(p, FIELDS)?;
    if let Some(c) = p.get("connection")
        && c != CONNECTION
    {
        return Ok(paged("users", vec![], page, totals.then_some(0)));
    }
    let search = p.get("q").map(parse_query).transpose()?;
    let (items, total) = match &search {
        Some((email, true)) => {
            let found = match Email::parse(email) {
                Ok(e) => store.get_user_by_email(&e).await?,
                Err(_) => None,
            };
            let all: Vec<User> = found.into_iter().collect();
            let total = all.len() as u64;
            let skip = usize::try_from(page.skip()).unwrap_or(usize::MAX);
            (all.into_iter().skip(skip).take(page.per_page as usize).collect::<Vec<_>>(), totals.then_some(total))
        }
        Some((prefix, false)) => {
            let prefix = (!prefix.is_empty()).then_some(prefix.as_str());
            let items = store.list_users(prefix, page).await?;
            let total = if totals { Some(store.count_users(prefix).await?) } else { None };
            (items, total)
        }
        None => {
            let items = store.list_users(None, page).await?;
            let total = if totals { Some(store.count_users(None).await?) } else { None };
            (items, total)
        }
    };
    Ok(paged("users", items.iter().map(|u| select(&fields, view(u))).collect(), page, total))
}

pub async fn get<S: UserStore>(store: &S, who: &Principal, raw_id: &str, p: &Params) -> Result<Value, MgmtError> {
    who.require(READ)?;
    let fields = Fields::parse(p, FIELDS)?;
    let id = parse_id(raw_id)?;
    let user = store.get_user(&id).await?.ok_or_else(not_found)?;
    Ok(select(&fields, view(&user)))
}

fn admin_flag(m: &Map<String, Value>) -> Result<Option<bool>, MgmtError> {
    match m.get("app_metadata") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(meta)) => {
            only_known(meta, &["admin"])?;
            opt_bool(meta, "admin")
        }
        Some(_) => Err(MgmtError::bad_request("Payload validation error: 'app_metadata' must be an object")),
    }
}

fn connection(m: &Map<String, Value>, required: bool) -> Result<(), MgmtError> {
    match opt_string(m, "connection", 128)? {
        Some(c) if c == CONNECTION => Ok(()),
        Some(_) => Err(MgmtError::bad_request("The connection does not exist.")),
        None if required => {
            Err(MgmtError::bad_request("Payload validation error: Missing required property: connection"))
        }
        None => Ok(()),
    }
}

fn new_password(m: &Map<String, Value>) -> Result<Option<PasswordHash>, MgmtError> {
    let Some(pw) = opt_string(m, "password", password::MAX_PASSWORD_BYTES)? else { return Ok(None) };
    let pw = SecretString::from(pw);
    password::check_policy(&pw)
        .map_err(|e| MgmtError::new(400, format!("PasswordStrengthError: {e}"), Some("invalid_body")))?;
    PasswordHash::create(&pw).map(Some).map_err(|e| MgmtError::new(500, e.to_string(), None))
}

fn parse_email(m: &Map<String, Value>) -> Result<Option<Email>, MgmtError> {
    opt_string(m, "email", 254)?
        .map(|e| {
            Email::parse(&e).map_err(|_| {
                MgmtError::bad_request("Payload validation error: Object didn't pass validation for format email")
            })
        })
        .transpose()
}

pub async fn create<S: UserStore>(store: &S, who: &Principal, body: Value, now: Timestamp) -> Result<Value, MgmtError> {
    who.require(CREATE)?;
    let m = body_object(body)?;
    only_known(&m, WRITABLE)?;
    connection(&m, true)?;
    let email = parse_email(&m)?
        .ok_or_else(|| MgmtError::bad_request("Payload validation error: Missing required property: email"))?;
    let password_hash = new_password(&m)?
        .ok_or_else(|| MgmtError::bad_request("Payload validation error: Missing required property: password"))?;
    let local = email.as_str().split('@').next().unwrap_or("").to_owned();
    let user = User {
        id: UserId::generate(),
        name: opt_string(&m, "name", MAX_NAME)?.unwrap_or_else(|| email.to_string()),
        nickname: opt_string(&m, "nickname", MAX_NAME)?.unwrap_or(local),
        email,
        email_verified: opt_bool(&m, "email_verified")?.unwrap_or(false),
        password_hash,
        rev: 0,
        admin: admin_flag(&m)?.unwrap_or(false),
        blocked: opt_bool(&m, "blocked")?.unwrap_or(false),
        created_at: now,
        updated_at: now,
        sessions_after: Timestamp::from_millis(0),
        live_devices: 0,
    };
    match store.create_user(&user).await? {
        CreateUser::Created => Ok(view(&user)),
        CreateUser::EmailTaken => Err(MgmtError::conflict("The user already exists.", "auth0_idp_error")),
    }
}

pub async fn update<S: UserStore + CredentialStore>(
    store: &S,
    who: &Principal,
    raw_id: &str,
    body: Value,
    now: Timestamp,
) -> Result<Value, MgmtError> {
    who.require(UPDATE)?;
    let id = parse_id(raw_id)?;
    let m = body_object(body)?;
    only_known(&m, WRITABLE)?;
    connection(&m, false)?;
    let password = new_password(&m)?;
    let email = parse_email(&m)?;
    for _ in 0..3 {
        let old = store.get_user(&id).await?.ok_or_else(not_found)?;
        let mut new = old.clone();
        if let Some(name) = opt_string(&m, "name", MAX_NAME)? {
            new.name = name;
        }
        if let Some(nick) = opt_string(&m, "nickname", MAX_NAME)? {
            new.nickname = nick;
        }
        if let Some(e) = &email
            && e != &old.email
        {
            new.email = e.clone();
            new.email_verified = false;
        }
        if let Some(v) = opt_bool(&m, "email_verified")? {
            new.email_verified = v;
        }
        if let Some(b) = opt_bool(&m, "blocked")? {
            new.blocked = b;
        }
        if let Some(a) = admin_flag(&m)? {
            new.admin = a;
        }
        if let Some(h) = &password {
            new.password_hash = h.clone();
            // Every refresh token was issued under the old revision: all stop working now.
            new.rev = old.rev.saturating_add(1);
        }
        new.updated_at = now.max(old.updated_at);
        match store.update_user(&old, &new).await? {
            UpdateUser::Updated => {
                if new.rev != old.rev {
                    let purge = store.purge_user_credentials(&id, Some(new.rev), PURGE_BUDGET).await?;
                    tracing::info!(user = %id, deleted = purge.deleted, complete = purge.complete, "password change revoked refresh tokens");
                }
                return Ok(view(&new));
            }
            UpdateUser::EmailTaken => {
                return Err(MgmtError::conflict("The specified new email already exists", "email_conflict"));
            }
            UpdateUser::Conflict => continue,
        }
    }
    Err(MgmtError::conflict("The user was changed concurrently; try again.", "concurrent_update"))
}

/// Revokes every refresh token of the user at once by moving it to a new credential revision
/// (one conditional write), then removes the records of the older revisions.
pub async fn bump_revision<S: UserStore + CredentialStore>(
    store: &S,
    id: &UserId,
    now: Timestamp,
) -> Result<crate::ports::Purge, crate::ports::StoreError> {
    for _ in 0..3 {
        let Some(old) = store.get_user(id).await? else {
            // No user: its tokens are dead already; remove what is left of them.
            return store.purge_user_credentials(id, None, PURGE_BUDGET).await;
        };
        let mut new = old.clone();
        new.rev = old.rev.saturating_add(1);
        new.updated_at = now.max(old.updated_at);
        if store.update_user(&old, &new).await? == UpdateUser::Updated {
            return store.purge_user_credentials(id, Some(new.rev), PURGE_BUDGET).await;
        }
    }
    Err(crate::ports::StoreError::unavailable("the user kept changing; try again"))
}

/// Deletes the user (204 even when absent, as Auth0) and revokes all of its refresh tokens.
pub async fn delete<S: UserStore + CredentialStore>(store: &S, who: &Principal, raw_id: &str) -> Result<(), MgmtError> {
    who.require(DELETE)?;
    let Ok(id) = UserId::parse(&path_param(raw_id)?) else { return Ok(()) };
    if let Some(user) = store.get_user(&id).await? {
        store.delete_user(&user).await?;
    }
    // Re-runnable: also finishes the cleanup of an earlier, interrupted deletion.
    let purge = store.purge_user_credentials(&id, None, PURGE_BUDGET).await?;
    tracing::info!(user = %id, deleted = purge.deleted, complete = purge.complete, "user deleted");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_query;

    #[test]
    fn queries() {
        assert_eq!(parse_query("email:\"A@B.co\"").ok(), Some(("a@b.co".into(), true)));
        assert_eq!(parse_query("email:ali*").ok(), Some(("ali".into(), false)));
        assert_eq!(parse_query("ali").ok(), Some(("ali".into(), false)));
        assert!(parse_query("name:x").is_err());
        assert!(parse_query("a b").is_err());
    }
}

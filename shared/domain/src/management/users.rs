//! Users: list (with an e-mail search), get, create, update, delete. A password change, a
//! block or a deletion revokes every refresh token of the user in one write (the exchange
//! checks the user item); the token records are then removed.

use secrecy::SecretString;

use super::{Conflict, Entity, MgmtError, PURGE_BUDGET, Page, Paging, Principal};
use crate::clock::Timestamp;
use crate::ids::{Email, UserId};
use crate::password::{self, PasswordError, PasswordHash};
use crate::ports::{CreateUser, CredentialStore, Purge, StoreError, UpdateUser, UserBatch, UserStore, WalkCursor};
use crate::user::User;

pub const READ: &[&str] = &["read:users"];
pub const CREATE: &[&str] = &["create:users"];
pub const UPDATE: &[&str] = &["update:users"];
pub const DELETE: &[&str] = &["delete:users"];

/// Which users to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserSearch {
    /// The user with exactly this e-mail address.
    Exact(Email),
    /// Users whose (lower-case) e-mail address starts with this; empty: every user.
    Prefix(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserQuery {
    /// `None`: every user.
    pub search: Option<UserSearch>,
    pub paging: Paging,
}

/// A new user. Unset names default to the e-mail address and its local part.
#[derive(Debug)]
pub struct NewUser {
    pub email: Email,
    pub password: SecretString,
    pub name: Option<String>,
    pub nickname: Option<String>,
    pub email_verified: bool,
    pub blocked: bool,
    pub admin: bool,
}

/// Changes to a user; `None` leaves a property as it is. A new password revokes every
/// refresh token of the user; a new e-mail address is unverified unless `email_verified` says
/// otherwise.
#[derive(Debug, Default)]
pub struct UserPatch {
    pub email: Option<Email>,
    pub password: Option<SecretString>,
    pub name: Option<String>,
    pub nickname: Option<String>,
    pub email_verified: Option<bool>,
    pub blocked: Option<bool>,
    pub admin: Option<bool>,
}

/// Checks the password policy, then hashes (Argon2id).
fn hash(pw: &SecretString) -> Result<PasswordHash, MgmtError> {
    password::check_policy(pw).map_err(MgmtError::PasswordPolicy)?;
    PasswordHash::create(pw).map_err(|e| match e {
        PasswordError::Hashing => MgmtError::Hashing(e),
        policy => MgmtError::PasswordPolicy(policy),
    })
}

pub async fn list<S: UserStore>(store: &S, who: &Principal, q: UserQuery) -> Result<Page<User>, MgmtError> {
    who.require(READ)?;
    let Paging { page, with_total } = q.paging;
    match q.search {
        Some(UserSearch::Exact(email)) => {
            let all: Vec<User> = store.get_user_by_email(&email).await?.into_iter().collect();
            let total = all.len() as u64;
            let skip = usize::try_from(page.skip()).unwrap_or(usize::MAX);
            let items = all.into_iter().skip(skip).take(page.per_page as usize).collect();
            Ok(Page { items, request: page, total: with_total.then_some(total) })
        }
        search => {
            let prefix = match &search {
                Some(UserSearch::Prefix(p)) if !p.is_empty() => Some(p.as_str()),
                _ => None,
            };
            let items = store.list_users(prefix, page).await?;
            let total = if with_total { Some(store.count_users(prefix).await?) } else { None };
            Ok(Page { items, request: page, total })
        }
    }
}

/// Checkpoint paging (Auth0's `from`/`take`): up to `take` users after the checkpoint `from`,
/// and the checkpoint of the next page (`None`: the last page). The cost of a page does not
/// depend on how deep it is, unlike offset pages, which read every entry they skip.
pub async fn list_from<S: UserStore>(
    store: &S,
    who: &Principal,
    search: Option<UserSearch>,
    from: Option<WalkCursor>,
    take: u32,
) -> Result<UserBatch, MgmtError> {
    who.require(READ)?;
    match search {
        Some(UserSearch::Exact(email)) => {
            let items = match from {
                // One match at most: it was on the first page.
                Some(_) => vec![],
                None => store.get_user_by_email(&email).await?.into_iter().collect(),
            };
            Ok(UserBatch { items, next: None })
        }
        search => {
            let prefix = match &search {
                Some(UserSearch::Prefix(p)) if !p.is_empty() => Some(p.as_str()),
                _ => None,
            };
            Ok(store.walk_users(prefix, from.as_ref(), take).await?)
        }
    }
}

pub async fn get<S: UserStore>(store: &S, who: &Principal, id: &UserId) -> Result<User, MgmtError> {
    who.require(READ)?;
    store.get_user(id).await?.ok_or(MgmtError::NotFound(Entity::User))
}

pub async fn create<S: UserStore>(store: &S, who: &Principal, new: NewUser, now: Timestamp) -> Result<User, MgmtError> {
    who.require(CREATE)?;
    let password_hash = hash(&new.password)?;
    let local = new.email.as_str().split('@').next().unwrap_or("").to_owned();
    let user = User {
        id: UserId::generate(),
        name: new.name.unwrap_or_else(|| new.email.to_string()),
        nickname: new.nickname.unwrap_or(local),
        email: new.email,
        email_verified: new.email_verified,
        password_hash,
        rev: 0,
        admin: new.admin,
        blocked: new.blocked,
        created_at: now,
        updated_at: now,
        sessions_after: Timestamp::from_millis(0),
        live_devices: 0,
    };
    match store.create_user(&user).await? {
        CreateUser::Created => Ok(user),
        CreateUser::EmailTaken => Err(Conflict::UserExists.into()),
    }
}

pub async fn update<S: UserStore + CredentialStore>(
    store: &S,
    who: &Principal,
    id: &UserId,
    patch: UserPatch,
    now: Timestamp,
) -> Result<User, MgmtError> {
    who.require(UPDATE)?;
    let password = patch.password.as_ref().map(hash).transpose()?;
    for _ in 0..3 {
        let old = store.get_user(id).await?.ok_or(MgmtError::NotFound(Entity::User))?;
        let mut new = old.clone();
        if let Some(name) = &patch.name {
            new.name.clone_from(name);
        }
        if let Some(nick) = &patch.nickname {
            new.nickname.clone_from(nick);
        }
        if let Some(e) = &patch.email
            && e != &old.email
        {
            new.email = e.clone();
            new.email_verified = false;
        }
        if let Some(v) = patch.email_verified {
            new.email_verified = v;
        }
        if let Some(b) = patch.blocked {
            new.blocked = b;
            if b && !old.blocked {
                // A block revokes every refresh token for good: a later unblock must not
                // revive them (they were issued under the old revision).
                new.rev = old.rev.saturating_add(1);
            }
        }
        if let Some(a) = patch.admin {
            new.admin = a;
        }
        if let Some(h) = &password {
            new.password_hash = h.clone();
            // Every refresh token was issued under the old revision: all stop working now.
            new.rev = new.rev.max(old.rev.saturating_add(1));
        }
        new.updated_at = now.max(old.updated_at);
        match store.update_user(&old, &new).await? {
            UpdateUser::Updated => {
                if new.rev != old.rev {
                    let purge = store.purge_user_credentials(id, Some(new.rev), PURGE_BUDGET).await?;
                    tracing::info!(user = %id, deleted = purge.deleted, complete = purge.complete, "password change or block revoked refresh tokens");
                }
                return Ok(new);
            }
            UpdateUser::EmailTaken => return Err(Conflict::EmailTaken.into()),
            UpdateUser::Conflict => continue,
        }
    }
    Err(Conflict::ConcurrentUpdate.into())
}

/// Revokes every refresh token of the user at once by moving it to a new credential revision
/// (one conditional write), then removes the records of the older revisions.
pub async fn bump_revision<S: UserStore + CredentialStore>(
    store: &S,
    id: &UserId,
    now: Timestamp,
) -> Result<Purge, StoreError> {
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
    Err(StoreError::unavailable("the user kept changing; try again"))
}

/// Deletes the user (done, too, when it is already gone) and revokes all of its refresh
/// tokens.
pub async fn delete<S: UserStore + CredentialStore>(store: &S, who: &Principal, id: &UserId) -> Result<(), MgmtError> {
    who.require(DELETE)?;
    if let Some(user) = store.get_user(id).await? {
        store.delete_user(&user).await?;
    }
    // Re-runnable: also finishes the cleanup of an earlier, interrupted deletion.
    let purge = store.purge_user_credentials(id, None, PURGE_BUDGET).await?;
    tracing::info!(user = %id, deleted = purge.deleted, complete = purge.complete, "user deleted");
    Ok(())
}

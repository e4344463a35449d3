//! An in-memory implementation of the storage ports, for millisecond tests of the use cases.
//!
//! It keeps the same contract as the DynamoDB adapter — the contract suite
//! (`tests/api/contract.rs`) runs against both — with one lock around all state, so every
//! operation is atomic and strongly consistent, and listings are in the adapter's index order:
//! users by e-mail, clients by id, a user's credentials by (client, creation time, id), a
//! client's credentials by (user, creation time, id).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::audit::{AuditEvent, Direction, LogDay, LogId};
use crate::client::Client;
use crate::clock::Timestamp;
use crate::code::{AuthorizationCode, Redemption};
use crate::credential::DeviceCredential;
use crate::exchange::{self, Action, Snapshot, Written};
use crate::ids::{ClientId, DeviceCredentialId, Email, UserId};
use crate::ports::{
    AuditLog, ClientStore, CodeStore, Contention, CounterStore, CreateUser, CredentialBatch, CredentialFilter,
    CredentialStore, ExchangeWrite, Freshness, IssueOutcome, PageRequest, Purge, Redeem, StoreError, UpdateUser,
    UserBatch, UserStore, WALK_BATCH_MAX, WalkCursor,
};
use crate::ratelimit::{Counter, Step};
use crate::token::SecretHash;
use crate::user::User;

impl State {
    /// A user as read: with its live devices (distinct device names of its tokens of the
    /// current revision).
    fn read(&self, u: &User) -> User {
        let mut names: Vec<&str> = self
            .credentials
            .values()
            .filter(|x| x.cred.user_id == u.id && x.cred.user_rev == u.rev)
            .map(|x| x.cred.device_name.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        User { live_devices: u32::try_from(names.len()).unwrap_or(u32::MAX), ..u.clone() }
    }
}

/// A credential record: the credential, its rate-limit counters and, for a rotating family,
/// the previous member's secret hash and rotation time.
#[derive(Debug, Clone)]
struct Stored {
    cred: DeviceCredential,
    counters: BTreeMap<String, Counter>,
    previous: Option<(SecretHash, Timestamp)>,
}

#[derive(Debug, Default)]
struct State {
    clients: BTreeMap<ClientId, Client>,
    users: HashMap<UserId, User>,
    emails: BTreeMap<Email, UserId>,
    credentials: HashMap<DeviceCredentialId, Stored>,
    counters: HashMap<String, Counter>,
    /// Authorization codes by the hex of their hash.
    codes: HashMap<String, AuthorizationCode>,
    /// Audit events by log id (which orders them by time).
    events: BTreeMap<LogId, AuditEvent>,
}

/// The store in memory. `Default` is empty.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        self.state.lock().map_err(|_| StoreError::unavailable("memory store: a writer panicked"))
    }
}

fn page<T: Clone>(items: impl Iterator<Item = T>, page: PageRequest) -> Vec<T> {
    items.skip(usize::try_from(page.skip()).unwrap_or(usize::MAX)).take(page.per_page as usize).collect()
}

impl ClientStore for MemoryStore {
    async fn get_client(&self, id: &ClientId, _freshness: Freshness) -> Result<Option<Client>, StoreError> {
        Ok(self.state()?.clients.get(id).cloned())
    }

    async fn create_client(&self, client: &Client) -> Result<bool, StoreError> {
        let mut s = self.state()?;
        if s.clients.contains_key(&client.id) {
            return Ok(false);
        }
        s.clients.insert(client.id.clone(), client.clone());
        Ok(true)
    }

    async fn update_client(&self, client: &Client) -> Result<bool, StoreError> {
        let mut s = self.state()?;
        match s.clients.get_mut(&client.id) {
            Some(c) => {
                *c = client.clone();
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn delete_client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        Ok(self.state()?.clients.remove(id))
    }

    async fn list_clients(&self, p: PageRequest) -> Result<Vec<Client>, StoreError> {
        Ok(page(self.state()?.clients.values().cloned(), p))
    }

    async fn count_clients(&self) -> Result<u64, StoreError> {
        Ok(self.state()?.clients.len() as u64)
    }
}

impl UserStore for MemoryStore {
    async fn create_user(&self, user: &User) -> Result<CreateUser, StoreError> {
        let mut s = self.state()?;
        if s.emails.contains_key(&user.email) {
            return Ok(CreateUser::EmailTaken);
        }
        if s.users.contains_key(&user.id) {
            return Err(StoreError::unavailable("user creation cancelled"));
        }
        s.emails.insert(user.email.clone(), user.id.clone());
        s.users.insert(user.id.clone(), user.clone());
        Ok(CreateUser::Created)
    }

    async fn get_user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        let s = self.state()?;
        Ok(s.users.get(id).map(|u| s.read(u)))
    }

    async fn get_user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let s = self.state()?;
        Ok(s.emails.get(email).and_then(|id| s.users.get(id)).filter(|u| &u.email == email).map(|u| s.read(u)))
    }

    async fn update_user(&self, old: &User, new: &User) -> Result<UpdateUser, StoreError> {
        let mut s = self.state()?;
        let current = s.users.get(&old.id).is_some_and(|u| u.rev == old.rev && u.updated_at == old.updated_at);
        if !current {
            return Ok(UpdateUser::Conflict);
        }
        if old.email != new.email {
            if s.emails.contains_key(&new.email) {
                return Ok(UpdateUser::EmailTaken);
            }
            s.emails.remove(&old.email);
            s.emails.insert(new.email.clone(), new.id.clone());
        }
        s.users.insert(new.id.clone(), new.clone());
        Ok(UpdateUser::Updated)
    }

    async fn delete_user(&self, user: &User) -> Result<bool, StoreError> {
        let mut s = self.state()?;
        if !s.users.contains_key(&user.id) || !s.emails.contains_key(&user.email) {
            return Ok(false);
        }
        s.users.remove(&user.id);
        s.emails.remove(&user.email);
        Ok(true)
    }

    async fn list_users(&self, prefix: Option<&str>, p: PageRequest) -> Result<Vec<User>, StoreError> {
        let s = self.state()?;
        let matching = s
            .emails
            .iter()
            .filter(|(e, _)| prefix.is_none_or(|p| e.as_str().starts_with(p)))
            .filter_map(|(_, id)| s.users.get(id).map(|u| s.read(u)));
        Ok(page(matching, p))
    }

    async fn walk_users(
        &self,
        prefix: Option<&str>,
        after: Option<&WalkCursor>,
        limit: u32,
    ) -> Result<UserBatch, StoreError> {
        let s = self.state()?;
        let limit = limit.clamp(1, WALK_BATCH_MAX) as usize;
        let mut rest: Vec<User> = s
            .emails
            .iter()
            .filter(|(e, _)| prefix.is_none_or(|p| e.as_str().starts_with(p)))
            .filter(|(e, _)| after.is_none_or(|a| e.as_str() > a.as_str()))
            .filter_map(|(_, id)| s.users.get(id).map(|u| s.read(u)))
            .take(limit + 1)
            .collect();
        let more = rest.len() > limit;
        rest.truncate(limit);
        let next = if more { rest.last().map(|u| WalkCursor::new(u.email.to_string())) } else { None };
        Ok(UserBatch { items: rest, next })
    }

    async fn count_users(&self, prefix: Option<&str>) -> Result<u64, StoreError> {
        let s = self.state()?;
        Ok(s.emails.keys().filter(|e| prefix.is_none_or(|p| e.as_str().starts_with(p))).count() as u64)
    }
}

/// The user is there, not blocked and at `rev` (what issuing and exchanging check).
impl CodeStore for MemoryStore {
    async fn put_code(&self, code: &AuthorizationCode) -> Result<(), StoreError> {
        let mut s = self.state()?;
        let key = code.hash.to_hex();
        if s.codes.contains_key(&key) {
            return Err(StoreError::unavailable("code put cancelled"));
        }
        s.codes.insert(key, code.clone());
        Ok(())
    }

    async fn get_code(&self, hash: &SecretHash) -> Result<Option<AuthorizationCode>, StoreError> {
        Ok(self.state()?.codes.get(&hash.to_hex()).cloned())
    }

    async fn redeem_code(
        &self,
        code: &AuthorizationCode,
        at: Timestamp,
        cred: Option<&DeviceCredential>,
    ) -> Result<Redeem, StoreError> {
        let mut s = self.state()?;
        let key = code.hash.to_hex();
        if s.codes.get(&key).is_none_or(|c| c.redeemed.is_some()) {
            return Ok(Redeem::AlreadyRedeemed);
        }
        if !user_is_current(&s, &code.user_id, code.user_rev) {
            return Ok(Redeem::UserChanged);
        }
        if let Some(cred) = cred {
            if s.credentials.contains_key(&cred.id) {
                return Err(StoreError::unavailable("code redemption cancelled"));
            }
            let stored = Stored { cred: cred.clone(), counters: BTreeMap::new(), previous: None };
            s.credentials.insert(cred.id.clone(), stored);
        }
        if let Some(c) = s.codes.get_mut(&key) {
            c.redeemed = Some(Redemption { at, credential: cred.map(|c| c.id.clone()) });
        }
        Ok(Redeem::Redeemed)
    }

    async fn purge_expired_codes(&self, now: Timestamp, _budget: Duration) -> Result<Purge, StoreError> {
        let mut s = self.state()?;
        let before = s.codes.len();
        s.codes.retain(|_, c| !c.expired(now));
        Ok(Purge { deleted: (before - s.codes.len()) as u64, complete: true })
    }
}

fn user_is_current(s: &State, user: &UserId, rev: u32) -> bool {
    s.users.get(user).is_some_and(|u| u.rev == rev && !u.blocked)
}

fn snapshot(x: &Stored) -> Snapshot {
    Snapshot::of(x.cred.clone(), x.counters.clone(), x.previous.clone())
}

/// A credential's position in the order of `f`'s listing, as a string that sorts like it:
/// (client or user, creation time, id), separated by a character no id contains.
fn position(f: &CredentialFilter, c: &DeviceCredential) -> String {
    let first = match f {
        CredentialFilter::User { .. } => c.client_id.as_str(),
        CredentialFilter::Client(_) => c.user_id.as_str(),
    };
    format!("{first}\u{1}{:020}\u{1}{}", c.created_at.millis().max(0), c.id)
}

/// The credentials matching `f`, in index order.
fn matching(s: &State, f: &CredentialFilter) -> Vec<DeviceCredential> {
    let mut v: Vec<&DeviceCredential> = s
        .credentials
        .values()
        .map(|x| &x.cred)
        .filter(|c| match f {
            CredentialFilter::User { user, client } => {
                &c.user_id == user && client.as_ref().is_none_or(|cl| &c.client_id == cl)
            }
            CredentialFilter::Client(client) => &c.client_id == client,
        })
        .collect();
    match f {
        CredentialFilter::User { .. } => {
            v.sort_by(|a, b| (&a.client_id, a.created_at, &a.id).cmp(&(&b.client_id, b.created_at, &b.id)))
        }
        CredentialFilter::Client(_) => {
            v.sort_by(|a, b| (&a.user_id, a.created_at, &a.id).cmp(&(&b.user_id, b.created_at, &b.id)))
        }
    }
    v.into_iter().cloned().collect()
}

impl CredentialStore for MemoryStore {
    async fn issue_credential(&self, cred: &DeviceCredential) -> Result<IssueOutcome, StoreError> {
        let mut s = self.state()?;
        if !user_is_current(&s, &cred.user_id, cred.user_rev) {
            return Ok(IssueOutcome::UserChanged);
        }
        if s.credentials.contains_key(&cred.id) {
            return Err(StoreError::unavailable("credential issue cancelled"));
        }
        s.credentials.insert(cred.id.clone(), Stored { cred: cred.clone(), counters: BTreeMap::new(), previous: None });
        Ok(IssueOutcome::Issued)
    }

    async fn write_exchange(&self, w: &ExchangeWrite<'_>, _contention: &mut Contention) -> Result<Written, StoreError> {
        let mut s = self.state()?;
        let req = w.req;
        let user_current = user_is_current(&s, req.token.user(), req.token.user_rev());
        let Some(stored) = s.credentials.get_mut(req.token.id()) else {
            return Ok(Written::Refused(None));
        };
        let before = snapshot(stored);
        if !exchange::holds(w.action, &before, req) {
            return Ok(Written::Refused(Some(before)));
        }
        if matches!(w.action, Action::Use(_)) && !user_current {
            return Ok(Written::UserChanged);
        }
        match exchange::apply(w.action, &before, req) {
            None => {
                s.credentials.remove(req.token.id());
            }
            Some(after) => {
                let c = &mut stored.cred;
                stored.counters = after.counters;
                c.secret_hash = after.secret_hash;
                c.generation = after.rotation.as_ref().map(|r| r.generation);
                stored.previous = after.rotation.and_then(|r| r.previous).or(after.demoted);
                c.last_used_at = after.last_used_at;
                c.last_ip = Some(req.source_ip.to_owned());
                c.use_count = c.use_count.saturating_add(1);
            }
        }
        Ok(Written::Done)
    }

    async fn get_credential(&self, id: &DeviceCredentialId) -> Result<Option<DeviceCredential>, StoreError> {
        Ok(self.state()?.credentials.get(id).map(|x| x.cred.clone()))
    }

    async fn revoke_credential(&self, id: &DeviceCredentialId) -> Result<bool, StoreError> {
        Ok(self.state()?.credentials.remove(id).is_some())
    }

    async fn revoke_read_credential(&self, cred: &DeviceCredential) -> Result<bool, StoreError> {
        self.revoke_credential(&cred.id).await
    }

    async fn list_credentials(
        &self,
        filter: &CredentialFilter,
        p: PageRequest,
    ) -> Result<Vec<DeviceCredential>, StoreError> {
        Ok(page(matching(&*self.state()?, filter).into_iter(), p))
    }

    async fn count_credentials(&self, filter: &CredentialFilter) -> Result<u64, StoreError> {
        Ok(matching(&*self.state()?, filter).len() as u64)
    }

    async fn walk_credentials(
        &self,
        filter: &CredentialFilter,
        after: Option<&WalkCursor>,
        limit: u32,
    ) -> Result<CredentialBatch, StoreError> {
        let limit = limit.clamp(1, WALK_BATCH_MAX) as usize;
        let mut rest: Vec<DeviceCredential> = matching(&*self.state()?, filter)
            .into_iter()
            .filter(|c| after.is_none_or(|a| position(filter, c).as_str() > a.as_str()))
            .collect();
        let more = rest.len() > limit;
        rest.truncate(limit);
        let next = if more { rest.last().map(|c| WalkCursor::new(position(filter, c))) } else { None };
        Ok(CredentialBatch { items: rest, next })
    }

    async fn purge_user_credentials(
        &self,
        user: &UserId,
        below_rev: Option<u32>,
        _budget: Duration,
    ) -> Result<Purge, StoreError> {
        let mut s = self.state()?;
        let before = s.credentials.len();
        s.credentials.retain(|_, x| &x.cred.user_id != user || below_rev.is_some_and(|rev| x.cred.user_rev >= rev));
        Ok(Purge { deleted: (before - s.credentials.len()) as u64, complete: true })
    }

    async fn purge_client_credentials(&self, client: &ClientId, _budget: Duration) -> Result<Purge, StoreError> {
        let mut s = self.state()?;
        let before = s.credentials.len();
        s.credentials.retain(|_, x| &x.cred.client_id != client);
        Ok(Purge { deleted: (before - s.credentials.len()) as u64, complete: true })
    }
}

impl CounterStore for MemoryStore {
    async fn write_counter(&self, key: &str, step: Step) -> Result<Option<Option<Counter>>, StoreError> {
        let mut s = self.state()?;
        let current = s.counters.get(key).copied();
        if !step.holds(current) {
            return Ok(Some(current));
        }
        s.counters.insert(key.to_owned(), step.after());
        Ok(None)
    }

    async fn read_counter(&self, key: &str) -> Result<Option<Counter>, StoreError> {
        Ok(self.state()?.counters.get(key).copied())
    }

    async fn reset_counter(&self, key: &str) -> Result<(), StoreError> {
        self.state()?.counters.remove(key);
        Ok(())
    }
}

/// `limit` of `events` (in log-id order) beyond the cursor of `direction`, in its order.
fn in_direction<'a>(
    events: impl DoubleEndedIterator<Item = &'a AuditEvent>,
    direction: &Direction,
    limit: u32,
) -> Vec<AuditEvent> {
    let admitted = |e: &&AuditEvent| direction.admits(&e.id);
    let limit = limit.min(crate::ports::LOG_BATCH_MAX) as usize;
    if direction.newest_first() {
        events.rev().filter(admitted).take(limit).cloned().collect()
    } else {
        events.filter(admitted).take(limit).cloned().collect()
    }
}

impl AuditLog for MemoryStore {
    async fn record_event(&self, e: &AuditEvent) -> Result<(), StoreError> {
        let mut s = self.state()?;
        if s.events.contains_key(&e.id) {
            return Err(StoreError::Corrupt(format!("log id {} taken", e.id)));
        }
        s.events.insert(e.id.clone(), e.clone());
        Ok(())
    }

    async fn user_events(
        &self,
        user: &UserId,
        direction: &Direction,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let s = self.state()?;
        Ok(in_direction(s.events.values().filter(|e| e.user_id.as_ref() == Some(user)), direction, limit))
    }

    async fn count_user_events(&self, user: &UserId) -> Result<u64, StoreError> {
        Ok(self.state()?.events.values().filter(|e| e.user_id.as_ref() == Some(user)).count() as u64)
    }

    async fn day_events(&self, day: LogDay, direction: &Direction, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
        let s = self.state()?;
        Ok(in_direction(s.events.values().filter(|e| LogDay::of(e.at()) == day), direction, limit))
    }

    async fn purge_log_day(&self, day: LogDay, _budget: Duration) -> Result<Purge, StoreError> {
        let mut s = self.state()?;
        let before = s.events.len();
        s.events.retain(|_, e| LogDay::of(e.at()) != day);
        Ok(Purge { deleted: (before - s.events.len()) as u64, complete: true })
    }
}

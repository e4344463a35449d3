//! Device credentials (refresh tokens): list those of a user or a client, revoke one.
//!
//! Listings show only live credentials, as Auth0 does: one that has expired under its
//! client's current refresh-token policy is left out (the exchange refuses it already; the
//! sweep removes its record later), and the total counts what the pages list. Each listed
//! credential carries when it expires.

use std::collections::HashMap;

use super::{Entity, MgmtError, Page, Paging, Principal};
use crate::client::RefreshTokenPolicy;
use crate::clock::Timestamp;
use crate::credential::DeviceCredential;
use crate::ids::{ClientId, DeviceCredentialId};
use crate::ports::{ClientStore, CredentialFilter, CredentialStore, Freshness, StoreError, WALK_BATCH_MAX};

pub const READ: &[&str] = &["read:device_credentials"];
/// Only the machine scope: Auth0's `current_user` scopes allow a user's token to act on that
/// user's own credentials, and a Management token here names no user, so they would allow
/// any user's.
pub const DELETE: &[&str] = &["delete:device_credentials"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialQuery {
    pub filter: CredentialFilter,
    pub paging: Paging,
}

/// A live credential as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub credential: DeviceCredential,
    /// When it expires under its client's current policy; `None`: never (or its client is
    /// gone, and with it every use of the token).
    pub expires_at: Option<Timestamp>,
}

/// The refresh-token policies of the clients a use case meets, each read once (from the
/// per-process cache): one read per distinct client, not per credential.
#[derive(Debug, Default)]
pub struct Policies(HashMap<ClientId, Option<RefreshTokenPolicy>>);

impl Policies {
    /// The policy of `client`; `None` when the client is gone.
    pub async fn of<S: ClientStore>(
        &mut self,
        store: &S,
        client: &ClientId,
    ) -> Result<Option<RefreshTokenPolicy>, StoreError> {
        if let Some(p) = self.0.get(client) {
            return Ok(*p);
        }
        let p = store.get_client(client, Freshness::Cached).await?.map(|c| c.refresh_token);
        self.0.insert(client.clone(), p);
        Ok(p)
    }

    /// `c` with its expiry, or `None` when it has expired at `now`.
    pub async fn live<S: ClientStore>(
        &mut self,
        store: &S,
        c: DeviceCredential,
        now: Timestamp,
    ) -> Result<Option<Listed>, StoreError> {
        Ok(match self.of(store, &c.client_id).await? {
            Some(p) if c.expired(&p, now) => None,
            p => Some(Listed { expires_at: p.and_then(|p| c.expires_at(&p)), credential: c }),
        })
    }
}

/// The client every credential of `filter` belongs to, when the filter names one.
fn one_client(filter: &CredentialFilter) -> Option<&ClientId> {
    match filter {
        CredentialFilter::Client(c) | CredentialFilter::User { client: Some(c), .. } => Some(c),
        CredentialFilter::User { client: None, .. } => None,
    }
}

/// A page of the live credentials matching the query, at `now`.
///
/// When the filter names one client whose tokens never expire, the page and the total come
/// from the index as they always did (a `Query` of the keys up to the page, its items, a
/// `Select=COUNT`). Otherwise a credential's liveness depends on its last use, which no index
/// holds, so the credentials are walked in listing order (batches of 100: keys, then items)
/// until the page is full — or to the end when the total is asked for, which is then the
/// number of live ones. A user has few credentials; a client-wide listing of an application
/// whose tokens expire reads every credential of the application (ARCHITECTURE.md, *Capacity*).
pub async fn list<S: CredentialStore + ClientStore>(
    store: &S,
    who: &Principal,
    q: CredentialQuery,
    now: Timestamp,
) -> Result<Page<Listed>, MgmtError> {
    who.require(READ)?;
    let mut policies = Policies::default();
    let request = q.paging.page;
    if let Some(client) = one_client(&q.filter)
        && policies.of(store, client).await?.is_none_or(|p| !p.expires())
    {
        let items = store.list_credentials(&q.filter, request).await?;
        let total = if q.paging.with_total { Some(store.count_credentials(&q.filter).await?) } else { None };
        let items = items.into_iter().map(|credential| Listed { credential, expires_at: None }).collect();
        return Ok(Page { items, request, total });
    }
    let (skip, want) = (request.skip(), u64::from(request.per_page));
    let (mut live, mut items, mut after) = (0u64, Vec::new(), None);
    loop {
        let batch = store.walk_credentials(&q.filter, after.as_ref(), WALK_BATCH_MAX).await?;
        for c in batch.items {
            if let Some(listed) = policies.live(store, c, now).await? {
                if live >= skip && live < skip + want {
                    items.push(listed);
                }
                live += 1;
            }
        }
        after = batch.next;
        if after.is_none() || (!q.paging.with_total && live >= skip + want) {
            break;
        }
    }
    Ok(Page { items, request, total: q.paging.with_total.then_some(live) })
}

/// Revokes one refresh token (a strongly consistent read, then the revocation: what
/// [`CredentialStore::revoke_credential`] sends) and answers what it revoked, for the audit log.
pub async fn delete<S: CredentialStore>(
    store: &S,
    who: &Principal,
    id: &DeviceCredentialId,
) -> Result<DeviceCredential, MgmtError> {
    who.require(DELETE)?;
    let gone = || MgmtError::NotFound(Entity::DeviceCredential);
    let cred = store.get_credential(id).await?.ok_or_else(gone)?;
    if store.revoke_read_credential(&cred).await? { Ok(cred) } else { Err(gone()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{AppType, Client, ExpirationType};
    use crate::ids::{DeviceName, UserId};
    use crate::memory::MemoryStore;
    use crate::ports::{PageRequest, UserStore};
    use crate::scope::Scope;
    use crate::token::RefreshToken;

    const T0: Timestamp = Timestamp::from_secs(1_800_000_000);

    #[tokio::test]
    async fn current_user_scopes_do_not_delete_anyones_credentials() {
        let s = MemoryStore::new();
        let id = DeviceCredentialId::generate();
        for scope in ["delete:current_user_device_credentials", "update:current_user"] {
            let who = Principal { client_id: ClientId::generate(), scopes: Scope::parse(scope).expect("scope") };
            assert!(matches!(delete(&s, &who, &id).await, Err(MgmtError::InsufficientScope(_))), "{scope}");
        }
        let who = Principal {
            client_id: ClientId::generate(),
            scopes: Scope::parse("delete:device_credentials").expect("scope"),
        };
        assert!(matches!(delete(&s, &who, &id).await, Err(MgmtError::NotFound(Entity::DeviceCredential))));
    }

    fn reader() -> Principal {
        Principal { client_id: ClientId::generate(), scopes: Scope::parse("read:device_credentials").expect("scope") }
    }

    fn expiring(idle: u32) -> RefreshTokenPolicy {
        RefreshTokenPolicy {
            expiration_type: ExpirationType::Expiring,
            infinite_idle_token_lifetime: false,
            idle_token_lifetime: idle,
            ..RefreshTokenPolicy::default()
        }
    }

    async fn client(s: &MemoryStore, policy: RefreshTokenPolicy) -> ClientId {
        let c = Client { refresh_token: policy, ..Client::new(ClientId::generate(), "app", AppType::Native, T0) };
        s.create_client(&c).await.expect("client");
        c.id
    }

    async fn issue(s: &MemoryStore, user: &UserId, client: &ClientId, at: Timestamp) -> DeviceCredential {
        let t = RefreshToken::generate(user, 0);
        let c = DeviceCredential {
            id: t.id().clone(),
            client_id: client.clone(),
            user_id: user.clone(),
            user_rev: 0,
            device_name: DeviceName::parse("phone").expect("name"),
            scope: Scope::parse("openid offline_access").expect("scope"),
            secret_hash: t.secret_hash(),
            created_at: at,
            created_ip: None,
            last_used_at: None,
            last_ip: None,
            use_count: 0,
            generation: None,
        };
        s.issue_credential(&c).await.expect("issue");
        c
    }

    async fn user(s: &MemoryStore) -> UserId {
        let u =
            crate::user::User::fixture(&format!("{}@example.com", crate::random::alphanumeric(8).to_lowercase()), T0);
        s.create_user(&u).await.expect("user");
        u.id
    }

    fn query(filter: CredentialFilter, page: u32, per_page: u32, with_total: bool) -> CredentialQuery {
        CredentialQuery { filter, paging: Paging { page: PageRequest { page, per_page }, with_total } }
    }

    #[tokio::test]
    async fn expired_credentials_are_not_listed_and_totals_count_what_is() {
        let s = MemoryStore::new();
        let (forever, hour) = (client(&s, RefreshTokenPolicy::default()).await, client(&s, expiring(3_600)).await);
        let u = user(&s).await;
        // Five of the expiring client issued a minute apart, one that never expires.
        let mut issued = vec![];
        for i in 0..5 {
            issued.push(issue(&s, &u, &hour, T0.plus_secs(i * 60)).await);
        }
        let kept = issue(&s, &u, &forever, T0).await;
        // 3600 s after the third one: the first three have expired (the third at that very
        // second is still accepted, so it is still listed).
        let now = T0.plus_secs(2 * 60 + 3_600);
        let of_user = CredentialFilter::User { user: u.clone(), client: None };
        let ids = |p: &Page<Listed>| p.items.iter().map(|l| l.credential.id.clone()).collect::<Vec<_>>();

        let all = list(&s, &reader(), query(of_user.clone(), 0, 50, true), now).await.expect("list");
        let mut expected: Vec<&DeviceCredential> = vec![&issued[2], &issued[3], &issued[4], &kept];
        expected.sort_by(|a, b| (&a.client_id, a.created_at).cmp(&(&b.client_id, b.created_at)));
        assert_eq!(ids(&all), expected.iter().map(|c| c.id.clone()).collect::<Vec<_>>());
        assert_eq!(all.total, Some(4));
        let expiry =
            |c: &DeviceCredential| all.items.iter().find(|l| l.credential.id == c.id).expect("listed").expires_at;
        assert_eq!(expiry(&issued[3]), Some(T0.plus_secs(3 * 60 + 3_600)));
        assert_eq!(expiry(&kept), None, "never expires");

        // Pages are full and offsets count live credentials only.
        let mut paged = vec![];
        for page in 0..3 {
            let p = list(&s, &reader(), query(of_user.clone(), page, 2, true), now).await.expect("page");
            assert_eq!(p.total, Some(4));
            assert_eq!(p.items.len(), if page < 2 { 2 } else { 0 });
            paged.extend(ids(&p));
        }
        assert_eq!(paged, ids(&all));
        let without_total = list(&s, &reader(), query(of_user, 1, 2, false), now).await.expect("page");
        assert_eq!((ids(&without_total), without_total.total), (ids(&all)[2..].to_vec(), None));

        // One client: its own policy decides.
        let of_client = list(&s, &reader(), query(CredentialFilter::Client(hour.clone()), 0, 50, true), now).await;
        assert_eq!(of_client.expect("list").total, Some(3));
        let of_forever = list(&s, &reader(), query(CredentialFilter::Client(forever), 0, 50, true), now).await;
        assert_eq!(of_forever.expect("list").items.len(), 1);
    }

    #[tokio::test]
    async fn a_policy_change_applies_to_listings_at_once() {
        let s = MemoryStore::new();
        let c = client(&s, RefreshTokenPolicy::default()).await;
        let u = user(&s).await;
        issue(&s, &u, &c, T0).await;
        let now = T0.plus_secs(7_200);
        let q = || query(CredentialFilter::User { user: u.clone(), client: Some(c.clone()) }, 0, 50, true);
        assert_eq!(list(&s, &reader(), q(), now).await.expect("list").total, Some(1));
        let mut changed = s.get_client(&c, Freshness::Fresh).await.expect("read").expect("client");
        changed.refresh_token = expiring(3_600);
        s.update_client(&changed).await.expect("update");
        assert_eq!(list(&s, &reader(), q(), now).await.expect("list").total, Some(0), "idle for two hours");
        assert!(
            list(&s, &Principal { scopes: Scope::parse("read:users").expect("s"), ..reader() }, q(), now)
                .await
                .is_err()
        );
    }
}

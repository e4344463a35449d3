//! The sweep: removes records that can no longer be used, off the request path (the
//! `sweep-expired` function, run on a schedule). Records have no DynamoDB TTL (refresh tokens
//! that never expire must never be removed by the table), so what expires leaves the table
//! here; meanwhile the exchange refuses it and listings leave it out.
//!
//! A sweep is a list of steps, each a purge with its own share of one time budget and a
//! [`Purge`] for a result (removed, complete). Re-runnable and idempotent: a step cut short
//! by the budget leaves only more to remove next time, and a record removed twice counts once.
//! Another kind of expiring record is one more step: one line in [`sweep`].

use std::time::{Duration, Instant};

use crate::audit::LogDay;
use crate::client::Client;
use crate::clock::Timestamp;
use crate::credential::DeviceCredential;
use crate::ports::{
    AuditLog, ClientStore, CodeStore, CredentialFilter, CredentialStore, PageRequest, Purge, StoreError, WALK_BATCH_MAX,
};

/// A credential is removed once it has been expired for this long. An exchange decides with
/// its own clock and commits moments later: one that started just before the expiry may
/// still record a use, and the sweep must not delete a token that has just been refreshed.
pub const GRACE_SECS: i64 = 300;

/// Clients are read this many at a time.
const CLIENT_PAGE: u32 = 100;

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepReport {
    pub step: &'static str,
    pub removed: u64,
    /// `false` when the budget ran out first: the next run goes on.
    pub complete: bool,
}

/// What a sweep did: each step, and what the refresh-token step looked at. Counts only,
/// nothing secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub steps: Vec<StepReport>,
    /// Clients whose tokens expire, walked to the end.
    pub clients_swept: u64,
    /// Credentials read by the refresh-token step.
    pub credentials_examined: u64,
}

impl SweepReport {
    fn record(&mut self, step: &'static str, purge: Purge) {
        self.steps.push(StepReport { step, removed: purge.deleted, complete: purge.complete });
    }

    /// Whether every step finished within the budget.
    pub fn complete(&self) -> bool {
        self.steps.iter().all(|s| s.complete)
    }

    /// Records removed by every step.
    pub fn removed(&self) -> u64 {
        self.steps.iter().map(|s| s.removed).sum()
    }
}

/// The time a step may still spend.
fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// Runs every step at `now` within `budget` (wall time), keeping audit events for
/// `log_retention_days`.
pub async fn sweep<S: ClientStore + CredentialStore + CodeStore + AuditLog>(
    store: &S,
    now: Timestamp,
    budget: Duration,
    log_retention_days: u32,
) -> Result<SweepReport, StoreError> {
    let deadline = Instant::now() + budget;
    let mut report = SweepReport::default();
    let purge = expired_credentials(store, now, deadline, &mut report).await?;
    report.record("expired refresh tokens", purge);
    report.record("expired authorization codes", store.purge_expired_codes(now, left(deadline)).await?);
    report.record("expired audit events", expired_events(store, now, deadline, log_retention_days).await?);
    Ok(report)
}

/// How many expired days each run looks at: a sweep that failed for up to this many days
/// still removes what it missed. Older days are assumed empty (a day costs one `Query` per
/// shard to look at).
pub const LOG_LOOKBACK_DAYS: u32 = 7;

/// The UTC days whose events have outlived `retention_days` at `now`, newest first: the
/// [`LOG_LOOKBACK_DAYS`] days before the oldest kept one. An event is kept for at least
/// `retention_days` days, and removed within one more day.
pub fn expired_log_days(now: Timestamp, retention_days: u32) -> impl Iterator<Item = LogDay> {
    let first_kept = LogDay::of(now).before(retention_days);
    (1..=LOG_LOOKBACK_DAYS).map(move |n| first_kept.before(n))
}

/// Removes the events of every expired day, by the day's feed shards (never a scan).
async fn expired_events<S: AuditLog>(
    store: &S,
    now: Timestamp,
    deadline: Instant,
    retention_days: u32,
) -> Result<Purge, StoreError> {
    let mut total = Purge { deleted: 0, complete: true };
    for day in expired_log_days(now, retention_days) {
        let p = store.purge_log_day(day, left(deadline)).await?;
        total.deleted += p.deleted;
        if !p.complete || left(deadline).is_zero() {
            return Ok(Purge { complete: false, ..total });
        }
    }
    Ok(total)
}

/// Whether the sweep removes `c` at `now` under its client's `policy`: it has been expired
/// for [`GRACE_SECS`] (the exchange has been refusing it since it expired).
pub fn sweepable(c: &DeviceCredential, client: &Client, now: Timestamp) -> bool {
    c.expired(&client.refresh_token, now.plus_secs(-GRACE_SECS))
}

/// Every client whose refresh tokens can expire (`Query` on the clients' index, their items
/// strongly consistent: the policy as it is now).
async fn expiring_clients<S: ClientStore>(store: &S) -> Result<Vec<Client>, StoreError> {
    let mut out = Vec::new();
    for page in 0.. {
        let clients = store.list_clients(PageRequest { page, per_page: CLIENT_PAGE }).await?;
        let last = clients.len() < CLIENT_PAGE as usize;
        out.extend(clients.into_iter().filter(|c| c.refresh_token.expires()));
        if last {
            break;
        }
    }
    Ok(out)
}

/// Revokes every credential of an expiring client that [`sweepable`] says is past its end,
/// each with the transaction that deletes it and counts it off its user's devices (as
/// `DELETE /api/v2/device-credentials/{id}` does). Clients are taken in an order that starts
/// one further each hour, so that a budget too short for all of them does not always spend
/// itself on the same ones. A client whose tokens never expire is not read at all.
async fn expired_credentials<S: ClientStore + CredentialStore>(
    store: &S,
    now: Timestamp,
    deadline: Instant,
    report: &mut SweepReport,
) -> Result<Purge, StoreError> {
    let mut clients = expiring_clients(store).await?;
    if !clients.is_empty() {
        let start = usize::try_from(now.secs().div_euclid(3_600)).unwrap_or(0) % clients.len();
        clients.rotate_left(start);
    }
    let mut purge = Purge { deleted: 0, complete: true };
    for client in &clients {
        let filter = CredentialFilter::Client(client.id.clone());
        let mut after = None;
        loop {
            if left(deadline).is_zero() {
                return Ok(Purge { complete: false, ..purge });
            }
            let batch = store.walk_credentials(&filter, after.as_ref(), WALK_BATCH_MAX).await?;
            report.credentials_examined += batch.items.len() as u64;
            for c in batch.items.iter().filter(|c| sweepable(c, client, now)) {
                if left(deadline).is_zero() {
                    return Ok(Purge { complete: false, ..purge });
                }
                if store.revoke_read_credential(c).await? {
                    purge.deleted += 1;
                }
            }
            match batch.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        report.clients_swept += 1;
    }
    Ok(purge)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{AppType, ExpirationType, RefreshTokenPolicy};
    use crate::ids::{ClientId, DeviceName, UserId};
    use crate::memory::MemoryStore;
    use crate::ports::UserStore;
    use crate::scope::Scope;
    use crate::token::RefreshToken;
    use crate::user::User;

    const T0: Timestamp = Timestamp::from_secs(1_800_000_000);
    const DAY: i64 = 86_400;

    fn policy(absolute_days: Option<u32>, idle_days: Option<u32>) -> RefreshTokenPolicy {
        RefreshTokenPolicy {
            expiration_type: ExpirationType::Expiring,
            token_lifetime: absolute_days.unwrap_or(1) * 86_400,
            infinite_token_lifetime: absolute_days.is_none(),
            idle_token_lifetime: idle_days.unwrap_or(1) * 86_400,
            infinite_idle_token_lifetime: idle_days.is_none(),
            ..RefreshTokenPolicy::default()
        }
    }

    async fn client(s: &MemoryStore, name: &str, p: RefreshTokenPolicy) -> Client {
        let c = Client { refresh_token: p, ..Client::new(ClientId::generate(), name, AppType::Native, T0) };
        assert!(s.create_client(&c).await.expect("client"));
        c
    }

    async fn user(s: &MemoryStore, email: &str) -> User {
        let u = User::fixture(email, T0);
        s.create_user(&u).await.expect("user");
        u
    }

    /// A credential issued at `issued` (days after T0), last used at `used`.
    async fn issue(
        s: &MemoryStore,
        u: &User,
        c: &Client,
        device: &str,
        issued: i64,
        used: Option<i64>,
    ) -> DeviceCredential {
        let t = RefreshToken::generate(&u.id, 0);
        let cred = DeviceCredential {
            id: t.id().clone(),
            client_id: c.id.clone(),
            user_id: u.id.clone(),
            user_rev: 0,
            device_name: DeviceName::parse(device).expect("name"),
            scope: Scope::parse("openid offline_access").expect("scope"),
            secret_hash: t.secret_hash(),
            created_at: T0.plus_secs(issued * DAY),
            created_ip: None,
            last_used_at: used.map(|d| T0.plus_secs(d * DAY)),
            last_ip: None,
            use_count: 0,
            generation: None,
        };
        s.issue_credential(&cred).await.expect("issue");
        cred
    }

    async fn alive(s: &MemoryStore, c: &DeviceCredential) -> bool {
        s.get_credential(&c.id).await.expect("read").is_some()
    }

    #[tokio::test]
    async fn the_sweep_removes_what_has_expired_and_nothing_else() {
        let s = MemoryStore::new();
        let forever = client(&s, "forever", RefreshTokenPolicy::default()).await;
        let month = client(&s, "month", policy(Some(30), Some(7))).await;
        let absolute_only = client(&s, "absolute", policy(Some(10), None)).await;
        let (a, b) = (user(&s, "a@example.com").await, user(&s, "b@example.com").await);
        let old_forever = issue(&s, &a, &forever, "phone", 0, None).await;
        let too_old = issue(&s, &a, &month, "phone", 0, Some(29)).await; // absolute end: day 30
        let idle = issue(&s, &b, &month, "laptop", 20, Some(22)).await; // idle end: day 29
        let busy = issue(&s, &b, &month, "tablet", 5, Some(30)).await; // ends day 35
        let ten_days = issue(&s, &a, &absolute_only, "watch", 21, None).await; // ends day 31
        assert_eq!(s.get_user(&a.id).await.expect("read").expect("a").live_devices, 2);

        let now = T0.plus_secs(31 * DAY + 1);
        // Expired for a second only: still in its grace period.
        let r = sweep(&s, now, Duration::from_secs(5), 30).await.expect("sweep");
        assert_eq!((r.removed(), r.credentials_examined, r.clients_swept), (2, 4, 2), "{r:?}");
        assert!(r.complete());
        assert!(!alive(&s, &too_old).await && !alive(&s, &idle).await);
        assert!(alive(&s, &old_forever).await && alive(&s, &busy).await && alive(&s, &ten_days).await);
        // The users' live devices follow (the revocation path counts them off).
        assert_eq!(s.get_user(&a.id).await.expect("read").expect("a").live_devices, 2, "phone (forever), watch");
        assert_eq!(s.get_user(&b.id).await.expect("read").expect("b").live_devices, 1, "tablet");

        // Past its grace period; a second run at the same moment finds nothing more.
        let later = now.plus_secs(GRACE_SECS);
        let r = sweep(&s, later, Duration::from_secs(5), 30).await.expect("sweep");
        assert_eq!(r.removed(), 1);
        assert!(!alive(&s, &ten_days).await);
        let r = sweep(&s, later, Duration::from_secs(5), 30).await.expect("sweep");
        assert_eq!((r.removed(), r.complete()), (0, true), "idempotent");
        assert!(alive(&s, &old_forever).await, "a token that never expires stays");
        assert_eq!(
            r.steps,
            [
                StepReport { step: "expired refresh tokens", removed: 0, complete: true },
                StepReport { step: "expired authorization codes", removed: 0, complete: true },
                StepReport { step: "expired audit events", removed: 0, complete: true },
            ]
        );
    }

    #[tokio::test]
    async fn a_sweep_out_of_budget_says_so_and_the_next_one_finishes() {
        let s = MemoryStore::new();
        let month = client(&s, "month", policy(Some(30), None)).await;
        let u = user(&s, "a@example.com").await;
        let mut issued = vec![];
        for i in 0..(WALK_BATCH_MAX as usize + 5) {
            issued.push(issue(&s, &u, &month, &format!("device {i}"), 0, None).await);
        }
        let now = T0.plus_secs(40 * DAY);
        let r = sweep(&s, now, Duration::ZERO, 30).await.expect("sweep");
        assert_eq!((r.removed(), r.complete()), (0, false));
        let r = sweep(&s, now, Duration::from_secs(5), 30).await.expect("sweep");
        assert_eq!((r.removed(), r.complete(), r.credentials_examined), (issued.len() as u64, true, 105));
        for c in &issued {
            assert!(!alive(&s, c).await);
        }
    }

    #[test]
    fn a_credential_is_swept_only_after_its_grace_period() {
        let c =
            Client { refresh_token: policy(Some(1), None), ..Client::new(ClientId::generate(), "x", AppType::Spa, T0) };
        let t = RefreshToken::generate(&UserId::generate(), 0);
        let cred = DeviceCredential {
            id: t.id().clone(),
            client_id: c.id.clone(),
            user_id: t.user().clone(),
            user_rev: 0,
            device_name: DeviceName::parse("d").expect("name"),
            scope: Scope::parse("openid").expect("scope"),
            secret_hash: t.secret_hash(),
            created_at: T0,
            created_ip: None,
            last_used_at: None,
            last_ip: None,
            use_count: 0,
            generation: None,
        };
        let end = T0.plus_secs(DAY);
        assert!(cred.expired(&c.refresh_token, end.plus_secs(1)), "refused from the next second");
        assert!(!sweepable(&cred, &c, end.plus_secs(GRACE_SECS)));
        assert!(sweepable(&cred, &c, end.plus_secs(GRACE_SECS + 1)));
    }

    #[tokio::test]
    async fn the_sweep_removes_audit_events_older_than_the_retention_and_keeps_the_rest() {
        use crate::audit::{AuditEvent, EventType, Source};
        use crate::ports::AuditLog;
        let s = MemoryStore::new();
        let now = T0.plus_secs(40 * DAY);
        let mut kept = Vec::new();
        let mut gone = Vec::new();
        for age_days in [0i64, 1, 9, 10] {
            let e = AuditEvent::new(EventType::SuccessLogin, now.plus_secs(-age_days * DAY), Source::default());
            s.record_event(&e).await.expect("record");
            kept.push(e);
        }
        for age_days in [11i64, 12, 17] {
            let e = AuditEvent::new(EventType::WrongPassword, now.plus_secs(-age_days * DAY), Source::default());
            s.record_event(&e).await.expect("record");
            gone.push(e);
        }
        let r = sweep(&s, now, Duration::from_secs(5), 10).await.expect("sweep");
        let step = r.steps.iter().find(|st| st.step == "expired audit events").expect("step");
        assert_eq!((step.removed, step.complete), (3, true), "{r:?}");
        let left = s.day_events(LogDay::of(now), &crate::audit::Direction::NewestFirst { before: None }, 100).await;
        assert_eq!(left.expect("read").len(), 1);
        for e in &kept {
            let day = s.day_events(LogDay::of(e.at()), &crate::audit::Direction::OldestFirst { after: None }, 100);
            assert!(day.await.expect("read").iter().any(|x| x.id == e.id), "kept {}", e.at().to_rfc3339());
        }
        for e in &gone {
            let day = s.day_events(LogDay::of(e.at()), &crate::audit::Direction::OldestFirst { after: None }, 100);
            assert!(day.await.expect("read").is_empty(), "removed {}", e.at().to_rfc3339());
        }
        let days: Vec<LogDay> = expired_log_days(now, 10).collect();
        assert_eq!(days.first(), Some(&LogDay::of(now).before(11)));
        assert_eq!(days.len(), LOG_LOOKBACK_DAYS as usize);
    }
}

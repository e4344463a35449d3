//! The refresh-token exchange as a state machine over one device credential.
//!
//! An exchange presents a token (and a client, an address, a moment). The decision depends on
//! the credential as stored — its [`Snapshot`] — and is one of:
//! - a [`Plan`]: a compare-and-set of the credential (the state it assumes, the change it
//!   makes). Written, it grants the exchange ([`granted`]);
//! - an answer without writing: rejected (with the reason), rate-limited, too many addresses.
//!
//! The caller does not read the credential first: the first plan is a guess ([`first_plan`]),
//! and a store that refuses a plan hands back the credential's state, from which [`decide`]
//! plans again. Every step is a pure function here; the store only turns a plan into one
//! conditional write and a refusal back into a snapshot ([`crate::ports::CredentialStore`]).
//! [`run`] drives the machine.
//!
//! Transitions (each unit-tested below):
//! - wrong secret, or a user id / revision that the secret does not bind → `Rejected(Unknown)`;
//!   no record → `Rejected(Unknown)`; the user deleted, blocked or moved to a new revision (the
//!   store checks it in the same write) → `Rejected(UserGone)`;
//! - issued to another client → `Rejected(WrongClient)`;
//! - this address's counter in the current window at the limit → `RateLimited`;
//!   below it → increment it;
//! - no counter for this address in the current window → start one at 1 (a counter of an older
//!   window is reset in place); if the credential already counts `max_addresses` addresses,
//!   first prune the counters of past windows (at most [`MAX_PRUNE`] per write); when
//!   `max_addresses` counters are of the current window → `TooManyAddresses`;
//! - the claim scopes the caller wants (`profile`, `email`) are granted as far as the stored
//!   grant includes them.
//!
//! Rotation (successor, reuse, leeway) will be further transitions of this machine: more state
//! in [`Snapshot`], more kinds of [`Plan`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::clock::Timestamp;
use crate::ids::{ClientId, UserId};
use crate::ports::{Contention, CredentialStore, ExchangeWrite, StoreError};
use crate::ratelimit::{Counter, RatePolicy, Step};
use crate::scope::Scope;
use crate::token::{RefreshToken, SecretHash};

/// Most stale address counters removed in one write.
pub const MAX_PRUNE: usize = 20;

/// What one exchange request presents.
#[derive(Debug)]
pub struct Presented<'a> {
    pub token: &'a RefreshToken,
    /// The client presenting the token; it must be the one the token was issued to.
    pub client_id: &'a ClientId,
    /// The rate-limit key of the source address ([`crate::ratelimit::address_key`]).
    pub address: &'a str,
    /// The source address as seen, recorded as the last IP.
    pub source_ip: &'a str,
    pub now: Timestamp,
    pub policy: RatePolicy,
    /// Most distinct addresses one token may be used from in one window.
    pub max_addresses: u32,
    /// Claim scopes the caller would like, each with a guess of whether the grant includes it
    /// (only the first plan uses the guess; a wrong one costs a round trip).
    pub claims: &'a [(&'static str, bool)],
}

impl Presented<'_> {
    fn window(&self) -> i64 {
        self.policy.window(self.now).index
    }
}

/// The credential as stored, as far as the exchange cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub secret_hash: SecretHash,
    pub user_id: UserId,
    pub user_rev: u32,
    pub client_id: ClientId,
    pub scope: Scope,
    /// Rate-limit counters by address key.
    pub counters: BTreeMap<String, Counter>,
}

/// A compare-and-set of the credential. Besides what the plan names, it always assumes the
/// credential exists with the presented secret, user, revision and client, and that the user is
/// still current; it always records the use (time, address, count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub rate: RatePlan,
    /// Each wanted claim scope with whether the grant is assumed to include it.
    pub claims: Vec<(&'static str, bool)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RatePlan {
    /// Assumes this address has no counter in `window` (none at all, or one of an older
    /// window) and, when it has none at all, that fewer than `below` counters exist; each
    /// counter in `prune` is of an older window. Sets this address's counter to 1 in `window`
    /// and removes `prune`.
    Start { window: i64, below: u32, prune: Vec<String> },
    /// Assumes this address's counter is at `expected` in `window`; sets it to `expected + 1`.
    Increment { window: i64, expected: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Write(Plan),
    Answer(Outcome),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Counted and recorded. `used` is the number of requests from this address in the
    /// current window, this one included. `granted_claims` is the part of the wanted claim
    /// scopes the grant includes.
    Granted {
        used: u32,
        granted_claims: Scope,
    },
    /// Over the limit for this (token, address); nothing was written.
    RateLimited {
        used: u32,
    },
    /// The token was used from too many addresses in this window.
    TooManyAddresses,
    Rejected(Rejection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No such token, a wrong secret, or revoked.
    Unknown,
    /// Issued to another client.
    WrongClient,
    /// The user was deleted, blocked, or revoked all its tokens (password change).
    UserGone,
}

/// What the store made of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Written as planned.
    Done,
    /// The credential is not in the state the plan assumed: its state (`None`: no record).
    Refused(Option<Snapshot>),
    /// Another request was changing the credential at the same time; after a pause, its
    /// committed state. The plan may still hold.
    Raced(Option<Snapshot>),
    /// The user was deleted, blocked or moved to a new revision.
    UserChanged,
}

/// The first plan, without reading: this address's counter as last seen by this process (a
/// [`Hints`] entry), else a new window; the caller's claim guesses.
pub fn first_plan(req: &Presented<'_>, hint: Option<Counter>) -> Plan {
    let window = req.window();
    let rate = match hint.map(|c| req.policy.step(window, Some(c))) {
        Some(Ok(Step::Increment { window, expected })) => RatePlan::Increment { window, expected },
        _ => RatePlan::Start { window, below: req.max_addresses, prune: vec![] },
    };
    Plan { rate, claims: req.claims.to_vec() }
}

/// The decision for a credential in state `snapshot` (`None`: there is no record).
pub fn decide(snapshot: Option<&Snapshot>, req: &Presented<'_>) -> Decision {
    let Some(s) = snapshot else { return Decision::Answer(Outcome::Rejected(Rejection::Unknown)) };
    if !s.secret_hash.ct_eq(&req.token.secret_hash()) {
        return Decision::Answer(Outcome::Rejected(Rejection::Unknown));
    }
    // The user id and revision travel in the token in clear; the secret binds them.
    if &s.user_id != req.token.user() || s.user_rev != req.token.user_rev() {
        return Decision::Answer(Outcome::Rejected(Rejection::Unknown));
    }
    if &s.client_id != req.client_id {
        return Decision::Answer(Outcome::Rejected(Rejection::WrongClient));
    }
    let claims = req.claims.iter().map(|(c, _)| (*c, s.scope.contains(c))).collect();
    let window = req.window();
    let mine = s.counters.get(req.address).copied();
    let rate = match req.policy.step(window, mine) {
        Err(used) => return Decision::Answer(Outcome::RateLimited { used }),
        Ok(Step::Increment { window, expected }) => RatePlan::Increment { window, expected },
        Ok(Step::Start { window }) if mine.is_some() || s.counters.len() < req.max_addresses as usize => {
            RatePlan::Start { window, below: req.max_addresses, prune: vec![] }
        }
        Ok(Step::Start { window }) => {
            let (stale, current): (Vec<_>, Vec<_>) = s.counters.iter().partition(|(_, c)| c.window < window);
            if current.len() >= req.max_addresses as usize {
                return Decision::Answer(Outcome::TooManyAddresses);
            }
            let prune: Vec<String> = stale.into_iter().take(MAX_PRUNE).map(|(address, _)| address.clone()).collect();
            // No counter added since this snapshot (a concurrent addition fails the write).
            let below = u32::try_from(s.counters.len()).unwrap_or(u32::MAX).saturating_add(1);
            RatePlan::Start { window, below, prune }
        }
    };
    Decision::Write(Plan { rate, claims })
}

/// Whether `plan` holds for a credential in state `s` (the condition a store writes it under).
pub fn holds(plan: &Plan, s: &Snapshot, req: &Presented<'_>) -> bool {
    let bound = s.secret_hash.ct_eq(&req.token.secret_hash())
        && &s.user_id == req.token.user()
        && s.user_rev == req.token.user_rev()
        && &s.client_id == req.client_id;
    let claims = plan.claims.iter().all(|(c, granted)| s.scope.contains(c) == *granted);
    let mine = s.counters.get(req.address);
    let rate = match &plan.rate {
        RatePlan::Start { window, below, prune } => {
            let fresh = match mine {
                None => s.counters.len() < *below as usize,
                Some(c) => c.window < *window,
            };
            fresh && prune.iter().all(|a| s.counters.get(a).is_some_and(|c| c.window < *window))
        }
        RatePlan::Increment { window, expected } => mine == Some(&Counter { window: *window, count: *expected }),
    };
    bound && claims && rate
}

/// The state after writing `plan` (what a store's write does to the rate-limit counters).
pub fn apply(plan: &Plan, s: &Snapshot, req: &Presented<'_>) -> Snapshot {
    let mut next = s.clone();
    match &plan.rate {
        RatePlan::Start { window, prune, .. } => {
            for a in prune {
                next.counters.remove(a);
            }
            next.counters.insert(req.address.to_owned(), Counter { window: *window, count: 1 });
        }
        RatePlan::Increment { window, expected } => {
            next.counters
                .insert(req.address.to_owned(), Counter { window: *window, count: expected.saturating_add(1) });
        }
    }
    next
}

/// What a written plan grants.
pub fn granted(plan: &Plan) -> Outcome {
    let used = match plan.rate {
        RatePlan::Start { .. } => 1,
        RatePlan::Increment { expected, .. } => expected.saturating_add(1),
    };
    let granted_claims = Scope::from_iter(plan.claims.iter().filter(|(_, g)| *g).map(|(c, _)| *c));
    Outcome::Granted { used, granted_claims }
}

/// The counter a written plan leaves for the caller's address.
fn counter_after(plan: &Plan) -> Counter {
    match plan.rate {
        RatePlan::Start { window, .. } => Counter { window, count: 1 },
        RatePlan::Increment { window, expected } => Counter { window, count: expected.saturating_add(1) },
    }
}

/// Runs the exchange: plan, write, and on a refusal decide again from the state the store
/// returns. Refusals are bounded by the limit (each one moves the counter or corrects a
/// guess); a refused plan that [`decide`] would make again means the store and this machine
/// disagree — [`StoreError::Unavailable`] rather than a loop.
pub async fn run<S: CredentialStore>(store: &S, hints: &Hints, req: &Presented<'_>) -> Result<Outcome, StoreError> {
    let key = (req.token.id().to_string(), req.address.to_owned());
    let mut plan = first_plan(req, hints.get(&key));
    let rounds = (req.policy.limit as usize).saturating_add(6).min(64);
    let mut contention = Contention::start();
    for _ in 0..rounds {
        let write = ExchangeWrite { req, plan: &plan };
        let (snapshot, raced) = match store.write_exchange(&write, &mut contention).await? {
            Written::Done => {
                hints.remember(key, counter_after(&plan));
                return Ok(granted(&plan));
            }
            Written::UserChanged => return Ok(Outcome::Rejected(Rejection::UserGone)),
            Written::Refused(s) => (s, false),
            Written::Raced(s) => (s, true),
        };
        match decide(snapshot.as_ref(), req) {
            Decision::Answer(outcome) => {
                if let Outcome::RateLimited { used } = outcome {
                    hints.remember(key, Counter { window: req.window(), count: used });
                }
                return Ok(outcome);
            }
            Decision::Write(next) if raced || next != plan => plan = next,
            Decision::Write(_) => {
                tracing::warn!(credential = %req.token.id(), "exchange refused for no known reason");
                return Err(StoreError::unavailable("exchange refused for no known reason"));
            }
        }
    }
    Err(StoreError::unavailable("exchange did not settle"))
}

/// Last known rate-limit counter per (credential id, address key) in this process: a guess
/// that saves a round trip when the same client comes back to the same warm process within a
/// window. Only a hint — every plan is written on the condition that it holds.
#[derive(Debug, Default)]
pub struct Hints {
    map: Mutex<HashMap<(String, String), Counter>>,
}

/// Most hints kept; beyond, the map starts again.
const HINTS_MAX: usize = 4096;

impl Hints {
    fn get(&self, key: &(String, String)) -> Option<Counter> {
        self.map.lock().ok().and_then(|m| m.get(key).copied())
    }

    fn remember(&self, key: (String, String), c: Counter) {
        if let Ok(mut m) = self.map.lock() {
            if m.len() >= HINTS_MAX {
                m.clear();
            }
            m.insert(key, c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::{EMAIL, PROFILE};

    const LIMIT: u32 = 3;
    const MAX_ADDRESSES: u32 = 2;
    const WINDOW_SECS: u32 = 60;

    struct World {
        token: RefreshToken,
        client: ClientId,
        stored: Snapshot,
    }

    fn world() -> World {
        let user = UserId::generate();
        let token = RefreshToken::generate(&user, 4);
        let client = ClientId::parse("app").expect("id");
        let stored = Snapshot {
            secret_hash: token.secret_hash(),
            user_id: user,
            user_rev: 4,
            client_id: client.clone(),
            scope: Scope::parse("openid offline_access profile").expect("scope"),
            counters: BTreeMap::new(),
        };
        World { token, client, stored }
    }

    fn at<'a>(w: &'a World, address: &'a str, secs: i64, claims: &'a [(&'static str, bool)]) -> Presented<'a> {
        Presented {
            token: &w.token,
            client_id: &w.client,
            address,
            source_ip: address,
            now: Timestamp::from_secs(secs),
            policy: RatePolicy { limit: LIMIT, window_secs: WINDOW_SECS },
            max_addresses: MAX_ADDRESSES,
            claims,
        }
    }

    fn plan(d: Decision) -> Plan {
        match d {
            Decision::Write(p) => p,
            Decision::Answer(o) => panic!("expected a plan, got {o:?}"),
        }
    }

    /// Decides, checks that the plan holds where it was decided, and writes it.
    fn step(s: &Snapshot, req: &Presented<'_>) -> (Outcome, Snapshot) {
        match decide(Some(s), req) {
            Decision::Answer(o) => (o, s.clone()),
            Decision::Write(p) => {
                assert!(holds(&p, s, req), "a decided plan holds on its own snapshot: {p:?}");
                (granted(&p), apply(&p, s, req))
            }
        }
    }

    #[test]
    fn no_record_is_unknown() {
        let w = world();
        assert_eq!(decide(None, &at(&w, "a", 0, &[])), Decision::Answer(Outcome::Rejected(Rejection::Unknown)));
    }

    #[test]
    fn a_wrong_secret_is_unknown() {
        let mut w = world();
        w.stored.secret_hash = SecretHash::of(b"another secret");
        let d = decide(Some(&w.stored), &at(&w, "a", 0, &[]));
        assert_eq!(d, Decision::Answer(Outcome::Rejected(Rejection::Unknown)));
    }

    #[test]
    fn a_user_or_revision_the_secret_does_not_bind_is_unknown() {
        let mut w = world();
        w.stored.user_rev = 5;
        assert_eq!(
            decide(Some(&w.stored), &at(&w, "a", 0, &[])),
            Decision::Answer(Outcome::Rejected(Rejection::Unknown))
        );
        let mut w = world();
        w.stored.user_id = UserId::generate();
        assert_eq!(
            decide(Some(&w.stored), &at(&w, "a", 0, &[])),
            Decision::Answer(Outcome::Rejected(Rejection::Unknown))
        );
    }

    #[test]
    fn another_client_is_wrong_client() {
        let mut w = world();
        w.client = ClientId::parse("other").expect("id");
        let d = decide(Some(&w.stored), &at(&w, "a", 0, &[]));
        assert_eq!(d, Decision::Answer(Outcome::Rejected(Rejection::WrongClient)));
    }

    #[test]
    fn counts_up_to_the_limit_then_refuses_until_the_next_window() {
        let w = world();
        let mut s = w.stored.clone();
        for expected in 1..=LIMIT {
            let (o, next) = step(&s, &at(&w, "a", 10, &[]));
            assert_eq!(o, Outcome::Granted { used: expected, granted_claims: Scope::default() });
            s = next;
        }
        assert_eq!(step(&s, &at(&w, "a", 59, &[])).0, Outcome::RateLimited { used: LIMIT });
        // The window rolls over: the counter restarts in place.
        let (o, s) = step(&s, &at(&w, "a", 60, &[]));
        assert_eq!(o, Outcome::Granted { used: 1, granted_claims: Scope::default() });
        assert_eq!(s.counters.get("a"), Some(&Counter { window: 1, count: 1 }));
        assert_eq!(s.counters.len(), 1);
    }

    #[test]
    fn addresses_count_separately() {
        let w = world();
        let mut s = w.stored.clone();
        for _ in 0..LIMIT {
            s = step(&s, &at(&w, "a", 0, &[])).1;
        }
        assert_eq!(step(&s, &at(&w, "a", 0, &[])).0, Outcome::RateLimited { used: LIMIT });
        assert!(matches!(step(&s, &at(&w, "b", 0, &[])).0, Outcome::Granted { used: 1, .. }));
    }

    #[test]
    fn too_many_addresses_in_one_window() {
        let w = world();
        let mut s = w.stored.clone();
        for a in ["a", "b"] {
            s = step(&s, &at(&w, a, 0, &[])).1;
        }
        assert_eq!(step(&s, &at(&w, "c", 30, &[])).0, Outcome::TooManyAddresses);
        // A known address still counts.
        assert!(matches!(step(&s, &at(&w, "a", 30, &[])).0, Outcome::Granted { used: 2, .. }));
    }

    #[test]
    fn counters_of_past_windows_are_pruned_to_make_room() {
        let w = world();
        let mut s = w.stored.clone();
        for a in ["a", "b"] {
            s = step(&s, &at(&w, a, 0, &[])).1;
        }
        let req = at(&w, "c", 60, &[]);
        let p = plan(decide(Some(&s), &req));
        assert_eq!(p.rate, RatePlan::Start { window: 1, below: 3, prune: vec!["a".into(), "b".into()] });
        let (o, s) = step(&s, &req);
        assert!(matches!(o, Outcome::Granted { used: 1, .. }));
        assert_eq!(s.counters.keys().collect::<Vec<_>>(), ["c"]);
    }

    #[test]
    fn pruning_is_bounded_per_write() {
        let w = world();
        let mut s = w.stored.clone();
        for i in 0..(MAX_PRUNE + 5) {
            s.counters.insert(format!("old-{i:02}"), Counter { window: 0, count: 1 });
        }
        let req = at(&w, "new", 60, &[]);
        let p = plan(decide(Some(&s), &req));
        let RatePlan::Start { prune, below, .. } = &p.rate else { panic!("start") };
        assert_eq!(prune.len(), MAX_PRUNE);
        assert!(holds(&p, &s, &req));
        assert_eq!(*below as usize, MAX_PRUNE + 6);
        let after = apply(&p, &s, &req);
        assert_eq!(after.counters.len(), 6);
        // The next new address prunes the rest.
        let (o, after) = step(&after, &at(&w, "newer", 61, &[]));
        assert!(matches!(o, Outcome::Granted { used: 1, .. }));
        assert_eq!(after.counters.keys().collect::<Vec<_>>(), ["new", "newer"]);
    }

    #[test]
    fn stale_counters_never_make_room_beyond_the_current_windows_addresses() {
        let w = world();
        let mut s = w.stored.clone();
        s.counters.insert("old".into(), Counter { window: 0, count: 1 });
        for a in ["a", "b"] {
            s.counters.insert(a.into(), Counter { window: 1, count: 1 });
        }
        assert_eq!(step(&s, &at(&w, "c", 61, &[])).0, Outcome::TooManyAddresses);
    }

    #[test]
    fn a_counter_ahead_of_our_clock_is_incremented_not_reset() {
        let w = world();
        let mut s = w.stored.clone();
        s.counters.insert("a".into(), Counter { window: 2, count: 1 });
        let p = plan(decide(Some(&s), &at(&w, "a", 60, &[])));
        assert_eq!(p.rate, RatePlan::Increment { window: 2, expected: 1 });
    }

    #[test]
    fn claim_scopes_are_granted_as_far_as_the_grant_goes() {
        let w = world();
        let wanted = [(PROFILE, false), (EMAIL, true)];
        let req = at(&w, "a", 0, &wanted);
        // The guess is wrong on both: the plan made from the stored state corrects it.
        let guess = first_plan(&req, None);
        assert!(!holds(&guess, &w.stored, &req));
        let p = plan(decide(Some(&w.stored), &req));
        assert_eq!(p.claims, vec![(PROFILE, true), (EMAIL, false)]);
        assert_eq!(granted(&p), Outcome::Granted { used: 1, granted_claims: Scope::from_iter([PROFILE]) });
    }

    #[test]
    fn the_first_plan_uses_the_hint_only_while_it_is_current_and_below_the_limit() {
        let w = world();
        let req = at(&w, "a", 65, &[]);
        let fresh = RatePlan::Start { window: 1, below: MAX_ADDRESSES, prune: vec![] };
        assert_eq!(first_plan(&req, None).rate, fresh);
        assert_eq!(first_plan(&req, Some(Counter { window: 0, count: 1 })).rate, fresh);
        assert_eq!(first_plan(&req, Some(Counter { window: 1, count: LIMIT })).rate, fresh);
        assert_eq!(
            first_plan(&req, Some(Counter { window: 1, count: 2 })).rate,
            RatePlan::Increment { window: 1, expected: 2 }
        );
    }

    #[test]
    fn a_plan_does_not_hold_once_another_request_moved_the_counter() {
        let w = world();
        let req = at(&w, "a", 0, &[]);
        let p = plan(decide(Some(&w.stored), &req));
        let moved = apply(&p, &w.stored, &req);
        assert!(!holds(&p, &moved, &req), "the same start twice would lose a count");
        let q = plan(decide(Some(&moved), &req));
        assert!(holds(&q, &moved, &req));
        assert_eq!(q.rate, RatePlan::Increment { window: 0, expected: 1 });
    }
}

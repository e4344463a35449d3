//! The refresh-token exchange as a state machine over one device credential.
//!
//! An exchange presents a token (and a client, an address, a moment). The decision depends on
//! the credential as stored — its [`Snapshot`] — and is one of:
//! - an [`Action`] to write: a [`Plan`], a compare-and-set of the credential (the state it
//!   assumes, the change it makes: count and record the use, and for a rotating family move to
//!   the next generation) that grants the exchange once written ([`granted`]); or a
//!   [`Revoke`] of the whole family (a retired member was presented again);
//! - an answer without writing: rejected (with the reason), rate-limited, too many addresses.
//!
//! The caller does not read the credential first: the first plan is a guess ([`first_plan`]),
//! and a store that refuses a plan hands back the credential's state, from which [`decide`]
//! plans again. Every step is a pure function here; the store only turns an action into one
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
//!   `max_addresses` counters are of the current window, the one with the fewest exchanges is
//!   forgotten to make room ([`RatePlan::Start::evict`]). A new address is never refused for
//!   want of room: whoever holds a stolen token can use up its own addresses' allowances, never
//!   lock the owner's address out (`max_addresses` bounds the record, not who may use it);
//! - the claim scopes the caller wants (`profile`, `email`) are granted as far as the stored
//!   grant includes them.
//!
//! Rotating families (a `rt2_` token, [`crate::token`]; the record keeps the current
//! generation, the hash of its secret, the hash of the previous one and when it rotated):
//! - the current member → rotate: the record moves to the next generation, whose secret is
//!   derived from the presented one, and the caller gets that successor;
//! - the immediately previous member within [`retry_window`] of the rotation → the same
//!   successor again (a retry, or a request that raced the rotation), no rotation;
//! - any other retired member (its tag proves the service issued it) → `Revoke` the family in
//!   one write, then `Rejected(Reused)`; every member fails from then on;
//! - a rotating family presented where no successor can be handed out (`/delegation`), a
//!   non-rotating token against a rotating record or the reverse → `Rejected(Unknown)`;
//! - a non-rotating token of a client that now rotates (`migrate`) → it starts a family: the
//!   record moves to generation 1, derived from the token's secret ([`RefreshToken::next_member`]),
//!   and the token is its previous member (a retry within the window gets the same member).
//!
//! Lifetimes (the client's, [`Expiry`]): a credential older than the absolute lifetime (from
//! its issue: rotation does not extend it), or unused for longer than the idle lifetime, is
//! `Rejected(Unknown)`; every plan is written on the condition that neither has passed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::clock::Timestamp;
use crate::credential::DeviceCredential;
use crate::ids::{ClientId, DeviceName, UserId};
use crate::ports::{Contention, CredentialStore, ExchangeWrite, StoreError};
use crate::ratelimit::{Counter, RatePolicy, Step};
use crate::scope::Scope;
use crate::token::{RefreshToken, RotationKeys, SecretHash};

/// Most refused writes one exchange request makes before giving up (503): the default limit
/// (10) plus the guesses a plan can get wrong.
pub const MAX_REFUSALS: usize = 16;

/// Most stale address counters removed in one write.
pub const MAX_PRUNE: usize = 20;

/// However short a client's leeway, a presentation of the immediately previous member this
/// soon after the rotation is taken for a request that raced it (same successor, no
/// revocation): concurrent requests of one token start within moments of each other.
pub const RACE_WINDOW_SECS: u32 = 5;

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
    /// The keys of rotating families, where the endpoint hands out successors (`None`: it
    /// cannot, and rotating tokens are refused there).
    pub rotation: Option<&'a RotationKeys>,
    /// The client's leeway: how long after a rotation the previous member still gets the
    /// same successor.
    pub leeway_secs: u32,
    /// The client rotates: a non-rotating token presented here starts a family (its next
    /// member is generation 1), as Auth0 migrates clients that turn rotation on.
    pub migrate: bool,
    /// The client no longer rotates: the current member of a family presented here ends the
    /// family — the record becomes non-rotating, its secret the member's demoted token's
    /// ([`RefreshToken::demoted`]), which is the answer (a retry within the window gets the
    /// same one) — as Auth0 migrates clients that turn rotation off.
    pub demote: bool,
    /// The client's lifetimes for its refresh tokens.
    pub expiry: Expiry,
}

/// How long a credential lives: from its issue (absolute) and since its last use (idle);
/// `None`: for ever (the seed's tokens).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expiry {
    pub absolute_secs: Option<u32>,
    pub idle_secs: Option<u32>,
}

/// The moments a live credential must be after: issued at or after `issued_after`, last used
/// (or issued, if never used) at or after `active_after`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Alive {
    pub issued_after: Option<Timestamp>,
    pub active_after: Option<Timestamp>,
}

impl Alive {
    fn at(req: &Presented<'_>) -> Self {
        Self::of(req.expiry, req.now)
    }

    /// What a credential must be after to be alive at `now` under `expiry`.
    pub fn of(expiry: Expiry, now: Timestamp) -> Self {
        let before = |secs: Option<u32>| secs.map(|s| now.plus_secs(-i64::from(s)));
        Self { issued_after: before(expiry.absolute_secs), active_after: before(expiry.idle_secs) }
    }

    /// Whether a credential issued at `created_at` and last used at `last_used_at` is alive.
    pub fn holds(&self, created_at: Timestamp, last_used_at: Option<Timestamp>) -> bool {
        self.issued_after.is_none_or(|t| created_at >= t)
            && self.active_after.is_none_or(|t| last_used_at.unwrap_or(created_at) >= t)
    }
}

impl Presented<'_> {
    fn window(&self) -> i64 {
        self.policy.window(self.now).index
    }
}

/// How long after a rotation the immediately previous member still gets the same successor.
pub fn retry_window(req: &Presented<'_>) -> i64 {
    i64::from(req.leeway_secs.max(RACE_WINDOW_SECS)) * 1000
}

/// The credential as stored, as far as the exchange cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The current secret's hash (of the current member, for a rotating family).
    pub secret_hash: SecretHash,
    pub user_id: UserId,
    pub user_rev: u32,
    pub client_id: ClientId,
    pub scope: Scope,
    pub device_name: DeviceName,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    /// Rate-limit counters by address key.
    pub counters: BTreeMap<String, Counter>,
    /// A rotating family's state; `None` for a non-rotating credential.
    pub rotation: Option<Rotation>,
    /// A non-rotating credential that was a rotating family: the hash of the member that ended
    /// it and when.
    pub demoted: Option<(SecretHash, Timestamp)>,
}

impl Snapshot {
    /// A credential record as the exchange sees it: the credential, its rate-limit counters
    /// and, for a rotating family, the previous member's secret hash and rotation time.
    pub fn of(
        c: DeviceCredential,
        counters: BTreeMap<String, Counter>,
        previous: Option<(SecretHash, Timestamp)>,
    ) -> Self {
        Self {
            secret_hash: c.secret_hash,
            user_id: c.user_id,
            user_rev: c.user_rev,
            client_id: c.client_id,
            scope: c.scope,
            device_name: c.device_name,
            created_at: c.created_at,
            last_used_at: c.last_used_at,
            counters,
            demoted: if c.generation.is_none() { previous.clone() } else { None },
            rotation: c.generation.map(|generation| Rotation { generation, previous }),
        }
    }
}

/// Where a rotating family stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The current member's generation.
    pub generation: u32,
    /// The previous member's secret hash and when it was rotated away (none at generation 0).
    pub previous: Option<(SecretHash, Timestamp)>,
}

/// What a plan assumes about the presented secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretCheck {
    /// It is the current secret (of generation `generation`; `None`: a non-rotating record).
    Current { generation: Option<u32> },
    /// It is the previous member's, the family is at `generation`, rotated at `rotated_at`.
    Previous { generation: u32, rotated_at: Timestamp },
    /// It is the member that ended the family (the record is non-rotating since `rotated_at`).
    Demoted { rotated_at: Timestamp },
}

/// A compare-and-set of the credential. Besides what it names, it always assumes the credential
/// exists with the presented user, revision and client, and that the user is still current; it
/// always records the use (time, address, count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub rate: RatePlan,
    /// Each wanted claim scope with whether the grant is assumed to include it.
    pub claims: Vec<(&'static str, bool)>,
    pub secret: SecretCheck,
    /// Rotate: the next member's secret hash becomes the current one (the presented one the
    /// previous), the generation moves on, the rotation time is now.
    pub rotate_to: Option<SecretHash>,
    /// Demote: the family ends, the record becomes non-rotating with this secret hash (the
    /// presented member's is kept as the one that ended it, with the time).
    pub demote_to: Option<SecretHash>,
    /// The credential has not outlived the client's lifetimes.
    pub alive: Alive,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RatePlan {
    /// Assumes this address has no counter in `window` (none at all, or one of an older
    /// window) and, when it has none at all, that fewer than `below` counters exist; each
    /// counter in `prune` is of an older window; `evict`, a counter of the current window,
    /// is still as seen. Sets this address's counter to 1 in `window` and removes `prune` and
    /// `evict`.
    Start { window: i64, below: u32, prune: Vec<String>, evict: Option<(String, Counter)> },
    /// Assumes this address's counter is at `expected` in `window`; sets it to `expected + 1`.
    Increment { window: i64, expected: u32 },
}

/// Deletes a rotating family that is still at `generation` (a retired member was presented).
/// `device_name` lets the store count the token off the user's devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoke {
    pub generation: u32,
    pub device_name: DeviceName,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Use(Plan),
    Revoke(Revoke),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Write(Action),
    Answer(Outcome),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Counted and recorded. `used` is the number of requests from this address in the
    /// current window, this one included. `granted_claims` is the part of the wanted claim
    /// scopes the grant includes. `successor`: answer with the presented token's successor
    /// ([`RefreshToken::successor`]) — rotated now, or by the request this one retries.
    Granted {
        used: u32,
        granted_claims: Scope,
        successor: bool,
        /// Answer with the presented member's demoted token ([`RefreshToken::demoted`]):
        /// the family ended now, or by the request this one retries.
        demoted: bool,
    },
    /// Over the limit for this (token, address); nothing was written.
    RateLimited {
        used: u32,
    },
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
    /// A retired member of a rotating family: the family is revoked.
    Reused,
}

/// What the store made of an action.
#[derive(Debug, Clone, PartialEq, Eq)]
// Returned once per write and consumed at once: boxing the snapshot would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Written {
    /// Written as planned.
    Done,
    /// The credential is not in the state the action assumed: its state (`None`: no record).
    Refused(Option<Snapshot>),
    /// The user was deleted, blocked or moved to a new revision.
    UserChanged,
}

/// The first plan, without reading: this address's counter as last seen by this process (a
/// [`Hints`] entry), else a new window; the caller's claim guesses; for a rotating token,
/// that it is the current member.
pub fn first_plan(req: &Presented<'_>, hint: Option<Counter>) -> Plan {
    let window = req.window();
    let rate = match hint.map(|c| req.policy.step(window, Some(c))) {
        Some(Ok(Step::Increment { window, expected })) => RatePlan::Increment { window, expected },
        _ => RatePlan::Start { window, below: req.max_addresses, prune: vec![], evict: None },
    };
    let generation = req.token.generation();
    let (rotate_to, demote_to) = match (generation, req.rotation) {
        (Some(_), Some(keys)) if req.demote => (None, req.token.demoted(keys).map(|t| t.secret_hash())),
        (Some(_), Some(keys)) => (req.token.successor(keys).map(|t| t.secret_hash()), None),
        (None, Some(keys)) if req.migrate => (req.token.next_member(keys).map(|t| t.secret_hash()), None),
        _ => (None, None),
    };
    Plan {
        rate,
        claims: req.claims.to_vec(),
        secret: SecretCheck::Current { generation },
        rotate_to,
        demote_to,
        alive: Alive::at(req),
    }
}

/// Which member of its family the presented token is, by the stored state.
enum Member {
    /// Non-rotating, or the current member of a rotating family.
    Current {
        rotate_to: Option<SecretHash>,
        demote_to: Option<SecretHash>,
    },
    /// The member that ended the family, within the retry window: the same demoted token again.
    RetryDemoted {
        rotated_at: Timestamp,
    },
    /// The immediately previous member, within the retry window: the same successor again.
    Retry {
        generation: u32,
        rotated_at: Timestamp,
    },
    /// A retired member the service issued.
    Retired {
        generation: u32,
    },
    Unknown,
}

fn member(s: &Snapshot, req: &Presented<'_>) -> Member {
    let presented = req.token.secret_hash();
    match (&s.rotation, req.token.generation(), req.rotation) {
        (None, None, Some(keys)) if req.migrate && s.secret_hash.ct_eq(&presented) => {
            Member::Current { rotate_to: req.token.next_member(keys).map(|t| t.secret_hash()), demote_to: None }
        }
        (None, None, _) if s.secret_hash.ct_eq(&presented) => Member::Current { rotate_to: None, demote_to: None },
        // The member that ended this family (its client turned rotation off), retried.
        (None, Some(_), Some(keys)) => match &s.demoted {
            Some((ended_by, rotated_at))
                if ended_by.ct_eq(&presented)
                    && req.now.millis().saturating_sub(rotated_at.millis()) <= retry_window(req)
                    && req.token.demoted(keys).is_some_and(|t| t.secret_hash().ct_eq(&s.secret_hash)) =>
            {
                Member::RetryDemoted { rotated_at: *rotated_at }
            }
            _ => Member::Unknown,
        },
        // The non-rotating token that started this family, retried within the window.
        (Some(r), None, Some(keys)) => match &r.previous {
            Some((previous, rotated_at))
                if r.generation == 1
                    && previous.ct_eq(&presented)
                    && req.now.millis().saturating_sub(rotated_at.millis()) <= retry_window(req)
                    && req.token.next_member(keys).is_some_and(|t| t.secret_hash().ct_eq(&s.secret_hash)) =>
            {
                Member::Retry { generation: 1, rotated_at: *rotated_at }
            }
            _ => Member::Unknown,
        },
        (Some(r), Some(g), Some(keys)) => {
            let successor = req.token.successor(keys);
            if g == r.generation && s.secret_hash.ct_eq(&presented) {
                if req.demote {
                    return Member::Current {
                        rotate_to: None,
                        demote_to: req.token.demoted(keys).map(|t| t.secret_hash()),
                    };
                }
                return Member::Current { rotate_to: successor.map(|t| t.secret_hash()), demote_to: None };
            }
            if let Some((previous, rotated_at)) = &r.previous
                && g.checked_add(1) == Some(r.generation)
                && previous.ct_eq(&presented)
                && req.now.millis().saturating_sub(rotated_at.millis()) <= retry_window(req)
                && successor.is_some_and(|t| t.secret_hash().ct_eq(&s.secret_hash))
            {
                return Member::Retry { generation: r.generation, rotated_at: *rotated_at };
            }
            if g < r.generation && req.token.is_genuine(keys) {
                return Member::Retired { generation: r.generation };
            }
            Member::Unknown
        }
        _ => Member::Unknown,
    }
}

/// The decision for a credential in state `snapshot` (`None`: there is no record).
pub fn decide(snapshot: Option<&Snapshot>, req: &Presented<'_>) -> Decision {
    let Some(s) = snapshot else { return Decision::Answer(Outcome::Rejected(Rejection::Unknown)) };
    let alive = Alive::at(req);
    if !alive.holds(s.created_at, s.last_used_at) {
        return Decision::Answer(Outcome::Rejected(Rejection::Unknown));
    }
    let member = member(s, req);
    if matches!(member, Member::Unknown) {
        return Decision::Answer(Outcome::Rejected(Rejection::Unknown));
    }
    // The user id and revision travel in the token in clear; the secret binds them.
    if &s.user_id != req.token.user() || s.user_rev != req.token.user_rev() {
        return Decision::Answer(Outcome::Rejected(Rejection::Unknown));
    }
    if &s.client_id != req.client_id {
        return Decision::Answer(Outcome::Rejected(Rejection::WrongClient));
    }
    let (secret, rotate_to, demote_to) = match member {
        Member::Current { rotate_to, demote_to } => {
            (SecretCheck::Current { generation: s.rotation.as_ref().map(|r| r.generation) }, rotate_to, demote_to)
        }
        Member::Retry { generation, rotated_at } => (SecretCheck::Previous { generation, rotated_at }, None, None),
        Member::RetryDemoted { rotated_at } => (SecretCheck::Demoted { rotated_at }, None, None),
        Member::Retired { generation } => {
            return Decision::Write(Action::Revoke(Revoke { generation, device_name: s.device_name.clone() }));
        }
        Member::Unknown => return Decision::Answer(Outcome::Rejected(Rejection::Unknown)),
    };
    let claims = req.claims.iter().map(|(c, _)| (*c, s.scope.contains(c))).collect();
    let window = req.window();
    let mine = s.counters.get(req.address).copied();
    let rate = match req.policy.step(window, mine) {
        Err(used) => return Decision::Answer(Outcome::RateLimited { used }),
        Ok(Step::Increment { window, expected }) => RatePlan::Increment { window, expected },
        Ok(Step::Start { window }) if mine.is_some() || s.counters.len() < req.max_addresses as usize => {
            RatePlan::Start { window, below: req.max_addresses, prune: vec![], evict: None }
        }
        Ok(Step::Start { window }) => {
            let (stale, current): (Vec<_>, Vec<_>) = s.counters.iter().partition(|(_, c)| c.window < window);
            // Room: the least-used current counter goes (ties: the first address in order).
            let evict = (current.len() >= req.max_addresses as usize)
                .then(|| current.iter().min_by_key(|(a, c)| (c.count, *a)).map(|(a, c)| ((*a).clone(), **c)))
                .flatten();
            let prune: Vec<String> = stale.into_iter().take(MAX_PRUNE).map(|(address, _)| address.clone()).collect();
            // No counter added since this snapshot (a concurrent addition fails the write).
            let below = u32::try_from(s.counters.len()).unwrap_or(u32::MAX).saturating_add(1);
            RatePlan::Start { window, below, prune, evict }
        }
    };
    Decision::Write(Action::Use(Plan { rate, claims, secret, rotate_to, demote_to, alive }))
}

/// Whether `action` holds for a credential in state `s` (the condition a store writes it
/// under).
pub fn holds(action: &Action, s: &Snapshot, req: &Presented<'_>) -> bool {
    let plan = match action {
        Action::Revoke(r) => return s.rotation.as_ref().is_some_and(|x| x.generation == r.generation),
        Action::Use(plan) => plan,
    };
    let presented = req.token.secret_hash();
    let secret = match &plan.secret {
        // The current member of a rotating family is always rotated (or, where its client no
        // longer rotates, demoted), and a non-rotating token where its client now rotates
        // starts a family.
        SecretCheck::Current { generation: Some(_) } if req.demote && plan.demote_to.is_none() => false,
        SecretCheck::Current { generation: Some(_) } if !req.demote && plan.rotate_to.is_none() => false,
        SecretCheck::Current { generation: None }
            if req.migrate && req.rotation.is_some() && plan.rotate_to.is_none() =>
        {
            false
        }
        SecretCheck::Current { generation } => {
            s.secret_hash.ct_eq(&presented) && s.rotation.as_ref().map(|r| r.generation) == *generation
        }
        SecretCheck::Previous { generation, rotated_at } => s.rotation.as_ref().is_some_and(|r| {
            r.generation == *generation
                && r.previous.as_ref().is_some_and(|(h, at)| h.ct_eq(&presented) && at == rotated_at)
        }),
        SecretCheck::Demoted { rotated_at } => {
            s.rotation.is_none() && s.demoted.as_ref().is_some_and(|(h, at)| h.ct_eq(&presented) && at == rotated_at)
        }
    };
    let bound = &s.user_id == req.token.user() && s.user_rev == req.token.user_rev() && &s.client_id == req.client_id;
    let claims = plan.claims.iter().all(|(c, granted)| s.scope.contains(c) == *granted);
    let mine = s.counters.get(req.address);
    let rate = match &plan.rate {
        RatePlan::Start { window, below, prune, evict } => {
            let fresh = match mine {
                None => s.counters.len() < *below as usize,
                Some(c) => c.window < *window,
            };
            fresh
                && prune.iter().all(|a| s.counters.get(a).is_some_and(|c| c.window < *window))
                && evict.as_ref().is_none_or(|(a, seen)| s.counters.get(a) == Some(seen))
        }
        RatePlan::Increment { window, expected } => mine == Some(&Counter { window: *window, count: *expected }),
    };
    secret && bound && claims && rate && plan.alive.holds(s.created_at, s.last_used_at)
}

/// The state after writing `action` (`None`: the record is gone).
pub fn apply(action: &Action, s: &Snapshot, req: &Presented<'_>) -> Option<Snapshot> {
    let plan = match action {
        Action::Revoke(_) => return None,
        Action::Use(plan) => plan,
    };
    let mut next = s.clone();
    match &plan.rate {
        RatePlan::Start { window, prune, evict, .. } => {
            for a in prune.iter().chain(evict.iter().map(|(a, _)| a)) {
                next.counters.remove(a);
            }
            next.counters.insert(req.address.to_owned(), Counter { window: *window, count: 1 });
        }
        RatePlan::Increment { window, expected } => {
            next.counters
                .insert(req.address.to_owned(), Counter { window: *window, count: expected.saturating_add(1) });
        }
    }
    next.last_used_at = Some(req.now);
    if let Some(to) = &plan.rotate_to {
        // A non-rotating record starting a family moves to generation 1.
        let generation = s.rotation.as_ref().map_or(1, |r| r.generation.saturating_add(1));
        next.rotation = Some(Rotation { generation, previous: Some((s.secret_hash.clone(), req.now)) });
        next.demoted = None;
        next.secret_hash = to.clone();
    }
    if let Some(to) = &plan.demote_to {
        next.rotation = None;
        next.demoted = Some((s.secret_hash.clone(), req.now));
        next.secret_hash = to.clone();
    }
    Some(next)
}

/// What a written action answers.
pub fn granted(action: &Action) -> Outcome {
    let plan = match action {
        Action::Revoke(_) => return Outcome::Rejected(Rejection::Reused),
        Action::Use(plan) => plan,
    };
    let used = match plan.rate {
        RatePlan::Start { .. } => 1,
        RatePlan::Increment { expected, .. } => expected.saturating_add(1),
    };
    let granted_claims = Scope::from_iter(plan.claims.iter().filter(|(_, g)| *g).map(|(c, _)| *c));
    let successor = plan.rotate_to.is_some() || matches!(plan.secret, SecretCheck::Previous { .. });
    let demoted = plan.demote_to.is_some() || matches!(plan.secret, SecretCheck::Demoted { .. });
    Outcome::Granted { used, granted_claims, successor, demoted }
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
/// guess); a refused action that [`decide`] would make again means the store and this machine
/// disagree — [`StoreError::Unavailable`] rather than a loop.
pub async fn run<S: CredentialStore>(store: &S, hints: &Hints, req: &Presented<'_>) -> Result<Outcome, StoreError> {
    // A rotating member where no successor can be handed out: refused without writing (a plain
    // use would let it be exchanged for ever without rotating).
    if req.token.generation().is_some() && req.rotation.is_none() {
        return Ok(Outcome::Rejected(Rejection::Unknown));
    }
    let key = (req.token.id().to_string(), req.address.to_owned());
    let mut first = first_plan(req, hints.get(&key));
    if let Some(claims) = hints.claims(&key.0, req.claims) {
        first.claims = claims;
    }
    let mut action = Action::Use(first);
    // Refusals are bounded by the limit (each one moves the counter or corrects a guess);
    // races by the store's contention budget, which spans every round (`Contention`).
    // A refusal means another request moved this address's counter (or a guess was wrong):
    // at most `limit` of those, and never more than `MAX_REFUSALS` transactions for one
    // request, whatever the configured limit (a request that loses more races answers 503).
    let max_refusals = (req.policy.limit as usize).saturating_add(6).min(MAX_REFUSALS);
    let mut refusals = 0;
    let mut contention = Contention::start();
    loop {
        let write = ExchangeWrite { req, action: &action };
        let snapshot = match store.write_exchange(&write, &mut contention).await? {
            Written::Done => {
                if let Action::Use(plan) = &action {
                    hints.remember_claims(&key.0, &plan.claims);
                    hints.remember(key, counter_after(plan));
                }
                return Ok(granted(&action));
            }
            Written::UserChanged => return Ok(Outcome::Rejected(Rejection::UserGone)),
            Written::Refused(s) => {
                refusals += 1;
                if refusals > max_refusals {
                    return Err(StoreError::unavailable("exchange did not settle"));
                }
                s
            }
        };
        match decide(snapshot.as_ref(), req) {
            Decision::Answer(outcome) => {
                if let Outcome::RateLimited { used } = outcome {
                    hints.remember(key, Counter { window: req.window(), count: used });
                }
                return Ok(outcome);
            }
            Decision::Write(next) if next != action => action = next,
            Decision::Write(_) => {
                tracing::warn!(credential = %req.token.id(), "exchange refused for no known reason");
                return Err(StoreError::unavailable("exchange refused for no known reason"));
            }
        }
    }
}

/// Last known rate-limit counter per (credential id, address key) in this process, and which
/// of the claims a caller asks about each credential's grant holds: guesses that save a round
/// trip when the same client comes back to the same warm process (the claims: a refresh grant
/// of `openid offline_access` otherwise guesses spa-js's `profile email` first and pays a
/// refused transaction on every refresh). Only hints — every plan is written on the condition
/// that it holds.
#[derive(Debug, Default)]
pub struct Hints {
    map: Mutex<HashMap<(String, String), Counter>>,
    claims: Mutex<HashMap<String, Vec<(&'static str, bool)>>>,
}

/// Most hints kept; beyond, the map starts again.
const HINTS_MAX: usize = 4096;

impl Hints {
    fn get(&self, key: &(String, String)) -> Option<Counter> {
        self.map.lock().ok().and_then(|m| m.get(key).copied())
    }

    /// The claims last granted to credential `id` for the same questions as `asked` (same
    /// claims, same order), if this process has seen them.
    fn claims(&self, id: &str, asked: &[(&'static str, bool)]) -> Option<Vec<(&'static str, bool)>> {
        let map = self.claims.lock().ok()?;
        let known = map.get(id)?;
        let same = known.len() == asked.len() && known.iter().zip(asked).all(|((a, _), (b, _))| a == b);
        same.then(|| known.clone())
    }

    fn remember_claims(&self, id: &str, claims: &[(&'static str, bool)]) {
        if let Ok(mut m) = self.claims.lock() {
            if m.len() >= HINTS_MAX {
                m.clear();
            }
            if m.get(id).is_none_or(|known| known.as_slice() != claims) {
                m.insert(id.to_owned(), claims.to_vec());
            }
        }
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
    use secrecy::SecretBox;

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
            device_name: DeviceName::parse("phone").expect("name"),
            created_at: Timestamp::from_secs(0),
            last_used_at: None,
            counters: BTreeMap::new(),
            rotation: None,
            demoted: None,
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
            rotation: None,
            leeway_secs: 0,
            expiry: Expiry::default(),
            migrate: false,
            demote: false,
        }
    }

    fn plan(d: Decision) -> Plan {
        match d {
            Decision::Write(Action::Use(p)) => p,
            other => panic!("expected a plan, got {other:?}"),
        }
    }

    /// Decides, checks that the action holds where it was decided, and writes it.
    fn step(s: &Snapshot, req: &Presented<'_>) -> (Outcome, Snapshot) {
        let (o, after) = step_to(s, req);
        (o, after.expect("the record is still there"))
    }

    /// As [`step`], for actions that may delete the record.
    fn step_to(s: &Snapshot, req: &Presented<'_>) -> (Outcome, Option<Snapshot>) {
        match decide(Some(s), req) {
            Decision::Answer(o) => (o, Some(s.clone())),
            Decision::Write(a) => {
                assert!(holds(&a, s, req), "a decided action holds on its own snapshot: {a:?}");
                (granted(&a), apply(&a, s, req))
            }
        }
    }

    fn granted_(used: u32, claims: Scope) -> Outcome {
        Outcome::Granted { used, granted_claims: claims, successor: false, demoted: false }
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
            assert_eq!(o, granted_(expected, Scope::default()));
            s = next;
        }
        assert_eq!(step(&s, &at(&w, "a", 59, &[])).0, Outcome::RateLimited { used: LIMIT });
        // The window rolls over: the counter restarts in place.
        let (o, s) = step(&s, &at(&w, "a", 60, &[]));
        assert_eq!(o, granted_(1, Scope::default()));
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
        // A third address is not refused: the least-used counter (b: 1, a: 2) makes room.
        s = step(&s, &at(&w, "a", 1, &[])).1;
        let req = at(&w, "c", 30, &[]);
        let p = plan(decide(Some(&s), &req));
        assert_eq!(
            p.rate,
            RatePlan::Start {
                window: 0,
                below: 3,
                prune: vec![],
                evict: Some(("b".into(), Counter { window: 0, count: 1 }))
            }
        );
        let (o, after) = step(&s, &req);
        assert!(matches!(o, Outcome::Granted { used: 1, .. }));
        assert_eq!(after.counters.keys().collect::<Vec<_>>(), ["a", "c"], "the record stays bounded");
        // The evicted counter moved meanwhile: the plan no longer holds.
        let mut moved = s.clone();
        moved.counters.insert("b".into(), Counter { window: 0, count: 2 });
        assert!(!holds(&Action::Use(p), &moved, &req));
        // A known address still counts on.
        assert!(matches!(step(&after, &at(&w, "a", 30, &[])).0, Outcome::Granted { used: 3, .. }));
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
        assert_eq!(p.rate, RatePlan::Start { window: 1, below: 3, prune: vec!["a".into(), "b".into()], evict: None });
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
        assert!(holds(&Action::Use(p.clone()), &s, &req));
        assert_eq!(*below as usize, MAX_PRUNE + 6);
        let after = apply(&Action::Use(p.clone()), &s, &req).expect("kept");
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
        let (o, after) = step(&s, &at(&w, "c", 61, &[]));
        assert!(matches!(o, Outcome::Granted { used: 1, .. }));
        assert_eq!(after.counters.len(), 2, "the stale one pruned and a current one evicted");
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
        assert!(!holds(&Action::Use(guess), &w.stored, &req));
        let p = plan(decide(Some(&w.stored), &req));
        assert_eq!(p.claims, vec![(PROFILE, true), (EMAIL, false)]);
        assert_eq!(granted(&Action::Use(p)), granted_(1, Scope::from_iter([PROFILE])));
    }

    #[test]
    fn the_first_plan_uses_the_hint_only_while_it_is_current_and_below_the_limit() {
        let w = world();
        let req = at(&w, "a", 65, &[]);
        let fresh = RatePlan::Start { window: 1, below: MAX_ADDRESSES, prune: vec![], evict: None };
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
        let p = Action::Use(plan(decide(Some(&w.stored), &req)));
        let moved = apply(&p, &w.stored, &req).expect("kept");
        assert!(!holds(&p, &moved, &req), "the same start twice would lose a count");
        let q = plan(decide(Some(&moved), &req));
        assert!(holds(&Action::Use(q.clone()), &moved, &req));
        assert_eq!(q.rate, RatePlan::Increment { window: 0, expected: 1 });
    }

    // ------------------------------------------------------------ rotating families

    fn keys() -> RotationKeys {
        RotationKeys::new(&SecretBox::new(Box::new([7; 32])))
    }

    /// A rotating family at generation 0, and its first member.
    fn family(k: &RotationKeys) -> World {
        let mut w = world();
        w.token = RefreshToken::generate_rotating(w.token.user(), 4, k);
        w.stored.secret_hash = w.token.secret_hash();
        w.stored.rotation = Some(Rotation { generation: 0, previous: None });
        w
    }

    fn rotating<'a>(
        token: &'a RefreshToken,
        client: &'a ClientId,
        k: &'a RotationKeys,
        secs: i64,
        leeway_secs: u32,
    ) -> Presented<'a> {
        Presented {
            token,
            client_id: client,
            address: "a",
            source_ip: "a",
            now: Timestamp::from_secs(secs),
            policy: RatePolicy { limit: 100, window_secs: WINDOW_SECS },
            max_addresses: MAX_ADDRESSES,
            claims: &[],
            rotation: Some(k),
            leeway_secs,
            expiry: Expiry::default(),
            migrate: true,
            demote: false,
        }
    }

    fn successor_granted(o: &Outcome) -> bool {
        matches!(o, Outcome::Granted { successor: true, .. })
    }

    #[test]
    fn the_current_member_rotates_to_its_successor() {
        let k = keys();
        let w = family(&k);
        let (o, after) = step(&w.stored, &rotating(&w.token, &w.client, &k, 100, 0));
        assert!(successor_granted(&o), "{o:?}");
        let next = w.token.successor(&k).expect("next");
        assert!(after.secret_hash.ct_eq(&next.secret_hash()), "the successor is the current member now");
        assert_eq!(
            after.rotation,
            Some(Rotation { generation: 1, previous: Some((w.token.secret_hash(), Timestamp::from_secs(100))) })
        );
        // And the successor rotates in turn.
        let (o, after) = step(&after, &rotating(&next, &w.client, &k, 200, 0));
        assert!(successor_granted(&o));
        assert_eq!(after.rotation.map(|r| r.generation), Some(2));
    }

    #[test]
    fn the_previous_member_within_the_window_gets_the_same_successor_without_rotating() {
        let k = keys();
        let w = family(&k);
        let (_, rotated) = step(&w.stored, &rotating(&w.token, &w.client, &k, 100, 0));
        // A retry (or a request that raced the rotation) within the race window, leeway 0.
        let (o, again) = step(&rotated, &rotating(&w.token, &w.client, &k, 100 + i64::from(RACE_WINDOW_SECS), 0));
        assert!(successor_granted(&o), "{o:?}");
        assert_eq!(
            (again.rotation, &again.secret_hash),
            (rotated.rotation.clone(), &rotated.secret_hash),
            "no rotation"
        );
        // With a 30 s leeway, 30 s later still.
        let (o, _) = step(&rotated, &rotating(&w.token, &w.client, &k, 130, 30));
        assert!(successor_granted(&o));
    }

    #[test]
    fn a_retired_member_revokes_the_family() {
        let k = keys();
        let w = family(&k);
        let (_, rotated) = step(&w.stored, &rotating(&w.token, &w.client, &k, 100, 30));
        // The previous member after the leeway.
        let req = rotating(&w.token, &w.client, &k, 131, 30);
        assert_eq!(
            decide(Some(&rotated), &req),
            Decision::Write(Action::Revoke(Revoke { generation: 1, device_name: w.stored.device_name.clone() }))
        );
        let (o, after) = step_to(&rotated, &req);
        assert_eq!((o, after), (Outcome::Rejected(Rejection::Reused), None), "the record is gone");
        // Two generations back, even at once.
        let next = w.token.successor(&k).expect("next");
        let (_, twice) = step(&rotated, &rotating(&next, &w.client, &k, 101, 30));
        let (o, _) = step_to(&twice, &rotating(&w.token, &w.client, &k, 101, 30));
        assert_eq!(o, Outcome::Rejected(Rejection::Reused));
    }

    #[test]
    fn a_forged_member_is_unknown_and_revokes_nothing() {
        use base64::Engine as _;
        use secrecy::ExposeSecret as _;
        let k = keys();
        let w = family(&k);
        let (_, rotated) = step(&w.stored, &rotating(&w.token, &w.client, &k, 100, 0));
        // The retired member with its tag broken: not one the service issued.
        let wire = w.token.expose();
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut raw = engine.decode(&wire.expose_secret()[4..]).expect("b64");
        if let Some(b) = raw.last_mut() {
            *b ^= 1;
        }
        let forged = RefreshToken::parse(&format!("rt2_{}", engine.encode(raw))).expect("parses");
        let d = decide(Some(&rotated), &rotating(&forged, &w.client, &k, 500, 0));
        assert_eq!(d, Decision::Answer(Outcome::Rejected(Rejection::Unknown)));
        // A generation ahead of the family is unknown too.
        let ahead = w.token.successor(&k).and_then(|t| t.successor(&k)).expect("two ahead");
        let d = decide(Some(&rotated), &rotating(&ahead, &w.client, &k, 500, 0));
        assert_eq!(d, Decision::Answer(Outcome::Rejected(Rejection::Unknown)));
    }

    #[test]
    fn concurrent_presentations_of_the_current_member_rotate_once_and_share_the_successor() {
        let k = keys();
        let w = family(&k);
        let (a, b) = (rotating(&w.token, &w.client, &k, 100, 0), rotating(&w.token, &w.client, &k, 100, 0));
        // Both plan from the same state (the first plan: no read).
        let (pa, pb) = (Action::Use(first_plan(&a, None)), Action::Use(first_plan(&b, None)));
        assert!(holds(&pa, &w.stored, &a) && holds(&pb, &w.stored, &b));
        let after = apply(&pa, &w.stored, &a).expect("kept");
        // The second write finds the family moved on: refused, it decides again.
        assert!(!holds(&pb, &after, &b), "the same rotation cannot be written twice");
        let (o, settled) = step(&after, &b);
        assert!(successor_granted(&o), "{o:?}");
        assert_eq!(settled.rotation.map(|r| r.generation), Some(1), "one rotation");
    }

    #[test]
    fn a_retired_member_from_another_client_is_refused_without_revoking() {
        let k = keys();
        let w = family(&k);
        let (_, rotated) = step(&w.stored, &rotating(&w.token, &w.client, &k, 100, 0));
        let other = ClientId::parse("other").expect("id");
        let d = decide(Some(&rotated), &rotating(&w.token, &other, &k, 500, 0));
        assert_eq!(d, Decision::Answer(Outcome::Rejected(Rejection::WrongClient)));
    }

    #[test]
    fn rotating_and_non_rotating_forms_never_cross() {
        let k = keys();
        let w = family(&k);
        // A rotating family where no successor can be handed out (`/delegation`).
        let mut req = rotating(&w.token, &w.client, &k, 100, 0);
        req.rotation = None;
        assert_eq!(decide(Some(&w.stored), &req), Decision::Answer(Outcome::Rejected(Rejection::Unknown)));
        // The same secret in the non-rotating form: it must not skip the rotation.
        let wire = w.token.expose();
        let plain = {
            use base64::Engine as _;
            use secrecy::ExposeSecret as _;
            let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let raw = engine.decode(&wire.expose_secret()[4..]).expect("b64");
            let mut rt1 = raw[..32].to_vec();
            rt1.extend_from_slice(&raw[36..68]);
            RefreshToken::parse(&format!("rt1_{}", engine.encode(rt1))).expect("parses")
        };
        assert!(plain.secret_hash().ct_eq(&w.token.secret_hash()));
        let d = decide(Some(&w.stored), &rotating(&plain, &w.client, &k, 100, 0));
        assert_eq!(d, Decision::Answer(Outcome::Rejected(Rejection::Unknown)));
        let guess = Action::Use(first_plan(&rotating(&plain, &w.client, &k, 100, 0), None));
        assert!(!holds(&guess, &w.stored, &rotating(&plain, &w.client, &k, 100, 0)), "nor hold as a first plan");
        // A rotating token against a non-rotating record.
        let plain_world = world();
        let d = decide(Some(&plain_world.stored), &rotating(&w.token, &plain_world.client, &k, 100, 0));
        assert_eq!(d, Decision::Answer(Outcome::Rejected(Rejection::Unknown)));
    }

    // ------------------------------------------------------------ lifetimes

    #[test]
    fn a_credential_past_its_absolute_lifetime_is_unknown_whatever_its_use() {
        let w = world();
        let mut req = at(&w, "a", 1000, &[]);
        req.expiry = Expiry { absolute_secs: Some(999), idle_secs: None };
        assert_eq!(decide(Some(&w.stored), &req), Decision::Answer(Outcome::Rejected(Rejection::Unknown)));
        let mut used = w.stored.clone();
        used.last_used_at = Some(Timestamp::from_secs(990));
        assert_eq!(
            decide(Some(&used), &req),
            Decision::Answer(Outcome::Rejected(Rejection::Unknown)),
            "use does not extend it"
        );
        req.expiry.absolute_secs = Some(1000);
        let (o, _) = step(&w.stored, &req);
        assert!(matches!(o, Outcome::Granted { .. }), "at exactly its lifetime it still works");
    }

    #[test]
    fn an_idle_credential_is_unknown_and_each_use_restarts_the_idle_clock() {
        let w = world();
        let idle = |secs| {
            let mut req = at(&w, "a", secs, &[]);
            req.expiry = Expiry { absolute_secs: None, idle_secs: Some(100) };
            req
        };
        let (o, used) = step(&w.stored, &idle(100));
        assert!(matches!(o, Outcome::Granted { .. }));
        let (o, _) = step(&used, &idle(200));
        assert!(matches!(o, Outcome::Granted { .. }), "used at 100: alive until 200");
        assert_eq!(decide(Some(&used), &idle(201)), Decision::Answer(Outcome::Rejected(Rejection::Unknown)));
        // The first plan (no read) carries the condition: it does not hold on an idle record.
        let late = idle(201);
        assert!(!holds(&Action::Use(first_plan(&late, None)), &used, &late));
    }

    #[test]
    fn rotation_does_not_extend_the_absolute_lifetime() {
        let k = keys();
        let w = family(&k);
        let mut req = rotating(&w.token, &w.client, &k, 50, 0);
        req.expiry = Expiry { absolute_secs: Some(100), idle_secs: None };
        let (_, rotated) = step(&w.stored, &req);
        let next = w.token.successor(&k).expect("next");
        let mut late = rotating(&next, &w.client, &k, 101, 0);
        late.expiry = req.expiry;
        assert_eq!(decide(Some(&rotated), &late), Decision::Answer(Outcome::Rejected(Rejection::Unknown)));
    }

    /// `rotating` where the client turned rotation off.
    fn demoting<'a>(token: &'a RefreshToken, client: &'a ClientId, k: &'a RotationKeys, secs: i64) -> Presented<'a> {
        Presented { migrate: false, demote: true, ..rotating(token, client, k, secs, 0) }
    }

    fn demoted_granted(o: &Outcome) -> bool {
        matches!(o, Outcome::Granted { demoted: true, successor: false, .. })
    }

    #[test]
    fn the_current_member_of_a_client_that_stopped_rotating_ends_its_family() {
        let k = keys();
        let w = family(&k);
        let (_, rotated) = step(&w.stored, &rotating(&w.token, &w.client, &k, 100, 0));
        let current = w.token.successor(&k).expect("next");
        let req = demoting(&current, &w.client, &k, 200);
        // The first plan (no read) demotes as well; a plain rotation would not hold.
        assert!(first_plan(&req, None).demote_to.is_some() && first_plan(&req, None).rotate_to.is_none());
        let (o, after) = step(&rotated, &req);
        assert!(demoted_granted(&o), "{o:?}");
        let plain = current.demoted(&k).expect("demoted");
        assert_eq!(plain.generation(), None);
        assert!(after.secret_hash.ct_eq(&plain.secret_hash()));
        assert_eq!(
            (after.rotation.clone(), after.demoted.clone()),
            (None, Some((current.secret_hash(), Timestamp::from_secs(200))))
        );
        // A retry of the same member within the window: the same non-rotating token, no change.
        let (o, again) = step(&after, &demoting(&current, &w.client, &k, 200 + i64::from(RACE_WINDOW_SECS)));
        assert!(demoted_granted(&o), "{o:?}");
        assert_eq!(again.secret_hash, after.secret_hash);
        // After it: unknown. The non-rotating token works from then on, as any.
        let late = demoting(&current, &w.client, &k, 201 + i64::from(RACE_WINDOW_SECS));
        assert_eq!(decide(Some(&after), &late), Decision::Answer(Outcome::Rejected(Rejection::Unknown)));
        let (o, _) = step(&after, &demoting(&plain, &w.client, &k, 300));
        assert!(matches!(o, Outcome::Granted { successor: false, demoted: false, .. }), "{o:?}");
        // Every other member of the old family is dead.
        let old = rotating(&w.token, &w.client, &k, 300, 0);
        assert_eq!(
            decide(Some(&after), &Presented { demote: true, migrate: false, ..old }),
            Decision::Answer(Outcome::Rejected(Rejection::Unknown))
        );
        // And if the client rotates again, the non-rotating token starts a new family.
        let (o, again) = step(&after, &rotating(&plain, &w.client, &k, 400, 0));
        assert!(successor_granted(&o));
        assert_eq!((again.rotation.map(|r| r.generation), again.demoted), (Some(1), None));
    }

    #[test]
    fn a_rotating_member_is_never_used_without_rotating() {
        let k = keys();
        let w = family(&k);
        let mut req = rotating(&w.token, &w.client, &k, 100, 0);
        req.rotation = None;
        // What a caller that cannot hand out successors would guess holds on no record.
        let guess = Action::Use(first_plan(&req, None));
        assert!(!holds(&guess, &w.stored, &req));
    }

    #[test]
    fn a_non_rotating_token_of_a_client_that_now_rotates_starts_a_family() {
        let k = keys();
        let w = world();
        let req = rotating(&w.token, &w.client, &k, 100, 0);
        assert!(req.migrate);
        let (o, family) = step(&w.stored, &req);
        assert!(successor_granted(&o), "{o:?}");
        let first = w.token.next_member(&k).expect("generation 1");
        assert_eq!(first.generation(), Some(1));
        assert!(family.secret_hash.ct_eq(&first.secret_hash()));
        assert_eq!(
            family.rotation,
            Some(Rotation { generation: 1, previous: Some((w.token.secret_hash(), Timestamp::from_secs(100))) })
        );
        // The first plan (no read) migrates too: a plain use would not hold.
        assert!(holds(&Action::Use(first_plan(&req, None)), &w.stored, &req));
        assert_eq!(first_plan(&req, None).rotate_to, Some(first.secret_hash()));
        // A retry of the old token gets the same member; later, it is merely unknown.
        let (o, again) = step(&family, &rotating(&w.token, &w.client, &k, 101, 0));
        assert!(successor_granted(&o));
        assert_eq!(again.rotation, family.rotation);
        let late = decide(Some(&family), &rotating(&w.token, &w.client, &k, 200, 0));
        assert_eq!(late, Decision::Answer(Outcome::Rejected(Rejection::Unknown)));
        // The new member rotates as any.
        let (o, next) = step(&family, &rotating(&first, &w.client, &k, 102, 0));
        assert!(successor_granted(&o));
        assert_eq!(next.rotation.map(|r| r.generation), Some(2));
    }
}

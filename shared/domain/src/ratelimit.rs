//! Fixed-window rate limits, counted with DynamoDB conditional writes.
//!
//! A policy allows `limit` requests per `window_secs`-second window aligned to the epoch.
//! Burst allowance: all `limit` requests may arrive at once inside one window; across a window
//! boundary a client can therefore get at most `2 × limit` through in a short span, and never
//! more than `limit` in any one window. Counters reset in place when a new window starts, so
//! they never pile up per window.

use std::net::IpAddr;

use crate::clock::Timestamp;
use crate::ports::{CounterStore, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatePolicy {
    pub limit: u32,
    pub window_secs: u32,
}

/// The window a moment falls into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// `floor(epoch_seconds / window_secs)`: what the counters store.
    pub index: i64,
    /// Epoch second at which the next window starts (`X-RateLimit-Reset`).
    pub resets_at: i64,
}

impl RatePolicy {
    pub fn window(&self, now: Timestamp) -> Window {
        let w = i64::from(self.window_secs.max(1));
        let index = now.secs().div_euclid(w);
        Window { index, resets_at: (index + 1) * w }
    }

    /// The rule: a window admits another request while it holds fewer than `limit`.
    pub fn admits(&self, used: u32) -> bool {
        used < self.limit
    }

    /// How to count one more request in window `window`, given the counter as stored; `Err`
    /// with the count when the window is full. A counter of an older window restarts; one of a
    /// later window (another caller's clock runs ahead) is counted as it is.
    pub fn step(&self, window: i64, current: Option<Counter>) -> Result<Step, u32> {
        match current {
            Some(c) if c.window >= window && !self.admits(c.count) => Err(c.count),
            Some(c) if c.window >= window => Ok(Step::Increment { window: c.window, expected: c.count }),
            _ => Ok(Step::Start { window }),
        }
    }

    /// What to tell the client after a request was counted (`used` includes it) or refused.
    pub fn status(&self, now: Timestamp, used: u32, refused: bool) -> RateStatus {
        let window = self.window(now);
        RateStatus {
            limit: self.limit,
            remaining: self.limit.saturating_sub(used),
            reset: window.resets_at,
            retry_after: refused.then(|| (window.resets_at - now.secs()).max(1)),
        }
    }
}

/// A fixed-window counter as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    /// [`Window::index`].
    pub window: i64,
    pub count: u32,
}

/// One step of a counter: a compare-and-set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Assumes no counter in `window` or later (none, or an older window's): set it to 1 in
    /// `window`.
    Start { window: i64 },
    /// Assumes the counter is at `expected` in `window`: set it to `expected + 1`.
    Increment { window: i64, expected: u32 },
}

impl Step {
    /// The counter after the step.
    pub fn after(&self) -> Counter {
        match *self {
            Self::Start { window } => Counter { window, count: 1 },
            Self::Increment { window, expected } => Counter { window, count: expected.saturating_add(1) },
        }
    }

    /// Whether the step's assumption holds for `current`.
    pub fn holds(&self, current: Option<Counter>) -> bool {
        match *self {
            Self::Start { window } => current.is_none_or(|c| c.window < window),
            Self::Increment { window, expected } => current == Some(Counter { window, count: expected }),
        }
    }
}

/// Outcome of counting one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// Requests in the current window, this one included when `allowed`.
    pub used: u32,
    pub allowed: bool,
}

/// Counts one request against the fixed-window counter `key`: one conditional write on the
/// common path; a refused step is planned again from the stored counter. Bounded by the limit
/// (each refusal means another request moved the counter).
pub async fn count<S: CounterStore>(
    store: &S,
    key: &str,
    policy: RatePolicy,
    now: Timestamp,
) -> Result<Count, StoreError> {
    count_after_read(store, key, policy, now, None).await
}

/// [`count`], planning the first step from `read`, the counter as just read (`None`: read
/// as absent, or not read), so that a counter read before costs one write, not two.
pub async fn count_after_read<S: CounterStore>(
    store: &S,
    key: &str,
    policy: RatePolicy,
    now: Timestamp,
    read: Option<Counter>,
) -> Result<Count, StoreError> {
    let window = policy.window(now).index;
    let mut step = match policy.step(window, read) {
        Ok(step) => step,
        Err(used) => return Ok(Count { used, allowed: false }),
    };
    let rounds = (policy.limit as usize).saturating_add(4).min(64);
    for _ in 0..rounds {
        match store.write_counter(key, step).await? {
            None => return Ok(Count { used: step.after().count, allowed: true }),
            Some(current) => match policy.step(window, current) {
                Err(used) => return Ok(Count { used, allowed: false }),
                Ok(next) if next != step => step = next,
                Ok(_) => return Err(StoreError::unavailable("rate-limit counter refused for no known reason")),
            },
        }
    }
    Err(StoreError::unavailable("rate-limit counter did not settle"))
}

/// The `X-RateLimit-*` / `Retry-After` values of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateStatus {
    pub limit: u32,
    pub remaining: u32,
    /// Epoch seconds when the window resets.
    pub reset: i64,
    /// Seconds to wait, present when the request was refused.
    pub retry_after: Option<i64>,
}

/// The key a source address is counted under: IPv4 addresses as they are, IPv6 addresses by
/// their /64 prefix (one subscriber usually owns a whole /64 and can rotate inside it freely).
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_align_to_the_epoch() {
        let p = RatePolicy { limit: 10, window_secs: 60 };
        let w = p.window(Timestamp::from_secs(125));
        assert_eq!(w, Window { index: 2, resets_at: 180 });
        let s = p.status(Timestamp::from_secs(125), 10, true);
        assert_eq!(s.remaining, 0);
        assert_eq!(s.retry_after, Some(55));
        assert_eq!(p.status(Timestamp::from_secs(125), 3, false).remaining, 7);
    }

    #[test]
    fn the_limit_rule() {
        let p = RatePolicy { limit: 2, window_secs: 60 };
        assert_eq!(p.step(5, None), Ok(Step::Start { window: 5 }));
        assert_eq!(p.step(5, Some(Counter { window: 4, count: 9 })), Ok(Step::Start { window: 5 }));
        assert_eq!(p.step(5, Some(Counter { window: 5, count: 1 })), Ok(Step::Increment { window: 5, expected: 1 }));
        assert_eq!(p.step(5, Some(Counter { window: 5, count: 2 })), Err(2));
        assert_eq!(p.step(5, Some(Counter { window: 6, count: 1 })), Ok(Step::Increment { window: 6, expected: 1 }));
        let s = Step::Increment { window: 5, expected: 1 };
        assert!(s.holds(Some(Counter { window: 5, count: 1 })));
        assert!(!s.holds(Some(Counter { window: 5, count: 2 })));
        assert_eq!(s.after(), Counter { window: 5, count: 2 });
        assert!(Step::Start { window: 5 }.holds(Some(Counter { window: 4, count: 3 })));
        assert!(!Step::Start { window: 5 }.holds(Some(Counter { window: 5, count: 0 })));
    }

    #[test]
    fn ipv6_counts_by_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("ip");
        assert_eq!(address_key(a), address_key(b));
        assert_eq!(address_key("::ffff:10.0.0.1".parse().expect("ip")), "10.0.0.1");
        assert_eq!(address_key("10.0.0.1".parse().expect("ip")), "10.0.0.1");
    }
}

//! Fixed-window rate limits, counted with DynamoDB conditional writes.
//!
//! A policy allows `limit` requests per `window_secs`-second window aligned to the epoch.
//! Burst allowance: all `limit` requests may arrive at once inside one window; across a window
//! boundary a client can therefore get at most `2 × limit` through in a short span, and never
//! more than `limit` in any one window. Counters reset in place when a new window starts, so
//! they never pile up per window.

use std::net::IpAddr;

use crate::clock::Timestamp;

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
    fn ipv6_counts_by_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("ip");
        assert_eq!(address_key(a), address_key(b));
        assert_eq!(address_key("::ffff:10.0.0.1".parse().expect("ip")), "10.0.0.1");
        assert_eq!(address_key("10.0.0.1".parse().expect("ip")), "10.0.0.1");
    }
}

//! Sign-in throttling on Auth0's model, built so that an attacker cannot turn it into a
//! lockout of somebody else:
//! - **brute-force protection**: failed sign-ins are counted per (account, source address)
//!   pair; [`LoginThrottle::per_pair`]`.limit` of them in a row block that pair — that account
//!   from that address only — until a success resets the count, a password change moves the
//!   account's revision (which is part of the pair), or the window ends;
//! - **suspicious-address throttling**: failed sign-ins from one address are counted across
//!   accounts, and [`LoginThrottle::per_address`]`.limit` of them in a window slow that address
//!   down until the window ends.
//!
//! Successful sign-ins are never counted: a thousand colleagues behind one office NAT all
//! sign in, and nobody can use up an account's allowance from another address.
//!
//! The counters are named by an HMAC of the account and the address under a key derived from
//! the signing key, truncated to [`BUCKET_HEX`] hex digits: their number is bounded (the
//! design keeps nothing that grows without bound) and, the key being secret, nobody can pick
//! an address whose counter collides with a victim's.

use std::net::IpAddr;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretBox};

use crate::clock::Timestamp;
use crate::ratelimit::{Counter, RatePolicy, address_key};
use crate::token::hmac;

/// Hex digits of a counter's name: 16 777 216 counters of each kind at most.
pub const BUCKET_HEX: usize = 6;

#[derive(Clone)]
pub struct LoginThrottle {
    /// Failed sign-ins from one address, across accounts, per window.
    pub per_address: RatePolicy,
    /// Failed sign-ins in a row for one (account, address) pair; the window is the lockout.
    pub per_pair: RatePolicy,
    key: Arc<SecretBox<[u8; 32]>>,
}

impl std::fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginThrottle")
            .field("per_address", &self.per_address)
            .field("per_pair", &self.per_pair)
            .finish_non_exhaustive()
    }
}

impl LoginThrottle {
    pub fn new(per_address: RatePolicy, per_pair: RatePolicy, key: SecretBox<[u8; 32]>) -> Self {
        Self { per_address, per_pair, key: Arc::new(key) }
    }

    fn bucket(&self, kind: &str, parts: &[&[u8]]) -> String {
        let mut input: Vec<&[u8]> = vec![kind.as_bytes()];
        input.extend_from_slice(parts);
        let mac = hmac(self.key.expose_secret(), &input);
        let hex: String = mac.iter().take(BUCKET_HEX.div_ceil(2)).map(|b| format!("{b:02x}")).collect();
        format!("{kind}#{}", hex.get(..BUCKET_HEX).unwrap_or(&hex))
    }

    /// The counter of failed sign-ins from `ip` (IPv6 by /64, as every address limit).
    pub fn address_counter(&self, ip: IpAddr) -> String {
        self.bucket("login-ip", &[address_key(ip).as_bytes()])
    }

    /// The counter of failed sign-ins for `account` (normalised e-mail, known or not) at its
    /// revision `rev` (0 for an unknown account) from `ip`.
    pub fn pair_counter(&self, account: &str, rev: u32, ip: IpAddr) -> String {
        self.bucket("login-pair", &[account.as_bytes(), b"\0", &rev.to_be_bytes(), address_key(ip).as_bytes()])
    }

    /// Seconds to wait when `counter`, as stored, blocks under `policy` at `now`; `None` when
    /// it does not (another window's, or under the limit).
    pub fn blocks(policy: RatePolicy, counter: Counter, now: Timestamp) -> Option<i64> {
        let current = counter.window >= policy.window(now).index;
        (current && !policy.admits(counter.count))
            .then(|| policy.status(now, counter.count, true).retry_after.unwrap_or(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(key: u8) -> LoginThrottle {
        let p = RatePolicy { limit: 10, window_secs: 900 };
        LoginThrottle::new(p, p, SecretBox::new(Box::new([key; 32])))
    }

    #[test]
    fn counters_are_keyed_bounded_and_separate() {
        let t = throttle(1);
        let ip: IpAddr = "203.0.113.7".parse().expect("ip");
        let other: IpAddr = "203.0.113.8".parse().expect("ip");
        let a = t.pair_counter("a@example.com", 1, ip);
        assert!(a.starts_with("login-pair#"));
        assert_eq!(a.len(), "login-pair#".len() + BUCKET_HEX);
        assert_ne!(a, t.pair_counter("a@example.com", 1, other), "another address, another pair");
        assert_ne!(a, t.pair_counter("a@example.com", 2, ip), "a password change starts afresh");
        assert_ne!(a, t.pair_counter("b@example.com", 1, ip));
        assert_ne!(a, throttle(2).pair_counter("a@example.com", 1, ip), "the key decides: nobody can aim a collision");
        let v6a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let v6b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        assert_eq!(t.address_counter(v6a), t.address_counter(v6b), "one /64, one address");
        assert_ne!(t.address_counter(ip), t.address_counter(other));
    }

    #[test]
    fn a_counter_blocks_at_the_limit_until_its_window_ends() {
        let p = RatePolicy { limit: 10, window_secs: 900 };
        let now = Timestamp::from_secs(900 * 5 + 100);
        assert_eq!(LoginThrottle::blocks(p, Counter { window: 5, count: 9 }, now), None);
        assert_eq!(LoginThrottle::blocks(p, Counter { window: 5, count: 10 }, now), Some(800));
        assert_eq!(LoginThrottle::blocks(p, Counter { window: 4, count: 50 }, now), None, "an old window");
    }
}

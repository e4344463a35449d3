//! Device credentials: the stored side of a refresh token, bound for ever to one
//! (client, user, device).

use crate::client::RefreshTokenPolicy;
use crate::clock::Timestamp;
use crate::ids::{ClientId, DeviceCredentialId, DeviceName, UserId};
use crate::scope::Scope;
use crate::token::SecretHash;

/// Auth0's device-credential `type` for refresh tokens.
pub const TYPE_REFRESH_TOKEN: &str = "refresh_token";

/// A refresh token's record. `client_id`, `user_id`, `device_name` and `scope` are written once
/// at issue and never updated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCredential {
    pub id: DeviceCredentialId,
    pub client_id: ClientId,
    pub user_id: UserId,
    /// The user's credential revision the token was issued under.
    pub user_rev: u32,
    pub device_name: DeviceName,
    pub scope: Scope,
    pub secret_hash: SecretHash,
    pub created_at: Timestamp,
    pub created_ip: Option<String>,
    pub last_used_at: Option<Timestamp>,
    pub last_ip: Option<String>,
    pub use_count: u64,
    /// A rotating family's current generation (`Some(0)` at issue); `None`: non-rotating.
    pub generation: Option<u32>,
}

impl DeviceCredential {
    /// The record of `token`, issued now to `client` for `device` with `scope` (never used
    /// yet; a rotating token's family starts at its generation).
    pub fn issued(
        token: &crate::token::RefreshToken,
        client_id: &ClientId,
        device_name: &DeviceName,
        scope: &Scope,
        at: Timestamp,
        ip: &str,
    ) -> Self {
        Self {
            id: token.id().clone(),
            client_id: client_id.clone(),
            user_id: token.user().clone(),
            user_rev: token.user_rev(),
            device_name: device_name.clone(),
            scope: scope.clone(),
            secret_hash: token.secret_hash(),
            created_at: at,
            created_ip: Some(ip.to_owned()),
            last_used_at: None,
            last_ip: None,
            use_count: 0,
            generation: token.generation(),
        }
    }

    /// When this credential stops being accepted under `policy` (its client's, as it is now):
    /// the earlier of the absolute end (from its issue: a rotating family keeps the
    /// `created_at` of its first member) and the idle end (from its last use, or its issue);
    /// `None`: never. The exchange accepts it up to and including that instant.
    pub fn expires_at(&self, policy: &RefreshTokenPolicy) -> Option<Timestamp> {
        policy.expires_at(self.created_at, self.last_used_at.unwrap_or(self.created_at))
    }

    /// Whether it has expired at `now` under `policy`: the exchange refuses it (as it refuses
    /// an unknown token), listings leave it out, and the sweep removes its record.
    pub fn expired(&self, policy: &RefreshTokenPolicy, now: Timestamp) -> bool {
        self.expires_at(policy).is_some_and(|end| end < now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ExpirationType;
    use crate::exchange::{Alive, Expiry};
    use proptest::prelude::*;

    fn credential(created: i64, last_used: Option<i64>) -> DeviceCredential {
        let user = UserId::generate();
        let token = crate::token::RefreshToken::generate(&user, 0);
        DeviceCredential {
            id: token.id().clone(),
            client_id: ClientId::parse("app").expect("id"),
            user_id: user,
            user_rev: 0,
            device_name: DeviceName::parse("phone").expect("name"),
            scope: Scope::parse("openid offline_access").expect("scope"),
            secret_hash: token.secret_hash(),
            created_at: Timestamp::from_secs(created),
            created_ip: None,
            last_used_at: last_used.map(Timestamp::from_secs),
            last_ip: None,
            use_count: 0,
            generation: None,
        }
    }

    fn policy(absolute: Option<u32>, idle: Option<u32>) -> RefreshTokenPolicy {
        RefreshTokenPolicy {
            expiration_type: ExpirationType::Expiring,
            token_lifetime: absolute.unwrap_or(1),
            infinite_token_lifetime: absolute.is_none(),
            idle_token_lifetime: idle.unwrap_or(1),
            infinite_idle_token_lifetime: idle.is_none(),
            ..RefreshTokenPolicy::default()
        }
    }

    #[test]
    fn a_credential_expires_at_the_earlier_end_and_never_under_the_default_policy() {
        let c = credential(1_000, Some(1_500));
        assert_eq!(c.expires_at(&RefreshTokenPolicy::default()), None);
        assert!(!c.expired(&RefreshTokenPolicy::default(), Timestamp::from_secs(i64::from(u32::MAX))));
        let p = policy(Some(3_000), Some(600));
        assert_eq!(c.expires_at(&p), Some(Timestamp::from_secs(2_100)), "idle: 600 s after its last use");
        assert!(!c.expired(&p, Timestamp::from_secs(2_100)), "accepted at that very instant");
        assert!(c.expired(&p, Timestamp::from_millis(2_100_001)));
        let unused = credential(1_000, None);
        assert_eq!(unused.expires_at(&p), Some(Timestamp::from_secs(1_600)), "never used: idle from its issue");
        let busy = credential(1_000, Some(3_900));
        assert_eq!(busy.expires_at(&p), Some(Timestamp::from_secs(4_000)), "absolute: 3000 s after its issue");
    }

    proptest! {
        /// Listings and the sweep call a credential expired exactly when the exchange would
        /// refuse it for its age ([`Alive`], the condition every exchange is written under).
        #[test]
        fn expired_is_what_the_exchange_refuses(
            absolute in proptest::option::of(1u32..5_000),
            idle in proptest::option::of(1u32..5_000),
            created in 0i64..10_000,
            used_after in proptest::option::of(0i64..10_000),
            now_after in 0i64..20_000,
        ) {
            let c = credential(created, used_after.map(|u| created + u));
            let p = policy(absolute, idle);
            let now = Timestamp::from_secs(created + now_after);
            let alive = Alive::of(Expiry { absolute_secs: p.absolute_lifetime(), idle_secs: p.idle_lifetime() }, now);
            prop_assert_eq!(c.expired(&p, now), !alive.holds(c.created_at, c.last_used_at));
        }
    }
}

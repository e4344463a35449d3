//! Every key shape and attribute name of the single table. Nothing else formats keys.
//!
//! | item               | pk               | sk       | gsi1pk / gsi1sk                             | gsi2pk / gsi2sk                                   |
//! |--------------------|------------------|----------|---------------------------------------------|---------------------------------------------------|
//! | client             | `CLIENT#<cid>`   | `CLIENT` | –                                           | `CLIENTS` / `<cid>`                               |
//! | user               | `USER#<uid>`     | `USER`   | `USERS` / `<email>`                         | –                                                 |
//! | e-mail uniqueness  | `EMAIL#<email>`  | `EMAIL`  | –                                           | –                                                 |
//! | device credential  | `DCR#<dcr id>`   | `DCR`    | `USER#<uid>` / `DCR#<cid>#<created>#<id>`   | `CLIENT#<cid>#<shard>` / `DCR#<uid>#<created>#<id>` |
//! | rate-limit counter | `RL#<key>`       | `RL`     | –                                           | –                                                 |
//! | authorization code | `CODE#<sha256>`  | `CODE`   | –                                           | `CODES#<shard>` / `<expires>`                     |
//! | audit event        | `LOG#<uid>` (no user: `LOG#-<yyyy-mm-dd>#<shard>`) | `<log id>` | – | `LOGS#<yyyy-mm-dd>#<shard>` / `<log id>` |
//!
//! `<created>` is the creation time in milliseconds, zero-padded to 13 digits so that sort keys
//! order by time. `<shard>` is one of [`CLIENT_SHARDS`] two-digit shards, a fixed function of
//! the user id ([`client_shard`]): a client's credentials are spread over that many index
//! partitions so that issuing and revoking tokens of many users never concentrates on one.
//!
//! An authorization code is keyed by the hex SHA-256 of the code (the code itself is never
//! stored). Its GSI2 entry, in one of [`CODE_SHARDS`] partitions picked by the hash and sorted
//! by expiry, is how the sweep finds expired codes; redeeming a code changes no index key.
//!
//! An audit event lives in its user's own partition (a user's history is one `Query`), or,
//! without a user, in a partition of its day's shard; its GSI2 entry, in one of [`LOG_SHARDS`]
//! partitions of its UTC day picked by its log id's random part ([`log_shard`]), is the
//! tenant-wide feed and how the sweep finds the events of an expired day. Its sort key, the log
//! id, starts with the time, so both order by time.
//!
//! Both indexes project only what never changes once written ([`GSI1_PROJECTION`],
//! [`GSI2_PROJECTION`]): the attributes an exchange writes ([`VOLATILE`]) reach no index, so a
//! refresh writes the credential item and nothing else. Listings read keys from an index and
//! the items themselves with `BatchGetItem`.

use rt_domain::audit::{LogDay, LogId};
use rt_domain::clock::Timestamp;
use rt_domain::ids::{ClientId, DeviceCredentialId, Email, UserId};
use rt_domain::token::SecretHash;

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1: &str = "gsi1";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
pub const GSI2: &str = "gsi2";
pub const GSI2_PK: &str = "gsi2pk";
pub const GSI2_SK: &str = "gsi2sk";
pub const KIND: &str = "kind";

/// Attribute names, grouped by item.
pub mod attr {
    pub const CLIENT_ID: &str = "client_id";
    pub const USER_ID: &str = "user_id";
    pub const NAME: &str = "name";
    pub const CREATED_AT: &str = "created_at";
    pub const UPDATED_AT: &str = "updated_at";

    pub const APP_TYPE: &str = "app_type";
    pub const CALLBACKS: &str = "callbacks";
    pub const WEB_ORIGINS: &str = "web_origins";
    pub const GRANT_TYPES: &str = "grant_types";
    pub const ID_TOKEN_LIFETIME: &str = "id_token_lifetime";
    pub const SECRET_HASH: &str = "secret_hash";
    pub const MGMT_SCOPES: &str = "mgmt_scopes";
    // Client settings added after the first release: an item without them reads as the
    // defaults (no logout URLs, the method its secret implies, the default refresh-token policy).
    pub const LOGOUT_URLS: &str = "logout_urls";
    pub const TOKEN_AUTH_METHOD: &str = "token_auth_method";
    /// The client's `jwt_configuration.alg` (absent on items written before it: RS256).
    pub const SIGNING_ALG: &str = "signing_alg";
    pub const RT_ROTATION: &str = "rt_rotation";
    pub const RT_EXPIRATION: &str = "rt_expiration";
    pub const RT_LEEWAY: &str = "rt_leeway";
    pub const RT_LIFETIME: &str = "rt_lifetime";
    pub const RT_INFINITE_LIFETIME: &str = "rt_infinite_lifetime";
    pub const RT_IDLE_LIFETIME: &str = "rt_idle_lifetime";
    pub const RT_INFINITE_IDLE_LIFETIME: &str = "rt_infinite_idle_lifetime";

    pub const EMAIL: &str = "email";
    pub const EMAIL_VERIFIED: &str = "email_verified";
    pub const NICKNAME: &str = "nickname";
    pub const PASSWORD_HASH: &str = "password_hash";
    pub const REV: &str = "rev";
    pub const ADMIN: &str = "admin";
    pub const BLOCKED: &str = "blocked";
    pub const SESSIONS_AFTER: &str = "sessions_after";
    /// Map of live refresh tokens by device name: `{ "<device name>": count }`.
    pub const DEVICES: &str = "devices";

    pub const ID: &str = "id";
    pub const USER_REV: &str = "user_rev";
    pub const DEVICE_NAME: &str = "device_name";
    pub const SCOPES: &str = "scopes";
    pub const CREATED_IP: &str = "created_ip";
    pub const LAST_USED_AT: &str = "last_used_at";
    pub const LAST_IP: &str = "last_ip";
    pub const USE_COUNT: &str = "use_count";
    /// A rotating family's current generation (absent: non-rotating).
    pub const GENERATION: &str = "gen";
    /// The previous member's secret hash and its rotation time (epoch ms).
    pub const PREVIOUS_HASH: &str = "prev_hash";
    pub const ROTATED_AT: &str = "rotated_at";
    /// Map of rate-limit counters by source address: `{ "<address>": { "w": window, "n": count } }`.
    pub const RATE: &str = "rl";

    // Authorization codes.
    pub const REDIRECT_URI: &str = "redirect_uri";
    pub const CHALLENGE: &str = "challenge";
    pub const NONCE: &str = "nonce";
    pub const EXPIRES_AT: &str = "expires_at";
    pub const REDEEMED_AT: &str = "redeemed_at";
    /// The credential id a redemption issued.
    pub const ISSUED: &str = "issued";

    // Audit events.
    pub const EVENT_TYPE: &str = "type";
    pub const DESCRIPTION: &str = "description";
    pub const CLIENT_NAME: &str = "client_name";
    pub const USER_NAME: &str = "user_name";
    pub const CREDENTIAL_ID: &str = "credential_id";
    pub const IP: &str = "ip";
    pub const USER_AGENT: &str = "user_agent";
    /// A revocation's reason, channel (`management_api`, `dashboard`, …) and actor id.
    pub const REASON: &str = "reason";
    pub const REVOKED_BY: &str = "revoked_by";
    pub const ACTOR: &str = "actor";
    /// How many refresh tokens a revocation removed.
    pub const REVOKED: &str = "revoked";

    pub const WINDOW: &str = "w";
    pub const COUNT: &str = "n";
}

pub const KIND_CLIENT: &str = "client";
pub const KIND_USER: &str = "user";
pub const KIND_EMAIL: &str = "email";
pub const KIND_CREDENTIAL: &str = "dcr";
pub const KIND_COUNTER: &str = "counter";
pub const KIND_CODE: &str = "code";
pub const KIND_EVENT: &str = "event";

pub const CLIENT_SK: &str = "CLIENT";
pub const USER_SK: &str = "USER";
pub const EMAIL_SK: &str = "EMAIL";
pub const CREDENTIAL_SK: &str = "DCR";
pub const COUNTER_SK: &str = "RL";
pub const CODE_SK: &str = "CODE";
pub const ALL_USERS: &str = "USERS";
pub const ALL_CLIENTS: &str = "CLIENTS";

/// `ProjectionType` and `NonKeyAttributes` of GSI1 (as `template.yaml` must declare them):
/// the credential's revision, which the purge after a password change filters on.
pub const GSI1_PROJECTION: (&str, &[&str]) = ("INCLUDE", &[attr::USER_REV]);
/// `ProjectionType` of GSI2.
pub const GSI2_PROJECTION: (&str, &[&str]) = ("KEYS_ONLY", &[]);

/// Attributes that a refresh exchange writes: never projected into an index.
pub const VOLATILE: &[&str] = &[
    attr::RATE,
    attr::LAST_USED_AT,
    attr::LAST_IP,
    attr::USE_COUNT,
    attr::SECRET_HASH,
    attr::GENERATION,
    attr::PREVIOUS_HASH,
    attr::ROTATED_AT,
];

/// How many GSI2 partitions hold one client's credentials. Fixed for ever: changing it would
/// hide the credentials written under the old count from the client's listing.
pub const CLIENT_SHARDS: u8 = 16;

/// A primary key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub pk: String,
    pub sk: &'static str,
}

/// The key of [`crate::DynamoStore::warm_up`]'s read: no item has it, and no function's policy
/// in `template.yaml` lets it read it (every `LeadingKeys` condition names a prefix with `#`).
pub fn warm_up() -> Key {
    Key { pk: WARM_UP.to_owned(), sk: WARM_UP }
}

const WARM_UP: &str = "WARM-UP";

pub fn client(id: &ClientId) -> Key {
    Key { pk: format!("CLIENT#{id}"), sk: CLIENT_SK }
}

pub fn user(id: &UserId) -> Key {
    Key { pk: format!("USER#{id}"), sk: USER_SK }
}

pub fn email(e: &Email) -> Key {
    Key { pk: format!("EMAIL#{e}"), sk: EMAIL_SK }
}

pub fn credential(id: &DeviceCredentialId) -> Key {
    Key { pk: format!("DCR#{id}"), sk: CREDENTIAL_SK }
}

pub fn counter(name: &str) -> Key {
    Key { pk: format!("RL#{name}"), sk: COUNTER_SK }
}

pub fn code(hash: &SecretHash) -> Key {
    Key { pk: format!("CODE#{}", hash.to_hex()), sk: CODE_SK }
}

/// How many GSI2 partitions hold the authorization codes by expiry (sign-ins spread over them).
pub const CODE_SHARDS: u8 = 16;

/// The GSI2 partition of a code: by the first byte of its hash.
pub fn codes_shard(hash: &SecretHash) -> String {
    let first = hash.to_hex().get(..2).and_then(|h| u8::from_str_radix(h, 16).ok()).unwrap_or(0);
    codes_partition(first % CODE_SHARDS)
}

/// GSI2 partition `shard` of the codes.
pub fn codes_partition(shard: u8) -> String {
    format!("CODES#{shard:02}")
}

/// GSI2 sort key of a code: its expiry, so that the expired ones come first.
pub fn code_by_expiry_sk(expires_at: Timestamp) -> String {
    created(expires_at)
}

/// How many GSI2 partitions hold one UTC day of audit events (the tenant-wide feed). Fixed for
/// ever, as [`CLIENT_SHARDS`]: the reader queries every one of them. Why 32: ARCHITECTURE.md,
/// *Audit log*.
pub const LOG_SHARDS: u8 = 32;

/// The partition of a user's audit events.
pub fn user_log(u: &UserId) -> String {
    format!("LOG#{u}")
}

/// The shard of an audit event: FNV-1a of its log id (whose tail is random) — uniform, and a
/// function of the id alone.
pub fn log_shard(id: &LogId) -> u8 {
    (fnv1a(id.as_str()) % u32::from(LOG_SHARDS)) as u8
}

/// 32-bit FNV-1a: the stable hash the shard functions are made of (part of the stored format).
fn fnv1a(s: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The partition of an audit event without a user: its day's shard (user ids start with a
/// letter, so `LOG#-…` is no user's).
pub fn shard_log(day: LogDay, shard: u8) -> String {
    format!("LOG#-{}#{shard:02}", day.date())
}

/// GSI2 partition `shard` of the feed of `day`.
pub fn log_feed(day: LogDay, shard: u8) -> String {
    format!("LOGS#{}#{shard:02}", day.date())
}

/// Every GSI2 partition of the feed of `day`.
pub fn log_feed_all(day: LogDay) -> Vec<String> {
    (0..LOG_SHARDS).map(|s| log_feed(day, s)).collect()
}

/// The partition of GSI1 that lists a user's credentials.
pub fn credentials_of_user(u: &UserId) -> String {
    format!("USER#{u}")
}

/// The GSI2 shard of a user's credentials of any client: FNV-1a of the user id.
pub fn client_shard(u: &UserId) -> u8 {
    (fnv1a(u.as_str()) % u32::from(CLIENT_SHARDS)) as u8
}

/// The GSI2 partition that lists a client's credentials of the users in `shard`.
pub fn credentials_of_client(c: &ClientId, shard: u8) -> String {
    format!("CLIENT#{c}#{shard:02}")
}

/// Every GSI2 partition of a client's credentials.
pub fn credentials_of_client_all(c: &ClientId) -> Vec<String> {
    (0..CLIENT_SHARDS).map(|s| credentials_of_client(c, s)).collect()
}

fn created(t: Timestamp) -> String {
    format!("{:013}", t.millis().max(0))
}

/// GSI1 sort key of a credential: by client, then creation time.
pub fn credential_by_user_sk(c: &ClientId, created_at: Timestamp, id: &DeviceCredentialId) -> String {
    format!("DCR#{c}#{}#{id}", created(created_at))
}

/// Prefix of [`credential_by_user_sk`] selecting one client's credentials of a user.
pub fn credential_by_user_sk_prefix(c: Option<&ClientId>) -> String {
    match c {
        Some(c) => format!("DCR#{c}#"),
        None => "DCR#".to_owned(),
    }
}

/// The least string above every sort key that starts with `prefix` (its last character
/// moved one on: `DCR#` → `DCR$`), the upper end of a `BETWEEN` that keeps to the prefix. Key
/// prefixes end in `#`, so the result is always a valid string.
pub fn prefix_end(prefix: &str) -> String {
    let mut chars: Vec<char> = prefix.chars().collect();
    match chars.pop().and_then(|c| char::from_u32(u32::from(c) + 1)) {
        Some(next) => chars.into_iter().chain([next]).collect(),
        None => prefix.to_owned(),
    }
}

/// GSI2 sort key of a credential: by user, then creation time.
pub fn credential_by_client_sk(u: &UserId, created_at: Timestamp, id: &DeviceCredentialId) -> String {
    format!("DCR#{u}#{}#{id}", created(created_at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shapes() {
        let c = ClientId::parse("abc").expect("id");
        let u = UserId::parse("auth0|0123456789abcdef01234567").expect("id");
        let d = DeviceCredentialId::parse("dcr_dFJiaAxbEroQ5xxx").expect("id");
        assert_eq!(client(&c).pk, "CLIENT#abc");
        assert_eq!(user(&u).pk, "USER#auth0|0123456789abcdef01234567");
        assert_eq!(credential(&d).pk, "DCR#dcr_dFJiaAxbEroQ5xxx");
        // The shard function is part of the stored format: it must never change.
        assert_eq!(client_shard(&u), 15);
        assert_eq!(credentials_of_client(&c, client_shard(&u)), "CLIENT#abc#15");
        assert_eq!(
            credential_by_user_sk(&c, Timestamp::from_millis(42), &d),
            "DCR#abc#0000000000042#dcr_dFJiaAxbEroQ5xxx"
        );
        assert_eq!(prefix_end("DCR#"), "DCR$");
        assert_eq!(prefix_end(&credential_by_user_sk_prefix(Some(&c))), "DCR#abc$");
        let day = LogDay::of(Timestamp::from_secs(1_800_000_000));
        assert_eq!(log_feed(day, 7), "LOGS#2027-01-15#07");
        assert_eq!(shard_log(day, 31), "LOG#-2027-01-15#31");
        assert_eq!(user_log(&u), "LOG#auth0|0123456789abcdef01234567");
        // The shard function is part of the stored format too.
        let id = LogId::parse("1800000000000abcdefghijkl").expect("id");
        assert_eq!(log_shard(&id), 0);
        let other = LogId::parse("1800000000000abcdefghijkm").expect("id");
        assert!(log_shard(&other) < LOG_SHARDS);
    }

    proptest! {
        /// Sort keys order by creation time within a client, and a client's prefix selects
        /// exactly its own credentials (client ids cannot contain '#').
        #[test]
        fn sort_keys_order_by_time_and_prefixes_do_not_collide(
            a in "[A-Za-z0-9_-]{1,64}", b in "[A-Za-z0-9_-]{1,64}",
            t1 in 0i64..9_999_999_999_999, t2 in 0i64..9_999_999_999_999,
        ) {
            let ca = ClientId::parse(&a).expect("id");
            let cb = ClientId::parse(&b).expect("id");
            let d = DeviceCredentialId::generate();
            let k1 = credential_by_user_sk(&ca, Timestamp::from_millis(t1), &d);
            let k2 = credential_by_user_sk(&ca, Timestamp::from_millis(t2), &d);
            prop_assert_eq!(t1.cmp(&t2), k1.cmp(&k2));
            let kb = credential_by_user_sk(&cb, Timestamp::from_millis(t1), &d);
            prop_assert_eq!(kb.starts_with(&credential_by_user_sk_prefix(Some(&ca))), a == b);
            prop_assert!(k1.starts_with(&credential_by_user_sk_prefix(None)));
            // A prefix's end is above every key of the prefix and below every later one.
            let prefix = credential_by_user_sk_prefix(Some(&ca));
            prop_assert!(k1.as_str() < prefix_end(&prefix).as_str());
            prop_assert_eq!(kb.as_str() < prefix_end(&prefix).as_str(), kb.as_str() < k1.as_str() || a == b);
        }

        #[test]
        fn shards_are_stable_and_in_range(x in "[a-f0-9]{24}") {
            let u = UserId::parse(&format!("auth0|{x}")).expect("id");
            prop_assert!(client_shard(&u) < CLIENT_SHARDS);
            prop_assert_eq!(client_shard(&u), client_shard(&u.clone()));
        }

        #[test]
        fn primary_keys_are_injective(x in "[A-Za-z0-9]{16}", y in "[A-Za-z0-9]{16}") {
            let dx = DeviceCredentialId::from_selector(&x).expect("id");
            let dy = DeviceCredentialId::from_selector(&y).expect("id");
            prop_assert_eq!(credential(&dx) == credential(&dy), x == y);
        }
    }
}

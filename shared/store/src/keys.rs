//! Every key shape and attribute name of the single table. Nothing else formats keys.
//!
//! | item               | pk               | sk       | gsi1pk / gsi1sk                             | gsi2pk / gsi2sk                              |
//! |--------------------|------------------|----------|---------------------------------------------|----------------------------------------------|
//! | client             | `CLIENT#<cid>`   | `CLIENT` | –                                           | `CLIENTS` / `<cid>`                          |
//! | user               | `USER#<uid>`     | `USER`   | `USERS` / `<email>`                         | –                                            |
//! | e-mail uniqueness  | `EMAIL#<email>`  | `EMAIL`  | –                                           | –                                            |
//! | device credential  | `DCR#<dcr id>`   | `DCR`    | `USER#<uid>` / `DCR#<cid>#<created>#<id>`   | `CLIENT#<cid>` / `DCR#<uid>#<created>#<id>`  |
//! | rate-limit counter | `RL#<key>`       | `RL`     | –                                           | –                                            |
//!
//! `<created>` is the creation time in milliseconds, zero-padded to 13 digits so that sort keys
//! order by time.

use rt_domain::clock::Timestamp;
use rt_domain::ids::{ClientId, DeviceCredentialId, Email, UserId};

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

    pub const EMAIL: &str = "email";
    pub const EMAIL_VERIFIED: &str = "email_verified";
    pub const NICKNAME: &str = "nickname";
    pub const PASSWORD_HASH: &str = "password_hash";
    pub const REV: &str = "rev";
    pub const ADMIN: &str = "admin";
    pub const BLOCKED: &str = "blocked";
    pub const SESSIONS_AFTER: &str = "sessions_after";

    pub const ID: &str = "id";
    pub const USER_REV: &str = "user_rev";
    pub const DEVICE_NAME: &str = "device_name";
    pub const SCOPES: &str = "scopes";
    pub const CREATED_IP: &str = "created_ip";
    pub const LAST_USED_AT: &str = "last_used_at";
    pub const LAST_IP: &str = "last_ip";
    pub const USE_COUNT: &str = "use_count";
    /// Map of rate-limit counters by source address: `{ "<address>": { "w": window, "n": count } }`.
    pub const RATE: &str = "rl";

    pub const WINDOW: &str = "w";
    pub const COUNT: &str = "n";
}

pub const KIND_CLIENT: &str = "client";
pub const KIND_USER: &str = "user";
pub const KIND_EMAIL: &str = "email";
pub const KIND_CREDENTIAL: &str = "dcr";
pub const KIND_COUNTER: &str = "counter";

pub const CLIENT_SK: &str = "CLIENT";
pub const USER_SK: &str = "USER";
pub const EMAIL_SK: &str = "EMAIL";
pub const CREDENTIAL_SK: &str = "DCR";
pub const COUNTER_SK: &str = "RL";
pub const ALL_USERS: &str = "USERS";
pub const ALL_CLIENTS: &str = "CLIENTS";

/// A primary key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub pk: String,
    pub sk: &'static str,
}

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

/// The partition of GSI1 that lists a user's credentials.
pub fn credentials_of_user(u: &UserId) -> String {
    format!("USER#{u}")
}

/// The partition of GSI2 that lists a client's credentials.
pub fn credentials_of_client(c: &ClientId) -> String {
    format!("CLIENT#{c}")
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
        assert_eq!(
            credential_by_user_sk(&c, Timestamp::from_millis(42), &d),
            "DCR#abc#0000000000042#dcr_dFJiaAxbEroQ5xxx"
        );
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
        }

        #[test]
        fn primary_keys_are_injective(x in "[A-Za-z0-9]{16}", y in "[A-Za-z0-9]{16}") {
            let dx = DeviceCredentialId::from_selector(&x).expect("id");
            let dy = DeviceCredentialId::from_selector(&y).expect("id");
            prop_assert_eq!(credential(&dx) == credential(&dy), x == y);
        }
    }
}

//! Item conversions: domain types to and from DynamoDB attribute maps. A missing or malformed
//! attribute is a typed error ([`StoreError::Corrupt`]), never skipped.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use rt_domain::audit::{Actor, AuditEvent, EventType, LogDay, LogId, Reason, Revocation, Source};
use rt_domain::client::{
    AppType, Client, ExpirationType, RefreshTokenPolicy, RotationType, SigningAlg, TokenEndpointAuthMethod,
};
use rt_domain::clock::Timestamp;
use rt_domain::code::{AuthorizationCode, Challenge, Redemption};
use rt_domain::credential::DeviceCredential;
use rt_domain::exchange::Snapshot;
use rt_domain::ids::{ClientId, DeviceCredentialId, DeviceName, Email, UserId};
use rt_domain::password::PasswordHash;
use rt_domain::ports::StoreError;
use rt_domain::ratelimit::Counter;
use rt_domain::scope::Scope;
use rt_domain::token::SecretHash;
use rt_domain::user::User;

use crate::keys::{self, attr};

pub type Item = HashMap<String, AttributeValue>;

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}
pub fn b(v: bool) -> AttributeValue {
    AttributeValue::Bool(v)
}
pub fn list(v: &[String]) -> AttributeValue {
    AttributeValue::L(v.iter().map(|x| s(x.clone())).collect())
}

fn corrupt(item: &Item, what: &str) -> StoreError {
    let pk = item.get(keys::PK).and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or("?");
    StoreError::Corrupt(format!("item {pk}: attribute '{what}' is missing or malformed"))
}

pub fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str).ok_or_else(|| corrupt(item, name))
}
pub fn opt_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}
pub fn get_i64(item: &Item, name: &str) -> Result<i64, StoreError> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).ok_or_else(|| corrupt(item, name))
}
pub fn opt_i64(item: &Item, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}
pub fn get_u32(item: &Item, name: &str) -> Result<u32, StoreError> {
    u32::try_from(get_i64(item, name)?).map_err(|_| corrupt(item, name))
}
pub fn get_bool(item: &Item, name: &str) -> Result<bool, StoreError> {
    item.get(name).and_then(|v| v.as_bool().ok()).copied().ok_or_else(|| corrupt(item, name))
}
pub fn get_list(item: &Item, name: &str) -> Result<Vec<String>, StoreError> {
    let l = item.get(name).and_then(|v| v.as_l().ok()).ok_or_else(|| corrupt(item, name))?;
    l.iter().map(|v| v.as_s().cloned().map_err(|_| corrupt(item, name))).collect()
}
pub fn get_ss(item: &Item, name: &str) -> Result<Vec<String>, StoreError> {
    item.get(name).and_then(|v| v.as_ss().ok()).cloned().ok_or_else(|| corrupt(item, name))
}

fn key_attrs(item: &mut Item, key: &keys::Key, kind: &str) {
    item.insert(keys::PK.into(), s(key.pk.clone()));
    item.insert(keys::SK.into(), s(key.sk));
    item.insert(keys::KIND.into(), s(kind));
}

pub fn client_to_item(c: &Client) -> Item {
    let mut item = Item::new();
    key_attrs(&mut item, &keys::client(&c.id), keys::KIND_CLIENT);
    item.insert(keys::GSI2_PK.into(), s(keys::ALL_CLIENTS));
    item.insert(keys::GSI2_SK.into(), s(c.id.as_str()));
    item.insert(attr::CLIENT_ID.into(), s(c.id.as_str()));
    item.insert(attr::NAME.into(), s(c.name.clone()));
    item.insert(attr::APP_TYPE.into(), s(c.app_type.as_str()));
    item.insert(attr::CALLBACKS.into(), list(&c.callbacks));
    item.insert(attr::WEB_ORIGINS.into(), list(&c.web_origins));
    item.insert(attr::GRANT_TYPES.into(), list(&c.grant_types));
    item.insert(attr::ID_TOKEN_LIFETIME.into(), n(c.id_token_lifetime_secs));
    if let Some(h) = &c.secret_hash {
        item.insert(attr::SECRET_HASH.into(), s(h.to_hex()));
    }
    item.insert(attr::MGMT_SCOPES.into(), list(&c.management_scopes));
    item.insert(attr::LOGOUT_URLS.into(), list(&c.allowed_logout_urls));
    item.insert(attr::TOKEN_AUTH_METHOD.into(), s(c.token_endpoint_auth_method.as_str()));
    item.insert(attr::SIGNING_ALG.into(), s(c.signing_alg.as_str()));
    let rt = &c.refresh_token;
    item.insert(attr::RT_ROTATION.into(), s(rt.rotation_type.as_str()));
    item.insert(attr::RT_EXPIRATION.into(), s(rt.expiration_type.as_str()));
    item.insert(attr::RT_LEEWAY.into(), n(rt.leeway));
    item.insert(attr::RT_LIFETIME.into(), n(rt.token_lifetime));
    item.insert(attr::RT_INFINITE_LIFETIME.into(), b(rt.infinite_token_lifetime));
    item.insert(attr::RT_IDLE_LIFETIME.into(), n(rt.idle_token_lifetime));
    item.insert(attr::RT_INFINITE_IDLE_LIFETIME.into(), b(rt.infinite_idle_token_lifetime));
    item.insert(attr::CREATED_AT.into(), n(c.created_at.millis()));
    item
}

/// An attribute added after the first release: absent (an item written before it) is
/// `default`, present but malformed is corrupt.
fn added<T>(
    item: &Item,
    name: &str,
    default: T,
    read: impl FnOnce(&AttributeValue) -> Option<T>,
) -> Result<T, StoreError> {
    match item.get(name) {
        None => Ok(default),
        Some(v) => read(v).ok_or_else(|| corrupt(item, name)),
    }
}

fn added_u32(item: &Item, name: &str, default: u32) -> Result<u32, StoreError> {
    added(item, name, default, |v| v.as_n().ok().and_then(|n| n.parse().ok()))
}

fn added_bool(item: &Item, name: &str, default: bool) -> Result<bool, StoreError> {
    added(item, name, default, |v| v.as_bool().ok().copied())
}

/// The refresh-token policy of a client item; every attribute defaults on its own.
fn refresh_token_policy(item: &Item) -> Result<RefreshTokenPolicy, StoreError> {
    let d = RefreshTokenPolicy::default();
    Ok(RefreshTokenPolicy {
        rotation_type: added(item, attr::RT_ROTATION, d.rotation_type, |v| {
            v.as_s().ok().and_then(|s| RotationType::parse(s))
        })?,
        expiration_type: added(item, attr::RT_EXPIRATION, d.expiration_type, |v| {
            v.as_s().ok().and_then(|s| ExpirationType::parse(s))
        })?,
        leeway: added_u32(item, attr::RT_LEEWAY, d.leeway)?,
        token_lifetime: added_u32(item, attr::RT_LIFETIME, d.token_lifetime)?,
        infinite_token_lifetime: added_bool(item, attr::RT_INFINITE_LIFETIME, d.infinite_token_lifetime)?,
        idle_token_lifetime: added_u32(item, attr::RT_IDLE_LIFETIME, d.idle_token_lifetime)?,
        infinite_idle_token_lifetime: added_bool(
            item,
            attr::RT_INFINITE_IDLE_LIFETIME,
            d.infinite_idle_token_lifetime,
        )?,
    })
}

pub fn client_from_item(item: &Item) -> Result<Client, StoreError> {
    let secret_hash = match opt_s(item, attr::SECRET_HASH) {
        Some(h) => Some(SecretHash::from_hex(h).ok_or_else(|| corrupt(item, attr::SECRET_HASH))?),
        None => None,
    };
    // Before the method was stored, it followed from the secret.
    let implied = TokenEndpointAuthMethod::default_for(secret_hash.is_some());
    Ok(Client {
        id: ClientId::parse(get_s(item, attr::CLIENT_ID)?).map_err(|_| corrupt(item, attr::CLIENT_ID))?,
        name: get_s(item, attr::NAME)?.to_owned(),
        app_type: AppType::parse(get_s(item, attr::APP_TYPE)?).ok_or_else(|| corrupt(item, attr::APP_TYPE))?,
        callbacks: get_list(item, attr::CALLBACKS)?,
        web_origins: get_list(item, attr::WEB_ORIGINS)?,
        grant_types: get_list(item, attr::GRANT_TYPES)?,
        id_token_lifetime_secs: get_u32(item, attr::ID_TOKEN_LIFETIME)?,
        secret_hash,
        token_endpoint_auth_method: added(item, attr::TOKEN_AUTH_METHOD, implied, |v| {
            v.as_s().ok().and_then(|s| TokenEndpointAuthMethod::parse(s))
        })?,
        management_scopes: get_list(item, attr::MGMT_SCOPES)?,
        allowed_logout_urls: match item.get(attr::LOGOUT_URLS) {
            None => vec![],
            Some(_) => get_list(item, attr::LOGOUT_URLS)?,
        },
        refresh_token: refresh_token_policy(item)?,
        signing_alg: added(item, attr::SIGNING_ALG, SigningAlg::default(), |v| {
            v.as_s().ok().and_then(|s| SigningAlg::parse(s))
        })?,
        created_at: Timestamp::from_millis(get_i64(item, attr::CREATED_AT)?),
    })
}

pub fn user_to_item(u: &User) -> Item {
    let mut item = Item::new();
    key_attrs(&mut item, &keys::user(&u.id), keys::KIND_USER);
    item.insert(keys::GSI1_PK.into(), s(keys::ALL_USERS));
    item.insert(keys::GSI1_SK.into(), s(u.email.as_str()));
    item.insert(attr::USER_ID.into(), s(u.id.as_str()));
    item.insert(attr::EMAIL.into(), s(u.email.as_str()));
    item.insert(attr::EMAIL_VERIFIED.into(), b(u.email_verified));
    item.insert(attr::NAME.into(), s(u.name.clone()));
    item.insert(attr::NICKNAME.into(), s(u.nickname.clone()));
    item.insert(attr::PASSWORD_HASH.into(), s(u.password_hash.as_phc()));
    item.insert(attr::REV.into(), n(u.rev));
    item.insert(attr::ADMIN.into(), b(u.admin));
    item.insert(attr::BLOCKED.into(), b(u.blocked));
    item.insert(attr::CREATED_AT.into(), n(u.created_at.millis()));
    item.insert(attr::UPDATED_AT.into(), n(u.updated_at.millis()));
    item.insert(attr::SESSIONS_AFTER.into(), n(u.sessions_after.millis()));
    // Kept by issue and revocation; a new user has none (`live_devices` is not written).
    item.insert(attr::DEVICES.into(), AttributeValue::M(HashMap::new()));
    item
}

/// Device names with at least one live token, from a user item's device map.
fn live_devices(item: &Item) -> u32 {
    let Some(Ok(m)) = item.get(attr::DEVICES).map(AttributeValue::as_m) else { return 0 };
    let live = m.values().filter(|v| v.as_n().ok().and_then(|n| n.parse::<i64>().ok()).is_some_and(|n| n > 0));
    u32::try_from(live.count()).unwrap_or(u32::MAX)
}

pub fn user_from_item(item: &Item) -> Result<User, StoreError> {
    Ok(User {
        id: UserId::parse(get_s(item, attr::USER_ID)?).map_err(|_| corrupt(item, attr::USER_ID))?,
        email: Email::parse(get_s(item, attr::EMAIL)?).map_err(|_| corrupt(item, attr::EMAIL))?,
        email_verified: get_bool(item, attr::EMAIL_VERIFIED)?,
        name: get_s(item, attr::NAME)?.to_owned(),
        nickname: get_s(item, attr::NICKNAME)?.to_owned(),
        password_hash: PasswordHash::from_phc(get_s(item, attr::PASSWORD_HASH)?.to_owned()),
        rev: get_u32(item, attr::REV)?,
        admin: get_bool(item, attr::ADMIN)?,
        blocked: get_bool(item, attr::BLOCKED)?,
        created_at: Timestamp::from_millis(get_i64(item, attr::CREATED_AT)?),
        updated_at: Timestamp::from_millis(get_i64(item, attr::UPDATED_AT)?),
        sessions_after: Timestamp::from_millis(opt_i64(item, attr::SESSIONS_AFTER).unwrap_or(0)),
        live_devices: live_devices(item),
    })
}

pub fn email_to_item(e: &Email, user: &UserId) -> Item {
    let mut item = Item::new();
    key_attrs(&mut item, &keys::email(e), keys::KIND_EMAIL);
    item.insert(attr::USER_ID.into(), s(user.as_str()));
    item
}

pub fn credential_to_item(c: &DeviceCredential) -> Item {
    let mut item = Item::new();
    key_attrs(&mut item, &keys::credential(&c.id), keys::KIND_CREDENTIAL);
    item.insert(keys::GSI1_PK.into(), s(keys::credentials_of_user(&c.user_id)));
    item.insert(keys::GSI1_SK.into(), s(keys::credential_by_user_sk(&c.client_id, c.created_at, &c.id)));
    item.insert(keys::GSI2_PK.into(), s(keys::credentials_of_client(&c.client_id, keys::client_shard(&c.user_id))));
    item.insert(keys::GSI2_SK.into(), s(keys::credential_by_client_sk(&c.user_id, c.created_at, &c.id)));
    item.insert(attr::ID.into(), s(c.id.as_str()));
    item.insert(attr::CLIENT_ID.into(), s(c.client_id.as_str()));
    item.insert(attr::USER_ID.into(), s(c.user_id.as_str()));
    item.insert(attr::USER_REV.into(), n(c.user_rev));
    item.insert(attr::DEVICE_NAME.into(), s(c.device_name.as_str()));
    item.insert(attr::SCOPES.into(), AttributeValue::Ss(c.scope.iter().map(str::to_owned).collect()));
    item.insert(attr::SECRET_HASH.into(), s(c.secret_hash.to_hex()));
    item.insert(attr::CREATED_AT.into(), n(c.created_at.millis()));
    if let Some(ip) = &c.created_ip {
        item.insert(attr::CREATED_IP.into(), s(ip.clone()));
    }
    if let Some(t) = c.last_used_at {
        item.insert(attr::LAST_USED_AT.into(), n(t.millis()));
    }
    if let Some(ip) = &c.last_ip {
        item.insert(attr::LAST_IP.into(), s(ip.clone()));
    }
    item.insert(attr::USE_COUNT.into(), n(c.use_count));
    item.insert(attr::RATE.into(), AttributeValue::M(HashMap::new()));
    if let Some(g) = c.generation {
        item.insert(attr::GENERATION.into(), n(g));
    }
    item
}

pub fn credential_from_item(item: &Item) -> Result<DeviceCredential, StoreError> {
    let scope = Scope::from_iter(get_ss(item, attr::SCOPES)?);
    Ok(DeviceCredential {
        id: DeviceCredentialId::parse(get_s(item, attr::ID)?).map_err(|_| corrupt(item, attr::ID))?,
        client_id: ClientId::parse(get_s(item, attr::CLIENT_ID)?).map_err(|_| corrupt(item, attr::CLIENT_ID))?,
        user_id: UserId::parse(get_s(item, attr::USER_ID)?).map_err(|_| corrupt(item, attr::USER_ID))?,
        user_rev: get_u32(item, attr::USER_REV)?,
        device_name: DeviceName::parse(get_s(item, attr::DEVICE_NAME)?)
            .map_err(|_| corrupt(item, attr::DEVICE_NAME))?,
        scope,
        secret_hash: SecretHash::from_hex(get_s(item, attr::SECRET_HASH)?)
            .ok_or_else(|| corrupt(item, attr::SECRET_HASH))?,
        created_at: Timestamp::from_millis(get_i64(item, attr::CREATED_AT)?),
        created_ip: opt_s(item, attr::CREATED_IP).map(str::to_owned),
        last_used_at: opt_i64(item, attr::LAST_USED_AT).map(Timestamp::from_millis),
        last_ip: opt_s(item, attr::LAST_IP).map(str::to_owned),
        use_count: opt_i64(item, attr::USE_COUNT).and_then(|v| u64::try_from(v).ok()).unwrap_or(0),
        generation: opt_generation(item)?,
    })
}

pub fn code_to_item(c: &AuthorizationCode) -> Item {
    let mut item = Item::new();
    key_attrs(&mut item, &keys::code(&c.hash), keys::KIND_CODE);
    item.insert(keys::GSI2_PK.into(), s(keys::codes_shard(&c.hash)));
    item.insert(keys::GSI2_SK.into(), s(keys::code_by_expiry_sk(c.expires_at)));
    item.insert(attr::CLIENT_ID.into(), s(c.client_id.as_str()));
    item.insert(attr::USER_ID.into(), s(c.user_id.as_str()));
    item.insert(attr::USER_REV.into(), n(c.user_rev));
    item.insert(attr::REDIRECT_URI.into(), s(c.redirect_uri.clone()));
    if let Some(ch) = &c.challenge {
        item.insert(attr::CHALLENGE.into(), s(ch.as_str()));
    }
    if !c.scope.is_empty() {
        item.insert(attr::SCOPES.into(), AttributeValue::Ss(c.scope.iter().map(str::to_owned).collect()));
    }
    if let Some(nonce) = &c.nonce {
        item.insert(attr::NONCE.into(), s(nonce.clone()));
    }
    if let Some(d) = &c.device {
        item.insert(attr::DEVICE_NAME.into(), s(d.as_str()));
    }
    item.insert(attr::CREATED_AT.into(), n(c.created_at.millis()));
    item.insert(attr::CREATED_IP.into(), s(c.created_ip.clone()));
    item.insert(attr::EXPIRES_AT.into(), n(c.expires_at.millis()));
    if let Some(r) = &c.redeemed {
        item.insert(attr::REDEEMED_AT.into(), n(r.at.millis()));
        if let Some(id) = &r.credential {
            item.insert(attr::ISSUED.into(), s(id.as_str()));
        }
    }
    item
}

pub fn code_from_item(hash: &SecretHash, item: &Item) -> Result<AuthorizationCode, StoreError> {
    let scope = match item.get(attr::SCOPES) {
        None => Scope::default(),
        Some(_) => Scope::from_iter(get_ss(item, attr::SCOPES)?),
    };
    let challenge = match opt_s(item, attr::CHALLENGE) {
        None => None,
        Some(c) => Some(Challenge::from_stored(c).ok_or_else(|| corrupt(item, attr::CHALLENGE))?),
    };
    let device = match opt_s(item, attr::DEVICE_NAME) {
        None => None,
        Some(d) => Some(DeviceName::parse(d).map_err(|_| corrupt(item, attr::DEVICE_NAME))?),
    };
    let redeemed = match opt_i64(item, attr::REDEEMED_AT) {
        None => None,
        Some(at) => Some(Redemption {
            at: Timestamp::from_millis(at),
            credential: match opt_s(item, attr::ISSUED) {
                None => None,
                Some(id) => Some(DeviceCredentialId::parse(id).map_err(|_| corrupt(item, attr::ISSUED))?),
            },
        }),
    };
    Ok(AuthorizationCode {
        hash: hash.clone(),
        client_id: ClientId::parse(get_s(item, attr::CLIENT_ID)?).map_err(|_| corrupt(item, attr::CLIENT_ID))?,
        user_id: UserId::parse(get_s(item, attr::USER_ID)?).map_err(|_| corrupt(item, attr::USER_ID))?,
        user_rev: get_u32(item, attr::USER_REV)?,
        redirect_uri: get_s(item, attr::REDIRECT_URI)?.to_owned(),
        challenge,
        scope,
        nonce: opt_s(item, attr::NONCE).map(str::to_owned),
        device,
        created_at: Timestamp::from_millis(get_i64(item, attr::CREATED_AT)?),
        created_ip: get_s(item, attr::CREATED_IP)?.to_owned(),
        expires_at: Timestamp::from_millis(get_i64(item, attr::EXPIRES_AT)?),
        redeemed,
    })
}

fn opt_generation(item: &Item) -> Result<Option<u32>, StoreError> {
    match item.get(attr::GENERATION) {
        None => Ok(None),
        Some(_) => get_u32(item, attr::GENERATION).map(Some),
    }
}

/// A counter (`{w, n}`) as stored in its own item or in a credential's counter map.
pub fn counter_from(item: &Item) -> Result<Counter, StoreError> {
    Ok(Counter { window: get_i64(item, attr::WINDOW)?, count: get_u32(item, attr::COUNT)? })
}

/// The exchange's view of a credential item. A malformed counter entry reads as one of the
/// oldest window, so that it is pruned rather than counted.
pub fn snapshot_from_item(item: &Item) -> Result<Snapshot, StoreError> {
    let counters = match item.get(attr::RATE).map(AttributeValue::as_m) {
        None => Default::default(),
        Some(Ok(m)) => m
            .iter()
            .map(|(address, v)| {
                let c = v.as_m().ok().and_then(|m| counter_from(m).ok());
                (address.clone(), c.unwrap_or(Counter { window: i64::MIN, count: 0 }))
            })
            .collect(),
        Some(Err(_)) => return Err(corrupt(item, attr::RATE)),
    };
    let previous = match opt_s(item, attr::PREVIOUS_HASH) {
        None => None,
        Some(h) => Some((
            SecretHash::from_hex(h).ok_or_else(|| corrupt(item, attr::PREVIOUS_HASH))?,
            Timestamp::from_millis(get_i64(item, attr::ROTATED_AT)?),
        )),
    };
    Ok(Snapshot::of(credential_from_item(item)?, counters, previous))
}

/// An audit event: in its user's partition (or its day's shard without one), and in its day's
/// shard of the feed (GSI2). Only what is known is written.
pub fn event_to_item(e: &AuditEvent) -> Item {
    let day = LogDay::of(e.at());
    let shard = keys::log_shard(&e.id);
    let pk = match &e.user_id {
        Some(u) => keys::user_log(u),
        None => keys::shard_log(day, shard),
    };
    let mut item = Item::from([
        (keys::PK.to_owned(), s(pk)),
        (keys::SK.to_owned(), s(e.id.as_str())),
        (keys::KIND.to_owned(), s(keys::KIND_EVENT)),
        (keys::GSI2_PK.to_owned(), s(keys::log_feed(day, shard))),
        (keys::GSI2_SK.to_owned(), s(e.id.as_str())),
        (attr::EVENT_TYPE.to_owned(), s(e.kind.code())),
        (attr::DESCRIPTION.to_owned(), s(e.description.clone())),
    ]);
    let mut opt = |name: &str, v: Option<&str>| {
        if let Some(v) = v {
            item.insert(name.to_owned(), s(v));
        }
    };
    opt(attr::CLIENT_ID, e.client_id.as_ref().map(ClientId::as_str));
    opt(attr::CLIENT_NAME, e.client_name.as_deref());
    opt(attr::USER_ID, e.user_id.as_ref().map(UserId::as_str));
    opt(attr::USER_NAME, e.user_name.as_deref());
    opt(attr::DEVICE_NAME, e.device.as_deref());
    opt(attr::CREDENTIAL_ID, e.credential_id.as_ref().map(DeviceCredentialId::as_str));
    opt(attr::IP, e.source.ip.as_deref());
    opt(attr::USER_AGENT, e.source.user_agent.as_deref());
    if let Some(r) = &e.revocation {
        let (channel, actor) = r.by.parts();
        opt(attr::REASON, Some(r.reason.code()));
        opt(attr::REVOKED_BY, Some(channel));
        opt(attr::ACTOR, actor);
    }
    if let Some(count) = e.count {
        item.insert(attr::REVOKED.to_owned(), n(count));
    }
    item
}

pub fn event_from_item(item: &Item) -> Result<AuditEvent, StoreError> {
    let id = LogId::parse(get_s(item, keys::SK)?).ok_or_else(|| corrupt(item, keys::SK))?;
    let kind = EventType::parse(get_s(item, attr::EVENT_TYPE)?).ok_or_else(|| corrupt(item, attr::EVENT_TYPE))?;
    let parsed = |name: &str| -> Result<Option<String>, StoreError> { Ok(opt_s(item, name).map(str::to_owned)) };
    let client_id = opt_s(item, attr::CLIENT_ID)
        .map(|c| ClientId::parse(c).map_err(|_| corrupt(item, attr::CLIENT_ID)))
        .transpose()?;
    let user_id =
        opt_s(item, attr::USER_ID).map(|u| UserId::parse(u).map_err(|_| corrupt(item, attr::USER_ID))).transpose()?;
    let credential_id = opt_s(item, attr::CREDENTIAL_ID)
        .map(|c| DeviceCredentialId::parse(c).map_err(|_| corrupt(item, attr::CREDENTIAL_ID)))
        .transpose()?;
    let revocation = match (opt_s(item, attr::REASON), opt_s(item, attr::REVOKED_BY)) {
        (Some(reason), Some(channel)) => Some(Revocation {
            reason: Reason::parse(reason).ok_or_else(|| corrupt(item, attr::REASON))?,
            by: Actor::from_parts(channel, opt_s(item, attr::ACTOR)).ok_or_else(|| corrupt(item, attr::REVOKED_BY))?,
        }),
        (None, None) => None,
        _ => return Err(corrupt(item, attr::REASON)),
    };
    Ok(AuditEvent {
        id,
        kind,
        description: get_s(item, attr::DESCRIPTION)?.to_owned(),
        client_id,
        client_name: parsed(attr::CLIENT_NAME)?,
        user_id,
        user_name: parsed(attr::USER_NAME)?,
        device: parsed(attr::DEVICE_NAME)?,
        credential_id,
        source: Source { ip: parsed(attr::IP)?, user_agent: parsed(attr::USER_AGENT)? },
        revocation,
        count: opt_i64(item, attr::REVOKED).and_then(|c| u64::try_from(c).ok()),
    })
}

//! Demo data for `cargo xtask dev` (written to `target/dev/seed.json`) and building blocks
//! for tests.

use rt_domain::client::{
    AppType, Client, ExpirationType, GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, GRANT_IMPLICIT,
    GRANT_JWT_BEARER, GRANT_REFRESH_TOKEN, RefreshTokenPolicy, RotationType,
};
use rt_domain::clock::Timestamp;
use rt_domain::credential::DeviceCredential;
use rt_domain::ids::{ClientId, DeviceName, Email, UserId};
use rt_domain::password::PasswordHash;
use rt_domain::ports::{ClientStore, CreateUser, Freshness, StoreError, UserStore};
use rt_domain::random;
use rt_domain::scope::Scope;
use rt_domain::token::{RefreshToken, SecretHash};
use rt_domain::user::User;
use rt_store::DynamoStore;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// Every Management API scope, granted to the seeded machine-to-machine client.
pub use rt_domain::management::SCOPES as MANAGEMENT_SCOPES;

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
}

/// `target/dev/seed.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SeedFile {
    pub issuer: String,
    pub client_id: String,
    pub callback_url: String,
    pub user_email: String,
    pub user_password: String,
    pub mgmt_client_id: String,
    pub mgmt_client_secret: String,
    pub admin_email: String,
    pub admin_password: String,
    pub authorize_url: String,
    /// The single-page application (public, PKCE, rotating refresh tokens).
    #[serde(default)]
    pub spa_client_id: String,
    /// The regular web application (confidential, rotating refresh tokens).
    #[serde(default)]
    pub web_client_id: String,
    #[serde(default)]
    pub web_client_secret: String,
    /// The code flow's sign-in for the SPA, with [`DEMO_CODE_VERIFIER`]'s challenge.
    #[serde(default)]
    pub code_authorize_url: String,
    /// The PKCE verifier of [`Self::code_authorize_url`] (a fixed demo value: a real app makes
    /// a fresh one per sign-in and keeps it to itself).
    #[serde(default)]
    pub code_verifier: String,
}

/// The demo's fixed PKCE verifier (43 characters of the RFC 7636 alphabet).
pub const DEMO_CODE_VERIFIER: &str = "demo-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";

/// A public client of the legacy flow: implicit grant with refresh tokens and delegation.
/// Its refresh tokens are the legacy flow's: non-rotating, never expiring (the default policy).
pub fn native_client(name: &str, callbacks: Vec<String>, web_origins: Vec<String>, now: Timestamp) -> Client {
    Client {
        callbacks,
        web_origins,
        grant_types: vec![GRANT_IMPLICIT.into(), GRANT_REFRESH_TOKEN.into(), GRANT_JWT_BEARER.into()],
        ..Client::new(ClientId::generate(), name, AppType::Native, now)
    }
}

/// The refresh-token policy Auth0 gives new applications: rotating, expiring (30 days
/// absolute, 15 days idle), no reuse interval.
pub fn rotating_policy() -> RefreshTokenPolicy {
    RefreshTokenPolicy {
        rotation_type: RotationType::Rotating,
        expiration_type: ExpirationType::Expiring,
        infinite_token_lifetime: false,
        infinite_idle_token_lifetime: false,
        ..RefreshTokenPolicy::default()
    }
}

/// A single-page application: public (PKCE, `token_endpoint_auth_method: none`), the code
/// flow with rotating refresh tokens.
pub fn spa_client(name: &str, callbacks: Vec<String>, web_origins: Vec<String>, now: Timestamp) -> Client {
    Client {
        callbacks,
        web_origins,
        grant_types: vec![GRANT_AUTHORIZATION_CODE.into(), GRANT_REFRESH_TOKEN.into()],
        refresh_token: rotating_policy(),
        ..Client::new(ClientId::generate(), name, AppType::Spa, now)
    }
}

/// A regular web application: confidential (`client_secret_post` with `secret`), the code
/// flow with rotating refresh tokens.
pub fn web_client(name: &str, callbacks: Vec<String>, secret: &str, now: Timestamp) -> Client {
    Client {
        callbacks,
        grant_types: vec![GRANT_AUTHORIZATION_CODE.into(), GRANT_REFRESH_TOKEN.into()],
        refresh_token: rotating_policy(),
        ..Client::new(ClientId::generate(), name, AppType::RegularWeb, now)
    }
    .with_secret(SecretHash::of(secret.as_bytes()))
}

/// A machine-to-machine client for the Management API, and its secret.
pub fn management_client(name: &str, secret: &str, now: Timestamp) -> Client {
    Client {
        grant_types: vec![GRANT_CLIENT_CREDENTIALS.into()],
        management_scopes: MANAGEMENT_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        ..Client::new(ClientId::generate(), name, AppType::NonInteractive, now)
    }
    .with_secret(SecretHash::of(secret.as_bytes()))
}

/// The record an issue of `token` to `client` on `device` stores (scope `openid
/// offline_access`, never used): for the benchmarks and tests, which issue tokens without a
/// sign-in.
pub fn credential(
    token: &RefreshToken,
    client: &ClientId,
    device: &str,
    created_at: Timestamp,
) -> Result<DeviceCredential, SeedError> {
    Ok(DeviceCredential {
        id: token.id().clone(),
        client_id: client.clone(),
        user_id: token.user().clone(),
        user_rev: token.user_rev(),
        device_name: DeviceName::parse(device).map_err(|e| SeedError::Invalid(format!("device {device:?}: {e}")))?,
        scope: Scope::parse("openid offline_access").map_err(|e| SeedError::Invalid(e.to_string()))?,
        secret_hash: token.secret_hash(),
        created_at,
        created_ip: None,
        last_used_at: None,
        last_ip: None,
        use_count: 0,
        generation: token.generation(),
    })
}

pub fn user(email: &str, password: &str, name: &str, admin: bool, now: Timestamp) -> Result<User, SeedError> {
    Ok(User {
        id: UserId::generate(),
        email: Email::parse(email).map_err(|e| SeedError::Invalid(e.to_string()))?,
        email_verified: true,
        name: name.to_owned(),
        nickname: email.split('@').next().unwrap_or(email).to_owned(),
        password_hash: PasswordHash::create(&SecretString::from(password.to_owned()))
            .map_err(|e| SeedError::Invalid(e.to_string()))?,
        rev: 0,
        admin,
        blocked: false,
        created_at: now,
        updated_at: now,
        sessions_after: Timestamp::from_millis(0),
        live_devices: 0,
    })
}

/// A password that meets the policy.
pub fn random_password() -> String {
    format!("{}-{}", random::alphanumeric(12), random::alphanumeric(8))
}

fn authorize_url(issuer: &str, client_id: &str, callback: &str) -> String {
    let q: String = form_encode(&[
        ("response_type", "token"),
        ("client_id", client_id),
        ("redirect_uri", callback),
        ("scope", "openid offline_access"),
        ("device", "my-device"),
        ("state", "demo-state"),
    ]);
    format!("{issuer}authorize?{q}")
}

fn code_authorize_url(issuer: &str, client_id: &str, callback: &str) -> String {
    let challenge = rt_domain::code::Challenge::of(DEMO_CODE_VERIFIER);
    let q: String = form_encode(&[
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", callback),
        ("scope", "openid profile email offline_access"),
        ("state", "demo-state"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", rt_domain::code::S256),
    ]);
    format!("{issuer}authorize?{q}")
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={}", percent_encode(v))).collect::<Vec<_>>().join("&")
}

fn percent_encode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn ensure_client(
    store: &DynamoStore,
    id: Option<&str>,
    make: impl FnOnce() -> Client,
) -> Result<Client, SeedError> {
    if let Some(id) = id.and_then(|i| ClientId::parse(i).ok()) {
        if let Some(c) = store.get_client(&id, Freshness::Fresh).await? {
            return Ok(c);
        }
        let mut c = make();
        c.id = id;
        store.create_client(&c).await?;
        return Ok(c);
    }
    let c = make();
    store.create_client(&c).await?;
    Ok(c)
}

async fn ensure_user(store: &DynamoStore, u: User) -> Result<(), SeedError> {
    match store.create_user(&u).await? {
        // Already seeded by an earlier run (a persistent DynamoDB): keep it.
        CreateUser::Created | CreateUser::EmailTaken => Ok(()),
    }
}

/// Seeds the demo data, reusing what `previous` (an earlier `seed.json`) names.
pub async fn seed(
    store: &DynamoStore,
    issuer: &str,
    previous: Option<SeedFile>,
    now: Timestamp,
) -> Result<SeedFile, SeedError> {
    let prev = previous.as_ref();
    let origin = issuer.trim_end_matches('/').to_owned();
    let callback = format!("{issuer}dev/callback");
    let client = ensure_client(store, prev.map(|p| p.client_id.as_str()), || {
        native_client("Demo App", vec![callback.clone()], vec![origin.clone()], now)
    })
    .await?;
    let mgmt_secret = prev.map(|p| p.mgmt_client_secret.clone()).unwrap_or_else(|| random::alphanumeric(64));
    let mgmt = ensure_client(store, prev.map(|p| p.mgmt_client_id.as_str()), || {
        management_client("Management API (demo)", &mgmt_secret, now)
    })
    .await?;
    let spa = ensure_client(store, prev.map(|p| p.spa_client_id.as_str()), || {
        spa_client("Demo SPA", vec![callback.clone()], vec![origin.clone()], now)
    })
    .await?;
    let web_secret =
        prev.map(|p| p.web_client_secret.clone()).filter(|s| !s.is_empty()).unwrap_or_else(|| random::alphanumeric(64));
    let web = ensure_client(store, prev.map(|p| p.web_client_id.as_str()), || {
        web_client("Demo Web App", vec![callback.clone()], &web_secret, now)
    })
    .await?;
    let user_password = prev.map(|p| p.user_password.clone()).unwrap_or_else(random_password);
    let admin_password = prev.map(|p| p.admin_password.clone()).unwrap_or_else(random_password);
    ensure_user(store, user("demo@example.com", &user_password, "Demo User", false, now)?).await?;
    ensure_user(store, user("admin@example.com", &admin_password, "Administrator", true, now)?).await?;
    Ok(SeedFile {
        issuer: issuer.to_owned(),
        client_id: client.id.to_string(),
        callback_url: callback.clone(),
        user_email: "demo@example.com".into(),
        user_password,
        mgmt_client_id: mgmt.id.to_string(),
        mgmt_client_secret: mgmt_secret,
        admin_email: "admin@example.com".into(),
        admin_password,
        authorize_url: authorize_url(issuer, client.id.as_str(), &callback),
        spa_client_id: spa.id.to_string(),
        web_client_id: web.id.to_string(),
        web_client_secret: web_secret,
        code_authorize_url: code_authorize_url(issuer, spa.id.as_str(), &callback),
        code_verifier: DEMO_CODE_VERIFIER.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorize_url_is_encoded() {
        let u = authorize_url("http://127.0.0.1:3000/", "abc", "http://127.0.0.1:3000/dev/callback");
        assert_eq!(
            u,
            "http://127.0.0.1:3000/authorize?response_type=token&client_id=abc&redirect_uri=http%3A%2F%2F127.0.0.1%3A3000%2Fdev%2Fcallback&scope=openid%20offline_access&device=my-device&state=demo-state"
        );
    }
}

//! The state a function is given, built once per execution environment and shared by every
//! request. Each kind of function builds only what it uses (ARCHITECTURE.md, *Capabilities per
//! function*):
//!
//! - [`Base`]: the issuer and the clock (`api-preflight`, `openapi`, `dashboard-assets`);
//! - [`Published`]: a [`Base`] and the published public keys (`jwks`,
//!   `openid-configuration`: the key set and the algorithms it offers);
//! - [`Worker`]: the table and the clock alone (`sweep-expired`, run on a schedule: it answers
//!   no request, so it has neither the issuer nor a key);
//! - [`Api`]: a [`Published`], the store (the Management API functions: they verify access
//!   tokens with the public keys and never sign, so they never hold a private key);
//! - [`App`]: an [`Api`], the private signing keys and the HMAC keys derived from them
//!   (`authorize`, `delegation`, `oauth-token`, the dashboard).
//!
//! `Base`, `Published`, `Api` and `App` each contain the one before and dereference to it, so
//! that a handler reaches `store`, `clock`, `issuer` and `verifier` the same way whatever its
//! kind. The local
//! server and the tests build one [`App`] and hand each HTTP handler the part of it its kind
//! is given; a [`Worker`] is built on its own (from a store and a clock).

use std::future::Future;
use std::sync::Arc;

use rt_domain::clock::{Clock, SystemClock};
use rt_domain::throttle::LoginThrottle;
use rt_domain::token::RotationKeys;
use rt_domain::{authorize, delegation};
use rt_jwt::{SigningKeys, VerifyingKeys};
use rt_store::DynamoStore;
use secrecy::{SecretBox, SecretString};

use crate::config::{self, ApiConfig, BaseConfig, Config, ConfigError, JwksConfig, KeySource, WorkerConfig};

/// What every function but `jwks` has.
pub struct Base {
    /// Public issuer, absolute URL with a trailing slash; `iss` of every token.
    pub issuer: String,
    pub clock: Arc<dyn Clock>,
}

/// The table and the clock, nothing else: what a scheduled function has (`sweep-expired`).
pub struct Worker {
    pub store: DynamoStore,
    pub clock: Arc<dyn Clock>,
    /// How many days the audit log keeps events.
    pub log_retention_days: u32,
}

/// A [`Base`] with the published public keys (current, next and previous): what `jwks` and
/// `openid-configuration` have.
pub struct Published {
    pub base: Base,
    /// Verifies the access tokens `oauth-token` and `authorize` signed; the JWKS.
    pub verifier: VerifyingKeys,
}

/// A [`Published`] with the table: what a Management API function has.
pub struct Api {
    pub published: Published,
    pub store: DynamoStore,
}

/// An [`Api`] with the private signing key: what a function that signs has.
pub struct App {
    pub api: Api,
    pub config: Config,
    pub keys: SigningKeys,
    /// HMAC key of the login transaction carried by the login form (derived from `keys`).
    pub(crate) tx_key: SecretBox<[u8; 32]>,
    /// HMAC key of dashboard session cookies and their CSRF tokens (derived from `keys`: the
    /// dashboard functions hold the signing key for this alone).
    pub(crate) session_key: SecretBox<[u8; 32]>,
    pub(crate) delegation: delegation::Settings,
    pub(crate) authorize: authorize::Settings,
}

impl std::ops::Deref for Published {
    type Target = Base;
    fn deref(&self) -> &Base {
        &self.base
    }
}

impl std::ops::Deref for Api {
    type Target = Published;
    fn deref(&self) -> &Published {
        &self.published
    }
}

impl std::ops::Deref for App {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("signing key: {0}")]
    Key(String),
}

/// A state a function binary builds from the environment at start (see [`crate::bootstrap`]).
pub trait State: Sized + Send + Sync + 'static {
    fn from_env() -> impl Future<Output = Result<Self, BootError>> + Send;

    /// The `kid`s of the keys it holds, logged at start (public keys that are not the
    /// secret's show as different `kid`s).
    fn kid(&self) -> Option<String> {
        None
    }

    /// Opens what the first request would otherwise open (the DynamoDB connection), during
    /// the function's init phase: [`DynamoStore::warm_up`]. Nothing for a function without
    /// the table.
    fn warm_up(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

impl State for Base {
    async fn from_env() -> Result<Self, BootError> {
        let config = BaseConfig::from_env()?;
        Ok(Self { issuer: config.issuer, clock: Arc::new(SystemClock) })
    }
}

impl State for Published {
    async fn from_env() -> Result<Self, BootError> {
        let config = JwksConfig::from_env()?;
        let verifier = public_key(&config.public_key)?;
        Ok(Self { base: Base { issuer: config.issuer, clock: Arc::new(SystemClock) }, verifier })
    }

    fn kid(&self) -> Option<String> {
        Some(self.verifier.kids())
    }
}

impl State for Worker {
    async fn from_env() -> Result<Self, BootError> {
        let config = WorkerConfig::from_env()?;
        Ok(Self {
            store: DynamoStore::from_env(config.table_name),
            clock: Arc::new(SystemClock),
            log_retention_days: config.log_retention_days,
        })
    }

    fn warm_up(&self) -> impl Future<Output = ()> + Send {
        self.store.warm_up()
    }
}

impl State for Api {
    async fn from_env() -> Result<Self, BootError> {
        let config = ApiConfig::from_env()?;
        let verifier = public_key(&config.public_key)?;
        let store = DynamoStore::from_env(config.table_name);
        let base = Base { issuer: config.issuer, clock: Arc::new(SystemClock) };
        Ok(Self { published: Published { base, verifier }, store })
    }

    fn kid(&self) -> Option<String> {
        Some(self.verifier.kids())
    }

    fn warm_up(&self) -> impl Future<Output = ()> + Send {
        self.store.warm_up()
    }
}

impl State for App {
    /// Builds the application from the environment (see [`crate::config`]).
    async fn from_env() -> Result<Self, BootError> {
        let config = Config::from_env()?;
        let pem = load_key(&config.signing_key).await?;
        let keys = SigningKeys::from_pem(&pem).map_err(|e| BootError::Key(e.to_string()))?;
        let store = DynamoStore::from_env(config.table_name.clone());
        Ok(Self::new(config, store, keys, Arc::new(SystemClock)))
    }

    fn kid(&self) -> Option<String> {
        Some(self.keys.verifying_keys().kids())
    }

    fn warm_up(&self) -> impl Future<Output = ()> + Send {
        self.store.warm_up()
    }
}

fn public_key(text: &str) -> Result<VerifyingKeys, BootError> {
    VerifyingKeys::from_public_pem(text).map_err(|e| BootError::Key(format!("{}: {e}", config::SIGNING_PUBLIC_KEY_PEM)))
}

impl App {
    pub fn new(config: Config, store: DynamoStore, keys: SigningKeys, clock: Arc<dyn Clock>) -> Self {
        let tx_key = keys.derive_secret("login transaction");
        let session_key = keys.derive_secret("dashboard session");
        let delegation = delegation::Settings {
            issuer: config.issuer.clone(),
            policy: config.exchange_rate,
            max_addresses: config.exchange_max_addresses,
            hints: Default::default(),
        };
        let authorize = authorize::Settings {
            issuer: config.issuer.clone(),
            access_token_lifetime_secs: config.access_token_lifetime_secs,
            login: LoginThrottle::new(
                config.login_per_address,
                config.login_per_pair,
                keys.derive_secret("sign-in throttle counters"),
            ),
            // Derived from the signing key: a key rotation must keep it (ARCHITECTURE.md).
            rotation_keys: std::sync::Arc::new(RotationKeys::new(&keys.derive_secret("refresh token rotation"))),
        };
        let published =
            Published { base: Base { issuer: config.issuer.clone(), clock }, verifier: keys.verifying_keys().clone() };
        let api = Api { published, store };
        Self { api, config, keys, tx_key, session_key, delegation, authorize }
    }
}

async fn load_key(source: &KeySource) -> Result<SecretString, BootError> {
    match source {
        KeySource::Pem => std::env::var(config::SIGNING_KEY_PEM)
            .map(SecretString::from)
            .map_err(|_| BootError::Key(format!("{} is not set", config::SIGNING_KEY_PEM))),
        KeySource::File(path) => std::fs::read_to_string(path)
            .map(SecretString::from)
            .map_err(|e| BootError::Key(format!("cannot read {path}: {e}"))),
        KeySource::SecretArn(arn) => {
            // The environment's region and credentials alone, as the store's (rt_store::aws_env).
            let mut conf = aws_sdk_secretsmanager::config::Builder::from(&rt_store::aws_env::sdk_config());
            conf.set_endpoint_url(rt_store::aws_env::endpoint_url("SECRETS_MANAGER"));
            let sm = aws_sdk_secretsmanager::Client::from_conf(conf.build());
            let out = sm.get_secret_value().secret_id(arn).send().await.map_err(|e| {
                BootError::Key(format!(
                    "cannot read secret {arn}: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                ))
            })?;
            out.secret_string
                .map(SecretString::from)
                .ok_or_else(|| BootError::Key(format!("secret {arn} has no SecretString")))
        }
    }
}

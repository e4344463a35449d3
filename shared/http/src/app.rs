//! The application state: configuration, store, keys and clock, built once per execution
//! environment and shared by every request.

use std::sync::Arc;

use rt_domain::clock::{Clock, SystemClock};
use rt_domain::{authorize, delegation};
use rt_jwt::SigningKey;
use rt_store::DynamoStore;
use secrecy::{SecretBox, SecretString};

use crate::config::{self, Config, ConfigError, KeySource};

pub struct App {
    pub config: Config,
    pub store: DynamoStore,
    pub keys: SigningKey,
    pub clock: Arc<dyn Clock>,
    /// HMAC key of the login transaction carried by the login form.
    pub(crate) tx_key: SecretBox<[u8; 32]>,
    /// HMAC key of dashboard session cookies and their CSRF tokens.
    pub(crate) session_key: SecretBox<[u8; 32]>,
    pub(crate) delegation: delegation::Settings,
    pub(crate) authorize: authorize::Settings,
}

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("signing key: {0}")]
    Key(String),
}

impl App {
    /// Builds the application from the environment (see [`crate::config`]).
    pub async fn from_env() -> Result<Self, BootError> {
        let config = Config::from_env()?;
        let pem = load_key(&config.signing_key).await?;
        let keys = SigningKey::from_pem(&pem).map_err(|e| BootError::Key(e.to_string()))?;
        let store = DynamoStore::from_env(config.table_name.clone()).await;
        Ok(Self::new(config, store, keys, Arc::new(SystemClock)))
    }

    pub fn new(config: Config, store: DynamoStore, keys: SigningKey, clock: Arc<dyn Clock>) -> Self {
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
            login_per_address: config.login_per_address,
            login_per_account: config.login_per_account,
        };
        Self { config, store, keys, clock, tx_key, session_key, delegation, authorize }
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
            let conf = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let sm = aws_sdk_secretsmanager::Client::new(&conf);
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

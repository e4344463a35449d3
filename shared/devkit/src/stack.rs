//! The local stack: the app over a store, served over HTTP by the local server.

use std::net::SocketAddr;
use std::sync::Arc;

use rt_domain::clock::Clock;
use rt_http::App;
use rt_http::config::{Config, KeySource};
use rt_jwt::SigningKeys;
use rt_store::DynamoStore;

use crate::template::{Template, TemplateError};

/// Configuration for a local stack with defaults for every tunable.
pub fn config(issuer: &str, table: &str) -> Config {
    config_with(issuer, table, |_| None).unwrap_or_else(|e| unreachable_config(&e.to_string()))
}

/// Configuration for a local stack at `issuer` over `table`, every other variable of
/// [`Config::VARIABLES`] read through `lookup` as the functions read their environment
/// (`cargo xtask dev` passes its own environment: `EXCHANGE_RATE_LIMIT=1000000` lifts the limit
/// for a load test). The signing key is the caller's (set directly), whatever `lookup` says.
pub fn config_with(
    issuer: &str,
    table: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Config, rt_http::config::ConfigError> {
    use rt_http::config::{ISSUER, SIGNING_KEY_FILE, SIGNING_KEY_PEM, SIGNING_KEY_SECRET_ARN, TABLE_NAME};
    let mut c = Config::from_lookup(|k| match k {
        ISSUER => Some(issuer.to_owned()),
        TABLE_NAME => Some(table.to_owned()),
        SIGNING_KEY_PEM => Some("provided directly".to_owned()),
        SIGNING_KEY_SECRET_ARN | SIGNING_KEY_FILE => None,
        other => lookup(other),
    })?;
    c.signing_key = KeySource::Pem;
    Ok(c)
}

#[allow(clippy::panic)]
fn unreachable_config(e: &str) -> Config {
    panic!("built-in local configuration is invalid: {e}")
}

/// The environment a function of `kind` is deployed with, for a local run of its binary: of
/// `ours` (name, value) the variables its kind reads, as `template.yaml` gives them, and for a
/// function with the table what Lambda would set for the AWS SDK, pointed at the local
/// `dynamodb` with test credentials.
pub fn function_env(kind: rt_http::capability::Kind, ours: &[(&str, String)], dynamodb: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = ours
        .iter()
        .filter(|(name, _)| kind.variables().contains(name))
        .map(|(name, value)| ((*name).to_owned(), value.clone()))
        .collect();
    if kind.has_table() {
        for (name, value) in [
            ("AWS_ENDPOINT_URL_DYNAMODB", dynamodb),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ] {
            env.push((name.to_owned(), value.to_owned()));
        }
    }
    env
}

/// Creates the table from `template.yaml` (if missing).
pub async fn create_table(store: &DynamoStore, template: &Template) -> Result<bool, rt_domain::ports::StoreError> {
    store.create_table(&template.table).await
}

pub struct Stack {
    pub app: Arc<App>,
    pub addr: SocketAddr,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Stack {
    /// Binds `addr` (port 0 picks one) and serves `template.yaml`'s routes.
    pub async fn start(
        config: Config,
        store: DynamoStore,
        keys: SigningKeys,
        clock: Arc<dyn Clock>,
        template: &Template,
        addr: SocketAddr,
    ) -> Result<Self, StackError> {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| StackError::Bind(addr, e))?;
        let addr = listener.local_addr().map_err(|e| StackError::Bind(addr, e))?;
        let app = Arc::new(App::new(config, store, keys, clock));
        let routes = Arc::new(template.local_routes()?);
        let server = tokio::spawn(rt_http::local::serve(listener, app.clone(), routes));
        Ok(Self { app, addr, server })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits for the server (it runs until the process ends).
    pub async fn wait(mut self) -> std::io::Result<()> {
        match (&mut self.server).await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error(transparent)]
    Template(#[from] TemplateError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_stack_reads_every_tunable_as_the_functions_do() {
        let env = |k: &str| match k {
            "EXCHANGE_RATE_LIMIT" => Some("1000000".to_owned()),
            "LOGIN_LOCKOUT_SECONDS" => Some("60".to_owned()),
            "SIGNING_KEY_SECRET_ARN" => Some("arn:aws:secretsmanager:…".to_owned()),
            _ => None,
        };
        let c = config_with("http://127.0.0.1:3000/", "t", env).expect("valid");
        assert_eq!(c.exchange_rate.limit, 1_000_000);
        assert_eq!(c.login_per_pair.window_secs, 60);
        assert_eq!(c.issuer, "http://127.0.0.1:3000/");
        assert!(matches!(c.signing_key, KeySource::Pem), "the local key, not the environment's");
        let defaults = config("http://127.0.0.1:3000/", "t");
        assert_eq!(defaults.exchange_rate.limit, 10);
        assert!(
            config_with("http://127.0.0.1:3000/", "t", |k| (k == "EXCHANGE_RATE_LIMIT").then(|| "lots".into()))
                .is_err()
        );
    }
}

//! The local stack: the app over a store, served over HTTP by the local server.

use std::net::SocketAddr;
use std::sync::Arc;

use rt_domain::clock::Clock;
use rt_http::App;
use rt_http::config::{Config, KeySource};
use rt_jwt::SigningKey;
use rt_store::DynamoStore;

use crate::template::{Template, TemplateError};

/// Configuration for a local stack with defaults for every tunable.
pub fn config(issuer: &str, table: &str) -> Config {
    let env = [
        (rt_http::config::ISSUER, issuer.to_owned()),
        (rt_http::config::TABLE_NAME, table.to_owned()),
        (rt_http::config::SIGNING_KEY_PEM, "provided directly".to_owned()),
    ];
    let mut c = Config::from_lookup(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
        .unwrap_or_else(|e| unreachable_config(&e.to_string()));
    c.signing_key = KeySource::Pem;
    c
}

#[allow(clippy::panic)]
fn unreachable_config(e: &str) -> Config {
    panic!("built-in local configuration is invalid: {e}")
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
        keys: SigningKey,
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

//! What each function is given (ARCHITECTURE.md, *Capabilities per function*): the [`Kind`] of
//! state its binary builds, declared for every function by its handler in `handlers::FUNCTIONS`.

use crate::config::{ApiConfig, BaseConfig, Config, JwksConfig};

/// The state a function builds at start, from the least to the most it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// The issuer and the clock ([`crate::app::Base`]).
    Bare,
    /// The public signing key alone ([`rt_jwt::VerifyingKey`]).
    Jwks,
    /// The table and the public key that verifies access tokens ([`crate::app::Api`]).
    Api,
    /// The table and the private signing key ([`crate::app::App`]).
    App,
}

impl Kind {
    /// The environment variables its configuration reads (`RUST_LOG` aside).
    pub fn variables(self) -> &'static [&'static str] {
        match self {
            Kind::Bare => BaseConfig::VARIABLES,
            Kind::Jwks => JwksConfig::VARIABLES,
            Kind::Api => ApiConfig::VARIABLES,
            Kind::App => Config::VARIABLES,
        }
    }

    /// Whether it reads the private signing key (in AWS: the Secrets Manager secret).
    pub fn reads_signing_secret(self) -> bool {
        self == Kind::App
    }

    /// Whether it is given the public key (`SIGNING_PUBLIC_KEY_PEM`).
    pub fn reads_public_key(self) -> bool {
        matches!(self, Kind::Jwks | Kind::Api)
    }

    /// Whether it has a store (`TABLE_NAME`).
    pub fn has_table(self) -> bool {
        matches!(self, Kind::Api | Kind::App)
    }
}

//! What each function is given and what it may do to the table (ARCHITECTURE.md,
//! *Capabilities per function*): the [`Kind`] of state its binary builds, and the DynamoDB
//! actions it sends with the leading keys they touch ([`Grant`]). `handlers::FUNCTIONS`
//! declares both for every function; `template.yaml` grants each function exactly that
//! (`tests/api/architecture.rs`), and the API tests check that no function sends anything
//! else (`tests/api/capabilities.rs`).

use crate::config::{ApiConfig, BaseConfig, Config, JwksConfig, WorkerConfig};

/// The state a function builds at start, from the least to the most it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// The issuer and the clock ([`crate::app::Base`]).
    Bare,
    /// The issuer and the published public keys ([`crate::app::Published`]).
    Jwks,
    /// The table alone, no issuer, no key ([`crate::app::Worker`]): a function run on a
    /// schedule, not on an HTTP route.
    Worker,
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
            Kind::Worker => WorkerConfig::VARIABLES,
            Kind::Api => ApiConfig::VARIABLES,
            Kind::App => Config::VARIABLES,
        }
    }

    /// Whether it reads the private signing key (in AWS: the Secrets Manager secret).
    pub fn reads_signing_secret(self) -> bool {
        self == Kind::App
    }

    /// Whether it is given the public keys (`SIGNING_PUBLIC_KEY_PEM`).
    pub fn reads_public_key(self) -> bool {
        matches!(self, Kind::Jwks | Kind::Api)
    }

    /// Whether it answers HTTP requests (a route of the HTTP API); a [`Kind::Worker`] runs on a
    /// schedule instead.
    pub fn serves_http(self) -> bool {
        self != Kind::Worker
    }

    /// Whether it has a store (`TABLE_NAME`).
    pub fn has_table(self) -> bool {
        matches!(self, Kind::Worker | Kind::Api | Kind::App)
    }
}

/// A DynamoDB action as IAM names it. A `TransactWriteItems` is authorised item by item as
/// `PutItem`, `UpdateItem`, `DeleteItem` and `ConditionCheckItem`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    GetItem,
    BatchGetItem,
    Query,
    PutItem,
    UpdateItem,
    DeleteItem,
    ConditionCheckItem,
    BatchWriteItem,
}

impl Action {
    pub const ALL: [Action; 8] = [
        Action::GetItem,
        Action::BatchGetItem,
        Action::Query,
        Action::PutItem,
        Action::UpdateItem,
        Action::DeleteItem,
        Action::ConditionCheckItem,
        Action::BatchWriteItem,
    ];

    /// The action's name (as in the API and, with `dynamodb:`, in IAM).
    pub fn name(self) -> &'static str {
        match self {
            Action::GetItem => "GetItem",
            Action::BatchGetItem => "BatchGetItem",
            Action::Query => "Query",
            Action::PutItem => "PutItem",
            Action::UpdateItem => "UpdateItem",
            Action::DeleteItem => "DeleteItem",
            Action::ConditionCheckItem => "ConditionCheckItem",
            Action::BatchWriteItem => "BatchWriteItem",
        }
    }
}

/// Where an action applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    /// The table's items (`!GetAtt Table.Arn`).
    Table,
    /// Its global secondary indexes (`!Sub "${Table.Arn}/index/*"`).
    Indexes,
}

/// One action a function may send, on items (or index partitions) whose partition key matches
/// one of `leading_keys` (IAM `StringLike` patterns: `*` is any run of characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub action: Action,
    pub resource: Resource,
    pub leading_keys: &'static [&'static str],
}

/// `action` on the table's items under `leading_keys`.
pub const fn table(action: Action, leading_keys: &'static [&'static str]) -> Grant {
    Grant { action, resource: Resource::Table, leading_keys }
}

/// `action` on the index partitions `leading_keys`.
pub const fn indexes(action: Action, leading_keys: &'static [&'static str]) -> Grant {
    Grant { action, resource: Resource::Indexes, leading_keys }
}

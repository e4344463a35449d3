//! Applications (Auth0 "clients").

use crate::clock::Timestamp;
use crate::ids::ClientId;
use crate::token::SecretHash;

/// Lifetime of id_tokens minted by `/delegation` unless the client says otherwise (the seed).
pub const DEFAULT_ID_TOKEN_LIFETIME_SECS: u32 = 36_000;
/// Bounds for a client's id_token lifetime: one minute to thirty days.
pub const ID_TOKEN_LIFETIME_RANGE: std::ops::RangeInclusive<u32> = 60..=2_592_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppType {
    Native,
    Spa,
    RegularWeb,
    NonInteractive,
}

impl AppType {
    pub fn as_str(self) -> &'static str {
        match self {
            AppType::Native => "native",
            AppType::Spa => "spa",
            AppType::RegularWeb => "regular_web",
            AppType::NonInteractive => "non_interactive",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "native" => AppType::Native,
            "spa" => AppType::Spa,
            "regular_web" => AppType::RegularWeb,
            "non_interactive" => AppType::NonInteractive,
            _ => return None,
        })
    }
}

pub const GRANT_IMPLICIT: &str = "implicit";
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";
pub const GRANT_JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
pub const GRANT_AUTHORIZATION_CODE: &str = "authorization_code";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: ClientId,
    pub name: String,
    pub app_type: AppType,
    /// Allowed callback URLs, matched exactly (no wildcards, no normalisation).
    pub callbacks: Vec<String>,
    /// Origins allowed to call the API from a browser (CORS).
    pub web_origins: Vec<String>,
    pub grant_types: Vec<String>,
    /// Lifetime of id_tokens issued to this client, in seconds.
    pub id_token_lifetime_secs: u32,
    /// Hash of the client secret, for confidential clients.
    pub secret_hash: Option<SecretHash>,
    /// Management API scopes granted to this (machine-to-machine) client.
    pub management_scopes: Vec<String>,
    pub created_at: Timestamp,
}

impl Client {
    /// Exact, byte-for-byte match against the registered callbacks.
    pub fn has_callback(&self, redirect_uri: &str) -> bool {
        self.callbacks.iter().any(|c| c == redirect_uri)
    }
    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.web_origins.iter().any(|o| o == origin)
    }
}

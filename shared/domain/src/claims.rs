//! JWT claim sets we mint.

use serde::{Deserialize, Serialize};

/// An OpenID Connect id_token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    /// Present only when the authentication request carried one; never on refreshed tokens.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub nonce: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub at_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub auth_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub nickname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub updated_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub email_verified: Option<bool>,
}

impl IdTokenClaims {
    /// The required claims only; the optional ones are set by the caller.
    pub fn new(iss: String, sub: String, aud: String, iat: i64, exp: i64) -> Self {
        Self {
            iss,
            sub,
            aud,
            iat,
            exp,
            nonce: None,
            at_hash: None,
            auth_time: None,
            name: None,
            nickname: None,
            updated_at: None,
            email: None,
            email_verified: None,
        }
    }
}

/// An OAuth 2.0 access token (RFC 9068 shape, as Auth0 issues them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub scope: String,
    pub azp: String,
    /// `client-credentials` for machine tokens.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gty: Option<String>,
}

impl AccessTokenClaims {
    /// A user's access token for `{issuer}userinfo`, issued at `iat` to `client` for `scope`,
    /// living `lifetime` seconds.
    pub fn for_userinfo(issuer: &str, sub: String, client: String, scope: String, iat: i64, lifetime: i64) -> Self {
        Self {
            iss: issuer.to_owned(),
            sub,
            aud: format!("{issuer}userinfo"),
            iat,
            exp: iat + lifetime,
            scope,
            azp: client,
            gty: None,
        }
    }
}

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
    /// Confidential clients (regular web, machine-to-machine) hold a secret; public ones
    /// (native, SPA) cannot keep one.
    pub fn confidential(self) -> bool {
        matches!(self, AppType::RegularWeb | AppType::NonInteractive)
    }
}

/// How a client authenticates at the token endpoint (Auth0's `token_endpoint_auth_method`).
/// Kept consistent with the secret: a client with a secret uses it (`client_secret_post` by
/// default), a client without one uses `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenEndpointAuthMethod {
    None,
    ClientSecretPost,
    ClientSecretBasic,
}

impl TokenEndpointAuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretPost => "client_secret_post",
            Self::ClientSecretBasic => "client_secret_basic",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "none" => Self::None,
            "client_secret_post" => Self::ClientSecretPost,
            "client_secret_basic" => Self::ClientSecretBasic,
            _ => return None,
        })
    }
    /// The method of a client with (`client_secret_post`) or without (`none`) a secret, as
    /// Auth0 sets it when a client is created.
    pub fn default_for(has_secret: bool) -> Self {
        if has_secret { Self::ClientSecretPost } else { Self::None }
    }
    /// Whether the method presents a client secret.
    pub fn uses_secret(self) -> bool {
        self != Self::None
    }
}

/// The JWS algorithm of the tokens signed for a client (Auth0's `jwt_configuration.alg`).
/// `RS256` is the default and the only one every SDK accepts (auth0.js v9 verifies RS256
/// alone; README, *Signing algorithms*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum SigningAlg {
    #[default]
    RS256,
    PS256,
    ES256,
    /// Ed25519 (RFC 8037).
    EdDSA,
}

impl SigningAlg {
    pub const ALL: [Self; 4] = [Self::RS256, Self::PS256, Self::ES256, Self::EdDSA];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::PS256 => "PS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }
    /// Exact, case-sensitive names (JOSE's).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// Auth0's `refresh_token.rotation_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RotationType {
    /// Every exchange returns a new refresh token and invalidates the one presented.
    Rotating,
    /// The refresh token is used again and again (the legacy flow's tokens).
    #[default]
    NonRotating,
}

impl RotationType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rotating => "rotating",
            Self::NonRotating => "non-rotating",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "rotating" => Self::Rotating,
            "non-rotating" => Self::NonRotating,
            _ => return None,
        })
    }
}

/// Auth0's `refresh_token.expiration_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpirationType {
    /// Tokens expire by the policy's lifetimes (unless the `infinite_*` flags say otherwise).
    Expiring,
    /// Tokens never expire, whatever the lifetimes say (the legacy flow's tokens).
    #[default]
    NonExpiring,
}

impl ExpirationType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expiring => "expiring",
            Self::NonExpiring => "non-expiring",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "expiring" => Self::Expiring,
            "non-expiring" => Self::NonExpiring,
            _ => return None,
        })
    }
}

/// Longest `refresh_token.leeway`: the window in which the previous rotating token may be
/// exchanged again (a retry after a lost response), not a second lifetime. This service's
/// bound: Auth0 documents only a minimum of 0.
pub const REFRESH_TOKEN_LEEWAY_MAX: u32 = 60;
/// Bounds of `refresh_token.token_lifetime` and `idle_token_lifetime`: one second to one year
/// of 365.25 days (Auth0's limits).
pub const REFRESH_TOKEN_LIFETIME_RANGE: std::ops::RangeInclusive<u32> = 1..=31_557_600;
pub const DEFAULT_REFRESH_TOKEN_LIFETIME_SECS: u32 = 2_592_000;
pub const DEFAULT_REFRESH_TOKEN_IDLE_LIFETIME_SECS: u32 = 1_296_000;

/// A client's refresh-token settings (Auth0's `refresh_token` client object), with Auth0's
/// names. The defaults are the legacy flow's tokens: non-rotating, never expiring. Times are
/// in seconds. Read the lifetimes through [`Self::absolute_lifetime`] and
/// [`Self::idle_lifetime`], which apply `expiration_type` and the `infinite_*` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshTokenPolicy {
    pub rotation_type: RotationType,
    pub expiration_type: ExpirationType,
    /// Seconds after a rotation during which the previous token may be exchanged again
    /// without being taken for a reuse (0: never).
    pub leeway: u32,
    /// Absolute lifetime in seconds, from the first token of a grant; rotation does not
    /// extend it.
    pub token_lifetime: u32,
    /// When true, `token_lifetime` is ignored: no absolute expiry.
    pub infinite_token_lifetime: bool,
    /// Seconds a token stays valid without being exchanged.
    pub idle_token_lifetime: u32,
    /// When true, `idle_token_lifetime` is ignored: no idle expiry.
    pub infinite_idle_token_lifetime: bool,
}

impl Default for RefreshTokenPolicy {
    fn default() -> Self {
        Self {
            rotation_type: RotationType::default(),
            expiration_type: ExpirationType::default(),
            leeway: 0,
            token_lifetime: DEFAULT_REFRESH_TOKEN_LIFETIME_SECS,
            infinite_token_lifetime: true,
            idle_token_lifetime: DEFAULT_REFRESH_TOKEN_IDLE_LIFETIME_SECS,
            infinite_idle_token_lifetime: true,
        }
    }
}

impl RefreshTokenPolicy {
    pub fn rotating(&self) -> bool {
        self.rotation_type == RotationType::Rotating
    }
    /// Seconds from the start of a grant after which its tokens are refused; `None`: never.
    pub fn absolute_lifetime(&self) -> Option<u32> {
        (self.expiration_type == ExpirationType::Expiring && !self.infinite_token_lifetime)
            .then_some(self.token_lifetime)
    }
    /// Seconds without an exchange after which a token is refused; `None`: never.
    pub fn idle_lifetime(&self) -> Option<u32> {
        (self.expiration_type == ExpirationType::Expiring && !self.infinite_idle_token_lifetime)
            .then_some(self.idle_token_lifetime)
    }
    /// Seconds during which the token a rotation replaced may still be exchanged; 0 when
    /// the policy does not rotate.
    pub fn reuse_leeway(&self) -> u32 {
        if self.rotating() { self.leeway } else { 0 }
    }
    /// Whether tokens under this policy can expire at all (an absolute or an idle lifetime
    /// applies); `false` for the default, the legacy flow's tokens that live until revoked.
    pub fn expires(&self) -> bool {
        self.absolute_lifetime().is_some() || self.idle_lifetime().is_some()
    }
    /// When a token of a grant started at `granted_at` and last exchanged (or issued) at
    /// `last_used` stops being accepted; `None`: never.
    pub fn expires_at(&self, granted_at: Timestamp, last_used: Timestamp) -> Option<Timestamp> {
        let absolute = self.absolute_lifetime().map(|s| granted_at.plus_secs(i64::from(s)));
        let idle = self.idle_lifetime().map(|s| last_used.plus_secs(i64::from(s)));
        match (absolute, idle) {
            (Some(a), Some(i)) => Some(a.min(i)),
            (a, i) => a.or(i),
        }
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
    /// How the client authenticates at the token endpoint: `None` exactly when it has no
    /// secret.
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    /// Management API scopes granted to this (machine-to-machine) client.
    pub management_scopes: Vec<String>,
    /// Where the client may send its users after a logout, matched exactly.
    pub allowed_logout_urls: Vec<String>,
    /// Rotation and lifetimes of the refresh tokens issued to this client.
    pub refresh_token: RefreshTokenPolicy,
    /// Algorithm of the id_tokens and access tokens signed for this client.
    pub signing_alg: SigningAlg,
    pub created_at: Timestamp,
}

impl Client {
    /// A client with every setting at its default: no callbacks, origins, logout URLs, grant
    /// types or scopes, no secret (`token_endpoint_auth_method` `none`), the default id_token
    /// lifetime and refresh-token policy. Build others as `Client { …, ..Client::new(…) }`, so
    /// that a new setting does not break every construction.
    pub fn new(id: ClientId, name: impl Into<String>, app_type: AppType, created_at: Timestamp) -> Self {
        Self {
            id,
            name: name.into(),
            app_type,
            callbacks: vec![],
            web_origins: vec![],
            grant_types: vec![],
            id_token_lifetime_secs: DEFAULT_ID_TOKEN_LIFETIME_SECS,
            secret_hash: None,
            token_endpoint_auth_method: TokenEndpointAuthMethod::None,
            management_scopes: vec![],
            allowed_logout_urls: vec![],
            refresh_token: RefreshTokenPolicy::default(),
            signing_alg: SigningAlg::default(),
            created_at,
        }
    }
    /// The client holding the secret whose hash is `hash`, authenticating with it
    /// (`client_secret_post`).
    pub fn with_secret(self, hash: SecretHash) -> Self {
        Self { secret_hash: Some(hash), token_endpoint_auth_method: TokenEndpointAuthMethod::default_for(true), ..self }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn expiring() -> RefreshTokenPolicy {
        RefreshTokenPolicy {
            expiration_type: ExpirationType::Expiring,
            infinite_token_lifetime: false,
            infinite_idle_token_lifetime: false,
            ..RefreshTokenPolicy::default()
        }
    }

    #[test]
    fn the_default_policy_never_rotates_nor_expires() {
        let p = RefreshTokenPolicy::default();
        assert!(!p.rotating());
        assert_eq!((p.absolute_lifetime(), p.idle_lifetime(), p.reuse_leeway()), (None, None, 0));
        assert_eq!(p.expires_at(Timestamp::from_secs(0), Timestamp::from_secs(10)), None);
        assert!(!p.expires());
        // Lifetimes without `expiring` are kept, not applied.
        let p = RefreshTokenPolicy { infinite_token_lifetime: false, infinite_idle_token_lifetime: false, ..p };
        assert_eq!((p.absolute_lifetime(), p.idle_lifetime()), (None, None));
    }

    #[test]
    fn lifetimes_apply_only_when_expiring_and_finite() {
        let p = expiring();
        assert_eq!(p.absolute_lifetime(), Some(DEFAULT_REFRESH_TOKEN_LIFETIME_SECS));
        assert_eq!(p.idle_lifetime(), Some(DEFAULT_REFRESH_TOKEN_IDLE_LIFETIME_SECS));
        let granted = Timestamp::from_secs(1_000);
        // Idle first while the token is used rarely; the absolute end once it is used often.
        assert_eq!(p.expires_at(granted, granted), Some(granted.plus_secs(1_296_000)));
        let late = granted.plus_secs(2_000_000);
        assert_eq!(p.expires_at(granted, late), Some(granted.plus_secs(2_592_000)));
        let no_idle = RefreshTokenPolicy { infinite_idle_token_lifetime: true, ..p };
        assert_eq!(
            (no_idle.idle_lifetime(), no_idle.expires_at(granted, late)),
            (None, Some(granted.plus_secs(2_592_000)))
        );
        let no_absolute = RefreshTokenPolicy { infinite_token_lifetime: true, ..p };
        assert_eq!(no_absolute.expires_at(granted, late), Some(late.plus_secs(1_296_000)));
        assert!(p.expires() && no_idle.expires() && no_absolute.expires());
        let neither = RefreshTokenPolicy { infinite_token_lifetime: true, ..no_idle };
        assert!(!neither.expires(), "expiring, but both lifetimes infinite");
    }

    #[test]
    fn leeway_counts_only_when_rotating() {
        let p = RefreshTokenPolicy { leeway: 5, ..expiring() };
        assert_eq!(p.reuse_leeway(), 0);
        assert_eq!(RefreshTokenPolicy { rotation_type: RotationType::Rotating, ..p }.reuse_leeway(), 5);
    }

    #[test]
    fn names_round_trip() {
        for r in [RotationType::Rotating, RotationType::NonRotating] {
            assert_eq!(RotationType::parse(r.as_str()), Some(r));
        }
        for e in [ExpirationType::Expiring, ExpirationType::NonExpiring] {
            assert_eq!(ExpirationType::parse(e.as_str()), Some(e));
        }
        for m in [
            TokenEndpointAuthMethod::None,
            TokenEndpointAuthMethod::ClientSecretPost,
            TokenEndpointAuthMethod::ClientSecretBasic,
        ] {
            assert_eq!(TokenEndpointAuthMethod::parse(m.as_str()), Some(m));
        }
        for a in SigningAlg::ALL {
            assert_eq!(SigningAlg::parse(a.as_str()), Some(a));
        }
        for bad in ["HS256", "none", "rs256", "ES384", ""] {
            assert_eq!(SigningAlg::parse(bad), None, "{bad}");
        }
        assert_eq!(SigningAlg::default(), SigningAlg::RS256);
        assert_eq!(RotationType::parse("reusable"), None);
        assert_eq!(TokenEndpointAuthMethod::parse("private_key_jwt"), None);
    }

    #[test]
    fn a_new_client_has_no_secret_and_a_secret_brings_its_method() {
        let c = Client::new(ClientId::generate(), "x", AppType::RegularWeb, Timestamp::from_millis(0));
        assert_eq!((c.secret_hash.is_some(), c.token_endpoint_auth_method), (false, TokenEndpointAuthMethod::None));
        let c = c.with_secret(SecretHash::of(b"s"));
        assert_eq!(c.token_endpoint_auth_method, TokenEndpointAuthMethod::ClientSecretPost);
    }
}

//! Applications. The secret of a confidential client is shown once, when it is created, and
//! stored only as a hash. Deleting a client revokes its refresh tokens.

use secrecy::SecretString;

use super::{Conflict, Entity, Invalid, MgmtError, PURGE_BUDGET, Page, Paging, Principal, SCOPES};
use crate::client::{
    AppType, Client, ExpirationType, GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, GRANT_IMPLICIT,
    GRANT_JWT_BEARER, GRANT_REFRESH_TOKEN, ID_TOKEN_LIFETIME_RANGE, REFRESH_TOKEN_LEEWAY_MAX,
    REFRESH_TOKEN_LIFETIME_RANGE, RefreshTokenPolicy, RotationType, SigningAlg, TokenEndpointAuthMethod,
};
use crate::clock::Timestamp;
use crate::ids::ClientId;
use crate::ports::{ClientStore, CredentialStore, Freshness};
use crate::random;
use crate::token::SecretHash;

pub const READ: &[&str] = &["read:clients"];
pub const CREATE: &[&str] = &["create:clients"];
pub const UPDATE: &[&str] = &["update:clients"];
pub const DELETE: &[&str] = &["delete:clients"];
/// Giving a new client Management API scopes: Auth0 keeps grants behind their own scopes, so
/// `create:clients` alone makes clients without any.
pub const CREATE_GRANTS: &[&str] = &["create:client_grants"];
/// Changing a client's Management API scopes: `update:clients` alone cannot (a machine client
/// holding it would otherwise give itself every scope).
pub const UPDATE_GRANTS: &[&str] = &["update:client_grants"];
pub const GRANTS: &[&str] =
    &[GRANT_IMPLICIT, GRANT_REFRESH_TOKEN, GRANT_JWT_BEARER, GRANT_CLIENT_CREDENTIALS, GRANT_AUTHORIZATION_CODE];

/// The settings of a client its owner may change; `None` leaves one as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientPatch {
    pub name: Option<String>,
    pub callbacks: Option<Vec<String>>,
    pub web_origins: Option<Vec<String>>,
    pub grant_types: Option<Vec<String>>,
    pub id_token_lifetime_secs: Option<u32>,
    pub management_scopes: Option<Vec<String>>,
    pub allowed_logout_urls: Option<Vec<String>>,
    pub token_endpoint_auth_method: Option<TokenEndpointAuthMethod>,
    /// Merged into the client's policy, field by field, as Auth0 merges `refresh_token`.
    pub refresh_token: Option<RefreshTokenPatch>,
    /// `jwt_configuration.alg`: one the service has a key for.
    pub signing_alg: Option<SigningAlg>,
}

/// The refresh-token settings to change; `None` leaves one as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefreshTokenPatch {
    pub rotation_type: Option<RotationType>,
    pub expiration_type: Option<ExpirationType>,
    pub leeway: Option<u32>,
    pub token_lifetime: Option<u32>,
    pub infinite_token_lifetime: Option<bool>,
    pub idle_token_lifetime: Option<u32>,
    pub infinite_idle_token_lifetime: Option<bool>,
}

impl RefreshTokenPatch {
    /// `p` with the given settings changed (not yet checked: see [`check_refresh_token`]).
    pub fn merge_into(self, p: RefreshTokenPolicy) -> RefreshTokenPolicy {
        RefreshTokenPolicy {
            rotation_type: self.rotation_type.unwrap_or(p.rotation_type),
            expiration_type: self.expiration_type.unwrap_or(p.expiration_type),
            leeway: self.leeway.unwrap_or(p.leeway),
            token_lifetime: self.token_lifetime.unwrap_or(p.token_lifetime),
            infinite_token_lifetime: self.infinite_token_lifetime.unwrap_or(p.infinite_token_lifetime),
            idle_token_lifetime: self.idle_token_lifetime.unwrap_or(p.idle_token_lifetime),
            infinite_idle_token_lifetime: self.infinite_idle_token_lifetime.unwrap_or(p.infinite_idle_token_lifetime),
        }
    }
}

/// A new client: a name and a type (fixed for life); unset settings take the defaults of the
/// type (no callbacks, origins or logout URLs, the type's grants, a 36 000 s id_token, no
/// scopes, a secret and `client_secret_post` for a confidential type, `none` for a public one,
/// non-rotating refresh tokens that never expire).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSpec {
    pub name: String,
    pub app_type: AppType,
    pub callbacks: Option<Vec<String>>,
    pub web_origins: Option<Vec<String>>,
    pub grant_types: Option<Vec<String>>,
    pub id_token_lifetime_secs: Option<u32>,
    pub management_scopes: Option<Vec<String>>,
    pub allowed_logout_urls: Option<Vec<String>>,
    pub token_endpoint_auth_method: Option<TokenEndpointAuthMethod>,
    pub refresh_token: Option<RefreshTokenPatch>,
    pub signing_alg: Option<SigningAlg>,
}

impl ClientSpec {
    /// A client of this name and type with every setting at the type's default.
    pub fn new(name: impl Into<String>, app_type: AppType) -> Self {
        Self {
            name: name.into(),
            app_type,
            callbacks: None,
            web_origins: None,
            grant_types: None,
            id_token_lifetime_secs: None,
            management_scopes: None,
            allowed_logout_urls: None,
            token_endpoint_auth_method: None,
            refresh_token: None,
            signing_alg: None,
        }
    }
}

/// A created client and, for a confidential one, its secret: shown this once, stored only as
/// a hash.
#[derive(Debug)]
pub struct CreatedClient {
    pub client: Client,
    pub secret: Option<SecretString>,
}

/// A callback URL: absolute, no fragment (RFC 6749 §3.1.2), matched exactly at `/authorize`.
pub fn is_callback(c: &str) -> bool {
    match c.split_once("://") {
        Some((scheme, rest)) => {
            !scheme.is_empty()
                && scheme.chars().all(|ch| ch.is_ascii_alphanumeric() || "+-.".contains(ch))
                && !rest.is_empty()
                && !c.contains('#')
                && !c.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// An origin: `http(s)://host[:port]`, nothing after.
pub fn is_origin(o: &str) -> bool {
    match o.split_once("://") {
        Some((scheme, host)) => {
            (scheme == "https" || scheme == "http")
                && !host.is_empty()
                && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        }
        None => false,
    }
}

/// The rules of a refresh-token policy, checked on the policy a change results in:
/// - `leeway` at most [`REFRESH_TOKEN_LEEWAY_MAX`] seconds (this service's bound; Auth0
///   documents only a minimum of 0);
/// - `token_lifetime` and `idle_token_lifetime` within [`REFRESH_TOKEN_LIFETIME_RANGE`]
///   (whether or not they apply), Auth0's limits;
/// - rotating tokens are expiring (Auth0: "if rotation is enabled, an expiration lifetime
///   must be set"; its Terraform provider: "if rotation is `rotating`, this must be set to
///   `expiring`");
/// - when both lifetimes apply, the idle one does not exceed the absolute one (Auth0: "the
///   Idle Refresh Token Lifetime can not exceed the Maximum Refresh Token Lifetime").
pub fn check_refresh_token(p: &RefreshTokenPolicy) -> Result<(), Invalid> {
    if p.leeway > REFRESH_TOKEN_LEEWAY_MAX {
        return Err(Invalid::RefreshTokenLeeway);
    }
    if !REFRESH_TOKEN_LIFETIME_RANGE.contains(&p.token_lifetime) {
        return Err(Invalid::RefreshTokenLifetime);
    }
    if !REFRESH_TOKEN_LIFETIME_RANGE.contains(&p.idle_token_lifetime) {
        return Err(Invalid::RefreshTokenIdleLifetime);
    }
    if p.rotating() && p.expiration_type != ExpirationType::Expiring {
        return Err(Invalid::RotationNeedsExpiration);
    }
    if let (Some(absolute), Some(idle)) = (p.absolute_lifetime(), p.idle_lifetime())
        && idle > absolute
    {
        return Err(Invalid::IdleLifetimeExceedsLifetime);
    }
    Ok(())
}

/// Applies `patch` to `c`, checking each setting in turn. `configured`: the algorithms the
/// service has keys for (a client may only ask for one of them).
fn apply(c: &mut Client, patch: ClientPatch, configured: &[SigningAlg]) -> Result<(), Invalid> {
    if let Some(name) = patch.name {
        if name.trim().is_empty() {
            return Err(Invalid::EmptyName);
        }
        c.name = name;
    }
    if let Some(cb) = patch.callbacks {
        if let Some(bad) = cb.iter().find(|c| !is_callback(c)) {
            return Err(Invalid::Callback(bad.clone()));
        }
        c.callbacks = cb;
    }
    if let Some(o) = patch.web_origins {
        if let Some(bad) = o.iter().find(|o| !is_origin(o)) {
            return Err(Invalid::Origin(bad.clone()));
        }
        c.web_origins = o;
    }
    if let Some(g) = patch.grant_types {
        if let Some(bad) = g.iter().find(|x| !GRANTS.contains(&x.as_str())) {
            return Err(Invalid::GrantType(bad.clone()));
        }
        c.grant_types = g;
    }
    if let Some(secs) = patch.id_token_lifetime_secs {
        if !ID_TOKEN_LIFETIME_RANGE.contains(&secs) {
            return Err(Invalid::IdTokenLifetime);
        }
        c.id_token_lifetime_secs = secs;
    }
    if let Some(s) = patch.management_scopes {
        if let Some(bad) = s.iter().find(|x| !SCOPES.contains(&x.as_str())) {
            return Err(Invalid::UnknownScope(bad.clone()));
        }
        if !s.is_empty() && c.app_type != AppType::NonInteractive {
            return Err(Invalid::ScopesNeedMachineToMachine);
        }
        c.management_scopes = s;
    }
    if let Some(urls) = patch.allowed_logout_urls {
        if let Some(bad) = urls.iter().find(|u| !is_callback(u)) {
            return Err(Invalid::LogoutUrl(bad.clone()));
        }
        c.allowed_logout_urls = urls;
    }
    if let Some(m) = patch.token_endpoint_auth_method {
        // The secret is made with the client (confidential types) and never removed.
        if m.uses_secret() != c.secret_hash.is_some() {
            return Err(Invalid::AuthMethod(m));
        }
        c.token_endpoint_auth_method = m;
    }
    if let Some(rt) = patch.refresh_token {
        let merged = rt.merge_into(c.refresh_token);
        check_refresh_token(&merged)?;
        c.refresh_token = merged;
    }
    if let Some(alg) = patch.signing_alg {
        if !configured.contains(&alg) {
            return Err(Invalid::SigningAlgNotConfigured(alg));
        }
        c.signing_alg = alg;
    }
    Ok(())
}

fn default_grants(t: AppType) -> Vec<String> {
    let g: &[&str] = match t {
        AppType::NonInteractive => &[GRANT_CLIENT_CREDENTIALS],
        AppType::Native | AppType::Spa | AppType::RegularWeb => {
            &[GRANT_IMPLICIT, GRANT_REFRESH_TOKEN, GRANT_JWT_BEARER]
        }
    };
    g.iter().map(|s| (*s).to_owned()).collect()
}

pub async fn list<S: ClientStore>(store: &S, who: &Principal, paging: Paging) -> Result<Page<Client>, MgmtError> {
    who.require(READ)?;
    let items = store.list_clients(paging.page).await?;
    let total = if paging.with_total { Some(store.count_clients().await?) } else { None };
    Ok(Page { items, request: paging.page, total })
}

pub async fn get<S: ClientStore>(store: &S, who: &Principal, id: &ClientId) -> Result<Client, MgmtError> {
    who.require(READ)?;
    store.get_client(id, Freshness::Fresh).await?.ok_or(MgmtError::NotFound(Entity::Client))
}

/// Creates a client; a confidential one (regular web, machine-to-machine) gets a secret.
/// `configured`: the signing algorithms the service has keys for.
pub async fn create<S: ClientStore>(
    store: &S,
    who: &Principal,
    spec: ClientSpec,
    configured: &[SigningAlg],
    now: Timestamp,
) -> Result<CreatedClient, MgmtError> {
    who.require(CREATE)?;
    if let Some(scopes) = spec.management_scopes.as_ref().filter(|s| !s.is_empty()) {
        who.require(CREATE_GRANTS)?;
        who.may_grant(scopes)?;
    }
    let app_type = spec.app_type;
    let secret = app_type.confidential().then(|| random::alphanumeric(64));
    let mut client =
        Client { grant_types: default_grants(app_type), ..Client::new(ClientId::generate(), "", app_type, now) };
    if let Some(s) = &secret {
        client = client.with_secret(SecretHash::of(s.as_bytes()));
    }
    let settings = ClientPatch {
        name: Some(spec.name),
        callbacks: spec.callbacks,
        web_origins: spec.web_origins,
        grant_types: spec.grant_types,
        id_token_lifetime_secs: spec.id_token_lifetime_secs,
        management_scopes: spec.management_scopes,
        allowed_logout_urls: spec.allowed_logout_urls,
        token_endpoint_auth_method: spec.token_endpoint_auth_method,
        refresh_token: spec.refresh_token,
        signing_alg: spec.signing_alg,
    };
    apply(&mut client, settings, configured)?;
    if !store.create_client(&client).await? {
        return Err(Conflict::ClientIdTaken.into());
    }
    Ok(CreatedClient { client, secret: secret.map(SecretString::from) })
}

pub async fn update<S: ClientStore>(
    store: &S,
    who: &Principal,
    id: &ClientId,
    patch: ClientPatch,
    configured: &[SigningAlg],
) -> Result<Client, MgmtError> {
    who.require(UPDATE)?;
    if patch.management_scopes.is_some() {
        who.require(UPDATE_GRANTS)?;
    }
    let mut client = store.get_client(id, Freshness::Fresh).await?.ok_or(MgmtError::NotFound(Entity::Client))?;
    if let Some(scopes) = &patch.management_scopes {
        // Scopes the client keeps need not be held by the caller; scopes it gains must be.
        who.may_grant(scopes.iter().filter(|s| !client.management_scopes.contains(s)))?;
    }
    apply(&mut client, patch, configured)?;
    if store.update_client(&client).await? { Ok(client) } else { Err(MgmtError::NotFound(Entity::Client)) }
}

/// Deletes the client (done, too, when it is already gone) and revokes all of its refresh
/// tokens.
pub async fn delete<S: ClientStore + CredentialStore>(
    store: &S,
    who: &Principal,
    id: &ClientId,
) -> Result<(), MgmtError> {
    who.require(DELETE)?;
    store.delete_client(id).await?;
    let purge = store.purge_client_credentials(id, PURGE_BUDGET).await?;
    tracing::info!(client = %id, deleted = purge.deleted, complete = purge.complete, "client deleted");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_may_only_ask_for_a_configured_signing_algorithm() {
        let mut c = Client::new(ClientId::generate(), "x", AppType::Spa, Timestamp::from_millis(0));
        let alg = |a| ClientPatch { signing_alg: Some(a), ..ClientPatch::default() };
        let configured = [SigningAlg::RS256, SigningAlg::ES256];
        assert_eq!(apply(&mut c, alg(SigningAlg::ES256), &configured), Ok(()));
        assert_eq!(c.signing_alg, SigningAlg::ES256);
        assert_eq!(
            apply(&mut c, alg(SigningAlg::EdDSA), &configured),
            Err(Invalid::SigningAlgNotConfigured(SigningAlg::EdDSA))
        );
        assert_eq!(c.signing_alg, SigningAlg::ES256, "unchanged when refused");
        assert_eq!(apply(&mut c, ClientPatch::default(), &configured), Ok(()));
        assert_eq!(c.signing_alg, SigningAlg::ES256, "kept when not given");
    }

    #[test]
    fn callbacks_and_origins() {
        assert!(is_callback("https://app.example.com/cb?x=1"));
        assert!(is_callback("com.example.app://cb"));
        assert!(!is_callback("not a url"));
        assert!(!is_callback("https://a.example/cb#frag"));
        assert!(is_origin("https://admin.example.com"));
        assert!(is_origin("http://127.0.0.1:3000"));
        assert!(!is_origin("https://a.example/path"));
        assert!(!is_origin("ftp://a.example"));
    }

    fn client(app_type: AppType) -> Client {
        let c = Client {
            grant_types: default_grants(app_type),
            ..Client::new(ClientId::generate(), "x", app_type, Timestamp::from_millis(0))
        };
        if app_type.confidential() { c.with_secret(SecretHash::of(b"secret")) } else { c }
    }

    #[test]
    fn only_machine_to_machine_clients_hold_management_scopes() {
        let scopes = || ClientPatch { management_scopes: Some(vec!["read:users".into()]), ..Default::default() };
        assert_eq!(
            apply(&mut client(AppType::Native), scopes(), &SigningAlg::ALL),
            Err(Invalid::ScopesNeedMachineToMachine)
        );
        let mut m2m = client(AppType::NonInteractive);
        assert_eq!(apply(&mut m2m, scopes(), &SigningAlg::ALL), Ok(()));
        assert_eq!(m2m.management_scopes, ["read:users"]);
        let unknown = ClientPatch { management_scopes: Some(vec!["root".into()]), ..Default::default() };
        assert_eq!(apply(&mut m2m, unknown, &SigningAlg::ALL), Err(Invalid::UnknownScope("root".into())));
    }

    #[test]
    fn settings_are_checked_in_turn() {
        let mut c = client(AppType::Spa);
        let p = ClientPatch { name: Some(" ".into()), callbacks: Some(vec!["bad".into()]), ..Default::default() };
        assert_eq!(apply(&mut c, p, &SigningAlg::ALL), Err(Invalid::EmptyName));
        let p = ClientPatch { id_token_lifetime_secs: Some(5), ..Default::default() };
        assert_eq!(apply(&mut c, p, &SigningAlg::ALL), Err(Invalid::IdTokenLifetime));
        let p = ClientPatch { grant_types: Some(vec!["password".into()]), ..Default::default() };
        assert_eq!(apply(&mut c, p, &SigningAlg::ALL), Err(Invalid::GrantType("password".into())));
    }

    fn rt(p: RefreshTokenPatch) -> ClientPatch {
        ClientPatch { refresh_token: Some(p), ..Default::default() }
    }

    #[test]
    fn refresh_token_settings_merge_into_the_stored_policy() {
        let mut c = client(AppType::Spa);
        assert_eq!(c.refresh_token, RefreshTokenPolicy::default());
        let on = RefreshTokenPatch {
            rotation_type: Some(RotationType::Rotating),
            expiration_type: Some(ExpirationType::Expiring),
            leeway: Some(3),
            token_lifetime: Some(86_400),
            infinite_token_lifetime: Some(false),
            ..Default::default()
        };
        assert_eq!(apply(&mut c, rt(on), &SigningAlg::ALL), Ok(()));
        let expected = RefreshTokenPolicy {
            rotation_type: RotationType::Rotating,
            expiration_type: ExpirationType::Expiring,
            leeway: 3,
            token_lifetime: 86_400,
            infinite_token_lifetime: false,
            ..RefreshTokenPolicy::default()
        };
        assert_eq!(c.refresh_token, expected);
        assert_eq!(c.refresh_token.absolute_lifetime(), Some(86_400));
        // One field changes; the others stay.
        let off = RefreshTokenPatch { rotation_type: Some(RotationType::NonRotating), ..Default::default() };
        assert_eq!(apply(&mut c, rt(off), &SigningAlg::ALL), Ok(()));
        assert_eq!(c.refresh_token, RefreshTokenPolicy { rotation_type: RotationType::NonRotating, ..expected });
    }

    #[test]
    fn refresh_token_rules() {
        let refused = |p: RefreshTokenPatch| {
            let mut c = client(AppType::Native);
            let before = c.refresh_token;
            let r = apply(&mut c, rt(p), &SigningAlg::ALL);
            if r.is_err() {
                assert_eq!(c.refresh_token, before, "a refused policy is not applied");
            } else {
                assert_eq!(c.refresh_token, p.merge_into(before));
            }
            r.err()
        };
        let expiring = RefreshTokenPatch { expiration_type: Some(ExpirationType::Expiring), ..Default::default() };
        assert_eq!(refused(RefreshTokenPatch { leeway: Some(61), ..expiring }), Some(Invalid::RefreshTokenLeeway));
        assert_eq!(refused(RefreshTokenPatch { leeway: Some(60), ..expiring }), None);
        assert_eq!(
            refused(RefreshTokenPatch { token_lifetime: Some(0), ..expiring }),
            Some(Invalid::RefreshTokenLifetime)
        );
        assert_eq!(
            refused(RefreshTokenPatch { token_lifetime: Some(31_557_601), ..expiring }),
            Some(Invalid::RefreshTokenLifetime)
        );
        assert_eq!(refused(RefreshTokenPatch { token_lifetime: Some(31_557_600), ..expiring }), None);
        assert_eq!(
            refused(RefreshTokenPatch { idle_token_lifetime: Some(0), ..Default::default() }),
            Some(Invalid::RefreshTokenIdleLifetime)
        );
        assert_eq!(
            refused(RefreshTokenPatch { rotation_type: Some(RotationType::Rotating), ..Default::default() }),
            Some(Invalid::RotationNeedsExpiration)
        );
        assert_eq!(refused(RefreshTokenPatch { rotation_type: Some(RotationType::Rotating), ..expiring }), None);
        let finite = RefreshTokenPatch {
            infinite_token_lifetime: Some(false),
            infinite_idle_token_lifetime: Some(false),
            token_lifetime: Some(3_600),
            ..expiring
        };
        assert_eq!(
            refused(RefreshTokenPatch { idle_token_lifetime: Some(3_601), ..finite }),
            Some(Invalid::IdleLifetimeExceedsLifetime)
        );
        assert_eq!(refused(RefreshTokenPatch { idle_token_lifetime: Some(3_600), ..finite }), None);
        // An idle lifetime longer than an absolute one that does not apply is allowed.
        let infinite = RefreshTokenPatch { infinite_token_lifetime: Some(true), ..finite };
        assert_eq!(refused(RefreshTokenPatch { idle_token_lifetime: Some(7_200), ..infinite }), None);
    }

    #[test]
    fn the_auth_method_follows_the_secret() {
        let method = |m| ClientPatch { token_endpoint_auth_method: Some(m), ..Default::default() };
        let mut web = client(AppType::RegularWeb);
        assert_eq!(web.token_endpoint_auth_method, TokenEndpointAuthMethod::ClientSecretPost);
        assert_eq!(apply(&mut web, method(TokenEndpointAuthMethod::ClientSecretBasic), &SigningAlg::ALL), Ok(()));
        assert_eq!(web.token_endpoint_auth_method, TokenEndpointAuthMethod::ClientSecretBasic);
        assert_eq!(
            apply(&mut web, method(TokenEndpointAuthMethod::None), &SigningAlg::ALL),
            Err(Invalid::AuthMethod(TokenEndpointAuthMethod::None))
        );
        let mut spa = client(AppType::Spa);
        assert_eq!(spa.token_endpoint_auth_method, TokenEndpointAuthMethod::None);
        assert_eq!(apply(&mut spa, method(TokenEndpointAuthMethod::None), &SigningAlg::ALL), Ok(()));
        assert_eq!(
            apply(&mut spa, method(TokenEndpointAuthMethod::ClientSecretPost), &SigningAlg::ALL),
            Err(Invalid::AuthMethod(TokenEndpointAuthMethod::ClientSecretPost))
        );
    }

    #[test]
    fn logout_urls_are_absolute() {
        let mut c = client(AppType::Spa);
        let urls = |u: &[&str]| ClientPatch {
            allowed_logout_urls: Some(u.iter().map(|s| (*s).to_owned()).collect()),
            ..Default::default()
        };
        assert_eq!(apply(&mut c, urls(&["https://app.example.com/bye"]), &SigningAlg::ALL), Ok(()));
        assert_eq!(c.allowed_logout_urls, ["https://app.example.com/bye"]);
        assert_eq!(apply(&mut c, urls(&["/bye"]), &SigningAlg::ALL), Err(Invalid::LogoutUrl("/bye".into())));
    }
}

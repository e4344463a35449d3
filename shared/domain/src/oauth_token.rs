//! Use case: `POST /oauth/token`: `grant_type=client_credentials` for the Management API
//! (machine-to-machine clients, RFC 6749 §4.4) and `grant_type=refresh_token` (RFC 6749 §6),
//! with rotation for rotating clients (the exchange state machine, [`crate::exchange`]).

use std::net::IpAddr;

use secrecy::SecretString;

use crate::claims::{AccessTokenClaims, IdTokenClaims};
use crate::client::{
    Client, GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, GRANT_REFRESH_TOKEN, RotationType,
    TokenEndpointAuthMethod,
};
use crate::clock::Timestamp;
use crate::code::{self, AuthorizationCode};
use crate::credential::DeviceCredential;
use crate::delegation::{self, INVALID_REFRESH_TOKEN};
use crate::exchange::{self, Expiry, Outcome, Presented};
use crate::ids::ClientId;
use crate::ports::Redeem;
use crate::ports::{ClientStore, Freshness, SignError, Store, StoreError, TokenSigner};
use crate::ratelimit::{RateStatus, address_key};
use crate::scope::{EMAIL, OFFLINE_ACCESS, OPENID, PROFILE, Scope};
use crate::token::{RefreshToken, RotationKeys, SecretHash};

/// Lifetime of Management API access tokens (Auth0's default).
pub const ACCESS_TOKEN_LIFETIME_SECS: i64 = 86_400;

/// Why `client_credentials` refused or failed. The descriptions are what the client reads;
/// `rt_http::oauth` decides the status and the RFC 6749 code.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("Unauthorized")]
    InvalidClient,
    #[error("Grant type '{0}' not allowed for the client.")]
    UnauthorizedClient(&'static str),
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    InvalidScope(String),
    /// The refresh token is unknown, revoked, reused, expired or not the client's.
    #[error("{0}")]
    InvalidGrant(&'static str),
    /// A retired member of a rotating family was presented: the family is revoked. Answered
    /// as [`Self::InvalidGrant`] with the same text (the audit log tells them apart).
    #[error("{}", INVALID_REFRESH_TOKEN)]
    ReuseDetected,
    #[error("Too many requests with this refresh token from this address.")]
    RateLimited(RateStatus),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot sign the access token")]
    Sign(#[source] SignError),
}

/// Client credentials as presented: HTTP Basic (`client_secret_basic`), in the body
/// (`client_secret_post`) or none (a public client, `none`).
#[derive(Debug)]
pub struct ClientAuth {
    pub client_id: String,
    pub client_secret: Option<secrecy::SecretString>,
    /// How they were presented.
    pub method: TokenEndpointAuthMethod,
}

#[derive(Debug)]
pub struct Issued {
    pub access_token: String,
    pub expires_in: i64,
    pub scope: String,
}

/// What a `client_credentials` request asks for, as sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientCredentialsRequest<'a> {
    pub audience: Option<&'a str>,
    pub scope: Option<&'a str>,
}

/// `grant_type=client_credentials` for `audience = {issuer}api/v2/`.
pub async fn client_credentials<S: ClientStore, T: TokenSigner>(
    store: &S,
    signer: &T,
    issuer: &str,
    auth: &ClientAuth,
    p: ClientCredentialsRequest<'_>,
    now: Timestamp,
) -> Result<Issued, TokenError> {
    // Authenticated as it registered (secret in the body or in Basic, never the other), and
    // only by a secret: a public client gets no Management API token, whatever its grants.
    let client = authenticated_client(store, auth).await?;
    if client.secret_hash.is_none() {
        return Err(TokenError::InvalidClient);
    }
    if !client.allows_grant(GRANT_CLIENT_CREDENTIALS) {
        return Err(TokenError::UnauthorizedClient(GRANT_CLIENT_CREDENTIALS));
    }
    let api = format!("{issuer}api/v2/");
    let audience =
        p.audience.ok_or_else(|| TokenError::InvalidRequest("Missing required parameter: audience".into()))?;
    if audience != api {
        return Err(TokenError::AccessDenied(format!("Service not found: {audience}")));
    }
    let granted: Scope = client.management_scopes.iter().map(String::as_str).collect();
    if granted.is_empty() {
        return Err(TokenError::AccessDenied(format!(
            "Client is not authorized to access \"{api}\". Grant it Management API scopes first."
        )));
    }
    let scope = match p.scope {
        None => granted,
        Some(s) => {
            let asked = Scope::parse(s).map_err(|e| TokenError::InvalidScope(e.to_string()))?;
            if !asked.is_subset(&granted) {
                return Err(TokenError::AccessDenied(
                    "Client has not been granted scopes: ".to_owned()
                        + &asked.iter().filter(|s| !granted.contains(s)).collect::<Vec<_>>().join(","),
                ));
            }
            asked
        }
    };
    let iat = now.secs();
    let claims = AccessTokenClaims {
        iss: issuer.to_owned(),
        sub: format!("{}@clients", client.id),
        aud: api,
        iat,
        exp: iat + ACCESS_TOKEN_LIFETIME_SECS,
        scope: scope.to_string(),
        azp: client.id.to_string(),
        gty: Some("client-credentials".into()),
    };
    let access_token = signer.sign_access_token(client.signing_alg, &claims).map_err(TokenError::Sign)?;
    Ok(Issued { access_token, expires_in: ACCESS_TOKEN_LIFETIME_SECS, scope: claims.scope })
}

/// What `grant_type=refresh_token` needs besides the store and the signer.
#[derive(Debug)]
pub struct RefreshSettings<'a> {
    /// Issuer, the exchange's rate limit and address bound, this process's counter hints.
    pub exchange: &'a delegation::Settings,
    /// Lifetime of the access token (for `/userinfo`).
    pub access_token_lifetime_secs: u32,
    pub keys: &'a RotationKeys,
}

/// A `refresh_token` request, as sent.
#[derive(Debug)]
pub struct RefreshRequest<'a> {
    pub token: RefreshToken,
    /// `scope`: narrows the answer's scope to what was granted of it.
    pub scope: Option<&'a str>,
}

#[derive(Debug)]
pub struct Refreshed {
    pub access_token: String,
    /// When `openid` is granted.
    pub id_token: Option<String>,
    /// For a rotating family: its next member (the very same on a retry).
    pub refresh_token: Option<SecretString>,
    pub expires_in: i64,
    pub scope: Scope,
    pub rate: RateStatus,
}

/// The scopes a refresh asks the stored grant about, guessing each granted (spa-js's default
/// grant): a wrong guess costs one more request, not a refusal.
const ASKED: &[(&str, bool)] = &[(OPENID, true), (PROFILE, true), (EMAIL, true), (OFFLINE_ACCESS, true)];

/// The client, authenticated exactly as it registered (`token_endpoint_auth_method`): by its
/// secret in the body or in HTTP Basic (constant-time), or — a public client — by nothing.
/// Every mismatch (unknown client, wrong secret, another method) is the same
/// `invalid_client`. node-auth0 sends `client_secret: ""` when it has none: that is none.
async fn authenticated_client<S: ClientStore>(store: &S, auth: &ClientAuth) -> Result<Client, TokenError> {
    use secrecy::ExposeSecret as _;
    let id = ClientId::parse(&auth.client_id).map_err(|_| TokenError::InvalidClient)?;
    let client = store.get_client(&id, Freshness::Cached).await?.ok_or(TokenError::InvalidClient)?;
    let presented = auth
        .client_secret
        .as_ref()
        .map(|s| s.expose_secret())
        .filter(|s| !s.is_empty())
        .map(|s| SecretHash::of(s.as_bytes()));
    let authenticated = match (&client.secret_hash, presented) {
        (Some(stored), Some(p)) => stored.ct_eq(&p) & (auth.method == client.token_endpoint_auth_method),
        (None, None) => client.token_endpoint_auth_method == TokenEndpointAuthMethod::None,
        _ => false,
    };
    if !authenticated {
        return Err(TokenError::InvalidClient);
    }
    Ok(client)
}

/// Who may refresh (or revoke): the client the token was issued to, authenticated as it
/// registered, allowed the refresh grant.
async fn refreshing_client<S: ClientStore>(store: &S, auth: &ClientAuth) -> Result<Client, TokenError> {
    let client = authenticated_client(store, auth).await?;
    if !client.allows_grant(GRANT_REFRESH_TOKEN) {
        return Err(TokenError::UnauthorizedClient(GRANT_REFRESH_TOKEN));
    }
    Ok(client)
}

/// `grant_type=refresh_token`: one exchange of the state machine (one DynamoDB request on the
/// common path; one more to read the profile when `profile` or `email` is granted), then the
/// tokens: an access token for `/userinfo`, an id_token without `nonce`, and for a rotating
/// family the successor.
#[allow(clippy::too_many_arguments)]
pub async fn refresh<S: Store, T: TokenSigner>(
    store: &S,
    signer: &T,
    settings: &RefreshSettings<'_>,
    auth: &ClientAuth,
    req: RefreshRequest<'_>,
    ip: IpAddr,
    now: Timestamp,
) -> Result<Refreshed, TokenError> {
    let client = refreshing_client(store, auth).await?;
    let narrow = req.scope.map(Scope::parse).transpose().map_err(|e| TokenError::InvalidScope(e.to_string()))?;
    let policy = settings.exchange.policy;
    let (address, source_ip) = (address_key(ip), ip.to_string());
    let presented = Presented {
        token: &req.token,
        client_id: &client.id,
        address: &address,
        source_ip: &source_ip,
        now,
        policy,
        max_addresses: settings.exchange.max_addresses,
        claims: ASKED,
        rotation: Some(settings.keys),
        leeway_secs: client.refresh_token.reuse_leeway(),
        migrate: client.refresh_token.rotating(),
        demote: !client.refresh_token.rotating(),
        expiry: Expiry {
            absolute_secs: client.refresh_token.absolute_lifetime(),
            idle_secs: client.refresh_token.idle_lifetime(),
        },
    };
    let (used, granted, successor, demoted) = match exchange::run(store, &settings.exchange.hints, &presented).await? {
        Outcome::Granted { used, granted_claims, successor, demoted } => (used, granted_claims, successor, demoted),
        Outcome::RateLimited { used } => return Err(TokenError::RateLimited(policy.status(now, used, true))),
        Outcome::Rejected(exchange::Rejection::Reused) => return Err(TokenError::ReuseDetected),
        Outcome::Rejected(_) => return Err(TokenError::InvalidGrant(INVALID_REFRESH_TOKEN)),
    };
    // Narrowing keeps what was granted of what is asked (the exchange has happened: a
    // rotating family has moved on, so the answer must carry the successor, not an error).
    let scope = match narrow {
        Some(asked) => Scope::from_iter(asked.iter().filter(|s| granted.contains(s))),
        None => granted,
    };
    let profile = if scope.contains(OPENID) && (scope.contains(PROFILE) || scope.contains(EMAIL)) {
        Some(store.get_user(req.token.user()).await?.ok_or(TokenError::InvalidGrant(INVALID_REFRESH_TOKEN))?)
    } else {
        None
    };
    let minted = Mint {
        issuer: &settings.exchange.issuer,
        access_token_lifetime_secs: settings.access_token_lifetime_secs,
        client: &client,
        user: req.token.user(),
        profile: profile.as_ref(),
        scope: &scope,
        nonce: None,
        auth_time: None,
        now,
    }
    .sign(signer)?;
    // A rotating family's next member; or, where the client turned rotation off, the
    // non-rotating token that replaces the family (given once, then used again and again).
    let refresh_token = if demoted {
        req.token.demoted(settings.keys).map(|t| t.expose())
    } else if successor {
        req.token.next_member(settings.keys).map(|t| t.expose())
    } else {
        None
    };
    Ok(Refreshed {
        access_token: minted.access_token,
        id_token: minted.id_token,
        refresh_token,
        expires_in: minted.expires_in,
        scope,
        rate: policy.status(now, used, false),
    })
}

/// The tokens of a grant: an access token for `/userinfo` and, with `openid`, an id_token
/// (profile claims from `profile`, `nonce` only on the code exchange).
struct Mint<'a> {
    issuer: &'a str,
    access_token_lifetime_secs: u32,
    client: &'a Client,
    user: &'a crate::ids::UserId,
    profile: Option<&'a crate::user::User>,
    scope: &'a Scope,
    nonce: Option<String>,
    auth_time: Option<i64>,
    now: Timestamp,
}

struct Minted {
    access_token: String,
    id_token: Option<String>,
    expires_in: i64,
}

impl Mint<'_> {
    fn sign<T: TokenSigner>(self, signer: &T) -> Result<Minted, TokenError> {
        let iat = self.now.secs();
        let lifetime = i64::from(self.access_token_lifetime_secs);
        let access = AccessTokenClaims::for_userinfo(
            self.issuer,
            self.user.to_string(),
            self.client.id.to_string(),
            self.scope.to_string(),
            iat,
            lifetime,
        );
        let alg = signer.userinfo_alg(self.client.signing_alg);
        let access_token = signer.sign_access_token(alg, &access).map_err(TokenError::Sign)?;
        let id_token = if self.scope.contains(OPENID) {
            let exp = iat + i64::from(self.client.id_token_lifetime_secs);
            let mut claims =
                IdTokenClaims::new(self.issuer.to_owned(), self.user.to_string(), self.client.id.to_string(), iat, exp);
            claims.nonce = self.nonce;
            claims.auth_time = self.auth_time;
            if let Some(user) = self.profile {
                crate::authorize::add_profile_claims(&mut claims, user, self.scope);
            }
            Some(signer.sign_id_token(self.client.signing_alg, &claims).map_err(TokenError::Sign)?)
        } else {
            None
        };
        Ok(Minted { access_token, id_token, expires_in: lifetime })
    }
}

/// The description of every refusal of a code that is unknown, expired, redeemed, another
/// client's, or whose user changed since the sign-in (Auth0's text).
pub const INVALID_CODE: &str = "Invalid authorization code";
pub const REDIRECT_MISMATCH: &str = "redirect_uri does not match the one of the authorization request.";
pub const VERIFIER_MISMATCH: &str = "Failed to verify code verifier";

/// An `authorization_code` request, as sent.
#[derive(Debug, Clone, Copy)]
pub struct CodeRequest<'a> {
    pub code: &'a str,
    pub redirect_uri: Option<&'a str>,
    pub code_verifier: Option<&'a str>,
}

/// What the code exchange issued.
#[derive(Debug)]
pub struct CodeGranted {
    pub access_token: String,
    pub id_token: Option<String>,
    /// When the sign-in asked for `offline_access`.
    pub refresh_token: Option<SecretString>,
    pub expires_in: i64,
    pub scope: Scope,
    /// The refresh token's id (for logs; never the token).
    pub credential_id: Option<String>,
    /// Who signed in, and the refresh token's device (the audit log).
    pub user_id: crate::ids::UserId,
    pub device: Option<String>,
}

/// `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.6): the code's client
/// authenticated as it registered, the exact `redirect_uri`, the PKCE verifier; then the code
/// is redeemed and the refresh token issued in one transaction. Requests: `GetItem` of the
/// code, of the user, and one `TransactWriteItems` (code, credential, user). A code presented
/// again is refused, and the refresh token its first redemption issued is revoked (RFC 6749
/// §4.1.2): whoever holds the code twice may be an attacker.
pub async fn authorization_code<S: Store, T: TokenSigner>(
    store: &S,
    signer: &T,
    settings: &RefreshSettings<'_>,
    auth: &ClientAuth,
    req: CodeRequest<'_>,
    now: Timestamp,
) -> Result<CodeGranted, TokenError> {
    let client = authenticated_client(store, auth).await?;
    if !client.allows_grant(GRANT_AUTHORIZATION_CODE) {
        return Err(TokenError::UnauthorizedClient(GRANT_AUTHORIZATION_CODE));
    }
    let invalid = || TokenError::InvalidGrant(INVALID_CODE);
    let hash = code::presented_hash(req.code).ok_or_else(invalid)?;
    let record = store.get_code(&hash).await?.ok_or_else(invalid)?;
    if record.client_id != client.id {
        return Err(invalid());
    }
    if record.redeemed.is_some() {
        revoke_first_redemption(store, &record).await?;
        return Err(invalid());
    }
    if record.expired(now) {
        return Err(invalid());
    }
    if req.redirect_uri != Some(record.redirect_uri.as_str()) {
        return Err(TokenError::InvalidGrant(REDIRECT_MISMATCH));
    }
    match (&record.challenge, req.code_verifier) {
        (Some(challenge), Some(verifier)) if challenge.verifies(verifier) => {}
        (Some(_), None) => {
            return Err(TokenError::InvalidRequest("Missing required parameter: code_verifier".into()));
        }
        // A wrong verifier, or one where the sign-in sent no challenge (a downgrade).
        (Some(_), Some(_)) | (None, Some(_)) => return Err(TokenError::InvalidGrant(VERIFIER_MISMATCH)),
        (None, None) => {}
    }
    let user = store.get_user(&record.user_id).await?.ok_or_else(invalid)?;
    if user.rev != record.user_rev {
        return Err(invalid());
    }
    if user.blocked {
        return Err(TokenError::AccessDenied("user is blocked".into()));
    }
    let token = match (&record.device, client.allows_grant(GRANT_REFRESH_TOKEN)) {
        (Some(device), true) => {
            let token = new_refresh_token(&client, &user.id, user.rev, settings.keys);
            let cred = DeviceCredential::issued(&token, &client.id, device, &record.scope, now, &record.created_ip);
            Some((token, cred))
        }
        _ => None,
    };
    match store.redeem_code(&record, now, token.as_ref().map(|(_, c)| c)).await? {
        Redeem::Redeemed => {}
        Redeem::UserChanged => return Err(invalid()),
        // A concurrent redemption won: this is the second one.
        Redeem::AlreadyRedeemed => {
            if let Some(again) = store.get_code(&hash).await? {
                revoke_first_redemption(store, &again).await?;
            }
            return Err(invalid());
        }
    }
    let mut scope = record.scope.clone();
    if token.is_none() {
        scope.remove(OFFLINE_ACCESS);
    }
    let minted = Mint {
        issuer: &settings.exchange.issuer,
        access_token_lifetime_secs: settings.access_token_lifetime_secs,
        client: &client,
        user: &user.id,
        profile: Some(&user),
        scope: &scope,
        nonce: record.nonce.clone(),
        auth_time: Some(record.created_at.secs()),
        now,
    }
    .sign(signer)?;
    Ok(CodeGranted {
        access_token: minted.access_token,
        id_token: minted.id_token,
        credential_id: token.as_ref().map(|(t, _)| t.id().to_string()),
        device: token.as_ref().and(record.device.as_ref()).map(|d| d.as_str().to_owned()),
        refresh_token: token.map(|(t, _)| t.expose()),
        expires_in: minted.expires_in,
        scope,
        user_id: record.user_id.clone(),
    })
}

/// Revokes the refresh token a redeemed code issued, if it still exists.
async fn revoke_first_redemption<S: Store>(store: &S, record: &AuthorizationCode) -> Result<(), StoreError> {
    if let Some(id) = record.redeemed.as_ref().and_then(|r| r.credential.as_ref()) {
        let revoked = store.revoke_credential(id).await?;
        tracing::warn!(credential = %id, revoked, "authorization code presented again: its refresh token is revoked");
    }
    Ok(())
}

/// The refresh token a client of this kind gets at sign-in: a new rotating family for a
/// rotating client, a non-rotating token otherwise.
pub fn new_refresh_token(
    client: &Client,
    user: &crate::ids::UserId,
    user_rev: u32,
    keys: &RotationKeys,
) -> RefreshToken {
    match client.refresh_token.rotation_type {
        RotationType::Rotating => RefreshToken::generate_rotating(user, user_rev, keys),
        RotationType::NonRotating => RefreshToken::generate(user, user_rev),
    }
}

/// `POST /oauth/revoke` (RFC 7009): revokes the refresh token's whole family — one strongly
/// consistent read of the credential, then the revocation that `DELETE
/// /api/v2/device-credentials/{id}` performs. The caller authenticates as for a refresh.
/// A token that is malformed, unknown, already revoked or issued to another client is not an
/// error (`Ok(None)`): the answer must not tell a token holder anything. Answers the
/// credential it revoked (for the audit log).
pub async fn revoke<S: Store>(
    store: &S,
    keys: &RotationKeys,
    auth: &ClientAuth,
    token: Option<RefreshToken>,
) -> Result<Option<DeviceCredential>, TokenError> {
    let client = refreshing_client(store, auth).await?;
    let Some(token) = token else { return Ok(None) };
    let Some(cred) = store.get_credential(token.id()).await? else { return Ok(None) };
    let presented = token.secret_hash();
    // Any member the service issued of this family will do: the current one, or (rotating)
    // a retired one — whoever holds it could have revoked the family by reusing it.
    let member = match (cred.generation, token.generation()) {
        (None, None) => cred.secret_hash.ct_eq(&presented),
        (Some(current), Some(g)) => {
            (g == current && cred.secret_hash.ct_eq(&presented)) || (g < current && token.is_genuine(keys))
        }
        _ => false,
    };
    let bound = &cred.user_id == token.user() && cred.user_rev == token.user_rev() && cred.client_id == client.id;
    if !(member && bound) {
        return Ok(None);
    }
    Ok(store.revoke_read_credential(&cred).await?.then_some(cred))
}

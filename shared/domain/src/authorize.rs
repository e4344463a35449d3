//! Use case: `GET /authorize` (validate the request, show the login form) and the form's POST
//! (check the password, issue tokens, redirect to the registered callback).

use secrecy::SecretString;

use crate::claims::{AccessTokenClaims, IdTokenClaims};
use crate::client::{Client, GRANT_AUTHORIZATION_CODE, GRANT_IMPLICIT, GRANT_REFRESH_TOKEN, SigningAlg};
use crate::clock::Timestamp;
use crate::code::{AuthorizationCode, CODE_LIFETIME_SECS, Challenge, Code};
use crate::credential::DeviceCredential;
use crate::ids::{ClientId, DeviceName, Email, UserId};
use crate::ports::{ClientStore, Freshness, IssueOutcome, SignError, Store, StoreError, TokenSigner};
use crate::ratelimit::count_after_read;
use crate::scope::{EMAIL, OFFLINE_ACCESS, OPENID, PROFILE, Scope};
use crate::throttle::LoginThrottle;
use crate::user::User;
use std::net::IpAddr;

pub const MAX_STATE_LEN: usize = 2048;
pub const MAX_NONCE_LEN: usize = 512;

#[derive(Debug, Clone)]
pub struct Settings {
    pub issuer: String,
    /// Lifetime of the access token returned in the fragment (`expires_in`).
    pub access_token_lifetime_secs: u32,
    /// Failed sign-ins per address and per (account, address) pair ([`LoginThrottle`]).
    pub login: LoginThrottle,
    /// The keys of rotating refresh-token families (a rotating client's sign-in starts one).
    pub rotation_keys: std::sync::Arc<crate::token::RotationKeys>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseType {
    Token,
    IdToken,
    TokenIdToken,
    /// The authorization code flow (RFC 6749 §4.1), with PKCE.
    Code,
}

/// Where the answer goes in the callback URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    Query,
    Fragment,
}

impl ResponseType {
    fn parse(s: &str) -> Option<Self> {
        let mut parts: Vec<&str> = s.split(' ').filter(|p| !p.is_empty()).collect();
        parts.sort_unstable();
        match parts.as_slice() {
            ["token"] => Some(Self::Token),
            ["id_token"] => Some(Self::IdToken),
            ["id_token", "token"] => Some(Self::TokenIdToken),
            ["code"] => Some(Self::Code),
            _ => None,
        }
    }
    /// Tokens only ever travel in the fragment (never in a query string that servers log);
    /// a code goes in the query unless the client asks for the fragment.
    fn default_mode(self) -> ResponseMode {
        if self == Self::Code { ResponseMode::Query } else { ResponseMode::Fragment }
    }
    fn grant(self) -> &'static str {
        if self == Self::Code { GRANT_AUTHORIZATION_CODE } else { GRANT_IMPLICIT }
    }
    fn wants_access_token(self) -> bool {
        matches!(self, Self::Token | Self::TokenIdToken)
    }
    fn requires_nonce(self) -> bool {
        matches!(self, Self::IdToken | Self::TokenIdToken)
    }
}

/// Problems that must never be redirected: the redirect target is not (yet) trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("Missing required parameter: client_id")]
    MissingClientId,
    #[error("Unknown client: the client_id is not registered.")]
    UnknownClient,
    #[error("Missing required parameter: redirect_uri")]
    MissingRedirectUri,
    #[error("The redirect_uri is not registered for this application (callback URLs must match exactly).")]
    UnregisteredRedirectUri,
    #[error("{0}")]
    BadRequest(String),
}

/// Problems reported to the application at its registered callback (RFC 6749 §4.1.2.1,
/// §4.2.2.1), in the query or the fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectError {
    pub redirect_uri: String,
    pub mode: ResponseMode,
    /// The RFC 6749 §4.2.2.1 error code.
    pub error: &'static str,
    pub description: String,
    pub state: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    #[error(transparent)]
    Page(#[from] PageError),
    #[error("{}", .0.description)]
    Redirect(RedirectError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A validated authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    pub client: Client,
    pub redirect_uri: String,
    pub response_type: ResponseType,
    pub response_mode: ResponseMode,
    /// The PKCE challenge of a code request (required of public clients).
    pub challenge: Option<Challenge>,
    pub scope: Scope,
    pub state: Option<String>,
    pub nonce: Option<String>,
    /// Present when a refresh token will be issued: the `device` parameter, or for the code
    /// flow, when it is absent, a name made from the User-Agent.
    pub device: Option<DeviceName>,
    /// The client asked for a refresh token (and may have one).
    pub offline: bool,
}

/// The parameters of an authorization request as sent (query string, or the login form's
/// sealed copy of it); `None` when absent. Unknown parameters (`auth0Client`, `audience`, …)
/// are not carried.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuthorizeParams<'a> {
    pub client_id: Option<&'a str>,
    pub redirect_uri: Option<&'a str>,
    pub response_type: Option<&'a str>,
    pub response_mode: Option<&'a str>,
    pub scope: Option<&'a str>,
    pub state: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub prompt: Option<&'a str>,
    pub device: Option<&'a str>,
    pub code_challenge: Option<&'a str>,
    pub code_challenge_method: Option<&'a str>,
    /// The browser's `User-Agent`, which names the device when `device` is absent (code flow).
    pub user_agent: Option<&'a str>,
}

/// Validates an authorization request. Unknown parameters (`auth0Client`, `audience`, …) are
/// ignored. The client and redirect URI are checked first; everything after that is reported
/// to the redirect URI.
pub async fn validate<S: ClientStore>(store: &S, p: &AuthorizeParams<'_>) -> Result<AuthorizeRequest, AuthorizeError> {
    let client_id = p.client_id.ok_or(PageError::MissingClientId)?;
    let client_id = ClientId::parse(client_id).map_err(|_| PageError::UnknownClient)?;
    let client = store.get_client(&client_id, Freshness::Cached).await?.ok_or(PageError::UnknownClient)?;
    let redirect_uri = p.redirect_uri.ok_or(PageError::MissingRedirectUri)?;
    if !client.has_callback(redirect_uri) {
        return Err(PageError::UnregisteredRedirectUri.into());
    }
    let redirect_uri = redirect_uri.to_owned();
    let state = match p.state {
        Some(s) if s.len() > MAX_STATE_LEN => {
            return Err(PageError::BadRequest(format!("state is longer than {MAX_STATE_LEN} characters")).into());
        }
        s => s.map(str::to_owned),
    };
    let parsed_type = p.response_type.and_then(ResponseType::parse);
    // Errors go where the answer would have gone: a code request's to the query.
    let mut mode = parsed_type.map_or(ResponseMode::Fragment, ResponseType::default_mode);
    let fail = |mode: ResponseMode, error: &'static str, description: &str| {
        AuthorizeError::Redirect(RedirectError {
            redirect_uri: redirect_uri.clone(),
            mode,
            error,
            description: description.to_owned(),
            state: state.clone(),
        })
    };

    let Some(raw_type) = p.response_type else {
        return Err(fail(mode, "invalid_request", "Missing required parameter: response_type"));
    };
    let response_type = parsed_type.ok_or_else(|| {
        fail(
            mode,
            "unsupported_response_type",
            &format!("Unsupported response type: {raw_type}. Use code, token, id_token or 'token id_token'."),
        )
    })?;
    match (p.response_mode, response_type) {
        (None, _) => {}
        (Some("fragment"), _) => mode = ResponseMode::Fragment,
        (Some("query"), ResponseType::Code) => mode = ResponseMode::Query,
        (Some("query"), _) => {
            return Err(fail(
                mode,
                "invalid_request",
                "Tokens are only returned in the fragment: response_mode=query is for response_type=code.",
            ));
        }
        (Some(other), _) => {
            return Err(fail(
                mode,
                "invalid_request",
                &format!("Unsupported response_mode: {other}. Use query or fragment."),
            ));
        }
    }
    let fail = |error: &'static str, description: &str| fail(mode, error, description);
    if !client.allows_grant(response_type.grant()) {
        return Err(fail(
            "unauthorized_client",
            &format!("Grant type '{}' not allowed for the client.", response_type.grant()),
        ));
    }
    let challenge = if response_type == ResponseType::Code {
        let c = Challenge::parse(p.code_challenge, p.code_challenge_method)
            .map_err(|e| fail("invalid_request", &e.to_string()))?;
        if c.is_none() && !client.token_endpoint_auth_method.uses_secret() {
            return Err(fail(
                "invalid_request",
                "Missing required parameter: code_challenge (PKCE with S256 is required for public clients).",
            ));
        }
        c
    } else {
        if p.code_challenge.is_some() || p.code_challenge_method.is_some() {
            return Err(fail("invalid_request", "code_challenge is for response_type=code."));
        }
        None
    };
    let mut scope = Scope::parse(p.scope.unwrap_or(OPENID))
        .map_err(|_| fail("invalid_scope", "scope must be space-separated printable ASCII"))?;
    if scope.is_empty() {
        scope.insert(OPENID);
    }
    if response_type.requires_nonce() && !scope.contains(OPENID) {
        return Err(fail("invalid_scope", "An id_token needs the openid scope."));
    }
    let nonce = match p.nonce {
        Some(n) if n.len() > MAX_NONCE_LEN => {
            return Err(fail("invalid_request", "nonce is too long"));
        }
        Some(n) => Some(n.to_owned()),
        None if response_type.requires_nonce() => {
            return Err(fail("invalid_request", "Missing required parameter: nonce (required with id_token)"));
        }
        None => None,
    };
    if p.prompt == Some("none") {
        return Err(fail("login_required", "Login required: this server keeps no login session."));
    }
    let offline = scope.contains(OFFLINE_ACCESS) && client.allows_grant(GRANT_REFRESH_TOKEN);
    let device = if offline {
        if !scope.contains(OPENID) {
            return Err(fail("invalid_scope", "offline_access needs the openid scope."));
        }
        match (p.device, response_type) {
            (Some(raw), _) => Some(DeviceName::parse(raw).map_err(|e| fail("invalid_request", &e.to_string()))?),
            (None, ResponseType::Code) => Some(crate::user_agent::device_name(p.user_agent)),
            (None, _) => {
                return Err(fail(
                    "invalid_request",
                    "Missing required parameter: device (required with offline_access)",
                ));
            }
        }
    } else {
        None
    };
    if response_type == ResponseType::Code && !offline {
        // What the answer grants: no refresh token, so no offline_access.
        scope.remove(OFFLINE_ACCESS);
    }
    Ok(AuthorizeRequest {
        client,
        redirect_uri,
        response_type,
        response_mode: mode,
        challenge,
        scope,
        state,
        nonce,
        device,
        offline,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Same message whether the account exists or not.
    #[error("Wrong email or password.")]
    InvalidCredentials,
    /// The account exists, the password is wrong: answered as [`Self::InvalidCredentials`]
    /// (the audit log tells them apart).
    #[error("Wrong email or password.")]
    WrongPassword(UserId),
    /// The password is right, but the account may not sign in here (the dashboard: not an
    /// administrator, or blocked): answered as [`Self::InvalidCredentials`].
    #[error("Wrong email or password.")]
    NotAdministrator(UserId),
    #[error("Too many login attempts. Try again in {retry_after} seconds.")]
    Throttled { retry_after: i64 },
    #[error("user is blocked")]
    Blocked,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot sign a token")]
    Sign(#[source] SignError),
}

/// What a successful login issued, for the registered callback (`rt_http::oauth` writes the
/// fragment, RFC 6749 §4.2.2).
#[derive(Debug)]
pub struct LoginSuccess {
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    /// The authorization code (code flow): nothing else but `state` goes to the callback.
    pub code: Option<Code>,
    /// The access token and its lifetime in seconds.
    pub access_token: Option<(String, i64)>,
    /// The id_token and its lifetime (`exp - iat`).
    pub id_token: Option<(String, i64)>,
    pub refresh_token: Option<SecretString>,
    pub scope: Scope,
    pub state: Option<String>,
    /// The refresh token's id, when one was issued (for logs; never the token).
    pub credential_id: Option<String>,
    /// Who signed in (the audit log).
    pub user_id: UserId,
    pub email: String,
}

/// Checks the credentials and issues the tokens of `req`.
#[allow(clippy::too_many_arguments)]
pub async fn login<S: Store, T: TokenSigner>(
    store: &S,
    signer: &T,
    settings: &Settings,
    req: &AuthorizeRequest,
    username: &str,
    password: &SecretString,
    ip: IpAddr,
    now: Timestamp,
) -> Result<LoginSuccess, LoginError> {
    let user = authenticate(store, settings, username, password, ip, now).await?;
    if user.blocked {
        return Err(LoginError::Blocked);
    }
    if req.response_type == ResponseType::Code {
        return issue_code(store, req, &user, &ip.to_string(), now).await;
    }
    issue_tokens(store, signer, settings, req, &user, &ip.to_string(), now).await
}

/// The code flow's answer: a code bound to the request (client, callback, challenge, scope,
/// nonce, device) and the user, stored as its hash. One `PutItem`.
async fn issue_code<S: Store>(
    store: &S,
    req: &AuthorizeRequest,
    user: &User,
    address: &str,
    now: Timestamp,
) -> Result<LoginSuccess, LoginError> {
    let code = Code::generate();
    let record = AuthorizationCode {
        hash: code.hash(),
        client_id: req.client.id.clone(),
        user_id: user.id.clone(),
        user_rev: user.rev,
        redirect_uri: req.redirect_uri.clone(),
        challenge: req.challenge.clone(),
        scope: req.scope.clone(),
        nonce: req.nonce.clone(),
        device: if req.offline { req.device.clone() } else { None },
        created_at: now,
        created_ip: address.to_owned(),
        expires_at: now.plus_secs(CODE_LIFETIME_SECS),
        redeemed: None,
    };
    store.put_code(&record).await?;
    Ok(LoginSuccess {
        redirect_uri: req.redirect_uri.clone(),
        response_mode: req.response_mode,
        code: Some(code),
        access_token: None,
        id_token: None,
        refresh_token: None,
        scope: req.scope.clone(),
        state: req.state.clone(),
        credential_id: None,
        user_id: user.id.clone(),
        email: user.email.to_string(),
    })
}

/// Checks the password under the sign-in throttle ([`crate::throttle`]): refused at once
/// while the address, or this account from this address, is over its failure limit; a
/// failure counts against both, a success clears the pair. Known and unknown accounts, at
/// every password length, cost the same reads, one Argon2id verification (a dummy one when
/// the account does not exist) and the same writes, and answer the same.
pub async fn authenticate<S: Store>(
    store: &S,
    settings: &Settings,
    username: &str,
    password: &SecretString,
    ip: IpAddr,
    now: Timestamp,
) -> Result<User, LoginError> {
    let throttle = &settings.login;
    let account = username.trim().to_lowercase();
    let user = match Email::parse(&account) {
        Ok(email) => store.get_user_by_email(&email).await?,
        Err(_) => None,
    };
    let address = throttle.address_counter(ip);
    let pair = throttle.pair_counter(&account, user.as_ref().map_or(0, |u| u.rev), ip);
    let mut read = [None, None];
    for ((key, policy), slot) in
        [(&address, throttle.per_address), (&pair, throttle.per_pair)].into_iter().zip(&mut read)
    {
        *slot = store.read_counter(key).await?;
        if let Some(retry_after) = slot.and_then(|c| LoginThrottle::blocks(policy, c, now)) {
            return Err(LoginError::Throttled { retry_after });
        }
    }
    let [address_read, pair_read] = read;
    let verified = match user {
        Some(user) if user.password_hash.verify(password) => Ok(user),
        Some(user) => Err(LoginError::WrongPassword(user.id)),
        None => {
            crate::password::verify_dummy(password);
            Err(LoginError::InvalidCredentials)
        }
    };
    match verified {
        Ok(user) => {
            if pair_read.is_some() {
                store.reset_counter(&pair).await?;
            }
            Ok(user)
        }
        Err(e) => {
            count_after_read(store, &address, throttle.per_address, now, address_read).await?;
            count_after_read(store, &pair, throttle.per_pair, now, pair_read).await?;
            Err(e)
        }
    }
}

async fn issue_tokens<S: Store, T: TokenSigner>(
    store: &S,
    signer: &T,
    settings: &Settings,
    req: &AuthorizeRequest,
    user: &User,
    address: &str,
    now: Timestamp,
) -> Result<LoginSuccess, LoginError> {
    let iat = now.secs();

    let access_token = if req.response_type.wants_access_token() {
        let lifetime = i64::from(settings.access_token_lifetime_secs);
        let claims = AccessTokenClaims::for_userinfo(
            &settings.issuer,
            user.id.to_string(),
            req.client.id.to_string(),
            req.scope.to_string(),
            iat,
            lifetime,
        );
        let alg = signer.userinfo_alg(req.client.signing_alg);
        Some((signer.sign_access_token(alg, &claims).map_err(LoginError::Sign)?, lifetime))
    } else {
        None
    };

    let id_token = if req.scope.contains(OPENID) {
        let exp = iat + i64::from(req.client.id_token_lifetime_secs);
        let mut claims =
            IdTokenClaims::new(settings.issuer.clone(), user.id.to_string(), req.client.id.to_string(), iat, exp);
        claims.nonce = req.nonce.clone();
        claims.at_hash = access_token.as_ref().map(|(at, _)| at_hash(req.client.signing_alg, at));
        claims.auth_time = Some(iat);
        add_profile_claims(&mut claims, user, &req.scope);
        Some((
            signer.sign_id_token(req.client.signing_alg, &claims).map_err(LoginError::Sign)?,
            claims.exp - claims.iat,
        ))
    } else {
        None
    };

    let mut refresh_token = None;
    let mut credential_id = None;
    if let (true, Some(device)) = (req.offline, &req.device) {
        let token = crate::oauth_token::new_refresh_token(&req.client, &user.id, user.rev, &settings.rotation_keys);
        let cred = DeviceCredential::issued(&token, &req.client.id, device, &req.scope, now, address);
        match store.issue_credential(&cred).await? {
            IssueOutcome::Issued => {}
            // The password changed or the account went away between reading and issuing.
            IssueOutcome::UserChanged => {
                return Err(LoginError::InvalidCredentials);
            }
        }
        refresh_token = Some(token.expose());
        credential_id = Some(cred.id.to_string());
    }
    Ok(LoginSuccess {
        redirect_uri: req.redirect_uri.clone(),
        response_mode: req.response_mode,
        code: None,
        access_token,
        id_token,
        refresh_token,
        scope: req.scope.clone(),
        state: req.state.clone(),
        credential_id,
        user_id: user.id.clone(),
        email: user.email.to_string(),
    })
}

/// OIDC `at_hash`: base64url of the left half of the hash of the access token.
///
/// The hash is the one of the id_token's algorithm: SHA-256 for RS256, PS256 and ES256,
/// SHA-512 for EdDSA with Ed25519 (OpenID Connect Core errata 2, §3.1.3.6).
pub fn at_hash(alg: SigningAlg, access_token: &str) -> String {
    use base64::Engine as _;
    let hash = match alg {
        SigningAlg::RS256 | SigningAlg::PS256 | SigningAlg::ES256 => &aws_lc_rs::digest::SHA256,
        SigningAlg::EdDSA => &aws_lc_rs::digest::SHA512,
    };
    let d = aws_lc_rs::digest::digest(hash, access_token.as_bytes());
    let half = d.as_ref().get(..d.as_ref().len() / 2).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(half)
}

/// Adds the `profile` and `email` claims that `scope` grants.
pub fn add_profile_claims(claims: &mut IdTokenClaims, user: &User, scope: &Scope) {
    if scope.contains(PROFILE) {
        claims.name = Some(user.name.clone());
        claims.nickname = Some(user.nickname.clone());
        claims.updated_at = Some(user.updated_at.to_rfc3339());
    }
    if scope.contains(EMAIL) {
        claims.email = Some(user.email.to_string());
        claims.email_verified = Some(user.email_verified);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_types() {
        assert_eq!(ResponseType::parse("token"), Some(ResponseType::Token));
        assert_eq!(ResponseType::parse("id_token token"), Some(ResponseType::TokenIdToken));
        assert_eq!(ResponseType::parse("token id_token"), Some(ResponseType::TokenIdToken));
        assert_eq!(ResponseType::parse("code"), Some(ResponseType::Code));
        assert_eq!(ResponseType::parse("code id_token"), None);
        assert_eq!(ResponseType::parse("token token"), None);
    }

    #[test]
    fn at_hash_is_the_left_half_of_the_algorithms_hash() {
        // Expected value computed independently:
        // base64.urlsafe_b64encode(hashlib.sha256(t).digest()[:16]) in Python.
        let t = "jHkWEdUXMU1BwAsC4vtUsZwnNqmuWvJLU9LPUhWvmYpYn9T";
        for alg in [SigningAlg::RS256, SigningAlg::PS256, SigningAlg::ES256] {
            assert_eq!(at_hash(alg, t), "y51Ni1ja06MvzlWB95939g");
        }
        // base64.urlsafe_b64encode(hashlib.sha512(t).digest()[:32]) in Python.
        assert_eq!(at_hash(SigningAlg::EdDSA, t), "-n-It49aK2L2qMTjxBGzOiDG_Tc0ARiqe4qG4BC_6bY");
    }
}

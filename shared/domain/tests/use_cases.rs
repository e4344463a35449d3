//! The use cases over the in-memory store (`rt_domain::memory`, held to the DynamoDB adapter's
//! contract by `tests/api/contract.rs`): sign-in, delegation and the Management API, in
//! milliseconds, no server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::IpAddr;
use std::sync::Mutex;

use rt_domain::authorize::{self, AuthorizeRequest, LoginError, LoginSuccess};
use rt_domain::claims::{AccessTokenClaims, IdTokenClaims};
use rt_domain::client::{
    AppType, Client, ExpirationType, GRANT_IMPLICIT, GRANT_JWT_BEARER, GRANT_REFRESH_TOKEN, RefreshTokenPolicy,
    RotationType, SigningAlg, TokenEndpointAuthMethod,
};
use rt_domain::clock::Timestamp;
use rt_domain::delegation::{self, DelegationError, DelegationRequest, DelegationScope};
use rt_domain::ids::{ClientId, Email, UserId};
use rt_domain::management::{
    self, Conflict, Entity, Invalid, MgmtError, Paging, Principal, clients, device_credentials, users,
};
use rt_domain::memory::MemoryStore;
use rt_domain::password::PasswordHash;
use rt_domain::ports::{
    ClientStore, CredentialFilter, CredentialStore, PageRequest, SignError, TokenSigner, UserStore,
};
use rt_domain::ratelimit::RatePolicy;
use rt_domain::token::{RefreshToken, RotationKeys};
use rt_domain::user::User;
use secrecy::SecretString;

const ISSUER: &str = "https://tenant.example/";
const CALLBACK: &str = "https://app.example/callback";
const PASSWORD: &str = "Correct-horse-9";
const NOW: Timestamp = Timestamp::from_secs(1_800_000_000);

/// Records what it is asked to sign and answers a token naming it.
#[derive(Default)]
struct Signer {
    id_tokens: Mutex<Vec<IdTokenClaims>>,
}

impl Signer {
    fn last(&self) -> IdTokenClaims {
        self.id_tokens.lock().unwrap().last().cloned().expect("an id_token was signed")
    }
}

impl TokenSigner for Signer {
    fn sign_id_token(&self, _: SigningAlg, claims: &IdTokenClaims) -> Result<String, SignError> {
        let mut v = self.id_tokens.lock().unwrap();
        v.push(claims.clone());
        Ok(format!("id-token-{}", v.len()))
    }
    fn sign_access_token(&self, _: SigningAlg, claims: &AccessTokenClaims) -> Result<String, SignError> {
        Ok(format!("access-token-for-{}", claims.sub))
    }
}

struct World {
    store: MemoryStore,
    signer: Signer,
    client: Client,
    user: User,
    sign_in: authorize::Settings,
    delegation: delegation::Settings,
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn world() -> World {
    let store = MemoryStore::new();
    let client = Client {
        callbacks: vec![CALLBACK.into()],
        grant_types: [GRANT_IMPLICIT, GRANT_REFRESH_TOKEN, GRANT_JWT_BEARER].map(String::from).to_vec(),
        id_token_lifetime_secs: 600,
        ..Client::new(ClientId::generate(), "Phone app", AppType::Native, NOW)
    };
    assert!(store.create_client(&client).await.unwrap());
    let user = User {
        id: UserId::generate(),
        email: Email::parse("ada@example.com").unwrap(),
        email_verified: true,
        name: "Ada Lovelace".into(),
        nickname: "ada".into(),
        password_hash: PasswordHash::create(&SecretString::from(PASSWORD)).unwrap(),
        rev: 0,
        admin: false,
        blocked: false,
        created_at: NOW,
        updated_at: NOW,
        sessions_after: Timestamp::from_millis(0),
        live_devices: 0,
    };
    store.create_user(&user).await.unwrap();
    let policy = RatePolicy { limit: 3, window_secs: 60 };
    World {
        store,
        signer: Signer::default(),
        client,
        user,
        sign_in: authorize::Settings {
            issuer: ISSUER.into(),
            access_token_lifetime_secs: 3600,
            login: rt_domain::throttle::LoginThrottle::new(
                RatePolicy { limit: 20, window_secs: 300 },
                policy,
                secrecy::SecretBox::new(Box::new([7; 32])),
            ),
            rotation_keys: std::sync::Arc::new(RotationKeys::new(&secrecy::SecretBox::new(Box::new([9; 32])))),
        },
        delegation: delegation::Settings { issuer: ISSUER.into(), policy, max_addresses: 2, hints: Default::default() },
    }
}

async fn authorize_request(w: &World, scope: &str) -> AuthorizeRequest {
    let p = authorize::AuthorizeParams {
        client_id: Some(w.client.id.as_str()),
        redirect_uri: Some(CALLBACK),
        response_type: Some("token id_token"),
        scope: Some(scope),
        nonce: Some("n-0S6_WzA2Mj"),
        state: Some("xyz"),
        device: Some("Ada's phone"),
        ..Default::default()
    };
    authorize::validate(&w.store, &p).await.unwrap()
}

async fn sign_in(w: &World, password: &str) -> Result<LoginSuccess, LoginError> {
    let req = authorize_request(w, "openid offline_access profile").await;
    let password = SecretString::from(password);
    authorize::login(&w.store, &w.signer, &w.sign_in, &req, "Ada@Example.com", &password, ip("203.0.113.1"), NOW).await
}

fn issued(ok: &LoginSuccess) -> RefreshToken {
    use secrecy::ExposeSecret as _;
    RefreshToken::parse(ok.refresh_token.as_ref().expect("a refresh token").expose_secret()).unwrap()
}

async fn refresh_token(w: &World) -> RefreshToken {
    issued(&sign_in(w, PASSWORD).await.unwrap())
}

fn delegation_request(w: &World, token: &RefreshToken, scope: DelegationScope) -> DelegationRequest {
    DelegationRequest {
        client_id: w.client.id.clone(),
        token: RefreshToken::parse(&token.expose_str()).unwrap(),
        scope,
    }
}

trait Expose {
    fn expose_str(&self) -> String;
}

impl Expose for RefreshToken {
    fn expose_str(&self) -> String {
        use secrecy::ExposeSecret as _;
        self.expose().expose_secret().to_owned()
    }
}

async fn delegate(
    w: &World,
    token: &RefreshToken,
    scope: DelegationScope,
    from: &str,
) -> Result<delegation::Delegated, DelegationError> {
    let req = delegation_request(w, token, scope);
    delegation::delegate(&w.store, &w.signer, &w.delegation, &req, ip(from), NOW).await
}

#[tokio::test]
async fn signing_in_with_offline_access_issues_a_refresh_token_bound_to_the_device() {
    let w = world().await;
    let ok = sign_in(&w, PASSWORD).await.unwrap();
    assert_eq!(ok.redirect_uri, CALLBACK);
    assert_eq!(ok.state.as_deref(), Some("xyz"));
    assert_eq!(ok.id_token.as_ref().map(|(_, lifetime)| *lifetime), Some(600));
    let token = issued(&ok);
    assert_eq!(ok.credential_id.as_deref(), Some(token.id().as_str()));
    let stored = w.store.get_credential(token.id()).await.unwrap().unwrap();
    assert_eq!(
        (stored.device_name.as_str(), &stored.client_id, &stored.user_id),
        ("Ada's phone", &w.client.id, &w.user.id)
    );
    assert_ne!(stored.secret_hash.to_hex(), token.id().as_str(), "only a hash of the secret is kept");
    let id = w.signer.last();
    assert_eq!((id.iss.as_str(), id.sub.as_str(), id.aud.as_str()), (ISSUER, w.user.id.as_str(), w.client.id.as_str()));
    assert_eq!(id.nonce.as_deref(), Some("n-0S6_WzA2Mj"));
    assert_eq!(id.name.as_deref(), Some("Ada Lovelace"), "profile was asked for");
    assert_eq!(id.email, None, "email was not");
}

#[tokio::test]
async fn without_offline_access_no_refresh_token_is_issued() {
    let w = world().await;
    let req = authorize_request(&w, "openid").await;
    let pw = SecretString::from(PASSWORD);
    let ok = authorize::login(&w.store, &w.signer, &w.sign_in, &req, "ada@example.com", &pw, ip("203.0.113.1"), NOW)
        .await
        .unwrap();
    assert!(ok.refresh_token.is_none());
    let all = CredentialFilter::User { user: w.user.id.clone(), client: None };
    assert_eq!(w.store.count_credentials(&all).await.unwrap(), 0);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_account_answer_alike_and_the_pair_is_throttled() {
    let w = world().await;
    // The same answer; only the audit log tells a wrong password from an unknown account.
    let wrong = sign_in(&w, "wrong").await;
    assert!(matches!(&wrong, Err(LoginError::WrongPassword(u)) if u == &w.user.id), "{wrong:?}");
    assert_eq!(wrong.err().map(|e| e.to_string()), Some(LoginError::InvalidCredentials.to_string()));
    let req = authorize_request(&w, "openid").await;
    let pw = SecretString::from(PASSWORD);
    let unknown =
        authorize::login(&w.store, &w.signer, &w.sign_in, &req, "nobody@example.com", &pw, ip("203.0.113.1"), NOW)
            .await;
    assert!(matches!(unknown, Err(LoginError::InvalidCredentials)));
    // 3 failures in a row for (ada, 203.0.113.1): the right password does not get through
    // from there.
    assert!(matches!(sign_in(&w, "wrong").await, Err(LoginError::WrongPassword(_))));
    assert!(matches!(sign_in(&w, "wrong").await, Err(LoginError::WrongPassword(_))));
    match sign_in(&w, PASSWORD).await {
        Err(LoginError::Throttled { retry_after }) => assert!((1..=60).contains(&retry_after)),
        other => panic!("throttled, got {other:?}"),
    }
    // From another address it does: the account is not locked.
    let elsewhere =
        authorize::login(&w.store, &w.signer, &w.sign_in, &req, "ada@example.com", &pw, ip("198.51.100.7"), NOW).await;
    assert!(elsewhere.is_ok(), "{elsewhere:?}");
}

#[tokio::test]
async fn a_blocked_user_cannot_sign_in() {
    let w = world().await;
    let mut blocked = w.user.clone();
    blocked.blocked = true;
    w.store.update_user(&w.user, &blocked).await.unwrap();
    assert!(matches!(sign_in(&w, PASSWORD).await, Err(LoginError::Blocked)));
}

#[tokio::test]
async fn delegation_mints_an_id_token_and_counts_the_limit_per_token_and_address() {
    let w = world().await;
    let token = refresh_token(&w).await;
    for remaining in [2, 1, 0] {
        let d = delegate(&w, &token, DelegationScope::OpenId, "198.51.100.7").await.unwrap();
        assert_eq!(d.expires_in, 600, "exactly exp - iat");
        assert_eq!(d.rate.remaining, remaining);
        let id = w.signer.last();
        assert_eq!((id.exp - id.iat, id.nonce.as_deref(), id.name.as_deref()), (600, None, None));
    }
    match delegate(&w, &token, DelegationScope::OpenId, "198.51.100.7").await {
        Err(DelegationError::RateLimited(s)) => {
            assert_eq!((s.limit, s.remaining, s.retry_after.is_some()), (3, 0, true))
        }
        other => panic!("rate limited, got {other:?}"),
    }
    // Another address has its own count.
    assert!(delegate(&w, &token, DelegationScope::OpenId, "198.51.100.8").await.is_ok());
    let stored = w.store.get_credential(token.id()).await.unwrap().unwrap();
    assert_eq!((stored.use_count, stored.last_ip.as_deref()), (4, Some("198.51.100.8")));
}

#[tokio::test]
async fn delegation_adds_only_the_claims_the_grant_includes() {
    let w = world().await;
    let token = refresh_token(&w).await;
    delegate(&w, &token, DelegationScope::Passthrough, "198.51.100.7").await.unwrap();
    let id = w.signer.last();
    assert_eq!((id.name.as_deref(), id.email.as_deref()), (Some("Ada Lovelace"), None));
    delegate(&w, &token, DelegationScope::Claims { profile: false, email: true }, "198.51.100.7").await.unwrap();
    assert_eq!(w.signer.last().email, None, "email was never granted");
}

#[tokio::test]
async fn delegation_refuses_revoked_foreign_and_outdated_tokens() {
    let w = world().await;
    let token = refresh_token(&w).await;
    let invalid = |r: Result<delegation::Delegated, DelegationError>| matches!(r, Err(DelegationError::InvalidGrant(m)) if m == delegation::INVALID_REFRESH_TOKEN);

    // Issued to another client.
    let other = Client { id: ClientId::generate(), ..w.client.clone() };
    w.store.create_client(&other).await.unwrap();
    let mut req = delegation_request(&w, &token, DelegationScope::OpenId);
    req.client_id = other.id.clone();
    let r = delegation::delegate(&w.store, &w.signer, &w.delegation, &req, ip("198.51.100.7"), NOW).await;
    assert!(matches!(r, Err(DelegationError::InvalidGrant(m)) if m.contains("not issued to this client")));

    // A client without the jwt-bearer grant.
    let mut narrow = w.client.clone();
    narrow.grant_types = vec![GRANT_IMPLICIT.into()];
    w.store.update_client(&narrow).await.unwrap();
    assert!(matches!(
        delegate(&w, &token, DelegationScope::OpenId, "198.51.100.7").await,
        Err(DelegationError::UnauthorizedClient)
    ));
    w.store.update_client(&w.client).await.unwrap();

    // A password change (a new revision) kills it; so does revocation.
    let second = refresh_token(&w).await;
    let current = w.store.get_user(&w.user.id).await.unwrap().unwrap();
    let mut changed = current.clone();
    changed.rev += 1;
    w.store.update_user(&current, &changed).await.unwrap();
    assert!(invalid(delegate(&w, &token, DelegationScope::OpenId, "198.51.100.7").await));
    assert!(w.store.revoke_credential(second.id()).await.unwrap());
    assert!(invalid(delegate(&w, &second, DelegationScope::OpenId, "198.51.100.7").await));

    // A deleted client's tokens are refused.
    w.store.delete_client(&w.client.id).await.unwrap();
    assert!(matches!(
        delegate(&w, &token, DelegationScope::OpenId, "198.51.100.7").await,
        Err(DelegationError::InvalidClient)
    ));
    let all = CredentialFilter::User { user: w.user.id.clone(), client: None };
    assert_eq!(w.store.list_credentials(&all, PageRequest { page: 0, per_page: 10 }).await.unwrap().len(), 1);
}

// ---------------------------------------------------------------- the Management API

fn admin(scopes: &[&str]) -> Principal {
    Principal { client_id: ClientId::generate(), scopes: scopes.iter().copied().collect() }
}

fn first_page(with_total: bool) -> Paging {
    Paging { page: PageRequest { page: 0, per_page: 50 }, with_total }
}

#[tokio::test]
async fn every_management_use_case_checks_its_scope() {
    let w = world().await;
    let nobody = admin(&["read:clients"]);
    let q = users::UserQuery { search: None, paging: first_page(false) };
    assert!(
        matches!(users::list(&w.store, &nobody, q).await, Err(MgmtError::InsufficientScope(s)) if s == users::READ)
    );
    assert!(matches!(users::delete(&w.store, &nobody, &w.user.id).await, Err(MgmtError::InsufficientScope(_))));
    let token = refresh_token(&w).await;
    assert!(matches!(
        device_credentials::delete(&w.store, &nobody, token.id()).await,
        Err(MgmtError::InsufficientScope(_))
    ));
    assert!(w.store.get_user(&w.user.id).await.unwrap().is_some(), "nothing was changed");
    assert!(w.store.get_credential(token.id()).await.unwrap().is_some());
}

#[tokio::test]
async fn a_password_change_revokes_every_refresh_token_of_the_user() {
    let w = world().await;
    let who = admin(management::SCOPES);
    let (a, b) = (refresh_token(&w).await, refresh_token(&w).await);
    assert!(delegate(&w, &a, DelegationScope::OpenId, "198.51.100.7").await.is_ok());
    let patch = users::UserPatch { password: Some(SecretString::from("New-password-42")), ..Default::default() };
    let updated = users::update(&w.store, &who, &w.user.id, patch, NOW).await.unwrap();
    assert_eq!(updated.rev, 1);
    for t in [&a, &b] {
        assert!(matches!(
            delegate(&w, t, DelegationScope::OpenId, "198.51.100.7").await,
            Err(DelegationError::InvalidGrant(m)) if m == delegation::INVALID_REFRESH_TOKEN
        ));
        assert_eq!(w.store.get_credential(t.id()).await.unwrap(), None, "purged");
    }
    // A weak password is refused and changes nothing.
    let weak = users::UserPatch { password: Some(SecretString::from("short")), ..Default::default() };
    assert!(matches!(users::update(&w.store, &who, &w.user.id, weak, NOW).await, Err(MgmtError::PasswordPolicy(_))));
    assert_eq!(w.store.get_user(&w.user.id).await.unwrap().unwrap().rev, 1);
}

#[tokio::test]
async fn users_are_created_once_per_email_and_deleted_with_their_tokens() {
    let w = world().await;
    let who = admin(management::SCOPES);
    let new = |email: &str| users::NewUser {
        email: Email::parse(email).unwrap(),
        password: SecretString::from("Another-pass-7"),
        name: None,
        nickname: None,
        email_verified: false,
        blocked: false,
        admin: false,
    };
    let grace = users::create(&w.store, &who, new("grace@example.com"), NOW).await.unwrap();
    assert_eq!((grace.name.as_str(), grace.nickname.as_str()), ("grace@example.com", "grace"));
    assert!(matches!(
        users::create(&w.store, &who, new("grace@example.com"), NOW).await,
        Err(MgmtError::Conflict(Conflict::UserExists))
    ));
    let taken = users::UserPatch { email: Some(w.user.email.clone()), ..Default::default() };
    assert!(matches!(
        users::update(&w.store, &who, &grace.id, taken, NOW).await,
        Err(MgmtError::Conflict(Conflict::EmailTaken))
    ));
    let search = users::UserQuery { search: Some(users::UserSearch::Prefix("gr".into())), paging: first_page(true) };
    let page = users::list(&w.store, &who, search).await.unwrap();
    assert_eq!((page.items.len(), page.total), (1, Some(1)));

    let token = refresh_token(&w).await;
    users::delete(&w.store, &who, &w.user.id).await.unwrap();
    assert!(matches!(users::get(&w.store, &who, &w.user.id).await, Err(MgmtError::NotFound(Entity::User))));
    assert_eq!(w.store.get_credential(token.id()).await.unwrap(), None);
    // Deleting again is done, too.
    users::delete(&w.store, &who, &w.user.id).await.unwrap();
}

#[tokio::test]
async fn clients_get_a_secret_only_when_confidential_and_take_their_tokens_with_them() {
    let w = world().await;
    let who = admin(management::SCOPES);
    let spec = |app_type, scopes: Option<Vec<String>>| clients::ClientSpec {
        management_scopes: scopes,
        ..clients::ClientSpec::new("Backend", app_type)
    };
    let web = clients::create(&w.store, &who, spec(AppType::RegularWeb, None), &SigningAlg::ALL, NOW).await.unwrap();
    let secret = web.secret.as_ref().map(|s| secrecy::ExposeSecret::expose_secret(s).to_owned()).unwrap();
    assert_eq!(web.client.secret_hash, Some(rt_domain::token::SecretHash::of(secret.as_bytes())), "stored as a hash");
    assert_eq!(web.client.token_endpoint_auth_method, TokenEndpointAuthMethod::ClientSecretPost);
    let native = clients::create(&w.store, &who, spec(AppType::Native, None), &SigningAlg::ALL, NOW).await.unwrap();
    assert!(native.secret.is_none() && native.client.secret_hash.is_none());
    assert_eq!(native.client.token_endpoint_auth_method, TokenEndpointAuthMethod::None);
    let basic = clients::ClientSpec {
        token_endpoint_auth_method: Some(TokenEndpointAuthMethod::ClientSecretBasic),
        ..spec(AppType::Native, None)
    };
    assert!(matches!(
        clients::create(&w.store, &who, basic, &SigningAlg::ALL, NOW).await,
        Err(MgmtError::Invalid(Invalid::AuthMethod(TokenEndpointAuthMethod::ClientSecretBasic)))
    ));
    let scoped = spec(AppType::Native, Some(vec!["read:users".into()]));
    assert!(matches!(
        clients::create(&w.store, &who, scoped, &SigningAlg::ALL, NOW).await,
        Err(MgmtError::Invalid(Invalid::ScopesNeedMachineToMachine))
    ));
    let missing = ClientId::generate();
    assert!(matches!(
        clients::update(&w.store, &who, &missing, clients::ClientPatch::default(), &SigningAlg::ALL).await,
        Err(MgmtError::NotFound(Entity::Client))
    ));

    // Refresh-token settings: stored, merged field by field, checked on the result.
    let id = &native.client.id;
    assert_eq!(native.client.refresh_token, RefreshTokenPolicy::default(), "non-rotating, never expiring");
    let rt = |p: clients::RefreshTokenPatch| clients::ClientPatch { refresh_token: Some(p), ..Default::default() };
    let rotate = clients::RefreshTokenPatch { rotation_type: Some(RotationType::Rotating), ..Default::default() };
    assert!(matches!(
        clients::update(&w.store, &who, id, rt(rotate), &SigningAlg::ALL).await,
        Err(MgmtError::Invalid(Invalid::RotationNeedsExpiration))
    ));
    let rotating =
        clients::RefreshTokenPatch { expiration_type: Some(ExpirationType::Expiring), leeway: Some(5), ..rotate };
    clients::update(&w.store, &who, id, rt(rotating), &SigningAlg::ALL).await.unwrap();
    let stored = clients::get(&w.store, &who, id).await.unwrap().refresh_token;
    assert!(stored.rotating() && stored.leeway == 5);
    assert_eq!(stored.token_lifetime, RefreshTokenPolicy::default().token_lifetime, "untouched fields kept");

    let token = refresh_token(&w).await;
    let q = device_credentials::CredentialQuery {
        filter: CredentialFilter::Client(w.client.id.clone()),
        paging: first_page(true),
    };
    assert_eq!(device_credentials::list(&w.store, &who, q.clone(), NOW).await.unwrap().total, Some(1));
    clients::delete(&w.store, &who, &w.client.id).await.unwrap();
    assert!(matches!(
        delegate(&w, &token, DelegationScope::OpenId, "198.51.100.7").await,
        Err(DelegationError::InvalidClient)
    ));
    assert_eq!(device_credentials::list(&w.store, &who, q, NOW).await.unwrap().total, Some(0), "purged");
}

#[tokio::test]
async fn one_refresh_token_is_revoked_by_id() {
    let w = world().await;
    let who = admin(management::SCOPES);
    let (keep, revoke) = (refresh_token(&w).await, refresh_token(&w).await);
    device_credentials::delete(&w.store, &who, revoke.id()).await.unwrap();
    assert!(matches!(
        device_credentials::delete(&w.store, &who, revoke.id()).await,
        Err(MgmtError::NotFound(Entity::DeviceCredential))
    ));
    assert!(delegate(&w, &keep, DelegationScope::OpenId, "198.51.100.7").await.is_ok());
    assert!(delegate(&w, &revoke, DelegationScope::OpenId, "198.51.100.7").await.is_err());
    assert_eq!(w.store.get_user(&w.user.id).await.unwrap().unwrap().live_devices, 1, "the device still has one");
}

// ---------------------------------------------------------------- the refresh grant

#[tokio::test]
async fn a_rotating_clients_refresh_tokens_rotate_and_die_on_reuse() {
    use rt_domain::client::RotationType;
    use rt_domain::oauth_token::{self, ClientAuth, RefreshRequest, RefreshSettings, TokenError};
    let w = world().await;
    let mut client = w.client.clone();
    client.refresh_token.rotation_type = RotationType::Rotating;
    w.store.update_client(&client).await.unwrap();
    let t0 = refresh_token(&w).await;
    assert_eq!(t0.generation(), Some(0), "a rotating client's sign-in starts a family");
    let settings =
        RefreshSettings { exchange: &w.delegation, access_token_lifetime_secs: 3600, keys: &w.sign_in.rotation_keys };
    let auth = ClientAuth {
        client_id: w.client.id.to_string(),
        client_secret: None,
        method: rt_domain::client::TokenEndpointAuthMethod::None,
    };
    let refresh = |t: &RefreshToken| {
        let token = RefreshToken::parse(&t.expose_str()).unwrap();
        oauth_token::refresh(
            &w.store,
            &w.signer,
            &settings,
            &auth,
            RefreshRequest { token, scope: None },
            ip("198.51.100.7"),
            NOW,
        )
    };
    let first = refresh(&t0).await.unwrap();
    let t1 = RefreshToken::parse(secrecy::ExposeSecret::expose_secret(first.refresh_token.as_ref().unwrap())).unwrap();
    assert_eq!((t1.id(), t1.generation()), (t0.id(), Some(1)));
    assert_eq!(first.expires_in, 3600);
    assert!(first.id_token.is_some() && w.signer.last().nonce.is_none());
    // A retry gets the very same successor.
    let again = refresh(&t0).await.unwrap();
    assert_eq!(again.refresh_token.map(|s| secrecy::ExposeSecret::expose_secret(&s).to_owned()), Some(t1.expose_str()));
    let t2 = t1.successor(&w.sign_in.rotation_keys).unwrap();
    refresh(&t1).await.unwrap();
    // Reuse of the first member: refused, and the whole family with it.
    let reused = refresh(&t0).await;
    assert!(matches!(&reused, Err(TokenError::ReuseDetected)), "{reused:?}");
    assert_eq!(reused.err().map(|e| e.to_string()).as_deref(), Some(delegation::INVALID_REFRESH_TOKEN));
    assert!(matches!(refresh(&t2).await, Err(TokenError::InvalidGrant(_))));
    assert_eq!(w.store.get_credential(t0.id()).await.unwrap(), None);
}

// ---------------------------------------------------------------- the code flow

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// A public client of the code flow, and a code for Ada (PKCE, no `device`: named from the
/// User-Agent).
async fn code_for(w: &World) -> (Client, String) {
    let spa = Client {
        callbacks: vec![CALLBACK.into()],
        grant_types: [rt_domain::client::GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN].map(String::from).to_vec(),
        ..Client::new(ClientId::generate(), "SPA", AppType::Spa, NOW)
    };
    assert!(w.store.create_client(&spa).await.unwrap());
    let challenge = rt_domain::code::Challenge::of(VERIFIER);
    let p = authorize::AuthorizeParams {
        client_id: Some(spa.id.as_str()),
        redirect_uri: Some(CALLBACK),
        response_type: Some("code"),
        scope: Some("openid offline_access email"),
        nonce: Some("n-1"),
        code_challenge: Some(challenge.as_str()),
        code_challenge_method: Some("S256"),
        user_agent: Some("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Safari/604.1"),
        ..Default::default()
    };
    let req = authorize::validate(&w.store, &p).await.unwrap();
    assert_eq!(req.device.as_ref().map(|d| d.as_str()), Some("Safari on iOS"));
    let password = SecretString::from(PASSWORD);
    let ok =
        authorize::login(&w.store, &w.signer, &w.sign_in, &req, "ada@example.com", &password, ip("203.0.113.1"), NOW)
            .await
            .unwrap();
    assert!(ok.access_token.is_none() && ok.id_token.is_none() && ok.refresh_token.is_none(), "a code only");
    (spa, ok.code.unwrap().expose().to_owned())
}

#[tokio::test]
async fn a_code_is_redeemed_once_with_its_verifier_and_a_second_redemption_revokes_its_token() {
    use rt_domain::oauth_token::{self, ClientAuth, CodeRequest, RefreshSettings, TokenError};
    let w = world().await;
    let (spa, code) = code_for(&w).await;
    let settings =
        RefreshSettings { exchange: &w.delegation, access_token_lifetime_secs: 3600, keys: &w.sign_in.rotation_keys };
    let auth = ClientAuth { client_id: spa.id.to_string(), client_secret: None, method: TokenEndpointAuthMethod::None };
    let redeem = |verifier: &'static str, at: Timestamp| {
        let req = CodeRequest { code: &code, redirect_uri: Some(CALLBACK), code_verifier: Some(verifier) };
        oauth_token::authorization_code(&w.store, &w.signer, &settings, &auth, req, at)
    };
    assert!(matches!(
        redeem("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl", NOW).await,
        Err(TokenError::InvalidGrant(oauth_token::VERIFIER_MISMATCH))
    ));
    let granted = redeem(VERIFIER, NOW.plus_secs(1)).await.unwrap();
    assert_eq!(granted.scope.to_string(), "email offline_access openid");
    assert_eq!(w.signer.last().nonce.as_deref(), Some("n-1"));
    assert_eq!(w.signer.last().email.as_deref(), Some("ada@example.com"));
    let id = rt_domain::ids::DeviceCredentialId::parse(granted.credential_id.as_deref().unwrap()).unwrap();
    assert_eq!(w.store.get_credential(&id).await.unwrap().unwrap().device_name.as_str(), "Safari on iOS");
    assert!(matches!(
        redeem(VERIFIER, NOW.plus_secs(2)).await,
        Err(TokenError::InvalidGrant(oauth_token::INVALID_CODE))
    ));
    assert!(w.store.get_credential(&id).await.unwrap().is_none(), "the first redemption's token is revoked");
}

#[tokio::test]
async fn a_code_expires_and_belongs_to_its_client() {
    use rt_domain::oauth_token::{self, ClientAuth, CodeRequest, RefreshSettings, TokenError};
    let w = world().await;
    let (spa, code) = code_for(&w).await;
    let settings =
        RefreshSettings { exchange: &w.delegation, access_token_lifetime_secs: 3600, keys: &w.sign_in.rotation_keys };
    let req = CodeRequest { code: &code, redirect_uri: Some(CALLBACK), code_verifier: Some(VERIFIER) };
    let other =
        ClientAuth { client_id: w.client.id.to_string(), client_secret: None, method: TokenEndpointAuthMethod::None };
    assert!(matches!(
        oauth_token::authorization_code(&w.store, &w.signer, &settings, &other, req, NOW).await,
        Err(TokenError::UnauthorizedClient(_))
    ));
    let auth = ClientAuth { client_id: spa.id.to_string(), client_secret: None, method: TokenEndpointAuthMethod::None };
    let late = NOW.plus_secs(rt_domain::code::CODE_LIFETIME_SECS);
    assert!(matches!(
        oauth_token::authorization_code(&w.store, &w.signer, &settings, &auth, req, late).await,
        Err(TokenError::InvalidGrant(oauth_token::INVALID_CODE))
    ));
    let secret = ClientAuth {
        client_id: spa.id.to_string(),
        client_secret: Some("guess".to_owned().into()),
        method: TokenEndpointAuthMethod::ClientSecretPost,
    };
    assert!(matches!(
        oauth_token::authorization_code(&w.store, &w.signer, &settings, &secret, req, NOW).await,
        Err(TokenError::InvalidClient)
    ));
}

//! Applications. The secret of a confidential client is shown once, when it is created, and
//! stored only as a hash. Deleting a client revokes its refresh tokens.

use secrecy::SecretString;

use super::{Conflict, Entity, Invalid, MgmtError, PURGE_BUDGET, Page, Paging, Principal, SCOPES};
use crate::client::{
    AppType, Client, DEFAULT_ID_TOKEN_LIFETIME_SECS, GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS,
    GRANT_IMPLICIT, GRANT_JWT_BEARER, GRANT_REFRESH_TOKEN, ID_TOKEN_LIFETIME_RANGE,
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
}

/// A new client: a name and a type (fixed for life); unset settings take the defaults of the
/// type (no callbacks or origins, the type's grants, a 36 000 s id_token, no scopes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSpec {
    pub name: String,
    pub app_type: AppType,
    pub callbacks: Option<Vec<String>>,
    pub web_origins: Option<Vec<String>>,
    pub grant_types: Option<Vec<String>>,
    pub id_token_lifetime_secs: Option<u32>,
    pub management_scopes: Option<Vec<String>>,
}

/// A created client and, for a confidential one, its secret: shown this once, stored only as
/// a hash.
#[derive(Debug)]
pub struct CreatedClient {
    pub client: Client,
    pub secret: Option<SecretString>,
}

fn confidential(t: AppType) -> bool {
    matches!(t, AppType::RegularWeb | AppType::NonInteractive)
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

/// Applies `patch` to `c`, checking each setting in turn.
fn apply(c: &mut Client, patch: ClientPatch) -> Result<(), Invalid> {
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
pub async fn create<S: ClientStore>(
    store: &S,
    who: &Principal,
    spec: ClientSpec,
    now: Timestamp,
) -> Result<CreatedClient, MgmtError> {
    who.require(CREATE)?;
    let app_type = spec.app_type;
    let secret = confidential(app_type).then(|| random::alphanumeric(64));
    let mut client = Client {
        id: ClientId::generate(),
        name: String::new(),
        app_type,
        callbacks: vec![],
        web_origins: vec![],
        grant_types: default_grants(app_type),
        id_token_lifetime_secs: DEFAULT_ID_TOKEN_LIFETIME_SECS,
        secret_hash: secret.as_deref().map(|s| SecretHash::of(s.as_bytes())),
        management_scopes: vec![],
        created_at: now,
    };
    let settings = ClientPatch {
        name: Some(spec.name),
        callbacks: spec.callbacks,
        web_origins: spec.web_origins,
        grant_types: spec.grant_types,
        id_token_lifetime_secs: spec.id_token_lifetime_secs,
        management_scopes: spec.management_scopes,
    };
    apply(&mut client, settings)?;
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
) -> Result<Client, MgmtError> {
    who.require(UPDATE)?;
    let mut client = store.get_client(id, Freshness::Fresh).await?.ok_or(MgmtError::NotFound(Entity::Client))?;
    apply(&mut client, patch)?;
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
        Client {
            id: ClientId::generate(),
            name: "x".into(),
            app_type,
            callbacks: vec![],
            web_origins: vec![],
            grant_types: default_grants(app_type),
            id_token_lifetime_secs: DEFAULT_ID_TOKEN_LIFETIME_SECS,
            secret_hash: None,
            management_scopes: vec![],
            created_at: Timestamp::from_millis(0),
        }
    }

    #[test]
    fn only_machine_to_machine_clients_hold_management_scopes() {
        let scopes = || ClientPatch { management_scopes: Some(vec!["read:users".into()]), ..Default::default() };
        assert_eq!(apply(&mut client(AppType::Native), scopes()), Err(Invalid::ScopesNeedMachineToMachine));
        let mut m2m = client(AppType::NonInteractive);
        assert_eq!(apply(&mut m2m, scopes()), Ok(()));
        assert_eq!(m2m.management_scopes, ["read:users"]);
        let unknown = ClientPatch { management_scopes: Some(vec!["root".into()]), ..Default::default() };
        assert_eq!(apply(&mut m2m, unknown), Err(Invalid::UnknownScope("root".into())));
    }

    #[test]
    fn settings_are_checked_in_turn() {
        let mut c = client(AppType::Spa);
        let p = ClientPatch { name: Some(" ".into()), callbacks: Some(vec!["bad".into()]), ..Default::default() };
        assert_eq!(apply(&mut c, p), Err(Invalid::EmptyName));
        let p = ClientPatch { id_token_lifetime_secs: Some(5), ..Default::default() };
        assert_eq!(apply(&mut c, p), Err(Invalid::IdTokenLifetime));
        let p = ClientPatch { grant_types: Some(vec!["password".into()]), ..Default::default() };
        assert_eq!(apply(&mut c, p), Err(Invalid::GrantType("password".into())));
    }
}

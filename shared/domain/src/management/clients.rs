//! `/api/v2/clients`: applications. The secret of a confidential client is shown once, when
//! it is created, and stored only as a hash. Deleting a client revokes its refresh tokens.

use serde_json::{Map, Value, json};

use super::{
    Fields, MgmtError, PURGE_BUDGET, Principal, SCOPES, body_object, only_known, opt_string, opt_strings, paged,
    parse_bool, parse_page, path_param, select,
};
use crate::client::{
    AppType, Client, DEFAULT_ID_TOKEN_LIFETIME_SECS, GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS,
    GRANT_IMPLICIT, GRANT_JWT_BEARER, GRANT_REFRESH_TOKEN, ID_TOKEN_LIFETIME_RANGE,
};
use crate::clock::Timestamp;
use crate::ids::ClientId;
use crate::params::Params;
use crate::ports::{ClientStore, CredentialStore};
use crate::random;
use crate::token::SecretHash;

pub const FIELDS: &[&str] = &[
    "client_id",
    "name",
    "app_type",
    "callbacks",
    "allowed_origins",
    "web_origins",
    "grant_types",
    "jwt_configuration",
    "token_endpoint_auth_method",
    "is_first_party",
    "management_scopes",
    "created_at",
];
pub const READ: &[&str] = &["read:clients"];
pub const CREATE: &[&str] = &["create:clients"];
pub const UPDATE: &[&str] = &["update:clients"];
pub const DELETE: &[&str] = &["delete:clients"];
pub const GRANTS: &[&str] =
    &[GRANT_IMPLICIT, GRANT_REFRESH_TOKEN, GRANT_JWT_BEARER, GRANT_CLIENT_CREDENTIALS, GRANT_AUTHORIZATION_CODE];
const WRITABLE: &[&str] = &[
    "name",
    "app_type",
    "callbacks",
    "allowed_origins",
    "web_origins",
    "grant_types",
    "jwt_configuration",
    "management_scopes",
];

fn confidential(t: AppType) -> bool {
    matches!(t, AppType::RegularWeb | AppType::NonInteractive)
}

/// Auth0's client object (`management_scopes` is this service's way to grant an m2m client
/// Management API scopes; Auth0 uses client grants).
pub fn view(c: &Client) -> Value {
    json!({
        "client_id": c.id.as_str(),
        "name": c.name,
        "app_type": c.app_type.as_str(),
        "callbacks": c.callbacks,
        "allowed_origins": c.web_origins,
        "web_origins": c.web_origins,
        "grant_types": c.grant_types,
        "jwt_configuration": {"alg": "RS256", "lifetime_in_seconds": c.id_token_lifetime_secs},
        "token_endpoint_auth_method": if c.secret_hash.is_some() { "client_secret_post" } else { "none" },
        "is_first_party": true,
        "management_scopes": c.management_scopes,
        "created_at": c.created_at.to_rfc3339(),
    })
}

fn not_found() -> MgmtError {
    MgmtError::not_found("The client does not exist", "inexistent_client")
}

fn parse_id(raw: &str) -> Result<ClientId, MgmtError> {
    ClientId::parse(&path_param(raw)?).map_err(|_| not_found())
}

/// Callback URLs: absolute, no fragment (RFC 6749 §3.1.2), matched exactly at `/authorize`.
fn check_callbacks(v: &[String]) -> Result<(), MgmtError> {
    for c in v {
        let ok = match c.split_once("://") {
            Some((scheme, rest)) => {
                !scheme.is_empty()
                    && scheme.chars().all(|ch| ch.is_ascii_alphanumeric() || "+-.".contains(ch))
                    && !rest.is_empty()
                    && !c.contains('#')
                    && !c.contains(char::is_whitespace)
            }
            None => false,
        };
        if !ok {
            return Err(MgmtError::bad_request(format!("Payload validation error: invalid callback URL '{c}'")));
        }
    }
    Ok(())
}

/// Origins: `scheme://host[:port]`, nothing after.
fn check_origins(v: &[String]) -> Result<(), MgmtError> {
    for o in v {
        let ok = match o.split_once("://") {
            Some((scheme, host)) => {
                (scheme == "https" || scheme == "http")
                    && !host.is_empty()
                    && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
            }
            None => false,
        };
        if !ok {
            return Err(MgmtError::bad_request(format!(
                "Payload validation error: invalid origin '{o}' (scheme://host[:port])"
            )));
        }
    }
    Ok(())
}

fn apply(c: &mut Client, m: &Map<String, Value>) -> Result<(), MgmtError> {
    if let Some(name) = opt_string(m, "name", 128)? {
        if name.trim().is_empty() {
            return Err(MgmtError::bad_request("Payload validation error: 'name' must not be empty"));
        }
        c.name = name;
    }
    if let Some(cb) = opt_strings(m, "callbacks", 100)? {
        check_callbacks(&cb)?;
        c.callbacks = cb;
    }
    for key in ["web_origins", "allowed_origins"] {
        if let Some(o) = opt_strings(m, key, 100)? {
            check_origins(&o)?;
            c.web_origins = o;
        }
    }
    if let Some(g) = opt_strings(m, "grant_types", 10)? {
        if let Some(bad) = g.iter().find(|x| !GRANTS.contains(&x.as_str())) {
            return Err(MgmtError::bad_request(format!("Payload validation error: unsupported grant type '{bad}'")));
        }
        c.grant_types = g;
    }
    match m.get("jwt_configuration") {
        None | Some(Value::Null) => {}
        Some(Value::Object(j)) => {
            only_known(j, &["lifetime_in_seconds", "alg"])?;
            if let Some(alg) = opt_string(j, "alg", 16)?
                && alg != "RS256"
            {
                return Err(MgmtError::bad_request("Payload validation error: only RS256 is supported"));
            }
            match j.get("lifetime_in_seconds") {
                None | Some(Value::Null) => {}
                Some(v) => {
                    let n =
                        v.as_u64().and_then(|n| u32::try_from(n).ok()).filter(|n| ID_TOKEN_LIFETIME_RANGE.contains(n));
                    c.id_token_lifetime_secs = n.ok_or_else(|| {
                        MgmtError::bad_request(format!(
                            "Payload validation error: 'lifetime_in_seconds' must be in {ID_TOKEN_LIFETIME_RANGE:?}"
                        ))
                    })?;
                }
            }
        }
        Some(_) => {
            return Err(MgmtError::bad_request("Payload validation error: 'jwt_configuration' must be an object"));
        }
    }
    if let Some(s) = opt_strings(m, "management_scopes", SCOPES.len())? {
        if let Some(bad) = s.iter().find(|x| !SCOPES.contains(&x.as_str())) {
            return Err(MgmtError::bad_request(format!(
                "Payload validation error: unknown Management API scope '{bad}'"
            )));
        }
        if !s.is_empty() && c.app_type != AppType::NonInteractive {
            return Err(MgmtError::bad_request(
                "Only machine-to-machine (non_interactive) clients may hold Management API scopes",
            ));
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

pub async fn list<S: ClientStore>(store: &S, who: &Principal, p: &Params) -> Result<Value, MgmtError> {
    who.require(READ)?;
    let page = parse_page(p)?;
    let totals = parse_bool(p, "include_totals")?.unwrap_or(false);
    let fields = Fields::parse(p, FIELDS)?;
    let items = store.list_clients(page).await?;
    let total = if totals { Some(store.count_clients().await?) } else { None };
    Ok(paged("clients", items.iter().map(|c| select(&fields, view(c))).collect(), page, total))
}

pub async fn get<S: ClientStore>(store: &S, who: &Principal, raw_id: &str, p: &Params) -> Result<Value, MgmtError> {
    who.require(READ)?;
    let fields = Fields::parse(p, FIELDS)?;
    let id = parse_id(raw_id)?;
    let c = store.get_client(&id, crate::ports::Freshness::Fresh).await?.ok_or_else(not_found)?;
    Ok(select(&fields, view(&c)))
}

/// Creates a client; the answer carries `client_secret` for confidential clients, once.
pub async fn create<S: ClientStore>(
    store: &S,
    who: &Principal,
    body: Value,
    now: Timestamp,
) -> Result<Value, MgmtError> {
    who.require(CREATE)?;
    let m = body_object(body)?;
    only_known(&m, WRITABLE)?;
    if opt_string(&m, "name", 128)?.is_none() {
        return Err(MgmtError::bad_request("Payload validation error: Missing required property: name"));
    }
    let app_type = match opt_string(&m, "app_type", 32)? {
        None => AppType::RegularWeb,
        Some(t) => AppType::parse(&t).ok_or_else(|| {
            MgmtError::bad_request(
                "Payload validation error: app_type must be native, spa, regular_web or non_interactive",
            )
        })?,
    };
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
    apply(&mut client, &m)?;
    if !store.create_client(&client).await? {
        return Err(MgmtError::conflict("A client with this id already exists", "client_conflict"));
    }
    let mut v = view(&client);
    if let (Some(s), Value::Object(o)) = (secret, &mut v) {
        o.insert("client_secret".into(), s.into());
    }
    Ok(v)
}

pub async fn update<S: ClientStore>(store: &S, who: &Principal, raw_id: &str, body: Value) -> Result<Value, MgmtError> {
    who.require(UPDATE)?;
    let id = parse_id(raw_id)?;
    let m = body_object(body)?;
    only_known(&m, WRITABLE)?;
    if m.contains_key("app_type") {
        return Err(MgmtError::bad_request("app_type cannot be changed; create a new client"));
    }
    let mut client = store.get_client(&id, crate::ports::Freshness::Fresh).await?.ok_or_else(not_found)?;
    apply(&mut client, &m)?;
    if store.update_client(&client).await? { Ok(view(&client)) } else { Err(not_found()) }
}

/// Deletes the client (204 even when absent) and revokes all of its refresh tokens.
pub async fn delete<S: ClientStore + CredentialStore>(
    store: &S,
    who: &Principal,
    raw_id: &str,
) -> Result<(), MgmtError> {
    who.require(DELETE)?;
    let Ok(id) = ClientId::parse(&path_param(raw_id)?) else { return Ok(()) };
    store.delete_client(&id).await?;
    let purge = store.purge_client_credentials(&id, PURGE_BUDGET).await?;
    tracing::info!(client = %id, deleted = purge.deleted, complete = purge.complete, "client deleted");
    Ok(())
}

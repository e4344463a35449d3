//! `/api/v2/clients`: Auth0's client object and the bodies of `POST` and `PATCH`.

use lambda_http::Request;
use rt_domain::client::{
    AppType, Client, ExpirationType, RefreshTokenPolicy, RotationType, SigningAlg, TokenEndpointAuthMethod,
};
use rt_domain::clock::Timestamp;
use rt_domain::ids::ClientId;
use rt_domain::management::clients::{self, ClientPatch, ClientSpec, RefreshTokenPatch};
use rt_domain::management::{Entity, Invalid, MgmtError, Principal, SCOPES};
use rt_domain::ports::{ClientStore, CredentialStore};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use super::body::Object;
use super::error::{ApiError, lifetime_message, payload};
use super::listing::{Fields, paged, parse_paging, select};
use super::{Reply, decode, json_body, path, query};

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
    "allowed_logout_urls",
    "refresh_token",
    "is_first_party",
    "management_scopes",
    "created_at",
];
const WRITABLE: &[&str] = &[
    "name",
    "app_type",
    "callbacks",
    "allowed_origins",
    "web_origins",
    "grant_types",
    "jwt_configuration",
    "token_endpoint_auth_method",
    "allowed_logout_urls",
    "refresh_token",
    "management_scopes",
];
/// The properties of Auth0's `refresh_token` client object (not its MRRT `policies`).
const REFRESH_TOKEN: &[&str] = &[
    "rotation_type",
    "expiration_type",
    "leeway",
    "token_lifetime",
    "infinite_token_lifetime",
    "idle_token_lifetime",
    "infinite_idle_token_lifetime",
];

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
        "jwt_configuration": {"alg": c.signing_alg.as_str(), "lifetime_in_seconds": c.id_token_lifetime_secs},
        "token_endpoint_auth_method": c.token_endpoint_auth_method.as_str(),
        "allowed_logout_urls": c.allowed_logout_urls,
        "refresh_token": refresh_token_view(&c.refresh_token),
        "is_first_party": true,
        "management_scopes": c.management_scopes,
        "created_at": c.created_at.to_rfc3339(),
    })
}

/// Auth0's `refresh_token` object: every property, always.
fn refresh_token_view(p: &RefreshTokenPolicy) -> Value {
    json!({
        "rotation_type": p.rotation_type.as_str(),
        "expiration_type": p.expiration_type.as_str(),
        "leeway": p.leeway,
        "token_lifetime": p.token_lifetime,
        "infinite_token_lifetime": p.infinite_token_lifetime,
        "idle_token_lifetime": p.idle_token_lifetime,
        "infinite_idle_token_lifetime": p.infinite_idle_token_lifetime,
    })
}

/// A whole number of seconds; anything else is refused as the domain refuses an out-of-range
/// value (`invalid`), so that both say the same.
fn seconds(o: &Object, name: &str, invalid: Invalid) -> Result<Option<u32>, ApiError> {
    match o.get(name) {
        None => Ok(None),
        Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) => Ok(Some(n)),
            None => Err(MgmtError::from(invalid).into()),
        },
    }
}

/// `refresh_token`: any subset of its properties, merged into the client's (Auth0 requires
/// `rotation_type` and `expiration_type`; this service takes either alone too).
fn refresh_token(o: &Object) -> Result<Option<RefreshTokenPatch>, ApiError> {
    let Some(r) = o.object("refresh_token", REFRESH_TOKEN)? else { return Ok(None) };
    let rotation_type = match r.string("rotation_type", 32)? {
        None => None,
        Some(t) => Some(
            RotationType::parse(&t)
                .ok_or_else(|| payload("'refresh_token.rotation_type' must be rotating or non-rotating"))?,
        ),
    };
    let expiration_type = match r.string("expiration_type", 32)? {
        None => None,
        Some(t) => Some(
            ExpirationType::parse(&t)
                .ok_or_else(|| payload("'refresh_token.expiration_type' must be expiring or non-expiring"))?,
        ),
    };
    Ok(Some(RefreshTokenPatch {
        rotation_type,
        expiration_type,
        leeway: seconds(&r, "leeway", Invalid::RefreshTokenLeeway)?,
        token_lifetime: seconds(&r, "token_lifetime", Invalid::RefreshTokenLifetime)?,
        infinite_token_lifetime: r.bool("infinite_token_lifetime")?,
        idle_token_lifetime: seconds(&r, "idle_token_lifetime", Invalid::RefreshTokenIdleLifetime)?,
        infinite_idle_token_lifetime: r.bool("infinite_idle_token_lifetime")?,
    }))
}

/// An id that cannot be a client's names no client.
fn parse_id(raw: &str) -> Result<ClientId, ApiError> {
    ClientId::parse(&decode(raw)?).map_err(|_| MgmtError::NotFound(Entity::Client).into())
}

/// The settings both `POST` and `PATCH` accept. `allowed_origins` and `web_origins` are the
/// same setting here; when both are given, both must be valid and `allowed_origins` wins.
fn settings(o: &Object) -> Result<ClientPatch, ApiError> {
    let name = o.string("name", 128)?;
    let callbacks = o.strings("callbacks", 100)?;
    let web_origins = o.strings("web_origins", 100)?;
    let allowed_origins = o.strings("allowed_origins", 100)?;
    if let (Some(web), Some(_)) = (&web_origins, &allowed_origins)
        && let Some(bad) = web.iter().find(|w| !clients::is_origin(w))
    {
        return Err(MgmtError::from(Invalid::Origin(bad.clone())).into());
    }
    let grant_types = o.strings("grant_types", 10)?;
    let mut id_token_lifetime_secs = None;
    let mut signing_alg = None;
    if let Some(j) = o.object("jwt_configuration", &["lifetime_in_seconds", "alg"])? {
        if let Some(alg) = j.string("alg", 16)? {
            signing_alg = Some(SigningAlg::parse(&alg).ok_or_else(|| {
                payload("'jwt_configuration.alg' must be RS256, PS256, ES256 or EdDSA (and have a signing key)")
            })?);
        }
        if let Some(v) = j.get("lifetime_in_seconds") {
            let secs = v.as_u64().and_then(|n| u32::try_from(n).ok());
            id_token_lifetime_secs = Some(secs.ok_or_else(|| ApiError::Body(lifetime_message().into()))?);
        }
    }
    let token_endpoint_auth_method = match o.string("token_endpoint_auth_method", 32)? {
        None => None,
        Some(m) => Some(TokenEndpointAuthMethod::parse(&m).ok_or_else(|| {
            payload("'token_endpoint_auth_method' must be none, client_secret_post or client_secret_basic")
        })?),
    };
    Ok(ClientPatch {
        name,
        callbacks,
        web_origins: allowed_origins.or(web_origins),
        grant_types,
        id_token_lifetime_secs,
        management_scopes: o.strings("management_scopes", SCOPES.len())?,
        allowed_logout_urls: o.strings("allowed_logout_urls", 100)?,
        token_endpoint_auth_method,
        refresh_token: refresh_token(o)?,
        signing_alg,
    })
}

/// The body of `POST /clients`: a name, a type (default `regular_web`) and any settings.
fn client_spec(body: Value) -> Result<ClientSpec, ApiError> {
    let o = Object::parse(body, WRITABLE)?;
    let name = o.string("name", 128)?.ok_or_else(|| payload("Missing required property: name"))?;
    let app_type = match o.string("app_type", 32)? {
        None => AppType::RegularWeb,
        Some(t) => {
            AppType::parse(&t).ok_or_else(|| payload("app_type must be native, spa, regular_web or non_interactive"))?
        }
    };
    let s = settings(&o)?;
    Ok(ClientSpec {
        callbacks: s.callbacks,
        web_origins: s.web_origins,
        grant_types: s.grant_types,
        id_token_lifetime_secs: s.id_token_lifetime_secs,
        management_scopes: s.management_scopes,
        allowed_logout_urls: s.allowed_logout_urls,
        token_endpoint_auth_method: s.token_endpoint_auth_method,
        refresh_token: s.refresh_token,
        signing_alg: s.signing_alg,
        ..ClientSpec::new(name, app_type)
    })
}

/// The body of `PATCH /clients/{id}`.
fn client_patch(body: Value) -> Result<ClientPatch, ApiError> {
    let o = Object::parse(body, WRITABLE)?;
    if o.contains("app_type") {
        return Err(ApiError::Body("app_type cannot be changed; create a new client".into()));
    }
    settings(&o)
}

/// `GET /clients`
pub async fn list<S: ClientStore>(store: &S, who: Principal, req: &Request) -> Result<Reply, ApiError> {
    let p = query(req)?;
    who.require(clients::READ)?;
    let paging = parse_paging(&p)?;
    let fields = Fields::parse(&p, FIELDS)?;
    let page = clients::list(store, &who, paging).await?;
    Ok(Reply::Json(200, paged("clients", &page, &fields, view)))
}

/// `GET /clients/{id}`
pub async fn get<S: ClientStore>(store: &S, who: Principal, req: &Request) -> Result<Reply, ApiError> {
    let (raw, p) = (path(req, "id")?, query(req)?);
    who.require(clients::READ)?;
    let fields = Fields::parse(&p, FIELDS)?;
    let client = clients::get(store, &who, &parse_id(&raw)?).await?;
    Ok(Reply::Json(200, select(&fields, view(&client))))
}

/// `POST /clients`: the answer carries `client_secret` for a confidential client, this once.
pub async fn create<S: ClientStore>(
    store: &S,
    who: Principal,
    req: &Request,
    configured: &[SigningAlg],
    now: Timestamp,
) -> Result<Reply, ApiError> {
    let body = json_body(req)?;
    who.require(clients::CREATE)?;
    let created = clients::create(store, &who, client_spec(body)?, configured, now).await?;
    let mut v = view(&created.client);
    if let (Some(secret), Value::Object(o)) = (&created.secret, &mut v) {
        o.insert("client_secret".into(), secret.expose_secret().into());
    }
    Ok(Reply::Json(201, v))
}

/// `PATCH /clients/{id}`
pub async fn update<S: ClientStore>(
    store: &S,
    who: Principal,
    req: &Request,
    configured: &[SigningAlg],
) -> Result<Reply, ApiError> {
    let (raw, body) = (path(req, "id")?, json_body(req)?);
    who.require(clients::UPDATE)?;
    let id = parse_id(&raw)?;
    let client = clients::update(store, &who, &id, client_patch(body)?, configured).await?;
    Ok(Reply::Json(200, view(&client)))
}

/// `DELETE /clients/{id}`: 204 even when there is no such client.
pub async fn delete<S: ClientStore + CredentialStore>(
    store: &S,
    who: Principal,
    req: &Request,
) -> Result<Reply, ApiError> {
    let raw = path(req, "id")?;
    who.require(clients::DELETE)?;
    if let Ok(id) = ClientId::parse(&decode(&raw)?) {
        clients::delete(store, &who, &id).await?;
    }
    Ok(Reply::NoContent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        let spec =
            client_spec(json!({"name": "Job", "app_type": "non_interactive", "management_scopes": ["read:users"],
                                       "jwt_configuration": {"lifetime_in_seconds": 600, "alg": "RS256"}}))
            .expect("valid");
        assert_eq!(spec.app_type, AppType::NonInteractive);
        assert_eq!(spec.id_token_lifetime_secs, Some(600));
        assert!(client_spec(json!({"app_type": "native"})).is_err(), "a name is required");
        assert!(client_spec(json!({"name": "x", "app_type": "desktop"})).is_err());
        assert!(client_spec(json!({"name": "x", "jwt_configuration": {"alg": "HS256"}})).is_err());
        assert!(client_spec(json!({"name": "x", "jwt_configuration": {"alg": "es256"}})).is_err());
        assert!(client_spec(json!({"name": "x", "jwt_configuration": {"alg": 256}})).is_err());
        for alg in SigningAlg::ALL {
            let spec = client_spec(json!({"name": "x", "jwt_configuration": {"alg": alg.as_str()}})).expect("valid");
            assert_eq!(spec.signing_alg, Some(alg));
        }
        assert_eq!(
            client_patch(json!({"jwt_configuration": {"lifetime_in_seconds": 60}})).expect("ok").signing_alg,
            None
        );
        assert!(client_spec(json!({"name": "x", "jwt_configuration": {"lifetime_in_seconds": -1}})).is_err());
        assert!(client_patch(json!({"app_type": "spa"})).is_err(), "the type is for life");
        let both =
            client_patch(json!({"web_origins": ["https://a.example"], "allowed_origins": ["https://b.example"]}))
                .expect("valid");
        assert_eq!(both.web_origins, Some(vec!["https://b.example".to_owned()]));
        assert!(client_patch(json!({"web_origins": ["bad"], "allowed_origins": ["https://b.example"]})).is_err());
    }

    #[test]
    fn refresh_token_bodies() {
        let p = client_patch(json!({"refresh_token": {"rotation_type": "rotating"}})).expect("valid");
        assert_eq!(
            p.refresh_token,
            Some(RefreshTokenPatch { rotation_type: Some(RotationType::Rotating), ..Default::default() })
        );
        let p = client_patch(json!({"refresh_token": {"expiration_type": "expiring", "leeway": 0,
            "token_lifetime": 60, "infinite_token_lifetime": false, "idle_token_lifetime": 30,
            "infinite_idle_token_lifetime": false}, "token_endpoint_auth_method": "client_secret_basic",
            "allowed_logout_urls": ["https://a.example/bye"]}))
        .expect("valid");
        let rt = p.refresh_token.expect("refresh_token");
        assert_eq!((rt.leeway, rt.token_lifetime, rt.idle_token_lifetime), (Some(0), Some(60), Some(30)));
        assert_eq!((rt.infinite_token_lifetime, rt.infinite_idle_token_lifetime), (Some(false), Some(false)));
        assert_eq!(p.token_endpoint_auth_method, Some(TokenEndpointAuthMethod::ClientSecretBasic));
        assert_eq!(p.allowed_logout_urls, Some(vec!["https://a.example/bye".to_owned()]));
        assert_eq!(client_patch(json!({"refresh_token": null})).expect("valid").refresh_token, None);
        for bad in [
            json!({"refresh_token": {"rotation_type": "reusable"}}),
            json!({"refresh_token": {"expiration_type": true}}),
            json!({"refresh_token": {"leeway": -1}}),
            json!({"refresh_token": {"leeway": 1.5}}),
            json!({"refresh_token": {"token_lifetime": "2592000"}}),
            json!({"refresh_token": {"idle_token_lifetime": 4_294_967_296_u64}}),
            json!({"refresh_token": {"infinite_token_lifetime": "yes"}}),
            json!({"refresh_token": {"policies": []}}),
            json!({"refresh_token": "rotating"}),
            json!({"token_endpoint_auth_method": "private_key_jwt"}),
            json!({"allowed_logout_urls": "https://a.example"}),
        ] {
            assert!(client_patch(bad.clone()).is_err(), "{bad}");
        }
    }
}

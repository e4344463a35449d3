//! `GET /api/v2/device-credentials` and `DELETE /api/v2/device-credentials/{id}`.

use lambda_http::Request;
use rt_domain::audit::{Actor, AuditEvent, Reason, Revocation};
use rt_domain::clock::Timestamp;
use rt_domain::credential::TYPE_REFRESH_TOKEN;
use rt_domain::ids::{ClientId, DeviceCredentialId, UserId};
use rt_domain::management::device_credentials::{self, CredentialQuery, Listed};
use rt_domain::management::{Entity, MgmtError, Page, Principal};
use rt_domain::ports::{AuditLog, ClientStore, CredentialFilter, CredentialStore};
use serde_json::{Value, json};

use super::error::ApiError;
use super::listing::{Fields, paged, parse_paging};
use super::{Reply, decode, path, query};
use crate::audit;

pub const FIELDS: &[&str] = &["id", "device_name", "device_id", "type", "user_id", "client_id", "expires_at"];
/// The credential types Auth0 has; only refresh tokens are kept here.
const TYPES: &[&str] = &["refresh_token", "public_key", "rotating_refresh_token"];

/// Auth0's device-credential object, with `expires_at` (ISO 8601 UTC, as Auth0's refresh-token
/// objects have it: the earlier of the absolute and the idle end under the client's current
/// policy) when the token expires at all.
pub fn view(listed: &Listed) -> Value {
    let c = &listed.credential;
    let mut v = json!({
        "id": c.id.as_str(),
        "device_name": c.device_name.as_str(),
        "device_id": "",
        "type": TYPE_REFRESH_TOKEN,
        "user_id": c.user_id.as_str(),
        "client_id": c.client_id.as_str(),
    });
    if let (Some(end), Some(object)) = (listed.expires_at, v.as_object_mut()) {
        object.insert("expires_at".into(), end.to_rfc3339().into());
    }
    v
}

/// `GET /device-credentials?user_id=…|client_id=…[&type=…]`: the live ones (an expired
/// refresh token is not listed, as in Auth0).
pub async fn list<S: CredentialStore + ClientStore>(
    store: &S,
    who: Principal,
    req: &Request,
    now: Timestamp,
) -> Result<Reply, ApiError> {
    let p = query(req)?;
    who.require(device_credentials::READ)?;
    let paging = parse_paging(&p)?;
    let fields = Fields::parse(&p, FIELDS)?;
    let bad = |m: &'static str| ApiError::Query(m.into());
    let user =
        p.get("user_id").map(UserId::parse).transpose().map_err(|_| bad("Query validation error: invalid user_id"))?;
    let client = p
        .get("client_id")
        .map(ClientId::parse)
        .transpose()
        .map_err(|_| bad("Query validation error: invalid client_id"))?;
    let kind = p.get("type");
    if kind.is_some_and(|t| !TYPES.contains(&t)) {
        return Err(bad(
            "Query validation error: 'type' must be one of refresh_token, public_key, rotating_refresh_token",
        ));
    }
    let filter = match (user, client) {
        (Some(user), client) => CredentialFilter::User { user, client },
        (None, Some(client)) => CredentialFilter::Client(client),
        (None, None) => return Err(bad("Query validation error: provide user_id or client_id")),
    };
    // Other types than refresh tokens list as empty.
    let page = if kind.is_none_or(|t| t == TYPE_REFRESH_TOKEN) {
        device_credentials::list(store, &who, CredentialQuery { filter, paging }, now).await?
    } else {
        Page::empty(paging)
    };
    Ok(Reply::Json(200, paged("device_credentials", &page, &fields, view)))
}

/// `DELETE /device-credentials/{id}`: revokes one refresh token.
pub async fn delete<S: CredentialStore + AuditLog>(
    store: &S,
    who: Principal,
    req: &Request,
    now: Timestamp,
) -> Result<Reply, ApiError> {
    let raw = path(req, "id")?;
    who.require(device_credentials::DELETE)?;
    let id = DeviceCredentialId::parse(&decode(&raw)?).map_err(|_| MgmtError::NotFound(Entity::DeviceCredential))?;
    let cred = device_credentials::delete(store, &who, &id).await?;
    let by = Revocation { reason: Reason::Token, by: Actor::ManagementApi(who.client_id.clone()) };
    let e = AuditEvent::revoked(by, now, audit::source(req))
        .client_id(Some(cred.client_id.clone()))
        .user(&cred.user_id, None)
        .device(Some(cred.device_name.as_str()))
        .credential(Some(&cred.id));
    audit::record(store, &e).await;
    Ok(Reply::NoContent)
}

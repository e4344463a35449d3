//! `GET /api/v2/device-credentials` and `DELETE /api/v2/device-credentials/{id}`.

use serde_json::{Value, json};

use super::{Fields, MgmtError, Principal, paged, parse_bool, parse_page, select};
use crate::credential::{DeviceCredential, TYPE_REFRESH_TOKEN};
use crate::ids::{ClientId, DeviceCredentialId, UserId};
use crate::params::Params;
use crate::ports::{CredentialFilter, CredentialStore};

pub const FIELDS: &[&str] = &["id", "device_name", "device_id", "type", "user_id", "client_id"];
pub const READ: &[&str] = &["read:device_credentials"];
pub const DELETE: &[&str] =
    &["delete:device_credentials", "update:current_user", "delete:current_user_device_credentials"];

/// Auth0's device-credential object.
pub fn view(c: &DeviceCredential) -> Value {
    json!({
        "id": c.id.as_str(),
        "device_name": c.device_name.as_str(),
        "device_id": "",
        "type": TYPE_REFRESH_TOKEN,
        "user_id": c.user_id.as_str(),
        "client_id": c.client_id.as_str(),
    })
}

pub async fn list<S: CredentialStore>(store: &S, who: &Principal, p: &Params) -> Result<Value, MgmtError> {
    who.require(READ)?;
    let page = parse_page(p)?;
    let totals = parse_bool(p, "include_totals")?.unwrap_or(false);
    let fields = Fields::parse(p, FIELDS)?;
    let user = match p.get("user_id") {
        Some(u) => Some(UserId::parse(u).map_err(|_| MgmtError::bad_query("Query validation error: invalid user_id"))?),
        None => None,
    };
    let client = match p.get("client_id") {
        Some(c) => {
            Some(ClientId::parse(c).map_err(|_| MgmtError::bad_query("Query validation error: invalid client_id"))?)
        }
        None => None,
    };
    let kind = p.get("type");
    if let Some(t) = kind
        && !["refresh_token", "public_key", "rotating_refresh_token"].contains(&t)
    {
        return Err(MgmtError::bad_query(
            "Query validation error: 'type' must be one of refresh_token, public_key, rotating_refresh_token",
        ));
    }
    let filter = match (user, client) {
        (Some(user), client) => CredentialFilter::User { user, client },
        (None, Some(client)) => CredentialFilter::Client(client),
        (None, None) => return Err(MgmtError::bad_query("Query validation error: provide user_id or client_id")),
    };
    // Only refresh tokens are stored here: other types list as empty.
    let only_refresh = kind.is_none_or(|t| t == TYPE_REFRESH_TOKEN);
    let (items, total) = if only_refresh {
        let items = store.list_credentials(&filter, page).await?;
        let total = if totals { Some(store.count_credentials(&filter).await?) } else { None };
        (items, total)
    } else {
        (vec![], totals.then_some(0))
    };
    let items = items.iter().map(|c| select(&fields, view(c))).collect();
    Ok(paged("device_credentials", items, page, total))
}

/// Revokes one refresh token. `Ok(false)`: there was no such credential.
pub async fn delete<S: CredentialStore>(store: &S, who: &Principal, raw_id: &str) -> Result<(), MgmtError> {
    who.require(DELETE)?;
    let not_found = || MgmtError::not_found("The device credential does not exist", "inexistent_device_credential");
    let id = DeviceCredentialId::parse(&super::path_param(raw_id)?).map_err(|_| not_found())?;
    if store.revoke_credential(&id).await? { Ok(()) } else { Err(not_found()) }
}

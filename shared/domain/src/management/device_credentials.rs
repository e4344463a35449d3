//! Device credentials (refresh tokens): list those of a user or a client, revoke one.

use super::{Entity, MgmtError, Page, Paging, Principal};
use crate::credential::DeviceCredential;
use crate::ids::DeviceCredentialId;
use crate::ports::{CredentialFilter, CredentialStore};

pub const READ: &[&str] = &["read:device_credentials"];
pub const DELETE: &[&str] =
    &["delete:device_credentials", "update:current_user", "delete:current_user_device_credentials"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialQuery {
    pub filter: CredentialFilter,
    pub paging: Paging,
}

pub async fn list<S: CredentialStore>(
    store: &S,
    who: &Principal,
    q: CredentialQuery,
) -> Result<Page<DeviceCredential>, MgmtError> {
    who.require(READ)?;
    let items = store.list_credentials(&q.filter, q.paging.page).await?;
    let total = if q.paging.with_total { Some(store.count_credentials(&q.filter).await?) } else { None };
    Ok(Page { items, request: q.paging.page, total })
}

/// Revokes one refresh token.
pub async fn delete<S: CredentialStore>(store: &S, who: &Principal, id: &DeviceCredentialId) -> Result<(), MgmtError> {
    who.require(DELETE)?;
    if store.revoke_credential(id).await? { Ok(()) } else { Err(MgmtError::NotFound(Entity::DeviceCredential)) }
}

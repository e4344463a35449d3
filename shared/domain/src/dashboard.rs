//! Use cases of the administrators' dashboard: signing in (administrators only), a user's
//! devices with their refresh-token counts, and unlinking a device. Revocation goes through
//! the same store operations as the Management API (`revoke_read_credential`, the user revision).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use secrecy::SecretString;

use crate::authorize::{LoginError, Settings, authenticate};
use crate::client::Client;
use crate::clock::Timestamp;
use crate::credential::DeviceCredential;
use crate::ids::{ClientId, UserId};
use crate::ports::{
    ClientStore, CredentialFilter, CredentialStore, Freshness, PageRequest, Purge, Store, StoreError, UpdateUser,
    UserStore,
};
use crate::user::User;

/// The most credentials the dashboard reads for one user.
pub const MAX_CREDENTIALS_SHOWN: u32 = 5_000;

/// Signs an administrator in. Wrong password, unknown account, blocked or not an
/// administrator: the same error, so the page reveals nothing.
pub async fn sign_in<S: Store>(
    store: &S,
    settings: &Settings,
    username: &str,
    password: &SecretString,
    ip: IpAddr,
    now: Timestamp,
) -> Result<User, LoginError> {
    let user = authenticate(store, settings, username, password, ip, now).await?;
    if !user.admin || user.blocked {
        return Err(LoginError::NotAdministrator(user.id));
    }
    Ok(user)
}

/// Ends every dashboard session of `user` (one conditional write).
pub async fn sign_out<S: UserStore>(store: &S, user: &UserId, now: Timestamp) -> Result<(), StoreError> {
    for _ in 0..3 {
        let Some(old) = store.get_user(user).await? else { return Ok(()) };
        let mut new = old.clone();
        new.sessions_after = now.max(old.sessions_after);
        if store.update_user(&old, &new).await? != UpdateUser::Conflict {
            return Ok(());
        }
    }
    Ok(())
}

/// One row of the Devices tab: a device name with its live refresh tokens (across clients).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSummary {
    pub device_name: String,
    pub tokens: usize,
    /// Names of the applications the tokens were issued to.
    pub clients: Vec<String>,
    pub first_issued: Timestamp,
    pub last_used: Option<(Timestamp, Option<String>)>,
    /// When the device's last token expires under its client's current policy, unless one of
    /// them never expires (`None`).
    pub expires_at: Option<Timestamp>,
}

async fn credentials_of<S: CredentialStore>(store: &S, user: &UserId) -> Result<Vec<DeviceCredential>, StoreError> {
    let filter = CredentialFilter::User { user: user.clone(), client: None };
    store.list_credentials(&filter, PageRequest { page: 0, per_page: MAX_CREDENTIALS_SHOWN }).await
}

/// The user's devices at `now`, by name, with counts, applications, first issue, last use
/// and expiry. Tokens that have expired are left out (as in the Management API's listing);
/// each client is read once (from the per-process cache) for its name and policy.
pub async fn devices<S: CredentialStore + ClientStore>(
    store: &S,
    user: &UserId,
    now: Timestamp,
) -> Result<Vec<DeviceSummary>, StoreError> {
    let creds = credentials_of(store, user).await?;
    let mut clients: HashMap<ClientId, Option<Client>> = HashMap::new();
    for c in &creds {
        if !clients.contains_key(&c.client_id) {
            let client = store.get_client(&c.client_id, Freshness::Cached).await?;
            clients.insert(c.client_id.clone(), client);
        }
    }
    let mut rows: BTreeMap<String, DeviceSummary> = BTreeMap::new();
    for c in creds {
        let client = clients.get(&c.client_id).and_then(Option::as_ref);
        let policy = client.map(|cl| cl.refresh_token);
        if policy.is_some_and(|p| c.expired(&p, now)) {
            continue;
        }
        let expires_at = policy.and_then(|p| c.expires_at(&p));
        let name = match client {
            Some(cl) => cl.name.clone(),
            None => format!("{} (deleted)", c.client_id),
        };
        let row = rows.entry(c.device_name.to_string()).or_insert_with(|| DeviceSummary {
            device_name: c.device_name.to_string(),
            tokens: 0,
            clients: vec![],
            first_issued: c.created_at,
            last_used: None,
            expires_at,
        });
        if row.tokens > 0 {
            // The device works until its last token ends; one that never ends wins.
            row.expires_at = row.expires_at.zip(expires_at).map(|(a, b)| a.max(b));
        }
        row.tokens += 1;
        row.first_issued = row.first_issued.min(c.created_at);
        if !row.clients.contains(&name) {
            row.clients.push(name);
        }
        if let Some(t) = c.last_used_at
            && row.last_used.as_ref().is_none_or(|(prev, _)| t > *prev)
        {
            row.last_used = Some((t, c.last_ip.clone()));
        }
    }
    Ok(rows.into_values().collect())
}

/// UNLINK: revokes every refresh token of `device` for `user`, each with the conditional
/// delete that `DELETE /api/v2/device-credentials/{id}` uses. Returns how many.
pub async fn unlink_device<S: CredentialStore>(store: &S, user: &UserId, device: &str) -> Result<usize, StoreError> {
    let mut revoked = 0;
    for c in credentials_of(store, user).await?.into_iter().filter(|c| c.device_name.as_str() == device) {
        if store.revoke_read_credential(&c).await? {
            revoked += 1;
        }
    }
    Ok(revoked)
}

/// "Revoke all": every refresh token of the user, in one write (the user's revision), then
/// the records — the mechanism a password change uses.
pub async fn revoke_all<S: UserStore + CredentialStore>(
    store: &S,
    user: &UserId,
    now: Timestamp,
) -> Result<Purge, StoreError> {
    crate::management::users::bump_revision(store, user, now).await
}

//! Device credentials: the stored side of a refresh token, bound for ever to one
//! (client, user, device).

use crate::clock::Timestamp;
use crate::ids::{ClientId, DeviceCredentialId, DeviceName, UserId};
use crate::scope::Scope;
use crate::token::SecretHash;

/// Auth0's device-credential `type` for refresh tokens.
pub const TYPE_REFRESH_TOKEN: &str = "refresh_token";

/// A refresh token's record. `client_id`, `user_id`, `device_name` and `scope` are written once
/// at issue and never updated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCredential {
    pub id: DeviceCredentialId,
    pub client_id: ClientId,
    pub user_id: UserId,
    /// The user's credential revision the token was issued under.
    pub user_rev: u32,
    pub device_name: DeviceName,
    pub scope: Scope,
    pub secret_hash: SecretHash,
    pub created_at: Timestamp,
    pub created_ip: Option<String>,
    pub last_used_at: Option<Timestamp>,
    pub last_ip: Option<String>,
    pub use_count: u64,
    /// A rotating family's current generation (`Some(0)` at issue); `None`: non-rotating.
    pub generation: Option<u32>,
}

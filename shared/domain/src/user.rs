//! End users of the applications (and the administrators of the dashboard).

use crate::clock::Timestamp;
use crate::ids::{Email, UserId};
use crate::password::PasswordHash;

/// The connection every user belongs to (Auth0's database connection name).
pub const CONNECTION: &str = "Username-Password-Authentication";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub email_verified: bool,
    pub name: String,
    pub nickname: String,
    pub password_hash: PasswordHash,
    /// Credential revision: bumped by a password change; every refresh token carries the value
    /// it was issued under and stops working when they differ.
    pub rev: u32,
    pub admin: bool,
    pub blocked: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Dashboard sessions started before this moment are void (sign-out ends them all).
    pub sessions_after: Timestamp,
    /// Distinct device names with refresh tokens of the current revision (the dashboard's Users
    /// list). Kept by the store as tokens are issued and revoked; ignored when a user is
    /// written.
    pub live_devices: u32,
}

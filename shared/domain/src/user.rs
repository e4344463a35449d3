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

#[cfg(test)]
impl User {
    /// A user of the unit tests: `email`, created at `at`, at revision 0, no usable password.
    pub(crate) fn fixture(email: &str, at: Timestamp) -> Self {
        Self {
            id: UserId::generate(),
            email: Email::parse(email).unwrap_or_else(|e| panic!("{email}: {e}")),
            email_verified: false,
            name: email.into(),
            nickname: email.into(),
            password_hash: PasswordHash::from_phc("unused".into()),
            rev: 0,
            admin: false,
            blocked: false,
            created_at: at,
            updated_at: at,
            sessions_after: at,
            live_devices: 0,
        }
    }
}

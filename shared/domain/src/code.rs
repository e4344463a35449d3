//! Authorization codes (RFC 6749 §4.1) with PKCE (RFC 7636, `S256` only).
//!
//! ```text
//! ac_<base64url, no padding, of 32 random bytes>       (46 characters)
//! ```
//! A code is stored only as `SHA-256(code)`, which is also its key: a table dump yields no
//! code. Its record binds it to the client, the exact `redirect_uri`, the PKCE challenge, the
//! user (and the user's revision at sign-in), the scope, the `nonce` and the device. It lives
//! [`CODE_LIFETIME_SECS`] and is redeemed once: the redemption marks it in the same
//! transaction that issues the refresh token, and keeps the id of that refresh token so that a
//! second redemption can revoke it (RFC 6749 §4.1.2).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret as _, SecretString};

use crate::clock::Timestamp;
use crate::ids::{ClientId, DeviceCredentialId, DeviceName, UserId};
use crate::random;
use crate::scope::Scope;
use crate::token::{SecretHash, constant_time_eq};

pub const CODE_PREFIX: &str = "ac_";
/// Length of a code string.
pub const CODE_LEN: usize = 3 + 43;
/// How long a code may be redeemed after sign-in (RFC 6749 §4.1.2 recommends at most ten
/// minutes).
pub const CODE_LIFETIME_SECS: i64 = 600;
/// The only PKCE method accepted (`plain` would hand the verifier to whoever sees the
/// authorization request).
pub const S256: &str = "S256";

/// A freshly issued code; `Debug` is redacted.
pub struct Code(SecretString);

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Code(..)")
    }
}

impl Code {
    pub fn generate() -> Self {
        Self(format!("{CODE_PREFIX}{}", URL_SAFE_NO_PAD.encode(random::bytes::<32>())).into())
    }
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
    pub fn hash(&self) -> SecretHash {
        SecretHash::of(self.expose().as_bytes())
    }
}

/// The key of a presented code: its hash, when it has the shape of one (anything else cannot
/// be a code and is refused without a read).
pub fn presented_hash(code: &str) -> Option<SecretHash> {
    let ok = code.len() == CODE_LEN
        && code.starts_with(CODE_PREFIX)
        && code.bytes().skip(CODE_PREFIX.len()).all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| SecretHash::of(code.as_bytes()))
}

/// A PKCE `code_challenge` (`S256`): base64url of a SHA-256, 43 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkceError {
    #[error("code_challenge_method must be S256 (plain is not accepted).")]
    Method,
    #[error("code_challenge must be the base64url SHA-256 of the code_verifier (43 characters).")]
    Challenge,
    #[error("code_challenge_method was given without a code_challenge.")]
    MethodWithoutChallenge,
}

impl Challenge {
    /// The challenge of an authorization request: `method` defaults to `plain` in RFC 7636, so
    /// a challenge without `S256` is refused.
    pub fn parse(challenge: Option<&str>, method: Option<&str>) -> Result<Option<Self>, PkceError> {
        match (challenge, method) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err(PkceError::MethodWithoutChallenge),
            (Some(_), m) if m != Some(S256) => Err(PkceError::Method),
            (Some(c), _) => {
                let ok = c.len() == 43 && URL_SAFE_NO_PAD.decode(c).is_ok_and(|b| b.len() == 32);
                if ok { Ok(Some(Self(c.to_owned()))) } else { Err(PkceError::Challenge) }
            }
        }
    }
    /// The `S256` challenge of `verifier` (what a client computes; the dev server's demo).
    pub fn of(verifier: &str) -> Self {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
        Self(URL_SAFE_NO_PAD.encode(d.as_ref()))
    }
    /// Restores a stored challenge.
    pub fn from_stored(s: &str) -> Option<Self> {
        Self::parse(Some(s), Some(S256)).ok().flatten()
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Whether `verifier` (RFC 7636 §4.1: 43–128 characters of `[A-Za-z0-9-._~]`) is the one
    /// this challenge was made from; constant-time.
    pub fn verifies(&self, verifier: &str) -> bool {
        let shape = (43..=128).contains(&verifier.len())
            && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        shape & constant_time_eq(Self::of(verifier).0.as_bytes(), self.0.as_bytes())
    }
}

/// How a code was redeemed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redemption {
    pub at: Timestamp,
    /// The refresh token issued with it, if any (revoked if the code comes back).
    pub credential: Option<DeviceCredentialId>,
}

/// The record of an authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCode {
    pub hash: SecretHash,
    pub client_id: ClientId,
    pub user_id: UserId,
    /// The user's credential revision at sign-in: a password change in between voids the code.
    pub user_rev: u32,
    pub redirect_uri: String,
    pub challenge: Option<Challenge>,
    pub scope: Scope,
    pub nonce: Option<String>,
    /// Present when the redemption issues a refresh token.
    pub device: Option<DeviceName>,
    /// The sign-in (`auth_time`).
    pub created_at: Timestamp,
    pub created_ip: String,
    pub expires_at: Timestamp,
    pub redeemed: Option<Redemption>,
}

impl AuthorizationCode {
    pub fn expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn the_rfc_7636_example_verifies() {
        let c = Challenge::parse(Some(CHALLENGE), Some("S256")).unwrap().unwrap();
        assert_eq!(Challenge::of(VERIFIER), c);
        assert!(c.verifies(VERIFIER));
        assert!(!c.verifies("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl"));
        assert!(!c.verifies(CHALLENGE));
        assert!(!c.verifies(""));
    }

    #[test]
    fn only_s256_with_a_well_formed_challenge() {
        assert_eq!(Challenge::parse(None, None), Ok(None));
        assert_eq!(Challenge::parse(Some(CHALLENGE), None), Err(PkceError::Method));
        assert_eq!(Challenge::parse(Some(CHALLENGE), Some("plain")), Err(PkceError::Method));
        assert_eq!(Challenge::parse(None, Some("S256")), Err(PkceError::MethodWithoutChallenge));
        assert_eq!(Challenge::parse(Some("short"), Some("S256")), Err(PkceError::Challenge));
        assert_eq!(Challenge::parse(Some(&"!".repeat(43)), Some("S256")), Err(PkceError::Challenge));
    }

    #[test]
    fn codes_have_their_shape_and_only_their_hash_is_a_key() {
        let c = Code::generate();
        assert_eq!(c.expose().len(), CODE_LEN);
        assert_eq!(presented_hash(c.expose()), Some(c.hash()));
        assert_ne!(c.hash(), Code::generate().hash());
        assert_eq!(presented_hash("ac_short"), None);
        assert_eq!(presented_hash(&format!("ac_{}", "+".repeat(43))), None);
        assert!(!format!("{c:?}").contains(c.expose()));
    }
}

//! Passwords: Argon2id (RFC 9106 / OWASP parameters), PHC strings at rest, redacted in memory.

use std::fmt;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};

/// OWASP's Argon2id recommendation: 19 MiB, 2 iterations, 1 lane.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub const MIN_PASSWORD_CHARS: usize = 8;
/// An upper bound keeps hashing cost bounded for hostile input.
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("Password is too weak: it must have at least {MIN_PASSWORD_CHARS} characters.")]
    TooShort,
    #[error("Password is too long: at most {MAX_PASSWORD_BYTES} bytes.")]
    TooLong,
    #[error("Password is too weak: use at least two of lower case, upper case, digits and symbols.")]
    TooSimple,
    #[error("password hashing failed")]
    Hashing,
}

/// The policy a new password must meet.
pub fn check_policy(pw: &SecretString) -> Result<(), PasswordError> {
    let p = pw.expose_secret();
    if p.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    if p.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    let classes = [
        p.chars().any(|c| c.is_lowercase()),
        p.chars().any(|c| c.is_uppercase()),
        p.chars().any(|c| c.is_ascii_digit()),
        p.chars().any(|c| !c.is_alphanumeric()),
    ];
    if classes.iter().filter(|c| **c).count() < 2 {
        return Err(PasswordError::TooSimple);
    }
    Ok(())
}

static VERIFICATIONS: AtomicU64 = AtomicU64::new(0);

/// How many password verifications this process has run (real or dummy): the sign-in's
/// constant work is checked with it.
pub fn verifications() -> u64 {
    VERIFICATIONS.load(Ordering::Relaxed)
}

/// A PHC-format Argon2id hash.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

impl PasswordHash {
    pub fn create(pw: &SecretString) -> Result<Self, PasswordError> {
        if pw.expose_secret().len() > MAX_PASSWORD_BYTES {
            return Err(PasswordError::TooLong);
        }
        argon2()
            .hash_password(pw.expose_secret().as_bytes())
            .map(|h| Self(h.to_string()))
            .map_err(|_| PasswordError::Hashing)
    }
    /// Wraps a stored PHC string.
    pub fn from_phc(s: String) -> Self {
        Self(s)
    }
    pub fn as_phc(&self) -> &str {
        &self.0
    }
    /// Constant-time verification (inside argon2). A password longer than
    /// [`MAX_PASSWORD_BYTES`] is refused after a full verification of a fixed stand-in, so the
    /// work does not depend on the length (nor on whether an account was found to check it).
    pub fn verify(&self, pw: &SecretString) -> bool {
        VERIFICATIONS.fetch_add(1, Ordering::Relaxed);
        let too_long = pw.expose_secret().len() > MAX_PASSWORD_BYTES;
        let input: &[u8] = if too_long { b"stand-in for an over-long password" } else { pw.expose_secret().as_bytes() };
        match argon2::password_hash::phc::PasswordHash::new(&self.0) {
            Ok(parsed) => argon2().verify_password(input, &parsed).is_ok() && !too_long,
            Err(_) => false,
        }
    }
}

/// Verifies against a fixed hash, so that an unknown user costs the same time as a wrong
/// password and response times do not reveal which e-mail addresses exist.
pub fn verify_dummy(pw: &SecretString) {
    static DUMMY: LazyLock<Option<PasswordHash>> =
        LazyLock::new(|| PasswordHash::create(&SecretString::from("dummy password for timing")).ok());
    if let Some(h) = DUMMY.as_ref() {
        let _ = h.verify(pw);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let pw = SecretString::from("Correct horse 1");
        let h = PasswordHash::create(&pw).expect("hash");
        assert!(h.as_phc().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(h.verify(&pw));
        assert!(!h.verify(&SecretString::from("wrong")));
        assert!(!PasswordHash::from_phc("garbage".into()).verify(&pw));
        assert!(!format!("{h:?}").contains("argon2"));
    }

    #[test]
    fn policy() {
        assert_eq!(check_policy(&SecretString::from("short1")), Err(PasswordError::TooShort));
        assert_eq!(check_policy(&SecretString::from("alllowercase")), Err(PasswordError::TooSimple));
        assert!(check_policy(&SecretString::from("Longer password")).is_ok());
        assert_eq!(check_policy(&SecretString::from("a1".repeat(600))), Err(PasswordError::TooLong));
    }
}

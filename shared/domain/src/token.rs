//! The refresh token wire format.
//!
//! ```text
//! rt1_<base64url, no padding, of 64 bytes>
//!      bytes  0..16  selector: the 16 letters/digits of the credential id (dcr_<selector>)
//!      bytes 16..28  the user id (the 12 bytes behind auth0|<24 hex>)
//!      bytes 28..32  the user's credential revision at issue (u32, big-endian)
//!      bytes 32..64  the secret: 32 bytes from the OS CSPRNG
//! ```
//! 90 characters, URL-safe, opaque to clients. The selector finds the record; the user id and
//! revision let one DynamoDB request check, atomically, that the user still exists and has not
//! revoked everything since (password change, deletion); the secret proves possession. Only
//! `SHA-256(secret)` is stored, and every bound field (selector, user, revision) is compared
//! against the stored record in the same conditional write, so editing them yields nothing.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretBox, SecretString};

use crate::ids::{DeviceCredentialId, SELECTOR_LEN, UserId};
use crate::random;

pub const TOKEN_PREFIX: &str = "rt1_";
const RAW_LEN: usize = 64;
/// Length of a refresh token string.
pub const TOKEN_LEN: usize = 4 + 86;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenFormatError {
    #[error("refresh token has the wrong prefix or length")]
    Shape,
    #[error("refresh token is not valid base64url")]
    Encoding,
    #[error("refresh token selector is not alphanumeric")]
    Selector,
}

/// A refresh token as presented by a client or freshly issued. Its `Debug` is redacted.
pub struct RefreshToken {
    id: DeviceCredentialId,
    user: UserId,
    user_rev: u32,
    secret: SecretBox<[u8; 32]>,
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshToken")
            .field("id", &self.id)
            .field("user", &self.user)
            .field("user_rev", &self.user_rev)
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl RefreshToken {
    /// A new token for `user` at credential revision `user_rev`, with a fresh id and secret.
    pub fn generate(user: &UserId, user_rev: u32) -> Self {
        Self {
            id: DeviceCredentialId::generate(),
            user: user.clone(),
            user_rev,
            secret: SecretBox::new(Box::new(random::bytes())),
        }
    }

    /// Parses the wire form. Never panics; any deviation from the format is an error.
    pub fn parse(s: &str) -> Result<Self, TokenFormatError> {
        let body = s.strip_prefix(TOKEN_PREFIX).ok_or(TokenFormatError::Shape)?;
        if s.len() != TOKEN_LEN {
            return Err(TokenFormatError::Shape);
        }
        let raw = URL_SAFE_NO_PAD.decode(body).map_err(|_| TokenFormatError::Encoding)?;
        let raw: [u8; RAW_LEN] = raw.try_into().map_err(|_| TokenFormatError::Shape)?;
        let (sel, rest) = raw.split_at(SELECTOR_LEN);
        let (user, rest) = rest.split_at(12);
        let (rev, secret) = rest.split_at(4);
        let sel = std::str::from_utf8(sel).map_err(|_| TokenFormatError::Selector)?;
        let id = DeviceCredentialId::from_selector(sel).map_err(|_| TokenFormatError::Selector)?;
        let user: [u8; 12] = user.try_into().map_err(|_| TokenFormatError::Shape)?;
        let rev: [u8; 4] = rev.try_into().map_err(|_| TokenFormatError::Shape)?;
        let secret: [u8; 32] = secret.try_into().map_err(|_| TokenFormatError::Shape)?;
        Ok(Self {
            id,
            user: UserId::from_bytes(user),
            user_rev: u32::from_be_bytes(rev),
            secret: SecretBox::new(Box::new(secret)),
        })
    }

    /// The wire form. Handle with care: this is the bearer secret.
    pub fn expose(&self) -> SecretString {
        let mut raw = Vec::with_capacity(RAW_LEN);
        raw.extend_from_slice(self.id.selector().as_bytes());
        raw.extend_from_slice(&self.user.to_bytes());
        raw.extend_from_slice(&self.user_rev.to_be_bytes());
        raw.extend_from_slice(self.secret.expose_secret());
        SecretString::from(format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw)))
    }

    pub fn id(&self) -> &DeviceCredentialId {
        &self.id
    }
    pub fn user(&self) -> &UserId {
        &self.user
    }
    pub fn user_rev(&self) -> u32 {
        self.user_rev
    }
    /// What is stored: SHA-256 of the secret.
    pub fn secret_hash(&self) -> SecretHash {
        SecretHash::of(self.secret.expose_secret())
    }
}

/// SHA-256 of a high-entropy secret (refresh-token secret, client secret). A fast hash is
/// enough here: the input has 256 bits of entropy, so there is nothing to brute-force.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash([u8; 32]);

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

impl SecretHash {
    pub fn of(secret: &[u8]) -> Self {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        Self(out)
    }
    pub fn to_hex(&self) -> String {
        random::hex(&self.0)
    }
    pub fn from_hex(s: &str) -> Option<Self> {
        random::unhex::<32>(s).map(Self)
    }
    /// Constant-time comparison.
    pub fn ct_eq(&self, other: &Self) -> bool {
        constant_time_eq(&self.0, &other.0)
    }
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    #[allow(deprecated)]
    let r = aws_lc_rs::constant_time::verify_slices_are_equal(a, b);
    r.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        let user = UserId::generate();
        let t = RefreshToken::generate(&user, 7);
        let wire = t.expose();
        let s = wire.expose_secret();
        assert_eq!(s.len(), TOKEN_LEN);
        assert!(s.starts_with("rt1_"));
        let back = RefreshToken::parse(s).expect("parses");
        assert_eq!(back.id(), t.id());
        assert_eq!(back.user(), &user);
        assert_eq!(back.user_rev(), 7);
        assert!(back.secret_hash().ct_eq(&t.secret_hash()));
        assert!(!format!("{t:?}").contains(s));
    }

    #[test]
    fn distinct_tokens_differ() {
        let user = UserId::generate();
        let a = RefreshToken::generate(&user, 0);
        let b = RefreshToken::generate(&user, 0);
        assert_ne!(a.id(), b.id());
        assert!(!a.secret_hash().ct_eq(&b.secret_hash()));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "rt1_",
            "rt2_xxxx",
            &"rt1_".repeat(30),
            "rt1_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        ] {
            assert!(RefreshToken::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secret_hash_hex_round_trip() {
        let h = SecretHash::of(b"abc");
        assert_eq!(h.to_hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(SecretHash::from_hex(&h.to_hex()), Some(h));
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,120}") {
            let _ = RefreshToken::parse(&s);
        }

        #[test]
        fn parse_never_panics_on_prefixed_base64ish(body in "[A-Za-z0-9_=+/-]{80,92}") {
            let _ = RefreshToken::parse(&format!("rt1_{body}"));
        }

        #[test]
        fn any_valid_token_round_trips(sel in "[A-Za-z0-9]{16}", user in any::<[u8; 12]>(), rev in any::<u32>(), secret in any::<[u8; 32]>()) {
            let t = RefreshToken {
                id: DeviceCredentialId::from_selector(&sel).expect("valid selector"),
                user: UserId::from_bytes(user),
                user_rev: rev,
                secret: SecretBox::new(Box::new(secret)),
            };
            let wire = t.expose();
            let back = RefreshToken::parse(wire.expose_secret()).expect("round trip");
            prop_assert_eq!(back.id(), t.id());
            prop_assert_eq!(back.user(), t.user());
            prop_assert_eq!(back.user_rev(), rev);
            prop_assert!(back.secret_hash().ct_eq(&t.secret_hash()));
        }

        #[test]
        fn flipping_any_character_never_yields_the_same_token(idx in 4usize..TOKEN_LEN, c in "[A-Za-z0-9_-]") {
            let t = RefreshToken::generate(&UserId::generate(), 1);
            let wire = t.expose();
            let mut s: Vec<char> = wire.expose_secret().chars().collect();
            let c = c.chars().next().expect("one char");
            prop_assume!(s.get(idx) != Some(&c));
            if let Some(slot) = s.get_mut(idx) { *slot = c; }
            let s: String = s.into_iter().collect();
            if let Ok(back) = RefreshToken::parse(&s) {
                let same = back.id() == t.id() && back.user() == t.user() && back.user_rev() == t.user_rev()
                    && back.secret_hash().ct_eq(&t.secret_hash());
                prop_assert!(!same);
            }
        }
    }
}

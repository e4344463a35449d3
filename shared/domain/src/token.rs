//! The refresh token wire format.
//!
//! ```text
//! rt1_<base64url, no padding, of 64 bytes>
//!      bytes  0..16  selector: the 16 letters/digits of the credential id (dcr_<selector>)
//!      bytes 16..28  the user id (the 12 bytes behind auth0|<24 hex>)
//!      bytes 28..32  the user's credential revision at issue (u32, big-endian)
//!      bytes 32..64  the secret: 32 bytes from the OS CSPRNG
//! ```
//! 90 characters, URL-safe, opaque to clients. A *rotating* token (one member of a family that
//! rotates on every use, `crate::exchange`) has its own form:
//!
//! ```text
//! rt2_<base64url, no padding, of 84 bytes>
//!      bytes  0..32  as rt1 (selector, user id, revision)
//!      bytes 32..36  the generation in its family (u32, big-endian; 0 at issue)
//!      bytes 36..68  the secret: random at generation 0, then HMAC(successor key, previous secret
//!                    ‖ selector ‖ generation) — so a retry can be answered with the very same
//!                    successor, and nobody without the previous secret can compute it
//!      bytes 68..84  the tag: HMAC(tag key, bytes 0..36), truncated — proves that the
//!                    service issued this generation, so that presenting a retired member
//!                    (reuse) can be told from a forgery
//! ```
//! 116 characters. The selector finds the record; the user id and
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
/// Prefix of a rotating refresh token.
pub const ROTATING_PREFIX: &str = "rt2_";
const ROTATING_RAW_LEN: usize = 84;
const TAG_LEN: usize = 16;
/// Length of a rotating refresh token string.
pub const ROTATING_TOKEN_LEN: usize = 4 + 112;

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
    /// A rotating token's generation and tag.
    rotation: Option<(u32, [u8; TAG_LEN])>,
}

/// The keys of rotating tokens: one derives a successor's secret from its predecessor's, one
/// tags each generation. Derived from one 32-byte key the service keeps (never stored with
/// the tokens).
pub struct RotationKeys {
    successor: SecretBox<[u8; 32]>,
    tag: SecretBox<[u8; 32]>,
}

impl fmt::Debug for RotationKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RotationKeys(..)")
    }
}

pub(crate) fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use aws_lc_rs::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

impl RotationKeys {
    pub fn new(master: &SecretBox<[u8; 32]>) -> Self {
        let k = master.expose_secret();
        Self {
            successor: SecretBox::new(Box::new(hmac(k, &[b"rotating refresh token: successor"]))),
            tag: SecretBox::new(Box::new(hmac(k, &[b"rotating refresh token: tag"]))),
        }
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshToken")
            .field("id", &self.id)
            .field("user", &self.user)
            .field("user_rev", &self.user_rev)
            .field("generation", &self.generation())
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
            rotation: None,
        }
    }

    /// The first member (generation 0) of a new rotating family.
    pub fn generate_rotating(user: &UserId, user_rev: u32, keys: &RotationKeys) -> Self {
        let mut t = Self::generate(user, user_rev);
        t.rotation = Some((0, [0; TAG_LEN]));
        t.rotation = Some((0, t.tag(keys)));
        t
    }

    /// The generation in its family, for a rotating token.
    pub fn generation(&self) -> Option<u32> {
        self.rotation.map(|(g, _)| g)
    }

    /// The next member of this token's family: the same for every call (a retry gets the same
    /// successor). `None` for a non-rotating token, or at the last generation.
    pub fn successor(&self, keys: &RotationKeys) -> Option<Self> {
        let (g, _) = self.rotation?;
        let next = g.checked_add(1)?;
        let secret = hmac(
            keys.successor.expose_secret(),
            &[self.secret.expose_secret(), self.id.selector().as_bytes(), &next.to_be_bytes()],
        );
        let mut t = Self {
            id: self.id.clone(),
            user: self.user.clone(),
            user_rev: self.user_rev,
            secret: SecretBox::new(Box::new(secret)),
            rotation: Some((next, [0; TAG_LEN])),
        };
        t.rotation = Some((next, t.tag(keys)));
        Some(t)
    }

    /// The member that follows this token in its family: its successor, or — for a
    /// non-rotating token whose client now rotates (AUTH0-WIRE §6.4) — generation 1 of the
    /// family it starts, derived from its secret the same way.
    pub fn next_member(&self, keys: &RotationKeys) -> Option<Self> {
        if self.rotation.is_some() {
            return self.successor(keys);
        }
        let as_first = Self {
            id: self.id.clone(),
            user: self.user.clone(),
            user_rev: self.user_rev,
            secret: SecretBox::new(Box::new(*self.secret.expose_secret())),
            rotation: Some((0, [0; TAG_LEN])),
        };
        as_first.successor(keys)
    }

    /// The non-rotating token that ends this rotating member's family where its client turned
    /// rotation off (AUTH0-WIRE §6.4): the same id, a secret derived from this member's (a
    /// retry gets the same token; nobody without this member's secret can compute it). `None`
    /// for a non-rotating token.
    pub fn demoted(&self, keys: &RotationKeys) -> Option<Self> {
        let (g, _) = self.rotation?;
        let secret = hmac(
            keys.successor.expose_secret(),
            &[self.secret.expose_secret(), self.id.selector().as_bytes(), b"non-rotating", &g.to_be_bytes()],
        );
        Some(Self {
            id: self.id.clone(),
            user: self.user.clone(),
            user_rev: self.user_rev,
            secret: SecretBox::new(Box::new(secret)),
            rotation: None,
        })
    }

    /// Whether the service issued this generation (a rotating token's tag checks out, in
    /// constant time).
    pub fn is_genuine(&self, keys: &RotationKeys) -> bool {
        self.rotation.is_some_and(|(_, tag)| constant_time_eq(&tag, &self.tag(keys)))
    }

    fn bound_bytes(&self) -> Vec<u8> {
        let mut raw = Vec::with_capacity(36);
        raw.extend_from_slice(self.id.selector().as_bytes());
        raw.extend_from_slice(&self.user.to_bytes());
        raw.extend_from_slice(&self.user_rev.to_be_bytes());
        if let Some((g, _)) = self.rotation {
            raw.extend_from_slice(&g.to_be_bytes());
        }
        raw
    }

    fn tag(&self, keys: &RotationKeys) -> [u8; TAG_LEN] {
        let full = hmac(keys.tag.expose_secret(), &[&self.bound_bytes()]);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(full.get(..TAG_LEN).unwrap_or(&[0; TAG_LEN]));
        tag
    }

    /// Parses the wire form. Never panics; any deviation from the format is an error.
    pub fn parse(s: &str) -> Result<Self, TokenFormatError> {
        if let Some(body) = s.strip_prefix(ROTATING_PREFIX) {
            return Self::parse_rotating(s, body);
        }
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
            rotation: None,
        })
    }

    fn parse_rotating(s: &str, body: &str) -> Result<Self, TokenFormatError> {
        if s.len() != ROTATING_TOKEN_LEN {
            return Err(TokenFormatError::Shape);
        }
        let raw = URL_SAFE_NO_PAD.decode(body).map_err(|_| TokenFormatError::Encoding)?;
        let raw: [u8; ROTATING_RAW_LEN] = raw.try_into().map_err(|_| TokenFormatError::Shape)?;
        let (head, rest) = raw.split_at(32);
        let (generation, rest) = rest.split_at(4);
        let (secret, tag) = rest.split_at(32);
        let mut rt1 = Vec::with_capacity(RAW_LEN);
        rt1.extend_from_slice(head);
        rt1.extend_from_slice(secret);
        let mut t = Self::parse(&format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(rt1)))?;
        let generation: [u8; 4] = generation.try_into().map_err(|_| TokenFormatError::Shape)?;
        let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| TokenFormatError::Shape)?;
        t.rotation = Some((u32::from_be_bytes(generation), tag));
        Ok(t)
    }

    /// The wire form. Handle with care: this is the bearer secret.
    pub fn expose(&self) -> SecretString {
        let mut raw = self.bound_bytes();
        raw.extend_from_slice(self.secret.expose_secret());
        match self.rotation {
            None => SecretString::from(format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw))),
            Some((_, tag)) => {
                raw.extend_from_slice(&tag);
                SecretString::from(format!("{ROTATING_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw)))
            }
        }
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

    fn keys(seed: u8) -> RotationKeys {
        RotationKeys::new(&SecretBox::new(Box::new([seed; 32])))
    }

    #[test]
    fn rotating_tokens_round_trip_and_succeed_deterministically() {
        let k = keys(1);
        let t = RefreshToken::generate_rotating(&UserId::generate(), 2, &k);
        let wire = t.expose();
        let s = wire.expose_secret();
        assert_eq!((s.len(), &s[..4]), (ROTATING_TOKEN_LEN, ROTATING_PREFIX));
        let back = RefreshToken::parse(s).expect("parses");
        assert_eq!((back.id(), back.user_rev(), back.generation()), (t.id(), 2, Some(0)));
        assert!(back.secret_hash().ct_eq(&t.secret_hash()) && back.is_genuine(&k));
        let next = back.successor(&k).expect("a successor");
        let again = t.successor(&k).expect("a successor");
        assert_eq!(next.expose().expose_secret(), again.expose().expose_secret(), "the same successor every time");
        assert_eq!((next.id(), next.generation()), (t.id(), Some(1)));
        assert!(!next.secret_hash().ct_eq(&t.secret_hash()));
        assert!(next.is_genuine(&k));
        // Another key neither recognises the tag nor derives the same successor.
        assert!(!next.is_genuine(&keys(2)));
        let other = t.successor(&keys(2)).expect("a successor");
        assert!(!other.secret_hash().ct_eq(&next.secret_hash()));
        // A non-rotating token has no successor and no tag.
        let plain = RefreshToken::generate(&UserId::generate(), 0);
        assert!(plain.successor(&k).is_none() && !plain.is_genuine(&k) && plain.generation().is_none());
    }

    #[test]
    fn an_edited_generation_or_tag_is_not_genuine() {
        let k = keys(3);
        let t = RefreshToken::generate_rotating(&UserId::generate(), 0, &k).successor(&k).expect("next");
        let wire = t.expose();
        let raw = URL_SAFE_NO_PAD.decode(&wire.expose_secret()[4..]).expect("b64");
        for byte in [33usize, 35, 70, 83] {
            let mut edited = raw.clone();
            edited[byte] ^= 1;
            let s = format!("{ROTATING_PREFIX}{}", URL_SAFE_NO_PAD.encode(&edited));
            assert!(!RefreshToken::parse(&s).expect("still parses").is_genuine(&k), "byte {byte}");
        }
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
                rotation: None,
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

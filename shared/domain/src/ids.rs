//! Parse, don't validate: every identifier has one checked constructor and no setters.
//! Raw strings live only in wire DTOs and DynamoDB items.

use std::fmt;

use crate::random;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("client_id must be 1 to 64 letters, digits, '-' or '_'")]
    ClientId,
    #[error("user id must look like auth0|<24 hex digits>")]
    UserId,
    #[error("device credential id must look like dcr_<16 letters or digits>")]
    DeviceCredentialId,
    #[error("device must be 1 to 255 characters without control characters")]
    DeviceName,
    #[error("email address is not valid")]
    Email,
}

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
    };
}

/// An application's id (Auth0's `client_id`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(String);
string_newtype!(ClientId);

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientId({})", self.0)
    }
}

impl ClientId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let ok = (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok { Ok(Self(s.to_owned())) } else { Err(IdError::ClientId) }
    }
    /// A fresh 32-character id, as Auth0 issues them.
    pub fn generate() -> Self {
        Self(random::alphanumeric(32))
    }
}

/// A user's id: `auth0|` followed by 24 lower-case hex digits (12 random bytes).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);
string_newtype!(UserId);

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({})", self.0)
    }
}

pub const USER_ID_PREFIX: &str = "auth0|";

impl UserId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let hex = s.strip_prefix(USER_ID_PREFIX).ok_or(IdError::UserId)?;
        let bytes = random::unhex::<12>(hex).ok_or(IdError::UserId)?;
        Ok(Self::from_bytes(bytes))
    }
    pub fn generate() -> Self {
        Self::from_bytes(random::bytes())
    }
    pub fn from_bytes(b: [u8; 12]) -> Self {
        Self(format!("{USER_ID_PREFIX}{}", random::hex(&b)))
    }
    pub fn to_bytes(&self) -> [u8; 12] {
        // The constructor guarantees the shape; fall back to zeros only to stay panic-free.
        self.0.strip_prefix(USER_ID_PREFIX).and_then(random::unhex::<12>).unwrap_or([0; 12])
    }
}

/// A refresh token's public id, `dcr_` + 16 letters or digits (Auth0's device credential id).
/// The 16 characters after the prefix are the token's *selector*.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceCredentialId(String);
string_newtype!(DeviceCredentialId);

impl fmt::Debug for DeviceCredentialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceCredentialId({})", self.0)
    }
}

pub const CREDENTIAL_ID_PREFIX: &str = "dcr_";
pub const SELECTOR_LEN: usize = 16;

impl DeviceCredentialId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let sel = s.strip_prefix(CREDENTIAL_ID_PREFIX).ok_or(IdError::DeviceCredentialId)?;
        Self::from_selector(sel)
    }
    pub fn from_selector(sel: &str) -> Result<Self, IdError> {
        if sel.len() == SELECTOR_LEN && sel.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(Self(format!("{CREDENTIAL_ID_PREFIX}{sel}")))
        } else {
            Err(IdError::DeviceCredentialId)
        }
    }
    pub fn generate() -> Self {
        Self(format!("{CREDENTIAL_ID_PREFIX}{}", random::alphanumeric(SELECTOR_LEN)))
    }
    pub fn selector(&self) -> &str {
        self.0.get(CREDENTIAL_ID_PREFIX.len()..).unwrap_or("")
    }
}

/// The `device` given at `/authorize`: any string the app chooses (the seed: "can be any value,
/// such as a unique mobile device identifier"), 1 to 255 characters, no control characters.
/// It is user-supplied: render it escaped everywhere.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceName(String);
string_newtype!(DeviceName);

pub const DEVICE_NAME_MAX_CHARS: usize = 255;

impl fmt::Debug for DeviceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceName({:?})", self.0)
    }
}

impl DeviceName {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let n = s.chars().count();
        if n == 0 || n > DEVICE_NAME_MAX_CHARS || s.chars().any(char::is_control) || s.trim().is_empty() {
            return Err(IdError::DeviceName);
        }
        Ok(Self(s.to_owned()))
    }
    /// [`UNKNOWN_DEVICE`]: the name of a device that did not say what it is.
    pub fn unknown() -> Self {
        Self(UNKNOWN_DEVICE.to_owned())
    }
}

/// The name of a device that did not say what it is.
pub const UNKNOWN_DEVICE: &str = "Unknown device";

/// A normalised (trimmed, lower-cased) e-mail address.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);
string_newtype!(Email);

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

impl Email {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let s = s.trim().to_lowercase();
        let (local, domain) = s.split_once('@').ok_or(IdError::Email)?;
        let ok = (3..=254).contains(&s.len())
            && !local.is_empty()
            && local.len() <= 64
            && !domain.is_empty()
            && !domain.contains('@')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !s.chars().any(|c| c.is_whitespace() || c.is_control() || "<>\"(),;:\\[]".contains(c));
        if ok { Ok(Self(s)) } else { Err(IdError::Email) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn user_id_round_trips_through_bytes() {
        let u = UserId::generate();
        assert!(u.as_str().starts_with("auth0|"));
        assert_eq!(u.as_str().len(), 30);
        assert_eq!(UserId::from_bytes(u.to_bytes()), u);
        assert_eq!(UserId::parse(u.as_str()), Ok(u));
        assert!(UserId::parse("auth0|XYZ").is_err());
        assert!(UserId::parse("google|0123456789abcdef01234567").is_err());
    }

    #[test]
    fn credential_ids() {
        let id = DeviceCredentialId::generate();
        assert_eq!(id.as_str().len(), 20);
        assert_eq!(DeviceCredentialId::parse(id.as_str()).as_ref(), Ok(&id));
        assert_eq!(DeviceCredentialId::from_selector(id.selector()).as_ref(), Ok(&id));
        assert!(DeviceCredentialId::parse("dcr_dFJiaAxbEroQ5xxx").is_ok());
        assert!(DeviceCredentialId::parse("dcr_short").is_err());
        assert!(DeviceCredentialId::parse("dcr_dFJiaAxbEroQ5xx!").is_err());
    }

    #[test]
    fn device_names() {
        assert!(DeviceName::parse("my-device").is_ok());
        assert!(DeviceName::parse("<img src=x onerror=alert(1)>").is_ok());
        assert!(DeviceName::parse("Jörg's iPhone 📱").is_ok());
        assert!(DeviceName::parse("").is_err());
        assert!(DeviceName::parse("   ").is_err());
        assert!(DeviceName::parse("a\nb").is_err());
        assert!(DeviceName::parse(&"x".repeat(256)).is_err());
        assert!(DeviceName::parse(&"é".repeat(255)).is_ok());
    }

    #[test]
    fn emails_are_normalised() {
        assert_eq!(Email::parse("  Alice@Example.COM ").map(|e| e.to_string()), Ok("alice@example.com".into()));
        for bad in ["", "a", "a@", "@b", "a@b@c", "a b@c.d", "a@.com", "<a>@b.c"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn client_id_parser_accepts_exactly_its_alphabet(s in "\\PC{0,80}") {
            let ok = ClientId::parse(&s).is_ok();
            let expected = (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            prop_assert_eq!(ok, expected);
        }

        #[test]
        fn user_id_parse_never_panics_and_round_trips(s in "auth0\\|[0-9a-fA-F]{0,30}|\\PC{0,40}") {
            if let Ok(u) = UserId::parse(&s) {
                prop_assert_eq!(UserId::parse(u.as_str()), Ok(u.clone()));
                prop_assert_eq!(u.as_str(), s.to_lowercase());
            }
        }

        #[test]
        fn device_name_parse_never_panics(s in "\\PC{0,300}|[\\x00-\\x7f]{0,20}") {
            if let Ok(d) = DeviceName::parse(&s) {
                prop_assert_eq!(d.as_str(), s.as_str());
                prop_assert!(!d.as_str().chars().any(char::is_control));
            }
        }
    }
}

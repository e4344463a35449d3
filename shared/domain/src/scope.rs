//! OAuth scopes (RFC 6749 §3.3): space-separated tokens of printable ASCII.

use std::collections::BTreeSet;
use std::fmt;

pub const OPENID: &str = "openid";
pub const OFFLINE_ACCESS: &str = "offline_access";
pub const PROFILE: &str = "profile";
pub const EMAIL: &str = "email";

const MAX_SCOPES: usize = 64;
const MAX_SCOPE_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scope must be space-separated printable ASCII tokens (at most {MAX_SCOPES} of {MAX_SCOPE_LEN} characters)")]
pub struct ScopeError;

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Scope(BTreeSet<String>);

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({self})")
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(s)?;
            first = false;
        }
        Ok(())
    }
}

impl<S: Into<String>> FromIterator<S> for Scope {
    fn from_iter<I: IntoIterator<Item = S>>(it: I) -> Self {
        Self(it.into_iter().map(Into::into).collect())
    }
}

impl Scope {
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        let mut set = BTreeSet::new();
        for tok in s.split(' ').filter(|t| !t.is_empty()) {
            let ok = tok.len() <= MAX_SCOPE_LEN
                && tok.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
            if !ok {
                return Err(ScopeError);
            }
            set.insert(tok.to_owned());
        }
        if set.len() > MAX_SCOPES {
            return Err(ScopeError);
        }
        Ok(Self(set))
    }
    pub fn contains(&self, s: &str) -> bool {
        self.0.contains(s)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
    pub fn is_subset(&self, other: &Scope) -> bool {
        self.0.is_subset(&other.0)
    }
    pub fn intersection(&self, other: &Scope) -> Scope {
        Scope(self.0.intersection(&other.0).cloned().collect())
    }
    pub fn insert(&mut self, s: &str) {
        self.0.insert(s.to_owned());
    }
    pub fn remove(&mut self, s: &str) {
        self.0.remove(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_prints_sorted() {
        let s = Scope::parse("openid  offline_access openid").expect("valid");
        assert_eq!(s.to_string(), "offline_access openid");
        assert!(s.contains(OPENID) && s.contains(OFFLINE_ACCESS));
        assert!(Scope::parse("a\"b").is_err());
        assert!(Scope::parse("a\\b").is_err());
        assert!(Scope::parse("é").is_err());
        assert_eq!(Scope::parse("").map(|s| s.is_empty()), Ok(true));
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(s in "[ -~]{0,200}") {
            if let Ok(scope) = Scope::parse(&s) {
                prop_assert_eq!(Scope::parse(&scope.to_string()), Ok(scope));
            }
        }
    }
}

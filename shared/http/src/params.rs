//! Request parameters (query string or form/JSON body) after decoding: each name at most once.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    #[error("parameter '{0}' was given more than once")]
    Duplicate(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    /// Builds from name/value pairs; a repeated name is an error (RFC 6749 §3.1, §3.2).
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self, ParamsError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut map = BTreeMap::new();
        for (k, v) in pairs {
            let k = k.into();
            if map.contains_key(&k) {
                return Err(ParamsError::Duplicate(k));
            }
            map.insert(k, v.into());
        }
        Ok(Self(map))
    }

    /// The value, with empty strings treated as absent (as OAuth servers do).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

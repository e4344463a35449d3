//! Configuration: one typed struct, loaded once, failing fast with the name of what is missing.
//! The variable names match `template.yaml`.

use rt_domain::ratelimit::RatePolicy;

pub const TABLE_NAME: &str = "TABLE_NAME";
pub const ISSUER: &str = "ISSUER";
/// The PEM itself (local development and tests).
pub const SIGNING_KEY_PEM: &str = "SIGNING_KEY_PEM";
/// A file holding the PEM (local development: `target/dev/signing-key.pem`).
pub const SIGNING_KEY_FILE: &str = "SIGNING_KEY_FILE";
/// A Secrets Manager secret whose `SecretString` is the PEM (AWS).
pub const SIGNING_KEY_SECRET_ARN: &str = "SIGNING_KEY_SECRET_ARN";
pub const EXCHANGE_RATE_LIMIT: &str = "EXCHANGE_RATE_LIMIT";
pub const EXCHANGE_RATE_WINDOW_SECONDS: &str = "EXCHANGE_RATE_WINDOW_SECONDS";
pub const EXCHANGE_MAX_ADDRESSES: &str = "EXCHANGE_MAX_ADDRESSES";
pub const LOGIN_LIMIT_PER_ADDRESS: &str = "LOGIN_LIMIT_PER_ADDRESS";
pub const LOGIN_LIMIT_PER_ACCOUNT: &str = "LOGIN_LIMIT_PER_ACCOUNT";
pub const LOGIN_WINDOW_SECONDS: &str = "LOGIN_WINDOW_SECONDS";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {0} is invalid: {1}")]
    Invalid(&'static str, String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    Pem,
    File(String),
    SecretArn(String),
}

#[derive(Clone, Debug)]
pub struct Config {
    pub table_name: String,
    /// Public issuer, absolute URL with a trailing slash; `iss` of every token.
    pub issuer: String,
    pub signing_key: KeySource,
    /// `/delegation` exchanges per (refresh token, source address).
    pub exchange_rate: RatePolicy,
    /// Distinct source addresses one refresh token may be used from in one window.
    pub exchange_max_addresses: u32,
    pub login_per_address: RatePolicy,
    pub login_per_account: RatePolicy,
    /// Lifetime of access tokens returned by `/authorize`.
    pub access_token_lifetime_secs: u32,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the configuration through `get` (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |k: &'static str| get(k).filter(|v| !v.is_empty()).ok_or(ConfigError::Missing(k));
        let number =
            |k: &'static str, default: u32, range: std::ops::RangeInclusive<u32>| -> Result<u32, ConfigError> {
                match get(k).filter(|v| !v.is_empty()) {
                    None => Ok(default),
                    Some(v) => {
                        v.parse::<u32>().ok().filter(|n| range.contains(n)).ok_or_else(|| {
                            ConfigError::Invalid(k, format!("expected a number in {range:?}, got {v:?}"))
                        })
                    }
                }
            };
        let issuer = required(ISSUER)?;
        let issuer_ok = (issuer.starts_with("https://") || issuer.starts_with("http://"))
            && issuer.ends_with('/')
            && !issuer.contains(['?', '#', ' ']);
        if !issuer_ok {
            return Err(ConfigError::Invalid(ISSUER, "must be an absolute http(s) URL ending with '/'".into()));
        }
        let signing_key = if let Some(arn) = get(SIGNING_KEY_SECRET_ARN).filter(|v| !v.is_empty()) {
            KeySource::SecretArn(arn)
        } else if let Some(f) = get(SIGNING_KEY_FILE).filter(|v| !v.is_empty()) {
            KeySource::File(f)
        } else if get(SIGNING_KEY_PEM).is_some_and(|v| !v.is_empty()) {
            KeySource::Pem
        } else {
            return Err(ConfigError::Missing("SIGNING_KEY_SECRET_ARN (or SIGNING_KEY_FILE / SIGNING_KEY_PEM)"));
        };
        let login_window = number(LOGIN_WINDOW_SECONDS, 300, 1..=86_400)?;
        Ok(Self {
            table_name: required(TABLE_NAME)?,
            issuer,
            signing_key,
            exchange_rate: RatePolicy {
                limit: number(EXCHANGE_RATE_LIMIT, 10, 1..=10_000)?,
                window_secs: number(EXCHANGE_RATE_WINDOW_SECONDS, 60, 1..=86_400)?,
            },
            exchange_max_addresses: number(EXCHANGE_MAX_ADDRESSES, 16, 1..=256)?,
            login_per_address: RatePolicy {
                limit: number(LOGIN_LIMIT_PER_ADDRESS, 100, 1..=100_000)?,
                window_secs: login_window,
            },
            login_per_account: RatePolicy {
                limit: number(LOGIN_LIMIT_PER_ACCOUNT, 10, 1..=10_000)?,
                window_secs: login_window,
            },
            access_token_lifetime_secs: 7200,
        })
    }

    /// Whether cookies may be sent over plain HTTP (a loopback issuer in development).
    pub fn insecure_cookies(&self) -> bool {
        self.issuer.starts_with("http://127.0.0.1") || self.issuer.starts_with("http://localhost")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn names_what_is_missing() {
        let e = cfg(&[]).expect_err("empty");
        assert_eq!(e.to_string(), "environment variable ISSUER is required");
        let e = cfg(&[(ISSUER, "https://a/"), (SIGNING_KEY_PEM, "x")]).expect_err("no table");
        assert_eq!(e.to_string(), "environment variable TABLE_NAME is required");
        let e = cfg(&[(ISSUER, "https://a"), (SIGNING_KEY_PEM, "x"), (TABLE_NAME, "t")]).expect_err("slash");
        assert!(e.to_string().contains("ending with '/'"));
    }

    #[test]
    fn defaults_and_overrides() {
        let c = cfg(&[(ISSUER, "https://a/"), (SIGNING_KEY_PEM, "x"), (TABLE_NAME, "t"), (EXCHANGE_RATE_LIMIT, "3")])
            .expect("valid");
        assert_eq!(c.exchange_rate, RatePolicy { limit: 3, window_secs: 60 });
        assert_eq!(c.signing_key, KeySource::Pem);
        assert!(
            cfg(&[(ISSUER, "https://a/"), (SIGNING_KEY_PEM, "x"), (TABLE_NAME, "t"), (EXCHANGE_RATE_LIMIT, "0")])
                .is_err()
        );
    }
}

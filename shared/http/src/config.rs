//! Configuration: one typed struct per kind of function, loaded once, failing fast with the
//! name of what is missing. A function reads only what its kind needs (ARCHITECTURE.md,
//! *Capabilities per function*): [`BaseConfig`] (the issuer), [`JwksConfig`] (the public key),
//! [`WorkerConfig`] (the table alone: a scheduled function),
//! [`ApiConfig`] (the issuer, the table and the public key — no private key) and [`Config`]
//! (everything, the private signing key included). The variable names match `template.yaml`.

use rt_domain::ratelimit::RatePolicy;

pub const TABLE_NAME: &str = "TABLE_NAME";
pub const ISSUER: &str = "ISSUER";
/// The key document itself (local development and tests).
pub const SIGNING_KEY_PEM: &str = "SIGNING_KEY_PEM";
/// A file holding the key document (local development: `target/dev/signing-keys.json`).
pub const SIGNING_KEY_FILE: &str = "SIGNING_KEY_FILE";
/// A Secrets Manager secret whose `SecretString` is the key document (AWS): a PEM private
/// key or several, or the JSON form with algorithms and rotation states (`rt_jwt::keys`).
pub const SIGNING_KEY_SECRET_ARN: &str = "SIGNING_KEY_SECRET_ARN";
/// The published public keys (a JWK set, PEM public keys, or the base64 body of one RSA key,
/// on one line) of the functions that only verify tokens or publish the keys: `jwks`,
/// `openid-configuration` and the Management API.
pub const SIGNING_PUBLIC_KEY_PEM: &str = "SIGNING_PUBLIC_KEY_PEM";
pub const EXCHANGE_RATE_LIMIT: &str = "EXCHANGE_RATE_LIMIT";
pub const EXCHANGE_RATE_WINDOW_SECONDS: &str = "EXCHANGE_RATE_WINDOW_SECONDS";
pub const EXCHANGE_MAX_ADDRESSES: &str = "EXCHANGE_MAX_ADDRESSES";
pub const LOGIN_LIMIT_PER_ADDRESS: &str = "LOGIN_LIMIT_PER_ADDRESS";
pub const LOGIN_LIMIT_PER_ACCOUNT_ADDRESS: &str = "LOGIN_LIMIT_PER_ACCOUNT_ADDRESS";
pub const LOGIN_LOCKOUT_SECONDS: &str = "LOGIN_LOCKOUT_SECONDS";
pub const LOGIN_WINDOW_SECONDS: &str = "LOGIN_WINDOW_SECONDS";
/// Days the audit log keeps events (the sweep removes older days): 1 to 30, default 30.
pub const LOG_RETENTION_DAYS: &str = "LOG_RETENTION_DAYS";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {0} is invalid: {1}")]
    Invalid(&'static str, String),
}

fn required(get: &impl Fn(&str) -> Option<String>, k: &'static str) -> Result<String, ConfigError> {
    get(k).filter(|v| !v.is_empty()).ok_or(ConfigError::Missing(k))
}

fn issuer(get: &impl Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let issuer = required(get, ISSUER)?;
    let issuer_ok = (issuer.starts_with("https://") || issuer.starts_with("http://"))
        && issuer.ends_with('/')
        && !issuer.contains(['?', '#', ' ']);
    if !issuer_ok {
        return Err(ConfigError::Invalid(ISSUER, "must be an absolute http(s) URL ending with '/'".into()));
    }
    Ok(issuer)
}

/// What a function with neither the table nor a key reads (`openid-configuration`,
/// `api-preflight`, `dashboard-assets`).
#[derive(Clone, Debug)]
pub struct BaseConfig {
    /// Public issuer, absolute URL with a trailing slash; `iss` of every token.
    pub issuer: String,
}

impl BaseConfig {
    /// Every variable it reads.
    pub const VARIABLES: &[&str] = &[ISSUER];

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self { issuer: issuer(&get)? })
    }
}

/// What `jwks` and `openid-configuration` read: the issuer and the public keys, nothing else.
#[derive(Clone, Debug)]
pub struct JwksConfig {
    pub issuer: String,
    pub public_key: String,
}

impl JwksConfig {
    pub const VARIABLES: &[&str] = &[ISSUER, SIGNING_PUBLIC_KEY_PEM];

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self { issuer: issuer(&get)?, public_key: required(&get, SIGNING_PUBLIC_KEY_PEM)? })
    }
}

/// What a Management API function reads: the issuer, the table and the public key that
/// verifies access tokens. Never the private key: these functions do not sign.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    pub issuer: String,
    pub table_name: String,
    pub public_key: String,
}

impl ApiConfig {
    pub const VARIABLES: &[&str] = &[ISSUER, TABLE_NAME, SIGNING_PUBLIC_KEY_PEM];

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            issuer: issuer(&get)?,
            table_name: required(&get, TABLE_NAME)?,
            public_key: required(&get, SIGNING_PUBLIC_KEY_PEM)?,
        })
    }
}

/// What a scheduled function reads (`sweep-expired`): the table, nothing else — no issuer
/// (it answers no request and signs nothing) and no key.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub table_name: String,
    /// How many days the audit log keeps events ([`LOG_RETENTION_DAYS`]).
    pub log_retention_days: u32,
}

impl WorkerConfig {
    pub const VARIABLES: &[&str] = &[TABLE_NAME, LOG_RETENTION_DAYS];

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self { table_name: required(&get, TABLE_NAME)?, log_retention_days: log_retention_days(&get)? })
    }
}

/// [`LOG_RETENTION_DAYS`]: a documented default (Auth0's longest), refused when malformed or
/// beyond what the log's readers look back ([`rt_domain::audit::MAX_RETENTION_DAYS`]).
fn log_retention_days(get: &impl Fn(&str) -> Option<String>) -> Result<u32, ConfigError> {
    use rt_domain::audit::{DEFAULT_RETENTION_DAYS, MAX_RETENTION_DAYS};
    match get(LOG_RETENTION_DAYS).filter(|v| !v.is_empty()) {
        None => Ok(DEFAULT_RETENTION_DAYS),
        Some(v) => v.parse::<u32>().ok().filter(|d| (1..=MAX_RETENTION_DAYS).contains(d)).ok_or_else(|| {
            ConfigError::Invalid(
                LOG_RETENTION_DAYS,
                format!("must be a whole number of days in 1..={MAX_RETENTION_DAYS}"),
            )
        }),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    Pem,
    File(String),
    SecretArn(String),
}

/// What a function that signs reads (`authorize`, `delegation`, `oauth-token`, the dashboard):
/// everything, the private signing key included. The local server and the tests build every
/// function from it.
#[derive(Clone, Debug)]
pub struct Config {
    pub table_name: String,
    /// Public issuer, absolute URL with a trailing slash; `iss` of every token.
    pub issuer: String,
    pub signing_key: KeySource,
    /// `/delegation` exchanges per (refresh token, source address).
    pub exchange_rate: RatePolicy,
    /// Address counters one refresh token's record keeps per window (a further address takes
    /// the least-used one's place).
    pub exchange_max_addresses: u32,
    /// Failed sign-ins from one address, across accounts, per window.
    pub login_per_address: RatePolicy,
    /// Failed sign-ins in a row for one (account, address) pair; the window is the lockout.
    pub login_per_pair: RatePolicy,
    /// Lifetime of access tokens returned by `/authorize`.
    pub access_token_lifetime_secs: u32,
}

impl Config {
    pub const VARIABLES: &[&str] = &[
        ISSUER,
        TABLE_NAME,
        SIGNING_KEY_SECRET_ARN,
        SIGNING_KEY_FILE,
        SIGNING_KEY_PEM,
        EXCHANGE_RATE_LIMIT,
        EXCHANGE_RATE_WINDOW_SECONDS,
        EXCHANGE_MAX_ADDRESSES,
        LOGIN_LIMIT_PER_ADDRESS,
        LOGIN_LIMIT_PER_ACCOUNT_ADDRESS,
        LOGIN_LOCKOUT_SECONDS,
        LOGIN_WINDOW_SECONDS,
    ];

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the configuration through `get` (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
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
        let issuer = issuer(&get)?;
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
            table_name: required(&get, TABLE_NAME)?,
            issuer,
            signing_key,
            exchange_rate: RatePolicy {
                limit: number(EXCHANGE_RATE_LIMIT, 10, 1..=1_000_000_000)?,
                window_secs: number(EXCHANGE_RATE_WINDOW_SECONDS, 60, 1..=86_400)?,
            },
            exchange_max_addresses: number(EXCHANGE_MAX_ADDRESSES, 16, 1..=256)?,
            login_per_address: RatePolicy {
                limit: number(LOGIN_LIMIT_PER_ADDRESS, 100, 1..=100_000)?,
                window_secs: login_window,
            },
            login_per_pair: RatePolicy {
                limit: number(LOGIN_LIMIT_PER_ACCOUNT_ADDRESS, 10, 1..=10_000)?,
                window_secs: number(LOGIN_LOCKOUT_SECONDS, 900, 1..=86_400)?,
            },
            access_token_lifetime_secs: 7200,
        })
    }

    /// Whether cookies may be sent over plain HTTP (a loopback issuer in development).
    pub fn insecure_cookies(&self) -> bool {
        insecure_issuer(&self.issuer)
    }
}

/// Whether `issuer` is plain HTTP on this machine's loopback — exactly `localhost`, `127.0.0.1`
/// or `[::1]`, any port — where browsers do not keep `Secure` cookies. A prefix would also
/// match `http://localhost.evil.com/`.
fn insecure_issuer(issuer: &str) -> bool {
    let Ok(uri) = issuer.parse::<http::Uri>() else { return false };
    uri.scheme_str() == Some("http") && matches!(uri.host(), Some("localhost" | "127.0.0.1" | "[::1]" | "::1"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn only_an_exact_loopback_issuer_drops_secure_cookies() {
        for yes in ["http://127.0.0.1:3000/", "http://localhost/", "http://localhost:8080/", "http://[::1]:3000/"] {
            assert!(insecure_issuer(yes), "{yes}");
        }
        for no in [
            "http://localhost.evil.com/",
            "http://127.0.0.1.evil.com/",
            "http://127.0.0.10/",
            "https://localhost/",
            "https://auth.example.com/",
            "http://localhost@evil.com/",
            "not a url",
        ] {
            assert!(!insecure_issuer(no), "{no}");
        }
    }

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

    /// Each kind loads from its own variables alone, and reads no other.
    #[test]
    fn each_kind_reads_only_its_variables() {
        use std::cell::RefCell;
        let all: HashMap<&str, &str> = [
            (ISSUER, "https://a/"),
            (TABLE_NAME, "t"),
            (SIGNING_PUBLIC_KEY_PEM, "public"),
            (SIGNING_KEY_SECRET_ARN, "arn:aws:secretsmanager:x"),
            (SIGNING_KEY_FILE, "f"),
            (SIGNING_KEY_PEM, "private"),
            (EXCHANGE_RATE_LIMIT, "3"),
        ]
        .into();
        fn check<T>(
            all: &HashMap<&str, &str>,
            variables: &[&str],
            load: impl Fn(&dyn Fn(&str) -> Option<String>) -> Result<T, ConfigError>,
        ) {
            let asked = RefCell::new(vec![]);
            let get = |k: &str| {
                asked.borrow_mut().push(k.to_owned());
                all.get(k).map(|v| (*v).to_owned())
            };
            assert!(load(&get).is_ok());
            for k in asked.borrow().iter() {
                assert!(variables.contains(&k.as_str()), "reads {k}, which is not in its VARIABLES");
            }
            let only: HashMap<&str, &str> =
                all.iter().filter(|(k, _)| variables.contains(k)).map(|(k, v)| (*k, *v)).collect();
            assert!(load(&|k: &str| only.get(k).map(|v| (*v).to_owned())).is_ok(), "loads from {variables:?} alone");
        }
        check(&all, BaseConfig::VARIABLES, |g| BaseConfig::from_lookup(g));
        check(&all, JwksConfig::VARIABLES, |g| JwksConfig::from_lookup(g));
        check(&all, ApiConfig::VARIABLES, |g| ApiConfig::from_lookup(g));
        check(&all, WorkerConfig::VARIABLES, |g| WorkerConfig::from_lookup(g));
        check(&all, Config::VARIABLES, |g| Config::from_lookup(g));
        let e = ApiConfig::from_lookup(|k| {
            (k != SIGNING_PUBLIC_KEY_PEM).then(|| all.get(k).map(|v| (*v).to_owned())).flatten()
        });
        assert_eq!(
            e.expect_err("no public key").to_string(),
            "environment variable SIGNING_PUBLIC_KEY_PEM is required"
        );
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

    #[test]
    fn the_log_retention_has_a_documented_default_and_a_range() {
        let worker = |days: Option<&str>| {
            WorkerConfig::from_lookup(|k| match k {
                TABLE_NAME => Some("t".into()),
                LOG_RETENTION_DAYS => days.map(str::to_owned),
                _ => None,
            })
        };
        assert_eq!(worker(None).expect("default").log_retention_days, 30);
        assert_eq!(worker(Some("7")).expect("set").log_retention_days, 7);
        for bad in ["0", "31", "-1", "a week"] {
            let e = worker(Some(bad)).expect_err(bad).to_string();
            assert!(e.contains(LOG_RETENTION_DAYS), "{e}");
        }
    }
}

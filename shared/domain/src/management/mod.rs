//! The Management API (`/api/v2`): who may call it, its error envelope, paging and field
//! selection, and the use cases on device credentials, users and clients.

pub mod clients;
pub mod device_credentials;
pub mod users;

use serde_json::{Map, Value};

use crate::ids::ClientId;
use crate::params::Params;
use crate::ports::{PageRequest, StoreError};
use crate::scope::Scope;

/// Every Management API scope this service knows.
pub const SCOPES: &[&str] = &[
    "read:device_credentials",
    "delete:device_credentials",
    "read:users",
    "create:users",
    "update:users",
    "delete:users",
    "read:clients",
    "create:clients",
    "update:clients",
    "delete:clients",
];

pub const DEFAULT_PER_PAGE: u32 = 50;
pub const MAX_PER_PAGE: u32 = 100;
/// How long a bulk revocation may spend removing records before answering; the tokens are
/// already unusable, and a repeated request finishes the cleanup.
pub const PURGE_BUDGET: std::time::Duration = std::time::Duration::from_secs(6);

/// The caller of the Management API, from a verified access token.
#[derive(Debug, Clone)]
pub struct Principal {
    pub client_id: ClientId,
    pub scopes: Scope,
}

impl Principal {
    /// Passes if the token has any of `scopes`.
    pub fn require(&self, scopes: &[&str]) -> Result<(), MgmtError> {
        if scopes.iter().any(|s| self.scopes.contains(s)) { Ok(()) } else { Err(MgmtError::insufficient_scope(scopes)) }
    }
}

/// Auth0's Management API error envelope: `{statusCode, error, message, errorCode}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MgmtError {
    pub status: u16,
    pub message: String,
    pub error_code: Option<&'static str>,
}

impl MgmtError {
    pub fn new(status: u16, message: impl Into<String>, error_code: Option<&'static str>) -> Self {
        Self { status, message: message.into(), error_code }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message, Some("invalid_body"))
    }
    pub fn bad_query(message: impl Into<String>) -> Self {
        Self::new(400, message, Some("invalid_query_string"))
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, message, None)
    }
    pub fn insufficient_scope(expected: &[&str]) -> Self {
        Self::new(
            403,
            format!("Insufficient scope, expected any of: {}", expected.join(",")),
            Some("insufficient_scope"),
        )
    }
    pub fn not_found(message: impl Into<String>, code: &'static str) -> Self {
        Self::new(404, message, Some(code))
    }
    pub fn conflict(message: impl Into<String>, code: &'static str) -> Self {
        Self::new(409, message, Some(code))
    }
    pub fn unavailable() -> Self {
        Self::new(503, "The service is temporarily unavailable, try again shortly.", Some("temporarily_unavailable"))
    }
    /// The HTTP reason phrase, as Auth0 puts it in `error`.
    pub fn error(&self) -> &'static str {
        match self.status {
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            409 => "Conflict",
            413 => "Payload Too Large",
            415 => "Unsupported Media Type",
            429 => "Too Many Requests",
            503 => "Service Unavailable",
            _ => "Internal Server Error",
        }
    }
    pub fn body(&self) -> Value {
        let mut m = Map::new();
        m.insert("statusCode".into(), self.status.into());
        m.insert("error".into(), self.error().into());
        m.insert("message".into(), self.message.clone().into());
        if let Some(code) = self.error_code {
            m.insert("errorCode".into(), code.into());
        }
        Value::Object(m)
    }
}

impl From<StoreError> for MgmtError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable { .. } => Self::unavailable(),
            StoreError::Corrupt(m) => {
                tracing::error!(error = %m, "management: corrupt item");
                Self::new(500, "Internal error.", None)
            }
        }
    }
}

/// `true`/`false` as the SDKs send them.
pub fn parse_bool(p: &Params, name: &str) -> Result<Option<bool>, MgmtError> {
    match p.get(name) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(v) => {
            Err(MgmtError::bad_query(format!("Query validation error: '{name}' must be true or false, got '{v}'")))
        }
    }
}

/// `page` (0-based) and `per_page` (1 to 100, default 50).
pub fn parse_page(p: &Params) -> Result<PageRequest, MgmtError> {
    let num = |name: &str, default: u32, range: std::ops::RangeInclusive<u32>| -> Result<u32, MgmtError> {
        match p.get(name) {
            None => Ok(default),
            Some(v) => v.parse::<u32>().ok().filter(|n| range.contains(n)).ok_or_else(|| {
                MgmtError::bad_query(format!("Query validation error: '{name}' must be an integer in {range:?}"))
            }),
        }
    };
    Ok(PageRequest {
        page: num("page", 0, 0..=100_000)?,
        per_page: num("per_page", DEFAULT_PER_PAGE, 1..=MAX_PER_PAGE)?,
    })
}

/// `fields` (comma-separated) with `include_fields` (default true).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    names: Vec<String>,
    include: bool,
}

impl Fields {
    pub fn parse(p: &Params, known: &[&str]) -> Result<Option<Self>, MgmtError> {
        let include = parse_bool(p, "include_fields")?.unwrap_or(true);
        let Some(list) = p.get("fields") else { return Ok(None) };
        let names: Vec<String> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
        if let Some(bad) = names.iter().find(|n| !known.contains(&n.as_str())) {
            return Err(MgmtError::bad_query(format!("Query validation error: unknown field '{bad}' in fields")));
        }
        Ok(Some(Self { names, include }))
    }

    pub fn apply(&self, v: Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.into_iter().filter(|(k, _)| self.names.iter().any(|n| n == k) == self.include).collect(),
            ),
            other => other,
        }
    }
}

pub fn select(fields: &Option<Fields>, v: Value) -> Value {
    match fields {
        Some(f) => f.apply(v),
        None => v,
    }
}

/// A page, as a bare array or, with `include_totals=true`, Auth0's envelope.
pub fn paged(key: &str, items: Vec<Value>, page: PageRequest, total: Option<u64>) -> Value {
    match total {
        None => Value::Array(items),
        Some(total) => {
            let mut m = Map::new();
            m.insert("start".into(), page.skip().into());
            m.insert("limit".into(), page.per_page.into());
            m.insert("length".into(), items.len().into());
            m.insert("total".into(), total.into());
            m.insert(key.into(), Value::Array(items));
            Value::Object(m)
        }
    }
}

/// Percent-decoded path parameter (`auth0%7C…` → `auth0|…`).
pub fn path_param(raw: &str) -> Result<String, MgmtError> {
    percent_decode(raw).ok_or_else(|| MgmtError::bad_request("Invalid request URI: bad percent-encoding"))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A JSON request body as an object, refusing anything else.
pub fn body_object(v: Value) -> Result<Map<String, Value>, MgmtError> {
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(MgmtError::bad_request("Payload validation error: the body must be a JSON object")),
    }
}

/// Refuses properties outside `allowed` (Auth0: "Additional properties not allowed").
pub fn only_known(m: &Map<String, Value>, allowed: &[&str]) -> Result<(), MgmtError> {
    let extra: Vec<&str> = m.keys().map(String::as_str).filter(|k| !allowed.contains(k)).collect();
    if extra.is_empty() {
        Ok(())
    } else {
        Err(MgmtError::bad_request(format!(
            "Payload validation error: 'Additional properties not allowed: {}'",
            extra.join(",")
        )))
    }
}

pub fn opt_string(m: &Map<String, Value>, name: &str, max: usize) -> Result<Option<String>, MgmtError> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max && !s.chars().any(char::is_control) => Ok(Some(s.clone())),
        Some(_) => Err(MgmtError::bad_request(format!(
            "Payload validation error: '{name}' must be a string of at most {max} characters without control characters"
        ))),
    }
}

pub fn opt_bool(m: &Map<String, Value>, name: &str) -> Result<Option<bool>, MgmtError> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(MgmtError::bad_request(format!("Payload validation error: '{name}' must be a boolean"))),
    }
}

pub fn opt_strings(m: &Map<String, Value>, name: &str, max_items: usize) -> Result<Option<Vec<String>>, MgmtError> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) if a.len() <= max_items => a
            .iter()
            .map(|v| match v {
                Value::String(s) if s.len() <= 2048 && !s.chars().any(char::is_control) => Ok(s.clone()),
                _ => Err(MgmtError::bad_request(format!(
                    "Payload validation error: '{name}' must be an array of strings"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(MgmtError::bad_request(format!(
            "Payload validation error: '{name}' must be an array of at most {max_items} strings"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(pairs.iter().copied()).expect("unique")
    }

    #[test]
    fn envelope() {
        let e = MgmtError::insufficient_scope(&["read:device_credentials"]);
        assert_eq!(
            e.body(),
            serde_json::json!({"statusCode":403,"error":"Forbidden","message":"Insufficient scope, expected any of: read:device_credentials","errorCode":"insufficient_scope"})
        );
        assert_eq!(MgmtError::unauthorized("Missing authentication").body().get("errorCode"), None);
    }

    #[test]
    fn paging_and_fields() {
        assert_eq!(parse_page(&params(&[])).ok(), Some(PageRequest { page: 0, per_page: 50 }));
        assert_eq!(
            parse_page(&params(&[("page", "2"), ("per_page", "100")])).ok(),
            Some(PageRequest { page: 2, per_page: 100 })
        );
        assert!(parse_page(&params(&[("per_page", "101")])).is_err());
        assert!(parse_page(&params(&[("page", "-1")])).is_err());
        let f = Fields::parse(&params(&[("fields", "id,device_name")]), &["id", "device_name", "type"]).expect("ok");
        let v = select(&f, serde_json::json!({"id":"a","device_name":"b","type":"c"}));
        assert_eq!(v, serde_json::json!({"id":"a","device_name":"b"}));
        let f =
            Fields::parse(&params(&[("fields", "type"), ("include_fields", "false")]), &["id", "type"]).expect("ok");
        assert_eq!(select(&f, serde_json::json!({"id":"a","type":"c"})), serde_json::json!({"id":"a"}));
        assert!(Fields::parse(&params(&[("fields", "secret")]), &["id"]).is_err());
    }

    #[test]
    fn path_params_decode() {
        assert_eq!(path_param("auth0%7Cabc").ok().as_deref(), Some("auth0|abc"));
        assert!(path_param("bad%zz").is_err());
        assert!(path_param("%ff").is_err());
    }
}

//! Listings as Auth0 has them: `page` (0-based) and `per_page`, `include_totals`, field
//! selection (`fields`, `include_fields`), and the page as a bare array or, with totals, an
//! envelope `{start, limit, length, total, <key>: […]}`.

use crate::params::Params;
use rt_domain::management::{Page, Paging};
use rt_domain::ports::PageRequest;
use serde_json::{Map, Value};

use super::error::ApiError;

pub const DEFAULT_PER_PAGE: u32 = 50;
pub const MAX_PER_PAGE: u32 = 100;

fn bad(message: String) -> ApiError {
    ApiError::Query(message.into())
}

/// `true`/`false` as the SDKs send them.
pub fn parse_bool(p: &Params, name: &str) -> Result<Option<bool>, ApiError> {
    match p.get(name) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(v) => Err(bad(format!("Query validation error: '{name}' must be true or false, got '{v}'"))),
    }
}

/// `page` (0-based) and `per_page` (1 to 100, default 50).
pub fn parse_page(p: &Params) -> Result<PageRequest, ApiError> {
    let num = |name: &str, default: u32, range: std::ops::RangeInclusive<u32>| -> Result<u32, ApiError> {
        match p.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| bad(format!("Query validation error: '{name}' must be an integer in {range:?}"))),
        }
    };
    Ok(PageRequest {
        page: num("page", 0, 0..=100_000)?,
        per_page: num("per_page", DEFAULT_PER_PAGE, 1..=MAX_PER_PAGE)?,
    })
}

/// The page and `include_totals` (default false).
pub fn parse_paging(p: &Params) -> Result<Paging, ApiError> {
    let page = parse_page(p)?;
    let with_total = parse_bool(p, "include_totals")?.unwrap_or(false);
    Ok(Paging { page, with_total })
}

/// `fields` (comma-separated) with `include_fields` (default true).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    names: Vec<String>,
    include: bool,
}

impl Fields {
    /// `None`: every field.
    pub fn parse(p: &Params, known: &[&str]) -> Result<Option<Self>, ApiError> {
        let include = parse_bool(p, "include_fields")?.unwrap_or(true);
        let Some(list) = p.get("fields") else { return Ok(None) };
        let names: Vec<String> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
        if let Some(bad_name) = names.iter().find(|n| !known.contains(&n.as_str())) {
            return Err(bad(format!("Query validation error: unknown field '{bad_name}' in fields")));
        }
        Ok(Some(Self { names, include }))
    }

    fn apply(&self, v: Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.into_iter().filter(|(k, _)| self.names.iter().any(|n| n == k) == self.include).collect(),
            ),
            other => other,
        }
    }
}

/// `v` with only the selected fields.
pub fn select(fields: &Option<Fields>, v: Value) -> Value {
    match fields {
        Some(f) => f.apply(v),
        None => v,
    }
}

/// A page, each item in its view with the selected fields: a bare array or, when the total was
/// asked for, Auth0's envelope with the items under `key`.
pub fn paged<T>(key: &str, page: &Page<T>, fields: &Option<Fields>, view: impl Fn(&T) -> Value) -> Value {
    let items: Vec<Value> = page.items.iter().map(|i| select(fields, view(i))).collect();
    match page.total {
        None => Value::Array(items),
        Some(total) => {
            let mut m = Map::new();
            m.insert("start".into(), page.request.skip().into());
            m.insert("limit".into(), page.request.per_page.into());
            m.insert("length".into(), items.len().into());
            m.insert("total".into(), total.into());
            m.insert(key.into(), Value::Array(items));
            Value::Object(m)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(pairs.iter().copied()).expect("unique")
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
        assert!(parse_paging(&params(&[("include_totals", "maybe")])).is_err());
        let f = Fields::parse(&params(&[("fields", "id,device_name")]), &["id", "device_name", "type"]).expect("ok");
        let v = select(&f, json!({"id":"a","device_name":"b","type":"c"}));
        assert_eq!(v, json!({"id":"a","device_name":"b"}));
        let f =
            Fields::parse(&params(&[("fields", "type"), ("include_fields", "false")]), &["id", "type"]).expect("ok");
        assert_eq!(select(&f, json!({"id":"a","type":"c"})), json!({"id":"a"}));
        assert!(Fields::parse(&params(&[("fields", "secret")]), &["id"]).is_err());
    }

    #[test]
    fn pages_are_bare_or_enveloped() {
        let request = PageRequest { page: 1, per_page: 2 };
        let page = Page { items: vec![1, 2], request, total: None };
        assert_eq!(paged("n", &page, &None, |i| json!({"i": i})), json!([{"i":1},{"i":2}]));
        let page = Page { items: vec![3], request, total: Some(3) };
        assert_eq!(
            paged("n", &page, &None, |i| json!({"i": i})),
            json!({"start":2,"limit":2,"length":1,"total":3,"n":[{"i":3}]})
        );
    }
}

//! Listings as Auth0 has them: `page` (0-based) and `per_page`, `include_totals`, field
//! selection (`fields`, `include_fields`), and the page as a bare array or, with totals, an
//! envelope `{start, limit, length, total, <key>: […]}`.

use crate::params::Params;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rt_domain::management::{Page, Paging};
use rt_domain::ports::{PageRequest, WalkCursor};
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

/// Results an offset page may reach (`(page + 1) × per_page`), as Auth0 limits user
/// searches: an offset page reads every entry it skips, so deeper pages take a checkpoint.
pub const MAX_OFFSET_RESULTS: u64 = 1_000;

/// [`parse_paging`] for a listing that also offers checkpoints: refuses pages past
/// [`MAX_OFFSET_RESULTS`] and points to `from`/`take`.
pub fn parse_shallow_paging(p: &Params) -> Result<Paging, ApiError> {
    let paging = parse_paging(p)?;
    if paging.page.skip() + u64::from(paging.page.per_page) > MAX_OFFSET_RESULTS {
        return Err(bad(format!(
            "Query validation error: you can only page through the first {MAX_OFFSET_RESULTS} records with page and \
             per_page; use from and take (checkpoint paging) to read further"
        )));
    }
    Ok(paging)
}

/// Longest checkpoint accepted in `from`.
pub const MAX_CHECKPOINT_LEN: usize = 1024;

/// A checkpoint as the caller sees it: opaque (base64url of the store's position).
pub fn checkpoint(position: &WalkCursor) -> String {
    URL_SAFE_NO_PAD.encode(position.as_str())
}

/// Checkpoint paging, when the query asks for it (`from` or `take`): the position after which
/// to read and how many (`take`, 1 to 100, default 50). `page` and `include_totals` do not
/// combine with it.
pub fn parse_checkpoint(p: &Params) -> Result<Option<(Option<WalkCursor>, u32)>, ApiError> {
    if p.get("from").is_none() && p.get("take").is_none() {
        return Ok(None);
    }
    if p.get("page").is_some() || p.get("per_page").is_some() || p.get("include_totals").is_some() {
        return Err(bad(
            "Query validation error: from and take (checkpoint paging) do not combine with page, per_page or \
             include_totals"
                .into(),
        ));
    }
    let take =
        match p.get("take") {
            None => DEFAULT_PER_PAGE,
            Some(v) => v.parse::<u32>().ok().filter(|n| (1..=MAX_PER_PAGE).contains(n)).ok_or_else(|| {
                bad(format!("Query validation error: 'take' must be an integer in 1..={MAX_PER_PAGE}"))
            })?,
        };
    let from = match p.get("from").filter(|f| !f.is_empty()) {
        None => None,
        Some(f) => Some(
            decode_checkpoint(f)
                .ok_or_else(|| bad("Query validation error: 'from' is not a checkpoint this API returned".into()))?,
        ),
    };
    Ok(Some((from, take)))
}

/// A checkpoint made by [`checkpoint`] (bounded, printable), or `None`.
pub fn decode_checkpoint(f: &str) -> Option<WalkCursor> {
    (f.len() <= MAX_CHECKPOINT_LEN)
        .then(|| URL_SAFE_NO_PAD.decode(f).ok())
        .flatten()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|s| !s.chars().any(char::is_control))
        .map(WalkCursor::new)
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
    fn offset_pages_are_shallow_and_checkpoints_opaque_and_checked() {
        assert!(parse_shallow_paging(&params(&[("page", "9"), ("per_page", "100")])).is_ok());
        assert!(parse_shallow_paging(&params(&[("page", "10"), ("per_page", "100")])).is_err());
        assert!(parse_shallow_paging(&params(&[("page", "100000"), ("per_page", "100")])).is_err());
        assert_eq!(parse_checkpoint(&params(&[])).ok(), Some(None));
        let c = checkpoint(&WalkCursor::new("ada@example.com".into()));
        let (from, take) = parse_checkpoint(&params(&[("from", &c), ("take", "10")])).ok().flatten().expect("some");
        assert_eq!((from.as_ref().map(WalkCursor::as_str), take), (Some("ada@example.com"), 10));
        assert!(parse_checkpoint(&params(&[("take", "101")])).is_err());
        assert!(parse_checkpoint(&params(&[("from", "not base64!")])).is_err());
        assert!(parse_checkpoint(&params(&[("from", &"A".repeat(2000))])).is_err());
        assert!(parse_checkpoint(&params(&[("from", &c), ("page", "1")])).is_err());
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

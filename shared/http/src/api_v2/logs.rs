//! `/api/v2/logs` and `/api/v2/users/{id}/logs`: Auth0's log entry, the `q` search (`type:`,
//! `user_id:`, `client_id:`, joined by spaces or `AND`), offset pages (`page`, `per_page`, at
//! most 1000 entries deep), checkpoint pages (`from`, `take`) and `sort=date:1|-1`.

use lambda_http::Request;
use rt_domain::audit::{AuditEvent, EventType, LogFilter, LogId};
use rt_domain::clock::Timestamp;
use rt_domain::ids::{ClientId, UserId};
use rt_domain::management::logs::{self, LogSearch, MAX_TAKE};
use rt_domain::management::{Entity, MgmtError, Page, Principal};
use rt_domain::ports::AuditLog;
use serde_json::{Map, Value};

use super::error::ApiError;
use super::listing::{DEFAULT_PER_PAGE, Fields, paged, parse_paging, select};
use super::{Reply, decode, path, query};
use crate::params::Params;

pub const FIELDS: &[&str] = &[
    "log_id",
    "date",
    "type",
    "description",
    "client_id",
    "client_name",
    "ip",
    "user_agent",
    "user_id",
    "user_name",
    "details",
];

/// Longest `q` (bytes).
pub const MAX_QUERY: usize = 1024;

/// Auth0's log entry. Absent facts are left out; nothing secret is in an event.
pub fn view(e: &AuditEvent) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            m.insert(k.into(), v.into());
        }
    };
    put("log_id", Some(e.id.as_str()));
    put("date", Some(&e.at().to_rfc3339()));
    put("type", Some(e.kind.code()));
    put("description", Some(&e.description));
    put("client_id", e.client_id.as_ref().map(ClientId::as_str));
    put("client_name", e.client_name.as_deref());
    put("ip", e.source.ip.as_deref());
    put("user_agent", e.source.user_agent.as_deref());
    put("user_id", e.user_id.as_ref().map(UserId::as_str));
    put("user_name", e.user_name.as_deref());
    let mut details = Map::new();
    if let Some(d) = &e.device {
        details.insert("device".into(), d.as_str().into());
    }
    if let Some(c) = &e.credential_id {
        details.insert("device_credential_id".into(), c.as_str().into());
    }
    if let Some(r) = &e.revocation {
        let (channel, actor) = r.by.parts();
        let mut by = Map::new();
        by.insert("channel".into(), channel.into());
        if let Some(a) = actor {
            by.insert("id".into(), a.into());
        }
        details.insert("reason".into(), r.reason.code().into());
        details.insert("revoked_by".into(), Value::Object(by));
    }
    if let Some(n) = e.count {
        details.insert("refresh_tokens_revoked".into(), n.into());
    }
    m.insert("details".into(), Value::Object(details));
    Value::Object(m)
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::Query(message.into().into())
}

/// The terms of `q`: `field:value` or `field:"value"`, separated by spaces (`AND` allowed).
fn terms(q: &str) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    let mut chars = q.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut field = String::new();
        while let Some(c) = chars.next_if(|c| *c != ':' && !c.is_whitespace()) {
            field.push(c);
        }
        if field == "AND" || field == "and" {
            continue;
        }
        if chars.next() != Some(':') {
            return Err(bad(format!(
                "Query validation error: '{field}' is not a term; use type:<code>, user_id:\"…\" or client_id:\"…\""
            )));
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => return Err(bad("Query validation error: unterminated quote in q")),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                value.push(c);
            }
        }
        out.push((field, value));
    }
}

/// `q` as a filter; `None` when it can match nothing (an unknown type code or id format).
pub fn parse_q(q: &str) -> Result<Option<LogFilter>, ApiError> {
    if q.len() > MAX_QUERY {
        return Err(bad(format!("Query validation error: q is longer than {MAX_QUERY} bytes")));
    }
    let mut f = LogFilter::default();
    let mut matchable = true;
    for (field, value) in terms(q)? {
        match field.as_str() {
            "type" => match EventType::parse(&value) {
                Some(t) => f.kind = Some(t),
                None => matchable = false,
            },
            "user_id" => match UserId::parse(&value) {
                Ok(u) => f.user = Some(u),
                Err(_) => matchable = false,
            },
            "client_id" => match ClientId::parse(&value) {
                Ok(c) => f.client = Some(c),
                Err(_) => matchable = false,
            },
            other => {
                return Err(bad(format!(
                    "Query validation error: searching by '{other}' is not supported (type, user_id, client_id)"
                )));
            }
        }
    }
    Ok(matchable.then_some(f))
}

/// `sort`: `date:-1` (default, newest first) or `date:1`.
fn oldest_first(p: &Params) -> Result<bool, ApiError> {
    match p.get("sort") {
        None | Some("date:-1") => Ok(false),
        Some("date:1") => Ok(true),
        Some(other) => Err(bad(format!("Query validation error: sort '{other}' must be date:1 or date:-1"))),
    }
}

/// `take` (1 to 100, default 50) and `from` (a log id).
fn checkpoint_params(p: &Params) -> Result<(Option<LogId>, u32), ApiError> {
    let take = match p.get("take") {
        None => DEFAULT_PER_PAGE,
        Some(t) => t
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_TAKE).contains(n))
            .ok_or_else(|| bad(format!("Query validation error: 'take' must be an integer in 1..={MAX_TAKE}")))?,
    };
    let from = p
        .get("from")
        .map(|f| LogId::parse(f).ok_or_else(|| bad("Query validation error: 'from' is not a log id")))
        .transpose()?;
    Ok((from, take))
}

/// `GET /logs`
pub async fn list<S: AuditLog>(store: &S, who: Principal, req: &Request, now: Timestamp) -> Result<Reply, ApiError> {
    let p = query(req)?;
    who.require(logs::READ)?;
    let fields = Fields::parse(&p, FIELDS)?;
    if p.get("from").is_some() || p.get("take").is_some() {
        // Checkpoint paging: every other parameter is ignored (as Auth0 does).
        let (from, take) = checkpoint_params(&p)?;
        let events = logs::checkpoint(store, &who, from, take, now).await?;
        return Ok(Reply::Json(200, Value::Array(events.iter().map(|e| select(&fields, view(e))).collect())));
    }
    let paging = parse_paging(&p)?;
    let oldest_first = oldest_first(&p)?;
    let Some(filter) = p.get("q").map(parse_q).transpose()?.unwrap_or(Some(LogFilter::default())) else {
        return Ok(Reply::Json(200, paged("logs", &Page::empty(paging), &fields, view)));
    };
    let page = logs::search(store, &who, LogSearch { filter, paging, oldest_first }, now).await?;
    Ok(Reply::Json(200, paged("logs", &page, &fields, view)))
}

/// `GET /users/{id}/logs`
pub async fn list_for_user<S: AuditLog>(store: &S, who: Principal, req: &Request) -> Result<Reply, ApiError> {
    let (raw, p) = (path(req, "id")?, query(req)?);
    who.require(logs::READ)?;
    let paging = parse_paging(&p)?;
    let oldest_first = oldest_first(&p)?;
    let user = UserId::parse(&decode(&raw)?).map_err(|_| MgmtError::NotFound(Entity::User))?;
    let page = logs::of_user(store, &who, &user, paging, oldest_first).await?;
    Ok(Reply::Json(200, paged("logs", &page, &None, view)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rt_domain::audit::{Actor, Reason, Revocation, Source};
    use serde_json::json;

    #[test]
    fn queries() {
        let u = UserId::generate();
        let c = ClientId::generate();
        let f = parse_q(&format!("type:fp AND user_id:\"{u}\" client_id:{c}")).expect("valid").expect("matchable");
        assert_eq!(f, LogFilter { kind: Some(EventType::WrongPassword), user: Some(u), client: Some(c) });
        assert_eq!(parse_q("type:nope").expect("valid"), None, "an unknown code matches nothing");
        assert_eq!(parse_q("").expect("valid"), Some(LogFilter::default()));
        assert!(parse_q("ip:1.2.3.4").is_err());
        assert!(parse_q("user_id:\"open").is_err());
        assert!(parse_q("bare").is_err());
        assert!(parse_q(&format!("type:{}", "s".repeat(MAX_QUERY))).is_err());
    }

    #[test]
    fn entries_are_auth0_shaped() {
        let u = UserId::generate();
        let e = AuditEvent::revoked(
            Revocation { reason: Reason::Token, by: Actor::Service },
            Timestamp::from_secs(1_800_000_000),
            Source::new("203.0.113.5", Some("curl/8")),
        )
        .user(&u, Some("a@example.com"))
        .device(Some("phone"));
        let v = view(&e);
        assert_eq!(v["date"], "2027-01-15T08:00:00.000Z");
        assert_eq!(v["type"], "srrt");
        assert_eq!((v["ip"].as_str(), v["user_agent"].as_str()), (Some("203.0.113.5"), Some("curl/8")));
        assert_eq!(v["details"]["device"], "phone");
        assert_eq!(v["details"]["revoked_by"], json!({"channel": "reuse_detection"}));
        assert!(v.get("client_id").is_none());
    }
}

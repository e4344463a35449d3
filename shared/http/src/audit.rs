//! Recording audit events from the handlers (`rt_domain::audit` decides what each outcome is):
//! where the request came from, and the client as the cache knows it.

use lambda_http::Request;
use rt_domain::audit::{self, AuditEvent, Source};
use rt_domain::authorize::LoginError;
use rt_domain::client::Client;
use rt_domain::clock::Timestamp;
use rt_domain::ids::ClientId;
use rt_domain::ports::{AuditLog, ClientStore, Freshness};

use crate::request;

/// The request's source address and User-Agent.
pub fn source(req: &Request) -> Source {
    Source::new(request::source_ip(req), request::header(req, "user-agent"))
}

/// `e` about the client `id` names: with its name when the per-process cache has the client
/// (every path that records has just read it through the cache), its id alone otherwise.
pub async fn with_client<S: ClientStore>(store: &S, e: AuditEvent, id: Option<&str>) -> AuditEvent {
    let Some(id) = id.and_then(|i| ClientId::parse(i).ok()) else { return e };
    match store.get_client(&id, Freshness::Cached).await {
        Ok(Some(c)) => e.client(&c),
        _ => e.client_id(Some(id)),
    }
}

/// Records `e` ([`audit::record`]: a failure is logged, never answered).
pub async fn record<S: AuditLog>(store: &S, e: &AuditEvent) {
    audit::record(store, e).await;
}

/// Records a refused sign-in (`/authorize`, `/dashboard/login`): nothing for a server-side
/// failure; the typed name, and the account when one was found.
pub async fn login_failed<S: AuditLog>(
    store: &S,
    req: &Request,
    e: &LoginError,
    client: Option<&Client>,
    username: &str,
    now: Timestamp,
) {
    let Some(kind) = audit::EventType::of_login_error(e) else { return };
    let mut event = AuditEvent::new(kind, now, source(req)).typed_user_name(username);
    if let Some(c) = client {
        event = event.client(c);
    } else {
        event = event.describe(format!("{} (dashboard)", kind.title()));
    }
    if let LoginError::WrongPassword(u) | LoginError::NotAdministrator(u) = e {
        event.user_id = Some(u.clone());
    }
    record(store, &event).await;
}

//! The audit log: security events, as Auth0's tenant logs have them (a log id, a date, an event
//! type code, a description, the client, the user, the device, the source address and user
//! agent). An event never holds a secret: no token, code, password, hash or client secret —
//! only ids (`dcr_…`, user and client ids) and what the request said about itself.
//!
//! Which event an outcome is, and which Auth0 code it carries ([`EventType`]), is decided here;
//! the handlers only call [`record`] with what they know of the request. Recording is one write
//! after the use case ([`crate::ports::AuditLog::record_event`]); a failed write never fails the
//! request: it is logged as an error carrying the whole event (ARCHITECTURE.md, *Audit log*).

use std::fmt;

use crate::authorize::LoginError;
use crate::client::Client;
use crate::clock::Timestamp;
use crate::delegation::DelegationError;
use crate::ids::{ClientId, DeviceCredentialId, UserId};
use crate::oauth_token::TokenError;
use crate::ports::AuditLog;

/// How long events are kept by default (`LOG_RETENTION_DAYS`), and the longest it may be set
/// to: Auth0 keeps 2 to 30 days by plan. Listings read at most this many days back (+ today).
pub const DEFAULT_RETENTION_DAYS: u32 = 30;
pub const MAX_RETENTION_DAYS: u32 = 30;

/// Longest user agent kept (characters); longer ones are cut.
pub const MAX_USER_AGENT: usize = 512;

/// An event's type, with its Auth0 log event code ([`EventType::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// `s`: a sign-in at `/authorize` or `/dashboard/login` (the implicit flow's refresh token,
    /// when one is issued, is issued by it: its id and device are in the event).
    SuccessLogin,
    /// `f`: a sign-in refused for another reason than the credentials (blocked user, not an
    /// administrator at the dashboard).
    FailedLogin,
    /// `fp`: a known account, a wrong password.
    WrongPassword,
    /// `fu`: no such account.
    WrongUsername,
    /// `limit_wc`: a sign-in refused by the throttle (429: the address, or the account from
    /// that address, over its failure limit).
    LoginThrottled,
    /// `seacft`: an authorization code redeemed (with the refresh token it issued, if any).
    SuccessCodeExchange,
    /// `feacft`: a code redemption refused (unknown, expired, reused code; bad verifier).
    FailedCodeExchange,
    /// `seccft`: a Management API token issued (`client_credentials`).
    SuccessClientCredentials,
    /// `feccft`: a `client_credentials` request refused (bad client secret, scope, audience).
    FailedClientCredentials,
    /// `sertft`: a refresh token exchanged at `/oauth/token`.
    SuccessRefreshExchange,
    /// `fertft`: a refresh exchange refused (unknown, revoked, expired, another client's).
    FailedRefreshExchange,
    /// `ferrt`: a retired member of a rotating family presented: the family is revoked.
    RefreshTokenReuse,
    /// `sd`: a refresh token exchanged at `/delegation` (legacy).
    SuccessDelegation,
    /// `fd`: a `/delegation` exchange refused.
    FailedDelegation,
    /// `api_limit`: an exchange over its per-(token, address) limit (429).
    RateLimited,
    /// `srrt`: refresh tokens revoked; [`Revocation`] says which and by whom.
    RefreshTokenRevoked,
}

impl EventType {
    pub const ALL: [EventType; 16] = [
        EventType::SuccessLogin,
        EventType::FailedLogin,
        EventType::WrongPassword,
        EventType::WrongUsername,
        EventType::LoginThrottled,
        EventType::SuccessCodeExchange,
        EventType::FailedCodeExchange,
        EventType::SuccessClientCredentials,
        EventType::FailedClientCredentials,
        EventType::SuccessRefreshExchange,
        EventType::FailedRefreshExchange,
        EventType::RefreshTokenReuse,
        EventType::SuccessDelegation,
        EventType::FailedDelegation,
        EventType::RateLimited,
        EventType::RefreshTokenRevoked,
    ];

    /// Auth0's log event type code.
    pub fn code(self) -> &'static str {
        match self {
            EventType::SuccessLogin => "s",
            EventType::FailedLogin => "f",
            EventType::WrongPassword => "fp",
            EventType::WrongUsername => "fu",
            EventType::LoginThrottled => "limit_wc",
            EventType::SuccessCodeExchange => "seacft",
            EventType::FailedCodeExchange => "feacft",
            EventType::SuccessClientCredentials => "seccft",
            EventType::FailedClientCredentials => "feccft",
            EventType::SuccessRefreshExchange => "sertft",
            EventType::FailedRefreshExchange => "fertft",
            EventType::RefreshTokenReuse => "ferrt",
            EventType::SuccessDelegation => "sd",
            EventType::FailedDelegation => "fd",
            EventType::RateLimited => "api_limit",
            EventType::RefreshTokenRevoked => "srrt",
        }
    }

    /// Auth0's name of the event (the dashboard's "Event" column).
    pub fn title(self) -> &'static str {
        match self {
            EventType::SuccessLogin => "Success Login",
            EventType::FailedLogin => "Failed Login",
            EventType::WrongPassword => "Failed Login (wrong password)",
            EventType::WrongUsername => "Failed Login (invalid email/username)",
            EventType::LoginThrottled => "Blocked Account",
            EventType::SuccessCodeExchange => "Success Exchange (Authorization Code for Access Token)",
            EventType::FailedCodeExchange => "Failed Exchange (Authorization Code for Access Token)",
            EventType::SuccessClientCredentials => "Success Exchange (Client Credentials for Access Token)",
            EventType::FailedClientCredentials => "Failed Exchange (Client Credentials for Access Token)",
            EventType::SuccessRefreshExchange => "Success Exchange (Refresh Token for Access Token)",
            EventType::FailedRefreshExchange => "Failed Exchange (Refresh Token for Access Token)",
            EventType::RefreshTokenReuse => "Failed Exchange (Rotating Refresh Token reused)",
            EventType::SuccessDelegation => "Success Delegation",
            EventType::FailedDelegation => "Failed Delegation",
            EventType::RateLimited => "Rate Limit on the Authentication API",
            EventType::RefreshTokenRevoked => "Success Revocation (Refresh Token)",
        }
    }

    /// The type of an Auth0 code.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }

    /// A failed event (`f…`, limits): written alone, never in a use case's transaction.
    pub fn is_failure(self) -> bool {
        !matches!(
            self,
            EventType::SuccessLogin
                | EventType::SuccessCodeExchange
                | EventType::SuccessClientCredentials
                | EventType::SuccessRefreshExchange
                | EventType::SuccessDelegation
                | EventType::RefreshTokenRevoked
        )
    }

    /// The event of a refused sign-in, or `None` for a server-side failure (no security event).
    pub fn of_login_error(e: &LoginError) -> Option<Self> {
        match e {
            LoginError::InvalidCredentials => Some(EventType::WrongUsername),
            LoginError::WrongPassword(_) => Some(EventType::WrongPassword),
            LoginError::NotAdministrator(_) | LoginError::Blocked => Some(EventType::FailedLogin),
            LoginError::Throttled { .. } => Some(EventType::LoginThrottled),
            LoginError::Store(_) | LoginError::Sign(_) => None,
        }
    }
}

/// The token endpoints' grants, each with its success and failure events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// `/oauth/token` `refresh_token`.
    Refresh,
    /// `/oauth/token` `authorization_code`.
    Code,
    /// `/oauth/token` `client_credentials`.
    ClientCredentials,
    /// `/delegation`.
    Delegation,
}

impl Grant {
    pub fn success(self) -> EventType {
        match self {
            Grant::Refresh => EventType::SuccessRefreshExchange,
            Grant::Code => EventType::SuccessCodeExchange,
            Grant::ClientCredentials => EventType::SuccessClientCredentials,
            Grant::Delegation => EventType::SuccessDelegation,
        }
    }

    pub fn failure(self) -> EventType {
        match self {
            Grant::Refresh => EventType::FailedRefreshExchange,
            Grant::Code => EventType::FailedCodeExchange,
            Grant::ClientCredentials => EventType::FailedClientCredentials,
            Grant::Delegation => EventType::FailedDelegation,
        }
    }

    /// The event of a refused `/oauth/token` request, `None` for a server-side failure.
    pub fn of_token_error(self, e: &TokenError) -> Option<EventType> {
        match e {
            TokenError::Store(_) | TokenError::Sign(_) => None,
            TokenError::RateLimited(_) => Some(EventType::RateLimited),
            TokenError::ReuseDetected => Some(EventType::RefreshTokenReuse),
            _ => Some(self.failure()),
        }
    }

    /// The event of a refused `/delegation` request, `None` for a server-side failure.
    pub fn of_delegation_error(e: &DelegationError) -> Option<EventType> {
        match e {
            DelegationError::Store(_) | DelegationError::Sign(_) => None,
            DelegationError::RateLimited(_) => Some(EventType::RateLimited),
            _ => Some(EventType::FailedDelegation),
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A log id: the event's time in milliseconds (13 digits) then 12 random letters and digits,
/// so that ids order by time (Auth0's checkpoint order is by log id) and never collide.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogId(String);

const LOG_ID_TIME: usize = 13;
const LOG_ID_RANDOM: usize = 12;

impl LogId {
    pub fn generate(at: Timestamp) -> Self {
        Self(format!("{:013}{}", at.millis().clamp(0, 9_999_999_999_999), crate::random::alphanumeric(LOG_ID_RANDOM)))
    }

    pub fn parse(s: &str) -> Option<Self> {
        let ok = s.len() == LOG_ID_TIME + LOG_ID_RANDOM
            && s.bytes().take(LOG_ID_TIME).all(|b| b.is_ascii_digit())
            && s.bytes().skip(LOG_ID_TIME).all(|b| b.is_ascii_alphanumeric());
        ok.then(|| Self(s.to_owned()))
    }

    /// When the event happened.
    pub fn at(&self) -> Timestamp {
        Timestamp::from_millis(self.0.get(..LOG_ID_TIME).and_then(|t| t.parse().ok()).unwrap_or(0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A UTC day (days since the epoch): the time bucket of the tenant-wide feed and of retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogDay(pub i64);

impl LogDay {
    pub fn of(t: Timestamp) -> Self {
        Self(t.secs().div_euclid(86_400))
    }
    pub fn start(self) -> Timestamp {
        Timestamp::from_secs(self.0.saturating_mul(86_400))
    }
    pub fn before(self, days: u32) -> Self {
        Self(self.0 - i64::from(days))
    }
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
    /// `yyyy-mm-dd`.
    pub fn date(self) -> String {
        self.start().to_rfc3339().get(..10).unwrap_or("1970-01-01").to_owned()
    }
}

/// Who revoked refresh tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A Management API call, by the machine-to-machine client that made it.
    ManagementApi(ClientId),
    /// An administrator in the dashboard.
    Dashboard(UserId),
    /// The application itself, at `/oauth/revoke` (RFC 7009).
    Application(ClientId),
    /// The service: reuse detection revoked a rotating family.
    Service,
}

impl Actor {
    /// `(channel, id)` as stored and shown under `details.revoked_by`.
    pub fn parts(&self) -> (&'static str, Option<&str>) {
        match self {
            Actor::ManagementApi(c) => ("management_api", Some(c.as_str())),
            Actor::Dashboard(u) => ("dashboard", Some(u.as_str())),
            Actor::Application(c) => ("oauth_revoke", Some(c.as_str())),
            Actor::Service => ("reuse_detection", None),
        }
    }

    pub fn from_parts(channel: &str, id: Option<&str>) -> Option<Self> {
        let id = id.unwrap_or("");
        match channel {
            "management_api" => ClientId::parse(id).ok().map(Actor::ManagementApi),
            "dashboard" => UserId::parse(id).ok().map(Actor::Dashboard),
            "oauth_revoke" => ClientId::parse(id).ok().map(Actor::Application),
            "reuse_detection" => Some(Actor::Service),
            _ => None,
        }
    }

    fn phrase(&self) -> &'static str {
        match self {
            Actor::ManagementApi(_) => "by the Management API",
            Actor::Dashboard(_) => "in the dashboard",
            Actor::Application(_) => "by the application (/oauth/revoke)",
            Actor::Service => "by reuse detection",
        }
    }
}

/// What was revoked, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// One refresh token (a device credential, its whole rotating family).
    Token,
    /// Every token of one device (the dashboard's UNLINK).
    Device,
    /// Every token of the user ("Revoke all").
    AllTokens,
    PasswordChange,
    Block,
    UserDeleted,
    /// A retired member of a rotating family was presented.
    Reuse,
}

impl Reason {
    pub const ALL: [Reason; 7] = [
        Reason::Token,
        Reason::Device,
        Reason::AllTokens,
        Reason::PasswordChange,
        Reason::Block,
        Reason::UserDeleted,
        Reason::Reuse,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Reason::Token => "token",
            Reason::Device => "device",
            Reason::AllTokens => "all_tokens",
            Reason::PasswordChange => "password_change",
            Reason::Block => "block",
            Reason::UserDeleted => "user_deleted",
            Reason::Reuse => "reuse",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == s)
    }

    fn phrase(self) -> &'static str {
        match self {
            Reason::Token => "Refresh token revoked",
            Reason::Device => "Refresh tokens of the device revoked",
            Reason::AllTokens => "All refresh tokens revoked",
            Reason::PasswordChange => "All refresh tokens revoked: password changed",
            Reason::Block => "All refresh tokens revoked: user blocked",
            Reason::UserDeleted => "All refresh tokens revoked: user deleted",
            Reason::Reuse => "Refresh token family revoked: a retired member was reused",
        }
    }
}

/// A revocation: what, why and by whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub reason: Reason,
    pub by: Actor,
}

/// Where a request came from, as it said (never trusted for anything but the record).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Source {
    /// The address and the User-Agent, cut to [`MAX_USER_AGENT`] characters, without control
    /// characters.
    pub fn new(ip: impl fmt::Display, user_agent: Option<&str>) -> Self {
        let user_agent = user_agent
            .map(|ua| ua.chars().filter(|c| !c.is_control()).take(MAX_USER_AGENT).collect::<String>())
            .filter(|ua| !ua.is_empty());
        Self { ip: Some(ip.to_string()), user_agent }
    }
}

/// One security event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub id: LogId,
    pub kind: EventType,
    pub description: String,
    pub client_id: Option<ClientId>,
    pub client_name: Option<String>,
    pub user_id: Option<UserId>,
    /// The account's e-mail (or, for a failed sign-in, the name typed).
    pub user_name: Option<String>,
    pub device: Option<String>,
    /// The refresh token concerned (its public id, never the token).
    pub credential_id: Option<DeviceCredentialId>,
    pub source: Source,
    pub revocation: Option<Revocation>,
    /// How many refresh tokens a revocation removed, when known.
    pub count: Option<u64>,
}

/// Longest typed user name kept in a failed sign-in's event.
const MAX_USER_NAME: usize = 254;

impl AuditEvent {
    /// An event of `kind` at `at`, with Auth0's title for a description.
    pub fn new(kind: EventType, at: Timestamp, source: Source) -> Self {
        Self {
            id: LogId::generate(at),
            kind,
            description: kind.title().to_owned(),
            client_id: None,
            client_name: None,
            user_id: None,
            user_name: None,
            device: None,
            credential_id: None,
            source,
            revocation: None,
            count: None,
        }
    }

    /// A revocation `r` (`srrt`), described by what and by whom.
    pub fn revoked(r: Revocation, at: Timestamp, source: Source) -> Self {
        let kind =
            if r.reason == Reason::Reuse { EventType::RefreshTokenReuse } else { EventType::RefreshTokenRevoked };
        let mut e = Self::new(kind, at, source);
        e.description = format!("{} {}", r.reason.phrase(), r.by.phrase());
        e.revocation = Some(r);
        e
    }

    pub fn at(&self) -> Timestamp {
        self.id.at()
    }

    pub fn describe(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    pub fn client(mut self, c: &Client) -> Self {
        self.client_id = Some(c.id.clone());
        self.client_name = Some(c.name.clone());
        self
    }

    pub fn client_id(mut self, c: Option<ClientId>) -> Self {
        self.client_id = c;
        self
    }

    pub fn user(mut self, id: &UserId, name: Option<&str>) -> Self {
        self.user_id = Some(id.clone());
        self.user_name = name.map(str::to_owned);
        self
    }

    /// The name typed at a failed sign-in (no account to link it to).
    pub fn typed_user_name(mut self, name: &str) -> Self {
        let name: String = name.trim().chars().filter(|c| !c.is_control()).take(MAX_USER_NAME).collect();
        self.user_name = (!name.is_empty()).then_some(name);
        self
    }

    pub fn device(mut self, d: Option<&str>) -> Self {
        self.device = d.map(str::to_owned);
        self
    }

    pub fn credential(mut self, id: Option<&DeviceCredentialId>) -> Self {
        self.credential_id = id.cloned();
        self
    }

    pub fn count(mut self, n: u64) -> Self {
        self.count = Some(n);
        self
    }
}

/// Records `e` (one write). A failure does not fail the caller: the store's own bounded retry
/// has run, so the event is logged as an error line carrying all of it (nothing secret is in
/// an event), for an alarm and a manual replay.
pub async fn record<L: AuditLog>(log: &L, e: &AuditEvent) {
    if let Err(err) = log.record_event(e).await {
        tracing::error!(
            error = %err,
            log_id = %e.id,
            event_type = e.kind.code(),
            user = e.user_id.as_ref().map_or("-", UserId::as_str),
            client = e.client_id.as_ref().map_or("-", ClientId::as_str),
            credential = e.credential_id.as_ref().map_or("-", DeviceCredentialId::as_str),
            ip = e.source.ip.as_deref().unwrap_or("-"),
            description = %e.description,
            "audit event not recorded"
        );
    }
}

/// What a log search selects (`q`): every condition must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    pub kind: Option<EventType>,
    pub user: Option<UserId>,
    pub client: Option<ClientId>,
}

impl LogFilter {
    pub fn matches(&self, e: &AuditEvent) -> bool {
        self.kind.is_none_or(|k| k == e.kind)
            && self.user.as_ref().is_none_or(|u| e.user_id.as_ref() == Some(u))
            && self.client.as_ref().is_none_or(|c| e.client_id.as_ref() == Some(c))
    }
}

/// Which way a listing of events goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Direction {
    /// Newest first, strictly before `before` (from the newest when `None`).
    NewestFirst { before: Option<LogId> },
    /// Oldest first, strictly after `after` (from the oldest when `None`).
    OldestFirst { after: Option<LogId> },
}

impl Direction {
    /// The same direction, continuing after `last`.
    pub fn after_event(&self, last: &LogId) -> Self {
        match self {
            Direction::NewestFirst { .. } => Direction::NewestFirst { before: Some(last.clone()) },
            Direction::OldestFirst { .. } => Direction::OldestFirst { after: Some(last.clone()) },
        }
    }

    pub fn newest_first(&self) -> bool {
        matches!(self, Direction::NewestFirst { .. })
    }

    /// Whether `id` lies beyond the cursor in this direction.
    pub fn admits(&self, id: &LogId) -> bool {
        match self {
            Direction::NewestFirst { before } => before.as_ref().is_none_or(|b| id < b),
            Direction::OldestFirst { after } => after.as_ref().is_none_or(|a| id > a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_auth0s_and_round_trip() {
        let codes: Vec<&str> = EventType::ALL.iter().map(|t| t.code()).collect();
        assert_eq!(
            codes,
            [
                "s",
                "f",
                "fp",
                "fu",
                "limit_wc",
                "seacft",
                "feacft",
                "seccft",
                "feccft",
                "sertft",
                "fertft",
                "ferrt",
                "sd",
                "fd",
                "api_limit",
                "srrt"
            ]
        );
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.code()), Some(t));
            assert!(!t.title().is_empty());
        }
        assert_eq!(EventType::parse("sapi"), None);
        assert!(EventType::WrongPassword.is_failure() && !EventType::SuccessRefreshExchange.is_failure());
    }

    #[test]
    fn login_errors_map_to_their_events() {
        let u = UserId::generate();
        assert_eq!(EventType::of_login_error(&LoginError::InvalidCredentials), Some(EventType::WrongUsername));
        assert_eq!(EventType::of_login_error(&LoginError::WrongPassword(u.clone())), Some(EventType::WrongPassword));
        assert_eq!(EventType::of_login_error(&LoginError::NotAdministrator(u)), Some(EventType::FailedLogin));
        assert_eq!(EventType::of_login_error(&LoginError::Blocked), Some(EventType::FailedLogin));
        assert_eq!(
            EventType::of_login_error(&LoginError::Throttled { retry_after: 3 }),
            Some(EventType::LoginThrottled)
        );
        let down = LoginError::Store(crate::ports::StoreError::unavailable("x"));
        assert_eq!(EventType::of_login_error(&down), None, "an outage is no security event");
    }

    #[test]
    fn grants_map_their_outcomes() {
        use crate::ratelimit::RateStatus;
        let rate = RateStatus { limit: 10, remaining: 0, reset: 60, retry_after: Some(60) };
        let refresh = Grant::Refresh;
        assert_eq!(refresh.success().code(), "sertft");
        assert_eq!(refresh.of_token_error(&TokenError::InvalidGrant("x")).map(EventType::code), Some("fertft"));
        assert_eq!(refresh.of_token_error(&TokenError::ReuseDetected).map(EventType::code), Some("ferrt"));
        assert_eq!(refresh.of_token_error(&TokenError::RateLimited(rate)).map(EventType::code), Some("api_limit"));
        assert_eq!(Grant::Code.of_token_error(&TokenError::InvalidClient).map(EventType::code), Some("feacft"));
        assert_eq!(Grant::Code.success().code(), "seacft");
        assert_eq!(Grant::ClientCredentials.success().code(), "seccft");
        assert_eq!(
            Grant::ClientCredentials.of_token_error(&TokenError::InvalidScope("s".into())).map(EventType::code),
            Some("feccft")
        );
        let down = TokenError::Store(crate::ports::StoreError::unavailable("x"));
        assert_eq!(refresh.of_token_error(&down), None);
        assert_eq!(Grant::Delegation.success().code(), "sd");
        assert_eq!(Grant::of_delegation_error(&DelegationError::InvalidClient).map(EventType::code), Some("fd"));
        assert_eq!(
            Grant::of_delegation_error(&DelegationError::RateLimited(rate)).map(EventType::code),
            Some("api_limit")
        );
    }

    #[test]
    fn revocations_say_what_and_by_whom() {
        let c = ClientId::generate();
        let e = AuditEvent::revoked(
            Revocation { reason: Reason::PasswordChange, by: Actor::ManagementApi(c.clone()) },
            Timestamp::from_secs(1),
            Source::default(),
        );
        assert_eq!(e.kind, EventType::RefreshTokenRevoked);
        assert_eq!(e.description, "All refresh tokens revoked: password changed by the Management API");
        let reuse = AuditEvent::revoked(
            Revocation { reason: Reason::Reuse, by: Actor::Service },
            Timestamp::from_secs(1),
            Source::default(),
        );
        assert_eq!(reuse.kind, EventType::RefreshTokenReuse);
        for a in [
            Actor::ManagementApi(c.clone()),
            Actor::Dashboard(UserId::generate()),
            Actor::Application(c),
            Actor::Service,
        ] {
            let (channel, id) = a.parts();
            assert_eq!(Actor::from_parts(channel, id), Some(a.clone()));
        }
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.code()), Some(r));
        }
    }

    #[test]
    fn log_ids_order_by_time_and_parse() {
        let a = LogId::generate(Timestamp::from_millis(1_800_000_000_000));
        let b = LogId::generate(Timestamp::from_millis(1_800_000_000_001));
        assert!(a < b);
        assert_eq!(a.at(), Timestamp::from_millis(1_800_000_000_000));
        assert_eq!(LogId::parse(a.as_str()), Some(a.clone()));
        assert_eq!(LogId::parse("1800000000000"), None);
        assert_eq!(LogId::parse("180000000000x abcdefghijkl"), None);
        assert_ne!(LogId::generate(Timestamp::from_millis(5)), LogId::generate(Timestamp::from_millis(5)));
        assert_eq!(LogDay::of(Timestamp::from_secs(86_400 * 3 + 5)).date(), "1970-01-04");
    }

    /// A log that is down.
    struct Down;

    impl AuditLog for Down {
        async fn record_event(&self, _: &AuditEvent) -> Result<(), crate::ports::StoreError> {
            Err(crate::ports::StoreError::unavailable("throttled"))
        }
        async fn user_events(
            &self,
            _: &UserId,
            _: &Direction,
            _: u32,
        ) -> Result<Vec<AuditEvent>, crate::ports::StoreError> {
            Ok(vec![])
        }
        async fn count_user_events(&self, _: &UserId) -> Result<u64, crate::ports::StoreError> {
            Ok(0)
        }
        async fn day_events(
            &self,
            _: LogDay,
            _: &Direction,
            _: u32,
        ) -> Result<Vec<AuditEvent>, crate::ports::StoreError> {
            Ok(vec![])
        }
        async fn purge_log_day(
            &self,
            _: LogDay,
            _: std::time::Duration,
        ) -> Result<crate::ports::Purge, crate::ports::StoreError> {
            Ok(crate::ports::Purge::default())
        }
    }

    /// Recording cannot fail its caller: it answers nothing (a failure is an error line), so a
    /// handler has no error to turn into a 5xx.
    #[tokio::test]
    async fn a_failed_write_is_logged_not_returned() {
        let e = AuditEvent::new(EventType::SuccessRefreshExchange, Timestamp::from_secs(1), Source::default());
        let () = record(&Down, &e).await;
    }

    #[test]
    fn sources_drop_control_characters_and_cut_long_agents() {
        let s = Source::new("203.0.113.9", Some(&format!("Mozilla\r\n{}", "x".repeat(2000))));
        let ua = s.user_agent.expect("kept");
        assert!(ua.starts_with("Mozilla") && !ua.contains('\n'));
        assert_eq!(ua.chars().count(), MAX_USER_AGENT);
        assert_eq!(Source::new("::1", Some("")).user_agent, None);
    }

    #[test]
    fn filters_and_directions() {
        let u = UserId::generate();
        let e = AuditEvent::new(EventType::SuccessLogin, Timestamp::from_secs(10), Source::default()).user(&u, None);
        assert!(LogFilter { kind: Some(EventType::SuccessLogin), user: Some(u), client: None }.matches(&e));
        assert!(!LogFilter { kind: Some(EventType::WrongPassword), ..Default::default() }.matches(&e));
        assert!(!LogFilter { client: Some(ClientId::generate()), ..Default::default() }.matches(&e));
        let d = Direction::NewestFirst { before: Some(e.id.clone()) };
        assert!(!d.admits(&e.id));
        assert!(d.admits(&LogId::generate(Timestamp::from_secs(9))));
        assert!(Direction::OldestFirst { after: None }.admits(&e.id));
    }
}

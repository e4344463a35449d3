//! The refresh-token domain: identifiers, the refresh-token format, scopes, clients, users,
//! device credentials, claims, rate-limit policy and the use cases (`authorize`, `delegation`,
//! `oauth_token`, `management`, `sweep`) written against ports (`ports`). Use cases take typed commands
//! and return typed results and errors. Nothing here knows AWS, HTTP, JSON or Lambda: the wire
//! (parameter names, views, statuses) is `rt-http`'s.

pub mod audit;
pub mod authorize;
pub mod claims;
pub mod client;
pub mod clock;
pub mod code;
pub mod credential;
pub mod dashboard;
pub mod delegation;
pub mod exchange;
pub mod ids;
pub mod management;
pub mod memory;
pub mod oauth_token;
pub mod password;
pub mod ports;
pub mod random;
pub mod ratelimit;
pub mod scope;
pub mod sweep;
pub mod throttle;
pub mod token;
pub mod user;
pub mod user_agent;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};

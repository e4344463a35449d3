//! API tests: the real handlers behind the local HTTP server, over a real DynamoDB API
//! (moto's server). One test binary, one module per concern.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod architecture;
mod capabilities;
mod code_flow;
mod contract;
mod dashboard;
mod dashboard_browser;
mod delegation_requests;
mod flow;
mod fuzz;
mod keys;
mod lambda_smoke;
mod load;
mod logs;
mod management;
mod negative;
mod node_auth_sdk;
mod node_sdk;
mod openapi;
mod rate_limit;
mod refresh_grant;
mod secrets;
mod semantics;
mod spa_sdk;
mod store;
mod store_keys;
mod sweep;

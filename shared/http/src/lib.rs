//! The `lambda_http` glue: configuration and bootstrap (built once per execution environment),
//! request extraction, the wire of each API family and its one error mapping (`oauth`,
//! `api_v2`, the dashboard's pages), handlers, and the local development server that routes
//! `template.yaml`'s events to the same handlers the function binaries run.

pub mod api_v2;
pub mod app;
pub mod audit;
pub mod bootstrap;
pub mod capability;
pub mod config;
pub mod failure;
pub mod handlers;
pub mod local;
pub mod oauth;
pub mod params;
pub mod request;
pub mod response;
pub mod session;
pub mod tx;

pub use app::{Api, App, Base};
pub use lambda_http::Error;

//! Development and test support, shared by `cargo xtask` and the test suite: where the tools
//! live, the local DynamoDB-compatible server (moto), `template.yaml` read as data (table
//! definition and routes), demo seed data, and the local stack (store + app + HTTP server).

pub mod moto;
pub mod paths;
pub mod seed;
pub mod semantics;
pub mod stack;
pub mod template;

/// The pinned moto version (TOOLCHAIN.md).
pub const MOTO_VERSION: &str = "5.2.5";
/// waitress, the keep-alive WSGI server moto runs under (`moto_server.py`).
pub const WAITRESS_VERSION: &str = "3.0.2";
/// The pinned cfn-lint version (TOOLCHAIN.md).
pub const CFN_LINT_VERSION: &str = "1.58.0";
/// The pinned cargo-lambda version (TOOLCHAIN.md).
pub const CARGO_LAMBDA_VERSION: &str = "1.9.2";
/// The pinned schemathesis version (the schema-driven fuzzing of `docs/openapi.json`).
pub const SCHEMATHESIS_VERSION: &str = "4.32.5";

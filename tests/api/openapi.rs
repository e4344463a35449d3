//! `docs/openapi.json` describes exactly the routes of `template.yaml` (but the dashboard's
//! HTML pages and the Management API's preflight catch-all, listed here), and `GET
//! /openapi.json` serves it as it is in the repository.

use std::collections::BTreeSet;

use rt_devkit::paths::repo_root;
use serde_json::Value;

use rt_tests::TestApp;

/// Routes of `template.yaml` the document leaves out, and why: the dashboard is administrators'
/// HTML behind a session cookie, not an API; `OPTIONS /api/v2/{proxy+}` is a greedy path
/// that OpenAPI cannot express (it answers every Management API preflight with 204). A new
/// route is either described or added here.
pub const UNDESCRIBED: &[(&str, &str)] = &[
    ("GET", "/dashboard"),
    ("GET", "/dashboard/login"),
    ("POST", "/dashboard/login"),
    ("POST", "/dashboard/logout"),
    ("GET", "/dashboard/users"),
    ("GET", "/dashboard/users/{id}"),
    ("GET", "/dashboard/users/{id}/devices"),
    ("GET", "/dashboard/users/{id}/history"),
    ("GET", "/dashboard/users/{id}/devices/unlink"),
    ("POST", "/dashboard/users/{id}/devices/unlink"),
    ("POST", "/dashboard/users/{id}/revoke-all"),
    ("GET", "/dashboard/assets/{file}"),
    ("OPTIONS", "/api/v2/{proxy+}"),
];

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

pub fn document() -> Value {
    let text = std::fs::read_to_string(repo_root().join("docs/openapi.json")).unwrap();
    serde_json::from_str(&text).expect("docs/openapi.json is JSON")
}

/// `(METHOD, path)` of every operation the document describes.
pub fn described(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if METHODS.contains(&method.as_str()) {
                out.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// What is wrong between the template's routes and the document's operations.
fn parity(routes: &BTreeSet<(String, String)>, doc: &Value) -> Vec<String> {
    let described = described(doc);
    let undescribed: BTreeSet<(String, String)> =
        UNDESCRIBED.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
    let mut problems = vec![];
    for r in routes.difference(&described) {
        if !undescribed.contains(r) {
            problems
                .push(format!("{} {} is a route of template.yaml that docs/openapi.json does not describe", r.0, r.1));
        }
    }
    for d in described.difference(routes) {
        problems.push(format!("{} {} is described but is no route of template.yaml", d.0, d.1));
    }
    for u in &undescribed {
        if !routes.contains(u) {
            problems.push(format!("{} {} is listed as undescribed but is no route of template.yaml", u.0, u.1));
        }
        if described.contains(u) {
            problems.push(format!("{} {} is listed as undescribed but is described", u.0, u.1));
        }
    }
    problems
}

fn template_routes() -> BTreeSet<(String, String)> {
    rt_tests::template().routes.iter().map(|r| (r.method.clone(), r.path.clone())).collect()
}

#[test]
fn every_route_is_described_and_every_description_is_a_route() {
    let problems = parity(&template_routes(), &document());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_route_added_without_a_description_fails_the_parity() {
    let doc = document();
    let mut routes = template_routes();
    routes.insert(("GET".into(), "/api/v2/new-thing".into()));
    assert_eq!(
        parity(&routes, &doc),
        ["GET /api/v2/new-thing is a route of template.yaml that docs/openapi.json does not describe"]
    );
    let mut fewer = template_routes();
    fewer.remove(&("POST".to_owned(), "/oauth/revoke".to_owned()));
    assert_eq!(parity(&fewer, &doc), ["POST /oauth/revoke is described but is no route of template.yaml"]);
}

/// Every Management API operation names the one scope its use case requires, among the scopes
/// the token endpoint grants, and answers 401 and 403 in the Management envelope.
#[test]
fn management_operations_name_their_scope() {
    let doc = document();
    let flows = &doc["components"]["securitySchemes"]["managementApi"]["flows"]["clientCredentials"]["scopes"];
    let declared: BTreeSet<&str> = flows.as_object().unwrap().keys().map(String::as_str).collect();
    let known: BTreeSet<&str> = rt_domain::management::SCOPES.iter().copied().collect();
    assert_eq!(declared, known, "the document's scopes are rt_domain::management::SCOPES");
    let mut ids = BTreeSet::new();
    for (method, path) in described(&doc) {
        let op = &doc["paths"][&path][method.to_ascii_lowercase()];
        let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: operationId"));
        assert!(ids.insert(id.to_owned()), "operationId {id} twice");
        if !path.starts_with("/api/v2/") {
            continue;
        }
        let scopes = op["security"][0]["managementApi"].as_array().unwrap_or_else(|| panic!("{method} {path}"));
        assert_eq!(scopes.len(), 1, "{method} {path}");
        assert!(known.contains(scopes[0].as_str().unwrap()), "{method} {path}: {scopes:?}");
        for status in ["401", "403", "500", "503"] {
            assert!(op["responses"].get(status).is_some(), "{method} {path} answers {status}");
        }
    }
}

#[tokio::test]
async fn the_served_document_is_the_file() {
    let app = TestApp::spawn().await;
    let r = app.get("/openapi.json").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json; charset=utf-8"));
    let file = std::fs::read_to_string(repo_root().join("docs/openapi.json")).unwrap();
    assert!(r.body == file, "GET /openapi.json serves docs/openapi.json byte for byte");
}

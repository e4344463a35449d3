//! Architecture invariants (docs/ARCHITECTURE.md), checked so that CI, not review, finds a
//! broken layer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rt_devkit::paths::repo_root;
use rt_store::keys;
use rt_tests::template;
use serde_json::Value;

fn metadata() -> Value {
    let out = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(repo_root())
        .output()
        .expect("cargo metadata");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

fn deps(meta: &Value, package: &str) -> BTreeSet<String> {
    let p = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == package)
        .unwrap_or_else(|| panic!("{package}"));
    p["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"].is_null())
        .map(|d| d["name"].as_str().unwrap().to_owned())
        .collect()
}

fn function_dirs() -> BTreeSet<String> {
    std::fs::read_dir(repo_root().join("functions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn dependencies_point_inward() {
    let meta = metadata();
    let domain = deps(&meta, "rt-domain");
    for banned in
        ["aws-sdk-dynamodb", "aws-config", "lambda_http", "lambda_runtime", "http", "hyper", "rt-store", "rt-http"]
    {
        assert!(!domain.contains(banned), "rt-domain must not depend on {banned}");
    }
    let mut shipped: Vec<String> = vec!["rt-domain".into(), "rt-jwt".into(), "rt-store".into(), "rt-http".into()];
    shipped.extend(function_dirs());
    for p in &shipped {
        let d = deps(&meta, p);
        if p != "rt-store" {
            assert!(!d.contains("aws-sdk-dynamodb"), "only rt-store names aws-sdk-dynamodb, not {p}");
        }
        if p != "rt-http" {
            assert!(!d.contains("lambda_http"), "only rt-http names lambda_http, not {p}");
        }
    }
    for f in function_dirs() {
        assert_eq!(
            deps(&meta, &f),
            BTreeSet::from(["rt-http".to_owned(), "tokio".to_owned()]),
            "functions/{f} is wiring only"
        );
    }
}

/// What a crate reaches through its normal and build dependencies (dev-dependencies excluded),
/// by package name, from the resolved graph of `Cargo.lock` for the host platform.
fn reachable(package: &str) -> BTreeSet<String> {
    let rustc = std::process::Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-vV")
        .output()
        .expect("rustc -vV");
    let version = String::from_utf8(rustc.stdout).unwrap();
    let host = version.lines().find_map(|l| l.strip_prefix("host: ")).expect("host triple");
    let out = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--offline", "--filter-platform", host])
        .current_dir(repo_root())
        .output()
        .expect("cargo metadata");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout).expect("json");
    let name_of = |id: &str| -> String {
        meta["packages"].as_array().unwrap().iter().find(|p| p["id"] == id).unwrap()["name"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let nodes = meta["resolve"]["nodes"].as_array().unwrap();
    let root = meta["packages"].as_array().unwrap().iter().find(|p| p["name"] == package).unwrap()["id"].clone();
    let mut seen = BTreeSet::new();
    let mut todo = vec![root.as_str().unwrap().to_owned()];
    while let Some(id) = todo.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        let node = nodes.iter().find(|n| n["id"] == id.as_str()).unwrap();
        for d in node["deps"].as_array().unwrap() {
            let not_dev_only = d["dep_kinds"].as_array().unwrap().iter().any(|k| k["kind"] != "dev");
            if not_dev_only {
                todo.push(d["pkg"].as_str().unwrap().to_owned());
            }
        }
    }
    seen.iter().map(|id| name_of(id)).filter(|n| n != package).collect()
}

#[test]
fn the_domain_reaches_no_wire_crate_even_indirectly() {
    // The wire (JSON values, statuses, percent-encoding, templates, HTTP clients and servers)
    // is rt-http's; the domain takes typed commands and returns typed results and errors.
    let exact = [
        "serde_json",
        "serde_urlencoded",
        "percent-encoding",
        "form_urlencoded",
        "url",
        "askama",
        "reqwest",
        "tower",
        "aws-config",
        "rt-store",
        "rt-http",
        "rt-jwt",
    ];
    let prefixes = ["http", "hyper", "lambda", "aws_lambda", "aws-sdk-", "aws-smithy-"];
    let reached = reachable("rt-domain");
    assert!(reached.contains("serde") && reached.contains("argon2"), "the graph was read: {reached:?}");
    let wire: Vec<&String> =
        reached.iter().filter(|n| exact.contains(&n.as_str()) || prefixes.iter().any(|p| n.starts_with(p))).collect();
    assert!(wire.is_empty(), "rt-domain reaches {wire:?}");
}

#[test]
fn function_binaries_are_wiring_only() {
    for f in function_dirs() {
        let main = std::fs::read_to_string(repo_root().join("functions").join(&f).join("src/main.rs")).unwrap();
        assert!(main.lines().count() <= 20, "functions/{f}/src/main.rs has {} lines", main.lines().count());
        // An HTTP function runs API Gateway events, a scheduled one EventBridge's.
        let http = rt_http::handlers::by_name(&f).is_none_or(|h| h.kind().serves_http());
        let start = if http { "rt_http::bootstrap::run(" } else { "rt_http::bootstrap::run_scheduled(" };
        assert!(main.contains(start), "functions/{f} starts through the shared bootstrap ({start}…)");
        // One invocation at a time per sandbox: one thread (ARCHITECTURE.md, "Runtime").
        assert!(
            main.contains("#[tokio::main(flavor = \"current_thread\")]"),
            "functions/{f} runs on tokio's current-thread runtime"
        );
    }
}

/// A function runs either on routes of the HTTP API or on a schedule, as its handler expects:
/// a scheduled one has exactly one `Schedule` event, set by a template parameter, and no
/// route; an HTTP one has a route and no schedule.
#[test]
fn scheduled_functions_have_a_schedule_and_no_route() {
    let t = template();
    let parameters = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
    for f in rt_http::handlers::FUNCTIONS {
        let routes = t.routes.iter().filter(|r| r.function == f.name).count();
        let schedules = t.schedules.get(f.name).cloned().unwrap_or_default();
        if f.kind().serves_http() {
            assert!(routes > 0 && schedules.is_empty(), "{}: {routes} routes, schedules {schedules:?}", f.name);
        } else {
            assert_eq!((routes, schedules.len()), (0, 1), "{}: {routes} routes, schedules {schedules:?}", f.name);
            let p = &schedules[0];
            assert!(parameters.contains(&format!("\n  {p}:\n    Type: String\n")), "{}: {p} is a parameter", f.name);
        }
    }
    assert!(t.schedules.contains_key("sweep-expired"));
}

#[test]
fn every_function_is_in_the_template_with_a_handler_and_a_crate() {
    let t = template();
    let in_template: BTreeSet<String> = t.functions.iter().map(|(_, bin)| bin.clone()).collect();
    let handlers: BTreeSet<String> = rt_http::handlers::FUNCTIONS.iter().map(|f| f.name.to_owned()).collect();
    assert_eq!(in_template, handlers, "template.yaml functions vs rt_http::handlers::FUNCTIONS");
    assert_eq!(in_template, function_dirs(), "template.yaml functions vs functions/*");
    for (logical, bin) in &t.functions {
        let expected: String = bin.split('-').map(|w| w[..1].to_uppercase() + &w[1..]).collect::<String>() + "Function";
        assert_eq!(logical, &expected, "the SAM logical id follows the operation name");
    }
    t.local_routes().expect("every route has a handler");
    let routes: BTreeSet<(String, String)> = t.routes.iter().map(|r| (r.method.clone(), r.path.clone())).collect();
    for (m, p) in
        [("GET", "/authorize"), ("POST", "/authorize"), ("POST", "/delegation"), ("GET", "/.well-known/jwks.json")]
    {
        assert!(routes.contains(&(m.to_owned(), p.to_owned())), "{m} {p}");
    }
}

#[test]
fn the_table_is_what_the_store_expects_and_has_no_ttl() {
    let t = &template().table;
    assert_eq!((t.hash_key.as_str(), t.range_key.as_deref()), (keys::PK, Some(keys::SK)));
    type Index<'a> = (&'a str, &'a str, Option<&'a str>, (&'a str, Vec<&'a str>));
    let ix: Vec<Index> = t
        .indexes
        .iter()
        .map(|i| {
            let projected = i.non_key_attributes.iter().map(String::as_str).collect();
            (i.name.as_str(), i.hash_key.as_str(), i.range_key.as_deref(), (i.projection.as_str(), projected))
        })
        .collect();
    let (p1, a1) = keys::GSI1_PROJECTION;
    let (p2, a2) = keys::GSI2_PROJECTION;
    assert_eq!(
        ix,
        [
            (keys::GSI1, keys::GSI1_PK, Some(keys::GSI1_SK), (p1, a1.to_vec())),
            (keys::GSI2, keys::GSI2_PK, Some(keys::GSI2_SK), (p2, a2.to_vec()))
        ]
    );
    // No index projects what an exchange writes: a refresh writes no index partition.
    for i in &t.indexes {
        assert_ne!(i.projection, "ALL", "{} projects every attribute", i.name);
        for v in keys::VOLATILE {
            assert!(!i.non_key_attributes.iter().any(|a| a == v), "{} projects {v}", i.name);
        }
    }
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
    assert!(!text.contains("TimeToLiveSpecification"), "refresh tokens never expire: no TTL");
}

#[test]
fn every_per_route_throttle_names_a_route() {
    // API Gateway refuses a deployment whose RouteSettings name a route it does not have.
    let t = template();
    let routes: BTreeSet<String> = t.routes.iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
    let section =
        text.split("\n      RouteSettings:").nth(1).expect("per-route throttles").split("\n\n").next().unwrap();
    let keys: Vec<&str> =
        section.lines().filter_map(|l| l.trim().strip_prefix('"').and_then(|l| l.strip_suffix("\":"))).collect();
    assert!(keys.len() >= 3, "{keys:?}");
    for k in keys {
        assert!(routes.contains(k), "RouteSettings names {k}, which is no route");
    }
}

#[test]
fn policies_are_least_privilege_and_nothing_scans() {
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
    for banned in ["dynamodb:*", "DynamoDBCrudPolicy", "dynamodb:Scan", "DynamoDBReadPolicy"] {
        assert!(!text.contains(banned), "template.yaml grants {banned}");
    }
    fn walk(dir: &Path, hits: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, hits);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let src = std::fs::read_to_string(&p).unwrap();
                if src.contains(".scan()") {
                    hits.push(p.display().to_string());
                }
            }
        }
    }
    let mut hits = vec![];
    for d in ["shared/domain", "shared/store", "shared/http", "shared/jwt", "functions"] {
        walk(&repo_root().join(d), &mut hits);
    }
    assert!(hits.is_empty(), "Scan on a request path: {hits:?}");
}

/// Each function's policies grant exactly the table actions and leading keys `FUNCTIONS`
/// declares for it (one statement per action, each conditioned on its leading keys), the
/// signing secret to the functions that sign and to no other, and its environment holds the
/// variables of its kind (ARCHITECTURE.md, *Capabilities per function*).
#[test]
fn each_function_is_granted_and_given_exactly_what_it_declares() {
    use rt_http::capability::{Action, Resource};
    use rt_http::config::{ISSUER, SIGNING_KEY_SECRET_ARN, SIGNING_PUBLIC_KEY_PEM, TABLE_NAME};
    type Grants = BTreeMap<(Action, Resource), BTreeSet<String>>;

    let t = template();
    let mut problems: Vec<String> = vec![];
    for f in rt_http::handlers::FUNCTIONS {
        let name = f.name;
        let kind = f.kind();
        let Some(p) = t.permissions.get(name) else {
            problems.push(format!("{name}: not in template.yaml"));
            continue;
        };
        let mut problem = |what: String| problems.push(format!("{name} ({kind:?}): {what}"));

        let expected_secrets: Vec<String> =
            if kind.reads_signing_secret() { vec!["SigningKeySecretArn".into()] } else { vec![] };
        if p.secrets != expected_secrets {
            problem(format!("may read the secrets {:?}, declared {expected_secrets:?}", p.secrets));
        }
        if !p.other_policies.is_empty() {
            problem(format!("has policies other than the secret and statements: {:?}", p.other_policies));
        }

        let env = |k: &str| p.environment.get(k).map(String::as_str);
        for (var, value, given) in [
            (TABLE_NAME, "Table", kind.has_table()),
            (SIGNING_KEY_SECRET_ARN, "SigningKeySecretArn", kind.reads_signing_secret()),
            (SIGNING_PUBLIC_KEY_PEM, "SigningPublicKeyPem", kind.reads_public_key()),
        ] {
            let expected = given.then_some(value);
            if env(var) != expected {
                problem(format!("{var} is {:?}, expected {expected:?}", env(var)));
            }
        }
        if kind.variables().contains(&ISSUER) && env(ISSUER) != Some("Issuer") {
            problem(format!("{ISSUER} is {:?}", env(ISSUER)));
        }
        // `Globals` gives every function the public issuer and the log level.
        for var in p.environment.keys() {
            if var != "RUST_LOG" && var != ISSUER && !kind.variables().contains(&var.as_str()) {
                problem(format!("is given {var}, which its kind does not read"));
            }
        }

        let mut granted = Grants::new();
        for st in &p.statements {
            if st.effect != "Allow" || !st.other_conditions.is_empty() {
                problem(format!("unexpected statement {st:?}"));
            }
            let Some(keys) = &st.leading_keys else {
                problem(format!("{:?} on {:?} is not limited to leading keys", st.actions, st.resources));
                continue;
            };
            let resource = match st.resources.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
                ["Table.Arn"] => Resource::Table,
                ["${Table.Arn}/index/*"] => Resource::Indexes,
                other => {
                    problem(format!("statement on {other:?}"));
                    continue;
                }
            };
            for a in &st.actions {
                let Some(action) = Action::ALL.into_iter().find(|x| format!("dynamodb:{}", x.name()) == *a) else {
                    problem(format!("grants {a}, which no function declares"));
                    continue;
                };
                let keys: BTreeSet<String> = keys.iter().cloned().collect();
                if granted.insert((action, resource), keys).is_some() {
                    problem(format!("more than one statement grants {a} on {resource:?}"));
                }
            }
        }
        let declared: Grants = f
            .table
            .iter()
            .map(|g| ((g.action, g.resource), g.leading_keys.iter().map(|k| (*k).to_owned()).collect()))
            .collect();
        if declared.len() != f.table.len() {
            problem("declares an action twice".into());
        }
        for (k, keys) in &granted {
            match declared.get(k) {
                None => problem(format!("is granted {k:?} on {keys:?}, which it does not declare")),
                Some(d) if d != keys => problem(format!("is granted {k:?} on {keys:?}, declared {d:?}")),
                Some(_) => {}
            }
        }
        for (k, keys) in &declared {
            if !granted.contains_key(k) {
                problem(format!("declares {k:?} on {keys:?}, which the template does not grant"));
            }
        }
        if !kind.has_table() && !f.table.is_empty() {
            problem("declares table actions without the table".into());
        }
    }
    assert!(problems.is_empty(), "template.yaml vs rt_http::handlers::FUNCTIONS:\n{}", problems.join("\n"));
}

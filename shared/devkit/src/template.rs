//! `template.yaml` read as data: the table definition (so every local table is created from
//! the same definition that is deployed), the routes (so the local server serves exactly
//! what API Gateway would) and what each function is given and granted (so the architecture
//! test can hold it to `rt_http::handlers::FUNCTIONS`).

use std::collections::BTreeMap;

use rt_store::table::{IndexSpec, TableSpec};
use yaml_rust2::{Yaml, YamlLoader};

#[derive(Debug, thiserror::Error)]
#[error("template.yaml: {0}")]
pub struct TemplateError(String);

fn err(s: impl Into<String>) -> TemplateError {
    TemplateError(s.into())
}

/// One HTTP API event of a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: String,
    pub path: String,
    /// The function's `BuildProperties.Binary`.
    pub function: String,
    /// The function's logical id.
    pub logical_id: String,
}

/// One statement of a function's inline policy. Intrinsic functions appear as their argument
/// (`!GetAtt Table.Arn` is `Table.Arn`, `!Sub "${Table.Arn}/index/*"` is `${Table.Arn}/index/*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub effect: String,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    /// The `ForAllValues:StringLike` `dynamodb:LeadingKeys` condition, if there is one.
    pub leading_keys: Option<Vec<String>>,
    /// Any other condition, as text.
    pub other_conditions: Vec<String>,
}

/// What `template.yaml` gives a function and lets it do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    /// Its environment variables, the `Globals` ones included; `!Ref X` is `X`.
    pub environment: BTreeMap<String, String>,
    /// The secrets it may read (`AWSSecretsManagerGetSecretValuePolicy`'s `SecretArn`).
    pub secrets: Vec<String>,
    pub statements: Vec<Statement>,
    /// Any other policy (a managed policy, another policy template), as text.
    pub other_policies: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Template {
    pub table: TableSpec,
    pub routes: Vec<RouteSpec>,
    /// Logical id and binary name of every function.
    pub functions: Vec<(String, String)>,
    /// What each function (by binary name) is given and granted.
    pub permissions: BTreeMap<String, Permissions>,
    /// The `Schedule` events of each function (by binary name): their `Schedule` expressions
    /// (`!Ref P` as `P`).
    pub schedules: BTreeMap<String, Vec<String>>,
}

fn s<'a>(y: &'a Yaml, what: &str) -> Result<&'a str, TemplateError> {
    y.as_str().ok_or_else(|| err(format!("{what} is not a string")))
}

fn key_schema(y: &Yaml) -> Result<(String, Option<String>), TemplateError> {
    let mut hash = None;
    let mut range = None;
    for k in y.as_vec().ok_or_else(|| err("KeySchema is not a list"))? {
        let name = s(&k["AttributeName"], "AttributeName")?.to_owned();
        match s(&k["KeyType"], "KeyType")? {
            "HASH" => hash = Some(name),
            "RANGE" => range = Some(name),
            other => return Err(err(format!("unknown KeyType {other}"))),
        }
    }
    Ok((hash.ok_or_else(|| err("KeySchema has no HASH key"))?, range))
}

/// A scalar or a list of scalars, as strings.
fn strings(y: &Yaml, what: &str) -> Result<Vec<String>, TemplateError> {
    match y {
        Yaml::Array(items) => items.iter().map(|i| s(i, what).map(str::to_owned)).collect(),
        other => Ok(vec![s(other, what)?.to_owned()]),
    }
}

fn variables(y: &Yaml) -> Result<BTreeMap<String, String>, TemplateError> {
    let mut out = BTreeMap::new();
    for (k, v) in y["Variables"].as_hash().into_iter().flatten() {
        let value = match v {
            Yaml::String(x) | Yaml::Real(x) => x.clone(),
            Yaml::Integer(n) => n.to_string(),
            other => format!("{other:?}"),
        };
        out.insert(s(k, "variable name")?.to_owned(), value);
    }
    Ok(out)
}

fn statement(y: &Yaml) -> Result<Statement, TemplateError> {
    let mut leading_keys = None;
    let mut other_conditions = Vec::new();
    for (op, keys) in y["Condition"].as_hash().into_iter().flatten() {
        for (key, value) in keys.as_hash().into_iter().flatten() {
            if s(op, "condition")? == "ForAllValues:StringLike" && s(key, "condition key")? == "dynamodb:LeadingKeys" {
                leading_keys = Some(strings(value, "LeadingKeys")?);
            } else {
                other_conditions.push(format!("{op:?} {key:?} {value:?}"));
            }
        }
    }
    Ok(Statement {
        effect: s(&y["Effect"], "Effect")?.to_owned(),
        actions: strings(&y["Action"], "Action")?,
        resources: strings(&y["Resource"], "Resource")?,
        leading_keys,
        other_conditions,
    })
}

fn permissions(globals: &BTreeMap<String, String>, properties: &Yaml) -> Result<Permissions, TemplateError> {
    let mut p = Permissions { environment: globals.clone(), ..Permissions::default() };
    p.environment.extend(variables(&properties["Environment"])?);
    for policy in properties["Policies"].as_vec().map(Vec::as_slice).unwrap_or(&[]) {
        let secret = &policy["AWSSecretsManagerGetSecretValuePolicy"]["SecretArn"];
        if let Some(arn) = secret.as_str() {
            p.secrets.push(arn.to_owned());
        } else if let Some(list) = policy["Statement"].as_vec() {
            for st in list {
                p.statements.push(statement(st)?);
            }
        } else {
            p.other_policies.push(format!("{policy:?}"));
        }
    }
    Ok(p)
}

impl Template {
    pub fn load() -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(crate::paths::template()).map_err(|e| err(e.to_string()))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let docs = YamlLoader::load_from_str(text).map_err(|e| err(e.to_string()))?;
        let doc = docs.first().ok_or_else(|| err("empty"))?;
        let resources = doc["Resources"].as_hash().ok_or_else(|| err("no Resources"))?;

        let mut table = None;
        let mut routes = Vec::new();
        let mut functions = Vec::new();
        let mut permissions = BTreeMap::new();
        let mut schedules = BTreeMap::new();
        let globals = variables(&doc["Globals"]["Function"]["Environment"])?;
        for (id, res) in resources {
            let id = s(id, "resource id")?;
            match res["Type"].as_str() {
                Some("AWS::DynamoDB::Table") => {
                    if table.is_some() {
                        return Err(err("more than one table"));
                    }
                    let p = &res["Properties"];
                    if !p["TimeToLiveSpecification"].is_badvalue() {
                        return Err(err("the table must not have TTL: refresh tokens never expire"));
                    }
                    let (hash_key, range_key) = key_schema(&p["KeySchema"])?;
                    let mut attributes = Vec::new();
                    for a in p["AttributeDefinitions"].as_vec().ok_or_else(|| err("AttributeDefinitions"))? {
                        attributes.push((
                            s(&a["AttributeName"], "AttributeName")?.to_owned(),
                            s(&a["AttributeType"], "AttributeType")?.to_owned(),
                        ));
                    }
                    let mut indexes = Vec::new();
                    for g in p["GlobalSecondaryIndexes"].as_vec().map(Vec::as_slice).unwrap_or(&[]) {
                        let (h, r) = key_schema(&g["KeySchema"])?;
                        indexes.push(IndexSpec {
                            name: s(&g["IndexName"], "IndexName")?.to_owned(),
                            hash_key: h,
                            range_key: r,
                            projection: s(&g["Projection"]["ProjectionType"], "ProjectionType")?.to_owned(),
                            non_key_attributes: g["Projection"]["NonKeyAttributes"]
                                .as_vec()
                                .map(Vec::as_slice)
                                .unwrap_or(&[])
                                .iter()
                                .map(|a| s(a, "NonKeyAttributes").map(str::to_owned))
                                .collect::<Result<_, _>>()?,
                        });
                    }
                    table = Some(TableSpec { hash_key, range_key, attributes, indexes });
                }
                Some("AWS::Serverless::Function") => {
                    let binary = s(&res["Metadata"]["BuildProperties"]["Binary"], "BuildProperties.Binary")?.to_owned();
                    functions.push((id.to_owned(), binary.clone()));
                    permissions.insert(binary.clone(), self::permissions(&globals, &res["Properties"])?);
                    if let Some(events) = res["Properties"]["Events"].as_hash() {
                        for (_, ev) in events {
                            if ev["Type"].as_str() == Some("Schedule") {
                                let expression = s(&ev["Properties"]["Schedule"], "Schedule")?.to_owned();
                                schedules.entry(binary.clone()).or_insert_with(Vec::new).push(expression);
                                continue;
                            }
                            if ev["Type"].as_str() != Some("HttpApi") {
                                continue;
                            }
                            routes.push(RouteSpec {
                                method: s(&ev["Properties"]["Method"], "Method")?.to_ascii_uppercase(),
                                path: s(&ev["Properties"]["Path"], "Path")?.to_owned(),
                                function: binary.clone(),
                                logical_id: id.to_owned(),
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(Self {
            table: table.ok_or_else(|| err("no AWS::DynamoDB::Table"))?,
            routes,
            functions,
            permissions,
            schedules,
        })
    }

    /// The local server's routes: each template route bound to the handler of its function.
    pub fn local_routes(&self) -> Result<Vec<rt_http::local::Route>, TemplateError> {
        self.routes
            .iter()
            .map(|r| {
                let handler = rt_http::handlers::by_name(&r.function).ok_or_else(|| {
                    err(format!("function {} has no handler in rt_http::handlers::FUNCTIONS", r.function))
                })?;
                if !handler.kind().serves_http() {
                    return Err(err(format!("function {} runs on a schedule: it has no route", r.function)));
                }
                let method = r.method.parse().map_err(|_| err(format!("bad method {}", r.method)))?;
                Ok(rt_http::local::Route { method, path: r.path.clone(), function: r.function.clone(), handler })
            })
            .collect()
    }
}

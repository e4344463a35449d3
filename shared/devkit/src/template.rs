//! `template.yaml` read as data: the table definition (so every local table is created from
//! the same definition that is deployed) and the routes (so the local server serves exactly
//! what API Gateway would).

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

#[derive(Debug, Clone)]
pub struct Template {
    pub table: TableSpec,
    pub routes: Vec<RouteSpec>,
    /// Logical id and binary name of every function.
    pub functions: Vec<(String, String)>,
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
                    if let Some(events) = res["Properties"]["Events"].as_hash() {
                        for (_, ev) in events {
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
        Ok(Self { table: table.ok_or_else(|| err("no AWS::DynamoDB::Table"))?, routes, functions })
    }

    /// The local server's routes: each template route bound to the handler of its function.
    pub fn local_routes(&self) -> Result<Vec<rt_http::local::Route>, TemplateError> {
        self.routes
            .iter()
            .map(|r| {
                let handler = rt_http::handlers::by_name(&r.function).ok_or_else(|| {
                    err(format!("function {} has no handler in rt_http::handlers::FUNCTIONS", r.function))
                })?;
                let method = r.method.parse().map_err(|_| err(format!("bad method {}", r.method)))?;
                Ok(rt_http::local::Route { method, path: r.path.clone(), function: r.function.clone(), handler })
            })
            .collect()
    }
}

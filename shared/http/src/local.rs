//! The local development server: real HTTP on loopback, each request turned into the
//! `lambda_http::Request` API Gateway (HTTP API, payload v2) would deliver — request context
//! with the caller's address as `sourceIp`, query and path parameters — and handed to the same
//! handler the function binary runs, on the part of one [`App`] that the handler's kind is
//! given. Routes come from `template.yaml` (see `rt-devkit`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt as _};

use crate::app::App;
use crate::handlers::Handler;

/// API Gateway's payload limit.
const MAX_REQUEST: usize = 10 * 1024 * 1024;

#[derive(Clone)]
pub struct Route {
    pub method: http::Method,
    /// An HTTP API route path, e.g. `/api/v2/device-credentials/{id}`.
    pub path: String,
    pub function: String,
    pub handler: Handler,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} -> {}", self.method, self.path, self.function)
    }
}

/// Matches `path` against a route pattern, returning the path parameters (still encoded, as
/// API Gateway passes them).
pub fn match_path(pattern: &str, path: &str) -> Option<HashMap<String, String>> {
    let mut params = HashMap::new();
    let mut pat = pattern.split('/');
    let mut got = path.split('/');
    loop {
        match (pat.next(), got.next()) {
            (None, None) => return Some(params),
            (Some(p), Some(g)) => {
                if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix("+}")) {
                    // A greedy parameter takes the rest of the path (at least one segment).
                    let rest: Vec<&str> = std::iter::once(g).chain(got.by_ref()).collect();
                    if g.is_empty() {
                        return None;
                    }
                    params.insert(name.to_owned(), rest.join("/"));
                    return pat.next().is_none().then_some(params);
                }
                if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    if g.is_empty() {
                        return None;
                    }
                    params.insert(name.to_owned(), g.to_owned());
                } else if p != g {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

type HyperResponse = hyper::Response<Full<Bytes>>;

fn plain(status: u16, content_type: &str, body: impl Into<Bytes>) -> HyperResponse {
    let mut r = hyper::Response::new(Full::new(body.into()));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

/// Serves until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, app: Arc<App>, routes: Arc<Vec<Route>>) -> std::io::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        let app = app.clone();
        let routes = routes.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let app = app.clone();
                let routes = routes.clone();
                async move { Ok::<_, Infallible>(dispatch(&app, &routes, peer, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

async fn dispatch(app: &App, routes: &[Route], peer: SocketAddr, req: hyper::Request<Incoming>) -> HyperResponse {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    if parts.method == http::Method::GET && path == "/dev/callback" {
        return plain(200, "text/html; charset=utf-8", CALLBACK_PAGE);
    }
    if parts.method == http::Method::GET && path == "/dev/demo.json" {
        return match DEMO.get() {
            Some(json) => plain(200, "application/json", json.clone()),
            None => plain(404, "application/json", r#"{"message":"Not Found"}"#),
        };
    }
    let found = routes.iter().find_map(|r| {
        if r.method != parts.method {
            return None;
        }
        match_path(&r.path, &path).map(|params| (r, params))
    });
    let Some((route, path_params)) = found else {
        return plain(404, "application/json", r#"{"message":"Not Found"}"#);
    };
    let bytes = match Limited::new(body, MAX_REQUEST).collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => {
            return plain(413, "application/json", r#"{"message":"Request Entity Too Large"}"#);
        }
    };
    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(t) => Body::Text(t),
            Err(_) => Body::Binary(bytes.to_vec()),
        }
    };
    let host = parts.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1").to_owned();
    let path_and_query = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut ctx = ApiGatewayV2httpRequestContext::default();
    ctx.http.source_ip = Some(peer.ip().to_string());
    ctx.http.method = parts.method.clone();
    ctx.http.path = Some(path.clone());
    ctx.http.protocol = Some("HTTP/1.1".into());
    ctx.http.user_agent = parts.headers.get(http::header::USER_AGENT).and_then(|h| h.to_str().ok()).map(str::to_owned);
    ctx.route_key = Some(format!("{} {}", route.method, route.path));
    ctx.stage = Some("$default".into());
    ctx.domain_name = Some(host.clone());
    let mut query: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()) {
        query.entry(k.into_owned()).or_default().push(v.into_owned());
    }
    let mut builder =
        http::Request::builder().method(parts.method.clone()).uri(format!("http://{host}{path_and_query}"));
    for (k, v) in &parts.headers {
        builder = builder.header(k, v);
    }
    let Ok(request) = builder.body(body) else {
        return plain(400, "application/json", r#"{"message":"Bad Request"}"#);
    };
    let request = request
        .with_request_context(RequestContext::ApiGatewayV2(ctx))
        .with_query_string_parameters(query)
        .with_path_parameters(path_params);
    let response = route.handler.call(app, request).await;
    let (rparts, rbody) = response.into_parts();
    let bytes = match rbody {
        Body::Empty => Bytes::new(),
        Body::Text(t) => Bytes::from(t),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    hyper::Response::from_parts(rparts, Full::new(bytes))
}

/// What the demo callback page needs to show the exact code exchange: the demo SPA's client id
/// and the demo PKCE verifier, as JSON `{"client_id", "code_verifier"}`. Set once by
/// `cargo xtask dev`; served at `/dev/demo.json` by the local server only.
static DEMO: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Tells the demo callback page about the demo SPA (`cargo xtask dev`).
pub fn set_demo(client_id: &str, code_verifier: &str) {
    let json = serde_json::json!({ "client_id": client_id, "code_verifier": code_verifier }).to_string();
    let _ = DEMO.set(json);
}

/// The demo application's callback: shows what arrived in the query (a code) or the fragment
/// (tokens) and the curl command for the next step. Served by the local server only (it stands
/// for the app; it is not part of the service).
const CALLBACK_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo app callback</title><link rel="icon" href="data:,">
<style>body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1d2330}
td,th{text-align:left;vertical-align:top;padding:.35rem .6rem;border-bottom:1px solid #d9dee8}td{font-family:ui-monospace,monospace;word-break:break-all}
pre{background:#f3f5f9;padding:1rem;border-radius:8px;white-space:pre-wrap;word-break:break-all}</style></head>
<body><h1>Demo app: callback</h1><p>This page stands for your application. The service redirected here with these values in the URL:</p>
<table id="t"><tr><th>name</th><th>value</th></tr></table>
<div id="next"></div>
<script>
const q = new URLSearchParams(location.search);
const p = new URLSearchParams(location.hash.slice(1));
const t = document.getElementById('t');
for (const [where, params] of [['query', q], ['fragment', p]]) {
  for (const [k, v] of params) { const r = t.insertRow(); r.insertCell().textContent = k + ' (' + where + ')'; r.insertCell().textContent = v; }
}
function show(title, command) {
  const h = document.createElement('h2'); h.textContent = title;
  const pre = document.createElement('pre'); pre.textContent = command;
  document.getElementById('next').append(h, pre);
}
const code = q.get('code') || p.get('code');
if (code) {
  fetch('/dev/demo.json').then(r => r.ok ? r.json() : {}).catch(() => ({})).then(d => {
    show('Trade the code for tokens (within 10 minutes, once)',
      'curl -s ' + location.origin + '/oauth/token -d grant_type=authorization_code' +
      ' -d client_id=' + (d.client_id || '<spa_client_id>') + ' -d code=' + code +
      ' -d code_verifier=' + (d.code_verifier || '<code_verifier>') +
      " -d redirect_uri='" + location.origin + location.pathname + "'");
  });
}
if (p.get('refresh_token')) {
  show('Trade the refresh token for a fresh id_token', "curl -s " + location.origin + "/delegation -H 'Content-Type: application/json' -d '" + JSON.stringify({
    client_id: JSON.parse(atob(p.get('id_token').split('.')[1].replace(/-/g,'+').replace(/_/g,'/'))).aud,
    grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', refresh_token: p.get('refresh_token'), api_type: 'app' }) + "'");
}
</script></body></html>
"#;

#[cfg(test)]
mod tests {
    use super::match_path;

    #[test]
    fn paths() {
        assert!(match_path("/delegation", "/delegation").is_some());
        assert!(match_path("/delegation", "/delegation/").is_none());
        let p = match_path("/api/v2/device-credentials/{id}", "/api/v2/device-credentials/dcr_x").expect("match");
        assert_eq!(p.get("id").map(String::as_str), Some("dcr_x"));
        assert!(match_path("/api/v2/device-credentials/{id}", "/api/v2/device-credentials/").is_none());
        assert!(match_path("/api/v2/device-credentials/{id}", "/api/v2/device-credentials/a/b").is_none());
        let p = match_path("/api/v2/{proxy+}", "/api/v2/users/auth0%7Cx").expect("greedy");
        assert_eq!(p.get("proxy").map(String::as_str), Some("users/auth0%7Cx"));
        assert!(match_path("/api/v2/{proxy+}", "/api/v2/").is_none());
    }
}

//! A counting HTTP proxy in front of the DynamoDB server: records the `X-Amz-Target` of every
//! request (e.g. `DynamoDB_20120810.TransactWriteItems`) and forwards it unchanged.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

#[derive(Clone, Default)]
pub struct Requests(Arc<Mutex<Vec<String>>>);

impl Requests {
    /// The operations seen since the last call, and forget them.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().expect("lock"))
    }
}

pub struct CountingProxy {
    pub endpoint: String,
    pub requests: Requests,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CountingProxy {
    pub async fn start(upstream: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = Requests::default();
        let upstream: Arc<str> = upstream.trim_end_matches('/').into();
        let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let seen = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (client, upstream, seen) = (client.clone(), upstream.clone(), seen.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                        let (client, upstream, seen) = (client.clone(), upstream.clone(), seen.clone());
                        async move { Ok::<_, Infallible>(forward(&client, &upstream, &seen, req).await) }
                    });
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        Self { endpoint, requests, task }
    }
}

async fn forward(
    client: &Client<HttpConnector, Full<Bytes>>,
    upstream: &str,
    seen: &Requests,
    req: hyper::Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let (mut parts, body) = req.into_parts();
    let target = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("?").to_owned();
    seen.0.lock().expect("lock").push(target.rsplit('.').next().unwrap_or(&target).to_owned());
    let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let pq = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    parts.uri = format!("{upstream}{pq}").parse().expect("uri");
    let resp = client.request(hyper::Request::from_parts(parts, Full::new(body))).await;
    match resp {
        Ok(r) => {
            let (parts, body) = r.into_parts();
            let bytes = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
            hyper::Response::from_parts(parts, Full::new(bytes))
        }
        Err(_) => {
            let mut r = hyper::Response::new(Full::new(Bytes::from_static(b"proxy error")));
            *r.status_mut() = http::StatusCode::BAD_GATEWAY;
            r
        }
    }
}

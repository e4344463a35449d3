//! Test support: a `TestApp` per test — its own table in the shared moto server, the real
//! handlers behind the local HTTP server, a manual clock — and one helper per endpoint.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

pub mod node;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use rt_devkit::moto::Moto;
use rt_devkit::seed;
use rt_devkit::semantics::{Layer, Rules};
use rt_devkit::stack::{self, Stack};
use rt_devkit::template::Template;
use rt_domain::client::Client;
use rt_domain::clock::{ManualClock, Timestamp};
use rt_domain::ports::{ClientStore, UserStore};
use rt_domain::user::User;
use rt_http::config::Config;
use rt_jwt::SigningKeys;
use rt_store::DynamoStore;
use rt_store::aws_sdk_dynamodb::types::AttributeValue;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

pub const GRANT_JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
pub const INVALID_RT: &str = "Unknown or invalid refresh token.";

/// The DynamoDB API server: `RT_TEST_DYNAMODB_ENDPOINT` (set by `cargo xtask test`), else a
/// moto server this process starts once (and which exits with it). Tests talk to it through
/// a DynamoDB-semantics layer ([`dynamodb_endpoint`], [`TestApp::layer`]), never directly.
pub fn moto_endpoint() -> String {
    rt_http::bootstrap::init_tracing_for_humans();
    static STARTED: OnceLock<String> = OnceLock::new();
    STARTED
        .get_or_init(|| {
            if let Ok(e) = std::env::var("RT_TEST_DYNAMODB_ENDPOINT") {
                return e;
            }
            match Moto::start() {
                Ok(m) => {
                    let e = m.endpoint();
                    std::mem::forget(m); // lives as long as this process (it watches us)
                    e
                }
                Err(e) => panic!("{e}"),
            }
        })
        .clone()
}

/// A DynamoDB endpoint with the real service's semantics ([`Rules::for_tests`]): one
/// semantics layer per test process in front of [`moto_endpoint`].
pub fn dynamodb_endpoint() -> String {
    static LAYER: OnceLock<Layer> = OnceLock::new();
    LAYER
        .get_or_init(|| Layer::start(&moto_endpoint(), Rules::for_tests()).expect("start the DynamoDB semantics layer"))
        .endpoint()
        .to_owned()
}

/// Logs warnings and errors only (for tests whose output is a report). Call first.
pub fn quiet_logs() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let _ = tracing_subscriber::registry()
        .with(rt_http::bootstrap::log_filter("warn,aws_smithy_runtime=error"))
        .with(tracing_subscriber::fmt::layer().with_target(false))
        .try_init();
}

pub fn template() -> &'static Template {
    static T: OnceLock<Template> = OnceLock::new();
    T.get_or_init(|| Template::load().expect("template.yaml"))
}

/// One key of `alg` per test process and `n` (generation is the slow part).
pub fn test_key(alg: rt_jwt::SigningAlg, n: usize) -> SecretString {
    static KEYS: std::sync::Mutex<Vec<(rt_jwt::SigningAlg, usize, String)>> = std::sync::Mutex::new(Vec::new());
    let mut keys = KEYS.lock().expect("keys");
    if let Some((_, _, pem)) = keys.iter().find(|(a, i, _)| *a == alg && *i == n) {
        return SecretString::from(pem.clone());
    }
    let pem = rt_jwt::generate_key(alg).expect("key").expose_secret().to_owned();
    keys.push((alg, n, pem.clone()));
    SecretString::from(pem)
}

/// A key document (JSON form) of `keys`, `(alg, state, n)` naming [`test_key`]`(alg, n)`; the
/// derived secrets come from the first.
pub fn key_document(keys: &[(rt_jwt::SigningAlg, rt_jwt::KeyState, usize)]) -> SecretString {
    key_document_for_userinfo(keys, None)
}

/// [`key_document`] with its `userinfo_alg`.
pub fn key_document_for_userinfo(
    keys: &[(rt_jwt::SigningAlg, rt_jwt::KeyState, usize)],
    userinfo_alg: Option<rt_jwt::SigningAlg>,
) -> SecretString {
    let derive_from = keys.first().map(|(alg, _, n)| rt_jwt::kid_of(&test_key(*alg, *n), *alg).expect("kid"));
    let keys = keys
        .iter()
        .map(|(alg, state, n)| rt_jwt::DocumentKey { alg: Some(*alg), state: *state, pem: test_key(*alg, *n) })
        .collect();
    rt_jwt::KeyDocument { keys, derive_from, userinfo_alg }.to_json()
}

/// The tests' key document: one current key per algorithm (RS256, PS256, ES256, EdDSA), and
/// the access tokens for `/userinfo` with EdDSA.
pub fn signing_pem() -> SecretString {
    use rt_jwt::{KeyState::Current, SigningAlg};
    key_document_for_userinfo(&SigningAlg::ALL.map(|a| (a, Current, 0)), Some(SigningAlg::EdDSA))
}

pub fn unique_table() -> String {
    format!("t_{}", rt_domain::random::alphanumeric(12))
}

/// A fresh table created from `template.yaml` on `endpoint`.
pub async fn fresh_store(endpoint: &str) -> DynamoStore {
    let store = DynamoStore::local(endpoint, unique_table());
    store.create_table(&template().table).await.expect("create table");
    store
}

pub struct TestUser {
    pub email: String,
    pub password: String,
    pub user: User,
}

/// Changes to the configuration of a test app.
pub type Configure = Box<dyn FnOnce(&mut Config) + Send>;

#[derive(Default)]
pub struct Options {
    /// The DynamoDB rules of the app's semantics layer (default: [`Rules::for_tests`]).
    pub rules: Option<Rules>,
    /// Send the app's DynamoDB traffic here instead of through its layer (e.g. a closed port).
    pub endpoint: Option<String>,
    /// The public issuer (default: the local server's URL). SDKs that hard-code
    /// `https://{domain}/` need e.g. `https://tenant.test/`.
    pub issuer: Option<String>,
    pub configure: Option<Configure>,
    /// The key document (default: [`signing_pem`]).
    pub keys: Option<SecretString>,
}

pub struct TestApp {
    pub stack: Stack,
    /// The DynamoDB-semantics layer in front of moto that the app and [`Self::store`] use:
    /// its operation log counts requests, its events show conflicts and throttling.
    pub layer: Layer,
    pub clock: Arc<ManualClock>,
    /// A store on the same table, for direct checks (through the same layer).
    pub store: DynamoStore,
    pub client: Client,
    pub user: TestUser,
    pub http: reqwest::Client,
    pub base: String,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub async fn from(r: reqwest::Response) -> Self {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.text().await.expect("body");
        Self { status, headers, body }
    }
}

/// What came back from a login: the redirect target (if any) and its fragment.
#[derive(Debug)]
pub struct LoginResult {
    pub resp: Resp,
    pub location: Option<String>,
    pub fragment: HashMap<String, String>,
}

pub fn http_client(from: Option<IpAddr>) -> reqwest::Client {
    let mut b = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    if let Some(ip) = from {
        b = b.local_address(ip);
    }
    b.build().expect("http client")
}

pub fn parse_fragment(location: &str) -> HashMap<String, String> {
    let frag = location.split_once('#').map(|(_, f)| f).unwrap_or("");
    form_urlencoded::parse(frag.as_bytes()).into_owned().collect()
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(opts: Options) -> Self {
        let layer =
            Layer::start(&moto_endpoint(), opts.rules.unwrap_or_else(Rules::for_tests)).expect("semantics layer");
        let store = fresh_store(layer.endpoint()).await;
        let table = store.table().to_owned();
        let now = rt_domain::clock::SystemClock;
        let clock = Arc::new(ManualClock::new(rt_domain::Clock::now(&now)));
        let app_store = DynamoStore::local(opts.endpoint.as_deref().unwrap_or(layer.endpoint()), table.clone())
            .with_clock(clock.clone());

        let t0 = rt_domain::Clock::now(clock.as_ref());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let base = format!("http://{addr}");
        let issuer = opts.issuer.clone().unwrap_or_else(|| format!("{base}/"));

        let client = seed::native_client(
            "Test App",
            vec![format!("{base}/callback"), "com.example.app://callback".into()],
            vec!["https://app.example.com".into()],
            t0,
        );
        assert!(store.create_client(&client).await.expect("client"));
        let password = seed::random_password();
        let user = seed::user(
            &format!("user-{}@example.com", rt_domain::random::alphanumeric(6).to_lowercase()),
            &password,
            "Test User",
            false,
            t0,
        )
        .expect("user");
        store.create_user(&user).await.expect("create user");

        let mut config: Config = stack::config(&issuer, &table);
        if let Some(f) = opts.configure {
            f(&mut config);
        }
        let keys = SigningKeys::from_pem(&opts.keys.unwrap_or_else(signing_pem)).expect("key");
        let stack = Stack::start(config, app_store, keys, clock.clone(), template(), addr).await.expect("stack");
        layer.take_operations();
        Self {
            stack,
            layer,
            clock,
            store,
            client,
            user: TestUser { email: user.email.to_string(), password, user },
            http: http_client(None),
            base,
        }
    }

    pub fn issuer(&self) -> String {
        self.stack.app.config.issuer.clone()
    }

    /// A machine-to-machine client with these Management API scopes; returns it and its secret.
    pub async fn m2m_client(&self, scopes: &[&str]) -> (Client, String) {
        self.m2m_client_authenticating(scopes, rt_domain::client::TokenEndpointAuthMethod::ClientSecretPost).await
    }

    /// [`Self::m2m_client`] registered for `method` (`client_secret_post` or `_basic`).
    pub async fn m2m_client_authenticating(
        &self,
        scopes: &[&str],
        method: rt_domain::client::TokenEndpointAuthMethod,
    ) -> (Client, String) {
        let secret = rt_domain::random::alphanumeric(64);
        let mut c = seed::management_client("Test M2M", &secret, self.now());
        c.token_endpoint_auth_method = method;
        c.management_scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        c.web_origins = vec!["https://admin.example.com".into()];
        assert!(self.store.create_client(&c).await.expect("client"));
        (c, secret)
    }

    /// A Management API token for a new m2m client holding `scopes`, by client_credentials.
    pub async fn management_token(&self, scopes: &[&str]) -> String {
        let (c, secret) = self.m2m_client(scopes).await;
        let r = self
            .post_json(
                "/oauth/token",
                &serde_json::json!({
                    "grant_type": "client_credentials",
                    "client_id": c.id.to_string(),
                    "client_secret": secret,
                    "audience": format!("{}api/v2/", self.issuer()),
                }),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["access_token"].as_str().expect("access_token").to_owned()
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Resp {
        Resp::from(self.http.post(format!("{}{path}", self.base)).json(body).send().await.expect("POST")).await
    }

    /// A Management API call with a bearer token (`None`: no Authorization header).
    pub async fn mgmt(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: Option<&Value>) -> Resp {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        Resp::from(req.send().await.expect("management call")).await
    }

    /// An administrator, created directly in the store; returns its e-mail and password.
    pub async fn admin(&self) -> (String, String) {
        let password = seed::random_password();
        let email = format!("admin-{}@example.com", rt_domain::random::alphanumeric(6).to_lowercase());
        let admin = seed::user(&email, &password, "Admin", true, self.now()).expect("admin");
        self.store.create_user(&admin).await.expect("create admin");
        (email, password)
    }

    /// Signs in to the dashboard over HTTP: the session cookie (`rt_admin=…`) and the CSRF
    /// token of that session, or the sign-in answer when it did not work.
    pub async fn dashboard_sign_in(&self, email: &str, password: &str) -> Result<(String, String), Resp> {
        self.dashboard_sign_in_from(&self.http, email, password).await
    }

    /// [`Self::dashboard_sign_in`] with another HTTP client (e.g. bound to another address).
    pub async fn dashboard_sign_in_from(
        &self,
        http: &reqwest::Client,
        email: &str,
        password: &str,
    ) -> Result<(String, String), Resp> {
        let page =
            Resp::from(http.get(format!("{}/dashboard/login", self.base)).send().await.expect("GET /dashboard/login"))
                .await;
        let login_cookie =
            page.header("set-cookie").expect("login cookie").split(';').next().expect("cookie").to_owned();
        let field = hidden(&page.body, "login_csrf");
        let r = Resp::from(
            http.post(format!("{}/dashboard/login", self.base))
                .header("cookie", &login_cookie)
                .form(&[("login_csrf", field.as_str()), ("username", email), ("password", password)])
                .send()
                .await
                .expect("POST /dashboard/login"),
        )
        .await;
        if r.status != 303 {
            return Err(r);
        }
        let cookie = r.header("set-cookie").expect("session cookie").split(';').next().expect("cookie").to_owned();
        let users = self.dashboard_get("/dashboard/users", &cookie).await;
        assert_eq!(users.status, 200, "{}", users.body);
        Ok((cookie, hidden(&users.body, "csrf")))
    }

    pub async fn dashboard_get(&self, path: &str, cookie: &str) -> Resp {
        Resp::from(self.http.get(format!("{}{path}", self.base)).header("cookie", cookie).send().await.expect("GET"))
            .await
    }

    pub async fn dashboard_post(&self, path: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Resp {
        let mut req = self.http.post(format!("{}{path}", self.base)).form(form);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        Resp::from(req.send().await.expect("POST")).await
    }

    /// `/dashboard/users/<percent-encoded id>`
    pub fn dashboard_user_path(&self) -> String {
        let enc: String = form_urlencoded::byte_serialize(self.user.user.id.as_str().as_bytes()).collect();
        format!("/dashboard/users/{enc}")
    }

    /// Puts `n` credential records for this app's user directly (25 per `BatchWriteItem`):
    /// fast seeding for bulk-revocation tests. Returns their tokens.
    pub async fn seed_credentials(&self, n: usize, device: &str) -> Vec<String> {
        use rt_store::aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
        let mut tokens = Vec::with_capacity(n);
        let mut batch = Vec::new();
        for i in 0..n {
            let t = rt_domain::token::RefreshToken::generate(&self.user.user.id, self.user.user.rev);
            let cred = credential(&t, &self.client.id, device, Timestamp::from_millis(self.now().millis() + i as i64));
            tokens.push(t.expose().expose_secret().to_owned());
            let put =
                PutRequest::builder().set_item(Some(rt_store::items::credential_to_item(&cred))).build().expect("put");
            batch.push(WriteRequest::builder().put_request(put).build());
            if batch.len() == 25 || i + 1 == n {
                let mut pending = std::mem::take(&mut batch);
                let mut delay = std::time::Duration::from_millis(10);
                while !pending.is_empty() {
                    let out = self
                        .store
                        .ddb()
                        .batch_write_item()
                        .request_items(self.store.table(), pending)
                        .send()
                        .await
                        .expect("batch write");
                    pending = out.unprocessed_items.and_then(|mut m| m.remove(self.store.table())).unwrap_or_default();
                    if !pending.is_empty() {
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(std::time::Duration::from_millis(500));
                    }
                }
            }
        }
        // What issuing would have counted in the user's device map.
        self.store
            .ddb()
            .update_item()
            .table_name(self.store.table())
            .set_key(Some(std::collections::HashMap::from([
                (rt_store::keys::PK.to_owned(), rt_store::items::s(rt_store::keys::user(&self.user.user.id).pk)),
                (rt_store::keys::SK.to_owned(), rt_store::items::s(rt_store::keys::USER_SK)),
            ])))
            .update_expression("SET #dv.#d = if_not_exists(#dv.#d, :zero) + :n")
            .expression_attribute_names("#dv", rt_store::keys::attr::DEVICES)
            .expression_attribute_names("#d", device)
            .expression_attribute_values(":zero", rt_store::items::n(0))
            .expression_attribute_values(":n", rt_store::items::n(n))
            .send()
            .await
            .expect("count the seeded device");
        tokens
    }

    pub fn now(&self) -> Timestamp {
        rt_domain::Clock::now(self.clock.as_ref())
    }

    /// One run of the scheduled `sweep-expired` handler on this app's table (through its
    /// layer) and clock, as its Lambda function runs it, with a budget of 10 s: its summary.
    pub async fn sweep(&self) -> Value {
        let worker = rt_http::app::Worker {
            store: DynamoStore::local(self.layer.endpoint(), self.store.table().to_owned())
                .with_clock(self.clock.clone()),
            clock: self.clock.clone(),
            log_retention_days: rt_domain::audit::DEFAULT_RETENTION_DAYS,
        };
        let run = rt_http::handlers::Invocation { budget: std::time::Duration::from_secs(10) };
        rt_http::handlers::sweep::sweep_expired(&worker, run).await.expect("the sweep")
    }

    /// Changes the refresh-token policy of this app's client (in the table; a warm function
    /// sees it within its 30 s client cache).
    pub async fn set_refresh_token_policy(&self, policy: rt_domain::client::RefreshTokenPolicy) {
        let client = rt_domain::client::Client { refresh_token: policy, ..self.client.clone() };
        assert!(self.store.update_client(&client).await.expect("update the client"));
    }

    pub fn callback(&self) -> String {
        format!("{}/callback", self.base)
    }

    /// The seed's authorize request for this app's client: implicit flow, offline_access.
    pub fn authorize_params(&self, device: &str) -> Vec<(String, String)> {
        vec![
            ("response_type".into(), "token".into()),
            ("client_id".into(), self.client.id.to_string()),
            ("redirect_uri".into(), self.callback()),
            ("scope".into(), "openid offline_access".into()),
            ("device".into(), device.into()),
            ("state".into(), "xyz-state".into()),
        ]
    }

    pub fn authorize_url(&self, params: &[(String, String)]) -> String {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in params {
            ser.append_pair(k, v);
        }
        format!("{}/authorize?{}", self.base, ser.finish())
    }

    pub async fn get(&self, path_and_query: &str) -> Resp {
        Resp::from(self.http.get(format!("{}{path_and_query}", self.base)).send().await.expect("GET")).await
    }

    pub async fn get_authorize(&self, params: &[(String, String)]) -> Resp {
        Resp::from(self.http.get(self.authorize_url(params)).send().await.expect("GET /authorize")).await
    }

    /// GET /authorize, then post the login form with these credentials.
    pub async fn login(&self, params: &[(String, String)], email: &str, password: &str) -> LoginResult {
        self.login_with(&self.http, params, email, password).await
    }

    /// [`Self::login`] with another HTTP client (e.g. bound to another source address).
    pub async fn login_with(
        &self,
        http: &reqwest::Client,
        params: &[(String, String)],
        email: &str,
        password: &str,
    ) -> LoginResult {
        let page = Resp::from(http.get(self.authorize_url(params)).send().await.expect("GET /authorize")).await;
        if page.status != 200 {
            return LoginResult { resp: page, location: None, fragment: HashMap::new() };
        }
        let tx = hidden_tx(&page.body);
        let cookie = page.header("set-cookie").expect("login cookie").split(';').next().expect("cookie").to_owned();
        self.post_login_with(http, &tx, Some(&cookie), email, password).await
    }

    pub async fn post_login(&self, tx: &str, cookie: Option<&str>, email: &str, password: &str) -> LoginResult {
        self.post_login_with(&self.http, tx, cookie, email, password).await
    }

    async fn post_login_with(
        &self,
        http: &reqwest::Client,
        tx: &str,
        cookie: Option<&str>,
        email: &str,
        password: &str,
    ) -> LoginResult {
        let mut req = http.post(format!("{}/authorize", self.base)).form(&[
            ("tx", tx),
            ("username", email),
            ("password", password),
        ]);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let resp = Resp::from(req.send().await.expect("POST /authorize")).await;
        let location = resp.header("location").map(str::to_owned);
        let fragment = location.as_deref().map(parse_fragment).unwrap_or_default();
        LoginResult { resp, location, fragment }
    }

    /// The whole seed flow for `device`: returns the refresh token.
    pub async fn obtain_refresh_token(&self, device: &str) -> String {
        let r = self.login(&self.authorize_params(device), &self.user.email, &self.user.password).await;
        assert_eq!(r.resp.status, 302, "{}", r.resp.body);
        r.fragment.get("refresh_token").cloned().unwrap_or_else(|| panic!("no refresh_token in {:?}", r.location))
    }

    pub fn delegation_body(&self, refresh_token: &str) -> Value {
        serde_json::json!({
            "client_id": self.client.id.to_string(),
            "grant_type": GRANT_JWT_BEARER,
            "refresh_token": refresh_token,
            "api_type": "app",
        })
    }

    pub async fn post_delegation(&self, body: &Value) -> Resp {
        self.post_delegation_from(&self.http, body).await
    }

    pub async fn post_delegation_from(&self, http: &reqwest::Client, body: &Value) -> Resp {
        Resp::from(http.post(format!("{}/delegation", self.base)).json(body).send().await.expect("POST /delegation"))
            .await
    }

    /// auth0.js v7 `refreshToken`: a form body.
    pub async fn post_delegation_form(&self, pairs: &[(&str, &str)]) -> Resp {
        Resp::from(
            self.http.post(format!("{}/delegation", self.base)).form(pairs).send().await.expect("POST /delegation"),
        )
        .await
    }

    pub async fn post_delegation_raw(&self, content_type: &str, body: Vec<u8>) -> Resp {
        Resp::from(
            self.http
                .post(format!("{}/delegation", self.base))
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .expect("POST /delegation"),
        )
        .await
    }

    pub async fn jwks(&self) -> Value {
        self.get("/.well-known/jwks.json").await.json()
    }

    /// Verifies a JWT against the published JWKS, as a relying party would.
    pub async fn verify_with_jwks(&self, token: &str, audience: &str) -> Value {
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(self.jwks().await).expect("jwks");
        let header = jsonwebtoken::decode_header(token).expect("header");
        let jwk = jwks.find(header.kid.as_deref().expect("kid")).expect("kid in jwks");
        let alg = jwk.common.key_algorithm.expect("every published key names its alg");
        assert_eq!(alg.to_string(), format!("{:?}", header.alg), "the header's alg is the key's");
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("jwk");
        let mut v = jsonwebtoken::Validation::new(header.alg);
        v.set_audience(&[audience]);
        v.set_issuer(&[self.issuer()]);
        jsonwebtoken::decode::<Value>(token, &key, &v).expect("valid signature and claims").claims
    }

    /// Every item of the table (tests only: the service never scans).
    pub async fn scan(&self) -> Vec<HashMap<String, AttributeValue>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .store
                .ddb()
                .scan()
                .table_name(self.store.table())
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return items;
            }
        }
    }

    /// The table as text, for "nothing changed" and "no secret stored" checks.
    pub async fn snapshot(&self) -> String {
        self.snapshot_except(&[]).await
    }

    /// [`Self::snapshot`] without the items of these `kinds` (e.g. rate-limit counters).
    pub async fn snapshot_except(&self, kinds: &[&str]) -> String {
        let mut items: Vec<String> = self
            .scan()
            .await
            .iter()
            .filter(|i| i.get("kind").and_then(|k| k.as_s().ok()).is_none_or(|k| !kinds.contains(&k.as_str())))
            .map(|i| format!("{:?}", sorted(i)))
            .collect();
        items.sort();
        items.join("\n")
    }

    pub async fn credential_items(&self) -> Vec<HashMap<String, AttributeValue>> {
        self.scan()
            .await
            .into_iter()
            .filter(|i| i.get("kind").and_then(|k| k.as_s().ok()).map(String::as_str) == Some("dcr"))
            .collect()
    }
}

fn sorted(i: &HashMap<String, AttributeValue>) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = i.iter().map(|(k, v)| (k.clone(), format!("{v:?}"))).collect();
    v.sort();
    v
}

/// A credential record for `token` (scope `openid offline_access`, never used yet).
pub fn credential(
    token: &rt_domain::token::RefreshToken,
    client: &rt_domain::ids::ClientId,
    device: &str,
    created_at: Timestamp,
) -> rt_domain::credential::DeviceCredential {
    rt_devkit::seed::credential(token, client, device, created_at).expect("a valid device name")
}

/// The `tx` hidden field of a login page.
/// The `href` of the link whose text is `text` in `html` (as the page escapes it).
pub fn link(html: &str, text: &str) -> String {
    let end = html.find(&format!(">{text}</a>")).unwrap_or_else(|| panic!("no link {text:?} in {html}"));
    let start = html[..end].rfind("href=\"").expect("href") + "href=\"".len();
    html[start..end].split('"').next().expect("quoted").to_owned()
}

pub fn hidden_tx(html: &str) -> String {
    hidden(html, "tx")
}

/// The value of the first hidden field `name` of a page.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {name} field in {html}")) + marker.len();
    html[start..].split('"').next().expect("value").to_owned()
}

/// Decodes a JWT's payload without verifying it.
pub fn jwt_claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("b64"))
        .expect("json")
}

pub fn addr(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

pub fn socket(s: &str) -> SocketAddr {
    s.parse().expect("socket")
}

//! `cargo xtask dev`: the API on http://127.0.0.1:3000 over a local DynamoDB.

use std::net::SocketAddr;
use std::sync::Arc;

use rt_devkit::moto::Moto;
use rt_devkit::paths;
use rt_devkit::seed::{self, SeedFile};
use rt_devkit::semantics::{Layer, Rules};
use rt_devkit::stack::{self, Stack};
use rt_devkit::template::Template;
use rt_domain::client::SigningAlg;
use rt_domain::clock::{Clock, SystemClock};
use rt_jwt::KeyState;
use rt_store::DynamoStore;
use secrecy::{ExposeSecret, SecretString};

use crate::{Result, tools};

const DEFAULT_TABLE: &str = "refresh-tokens";

struct Args {
    port: u16,
    /// Put the DynamoDB-semantics layer (rt_devkit::semantics, `Rules::dynamodb()`) in front
    /// of the DynamoDB server: latency, transaction conflicts, per-partition throughput.
    realistic: bool,
}

fn parse(args: &[String]) -> Result<Args> {
    let mut it = args.iter();
    let mut parsed = Args { port: 3000, realistic: false };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--port" | "-p" => {
                parsed.port = it.next().ok_or("--port needs a number")?.parse().map_err(|_| "--port needs a number")?;
            }
            "--realistic" => parsed.realistic = true,
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: cargo xtask dev [--port N] [--realistic] [--release]"
                )
                .into());
            }
        }
    }
    Ok(parsed)
}

/// Where [`signing_keys`] keeps the local key document.
pub fn signing_keys_path() -> std::path::PathBuf {
    paths::dev_dir().join("signing-keys.json")
}

/// The key document for local runs, generated once into target/dev (never committed): one
/// current key per algorithm (RS256, PS256, ES256, EdDSA), derived secrets from the RS256
/// key, the access tokens for `/userinfo` with EdDSA (a document written before `userinfo_alg`
/// existed is read as it is: delete it to get one). The RS256 key of an older checkout
/// (`signing-key.pem`) is kept, and with it the derived secrets (sessions, rotating refresh
/// tokens).
pub(crate) fn signing_keys() -> Result<SecretString> {
    let path = signing_keys_path();
    if let Ok(doc) = std::fs::read_to_string(&path) {
        return Ok(SecretString::from(doc));
    }
    let rs256 = match std::fs::read_to_string(paths::dev_dir().join("signing-key.pem")) {
        Ok(pem) => SecretString::from(pem),
        Err(_) => rt_jwt::generate_key(SigningAlg::RS256)?,
    };
    let derive_from = Some(rt_jwt::kid_of(&rs256, SigningAlg::RS256)?);
    let mut keys = vec![rt_jwt::DocumentKey { alg: Some(SigningAlg::RS256), state: KeyState::Current, pem: rs256 }];
    for alg in [SigningAlg::PS256, SigningAlg::ES256, SigningAlg::EdDSA] {
        keys.push(rt_jwt::DocumentKey { alg: Some(alg), state: KeyState::Current, pem: rt_jwt::generate_key(alg)? });
    }
    // The access tokens for /userinfo with Ed25519, published with the rest from the start.
    let doc = rt_jwt::KeyDocument { keys, derive_from, userinfo_alg: Some(SigningAlg::EdDSA) }.to_json();
    std::fs::create_dir_all(paths::dev_dir())?;
    write_private(&path, doc.expose_secret())?;
    Ok(doc)
}

fn write_private(path: &std::path::Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

pub fn main(args: &[String]) -> Result<()> {
    if args.iter().any(|a| a == "--release") {
        // The same server, optimised: this command again from the release build, in place of
        // this process (same pid, same terminal; Ctrl-C stops it), so that wrk can drive it.
        use std::os::unix::process::CommandExt as _;
        let exe = crate::release_binary()?;
        let rest = args.iter().filter(|a| *a != "--release");
        let err = std::process::Command::new(&exe).arg("dev").args(rest).exec();
        return Err(format!("cannot run {}: {err}", exe.display()).into());
    }
    let args = parse(args)?;
    let external = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").or_else(|_| std::env::var("AWS_ENDPOINT_URL")).ok();
    if external.is_none() {
        tools::ensure(&tools::dev_requirements())?;
    }
    rt_http::bootstrap::init_tracing_for_humans();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(serve(args, external))
}

async fn serve(args: Args, external: Option<String>) -> Result<()> {
    let port = args.port;
    let table = std::env::var("TABLE_NAME").ok().filter(|t| !t.is_empty()).unwrap_or_else(|| DEFAULT_TABLE.into());
    let issuer =
        std::env::var("ISSUER").ok().filter(|i| !i.is_empty()).unwrap_or_else(|| format!("http://127.0.0.1:{port}/"));
    let (moto, upstream) = match external {
        Some(endpoint) => (None, endpoint),
        None => {
            let moto = Moto::start()?;
            let endpoint = moto.endpoint();
            (Some(moto), endpoint)
        }
    };
    let layer = if args.realistic { Some(Layer::start(&upstream, Rules::dynamodb())?) } else { None };
    let endpoint = layer.as_ref().map_or(upstream.clone(), |l| l.endpoint().to_owned());
    let store_endpoint = endpoint.clone();
    // Local servers accept any credentials; real ones come from the environment.
    let store = if moto.is_none() && layer.is_none() && std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        DynamoStore::from_env(table.clone())
    } else {
        DynamoStore::local(&endpoint, table.clone())
    };
    let endpoint = match &layer {
        Some(l) => format!(
            "{upstream} through the DynamoDB-semantics layer on {} (12 ms transactions, conflicts, per-partition throughput)",
            l.endpoint()
        ),
        None => upstream,
    };
    let template = Template::load()?;
    let created = stack::create_table(&store, &template).await?;
    // Where `cargo xtask sweep` finds this DynamoDB.
    std::fs::create_dir_all(paths::dev_dir())?;
    std::fs::write(crate::sweep::endpoint_file(), &store_endpoint)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let seed_path = paths::dev_dir().join("seed.json");
    let previous: Option<SeedFile> =
        std::fs::read_to_string(&seed_path).ok().and_then(|t| serde_json::from_str(&t).ok());
    let previous = previous.filter(|p| p.issuer == issuer);
    let seeded = seed::seed(&store, &issuer, previous, clock.now()).await?;
    std::fs::create_dir_all(paths::dev_dir())?;
    write_private(&seed_path, &serde_json::to_string_pretty(&seeded)?)?;

    let keys = rt_jwt::SigningKeys::from_pem(&signing_keys()?)?;
    // Every variable of the README's table, from this environment, as the functions read theirs.
    let mut config = stack::config_with(&issuer, &table, |k| std::env::var(k).ok())?;
    config.signing_key = rt_http::config::KeySource::File(signing_keys_path().display().to_string());
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let stack = Stack::start(config, store, keys, clock, &template, addr).await?;
    rt_http::local::set_demo(&seeded.spa_client_id, &seeded.code_verifier);
    let shown = seed_path.strip_prefix(paths::repo_root()).unwrap_or(&seed_path);
    print_tour(&stack, &seeded, &endpoint, &table, created, shown);
    tokio::select! {
        r = stack.wait() => r?,
        _ = tokio::signal::ctrl_c() => eprintln!("\nstopped"),
    }
    Ok(())
}

fn print_tour(stack: &Stack, s: &SeedFile, endpoint: &str, table: &str, created: bool, seed_path: &std::path::Path) {
    let base = stack.url();
    println!(
        "
Refresh-token service on {base}/
  DynamoDB: {endpoint}, table '{table}' ({})
  Demo data: {}

1. Sign in and get a refresh token (open in a browser; {} / {}):
   {}

2. The callback page shows the refresh token and the curl command that trades it:
   curl -s {base}/delegation -H 'Content-Type: application/json' \\
     -d '{{\"client_id\":\"{}\",\"grant_type\":\"urn:ietf:params:oauth:grant-type:jwt-bearer\",\"refresh_token\":\"<refresh_token>\",\"api_type\":\"app\"}}'

3. Verify id_tokens with {base}/.well-known/jwks.json ({base}/.well-known/openid-configuration)

4. Manage and revoke refresh tokens with a Management API token:
   curl -s {base}/oauth/token -d grant_type=client_credentials -d client_id={} \\
     -d client_secret=$(python3 -c \"import json;print(json.load(open('target/dev/seed.json'))['mgmt_client_secret'])\") \\
     -d audience={base}/api/v2/
   curl -s -H 'Authorization: Bearer <access_token>' '{base}/api/v2/users?include_totals=true'

5. The dashboard (Users > user > Devices > X > UNLINK): {base}/dashboard
   administrator: {} / {}

6. Modern clients: the code flow with PKCE and rotating refresh tokens (the demo SPA, public;
   its fixed demo verifier is {}). Sign in (same user):
   {}
   The callback page shows the code and the exact exchange:
   curl -s {base}/oauth/token -d grant_type=authorization_code -d client_id={} \
     -d code=<code> -d code_verifier={} -d redirect_uri={}
   Each refresh returns the next refresh token and retires the one presented:
   curl -s {base}/oauth/token -d grant_type=refresh_token -d client_id={} -d refresh_token=<refresh_token>
   The regular web app (confidential: client_id {}, secret in seed.json) uses the same flow
   with -d client_secret=... and no verifier needed.

Press Ctrl-C to stop.",
        if created { "created from template.yaml" } else { "already existed" },
        seed_path.display(),
        s.user_email,
        s.user_password,
        s.authorize_url,
        s.client_id,
        s.mgmt_client_id,
        s.admin_email,
        s.admin_password,
        s.code_verifier,
        s.code_authorize_url,
        s.spa_client_id,
        s.code_verifier,
        s.callback_url,
        s.spa_client_id,
        s.web_client_id,
    );
}

//! The store's exchange against the DynamoDB server directly: every rejection reason, and
//! the bound fields never change.

use rt_devkit::semantics::{Layer, Rules};
use rt_domain::client::{Client, ExpirationType, RefreshTokenPolicy, RotationType, TokenEndpointAuthMethod};
use rt_domain::clock::Timestamp;
use rt_domain::credential::DeviceCredential;
use rt_domain::exchange::{self, Hints, Outcome as ExchangeOutcome, Presented, Rejection};
use rt_domain::ids::ClientId;
use rt_domain::ports::{ClientStore, CredentialStore, Freshness, IssueOutcome, UserStore};
use rt_domain::ratelimit::RatePolicy;
use rt_domain::scope::Scope;
use rt_domain::token::RefreshToken;
use rt_store::DynamoStore;
use rt_store::aws_sdk_dynamodb::types::AttributeValue;
use rt_store::items::{n, s};
use rt_tests::{dynamodb_endpoint, fresh_store, moto_endpoint};

struct Fixture {
    store: DynamoStore,
    client: rt_domain::client::Client,
    user: rt_domain::user::User,
    now: Timestamp,
}

async fn fixture() -> Fixture {
    let store = fresh_store(&dynamodb_endpoint()).await;
    let now = Timestamp::from_secs(1_800_000_000);
    let client = rt_devkit::seed::native_client("C", vec![], vec![], now);
    store.create_client(&client).await.unwrap();
    let user = rt_devkit::seed::user("u@example.com", "Passw0rd-x", "U", false, now).unwrap();
    store.create_user(&user).await.unwrap();
    Fixture { store, client, user, now }
}

fn credential(f: &Fixture, token: &RefreshToken, scope: &str) -> DeviceCredential {
    let mut c = rt_tests::credential(token, &f.client.id, "my-device", f.now);
    c.scope = Scope::parse(scope).unwrap();
    c.created_ip = Some("127.0.0.1".into());
    c
}

async fn exchange(
    f: &Fixture,
    token: &RefreshToken,
    client: &ClientId,
    claims: &[(&'static str, bool)],
) -> ExchangeOutcome {
    let req = Presented {
        token,
        client_id: client,
        address: "203.0.113.5",
        source_ip: "203.0.113.5",
        now: f.now,
        policy: RatePolicy { limit: 10, window_secs: 60 },
        max_addresses: 16,
        claims,
        rotation: None,
        leeway_secs: 0,
        expiry: Default::default(),
        migrate: false,
        demote: false,
    };
    exchange::run(&f.store, &Hints::default(), &req).await.unwrap()
}

#[tokio::test]
async fn exchange_outcomes() {
    let f = fixture().await;
    let token = RefreshToken::generate(&f.user.id, 0);
    assert_eq!(
        f.store.issue_credential(&credential(&f, &token, "openid offline_access profile")).await.unwrap(),
        IssueOutcome::Issued
    );

    let ok = exchange(&f, &token, &f.client.id, &[]).await;
    assert_eq!(
        ok,
        ExchangeOutcome::Granted { used: 1, granted_claims: Scope::default(), successor: false, demoted: false }
    );
    // Wrong guesses about the grant are corrected, not refused.
    let ok = exchange(&f, &token, &f.client.id, &[("profile", false), ("email", true)]).await;
    assert_eq!(
        ok,
        ExchangeOutcome::Granted {
            used: 2,
            granted_claims: Scope::parse("profile").unwrap(),
            successor: false,
            demoted: false
        }
    );

    let unknown = RefreshToken::generate(&f.user.id, 0);
    assert_eq!(exchange(&f, &unknown, &f.client.id, &[]).await, ExchangeOutcome::Rejected(Rejection::Unknown));
    let other = ClientId::parse("someone-else").unwrap();
    assert_eq!(exchange(&f, &token, &other, &[]).await, ExchangeOutcome::Rejected(Rejection::WrongClient));
}

#[tokio::test]
async fn a_password_change_or_user_deletion_kills_every_token_at_once() {
    let f = fixture().await;
    let tokens: Vec<RefreshToken> = (0..3).map(|_| RefreshToken::generate(&f.user.id, 0)).collect();
    for t in &tokens {
        f.store.issue_credential(&credential(&f, t, "openid offline_access")).await.unwrap();
    }
    assert!(matches!(exchange(&f, &tokens[0], &f.client.id, &[]).await, ExchangeOutcome::Granted { .. }));
    // One write to the user item (what a password change does): every token of the user fails.
    update_user_item(&f, "SET rev = rev + :one", Some((":one", n(1)))).await;
    for t in &tokens {
        assert_eq!(exchange(&f, t, &f.client.id, &[]).await, ExchangeOutcome::Rejected(Rejection::UserGone));
    }
    // And a token cannot be issued under the old revision any more.
    let late = RefreshToken::generate(&f.user.id, 0);
    assert_eq!(
        f.store.issue_credential(&credential(&f, &late, "openid offline_access")).await.unwrap(),
        IssueOutcome::UserChanged
    );
    // Deleting the user: its tokens fail even while their records still exist.
    let fresh = RefreshToken::generate(&f.user.id, 1);
    f.store.issue_credential(&credential(&f, &fresh, "openid offline_access")).await.unwrap();
    f.store
        .ddb()
        .delete_item()
        .table_name(f.store.table())
        .key("pk", s(format!("USER#{}", f.user.id)))
        .key("sk", s("USER"))
        .send()
        .await
        .unwrap();
    assert_eq!(exchange(&f, &fresh, &f.client.id, &[]).await, ExchangeOutcome::Rejected(Rejection::UserGone));
}

#[tokio::test]
async fn issuing_and_exchanging_touch_only_the_callers_items_and_partitions() {
    // Through a layer of its own, to see exactly which partitions the writes reach.
    let layer = Layer::start(&moto_endpoint(), Rules::for_tests()).unwrap();
    let store = fresh_store(layer.endpoint()).await;
    let f = Fixture { store, ..fixture().await };
    f.store.create_client(&f.client).await.unwrap();
    f.store.create_user(&f.user).await.unwrap();
    let t = RefreshToken::generate(&f.user.id, 0);
    let written = |layer: &Layer| -> Vec<String> {
        let mut v: Vec<String> = layer
            .consumed()
            .into_iter()
            .filter(|(_, c)| c.write > 0.0)
            .map(|(p, _)| format!("{}{}", p.index.map(|i| i + ":").unwrap_or_default(), p.key))
            .collect();
        v.sort();
        v
    };
    let (cred, user) = (format!("DCR#{}", t.id()), format!("USER#{}", f.user.id));
    layer.reset();
    f.store.issue_credential(&credential(&f, &t, "openid offline_access")).await.unwrap();
    let shard = format!("gsi2:CLIENT#{}#{:02}", f.client.id, rt_store::keys::client_shard(&f.user.id));
    let mut expected = vec![cred.clone(), user.clone(), format!("gsi1:{user}"), shard];
    expected.sort();
    assert_eq!(written(&layer), expected, "issuing: the credential, its index entries, the user's check");
    layer.reset();
    for _ in 0..3 {
        assert!(matches!(exchange(&f, &t, &f.client.id, &[]).await, ExchangeOutcome::Granted { .. }));
    }
    let mut expected = vec![cred, user];
    expected.sort();
    assert_eq!(written(&layer), expected, "exchanging: the credential and the user's check, no index");
    assert!(layer.consumed().iter().all(|(p, _)| !p.key.starts_with("CLIENT")), "the client item is never read");
}

#[tokio::test]
async fn client_user_and_device_never_change_after_issue() {
    let f = fixture().await;
    let t = RefreshToken::generate(&f.user.id, 0);
    let issued = credential(&f, &t, "openid offline_access");
    f.store.issue_credential(&issued).await.unwrap();
    for _ in 0..3 {
        exchange(&f, &t, &f.client.id, &[]).await;
    }
    let item = f
        .store
        .ddb()
        .get_item()
        .table_name(f.store.table())
        .key("pk", s(format!("DCR#{}", t.id())))
        .key("sk", s("DCR"))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let stored = rt_store::items::credential_from_item(&item).unwrap();
    assert_eq!(
        (&stored.client_id, &stored.user_id, &stored.device_name),
        (&issued.client_id, &issued.user_id, &issued.device_name)
    );
    assert_eq!(stored.scope, issued.scope);
    assert_eq!(stored.use_count, 3);
    assert_eq!(stored.last_ip.as_deref(), Some("203.0.113.5"));
}

/// A client item as the first release wrote it (and as README's bootstrap client is put by
/// hand): none of the settings added since.
async fn put_first_release_client(store: &DynamoStore, id: &str, secret_hash: Option<&str>) {
    let mut item = std::collections::HashMap::from([
        ("pk".to_owned(), s(format!("CLIENT#{id}"))),
        ("sk".to_owned(), s("CLIENT")),
        ("kind".to_owned(), s("client")),
        ("gsi2pk".to_owned(), s("CLIENTS")),
        ("gsi2sk".to_owned(), s(id)),
        ("client_id".to_owned(), s(id)),
        ("name".to_owned(), s("Bootstrap admin")),
        ("app_type".to_owned(), s(if secret_hash.is_some() { "non_interactive" } else { "native" })),
        ("callbacks".to_owned(), AttributeValue::L(vec![])),
        ("web_origins".to_owned(), AttributeValue::L(vec![])),
        ("grant_types".to_owned(), AttributeValue::L(vec![s("client_credentials")])),
        ("id_token_lifetime".to_owned(), n(36_000)),
        ("mgmt_scopes".to_owned(), AttributeValue::L(vec![s("read:clients")])),
        ("created_at".to_owned(), n(0)),
    ]);
    if let Some(h) = secret_hash {
        item.insert("secret_hash".to_owned(), s(h));
    }
    store.ddb().put_item().table_name(store.table()).set_item(Some(item)).send().await.unwrap();
}

#[tokio::test]
async fn a_client_item_from_before_the_refresh_token_settings_reads_as_the_defaults() {
    let store = fresh_store(&dynamodb_endpoint()).await;
    let hash = rt_domain::token::SecretHash::of(b"secret").to_hex();
    put_first_release_client(&store, "bootstrap-admin", Some(&hash)).await;
    put_first_release_client(&store, "old-native", None).await;
    let get = |id: &str| {
        let id = ClientId::parse(id).unwrap();
        let store = &store;
        async move { store.get_client(&id, Freshness::Fresh).await.unwrap().unwrap() }
    };
    let admin = get("bootstrap-admin").await;
    assert_eq!(admin.refresh_token, RefreshTokenPolicy::default());
    assert!(admin.allowed_logout_urls.is_empty());
    assert_eq!(admin.token_endpoint_auth_method, TokenEndpointAuthMethod::ClientSecretPost, "it has a secret");
    let native = get("old-native").await;
    assert_eq!(native.token_endpoint_auth_method, TokenEndpointAuthMethod::None, "no secret");
    assert_eq!(native.refresh_token.absolute_lifetime(), None, "its tokens never expire");

    // Once written again, every setting is stored and read back as it is.
    let changed = Client {
        allowed_logout_urls: vec!["https://admin.example/bye".into()],
        token_endpoint_auth_method: TokenEndpointAuthMethod::ClientSecretBasic,
        refresh_token: RefreshTokenPolicy {
            rotation_type: RotationType::Rotating,
            expiration_type: ExpirationType::Expiring,
            leeway: 7,
            token_lifetime: 86_400,
            infinite_token_lifetime: false,
            idle_token_lifetime: 3_600,
            infinite_idle_token_lifetime: false,
        },
        ..admin
    };
    assert!(store.update_client(&changed).await.unwrap());
    assert_eq!(get("bootstrap-admin").await, changed);

    // A setting present but malformed is a corrupt item, not a default.
    store
        .ddb()
        .update_item()
        .table_name(store.table())
        .key("pk", s("CLIENT#old-native"))
        .key("sk", s("CLIENT"))
        .update_expression("SET rt_rotation = :r")
        .expression_attribute_values(":r", s("sometimes"))
        .send()
        .await
        .unwrap();
    let corrupt = store.get_client(&ClientId::parse("old-native").unwrap(), Freshness::Fresh).await;
    assert!(matches!(corrupt, Err(rt_domain::ports::StoreError::Corrupt(_))), "{corrupt:?}");
}

/// Writes the user item directly (what another writer, or an older release, does).
async fn update_user_item(f: &Fixture, expression: &str, value: Option<(&str, AttributeValue)>) {
    f.store
        .ddb()
        .update_item()
        .table_name(f.store.table())
        .key("pk", s(format!("USER#{}", f.user.id)))
        .key("sk", s("USER"))
        .update_expression(expression)
        .set_expression_attribute_values(value.map(|(k, v)| std::collections::HashMap::from([(k.to_owned(), v)])))
        .send()
        .await
        .unwrap();
}

/// Makes the user item what the first release wrote: no device map.
async fn remove_device_map(f: &Fixture) {
    update_user_item(f, "REMOVE devices", None).await;
}

#[tokio::test]
async fn a_user_item_from_before_device_counts_still_gets_tokens() {
    let f = fixture().await;
    remove_device_map(&f).await;
    let t = RefreshToken::generate(&f.user.id, 0);
    assert_eq!(
        f.store.issue_credential(&credential(&f, &t, "openid offline_access")).await.unwrap(),
        IssueOutcome::Issued
    );
    assert_eq!(f.store.get_user(&f.user.id).await.unwrap().unwrap().live_devices, 1);
    assert!(f.store.revoke_credential(t.id()).await.unwrap());
    assert_eq!(f.store.get_user(&f.user.id).await.unwrap().unwrap().live_devices, 0);
    // A token issued before device counts, on such a user, is revoked all the same.
    let old = RefreshToken::generate(&f.user.id, 0);
    f.store.issue_credential(&credential(&f, &old, "openid offline_access")).await.unwrap();
    remove_device_map(&f).await;
    assert!(f.store.revoke_credential(old.id()).await.unwrap());
    assert_eq!(f.store.get_credential(old.id()).await.unwrap(), None);
}

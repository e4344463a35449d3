//! The storage ports' contract, run against both implementations: the in-memory store that the
//! use-case unit tests use (`rt_domain::memory`) and the DynamoDB adapter (on moto through the
//! semantics layer). A behaviour the use cases rely on belongs here, so that a unit test over
//! the memory store means what it says.

use std::sync::OnceLock;
use std::time::Duration;

use rt_domain::client::{Client, ExpirationType, RefreshTokenPolicy, RotationType};
use rt_domain::clock::Timestamp;
use rt_domain::code::{AuthorizationCode, Challenge, Code, Redemption};
use rt_domain::exchange::{self, Hints, Outcome, Presented, Rejection};
use rt_domain::ids::{ClientId, Email, UserId};
use rt_domain::password::PasswordHash;
use rt_domain::ports::{
    CreateUser, CredentialFilter, Freshness, IssueOutcome, PageRequest, Redeem, Store, UpdateUser, WalkCursor,
};
use rt_domain::ratelimit::{self, RatePolicy};
use rt_domain::scope::Scope;
use rt_domain::token::{RefreshToken, RotationKeys};
use rt_domain::user::User;

const NOW: Timestamp = Timestamp::from_secs(1_800_000_000);

/// Runs `$contract` against a fresh store of each kind.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn memory() {
                super::$name(&rt_domain::memory::MemoryStore::new()).await;
            }
            #[tokio::test]
            async fn dynamodb() {
                super::$name(&rt_tests::fresh_store(&rt_tests::dynamodb_endpoint()).await).await;
            }
        }
    )*};
}

contract!(
    clients_are_created_once_listed_by_id_and_deleted,
    users_have_unique_emails_and_optimistic_updates,
    users_list_by_email_prefix,
    issuing_requires_the_current_user,
    credentials_list_in_index_order_count_revoke_and_purge,
    credentials_walk_in_listing_order_in_batches_undisturbed_by_revocations,
    the_exchange_grants_counts_limits_and_rejects,
    the_exchange_refuses_after_the_user_changes,
    counters_count_to_the_limit_per_window,
    users_carry_their_live_device_count,
    a_rotating_family_rotates_retries_and_is_revoked_on_reuse,
    concurrent_presentations_of_one_member_rotate_once,
    codes_are_stored_by_hash_redeemed_once_and_purged_when_expired,
    audit_events_are_read_back_whole_by_user_and_by_day_in_both_orders_and_purged_by_day,
);

fn password_hash() -> PasswordHash {
    static HASH: OnceLock<PasswordHash> = OnceLock::new();
    HASH.get_or_init(|| PasswordHash::create(&"Passw0rd-contract".to_owned().into()).unwrap()).clone()
}

fn user(email: &str) -> User {
    User {
        id: UserId::generate(),
        email: Email::parse(email).unwrap(),
        email_verified: false,
        name: email.into(),
        nickname: email.split('@').next().unwrap().into(),
        password_hash: password_hash(),
        rev: 0,
        admin: false,
        blocked: false,
        created_at: NOW,
        updated_at: NOW,
        sessions_after: Timestamp::from_millis(0),
        live_devices: 0,
    }
}

fn client(name: &str) -> Client {
    rt_devkit::seed::native_client(name, vec![], vec![], NOW)
}

fn all() -> PageRequest {
    PageRequest { page: 0, per_page: 100 }
}

async fn clients_are_created_once_listed_by_id_and_deleted<S: Store>(s: &S) {
    let mut made: Vec<Client> = (0..3).map(|i| client(&format!("app {i}"))).collect();
    for c in &made {
        assert!(s.create_client(c).await.unwrap());
    }
    assert!(!s.create_client(&made[0]).await.unwrap(), "an id is taken once");
    made.sort_by(|a, b| a.id.cmp(&b.id));
    let ids = |v: Vec<Client>| v.into_iter().map(|c| c.id).collect::<Vec<_>>();
    // Each contract runs on a table of its own.
    assert_eq!(ids(s.list_clients(all()).await.unwrap()), ids(made.clone()));
    assert_eq!(ids(s.list_clients(PageRequest { page: 1, per_page: 2 }).await.unwrap()), ids(made[2..].to_vec()));
    assert_eq!(s.count_clients().await.unwrap(), 3);

    let mut changed = made[1].clone();
    changed.name = "renamed".into();
    changed.allowed_logout_urls = vec!["https://app.example/bye".into()];
    changed.refresh_token = RefreshTokenPolicy {
        rotation_type: RotationType::Rotating,
        expiration_type: ExpirationType::Expiring,
        leeway: 2,
        infinite_idle_token_lifetime: false,
        ..RefreshTokenPolicy::default()
    };
    assert!(s.update_client(&changed).await.unwrap());
    assert_eq!(s.get_client(&changed.id, Freshness::Fresh).await.unwrap().unwrap(), changed, "every setting kept");
    let gone = client("never stored");
    assert!(!s.update_client(&gone).await.unwrap(), "no update of a missing client");

    assert_eq!(s.delete_client(&changed.id).await.unwrap().map(|c| c.name), Some("renamed".into()));
    assert_eq!(s.delete_client(&changed.id).await.unwrap(), None);
    assert_eq!(s.get_client(&changed.id, Freshness::Fresh).await.unwrap(), None);
    assert_eq!(s.count_clients().await.unwrap(), 2);
}

async fn users_have_unique_emails_and_optimistic_updates<S: Store>(s: &S) {
    let a = user("a@example.com");
    assert_eq!(s.create_user(&a).await.unwrap(), CreateUser::Created);
    assert_eq!(s.create_user(&user("a@example.com")).await.unwrap(), CreateUser::EmailTaken);
    assert_eq!(s.get_user_by_email(&a.email).await.unwrap().map(|u| u.id), Some(a.id.clone()));
    let b = user("b@example.com");
    s.create_user(&b).await.unwrap();

    let mut renamed = a.clone();
    renamed.name = "Alice".into();
    renamed.updated_at = Timestamp::from_secs(NOW.secs() + 1);
    assert_eq!(s.update_user(&a, &renamed).await.unwrap(), UpdateUser::Updated);
    assert_eq!(s.update_user(&a, &renamed).await.unwrap(), UpdateUser::Conflict, "stale `old`");

    let mut moved = renamed.clone();
    moved.email = b.email.clone();
    moved.updated_at = Timestamp::from_secs(NOW.secs() + 2);
    assert_eq!(s.update_user(&renamed, &moved).await.unwrap(), UpdateUser::EmailTaken);
    moved.email = Email::parse("alice@example.com").unwrap();
    assert_eq!(s.update_user(&renamed, &moved).await.unwrap(), UpdateUser::Updated);
    assert_eq!(s.get_user_by_email(&a.email).await.unwrap(), None, "the old e-mail is free");
    assert_eq!(s.create_user(&user("a@example.com")).await.unwrap(), CreateUser::Created);
    assert_eq!(s.get_user(&a.id).await.unwrap().unwrap().email.as_str(), "alice@example.com");

    assert!(s.delete_user(&moved).await.unwrap());
    assert!(!s.delete_user(&moved).await.unwrap());
    assert_eq!(s.get_user(&a.id).await.unwrap(), None);
    assert_eq!(s.get_user_by_email(&moved.email).await.unwrap(), None);
}

async fn users_list_by_email_prefix<S: Store>(s: &S) {
    for e in ["carol@example.com", "al@example.com", "alice@example.org", "bob@example.com"] {
        s.create_user(&user(e)).await.unwrap();
    }
    let emails = |v: Vec<User>| v.into_iter().map(|u| u.email.to_string()).collect::<Vec<_>>();
    assert_eq!(
        emails(s.list_users(None, all()).await.unwrap()),
        ["al@example.com", "alice@example.org", "bob@example.com", "carol@example.com"]
    );
    assert_eq!(emails(s.list_users(Some("al"), all()).await.unwrap()), ["al@example.com", "alice@example.org"]);
    assert_eq!(emails(s.list_users(None, PageRequest { page: 1, per_page: 3 }).await.unwrap()), ["carol@example.com"]);
    assert_eq!(s.count_users(Some("al")).await.unwrap(), 2);
    assert_eq!(s.count_users(None).await.unwrap(), 4);

    // Checkpoint walks: every user once, in e-mail order, whatever the batch size.
    let walk = |prefix: Option<&'static str>, after: Option<&'static str>, limit: u32| async move {
        let mut seen = vec![];
        let mut cursor = after.map(|a| WalkCursor::new(a.into()));
        loop {
            let b = s.walk_users(prefix, cursor.as_ref(), limit).await.unwrap();
            seen.extend(emails(b.items));
            match b.next {
                Some(n) => cursor = Some(n),
                None => break seen,
            }
        }
    };
    let every = ["al@example.com", "alice@example.org", "bob@example.com", "carol@example.com"];
    assert_eq!(walk(None, None, 1).await, every);
    assert_eq!(walk(None, None, 3).await, every);
    assert_eq!(walk(Some("al"), None, 1).await, ["al@example.com", "alice@example.org"]);
    assert_eq!(walk(None, Some("alice@example.org"), 2).await, ["bob@example.com", "carol@example.com"]);
    // A cursor from a caller: before the prefix starts at the prefix, past it finds nothing.
    assert_eq!(walk(Some("b"), Some("a"), 5).await, ["bob@example.com"]);
    assert_eq!(walk(Some("al"), Some("zzz"), 5).await, Vec::<String>::new());
}

async fn issuing_requires_the_current_user<S: Store>(s: &S) {
    let c = client("app");
    s.create_client(&c).await.unwrap();
    let u = user("u@example.com");
    s.create_user(&u).await.unwrap();
    let t = RefreshToken::generate(&u.id, 0);
    assert_eq!(s.issue_credential(&rt_tests::credential(&t, &c.id, "phone", NOW)).await.unwrap(), IssueOutcome::Issued);
    assert_eq!(s.get_credential(t.id()).await.unwrap().unwrap().device_name.as_str(), "phone");

    let stale = RefreshToken::generate(&u.id, 1);
    let cred = rt_tests::credential(&stale, &c.id, "phone", NOW);
    assert_eq!(s.issue_credential(&cred).await.unwrap(), IssueOutcome::UserChanged, "another revision");
    let mut blocked = u.clone();
    blocked.blocked = true;
    assert_eq!(s.update_user(&u, &blocked).await.unwrap(), UpdateUser::Updated);
    let t2 = RefreshToken::generate(&u.id, 0);
    let cred = rt_tests::credential(&t2, &c.id, "phone", NOW);
    assert_eq!(s.issue_credential(&cred).await.unwrap(), IssueOutcome::UserChanged, "blocked");
    let nobody = RefreshToken::generate(&UserId::generate(), 0);
    let cred = rt_tests::credential(&nobody, &c.id, "phone", NOW);
    assert_eq!(s.issue_credential(&cred).await.unwrap(), IssueOutcome::UserChanged, "no such user");
}

async fn credentials_list_in_index_order_count_revoke_and_purge<S: Store>(s: &S) {
    let (c1, c2) = (client("one"), client("two"));
    let (u1, u2) = (user("u1@example.com"), user("u2@example.com"));
    for c in [&c1, &c2] {
        s.create_client(c).await.unwrap();
    }
    for u in [&u1, &u2] {
        s.create_user(u).await.unwrap();
    }
    let mut issued = vec![];
    for (i, (u, c)) in [(&u1, &c1), (&u1, &c2), (&u1, &c1), (&u2, &c1)].into_iter().enumerate() {
        let t = RefreshToken::generate(&u.id, 0);
        let cred = rt_tests::credential(&t, &c.id, &format!("device {i}"), Timestamp::from_secs(NOW.secs() + i as i64));
        s.issue_credential(&cred).await.unwrap();
        issued.push(cred);
    }
    let ids = |v: Vec<rt_domain::credential::DeviceCredential>| v.into_iter().map(|c| c.id).collect::<Vec<_>>();
    let of_user = CredentialFilter::User { user: u1.id.clone(), client: None };
    // A user's credentials: by client id, then creation time.
    let mut expected: Vec<_> = issued[..3].to_vec();
    expected.sort_by(|a, b| (&a.client_id, a.created_at).cmp(&(&b.client_id, b.created_at)));
    assert_eq!(ids(s.list_credentials(&of_user, all()).await.unwrap()), ids(expected.clone()));
    assert_eq!(
        ids(s.list_credentials(&of_user, PageRequest { page: 1, per_page: 2 }).await.unwrap()),
        ids(expected[2..].to_vec())
    );
    assert_eq!(s.count_credentials(&of_user).await.unwrap(), 3);
    let of_user_and_client = CredentialFilter::User { user: u1.id.clone(), client: Some(c1.id.clone()) };
    assert_eq!(
        ids(s.list_credentials(&of_user_and_client, all()).await.unwrap()),
        ids(vec![issued[0].clone(), issued[2].clone()])
    );
    // A client's credentials: by user id, then creation time.
    let mut expected: Vec<_> = [&issued[0], &issued[2], &issued[3]].into_iter().cloned().collect();
    expected.sort_by(|a, b| (&a.user_id, a.created_at).cmp(&(&b.user_id, b.created_at)));
    let of_client = CredentialFilter::Client(c1.id.clone());
    assert_eq!(ids(s.list_credentials(&of_client, all()).await.unwrap()), ids(expected));

    assert!(s.revoke_credential(&issued[0].id).await.unwrap());
    assert!(!s.revoke_credential(&issued[0].id).await.unwrap());
    assert_eq!(s.get_credential(&issued[0].id).await.unwrap(), None);
    assert_eq!(s.count_credentials(&of_user).await.unwrap(), 2);

    // A purge below a revision keeps the newer ones.
    let mut bumped = u1.clone();
    bumped.rev = 1;
    s.update_user(&u1, &bumped).await.unwrap();
    let newer = RefreshToken::generate(&u1.id, 1);
    s.issue_credential(&rt_tests::credential(&newer, &c2.id, "new", NOW)).await.unwrap();
    let p = s.purge_user_credentials(&u1.id, Some(1), Duration::from_secs(5)).await.unwrap();
    assert_eq!((p.deleted, p.complete), (2, true));
    assert_eq!(ids(s.list_credentials(&of_user, all()).await.unwrap()), vec![newer.id().clone()]);

    let p = s.purge_client_credentials(&c1.id, Duration::from_secs(5)).await.unwrap();
    assert_eq!((p.deleted, p.complete), (1, true));
    assert_eq!(s.count_credentials(&CredentialFilter::Client(c1.id.clone())).await.unwrap(), 0);
    let p = s.purge_user_credentials(&u1.id, None, Duration::from_secs(5)).await.unwrap();
    assert_eq!(p.deleted, 1);
}

/// Every credential of `filter`, walked `limit` at a time; revokes those `revoke` picks as
/// it goes. Returns the ids seen and the batches' sizes.
async fn walk<S: Store>(
    s: &S,
    filter: &CredentialFilter,
    limit: u32,
    revoke: impl Fn(&rt_domain::credential::DeviceCredential) -> bool,
) -> (Vec<rt_domain::ids::DeviceCredentialId>, Vec<usize>) {
    let (mut seen, mut sizes, mut after) = (vec![], vec![], None);
    loop {
        let batch = s.walk_credentials(filter, after.as_ref(), limit).await.unwrap();
        sizes.push(batch.items.len());
        for c in &batch.items {
            if revoke(c) {
                assert!(s.revoke_read_credential(c).await.unwrap());
            }
        }
        seen.extend(batch.items.into_iter().map(|c| c.id));
        match batch.next {
            Some(next) => after = Some(next),
            None => return (seen, sizes),
        }
        assert!(sizes.len() < 100, "the walk ends");
    }
}

async fn credentials_walk_in_listing_order_in_batches_undisturbed_by_revocations<S: Store>(s: &S) {
    let (c1, c2) = (client("one"), client("two"));
    for c in [&c1, &c2] {
        s.create_client(c).await.unwrap();
    }
    let users: Vec<User> = (0..3).map(|i| user(&format!("w{i}@example.com"))).collect();
    for u in &users {
        s.create_user(u).await.unwrap();
    }
    for i in 0..12i64 {
        let u = &users[(i % 3) as usize];
        let c = if i % 4 == 3 { &c2 } else { &c1 };
        let t = RefreshToken::generate(&u.id, 0);
        let cred = rt_tests::credential(&t, &c.id, &format!("device {i}"), Timestamp::from_secs(NOW.secs() + i));
        s.issue_credential(&cred).await.unwrap();
    }
    let ids = |v: Vec<rt_domain::credential::DeviceCredential>| v.into_iter().map(|c| c.id).collect::<Vec<_>>();
    let filters = [
        CredentialFilter::Client(c1.id.clone()),
        CredentialFilter::User { user: users[0].id.clone(), client: None },
        CredentialFilter::User { user: users[1].id.clone(), client: Some(c1.id.clone()) },
        CredentialFilter::Client(ClientId::parse("nobody").unwrap()),
    ];
    for filter in &filters {
        // The listing's order, whatever the batch size; the last batch says it is.
        let listed = ids(s.list_credentials(filter, all()).await.unwrap());
        for limit in [1, 2, 5, 100] {
            let (seen, sizes) = walk(s, filter, limit, |_| false).await;
            assert_eq!(seen, listed, "{filter:?} by {limit}");
            assert!(sizes.iter().all(|n| *n <= limit as usize), "{sizes:?}");
        }
    }
    // Revoking what was walked (every other one) does not disturb the walk.
    let of_client = &filters[0];
    let listed = ids(s.list_credentials(of_client, all()).await.unwrap());
    assert_eq!(listed.len(), 9);
    let odd = |c: &rt_domain::credential::DeviceCredential| c.created_at.secs() % 2 == 1;
    let (seen, _) = walk(s, of_client, 2, odd).await;
    assert_eq!(seen, listed);
    let kept = ids(s.list_credentials(of_client, all()).await.unwrap());
    assert_eq!(kept.len(), 6);
    assert_eq!(walk(s, of_client, 3, |_| false).await.0, kept);
}

struct Exchanging {
    client: Client,
    user: User,
    token: RefreshToken,
}

async fn exchanging<S: Store>(s: &S, scope: &str) -> Exchanging {
    let client = client("app");
    s.create_client(&client).await.unwrap();
    let user = user("x@example.com");
    s.create_user(&user).await.unwrap();
    let token = RefreshToken::generate(&user.id, 0);
    let mut cred = rt_tests::credential(&token, &client.id, "phone", NOW);
    cred.scope = Scope::parse(scope).unwrap();
    s.issue_credential(&cred).await.unwrap();
    Exchanging { client, user, token }
}

async fn exchange<S: Store>(
    s: &S,
    token: &RefreshToken,
    client: &ClientId,
    address: &str,
    claims: &[(&'static str, bool)],
) -> Outcome {
    let req = Presented {
        token,
        client_id: client,
        address,
        source_ip: address,
        now: NOW,
        policy: RatePolicy { limit: 3, window_secs: 60 },
        max_addresses: 2,
        claims,
        rotation: None,
        leeway_secs: 0,
        expiry: Default::default(),
        migrate: false,
        demote: false,
    };
    // No hints: every exchange starts from the guess of a new window.
    exchange::run(s, &Hints::default(), &req).await.unwrap()
}

async fn the_exchange_grants_counts_limits_and_rejects<S: Store>(s: &S) {
    let x = exchanging(s, "openid offline_access profile").await;
    let (t, c) = (&x.token, &x.client.id);
    let granted = |used, claims: &str| Outcome::Granted {
        used,
        granted_claims: Scope::parse(claims).unwrap(),
        successor: false,
        demoted: false,
    };
    assert_eq!(exchange(s, t, c, "a", &[]).await, granted(1, ""));
    // Wrong guesses about the grant are corrected, not refused.
    assert_eq!(exchange(s, t, c, "a", &[("profile", false), ("email", true)]).await, granted(2, "profile"));
    assert_eq!(exchange(s, t, c, "a", &[]).await, granted(3, ""));
    assert_eq!(exchange(s, t, c, "a", &[]).await, Outcome::RateLimited { used: 3 });
    assert_eq!(exchange(s, t, c, "b", &[]).await, granted(1, ""));
    // A third address (two at most are kept) is not refused: the least-used counter (b) goes.
    assert_eq!(exchange(s, t, c, "c", &[]).await, granted(1, ""));
    assert_eq!(exchange(s, t, c, "a", &[]).await, Outcome::RateLimited { used: 3 }, "a's count is kept");
    assert_eq!(exchange(s, t, c, "b", &[]).await, granted(1, ""), "b starts again, evicting c");

    let stored = s.get_credential(t.id()).await.unwrap().unwrap();
    assert_eq!((stored.use_count, stored.last_ip.as_deref(), stored.last_used_at), (6, Some("b"), Some(NOW)));

    let unknown = RefreshToken::generate(&x.user.id, 0);
    assert_eq!(exchange(s, &unknown, c, "a", &[]).await, Outcome::Rejected(Rejection::Unknown));
    let other = ClientId::parse("someone-else").unwrap();
    assert_eq!(exchange(s, t, &other, "a", &[]).await, Outcome::Rejected(Rejection::WrongClient));
    s.revoke_credential(t.id()).await.unwrap();
    assert_eq!(exchange(s, t, c, "b", &[]).await, Outcome::Rejected(Rejection::Unknown));
}

async fn the_exchange_refuses_after_the_user_changes<S: Store>(s: &S) {
    let x = exchanging(s, "openid offline_access").await;
    let (t, c) = (&x.token, &x.client.id);
    assert!(matches!(exchange(s, t, c, "a", &[]).await, Outcome::Granted { .. }));
    let mut blocked = x.user.clone();
    blocked.blocked = true;
    s.update_user(&x.user, &blocked).await.unwrap();
    assert_eq!(exchange(s, t, c, "a", &[]).await, Outcome::Rejected(Rejection::UserGone));
    let mut unblocked = blocked.clone();
    unblocked.blocked = false;
    unblocked.rev = 1;
    s.update_user(&blocked, &unblocked).await.unwrap();
    assert_eq!(exchange(s, t, c, "a", &[]).await, Outcome::Rejected(Rejection::UserGone), "a new revision");
    s.delete_user(&unblocked).await.unwrap();
    assert_eq!(exchange(s, t, c, "a", &[]).await, Outcome::Rejected(Rejection::UserGone));
}

async fn counters_count_to_the_limit_per_window<S: Store>(s: &S) {
    let policy = RatePolicy { limit: 2, window_secs: 60 };
    let at = |secs| Timestamp::from_secs(NOW.secs() - NOW.secs() % 60 + secs);
    let count = |secs| ratelimit::count(s, "login-ip:203.0.113.9", policy, at(secs));
    assert_eq!(count(0).await.unwrap(), ratelimit::Count { used: 1, allowed: true });
    assert_eq!(count(1).await.unwrap(), ratelimit::Count { used: 2, allowed: true });
    assert_eq!(count(2).await.unwrap(), ratelimit::Count { used: 2, allowed: false });
    assert_eq!(count(60).await.unwrap(), ratelimit::Count { used: 1, allowed: true }, "a new window");
    // Another key is another counter.
    let other = ratelimit::count(s, "login-ip:198.51.100.1", policy, at(61)).await.unwrap();
    assert_eq!(other.used, 1);
}

async fn users_carry_their_live_device_count<S: Store>(s: &S) {
    let (c1, c2) = (client("one"), client("two"));
    for c in [&c1, &c2] {
        s.create_client(c).await.unwrap();
    }
    let u = user("d@example.com");
    s.create_user(&u).await.unwrap();
    let devices = || async { s.get_user(&u.id).await.unwrap().unwrap().live_devices };
    assert_eq!(devices().await, 0);
    let issue = |client: &ClientId, device: &str| {
        let t = RefreshToken::generate(&u.id, 0);
        let cred = rt_tests::credential(&t, client, device, NOW);
        async move {
            assert_eq!(s.issue_credential(&cred).await.unwrap(), IssueOutcome::Issued);
            t
        }
    };
    let phone1 = issue(&c1.id, "phone").await;
    let phone2 = issue(&c2.id, "phone").await;
    let laptop = issue(&c1.id, "laptop").await;
    assert_eq!(devices().await, 2, "phone and laptop");
    let listed = s.list_users(Some("d@"), all()).await.unwrap();
    assert_eq!(listed.iter().map(|u| u.live_devices).collect::<Vec<_>>(), [2], "listings carry it too");
    assert!(s.revoke_credential(phone1.id()).await.unwrap());
    assert_eq!(devices().await, 2, "the phone still has a token");
    assert!(s.revoke_credential(phone2.id()).await.unwrap());
    assert_eq!(devices().await, 1);
    // A deleted client's tokens count until they are purged.
    s.delete_client(&c1.id).await.unwrap();
    assert_eq!(devices().await, 1);
    s.purge_client_credentials(&c1.id, Duration::from_secs(5)).await.unwrap();
    assert_eq!(devices().await, 0);
    assert!(!s.revoke_credential(laptop.id()).await.unwrap());
    // A new revision leaves no live device.
    issue(&c2.id, "tablet").await;
    assert_eq!(devices().await, 1);
    let current = s.get_user(&u.id).await.unwrap().unwrap();
    let bumped = User { rev: 1, updated_at: Timestamp::from_secs(NOW.secs() + 1), ..current.clone() };
    assert_eq!(s.update_user(&current, &bumped).await.unwrap(), UpdateUser::Updated);
    assert_eq!(devices().await, 0);
}

fn rotation_keys() -> RotationKeys {
    RotationKeys::new(&secrecy::SecretBox::new(Box::new([42; 32])))
}

async fn rotate<S: Store>(s: &S, token: &RefreshToken, client: &ClientId, keys: &RotationKeys) -> Outcome {
    let req = Presented {
        token,
        client_id: client,
        address: "203.0.113.7",
        source_ip: "203.0.113.7",
        now: NOW,
        policy: RatePolicy { limit: 100, window_secs: 60 },
        max_addresses: 16,
        claims: &[],
        rotation: Some(keys),
        leeway_secs: 0,
        expiry: Default::default(),
        migrate: false,
        demote: false,
    };
    exchange::run(s, &Hints::default(), &req).await.unwrap()
}

async fn rotating_family<S: Store>(s: &S, keys: &RotationKeys) -> (Client, User, RefreshToken) {
    let client = client("spa");
    s.create_client(&client).await.unwrap();
    let user = user("r@example.com");
    s.create_user(&user).await.unwrap();
    let token = RefreshToken::generate_rotating(&user.id, 0, keys);
    s.issue_credential(&rt_tests::credential(&token, &client.id, "browser", NOW)).await.unwrap();
    (client, user, token)
}

async fn a_rotating_family_rotates_retries_and_is_revoked_on_reuse<S: Store>(s: &S) {
    let keys = rotation_keys();
    let (client, user, t0) = rotating_family(s, &keys).await;
    let successor = Outcome::Granted { used: 1, granted_claims: Scope::default(), successor: true, demoted: false };
    let generation = || async { s.get_credential(t0.id()).await.unwrap().and_then(|c| c.generation) };
    assert_eq!(generation().await, Some(0));
    assert_eq!(rotate(s, &t0, &client.id, &keys).await, successor);
    assert_eq!(generation().await, Some(1), "rotated");
    // The same token again at once: the same successor, no second rotation.
    let again = Outcome::Granted { used: 2, granted_claims: Scope::default(), successor: true, demoted: false };
    assert_eq!(rotate(s, &t0, &client.id, &keys).await, again);
    assert_eq!(generation().await, Some(1));
    let t1 = t0.successor(&keys).unwrap();
    assert!(matches!(rotate(s, &t1, &client.id, &keys).await, Outcome::Granted { successor: true, .. }));
    assert_eq!(generation().await, Some(2));
    assert_eq!(s.get_user(&user.id).await.unwrap().unwrap().live_devices, 1);
    // The first member, two generations back: the family is revoked, the newest member too.
    assert_eq!(rotate(s, &t0, &client.id, &keys).await, Outcome::Rejected(Rejection::Reused));
    assert_eq!(s.get_credential(t0.id()).await.unwrap(), None);
    let t2 = t1.successor(&keys).unwrap();
    assert_eq!(rotate(s, &t2, &client.id, &keys).await, Outcome::Rejected(Rejection::Unknown));
    assert_eq!(s.get_user(&user.id).await.unwrap().unwrap().live_devices, 0, "counted off");
}

async fn concurrent_presentations_of_one_member_rotate_once<S: Store>(s: &S) {
    let keys = rotation_keys();
    let (client, _, t0) = rotating_family(s, &keys).await;
    let outcomes = futures::future::join_all((0..10).map(|_| rotate(s, &t0, &client.id, &keys))).await;
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Granted { successor: true, .. })), "{outcomes:?}");
    assert_eq!(s.get_credential(t0.id()).await.unwrap().and_then(|c| c.generation), Some(1), "one rotation");
    // Each of them got the one successor, which is the current member now.
    let t1 = t0.successor(&keys).unwrap();
    assert!(matches!(rotate(s, &t1, &client.id, &keys).await, Outcome::Granted { successor: true, .. }));
}

fn code_of(u: &User, c: &Client, device: Option<&str>, expires_at: Timestamp) -> (Code, AuthorizationCode) {
    let code = Code::generate();
    let record = AuthorizationCode {
        hash: code.hash(),
        client_id: c.id.clone(),
        user_id: u.id.clone(),
        user_rev: u.rev,
        redirect_uri: "https://app.example.com/callback?x=1".into(),
        challenge: Some(Challenge::of("contract-verifier-0123456789-abcdefghijklmnopq")),
        scope: Scope::parse("openid offline_access").unwrap(),
        nonce: Some("n\u{e9}".into()),
        device: device.map(|d| rt_domain::ids::DeviceName::parse(d).unwrap()),
        created_at: NOW,
        created_ip: "203.0.113.9".into(),
        expires_at,
        redeemed: None,
    };
    (code, record)
}

async fn codes_are_stored_by_hash_redeemed_once_and_purged_when_expired<S: Store>(s: &S) {
    let c = client("app");
    s.create_client(&c).await.unwrap();
    let u = user("code@example.com");
    s.create_user(&u).await.unwrap();
    let (code, record) = code_of(&u, &c, Some("phone"), NOW.plus_secs(600));
    s.put_code(&record).await.unwrap();
    assert_eq!(s.get_code(&code.hash()).await.unwrap().as_ref(), Some(&record), "read back as written");
    assert_eq!(s.get_code(&Code::generate().hash()).await.unwrap(), None);

    // Redeemed with its refresh token: once.
    let t = RefreshToken::generate(&u.id, 0);
    let cred = rt_tests::credential(&t, &c.id, "phone", NOW);
    let at = NOW.plus_secs(3);
    assert_eq!(s.redeem_code(&record, at, Some(&cred)).await.unwrap(), Redeem::Redeemed);
    let redeemed = s.get_code(&code.hash()).await.unwrap().unwrap();
    assert_eq!(redeemed.redeemed, Some(Redemption { at, credential: Some(t.id().clone()) }));
    assert!(s.get_credential(t.id()).await.unwrap().is_some(), "issued in the same write");
    assert_eq!(s.get_user(&u.id).await.unwrap().unwrap().live_devices, 1);
    let t2 = RefreshToken::generate(&u.id, 0);
    let again = rt_tests::credential(&t2, &c.id, "phone", NOW);
    assert_eq!(s.redeem_code(&record, at, Some(&again)).await.unwrap(), Redeem::AlreadyRedeemed);
    assert!(s.get_credential(t2.id()).await.unwrap().is_none(), "nothing written");

    // Without a refresh token; and refused once the user changed.
    let (_, plain) = code_of(&u, &c, None, NOW.plus_secs(600));
    s.put_code(&plain).await.unwrap();
    let mut blocked = u.clone();
    blocked.blocked = true;
    let stored = s.get_user(&u.id).await.unwrap().unwrap();
    assert_eq!(s.update_user(&stored, &blocked).await.unwrap(), UpdateUser::Updated);
    assert_eq!(s.redeem_code(&plain, at, None).await.unwrap(), Redeem::UserChanged);
    assert_eq!(s.get_code(&plain.hash).await.unwrap().unwrap().redeemed, None);

    // The expired ones go, redeemed or not; the live one stays.
    let (_, live) = code_of(&u, &c, None, NOW.plus_secs(1200));
    s.put_code(&live).await.unwrap();
    let purge = s.purge_expired_codes(NOW.plus_secs(601), Duration::from_secs(10)).await.unwrap();
    assert_eq!((purge.deleted, purge.complete), (2, true));
    assert!(s.get_code(&code.hash()).await.unwrap().is_none());
    assert!(s.get_code(&plain.hash).await.unwrap().is_none());
    assert!(s.get_code(&live.hash).await.unwrap().is_some());
}

async fn audit_events_are_read_back_whole_by_user_and_by_day_in_both_orders_and_purged_by_day<S: Store>(s: &S) {
    use rt_domain::audit::{Actor, AuditEvent, Direction, EventType, LogDay, Reason, Revocation, Source};
    use rt_domain::ids::DeviceCredentialId;
    let (a, b) = (UserId::generate(), UserId::generate());
    let c = client("Logged");
    let day = LogDay::of(NOW);
    let source = || Source::new("203.0.113.7", Some("Mozilla/5.0 (contract)"));
    // A whole event: every field, a revocation by someone.
    let full = AuditEvent::revoked(
        Revocation { reason: Reason::PasswordChange, by: Actor::ManagementApi(c.id.clone()) },
        NOW,
        source(),
    )
    .client(&c)
    .user(&a, Some("a@example.com"))
    .device(Some("Firefox on Linux"))
    .credential(Some(&DeviceCredentialId::generate()))
    .count(3);
    s.record_event(&full).await.unwrap();
    // Events of two users and of none, over the day, in log-id order.
    let mut written = vec![full.clone()];
    for k in 1..=7i64 {
        let who = match k % 3 {
            0 => None,
            1 => Some(&a),
            _ => Some(&b),
        };
        let mut e = AuditEvent::new(EventType::SuccessRefreshExchange, NOW.plus_secs(k * 60), source());
        if let Some(u) = who {
            e = e.user(u, None);
        }
        s.record_event(&e).await.unwrap();
        written.push(e);
    }
    // Another day.
    let tomorrow =
        AuditEvent::new(EventType::WrongUsername, NOW.plus_secs(86_400), Source::default()).typed_user_name("x@y.z");
    s.record_event(&tomorrow).await.unwrap();

    let of_a: Vec<AuditEvent> = written.iter().filter(|e| e.user_id.as_ref() == Some(&a)).cloned().collect();
    let newest = Direction::NewestFirst { before: None };
    let got = s.user_events(&a, &newest, 100).await.unwrap();
    assert_eq!(got, of_a.iter().rev().cloned().collect::<Vec<_>>(), "newest first, whole");
    let oldest = s.user_events(&a, &Direction::OldestFirst { after: None }, 2).await.unwrap();
    assert_eq!(oldest, of_a[..2].to_vec());
    let after = Direction::OldestFirst { after: Some(of_a[0].id.clone()) };
    assert_eq!(s.user_events(&a, &after, 100).await.unwrap(), of_a[1..].to_vec(), "strictly after the cursor");
    assert_eq!(s.count_user_events(&a).await.unwrap(), of_a.len() as u64);

    // The day's feed: every event of the day, users' and none's, merged over the shards.
    let all = s.day_events(day, &Direction::OldestFirst { after: None }, 100).await.unwrap();
    assert_eq!(all, written);
    let before = Direction::NewestFirst { before: Some(written[5].id.clone()) };
    let page = s.day_events(day, &before, 3).await.unwrap();
    assert_eq!(page, written[2..5].iter().rev().cloned().collect::<Vec<_>>());
    assert_eq!(s.day_events(day.next(), &newest, 100).await.unwrap(), vec![tomorrow.clone()]);

    // A purge removes the day and nothing else.
    let p = s.purge_log_day(day, Duration::from_secs(5)).await.unwrap();
    assert_eq!((p.deleted, p.complete), (written.len() as u64, true));
    assert!(s.day_events(day, &newest, 100).await.unwrap().is_empty());
    assert!(s.user_events(&a, &newest, 100).await.unwrap().is_empty());
    assert_eq!(s.day_events(day.next(), &newest, 100).await.unwrap(), vec![tomorrow]);
}

//! Round trips are the cost: DynamoDB requests per call, counted by the semantics layer in
//! front of the DynamoDB server.

use rt_tests::TestApp;

#[tokio::test]
async fn one_dynamodb_request_per_delegation_on_the_common_path() {
    let app = TestApp::spawn().await;
    let rt = app.obtain_refresh_token("my-device").await;
    let body = app.delegation_body(&rt);
    app.layer.take_operations();

    // Validate + count + record last use: one request, every time. (The client's configuration
    // is cached per process for 30 s; the login above read it. A cold process reads it once.)
    // Then the audit event (`sd`): one PutItem after the exchange, never in its transaction.
    for _ in 0..5 {
        let r = app.post_delegation(&body).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(app.layer.take_operations(), ["TransactWriteItems", "PutItem"]);
    }

    // Refusals cost one request too (and write nothing but their audit event); a malformed
    // token is refused by the wire, before any request (and so is not recorded).
    let mut bad = body.clone();
    bad["refresh_token"] = rt_tests::INVALID_RT.into();
    assert_eq!(app.post_delegation(&bad).await.status, 403);
    assert!(app.layer.take_operations().is_empty(), "a malformed token never reaches DynamoDB");
}

#[tokio::test]
async fn issuing_a_refresh_token_is_one_transaction() {
    let app = TestApp::spawn().await;
    let page = app.get_authorize(&app.authorize_params("my-device")).await;
    assert_eq!(page.status, 200);
    assert_eq!(app.layer.take_operations(), ["GetItem"], "GET /authorize reads the client (then caches it)");
    let tx = rt_tests::hidden_tx(&page.body);
    let cookie = page.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
    let r = app.post_login(&tx, Some(&cookie), &app.user.email, &app.user.password).await;
    assert_eq!(r.resp.status, 302);
    // E-mail → user, the sign-in throttle's two counters (read: a success writes none), then
    // one transaction for the credential (the client comes from the cache: its item is shared
    // by every user of the application); then the sign-in's audit event, alone.
    assert_eq!(
        app.layer.take_operations(),
        ["GetItem", "GetItem", "GetItem", "GetItem", "TransactWriteItems", "PutItem"]
    );
}

#[tokio::test]
async fn management_requests_per_call() {
    use reqwest::Method;
    let app = TestApp::spawn().await;
    app.obtain_refresh_token("phone").await;
    app.seed_credentials(60, "tablet").await;
    let token = app.management_token(rt_domain::management::SCOPES).await;
    let uid: String = form_urlencoded::byte_serialize(app.user.user.id.as_str().as_bytes()).collect();
    app.layer.take_operations();

    let ops = || {
        let mut v = app.layer.take_operations();
        v.sort();
        v
    };
    // A user's page: whether a credential has expired depends on its last use, which no
    // index holds, so the user's credentials are walked in batches of 100 — the keys from the
    // user's index partition (one Query), the items by one BatchGetItem — until the page is
    // full (the clients' policies come from the cache: read since the token was issued).
    let path = format!("/api/v2/device-credentials?user_id={uid}&page=0&per_page=50");
    assert_eq!(app.mgmt(Method::GET, &path, Some(&token), None).await.status, 200);
    assert_eq!(ops(), ["BatchGetItem", "Query"]);
    // With include_totals, to the end, which counts the live ones: no COUNT query.
    let r = app.mgmt(Method::GET, &format!("{path}&include_totals=true"), Some(&token), None).await;
    assert_eq!(r.json()["total"], 61);
    assert_eq!(ops(), ["BatchGetItem", "Query"]);
    // A deeper page reads the credentials before it too (DynamoDB has no offsets).
    let r = app
        .mgmt(Method::GET, &format!("/api/v2/device-credentials?user_id={uid}&page=1&per_page=50"), Some(&token), None)
        .await;
    assert_eq!(r.json().as_array().unwrap().len(), 11);
    assert_eq!(ops(), ["BatchGetItem", "Query"]);
    // A client whose tokens never expire: the index alone decides the page and the total.
    // Its credentials are spread over 16 index partitions: one Query each.
    let r = app
        .mgmt(
            Method::GET,
            &format!("/api/v2/device-credentials?client_id={}&per_page=5", app.client.id),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.json().as_array().unwrap().len(), 5);
    let expected: Vec<&str> = std::iter::once("BatchGetItem").chain(std::iter::repeat_n("Query", 16)).collect();
    assert_eq!(ops(), expected);

    // Revoking one refresh token: read it, then one transaction (delete it, count it off its
    // device in the user's item); then the audit event (`srrt`, by this client).
    let id = r.json()[0]["id"].as_str().unwrap().to_owned();
    let d = app.mgmt(Method::DELETE, &format!("/api/v2/device-credentials/{id}"), Some(&token), None).await;
    assert_eq!(d.status, 204);
    assert_eq!(app.layer.take_operations(), ["GetItem", "TransactWriteItems", "PutItem"]);
    println!(
        "requests: a user's page = 1 Query + 1 BatchGetItem per 100 of the user's credentials up to the page (to the end with include_totals); a non-expiring client's page = 16 Query + 1 BatchGetItem; delete = 1 GetItem + 1 TransactWriteItems + 1 PutItem (the audit event)"
    );
}

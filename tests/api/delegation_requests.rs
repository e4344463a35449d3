//! Round trips are the cost: DynamoDB requests per /delegation, counted by a proxy in front of
//! the DynamoDB server.

use rt_tests::proxy::CountingProxy;
use rt_tests::{Options, TestApp, dynamodb_endpoint};

#[tokio::test]
async fn one_dynamodb_request_per_delegation_on_the_common_path() {
    let proxy = CountingProxy::start(&dynamodb_endpoint()).await;
    let app = TestApp::spawn_with(Options { endpoint: Some(proxy.endpoint.clone()), ..Default::default() }).await;
    let rt = app.obtain_refresh_token("my-device").await;
    let body = app.delegation_body(&rt);
    proxy.requests.take();

    // Validate + count + record last use: one request, every time. (The client's configuration
    // is cached per process for 30 s; the login above read it. A cold process reads it once.)
    for _ in 0..5 {
        let r = app.post_delegation(&body).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(proxy.requests.take(), ["TransactWriteItems"]);
    }

    // Refusals cost one request too (and write nothing).
    let mut bad = body.clone();
    bad["refresh_token"] = rt_tests::INVALID_RT.into();
    assert_eq!(app.post_delegation(&bad).await.status, 403);
    assert!(proxy.requests.take().is_empty(), "a malformed token never reaches DynamoDB");
}

#[tokio::test]
async fn issuing_a_refresh_token_is_one_transaction() {
    let proxy = CountingProxy::start(&dynamodb_endpoint()).await;
    let app = TestApp::spawn_with(Options { endpoint: Some(proxy.endpoint.clone()), ..Default::default() }).await;
    let page = app.get_authorize(&app.authorize_params("my-device")).await;
    assert_eq!(page.status, 200);
    assert_eq!(proxy.requests.take(), ["GetItem"], "GET /authorize reads the client");
    let tx = rt_tests::hidden_tx(&page.body);
    let cookie = page.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
    let r = app.post_login(&tx, Some(&cookie), &app.user.email, &app.user.password).await;
    assert_eq!(r.resp.status, 302);
    // client, two login counters, e-mail → user, then one transaction for the credential.
    assert_eq!(
        proxy.requests.take(),
        ["GetItem", "UpdateItem", "UpdateItem", "GetItem", "GetItem", "TransactWriteItems"]
    );
}

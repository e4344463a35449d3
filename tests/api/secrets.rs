//! At rest: no usable refresh token, password or client secret in the table.

use base64::Engine as _;
use rt_tests::TestApp;

#[tokio::test]
async fn a_full_table_dump_yields_no_usable_token() {
    let app = TestApp::spawn().await;
    let tokens = [app.obtain_refresh_token("phone").await, app.obtain_refresh_token("tablet").await];
    for t in &tokens {
        assert_eq!(app.post_delegation(&app.delegation_body(t)).await.status, 200);
    }
    let dump = app.snapshot().await;
    assert!(dump.contains("dcr_"), "the dump has the credentials");
    for t in &tokens {
        let body = t.strip_prefix("rt1_").unwrap();
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body).unwrap();
        let secret = &raw[32..];
        let forms = [
            t.clone(),
            body.to_owned(),
            body[43..].to_owned(), // the tail of the encoding, which covers only secret bits
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
            base64::engine::general_purpose::STANDARD.encode(secret),
            secret.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        ];
        for f in forms {
            assert!(!dump.contains(&f), "found {f} in the table");
        }
    }
    assert!(!dump.contains(&app.user.password), "passwords are hashed");
    assert!(dump.contains("$argon2id$"), "with Argon2id");
}

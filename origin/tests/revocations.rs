//! The revocation log: every session end reaches every node (and the edge) from it.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

/// Two nodes on one PostgreSQL database, with the session cache off: a sign-out on node A is
/// refused by node B's verification within a second, from the revocation log alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_out_on_one_node_is_refused_on_another_within_a_second() {
    let overrides = [("TESSERA_SESSION_CACHE_MS", "0")];
    let a = common::TestServer::start_with(common::Backend::Postgres, &overrides).await;
    let b = a.second_node(&overrides).await;
    a.create_user("default", "ann@example.com", common::PASSWORD)
        .await;
    let tokens = a
        .login("default", "ann@example.com", common::PASSWORD)
        .await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(b.get_auth("/api/auth/verify", access).await.status(), 200);
    let out = a
        .post_auth("/api/auth/logout", access, &serde_json::json!({}))
        .await;
    assert!(out.status().is_success());
    let ended = std::time::Instant::now();
    loop {
        let status = b.get_auth("/api/auth/verify", access).await.status();
        if status == 401 {
            break;
        }
        assert!(
            ended.elapsed() < std::time::Duration::from_secs(1),
            "node B still accepts the token a second after the sign-out on node A"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

//! Account takeover, performed as an attacker would (issue 24): each test is one attack that
//! worked before its fix, on SQLite and PostgreSQL. docs/SECURITY.md lists them.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use common::{assert_problem, Backend, TestServer, PASSWORD};
use serde_json::json;

/// Item 5: a stolen access token guesses the password behind it (password change, second
/// factor changes) from a new address each time. The per-IP limit never bites; the account's
/// does: five wrong guesses a minute, then 429 even for the right password.
async fn a_stolen_token_guesses_the_password_at_most_five_times_a_minute(backend: Backend) {
    let server = TestServer::start(backend).await;
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let tokens = server.login("default", "ann@example.com", PASSWORD).await;
    let stolen = tokens["access_token"].as_str().unwrap();
    // Every request of send_auth comes from a new client address.
    for guess in 0..5 {
        let change = json!({
            "current_password": format!("guess number {guess} of many"),
            "new_password": "the attacker's own passphrase",
        });
        let refused = server
            .post_auth("/api/auth/password", stolen, &change)
            .await;
        assert_problem(refused, 403, "wrong_password").await;
    }
    // The other routes that check a secret behind the token share the account's budget of
    // their class: the emailed factor's switch is a credential route too.
    let email = json!({"enabled": false, "password": PASSWORD});
    let limited = server.put_auth("/api/auth/mfa/email", stolen, &email).await;
    assert_problem(limited, 429, "rate_limited").await;
    let right =
        json!({"current_password": PASSWORD, "new_password": "the attacker's own passphrase"});
    let limited = server.post_auth("/api/auth/password", stolen, &right).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));

    // A minute on, the owner (or anyone with the password) gets through.
    server.clock.advance(std::time::Duration::from_secs(61));
    let ok = server.post_auth("/api/auth/password", stolen, &right).await;
    assert_eq!(ok.status(), 204);
}
both!(a_stolen_token_guesses_the_password_at_most_five_times_a_minute);

/// Item 6: whoever holds an IPv6 /64 picks a new address for every request. Per-IP limits
/// charge the network, so the sixth refresh guess a minute from one /64 is refused, while
/// another /64 has its own budget.
async fn an_ipv6_network_shares_one_per_ip_budget(backend: Backend) {
    let server = TestServer::start(backend).await;
    let guess = json!({"refresh_token": "tsr_rt_default_not-a-real-token"});
    for n in 1..=5 {
        let ip = format!("2001:db8:aa:bb:{n:x}::{n:x}");
        let refused = server.post_from("/api/auth/refresh", &guess, &ip).await;
        assert_eq!(refused.status(), 401, "{ip}");
    }
    let limited = server
        .post_from("/api/auth/refresh", &guess, "2001:db8:aa:bb:ffff:1:2:3")
        .await;
    assert_problem(limited, 429, "rate_limited").await;
    let elsewhere = server
        .post_from("/api/auth/refresh", &guess, "2001:db8:aa:cc::1")
        .await;
    assert_eq!(elsewhere.status(), 401);
    // An IPv4 client keeps its own address as its subject.
    let v4 = server
        .post_from("/api/auth/refresh", &guess, "192.0.2.200")
        .await;
    assert_eq!(v4.status(), 401);
}
both!(an_ipv6_network_shares_one_per_ip_budget);

/// Item 6, configured: `TESSERA_IPV6_PREFIX=128` keys every IPv6 address on its own (a network
/// known to give each client one address).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ipv6_prefix_is_configurable() {
    let server = TestServer::start_with(Backend::Sqlite, &[("TESSERA_IPV6_PREFIX", "128")]).await;
    let guess = json!({"refresh_token": "tsr_rt_default_not-a-real-token"});
    for n in 1..=6 {
        let ip = format!("2001:db8:aa:bb::{n:x}");
        let refused = server.post_from("/api/auth/refresh", &guess, &ip).await;
        assert_eq!(refused.status(), 401, "{ip}");
    }
}

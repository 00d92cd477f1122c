//! Webhooks, on SQLite and PostgreSQL, against a receiver that verifies every signature with
//! the Standard Webhooks package (tests/support/webhook_receiver.py): account events arrive,
//! signed; with the receiver down for a while they wait and are retried, and once it is up
//! again every event arrives, none twice, in order per user.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::process::{Child, Command};
use std::time::Duration;

use common::{free_port, Backend, TestServer, PASSWORD};
use serde_json::{json, Value};
use tessera_core::model::TenantSlug;
use tessera_origin::services::{Actor, UserKey};

/// The receiver process, stopped on drop.
struct Receiver {
    port: u16,
    secret: String,
    log: std::path::PathBuf,
    child: Option<Child>,
}

impl Receiver {
    fn new(port: u16, secret: &str, dir: &std::path::Path) -> Self {
        let mut receiver = Self {
            port,
            secret: secret.to_owned(),
            log: dir.join("received.jsonl"),
            child: None,
        };
        receiver.start();
        receiver
    }

    fn start(&mut self) {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/webhook_receiver.py"
        );
        let mut command = Command::new("python3");
        command
            .arg(script)
            .arg(self.port.to_string())
            .arg(&self.secret)
            .arg(&self.log);
        self.child = Some(common::spawn_ready(
            command,
            "the webhook receiver did not start: it needs standardwebhooks \
             (scripts/setup-test-services installs it)",
        ));
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits until `count` events have arrived, advancing the server's clock so that retries
    /// come due.
    async fn wait_for(&self, server: &TestServer, count: usize) -> Vec<Value> {
        for _ in 0..300 {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            server.clock.advance(Duration::from_millis(500));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{} of {count} events arrived", self.received().len());
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

fn tessera(server: &TestServer, args: &[&str]) -> String {
    let mut command = server.cli(args);
    let output = command.output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "tessera {args:?}: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    text
}

async fn signed_events_arrive_in_order_through_an_outage(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_tenant("acme").await;
    let dir = tempfile::tempdir().unwrap();
    // Created by the operator's command; its secret is the last line, alone.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hooks");
    let mut args = vec!["webhook", "create", "--tenant", "acme", "--url", &url];
    for event in [
        "user.created",
        "user.deleted",
        "session.created",
        "session.ended",
    ] {
        args.extend(["--event", event]);
    }
    args.extend(["--event", "password.changed", "--event", "mfa.changed"]);
    let out = tessera(&server, &args);
    let secret = out.lines().last().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{out}");
    let mut receiver = Receiver::new(port, &secret, dir.path());

    let ann = server
        .create_user("acme", "ann@example.com", PASSWORD)
        .await;
    let bob = server
        .create_user("acme", "bob@example.com", PASSWORD)
        .await;
    let first = server.login("acme", "ann@example.com", PASSWORD).await;
    server.login("acme", "bob@example.com", PASSWORD).await;
    let received = receiver.wait_for(&server, 4).await;
    assert_eq!(received.len(), 4, "{received:?}");

    // Down for a while: events wait, tries fail and are retried with a reason.
    receiver.stop();
    let access = first["access_token"].as_str().unwrap();
    let change =
        json!({"current_password": PASSWORD, "new_password": "another long passphrase here"});
    let changed = server
        .post_auth("/api/auth/password", access, &change)
        .await;
    assert_eq!(changed.status(), 204, "{}", changed.text().await.unwrap());
    server.login("acme", "bob@example.com", PASSWORD).await;
    let bob_second = server.login("acme", "bob@example.com", PASSWORD).await;
    let sign_out = server
        .post_auth(
            "/api/auth/logout",
            bob_second["access_token"].as_str().unwrap(),
            &json!({}),
        )
        .await;
    assert!(sign_out.status().is_success());
    for _ in 0..40 {
        server.clock.advance(Duration::from_millis(500));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let listed = tessera(&server, &["webhook", "deliveries", "--tenant", "acme"]);
    assert!(listed.contains("\tpending\t"), "{listed}");
    assert!(
        listed.contains("Connection refused") || listed.contains("error sending request"),
        "{listed}"
    );

    // Up again: everything arrives.
    receiver.start();
    let slug = TenantSlug::parse("acme").unwrap();
    let mut tx = server.state.store.read(&slug).await.unwrap();
    let emitted = tx.webhooks().deliveries(100).await.unwrap();
    drop(tx);
    let received = receiver.wait_for(&server, emitted.len()).await;
    assert!(received.iter().all(|r| r["valid"] == true), "{received:?}");
    let ids: Vec<&str> = received.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "an event arrived twice: {ids:?}");
    assert_eq!(ids.len(), emitted.len());

    // In order per user: the order the store wrote them in.
    let mut written: HashMap<String, Vec<String>> = HashMap::new();
    for delivery in emitted.iter().rev() {
        written
            .entry(delivery.user_id.clone())
            .or_default()
            .push(delivery.event_id.clone());
    }
    let mut arrived: HashMap<String, Vec<String>> = HashMap::new();
    for record in &received {
        arrived
            .entry(record["user_id"].as_str().unwrap().to_owned())
            .or_default()
            .push(record["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(arrived, written);
    let types = |user: &str| -> Vec<String> {
        received
            .iter()
            .filter(|r| r["user_id"] == user)
            .map(|r| r["type"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        types(&ann.to_string()),
        ["user.created", "session.created", "password.changed"]
    );
    assert_eq!(
        types(&bob.to_string()),
        [
            "user.created",
            "session.created",
            "session.created",
            "session.created",
            "session.ended"
        ]
    );
    let listed = tessera(&server, &["webhook", "deliveries", "--tenant", "acme"]);
    assert!(!listed.contains("\tpending\t"), "{listed}");

    // Down for more than a day: the event is given up on, not retried for ever.
    receiver.stop();
    server.login("acme", "bob@example.com", PASSWORD).await;
    let mut tx = server.state.store.read(&slug).await.unwrap();
    let last = tx.webhooks().deliveries(1).await.unwrap().remove(0);
    drop(tx);
    for _ in 0..100 {
        let mut tx = server.state.store.read(&slug).await.unwrap();
        let now = tx.webhooks().deliveries(1).await.unwrap().remove(0);
        drop(tx);
        if now.attempts > 0 && now.last_error.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.clock.advance(Duration::from_secs(25 * 3600));
    for _ in 0..100 {
        let mut tx = server.state.store.read(&slug).await.unwrap();
        let now = tx.webhooks().deliveries(1).await.unwrap().remove(0);
        drop(tx);
        assert_eq!(now.seq, last.seq);
        if now.failed_ms.is_some() {
            let listed = tessera(&server, &["webhook", "deliveries", "--tenant", "acme"]);
            assert!(listed.contains("\tgiven up\t"), "{listed}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("a delivery a day old was not given up on");
}
both!(signed_events_arrive_in_order_through_an_outage);

/// Every event type is written by the change it reports: the store methods behind
/// verification, disabling, the authenticator's enrolment and removal, and erasure each write
/// theirs, in the order they happened.
async fn every_change_writes_its_event(backend: Backend) {
    let server = TestServer::start(backend).await;
    let slug = server.create_tenant("acme").await;
    let all: Vec<String> = tessera_origin::store::webhooks::EVENT_TYPES
        .iter()
        .map(|e| (*e).to_owned())
        .collect();
    // Nothing listens there: the deliveries stay, to be read.
    let url = format!("http://127.0.0.1:{}/hooks", free_port());
    server
        .state
        .services
        .webhooks
        .create(&slug, &url, &all)
        .await
        .unwrap();
    let ann = server
        .create_user("acme", "ann@example.com", PASSWORD)
        .await;
    let mut tx = server.state.store.write(&slug).await.unwrap();
    tx.users().mark_email_verified(&ann, 1).await.unwrap();
    tx.commit().await.unwrap();
    let tokens = server.login("acme", "ann@example.com", PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap();
    server.enrol_totp(access, PASSWORD).await;
    let off = server
        .delete_auth("/api/auth/mfa/totp", access, &json!({"password": PASSWORD}))
        .await;
    assert_eq!(off.status(), 204);
    let who = UserKey::Email(tessera_core::model::Email::parse("ann@example.com").unwrap());
    server
        .state
        .services
        .accounts
        .set_disabled(&slug, &who, true, &Actor::Cli)
        .await
        .unwrap();
    server
        .state
        .services
        .accounts
        .delete(&slug, &who, &Actor::Cli)
        .await
        .unwrap();

    let mut tx = server.state.store.read(&slug).await.unwrap();
    let mut written = tx.webhooks().deliveries(100).await.unwrap();
    drop(tx);
    written.reverse();
    let events: Vec<&str> = written
        .iter()
        .filter(|d| d.user_id == ann.to_string())
        .map(|d| d.event.as_str())
        .collect();
    assert_eq!(
        events,
        [
            "user.created",
            "user.email_verified",
            "session.created",
            "mfa.changed",
            "mfa.changed",
            // Disabling marks the account, then ends its sessions.
            "user.disabled",
            "session.ended",
            "user.deleted",
        ]
    );
}
both!(every_change_writes_its_event);

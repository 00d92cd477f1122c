//! The outbox's delivery guarantees against a real SMTP server process: nothing is lost while
//! the relay is down, several nodes never send a row twice, and STARTTLS works.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::smtp::SmtpSink;
use common::{unique_ip, Backend, TestServer, PASSWORD};
use serde_json::json;
use tessera_core::model::TenantSlug;
use tessera_origin::mail::MailKind;
use tessera_origin::store::NewMail;

/// Waits until no mail is pending and no row is leased: the outbox has settled.
async fn pending(server: &TestServer) -> i64 {
    let slug = TenantSlug::parse("default").unwrap();
    let mut read = server.state.store.read(&slug).await.unwrap();
    read.outbox().counts().await.unwrap().0
}

async fn mail_queued_while_the_relay_is_down_arrives_once_it_is_back(backend: Backend) {
    let (server, mut sink) = TestServer::with_sink(backend, &[]).await;
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let tokens = server.login("default", "ann@example.com", PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap();
    sink.stop();

    // Five flows, each queueing one email.
    let register = json!({"tenant": "default", "email": "bob@example.com", "password": PASSWORD, "name": "Bob"});
    assert_eq!(
        server
            .post_from("/api/auth/register", &register, &unique_ip())
            .await
            .status(),
        201
    );
    let forgot = json!({"tenant": "default", "email": "ann@example.com"});
    assert_eq!(
        server
            .post_from("/api/auth/forgot-password", &forgot, &unique_ip())
            .await
            .status(),
        202
    );
    let code = json!({"tenant": "default", "email": "carol@example.com"});
    server
        .create_user("default", "carol@example.com", PASSWORD)
        .await;
    assert_eq!(
        server
            .post_from("/api/auth/email-code", &code, &unique_ip())
            .await
            .status(),
        202
    );
    let resend = server
        .post_auth("/api/auth/resend-verification", access, &json!({}))
        .await;
    assert_eq!(resend.status(), 202);
    let change = json!({"current_password": PASSWORD, "new_password": "a new and long passphrase"});
    assert_eq!(
        server
            .post_auth("/api/auth/password", access, &change)
            .await
            .status(),
        204
    );

    // Every delivery fails and is put back for later, none lost.
    let slug = TenantSlug::parse("default").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let mut read = server.state.store.read(&slug).await.unwrap();
        let (pending, retrying, sent, failed) = read.outbox().counts().await.unwrap();
        assert_eq!(
            (pending, sent, failed),
            (5, 0, 0),
            "nothing sent, nothing lost"
        );
        if retrying == 5 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "deliveries were not tried"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        server.state.store.mail_due_count().await.unwrap(),
        1,
        "the tenant stays due"
    );
    assert!(sink.messages().is_empty());

    // The relay comes back; once the retries are due, each email arrives exactly once.
    sink.resume();
    server.clock.advance(Duration::from_secs(10 * 60));
    for (to, count) in [
        ("bob@example.com", 1),
        ("ann@example.com", 3),
        ("carol@example.com", 1),
    ] {
        sink.wait_for(to, count).await;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while pending(&server).await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "outbox did not settle"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut subjects: Vec<_> = sink
        .messages()
        .into_iter()
        .map(|m| (m.to, m.subject))
        .collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            ("ann@example.com".into(), "Confirm your email".into()),
            ("ann@example.com".into(), "Reset your password".into()),
            ("ann@example.com".into(), "Your password was changed".into()),
            ("bob@example.com".into(), "Confirm your email".into()),
            ("carol@example.com".into(), "Your sign-in code".into()),
        ]
        .map(|(a, b): (String, String)| (a, b))
    );
    assert_eq!(
        server.state.store.mail_due_count().await.unwrap(),
        0,
        "the index is clear"
    );
}
both!(mail_queued_while_the_relay_is_down_arrives_once_it_is_back);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_on_one_database_deliver_each_email_exactly_once() {
    let (one, sink) = TestServer::with_sink(Backend::Postgres, &[]).await;
    let url = sink.url();
    let two = one.second_node(&[("TESSERA_SMTP_URL", url.as_str())]).await;
    let slug = TenantSlug::parse("default").unwrap();
    // 200 emails queued in batches on both nodes, as requests would.
    for batch in 0..10 {
        let node = if batch % 2 == 0 { &one } else { &two };
        let mut tx = node.state.store.write(&slug).await.unwrap();
        for i in 0..20 {
            let n = batch * 20 + i;
            let mail = NewMail {
                kind: MailKind::PasswordChanged.name(),
                recipient: format!("user{n}@example.com"),
                params: json!({"tenant_name": "Default", "name": format!("User {n}")}),
            };
            tx.outbox().enqueue(&mail, 0).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while sink.messages().len() < 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of 200 delivered",
            sink.messages().len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Both workers keep polling for a while: still exactly one of each.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut per_recipient: HashMap<String, usize> = HashMap::new();
    for mail in sink.messages() {
        *per_recipient.entry(mail.to).or_default() += 1;
    }
    assert_eq!(per_recipient.len(), 200);
    assert!(per_recipient.values().all(|&n| n == 1), "{per_recipient:?}");
    let mut read = one.state.store.read(&slug).await.unwrap();
    assert_eq!(read.outbox().counts().await.unwrap(), (0, 0, 200, 0));
}

async fn mail_is_delivered_over_starttls(backend: Backend) {
    let sink = SmtpSink::start_tls();
    let url = sink.url();
    let ca = sink.ca_file().unwrap();
    let server = TestServer::start_with(
        backend,
        &[
            ("TESSERA_SMTP_URL", url.as_str()),
            ("TESSERA_SMTP_CA_FILE", ca.as_str()),
        ],
    )
    .await;
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let forgot = json!({"tenant": "default", "email": "ann@example.com"});
    assert_eq!(
        server
            .post_from("/api/auth/forgot-password", &forgot, &unique_ip())
            .await
            .status(),
        202
    );
    let mail = sink.wait_for("ann@example.com", 1).await.remove(0);
    assert_eq!(mail.subject, "Reset your password");
}
both!(mail_is_delivered_over_starttls);

async fn without_a_relay_mail_is_written_to_files_in_development(backend: Backend) {
    assert_eq!(backend, Backend::Sqlite);
    let server = TestServer::start(Backend::Sqlite).await;
    assert!(server.state.mailer.is_development());
    server
        .create_user("default", "ann@example.com", PASSWORD)
        .await;
    let code = json!({"tenant": "default", "email": "ann@example.com"});
    assert_eq!(
        server
            .post_from("/api/auth/email-code", &code, &unique_ip())
            .await
            .status(),
        202
    );
    let outbox = server.storage.dir.path().join("outbox");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let file = loop {
        let found = std::fs::read_dir(&outbox)
            .ok()
            .and_then(|mut entries| entries.next())
            .and_then(Result::ok)
            .map(|e| e.path());
        if let Some(file) = found {
            break file;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no .eml file in {}",
            outbox.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(file.extension().unwrap(), "eml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("Subject: Your sign-in code"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_transport_writes_files() {
    without_a_relay_mail_is_written_to_files_in_development(Backend::Sqlite).await;
}

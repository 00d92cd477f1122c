//! Moving users in and out, on SQLite and PostgreSQL: `tessera user import` of hashes made by
//! independent reference implementations (tests/support/reference_hashes.py), each signed in
//! with and replaced by argon2id; refusals with their line numbers; an export that imports
//! into another Tessera unchanged; an import of 100,000 users killed half way and run again;
//! and the admins' import over HTTP.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::io::Write as _;
use std::process::Command;

use common::{assert_problem, unique_ip, Backend, TestServer, PASSWORD};
use serde_json::{json, Value};
use tessera_core::model::{Email, TenantSlug};

/// Runs the command line to its end; its standard output, and whether it succeeded (with its
/// standard error).
fn tessera(server: &TestServer, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = server.cli(args).spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn import_file(server: &TestServer, tenant: &str, lines: &str, extra: &[&str]) -> String {
    let file = server.storage.dir.path().join("users.jsonl");
    std::fs::write(&file, lines).unwrap();
    let mut args = vec!["user", "import", "--tenant", tenant];
    args.extend_from_slice(extra);
    let path = file.display().to_string();
    args.push(&path);
    let (ok, out, err) = tessera(server, &args, "");
    assert!(ok, "import: {out}{err}");
    out
}

async fn stored_hash(server: &TestServer, tenant: &str, email: &str) -> Option<String> {
    let tenant = TenantSlug::parse(tenant).unwrap();
    let mut tx = server.state.store.read(&tenant).await.unwrap();
    tx.users()
        .by_email(&Email::parse(email).unwrap())
        .await
        .unwrap()
        .expect("user")
        .password_hash
}

async fn login_status(server: &TestServer, tenant: &str, email: &str, password: &str) -> u16 {
    server
        .post_from(
            "/api/auth/login",
            &json!({"tenant": tenant, "email": email, "password": password}),
            &unique_ip(),
        )
        .await
        .status()
        .as_u16()
}

/// Firebase's published parameters, as the console shows them.
const FIREBASE_PARAMS: &str = r#"{
  "base64_signer_key": "jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==",
  "base64_salt_separator": "Bw==",
  "rounds": 8,
  "mem_cost": 14
}"#;

async fn reference_hashes_import_sign_in_and_become_argon2id(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_tenant("acme").await;
    let made = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/reference_hashes.py"
        ))
        .arg(PASSWORD)
        .output()
        .expect("python3 (scripts/setup-test-services installs its packages)");
    assert!(
        made.status.success(),
        "reference_hashes.py: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let mut lines = String::from_utf8(made.stdout).unwrap();
    let references: Vec<String> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["email"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(references.len(), 9);
    // Lines refused with their numbers, and one skipped: the address again.
    lines.push_str("{\"email\": \"md5@import.example\", \"password_hash\": \"5f4dcc3b5aa765d61d8327deb882cf99\"}\n");
    lines.push_str("{\"email\": \"bad@import.example\", \"password_hash\": \"$2b$10$short\"}\n");
    lines.push_str("not json\n");
    lines.push_str("{\"email\": \"argon2id@import.example\"}\n");
    lines.push_str("{\"email\": \"weak@import.example\", \"totp_secret\": \"JBSWY3DPEHPK3PXP\"}\n");
    let params = server.storage.dir.path().join("firebase.json");
    std::fs::write(&params, FIREBASE_PARAMS).unwrap();
    let params = params.display().to_string();
    let out = import_file(&server, "acme", &lines, &["--firebase-params", &params]);
    assert!(out.ends_with("imported 9, skipped 1, refused 4\n"), "{out}");
    assert!(
        out.contains("line 10: refused (unknown_hash_format)"),
        "{out}"
    );
    assert!(out.contains("line 11: refused (malformed_hash)"), "{out}");
    assert!(out.contains("line 12: refused (invalid_json)"), "{out}");
    assert!(
        out.contains("line 13: skipped (duplicate_in_file)"),
        "{out}"
    );
    assert!(
        out.contains("line 14: refused (invalid_totp_secret)"),
        "{out}"
    );

    for email in &references {
        let password = if email.starts_with("firebase@") {
            "user1password"
        } else {
            PASSWORD
        };
        let before = stored_hash(&server, "acme", email).await.unwrap();
        assert!(
            !before.starts_with("$argon2id$v=19$m=1024"),
            "{email}: {before}"
        );
        assert_eq!(
            login_status(&server, "acme", email, "not the password at all").await,
            401,
            "{email}"
        );
        assert_eq!(stored_hash(&server, "acme", email).await.unwrap(), before);
        assert_eq!(
            login_status(&server, "acme", email, password).await,
            200,
            "{email}"
        );
        let after = stored_hash(&server, "acme", email).await.unwrap();
        assert!(after.starts_with("$argon2id$"), "{email}: {after}");
        assert_ne!(after, before, "{email}");
        assert_eq!(
            login_status(&server, "acme", email, password).await,
            200,
            "{email}"
        );
    }

    // Run again: every address is there, nothing changes.
    let again = import_file(&server, "acme", &lines, &["--firebase-params", &params]);
    assert!(
        again.ends_with("imported 0, skipped 10, refused 4\n"),
        "{again}"
    );
    // Firebase lines without the project's parameters are refused, not guessed.
    let firebase_line = lines
        .lines()
        .nth(8)
        .unwrap()
        .replace("firebase@", "firebase2@");
    let out = import_file(&server, "acme", &firebase_line, &[]);
    assert!(
        out.contains("line 1: refused (firebase_params_required)"),
        "{out}"
    );
}
both!(reference_hashes_import_sign_in_and_become_argon2id);

async fn an_export_imports_into_another_tessera_unchanged(backend: Backend) {
    let source = TestServer::start(backend).await;
    source.create_tenant("acme").await;
    source
        .create_user("acme", "ann@example.com", PASSWORD)
        .await;
    source
        .create_user_as("acme", "bob@example.com", PASSWORD, "admin")
        .await;
    let tokens = source.login("acme", "ann@example.com", PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap();
    let (secret, _) = source.enrol_totp(access, PASSWORD).await;
    let (ok, exported, err) = tessera(&source, &["user", "export", "--tenant", "acme"], "");
    assert!(ok, "{err}");
    let lines: Vec<Value> = exported
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{exported}");
    assert_eq!(lines[0]["email"], "ann@example.com");
    assert_eq!(lines[0]["totp_secret"], secret.as_str());
    assert!(lines[0]["password_hash"]
        .as_str()
        .unwrap()
        .starts_with("$argon2id$"));
    assert_eq!(lines[1]["role"], "admin");
    assert!(lines[1].get("totp_secret").is_none());

    let target = TestServer::start(backend).await;
    target.create_tenant("beta").await;
    let out = import_file(&target, "beta", &exported, &[]);
    assert!(out.ends_with("imported 2, skipped 0, refused 0\n"), "{out}");
    let (ok, exported_again, err) = tessera(&target, &["user", "export", "--tenant", "beta"], "");
    assert!(ok, "{err}");
    assert_eq!(exported_again, exported);
    // The authenticator came along: the password alone asks for the second factor.
    let response = target
        .post_from(
            "/api/auth/login",
            &json!({"tenant": "beta", "email": "ann@example.com", "password": PASSWORD}),
            &unique_ip(),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body.get("mfa_token").is_some(), "{body}");
    assert_eq!(
        login_status(&target, "beta", "bob@example.com", PASSWORD).await,
        200
    );
}
both!(an_export_imports_into_another_tessera_unchanged);

/// One pre-computed hash for every line: the import hashes nothing.
const HASH: &str = "$argon2id$v=19$m=1024,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$k5Thxh7Cq1Xk0ZQy7CXpwYcIfFHZ3TJ9cJfG4CG9Xz0";

async fn an_interrupted_import_lands_every_user_exactly_once(backend: Backend) {
    const USERS: usize = 100_000;
    const ALL: i64 = 100_000;
    let server = TestServer::start(backend).await;
    let tenant = server.create_tenant("big").await;
    let mut lines = String::with_capacity(USERS * 120);
    for i in 0..USERS {
        lines.push_str(&format!(
            "{{\"email\":\"user{i:06}@big.example\",\"name\":\"User {i}\",\"created_at\":1700000000,\"password_hash\":\"{HASH}\"}}\n"
        ));
    }
    let file = server.storage.dir.path().join("big.jsonl");
    std::fs::write(&file, &lines).unwrap();
    let path = file.display().to_string();
    let args = ["user", "import", "--tenant", "big", path.as_str()];

    // Killed (SIGKILL: no chance to tidy up) once about half the users are in.
    let mut child = server.cli(&args).spawn().unwrap();
    let count = || async {
        let mut tx = server.state.store.read(&tenant).await.unwrap();
        tx.users().count().await.unwrap()
    };
    let mut before_kill;
    loop {
        before_kill = count().await;
        if before_kill >= ALL / 2 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import ended early"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let landed = count().await;
    assert!(landed < ALL, "the import finished before it was killed");
    assert_eq!(landed % 1_000, 0, "a batch is all or nothing: {landed}");

    let (ok, out, err) = tessera(&server, &args, "");
    assert!(ok, "{err}");
    let imported = ALL - landed;
    assert!(
        out.ends_with(&format!(
            "imported {imported}, skipped {landed}, refused 0\n"
        )),
        "{out}"
    );
    assert_eq!(count().await, ALL);
}
both!(an_interrupted_import_lands_every_user_exactly_once);

async fn admins_import_over_http(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_tenant("acme").await;
    server
        .create_user_as("acme", "root@example.com", PASSWORD, "admin")
        .await;
    server
        .create_user("acme", "ann@example.com", PASSWORD)
        .await;
    let admin = server.login("acme", "root@example.com", PASSWORD).await;
    let admin = admin["access_token"].as_str().unwrap();
    let user = server.login("acme", "ann@example.com", PASSWORD).await;
    let user = user["access_token"].as_str().unwrap();

    // Past the 64 KiB of other routes: 2,500 users, some 300 KiB.
    let mut users: Vec<Value> = (0..2_500)
        .map(|i| json!({"email": format!("u{i}@example.com"), "name": format!("User number {i} with a longer name"), "password_hash": HASH}))
        .collect();
    users.push(json!({"email": "ann@example.com"}));
    users.push(json!({"email": "not an address"}));
    users.push(json!({"email": "x@example.com", "unknown": true}));
    let body = json!({ "users": users });
    assert!(body.to_string().len() > 200 * 1024);
    let response = server
        .post_auth("/api/auth/admin/users/import", user, &body)
        .await;
    assert_problem(response, 403, "forbidden").await;
    let response = server
        .post_auth("/api/auth/admin/users/import", admin, &body)
        .await;
    assert_eq!(response.status(), 200);
    let summary: Value = response.json().await.unwrap();
    assert_eq!(summary["imported"], 2_500, "{summary}");
    assert_eq!(summary["skipped"], 1);
    assert_eq!(summary["refused"], 2);
    assert_eq!(summary["lines"][0]["line"], 2_501);
    assert_eq!(summary["lines"][0]["code"], "email_taken");
    assert_eq!(summary["lines"][1]["code"], "invalid_email");
    assert_eq!(summary["lines"][2]["code"], "invalid_json");
    assert!(server
        .audit_events("acme")
        .await
        .iter()
        .any(|e| e.starts_with("users_imported by=admin:")
            && e.ends_with(" imported=1000 skipped=0")));
}
both!(admins_import_over_http);

//! docs/GUIDE.md's snippets, run as written against a live origin (issue 25, item 3): the
//! Python one (PyJWT) and the Node one (jose) accept a token of the tenant and refuse one of
//! another tenant.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::process::Command;

use common::{Backend, TestServer, PASSWORD};

/// The code of the first fenced block of `language` in the guide.
fn snippet(language: &str) -> String {
    let guide = include_str!("../../docs/GUIDE.md");
    let fence = format!("```{language}\n");
    let start = guide.find(&fence).expect("a snippet") + fence.len();
    let end = start + guide[start..].find("```").expect("its end");
    guide[start..end].to_owned()
}

/// Runs `program args… <code>` with the guide's settings; answers whether it succeeded and
/// what it printed.
fn run(server: &TestServer, program: &str, args: &[&str], token: &str) -> (bool, String) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = Command::new(program)
        .args(args)
        .current_dir(&root)
        .env("TESSERA_URL", &server.base)
        .env("TESSERA_ISSUER", "http://tessera.test")
        .env("TESSERA_TENANT", "acme")
        .env("ACCESS_TOKEN", token)
        .output()
        .unwrap_or_else(|e| panic!("{program} cannot start: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guides_snippets_accept_the_tenants_tokens_and_refuse_others() {
    let server = TestServer::start(Backend::Sqlite).await;
    server.create_tenant("acme").await;
    let ann = server
        .create_user("acme", "ann@example.com", PASSWORD)
        .await;
    server
        .create_user("default", "bob@example.com", PASSWORD)
        .await;
    let ours = server.login("acme", "ann@example.com", PASSWORD).await;
    let ours = ours["access_token"].as_str().unwrap().to_owned();
    let theirs = server.login("default", "bob@example.com", PASSWORD).await;
    let theirs = theirs["access_token"].as_str().unwrap().to_owned();

    let python = snippet("python");
    let node = snippet("js");
    let ready = Command::new("python3")
        .args(["-c", "import jwt, cryptography"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ready,
        "PyJWT is not installed: run scripts/setup-test-services (pip install 'pyjwt[crypto]')"
    );
    let jose = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../node_modules/jose");
    assert!(
        jose.exists(),
        "jose is not installed: run `npm ci` at the repository root (scripts/test does it)"
    );
    for (program, args) in [
        ("python3", vec!["-c", python.as_str()]),
        ("node", vec!["--input-type=module", "-e", node.as_str()]),
    ] {
        let (ok, out) = run(&server, program, &args, &ours);
        assert!(ok, "{program}: {out}");
        assert_eq!(out.trim(), format!("ok {ann}"), "{program}");
        let (ok, out) = run(&server, program, &args, &theirs);
        assert!(!ok, "{program} accepted another tenant's token: {out}");
    }
}

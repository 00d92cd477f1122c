//! The tenant admin API's pages (docs/BENCHMARKS.md): `GET /api/auth/admin/users` of the real
//! `tessera` binary over loopback, one tenant of 100,000 users, on SQLite and on PostgreSQL.
//! Reported: p50 and p95 of sequential requests for a page of 50, walking the whole list by
//! cursor, and searching by address and by name prefix. The baseline, in the same run on the
//! same server: `GET /api/auth/me` (one token check and one indexed read of a user).
//!
//! Run with `cargo bench -p tessera-origin --bench admin_users` (needs the tests' PostgreSQL).

#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used, clippy::panic)]
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod support;

use support::{client_ip, Server, EDGE_SECRET, PASSWORD};

const USERS: usize = 100_000;
const SAMPLES: usize = 400;

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index].as_secs_f64() * 1000.0
}

/// `tessera` with the server's variables, for the set-up commands.
fn tessera(vars: &[(&str, String)], args: &[&str], stdin: &str) -> String {
    use std::io::Write as _;
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    command
        .args(args)
        .env("TESSERA_LOG", "error")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    for (k, v) in vars {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "tessera {args:?}");
    String::from_utf8(output.stdout).unwrap()
}

async fn timed(http: &reqwest::Client, url: &str, token: &str, n: u64) -> (Duration, Value) {
    let started = Instant::now();
    let response = http
        .get(url)
        .header("x-tessera-edge-secret", EDGE_SECRET)
        .header("x-tessera-client-ip", client_ip(n))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{url}");
    let body: Value = response.json().await.unwrap();
    (started.elapsed(), body)
}

async fn run(name: &str, vars: &[(&str, String)]) -> Vec<String> {
    // 100,000 users with one hash (nothing is hashed at import), and the admin.
    let file = tempfile::NamedTempFile::new().unwrap();
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$k5Thxh7Cq1Xk0ZQy7CXpwYcIfFHZ3TJ9cJfG4CG9Xz0";
    let lines: Vec<String> = (0..USERS)
        .map(|i| {
            json!({
                "email": format!("user{i:06}@bench.example"),
                "name": format!("Member {}", (i * 7_919) % USERS),
                "password_hash": hash,
            })
            .to_string()
        })
        .collect();
    std::fs::write(file.path(), lines.join("\n")).unwrap();
    tessera(
        vars,
        &[
            "user",
            "create",
            "--email",
            "admin@bench.example",
            "--role",
            "admin",
        ],
        PASSWORD,
    );
    tessera(
        vars,
        &["user", "import", &file.path().display().to_string()],
        "",
    );
    let server = Server::start(vars);
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{}/api/auth/login", server.base))
        .header("x-tessera-edge-secret", EDGE_SECRET)
        .header("x-tessera-client-ip", client_ip(1))
        .json(&json!({"tenant": "default", "email": "admin@bench.example", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_owned();
    let base = format!("{}/api/auth/admin/users", server.base);

    // Warm-up, then the baseline.
    for n in 0..50 {
        timed(
            &http,
            &format!("{}/api/auth/me", server.base),
            &token,
            10 + n,
        )
        .await;
    }
    let mut me = Vec::new();
    for n in 0..SAMPLES as u64 {
        me.push(
            timed(
                &http,
                &format!("{}/api/auth/me", server.base),
                &token,
                100 + n,
            )
            .await
            .0,
        );
    }
    // Walking the list: SAMPLES pages of 50 by cursor, from the start.
    let mut walk = Vec::new();
    let mut cursor = String::new();
    for n in 0..SAMPLES as u64 {
        let (took, page) = timed(
            &http,
            &format!("{base}?limit=50{cursor}"),
            &token,
            1_000 + n,
        )
        .await;
        assert_eq!(page["users"].as_array().unwrap().len(), 50);
        walk.push(took);
        cursor = format!("&cursor={}", page["next_cursor"].as_str().unwrap());
    }
    // Searching: address prefixes (`user0421`: 10 users…), name prefixes (`member 42`: 1,111
    // users) and `m` (every user), a page of 50 each.
    let mut by_email = Vec::new();
    let mut by_name = Vec::new();
    let mut broad = Vec::new();
    for n in 0..SAMPLES as u64 {
        let prefix = format!("user{:04}", (n * 37) % 1_000);
        by_email.push(
            timed(
                &http,
                &format!("{base}?limit=50&query={prefix}"),
                &token,
                2_000 + n,
            )
            .await
            .0,
        );
        let prefix = format!("Member%20{}", 10 + (n * 13) % 90);
        let (took, page) = timed(
            &http,
            &format!("{base}?limit=50&query={prefix}"),
            &token,
            3_000 + n,
        )
        .await;
        assert_eq!(page["users"].as_array().unwrap().len(), 50, "{prefix}");
        by_name.push(took);
        // `m`: every user's name matches; a page still reads 51 index entries.
        let (took, _) = timed(
            &http,
            &format!("{base}?limit=50&query=m"),
            &token,
            4_000 + n,
        )
        .await;
        broad.push(took);
    }
    let baseline = percentile(&mut me, 0.5);
    let row = |what: &str, samples: &mut Vec<Duration>| {
        let (p50, p95) = (percentile(samples, 0.5), percentile(samples, 0.95));
        format!(
            "| {name} | {what} | {p50:.2} ms | {p95:.2} ms | {baseline:.2} ms | {} |",
            if p50 < 5.0 { "met (< 5 ms)" } else { "NOT met" }
        )
    };
    vec![
        row("list, pages 1–400 by cursor", &mut walk),
        row("search by address prefix", &mut by_email),
        row(
            "search by name prefix (any case), 1,111 matches",
            &mut by_name,
        ),
        row("search by name prefix `m`, 100,000 matches", &mut broad),
    ]
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut rows = vec![
        "| backend | request (page of 50, 100,000 users) | p50 | p95 | baseline `GET /api/auth/me` p50 | goal |".to_owned(),
        "|---|---|---|---|---|---|".to_owned(),
    ];
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = vec![("TESSERA_DATA_DIR", dir.path().display().to_string())];
        rows.extend(run("SQLite", &sqlite).await);

        let pg = tessera_testing::PgDatabase::create().await;
        let pg_dir = tempfile::tempdir().unwrap();
        let postgres = vec![
            ("TESSERA_DATABASE_URL", pg.url.clone()),
            ("TESSERA_SMTP_URL", "smtp://127.0.0.1:9".to_owned()),
            (
                "TESSERA_MASTER_KEY",
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]),
            ),
            ("TESSERA_DATA_DIR", pg_dir.path().display().to_string()),
        ];
        rows.extend(run("PostgreSQL", &postgres).await);
    });
    for row in rows {
        println!("{row}");
    }
}

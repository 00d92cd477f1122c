//! Outbox delivery (docs/BENCHMARKS.md): 1,000 emails queued at once in one tenant, delivered by
//! the origin's mail worker to a real SMTP server process on 127.0.0.1 (aiosmtpd, the tests'
//! sink), on SQLite and on PostgreSQL. Reported: the delivery rate and the p50/p99 time from
//! the commit that queued an email to its receipt by the server. The baseline, in the same run,
//! against the same server: a bare lettre loop sending 1,000 messages over the same pooled
//! transport with the same concurrency, with no outbox at all.
//!
//! Run with `cargo bench -p tessera-origin --bench mail` (needs aiosmtpd and the tests'
//! PostgreSQL; `scripts/setup-test-services` installs aiosmtpd).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt as _;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use serde_json::json;
use tessera_core::model::TenantSlug;
use tessera_origin::config::Config;
use tessera_origin::keys::MasterKey;
use tessera_origin::mail::{MailKind, SMTP_CONNECTIONS};
use tessera_origin::state::AppState;
use tessera_origin::store::{DynStore, NewMail, Store};

const EMAILS: usize = 1_000;

/// Emails sent one at a time after the burst, for the latency of a lone email.
const SINGLES: usize = 100;

struct Sink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Sink {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/support/smtp_sink.py"
            ))
            .args(["--port", &port.to_string(), "--dir"])
            .arg(dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "the SMTP sink needs aiosmtpd (scripts/setup-test-services)"
        );
        Self { child, port, dir }
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Receipt times (Unix ns, from the sink's file names) of the messages so far.
    fn receipts(&self) -> Vec<u128> {
        received(self.dir.path())
    }

    fn clear(&self) {
        for entry in std::fs::read_dir(self.dir.path()).unwrap().flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
    }

    async fn wait_for(&self, count: usize) -> Vec<u128> {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let receipts = self.receipts();
            if receipts.len() >= count {
                return receipts;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} delivered",
                receipts.len()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn received(dir: &Path) -> Vec<u128> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".eml")?.split('-').next()?.parse().ok()
        })
        .collect()
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

struct Run {
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn summarize(start_ns: u128, mut receipts: Vec<u128>) -> Run {
    receipts.sort_unstable();
    let latency = |q: f64| {
        let i = ((receipts.len() as f64 * q).ceil() as usize).clamp(1, receipts.len()) - 1;
        (receipts[i].saturating_sub(start_ns)) as f64 / 1e6
    };
    Run {
        seconds: (receipts[receipts.len() - 1] - start_ns) as f64 / 1e9,
        p50_ms: latency(0.50),
        p99_ms: latency(0.99),
    }
}

fn report(name: &str, run: &Run) {
    println!(
        "{name:<34} {EMAILS} emails in {:>6.2} s = {:>6.0}/s   queue→delivery p50 {:>7.1} ms   p99 {:>7.1} ms",
        run.seconds,
        EMAILS as f64 / run.seconds,
        run.p50_ms,
        run.p99_ms
    );
}

/// The origin on `store` (its mail worker running), 1,000 emails queued in one commit.
async fn outbox_run(
    store: DynStore,
    data_dir: &Path,
    database_url: Option<&str>,
    sink: &Sink,
) -> Run {
    sink.clear();
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert("TESSERA_DATA_DIR".into(), data_dir.display().to_string());
    vars.insert("TESSERA_SMTP_URL".into(), sink.url());
    vars.insert("TESSERA_LOG".into(), "error".into());
    if let Some(url) = database_url {
        vars.insert("TESSERA_DATABASE_URL".into(), url.into());
    }
    let config = Config::from_map(&vars).unwrap();
    tessera_origin::server::ensure_default_tenant(&store, &config)
        .await
        .unwrap();
    let state = AppState::new(config, store.clone(), MasterKey::new([7; 32]))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tessera_origin::server::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    let tenant = TenantSlug::parse("default").unwrap();
    let mut tx = store.write(&tenant).await.unwrap();
    for n in 0..EMAILS {
        let mail = NewMail {
            kind: MailKind::PasswordChanged.name(),
            recipient: format!("user{n}@example.com"),
            params: json!({"tenant_name": "Default", "name": format!("User {n}")}),
        };
        tx.outbox().enqueue(&mail, 0).await.unwrap();
    }
    let start = now_ns();
    tx.commit().await.unwrap();
    let receipts = sink.wait_for(EMAILS).await;
    let burst = summarize(start, receipts);

    // One email at a time on an idle queue: how soon a single email leaves.
    let mut single = Vec::with_capacity(SINGLES);
    for n in 0..SINGLES {
        let mut tx = store.write(&tenant).await.unwrap();
        let mail = NewMail {
            kind: MailKind::PasswordChanged.name(),
            recipient: format!("single{n}@example.com"),
            params: json!({"tenant_name": "Default", "name": "Single"}),
        };
        tx.outbox().enqueue(&mail, 0).await.unwrap();
        let start = now_ns();
        tx.commit().await.unwrap();
        let receipts = sink.wait_for(EMAILS + n + 1).await;
        single.push(receipts.into_iter().max().unwrap() - start);
    }
    single.sort_unstable();
    let _ = stop.send(());
    let _ = server.await;
    println!(
        "  one email at a time ({SINGLES}): queue→delivery p50 {:.1} ms, p99 {:.1} ms",
        single[SINGLES / 2] as f64 / 1e6,
        single[SINGLES * 99 / 100] as f64 / 1e6
    );
    burst
}

/// A bare lettre loop: the same transport settings and concurrency, no outbox.
async fn lettre_run(sink: &Sink) -> Run {
    sink.clear();
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&sink.url())
        .unwrap()
        .pool_config(lettre::transport::smtp::PoolConfig::new().max_size(SMTP_CONNECTIONS))
        .build();
    let from: Mailbox = "Tessera <no-reply@localhost>".parse().unwrap();
    let start = now_ns();
    futures_util::stream::iter(0..EMAILS)
        .for_each_concurrent(SMTP_CONNECTIONS as usize, |n| {
            let (transport, from) = (transport.clone(), from.clone());
            async move {
                let message = Message::builder()
                    .from(from)
                    .to(format!("user{n}@example.com").parse().unwrap())
                    .subject("Your password was changed")
                    .body(format!(
                        "Hello User {n},\n\nThe password of your account was changed.\n"
                    ))
                    .unwrap();
                transport.send(message).await.unwrap();
            }
        })
        .await;
    let receipts = sink.wait_for(EMAILS).await;
    let burst = summarize(start, receipts);
    let mut single = Vec::with_capacity(SINGLES);
    for n in 0..SINGLES {
        let message = Message::builder()
            .from(from.clone())
            .to(format!("single{n}@example.com").parse().unwrap())
            .subject("Your password was changed")
            .body("Hello,\n\nThe password of your account was changed.\n".to_owned())
            .unwrap();
        let start = now_ns();
        transport.send(message).await.unwrap();
        let receipts = sink.wait_for(EMAILS + n + 1).await;
        single.push(receipts.into_iter().max().unwrap() - start);
    }
    single.sort_unstable();
    println!(
        "  one email at a time ({SINGLES}): send→receipt p50 {:.1} ms, p99 {:.1} ms",
        single[SINGLES / 2] as f64 / 1e6,
        single[SINGLES * 99 / 100] as f64 / 1e6
    );
    burst
}

async fn postgres_store() -> (DynStore, String, sqlx::AnyPool, String) {
    let admin_url = std::env::var("TESSERA_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&admin_url)
        .await
        .expect("PostgreSQL (see README)");
    let name = format!("tessera_bench_mail_{}", std::process::id());
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
    let store: DynStore = Arc::new(Store::postgres(&url, 16).await.unwrap());
    store.migrate().await.unwrap();
    (store, url, admin, name)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let sink = Sink::start();
        println!(
            "{} cores; SMTP connections: {SMTP_CONNECTIONS}",
            std::thread::available_parallelism().map_or(1, usize::from)
        );
        report("bare lettre loop (baseline)", &lettre_run(&sink).await);

        let dir = tempfile::tempdir().unwrap();
        let store: DynStore = Arc::new(Store::sqlite(dir.path()).await.unwrap());
        store.migrate().await.unwrap();
        report(
            "outbox worker, SQLite",
            &outbox_run(store, dir.path(), None, &sink).await,
        );

        let (store, url, admin, name) = postgres_store().await;
        let pg_dir = tempfile::tempdir().unwrap();
        report(
            "outbox worker, PostgreSQL",
            &outbox_run(store.clone(), pg_dir.path(), Some(&url), &sink).await,
        );
        drop(store);
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&admin)
            .await
            .unwrap();

        report(
            "bare lettre loop (baseline, again)",
            &lettre_run(&sink).await,
        );
    });
}

//! Tenants at scale: 10 → 100 → 1,000 → 10,000 tenants on one origin, SQLite and PostgreSQL.
//! At each size: tenant creation (in the library, on PostgreSQL also from a spare schema, and
//! through `tessera tenant create`), start-up time, resident memory idle and after one sign-in
//! and four verifications per tenant, open files, and sign-in and verification latency
//! (p50/p99) for random tenants and (p50) for requests spread over a working set of 10 of them
//! (as many as the 10-tenant run has), all against the release `tessera` binary run as a
//! separate process. Run: `scripts/bench-tenants` (sizes from TESSERA_BENCH_SIZES, default
//! `10,100,1000,10000`; backends from TESSERA_BENCH_BACKENDS, default `sqlite,postgres`;
//! TESSERA_BENCH_PG_PARAMS is appended to the origin's PostgreSQL URL, e.g.
//! `statement-cache-capacity=1000`). On PostgreSQL it also reports the private memory of the
//! server processes that serve the origin's connections, where per-tenant state (prepared
//! statements, catalog caches) would show. Prints a Markdown table for docs/BENCHMARKS.md.

#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used, clippy::panic)]
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng as _;
use serde_json::{json, Value};
use support::{client_ip, Server, EDGE_SECRET, PASSWORD};
use tessera_core::model::{Email, TenantSlug, UserId};
use tessera_origin::config::Argon2Params;
use tessera_origin::password::Hasher;
use tessera_origin::store::{DynStore, NewUser, Store};

/// Sign-ins and verifications sampled for latency at each size.
const SAMPLES: usize = 200;
/// Tenants created through the CLI at each size (a process each, as an operator would).
const CLI_CREATES: usize = 5;
/// PostgreSQL: tenants created in the library at each size with a spare schema ready (made
/// just before each, untimed, as `tessera serve` makes them between creations).
const SPARE_CREATES: usize = 20;
/// Verifications of each tenant's token right after its sign-in: a token is presented again
/// and again, and each presentation reads its session on whichever database connection serves
/// it (on PostgreSQL, each server process caches the catalog of every schema it reads).
const VERIFIES_PER_TENANT: usize = 4;
/// Tenants in the working set: as many as the smallest size has, so that at every size the
/// tenants in use are as many as in the 10-tenant run, and only the tenants that merely exist
/// differ. (Spreading the same samples over more tenants in use is a different measurement:
/// each tenant's statements then run too few times on each connection to be past preparing
/// and PostgreSQL's custom plans.)
const WORKING_SET: usize = 10;

fn slug(i: usize) -> TenantSlug {
    TenantSlug::parse(&format!("tenant-{i:05}")).unwrap()
}

fn email(user: usize) -> String {
    format!("user{user}@bench.test")
}

/// Users per tenant: enough that the latency samples never meet the per-account limit
/// (5 sign-ins a minute) however few tenants there are.
fn users_per_tenant(size: usize) -> usize {
    (SAMPLES / size).max(1) * 2 + 1
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

struct Backend {
    name: &'static str,
    vars: Vec<(&'static str, String)>,
    store: DynStore,
    _dir: tempfile::TempDir,
    drop_database: Option<(sqlx::AnyPool, String)>,
}

/// The `application_name` of the origin's PostgreSQL connections, to find their server
/// processes.
const ORIGIN_APPLICATION: &str = "tessera-bench-origin";

async fn backend(name: &'static str) -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let master = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]);
    let mut vars = vec![
        ("TESSERA_DATA_DIR", dir.path().display().to_string()),
        ("TESSERA_MASTER_KEY", master),
        ("TESSERA_ISSUER", "http://bench.test".to_owned()),
        // Every verification reads its session: the cost that grows with tenants, if any, is
        // what is measured, not the session cache's hit rate (which is higher with fewer).
        ("TESSERA_SESSION_CACHE_MS", "0".to_owned()),
    ];
    sqlx::any::install_default_drivers();
    if name == "sqlite" {
        let store: DynStore = Arc::new(Store::sqlite(dir.path()).await.unwrap());
        store.migrate_global().await.unwrap();
        return Backend {
            name,
            vars,
            store,
            _dir: dir,
            drop_database: None,
        };
    }
    let admin_url = std::env::var("TESSERA_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let admin = sqlx::AnyPool::connect(&admin_url)
        .await
        .expect("PostgreSQL for the tenant benchmark");
    let db = format!("tessera_tenants_{}", std::process::id());
    sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&admin)
        .await
        .unwrap();
    let url = format!("{}/{db}", admin_url.rsplit_once('/').unwrap().0);
    let mut origin_url = format!("{url}?application_name={ORIGIN_APPLICATION}");
    if let Ok(params) = std::env::var("TESSERA_BENCH_PG_PARAMS") {
        origin_url = format!("{origin_url}&{params}");
    }
    vars.push(("TESSERA_DATABASE_URL", origin_url));
    // Required with PostgreSQL; this benchmark sends no mail.
    vars.push(("TESSERA_SMTP_URL", "smtp://127.0.0.1:9".into()));
    let store: DynStore = Arc::new(Store::postgres(&url, 8).await.unwrap());
    store.migrate_global().await.unwrap();
    Backend {
        name,
        vars,
        store,
        _dir: dir,
        drop_database: Some((admin, db)),
    }
}

/// Creates tenants `from..to` in the library, each with its users; returns each creation's time.
async fn create_tenants(
    b: &Backend,
    from: usize,
    to: usize,
    size: usize,
    hash: &str,
) -> Vec<Duration> {
    let mut times = Vec::with_capacity(to - from);
    for i in from..to {
        let started = Instant::now();
        b.store.create_tenant(&slug(i), "Bench", 0).await.unwrap();
        times.push(started.elapsed());
        add_users(b, i, 0..users_per_tenant(size), hash).await;
    }
    times
}

/// Adds users numbered `users` to a tenant, in one transaction.
async fn add_users(b: &Backend, tenant: usize, users: std::ops::Range<usize>, hash: &str) {
    let mut tx = b.store.write(&slug(tenant)).await.unwrap();
    for u in users {
        let user = NewUser {
            id: UserId::from_random_bytes(rand::random()),
            email: Email::parse(&email(u)).unwrap(),
            name: String::new(),
            role: "user".into(),
            password_hash: Some(hash.to_owned()),
            now: 0,
        };
        tx.users().create(&user).await.unwrap();
    }
    tx.commit().await.unwrap();
}

/// Picks the working set among the first `sizes[step]` tenants, giving its tenants as many
/// users as a working set's sampling signs in (each sign-in another account, under the
/// per-account limit); `topped_up` remembers the tenants that have them already.
async fn pick_working_set(
    b: &Backend,
    sizes: &[usize],
    step: usize,
    hash: &str,
    topped_up: &mut std::collections::BTreeSet<usize>,
) -> Vec<usize> {
    let size = sizes[step];
    let mut picked = std::collections::BTreeSet::new();
    while picked.len() < size.min(WORKING_SET) {
        picked.insert(rand::thread_rng().gen_range(0..size));
    }
    let wanted = users_per_tenant(WORKING_SET);
    for &t in &picked {
        // The users it was created with, at the first size that holds it.
        let created_with = users_per_tenant(sizes.iter().copied().find(|&s| t < s).unwrap());
        if created_with < wanted && topped_up.insert(t) {
            add_users(b, t, created_with..wanted, hash).await;
        }
    }
    picked.into_iter().collect()
}

/// Lets the machine finish writing back earlier work (the previous size's, or a previous run's
/// dropped database) before creation is timed: PostgreSQL's dirty buffers by a checkpoint, then
/// the kernel's by `sync`.
async fn settle(b: &Backend) {
    if let Some((admin, _)) = &b.drop_database {
        sqlx::query("CHECKPOINT").execute(admin).await.unwrap();
    }
    let synced = std::process::Command::new("sync").status().unwrap();
    assert!(synced.success());
}

/// PostgreSQL: [`SPARE_CREATES`] creations in the library, each taking a spare schema made just
/// before it; answers their sorted times (none on SQLite, which has no spares).
async fn create_from_spares(b: &Backend, size: usize) -> Vec<Duration> {
    if b.drop_database.is_none() {
        return Vec::new();
    }
    let mut times = Vec::with_capacity(SPARE_CREATES);
    for i in 0..SPARE_CREATES {
        assert_eq!(b.store.prepare_spare_schemas(1).await.unwrap(), 1);
        let tenant = TenantSlug::parse(&format!("spare-{size}-{i}")).unwrap();
        let started = Instant::now();
        b.store.create_tenant(&tenant, "Bench", 0).await.unwrap();
        times.push(started.elapsed());
        assert_eq!(
            b.store.spare_schemas().await.unwrap(),
            0,
            "the spare was taken"
        );
    }
    times.sort();
    times
}

/// `tessera tenant create` as an operator runs it: a process each, wall-clock time.
fn create_with_cli(b: &Backend, first: usize) -> Vec<Duration> {
    (first..first + CLI_CREATES)
        .map(|i| {
            let started = Instant::now();
            let status = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
                .args(["tenant", "create", &format!("cli-{i:05}")])
                .envs(b.vars.iter().map(|(k, v)| (*k, v.as_str())))
                .env("TESSERA_LOG", "error")
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(status.success());
            started.elapsed()
        })
        .collect()
}

async fn sign_in(
    http: &reqwest::Client,
    base: &str,
    tenant: usize,
    user: usize,
    ip: u64,
) -> (Duration, Value) {
    let started = Instant::now();
    let response = http
        .post(format!("{base}/api/auth/login"))
        .header("x-tessera-edge-secret", EDGE_SECRET)
        .header("x-tessera-client-ip", client_ip(ip))
        .json(&json!({"tenant": slug(tenant).as_str(), "email": email(user), "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "sign-in to tenant {tenant}");
    let body = response.json::<Value>().await.unwrap();
    (started.elapsed(), body)
}

async fn verify(http: &reqwest::Client, base: &str, token: &str, ip: u64) -> Duration {
    let started = Instant::now();
    let response = http
        .get(format!("{base}/api/auth/verify"))
        .header("x-tessera-edge-secret", EDGE_SECRET)
        .header("x-tessera-client-ip", client_ip(ip))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let _ = response.bytes().await;
    started.elapsed()
}

async fn measure(
    b: &Backend,
    size: usize,
    create_ms: &[Duration],
    working_set: &[usize],
    http: &reqwest::Client,
    ip: &mut u64,
) -> String {
    // Creating thousands of tenants leaves gigabytes to write back: flushed before each
    // measurement, so that none shares the disk with that.
    settle(b).await;
    let spares = create_from_spares(b, size).await;
    // With a spare ready for each process on PostgreSQL, as `tessera serve` keeps them.
    b.store.prepare_spare_schemas(CLI_CREATES).await.unwrap();
    settle(b).await;
    let mut cli = create_with_cli(b, size);
    cli.sort();
    settle(b).await;
    let server = Server::start(&b.vars);
    let started_in = server.started_in;
    // The first answer, not only the listener: start-up is over when a request is served.
    let health = http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (idle_rss, _) = server.memory_mib();
    let idle_files = server.open_files();

    // One sign-in and a few verifications per tenant, 16 at a time.
    let base = server.base.clone();
    let tokens = Arc::new(tokio::sync::Mutex::new(vec![String::new(); size]));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let first_ip = *ip;
    *ip += size as u64;
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (http, base, tokens, next) =
                (http.clone(), base.clone(), tokens.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let t = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if t >= size {
                        break;
                    }
                    let (_, body) = sign_in(&http, &base, t, 0, first_ip + t as u64).await;
                    let token = body["access_token"].as_str().unwrap().to_owned();
                    for _ in 0..VERIFIES_PER_TENANT {
                        verify(&http, &base, &token, first_ip + t as u64).await;
                    }
                    tokens.lock().await[t] = token;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let (signed_rss, peak_rss) = server.memory_mib();
    let signed_files = server.open_files();

    // Latency for random tenants, one request at a time; then the same with the requests
    // spread over a working set of tenants that all stay open (the 10-tenant run's conditions,
    // at this size): what grows with the number of tenants beyond the first request for a
    // tenant in a while.
    let tokens = tokens.lock().await.clone();
    let (sign_ins, verifies) = sample(http, &base, &tokens, None, ip).await;
    // The set in use is warm, as it would be in steady state and as the 10-tenant run's set is
    // after its random samples (which are its set's): one unmeasured round of the same samples
    // first, so that what is measured does not include opening what the random samples left
    // closed, preparing statements on a connection, or PostgreSQL's first custom plans.
    sample(http, &base, &tokens, Some((working_set, Half::Second)), ip).await;
    let (set_sign_ins, set_verifies) =
        sample(http, &base, &tokens, Some((working_set, Half::First)), ip).await;
    let server_memory = match &b.drop_database {
        Some((admin, db)) => format!("{:.1} MiB", postgres_private_mib(admin, db).await),
        None => "–".to_owned(),
    };
    let mut create = create_ms.to_vec();
    create.sort();
    drop(server);
    format!(
        "| {} | {size} | {:.1} / {:.1} ms | {} | {:.0} ms | {:.0} ms | {idle_rss:.1} MiB | {signed_rss:.1} MiB (peak {peak_rss:.1}) | {idle_files} / {signed_files} | {:.1} / {:.1} ms | {:.2} / {:.2} ms | {:.1} / {:.2} ms | {server_memory} |",
        b.name,
        percentile(&create, 0.5),
        percentile(&create, 0.99),
        if spares.is_empty() {
            "–".to_owned()
        } else {
            format!(
                "{:.1} / {:.1} ms",
                percentile(&spares, 0.5),
                percentile(&spares, 0.99)
            )
        },
        percentile(&cli, 0.5).round(),
        started_in.as_secs_f64() * 1000.0,
        percentile(&sign_ins, 0.5),
        percentile(&sign_ins, 0.99),
        percentile(&verifies, 0.5),
        percentile(&verifies, 0.99),
        percentile(&set_sign_ins, 0.5),
        percentile(&set_verifies, 0.5),
    )
}

/// The private memory (not the shared buffers) of the PostgreSQL server processes serving the
/// origin's connections to `db`, summed, in MiB: what each connection keeps for itself.
async fn postgres_private_mib(admin: &sqlx::AnyPool, db: &str) -> f64 {
    let pids: Vec<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
    )
    .bind(db)
    .bind(ORIGIN_APPLICATION)
    .fetch_all(admin)
    .await
    .unwrap();
    let kib: f64 = pids
        .iter()
        .map(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
                .unwrap_or_default()
                .lines()
                .filter(|l| l.starts_with("Private_"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
                .sum::<f64>()
        })
        .sum();
    kib / 1024.0
}

/// Which half of a working set's users a round of samples signs in, so that two rounds stay
/// under the per-account limit.
#[derive(Clone, Copy)]
enum Half {
    First,
    Second,
}

/// [`SAMPLES`] sign-ins and verifications, one request at a time, each for a random tenant, or
/// for the tenants of a working set in turn (and one half of their users in turn, so that no
/// account meets the per-account limit); answers their sorted latencies.
async fn sample(
    http: &reqwest::Client,
    base: &str,
    tokens: &[String],
    among: Option<(&[usize], Half)>,
    ip: &mut u64,
) -> (Vec<Duration>, Vec<Duration>) {
    let size = tokens.len();
    let pick = |s: usize| match among {
        Some((set, half)) => {
            let half_users = (users_per_tenant(set.len()) - 1) / 2;
            let first = match half {
                Half::First => 1,
                Half::Second => 1 + half_users,
            };
            (set[s % set.len()], first + (s / set.len()) % half_users)
        }
        None => (
            rand::thread_rng().gen_range(0..size),
            1 + s % (users_per_tenant(size) - 1),
        ),
    };
    let mut sign_ins = Vec::with_capacity(SAMPLES);
    let mut verifies = Vec::with_capacity(SAMPLES);
    for s in 0..SAMPLES {
        let (tenant, user) = pick(s);
        *ip += 1;
        sign_ins.push(sign_in(http, base, tenant, user, *ip).await.0);
        verifies.push(verify(http, base, &tokens[pick(s + 1).0], *ip).await);
    }
    sign_ins.sort();
    verifies.sort();
    (sign_ins, verifies)
}

fn main() {
    let sizes: Vec<usize> = std::env::var("TESSERA_BENCH_SIZES")
        .unwrap_or_else(|_| "10,100,1000,10000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("TESSERA_BENCH_SIZES: numbers"))
        .collect();
    let backends =
        std::env::var("TESSERA_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut rows = Vec::new();
    runtime.block_on(async {
        let hasher = Hasher::new(Argon2Params::OWASP, 1, 4).unwrap();
        let hash = hasher.hash(PASSWORD.into()).await.unwrap();
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .unwrap();
        let mut ip = 1u64;
        for name in backends.split(',').map(str::trim) {
            let name: &'static str = if name == "sqlite" {
                "sqlite"
            } else {
                "postgres"
            };
            let b = backend(name).await;
            let mut have = 0;
            let mut topped_up = std::collections::BTreeSet::new();
            for (step, &size) in sizes.iter().enumerate() {
                settle(&b).await;
                let created = create_tenants(&b, have, size, size, &hash).await;
                have = size;
                let working_set = pick_working_set(&b, &sizes, step, &hash, &mut topped_up).await;
                let row = measure(&b, size, &created, &working_set, &http, &mut ip).await;
                eprintln!("{row}");
                rows.push(row);
            }
            if let Some((admin, db)) = &b.drop_database {
                b.store.ping().await.unwrap();
                sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                    .execute(admin)
                    .await
                    .unwrap();
            }
        }
    });
    println!("| backend | tenants | creation p50 / p99 (library) | creation from a spare schema p50 / p99 (library) | `tessera tenant create` p50 (a process; PostgreSQL: a spare ready) | start-up | RSS idle | RSS after one sign-in and 4 verifications per tenant | open files idle / after | sign-in p50 / p99 | verify p50 / p99 | sign-in / verify p50, 10 tenants in use | PostgreSQL server, origin's connections |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
}

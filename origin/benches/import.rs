//! User import (docs/BENCHMARKS.md): 100,000 users with pre-computed password hashes imported
//! by `UserTransfer::import` (what `tessera user import` runs), on SQLite and on PostgreSQL.
//! Reported: users per second. The baseline, in the same run and on the same store: 10,000
//! users created one transaction each through `Users::create` (what `tessera user create`
//! writes, without its hashing).
//!
//! Run with `cargo bench -p tessera-origin --bench import` (needs the tests' PostgreSQL).

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::cast_precision_loss)]

use std::sync::Arc;
use std::time::Instant;

use tessera_core::model::{Email, TenantSlug, UserId};
use tessera_origin::clock::{self, SharedClock, SystemClock};
use tessera_origin::keys::MasterKey;
use tessera_origin::services::{Actor, UserTransfer};
use tessera_origin::store::{DynStore, NewUser, Store};
use tessera_origin::tenants::Directory;
use tessera_testing::PgDatabase;

const USERS: usize = 100_000;
const BASELINE_USERS: usize = 10_000;
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$k5Thxh7Cq1Xk0ZQy7CXpwYcIfFHZ3TJ9cJfG4CG9Xz0";

async fn run(name: &str, store: DynStore) {
    store.migrate().await.unwrap();
    let clock: SharedClock = Arc::new(SystemClock);
    let tenant = TenantSlug::parse("bench").unwrap();
    store
        .create_tenant(&tenant, "Bench", clock::system_now_secs())
        .await
        .unwrap();
    let directory = Arc::new(Directory::new(store.clone(), clock.clone()));
    let transfer = UserTransfer::new(
        store.clone(),
        directory,
        MasterKey::new([7; 32]),
        clock.clone(),
    );
    let lines: Vec<std::io::Result<String>> = (0..USERS)
        .map(|i| {
            Ok(format!(
                "{{\"email\":\"user{i:06}@bench.example\",\"name\":\"User {i}\",\"email_verified\":true,\"created_at\":1700000000,\"password_hash\":\"{HASH}\"}}"
            ))
        })
        .collect();
    let started = Instant::now();
    let summary = transfer
        .import(&tenant, lines, None, &Actor::Cli, |_| {})
        .await
        .unwrap();
    let import_secs = started.elapsed().as_secs_f64();
    assert_eq!(summary.imported, USERS);

    let started = Instant::now();
    for i in 0..BASELINE_USERS {
        let user = NewUser {
            id: UserId::from_random_bytes(clock::random()),
            email: Email::parse(&format!("one{i:06}@bench.example")).unwrap(),
            name: format!("User {i}"),
            role: "user".into(),
            password_hash: Some(HASH.into()),
            now: clock::system_now_secs(),
        };
        let mut tx = store.write(&tenant).await.unwrap();
        tx.users().create(&user).await.unwrap();
        tx.commit().await.unwrap();
    }
    let baseline_secs = started.elapsed().as_secs_f64();
    println!(
        "{name}: import {USERS} users in {import_secs:.2} s = {:.0} users/s; \
         baseline (one transaction a user) {BASELINE_USERS} in {baseline_secs:.2} s = {:.0} users/s",
        USERS as f64 / import_secs,
        BASELINE_USERS as f64 / baseline_secs,
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sqlite: DynStore = Arc::new(Store::sqlite(dir.path()).await.unwrap());
        run("sqlite", sqlite).await;
        let pg = PgDatabase::create().await;
        let postgres: DynStore = Arc::new(Store::postgres(&pg.url, 16).await.unwrap());
        run("postgres", postgres).await;
    });
}

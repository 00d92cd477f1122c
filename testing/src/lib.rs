//! What the origin's tests and the end-to-end tests share: a fresh PostgreSQL database per test,
//! dropped with it.

#![allow(clippy::expect_used, clippy::panic)]

pub mod browser;
pub mod form_browser;

/// The TOTP code that pyotp, an independent implementation, computes for `secret` (base32) at
/// Unix time `at` (scripts/setup-test-services installs it).
pub fn pyotp(secret: &str, at: u64) -> String {
    let output = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, pyotp; print(pyotp.TOTP(sys.argv[1]).at(int(sys.argv[2])))",
            secret,
            &at.to_string(),
        ])
        .output()
        .expect("python3");
    assert!(
        output.status.success(),
        "pyotp is needed (scripts/setup-test-services installs it): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The server the tests use unless `TESSERA_TEST_DATABASE_URL` names another (trust auth).
pub const DEFAULT_PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A fresh PostgreSQL database, dropped when this is dropped.
pub struct PgDatabase {
    /// Its URL.
    pub url: String,
    admin_url: String,
    name: String,
}

impl PgDatabase {
    /// Creates one on the tests' server; a server that cannot be reached fails the test with
    /// how to start it.
    pub async fn create() -> Self {
        let admin_url = std::env::var("TESSERA_TEST_DATABASE_URL")
            .unwrap_or_else(|_| DEFAULT_PG_ADMIN_URL.into());
        sqlx::any::install_default_drivers();
        let admin = sqlx::AnyPool::connect(&admin_url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is not reachable at {admin_url} ({e}). Start it with \
                 `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, \
                 or point TESSERA_TEST_DATABASE_URL at a server with trust auth."
                )
            });
        let name = format!("tessera_t_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .expect("create database");
        admin.close().await;
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(base, _)| base);
        Self {
            url: format!("{base}/{name}"),
            admin_url,
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs outside any runtime guarantee: use a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let admin = sqlx::AnyPool::connect(&admin_url).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&admin)
                    .await
                    .ok()
            })
        })
        .join();
    }
}

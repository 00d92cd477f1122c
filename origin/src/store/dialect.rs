//! Everything that differs between PostgreSQL and SQLite, in one place: how a scope's tables are
//! named, how a writing transaction starts, row locks, and how an SQLite file is opened.
//!
//! Queries are written once, with `$n` parameters (which SQLite accepts too) and `{p}` where a
//! table name needs its scope: on PostgreSQL `{p}` becomes the schema (`tessera.` or
//! `tenant_<slug>.`, built only from a validated [`TenantSlug`]); on SQLite it is empty and the
//! scope is the database file itself (`global.db` or `tenants/<slug>.db`). Types are limited to
//! what both share: integers, text and bytes.

use std::path::Path;

use sqlx::any::AnyPoolOptions;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Transaction};
use tessera_core::model::TenantSlug;

use super::StoreResult;

/// The PostgreSQL schema of the global scope.
pub const GLOBAL_SCHEMA: &str = "tessera";

/// Connections to the global SQLite file: WAL lets readers run beside the one writer.
pub const SQLITE_GLOBAL_CONNECTIONS: u32 = 4;

/// Connections to one tenant's SQLite file: a reader beside the writer. Each costs a thread,
/// three files and its caches, times every open tenant, so fewer than the global file's.
pub const SQLITE_TENANT_CONNECTIONS: u32 = 2;

/// The SQL dialect in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL: a schema per tenant.
    Postgres,
    /// SQLite: a file per tenant.
    Sqlite,
}

impl Dialect {
    /// Starts a transaction that will write. SQLite takes the write lock up front
    /// (`BEGIN IMMEDIATE`), so that concurrent read-then-write transactions queue on the busy
    /// timeout instead of failing with `SQLITE_BUSY` when they upgrade.
    pub async fn begin_write(
        self,
        pool: &AnyPool,
    ) -> Result<Transaction<'static, Any>, sqlx::Error> {
        self.begin_write_on(pool.acquire().await?).await
    }

    /// The same, on a connection already taken from a pool.
    pub async fn begin_write_on(
        self,
        conn: PoolConnection<Any>,
    ) -> Result<Transaction<'static, Any>, sqlx::Error> {
        let statement = match self {
            Self::Postgres => None,
            Self::Sqlite => Some("BEGIN IMMEDIATE".into()),
        };
        // What `Pool::begin_with` does with the connection it acquires.
        Transaction::begin(conn, statement).await
    }

    /// The row-lock clause for a `SELECT` that decides a write (`FOR UPDATE` on PostgreSQL;
    /// nothing on SQLite, whose `BEGIN IMMEDIATE` already serialises writers).
    #[must_use]
    pub fn lock_rows(self) -> &'static str {
        match self {
            Self::Postgres => " FOR UPDATE",
            Self::Sqlite => "",
        }
    }

    /// The same, locking only the rows of one table of a join (`FOR UPDATE OF <alias>` on
    /// PostgreSQL; nothing on SQLite, whose `BEGIN IMMEDIATE` already serialises writers).
    #[must_use]
    pub fn lock_rows_of(self, alias: &str) -> String {
        match self {
            Self::Postgres => format!(" FOR UPDATE OF {alias}"),
            Self::Sqlite => String::new(),
        }
    }

    /// The clause that makes a claiming `SELECT` skip rows another transaction has locked
    /// (`FOR UPDATE SKIP LOCKED` on PostgreSQL; nothing on SQLite, whose writers are serial).
    #[must_use]
    pub fn skip_locked(self) -> &'static str {
        match self {
            Self::Postgres => " FOR UPDATE SKIP LOCKED",
            Self::Sqlite => "",
        }
    }

    /// The two-argument minimum function (`LEAST`; SQLite's scalar `MIN`).
    #[must_use]
    pub fn least(self) -> &'static str {
        match self {
            Self::Postgres => "LEAST",
            Self::Sqlite => "MIN",
        }
    }

    /// The SQL function answering the larger of two values.
    #[must_use]
    pub fn greatest(self) -> &'static str {
        match self {
            Self::Postgres => "GREATEST",
            Self::Sqlite => "MAX",
        }
    }

    /// The collation that compares strings byte by byte, after a column or expression:
    /// PostgreSQL's `"C"` (its default collation may not), nothing on SQLite (which always
    /// does). Prefix ranges are exact only so.
    #[must_use]
    pub fn bytewise(self) -> &'static str {
        match self {
            Self::Postgres => " COLLATE \"C\"",
            Self::Sqlite => "",
        }
    }

    /// `{p}` of the global tables.
    #[must_use]
    pub fn global_prefix(self) -> String {
        match self {
            Self::Postgres => format!("{GLOBAL_SCHEMA}."),
            Self::Sqlite => String::new(),
        }
    }

    /// `{p}` of a tenant's tables.
    #[must_use]
    pub fn tenant_prefix(self, tenant: &TenantSlug) -> String {
        match self {
            Self::Postgres => format!("{}.", tenant.schema_name()),
            Self::Sqlite => String::new(),
        }
    }
}

/// Opens a pool of up to `connections` on one SQLite file, creating the file if it is missing,
/// and connects once (so that a file that cannot be opened fails here).
pub async fn sqlite_pool(path: &Path, connections: u32) -> StoreResult<AnyPool> {
    let url = format!("sqlite://{}?mode=rwc", path.display());
    Ok(sqlite_options(connections).connect(&url).await?)
}

/// A pool on one tenant's existing SQLite file that connects on its first acquire. Connecting
/// at once would be wasted: sqlx returns that connection to the pool in a spawned task, so the
/// request's own acquire, right after, would find none idle and open a second one.
pub fn sqlite_tenant_pool(path: &Path) -> StoreResult<AnyPool> {
    let url = format!("sqlite://{}?mode=rw", path.display());
    Ok(sqlite_options(SQLITE_TENANT_CONNECTIONS).connect_lazy(&url)?)
}

fn sqlite_options(connections: u32) -> AnyPoolOptions {
    super::sqlite_files::keep_log_files();
    AnyPoolOptions::new()
        .max_connections(connections)
        // An idle tenant gives its connections (a thread and three files each) back.
        .idle_timeout(std::time::Duration::from_secs(60))
        // A connection to a local file does not go stale, and sqlx already checks each one as
        // it is released: a check on acquire too is one more round trip to the connection's
        // thread on every request.
        .test_before_acquire(false)
        // sqlx already sets `foreign_keys = ON` and a 5 s busy timeout on every connection; the
        // rest goes in one batch, since each statement is a round trip to the connection's
        // thread and a tenant's first request after its file was closed pays for them. Any
        // journal size limit makes a clean close empty the log that `sqlite_files` keeps; this
        // one is far above the ~4 MiB at which a log is checkpointed, so that an open file's log
        // is not cut back and regrown under load.
        .after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::query(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA journal_size_limit = 67108864",
                )
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
}

#[cfg(test)]
mod tests {
    use sqlx::Row;

    use super::{sqlite_pool, sqlite_tenant_pool};

    /// Every connection to a file has the settings the stores rely on: write-ahead log,
    /// `NORMAL` syncing, foreign keys enforced, a busy timeout (these two from sqlx) and a
    /// journal size limit.
    #[tokio::test]
    async fn every_sqlite_connection_is_configured() {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let pool = sqlite_pool(&dir.path().join("t.db"), 2).await.unwrap();
        // Both connections, not only the first.
        let (mut a, mut b) = (pool.acquire().await.unwrap(), pool.acquire().await.unwrap());
        for conn in [&mut a, &mut b] {
            let mut got = Vec::new();
            for pragma in [
                "journal_mode",
                "synchronous",
                "foreign_keys",
                "busy_timeout",
                "journal_size_limit",
            ] {
                let row = sqlx::query(&format!("PRAGMA {pragma}"))
                    .fetch_one(&mut **conn)
                    .await
                    .unwrap();
                got.push(
                    row.try_get::<String, _>(0)
                        .or_else(|_| row.try_get::<i64, _>(0).map(|n| n.to_string()))
                        .unwrap(),
                );
            }
            assert_eq!(got, ["wal", "1", "1", "5000", "67108864"]);
        }
    }

    /// A tenant's pool starts no connection until its first request, which starts exactly one
    /// (a pool that connected when opened had its request start a second), and does not ping a
    /// connection before handing it out.
    #[tokio::test]
    async fn a_tenant_pool_connects_once_for_its_first_request() {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        sqlite_pool(&path, 1).await.unwrap().close().await;

        let pool = sqlite_tenant_pool(&path).unwrap();
        assert_eq!(pool.size(), 0);
        assert!(!pool.options().get_test_before_acquire());
        let mut conn = pool.acquire().await.unwrap();
        sqlx::query("SELECT 1").execute(&mut *conn).await.unwrap();
        assert_eq!(pool.size(), 1);
    }

    /// A file closed by its last connection keeps its write-ahead log, emptied into the main
    /// file, and its index, so that the next open creates no file: the log is the same file
    /// across a close and a reopen, and what was written before the close is read after it.
    #[tokio::test]
    async fn a_closed_file_keeps_its_emptied_log_and_index() {
        use std::os::unix::fs::MetadataExt;
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let (log, index) = (dir.path().join("t.db-wal"), dir.path().join("t.db-shm"));
        let pool = sqlite_pool(&path, 1).await.unwrap();
        sqlx::query("CREATE TABLE t (n INTEGER)")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        assert_eq!(std::fs::metadata(&log).unwrap().len(), 0, "log emptied");
        assert!(index.exists(), "index kept");
        let inode = std::fs::metadata(&log).unwrap().ino();

        let pool = sqlite_tenant_pool(&path).unwrap();
        sqlx::query("INSERT INTO t VALUES (7)")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        assert_eq!(
            std::fs::metadata(&log).unwrap().ino(),
            inode,
            "the same log file"
        );
        assert_eq!(std::fs::metadata(&log).unwrap().len(), 0);

        let pool = sqlite_tenant_pool(&path).unwrap();
        let n: i64 = sqlx::query_scalar("SELECT n FROM t")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 7);
    }
}

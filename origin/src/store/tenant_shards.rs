//! PostgreSQL: the connections that serve tenants, in shards that each serve a fixed share of the
//! tenants (by a hash of the slug).
//!
//! A PostgreSQL server process keeps the catalog entries (tables, indexes) of every schema it
//! has run a statement on for as long as it lives (sqlx replaces a connection after 30
//! minutes, or 10 idle): tens of KiB per tenant, measured in `docs/BENCHMARKS.md`. From one
//! pool, whose idle connections are handed out in turn, every connection ends up holding every
//! tenant in use, and a tenant's next request usually lands on a process that has not seen its
//! schema lately. A tenant's work therefore goes to its own shard first, and to another shard
//! only when its own connections are all busy, so that a single busy tenant can still use
//! every connection.

use sqlx::any::AnyPoolOptions;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool};
use tessera_core::model::TenantSlug;

/// Connections per shard: two, so that a tenant's read beside its write stays on its shard.
const CONNECTIONS_PER_SHARD: u32 = 2;

fn has_room(pool: &AnyPool) -> bool {
    pool.size() < pool.options().get_max_connections()
}

/// The tenants' connections, sharded.
pub(super) struct TenantShards {
    shards: Vec<AnyPool>,
}

impl TenantShards {
    /// Shards of [`CONNECTIONS_PER_SHARD`] that together hold `connections` (at least one
    /// shard), connecting on demand.
    pub(super) fn connect_lazy(url: &str, connections: u32) -> Result<Self, sqlx::Error> {
        let count = (connections / CONNECTIONS_PER_SHARD).max(1);
        let per_shard = CONNECTIONS_PER_SHARD.min(connections).max(1);
        let shards = (0..count)
            .map(|_| {
                AnyPoolOptions::new()
                    .max_connections(per_shard)
                    // No ping before handing out an idle connection: `try_acquire` never
                    // pings, so this keeps both paths alike, and a ping in flight is what a
                    // dropped wait (below) would leave behind as a closed connection. sqlx
                    // still pings each connection as it is released; one that died while idle
                    // fails its request with 503 and is replaced.
                    .test_before_acquire(false)
                    .connect_lazy(url)
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { shards })
    }

    /// The pool of the tenant's own shard (for its migrations).
    pub(super) fn home(&self, tenant: &TenantSlug) -> &AnyPool {
        &self.shards[self.home_index(tenant)]
    }

    /// A connection for the tenant: an idle one of its shard, or a new one there while the shard
    /// has room; else an idle or new one of another shard; else the first one freed.
    pub(super) async fn acquire(
        &self,
        tenant: &TenantSlug,
    ) -> Result<PoolConnection<Any>, sqlx::Error> {
        let index = self.home_index(tenant);
        let home = &self.shards[index];
        if let Some(conn) = home.try_acquire() {
            return Ok(conn);
        }
        if has_room(home) {
            return home.acquire().await;
        }
        // The shards after this one in turn, so that one tenant's overflow spreads over them
        // instead of always landing on the first.
        let others =
            || (1..self.shards.len()).map(|k| &self.shards[(index + k) % self.shards.len()]);
        if let Some(conn) = others().find_map(AnyPool::try_acquire) {
            return Ok(conn);
        }
        if let Some(pool) = others().find(|pool| has_room(pool)) {
            return pool.acquire().await;
        }
        // Every connection is busy: the first one freed, wherever it is (waiting on the home
        // shard alone would leave the others' freed connections idle while requests queue).
        let waits = std::iter::once(home)
            .chain(others())
            .map(|pool| Box::pin(pool.acquire()));
        Ok(futures_util::future::select_ok(waits).await?.0)
    }

    fn home_index(&self, tenant: &TenantSlug) -> usize {
        let digest = tessera_core::secret::sha256(tenant.as_str().as_bytes());
        let hash = u64::from_le_bytes(digest[..8].try_into().unwrap_or_default());
        usize::try_from(hash % self.shards.len() as u64).unwrap_or(0)
    }

    /// Open connections per shard.
    #[cfg(test)]
    fn sizes(&self) -> Vec<u32> {
        self.shards.iter().map(AnyPool::size).collect()
    }
}

#[cfg(test)]
mod tests {
    use tessera_core::model::TenantSlug;

    use super::TenantShards;

    fn slug(i: usize) -> TenantSlug {
        TenantSlug::parse(&format!("tenant-{i}")).unwrap()
    }

    /// The URL of the tests' PostgreSQL server, checked to answer.
    async fn test_server() -> String {
        sqlx::any::install_default_drivers();
        let url = std::env::var("TESSERA_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        if let Err(e) = sqlx::AnyPool::connect(&url).await {
            panic!("PostgreSQL at {url}: {e} (start it, or set TESSERA_TEST_DATABASE_URL)");
        }
        url
    }

    #[tokio::test]
    async fn a_tenant_always_has_the_same_shard_and_tenants_spread_over_all() {
        sqlx::any::install_default_drivers();
        let shards = TenantShards::connect_lazy("postgres://nobody@127.0.0.1:1/none", 12).unwrap();
        assert_eq!(shards.shards.len(), 6);
        let mut counts = [0usize; 6];
        for i in 0..600 {
            let home = shards.home_index(&slug(i));
            assert_eq!(home, shards.home_index(&slug(i)));
            counts[home] += 1;
        }
        assert!(counts.iter().all(|&n| n > 50), "{counts:?}");
    }

    /// A tenant's sequential work stays on its own shard; once both of its connections are
    /// busy, the next one is opened on the next shard instead of waiting.
    #[tokio::test]
    async fn a_tenant_stays_on_its_shard_until_its_connections_are_busy() {
        let url = test_server().await;
        let shards = TenantShards::connect_lazy(&url, 6).unwrap();
        // A tenant of the middle shard, whose next shard is not the first one.
        let tenant = (0..).map(slug).find(|t| shards.home_index(t) == 1).unwrap();
        let home = 1;
        for _ in 0..10 {
            let mut conn = shards.acquire(&tenant).await.unwrap();
            sqlx::query("SELECT 1").execute(&mut *conn).await.unwrap();
            conn.return_to_pool().await;
        }
        let sizes = shards.sizes();
        assert!(sizes[home] >= 1, "{sizes:?}");
        assert_eq!(sizes.iter().sum::<u32>(), sizes[home], "{sizes:?}");

        let busy = [
            shards.acquire(&tenant).await.unwrap(),
            shards.acquire(&tenant).await.unwrap(),
        ];
        let _third = shards.acquire(&tenant).await.unwrap();
        let sizes = shards.sizes();
        assert_eq!(sizes[home], 2, "{sizes:?}");
        // The overflow goes to the next shard, not always to the first.
        assert_eq!(sizes[(home + 1) % sizes.len()], 1, "{sizes:?}");
        assert_eq!(sizes.iter().sum::<u32>(), 3, "{sizes:?}");
        drop(busy);
    }

    /// With every connection busy, a request takes the first one freed, even on another shard.
    #[tokio::test]
    async fn with_every_connection_busy_the_first_freed_is_taken() {
        let url = test_server().await;
        let shards = std::sync::Arc::new(TenantShards::connect_lazy(&url, 4).unwrap());
        let tenant = slug(1);
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(shards.acquire(&tenant).await.unwrap());
        }
        assert_eq!(shards.sizes(), [2, 2]);
        let waiting = tokio::spawn({
            let (shards, tenant) = (shards.clone(), tenant.clone());
            async move { shards.acquire(&tenant).await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        // The first two were opened on the tenant's shard, the last two on the other: freeing
        // one of the other's must answer the waiting request.
        held.pop().unwrap().return_to_pool().await;
        // A guard against hanging, not a measurement: it is answered at once.
        tokio::time::timeout(std::time::Duration::from_secs(30), waiting)
            .await
            .expect("the freed connection of the other shard was not taken")
            .unwrap()
            .unwrap();
    }

    /// An idle connection is handed out without a ping: one whose server process died while it
    /// was idle fails its one request as unavailable (503), and is replaced, not reused.
    #[tokio::test]
    async fn a_connection_that_died_while_idle_fails_one_request_and_is_replaced() {
        let url = test_server().await;
        let shards = TenantShards::connect_lazy(&url, 1).unwrap();
        let tenant = slug(1);
        let mut conn = shards.acquire(&tenant).await.unwrap();
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        conn.return_to_pool().await;

        let admin = sqlx::AnyPool::connect(&url).await.unwrap();
        sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .execute(&admin)
            .await
            .unwrap();
        while sqlx::query("SELECT 1 FROM pg_stat_activity WHERE pid = $1")
            .bind(pid)
            .fetch_optional(&admin)
            .await
            .unwrap()
            .is_some()
        {
            tokio::task::yield_now().await;
        }

        let mut conn = shards.acquire(&tenant).await.unwrap();
        let error = sqlx::query("SELECT 1")
            .execute(&mut *conn)
            .await
            .unwrap_err();
        assert!(
            crate::store::StoreError::from(error).is_unavailable(),
            "a dead connection is a 503"
        );
        conn.return_to_pool().await;
        let mut conn = shards.acquire(&tenant).await.unwrap();
        sqlx::query("SELECT 1").execute(&mut *conn).await.unwrap();
    }

    #[tokio::test]
    async fn few_connections_still_make_one_shard() {
        sqlx::any::install_default_drivers();
        let shards = TenantShards::connect_lazy("postgres://nobody@127.0.0.1:1/none", 1).unwrap();
        assert_eq!(shards.shards.len(), 1);
        assert_eq!(shards.shards[0].options().get_max_connections(), 1);
        // No ping before an idle connection is handed out: a wait dropped mid-ping would close
        // the connection it had taken.
        assert!(!shards.shards[0].options().get_test_before_acquire());
    }
}

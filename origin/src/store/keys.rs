//! Signing keys (global): public halves in the clear, private halves sealed.

use sqlx::any::AnyRow;
use sqlx::Row as _;

use super::{Store, StoreResult};

/// A signing key as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// Key id.
    pub kid: String,
    /// `EdDSA` (access tokens) or `RS256` (ID tokens).
    pub algorithm: String,
    /// Public key bytes.
    pub public_key: Vec<u8>,
    /// Private key sealed with the master key.
    pub private_key_sealed: Vec<u8>,
    /// Unix seconds.
    pub created_at: i64,
    /// When it stopped signing; `None` for the current key.
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

fn key_from_row(row: &AnyRow) -> StoreResult<StoredKey> {
    Ok(StoredKey {
        kid: row.try_get("kid")?,
        algorithm: row.try_get("algorithm")?,
        public_key: row.try_get("public_key")?,
        private_key_sealed: row.try_get("private_key_sealed")?,
        created_at: row.try_get("created_at")?,
        retired_at: row.try_get("retired_at")?,
    })
}

impl Store {
    /// Adds a signing key and retires every other current key of its algorithm, atomically.
    pub async fn rotate_in_key(&self, key: &StoredKey, now: i64) -> StoreResult<()> {
        let mut tx = self.dialect.begin_write(&self.global).await?;
        sqlx::query(
            &self.global_sql(
                "UPDATE {p}signing_keys SET retired_at = $1 WHERE retired_at IS NULL AND algorithm = $2",
            ),
        )
        .bind(now)
        .bind(&key.algorithm)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&self.global_sql(
            "INSERT INTO {p}signing_keys (kid, algorithm, public_key, private_key_sealed, created_at, retired_at) \
             VALUES ($1, $2, $3, $4, $5, NULL)",
        ))
        .bind(&key.kid)
        .bind(&key.algorithm)
        .bind(&key.public_key)
        .bind(&key.private_key_sealed)
        .bind(key.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a retired key, so that nothing it signed verifies any more (after a compromise),
    /// and writes its removal to the revocation log in the same transaction, so that the edge
    /// stops trusting it too. The current key is never deleted. Returns whether a key was
    /// deleted.
    pub async fn remove_retired_key(&self, kid: &str, now: i64) -> StoreResult<bool> {
        let mut tx = self.dialect.begin_write(&self.global).await?;
        let sql = self
            .global_sql("DELETE FROM {p}signing_keys WHERE kid = $1 AND retired_at IS NOT NULL");
        let done = sqlx::query(&sql).bind(kid).execute(&mut *tx).await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        // Until the longest token it can have signed has expired.
        let until = tessera_core::edge::longest_token_end(u64::try_from(now).unwrap_or(0));
        let entry = (
            tessera_core::edge::key_removal_key(kid),
            i64::try_from(until).unwrap_or(i64::MAX),
        );
        super::revocation_log::append(&mut tx, self.dialect, "", &[entry], now).await?;
        tx.commit().await?;
        self.revocations_written.notify_waiters();
        Ok(true)
    }

    /// All signing keys, newest first.
    pub async fn keys(&self) -> StoreResult<Vec<StoredKey>> {
        let sql = self.global_sql(
            "SELECT kid, algorithm, public_key, private_key_sealed, created_at, retired_at \
             FROM {p}signing_keys ORDER BY created_at DESC, kid DESC",
        );
        sqlx::query(&sql)
            .fetch_all(&self.global)
            .await?
            .iter()
            .map(key_from_row)
            .collect()
    }
}

/// Derived keys, and re-sealing under a new master key.
impl Store {
    /// A derived key's sealed value, if stored.
    pub async fn derived_key(&self, purpose: &str) -> StoreResult<Option<Vec<u8>>> {
        let sql = self.global_sql("SELECT sealed FROM {p}derived_keys WHERE purpose = $1");
        let row = sqlx::query(&sql)
            .bind(purpose)
            .fetch_optional(&self.global)
            .await?;
        Ok(row.map(|r| r.try_get("sealed")).transpose()?)
    }

    /// Stores a derived key's sealed value unless one is stored already (two nodes starting
    /// at once keep the first).
    pub async fn put_derived_key_if_absent(&self, purpose: &str, sealed: &[u8]) -> StoreResult<()> {
        let sql = self.global_sql(
            "INSERT INTO {p}derived_keys (purpose, sealed) VALUES ($1, $2) \
             ON CONFLICT (purpose) DO NOTHING",
        );
        sqlx::query(&sql)
            .bind(purpose)
            .bind(sealed.to_vec())
            .execute(&self.global)
            .await?;
        Ok(())
    }

    /// Replaces a stored derived key's sealed value (re-sealed under a new master key).
    pub async fn reseal_derived_key(&self, purpose: &str, sealed: &[u8]) -> StoreResult<()> {
        let sql = self.global_sql("UPDATE {p}derived_keys SET sealed = $1 WHERE purpose = $2");
        sqlx::query(&sql)
            .bind(sealed.to_vec())
            .bind(purpose)
            .execute(&self.global)
            .await?;
        Ok(())
    }

    /// Replaces a signing key's sealed private half (re-sealed under a new master key).
    pub async fn reseal_signing_key(&self, kid: &str, sealed: &[u8]) -> StoreResult<()> {
        let sql =
            self.global_sql("UPDATE {p}signing_keys SET private_key_sealed = $1 WHERE kid = $2");
        sqlx::query(&sql)
            .bind(sealed.to_vec())
            .bind(kid)
            .execute(&self.global)
            .await?;
        Ok(())
    }
}

//! The tenant registry (global), and the provisioning of a tenant's schema or file.

use sqlx::any::AnyRow;
use sqlx::Row as _;
use tessera_core::model::TenantSlug;

use super::{corrupt, is_unique_violation, Store, StoreError, StoreResult};

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Its slug.
    pub slug: TenantSlug,
    /// Display name.
    pub name: String,
    /// Browser origins allowed to call the API (CORS).
    pub cors_origins: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
}

fn tenant_from_row(row: &AnyRow) -> StoreResult<Tenant> {
    let slug: String = row.try_get("slug")?;
    let origins: String = row.try_get("cors_origins")?;
    Ok(Tenant {
        slug: TenantSlug::parse(&slug).map_err(|_| corrupt("tenant slug"))?,
        name: row.try_get("name")?,
        cors_origins: serde_json::from_str(&origins).map_err(|_| corrupt("tenant cors_origins"))?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Creates and migrates a tenant's schema or file, then registers it; `Conflict` if the
    /// slug is taken.
    pub async fn create_tenant(
        &self,
        slug: &TenantSlug,
        name: &str,
        now: i64,
    ) -> StoreResult<Tenant> {
        if self.tenant(slug).await?.is_some() {
            return Err(StoreError::Conflict);
        }
        // Schema or file first, registry row last: a tenant is visible only once it is usable,
        // and a failure in between leaves a migrated, unregistered scope that a retry reuses.
        self.migrate_tenant(slug).await?;
        let sql = self.global_sql(
            "INSERT INTO {p}tenants (slug, name, cors_origins, created_at) VALUES ($1, $2, '[]', $3)",
        );
        let inserted = sqlx::query(&sql)
            .bind(slug.as_str())
            .bind(name)
            .bind(now)
            .execute(&self.global)
            .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict),
            Err(e) => Err(e.into()),
            Ok(_) => Ok(Tenant {
                slug: slug.clone(),
                name: name.to_owned(),
                cors_origins: Vec::new(),
                created_at: now,
            }),
        }
    }

    /// A tenant by slug.
    pub async fn tenant(&self, slug: &TenantSlug) -> StoreResult<Option<Tenant>> {
        let sql = self.global_sql(
            "SELECT slug, name, cors_origins, created_at FROM {p}tenants WHERE slug = $1",
        );
        sqlx::query(&sql)
            .bind(slug.as_str())
            .fetch_optional(&self.global)
            .await?
            .as_ref()
            .map(tenant_from_row)
            .transpose()
    }

    /// All tenants, by slug.
    pub async fn tenants(&self) -> StoreResult<Vec<Tenant>> {
        let sql = self.global_sql(
            "SELECT slug, name, cors_origins, created_at FROM {p}tenants ORDER BY slug",
        );
        sqlx::query(&sql)
            .fetch_all(&self.global)
            .await?
            .iter()
            .map(tenant_from_row)
            .collect()
    }

    /// Replaces a tenant's allowed CORS origins.
    pub async fn set_cors_origins(&self, slug: &TenantSlug, origins: &[String]) -> StoreResult<()> {
        let json = serde_json::to_string(origins).map_err(|_| corrupt("cors origins"))?;
        let sql = self.global_sql("UPDATE {p}tenants SET cors_origins = $1 WHERE slug = $2");
        sqlx::query(&sql)
            .bind(json)
            .bind(slug.as_str())
            .execute(&self.global)
            .await?;
        Ok(())
    }
}

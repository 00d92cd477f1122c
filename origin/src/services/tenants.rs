//! The operator's tenants, for the command line (`tessera tenant …`) and the operator API
//! (`/api/admin/tenants…`) alike: creation with all settings at once, pages newest first,
//! settings, and deletion, which ends every session and service token of the tenant at the
//! origin and the edge before its schema or file goes.

use std::sync::Arc;

use tessera_core::model::TenantSlug;

use super::{cursor, Revocations, ServiceError, ServiceResult};
use crate::clock::SharedClock;
use crate::store::{DeletedTenant, DynStore, StoreError, Tenant, TenantChanges, TenantSettings};
use crate::tenants::Directory;

/// A page of tenants, newest first, and the cursor of the next one if there may be more.
#[derive(Debug)]
pub struct TenantPage {
    /// The tenants.
    pub tenants: Vec<Tenant>,
    /// The cursor of the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

/// The operator's tenant registry.
#[derive(Clone)]
pub struct Tenants {
    store: DynStore,
    directory: Arc<Directory>,
    revocations: Revocations,
    clock: SharedClock,
    /// The tenant of requests that name none (`TESSERA_DEFAULT_TENANT`): never deleted.
    default_tenant: TenantSlug,
}

impl Tenants {
    /// The service over its dependencies.
    #[must_use]
    pub fn new(
        store: DynStore,
        directory: Arc<Directory>,
        revocations: Revocations,
        clock: SharedClock,
        default_tenant: TenantSlug,
    ) -> Self {
        Self {
            store,
            directory,
            revocations,
            clock,
            default_tenant,
        }
    }

    /// Creates a tenant with all its settings at once: `Conflict` `tenant_exists` when the
    /// slug is taken.
    pub async fn create(
        &self,
        slug: &TenantSlug,
        settings: &TenantSettings,
    ) -> ServiceResult<Tenant> {
        let created = self
            .store
            .create_tenant_with(slug, settings, self.clock.now_secs())
            .await;
        match created {
            Err(StoreError::Conflict) => Err(ServiceError::Conflict {
                code: "tenant_exists",
                detail: format!("tenant {slug} exists already"),
            }),
            Err(other) => Err(other.into()),
            Ok(tenant) => {
                // A look-up of the slug a moment ago may be remembered as unknown.
                self.directory.forget(slug);
                Ok(tenant)
            }
        }
    }

    /// A tenant by slug (`TenantNotFound` otherwise), as the registry has it now.
    pub async fn get(&self, slug: &TenantSlug) -> ServiceResult<Tenant> {
        self.store
            .tenant(slug)
            .await?
            .ok_or(ServiceError::TenantNotFound)
    }

    /// Every tenant, by slug (the command line's list).
    pub async fn all(&self) -> ServiceResult<Vec<Tenant>> {
        Ok(self.store.tenants().await?)
    }

    /// A page of tenants, newest first, after `cursor`.
    pub async fn page(
        &self,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> ServiceResult<TenantPage> {
        let limit = cursor::limit(limit)?;
        let after = cursor.map(decode_tenant_cursor).transpose()?;
        let mut tenants = self
            .store
            .tenants_page(
                after.as_ref().map(|(at, slug)| (*at, slug)),
                i64::from(limit) + 1,
            )
            .await?;
        let more = tenants.len() > limit as usize;
        tenants.truncate(limit as usize);
        let next_cursor = more
            .then(|| {
                tenants
                    .last()
                    .map(|t| cursor::encode(&format!("{}:{}", t.created_at, t.slug)))
            })
            .flatten();
        Ok(TenantPage {
            tenants,
            next_cursor,
        })
    }

    /// Applies `changes` to a tenant's settings (what is not given stays); this node sees them
    /// at once, the others within the directory's cache time.
    pub async fn update(
        &self,
        slug: &TenantSlug,
        changes: &TenantChanges,
    ) -> ServiceResult<Tenant> {
        let tenant = self
            .store
            .update_tenant(slug, changes)
            .await?
            .ok_or(ServiceError::TenantNotFound)?;
        self.directory.forget(slug);
        Ok(tenant)
    }

    /// Deletes a tenant: every session and service token of it ends at the origin and (through
    /// the revocation log) at the edge, its schema or file goes, and the slug may be created
    /// again. `confirm` must repeat the slug (`InvalidInput` `confirmation_mismatch`); the
    /// default tenant, which serves every request that names none, stays (`Conflict`
    /// `default_tenant`).
    pub async fn delete(&self, slug: &TenantSlug, confirm: &str) -> ServiceResult<DeletedTenant> {
        if confirm != slug.as_str() {
            return Err(ServiceError::InvalidInput {
                code: "confirmation_mismatch",
                detail: format!("to delete tenant {slug}, confirm with its slug"),
            });
        }
        if *slug == self.default_tenant {
            return Err(ServiceError::Conflict {
                code: "default_tenant",
                detail: format!(
                    "{slug} is the default tenant (TESSERA_DEFAULT_TENANT): it serves every \
                     request that names none; make another tenant the default first"
                ),
            });
        }
        let deleted = self
            .store
            .delete_tenant(slug, self.clock.now_secs())
            .await?
            .ok_or(ServiceError::TenantNotFound)?;
        self.directory.forget(slug);
        self.revocations.sessions_ended(slug, &deleted.sessions);
        tracing::info!(
            tenant = %slug,
            sessions = deleted.sessions.len(),
            tokens = deleted.tokens,
            "tenant deleted"
        );
        Ok(deleted)
    }
}

/// A tenant's display name as given, trimmed: not blank, and at most 100 characters (a page's
/// heading), for the command line and the operator API alike; `InvalidInput` `invalid_name`.
pub fn checked_name(given: &str) -> ServiceResult<String> {
    let name = given.trim();
    let refused = |detail: &str| ServiceError::InvalidInput {
        code: "invalid_name",
        detail: detail.to_owned(),
    };
    match name.chars().count() {
        0 => Err(refused("a name cannot be blank")),
        1..=100 => Ok(name.to_owned()),
        _ => Err(refused("a name has at most 100 characters")),
    }
}

/// The creation time and slug a tenant page's cursor carries.
fn decode_tenant_cursor(cursor: &str) -> ServiceResult<(i64, TenantSlug)> {
    let text = cursor::decode(cursor)?;
    text.split_once(':')
        .and_then(|(at, slug)| Some((at.parse().ok()?, TenantSlug::parse(slug).ok()?)))
        .ok_or_else(cursor::invalid)
}

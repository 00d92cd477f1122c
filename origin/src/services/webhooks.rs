//! A tenant's webhook endpoints (`tessera webhook`): where its account events go, signed as the
//! Standard Webhooks specification says with a secret per endpoint. The events themselves are
//! written by the store with the changes they report (`store::webhooks`) and sent by the
//! outbox worker (`jobs::webhooks`).

use std::sync::Arc;

use base64::Engine as _;
use tessera_core::model::TenantSlug;

use super::{ServiceError, ServiceResult};
use crate::clock::SharedClock;
use crate::keys::MasterKey;
use crate::store::webhooks::{DeliveryRecord, WebhookEndpoint, EVENT_TYPES};
use crate::store::DynStore;
use crate::tenants::Directory;

/// The context an endpoint's secret is sealed under: bound to its tenant and endpoint.
pub fn seal_context(tenant: &TenantSlug, endpoint: &str) -> String {
    format!("webhook:{tenant}:{endpoint}")
}

/// An endpoint just created, with its secret (`whsec_…`), shown this once.
pub struct CreatedEndpoint {
    /// The endpoint.
    pub endpoint: WebhookEndpoint,
    /// The signing secret, as Standard Webhooks libraries take it.
    pub secret: String,
}

/// Manages endpoints and lists deliveries.
#[derive(Clone)]
pub struct Webhooks {
    store: DynStore,
    tenants: Arc<Directory>,
    master: MasterKey,
    clock: SharedClock,
}

impl Webhooks {
    /// The service over its dependencies.
    #[must_use]
    pub fn new(
        store: DynStore,
        tenants: Arc<Directory>,
        master: MasterKey,
        clock: SharedClock,
    ) -> Self {
        Self {
            store,
            tenants,
            master,
            clock,
        }
    }

    /// Adds an endpoint for `events` at `url`: https, or http to this machine (`localhost`,
    /// `127.0.0.1`, `[::1]`) for development.
    pub async fn create(
        &self,
        tenant: &TenantSlug,
        url: &str,
        events: &[String],
    ) -> ServiceResult<CreatedEndpoint> {
        self.existing(tenant).await?;
        let url = checked_url(url)?;
        let mut subscribed = Vec::new();
        for event in events {
            if !EVENT_TYPES.contains(&event.as_str()) {
                return Err(invalid(
                    "invalid_event",
                    format!("no event {event}: one of {}", EVENT_TYPES.join(", ")),
                ));
            }
            if !subscribed.contains(event) {
                subscribed.push(event.clone());
            }
        }
        if subscribed.is_empty() {
            return Err(invalid("invalid_event", "name at least one event".into()));
        }
        let id = format!("whe_{}", uuid::Uuid::new_v4().simple());
        let key: [u8; 32] = crate::clock::random();
        let endpoint = WebhookEndpoint {
            secret_sealed: self.master.seal(&seal_context(tenant, &id), &key),
            id,
            url,
            events: subscribed,
            created_at: self.clock.now_secs(),
        };
        let mut tx = self.store.write(tenant).await?;
        tx.webhooks().add_endpoint(&endpoint).await?;
        tx.commit().await?;
        let secret = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(key)
        );
        Ok(CreatedEndpoint { endpoint, secret })
    }

    /// The tenant's endpoints.
    pub async fn list(&self, tenant: &TenantSlug) -> ServiceResult<Vec<WebhookEndpoint>> {
        self.existing(tenant).await?;
        let mut tx = self.store.read(tenant).await?;
        Ok(tx.webhooks().endpoints().await?)
    }

    /// Removes an endpoint and its deliveries; 404 for an unknown id.
    pub async fn delete(&self, tenant: &TenantSlug, id: &str) -> ServiceResult<()> {
        self.existing(tenant).await?;
        let mut tx = self.store.write(tenant).await?;
        if !tx.webhooks().remove_endpoint(id).await? {
            return Err(ServiceError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    /// The latest `limit` deliveries, newest first.
    pub async fn deliveries(
        &self,
        tenant: &TenantSlug,
        limit: i64,
    ) -> ServiceResult<Vec<DeliveryRecord>> {
        self.existing(tenant).await?;
        let mut tx = self.store.read(tenant).await?;
        Ok(tx.webhooks().deliveries(limit).await?)
    }

    async fn existing(&self, tenant: &TenantSlug) -> ServiceResult<()> {
        self.tenants
            .get(tenant)
            .await?
            .ok_or(ServiceError::TenantNotFound)
            .map(|_| ())
    }
}

fn invalid(code: &'static str, detail: String) -> ServiceError {
    ServiceError::InvalidInput { code, detail }
}

fn checked_url(given: &str) -> ServiceResult<String> {
    let url = url::Url::parse(given)
        .map_err(|e| invalid("invalid_url", format!("{given} is not a URL: {e}")))?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    let allowed = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    if !allowed || url.fragment().is_some() || !url.username().is_empty() {
        return Err(invalid(
            "invalid_url",
            "a webhook URL is https (or http to localhost), without a fragment or user".into(),
        ));
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_https_or_local() {
        assert!(checked_url("https://hooks.example.com/tessera").is_ok());
        assert!(checked_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(checked_url("http://localhost/hook").is_ok());
        assert!(checked_url("http://hooks.example.com/").is_err());
        assert!(checked_url("https://a@hooks.example.com/").is_err());
        assert!(checked_url("https://hooks.example.com/#x").is_err());
        assert!(checked_url("ftp://hooks.example.com/").is_err());
    }
}

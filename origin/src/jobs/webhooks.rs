//! Sends the tenants' webhook deliveries, as part of the outbox worker's pass over a tenant
//! (`jobs::mail`): claims the due ones under a lease (only the oldest unsettled delivery of
//! each user and endpoint is due, so each endpoint sees a user's events in order), signs each
//! as the Standard Webhooks specification says (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature`: HMAC-SHA256 under the endpoint's secret, by the specification's
//! reference library) and POSTs it. Anything but a 2xx answer is retried with the mail's
//! backoff until the event is a day old; a crash between sending and recording resends once,
//! after the lease ends: delivery is at least once.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt as _;
use tessera_core::model::TenantSlug;

use super::mail::{retry_delay_ms, GIVE_UP_AFTER_MS, KEEP_DONE_MS, LEASE_MS};
use crate::clock::{self, SharedClock};
use crate::keys::MasterKey;
use crate::services::webhooks::seal_context;
use crate::state::AppState;
use crate::store::webhooks::ClaimedDelivery;
use crate::store::{DynStore, StoreResult, TenantTx};

/// Deliveries claimed (and sent concurrently) per batch.
const BATCH: i64 = 8;

/// How long one try may take, connection included: well inside the lease.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a try failed: the endpoint's status, or what went wrong before one.
struct Failure {
    status: Option<u16>,
    error: String,
}

/// The webhook sender of the outbox worker.
#[derive(Clone)]
pub struct WebhookSender {
    store: DynStore,
    master: MasterKey,
    clock: SharedClock,
    http: reqwest::Client,
}

impl WebhookSender {
    /// A sender over the state's store, master key and clock.
    #[must_use]
    pub fn new(state: &AppState) -> Self {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            // A redirect would send the signed event somewhere the operator did not name.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("Tessera-Webhooks/1")
            .build()
            .unwrap_or_default();
        Self {
            store: state.store.clone(),
            master: state.keys.master().clone(),
            clock: state.clock.clone(),
            http,
        }
    }

    /// Sends every due delivery of `tenant`; answers how many were settled (delivered, retried
    /// or given up on).
    pub async fn tenant(&self, tenant: &TenantSlug) -> StoreResult<usize> {
        let mut settled = 0;
        loop {
            let now = self.clock.now_millis_i64();
            let mut tx = self.store.write(tenant).await?;
            let claimed = tx.webhooks().claim(now, now + LEASE_MS, BATCH).await?;
            let endpoints: HashMap<String, (String, Vec<u8>)> = if claimed.is_empty() {
                HashMap::new()
            } else {
                tx.webhooks()
                    .endpoints()
                    .await?
                    .into_iter()
                    .map(|e| (e.id, (e.url, e.secret_sealed)))
                    .collect()
            };
            tx.commit().await?;
            if claimed.is_empty() {
                return Ok(settled);
            }
            settled += claimed.len();
            futures_util::stream::iter(claimed)
                .for_each_concurrent(None, |delivery| {
                    let endpoint = endpoints.get(&delivery.endpoint_id);
                    self.deliver(tenant, endpoint, delivery)
                })
                .await;
        }
    }

    /// Settled deliveries older than a week go; answers when the next one is due.
    pub async fn tidy(&self, tx: &mut TenantTx, now_ms: i64) -> StoreResult<Option<i64>> {
        tx.webhooks().purge(now_ms - KEEP_DONE_MS).await?;
        tx.webhooks().next_due().await
    }

    async fn deliver(
        &self,
        tenant: &TenantSlug,
        endpoint: Option<&(String, Vec<u8>)>,
        delivery: ClaimedDelivery,
    ) {
        let outcome = match endpoint {
            // Removed since the claim: its deliveries went with it.
            None => return,
            Some((url, sealed)) => self.send(tenant, &delivery, url, sealed).await,
        };
        self.record(tenant, &delivery, outcome).await;
    }

    async fn send(
        &self,
        tenant: &TenantSlug,
        delivery: &ClaimedDelivery,
        url: &str,
        sealed: &[u8],
    ) -> Result<u16, Failure> {
        let fail = |error: String| Failure {
            status: None,
            error,
        };
        let key = self
            .master
            .open(&seal_context(tenant, &delivery.endpoint_id), sealed)
            .ok_or_else(|| fail("the endpoint's secret does not open".into()))?;
        let signer = standardwebhooks::Webhook::from_bytes(key)
            .map_err(|e| fail(format!("signing key: {e}")))?;
        let timestamp = self.clock.now_secs();
        let signature = signer
            .sign(&delivery.event_id, timestamp, delivery.payload.as_bytes())
            .map_err(|e| fail(format!("signing: {e}")))?;
        let response = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header(standardwebhooks::HEADER_WEBHOOK_ID, &delivery.event_id)
            .header(
                standardwebhooks::HEADER_WEBHOOK_TIMESTAMP,
                timestamp.to_string(),
            )
            .header(standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature)
            .body(delivery.payload.clone())
            .send()
            .await
            .map_err(|e| fail(e.without_url().to_string()))?;
        let status = response.status();
        if status.is_success() {
            Ok(status.as_u16())
        } else {
            Err(Failure {
                status: Some(status.as_u16()),
                error: format!("the endpoint answered {status}"),
            })
        }
    }

    async fn record(
        &self,
        tenant: &TenantSlug,
        delivery: &ClaimedDelivery,
        outcome: Result<u16, Failure>,
    ) {
        let now = self.clock.now_millis_i64();
        let recorded = async {
            let mut tx = self.store.write(tenant).await?;
            match &outcome {
                Ok(status) => {
                    tx.webhooks().delivered(delivery.seq, *status, now).await?;
                    metrics::counter!("tessera_webhooks_delivered_total").increment(1);
                }
                Err(failure) if now - delivery.created_ms < GIVE_UP_AFTER_MS => {
                    let jitter = u16::from_le_bytes(clock::random());
                    let due = now + retry_delay_ms(delivery.attempts, jitter);
                    tx.webhooks()
                        .retry(delivery.seq, failure.status, &failure.error, due)
                        .await?;
                    metrics::counter!("tessera_webhooks_retries_total").increment(1);
                    tracing::warn!(%tenant, event = %delivery.event_id, attempts = delivery.attempts, error = %failure.error, "webhook not delivered; will retry");
                }
                Err(failure) => {
                    tx.webhooks()
                        .give_up(delivery.seq, failure.status, &failure.error, now)
                        .await?;
                    metrics::counter!("tessera_webhooks_failed_total").increment(1);
                    tracing::error!(%tenant, event = %delivery.event_id, error = %failure.error, "webhook given up on");
                }
            }
            tx.commit().await
        };
        // Unrecorded, the delivery's lease ends and it is claimed again: at most one resend.
        if let Err(error) = recorded.await {
            tracing::error!(%tenant, event = %delivery.event_id, %error, "cannot record a webhook outcome");
        }
    }
}

//! Delivers the outbox: email, and with each tenant's mail its webhook deliveries
//! ([`super::webhooks`]), which share the index of tenants with work due. Woken at once when this node queues mail, and every
//! `TESSERA_MAIL_POLL_MS` for mail queued by other nodes and retries that came due, it reads
//! the global index of tenants with mail due (never every tenant), claims each tenant's due
//! rows under a lease, resolves requests into emails, sends, and marks each row sent. A failure
//! is retried with exponential backoff and jitter until the message is a day old; a crash
//! between sending and marking resends once, after the lease ends. Several nodes share the work:
//! a row is leased to one worker at a time (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's
//! writers are serial anyway).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use tessera_core::model::TenantSlug;

use super::webhooks::WebhookSender;
use super::Jobs;
use crate::clock::{self, SharedClock};
use crate::mail::{DeliveryError, MailKind, Mailer};
use crate::services::MailRequests;
use crate::state::AppState;
use crate::store::{ClaimedMail, DynStore, StoreResult};

/// How long a claim holds a row: longer than one SMTP exchange may take
/// ([`crate::mail`]'s timeout), so that a row is never sent by two workers.
pub const LEASE_MS: i64 = 60_000;

/// A message that could not be sent for this long is given up on.
pub const GIVE_UP_AFTER_MS: i64 = 24 * 60 * 60 * 1000;

/// Delivered and failed rows are kept this long, then deleted.
pub const KEEP_DONE_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// Rows claimed (and sent at once) per batch: the SMTP connection pool's size.
const BATCH: usize = crate::mail::SMTP_CONNECTIONS as usize;

/// Tenants read from the index per round.
const TENANTS_PER_ROUND: i64 = 100;

/// Rounds per wake-up before yielding to the next tick, so that a tenant whose entry cannot be
/// cleared never spins the worker.
const ROUNDS_PER_WAKE: usize = 10;

/// The first retry's delay; each further one doubles, up to [`MAX_RETRY_MS`].
const FIRST_RETRY_MS: i64 = 5_000;

/// The longest delay between retries: after an outage ends, mail flows within this time.
const MAX_RETRY_MS: i64 = 5 * 60 * 1000;

/// The delay before try `attempts + 1`: exponential, capped, with "equal jitter" (between half
/// and all of it), so that messages failed together do not retry together. `jitter` is in
/// `0..=u16::MAX`.
#[must_use]
pub fn retry_delay_ms(attempts: i64, jitter: u16) -> i64 {
    let exponent = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    let full = FIRST_RETRY_MS
        .saturating_mul(1_i64 << exponent)
        .min(MAX_RETRY_MS);
    full / 2 + full / 2 * i64::from(jitter) / i64::from(u16::MAX)
}

/// The outbox worker.
#[derive(Clone)]
pub struct MailWorker {
    store: DynStore,
    mailer: Arc<Mailer>,
    requests: MailRequests,
    webhooks: WebhookSender,
    clock: SharedClock,
}

impl MailWorker {
    /// A worker over the state's store, mailer and request resolver.
    #[must_use]
    pub fn new(state: &AppState) -> Self {
        Self {
            store: state.store.clone(),
            mailer: state.mailer.clone(),
            requests: state.services.mail_requests.clone(),
            webhooks: WebhookSender::new(state),
            clock: state.clock.clone(),
        }
    }

    /// Delivers what is due now, tenant by tenant. Answers the rows settled (sent, resolved
    /// to nothing, retried or failed).
    pub async fn run_once(&self) -> usize {
        let mut settled = 0;
        for _ in 0..ROUNDS_PER_WAKE {
            let due = match self
                .store
                .mail_due(self.clock.now_millis_i64(), TENANTS_PER_ROUND)
                .await
            {
                Ok(due) => due,
                Err(error) => {
                    tracing::error!(%error, "cannot read the mail index");
                    return settled;
                }
            };
            if due.is_empty() {
                break;
            }
            for (tenant, version) in due {
                match self.tenant(&tenant, version).await {
                    Ok(n) => settled += n,
                    Err(error) => tracing::error!(%error, %tenant, "mail delivery pass failed"),
                }
            }
        }
        settled
    }

    /// One pass over a tenant's due mail, then its index entry is moved to its next due time
    /// or removed, unless mail was queued since `version` was read.
    async fn tenant(&self, tenant: &TenantSlug, version: i64) -> StoreResult<usize> {
        let mut settled = 0;
        loop {
            let now = self.clock.now_millis_i64();
            let mut tx = self.store.write(tenant).await?;
            let limit = i64::try_from(BATCH).unwrap_or(1);
            let claimed = tx.outbox().claim(now, now + LEASE_MS, limit).await?;
            tx.commit().await?;
            if claimed.is_empty() {
                break;
            }
            settled += claimed.len();
            futures_util::stream::iter(claimed)
                .for_each_concurrent(BATCH, |row| self.deliver(tenant, row))
                .await;
        }
        settled += self.webhooks.tenant(tenant).await?;
        let now = self.clock.now_millis_i64();
        let mut tx = self.store.write(tenant).await?;
        tx.outbox().purge(now - KEEP_DONE_MS).await?;
        let mail_next = tx.outbox().next_due().await?;
        let webhooks_next = self.webhooks.tidy(&mut tx, now).await?;
        let next = match (mail_next, webhooks_next) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        tx.commit().await?;
        self.store.settle_mail_due(tenant, version, next).await?;
        Ok(settled)
    }

    /// Sends one claimed row and records the outcome. Never fails: an error becomes a retry.
    async fn deliver(&self, tenant: &TenantSlug, row: ClaimedMail) {
        let (kind, recipient, params) = if MailRequests::is_request(&row.kind) {
            match self.requests.resolve(tenant, &row).await {
                Ok(Some(mail)) => (mail.kind.to_owned(), mail.recipient, mail.params),
                Ok(None) => return,
                Err(error) => {
                    self.record(
                        tenant,
                        &row,
                        Err(DeliveryError::Transient(error.to_string())),
                    )
                    .await;
                    return;
                }
            }
        } else {
            let params = serde_json::from_str(&row.params).unwrap_or(serde_json::Value::Null);
            (row.kind.clone(), row.recipient.clone(), params)
        };
        let outcome = match MailKind::parse(&kind) {
            None => Err(DeliveryError::Permanent(format!(
                "unknown mail kind {kind}"
            ))),
            Some(kind) => match self.mailer.compose(&row.id, kind, &recipient, &params) {
                Ok(message) => {
                    let action = params
                        .get("link")
                        .or_else(|| params.get("code"))
                        .and_then(serde_json::Value::as_str);
                    self.mailer.deliver(&row.id, message, action).await
                }
                Err(error) => Err(error),
            },
        };
        self.record(tenant, &row, outcome).await;
    }

    async fn record(
        &self,
        tenant: &TenantSlug,
        row: &ClaimedMail,
        outcome: Result<(), DeliveryError>,
    ) {
        let now = self.clock.now_millis_i64();
        let recorded = async {
            let mut tx = self.store.write(tenant).await?;
            match &outcome {
                Ok(()) => {
                    tx.outbox().mark_sent(&row.id, now).await?;
                    metrics::counter!("tessera_mail_sent_total").increment(1);
                    #[allow(clippy::cast_precision_loss)]
                    metrics::histogram!("tessera_mail_delivery_seconds")
                        .record((now - row.created_ms).max(0) as f64 / 1000.0);
                }
                Err(DeliveryError::Transient(error)) if now - row.created_ms < GIVE_UP_AFTER_MS => {
                    let jitter = u16::from_le_bytes(clock::random());
                    let due = now + retry_delay_ms(row.attempts, jitter);
                    tx.outbox().retry(&row.id, due, error).await?;
                    metrics::counter!("tessera_mail_retries_total").increment(1);
                    tracing::warn!(%tenant, id = %row.id, attempts = row.attempts, %error, "email not delivered; will retry");
                }
                Err(error) => {
                    tx.outbox().fail(&row.id, now, &error.to_string()).await?;
                    metrics::counter!("tessera_mail_failed_total").increment(1);
                    tracing::error!(%tenant, id = %row.id, %error, "email given up on");
                }
            }
            tx.commit().await
        };
        // Unrecorded, the row's lease ends and it is claimed again: at most one resend.
        if let Err(error) = recorded.await {
            tracing::error!(%tenant, id = %row.id, %error, "cannot record a delivery outcome");
        }
    }
}

pub(super) fn start(jobs: &mut Jobs, state: &AppState) {
    let worker = MailWorker::new(state);
    let queued = state.store.mail_queued();
    let poll = Duration::from_millis(state.config.mail_poll_ms);
    if worker.mailer.is_development() {
        tracing::info!(
            "no TESSERA_SMTP_URL: emails are written to the data directory's outbox folder"
        );
    }
    jobs.woken_or_every("mail", queued, poll, move || {
        let worker = worker.clone();
        async move {
            worker.run_once().await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_with_jitter_up_to_a_cap() {
        assert_eq!(retry_delay_ms(1, 0), 2_500);
        assert_eq!(retry_delay_ms(1, u16::MAX), 5_000);
        assert_eq!(retry_delay_ms(2, u16::MAX), 10_000);
        assert_eq!(retry_delay_ms(3, u16::MAX), 20_000);
        assert_eq!(retry_delay_ms(50, u16::MAX), MAX_RETRY_MS);
        assert_eq!(retry_delay_ms(50, 0), MAX_RETRY_MS / 2);
        for attempts in 0..100 {
            let delay = retry_delay_ms(attempts, 12_345);
            assert!(
                (FIRST_RETRY_MS / 2..=MAX_RETRY_MS).contains(&delay),
                "{attempts}: {delay}"
            );
        }
    }
}

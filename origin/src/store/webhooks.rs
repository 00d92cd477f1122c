//! Outbound webhooks of the unit's tenant: its endpoints, and the deliveries of its events. An
//! event is written by the store method that makes the change it reports ([`emit`]), in the
//! same unit, as one delivery row per subscribed endpoint; the outbox worker sends the rows,
//! in order per user and endpoint (`jobs::webhooks`).

use sqlx::Row as _;
use tessera_core::model::UserId;

use super::{StoreResult, TenantTx};

/// The event types an endpoint may subscribe to.
pub const EVENT_TYPES: [&str; 8] = [
    "user.created",
    "user.email_verified",
    "user.disabled",
    "user.deleted",
    "session.created",
    "session.ended",
    "password.changed",
    "mfa.changed",
];

/// An endpoint, as stored.
#[derive(Clone)]
pub struct WebhookEndpoint {
    /// Id (`whe_…`).
    pub id: String,
    /// Where events are POSTed.
    pub url: String,
    /// The subscribed event types.
    pub events: Vec<String>,
    /// The signing secret, sealed with the master key.
    pub secret_sealed: Vec<u8>,
    /// Unix seconds.
    pub created_at: i64,
}

impl std::fmt::Debug for WebhookEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpoint")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

/// A delivery leased to a worker.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    /// Its place in the tenant's order of events.
    pub seq: i64,
    /// The event's id (`webhook-id`).
    pub event_id: String,
    /// The endpoint.
    pub endpoint_id: String,
    /// The body to sign and send.
    pub payload: String,
    /// When the event happened, Unix milliseconds.
    pub created_ms: i64,
    /// Tries so far, this one included.
    pub attempts: i64,
}

/// A delivery as `tessera webhook deliveries` lists it.
#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    /// Its place in the tenant's order of events.
    pub seq: i64,
    /// The event's id.
    pub event_id: String,
    /// The endpoint.
    pub endpoint_id: String,
    /// The event type.
    pub event: String,
    /// The user the event is about.
    pub user_id: String,
    /// Tries so far.
    pub attempts: i64,
    /// When it was delivered (a 2xx answer), Unix milliseconds.
    pub delivered_ms: Option<i64>,
    /// When it was given up on, Unix milliseconds.
    pub failed_ms: Option<i64>,
    /// The last try's HTTP status.
    pub last_status: Option<i64>,
    /// Why the last try failed.
    pub last_error: Option<String>,
}

/// Writes `event` about `user` for every endpoint of the unit's tenant that subscribes to it,
/// due at once; `data` joins the user's id and the tenant in the body's `data`. Answers how
/// many deliveries were written. The body follows the Standard Webhooks payload structure:
/// `{"type", "timestamp", "data"}`.
pub(super) async fn emit(
    tx: &mut TenantTx,
    event: &'static str,
    user: &UserId,
    mut data: serde_json::Value,
    now_secs: i64,
) -> StoreResult<u64> {
    debug_assert!(EVENT_TYPES.contains(&event));
    let now_ms = now_secs.saturating_mul(1000);
    if let Some(fields) = data.as_object_mut() {
        fields.insert("tenant".into(), tx.tenant().as_str().into());
        fields.insert("user_id".into(), user.to_string().into());
    }
    let timestamp = time::OffsetDateTime::from_unix_timestamp(now_secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let payload = serde_json::json!({ "type": event, "timestamp": timestamp, "data": data });
    let sql = tx.sql(
        "INSERT INTO {p}webhook_deliveries \
         (event_id, endpoint_id, event, user_id, payload, created_ms, due_ms) \
         SELECT $1, id, $2, $3, $4, $5, $5 FROM {p}webhook_endpoints WHERE events LIKE $6",
    );
    let done = sqlx::query(&sql)
        .bind(format!("msg_{}", uuid::Uuid::new_v4().simple()))
        .bind(event)
        .bind(user.to_string())
        .bind(payload.to_string())
        .bind(now_ms)
        .bind(format!("% {event} %"))
        .execute(tx.conn())
        .await?;
    if done.rows_affected() > 0 {
        // The outbox worker's index: the tenant has outbound work due.
        tx.mail_due(now_ms);
    }
    Ok(done.rows_affected())
}

/// The webhooks of the unit's tenant.
pub struct Webhooks<'a>(pub(super) &'a mut TenantTx);

impl Webhooks<'_> {
    /// Adds an endpoint.
    pub async fn add_endpoint(&mut self, endpoint: &WebhookEndpoint) -> StoreResult<()> {
        let sql = self.0.sql(
            "INSERT INTO {p}webhook_endpoints (id, url, events, secret_sealed, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        );
        sqlx::query(&sql)
            .bind(&endpoint.id)
            .bind(&endpoint.url)
            .bind(format!(" {} ", endpoint.events.join(" ")))
            .bind(endpoint.secret_sealed.clone())
            .bind(endpoint.created_at)
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// Every endpoint, oldest first.
    pub async fn endpoints(&mut self) -> StoreResult<Vec<WebhookEndpoint>> {
        let sql = self.0.sql(
            "SELECT id, url, events, secret_sealed, created_at FROM {p}webhook_endpoints \
             ORDER BY created_at, id",
        );
        let rows = sqlx::query(&sql).fetch_all(self.0.conn()).await?;
        rows.iter()
            .map(|row| {
                let events: String = row.try_get("events")?;
                Ok(WebhookEndpoint {
                    id: row.try_get("id")?,
                    url: row.try_get("url")?,
                    events: events.split_whitespace().map(str::to_owned).collect(),
                    secret_sealed: row.try_get("secret_sealed")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Replaces an endpoint's sealed secret (the same secret, re-sealed under a new master key).
    pub async fn reseal(&mut self, id: &str, sealed: &[u8]) -> StoreResult<()> {
        let sql = self
            .0
            .sql("UPDATE {p}webhook_endpoints SET secret_sealed = $1 WHERE id = $2");
        sqlx::query(&sql)
            .bind(sealed.to_vec())
            .bind(id)
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// Removes an endpoint and its deliveries; `true` if it existed.
    pub async fn remove_endpoint(&mut self, id: &str) -> StoreResult<bool> {
        let sql = self
            .0
            .sql("DELETE FROM {p}webhook_deliveries WHERE endpoint_id = $1");
        sqlx::query(&sql).bind(id).execute(self.0.conn()).await?;
        let sql = self.0.sql("DELETE FROM {p}webhook_endpoints WHERE id = $1");
        let done = sqlx::query(&sql).bind(id).execute(self.0.conn()).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Leases up to `limit` due deliveries until `lease_until_ms`, counting a try on each. Only
    /// the oldest unsettled delivery of each user and endpoint is due: a later event waits
    /// until the earlier one is delivered or given up on, so that each endpoint sees a user's
    /// events in order.
    pub async fn claim(
        &mut self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let sql = self.0.sql(&format!(
            "UPDATE {{p}}webhook_deliveries SET lease_until_ms = $1, attempts = attempts + 1 \
             WHERE seq IN (SELECT d.seq FROM {{p}}webhook_deliveries d \
             WHERE d.delivered_ms IS NULL AND d.failed_ms IS NULL AND d.due_ms <= $2 \
             AND (d.lease_until_ms IS NULL OR d.lease_until_ms <= $2) \
             AND NOT EXISTS (SELECT 1 FROM {{p}}webhook_deliveries e \
             WHERE e.endpoint_id = d.endpoint_id AND e.user_id = d.user_id AND e.seq < d.seq \
             AND e.delivered_ms IS NULL AND e.failed_ms IS NULL) \
             ORDER BY d.seq LIMIT $3{}) \
             RETURNING seq, event_id, endpoint_id, payload, created_ms, attempts",
            self.0.dialect().skip_locked()
        ));
        let rows = sqlx::query(&sql)
            .bind(lease_until_ms)
            .bind(now_ms)
            .bind(limit)
            .fetch_all(self.0.conn())
            .await?;
        let mut claimed = rows
            .iter()
            .map(|row| {
                Ok(ClaimedDelivery {
                    seq: row.try_get("seq")?,
                    event_id: row.try_get("event_id")?,
                    endpoint_id: row.try_get("endpoint_id")?,
                    payload: row.try_get("payload")?,
                    created_ms: row.try_get("created_ms")?,
                    attempts: row.try_get("attempts")?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        claimed.sort_by_key(|d| d.seq);
        Ok(claimed)
    }

    /// Records a delivered try.
    pub async fn delivered(&mut self, seq: i64, status: u16, now_ms: i64) -> StoreResult<()> {
        let sql = self.0.sql(
            "UPDATE {p}webhook_deliveries SET delivered_ms = $1, last_status = $2, \
             last_error = NULL, lease_until_ms = NULL WHERE seq = $3",
        );
        sqlx::query(&sql)
            .bind(now_ms)
            .bind(i64::from(status))
            .bind(seq)
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// Records a failed try, due again at `due_ms`.
    pub async fn retry(
        &mut self,
        seq: i64,
        status: Option<u16>,
        error: &str,
        due_ms: i64,
    ) -> StoreResult<()> {
        let sql = self.0.sql(
            "UPDATE {p}webhook_deliveries SET last_status = $1, last_error = $2, \
             lease_until_ms = NULL, due_ms = $3 WHERE seq = $4",
        );
        sqlx::query(&sql)
            .bind(status.map(i64::from))
            .bind(error)
            .bind(due_ms)
            .bind(seq)
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// Records a failed try of a delivery given up on.
    pub async fn give_up(
        &mut self,
        seq: i64,
        status: Option<u16>,
        error: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let sql = self.0.sql(
            "UPDATE {p}webhook_deliveries SET last_status = $1, last_error = $2, \
             lease_until_ms = NULL, failed_ms = $3 WHERE seq = $4",
        );
        sqlx::query(&sql)
            .bind(status.map(i64::from))
            .bind(error)
            .bind(now_ms)
            .bind(seq)
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// When the next unsettled delivery is due, if any.
    pub async fn next_due(&mut self) -> StoreResult<Option<i64>> {
        let sql = self.0.sql(
            "SELECT MIN(due_ms) AS due FROM {p}webhook_deliveries \
             WHERE delivered_ms IS NULL AND failed_ms IS NULL",
        );
        let row = sqlx::query(&sql).fetch_one(self.0.conn()).await?;
        Ok(row.try_get("due")?)
    }

    /// Deletes settled deliveries older than `before_ms`.
    pub async fn purge(&mut self, before_ms: i64) -> StoreResult<u64> {
        let sql = self.0.sql(
            "DELETE FROM {p}webhook_deliveries WHERE created_ms < $1 \
             AND (delivered_ms IS NOT NULL OR failed_ms IS NOT NULL)",
        );
        let done = sqlx::query(&sql)
            .bind(before_ms)
            .execute(self.0.conn())
            .await?;
        Ok(done.rows_affected())
    }

    /// The latest `limit` deliveries, newest first.
    pub async fn deliveries(&mut self, limit: i64) -> StoreResult<Vec<DeliveryRecord>> {
        let sql = self.0.sql(
            "SELECT seq, event_id, endpoint_id, event, user_id, attempts, delivered_ms, \
             failed_ms, last_status, last_error FROM {p}webhook_deliveries \
             ORDER BY seq DESC LIMIT $1",
        );
        let rows = sqlx::query(&sql)
            .bind(limit)
            .fetch_all(self.0.conn())
            .await?;
        rows.iter()
            .map(|row| {
                Ok(DeliveryRecord {
                    seq: row.try_get("seq")?,
                    event_id: row.try_get("event_id")?,
                    endpoint_id: row.try_get("endpoint_id")?,
                    event: row.try_get("event")?,
                    user_id: row.try_get("user_id")?,
                    attempts: row.try_get("attempts")?,
                    delivered_ms: row.try_get("delivered_ms")?,
                    failed_ms: row.try_get("failed_ms")?,
                    last_status: row.try_get("last_status")?,
                    last_error: row.try_get("last_error")?,
                })
            })
            .collect()
    }
}

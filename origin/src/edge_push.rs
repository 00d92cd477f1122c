//! Delivers the revocation log to the edge, so that a ended session's tokens (the 30-day
//! VoiceStamp token included) are refused there too. Delivery starts at the position the edge
//! last acknowledged (stored in the global `edge_feed` row, so it survives restarts of the
//! origin) and that position moves only when the edge answers 2xx: an outage of any length
//! delays revocations at the edge but loses none. The `edge_feed` job calls it every second
//! and whenever this process writes to the log; the CLI calls it once before it exits.

use std::time::Duration;

use tessera_core::edge::{Revocation, RevocationBatch, EDGE_SECRET, REVOCATIONS_PATH};

use crate::store::Store;

/// Log entries per delivery.
#[allow(clippy::cast_possible_wrap)] // 500.
const BATCH: i64 = tessera_core::edge::REVOCATION_BATCH as i64;

/// Why a delivery did not complete.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The edge could not be reached or refused the batch.
    #[error("the edge did not acknowledge: {0}")]
    Edge(String),
    /// The log could not be read or the position written.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// The edge's revocation endpoint and its credentials.
#[derive(Clone)]
pub struct EdgePush {
    url: String,
    secret: String,
    http: reqwest::Client,
}

impl EdgePush {
    /// A pusher to `edge_url`, authenticated with the edge secret.
    #[must_use]
    pub fn new(edge_url: &str, secret: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self {
            url: format!("{edge_url}{REVOCATIONS_PATH}"),
            secret: secret.to_owned(),
            http,
        }
    }

    /// The pusher the configuration asks for, if it names an edge.
    #[must_use]
    pub fn from_config(config: &crate::config::Config) -> Option<Self> {
        config
            .edge_url
            .as_deref()
            .zip(config.edge_secret.as_deref())
            .map(|(url, secret)| Self::new(url, secret))
    }

    /// Delivers every log entry after the edge's acknowledged position that still covers a
    /// token at `now`; answers the new acknowledged position.
    pub async fn deliver_pending(&self, store: &Store, now: i64) -> Result<i64, DeliveryError> {
        let mut through = store.edge_delivered_through().await?;
        loop {
            let entries = store.revocations_after(through, now, BATCH).await?;
            let Some(last) = entries.last().map(|e| e.position) else {
                return Ok(through);
            };
            let batch = RevocationBatch {
                through: last,
                revocations: entries
                    .iter()
                    .map(|e| Revocation {
                        tenant: e.tenant.clone(),
                        session: e.subject.clone(),
                        until: u64::try_from(e.until).unwrap_or(0),
                    })
                    .collect(),
            };
            self.send(&batch).await?;
            store.set_edge_delivered_through(last).await?;
            through = last;
            if i64::try_from(entries.len()).unwrap_or(0) < BATCH {
                return Ok(through);
            }
        }
    }

    async fn send(&self, batch: &RevocationBatch) -> Result<(), DeliveryError> {
        let response = self
            .http
            .post(&self.url)
            .header(EDGE_SECRET, &self.secret)
            .json(batch)
            .send()
            .await
            .map_err(|e| DeliveryError::Edge(e.to_string()))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(DeliveryError::Edge(format!("status {}", response.status())))
        }
    }
}

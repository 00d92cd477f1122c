//! Pushes revocations to the edge, so that a signed-out session's access tokens are refused
//! there too, not only at the origin. Best effort with retries: a push that never arrives still
//! expires with the tokens it covers, and the origin itself keeps refusing them.

use std::time::Duration;

use tessera_core::edge::{Revocation, EDGE_SECRET, REVOCATIONS_PATH};

/// Attempts per revocation before giving up (with doubling delays from 100 ms: about 3 s).
const ATTEMPTS: u32 = 5;

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

    /// Sends a revocation in the background; returns at once.
    pub fn revoke(&self, revocation: Revocation) {
        let this = self.clone();
        tokio::spawn(async move { this.send(&revocation).await });
    }

    /// Sends a revocation, retrying; returns when it arrived or was given up on.
    pub async fn send(&self, revocation: &Revocation) {
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=ATTEMPTS {
            let sent = self
                .http
                .post(&self.url)
                .header(EDGE_SECRET, &self.secret)
                .json(revocation)
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => return,
                Ok(response) => {
                    tracing::warn!(attempt, status = %response.status(), "edge refused a revocation")
                }
                Err(error) => tracing::warn!(attempt, %error, "edge unreachable for a revocation"),
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        tracing::error!(session = %revocation.session, "revocation not delivered to the edge");
    }
}

//! Rate limits at the origin, for deployments without the edge (and as a second line behind
//! it): core's GCRA and policy table, with state in this process or in the database.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use tessera_core::ratelimit::{self, Decision, GcraState, Quota, RouteClass};
use tessera_core::secret::sha256;

use crate::clock;
use crate::error::ApiError;
use crate::store::{DynStore, StoreError};

/// Where the GCRA state lives.
pub enum Limiter {
    /// One node: a map in memory, swept of idle keys as it grows.
    Memory(Mutex<HashMap<String, GcraState>>),
    /// Several nodes: the global `rate_limits` table.
    Database(DynStore),
}

/// Keys kept in memory before idle ones are swept.
const SWEEP_AT: usize = 100_000;

impl Limiter {
    /// An in-memory limiter.
    #[must_use]
    pub fn memory() -> Self {
        Self::Memory(Mutex::new(HashMap::new()))
    }

    /// Charges one request of `class` to `subject` (an IP, or a tenant + email).
    pub async fn charge(
        &self,
        class: RouteClass,
        subject: &str,
    ) -> Result<Option<(Decision, Quota)>, StoreError> {
        let Some(quota) = class.quota() else {
            return Ok(None);
        };
        let key = limit_key(class, subject);
        let now = clock::now_millis();
        let decision = match self {
            Self::Memory(map) => {
                let mut map = map
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if map.len() >= SWEEP_AT {
                    map.retain(|_, state| !state.is_idle(now));
                }
                let (decision, next) = ratelimit::check(map.get(&key).copied(), now, quota);
                map.insert(key, next);
                decision
            }
            Self::Database(store) => store.rate_limit(&key, now, quota).await?,
        };
        Ok(Some((decision, quota)))
    }

    /// Charges `subject` and turns a refusal into the 429 answer.
    pub async fn enforce(&self, class: RouteClass, subject: &str) -> Result<(), ApiError> {
        match self.charge(class, subject).await? {
            Some((decision @ Decision::Limited { .. }, quota)) => {
                Err(too_many(class, decision, quota))
            }
            _ => Ok(()),
        }
    }
}

/// The 429 problem with `Retry-After` and `RateLimit` headers.
#[must_use]
pub fn too_many(class: RouteClass, decision: Decision, quota: Quota) -> ApiError {
    metrics::counter!("tessera_rate_limited_total", "class" => class.name()).increment(1);
    ApiError::new(
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "Too many requests",
    )
    .detail(format!(
        "At most {} {} requests per {} seconds; retry later.",
        quota.limit,
        class.name(),
        quota.period_ms / 1000
    ))
    .retry_after(decision.retry_after_secs().unwrap_or(1))
    .headers(decision.headers(class.name(), quota))
}

/// The storage key: class and a digest of the subject, so that no email is stored in clear.
fn limit_key(class: RouteClass, subject: &str) -> String {
    let digest = sha256(subject.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}:{hex}", class.name())
}

/// The subject for per-IP limits.
#[must_use]
pub fn ip_subject(ip: IpAddr) -> String {
    format!("ip:{ip}")
}

/// The subject for per-account limits.
#[must_use]
pub fn account_subject(tenant: &str, email: &str) -> String {
    format!("account:{tenant}:{email}")
}

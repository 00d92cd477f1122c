//! Rate limits at the origin, for deployments without the edge (and as a second line behind
//! it): core's GCRA and policy table, with state in this process or in the database.

use std::collections::HashMap;
use std::sync::Mutex;

use tessera_core::ratelimit::{self, limit_key, Decision, GcraState, Quota, RouteClass};

use crate::clock;
use crate::error::ApiError;
use crate::store::{DynStore, StoreError};

/// Where the GCRA state lives.
pub enum Limiter {
    /// One node: a map in memory, swept of idle keys as it grows.
    Memory(Mutex<MemoryState>),
    /// Several nodes: the global `rate_limits` table.
    Database(DynStore),
}

/// In-memory GCRA state. Idle keys (back at full capacity) carry no information and are
/// swept when the map reaches `sweep_at`; the threshold then doubles past what survived, so
/// sweeping costs amortised O(1) per request even when most keys are busy.
pub struct MemoryState {
    keys: HashMap<String, GcraState>,
    sweep_at: usize,
}

/// The smallest sweep threshold.
const SWEEP_AT: usize = 100_000;

impl Limiter {
    /// An in-memory limiter.
    #[must_use]
    pub fn memory() -> Self {
        Self::Memory(Mutex::new(MemoryState {
            keys: HashMap::new(),
            sweep_at: SWEEP_AT,
        }))
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
            Self::Memory(state) => {
                let mut state = state
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if state.keys.len() >= state.sweep_at {
                    state.keys.retain(|_, gcra| !gcra.is_idle(now));
                    state.sweep_at = (state.keys.len() * 2).max(SWEEP_AT);
                }
                let (decision, next) = ratelimit::check(state.keys.get(&key).copied(), now, quota);
                state.keys.insert(key, next);
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
    .detail(ratelimit::limited_detail(class, quota))
    .retry_after(decision.retry_after_secs().unwrap_or(1))
    .headers(decision.headers(class.name(), quota))
}

//! Rate limits at the origin, for deployments without the edge (and as a second line behind
//! it): core's GCRA and policy table, with state in this process or in the database.

use std::collections::HashMap;
use std::sync::Mutex;

use tessera_core::ratelimit::{self, limit_key, Decision, GcraState, Quota, RouteClass};

use crate::clock::SharedClock;
use crate::services::ServiceError;
use crate::store::{DynStore, StoreError};

/// Rate limits: core's GCRA over state kept by a [`Backing`], on an injected clock.
pub struct Limiter {
    backing: Backing,
    clock: SharedClock,
    /// Every quota is multiplied by this (1; [`DEV_RELAXATION`] in development mode).
    relaxation: u32,
}

/// How much development mode (`TESSERA_DEV`) relaxes every limit: a developer trying sign-in,
/// registration and resets by hand must not meet the 5-a-minute credential quota.
pub const DEV_RELAXATION: u32 = 100;

/// Where the GCRA state lives.
pub enum Backing {
    /// One node: a map in memory, swept of idle keys as it grows.
    Memory(Mutex<MemoryState>),
    /// Several nodes: the global `rate_limits` table.
    Database(DynStore),
}

/// In-memory GCRA state. Idle keys (back at full capacity) carry no information and are
/// swept when the map reaches `sweep_at`; the threshold then doubles past what survived, so
/// sweeping costs amortised O(1) per request even when most keys are busy. Keys are held as
/// 16 bytes of their SHA-256 inside the table, not as strings: a flood of new client addresses
/// then costs no allocation per key, and the map's memory is its table alone.
pub struct MemoryState {
    keys: HashMap<[u8; 16], GcraState>,
    sweep_at: usize,
}

/// The smallest sweep threshold.
const SWEEP_AT: usize = 100_000;

impl Limiter {
    /// An in-memory limiter.
    #[must_use]
    pub fn memory(clock: SharedClock) -> Self {
        Self {
            backing: Backing::Memory(Mutex::new(MemoryState {
                keys: HashMap::new(),
                sweep_at: SWEEP_AT,
            })),
            clock,
            relaxation: 1,
        }
    }

    /// A limiter whose state is shared by every node through the database.
    #[must_use]
    pub fn database(store: DynStore, clock: SharedClock) -> Self {
        Self {
            backing: Backing::Database(store),
            clock,
            relaxation: 1,
        }
    }

    /// The same limiter with every quota multiplied by `factor` (development mode).
    #[must_use]
    pub fn relaxed(mut self, factor: u32) -> Self {
        self.relaxation = factor.max(1);
        self
    }

    fn scaled(&self, quota: Quota) -> Quota {
        Quota {
            limit: quota.limit.saturating_mul(self.relaxation),
            ..quota
        }
    }

    /// The store, when the state lives in the database (its idle rows need sweeping).
    #[must_use]
    pub fn shared_store(&self) -> Option<&DynStore> {
        match &self.backing {
            Backing::Database(store) => Some(store),
            Backing::Memory(_) => None,
        }
    }

    /// Charges one request of `class` to `subject` (an IP, or a tenant + email).
    pub async fn charge(
        &self,
        class: RouteClass,
        subject: &str,
    ) -> Result<Option<(Decision, Quota)>, StoreError> {
        let Some(quota) = class.quota().map(|q| self.scaled(q)) else {
            return Ok(None);
        };
        let decision = self.charge_key(limit_key(class, subject), quota).await?;
        Ok(Some((decision, quota)))
    }

    /// Charges one request to `subject` under a quota of its own (named `name` in the key),
    /// for limits that are not a route class's, such as resending a verification email.
    pub async fn charge_named(
        &self,
        name: &str,
        subject: &str,
        quota: Quota,
    ) -> Result<Decision, StoreError> {
        let digest = tessera_core::secret::sha256(subject.as_bytes());
        let key = format!("{name}:{}", tessera_core::secret::hex(&digest[..16]));
        self.charge_key(key, self.scaled(quota)).await
    }

    async fn charge_key(&self, key: String, quota: Quota) -> Result<Decision, StoreError> {
        let now = self.clock.now_millis();
        Ok(match &self.backing {
            Backing::Memory(state) => {
                let mut state = state
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if state.keys.len() >= state.sweep_at {
                    state.keys.retain(|_, gcra| !gcra.is_idle(now));
                    // A table emptied by `retain` keeps its size and its tombstones, which
                    // make it double later although it holds no more keys: start it afresh
                    // (seen as a one-time step of 8 MiB in the soak, with a new client address
                    // per request).
                    state.keys.shrink_to_fit();
                    state.sweep_at = (state.keys.len() * 2).max(SWEEP_AT);
                }
                let digest = tessera_core::secret::sha256(key.as_bytes());
                let mut id = [0; 16];
                id.copy_from_slice(&digest[..16]);
                let (decision, next) = ratelimit::check(state.keys.get(&id).copied(), now, quota);
                state.keys.insert(id, next);
                decision
            }
            Backing::Database(store) => store.rate_limit(&key, now, quota).await?,
        })
    }

    /// Charges `subject` against each of `quotas` in turn; the first refusal is
    /// `ServiceError::TooSoon` (and the later quotas are not charged).
    pub async fn enforce_quotas(
        &self,
        quotas: &[(&str, Quota)],
        subject: &str,
    ) -> Result<(), ServiceError> {
        for (name, quota) in quotas {
            let decision = self.charge_named(name, subject, *quota).await?;
            if let Some(retry_after_secs) = decision.retry_after_secs() {
                return Err(ServiceError::TooSoon { retry_after_secs });
            }
        }
        Ok(())
    }

    /// Charges `subject`; a refusal is `ServiceError::RateLimited`.
    pub async fn enforce(&self, class: RouteClass, subject: &str) -> Result<(), ServiceError> {
        match self.charge(class, subject).await? {
            Some((decision @ Decision::Limited { .. }, quota)) => Err(ServiceError::RateLimited {
                class,
                decision,
                quota,
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tessera_core::ratelimit::Quota;

    use super::{Backing, Limiter, SWEEP_AT};
    use crate::clock::ManualClock;

    /// A new client address per request, for longer than many sweeps: the map's table never
    /// grows past what `SWEEP_AT` keys need.
    #[tokio::test]
    async fn the_memory_map_stays_bounded_under_endless_new_addresses() {
        let clock = Arc::new(ManualClock::starting_now());
        let limiter = Limiter::memory(clock.clone());
        let quota = Quota::per_minute(30);
        for n in 0..(SWEEP_AT * 6) {
            limiter
                .charge_key(format!("public:{n}"), quota)
                .await
                .unwrap();
            // 650 requests a second, as in the soak: each key idle 2 s after its request.
            if n % 65 == 0 {
                clock.advance(std::time::Duration::from_millis(100));
            }
        }
        let Backing::Memory(state) = &limiter.backing else {
            unreachable!()
        };
        let capacity = state.lock().unwrap().keys.capacity();
        assert!(capacity < SWEEP_AT * 2, "capacity {capacity}");
    }
}

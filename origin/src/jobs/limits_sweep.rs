//! Deletes idle rows of the shared rate-limit table: every client address ever seen would
//! otherwise leave a row behind. An idle row (back at full capacity) decides nothing, so
//! deleting it changes no decision.

use std::time::Duration;

use super::Jobs;
use crate::state::AppState;

pub(super) fn start(jobs: &mut Jobs, state: &AppState) {
    let Some(store) = state.limiter.shared_store().cloned() else {
        return;
    };
    let clock = state.clock.clone();
    let every = Duration::from_secs(state.config.rate_limit_sweep_secs);
    jobs.every("limits_sweep", every, move || {
        let (store, clock) = (store.clone(), clock.clone());
        async move {
            match store.sweep_rate_limits(clock.now_millis()).await {
                Ok(0) => {}
                Ok(swept) => tracing::debug!(swept, "idle rate-limit rows swept"),
                Err(error) => tracing::error!(%error, "rate-limit sweep failed"),
            }
        }
    });
}

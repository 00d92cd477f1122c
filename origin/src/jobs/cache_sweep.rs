//! Sweeps the session cache and the verified-token cache every `TESSERA_CACHE_SWEEP_SECS`:
//! their entries outlive their use (a session entry is answered for one second, a token until
//! it expires), and without the sweep they would hold memory until capacity evicted them, so
//! memory would follow how many sessions and tokens were ever seen rather than how many are in
//! use. The gauges `tessera_session_cache_entries` and `tessera_token_cache_entries` show the
//! sizes after each sweep.

use std::time::Duration;

use super::Jobs;
use crate::state::AppState;

pub(super) fn start(jobs: &mut Jobs, state: &AppState) {
    let authenticate = state.services.authenticate.clone();
    let every = Duration::from_secs(state.config.cache_sweep_secs);
    jobs.every("cache_sweep", every, move || {
        let authenticate = authenticate.clone();
        async move {
            let (sessions, tokens) = authenticate.sweep_caches();
            #[allow(clippy::cast_precision_loss)] // Entry counts are far below 2^52.
            {
                metrics::gauge!("tessera_session_cache_entries").set(sessions as f64);
                metrics::gauge!("tessera_token_cache_entries").set(tokens as f64);
            }
        }
    });
}

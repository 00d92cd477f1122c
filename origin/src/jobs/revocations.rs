//! The revocation log's two readers on this node, and its sweep:
//!
//! - `revocation_index`: reads what other nodes and the CLI wrote into this node's index, every
//!   `TESSERA_REVOCATION_POLL_MS` and whenever this process writes to the log, and forgets the
//!   tenants deleted elsewhere in this node's tenant directory;
//! - `edge_feed` (with an edge configured): delivers the log to the edge from the position the
//!   edge last acknowledged, every second and whenever this process writes, retrying until the
//!   edge answers; an outage of the edge or a restart of the origin loses nothing;
//! - `revocation_sweep`: once a minute, forgets entries whose tokens have all expired, in the
//!   index and in the log.

use std::time::Duration;

use super::Jobs;
use crate::edge_push::EdgePush;
use crate::revocation_index::catch_up;
use crate::state::AppState;

pub(super) fn start(jobs: &mut Jobs, state: &AppState) {
    let wake = state.store.revocations_written();
    let poll = Duration::from_millis(state.config.revocation_poll_ms);
    let (store, index, directory, clock) = (
        state.store.clone(),
        state.revocation_index.clone(),
        state.tenants.clone(),
        state.clock.clone(),
    );
    jobs.woken_or_every("revocation_index", wake.clone(), poll, move || {
        let (store, index, directory, clock) = (
            store.clone(),
            index.clone(),
            directory.clone(),
            clock.clone(),
        );
        async move {
            let read = catch_up(&index, &store, Some(&directory), clock.now_secs()).await;
            if let Err(error) = read {
                tracing::warn!(%error, "reading the revocation log failed; retrying");
            }
        }
    });

    if let Some(edge) = EdgePush::from_config(&state.config) {
        let (store, clock) = (state.store.clone(), state.clock.clone());
        jobs.woken_or_every("edge_feed", wake, Duration::from_secs(1), move || {
            let (edge, store, clock) = (edge.clone(), store.clone(), clock.clone());
            async move {
                if let Err(error) = edge.deliver_pending(&store, clock.now_secs()).await {
                    tracing::warn!(%error, "revocations not yet delivered to the edge; retrying");
                }
            }
        });
    }

    let (store, index, clock) = (
        state.store.clone(),
        state.revocation_index.clone(),
        state.clock.clone(),
    );
    jobs.every("revocation_sweep", Duration::from_secs(60), move || {
        let (store, index, clock) = (store.clone(), index.clone(), clock.clone());
        async move {
            let now = clock.now_secs();
            index.sweep(now);
            if let Err(error) = store.delete_lapsed_revocations(now).await {
                tracing::warn!(%error, "sweeping the revocation log failed");
            }
            #[allow(clippy::cast_precision_loss)] // Entry counts are far below 2^52.
            metrics::gauge!("tessera_revocation_index_entries").set(index.len() as f64);
        }
    });
}

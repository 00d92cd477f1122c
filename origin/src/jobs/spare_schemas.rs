//! PostgreSQL: keeps `TESSERA_SPARE_SCHEMAS` tenant schemas made and migrated ahead, so that
//! creating a tenant (`tessera tenant create`, on any node) renames one instead of running the
//! tenant migrations' DDL while the operator waits. Runs at start-up, as soon as a creation on
//! this node takes a spare, and every minute for those taken by other nodes or the CLI.

use std::time::Duration;

use super::Jobs;
use crate::state::AppState;
use crate::store::Dialect;

/// How often the spares are counted, for those taken elsewhere.
const EVERY: Duration = Duration::from_secs(60);

pub(super) fn start(jobs: &mut Jobs, state: &AppState) {
    let wanted = state.config.spare_schemas;
    if state.store.dialect() != Dialect::Postgres || wanted == 0 {
        return;
    }
    let store = state.store.clone();
    let taken = store.spare_taken();
    jobs.woken_or_every("spare_schemas", taken, EVERY, move || {
        let store = store.clone();
        async move {
            match store.prepare_spare_schemas(wanted).await {
                Ok(0) => {}
                Ok(made) => tracing::debug!(made, "spare tenant schemas made"),
                Err(error) => tracing::warn!(%error, "making spare tenant schemas failed"),
            }
        }
    });
}

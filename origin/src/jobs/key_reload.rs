//! Reloads the signing keys, so that a key rotated elsewhere signs and verifies here too.

use std::time::Duration;

use super::Jobs;
use crate::keys::RELOAD_EVERY_SECS;
use crate::state::AppState;

pub(super) fn start(jobs: &mut Jobs, state: &AppState) {
    let keys = state.keys.clone();
    jobs.every(
        "key_reload",
        Duration::from_secs(RELOAD_EVERY_SECS),
        move || {
            let keys = keys.clone();
            async move {
                if let Err(error) = keys.reload().await {
                    tracing::error!(%error, "signing key reload failed");
                }
            }
        },
    );
}

//! Background jobs: one home for the origin's periodic work, each a loop that runs its task on
//! an interval until shutdown, then finishes the run in progress and stops.
//!
//! - `key_reload`: picks up signing keys rotated by another node or the CLI.
//! - `limits_sweep`: deletes idle shared rate-limit rows (database limits only).
//! - `mail`: delivers the transactional outbox: email, and webhooks (`webhooks`).
//! - `cache_sweep`: forgets expired entries of the session and verified-token caches.
//! - `spare_schemas`: keeps tenant schemas made ahead on PostgreSQL.
//! - `revocations`: feeds this node's revocation index and the edge from the revocation log.

mod cache_sweep;
mod key_reload;
mod limits_sweep;
pub mod mail;
mod revocations;
mod spare_schemas;
pub mod webhooks;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use crate::state::AppState;

/// The running jobs.
pub struct Jobs {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Jobs {
    /// Starts every job that `state`'s configuration calls for.
    #[must_use]
    pub fn start(state: &AppState) -> Self {
        let (stop, _) = watch::channel(false);
        let mut jobs = Self {
            stop,
            tasks: JoinSet::new(),
        };
        key_reload::start(&mut jobs, state);
        limits_sweep::start(&mut jobs, state);
        mail::start(&mut jobs, state);
        cache_sweep::start(&mut jobs, state);
        spare_schemas::start(&mut jobs, state);
        revocations::start(&mut jobs, state);
        jobs
    }

    /// Runs `task` at once, then whenever `wake` is notified and every `every`, until shutdown:
    /// for work that this node can start at once and that others' changes also call for.
    fn woken_or_every<F, Fut>(
        &mut self,
        name: &'static str,
        wake: Arc<Notify>,
        every: Duration,
        mut task: F,
    ) where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let mut stop = self.stop.subscribe();
        self.tasks.spawn(async move {
            // An interval's first tick is at once.
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = wake.notified() => {}
                    _ = tick.tick() => {}
                    _ = stop.changed() => break,
                }
                task().await;
            }
            tracing::debug!(job = name, "stopped");
        });
    }

    /// Runs `task` every `every` (the first run after one interval) until shutdown.
    fn every<F, Fut>(&mut self, name: &'static str, every: Duration, mut task: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let mut stop = self.stop.subscribe();
        self.tasks.spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => task().await,
                    _ = stop.changed() => break,
                }
            }
            tracing::debug!(job = name, "stopped");
        });
    }

    /// Tells every job to stop and waits until each has finished its current run.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

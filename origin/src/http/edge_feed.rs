//! `GET /__tessera/revocations?after=N`: the edge's catch-up. The edge asks for every entry of
//! the revocation log after the last position it stored (when its feed object starts, and
//! every 30 s), so that even an edge that lost its state, or missed deliveries for any length
//! of time, ends up refusing every revoked session. Only the edge secret opens it; without it
//! the path does not exist (404), as at the edge.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use axum::Router;
use serde::Deserialize;
use tessera_core::edge::{Revocation, RevocationBatch, REVOCATIONS_PATH};

use super::problem::ApiError;
use crate::state::AppState;

/// Entries per answer; the edge asks again from `through` while an answer is full.
#[allow(clippy::cast_possible_wrap)] // 500.
const BATCH: i64 = tessera_core::edge::REVOCATION_BATCH as i64;

/// The route.
pub fn router() -> Router<AppState> {
    Router::new().route(REVOCATIONS_PATH, axum::routing::get(catch_up))
}

/// The query.
#[derive(Debug, Deserialize)]
pub struct After {
    /// The last log position the edge has.
    #[serde(default)]
    pub after: i64,
}

async fn catch_up(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(After { after }): Query<After>,
) -> Result<Json<RevocationBatch>, ApiError> {
    if !super::middleware::from_the_edge(&headers, &state.config) {
        return Err(ApiError::not_found().detail("No such route."));
    }
    let entries = state
        .store
        .revocations_after(after.max(0), state.clock.now_secs(), BATCH)
        .await?;
    // With nothing left to give, the edge is up to date with the log's end: entries that lapsed
    // need not be fetched again.
    let through = match entries.last() {
        Some(last) => last.position,
        None => state.store.revocation_log_end().await?.max(after),
    };
    Ok(Json(RevocationBatch {
        through,
        revocations: entries
            .into_iter()
            .map(|e| Revocation {
                tenant: e.tenant,
                session: e.subject,
                until: u64::try_from(e.until).unwrap_or(0),
            })
            .collect(),
    }))
}

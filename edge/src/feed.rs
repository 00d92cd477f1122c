//! The edge's catch-up on the origin's revocation log. One `RevocationFeed` Durable Object
//! keeps the last log position this edge has stored and asks the origin for everything after
//! it (`GET /__tessera/revocations?after=N` with the edge secret): when an isolate starts (its
//! first request waits for it, so a fresh edge refuses what was revoked before it existed), and
//! every [`EVERY_MS`] after. The origin also delivers new entries as they are written; this
//! is what makes an outage of any length, or an edge that lost its state, lose nothing.

use std::cell::Cell;

use tessera_core::edge::{RevocationBatch, EDGE_SECRET, REVOCATIONS_PATH, REVOCATION_BATCH};
use worker::{
    console_warn, durable_object, Date, DurableObject, Env, Headers, Method, Request, RequestInit,
    Response, Result, State,
};

use crate::forward::{self, Incoming};
use crate::revocations;

/// The binding name in wrangler.toml.
pub const BINDING: &str = "REVOCATION_FEED";

/// How often the feed asks the origin even when nothing woke it.
pub const EVERY_MS: i64 = 30_000;

thread_local! {
    /// Whether this isolate has asked the feed to catch up since it started.
    static STARTED: Cell<bool> = const { Cell::new(false) };
}

/// On an isolate's first request: has the feed catch up before going on. Failures are logged;
/// the request goes on with the revocations the edge already holds.
pub async fn on_isolate_start(env: &Env) {
    if STARTED.with(|started| started.replace(true)) {
        return;
    }
    let outcome = async {
        let stub = env.durable_object(BINDING)?.get_by_name("feed")?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post);
        let request = Request::new_with_init("https://feed/sync", &init)?;
        stub.fetch_with_request(request).await
    }
    .await;
    if let Err(error) = outcome {
        console_warn!("revocation catch-up failed: {error}");
    }
}

/// The feed: the stored position and the catch-up loop.
#[durable_object]
pub struct RevocationFeed {
    state: State,
    env: Env,
}

impl DurableObject for RevocationFeed {
    fn new(state: State, env: Env) -> Self {
        Self { state, env }
    }

    async fn fetch(&self, _req: Request) -> Result<Response> {
        self.catch_up_and_schedule().await?;
        Response::empty()
    }

    async fn alarm(&self) -> Result<Response> {
        self.catch_up_and_schedule().await?;
        Response::empty()
    }
}

impl RevocationFeed {
    async fn catch_up_and_schedule(&self) -> Result<()> {
        if let Err(error) = self.catch_up().await {
            console_warn!("revocation catch-up failed, retrying in 30 s: {error}");
        }
        let next = i64::try_from(Date::now().as_millis()).unwrap_or(i64::MAX) + EVERY_MS;
        self.state.storage().set_alarm(next).await
    }

    /// Asks the origin for every entry after the stored position, stores each, then the new
    /// position (so a failure part-way asks again from the last stored batch).
    async fn catch_up(&self) -> Result<()> {
        let config = crate::config(&self.env).map_err(worker::Error::RustError)?;
        let storage = self.state.storage();
        // Stored as f64: positions are far below 2^53.
        let mut position = storage.get::<f64>("position").await?.map_or(0, f64_to_i64);
        loop {
            let incoming = Incoming {
                method: Method::Get,
                path_and_query: format!("{REVOCATIONS_PATH}?after={position}"),
                headers: Headers::new(),
                body: Vec::new(),
            };
            let extra = [(EDGE_SECRET, config.edge_secret.clone())];
            let mut response = forward::send(&config.origin_url, &incoming, &extra).await?;
            if response.status_code() != 200 {
                return Err(worker::Error::RustError(format!(
                    "the origin answered {}",
                    response.status_code()
                )));
            }
            let batch: RevocationBatch = response.json().await?;
            for revocation in &batch.revocations {
                revocations::revoke(&self.env, revocation).await?;
            }
            if batch.through > position {
                position = batch.through;
                #[allow(clippy::cast_precision_loss)] // Far below 2^53.
                storage.put("position", position as f64).await?;
            }
            if batch.revocations.len() < REVOCATION_BATCH {
                return Ok(());
            }
        }
    }
}

#[allow(clippy::cast_possible_truncation)]
fn f64_to_i64(value: f64) -> i64 {
    // Values come from `as f64` of a whole position.
    value.max(0.0) as i64
}

//! Revoked sessions at the edge: one Durable Object per session holds "refuse its tokens until
//! T". The origin delivers its revocation log here (in batches, until acknowledged); sign-outs that pass through the edge are recorded on
//! the way. Each isolate remembers a "not revoked" answer for at most [`NEGATIVE_TTL_MS`], which
//! bounds how late a revocation can take effect at the edge; a revocation is remembered until
//! it lapses.

use std::cell::RefCell;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tessera_core::edge::{Revocation, RevocationBatch, EDGE_SECRET};
use tessera_core::jwt::AccessClaims;
use tessera_core::secret::ct_eq;
use worker::{
    console_warn, durable_object, Date, DurableObject, Env, Method, Request, RequestInit, Response,
    Result, State,
};

use crate::config::Config;
use crate::forward::Incoming;
use crate::problem::problem;

/// The binding name in wrangler.toml.
pub const BINDING: &str = "REVOCATIONS";

/// How long an isolate trusts a "not revoked" answer: the edge refuses a revoked session's
/// tokens at most this long after the revocation reached the Durable Object.
pub const NEGATIVE_TTL_MS: u64 = 1_000;

#[derive(Serialize, Deserialize)]
struct Until {
    until: u64,
}

/// One session's revocation.
#[durable_object]
pub struct SessionRevocation {
    state: State,
}

impl DurableObject for SessionRevocation {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let storage = self.state.storage();
        let stored = storage.get::<f64>("until").await?.unwrap_or(0.0);
        if req.method() == Method::Post {
            let Until { until } = req.json().await?;
            #[allow(clippy::cast_precision_loss)] // Unix seconds are far below 2^53.
            let until = (until as f64).max(stored);
            storage.put("until", until).await?;
            #[allow(clippy::cast_possible_truncation)]
            storage.set_alarm((until * 1000.0) as i64).await?;
            return Response::from_json(&Until { until: secs(until) });
        }
        Response::from_json(&Until {
            until: secs(stored),
        })
    }

    async fn alarm(&self) -> Result<Response> {
        self.state.storage().delete_all().await?;
        Response::empty()
    }
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn secs(value: f64) -> u64 {
    value.max(0.0) as u64
}

thread_local! {
    /// Per isolate: session key → (when asked, revoked until).
    static SEEN: RefCell<HashMap<String, (u64, u64)>> = RefCell::new(HashMap::new());
}

fn object_name(tenant: &str, session: &str) -> String {
    format!("{tenant}:{session}")
}

async fn call(env: &Env, name: &str, until: Option<u64>) -> Result<u64> {
    let stub = env.durable_object(BINDING)?.get_by_name(name)?;
    let mut init = RequestInit::new();
    if let Some(until) = until {
        init.with_method(Method::Post)
            .with_body(Some(serde_json::to_string(&Until { until })?.into()));
    }
    let request = Request::new_with_init("https://revocations/session", &init)?;
    let Until { until } = stub.fetch_with_request(request).await?.json().await?;
    Ok(until)
}

/// Records a revocation.
pub async fn revoke(env: &Env, revocation: &Revocation) -> Result<()> {
    let name = object_name(&revocation.tenant, &revocation.session);
    let until = call(env, &name, Some(revocation.until)).await?;
    SEEN.with(|seen| {
        seen.borrow_mut()
            .insert(name, (Date::now().as_millis(), until))
    });
    Ok(())
}

/// Whether the session's tokens are refused at `now_secs`.
pub async fn is_revoked(env: &Env, tenant: &str, session: &str, now_secs: u64) -> Result<bool> {
    let name = object_name(tenant, session);
    let now_ms = Date::now().as_millis();
    let cached = SEEN.with(|seen| seen.borrow().get(&name).copied());
    if let Some((asked_ms, until)) = cached {
        if until > now_secs || now_ms.saturating_sub(asked_ms) < NEGATIVE_TTL_MS {
            return Ok(until > now_secs);
        }
    }
    let until = call(env, &name, None).await?;
    SEEN.with(|seen| {
        let mut seen = seen.borrow_mut();
        if seen.len() > 50_000 {
            seen.clear();
        }
        seen.insert(name, (now_ms, until));
    });
    Ok(until > now_secs)
}

/// The origin's revocation push (`POST /__tessera/revocations` with the edge secret); anything
/// else on that path is a 404, as if it did not exist.
pub async fn receive(env: &Env, config: &Config, incoming: &Incoming) -> Result<Response> {
    let presented = incoming.headers.get(EDGE_SECRET)?.unwrap_or_default();
    if incoming.method != Method::Post
        || !ct_eq(presented.as_bytes(), config.edge_secret.as_bytes())
    {
        return problem(404, "not_found", "Not found", None);
    }
    // A batch from the origin's revocation log; the 204 acknowledges it, and only once every
    // entry is stored (an error answers 500, and the origin delivers the batch again).
    let revocations = match serde_json::from_slice::<RevocationBatch>(&incoming.body) {
        Ok(batch) => batch.revocations,
        Err(_) => match serde_json::from_slice::<Revocation>(&incoming.body) {
            Ok(one) => vec![one],
            Err(_) => {
                return problem(
                    400,
                    "invalid_request",
                    "Bad request",
                    Some("Expected {through, revocations: [{tenant, session, until}]}."),
                )
            }
        },
    };
    for revocation in &revocations {
        revoke(env, revocation).await?;
    }
    Ok(Response::empty()?.with_status(204))
}

/// Records a sign-out that passed through the edge, so that this edge refuses the session's
/// tokens at once, even before the origin's push arrives.
pub async fn record_sign_out(env: &Env, claims: &AccessClaims) {
    let now = Date::now().as_millis() / 1000;
    let revocation = Revocation::ended_at(&claims.tid, &claims.sid, now);
    if let Err(error) = revoke(env, &revocation).await {
        console_warn!("recording a sign-out failed: {error}");
    }
}

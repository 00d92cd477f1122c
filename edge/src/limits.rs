//! Rate limits with Durable Objects: one object per limit key runs core's GCRA on its stored
//! state, so a limit holds across every isolate and location (Durable Objects are single-
//! threaded and strongly consistent).

use std::cell::Cell;

use serde::{Deserialize, Serialize};
use tessera_core::model::TenantSlug;
use tessera_core::policy::{AccountField, Route};
use tessera_core::ratelimit::{self, ip_subject, Decision, GcraState, Quota, RouteClass};
use worker::{
    console_error, console_warn, durable_object, Date, DurableObject, Env, Method, Request,
    RequestInit, Response, Result, State,
};

use crate::forward::Incoming;
use crate::problem::{problem, problem_body};
use tessera_core::api::Problem;

/// The binding name in wrangler.toml.
pub const BINDING: &str = "RATE_LIMITER";

#[derive(Serialize, Deserialize)]
struct Check {
    limit: u32,
    period_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct Outcome {
    allowed: bool,
    remaining: u32,
    retry_after_ms: u64,
    reset_after_ms: u64,
}

impl From<Decision> for Outcome {
    fn from(decision: Decision) -> Self {
        match decision {
            Decision::Allowed {
                remaining,
                reset_after_ms,
            } => Self {
                allowed: true,
                remaining,
                retry_after_ms: 0,
                reset_after_ms,
            },
            Decision::Limited {
                retry_after_ms,
                reset_after_ms,
            } => Self {
                allowed: false,
                remaining: 0,
                retry_after_ms,
                reset_after_ms,
            },
        }
    }
}

impl From<Outcome> for Decision {
    fn from(o: Outcome) -> Self {
        if o.allowed {
            Self::Allowed {
                remaining: o.remaining,
                reset_after_ms: o.reset_after_ms,
            }
        } else {
            Self::Limited {
                retry_after_ms: o.retry_after_ms,
                reset_after_ms: o.reset_after_ms,
            }
        }
    }
}

/// One limit key's GCRA state. The theoretical arrival time is kept in memory and in storage;
/// an alarm at that time deletes the state once the key is idle again.
#[durable_object]
pub struct RateLimiter {
    state: State,
    tat_ms: Cell<Option<u64>>,
}

impl DurableObject for RateLimiter {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            tat_ms: Cell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let check: Check = req.json().await?;
        let quota = Quota {
            limit: check.limit,
            period_ms: check.period_ms,
        };
        let now = Date::now().as_millis();
        let storage = self.state.storage();
        let stored = match self.tat_ms.get() {
            Some(tat) => Some(tat),
            // Stored as f64: milliseconds since 1970 are exact far below 2^53.
            None => storage.get::<f64>("tat").await?.map(f64_to_u64),
        };
        let (decision, next) =
            ratelimit::check(stored.map(|tat_ms| GcraState { tat_ms }), now, quota);
        if stored != Some(next.tat_ms) {
            storage.put("tat", next.tat_ms as f64).await?;
            self.tat_ms.set(Some(next.tat_ms));
            storage
                .set_alarm(i64::try_from(next.tat_ms).unwrap_or(i64::MAX))
                .await?;
        }
        Response::from_json(&Outcome::from(decision))
    }

    async fn alarm(&self) -> Result<Response> {
        let idle = self
            .tat_ms
            .get()
            .is_none_or(|tat| GcraState { tat_ms: tat }.is_idle(Date::now().as_millis()));
        if idle {
            self.state.storage().delete_all().await?;
            self.tat_ms.set(None);
        }
        Response::empty()
    }
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn f64_to_u64(value: f64) -> u64 {
    // Values come from `as f64` of a u64 millisecond count, so they are whole and in range.
    value.max(0.0) as u64
}

/// Charges one request to `key` under `quota`.
pub async fn charge(env: &Env, key: &str, quota: Quota) -> Result<Decision> {
    let stub = env.durable_object(BINDING)?.get_by_name(key)?;
    let body = serde_json::to_string(&Check {
        limit: quota.limit,
        period_ms: quota.period_ms,
    })?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(body.into()));
    let request = Request::new_with_init("https://rate-limiter/check", &init)?;
    let mut response = stub.fetch_with_request(request).await?;
    let outcome: Outcome = response.json().await?;
    Ok(outcome.into())
}

/// The account a credential or code request names, read from the one field its row in core's
/// table says names it, in a JSON body or a form (`served`: the tenant the request names, or
/// the default tenant).
fn account_of(field: AccountField, served: &TenantSlug, incoming: &Incoming) -> Option<String> {
    field.subject(&tessera_core::policy::body_fields(&incoming.body), served)
}

/// Charges the request to its IP (and account, for credential classes). Returns the 429 or
/// 503 to answer instead of going on.
pub async fn enforce(
    env: &Env,
    class: RouteClass,
    account: Option<(AccountField, &TenantSlug)>,
    client_ip: &str,
    ipv6_prefix: u8,
    incoming: &Incoming,
    voicestamp: bool,
) -> Result<Option<Response>> {
    let Some(quota) = class.quota() else {
        return Ok(None);
    };
    let mut subjects = vec![ip_subject(client_ip, ipv6_prefix)];
    if let (true, Some((field, served))) = (class.per_account(), account) {
        subjects.extend(account_of(field, served, incoming));
    }
    charge_all(env, class, quota, subjects, voicestamp).await
}

/// Charges a request that presented a verified token to the token's account (`tid`, `sub`),
/// where its row says so (`AccountField::BearerAccount`: the route checks a password or code
/// behind the token). Returns the 429 or 503 to answer instead of going on.
pub async fn enforce_bearer_account(
    env: &Env,
    route: &Route,
    tenant: &str,
    user: &str,
    voicestamp: bool,
) -> Result<Option<Response>> {
    let (Some(quota), true, Some(AccountField::BearerAccount)) = (
        route.class.quota(),
        route.class.per_account(),
        route.account,
    ) else {
        return Ok(None);
    };
    let subject = ratelimit::bearer_subject(tenant, user);
    charge_all(env, route.class, quota, vec![subject], voicestamp).await
}

/// Charges each subject in turn; the first refusal is the answer. Per-account classes fail
/// closed when the limiter is unreachable, others open.
async fn charge_all(
    env: &Env,
    class: RouteClass,
    quota: Quota,
    subjects: Vec<String>,
    voicestamp: bool,
) -> Result<Option<Response>> {
    for subject in subjects {
        match charge(env, &ratelimit::limit_key(class, &subject), quota).await {
            Ok(decision @ Decision::Limited { .. }) => {
                return Ok(Some(too_many(class, decision, quota, voicestamp)?))
            }
            Ok(Decision::Allowed { .. }) => {}
            Err(error) if class.per_account() => {
                console_error!(
                    "rate limiter unavailable, refusing {}: {error}",
                    class.name()
                );
                return Ok(Some(problem(
                    503,
                    "limiter_unavailable",
                    "Service unavailable",
                    None,
                )?));
            }
            Err(error) => console_warn!(
                "rate limiter unavailable, letting {} through: {error}",
                class.name()
            ),
        }
    }
    Ok(None)
}

fn too_many(
    class: RouteClass,
    decision: Decision,
    quota: Quota,
    voicestamp: bool,
) -> Result<Response> {
    let mut body = Problem::new(
        429,
        "rate_limited",
        "Too many requests",
        Some(&ratelimit::limited_detail(class, quota)),
    );
    if voicestamp {
        body = body.for_voicestamp();
    }
    let mut response = problem_body(&body)?;
    // The problem's headers are our own (mutable), unlike a fetched response's.
    let headers = response.headers_mut();
    headers.set(
        "retry-after",
        &decision.retry_after_secs().unwrap_or(1).max(1).to_string(),
    )?;
    for (name, value) in decision.headers(class.name(), quota) {
        headers.set(name, &value)?;
    }
    Ok(response)
}

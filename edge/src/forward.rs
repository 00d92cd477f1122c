//! Forwarding to the origin or to an application's upstream.

use std::time::Duration;

use futures_util::future::{select, Either};
use tessera_core::edge::is_owned_header;
use worker::{
    Delay, Fetch, Headers, Method, Request, RequestInit, RequestRedirect, Response, Result,
};

use crate::problem::problem;

/// How long the edge waits for an answer before giving up with 504.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// Request headers never passed on: hop-by-hop headers, the edge's own (which only the edge
/// may set), and client claims about the client's address.
const DROPPED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "host",
    "x-forwarded-for",
    "x-real-ip",
    "forwarded",
];

/// A request as received, with its body read once.
pub struct Incoming {
    /// Method.
    pub method: Method,
    /// Path and query, e.g. `/api/auth/login?x=1`.
    pub path_and_query: String,
    /// Headers as received.
    pub headers: Headers,
    /// The body (empty for GET and HEAD).
    pub body: Vec<u8>,
}

/// The body `send` passes on: none for `GET` and `HEAD`, what was received otherwise.
#[must_use]
pub fn forwarded_body(incoming: &Incoming) -> &[u8] {
    if matches!(incoming.method, Method::Get | Method::Head) {
        &[]
    } else {
        &incoming.body
    }
}

/// Sends `incoming` to `base` + its path, with the client's headers minus [`DROPPED`] and the
/// edge-owned ones, plus `extra`. Origin down → 502; no answer in time → 504.
pub async fn send(base: &str, incoming: &Incoming, extra: &[(&str, String)]) -> Result<Response> {
    let headers = Headers::new();
    for (name, value) in incoming.headers.entries() {
        let lower = name.to_ascii_lowercase();
        if !DROPPED.contains(&lower.as_str()) && !is_owned_header(&lower) {
            headers.append(&name, &value)?;
        }
    }
    for (name, value) in extra {
        headers.set(name, value)?;
    }
    let mut init = RequestInit::new();
    // A redirect is the client's to follow (the provider's answer to a sign-in is a redirect to
    // the application), never the edge's.
    init.with_method(incoming.method.clone())
        .with_headers(headers)
        .with_redirect(RequestRedirect::Manual);
    let body = forwarded_body(incoming);
    if !body.is_empty() {
        init.with_body(Some(js_sys::Uint8Array::from(body).into()));
    }
    let request = Request::new_with_init(&format!("{base}{}", incoming.path_and_query), &init)?;
    let fetch = Fetch::Request(request);
    let sent = Box::pin(fetch.send());
    let timeout = Box::pin(Delay::from(UPSTREAM_TIMEOUT));
    let outcome = select(sent, timeout).await;
    match outcome {
        Either::Left((Ok(response), _)) => Ok(response),
        Either::Left((Err(error), _)) => {
            worker::console_warn!("upstream {base} failed: {error}");
            problem(
                502,
                "upstream_unavailable",
                "Bad gateway",
                Some("The service behind the edge is unreachable."),
            )
        }
        Either::Right(_) => problem(
            504,
            "upstream_timeout",
            "Gateway timeout",
            Some("The service behind the edge did not answer in time."),
        ),
    }
}

//! Problem+json answers and the header policy, as the origin gives them, so that a client
//! cannot tell which half answered.

use tessera_core::api::Problem;
use tessera_core::headers::{ANSWER_MAY_SET, SECURITY_HEADERS, TOKEN_RESPONSE_HEADERS};
use worker::{Headers, Response, Result};

/// Builds a problem+json response with a stable `code`.
pub fn problem(status: u16, code: &str, title: &str, detail: Option<&str>) -> Result<Response> {
    problem_body(&Problem::new(status, code, title, detail))
}

/// The 503 for a revocation check that failed: a token is refused when its revocation cannot
/// be checked (logged with the cause).
pub fn revocations_unavailable(error: &worker::Error) -> Result<Response> {
    worker::console_error!("revocation check failed: {error}");
    problem(503, "revocations_unavailable", "Service unavailable", None)
}

/// A problem response from a prepared body (for `valid: false` and the like).
pub fn problem_body(body: &Problem) -> Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", "application/problem+json")?;
    if body.status == 401 {
        headers.set("www-authenticate", "Bearer realm=\"tessera\"")?;
    }
    Ok(Response::from_bytes(serde_json::to_vec(body)?)?
        .with_status(body.status)
        .with_headers(headers))
}

/// Returns the response with core's security headers, and `no-store` unless it chose its own
/// caching. Headers are copied into a fresh set: those of a fetched response are immutable.
pub fn secure(response: Response) -> Result<Response> {
    let headers = Headers::new();
    for (name, value) in response.headers().entries() {
        headers.append(&name, &value)?;
    }
    for (name, value) in SECURITY_HEADERS {
        if ANSWER_MAY_SET.contains(name) && headers.has(name)? {
            continue;
        }
        headers.set(name, value)?;
    }
    if !headers.has("cache-control")? {
        for (name, value) in TOKEN_RESPONSE_HEADERS {
            headers.set(name, value)?;
        }
    }
    Ok(response.with_headers(headers))
}

//! Application routes the edge guards (`ROUTES`): token policy here, then the application's
//! upstream, with the verified identity in headers signed with the edge's identity key over
//! the request as the upstream receives it (core's `identity`).

use tessera_core::edge;
use tessera_core::identity::{Identity, SignedRequest};
use tessera_core::policy::Credentials;
use worker::{Date, Env, Response, Result, Url};

use crate::auth::{authenticate, token_problem, Wording};
use crate::config::{AppRoute, RouteAuth};
use crate::forward::{self, Incoming};
use crate::service_tokens;
use crate::Config;

/// The bearer token a request presents, by kind.
pub struct Presented<'a> {
    /// An access (or session) token.
    pub jwt: Option<&'a str>,
    /// A service API token.
    pub service: Option<&'a str>,
    /// The client's IP, for the origin's quota when a service token is checked there.
    pub client_ip: &'a str,
}

/// The verified caller: a user's session, or a service token.
struct Caller {
    user: String,
    tenant: String,
    session: String,
}

/// Serves a request under a configured application route. A service token's identity names
/// the token's id as the user and `sk-<id>` as the session.
pub async fn app_route(
    env: &Env,
    config: &Config,
    route: &AppRoute,
    incoming: &Incoming,
    presented: Presented<'_>,
) -> Result<Response> {
    let wording = Wording::PLAIN;
    let caller = match (presented.jwt, presented.service) {
        (Some(token), _) => {
            match authenticate(env, config, token, Credentials::ACCESS, wording).await? {
                Ok(claims) => Some(Caller {
                    user: claims.sub,
                    tenant: claims.tid,
                    session: claims.sid,
                }),
                Err(refused) => return Ok(refused),
            }
        }
        (None, Some(token)) => {
            match service_tokens::check(env, config, token, presented.client_ip, wording).await? {
                Ok(answer) => Some(Caller {
                    session: edge::service_token_key(&answer.user.id),
                    user: answer.user.id,
                    tenant: answer.tenant,
                }),
                Err(refused) => return Ok(refused),
            }
        }
        (None, None) => None,
    };
    let mut extra = Vec::new();
    match (caller, route.auth) {
        (None, RouteAuth::Required) => {
            return token_problem(
                "missing_token",
                "Send Authorization: Bearer <access token>.",
                wording,
            );
        }
        (None, RouteAuth::Optional) => {}
        (Some(caller), _) => {
            // Checked at start-up: ROUTES cannot be set without the key.
            let Some(key) = &config.identity_key else {
                return crate::problem::problem(
                    503,
                    "edge_misconfigured",
                    "Service unavailable",
                    None,
                );
            };
            let timestamp = Date::now().as_millis() / 1000;
            // Signed as the upstream receives it: the URL forward::send fetches.
            let sent = Url::parse(&format!("{}{}", route.upstream, incoming.path_and_query))?;
            let host = match (sent.host_str(), sent.port()) {
                (Some(host), Some(port)) => format!("{host}:{port}"),
                (Some(host), None) => host.to_owned(),
                (None, _) => String::new(),
            };
            let path_and_query = match sent.query() {
                Some(query) => format!("{}?{query}", sent.path()),
                None => sent.path().to_owned(),
            };
            let request = SignedRequest {
                method: incoming.method.as_ref(),
                host: &host,
                path_and_query: &path_and_query,
                body: forward::forwarded_body(incoming),
            };
            let identity = Identity {
                user: &caller.user,
                tenant: &caller.tenant,
                session: &caller.session,
            };
            let signature = key.sign(request, identity, timestamp);
            extra.extend([
                (edge::USER, caller.user.clone()),
                (edge::TENANT, caller.tenant.clone()),
                (edge::SESSION, caller.session.clone()),
                (edge::TIMESTAMP, timestamp.to_string()),
                (edge::SIGNATURE, signature),
                (edge::KEY_ID, key.public().key_id()),
            ]);
        }
    }
    forward::send(&route.upstream, incoming, &extra).await
}

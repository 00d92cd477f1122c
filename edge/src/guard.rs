//! Application routes the edge guards (`ROUTES`): token policy here, then the application's
//! upstream, with the verified identity in headers signed with the edge secret.

use tessera_core::edge::{self, Identity};
use tessera_core::policy::Credentials;
use worker::{Date, Env, Response, Result};

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
            let timestamp = Date::now().as_millis() / 1000;
            let path = incoming
                .path_and_query
                .split('?')
                .next()
                .unwrap_or_default();
            let identity = Identity {
                user: &caller.user,
                tenant: &caller.tenant,
                session: &caller.session,
            };
            let signature = edge::identity_signature(
                config.edge_secret.as_bytes(),
                incoming.method.as_ref(),
                path,
                identity,
                timestamp,
            );
            extra.extend([
                (edge::USER, caller.user.clone()),
                (edge::TENANT, caller.tenant.clone()),
                (edge::SESSION, caller.session.clone()),
                (edge::TIMESTAMP, timestamp.to_string()),
                (edge::SIGNATURE, signature),
            ]);
        }
    }
    forward::send(&route.upstream, incoming, &extra).await
}

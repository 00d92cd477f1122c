//! Application routes the edge guards (`ROUTES`): token policy here, then the application's
//! upstream, with the verified identity in headers signed with the edge secret.

use tessera_core::edge::{self, Identity};
use worker::{Date, Env, Response, Result};

use crate::auth::{authenticate, token_problem};
use crate::config::{AppRoute, RouteAuth};
use crate::forward::{self, Incoming};
use crate::Config;

/// Serves a request under a configured application route.
pub async fn app_route(
    env: &Env,
    config: &Config,
    route: &AppRoute,
    incoming: &Incoming,
    bearer: Option<&str>,
) -> Result<Response> {
    let claims = match bearer {
        Some(token) => match authenticate(env, config, token, false).await? {
            Ok(claims) => Some(claims),
            Err(refused) => return Ok(refused),
        },
        None => None,
    };
    let mut extra = Vec::new();
    match (claims, route.auth) {
        (None, RouteAuth::Required) => {
            return token_problem(
                "missing_token",
                "Send Authorization: Bearer <access token>.",
                false,
            );
        }
        (None, RouteAuth::Optional) => {}
        (Some(claims), _) => {
            let timestamp = Date::now().as_millis() / 1000;
            let path = incoming
                .path_and_query
                .split('?')
                .next()
                .unwrap_or_default();
            let identity = Identity {
                user: &claims.sub,
                tenant: &claims.tid,
                session: &claims.sid,
            };
            let signature = edge::identity_signature(
                config.edge_secret.as_bytes(),
                incoming.method.as_ref(),
                path,
                identity,
                timestamp,
            );
            extra.extend([
                (edge::USER, claims.sub.clone()),
                (edge::TENANT, claims.tid.clone()),
                (edge::SESSION, claims.sid.clone()),
                (edge::TIMESTAMP, timestamp.to_string()),
                (edge::SIGNATURE, signature),
            ]);
        }
    }
    forward::send(&route.upstream, incoming, &extra).await
}

//! The OpenAPI 3 document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Tessera", description = "Multi-tenant authentication. Errors are RFC 9457 problem+json with a stable `code`."),
    paths(
        super::auth::login, super::auth::refresh, super::auth::logout, super::auth::verify,
        super::auth::me, super::auth::sessions, super::auth::end_session,
        super::account::register, super::account::verify_email, super::account::resend_verification,
        super::account::forgot_password, super::account::reset_password, super::account::email_code,
        super::account::email_code_verify, super::account::change_password,
        super::account::admin_sign_out,
        super::mfa::mfa_verify, super::mfa::mfa_email, super::mfa::totp_enroll, super::mfa::totp_confirm,
        super::mfa::recovery_codes, super::mfa::totp_disable,
        super::api_tokens::create, super::api_tokens::list, super::api_tokens::revoke,
        super::voicestamp::login, super::voicestamp::verify_code, super::voicestamp::verify,
        super::voicestamp::logout,
        super::team_vault::register, super::team_vault::login, super::team_vault::verify_email,
        super::team_vault::resend_email_verification, super::team_vault::refresh,
        super::team_vault::forgot_password, super::team_vault::reset_password,
        super::team_vault::forgot_password_two_s, super::team_vault::reset_password_two_s,
        super::team_vault::exist_email,
        super::backoffice::sign_in, super::backoffice::confirm, super::backoffice::refresh,
        super::backoffice::sign_out,
        super::ops::healthz, super::ops::readyz, super::ops::metrics, super::ops::jwks, super::ops::openapi,
    ),
    components(schemas(tessera_core::api::Problem)),
    modifiers(&BearerAuth, &CommonResponses),
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The answers any operation can give besides its own, documented on every operation they
/// apply to, so that the document lists every status the server really sends: 429 wherever a
/// rate limit applies, 503 wherever the database is asked, the body errors (400, 408, 413,
/// 415) wherever a JSON body is read, and 400/403 for a bad or foreign `X-Tenant` wherever a
/// bearer token is checked.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use tessera_core::ratelimit::{classify, RouteClass};
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build()
        };
        for (path, item) in &mut openapi.paths.paths {
            let methods = [
                ("GET", item.get.as_mut()),
                ("POST", item.post.as_mut()),
                ("PUT", item.put.as_mut()),
                ("DELETE", item.delete.as_mut()),
            ];
            for (method, operation) in methods {
                let Some(operation) = operation else { continue };
                let mut add = |status: &str, description: &str| {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| problem(description).into());
                };
                let class = classify(method, path);
                if class != RouteClass::Unmetered {
                    add("429", "Over the route class's rate limit; see Retry-After");
                }
                if !matches!(path.as_str(), "/healthz" | "/openapi.json") {
                    add(
                        "503",
                        "The database is unavailable or the service is busy; see Retry-After",
                    );
                }
                if operation.request_body.is_some() {
                    add("400", "Malformed JSON or a body of the wrong shape");
                    add("408", "The body did not arrive in time");
                    add("413", "The body is larger than 64 KiB");
                    add("415", "The body is not application/json");
                }
                if operation.security.is_some() {
                    add("400", "The X-Tenant header is not a valid tenant");
                    add("401", "Missing or invalid token");
                    add("403", "The request names another tenant than its token's");
                }
            }
        }
    }
}

/// The document.
#[must_use]
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

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
        super::mfa::mfa_verify, super::mfa::mfa_webauthn_options, super::mfa::mfa_email, super::mfa::totp_enroll, super::mfa::totp_confirm,
        super::mfa::recovery_codes, super::mfa::totp_disable,
        super::passkeys::list_passkeys, super::passkeys::passkey_register_options,
        super::passkeys::passkey_register, super::passkeys::passkey_login_options,
        super::passkeys::passkey_login, super::passkeys::rename_passkey,
        super::passkeys::remove_passkey,
        super::api_tokens::create, super::api_tokens::list, super::api_tokens::revoke,
        super::oidc_clients::create_client, super::oidc_clients::list_clients,
        super::oidc_clients::show_client, super::oidc_clients::update_client,
        super::oidc_clients::delete_client,
        super::users::import_users, super::users::delete_user, super::users::delete_me,
        super::users::list_users, super::users::create_user, super::users::get_user,
        super::users::update_user, super::users::disable_user, super::users::enable_user,
        super::users::sign_out_user, super::users::reset_user_mfa,
        super::admin::create_tenant, super::admin::list_tenants, super::admin::get_tenant,
        super::admin::update_tenant, super::admin::delete_tenant, super::admin::create_first_admin,
        super::oidc::discovery, super::oidc::provider_jwks, super::oidc::token,
        super::oidc::userinfo, super::oidc::userinfo_post, super::oidc::revoke,
        super::oidc::introspect,
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
    modifiers(&BearerAuth, &CommonResponses, &OperationsByApi, &TenantSlugs),
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
        // The operator API's: `tessera operator-token create` makes one (`tsr_op_…`).
        components.add_security_scheme(
            "operator",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("tsr_op_")
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

/// Every operation of the document, with its method (upper case) and path.
fn operations(
    openapi: &mut utoipa::openapi::OpenApi,
) -> impl Iterator<Item = (&'static str, &str, &mut utoipa::openapi::path::Operation)> {
    openapi.paths.paths.iter_mut().flat_map(|(path, item)| {
        [
            ("GET", item.get.as_mut()),
            ("POST", item.post.as_mut()),
            ("PUT", item.put.as_mut()),
            ("DELETE", item.delete.as_mut()),
            ("PATCH", item.patch.as_mut()),
        ]
        .into_iter()
        .filter_map(move |(method, operation)| operation.map(|op| (method, path.as_str(), op)))
    })
}

/// A documented problem+json answer.
fn problem(description: &str) -> utoipa::openapi::Response {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use tessera_core::ratelimit::{classify, RouteClass};
        for (method, path, operation) in operations(openapi) {
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
            if !matches!(path, "/healthz" | "/openapi.json") {
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

/// What core's table says of each operation: its id names its API (`team_vault_login`, not a
/// third `login`), and every operation of the four APIs declares the `X-Tenant` header, which
/// names the tenant wherever a request can (core's `tenant::named`), with the answers a bad,
/// conflicting or unknown tenant gets.
struct OperationsByApi;

impl Modify for OperationsByApi {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use tessera_core::policy::{lookup, Api};
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::Required;
        let tenant = ParameterBuilder::new()
            // core's TENANT_HEADER, spelled as the documents spell it (header names ignore case).
            .name("X-Tenant")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "The tenant (a slug) the request is for; otherwise a subdomain of the base \
                 domain, then the body's `tenant` where the API has one, then the default tenant.",
            ))
            .schema(Some(slug_shape(
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::Type::String)
                    .build(),
            )))
            .build();
        for (method, path, operation) in operations(openapi) {
            let api = lookup(method, path).api();
            if let Some(id) = operation.operation_id.as_mut() {
                *id = format!("{}_{id}", api.name());
            }
            // A provider's path names its tenant; the operator API is of no tenant.
            if !matches!(
                api,
                Api::Operations | Api::Internal | Api::Pages | Api::OpenId | Api::Operator
            ) {
                operation
                    .parameters
                    .get_or_insert_with(Vec::new)
                    .push(tenant.clone());
                for (status, description) in [
                    ("400", "X-Tenant is not a valid tenant (`invalid_tenant`)"),
                    (
                        "403",
                        "The request names two different tenants (`tenant_mismatch`)",
                    ),
                    (
                        "404",
                        "The named tenant does not exist (`tenant_not_found`)",
                    ),
                ] {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| problem(description).into());
                }
            }
        }
    }
}

/// A tenant slug's shape from core's rule ([`TENANT_SLUG_PATTERN`] and the length bounds), so
/// that generated requests name tenants the server can parse.
///
/// [`TENANT_SLUG_PATTERN`]: tessera_core::model::TENANT_SLUG_PATTERN
fn slug_shape(mut schema: utoipa::openapi::schema::Object) -> utoipa::openapi::schema::Object {
    use tessera_core::model::{TENANT_SLUG_MAX, TENANT_SLUG_MIN, TENANT_SLUG_PATTERN};
    schema.pattern = Some(TENANT_SLUG_PATTERN.to_owned());
    schema.min_length = Some(TENANT_SLUG_MIN);
    schema.max_length = Some(TENANT_SLUG_MAX);
    schema
}

/// Every body's `tenant` (and the operator API's `slug`) property has the slug's shape: one
/// rule, not a pattern per struct.
struct TenantSlugs;

impl Modify for TenantSlugs {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{RefOr, Schema};
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for schema in components.schemas.values_mut() {
            let RefOr::T(Schema::Object(object)) = schema else {
                continue;
            };
            for name in ["tenant", "slug"] {
                if let Some(RefOr::T(Schema::Object(tenant))) = object.properties.get_mut(name) {
                    *tenant = slug_shape(std::mem::take(tenant));
                }
            }
        }
    }
}

/// The document.
#[must_use]
pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = ApiDoc::openapi();
    // Relative: the server that serves the document serves the API (behind the edge too).
    document.servers = Some(vec![utoipa::openapi::server::Server::new("/")]);
    document
}

//! The rulebook: one row per route of every API, read by the edge and the origin alike.
//!
//! A row says everything both halves must agree on about a route: its method and path, its rate
//! class, which credentials it accepts, whose wording its errors use, which request field names
//! the account for per-account limits (only where that field means it), and whether it is a
//! verification or a sign-out. The edge's dispatch and limits, the origin's router, middleware
//! and fallbacks, and the OpenAPI document are derived from [`ROUTES`]; tests hold each of them
//! against it.

use crate::model::{Email, TenantSlug};
use crate::ratelimit::RouteClass;

/// Whose API a route belongs to, and so whose wording its errors use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    /// The canonical API (`/api/auth/*`): problem+json.
    Canonical,
    /// VoiceStamp v1 (`/api/v1/*`): problem+json that also says `success: false` and a
    /// `message`.
    VoiceStamp,
    /// The team/vault API (`/api/*`): problem+json.
    TeamVault,
    /// Back Office v2 (`/api/v2/*`): problem+json.
    BackOffice,
    /// The hosted pages for people: behind emailed links (`/auth/*`), and the OpenID
    /// provider's sign-in and logout (`/oidc/{tenant}/authorize…`, `…/end-session`): HTML.
    Pages,
    /// Each tenant's OpenID provider's endpoints for relying parties (`/oidc/{tenant}/*`):
    /// JSON, with OAuth 2.0 errors (`error`, `error_description`). Its sign-in page and logout
    /// are [`Api::Pages`].
    OpenId,
    /// The operator API (`/api/admin/*`): the platform's own backend manages tenants with an
    /// operator token; problem+json, of no tenant.
    Operator,
    /// Probes, keys and the API document.
    Operations,
    /// The contract between the two halves, opened only by the edge secret (the edge's
    /// catch-up on the revocation log): not for clients, not in the API document.
    Internal,
}

impl Api {
    /// The API's name as stored with the sessions it opens (`team_vault`, …).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Canonical => "canonical",
            Self::VoiceStamp => "voicestamp",
            Self::TeamVault => "team_vault",
            Self::BackOffice => "back_office",
            Self::Pages => "pages",
            Self::OpenId => "oidc",
            Self::Operator => "operator",
            Self::Operations => "operations",
            Self::Internal => "internal",
        }
    }

    /// Whether refusals are worded for VoiceStamp v1 clients (`success: false`, `message`).
    #[must_use]
    pub const fn voicestamp_wording(self) -> bool {
        matches!(self, Self::VoiceStamp)
    }

    /// The API a path that matches no route belongs to, for the wording of its 404 or 405: a
    /// VoiceStamp client reads every answer under its prefix as `{success, message}`.
    #[must_use]
    pub fn of_unknown_path(path: &str) -> Self {
        if path.starts_with("/api/v1/") {
            Self::VoiceStamp
        } else {
            Self::Canonical
        }
    }
}

/// The credentials a route accepts in `Authorization: Bearer`, as a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Credentials(u8);

impl Credentials {
    /// No bearer credential: a presented one is ignored by both halves.
    pub const NONE: Self = Self(0);
    /// A valid, unrestricted access token (JWT).
    pub const ACCESS: Self = Self(1);
    /// An access token restricted to enrolling a second factor (`scope: mfa_enroll`).
    pub const ENROL: Self = Self(1 << 1);
    /// An access token past its `exp`, while its session is active (renewal).
    pub const EXPIRED_ACCESS: Self = Self(1 << 2);
    /// A service API token (opaque, `tsr_sk_` prefix).
    pub const SERVICE: Self = Self(1 << 3);
    /// A VoiceStamp v1 session token (a JWT that lives as long as its 30-day session).
    pub const SESSION: Self = Self(1 << 4);
    /// An operator token (opaque, `tsr_op_` prefix): global, of no tenant; the origin judges
    /// it (the edge forwards it unread).
    pub const OPERATOR: Self = Self(1 << 5);

    /// The union of two sets.
    #[must_use]
    pub const fn or(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether every credential of `other` is in this set.
    #[must_use]
    pub const fn accepts(self, other: Self) -> bool {
        other.0 != 0 && self.0 & other.0 == other.0
    }

    /// Whether the route takes a JWT of any kind (access, enrol-only, expired, session).
    #[must_use]
    pub const fn takes_jwt(self) -> bool {
        self.0 & (Self::ACCESS.0 | Self::ENROL.0 | Self::EXPIRED_ACCESS.0 | Self::SESSION.0) != 0
    }

    /// Whether the route takes any bearer credential at all.
    #[must_use]
    pub const fn takes_bearer(self) -> bool {
        self.0 != 0
    }

    /// The names of the credentials in the set, for documents and test names.
    #[must_use]
    pub fn names(self) -> Vec<&'static str> {
        [
            (Self::ACCESS, "access"),
            (Self::ENROL, "enrol"),
            (Self::EXPIRED_ACCESS, "expired_access"),
            (Self::SERVICE, "service"),
            (Self::SESSION, "session"),
            (Self::OPERATOR, "operator"),
        ]
        .into_iter()
        .filter(|(c, _)| self.accepts(*c))
        .map(|(_, name)| name)
        .collect()
    }
}

/// The request field that names the account charged by per-account limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountField {
    /// The body's `email`, in the tenant of the body's `tenant` field, or the tenant the
    /// request names (or the default tenant) when the body names none (the canonical API).
    EmailInBodyTenant,
    /// The body's `email`, in the tenant the request names ([`crate::tenant::named`]) or the
    /// default tenant (the APIs whose bodies name no tenant).
    EmailInNamedTenant,
    /// An MFA challenge token in the body field of this name: its tenant and account tag.
    MfaChallenge(&'static str),
    /// A passkey ceremony token in the body field of this name: its tenant and account tag.
    Ceremony(&'static str),
    /// The form's `email`, in the tenant of the path (`/oidc/{tenant}/…`): the hosted sign-in
    /// page.
    EmailInPathTenant,
    /// The OpenID client named by the form's `client_id`, in the tenant of the path: the token
    /// endpoint. A client that authenticates with HTTP Basic is charged by the origin only.
    ClientInPathTenant,
    /// The account of the bearer token (its tenant and user), for routes that check a password
    /// or code behind a token: one stolen token spread over many addresses still gets its
    /// class's few guesses a minute. Charged once the token has verified
    /// ([`crate::ratelimit::bearer_subject`]), never from the body.
    BearerAccount,
}

impl AccountField {
    /// The per-account limit subject a body (JSON, or a form read by [`body_fields`]) names
    /// under this field, if it names one. `served` is the tenant the request names outside its
    /// body (for `/oidc/{tenant}/…`, its path: [`path_tenant`]), or the default tenant.
    /// [`Self::BearerAccount`] is named by the token, not the body: `None` here.
    #[must_use]
    pub fn subject(self, body: &serde_json::Value, served: &TenantSlug) -> Option<String> {
        let text = |name: &str| body.get(name).and_then(serde_json::Value::as_str);
        match self {
            Self::EmailInPathTenant => {
                let email = Email::parse(text("email")?).ok()?;
                Some(crate::ratelimit::account_subject(served, &email))
            }
            Self::ClientInPathTenant => Some(crate::ratelimit::client_subject(
                served,
                text("client_id").filter(|id| !id.is_empty() && id.len() <= 128)?,
            )),
            Self::BearerAccount => None,
            Self::MfaChallenge(field) => crate::ratelimit::mfa_account_subject(text(field)?),
            Self::Ceremony(field) => crate::ratelimit::ceremony_account_subject(text(field)?),
            Self::EmailInBodyTenant => {
                let email = Email::parse(text("email")?).ok()?;
                let tenant = match text("tenant") {
                    Some(tenant) => TenantSlug::parse(tenant).ok()?,
                    None => served.clone(),
                };
                Some(crate::ratelimit::account_subject(&tenant, &email))
            }
            Self::EmailInNamedTenant => {
                let email = Email::parse(text("email")?).ok()?;
                Some(crate::ratelimit::account_subject(served, &email))
            }
        }
    }
}

/// What a route does that the edge must know beyond forwarding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Nothing special.
    Other,
    /// Answers whether the presented token is valid (the edge answers it alone for JWTs).
    Verify,
    /// Ends the presenting token's session (the edge records it on the way back).
    SignOut,
}

/// One route: everything both halves must agree on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Route {
    /// The HTTP method, upper case.
    pub method: &'static str,
    /// The path; a segment `{name}` matches any one non-empty segment (axum's syntax).
    pub path: &'static str,
    /// The rate class.
    pub class: RouteClass,
    /// The bearer credentials it accepts.
    pub accepts: Credentials,
    /// Whose API it belongs to (and so its wording).
    pub api: Api,
    /// The field naming the account for per-account limits, where the class has them.
    pub account: Option<AccountField>,
    /// Verification, sign-out or neither.
    pub purpose: Purpose,
    /// The largest request body either half reads for it, in bytes.
    pub max_body: usize,
}

/// The body limit of the bulk routes (a user import): 8 MiB, some 30,000 users a request.
pub const BULK_BODY_BYTES: usize = 8 * 1024 * 1024;

/// A request body's fields: a JSON document as it is, or an `application/x-www-form-urlencoded`
/// form as an object of strings (the OpenID provider's forms), so that one [`AccountField`]
/// reads either.
#[must_use]
pub fn body_fields(body: &[u8]) -> serde_json::Value {
    if let Ok(json) = serde_json::from_slice(body) {
        return json;
    }
    let fields = url::form_urlencoded::parse(body)
        .map(|(name, value)| {
            (
                name.into_owned(),
                serde_json::Value::String(value.into_owned()),
            )
        })
        .collect();
    serde_json::Value::Object(fields)
}

/// The tenant a provider path names (`/oidc/{tenant}/…`), if it is a valid slug.
#[must_use]
pub fn path_tenant(path: &str) -> Option<TenantSlug> {
    let rest = path
        .strip_prefix(crate::oidc::PATH_PREFIX)?
        .strip_prefix('/')?;
    TenantSlug::parse(rest.split('/').next()?).ok()
}

const fn row(method: &'static str, path: &'static str, class: RouteClass, api: Api) -> Route {
    Route {
        method,
        path,
        class,
        accepts: Credentials::NONE,
        api,
        account: None,
        purpose: Purpose::Other,
        max_body: crate::api::MAX_BODY_BYTES,
    }
}

impl Route {
    const fn accepting(mut self, accepts: Credentials) -> Self {
        self.accepts = accepts;
        self
    }

    const fn account(mut self, field: AccountField) -> Self {
        self.account = Some(field);
        self
    }

    const fn purpose(mut self, purpose: Purpose) -> Self {
        self.purpose = purpose;
        self
    }

    const fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Whether `path` (without query, without trailing slash) is this route's path.
    #[must_use]
    pub fn matches_path(&self, path: &str) -> bool {
        path_matches(self.path, path)
    }

    /// The path with each `{name}` segment replaced by `value`, for tests and examples.
    #[must_use]
    pub fn example_path(&self, value: &str) -> String {
        self.path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    value
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }
}

use AccountField::{
    BearerAccount, Ceremony, ClientInPathTenant, EmailInBodyTenant, EmailInNamedTenant,
    EmailInPathTenant, MfaChallenge,
};
use Api::{
    BackOffice, Canonical, Internal, OpenId, Operations, Operator, Pages, TeamVault, VoiceStamp,
};
use Purpose::{SignOut, Verify};
use RouteClass::{CodeConfirm, Credential, Public, Refresh, Unmetered};

const ACCESS: Credentials = Credentials::ACCESS;
const ENROL: Credentials = Credentials::ACCESS.or(Credentials::ENROL);
const RENEWAL: Credentials = Credentials::ACCESS.or(Credentials::EXPIRED_ACCESS);
const VERIFY: Credentials = Credentials::ACCESS
    .or(Credentials::SERVICE)
    .or(Credentials::SESSION);
const SESSION: Credentials = Credentials::ACCESS.or(Credentials::SESSION);
/// A tenant's admins (their access token) and its services (a token with a `users:*` scope).
const TENANT_ADMIN: Credentials = Credentials::ACCESS.or(Credentials::SERVICE);
const OPERATOR: Credentials = Credentials::OPERATOR;

/// Every route Tessera serves, with its policy. Paths are spelled as the APIs' documents spell
/// them (`passsword` included; the two-s spellings answer too).
pub const ROUTES: &[Route] = &[
    // Operations.
    row("GET", "/healthz", Unmetered, Operations),
    row("GET", "/readyz", Unmetered, Operations),
    // Behind a token (or a loopback listener), yet charged: a guess at the token costs a quota.
    row("GET", "/metrics", Public, Operations),
    row(
        "GET",
        "/.well-known/jwks.json",
        RouteClass::Verify,
        Operations,
    ),
    row("GET", "/openapi.json", Public, Operations),
    // The edge's catch-up on the revocation log: the edge secret opens it, and no per-IP quota
    // may ever hold the edge back from it.
    row("GET", crate::edge::REVOCATIONS_PATH, Unmetered, Internal),
    // The canonical API.
    row("POST", "/api/auth/login", Credential, Canonical).account(EmailInBodyTenant),
    row("POST", "/api/auth/refresh", Refresh, Canonical),
    row("POST", "/api/auth/logout", Public, Canonical)
        .accepting(ACCESS)
        .purpose(SignOut),
    row("GET", "/api/auth/verify", RouteClass::Verify, Canonical)
        .accepting(VERIFY)
        .purpose(Verify),
    row("GET", "/api/auth/me", Public, Canonical).accepting(ACCESS),
    row("GET", "/api/auth/sessions", Public, Canonical).accepting(ACCESS),
    row("DELETE", "/api/auth/sessions/{id}", Public, Canonical).accepting(ACCESS),
    row("POST", "/api/auth/register", Credential, Canonical).account(EmailInBodyTenant),
    row("POST", "/api/auth/verify-email", CodeConfirm, Canonical),
    row(
        "POST",
        "/api/auth/resend-verification",
        Credential,
        Canonical,
    )
    .accepting(ACCESS)
    .account(BearerAccount),
    row("POST", "/api/auth/forgot-password", Credential, Canonical).account(EmailInBodyTenant),
    row("POST", "/api/auth/reset-password", Credential, Canonical),
    row("POST", "/api/auth/email-code", Credential, Canonical).account(EmailInBodyTenant),
    row(
        "POST",
        "/api/auth/email-code/verify",
        CodeConfirm,
        Canonical,
    )
    .account(EmailInBodyTenant),
    row("POST", "/api/auth/password", Credential, Canonical)
        .accepting(ACCESS)
        .account(BearerAccount),
    row("POST", "/api/auth/admin/sign-out", Public, Canonical).accepting(ACCESS),
    row("POST", "/api/auth/mfa/verify", CodeConfirm, Canonical).account(MfaChallenge("mfa_token")),
    row(
        "POST",
        "/api/auth/mfa/webauthn/options",
        CodeConfirm,
        Canonical,
    )
    .account(MfaChallenge("mfa_token")),
    // Passkeys. Adding one is a change of factors (the password is checked behind the token,
    // the enrol-only token of a tenant that requires a second factor may add its first);
    // signing in with one is a credential like a password, limited per account too.
    row("GET", "/api/auth/passkeys", Public, Canonical).accepting(ACCESS),
    row(
        "POST",
        "/api/auth/passkeys/register/options",
        Credential,
        Canonical,
    )
    .accepting(ENROL)
    .account(BearerAccount),
    row("POST", "/api/auth/passkeys/register", Credential, Canonical)
        .accepting(ENROL)
        .account(BearerAccount),
    row(
        "POST",
        "/api/auth/passkeys/login/options",
        Credential,
        Canonical,
    )
    .account(EmailInBodyTenant),
    row("POST", "/api/auth/passkeys/login", Credential, Canonical).account(Ceremony("ceremony")),
    row("PATCH", "/api/auth/passkeys/{id}", Public, Canonical).accepting(ACCESS),
    row("DELETE", "/api/auth/passkeys/{id}", Credential, Canonical)
        .accepting(ACCESS)
        .account(BearerAccount),
    // Every change of second factors checks the password (and a code, where it says so) behind
    // the token: limited per account of the token as well as per IP.
    row("PUT", "/api/auth/mfa/email", Credential, Canonical)
        .accepting(ACCESS)
        .account(BearerAccount),
    row("POST", "/api/auth/mfa/totp/enroll", Credential, Canonical)
        .accepting(ENROL)
        .account(BearerAccount),
    row("POST", "/api/auth/mfa/totp/confirm", CodeConfirm, Canonical)
        .accepting(ENROL)
        .account(BearerAccount),
    row("DELETE", "/api/auth/mfa/totp", Credential, Canonical)
        .accepting(ACCESS)
        .account(BearerAccount),
    row(
        "POST",
        "/api/auth/mfa/recovery-codes",
        CodeConfirm,
        Canonical,
    )
    .accepting(ACCESS)
    .account(BearerAccount),
    row("GET", "/api/auth/api-tokens", Public, Canonical).accepting(ACCESS),
    row("POST", "/api/auth/api-tokens", Public, Canonical).accepting(ACCESS),
    row("DELETE", "/api/auth/api-tokens/{id}", Public, Canonical).accepting(ACCESS),
    // Moving users in and out: an admin imports accounts with their password hashes (a bulk
    // body), and erases one; a user erases their own account behind their password.
    row("POST", "/api/auth/admin/users/import", Public, Canonical)
        .accepting(TENANT_ADMIN)
        .max_body(BULK_BODY_BYTES),
    row("DELETE", "/api/auth/admin/users/{id}", Public, Canonical).accepting(TENANT_ADMIN),
    // A tenant's admins and services manage its users (service tokens by scope: `users:read`,
    // `users:write`).
    row("GET", "/api/auth/admin/users", Public, Canonical).accepting(TENANT_ADMIN),
    row("POST", "/api/auth/admin/users", Public, Canonical).accepting(TENANT_ADMIN),
    row("GET", "/api/auth/admin/users/{id}", Public, Canonical).accepting(TENANT_ADMIN),
    row("PATCH", "/api/auth/admin/users/{id}", Public, Canonical).accepting(TENANT_ADMIN),
    row(
        "POST",
        "/api/auth/admin/users/{id}/disable",
        Public,
        Canonical,
    )
    .accepting(TENANT_ADMIN),
    row(
        "POST",
        "/api/auth/admin/users/{id}/enable",
        Public,
        Canonical,
    )
    .accepting(TENANT_ADMIN),
    row(
        "POST",
        "/api/auth/admin/users/{id}/sign-out",
        Public,
        Canonical,
    )
    .accepting(TENANT_ADMIN),
    row(
        "POST",
        "/api/auth/admin/users/{id}/reset-mfa",
        Public,
        Canonical,
    )
    .accepting(TENANT_ADMIN),
    // The platform's operator (an operator token, of no tenant) manages tenants.
    row("POST", "/api/admin/tenants", Public, Operator).accepting(OPERATOR),
    row("GET", "/api/admin/tenants", Public, Operator).accepting(OPERATOR),
    row("GET", "/api/admin/tenants/{slug}", Public, Operator).accepting(OPERATOR),
    row("PATCH", "/api/admin/tenants/{slug}", Public, Operator).accepting(OPERATOR),
    row("DELETE", "/api/admin/tenants/{slug}", Public, Operator).accepting(OPERATOR),
    row("POST", "/api/admin/tenants/{slug}/users", Public, Operator).accepting(OPERATOR),
    row("DELETE", "/api/auth/me", Credential, Canonical)
        .accepting(ACCESS)
        .account(BearerAccount),
    // A tenant's admins manage its OpenID clients.
    row("GET", "/api/auth/clients", Public, Canonical).accepting(ACCESS),
    row("POST", "/api/auth/clients", Public, Canonical).accepting(ACCESS),
    row("GET", "/api/auth/clients/{id}", Public, Canonical).accepting(ACCESS),
    row("PUT", "/api/auth/clients/{id}", Public, Canonical).accepting(ACCESS),
    row("DELETE", "/api/auth/clients/{id}", Public, Canonical).accepting(ACCESS),
    // The hosted pages behind emailed links: a GET shows a form and checks nothing; only the
    // form's POST spends the emailed token.
    row("GET", "/auth/verify-email", Public, Pages),
    row("POST", "/auth/verify-email", CodeConfirm, Pages),
    row("GET", "/auth/reset-password", Public, Pages),
    row("POST", "/auth/reset-password", Credential, Pages),
    // Each tenant's OpenID provider. Discovery and keys are read by every relying party's
    // library, often: the verification quota. The token endpoint and its kin are charged per
    // client and per address. The hosted sign-in page and logout are pages for people: a
    // credential like any other sign-in (per account too), its second step a code.
    row(
        "GET",
        "/oidc/{tenant}/.well-known/openid-configuration",
        RouteClass::Verify,
        OpenId,
    ),
    row("GET", "/oidc/{tenant}/jwks", RouteClass::Verify, OpenId),
    row("POST", "/oidc/{tenant}/token", RouteClass::Token, OpenId).account(ClientInPathTenant),
    row("GET", "/oidc/{tenant}/userinfo", Public, OpenId).accepting(ACCESS),
    row("POST", "/oidc/{tenant}/userinfo", Public, OpenId).accepting(ACCESS),
    row("POST", "/oidc/{tenant}/revoke", RouteClass::Token, OpenId).account(ClientInPathTenant),
    row(
        "POST",
        "/oidc/{tenant}/introspect",
        RouteClass::Token,
        OpenId,
    )
    .account(ClientInPathTenant),
    row("GET", "/oidc/{tenant}/authorize", Public, Pages),
    row("POST", "/oidc/{tenant}/authorize", Credential, Pages).account(EmailInPathTenant),
    row(
        "POST",
        "/oidc/{tenant}/authorize/second-factor",
        CodeConfirm,
        Pages,
    )
    .account(MfaChallenge("mfa_token")),
    row(
        "POST",
        "/oidc/{tenant}/authorize/passkey",
        Credential,
        Pages,
    )
    .account(Ceremony("ceremony")),
    row("GET", "/oidc/{tenant}/authorize/email-code", Public, Pages),
    row(
        "POST",
        "/oidc/{tenant}/authorize/email-code",
        Credential,
        Pages,
    )
    .account(EmailInPathTenant),
    row(
        "POST",
        "/oidc/{tenant}/authorize/email-code/verify",
        CodeConfirm,
        Pages,
    )
    .account(EmailInPathTenant),
    row(
        "GET",
        "/oidc/{tenant}/authorize/forgot-password",
        Public,
        Pages,
    ),
    row(
        "POST",
        "/oidc/{tenant}/authorize/forgot-password",
        Credential,
        Pages,
    )
    .account(EmailInPathTenant),
    row("GET", "/oidc/{tenant}/end-session", Public, Pages),
    row("POST", "/oidc/{tenant}/end-session", Public, Pages),
    // VoiceStamp v1.
    row("POST", "/api/v1/auth/login", Credential, VoiceStamp).account(EmailInNamedTenant),
    row("POST", "/api/v1/auth/verify-code", CodeConfirm, VoiceStamp).account(EmailInNamedTenant),
    row("GET", "/api/v1/auth/verify", RouteClass::Verify, VoiceStamp)
        .accepting(VERIFY)
        .purpose(Verify),
    row("POST", "/api/v1/auth/logout", Public, VoiceStamp)
        .accepting(SESSION)
        .purpose(SignOut),
    // The team/vault API.
    row("POST", "/api/register", Credential, TeamVault).account(EmailInNamedTenant),
    row("POST", "/api/login", Credential, TeamVault).account(EmailInNamedTenant),
    row("GET", "/api/verify-email/{token}", CodeConfirm, TeamVault),
    row(
        "GET",
        "/api/resend-email-verification",
        Credential,
        TeamVault,
    )
    .accepting(ACCESS)
    .account(BearerAccount),
    row("GET", "/api/refresh", Refresh, TeamVault).accepting(RENEWAL),
    row("POST", "/api/forgot-passsword", Credential, TeamVault).account(EmailInNamedTenant),
    row("POST", "/api/forgot-password", Credential, TeamVault).account(EmailInNamedTenant),
    row("POST", "/api/reset-passsword", Credential, TeamVault),
    row("POST", "/api/reset-password", Credential, TeamVault),
    row("GET", "/api/exist-email/{email}", Credential, TeamVault),
    // Back Office v2 (its 2FA confirmation names the challenge `token`).
    row("POST", "/api/v2/signin", Credential, BackOffice).account(EmailInNamedTenant),
    row("POST", "/api/v2/2fa/confirm", CodeConfirm, BackOffice).account(MfaChallenge("token")),
    row("POST", "/api/v2/refresh", Refresh, BackOffice),
    row("POST", "/api/v2/signout", Public, BackOffice)
        .accepting(ACCESS)
        .purpose(SignOut),
];

/// Whether `path` matches `pattern` (a `{name}` segment matches one non-empty segment).
#[must_use]
pub fn path_matches(pattern: &str, path: &str) -> bool {
    // Most rows have no parameter: one comparison, on every request of both halves.
    if !pattern.contains('{') {
        return pattern == path;
    }
    let mut want = pattern.split('/');
    let mut have = path.split('/');
    loop {
        match (want.next(), have.next()) {
            (None, None) => return true,
            (Some(w), Some(h)) if w.starts_with('{') => {
                if h.is_empty() {
                    return false;
                }
            }
            (Some(w), Some(h)) if w == h => {}
            _ => return false,
        }
    }
}

/// A path without its query or fragment, and without a trailing slash (`/api/auth/login/`
/// cannot dodge the credential quota).
#[must_use]
pub fn normalise(path: &str) -> &str {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/"
    } else {
        trimmed
    }
}

/// What the table says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// A route serves it.
    Route(&'static Route),
    /// Routes have this path, under other methods: 405, in that API's wording.
    MethodNotAllowed(Api),
    /// No route has this path: 404, in the wording of the API its prefix suggests.
    NotFound(Api),
}

/// The row serving `method` on `path` (`HEAD` is served by the `GET` row), or else the first
/// row with that path under another method.
fn find(method: &str, path: &str) -> Result<&'static Route, Option<&'static Route>> {
    let method = if method.eq_ignore_ascii_case("HEAD") {
        "GET"
    } else {
        method
    };
    let mut same_path = None;
    for route in ROUTES {
        if route.matches_path(path) {
            if route.method.eq_ignore_ascii_case(method) {
                return Ok(route);
            }
            same_path.get_or_insert(route);
        }
    }
    Err(same_path)
}

/// Looks a request up exactly as the origin's router routes it: the path as sent (a trailing
/// slash is another path), the method as sent (`HEAD` is served by the `GET` route).
#[must_use]
pub fn lookup(method: &str, path: &str) -> Lookup {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    match find(method, path) {
        Ok(route) => Lookup::Route(route),
        Err(Some(other)) => Lookup::MethodNotAllowed(other.api),
        Err(None) => Lookup::NotFound(Api::of_unknown_path(path)),
    }
}

/// The route serving a request, if any (see [`lookup`]).
#[must_use]
pub fn route(method: &str, path: &str) -> Option<&'static Route> {
    lookup(method, path).route()
}

impl Lookup {
    /// The API whose wording any answer uses: the route's, or the one its path suggests.
    #[must_use]
    pub const fn api(self) -> Api {
        match self {
            Self::Route(route) => route.api,
            Self::MethodNotAllowed(api) | Self::NotFound(api) => api,
        }
    }

    /// The largest body read for the request: its route's limit, or the default.
    #[must_use]
    pub const fn max_body(self) -> usize {
        match self {
            Self::Route(route) => route.max_body,
            Self::MethodNotAllowed(_) | Self::NotFound(_) => crate::api::MAX_BODY_BYTES,
        }
    }

    /// The serving route, if any.
    #[must_use]
    pub const fn route(self) -> Option<&'static Route> {
        match self {
            Self::Route(route) => Some(route),
            Self::MethodNotAllowed(_) | Self::NotFound(_) => None,
        }
    }
}

/// The wording of any answer to a request: its route's API, or the API its path suggests.
#[must_use]
pub fn api_of(method: &str, path: &str) -> Api {
    lookup(method, path).api()
}

/// Maps a request to its route class for rate limiting. The path may carry a query and a
/// trailing slash, both ignored. A CORS preflight (`OPTIONS`) is [`Public`] wherever it goes:
/// it names its tenant in headers anyone can make up, and each one costs a tenant look-up (a
/// browser caches a preflight's answer for ten minutes). A path served under other methods is charged at the class of its first row (so a wrong
/// method cannot probe a credential route for free); a path no route has is [`Public`].
#[must_use]
pub fn classify(method: &str, path: &str) -> RouteClass {
    if method.eq_ignore_ascii_case("OPTIONS") {
        return Public;
    }
    match find(method, normalise(path)) {
        Ok(route) | Err(Some(route)) => route.class,
        Err(None) => Public,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_by_segment() {
        assert!(path_matches(
            "/api/auth/sessions/{id}",
            "/api/auth/sessions/abc"
        ));
        assert!(!path_matches(
            "/api/auth/sessions/{id}",
            "/api/auth/sessions/"
        ));
        assert!(!path_matches(
            "/api/auth/sessions/{id}",
            "/api/auth/sessions/a/b"
        ));
        assert!(!path_matches("/api/auth/login", "/api/auth/login/"));
    }

    #[test]
    fn every_row_is_unique_and_reachable() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[..i] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "{} {} twice",
                    a.method,
                    a.path
                );
            }
            assert_eq!(route(a.method, &a.example_path("x")), Some(a));
        }
    }

    #[test]
    fn per_account_fields_only_on_per_account_classes() {
        for r in ROUTES {
            if r.account.is_some() {
                assert!(r.class.per_account(), "{} {}", r.method, r.path);
            }
        }
    }

    /// A route behind a bearer token whose class is limited per account (it checks a password
    /// or a code, or sends mail) is charged to the token's account: a stolen token spread over
    /// many addresses gets no more guesses than one address would.
    #[test]
    fn every_per_account_route_behind_a_token_is_charged_to_the_tokens_account() {
        for r in ROUTES {
            let behind_a_token =
                r.accepts.takes_jwt() && !r.accepts.accepts(Credentials::EXPIRED_ACCESS);
            if behind_a_token && r.class.per_account() {
                assert_eq!(r.account, Some(BearerAccount), "{} {}", r.method, r.path);
            }
            if r.account == Some(BearerAccount) {
                assert!(r.accepts.takes_jwt(), "{} {}", r.method, r.path);
            }
        }
        let password = route("POST", "/api/auth/password").and_then(|r| r.account);
        assert_eq!(password, Some(BearerAccount));
        assert_eq!(
            crate::ratelimit::bearer_subject("acme", "u1"),
            "user:acme:u1"
        );
    }

    #[test]
    fn lookups_say_why_nothing_serves() {
        assert_eq!(
            lookup("GET", "/api/auth/login"),
            Lookup::MethodNotAllowed(Canonical)
        );
        assert_eq!(
            lookup("GET", "/api/v1/nothing"),
            Lookup::NotFound(VoiceStamp)
        );
        assert_eq!(
            lookup("POST", "/api/v1/auth/verify"),
            Lookup::MethodNotAllowed(VoiceStamp)
        );
        assert!(matches!(lookup("HEAD", "/healthz"), Lookup::Route(_)));
    }

    #[test]
    fn only_the_enrolment_routes_take_an_enrol_only_token() {
        let enrol: Vec<_> = ROUTES
            .iter()
            .filter(|r| r.accepts.accepts(Credentials::ENROL))
            .map(|r| r.path)
            .collect();
        assert_eq!(
            enrol,
            [
                "/api/auth/passkeys/register/options",
                "/api/auth/passkeys/register",
                "/api/auth/mfa/totp/enroll",
                "/api/auth/mfa/totp/confirm"
            ]
        );
    }

    #[test]
    fn account_subjects_come_only_from_the_fields_that_mean_them() {
        let served = TenantSlug::parse("acme").unwrap_or_else(|_| unreachable!());
        let body = serde_json::json!({"email": "Ann@Example.com", "tenant": "globex"});
        assert_eq!(
            EmailInBodyTenant.subject(&body, &served).as_deref(),
            Some("account:globex:ann@example.com")
        );
        assert_eq!(
            EmailInNamedTenant.subject(&body, &served).as_deref(),
            Some("account:acme:ann@example.com")
        );
        // A canonical body that names no tenant is for the tenant the request names.
        let no_tenant = serde_json::json!({"email": "ann@example.com"});
        assert_eq!(
            EmailInBodyTenant.subject(&no_tenant, &served).as_deref(),
            Some("account:acme:ann@example.com")
        );
        // A malformed challenge token names no account.
        let forged = serde_json::json!({"mfa_token": "tsr_mc_acme_made-up"});
        assert_eq!(MfaChallenge("mfa_token").subject(&forged, &served), None);
        // A challenge field only counts where the row names it: a sign-in body carrying one is
        // still charged to its email.
        let login = route("POST", "/api/auth/login").and_then(|r| r.account);
        assert_eq!(login, Some(EmailInBodyTenant));
    }
}

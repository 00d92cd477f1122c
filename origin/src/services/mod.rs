//! The services behind every API shape: the flows (sign-in, refresh, sessions, bearer
//! authentication). Each takes the narrow dependencies it needs (the store, a clock, keys…),
//! speaks the domain (`ServiceError`, never HTTP) and composes its writes in one tenant unit of
//! work. The canonical API and the other APIs call these and only translate shapes.

pub mod account;
pub mod account_deletion;
pub mod actor;
pub mod api_tokens;
pub mod authenticate;
pub mod captcha;
pub mod cursor;
pub mod email_code;
pub mod error;
pub mod mail_requests;
pub mod mfa;
/// Each tenant's OpenID provider.
pub mod oidc;
pub mod oidc_clients;
pub mod one_time;
pub mod operator_tokens;
pub mod passkeys;
pub mod password_reset;
pub mod refresh;
pub mod registration;
pub mod revocations;
pub mod sessions;
pub mod sign_in;
pub mod tenants;
pub mod tokens;
pub mod totp;
pub mod user_admin;
pub mod user_transfer;
pub mod vault_tokens;
pub mod webhooks;

use std::net::IpAddr;

use tessera_core::model::{SessionId, UserId};

pub use account::Accounts;
pub use actor::{Actor, UserKey};
pub use api_tokens::{ApiTokens, ServicePrincipal};
pub use authenticate::{Authenticated, Authenticator};
pub use email_code::EmailCodes;
pub use error::{ServiceError, ServiceResult};
pub use mail_requests::MailRequests;
pub use mfa::{Challenge, Mfa};
pub use oidc::Provider;
pub use oidc_clients::OidcClients;
pub use one_time::OneTime;
pub use operator_tokens::OperatorTokens;
pub use passkeys::Passkeys;
pub use password_reset::PasswordReset;
pub use refresh::Refresher;
pub use registration::Registrar;
pub use revocations::Revocations;
pub use sessions::SessionService;
pub use sign_in::{SignIn, SignedIn};
pub use tenants::Tenants;
pub use tokens::{Issued, TokenIssuer};
pub use totp::TotpFactor;
pub use user_transfer::UserTransfer;
pub use vault_tokens::VaultTokens;
pub use webhooks::Webhooks;

use crate::store::{AuditEvent, TenantTx};

/// Who is asking, as far as the network can tell, and through which API.
#[derive(Debug, Clone)]
pub struct Client {
    /// Client IP (see `http::middleware::client_ip` for which headers are believed).
    pub ip: IpAddr,
    /// User agent, truncated.
    pub user_agent: String,
    /// The API of the request's route (core's table): a session records the API that opened
    /// it, which decides how it may be renewed.
    pub api: tessera_core::policy::Api,
}

/// Every service, built once at start-up.
#[derive(Clone)]
pub struct Services {
    /// Password sign-in.
    pub sign_in: SignIn,
    /// Refresh-token exchange.
    pub refresh: Refresher,
    /// Bearer-token authentication.
    pub authenticate: Authenticator,
    /// Sign-out and the caller's sessions.
    pub sessions: SessionService,
    /// Registration and email confirmation.
    pub registration: Registrar,
    /// Forgotten passwords.
    pub password_reset: PasswordReset,
    /// Sign-in by emailed code.
    pub email_codes: EmailCodes,
    /// Second factors.
    pub mfa: Mfa,
    /// The authenticator-app factor.
    pub totp: TotpFactor,
    /// Password changes and operator account changes.
    pub accounts: Accounts,
    /// The mail worker's resolution of queued requests.
    pub mail_requests: MailRequests,
    /// Service API tokens.
    pub api_tokens: ApiTokens,
    /// The team/vault API's token pairs.
    pub vault_tokens: VaultTokens,
    /// Passkeys: adding, signing in, the owner's list.
    pub passkeys: Passkeys,
    /// The tenants' OpenID clients.
    pub oidc_clients: OidcClients,
    /// The tenants' OpenID providers.
    pub provider: Provider,
    /// Imports and exports of users.
    pub user_transfer: UserTransfer,
    /// Webhook endpoints.
    pub webhooks: Webhooks,
    /// The operator's tenants.
    pub tenants: Tenants,
    /// The operator's tokens.
    pub operator_tokens: OperatorTokens,
}

/// An audit event of `client`'s request at `now`.
fn audit_event(
    event: &str,
    client: &Client,
    user: Option<&UserId>,
    session: Option<&SessionId>,
    detail: String,
    now: i64,
) -> AuditEvent {
    AuditEvent {
        at: now,
        event: event.to_owned(),
        user_id: user.map(ToString::to_string),
        session_id: session.map(ToString::to_string),
        ip: client.ip.to_string(),
        user_agent: client.user_agent.clone(),
        detail,
    }
}

/// The caller changed how they sign in (`event`: their password, or a second factor turned on
/// or off): every other session of theirs ends in `tx`, so that whoever else holds one must
/// sign in again under the new rules (ASVS 7.4.3), and the audit event says how many ended.
/// The caller announces the sessions returned once `tx` is committed.
async fn end_other_sessions(
    tx: &mut TenantTx,
    event: &str,
    caller: &Authenticated,
    client: &Client,
    now: i64,
) -> ServiceResult<Vec<SessionId>> {
    let ended = tx
        .sessions()
        .revoke_all_of_user(&caller.user_id, Some(&caller.session_id), event, now)
        .await?;
    let audit = audit_event(
        event,
        client,
        Some(&caller.user_id),
        Some(&caller.session_id),
        format!("sessions_ended={}", ended.len()),
        now,
    );
    tx.audit().append(&audit).await?;
    Ok(ended)
}

/// A change to the caller's second factors (adding, removing, new recovery codes) needs their
/// current password in the same request: a stolen access token alone must not enrol the
/// attacker's authenticator, which would then lock the owner out. The enrol-only token of a
/// tenant that requires a second factor is exempt: it is issued seconds after the password and
/// opens nothing but enrolment.
async fn confirm_factor_change(
    hasher: &crate::password::Hasher,
    caller: &Authenticated,
    password: Option<secrecy::SecretString>,
) -> ServiceResult<()> {
    if caller.claims.scope.as_deref() == Some(tessera_core::jwt::ENROL_SCOPE) {
        return Ok(());
    }
    confirm_password(hasher, caller, password).await
}

/// The caller's current password, sent with the request, must match their account's:
/// `PasswordRequired` when none was sent, `WrongPassword` when it does not match.
async fn confirm_password(
    hasher: &crate::password::Hasher,
    caller: &Authenticated,
    password: Option<secrecy::SecretString>,
) -> ServiceResult<()> {
    let password = password.ok_or(ServiceError::PasswordRequired)?;
    let verified = hasher
        .verify(password, caller.user.password_hash.clone())
        .await?;
    if verified.matched {
        Ok(())
    } else {
        Err(ServiceError::WrongPassword)
    }
}

/// Refuses a caller who is not an admin of their tenant (role `admin`): `Forbidden`.
pub fn require_admin(caller: &Authenticated) -> ServiceResult<()> {
    if caller.user.role == "admin" {
        Ok(())
    } else {
        Err(ServiceError::Forbidden)
    }
}

/// An audit event of `caller`'s own request, in their session.
fn caller_event(
    event: &str,
    caller: &Authenticated,
    client: &Client,
    detail: String,
    now: i64,
) -> AuditEvent {
    audit_event(
        event,
        client,
        Some(&caller.user_id),
        Some(&caller.session_id),
        detail,
        now,
    )
}

/// The tenant of `caller`'s token; gone since the token was issued, the session has ended.
async fn caller_tenant(
    tenants: &crate::tenants::Directory,
    caller: &Authenticated,
) -> ServiceResult<crate::store::Tenant> {
    tenants
        .get(&caller.tenant)
        .await?
        .ok_or(ServiceError::SessionEnded)
}

/// Queues the owner's email about a change of their second factors made by themselves
/// (`kind`: added or removed; `factor` names it, e.g. "a passkey"), at `now_millis`.
async fn tell_owner_of_factor(
    tx: &mut TenantTx,
    kind: crate::mail::MailKind,
    tenant: &crate::store::Tenant,
    owner: &crate::store::User,
    factor: &str,
    now_millis: i64,
) -> ServiceResult<()> {
    let mail = one_time::mail_to(
        kind,
        tenant,
        owner,
        serde_json::json!({ "factor": factor, "by_operator": false }),
    );
    tx.outbox().enqueue(&mail, now_millis).await?;
    Ok(())
}

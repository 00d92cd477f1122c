//! Turns queued requests (password reset, sign-in code, invitation, address change) into the emails they call for, for the
//! mail worker: the account is looked up here, off the request path.

use std::sync::Arc;

use tessera_core::model::{Email, TenantSlug};

use super::{user_admin, EmailCodes, OneTime, PasswordReset, ServiceError, ServiceResult};
use crate::clock::SharedClock;
use crate::mail::requests;
use crate::store::{ClaimedMail, DynStore, NewMail};
use crate::tenants::Directory;

/// Resolves outbox requests.
#[derive(Clone)]
pub struct MailRequests {
    store: DynStore,
    tenants: Arc<Directory>,
    reset: PasswordReset,
    codes: EmailCodes,
    one_time: OneTime,
    clock: SharedClock,
}

#[derive(serde::Deserialize)]
struct Request {
    email: String,
}

impl MailRequests {
    /// The resolver over the services whose requests it resolves.
    #[must_use]
    pub fn new(
        store: DynStore,
        tenants: Arc<Directory>,
        reset: PasswordReset,
        codes: EmailCodes,
        one_time: OneTime,
        clock: SharedClock,
    ) -> Self {
        Self {
            store,
            tenants,
            reset,
            codes,
            one_time,
            clock,
        }
    }

    /// Whether an outbox row is a request rather than an email.
    #[must_use]
    pub fn is_request(kind: &str) -> bool {
        [
            requests::RESET_PASSWORD,
            requests::SIGN_IN_CODE,
            requests::INVITATION,
            requests::CONFIRM_EMAIL_CHANGE,
        ]
        .contains(&kind)
    }

    /// Resolves a claimed request in one unit of work: the secret it creates and the row's new
    /// content (or, when there is no such account, the row marked done) commit together.
    /// Answers the email to send, if any.
    pub async fn resolve(
        &self,
        tenant: &TenantSlug,
        row: &ClaimedMail,
    ) -> ServiceResult<Option<NewMail>> {
        let request: Request =
            serde_json::from_str(&row.params).map_err(|_| ServiceError::InvalidInput {
                code: "corrupt_request",
                detail: "unreadable outbox request".into(),
            })?;
        let email = Email::parse(&request.email).map_err(|_| ServiceError::InvalidInput {
            code: "corrupt_request",
            detail: "unreadable outbox request".into(),
        })?;
        let tenant = self
            .tenants
            .get(tenant)
            .await?
            .ok_or(ServiceError::TenantNotFound)?;
        let now = self.clock.now_secs();
        let mut tx = self.store.write(&tenant.slug).await?;
        let mail = match row.kind.as_str() {
            requests::RESET_PASSWORD => self.reset.resolve(&mut tx, &tenant, &email).await?,
            requests::SIGN_IN_CODE => self.codes.resolve(&mut tx, &tenant, &email).await?,
            requests::INVITATION => {
                user_admin::invitation(&mut tx, &self.one_time, &tenant, &email, now).await?
            }
            requests::CONFIRM_EMAIL_CHANGE => {
                user_admin::email_change_link(&mut tx, &self.one_time, &tenant, &email, now).await?
            }
            _ => None,
        };
        match &mail {
            Some(mail) => tx.outbox().resolve(&row.id, mail).await?,
            None => {
                tx.outbox()
                    .mark_sent(&row.id, self.clock.now_millis_i64())
                    .await?
            }
        }
        tx.commit().await?;
        Ok(mail)
    }
}

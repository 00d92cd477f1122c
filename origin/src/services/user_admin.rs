//! The tenant admin API's reads and profile changes (the operator's and admins' creation,
//! disabling and the rest are in `account`): a page of users by address, found by address or
//! name prefix; one user; a new name, role or address. A new address replaces the old one
//! only once its owner confirms it from the emailed link.

use tessera_core::lifetimes::{INVITE_LINK_SECS, VERIFY_LINK_SECS};
use tessera_core::model::{Email, SessionId, TenantSlug};

use super::account::{invalid_role, ROLES};
use super::actor::{Actor, UserKey};
use super::one_time::{mail_to, OneTime};
use super::password_reset::RESET_PAGE;
use super::{audit_event, cursor, Accounts, Client, ServiceError, ServiceResult};
use crate::mail::{requests, MailKind};
use crate::store::{NewMail, Purpose, StoreError, Tenant, TenantTx, User};

/// The hosted page an emailed confirmation link opens (the registration's confirmation page
/// also takes an address change's link).
const CONFIRM_PAGE: &str = "/auth/verify-email";

/// The longest search accepted, in characters (an address at most).
const MAX_QUERY_CHARS: usize = 254;

/// Where a page of users ends, as its cursor carries it: after an address (listing, or the
/// address matches of a search), or after a name key and address (a search's name matches,
/// which follow its address matches).
enum Position {
    Address(Email),
    Name(String, Email),
}

impl Position {
    fn encode(&self) -> String {
        match self {
            Self::Address(email) => cursor::encode(&format!("a\0{email}")),
            Self::Name(key, email) => cursor::encode(&format!("n\0{key}\0{email}")),
        }
    }

    fn decode(text: &str) -> ServiceResult<Self> {
        let decoded = cursor::decode(text)?;
        let email = |e: &str| Email::parse(e).map_err(|_| cursor::invalid());
        match decoded.split('\0').collect::<Vec<_>>().as_slice() {
            ["a", address] => Ok(Self::Address(email(address)?)),
            ["n", key, address] => Ok(Self::Name((*key).to_owned(), email(address)?)),
            _ => Err(cursor::invalid()),
        }
    }
}

/// A page of users, and the cursor of the next one if there may be more.
#[derive(Debug)]
pub struct UserPage {
    /// The users: address matches in address order, then name matches in name order.
    pub users: Vec<User>,
    /// The cursor of the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

/// A user as an admin sees one: the account, and the new address waiting for confirmation.
#[derive(Debug)]
pub struct AdminView {
    /// The account.
    pub user: User,
    /// The address an admin gave it, until its owner confirms it.
    pub pending_email: Option<Email>,
}

/// What an admin changes of a user; what is `None` stays.
#[derive(Debug, Default)]
pub struct UserChanges {
    /// A new display name.
    pub name: Option<String>,
    /// A new role, one of [`ROLES`]; a change ends the user's sessions (tokens carry it).
    pub role: Option<String>,
    /// A new address: it replaces the old one once its owner confirms it from the link
    /// emailed to it.
    pub email: Option<String>,
}

impl Accounts {
    /// A page of `tenant`'s users after `cursor`: in address order; with `query`, those whose
    /// address starts with it (any case) in address order, then those whose name does (and
    /// whose address does not) in name order. Each part is read in its index's order, so a
    /// page costs the same however many users match.
    pub async fn page(
        &self,
        tenant: &TenantSlug,
        query: Option<&str>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> ServiceResult<UserPage> {
        let limit = cursor::limit(limit)?;
        if query.is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS) {
            return Err(ServiceError::InvalidInput {
                code: "invalid_query",
                detail: format!("query has at most {MAX_QUERY_CHARS} characters"),
            });
        }
        let query = query
            .map(|q| crate::store::users::name_key(q.trim()))
            .filter(|q| !q.is_empty());
        let position = cursor.map(Position::decode).transpose()?;
        // A name match's cursor starts where the search does (its scan starts at the cursor).
        if let Some(Position::Name(key, _)) = &position {
            if !query.as_ref().is_some_and(|q| key.starts_with(q.as_str())) {
                return Err(cursor::invalid());
            }
        }
        let wanted = i64::from(limit) + 1;
        let mut read = self.store.read(tenant).await?;
        let mut found: Vec<(User, Position)> = Vec::new();
        if let None | Some(Position::Address(_)) = &position {
            let after = match &position {
                Some(Position::Address(email)) => Some(email),
                _ => None,
            };
            found.extend(
                read.users()
                    .by_address(query.as_deref(), after, wanted)
                    .await?
                    .into_iter()
                    .map(|u| {
                        let at = Position::Address(u.email.clone());
                        (u, at)
                    }),
            );
        }
        if let Some(query) = &query {
            let room = wanted - i64::try_from(found.len()).unwrap_or(wanted);
            if room > 0 {
                let after = match &position {
                    Some(Position::Name(key, email)) => Some((key.as_str(), email)),
                    _ => None,
                };
                found.extend(
                    read.users()
                        .by_name_not_address(query, after, room)
                        .await?
                        .into_iter()
                        .map(|(u, key)| {
                            let at = Position::Name(key, u.email.clone());
                            (u, at)
                        }),
                );
            }
        }
        let more = found.len() > limit as usize;
        found.truncate(limit as usize);
        let next_cursor = more
            .then(|| found.last().map(|(_, at)| at.encode()))
            .flatten();
        Ok(UserPage {
            users: found.into_iter().map(|(u, _)| u).collect(),
            next_cursor,
        })
    }

    /// One user of `tenant`, by id (`NotFound` otherwise).
    pub async fn view(&self, tenant: &TenantSlug, who: &UserKey) -> ServiceResult<AdminView> {
        let mut read = self.store.read(tenant).await?;
        let user = self.user(&mut read, who).await?;
        let pending_email = read.users().pending_email(&user.id).await?;
        Ok(AdminView {
            user,
            pending_email,
        })
    }

    /// Changes a user's name, role or address (see [`UserChanges`]), audited with `actor`;
    /// a role change ends the user's sessions, a new address is emailed a confirmation link.
    pub async fn update(
        &self,
        tenant: &TenantSlug,
        who: &UserKey,
        changes: UserChanges,
        actor: &Actor,
    ) -> ServiceResult<AdminView> {
        let name = changes
            .name
            .as_deref()
            .map(super::registration::checked_name)
            .transpose()?;
        if let Some(role) = &changes.role {
            if !ROLES.contains(&role.as_str()) {
                return Err(invalid_role(role));
            }
        }
        let email = changes
            .email
            .as_deref()
            .map(|e| {
                Email::parse(e).map_err(|e| ServiceError::InvalidInput {
                    code: "invalid_email",
                    detail: e.to_string(),
                })
            })
            .transpose()?;
        self.tenants
            .get(tenant)
            .await?
            .ok_or(ServiceError::TenantNotFound)?;
        let now = self.clock.now_secs();
        let mut tx = self.store.write(tenant).await?;
        let user = self.user(&mut tx, who).await?;
        let role_changed = changes.role.as_ref().is_some_and(|r| *r != user.role);
        tx.users()
            .set_profile(&user.id, name, changes.role.as_deref(), now)
            .await?;
        let mut changed: Vec<&str> = Vec::new();
        if name.is_some_and(|n| n != user.name) {
            changed.push("name");
        }
        let ended = if role_changed {
            changed.push("role");
            tx.sessions()
                .revoke_all_of_user(&user.id, None, "role_changed", now)
                .await?
        } else {
            Vec::new()
        };
        if let Some(email) = email {
            if email == user.email {
                // Back to the address it has: any change waiting is withdrawn.
                tx.users().set_pending_email(&user.id, None, now).await?;
                tx.secrets().remove(&user.id, Purpose::ChangeEmail).await?;
            } else {
                if tx.users().by_email(&email).await?.is_some() {
                    return Err(ServiceError::Conflict {
                        code: "email_taken",
                        detail: format!("{email} already has an account in tenant {tenant}"),
                    });
                }
                tx.users()
                    .set_pending_email(&user.id, Some(&email), now)
                    .await?;
                // The mail worker makes the link and mails the new address.
                let request = NewMail {
                    kind: requests::CONFIRM_EMAIL_CHANGE,
                    recipient: user.email.to_string(),
                    params: serde_json::json!({ "email": user.email.as_str() }),
                };
                tx.outbox()
                    .enqueue(&request, self.clock.now_millis_i64())
                    .await?;
                changed.push("email_pending");
            }
        }
        let detail = format!(
            "changed={} sessions_ended={}",
            changed.join(","),
            ended.len()
        );
        tx.audit()
            .append(&actor.event(&actor.named("user_updated"), Some(&user.id), &detail, now))
            .await?;
        let view = AdminView {
            user: self.user(&mut tx, &UserKey::Id(user.id)).await?,
            pending_email: tx.users().pending_email(&user.id).await?,
        };
        tx.commit().await?;
        self.revocations.sessions_ended(tenant, &ended);
        Ok(view)
    }
}

/// The owner of a new address confirms it with the link an admin's change emailed to it (the
/// hosted confirmation page, with `digest` of its token): the address replaces the old one,
/// every session ends (tokens carry the address), and the old address is told. `None` if
/// no address change has this link.
pub(super) async fn confirm_email_change(
    tx: &mut TenantTx,
    tenant: &Tenant,
    digest: &[u8],
    client: &Client,
    now: i64,
) -> ServiceResult<Option<(User, Vec<SessionId>)>> {
    let Some(secret) = tx.secrets().by_digest(Purpose::ChangeEmail, digest).await? else {
        return Ok(None);
    };
    tx.secrets()
        .remove(&secret.user_id, Purpose::ChangeEmail)
        .await?;
    if secret.expires_at <= now {
        return Err(ServiceError::InvalidLink);
    }
    let user = tx
        .users()
        .by_id(&secret.user_id)
        .await?
        .ok_or(ServiceError::InvalidLink)?;
    let new = tx
        .users()
        .pending_email(&user.id)
        .await?
        .ok_or(ServiceError::InvalidLink)?;
    match tx.users().confirm_pending_email(&user.id, &new, now).await {
        Err(StoreError::Conflict) => {
            return Err(ServiceError::Conflict {
                code: "email_taken",
                detail: format!("{new} has an account of its own by now"),
            })
        }
        other => other?,
    }
    let ended = tx
        .sessions()
        .revoke_all_of_user(&user.id, None, "email_changed", now)
        .await?;
    let told = NewMail {
        recipient: user.email.to_string(),
        ..mail_to(
            MailKind::EmailChanged,
            tenant,
            &user,
            serde_json::json!({ "new_email": new.as_str() }),
        )
    };
    tx.outbox().enqueue(&told, now.saturating_mul(1000)).await?;
    let event = audit_event(
        "email_changed",
        client,
        Some(&user.id),
        None,
        format!("sessions_ended={}", ended.len()),
        now,
    );
    tx.audit().append(&event).await?;
    let user = tx
        .users()
        .by_id(&user.id)
        .await?
        .ok_or(ServiceError::InvalidLink)?;
    Ok(Some((user, ended)))
}

/// The mail worker's half of an invitation: a link (voiding an earlier one) to choose the
/// password of `email`'s account, and its email; nothing when the account is gone, disabled,
/// or has a password by now.
pub(super) async fn invitation(
    tx: &mut TenantTx,
    one_time: &OneTime,
    tenant: &Tenant,
    email: &Email,
    now: i64,
) -> ServiceResult<Option<NewMail>> {
    let Some(user) = tx
        .users()
        .by_email(email)
        .await?
        .filter(|u| !u.disabled && u.password_hash.is_none())
    else {
        return Ok(None);
    };
    let link = one_time
        .store_link(
            tx,
            &user,
            Purpose::Invite,
            now,
            INVITE_LINK_SECS,
            RESET_PAGE,
        )
        .await?;
    Ok(Some(mail_to(
        MailKind::Invitation,
        tenant,
        &user,
        serde_json::json!({ "link": link }),
    )))
}

/// The mail worker's half of an address change: a link (voiding an earlier one) that confirms
/// the new address waiting on `email`'s account, mailed to that new address; nothing when no
/// change waits any more.
pub(super) async fn email_change_link(
    tx: &mut TenantTx,
    one_time: &OneTime,
    tenant: &Tenant,
    email: &Email,
    now: i64,
) -> ServiceResult<Option<NewMail>> {
    let Some(user) = tx.users().by_email(email).await? else {
        return Ok(None);
    };
    let Some(new) = tx.users().pending_email(&user.id).await? else {
        return Ok(None);
    };
    let link = one_time
        .store_link(
            tx,
            &user,
            Purpose::ChangeEmail,
            now,
            VERIFY_LINK_SECS,
            CONFIRM_PAGE,
        )
        .await?;
    Ok(Some(NewMail {
        recipient: new.to_string(),
        ..mail_to(
            MailKind::ConfirmEmailChange,
            tenant,
            &user,
            serde_json::json!({ "link": link }),
        )
    }))
}

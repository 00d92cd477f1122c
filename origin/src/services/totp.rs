//! The authenticator-app second factor: enrolment (a secret, its `otpauth://` URI and QR code),
//! confirmation by a first code (which also issues recovery codes), new recovery codes, turning
//! it off, and the check of a code at sign-in. A code is accepted at most once: the last
//! accepted time step is advanced by compare-and-set in the transaction that accepts it.

use std::sync::Arc;

use qrcode::render::svg;
use qrcode::QrCode;
use secrecy::SecretString;
use tessera_core::model::UserId;
use tessera_core::totp::{self, TotpParams, TotpSecret};

use super::one_time::mail_to;
use super::{
    caller_event, caller_tenant, confirm_factor_change, end_other_sessions, tell_owner_of_factor,
    Authenticated, Client, Revocations, ServiceError, ServiceResult,
};
use crate::clock::{self, SharedClock};
use crate::keys::{hmac_sha256, MasterKey};
use crate::mail::MailKind;
use crate::password::Hasher;
use crate::store::{DynStore, TenantTx};
use crate::tenants::Directory;

/// Recovery codes issued at confirmation (and on renewal).
pub const RECOVERY_CODES: usize = 10;

/// A started enrolment. `Debug` never prints the secret.
pub struct Enrolment {
    /// The secret, base32, for manual entry.
    pub secret: String,
    /// The `otpauth://totp/…` URI.
    pub otpauth_uri: String,
    /// The URI as an SVG QR code.
    pub qr_svg: String,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enrolment { .. }")
    }
}

/// What a factor check accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// A TOTP code.
    Totp,
    /// A recovery code (now spent).
    RecoveryCode,
}

/// The authenticator-app factor.
#[derive(Clone)]
pub struct TotpFactor {
    store: DynStore,
    tenants: Arc<Directory>,
    hasher: Hasher,
    master: MasterKey,
    recovery_key: Arc<[u8; 32]>,
    revocations: Revocations,
    clock: SharedClock,
}

/// The context a secret is sealed under: bound to its tenant and user, so that a sealed value
/// copied to another row does not open.
pub(crate) fn seal_context(tenant: &str, user: &UserId) -> String {
    format!("totp:{tenant}:{user}")
}

/// Whether `input` looks like a recovery code rather than a 6-digit TOTP code.
fn is_recovery_shaped(input: &str) -> bool {
    let bare: String = input.chars().filter(|c| *c != '-' && *c != ' ').collect();
    bare.len() == 10 && bare.chars().all(|c| c.is_ascii_alphanumeric())
}

impl TotpFactor {
    /// The service over its dependencies; `recovery_key` is the HMAC key of recovery codes
    /// (the derived key `recovery-code`).
    #[must_use]
    pub fn new(
        store: DynStore,
        tenants: Arc<Directory>,
        hasher: Hasher,
        master: MasterKey,
        recovery_key: [u8; 32],
        revocations: Revocations,
        clock: SharedClock,
    ) -> Self {
        Self {
            store,
            tenants,
            hasher,
            master,
            recovery_key: Arc::new(recovery_key),
            revocations,
            clock,
        }
    }

    fn now_u64(&self) -> u64 {
        u64::try_from(self.clock.now_secs()).unwrap_or(0)
    }

    /// Starts (or restarts) enrolment: a new 160-bit secret, pending until a code confirms
    /// it. 409 `totp_active` when a confirmed factor exists (turn it off first). An ordinary
    /// token needs the current `password` (see [`confirm_factor_change`]).
    pub async fn enroll(
        &self,
        caller: &Authenticated,
        password: Option<SecretString>,
        client: &Client,
    ) -> ServiceResult<Enrolment> {
        confirm_factor_change(&self.hasher, caller, password).await?;
        let tenant = caller_tenant(&self.tenants, caller).await?;
        let now = self.clock.now_secs();
        let mut tx = self.store.write(&caller.tenant).await?;
        if tx.totp().active(&caller.user_id).await? {
            return Err(ServiceError::TotpActive);
        }
        let secret = TotpSecret::from_random(clock::random());
        let sealed = self.master.seal(
            &seal_context(caller.tenant.as_str(), &caller.user_id),
            secret.expose(),
        );
        tx.totp().put_pending(&caller.user_id, &sealed, now).await?;
        let event = caller_event("totp_enrolment_started", caller, client, String::new(), now);
        tx.audit().append(&event).await?;
        tx.commit().await?;
        let otpauth_uri = totp::otpauth_uri(
            &secret,
            TotpParams::AUTHENTICATOR,
            &tenant.name,
            caller.user.email.as_str(),
        );
        let qr_svg = QrCode::new(otpauth_uri.as_bytes())
            .map(|code| {
                code.render::<svg::Color<'_>>()
                    .min_dimensions(200, 200)
                    .build()
            })
            .map_err(|e| ServiceError::InvalidInput {
                code: "qr_unavailable",
                detail: e.to_string(),
            })?;
        Ok(Enrolment {
            secret: secret.to_base32(),
            otpauth_uri,
            qr_svg,
        })
    }

    /// Confirms the pending factor with its first code and answers the recovery codes (shown
    /// this once). The code is spent: it cannot sign in afterwards. An ordinary token needs the
    /// current `password`; the owner is told by email.
    pub async fn confirm(
        &self,
        caller: &Authenticated,
        code: &str,
        password: Option<SecretString>,
        client: &Client,
    ) -> ServiceResult<Vec<String>> {
        confirm_factor_change(&self.hasher, caller, password).await?;
        let tenant = caller_tenant(&self.tenants, caller).await?;
        let now = self.clock.now_secs();
        let mut tx = self.store.write(&caller.tenant).await?;
        let factor = tx
            .totp()
            .get(&caller.user_id)
            .await?
            .filter(|f| f.confirmed_at.is_none())
            .ok_or(ServiceError::NoPendingTotp)?;
        self.accept_code(
            &mut tx,
            caller.tenant.as_str(),
            &caller.user_id,
            &factor,
            code,
        )
        .await?;
        tx.totp().confirm(&caller.user_id, now).await?;
        let codes = self.new_recovery_codes(&mut tx, &caller.user_id).await?;
        tell_owner_of_factor(
            &mut tx,
            MailKind::FactorAdded,
            &tenant,
            &caller.user,
            "an authenticator app",
            self.clock.now_millis_i64(),
        )
        .await?;
        let ended = end_other_sessions(&mut tx, "totp_enabled", caller, client, now).await?;
        tx.commit().await?;
        self.revocations.sessions_ended(&caller.tenant, &ended);
        Ok(codes)
    }

    /// Replaces the recovery codes, confirmed by the current password and a current TOTP
    /// code; the owner is told by email (new codes are a way in).
    pub async fn renew_recovery_codes(
        &self,
        caller: &Authenticated,
        code: &str,
        password: Option<SecretString>,
        client: &Client,
    ) -> ServiceResult<Vec<String>> {
        confirm_factor_change(&self.hasher, caller, password).await?;
        let tenant = caller_tenant(&self.tenants, caller).await?;
        let now = self.clock.now_secs();
        let mut tx = self.store.write(&caller.tenant).await?;
        let factor = tx
            .totp()
            .get(&caller.user_id)
            .await?
            .filter(|f| f.confirmed_at.is_some())
            .ok_or(ServiceError::NoTotp)?;
        self.accept_code(
            &mut tx,
            caller.tenant.as_str(),
            &caller.user_id,
            &factor,
            code,
        )
        .await?;
        let codes = self.new_recovery_codes(&mut tx, &caller.user_id).await?;
        tell_owner_of_factor(
            &mut tx,
            MailKind::FactorAdded,
            &tenant,
            &caller.user,
            "a new set of recovery codes",
            self.clock.now_millis_i64(),
        )
        .await?;
        let event = caller_event("recovery_codes_renewed", caller, client, String::new(), now);
        tx.audit().append(&event).await?;
        tx.commit().await?;
        Ok(codes)
    }

    /// Turns the factor off, confirmed by the current password (a code alone would let a
    /// stolen token and a phished code remove it), and says so by email.
    pub async fn disable(
        &self,
        caller: &Authenticated,
        password: Option<SecretString>,
        client: &Client,
    ) -> ServiceResult<()> {
        confirm_factor_change(&self.hasher, caller, password).await?;
        let tenant = caller_tenant(&self.tenants, caller).await?;
        let now = self.clock.now_secs();
        let mut tx = self.store.write(&caller.tenant).await?;
        let factor = tx
            .totp()
            .get(&caller.user_id)
            .await?
            .ok_or(ServiceError::NoTotp)?;
        tx.totp().remove(&caller.user_id, now).await?;
        if factor.confirmed_at.is_some() {
            let mail = mail_to(
                MailKind::TotpDisabled,
                &tenant,
                &caller.user,
                serde_json::json!({ "email_factor": caller.user.mfa_email }),
            );
            tx.outbox()
                .enqueue(&mail, self.clock.now_millis_i64())
                .await?;
        }
        let ended = end_other_sessions(&mut tx, "totp_disabled", caller, client, now).await?;
        tx.commit().await?;
        self.revocations.sessions_ended(&caller.tenant, &ended);
        Ok(())
    }

    /// Checks a second-factor answer of `user` in `tx`: a TOTP code of the confirmed factor
    /// (spent by advancing the last step) or an unused recovery code (spent). `None` when it is
    /// neither; the caller counts the wrong try.
    pub async fn check(
        &self,
        tx: &mut TenantTx,
        user: &UserId,
        code: &str,
    ) -> ServiceResult<Option<Accepted>> {
        if is_recovery_shaped(code) {
            let digest = self.recovery_digest(user, code);
            let spent = tx
                .totp()
                .use_recovery_code(user, &digest, self.clock.now_secs())
                .await?;
            return Ok(spent.then_some(Accepted::RecoveryCode));
        }
        let tenant = tx.tenant().to_string();
        let Some(factor) = tx
            .totp()
            .get(user)
            .await?
            .filter(|f| f.confirmed_at.is_some())
        else {
            return Ok(None);
        };
        match self.accept_code(tx, &tenant, user, &factor, code).await {
            Ok(()) => Ok(Some(Accepted::Totp)),
            Err(ServiceError::InvalidCode) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Accepts `code` for `factor` once: verified within ±1 step, later than the last accepted
    /// step, and that step recorded by compare-and-set in `tx`.
    async fn accept_code(
        &self,
        tx: &mut TenantTx,
        tenant: &str,
        user: &UserId,
        factor: &crate::store::StoredFactor,
        code: &str,
    ) -> ServiceResult<()> {
        let secret = self
            .master
            .open(&seal_context(tenant, user), &factor.secret_sealed)
            .and_then(|bytes| TotpSecret::from_bytes(&bytes).ok())
            .ok_or_else(|| crate::store::StoreError::Corrupt("sealed TOTP secret".into()))?;
        let last = factor.last_step.and_then(|s| u64::try_from(s).ok());
        let step = totp::verify(
            &secret,
            TotpParams::AUTHENTICATOR,
            code,
            self.now_u64(),
            last,
        )
        .map_err(|_| ServiceError::InvalidCode)?;
        let step = i64::try_from(step).map_err(|_| ServiceError::InvalidCode)?;
        if tx.totp().advance_step(user, step).await? {
            Ok(())
        } else {
            Err(ServiceError::InvalidCode)
        }
    }

    async fn new_recovery_codes(
        &self,
        tx: &mut TenantTx,
        user: &UserId,
    ) -> ServiceResult<Vec<String>> {
        const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
        let codes: Vec<String> = (0..RECOVERY_CODES)
            .map(|_| {
                let random: [u8; 10] = clock::random();
                let chars: String = random
                    .iter()
                    .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
                    .collect();
                format!("{}-{}", &chars[..5], &chars[5..])
            })
            .collect();
        let digests: Vec<[u8; 32]> = codes
            .iter()
            .map(|c| self.recovery_digest(user, c))
            .collect();
        tx.totp().replace_recovery_codes(user, &digests).await?;
        Ok(codes)
    }

    fn recovery_digest(&self, user: &UserId, code: &str) -> [u8; 32] {
        let bare: String = code
            .chars()
            .filter(|c| *c != '-' && *c != ' ')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        hmac_sha256(
            self.recovery_key.as_slice(),
            format!("recovery\0{user}\0{bare}").as_bytes(),
        )
    }
}

//! Passkeys (WebAuthn): adding one behind a signed-in session, signing in with one (for a
//! named address, or discoverable: the authenticator names the account), and the owner's list.
//! Each ceremony is two requests; its state waits in the tenant's database in between (single
//! use, [`CEREMONY_SECS`]), so that any origin node finishes what another began.

use std::sync::Arc;

use secrecy::SecretString;
use tessera_core::model::{Email, TenantSlug, UserId};
use tessera_core::ratelimit::{account_subject, ceremony_account_subject, RouteClass};
use tessera_core::sign_in::{Credential, Verdict};
use tessera_core::token::{OpaqueToken, TokenKind};
use webauthn_rs::prelude::{
    AuthenticationResult, Base64UrlSafeData, CreationChallengeResponse, DiscoverableAuthentication,
    DiscoverableKey, Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, RequestChallengeResponse, Uuid, Webauthn, WebauthnError,
};

use super::mfa::sign_in_verdict;
use super::one_time::OneTime;
use super::{
    audit_event, caller_event, caller_tenant, confirm_factor_change, end_other_sessions,
    tell_owner_of_factor, Authenticated, Client, Issued, Revocations, ServiceError, ServiceResult,
    TokenIssuer,
};
use crate::clock::{self, SharedClock};
use crate::limiter::Limiter;
use crate::mail::MailKind;
use crate::password::Hasher;
use crate::relying_party::RelyingParty;
use crate::store::passkeys::{Ceremony, StoredPasskey};
use crate::store::{DynStore, Tenant, TenantTx, User};
use crate::tenants::Directory;

/// How long a ceremony may take between its options and its finish.
pub const CEREMONY_SECS: i64 = 300;

/// The longest name of a passkey.
pub const NAME_MAX_CHARS: usize = 100;

const REGISTER: &str = "register";
const LOGIN: &str = "login";
const DISCOVERABLE: &str = "discoverable";
const SECOND_FACTOR: &str = "mfa";

/// How the owner's emails name the factor.
const PASSKEY: &str = "a passkey";

/// The options of a ceremony under way: `public_key` goes to `navigator.credentials`, the
/// `ceremony` comes back with the authenticator's answer.
#[derive(Debug)]
pub struct Options {
    /// The ceremony's token (single use).
    pub ceremony: String,
    /// WebAuthn's `publicKey` options, as JSON (binary fields base64url).
    pub public_key: serde_json::Value,
}

/// A passkey as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyInfo {
    /// Id.
    pub id: String,
    /// The owner's name for it.
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of its last sign-in.
    pub last_used_at: Option<i64>,
    /// Whether it is synced to other devices.
    pub backed_up: bool,
}

impl From<StoredPasskey> for PasskeyInfo {
    fn from(stored: StoredPasskey) -> Self {
        Self {
            id: stored.id,
            name: stored.name,
            created_at: stored.created_at,
            last_used_at: stored.last_used_at,
            backed_up: stored.backed_up,
        }
    }
}

/// Passkeys, over the tenant stores and the relying party of each tenant.
#[derive(Clone)]
pub struct Passkeys {
    store: DynStore,
    tenants: Arc<Directory>,
    hasher: Hasher,
    one_time: OneTime,
    tokens: TokenIssuer,
    limiter: Arc<Limiter>,
    revocations: Revocations,
    clock: SharedClock,
    /// The relying party of `TESSERA_PUBLIC_URL`, when it has a domain WebAuthn accepts.
    default_party: Option<RelyingParty>,
}

fn invalid_ceremony() -> ServiceError {
    ServiceError::InvalidInput {
        code: "invalid_ceremony",
        detail: "This passkey ceremony is unknown, finished or expired: start again.".to_owned(),
    }
}

fn invalid_passkey(error: &WebauthnError) -> ServiceError {
    ServiceError::InvalidInput {
        code: "invalid_passkey",
        detail: format!("The authenticator's answer was refused: {error}."),
    }
}

fn corrupt_state() -> ServiceError {
    ServiceError::Store(crate::store::StoreError::Corrupt(
        "webauthn ceremony state".to_owned(),
    ))
}

impl Passkeys {
    /// The service over its dependencies; `public_url` is `TESSERA_PUBLIC_URL`.
    #[must_use]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: DynStore,
        tenants: Arc<Directory>,
        hasher: Hasher,
        one_time: OneTime,
        tokens: TokenIssuer,
        limiter: Arc<Limiter>,
        revocations: Revocations,
        clock: SharedClock,
        public_url: &str,
    ) -> Self {
        Self {
            store,
            tenants,
            hasher,
            one_time,
            tokens,
            limiter,
            revocations,
            clock,
            default_party: RelyingParty::of_public_url(public_url).ok(),
        }
    }

    /// Whether a page served at `origin` can run `tenant`'s passkey ceremonies: the browser
    /// binds each assertion to the page's origin, which must be the relying party's.
    #[must_use]
    pub fn available_at(&self, tenant: &Tenant, origin: &str) -> bool {
        tenant
            .relying_party
            .as_ref()
            .or(self.default_party.as_ref())
            .is_some_and(|party| party.origin() == origin)
    }

    /// The verifier of `tenant`'s relying party: its own, else `TESSERA_PUBLIC_URL`'s; 400
    /// `passkeys_unavailable` when neither is set (a public URL on an IP address).
    fn webauthn(&self, tenant: &Tenant) -> ServiceResult<Webauthn> {
        let party = tenant
            .relying_party
            .as_ref()
            .or(self.default_party.as_ref())
            .ok_or_else(|| ServiceError::InvalidInput {
                code: "passkeys_unavailable",
                detail: "Passkeys need a domain: set TESSERA_PUBLIC_URL to a URL with a host \
                         name, or the tenant's --rp-id and --webauthn-origin."
                    .to_owned(),
            })?;
        party
            .webauthn(&tenant.name)
            .map_err(|e| ServiceError::InvalidInput {
                code: "passkeys_unavailable",
                detail: e.to_string(),
            })
    }

    /// Starts adding a passkey to the caller's account (an ordinary token needs the current
    /// password, as any change of factors). The options exclude the caller's passkeys, prefer
    /// a discoverable credential and require user verification.
    pub async fn register_options(
        &self,
        caller: &Authenticated,
        password: Option<SecretString>,
        client: &Client,
    ) -> ServiceResult<Options> {
        confirm_factor_change(&self.hasher, caller, password).await?;
        let tenant = caller_tenant(&self.tenants, caller).await?;
        let webauthn = self.webauthn(&tenant)?;
        let now = self.clock.now_secs();
        let mut tx = self.store.write(&caller.tenant).await?;
        let exclude = tx
            .passkeys()
            .of_user(&caller.user_id)
            .await?
            .into_iter()
            .map(|p| Base64UrlSafeData::from(p.credential_id).into())
            .collect::<Vec<_>>();
        let display = if caller.user.name.is_empty() {
            caller.user.email.as_str()
        } else {
            caller.user.name.as_str()
        };
        let (mut options, state): (CreationChallengeResponse, PasskeyRegistration) = webauthn
            .start_passkey_registration(
                *caller.user_id.as_uuid(),
                caller.user.email.as_str(),
                display,
                Some(exclude),
            )
            .map_err(|e| invalid_passkey(&e))?;
        // A discoverable credential signs in without an address (conditional UI); an
        // authenticator that cannot keep one still makes a passkey for username-first sign-in.
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            selection.resident_key = Some(webauthn_rs_proto::ResidentKeyRequirement::Preferred);
        }
        let (token, digest) = self.one_time.new_ceremony(&caller.tenant, None);
        begin(
            &mut tx,
            &digest,
            REGISTER,
            Some(caller.user_id),
            &to_json(&state)?,
            now,
        )
        .await?;
        let event = caller_event(
            "passkey_registration_started",
            caller,
            client,
            String::new(),
            now,
        );
        tx.audit().append(&event).await?;
        tx.commit().await?;
        to_options(&token, &options.public_key)
    }

    /// Finishes adding a passkey: the authenticator's answer to the ceremony the caller began.
    /// The owner is emailed and every other session of theirs ends.
    pub async fn register(
        &self,
        caller: &Authenticated,
        ceremony: &str,
        credential: &RegisterPublicKeyCredential,
        name: Option<&str>,
        client: &Client,
    ) -> ServiceResult<PasskeyInfo> {
        let name = passkey_name(name)?;
        let token =
            OpaqueToken::parse(TokenKind::Ceremony, ceremony).map_err(|_| invalid_ceremony())?;
        if token.tenant() != &caller.tenant {
            return Err(invalid_ceremony());
        }
        let tenant = caller_tenant(&self.tenants, caller).await?;
        let webauthn = self.webauthn(&tenant)?;
        let now = self.clock.now_secs();
        let mut tx = self.store.write(&caller.tenant).await?;
        let taken = tx
            .passkeys()
            .take(&self.one_time.token_digest(&token), now)
            .await?
            .filter(|c| c.purpose == REGISTER && c.user_id == Some(caller.user_id));
        let Some(taken) = taken else {
            tx.commit().await?;
            return Err(invalid_ceremony());
        };
        let state: PasskeyRegistration = parse_state(&taken.state)?;
        let passkey = match webauthn.finish_passkey_registration(credential, &state) {
            Ok(passkey) => passkey,
            Err(error) => {
                let event = caller_event(
                    "passkey_registration_failed",
                    caller,
                    client,
                    error.to_string(),
                    now,
                );
                tx.audit().append(&event).await?;
                tx.commit().await?;
                return Err(invalid_passkey(&error));
            }
        };
        // Its public record, stored whole; its backup flags stored beside it for listings.
        let record = serde_json::to_value(&passkey).map_err(|_| corrupt_state())?;
        let flag = |name: &str| record["cred"][name].as_bool().unwrap_or(false);
        let stored = StoredPasskey {
            id: Uuid::from_bytes(clock::random()).to_string(),
            user_id: caller.user_id,
            credential_id: passkey.cred_id().as_ref().to_vec(),
            name,
            passkey: record.to_string(),
            backup_eligible: flag("backup_eligible"),
            backed_up: flag("backup_state"),
            created_at: now,
            last_used_at: None,
        };
        match tx.passkeys().add(&stored).await {
            Err(crate::store::StoreError::Conflict) => {
                return Err(ServiceError::Conflict {
                    code: "passkey_exists",
                    detail: "This authenticator's passkey is registered already.".to_owned(),
                })
            }
            other => other?,
        }
        let event = caller_event("passkey_added", caller, client, stored.id.clone(), now);
        tx.audit().append(&event).await?;
        tell_owner_of_factor(
            &mut tx,
            MailKind::FactorAdded,
            &tenant,
            &caller.user,
            PASSKEY,
            self.clock.now_millis_i64(),
        )
        .await?;
        let ended = end_other_sessions(&mut tx, "passkey_added", caller, client, now).await?;
        tx.commit().await?;
        self.revocations.sessions_ended(&caller.tenant, &ended);
        Ok(stored.into())
    }

    /// Starts a passkey sign-in to `tenant`. With `email`, the options list that account's
    /// passkeys; an address with none (or no account) gets options of the same shape, with a
    /// keyed decoy credential, and a ceremony that can never succeed. Without, a discoverable
    /// sign-in: the authenticator offers its own passkeys for this relying party.
    pub async fn login_options(
        &self,
        tenant: &str,
        named_tenant: Option<&TenantSlug>,
        email: Option<&str>,
    ) -> ServiceResult<Options> {
        let slug = TenantSlug::parse(tenant).map_err(|_| ServiceError::TenantNotFound)?;
        if named_tenant.is_some_and(|named| named != &slug) {
            return Err(ServiceError::TenantMismatch);
        }
        // A malformed address is treated as an unknown one (decoy options), as a password
        // sign-in treats it: the answer never tells which addresses could exist.
        let account = email.map(|given| given.trim().to_lowercase());
        let email = email.and_then(|given| Email::parse(given).ok());
        if let Some(email) = &email {
            self.limiter
                .enforce(RouteClass::Credential, &account_subject(&slug, email))
                .await?;
        }
        let tenant = self
            .tenants
            .get(&slug)
            .await?
            .ok_or(ServiceError::TenantNotFound)?;
        let webauthn = self.webauthn(&tenant)?;
        let now = self.clock.now_secs();
        let mut tx = self.store.write(&slug).await?;
        let (options, purpose, user, state) = match (&account, &email) {
            (None, _) => {
                let (options, state): (RequestChallengeResponse, DiscoverableAuthentication) =
                    webauthn
                        .start_discoverable_authentication()
                        .map_err(|e| invalid_passkey(&e))?;
                (options, DISCOVERABLE, None, to_json(&state)?)
            }
            (Some(account), email) => {
                let user = match email {
                    Some(email) => tx.users().by_email(email).await?.filter(|u| !u.disabled),
                    None => None,
                };
                let passkeys = match &user {
                    Some(user) => tx.passkeys().of_user(&user.id).await?,
                    None => Vec::new(),
                };
                let passkeys = parse_passkeys(&passkeys)?;
                if passkeys.is_empty() {
                    let (mut options, state) = webauthn
                        .start_discoverable_authentication()
                        .map_err(|e| invalid_passkey(&e))?;
                    // The shape of a real account's options: one allowed credential, no
                    // conditional mediation. Its state is never finished (no account).
                    options.mediation = None;
                    options.public_key.extensions = None;
                    let decoy = self.one_time.decoy_credential_id(&slug, account);
                    options.public_key.allow_credentials =
                        vec![webauthn_rs_proto::AllowCredentials {
                            type_: "public-key".to_owned(),
                            id: Base64UrlSafeData::from(decoy),
                            transports: None,
                        }];
                    (options, LOGIN, None, to_json(&state)?)
                } else {
                    let (options, state): (RequestChallengeResponse, PasskeyAuthentication) =
                        webauthn
                            .start_passkey_authentication(&passkeys)
                            .map_err(|e| invalid_passkey(&e))?;
                    (options, LOGIN, user.map(|u| u.id), to_json(&state)?)
                }
            }
        };
        let (token, digest) = self.one_time.new_ceremony(&slug, account.as_deref());
        begin(&mut tx, &digest, purpose, user, &state, now).await?;
        tx.commit().await?;
        to_options(&token, &options.public_key)
    }

    /// Finishes a passkey sign-in: tokens as a password sign-in gives them, with
    /// `amr: ["webauthn"]` and no second step (a user-verified passkey is multi-factor). Every
    /// failure is `InvalidCredentials`; a signature counter that went backwards (a cloned
    /// authenticator) is refused and audited.
    pub async fn login(
        &self,
        ceremony: &str,
        credential: &PublicKeyCredential,
        client: &Client,
    ) -> ServiceResult<Issued> {
        let token = OpaqueToken::parse(TokenKind::Ceremony, ceremony)
            .map_err(|_| ServiceError::InvalidCredentials)?;
        if let Some(subject) = ceremony_account_subject(ceremony) {
            self.limiter
                .enforce(RouteClass::Credential, &subject)
                .await?;
        }
        let tenant = self
            .tenants
            .get(token.tenant())
            .await?
            .ok_or(ServiceError::InvalidCredentials)?;
        let webauthn = self.webauthn(&tenant)?;
        let now = self.clock.now_secs();
        let mut tx = self.store.write(&tenant.slug).await?;
        let Some(taken) = tx
            .passkeys()
            .take(&self.one_time.token_digest(&token), now)
            .await?
        else {
            tx.commit().await?;
            return Err(ServiceError::InvalidCredentials);
        };
        let outcome = self
            .assert(&mut tx, &webauthn, &tenant, &taken, credential)
            .await?;
        let (user, stored, result) = match outcome {
            Ok(found) => found,
            Err((user, event, detail)) => {
                let audit = audit_event(event, client, user.as_ref(), None, detail, now);
                tx.audit().append(&audit).await?;
                tx.commit().await?;
                return Err(ServiceError::InvalidCredentials);
            }
        };
        self.record_use(&mut tx, &stored, &result, now).await?;
        let (verdict, _) = sign_in_verdict(&mut tx, &tenant, &user, Credential::Passkey).await?;
        match verdict {
            Verdict::Open => {}
            Verdict::EmailNotVerified => {
                tx.commit().await?;
                return Err(ServiceError::EmailNotVerified);
            }
            _ => {
                tx.commit().await?;
                return Err(ServiceError::InvalidCredentials);
            }
        }
        let (session, refresh) = self
            .tokens
            .open_session(&mut tx, &user, Credential::Passkey.amr(), client)
            .await?;
        let event = audit_event(
            "passkey_login",
            client,
            Some(&user.id),
            Some(&session.id),
            stored.id.clone(),
            now,
        );
        tx.audit().append(&event).await?;
        tx.commit().await?;
        self.tokens
            .issue(&tenant.slug, user, &session, &refresh)
            .await
    }

    /// Checks an assertion against the ceremony `taken`: the account, its passkey and
    /// webauthn-rs's result, or why not (the account if known, the audit event, a detail).
    #[allow(clippy::type_complexity)]
    async fn assert(
        &self,
        tx: &mut TenantTx,
        webauthn: &Webauthn,
        tenant: &Tenant,
        taken: &Ceremony,
        credential: &PublicKeyCredential,
    ) -> ServiceResult<
        Result<(User, StoredPasskey, AuthenticationResult), (Option<UserId>, &'static str, String)>,
    > {
        let failed =
            |user: Option<UserId>, detail: String| Err((user, "passkey_login_failed", detail));
        // The account: the one the ceremony began for, or the one the authenticator names.
        let (user_id, state) = match (taken.purpose.as_str(), taken.user_id) {
            (LOGIN, Some(user)) => (user, Assertion::Known(parse_state(&taken.state)?)),
            (DISCOVERABLE, None) => match webauthn.identify_discoverable_authentication(credential)
            {
                Ok((handle, _)) => (
                    UserId::parse(&handle.to_string())
                        .map_err(|_| ServiceError::InvalidCredentials)?,
                    Assertion::Discoverable(parse_state(&taken.state)?),
                ),
                Err(e) => return Ok(failed(None, e.to_string())),
            },
            _ => return Ok(failed(None, "no account".to_owned())),
        };
        let Some(user) = tx.users().by_id(&user_id).await?.filter(|u| !u.disabled) else {
            return Ok(failed(None, "no account".to_owned()));
        };
        // Each assertion counts against the account, whichever way it was named.
        self.limiter
            .enforce(
                RouteClass::Credential,
                &account_subject(&tenant.slug, &user.email),
            )
            .await?;
        Ok(
            match self
                .check_assertion(tx, webauthn, &user_id, state, credential)
                .await?
            {
                Ok((stored, result)) => Ok((user, stored, result)),
                Err((event, detail)) => Err((Some(user_id), event, detail)),
            },
        )
    }

    /// Checks `credential` against the ceremony `state` and `user`'s passkeys as stored now:
    /// the passkey (locked) and webauthn-rs's result, or why not (the audit event, a detail).
    /// A signature counter that did not advance past the stored one is a clone.
    pub(super) async fn check_assertion(
        &self,
        tx: &mut TenantTx,
        webauthn: &Webauthn,
        user_id: &UserId,
        state: Assertion,
        credential: &PublicKeyCredential,
    ) -> ServiceResult<Result<(StoredPasskey, AuthenticationResult), (&'static str, String)>> {
        let result = match state {
            Assertion::Discoverable(state) => {
                let passkeys = parse_passkeys(&tx.passkeys().of_user(user_id).await?)?;
                let keys: Vec<DiscoverableKey> =
                    passkeys.iter().map(DiscoverableKey::from).collect();
                webauthn.finish_discoverable_authentication(credential, state, &keys)
            }
            Assertion::Known(state) => webauthn.finish_passkey_authentication(credential, &state),
        };
        let result = match result {
            Ok(result) => result,
            Err(WebauthnError::CredentialPossibleCompromise) => {
                return Ok(Err((
                    "passkey_clone_suspected",
                    "the signature counter did not advance".to_owned(),
                )))
            }
            Err(e) => return Ok(Err(("passkey_login_failed", e.to_string()))),
        };
        // The passkey as stored now, locked: the ceremony's state holds it as it was when the
        // ceremony began, and another sign-in may have advanced its counter since.
        let Some(found) = tx
            .passkeys()
            .by_credential(result.cred_id().as_ref())
            .await?
            .filter(|p| &p.user_id == user_id)
        else {
            return Ok(Err((
                "passkey_login_failed",
                "unknown credential".to_owned(),
            )));
        };
        let stored_counter = serde_json::from_str::<serde_json::Value>(&found.passkey)
            .ok()
            .and_then(|record| record["cred"]["counter"].as_u64())
            .unwrap_or(0);
        let counter = u64::from(result.counter());
        if (counter > 0 || stored_counter > 0) && counter <= stored_counter {
            return Ok(Err((
                "passkey_clone_suspected",
                format!("signature counter {counter}, {stored_counter} seen before"),
            )));
        }
        if !result.user_verified() {
            return Ok(Err((
                "passkey_login_failed",
                "no user verification".to_owned(),
            )));
        }
        Ok(Ok((found, result)))
    }

    /// Records a sign-in with `stored`: its counter and flags from `result`, and the time.
    pub(super) async fn record_use(
        &self,
        tx: &mut TenantTx,
        stored: &StoredPasskey,
        result: &AuthenticationResult,
        now: i64,
    ) -> ServiceResult<()> {
        let mut passkey: Passkey =
            serde_json::from_str(&stored.passkey).map_err(|_| corrupt_state())?;
        passkey.update_credential(result);
        tx.passkeys()
            .used(
                &stored.id,
                &serde_json::to_string(&passkey).map_err(|_| corrupt_state())?,
                result.backup_state(),
                now,
            )
            .await?;
        Ok(())
    }

    /// Opens the passkey answer to a sign-in's second-factor challenge (`challenge`: its
    /// digest, which keys this ceremony: one per challenge, a new one replacing the last):
    /// the options for `user`'s passkeys.
    pub(super) async fn begin_second_factor(
        &self,
        tx: &mut TenantTx,
        tenant: &Tenant,
        user: &UserId,
        challenge: &[u8],
        now: i64,
    ) -> ServiceResult<serde_json::Value> {
        let webauthn = self.webauthn(tenant)?;
        let passkeys = parse_passkeys(&tx.passkeys().of_user(user).await?)?;
        if passkeys.is_empty() {
            return Err(ServiceError::InvalidMfaToken);
        }
        let (options, state) = webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(|e| invalid_passkey(&e))?;
        tx.passkeys().take(challenge, now).await?;
        begin(
            tx,
            challenge,
            SECOND_FACTOR,
            Some(*user),
            &to_json(&state)?,
            now,
        )
        .await?;
        serde_json::to_value(&options.public_key).map_err(|_| corrupt_state())
    }

    /// Checks the passkey answer to the challenge of digest `challenge` (its ceremony is
    /// spent either way); records the passkey's use when it verifies, else says why (the
    /// audit event, a detail).
    pub(super) async fn finish_second_factor(
        &self,
        tx: &mut TenantTx,
        tenant: &Tenant,
        user: &UserId,
        challenge: &[u8],
        credential: &PublicKeyCredential,
        now: i64,
    ) -> ServiceResult<Result<(), (&'static str, String)>> {
        let webauthn = self.webauthn(tenant)?;
        let Some(taken) = tx
            .passkeys()
            .take(challenge, now)
            .await?
            .filter(|c| c.purpose == SECOND_FACTOR && c.user_id == Some(*user))
        else {
            return Ok(Err(("mfa_failed", "no passkey options asked".to_owned())));
        };
        let state = Assertion::Known(parse_state(&taken.state)?);
        match self
            .check_assertion(tx, &webauthn, user, state, credential)
            .await?
        {
            Ok((stored, result)) => {
                self.record_use(tx, &stored, &result, now).await?;
                Ok(Ok(()))
            }
            Err(why) => Ok(Err(why)),
        }
    }

    /// Whether `user` has a passkey: then a sign-in's challenge offers it.
    pub(super) async fn any(tx: &mut TenantTx, user: &UserId) -> ServiceResult<bool> {
        Ok(tx.passkeys().any(user).await?)
    }

    /// The caller's passkeys, oldest first.
    pub async fn list(&self, caller: &Authenticated) -> ServiceResult<Vec<PasskeyInfo>> {
        let mut tx = self.store.read(&caller.tenant).await?;
        Ok(tx
            .passkeys()
            .of_user(&caller.user_id)
            .await?
            .into_iter()
            .map(PasskeyInfo::from)
            .collect())
    }

    /// Renames one of the caller's passkeys.
    pub async fn rename(
        &self,
        caller: &Authenticated,
        id: &str,
        name: &str,
        client: &Client,
    ) -> ServiceResult<PasskeyInfo> {
        let name = passkey_name(Some(name))?;
        let now = self.clock.now_secs();
        let mut tx = self.store.write(&caller.tenant).await?;
        if !tx.passkeys().rename(&caller.user_id, id, &name).await? {
            return Err(ServiceError::NotFound);
        }
        let event = caller_event("passkey_renamed", caller, client, id.to_owned(), now);
        tx.audit().append(&event).await?;
        let renamed = tx
            .passkeys()
            .of_user(&caller.user_id)
            .await?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or(ServiceError::NotFound)?;
        tx.commit().await?;
        Ok(renamed.into())
    }

    /// Removes one of the caller's passkeys, confirmed by their password; the owner is
    /// emailed and every other session of theirs ends.
    pub async fn remove(
        &self,
        caller: &Authenticated,
        id: &str,
        password: Option<SecretString>,
        client: &Client,
    ) -> ServiceResult<()> {
        confirm_factor_change(&self.hasher, caller, password).await?;
        let tenant = caller_tenant(&self.tenants, caller).await?;
        let now = self.clock.now_secs();
        let mut tx = self.store.write(&caller.tenant).await?;
        if !tx.passkeys().remove(&caller.user_id, id, now).await? {
            return Err(ServiceError::NotFound);
        }
        let event = caller_event("passkey_removed", caller, client, id.to_owned(), now);
        tx.audit().append(&event).await?;
        tell_owner_of_factor(
            &mut tx,
            MailKind::FactorRemoved,
            &tenant,
            &caller.user,
            PASSKEY,
            self.clock.now_millis_i64(),
        )
        .await?;
        let ended = end_other_sessions(&mut tx, "passkey_removed", caller, client, now).await?;
        tx.commit().await?;
        self.revocations.sessions_ended(&caller.tenant, &ended);
        Ok(())
    }
}

/// The state of a sign-in ceremony: for a known account, or discoverable.
pub(super) enum Assertion {
    /// The account was named when the ceremony began.
    Known(PasskeyAuthentication),
    /// The authenticator names the account.
    Discoverable(DiscoverableAuthentication),
}

fn to_json<T: serde::Serialize>(state: &T) -> ServiceResult<String> {
    serde_json::to_string(state).map_err(|_| corrupt_state())
}

/// Stores a ceremony's `state` (as JSON) under `digest`, for `CEREMONY_SECS`.
async fn begin(
    tx: &mut TenantTx,
    digest: &[u8],
    purpose: &str,
    user_id: Option<UserId>,
    state: &str,
    now: i64,
) -> ServiceResult<()> {
    let ceremony = Ceremony {
        purpose: purpose.to_owned(),
        user_id,
        state: state.to_owned(),
        expires_at: now + CEREMONY_SECS,
    };
    Ok(tx.passkeys().begin(digest, &ceremony, now).await?)
}

/// The answer to an options request: the ceremony's token and WebAuthn's options.
fn to_options<T: serde::Serialize>(token: &OpaqueToken, public_key: &T) -> ServiceResult<Options> {
    Ok(Options {
        ceremony: token.expose().to_owned(),
        public_key: serde_json::to_value(public_key).map_err(|_| corrupt_state())?,
    })
}

fn parse_state<T: serde::de::DeserializeOwned>(state: &str) -> ServiceResult<T> {
    serde_json::from_str(state).map_err(|_| corrupt_state())
}

fn parse_passkeys(stored: &[StoredPasskey]) -> ServiceResult<Vec<Passkey>> {
    stored
        .iter()
        .map(|p| serde_json::from_str::<Passkey>(&p.passkey))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| corrupt_state())
}

/// A passkey's name: given, trimmed, printable and at most [`NAME_MAX_CHARS`]; "Passkey"
/// when none is given.
fn passkey_name(name: Option<&str>) -> ServiceResult<String> {
    let name = name.map_or("Passkey", str::trim);
    if name.is_empty()
        || name.chars().count() > NAME_MAX_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(ServiceError::InvalidInput {
            code: "invalid_name",
            detail: format!("A passkey's name is 1 to {NAME_MAX_CHARS} printable characters."),
        });
    }
    Ok(name.to_owned())
}

//! The secrets that leave by email (link tokens, 6-digit codes) and MFA tokens: drawn from the
//! OS RNG, and stored only as HMAC-SHA-256 under a server key, so that a leaked database gives
//! neither a usable link nor, by a table of all million codes, a code.

use std::sync::Arc;

use tessera_core::model::{TenantSlug, UserId};
use tessera_core::otp;
use tessera_core::token::{OpaqueToken, TokenKind, ACCOUNT_TAG_BYTES};

use super::ServiceResult;
use crate::clock;
use crate::keys::hmac_sha256;
use crate::mail::{self, MailKind};
use crate::store::{NewMail, Purpose, Tenant, TenantTx, User};

/// Makes and digests one-time secrets.
#[derive(Clone)]
pub struct OneTime {
    key: Arc<[u8; 32]>,
    public_url: Arc<str>,
}

impl OneTime {
    /// Digests under `key`; links point under `public_url`.
    #[must_use]
    pub fn new(key: [u8; 32], public_url: &str) -> Self {
        Self {
            key: Arc::new(key),
            public_url: public_url.into(),
        }
    }

    /// A new link token of `tenant` and its digest.
    #[must_use]
    pub fn new_link(&self, tenant: &TenantSlug) -> (OpaqueToken, [u8; 32]) {
        let token = OpaqueToken::generate(TokenKind::EmailLink, tenant, clock::random());
        let digest = self.token_digest(&token);
        (token, digest)
    }

    /// A new MFA token of `tenant` for `user`, and its digest. Its account tag (see
    /// `OpaqueToken::account_tag`) is a keyed hash of the user, the rest random, so that every
    /// challenge of one user shares one per-account limit, at the edge too.
    #[must_use]
    pub fn new_challenge(&self, tenant: &TenantSlug, user: &UserId) -> (OpaqueToken, [u8; 32]) {
        let tag = hmac_sha256(
            self.key.as_slice(),
            format!("mfa-account\0{user}").as_bytes(),
        );
        let mut random: [u8; 32] = clock::random();
        random[..ACCOUNT_TAG_BYTES].copy_from_slice(&tag[..ACCOUNT_TAG_BYTES]);
        let token = OpaqueToken::generate(TokenKind::MfaChallenge, tenant, random);
        let digest = self.token_digest(&token);
        (token, digest)
    }

    /// A new passkey ceremony token of `tenant`, and its digest. A ceremony begun for a named
    /// account (`account`: the address given, known or not) carries a keyed hash of it as its
    /// account tag, so that the edge and the origin charge that account's budget from the
    /// token alone; a discoverable one is all random.
    #[must_use]
    pub fn new_ceremony(
        &self,
        tenant: &TenantSlug,
        account: Option<&str>,
    ) -> (OpaqueToken, [u8; 32]) {
        let mut random: [u8; 32] = clock::random();
        if let Some(account) = account {
            let tag = hmac_sha256(
                self.key.as_slice(),
                format!("passkey-account\0{tenant}\0{account}").as_bytes(),
            );
            random[..ACCOUNT_TAG_BYTES].copy_from_slice(&tag[..ACCOUNT_TAG_BYTES]);
        }
        let token = OpaqueToken::generate(TokenKind::Ceremony, tenant, random);
        let digest = self.token_digest(&token);
        (token, digest)
    }

    /// The credential id offered for an address with no passkey: keyed, so that the same
    /// address always gets the same one and nobody can tell it from a real credential's.
    #[must_use]
    pub fn decoy_credential_id(&self, tenant: &TenantSlug, email: &str) -> Vec<u8> {
        hmac_sha256(
            self.key.as_slice(),
            format!("passkey-decoy\0{tenant}\0{email}").as_bytes(),
        )
        .to_vec()
    }

    /// The stored digest of an opaque token (its kind is part of its text).
    #[must_use]
    pub fn token_digest(&self, token: &OpaqueToken) -> [u8; 32] {
        hmac_sha256(self.key.as_slice(), token.expose().as_bytes())
    }

    /// A new code for `user` and `scope`, and its digest.
    #[must_use]
    pub fn new_code(&self, scope: &str, user: &UserId) -> (String, [u8; 32]) {
        let code = otp::code_from_random(clock::random());
        let digest = self.code_digest(scope, user, &code);
        (code, digest)
    }

    /// The digest of `code` for `user` and `scope`: bound to both, so that a code is worth
    /// nothing for another user or purpose.
    #[must_use]
    pub fn code_digest(&self, scope: &str, user: &UserId, code: &str) -> [u8; 32] {
        hmac_sha256(
            self.key.as_slice(),
            format!("code\0{scope}\0{user}\0{code}").as_bytes(),
        )
    }

    /// Stores a new link token of `user` for `purpose` in `tx` (voiding an earlier one),
    /// valid `lifetime_secs` from `now`, and answers the link to the hosted page at `path`.
    pub async fn store_link(
        &self,
        tx: &mut TenantTx,
        user: &User,
        purpose: Purpose,
        now: i64,
        lifetime_secs: u64,
        path: &str,
    ) -> ServiceResult<String> {
        let (token, digest) = self.new_link(tx.tenant());
        tx.secrets()
            .replace(
                &user.id,
                purpose,
                &digest,
                now,
                now + lifetime_secs.cast_signed(),
            )
            .await?;
        Ok(mail::link(&self.public_url, path, token.expose()))
    }
}

/// The email of `kind` to `user` of `tenant`, with the template's `extra` parameters.
#[must_use]
pub fn mail_to(kind: MailKind, tenant: &Tenant, user: &User, extra: serde_json::Value) -> NewMail {
    let mut params = serde_json::json!({
        "tenant_name": tenant.name,
        "name": display_name(user),
    });
    if let (Some(params), serde_json::Value::Object(extra)) = (params.as_object_mut(), extra) {
        params.extend(extra);
    }
    NewMail {
        kind: kind.name(),
        recipient: user.email.to_string(),
        params,
    }
}

/// What to call the user in an email or a default team's name: their name, else the local
/// part of their address.
#[must_use]
pub fn display_name(user: &User) -> String {
    let name = user.name.trim();
    if name.is_empty() {
        user.email
            .as_str()
            .split('@')
            .next()
            .unwrap_or_default()
            .to_owned()
    } else {
        name.to_owned()
    }
}

/// The scope of an MFA challenge's emailed code.
pub const MFA_SCOPE: &str = "mfa";

/// The purpose of a secret as the scope of its code digest.
#[must_use]
pub const fn scope(purpose: Purpose) -> &'static str {
    purpose.as_str()
}

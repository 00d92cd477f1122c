//! Rotating the master key without downtime: every sealed secret (signing keys, derived keys,
//! every tenant's TOTP secrets and webhook secrets) that only the accepted key opens is re-sealed under the current
//! one, while every node opens with both (`TESSERA_MASTER_KEY` and
//! `TESSERA_MASTER_KEY_ACCEPTED`). Each value is re-sealed in a write of its own (a tenant's
//! secrets in one transaction), so an interrupted run leaves nothing half-written and running
//! it again goes on where it stopped; a value that opens with neither key stops it, naming
//! the value.

use crate::keys::{derived_key_context, KeyringError, MasterKey, Reseal, DERIVED_KEY_PURPOSES};
use crate::store::DynStore;

/// What a rotation re-sealed, and what was under the current key already.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rotation {
    /// Signing keys, derived keys, TOTP and webhook secrets re-sealed under the current key.
    pub resealed: usize,
    /// Those that opened with the current key already.
    pub current: usize,
    /// Tenants whose TOTP and webhook secrets were looked at.
    pub tenants: usize,
}

impl Rotation {
    fn count(&mut self, outcome: &Reseal) {
        match outcome {
            Reseal::Current => self.current += 1,
            Reseal::Resealed(_) => self.resealed += 1,
            Reseal::Unopenable => {}
        }
    }
}

/// Re-seals, under `master`'s current key, every sealed secret that only its accepted key
/// opens.
///
/// # Errors
/// [`KeyringError::Unseal`] naming a value that opens with neither key; storage errors.
pub async fn rotate_master(store: &DynStore, master: &MasterKey) -> Result<Rotation, KeyringError> {
    let mut done = Rotation::default();
    for key in store.keys().await? {
        let outcome = master.reseal(&key.kid, &key.private_key_sealed);
        refuse_unopenable(&outcome, || format!("signing key {}", key.kid))?;
        if let Reseal::Resealed(sealed) = &outcome {
            store.reseal_signing_key(&key.kid, sealed).await?;
        }
        done.count(&outcome);
    }
    for purpose in DERIVED_KEY_PURPOSES {
        let Some(sealed) = store.derived_key(purpose).await? else {
            return Err(KeyringError::DerivedKeyMissing(purpose.to_owned()));
        };
        let outcome = master.reseal(&derived_key_context(purpose), &sealed);
        refuse_unopenable(&outcome, || format!("derived key {purpose}"))?;
        if let Reseal::Resealed(sealed) = &outcome {
            store.reseal_derived_key(purpose, sealed).await?;
        }
        done.count(&outcome);
    }
    for tenant in store.tenants().await? {
        let mut tx = store.write(&tenant.slug).await?;
        for (user, sealed) in tx.totp().sealed_secrets().await? {
            let context = crate::services::totp::seal_context(tenant.slug.as_str(), &user);
            let outcome = master.reseal(&context, &sealed);
            refuse_unopenable(&outcome, || {
                format!("the TOTP secret of user {user} in tenant {}", tenant.slug)
            })?;
            if let Reseal::Resealed(sealed) = &outcome {
                tx.totp().reseal(&user, sealed).await?;
            }
            done.count(&outcome);
        }
        for endpoint in tx.webhooks().endpoints().await? {
            let context = crate::services::webhooks::seal_context(&tenant.slug, &endpoint.id);
            let outcome = master.reseal(&context, &endpoint.secret_sealed);
            refuse_unopenable(&outcome, || {
                format!(
                    "the secret of webhook endpoint {} in tenant {}",
                    endpoint.id, tenant.slug
                )
            })?;
            if let Reseal::Resealed(sealed) = &outcome {
                tx.webhooks().reseal(&endpoint.id, sealed).await?;
            }
            done.count(&outcome);
        }
        tx.commit().await?;
        done.tenants += 1;
    }
    Ok(done)
}

fn refuse_unopenable(outcome: &Reseal, what: impl FnOnce() -> String) -> Result<(), KeyringError> {
    if *outcome == Reseal::Unopenable {
        Err(KeyringError::Unseal(what()))
    } else {
        Ok(())
    }
}

//! The OpenID clients of a tenant: registering them (by the operator's CLI), their settings,
//! and how they prove themselves at the token endpoint.

use std::sync::Arc;

use tessera_core::jwt::KeyAlgorithm;
use tessera_core::model::{SessionId, TenantSlug};
use tessera_core::oidc::{check_redirect_uri, Grant};
use tessera_core::token::{OpaqueToken, TokenKind};

use super::{
    caller_event, require_admin, Authenticated, Client, Revocations, ServiceError, ServiceResult,
};
use crate::clock::{self, SharedClock};
use crate::store::oidc::OidcClient;
use crate::store::DynStore;
use crate::tenants::Directory;

/// A client's settings as its registrar gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// A name for people.
    pub name: String,
    /// Exact redirect URIs (at least one).
    pub redirect_uris: Vec<String>,
    /// Exact URIs RP-initiated logout may return to.
    pub post_logout_redirect_uris: Vec<String>,
    /// Grants; empty means `authorization_code` and `refresh_token`.
    pub grants: Vec<Grant>,
    /// `RS256` (the default) or `EdDSA`.
    pub id_token_alg: KeyAlgorithm,
}

/// A new client and, for a confidential one, its secret: shown once, stored hashed.
pub struct Registered {
    /// The client.
    pub client: OidcClient,
    /// The secret, for a confidential client.
    pub secret: Option<String>,
}

/// How a caller of the token endpoint says which client it is.
#[derive(Debug, Clone, Default)]
pub struct ClientAuth {
    /// The client id (HTTP Basic's user, or the form's `client_id`).
    pub client_id: String,
    /// The secret (HTTP Basic's password, or the form's `client_secret`).
    pub secret: Option<String>,
}

/// The tenant's OpenID clients.
#[derive(Clone)]
pub struct OidcClients {
    store: DynStore,
    tenants: Arc<Directory>,
    revocations: Revocations,
    clock: SharedClock,
}

fn invalid(detail: impl Into<String>) -> ServiceError {
    ServiceError::InvalidInput {
        code: "invalid_client_settings",
        detail: detail.into(),
    }
}

/// A public client asked for `client_credentials`: a rule across two fields, with its own code.
fn public_client_credentials() -> ServiceError {
    ServiceError::InvalidInput {
        code: "public_client_credentials",
        detail: "A public client has no secret, so it cannot use client_credentials.".into(),
    }
}

/// The longest client name.
const MAX_NAME_CHARS: usize = 100;

impl ClientSettings {
    fn checked(mut self) -> ServiceResult<Self> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(invalid("A client's name is 1 to 100 characters."));
        }
        self.name = name.to_owned();
        if self.redirect_uris.is_empty() {
            return Err(invalid("A client needs at least one redirect URI."));
        }
        for uri in self
            .redirect_uris
            .iter()
            .chain(&self.post_logout_redirect_uris)
        {
            check_redirect_uri(uri).map_err(|e| invalid(format!("{uri}: {e}")))?;
        }
        if self.grants.is_empty() {
            self.grants = vec![Grant::AuthorizationCode, Grant::RefreshToken];
        }
        let mut grants = Vec::with_capacity(self.grants.len());
        for grant in self.grants {
            if !grants.contains(&grant) {
                grants.push(grant);
            }
        }
        self.grants = grants;
        if self.id_token_alg == KeyAlgorithm::HS256 {
            return Err(invalid("ID tokens are signed with RS256 or EdDSA."));
        }
        Ok(self)
    }
}

impl OidcClients {
    /// The registry over its dependencies.
    #[must_use]
    pub fn new(
        store: DynStore,
        tenants: Arc<Directory>,
        revocations: Revocations,
        clock: SharedClock,
    ) -> Self {
        Self {
            store,
            tenants,
            revocations,
            clock,
        }
    }

    async fn tenant(&self, tenant: &TenantSlug) -> ServiceResult<()> {
        if self.tenants.exists(tenant).await? {
            Ok(())
        } else {
            Err(ServiceError::TenantNotFound)
        }
    }

    /// Registers a client: confidential (with a secret) unless `public`. A public client
    /// cannot keep a secret (a browser or mobile app) and must use PKCE; neither kind may use
    /// `client_credentials` without a secret.
    pub async fn create(
        &self,
        tenant: &TenantSlug,
        settings: ClientSettings,
        public: bool,
    ) -> ServiceResult<Registered> {
        self.tenant(tenant).await?;
        let settings = settings.checked()?;
        if public && settings.grants.contains(&Grant::ClientCredentials) {
            return Err(public_client_credentials());
        }
        let secret = (!public).then(|| {
            OpaqueToken::generate(TokenKind::ClientSecret, tenant, clock::random())
                .expose()
                .to_owned()
        });
        let now = self.clock.now_secs();
        let client = OidcClient {
            id: uuid::Uuid::new_v4().simple().to_string(),
            name: settings.name,
            secret_digest: secret.as_deref().map(secret_digest),
            redirect_uris: settings.redirect_uris,
            post_logout_redirect_uris: settings.post_logout_redirect_uris,
            grants: settings.grants,
            id_token_alg: settings.id_token_alg.name().to_owned(),
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.store.write(tenant).await?;
        tx.oidc().add_client(&client).await?;
        tx.commit().await?;
        Ok(Registered { client, secret })
    }

    /// Every client of the tenant.
    pub async fn list(&self, tenant: &TenantSlug) -> ServiceResult<Vec<OidcClient>> {
        self.tenant(tenant).await?;
        Ok(self.store.read(tenant).await?.oidc().clients().await?)
    }

    /// One client.
    pub async fn get(&self, tenant: &TenantSlug, id: &str) -> ServiceResult<OidcClient> {
        self.tenant(tenant).await?;
        self.store
            .read(tenant)
            .await?
            .oidc()
            .client(id)
            .await?
            .ok_or(ServiceError::NotFound)
    }

    /// Replaces a client's settings.
    pub async fn update(
        &self,
        tenant: &TenantSlug,
        id: &str,
        settings: ClientSettings,
    ) -> ServiceResult<OidcClient> {
        self.tenant(tenant).await?;
        let settings = settings.checked()?;
        let mut tx = self.store.write(tenant).await?;
        let mut client = tx.oidc().client(id).await?.ok_or(ServiceError::NotFound)?;
        if !client.is_confidential() && settings.grants.contains(&Grant::ClientCredentials) {
            return Err(public_client_credentials());
        }
        client.name = settings.name;
        client.redirect_uris = settings.redirect_uris;
        client.post_logout_redirect_uris = settings.post_logout_redirect_uris;
        client.grants = settings.grants;
        client.id_token_alg = settings.id_token_alg.name().to_owned();
        client.updated_at = self.clock.now_secs();
        tx.oidc().update_client(&client).await?;
        tx.commit().await?;
        Ok(client)
    }

    /// Deletes a client and ends every session it holds: its tokens stop verifying at once,
    /// at the edge too.
    pub async fn delete(&self, tenant: &TenantSlug, id: &str) -> ServiceResult<()> {
        self.tenant(tenant).await?;
        let now = self.clock.now_secs();
        let mut tx = self.store.write(tenant).await?;
        let sessions = tx.oidc().sessions_of_client(id).await?;
        let mut ended = Vec::new();
        for session in sessions {
            if tx
                .sessions()
                .revoke(&session, "client_deleted", now)
                .await?
            {
                ended.push(session);
            }
        }
        if !tx.oidc().remove_client(id).await? {
            return Err(ServiceError::NotFound);
        }
        let own = client_session(id);
        tx.sessions().note_ended(&own, now);
        ended.push(own);
        tx.commit().await?;
        for session in &ended {
            self.revocations.session_ended(tenant, session);
        }
        Ok(())
    }

    /// [`OidcClients::create`] by an admin of the caller's tenant.
    pub async fn create_by(
        &self,
        caller: &Authenticated,
        settings: ClientSettings,
        public: bool,
        client: &Client,
    ) -> ServiceResult<Registered> {
        require_admin(caller)?;
        let registered = self.create(&caller.tenant, settings, public).await?;
        self.audit(caller, "oidc_client_created", &registered.client.id, client)
            .await?;
        Ok(registered)
    }

    /// [`OidcClients::list`] for an admin of the caller's tenant.
    pub async fn list_by(&self, caller: &Authenticated) -> ServiceResult<Vec<OidcClient>> {
        require_admin(caller)?;
        self.list(&caller.tenant).await
    }

    /// [`OidcClients::get`] for an admin of the caller's tenant.
    pub async fn get_by(&self, caller: &Authenticated, id: &str) -> ServiceResult<OidcClient> {
        require_admin(caller)?;
        self.get(&caller.tenant, id).await
    }

    /// [`OidcClients::update`] by an admin of the caller's tenant.
    pub async fn update_by(
        &self,
        caller: &Authenticated,
        id: &str,
        settings: ClientSettings,
        client: &Client,
    ) -> ServiceResult<OidcClient> {
        require_admin(caller)?;
        let updated = self.update(&caller.tenant, id, settings).await?;
        self.audit(caller, "oidc_client_updated", id, client)
            .await?;
        Ok(updated)
    }

    /// [`OidcClients::delete`] by an admin of the caller's tenant.
    pub async fn delete_by(
        &self,
        caller: &Authenticated,
        id: &str,
        client: &Client,
    ) -> ServiceResult<()> {
        require_admin(caller)?;
        self.delete(&caller.tenant, id).await?;
        self.audit(caller, "oidc_client_deleted", id, client).await
    }

    async fn audit(
        &self,
        caller: &Authenticated,
        event: &str,
        id: &str,
        client: &Client,
    ) -> ServiceResult<()> {
        let event = caller_event(
            event,
            caller,
            client,
            format!("client={id}"),
            self.clock.now_secs(),
        );
        let mut tx = self.store.write(&caller.tenant).await?;
        tx.audit().append(&event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The client a caller of the token endpoint proves to be: a confidential client by its
    /// secret (compared in constant time), a public one by its id alone (PKCE then proves the
    /// rest). Every failure is the same `invalid_client`.
    pub async fn authenticate(
        &self,
        tenant: &TenantSlug,
        auth: &ClientAuth,
    ) -> ServiceResult<OidcClient> {
        if !self.tenants.exists(tenant).await? {
            return Err(ServiceError::InvalidClient);
        }
        let client = self
            .store
            .read(tenant)
            .await?
            .oidc()
            .client(&auth.client_id)
            .await?;
        let client = client.ok_or(ServiceError::InvalidClient)?;
        let proven = match (&client.secret_digest, &auth.secret) {
            (Some(stored), Some(secret)) => {
                tessera_core::secret::ct_eq(stored, &secret_digest(secret))
            }
            (None, None) => true,
            _ => false,
        };
        if proven {
            Ok(client)
        } else {
            Err(ServiceError::InvalidClient)
        }
    }
}

/// The session id of the tokens a client holds as itself (`client_credentials`): one per
/// client, derived from its id, so that deleting the client ends them.
#[must_use]
pub fn client_session(client_id: &str) -> SessionId {
    let digest = tessera_core::secret::sha256(format!("oidc-client:{client_id}").as_bytes());
    let mut bytes = [0; 16];
    bytes.copy_from_slice(&digest[..16]);
    SessionId::from_random_bytes(bytes)
}

fn secret_digest(secret: &str) -> Vec<u8> {
    tessera_core::secret::sha256(secret.as_bytes()).to_vec()
}

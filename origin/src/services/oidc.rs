//! Each tenant's OpenID provider: authorization requests, the browser session of the hosted
//! sign-in page, authorization codes, the token endpoint, userinfo, revocation, introspection
//! and RP-initiated logout. Sign-in itself is the shared services' (password, second factors,
//! limits); a provider session is an ordinary session, so that everything that ends sessions
//! (sign-out everywhere, a password change, an admin) ends it too.

use std::sync::Arc;

use serde::Serialize;
use tessera_core::jwt::KeyAlgorithm;
use tessera_core::lifetimes::ACCESS_TOKEN_SECS;
use tessera_core::model::{SessionId, TenantSlug};
use tessera_core::oidc::{self as rules, Grant, IdTokenClaims, Prompt};
use tessera_core::policy::Api;
use tessera_core::token::{OpaqueToken, TokenKind};

use super::oidc_clients::{ClientAuth, OidcClients};
use super::{
    Authenticated, Authenticator, Client, Issued, Refresher, Revocations, ServiceError,
    ServiceResult, TokenIssuer,
};
use crate::clock::{self, SharedClock};
use crate::keys::Keyring;
use crate::limiter::Limiter;
use crate::store::oidc::{AuthorizationCode, OidcClient, OidcGrant};
use crate::store::{DynStore, Session, Tenant, User};
use crate::tenants::Directory;

/// An authorization request's parameters as sent (Core §3.1.2.1); unknown ones are ignored.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct AuthorizeParams {
    /// The client.
    pub client_id: String,
    /// Where to send the answer: one of the client's registered URIs, exactly.
    pub redirect_uri: String,
    /// `code`.
    pub response_type: String,
    /// Space-separated scopes; must include `openid`.
    pub scope: String,
    /// Echoed back.
    pub state: Option<String>,
    /// Put into the ID token.
    pub nonce: Option<String>,
    /// PKCE.
    pub code_challenge: Option<String>,
    /// `S256`.
    pub code_challenge_method: Option<String>,
    /// `none`, `login`.
    pub prompt: Option<String>,
    /// Seconds since the last sign-in beyond which the user signs in again.
    pub max_age: Option<String>,
    /// The address to fill in.
    pub login_hint: Option<String>,
}

/// Why an authorization request cannot even be answered to its client: shown as a page,
/// never redirected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotRedirectable {
    /// An unknown tenant or client, or an unregistered redirect URI: what the page says.
    Refused(&'static str),
    /// The client could not be looked up (the database is unavailable): try again.
    Unavailable,
}

/// An error sent back to the client's redirect URI (RFC 6749 §4.1.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirected {
    /// `error`.
    pub error: &'static str,
    /// `error_description`.
    pub description: &'static str,
}

/// A checked authorization request: its client and redirect URI are registered, so every
/// answer from here on goes back to the client.
#[derive(Debug, Clone)]
pub struct Authorization {
    /// The tenant.
    pub tenant: Tenant,
    /// The client.
    pub client: OidcClient,
    /// The registered redirect URI it named.
    pub redirect_uri: String,
    /// The request's `state`.
    pub state: Option<String>,
    /// The parameters, for the error checks and the code.
    pub params: AuthorizeParams,
}

/// The provider's browser session: a signed-in session of the tenant.
#[derive(Debug, Clone)]
pub struct BrowserSession {
    /// The session.
    pub session: Session,
    /// Its user.
    pub user: User,
}

/// The token endpoint's answer (RFC 6749 §5.1, Core §3.1.3.3). `Debug` prints no token.
#[derive(Clone, Serialize, utoipa::ToSchema)]
#[schema(as = OidcTokenResponse)]
pub struct TokenResponse {
    /// The access token (a JWT the edge verifies like any other).
    pub access_token: String,
    /// `Bearer`.
    pub token_type: &'static str,
    /// Seconds.
    pub expires_in: u64,
    /// The ID token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// Issued when the client asked for `offline_access` and may refresh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The scopes granted.
    pub scope: String,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// An introspection answer (RFC 7662 §2.2).
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
#[schema(as = OidcIntrospection)]
pub struct Introspection {
    /// Whether the token is active.
    pub active: bool,
    /// The scopes of its grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Its client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Its user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// `Bearer` or `refresh_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    /// Expiry, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Issue time, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// The issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
}

/// The provider.
#[derive(Clone)]
pub struct Provider {
    store: DynStore,
    tenants: Arc<Directory>,
    clients: OidcClients,
    tokens: TokenIssuer,
    keys: Keyring,
    authenticate: Authenticator,
    refresher: Refresher,
    limiter: Arc<Limiter>,
    revocations: Revocations,
    clock: SharedClock,
    public_url: Arc<str>,
}

impl Provider {
    /// The provider over its dependencies; issuers live under `public_url`.
    #[must_use]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: DynStore,
        tenants: Arc<Directory>,
        clients: OidcClients,
        tokens: TokenIssuer,
        keys: Keyring,
        authenticate: Authenticator,
        refresher: Refresher,
        limiter: Arc<Limiter>,
        revocations: Revocations,
        clock: SharedClock,
        public_url: &str,
    ) -> Self {
        Self {
            store,
            tenants,
            clients,
            tokens,
            keys,
            authenticate,
            refresher,
            limiter,
            revocations,
            clock,
            public_url: public_url.into(),
        }
    }

    /// The issuer of `tenant`.
    #[must_use]
    pub fn issuer(&self, tenant: &TenantSlug) -> String {
        rules::issuer(&self.public_url, tenant.as_str())
    }

    /// The tenant a provider path names, if it exists.
    pub async fn tenant(&self, slug: &str) -> ServiceResult<Tenant> {
        let slug = TenantSlug::parse(slug).map_err(|_| ServiceError::TenantNotFound)?;
        self.tenants
            .get(&slug)
            .await?
            .ok_or(ServiceError::TenantNotFound)
    }

    /// The client and redirect URI of a request, checked before anything is sent back to it.
    pub async fn check_client(
        &self,
        tenant: &str,
        params: AuthorizeParams,
    ) -> Result<Authorization, NotRedirectable> {
        let tenant = match self.tenant(tenant).await {
            Ok(tenant) => tenant,
            Err(ServiceError::TenantNotFound) => {
                return Err(NotRedirectable::Refused(
                    "This sign-in address names no organisation.",
                ))
            }
            Err(_) => return Err(NotRedirectable::Unavailable),
        };
        let lookup = async {
            let mut unit = self.store.read(&tenant.slug).await?;
            unit.oidc().client(&params.client_id).await
        };
        let client = lookup
            .await
            .map_err(|_| NotRedirectable::Unavailable)?
            .ok_or(NotRedirectable::Refused(
                "The application that sent you here is not registered.",
            ))?;
        // Exact match (RFC 9700 §4.1.3): no prefix, no wildcard, no normalisation.
        if !client.redirect_uris.contains(&params.redirect_uri) {
            return Err(NotRedirectable::Refused(
                "The application asked to send you to an address it has not registered.",
            ));
        }
        Ok(Authorization {
            tenant,
            redirect_uri: params.redirect_uri.clone(),
            state: params.state.clone(),
            client,
            params,
        })
    }

    /// The checks whose failures go back to the client.
    pub fn check_request(&self, auth: &Authorization) -> Result<Prompt, Redirected> {
        let params = &auth.params;
        let bad = |description| Redirected {
            error: "invalid_request",
            description,
        };
        if params.response_type != "code" {
            return Err(Redirected {
                error: "unsupported_response_type",
                description: "Only response_type=code is supported.",
            });
        }
        if !auth.client.allows(Grant::AuthorizationCode) {
            return Err(Redirected {
                error: "unauthorized_client",
                description: "This client may not use the authorization code flow.",
            });
        }
        if !rules::has_scope(&params.scope, "openid") {
            return Err(Redirected {
                error: "invalid_scope",
                description: "The scope must include openid.",
            });
        }
        match (
            &params.code_challenge,
            params.code_challenge_method.as_deref(),
        ) {
            (Some(challenge), Some("S256")) if rules::code_challenge_is_well_formed(challenge) => {}
            (Some(_), _) => return Err(bad("PKCE needs an S256 code_challenge of 43 characters.")),
            (None, _) if !auth.client.is_confidential() => {
                return Err(bad(
                    "A public client must send a PKCE code_challenge (S256).",
                ));
            }
            (None, _) => {}
        }
        if params
            .max_age
            .as_deref()
            .is_some_and(|m| m.parse::<u32>().is_err())
        {
            return Err(bad("max_age must be a number of seconds."));
        }
        if params.nonce.as_deref().is_some_and(|n| n.len() > 512)
            || params.state.as_deref().is_some_and(|s| s.len() > 2048)
        {
            return Err(bad("nonce or state is too long."));
        }
        Prompt::parse(params.prompt.as_deref())
            .ok_or_else(|| bad("prompt=none cannot be combined with other values."))
    }

    /// The browser session a cookie names, if it is still good for `auth` (active, its user
    /// enabled, recent enough for `max_age`).
    pub async fn browser_session(
        &self,
        tenant: &TenantSlug,
        cookie: Option<&str>,
        max_age: Option<i64>,
    ) -> ServiceResult<Option<BrowserSession>> {
        let Some(token) =
            cookie.and_then(|c| OpaqueToken::parse(TokenKind::ProviderSession, c).ok())
        else {
            return Ok(None);
        };
        if token.tenant() != tenant {
            return Ok(None);
        }
        let now = self.clock.now_secs();
        let mut unit = self.store.read(tenant).await?;
        let Some(id) = unit.oidc().browser_session(&token.digest(), now).await? else {
            return Ok(None);
        };
        let Some((session, user)) = unit.sessions().with_user(&id).await? else {
            return Ok(None);
        };
        let good = session.is_active(now)
            && !user.disabled
            && rules::fresh_enough(session.created_at, max_age, now);
        Ok(good.then_some(BrowserSession { session, user }))
    }

    /// Starts a browser session for a sign-in the page just finished: answers the cookie's
    /// value. The sign-in's own refresh token is never handed out.
    pub async fn start_browser_session(&self, issued: &Issued) -> ServiceResult<String> {
        let token =
            OpaqueToken::generate(TokenKind::ProviderSession, &issued.tenant, clock::random());
        let now = self.clock.now_secs();
        let expires_at = issued
            .session
            .expires_at
            .min(now + rules::BROWSER_SESSION_SECS);
        let mut tx = self.store.write(&issued.tenant).await?;
        tx.oidc()
            .add_browser_session(&token.digest(), &issued.session.id, expires_at)
            .await?;
        tx.commit().await?;
        Ok(token.expose().to_owned())
    }

    /// Issues a code for a signed-in browser session: answers the redirect URL.
    pub async fn issue_code(
        &self,
        auth: &Authorization,
        browser: &BrowserSession,
    ) -> ServiceResult<String> {
        let tenant = &auth.tenant.slug;
        let code = OpaqueToken::generate(TokenKind::AuthorizationCode, tenant, clock::random());
        let now = self.clock.now_secs();
        let stored = AuthorizationCode {
            client_id: auth.client.id.clone(),
            user_id: browser.user.id,
            browser_session: browser.session.id,
            redirect_uri: auth.redirect_uri.clone(),
            scope: rules::granted_scopes(&auth.params.scope).join(" "),
            nonce: auth.params.nonce.clone(),
            code_challenge: auth.params.code_challenge.clone(),
            auth_time: browser.session.created_at,
            expires_at: now + rules::CODE_SECS,
            session_id: None,
        };
        let mut tx = self.store.write(tenant).await?;
        tx.oidc().add_code(&code.digest(), &stored, now).await?;
        tx.commit().await?;
        Ok(self.redirect(auth, &[("code", code.expose())]))
    }

    /// The client's redirect URI with `params`, its `state` and the issuer (RFC 9207).
    #[must_use]
    pub fn redirect(&self, auth: &Authorization, params: &[(&str, &str)]) -> String {
        let mut url = match url::Url::parse(&auth.redirect_uri) {
            Ok(url) => url,
            // Registered URIs were checked to parse when they were registered.
            Err(_) => return auth.redirect_uri.clone(),
        };
        let issuer = self.issuer(&auth.tenant.slug);
        {
            let mut query = url.query_pairs_mut();
            for (name, value) in params {
                query.append_pair(name, value);
            }
            if let Some(state) = &auth.state {
                query.append_pair("state", state);
            }
            query.append_pair("iss", &issuer);
        }
        url.into()
    }

    /// The token endpoint.
    pub async fn token(
        &self,
        tenant: &str,
        auth: &ClientAuth,
        form: &TokenForm,
        client: &Client,
    ) -> ServiceResult<TokenResponse> {
        let tenant = self
            .tenant(tenant)
            .await
            .map_err(|_| ServiceError::InvalidClient)?;
        self.charge(&tenant.slug, auth).await?;
        let oidc_client = self.clients.authenticate(&tenant.slug, auth).await?;
        match Grant::parse(&form.grant_type) {
            Some(Grant::AuthorizationCode) if oidc_client.allows(Grant::AuthorizationCode) => {
                self.exchange_code(&tenant, &oidc_client, form, client)
                    .await
            }
            Some(Grant::RefreshToken) if oidc_client.allows(Grant::RefreshToken) => {
                self.refresh(&tenant, &oidc_client, form, client).await
            }
            Some(Grant::ClientCredentials)
                if oidc_client.allows(Grant::ClientCredentials)
                    && oidc_client.is_confidential() =>
            {
                let sid = super::oidc_clients::client_session(&oidc_client.id);
                let access_token = self
                    .tokens
                    .issue_client_token(&tenant.slug, &oidc_client.id, &sid)
                    .await?;
                Ok(TokenResponse {
                    access_token,
                    token_type: "Bearer",
                    expires_in: ACCESS_TOKEN_SECS,
                    id_token: None,
                    refresh_token: None,
                    scope: String::new(),
                })
            }
            Some(_) => Err(ServiceError::InvalidInput {
                code: "unauthorized_client",
                detail: "This client may not use this grant type.".into(),
            }),
            None => Err(ServiceError::InvalidInput {
                code: "unsupported_grant_type",
                detail:
                    "grant_type must be authorization_code, refresh_token or client_credentials."
                        .into(),
            }),
        }
    }

    async fn exchange_code(
        &self,
        tenant: &Tenant,
        oidc_client: &OidcClient,
        form: &TokenForm,
        client: &Client,
    ) -> ServiceResult<TokenResponse> {
        let code = form
            .code
            .as_deref()
            .and_then(|c| OpaqueToken::parse(TokenKind::AuthorizationCode, c).ok())
            .filter(|c| *c.tenant() == tenant.slug)
            .ok_or(ServiceError::InvalidGrant("The code is not valid."))?;
        let digest = code.digest();
        let now = self.clock.now_secs();
        let mut tx = self.store.write(&tenant.slug).await?;
        let stored = tx
            .oidc()
            .code_for_update(&digest)
            .await?
            .ok_or(ServiceError::InvalidGrant("The code is not valid."))?;
        if let Some(opened) = stored.session_id {
            // A second use: whoever has the code may have the tokens, so they end now
            // (RFC 6749 §4.1.2).
            let ended = tx.sessions().revoke(&opened, "code_reuse", now).await?;
            tx.commit().await?;
            if ended {
                self.revocations.session_ended(&tenant.slug, &opened);
            }
            tracing::warn!(tenant = %tenant.slug, session = %opened, "authorization code reused: its tokens are revoked");
            return Err(ServiceError::InvalidGrant("The code was used already."));
        }
        if stored.client_id != oidc_client.id {
            return Err(ServiceError::InvalidGrant(
                "The code was issued to another client.",
            ));
        }
        if stored.expires_at <= now {
            return Err(ServiceError::InvalidGrant("The code has expired."));
        }
        if form.redirect_uri.as_deref() != Some(stored.redirect_uri.as_str()) {
            return Err(ServiceError::InvalidGrant(
                "redirect_uri is not the one of the authorization request.",
            ));
        }
        match (&stored.code_challenge, form.code_verifier.as_deref()) {
            (Some(challenge), Some(verifier)) if rules::pkce_matches(verifier, challenge) => {}
            (None, None) => {}
            _ => {
                return Err(ServiceError::InvalidGrant(
                    "The PKCE code_verifier does not match the code_challenge.",
                ))
            }
        }
        let Some((browser, user)) = tx.sessions().with_user(&stored.browser_session).await? else {
            return Err(ServiceError::InvalidGrant("The sign-in has ended."));
        };
        if !browser.is_active(now) || user.disabled {
            return Err(ServiceError::InvalidGrant("The sign-in has ended."));
        }
        let amr: Vec<&str> = browser.amr.iter().map(String::as_str).collect();
        let client_of = Client {
            api: Api::OpenId,
            ..client.clone()
        };
        let (session, refresh) = self
            .tokens
            .open_session(&mut tx, &user, &amr, &client_of)
            .await?;
        tx.oidc()
            .redeem_code(
                &digest,
                &OidcGrant {
                    session_id: session.id,
                    client_id: oidc_client.id.clone(),
                    scope: stored.scope.clone(),
                    browser_session: browser.id,
                },
            )
            .await?;
        tx.commit().await?;
        let issued = self
            .tokens
            .issue(&tenant.slug, user, &session, &refresh)
            .await?;
        let id_token = self
            .id_token(
                tenant,
                oidc_client,
                &issued,
                &stored.scope,
                stored.nonce,
                stored.auth_time,
                &browser,
            )
            .await?;
        Ok(self.response(oidc_client, issued, Some(id_token), stored.scope))
    }

    async fn refresh(
        &self,
        tenant: &Tenant,
        oidc_client: &OidcClient,
        form: &TokenForm,
        client: &Client,
    ) -> ServiceResult<TokenResponse> {
        let presented = form
            .refresh_token
            .as_deref()
            .ok_or(ServiceError::InvalidGrant("refresh_token is missing."))?;
        let token = OpaqueToken::parse(TokenKind::Refresh, presented)
            .ok()
            .filter(|t| *t.tenant() == tenant.slug)
            .ok_or(ServiceError::InvalidGrant(
                "The refresh token is not valid.",
            ))?;
        // Only the client the family was issued to may rotate it: checked before the
        // rotation, so that another client's attempt changes nothing.
        let grant = self
            .store
            .read(&tenant.slug)
            .await?
            .oidc()
            .grant_of_refresh(&token.digest())
            .await?
            .filter(|g| g.client_id == oidc_client.id)
            .ok_or(ServiceError::InvalidGrant(
                "The refresh token is not valid.",
            ))?;
        let issued = self
            .refresher
            .refresh(presented, Some(&tenant.slug), client)
            .await
            .map_err(|error| match error {
                ServiceError::InvalidRefreshToken => {
                    ServiceError::InvalidGrant("The refresh token is not valid.")
                }
                other => other,
            })?;
        Ok(self.response(oidc_client, issued, None, grant.scope))
    }

    fn response(
        &self,
        oidc_client: &OidcClient,
        issued: Issued,
        id_token: Option<String>,
        scope: String,
    ) -> TokenResponse {
        let offline =
            rules::has_scope(&scope, "offline_access") && oidc_client.allows(Grant::RefreshToken);
        TokenResponse {
            access_token: issued.access_token,
            token_type: "Bearer",
            expires_in: ACCESS_TOKEN_SECS,
            id_token,
            refresh_token: offline.then_some(issued.refresh_token),
            scope,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn id_token(
        &self,
        tenant: &Tenant,
        oidc_client: &OidcClient,
        issued: &Issued,
        scope: &str,
        nonce: Option<String>,
        auth_time: i64,
        browser: &Session,
    ) -> ServiceResult<String> {
        let algorithm =
            KeyAlgorithm::from_name(&oidc_client.id_token_alg).unwrap_or(KeyAlgorithm::RS256);
        let signer = self.keys.id_token_signer(algorithm).await;
        let now = u64::try_from(issued.issued_at).unwrap_or(0);
        let email = rules::has_scope(scope, "email");
        let claims = IdTokenClaims {
            iss: self.issuer(&tenant.slug),
            sub: issued.user.id.to_string(),
            aud: oidc_client.id.clone(),
            azp: oidc_client.id.clone(),
            exp: now + ACCESS_TOKEN_SECS,
            iat: now,
            auth_time: u64::try_from(auth_time).unwrap_or(0),
            nonce,
            amr: browser.amr.clone(),
            at_hash: Some(rules::token_hash(&issued.access_token, signer.algorithm())),
            sid: browser.id.to_string(),
            email: email.then(|| issued.user.email.to_string()),
            email_verified: email.then(|| issued.user.email_verified()),
        };
        Ok(signer.sign(&claims)?)
    }

    /// The userinfo endpoint: the claims the access token's grant allows.
    pub async fn userinfo(&self, tenant: &str, bearer: &str) -> ServiceResult<serde_json::Value> {
        let tenant = self
            .tenant(tenant)
            .await
            .map_err(|_| ServiceError::TenantMismatch)?;
        let caller = self
            .authenticate
            .authenticate(bearer, Some(&tenant.slug))
            .await?;
        let grant = self
            .store
            .read(&tenant.slug)
            .await?
            .oidc()
            .grant(&caller.session_id)
            .await?;
        // A token of Tessera's own APIs has no grant: it may read what the openid scope
        // gives, and the address its owner signed in with.
        let scope = grant.map_or_else(|| "openid email".to_owned(), |g| g.scope);
        Ok(userinfo_claims(&caller, &scope))
    }

    /// RFC 7009: ends the session of a refresh token or access token of this client. Unknown
    /// or foreign tokens are answered the same (200), as the RFC requires.
    pub async fn revoke(
        &self,
        tenant: &str,
        auth: &ClientAuth,
        token: &str,
        client: &Client,
    ) -> ServiceResult<()> {
        let tenant = self
            .tenant(tenant)
            .await
            .map_err(|_| ServiceError::InvalidClient)?;
        self.charge(&tenant.slug, auth).await?;
        let oidc_client = self.clients.authenticate(&tenant.slug, auth).await?;
        let Some((session, grant)) = self.session_of(&tenant.slug, token).await? else {
            return Ok(());
        };
        if grant.client_id != oidc_client.id {
            return Ok(());
        }
        let now = self.clock.now_secs();
        let mut tx = self.store.write(&tenant.slug).await?;
        let ended = tx.sessions().revoke(&session, "oidc_revoked", now).await?;
        let event = super::audit_event(
            "oidc_token_revoked",
            client,
            None,
            Some(&session),
            format!("client={}", oidc_client.id),
            now,
        );
        tx.audit().append(&event).await?;
        tx.commit().await?;
        if ended {
            self.revocations.session_ended(&tenant.slug, &session);
        }
        Ok(())
    }

    /// RFC 7662, for confidential clients: whether a token is active, and what it carries.
    pub async fn introspect(
        &self,
        tenant: &str,
        auth: &ClientAuth,
        token: &str,
    ) -> ServiceResult<Introspection> {
        let tenant = self
            .tenant(tenant)
            .await
            .map_err(|_| ServiceError::InvalidClient)?;
        self.charge(&tenant.slug, auth).await?;
        let oidc_client = self.clients.authenticate(&tenant.slug, auth).await?;
        if !oidc_client.is_confidential() {
            return Err(ServiceError::InvalidClient);
        }
        let inactive = Introspection::default();
        let now = self.clock.now_secs();
        // An access token is answered as the edge answers it: its signature, then the
        // revocation index (no tenant database read).
        if let Ok(claims) = self
            .authenticate
            .verify_claims(token, Some(&tenant.slug))
            .await
        {
            let grant = match SessionId::parse(&claims.sid) {
                Ok(sid) => {
                    self.store
                        .read(&tenant.slug)
                        .await?
                        .oidc()
                        .grant(&sid)
                        .await?
                }
                Err(_) => None,
            };
            // A client's own token (client_credentials) names the client as its subject.
            let own = (claims.role == "client").then(|| claims.sub.clone());
            return Ok(Introspection {
                active: true,
                scope: grant.as_ref().map(|g| g.scope.clone()),
                client_id: grant.map(|g| g.client_id).or(own),
                sub: Some(claims.sub),
                token_type: Some("Bearer"),
                exp: i64::try_from(claims.exp).ok(),
                iat: i64::try_from(claims.iat).ok(),
                iss: Some(claims.iss),
            });
        }
        let Some((session_id, grant)) = self.session_of(&tenant.slug, token).await? else {
            return Ok(inactive);
        };
        let session = self
            .store
            .read(&tenant.slug)
            .await?
            .sessions()
            .with_user(&session_id)
            .await?;
        match session {
            Some((session, user)) if session.is_active(now) && !user.disabled => {
                Ok(Introspection {
                    active: true,
                    scope: Some(grant.scope),
                    client_id: Some(grant.client_id),
                    sub: Some(user.id.to_string()),
                    token_type: Some("refresh_token"),
                    exp: Some(session.expires_at),
                    iat: Some(session.created_at),
                    iss: Some(self.issuer(&tenant.slug)),
                })
            }
            _ => Ok(inactive),
        }
    }

    async fn charge(&self, tenant: &TenantSlug, auth: &ClientAuth) -> ServiceResult<()> {
        self.limiter
            .enforce(
                tessera_core::ratelimit::RouteClass::Token,
                &tessera_core::ratelimit::client_subject(tenant, &auth.client_id),
            )
            .await
    }

    /// The session and grant of a refresh token (by its digest) or an access token (by its
    /// verified `sid`).
    async fn session_of(
        &self,
        tenant: &TenantSlug,
        token: &str,
    ) -> ServiceResult<Option<(SessionId, OidcGrant)>> {
        let mut unit = self.store.read(tenant).await?;
        if let Ok(refresh) = OpaqueToken::parse(TokenKind::Refresh, token) {
            if refresh.tenant() != tenant {
                return Ok(None);
            }
            let grant = unit.oidc().grant_of_refresh(&refresh.digest()).await?;
            return Ok(grant.map(|g| (g.session_id, g)));
        }
        let now = u64::try_from(self.clock.now_secs()).unwrap_or(0);
        let Ok(claims) = self.keys.verifier().await.verify(token, now) else {
            return Ok(None);
        };
        if claims.tid != tenant.as_str() {
            return Ok(None);
        }
        let Ok(session) = SessionId::parse(&claims.sid) else {
            return Ok(None);
        };
        let grant = unit.oidc().grant(&session).await?;
        Ok(grant.map(|g| (g.session_id, g)))
    }

    /// RP-initiated logout: ends the browser session (and every session its clients hold)
    /// named by the cookie or by the ID token hint. Answers where to send the browser: the
    /// client's registered post-logout URI with `state`, or `None` for Tessera's own page.
    pub async fn end_session(
        &self,
        tenant: &str,
        request: &EndSession,
        cookie: Option<&str>,
        client: &Client,
    ) -> ServiceResult<Option<String>> {
        let tenant = self.tenant(tenant).await?;
        let hinted = request
            .id_token_hint
            .as_deref()
            .map(|hint| self.id_token_hint(&tenant.slug, hint));
        let hinted = match hinted {
            Some(lookup) => lookup.await,
            None => None,
        };
        // The post-logout URI must be registered by the client the hint names (or the
        // `client_id` given): without one, Tessera's own page.
        let client_id = hinted
            .as_ref()
            .map(|(client, _)| client.clone())
            .or_else(|| request.client_id.clone());
        let mut target = None;
        if let (Some(uri), Some(id)) = (&request.post_logout_redirect_uri, &client_id) {
            let registered = self
                .store
                .read(&tenant.slug)
                .await?
                .oidc()
                .client(id)
                .await?
                .is_some_and(|c| c.post_logout_redirect_uris.contains(uri));
            if registered {
                let mut url = url::Url::parse(uri).map_err(|_| ServiceError::NotFound)?;
                if let Some(state) = &request.state {
                    url.query_pairs_mut().append_pair("state", state);
                }
                target = Some(url.to_string());
            }
        }
        let browser = match self.browser_session(&tenant.slug, cookie, None).await? {
            Some(browser) => Some(browser.session.id),
            None => hinted.map(|(_, sid)| sid),
        };
        if let Some(browser) = browser {
            self.end_browser_session(&tenant.slug, &browser, client)
                .await?;
        }
        Ok(target)
    }

    /// The client and provider session an ID token this provider issued names. Its signature
    /// and issuer are checked; its expiry is not (a hint may be old, Core RP-initiated logout
    /// §2).
    async fn id_token_hint(&self, tenant: &TenantSlug, hint: &str) -> Option<(String, SessionId)> {
        let payload = hint.split('.').nth(1)?;
        let bytes =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .ok()?;
        let claims: IdTokenClaims = serde_json::from_slice(&bytes).ok()?;
        (claims.iss == self.issuer(tenant)).then_some(())?;
        self.keys
            .published()
            .await
            .signed_by_one(hint)
            .then_some(())?;
        Some((claims.aud, SessionId::parse(&claims.sid).ok()?))
    }

    async fn end_browser_session(
        &self,
        tenant: &TenantSlug,
        browser: &SessionId,
        client: &Client,
    ) -> ServiceResult<()> {
        let now = self.clock.now_secs();
        let mut tx = self.store.write(tenant).await?;
        let mut sessions = tx.oidc().sessions_from(browser).await?;
        sessions.push(*browser);
        let mut ended = Vec::new();
        for session in sessions {
            if tx.sessions().revoke(&session, "oidc_logout", now).await? {
                ended.push(session);
            }
        }
        tx.oidc().remove_browser_session(browser, now).await?;
        let event = super::audit_event(
            "oidc_logout",
            client,
            None,
            Some(browser),
            format!("sessions_ended={}", ended.len()),
            now,
        );
        tx.audit().append(&event).await?;
        tx.commit().await?;
        for session in &ended {
            self.revocations.session_ended(tenant, session);
        }
        Ok(())
    }
}

/// The token endpoint's form (RFC 6749 §4.1.3, §6).
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct TokenForm {
    /// `authorization_code`, `refresh_token` or `client_credentials`.
    #[schema(value_type = Grant)]
    pub grant_type: String,
    /// The code.
    pub code: Option<String>,
    /// The redirect URI of the authorization request.
    pub redirect_uri: Option<String>,
    /// PKCE.
    pub code_verifier: Option<String>,
    /// For `refresh_token`.
    pub refresh_token: Option<String>,
    /// `client_secret_post` and public clients.
    pub client_id: Option<String>,
    /// `client_secret_post`.
    pub client_secret: Option<String>,
}

/// An RP-initiated logout request (RP-Initiated Logout 1.0 §2).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct EndSession {
    /// An ID token the provider issued.
    pub id_token_hint: Option<String>,
    /// Where to go afterwards: registered by the client.
    pub post_logout_redirect_uri: Option<String>,
    /// The client, when no hint is given.
    pub client_id: Option<String>,
    /// Echoed back.
    pub state: Option<String>,
}

/// The userinfo claims `scope` allows.
fn userinfo_claims(caller: &Authenticated, scope: &str) -> serde_json::Value {
    let mut claims = serde_json::json!({ "sub": caller.user_id.to_string() });
    if rules::has_scope(scope, "email") {
        claims["email"] = caller.user.email.to_string().into();
        claims["email_verified"] = caller.user.email_verified().into();
    }
    if rules::has_scope(scope, "profile") {
        // Tessera keeps no display name: the address is the name people know the account by.
        claims["name"] = caller.user.email.to_string().into();
    }
    claims
}

//! Operator tokens: the platform's own backend's credential for the operator API
//! (`/api/admin/*`). Global, of no tenant; opaque (`tsr_op_`), stored as SHA-256, revocable.
//! Only the origin judges them, against the store on every use, so a revocation holds at once.

use tessera_core::token::OperatorToken;

use super::{ServiceError, ServiceResult};
use crate::clock::{self, SharedClock};
use crate::store::{DynStore, OperatorTokenRecord, StoreError};

/// The longest name, in characters.
const MAX_NAME_CHARS: usize = 100;

/// A created token: its record, and the token itself, which exists nowhere else.
pub struct CreatedOperatorToken {
    /// The record.
    pub record: OperatorTokenRecord,
    /// The token, shown once.
    pub token: String,
}

/// Creates, lists, revokes and checks operator tokens.
#[derive(Clone)]
pub struct OperatorTokens {
    store: DynStore,
    clock: SharedClock,
}

impl OperatorTokens {
    /// The service over its dependencies.
    #[must_use]
    pub fn new(store: DynStore, clock: SharedClock) -> Self {
        Self { store, clock }
    }

    /// Creates a token named `name` (unique), living `expires_in_days` or for ever.
    pub async fn create(
        &self,
        name: &str,
        expires_in_days: Option<u32>,
    ) -> ServiceResult<CreatedOperatorToken> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(ServiceError::InvalidInput {
                code: "invalid_name",
                detail: format!("a token's name has 1 to {MAX_NAME_CHARS} characters"),
            });
        }
        if expires_in_days == Some(0) {
            return Err(ServiceError::InvalidInput {
                code: "invalid_expiry",
                detail: "a token lives one day at least".into(),
            });
        }
        let now = self.clock.now_secs();
        let token = OperatorToken::generate(clock::random());
        let record = OperatorTokenRecord {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_owned(),
            created_at: now,
            expires_at: expires_in_days.map(|days| now + i64::from(days) * 86_400),
            last_used_at: None,
            revoked_at: None,
        };
        match self
            .store
            .create_operator_token(&record, &token.digest())
            .await
        {
            Err(StoreError::Conflict) => {
                return Err(ServiceError::Conflict {
                    code: "name_taken",
                    detail: "An operator token already has this name.".into(),
                })
            }
            other => other?,
        }
        Ok(CreatedOperatorToken {
            record,
            token: token.expose().to_owned(),
        })
    }

    /// Every token, revoked ones included, newest first.
    pub async fn list(&self) -> ServiceResult<Vec<OperatorTokenRecord>> {
        Ok(self.store.operator_tokens().await?)
    }

    /// Revokes the active token with this id or name (`NotFound` otherwise).
    pub async fn revoke(&self, id_or_name: &str) -> ServiceResult<OperatorTokenRecord> {
        self.store
            .revoke_operator_token(id_or_name, self.clock.now_secs())
            .await?
            .ok_or(ServiceError::NotFound)
    }

    /// The active token `bearer` is (`InvalidServiceToken` for anything else: malformed,
    /// unknown, revoked, expired); records its use to the minute.
    pub async fn authenticate(&self, bearer: &str) -> ServiceResult<OperatorTokenRecord> {
        let token = OperatorToken::parse(bearer).map_err(|_| ServiceError::InvalidServiceToken)?;
        let now = self.clock.now_secs();
        let found = self
            .store
            .operator_token(&token.digest())
            .await?
            .filter(|t| t.is_active(now))
            .ok_or(ServiceError::InvalidServiceToken)?;
        if found.last_used_at.is_none_or(|at| at <= now - 60) {
            self.store.touch_operator_token(&found.id, now).await?;
        }
        Ok(found)
    }
}

//! Who makes an administrative change (the operator at the command line or with a token, a
//! tenant's admin, a tenant's service), and which user it is made to: what every such change's
//! audit event names, whichever door it came through.

use tessera_core::model::{Email, SessionId, UserId};

use super::Client;
use crate::store::AuditEvent;

/// Who makes an administrative change.
#[derive(Debug, Clone)]
pub enum Actor {
    /// The operator at the command line (`tessera …`).
    Cli,
    /// An operator token, over the operator API.
    OperatorToken {
        /// The token's id.
        id: String,
        /// The request.
        client: Client,
    },
    /// An admin of the tenant, in one of their sessions.
    Admin {
        /// The admin.
        user: UserId,
        /// Their session.
        session: SessionId,
        /// The request.
        client: Client,
    },
    /// A service token of the tenant.
    Service {
        /// The token's id.
        id: String,
        /// The request.
        client: Client,
    },
}

impl Actor {
    /// Who, as an audit event's detail says it (`by=admin:<id>`, …).
    #[must_use]
    pub fn by(&self) -> String {
        match self {
            Self::Cli => "by=operator".to_owned(),
            Self::OperatorToken { id, .. } => format!("by=operator_token:{id}"),
            Self::Admin { user, .. } => format!("by=admin:{user}"),
            Self::Service { id, .. } => format!("by=service_token:{id}"),
        }
    }

    /// The name of an audit event of `action` by this actor: `<action>_by_operator` for the
    /// operator (command line or token), `<action>_by_admin` for a tenant's admin or service.
    #[must_use]
    pub fn named(&self, action: &str) -> String {
        match self {
            Self::Cli | Self::OperatorToken { .. } => format!("{action}_by_operator"),
            Self::Admin { .. } | Self::Service { .. } => format!("{action}_by_admin"),
        }
    }

    /// The audit event `event` of a change to `target`, with `detail` after who made it.
    #[must_use]
    pub fn event(
        &self,
        event: &str,
        target: Option<&UserId>,
        detail: &str,
        now: i64,
    ) -> AuditEvent {
        let (ip, user_agent, session) = match self {
            Self::Cli => (String::new(), "tessera-cli".to_owned(), None),
            Self::OperatorToken { client, .. } | Self::Service { client, .. } => {
                (client.ip.to_string(), client.user_agent.clone(), None)
            }
            Self::Admin {
                client, session, ..
            } => (
                client.ip.to_string(),
                client.user_agent.clone(),
                Some(session.to_string()),
            ),
        };
        let by = self.by();
        AuditEvent {
            at: now,
            event: event.to_owned(),
            user_id: target.map(ToString::to_string),
            session_id: session,
            ip,
            user_agent,
            detail: if detail.is_empty() {
                by
            } else {
                format!("{by} {detail}")
            },
        }
    }
}

/// Which user a change is for: by address (the command line's `--email`) or by id (the APIs').
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserKey {
    /// By normalised address.
    Email(Email),
    /// By id.
    Id(UserId),
}

impl UserKey {
    /// A user id as a path names it; one that is no id names nobody (`NotFound`).
    pub fn id(text: &str) -> super::ServiceResult<Self> {
        UserId::parse(text)
            .map(Self::Id)
            .map_err(|_| super::ServiceError::NotFound)
    }
}

//! How messages leave: lettre's pooled SMTP transport, or, in development (no SMTP URL), one
//! `.eml` file each under `<data dir>/outbox/` with its link or code logged, so that every flow
//! can be finished with no mail server.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};

use super::{MailKind, Templates};
use crate::config::Config;

/// How long one SMTP exchange may take; well under the outbox lease, so that a message is
/// never still being sent when its lease ends and another worker may claim it.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// SMTP connections kept open to the relay (and so messages sent at once).
pub const SMTP_CONNECTIONS: u32 = 8;

/// The mail configuration cannot work.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct MailerError {
    /// The variable at fault.
    pub var: &'static str,
    /// Why.
    pub reason: String,
}

/// A message that was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The relay refused for good (a 5xx reply) or the message cannot be built: retrying
    /// cannot help.
    #[error("permanent: {0}")]
    Permanent(String),
    /// The relay is unreachable, timed out or refused for now: retry later.
    #[error("transient: {0}")]
    Transient(String),
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(PathBuf),
}

/// Renders and delivers messages.
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    templates: Templates,
}

impl Mailer {
    /// The mailer the configuration asks for.
    pub fn from_config(config: &Config) -> Result<Self, MailerError> {
        let from: Mailbox = config.mail_from.parse().map_err(|e| MailerError {
            var: "TESSERA_MAIL_FROM",
            reason: format!("'{}' is not an address: {e}", config.mail_from),
        })?;
        let transport = match &config.smtp_url {
            Some(url) => Transport::Smtp(smtp(url, config.smtp_ca_file.as_ref())?),
            None => Transport::Files(config.data_dir.join("outbox")),
        };
        Ok(Self {
            transport,
            from,
            templates: Templates::new(),
        })
    }

    /// Builds the message of `kind` to `to` from its stored parameters.
    pub fn compose(
        &self,
        id: &str,
        kind: MailKind,
        to: &str,
        params: &serde_json::Value,
    ) -> Result<Message, DeliveryError> {
        let permanent = |e: &dyn std::fmt::Display| DeliveryError::Permanent(e.to_string());
        let to: Mailbox = to.parse().map_err(|e| permanent(&e))?;
        let (text, html) = self
            .templates
            .render(kind, params)
            .map_err(|e| permanent(&e))?;
        let domain = self.from.email.domain().to_owned();
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(kind.subject())
            .message_id(Some(format!("<{id}@{domain}>")))
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(text),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(html),
                    ),
            )
            .map_err(|e| permanent(&e))
    }

    /// Delivers `message`. In development the file is written and `action` (the message's
    /// link or code) logged, so that a flow can be finished from the terminal.
    pub async fn deliver(
        &self,
        id: &str,
        message: Message,
        action: Option<&str>,
    ) -> Result<(), DeliveryError> {
        match &self.transport {
            Transport::Smtp(smtp) => match smtp.send(message).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_permanent() => Err(DeliveryError::Permanent(e.to_string())),
                Err(e) => Err(DeliveryError::Transient(e.to_string())),
            },
            Transport::Files(dir) => {
                let transient = |e: std::io::Error| DeliveryError::Transient(e.to_string());
                tokio::fs::create_dir_all(dir).await.map_err(transient)?;
                let path = dir.join(format!("{id}.eml"));
                tokio::fs::write(&path, message.formatted())
                    .await
                    .map_err(transient)?;
                tracing::info!(
                    path = %path.display(),
                    action = action.unwrap_or(""),
                    "email written to a file (development transport: set TESSERA_SMTP_URL to send)"
                );
                Ok(())
            }
        }
    }

    /// Whether messages go to files instead of a relay.
    #[must_use]
    pub fn is_development(&self) -> bool {
        matches!(self.transport, Transport::Files(_))
    }
}

/// lettre's transport for `url` (its URL form), trusting `ca_file` too when given: a relay
/// with a certificate of a private CA.
fn smtp(
    url: &str,
    ca_file: Option<&PathBuf>,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailerError> {
    let invalid = |reason: String| MailerError {
        var: "TESSERA_SMTP_URL",
        reason,
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map_err(|e| invalid(format!("not a usable SMTP URL: {e}")))?
        .timeout(Some(SMTP_TIMEOUT))
        .pool_config(PoolConfig::new().max_size(SMTP_CONNECTIONS));
    if let Some(path) = ca_file {
        let ca_invalid = |reason: String| MailerError {
            var: "TESSERA_SMTP_CA_FILE",
            reason,
        };
        let pem = std::fs::read(path)
            .map_err(|e| ca_invalid(format!("cannot read {}: {e}", path.display())))?;
        let certificate = Certificate::from_pem(&pem)
            .map_err(|e| ca_invalid(format!("not a PEM certificate: {e}")))?;
        let parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        let host = parsed.host_str().unwrap_or_default().to_owned();
        let parameters = TlsParameters::builder(host)
            .add_root_certificate(certificate)
            .build_rustls()
            .map_err(|e| ca_invalid(e.to_string()))?;
        let mode = parsed
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        builder = match (parsed.scheme(), mode.as_deref()) {
            ("smtps", _) => builder.tls(Tls::Wrapper(parameters)),
            (_, Some("required")) => builder.tls(Tls::Required(parameters)),
            (_, Some("opportunistic")) => builder.tls(Tls::Opportunistic(parameters)),
            _ => {
                return Err(ca_invalid(
                    "is set but TESSERA_SMTP_URL uses no TLS (smtps://, or ?tls=required)".into(),
                ))
            }
        };
    }
    Ok(builder.build())
}

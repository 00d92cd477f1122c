//! Email: what each message says (templates, plain text and HTML) and how it leaves (lettre
//! over SMTP, or files in development). Messages are queued in the tenant's outbox by the
//! services and delivered by `jobs::mail`.

mod templates;
mod transport;

pub use templates::Templates;
pub use transport::{DeliveryError, Mailer, MailerError, SMTP_CONNECTIONS, SMTP_TIMEOUT};

/// The emails Tessera sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// A link that confirms the address (registration, resend).
    VerifyEmail,
    /// Someone registered with an address that already has an account.
    RegistrationAttempt,
    /// A link to the password-reset page.
    ResetPassword,
    /// The password was changed (reset or change).
    PasswordChanged,
    /// A code that signs in without a password.
    SignInCode,
    /// A second-factor code after a correct password.
    MfaCode,
    /// The authenticator app was turned off.
    TotpDisabled,
    /// A second factor was added (`factor` names it): if the owner did not, their account is
    /// someone else's to keep unless they act now.
    FactorAdded,
    /// A second factor was removed (`factor` names it; `by_operator` when an operator did).
    FactorRemoved,
    /// An emailed code proved the mailbox of an account whose password was set before anyone
    /// had: that password no longer signs in (pre-registration takeover).
    PasswordCleared,
    /// An admin created the account with an invitation: a link to choose a password.
    Invitation,
    /// An admin gave the account a new address: a link, sent to it, that confirms it.
    ConfirmEmailChange,
    /// The account's address was replaced (`new_email`): told to the old one.
    EmailChanged,
}

impl MailKind {
    /// Every kind.
    pub const ALL: [Self; 13] = [
        Self::VerifyEmail,
        Self::RegistrationAttempt,
        Self::ResetPassword,
        Self::PasswordChanged,
        Self::SignInCode,
        Self::MfaCode,
        Self::TotpDisabled,
        Self::FactorAdded,
        Self::FactorRemoved,
        Self::PasswordCleared,
        Self::Invitation,
        Self::ConfirmEmailChange,
        Self::EmailChanged,
    ];

    /// The template name, also stored in the outbox.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::RegistrationAttempt => "registration_attempt",
            Self::ResetPassword => "reset_password",
            Self::PasswordChanged => "password_changed",
            Self::SignInCode => "sign_in_code",
            Self::MfaCode => "mfa_code",
            Self::TotpDisabled => "totp_disabled",
            Self::FactorAdded => "factor_added",
            Self::FactorRemoved => "factor_removed",
            Self::PasswordCleared => "password_cleared",
            Self::Invitation => "invitation",
            Self::ConfirmEmailChange => "confirm_email_change",
            Self::EmailChanged => "email_changed",
        }
    }

    /// The subject line: what happened.
    #[must_use]
    pub const fn subject(self) -> &'static str {
        match self {
            Self::VerifyEmail => "Confirm your email",
            Self::RegistrationAttempt => "Someone tried to register with your address",
            Self::ResetPassword => "Reset your password",
            Self::PasswordChanged => "Your password was changed",
            Self::SignInCode | Self::MfaCode => "Your sign-in code",
            Self::TotpDisabled => "Two-factor authentication was turned off",
            Self::FactorAdded => "A second factor was added to your account",
            Self::FactorRemoved => "A second factor was removed from your account",
            Self::PasswordCleared => "Your account's earlier password was removed",
            Self::Invitation => "You are invited: choose your password",
            Self::ConfirmEmailChange => "Confirm your new email address",
            Self::EmailChanged => "Your email address was changed",
        }
    }

    /// The kind stored under `name`.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Outbox rows that are requests, not yet emails: the worker looks the account up and turns
/// each into its email (or into nothing when there is no such account), so that the request
/// itself does the same work, and answers the same, whether the account exists or not.
pub mod requests {
    /// A password-reset request: `{email}`.
    pub const RESET_PASSWORD: &str = "reset_password_request";
    /// An email-code sign-in request: `{email}`.
    pub const SIGN_IN_CODE: &str = "sign_in_code_request";
    /// An invitation of a new account (an admin created it): `{email}`.
    pub const INVITATION: &str = "invitation_request";
    /// The confirmation of the new address an admin gave an account: `{email}`, its current
    /// address (the new one waits on the account).
    pub const CONFIRM_EMAIL_CHANGE: &str = "confirm_email_change_request";
}

/// A link to a hosted page under the configured public URL (never the request's Host header),
/// carrying the token in its query.
#[must_use]
pub fn link(public_url: &str, path: &str, token: &str) -> String {
    format!("{}{path}?token={token}", public_url.trim_end_matches('/'))
}

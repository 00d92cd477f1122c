//! The message templates, compiled into the binary. HTML templates are auto-escaped (a user's
//! display name is user input).

use minijinja::Environment;

use super::MailKind;

macro_rules! template {
    ($env:ident, $name:literal) => {
        // Checked by this module's tests; a broken one fails its messages, never a panic.
        if let Err(error) =
            $env.add_template($name, include_str!(concat!("../../templates/mail/", $name)))
        {
            tracing::error!(%error, template = $name, "mail template does not parse");
        }
    };
}

/// The plain-text and HTML template of every [`MailKind`].
pub struct Templates(Environment<'static>);

impl Templates {
    /// Loads every template (part of the binary, checked by this module's tests).
    #[must_use]
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        template!(env, "base.html");
        template!(env, "verify_email.txt");
        template!(env, "verify_email.html");
        template!(env, "registration_attempt.txt");
        template!(env, "registration_attempt.html");
        template!(env, "reset_password.txt");
        template!(env, "reset_password.html");
        template!(env, "password_changed.txt");
        template!(env, "password_changed.html");
        template!(env, "sign_in_code.txt");
        template!(env, "sign_in_code.html");
        template!(env, "mfa_code.txt");
        template!(env, "mfa_code.html");
        template!(env, "totp_disabled.txt");
        template!(env, "totp_disabled.html");
        template!(env, "factor_added.txt");
        template!(env, "factor_added.html");
        template!(env, "factor_removed.txt");
        template!(env, "factor_removed.html");
        template!(env, "password_cleared.txt");
        template!(env, "password_cleared.html");
        template!(env, "invitation.txt");
        template!(env, "invitation.html");
        template!(env, "confirm_email_change.txt");
        template!(env, "confirm_email_change.html");
        template!(env, "email_changed.txt");
        template!(env, "email_changed.html");
        Self(env)
    }

    /// The plain text and HTML of `kind` with `params`.
    pub fn render(
        &self,
        kind: MailKind,
        params: &serde_json::Value,
    ) -> Result<(String, String), minijinja::Error> {
        let params = minijinja::Value::from(minijinja::value::Serde(params));
        let text = self
            .0
            .get_template(&format!("{}.txt", kind.name()))?
            .render(&params)?;
        let html = self
            .0
            .get_template(&format!("{}.html", kind.name()))?
            .render(&params)?;
        Ok((text, html))
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> serde_json::Value {
        serde_json::json!({
            "tenant_name": "Acme <Corp>",
            "name": "Ann <script>",
            "link": "https://auth.example.com/auth/reset-password?token=tsr_el_acme_x",
            "code": "012345",
            "email_factor": false,
            "factor": "an authenticator app",
            "by_operator": true,
            "new_email": "ann@new.example",
        })
    }

    #[test]
    fn every_kind_renders_text_and_escaped_html() {
        let templates = Templates::new();
        for kind in MailKind::ALL {
            let (text, html) = templates.render(kind, &params()).expect("renders");
            assert!(text.contains("Acme <Corp>"), "{kind:?}: {text}");
            assert!(html.contains("Acme &lt;Corp&gt;"), "{kind:?}: {html}");
            assert!(!html.contains("<script>"), "{kind:?}");
        }
    }

    #[test]
    fn a_code_stands_alone_on_its_line_and_a_link_carries_its_token() {
        let templates = Templates::new();
        for kind in [MailKind::SignInCode, MailKind::MfaCode] {
            let (text, _) = templates.render(kind, &params()).unwrap();
            assert!(text.lines().any(|l| l == "012345"), "{text}");
        }
        for kind in [
            MailKind::VerifyEmail,
            MailKind::ResetPassword,
            MailKind::Invitation,
            MailKind::ConfirmEmailChange,
        ] {
            let (text, _) = templates.render(kind, &params()).unwrap();
            assert!(
                text.lines().any(|l| l.ends_with("?token=tsr_el_acme_x")),
                "{text}"
            );
        }
    }

    #[test]
    fn a_missing_parameter_is_an_error_not_a_blank() {
        let templates = Templates::new();
        let error = templates.render(MailKind::SignInCode, &serde_json::json!({"name": "x"}));
        assert!(error.is_err());
    }
}

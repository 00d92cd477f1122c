//! The sign-in policy: what happens after a correct credential, for every way of signing in
//! (password sign-in in every API, emailed codes, emailed links). The origin gathers the facts
//! about the account and its tenant; this decides, so that no sign-in path can skip a rule.

/// What proved the caller's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// A password, where the API can take a second step (an MFA challenge or an enrolment).
    Password,
    /// A password, where the API has no second step (the team/vault API).
    PasswordInOneStep,
    /// An emailed code or link: it proves the mailbox, which is not the password, so it never
    /// replaces a second factor, and it confirms the address itself.
    Mailbox,
    /// A passkey asserted with user verification: something the user has, unlocked by
    /// something they know or are, so it is multi-factor by itself and no second step follows.
    Passkey,
}

impl Credential {
    /// The `amr` values (RFC 8176) of a session opened by this credential alone.
    #[must_use]
    pub const fn amr(self) -> &'static [&'static str] {
        match self {
            Self::Password | Self::PasswordInOneStep => &["pwd"],
            Self::Mailbox => &["email"],
            // A user-verified passkey: a key held (hwk) and the user verified on it.
            Self::Passkey => &["webauthn"],
        }
    }
}

/// What is known of the account and its tenant once the credential is correct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// The account is disabled.
    pub disabled: bool,
    /// Its address is confirmed.
    pub email_verified: bool,
    /// It has at least one second factor (authenticator app, emailed code).
    pub has_second_factor: bool,
    /// The tenant requires a confirmed address before sign-in.
    pub require_verified_email: bool,
    /// The tenant requires a second factor of every account.
    pub require_mfa: bool,
}

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A session opens.
    Open,
    /// A second factor is due: the caller gets a challenge.
    Challenge,
    /// The tenant requires a second factor and the account has none: a session that can only
    /// enrol one.
    EnrolOnly,
    /// Refused as a wrong credential would be (a disabled account).
    Disabled,
    /// Refused until the address is confirmed.
    EmailNotVerified,
    /// Refused: a second factor is due and this way of signing in cannot give it.
    SecondFactorRequired,
}

/// Decides what a correct `credential` leads to.
#[must_use]
pub const fn decide(credential: Credential, facts: Facts) -> Verdict {
    if facts.disabled {
        return Verdict::Disabled;
    }
    let mailbox = matches!(credential, Credential::Mailbox);
    if facts.require_verified_email && !facts.email_verified && !mailbox {
        return Verdict::EmailNotVerified;
    }
    let second_factor_due = facts.has_second_factor || facts.require_mfa;
    match (credential, second_factor_due, facts.has_second_factor) {
        (_, false, _) | (Credential::Passkey, _, _) => Verdict::Open,
        (Credential::Password, true, true) => Verdict::Challenge,
        (Credential::Password, true, false) => Verdict::EnrolOnly,
        (Credential::PasswordInOneStep | Credential::Mailbox, true, _) => {
            Verdict::SecondFactorRequired
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: Facts = Facts {
        disabled: false,
        email_verified: true,
        has_second_factor: false,
        require_verified_email: false,
        require_mfa: false,
    };

    #[test]
    fn every_way_in_meets_the_same_rules() {
        let all = [
            Credential::Password,
            Credential::PasswordInOneStep,
            Credential::Mailbox,
            Credential::Passkey,
        ];
        for credential in all {
            assert_eq!(decide(credential, PLAIN), Verdict::Open);
            let disabled = Facts {
                disabled: true,
                ..PLAIN
            };
            assert_eq!(decide(credential, disabled), Verdict::Disabled);
        }
        let factor = Facts {
            has_second_factor: true,
            ..PLAIN
        };
        assert_eq!(decide(Credential::Password, factor), Verdict::Challenge);
        assert_eq!(
            decide(Credential::PasswordInOneStep, factor),
            Verdict::SecondFactorRequired
        );
        assert_eq!(
            decide(Credential::Mailbox, factor),
            Verdict::SecondFactorRequired
        );
        let required = Facts {
            require_mfa: true,
            ..PLAIN
        };
        assert_eq!(decide(Credential::Password, required), Verdict::EnrolOnly);
        assert_eq!(
            decide(Credential::Mailbox, required),
            Verdict::SecondFactorRequired
        );
        let unconfirmed = Facts {
            email_verified: false,
            require_verified_email: true,
            ..PLAIN
        };
        assert_eq!(
            decide(Credential::Password, unconfirmed),
            Verdict::EmailNotVerified
        );
        // The mailbox is the confirmation.
        assert_eq!(decide(Credential::Mailbox, unconfirmed), Verdict::Open);
        assert_eq!(
            decide(Credential::Passkey, unconfirmed),
            Verdict::EmailNotVerified
        );
    }

    #[test]
    fn a_passkey_is_the_second_factor_itself() {
        for facts in [
            Facts {
                has_second_factor: true,
                ..PLAIN
            },
            Facts {
                require_mfa: true,
                ..PLAIN
            },
        ] {
            assert_eq!(decide(Credential::Passkey, facts), Verdict::Open);
        }
    }
}

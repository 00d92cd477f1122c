//! Token lifetimes, in seconds: one constant each, read by edge and origin alike.

/// Access tokens (JWT): 15 minutes, as the canonical API's document states.
pub const ACCESS_TOKEN_SECS: u64 = 15 * 60;

/// Refresh-token families: 7 days from sign-in, an absolute limit that rotation never extends.
pub const REFRESH_FAMILY_SECS: u64 = 7 * 24 * 60 * 60;

/// Passwordless session tokens (VoiceStamp v1's email-code sign-in): 30 days.
pub const SESSION_TOKEN_SECS: u64 = 30 * 24 * 60 * 60;

/// The longest any JWT signed by Tessera can live (a VoiceStamp session token's 30 days): how
/// long a session's revocation, a removed key's revocation and a retired key's publication must
/// last.
pub const LONGEST_JWT_SECS: u64 = if SESSION_TOKEN_SECS > ACCESS_TOKEN_SECS {
    SESSION_TOKEN_SECS
} else {
    ACCESS_TOKEN_SECS
};

/// MFA challenges between the password step and the second factor: 5 minutes.
pub const MFA_CHALLENGE_SECS: u64 = 5 * 60;

/// Emailed sign-in codes and second-factor codes: 10 minutes.
pub const EMAIL_CODE_SECS: u64 = 10 * 60;

/// Password-reset links: 30 minutes.
pub const RESET_LINK_SECS: u64 = 30 * 60;

/// Email-verification links: 48 hours, so that a link read the next day still works.
pub const VERIFY_LINK_SECS: u64 = 48 * 60 * 60;

/// Invitation links (an admin created the account; the link chooses its password): 7 days,
/// single use.
pub const INVITE_LINK_SECS: u64 = 7 * 24 * 60 * 60;

/// How long a rotated refresh token may still be presented and receive the same successor,
/// so that two tabs refreshing at once do not trip reuse detection.
pub const REFRESH_REUSE_GRACE_SECS: u64 = 5;

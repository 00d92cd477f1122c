//! Rate limiting: the generic cell rate algorithm (GCRA), the route classes and their quotas
//! (which route has which class is a column of [`crate::policy::ROUTES`]).
//!
//! GCRA keeps one number per key, the theoretical arrival time (TAT), so its state fits a
//! Durable Object, a map entry or a database row equally well. [`check`] is a pure function of
//! that state, the time and the quota.
//!
//! A [`Quota`] of `limit` per `period` admits a burst of `limit` requests at once and a
//! sustained rate of `limit / period`: capacity refills one request every `period / limit`.
//! So the 6th sign-in of a burst is refused, and a client that keeps under the advertised rate
//! is never refused. The exact promise, checked by property tests: in any window of length `w`,
//! at most `limit + floor(w / interval)` requests are admitted (one full burst plus what the
//! rate allows). A stricter reading of "5 a minute", at most 5 in any sliding minute, cannot be
//! had from GCRA without refilling only one request per whole period, which would refuse a
//! client that steadily stays under the advertised rate; see `docs/ARCHITECTURE.md`.

use serde::{Deserialize, Serialize};

/// `limit` requests per `period_ms` milliseconds, with bursts of up to `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests per period, and the largest burst. At least 1.
    pub limit: u32,
    /// The period, in milliseconds. At least 1.
    pub period_ms: u64,
}

impl Quota {
    /// `limit` requests per minute.
    #[must_use]
    pub const fn per_minute(limit: u32) -> Self {
        Self {
            limit,
            period_ms: 60_000,
        }
    }

    /// `limit` requests per hour.
    #[must_use]
    pub const fn per_hour(limit: u32) -> Self {
        Self {
            limit,
            period_ms: 3_600_000,
        }
    }

    /// The emission interval: one request's worth of capacity refills in this many
    /// milliseconds (rounded up, so the sustained rate never exceeds the quota).
    #[must_use]
    pub fn interval_ms(self) -> u64 {
        self.period_ms.div_ceil(u64::from(self.limit.max(1))).max(1)
    }

    /// The capacity in milliseconds of "debt": `limit` intervals.
    fn capacity_ms(self) -> u64 {
        self.interval_ms()
            .saturating_mul(u64::from(self.limit.max(1)))
    }
}

/// The stored state of one limit key: the theoretical arrival time, in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GcraState {
    /// Theoretical arrival time: when the key's capacity will be whole again.
    pub tat_ms: u64,
}

impl GcraState {
    /// The state as 8 big-endian bytes, for a compact store.
    #[must_use]
    pub const fn to_bytes(self) -> [u8; 8] {
        self.tat_ms.to_be_bytes()
    }

    /// Reads the state back from [`GcraState::to_bytes`].
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 8]) -> Self {
        Self {
            tat_ms: u64::from_be_bytes(bytes),
        }
    }

    /// Whether the key is back at full capacity at `now_ms`, so that its stored state can be
    /// deleted without changing any decision.
    #[must_use]
    pub const fn is_idle(self, now_ms: u64) -> bool {
        self.tat_ms <= now_ms
    }
}

/// The outcome of one request against one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Admitted.
    Allowed {
        /// How many more requests would be admitted right now.
        remaining: u32,
        /// Milliseconds until the key is back at full capacity.
        reset_after_ms: u64,
    },
    /// Refused: over the quota.
    Limited {
        /// Milliseconds until one request would be admitted again.
        retry_after_ms: u64,
        /// Milliseconds until the key is back at full capacity.
        reset_after_ms: u64,
    },
}

impl Decision {
    /// Whether the request is admitted.
    #[must_use]
    pub const fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed { .. })
    }

    /// The `Retry-After` value in whole seconds, rounded up, for a refused request.
    #[must_use]
    pub const fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::Allowed { .. } => None,
            Self::Limited { retry_after_ms, .. } => Some(retry_after_ms.div_ceil(1000)),
        }
    }

    /// The `RateLimit-Policy` and `RateLimit` header values (IETF draft
    /// `draft-ietf-httpapi-ratelimit-headers`), as `(name, value)` pairs.
    #[must_use]
    pub fn headers(&self, policy_name: &str, quota: Quota) -> [(&'static str, String); 2] {
        let (remaining, reset_ms) = match *self {
            Self::Allowed {
                remaining,
                reset_after_ms,
            } => (remaining, reset_after_ms),
            Self::Limited { retry_after_ms, .. } => (0, retry_after_ms),
        };
        let window_secs = quota.period_ms.div_ceil(1000);
        [
            (
                "ratelimit-policy",
                format!("\"{policy_name}\";q={};w={window_secs}", quota.limit),
            ),
            (
                "ratelimit",
                format!(
                    "\"{policy_name}\";r={remaining};t={}",
                    reset_ms.div_ceil(1000)
                ),
            ),
        ]
    }
}

/// Runs GCRA for one request at `now_ms` (Unix milliseconds) against a key's stored state
/// (`None` for a key never seen). Returns the decision and the state to store. A refused request
/// leaves the state as it was, so hammering a limited key does not extend its lock.
#[must_use]
pub fn check(state: Option<GcraState>, now_ms: u64, quota: Quota) -> (Decision, GcraState) {
    let interval = quota.interval_ms();
    let capacity = quota.capacity_ms();
    let previous = state.unwrap_or_default();
    let tat = previous.tat_ms.max(now_ms);
    let new_tat = tat.saturating_add(interval);
    let debt = new_tat - now_ms;
    if debt > capacity {
        let decision = Decision::Limited {
            retry_after_ms: debt - capacity,
            reset_after_ms: tat - now_ms,
        };
        return (decision, previous);
    }
    let remaining = (capacity - debt) / interval;
    let decision = Decision::Allowed {
        remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
        reset_after_ms: debt,
    };
    (decision, GcraState { tat_ms: new_tat })
}

/// The kinds of endpoint that share a quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteClass {
    /// Endpoints that take a credential or send mail to an address: sign-in, registration,
    /// email-code requests, password reset, email-existence checks.
    Credential,
    /// Endpoints that check a short code: TOTP, email second factor, email sign-in codes,
    /// email confirmation.
    CodeConfirm,
    /// Refresh-token exchange.
    Refresh,
    /// The OpenID provider's token endpoint: relying parties' servers exchange every user's
    /// code from a few addresses, so its quota is per client as much as per IP.
    Token,
    /// Token verification and the JWKS document: called by services on every request.
    Verify,
    /// Everything else, including the public endpoints of every API.
    Public,
    /// Health, readiness and metrics probes, and CORS preflights: never limited.
    Unmetered,
}

impl RouteClass {
    /// The class's name, used in limit keys and in the `RateLimit-Policy` header.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Credential => "credential",
            Self::CodeConfirm => "code-confirm",
            Self::Refresh => "refresh",
            Self::Token => "token",
            Self::Verify => "verify",
            Self::Public => "public",
            Self::Unmetered => "unmetered",
        }
    }

    /// The class's quota per key; `None` means the class is not limited.
    #[must_use]
    pub const fn quota(self) -> Option<Quota> {
        match self {
            // Sign-in 5 a minute (the canonical API, Back Office v2).
            Self::Credential => Some(Quota::per_minute(5)),
            // 2FA confirmation 3 a minute (Back Office v2).
            Self::CodeConfirm => Some(Quota::per_minute(3)),
            // Refresh 5 a minute (Back Office v2).
            Self::Refresh => Some(Quota::per_minute(5)),
            // A hundred exchanges a second per client and per server address: every sign-in of
            // an application passes here, from its few servers, and a code or a client secret
            // is too long to guess anyway. The quota bounds a runaway client, not guessing.
            Self::Token => Some(Quota::per_minute(6_000)),
            // Verification may back every API call of a customer's service: generous.
            Self::Verify => Some(Quota::per_minute(6_000)),
            // Public API 30 a minute (the canonical API).
            Self::Public => Some(Quota::per_minute(30)),
            Self::Unmetered => None,
        }
    }

    /// Whether the class is also limited per account (tenant + email), not only per client IP,
    /// so that an attacker spread over many addresses still gets 5 guesses a minute per account.
    #[must_use]
    pub const fn per_account(self) -> bool {
        matches!(self, Self::Credential | Self::CodeConfirm | Self::Token)
    }
}

/// The storage key of a limit: the class and a digest of the subject, so that no IP address or
/// email appears in a key (a Durable Object name, a map key, a database row).
#[must_use]
pub fn limit_key(class: RouteClass, subject: &str) -> String {
    let digest = crate::secret::sha256(subject.as_bytes());
    format!("{}:{}", class.name(), crate::secret::hex(&digest[..16]))
}

/// The IPv6 prefix length per-IP limits key by unless configured (`TESSERA_IPV6_PREFIX` at the
/// origin, `IPV6_PREFIX` at the edge): a /64 is one subscriber's network, and its holder
/// chooses freely among its 2^64 addresses.
pub const DEFAULT_IPV6_PREFIX: u8 = 64;

/// The shortest IPv6 prefix either half accepts: shorter would put many subscribers in one
/// bucket (a /32 is a whole provider).
pub const MIN_IPV6_PREFIX: u8 = 32;

/// The subject of a per-IP limit. An IPv4 address (also written IPv4-mapped, `::ffff:a.b.c.d`)
/// is its own subject; an IPv6 address is charged as its network of `v6_prefix` bits (clamped
/// to [`MIN_IPV6_PREFIX`]..=128), so that whoever holds a /64 gets one bucket, not 2^64. Text
/// that is no address is keyed as it is.
#[must_use]
pub fn ip_subject(ip: &str, v6_prefix: u8) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let bits = v6_prefix.clamp(MIN_IPV6_PREFIX, 128);
                let mask = u128::MAX.checked_shl(u32::from(128 - bits)).unwrap_or(0);
                let network = std::net::Ipv6Addr::from(u128::from(v6) & mask);
                format!("ip:{network}/{bits}")
            }
        },
        Ok(std::net::IpAddr::V4(v4)) => format!("ip:{v4}"),
        Err(_) => format!("ip:{ip}"),
    }
}

/// The subject of a per-account limit: the tenant and the normalised email, so that the
/// spellings of one address share one quota.
#[must_use]
pub fn account_subject(tenant: &crate::model::TenantSlug, email: &crate::model::Email) -> String {
    format!("account:{tenant}:{email}")
}

/// The subject of a per-account limit on a route that checks a secret behind a bearer token
/// ([`crate::policy::AccountField::BearerAccount`]): the token's tenant (`tid`) and user
/// (`sub`), as the edge reads them from the verified claims and the origin from its caller.
#[must_use]
pub fn bearer_subject(tenant: &str, user: &str) -> String {
    format!("user:{tenant}:{user}")
}

/// The subject of an OpenID client's limit on the token endpoint: its tenant and client id.
#[must_use]
pub fn client_subject(tenant: &crate::model::TenantSlug, client_id: &str) -> String {
    format!("client:{tenant}:{client_id}")
}

/// The subject of a per-account limit on answering an MFA challenge: the challenge token's
/// tenant and account tag (see [`crate::token::OpaqueToken::account_tag`]), so that the edge,
/// which cannot look the challenge up, and the origin charge one budget per account.
#[must_use]
pub fn mfa_account_subject(mfa_token: &str) -> Option<String> {
    let token =
        crate::token::OpaqueToken::parse(crate::token::TokenKind::MfaChallenge, mfa_token).ok()?;
    Some(format!("mfa:{}:{}", token.tenant(), token.account_tag()))
}

/// The subject of a per-account limit on finishing a passkey ceremony: the ceremony token's
/// tenant and account tag. A ceremony begun for a named account carries a keyed hash of that
/// account, so that its assertions share one budget at the edge as at the origin.
#[must_use]
pub fn ceremony_account_subject(ceremony: &str) -> Option<String> {
    let token =
        crate::token::OpaqueToken::parse(crate::token::TokenKind::Ceremony, ceremony).ok()?;
    Some(format!(
        "passkey:{}:{}",
        token.tenant(),
        token.account_tag()
    ))
}

/// The human-readable detail of a 429, identical from edge and origin.
#[must_use]
pub fn limited_detail(class: RouteClass, quota: Quota) -> String {
    format!(
        "At most {} {} requests per {} seconds; retry later.",
        quota.limit,
        class.name(),
        quota.period_ms / 1000
    )
}

pub use crate::policy::classify;

/// Verification emails a user may ask to be sent again: one a minute and five an hour, both
/// per user, so that the button cannot turn Tessera into a mail cannon.
pub const RESEND_QUOTAS: [(&str, Quota); 2] = [
    ("resend-minute", Quota::per_minute(1)),
    ("resend-hour", Quota::per_hour(5)),
];

/// Emails that requests anyone can make may cause to one address (a reset link, a sign-in
/// code, a "someone tried to register with your address" notice): three a minute and twenty
/// an hour per address, so that nobody floods a mailbox through Tessera. Charged whether or
/// not the address has an account, so that the limit reveals nothing.
pub const ADDRESS_MAIL_QUOTAS: [(&str, Quota); 2] = [
    ("mail-minute", Quota::per_minute(3)),
    ("mail-hour", Quota::per_hour(20)),
];

#[cfg(test)]
mod tests {
    #[test]
    fn an_ipv6_client_is_limited_per_network_and_an_ipv4_one_per_address() {
        use super::{ip_subject, DEFAULT_IPV6_PREFIX};
        let a = ip_subject("2001:db8:1:2:aaaa::1", DEFAULT_IPV6_PREFIX);
        let b = ip_subject("2001:db8:1:2:ffff:ffff:ffff:ffff", DEFAULT_IPV6_PREFIX);
        assert_eq!(a, "ip:2001:db8:1:2::/64");
        assert_eq!(a, b);
        assert_ne!(a, ip_subject("2001:db8:1:3::1", DEFAULT_IPV6_PREFIX));
        assert_eq!(ip_subject("2001:db8:1:2::1", 128), "ip:2001:db8:1:2::1/128");
        assert_eq!(ip_subject("2001:db8:1:2::1", 8), "ip:2001:db8::/32");
        assert_eq!(ip_subject("::ffff:192.0.2.7", 64), "ip:192.0.2.7");
        assert_eq!(ip_subject("192.0.2.7", 64), "ip:192.0.2.7");
        assert_eq!(ip_subject("not an address", 64), "ip:not an address");
    }

    use super::*;

    #[test]
    fn five_pass_then_the_sixth_waits_one_interval() {
        let quota = Quota::per_minute(5);
        let mut state = None;
        for expected_remaining in (0..5).rev() {
            let (decision, next) = check(state, 1_000, quota);
            assert!(
                matches!(decision, Decision::Allowed { remaining, .. } if remaining == expected_remaining)
            );
            state = Some(next);
        }
        let (decision, _) = check(state, 1_000, quota);
        assert_eq!(decision.retry_after_secs(), Some(12));
        let (decision, _) = check(state, 12_999, quota);
        assert!(!decision.is_allowed());
        let (decision, _) = check(state, 13_000, quota);
        assert!(decision.is_allowed());
    }

    #[test]
    fn a_client_under_the_rate_is_never_refused() {
        let quota = Quota::per_minute(5);
        let mut state = None;
        for i in 0..10_000u64 {
            let (decision, next) = check(state, i * 12_000, quota);
            assert!(decision.is_allowed(), "request {i}");
            state = Some(next);
        }
    }

    #[test]
    fn limit_keys_hide_their_subject() {
        let key = limit_key(RouteClass::Credential, "account:acme:ann@example.com");
        assert!(key.starts_with("credential:"));
        assert_eq!(key.len(), "credential:".len() + 32);
        assert!(!key.contains("ann"));
        assert_ne!(
            key,
            limit_key(RouteClass::Credential, "account:acme:bob@example.com")
        );
        assert_ne!(
            key,
            limit_key(RouteClass::Refresh, "account:acme:ann@example.com")
        );
    }

    #[test]
    fn headers_follow_the_draft_syntax() {
        let quota = Quota::per_minute(5);
        let (decision, _) = check(None, 0, quota);
        let [policy, limit] = decision.headers("credential", quota);
        assert_eq!(policy.1, "\"credential\";q=5;w=60");
        assert_eq!(limit.1, "\"credential\";r=4;t=12");
    }

    #[test]
    fn classes_follow_the_api_documents() {
        assert_eq!(classify("POST", "/api/auth/login"), RouteClass::Credential);
        assert_eq!(classify("POST", "/api/auth/login/"), RouteClass::Credential);
        assert_eq!(
            classify("POST", "/api/auth/login?x=1"),
            RouteClass::Credential
        );
        assert_eq!(classify("OPTIONS", "/api/auth/login"), RouteClass::Public);
        assert_eq!(
            classify("POST", "/api/v2/2fa/confirm"),
            RouteClass::CodeConfirm
        );
        assert_eq!(classify("GET", "/api/refresh"), RouteClass::Refresh);
        for spelling in ["/api/forgot-passsword", "/api/forgot-password"] {
            assert_eq!(classify("POST", spelling), RouteClass::Credential);
        }
        assert_eq!(
            classify("POST", "/api/reset-password"),
            RouteClass::Credential
        );
        assert_eq!(classify("GET", "/api/v1/auth/verify"), RouteClass::Verify);
        assert_eq!(classify("POST", "/api/v2/signin"), RouteClass::Credential);
        assert_eq!(
            classify("GET", "/api/exist-email/a@b.io"),
            RouteClass::Credential
        );
        assert_eq!(classify("GET", "/api/exist-email/"), RouteClass::Public);
        assert_eq!(classify("GET", "/api/auth/verify"), RouteClass::Verify);
        assert_eq!(classify("POST", "/api/signup/x"), RouteClass::Public);
        assert_eq!(classify("GET", "/healthz"), RouteClass::Unmetered);
        assert_eq!(
            classify("POST", "/auth/reset-password"),
            RouteClass::Credential
        );
        assert_eq!(
            classify("GET", "/auth/reset-password?token=x"),
            RouteClass::Public
        );
        assert_eq!(
            classify("POST", "/api/auth/verify-email"),
            RouteClass::CodeConfirm
        );
        assert_eq!(classify("GET", "/api/auth/verify"), RouteClass::Verify);
        assert_eq!(RouteClass::CodeConfirm.quota(), Some(Quota::per_minute(3)));
        assert_eq!(RouteClass::Public.quota(), Some(Quota::per_minute(30)));
    }
}

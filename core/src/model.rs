//! Newtypes parsed once at the door: a value that exists is valid everywhere after it.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

/// Why a value was refused at the door. `code()` is stable for API clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The tenant slug breaks a rule; the message says which.
    #[error("invalid tenant: {0}")]
    Tenant(&'static str),
    /// The email address breaks a rule; the message says which.
    #[error("invalid email: {0}")]
    Email(&'static str),
    /// The identifier is not a UUID.
    #[error("invalid identifier")]
    Id,
}

impl ParseError {
    /// The stable machine-readable code for API error bodies.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Tenant(_) => "invalid_tenant",
            Self::Email(_) => "invalid_email",
            Self::Id => "invalid_id",
        }
    }
}

/// Slugs that would be confusing or dangerous as tenant names: subdomains of the service
/// itself, and names that PostgreSQL or operators already use.
const RESERVED_SLUGS: &[&str] = &[
    "admin",
    "api",
    "app",
    "auth",
    "edge",
    "global",
    "internal",
    "localhost",
    "origin",
    "pg",
    "postgres",
    "public",
    "root",
    "static",
    "system",
    "tessera",
    "www",
];

/// The longest slug: `tenant_` plus the slug must fit PostgreSQL's 63-byte identifier limit,
/// beyond which PostgreSQL silently truncates names and two tenants could share a schema.
pub const TENANT_SLUG_MAX: usize = 63 - TENANT_SCHEMA_PREFIX.len();

/// The shortest slug.
pub const TENANT_SLUG_MIN: usize = 3;

const TENANT_SCHEMA_PREFIX: &str = "tenant_";

/// The shape of a slug as a regular expression (ECMA 262 and Rust's `regex` alike), for
/// schemas that describe what [`TenantSlug::parse`] accepts: with [`TENANT_SLUG_MIN`] and
/// [`TENANT_SLUG_MAX`] as length bounds it matches exactly the accepted strings, reserved names
/// apart. Upper case is allowed, as `parse` folds it.
pub const TENANT_SLUG_PATTERN: &str = "^[A-Za-z](-?[A-Za-z0-9])*$";

/// A tenant's name: lowercase ASCII letters, digits and inner single hyphens, starting with a
/// letter, 3 to 56 characters, not reserved. It is valid as a DNS label, and it is the only way
/// to build a tenant's schema or file name, so no other string ever reaches SQL as a name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TenantSlug(String);

impl TenantSlug {
    /// Parses a slug. Like a DNS label it is case-insensitive: ASCII upper case is folded, so
    /// `Company-Name` names `company-name`, and the folded form is the one spelling kept.
    /// Surrounding whitespace is refused, not trimmed.
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let folded = input.to_ascii_lowercase();
        let input = folded.as_str();
        let bytes = input.as_bytes();
        if bytes.len() < TENANT_SLUG_MIN {
            return Err(ParseError::Tenant("shorter than 3 characters"));
        }
        if bytes.len() > TENANT_SLUG_MAX {
            return Err(ParseError::Tenant("longer than 56 characters"));
        }
        if !bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        {
            return Err(ParseError::Tenant(
                "only lowercase letters, digits and '-' are allowed",
            ));
        }
        if !bytes[0].is_ascii_lowercase() {
            return Err(ParseError::Tenant("must start with a letter"));
        }
        if bytes.ends_with(b"-") || input.contains("--") {
            return Err(ParseError::Tenant(
                "'-' may not end the name or follow another '-'",
            ));
        }
        if RESERVED_SLUGS.contains(&input) {
            return Err(ParseError::Tenant("this name is reserved"));
        }
        Ok(Self(input.to_owned()))
    }

    /// The slug as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The PostgreSQL schema that holds this tenant's tables: `tenant_` and the slug with `-`
    /// written as `_`. Injective, because a slug holds no `_`; safe to splice into SQL as an
    /// identifier, because it holds only `[a-z0-9_]`.
    #[must_use]
    pub fn schema_name(&self) -> String {
        format!("{TENANT_SCHEMA_PREFIX}{}", self.0.replace('-', "_"))
    }
}

impl fmt::Display for TenantSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TenantSlug {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An email address, normalised so that one mailbox is one account.
///
/// Rules: surrounding whitespace is trimmed; the whole address is lowercased (domains are
/// case-insensitive, and treating local parts the same way is what users expect: `Ann@x.io`
/// and `ann@x.io` are one person); exactly one `@`; a local part of 1–64 bytes; a domain of
/// 1–253 bytes with at least one dot, made of labels of letters, digits and `-`; 254 bytes in
/// all; no whitespace or control characters anywhere. Whether the mailbox exists is for email
/// confirmation to prove, not for a parser.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Parses and normalises an address.
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let address = input.trim().to_lowercase();
        if address.is_empty() {
            return Err(ParseError::Email("empty"));
        }
        if address.len() > 254 {
            return Err(ParseError::Email("longer than 254 bytes"));
        }
        if address.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ParseError::Email(
                "contains whitespace or control characters",
            ));
        }
        let Some((local, domain)) = address.split_once('@') else {
            return Err(ParseError::Email("missing '@'"));
        };
        if domain.contains('@') {
            return Err(ParseError::Email("more than one '@'"));
        }
        if local.is_empty() || local.len() > 64 {
            return Err(ParseError::Email(
                "the part before '@' must be 1 to 64 bytes",
            ));
        }
        let labels_ok = domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
        if !domain.contains('.') || domain.len() > 253 || !labels_ok {
            return Err(ParseError::Email("the domain is not a valid host name"));
        }
        Ok(Self(address))
    }

    /// The normalised address.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new random (version 4) identifier from 16 random bytes supplied by the caller.
            #[must_use]
            pub fn from_random_bytes(bytes: [u8; 16]) -> Self {
                Self(uuid::Builder::from_random_bytes(bytes).into_uuid())
            }

            /// Parses the hyphenated text form.
            pub fn parse(input: &str) -> Result<Self, ParseError> {
                Uuid::try_parse(input).map(Self).map_err(|_| ParseError::Id)
            }

            /// The underlying UUID.
            #[must_use]
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}

uuid_id!(
    /// A user's identifier, unique within a tenant; the `sub` of its access tokens.
    UserId
);
uuid_id!(
    /// A session's identifier: one sign-in, one refresh family; the `sid` of its access tokens.
    SessionId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_the_rules() {
        for ok in ["acme", "acme-corp", "a1b", "default", &"a".repeat(56)] {
            assert!(TenantSlug::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ab",
            "acme_corp",
            "1acme",
            "-acme",
            "acme-",
            "ac--me",
            " acme",
            "acme;",
            "api",
            "www",
            "public",
            "ac.me",
            "acmé",
            &"a".repeat(57),
        ] {
            assert!(TenantSlug::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn slugs_are_case_insensitive_and_kept_in_lower_case() {
        assert_eq!(
            TenantSlug::parse("Company-Name").unwrap().as_str(),
            "company-name"
        );
        assert_eq!(TenantSlug::parse("ACME"), TenantSlug::parse("acme"));
        assert!(TenantSlug::parse("Acmé").is_err());
    }

    proptest::proptest! {
        /// The pattern that schemas publish and `parse` agree on every string of slug
        /// characters (and a few others), reserved names apart.
        #[test]
        fn the_published_pattern_is_what_parse_accepts(candidate in "[A-Za-z0-9_.-]{0,60}") {
            let pattern = regex::Regex::new(TENANT_SLUG_PATTERN).unwrap();
            let fits = pattern.is_match(&candidate)
                && (TENANT_SLUG_MIN..=TENANT_SLUG_MAX).contains(&candidate.len());
            let reserved = RESERVED_SLUGS.contains(&candidate.to_ascii_lowercase().as_str());
            proptest::prop_assert_eq!(TenantSlug::parse(&candidate).is_ok(), fits && !reserved);
        }
    }

    #[test]
    fn sql_looking_names_never_become_slugs() {
        for bad in [
            "x\"; drop schema public cascade; --",
            "acme' or '1'='1",
            "tenant_a; select 1",
            "a b c",
        ] {
            assert_eq!(
                TenantSlug::parse(bad).map_err(|e| e.code()),
                Err("invalid_tenant")
            );
        }
    }

    #[test]
    fn schema_names_fit_postgres_and_do_not_collide() {
        let longest = TenantSlug::parse(&"z".repeat(TENANT_SLUG_MAX)).map(|s| s.schema_name());
        assert_eq!(longest.map(|s| s.len()), Ok(63));
        assert_eq!(
            TenantSlug::parse("acme-corp").map(|s| s.schema_name()),
            Ok("tenant_acme_corp".to_owned())
        );
    }

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(
            Email::parse("  Ann.Lee+tag@Example.COM ").map(|e| e.to_string()),
            Ok("ann.lee+tag@example.com".to_owned())
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@x.io",
            "ann@x",
            "a@b@x.io",
            "ann @x.io",
            "ann@-x.io",
            "ann@x..io",
            "ann@x_y.io",
            &format!("{}@x.io", "a".repeat(65)),
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ids_round_trip_and_are_version_4() {
        let id = UserId::from_random_bytes([7; 16]);
        assert_eq!(id.as_uuid().get_version_num(), 4);
        assert_eq!(UserId::parse(&id.to_string()), Ok(id));
        assert_eq!(SessionId::parse("not-a-uuid"), Err(ParseError::Id));
    }
}

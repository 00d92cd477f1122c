//! A tenant's WebAuthn relying party: the RP ID its passkeys are bound to and the browser
//! origin its ceremonies run on (`--rp-id`, `--webauthn-origin`; by default both from
//! `TESSERA_PUBLIC_URL`).

use url::Url;
use webauthn_rs::{Webauthn, WebauthnBuilder};

/// An RP ID and an origin that webauthn-rs accepts together: the origin's host is the RP ID or
/// one of its subdomains. A passkey is bound to the RP ID for good: changing a tenant's RP ID
/// makes every passkey of the tenant unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingParty {
    id: String,
    origin: Url,
}

/// Why an RP ID and origin were refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid WebAuthn relying party (RP ID {id:?}, origin {origin:?}): {reason}")]
pub struct InvalidRelyingParty {
    id: String,
    origin: String,
    reason: &'static str,
}

impl RelyingParty {
    /// Checks an RP ID (a domain, e.g. `example.com`) with the origin pages run on (e.g.
    /// `https://login.example.com`).
    ///
    /// # Errors
    /// [`InvalidRelyingParty`] naming what is wrong.
    pub fn new(id: &str, origin: &str) -> Result<Self, InvalidRelyingParty> {
        let refuse = |reason| InvalidRelyingParty {
            id: id.to_owned(),
            origin: origin.to_owned(),
            reason,
        };
        let url = Url::parse(origin.trim()).map_err(|_| refuse("the origin is not a URL"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(refuse("the origin must be http(s)://host[:port]"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(refuse("an origin has no path, query or fragment"));
        }
        let id = id.trim().to_ascii_lowercase();
        let party = Self { id, origin: url };
        // webauthn-rs's own rules: the origin's host must be the RP ID or under it.
        party
            .builder()
            .and_then(WebauthnBuilder::build)
            .map_err(|_| refuse("the origin's host must be the RP ID or a subdomain of it"))?;
        Ok(party)
    }

    /// The relying party of `public_url` (`TESSERA_PUBLIC_URL`): its host and origin.
    ///
    /// # Errors
    /// [`InvalidRelyingParty`] when the URL has no host WebAuthn accepts.
    pub fn of_public_url(public_url: &str) -> Result<Self, InvalidRelyingParty> {
        let url = Url::parse(public_url).ok();
        let host = url.as_ref().and_then(Url::host_str).unwrap_or_default();
        let origin = url
            .as_ref()
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        Self::new(host, &origin)
    }

    /// The RP ID.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The origin, serialised without a trailing slash (`https://login.example.com`).
    #[must_use]
    pub fn origin(&self) -> String {
        self.origin.origin().ascii_serialization()
    }

    fn builder(&self) -> webauthn_rs::prelude::WebauthnResult<WebauthnBuilder<'_>> {
        WebauthnBuilder::new(&self.id, &self.origin)
    }

    /// The webauthn-rs verifier of this party, naming the tenant to the user as `name`.
    ///
    /// # Errors
    /// None in practice: the party was checked when made.
    pub fn webauthn(&self, name: &str) -> webauthn_rs::prelude::WebauthnResult<Webauthn> {
        self.builder()?.rp_name(name).build()
    }
}

#[cfg(test)]
mod tests {
    use super::RelyingParty;

    #[test]
    fn an_origin_must_sit_under_its_rp_id() {
        let party = RelyingParty::new("Example.com", "https://login.example.com").unwrap();
        assert_eq!(party.id(), "example.com");
        assert_eq!(party.origin(), "https://login.example.com");
        for (id, origin) in [
            ("example.com", "https://example.org"),
            ("example.com", "https://login.example.com/path"),
            ("example.com", "ftp://example.com"),
            ("example.com", "not a url"),
        ] {
            assert!(RelyingParty::new(id, origin).is_err(), "{id} {origin}");
        }
    }

    #[test]
    fn the_public_url_gives_the_default_party() {
        let party = RelyingParty::of_public_url("http://localhost:8080").unwrap();
        assert_eq!(party.id(), "localhost");
        assert_eq!(party.origin(), "http://localhost:8080");
        // WebAuthn binds credentials to a domain, never to an address.
        assert!(RelyingParty::of_public_url("http://127.0.0.1:8080").is_err());
    }
}

//! Where a tenant's hosted pages send the user afterwards (`--app-url`): its browser app.

use url::Url;

/// An absolute `http(s)` URL without credentials, as the operator gave it (normalised).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppUrl(String);

/// Why a given app URL was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid app URL {given:?}: {reason} (expected https://app.example.com/…)")]
pub struct InvalidAppUrl {
    given: String,
    reason: &'static str,
}

impl AppUrl {
    /// Checks `given`: an absolute `http` or `https` URL with a host and no credentials (a
    /// link that a page shows to everyone must not carry a secret).
    ///
    /// # Errors
    /// [`InvalidAppUrl`] naming what is wrong.
    pub fn parse(given: &str) -> Result<Self, InvalidAppUrl> {
        let refuse = |reason| InvalidAppUrl {
            given: given.to_owned(),
            reason,
        };
        let url = Url::parse(given.trim()).map_err(|_| refuse("not an absolute URL"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(refuse("the scheme must be http or https, with a host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse("a link shown to everyone carries no credentials"));
        }
        Ok(Self(url.to_string()))
    }

    /// The URL.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::AppUrl;

    #[test]
    fn app_urls_are_absolute_http_without_credentials() {
        assert_eq!(
            AppUrl::parse("https://App.example.com/welcome")
                .unwrap()
                .as_str(),
            "https://app.example.com/welcome"
        );
        for bad in [
            "/relative",
            "javascript:alert(1)",
            "ftp://x.example",
            "https://u:p@x.example",
        ] {
            assert!(AppUrl::parse(bad).is_err(), "{bad}");
        }
    }
}

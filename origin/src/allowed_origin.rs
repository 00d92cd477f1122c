//! A browser origin a tenant allows to call the API (CORS), as an operator gives it.
//!
//! Browsers send `Origin` in one exact form (RFC 6454: lowercase scheme and host, punycode,
//! no default port, no path), and the CORS check compares strings. An origin stored in any
//! other form (`https://App.example.com/`, with a path, with a wildcard) would never match,
//! and the operator would only learn it from a browser's refusal, so it is checked and put in
//! that form once, where the operator gives it.

use std::fmt;

use url::{Origin, Url};

/// An origin in the form browsers send: `http(s)://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedOrigin(String);

/// Why a given origin was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid CORS origin {given:?}: {reason} (expected https://host or https://host:port)")]
pub struct InvalidOrigin {
    given: String,
    reason: &'static str,
}

impl AllowedOrigin {
    /// Checks `given` and puts it in the form browsers send. A trailing `/` is accepted (it is
    /// what a browser's address bar shows); a path, query, fragment, credentials, a scheme
    /// other than `http`/`https`, or a wildcard are refused.
    pub fn parse(given: &str) -> Result<Self, InvalidOrigin> {
        let refuse = |reason| InvalidOrigin {
            given: given.to_owned(),
            reason,
        };
        let url = Url::parse(given.trim()).map_err(|_| refuse("not an absolute URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(refuse("the scheme must be http or https"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse("an origin has no credentials"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(refuse("an origin has no path, query or fragment"));
        }
        if url.host_str().is_some_and(|h| h.contains('*')) {
            return Err(refuse("wildcards are not supported; list each origin"));
        }
        match url.origin() {
            origin @ Origin::Tuple(..) => Ok(Self(origin.ascii_serialization())),
            Origin::Opaque(_) => Err(refuse("not a tuple origin")),
        }
    }

    /// The origin as browsers send it.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AllowedOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::AllowedOrigin;

    #[test]
    fn origins_are_put_in_the_form_browsers_send() {
        for (given, stored) in [
            ("https://app.example.com", "https://app.example.com"),
            ("https://App.Example.COM/", "https://app.example.com"),
            ("https://app.example.com:443", "https://app.example.com"),
            ("http://localhost:3000", "http://localhost:3000"),
            ("https://bücher.example", "https://xn--bcher-kva.example"),
            ("http://[::1]:8080", "http://[::1]:8080"),
        ] {
            assert_eq!(AllowedOrigin::parse(given).unwrap().as_str(), stored);
        }
    }

    #[test]
    fn what_is_not_an_origin_is_refused_with_its_reason() {
        for (given, reason) in [
            ("app.example.com", "not an absolute URL"),
            ("*", "not an absolute URL"),
            ("null", "not an absolute URL"),
            ("ftp://app.example.com", "scheme"),
            ("https://app.example.com/login", "no path"),
            ("https://app.example.com/?a=1", "no path"),
            ("https://app.example.com/#x", "no path"),
            ("https://ann:pw@app.example.com", "no credentials"),
            ("https://*.example.com", "wildcards"),
        ] {
            let error = AllowedOrigin::parse(given).unwrap_err().to_string();
            assert!(error.contains(reason), "{given}: {error}");
        }
    }
}

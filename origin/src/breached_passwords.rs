//! Whether a new password is among those known from data breaches (ASVS 6.2.12), asked of a
//! Pwned Passwords range API (`GET <base><first five hex digits of its SHA-1>`, answered with
//! `SUFFIX:COUNT` lines) by k-anonymity: only five hex digits of the hash leave the server,
//! never the password or its full hash. Off unless `TESSERA_BREACHED_PASSWORDS_URL` is set.

use std::time::Duration;

use sha1::{Digest as _, Sha1};

/// How long a range request may take before the check is skipped.
const TIMEOUT: Duration = Duration::from_secs(3);

/// A Pwned Passwords range API.
#[derive(Clone)]
pub struct BreachedPasswords {
    base: String,
    http: reqwest::Client,
}

impl BreachedPasswords {
    /// The API whose range URLs start with `base` (e.g. `https://api.pwnedpasswords.com/range/`).
    #[must_use]
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .user_agent("tessera")
            .build()
            .unwrap_or_default();
        Self {
            base: base.to_owned(),
            http,
        }
    }

    /// How many times `password` appears in the breaches the API knows (0: none), or `None`
    /// when the API could not answer. Padding lines (count 0) are what they say.
    pub async fn count(&self, password: &str) -> Option<u64> {
        let digest = format!("{:X}", Sha1::digest(password.as_bytes()));
        let (prefix, suffix) = digest.split_at(5);
        let answer = self
            .http
            .get(format!("{}{prefix}", self.base))
            // Every answer the same size, so that its length does not hint at the prefix.
            .header("Add-Padding", "true")
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        let body = match answer {
            Ok(response) => response.text().await,
            Err(error) => Err(error),
        };
        match body {
            Ok(body) => Some(count_in(&body, suffix)),
            Err(error) => {
                metrics::counter!("tessera_breached_password_check_failures_total").increment(1);
                tracing::warn!(%error, "breached-password check skipped: the range API did not answer");
                None
            }
        }
    }
}

/// The count on `suffix`'s line of a range answer (0 when it has none or cannot be read).
fn count_in(body: &str, suffix: &str) -> u64 {
    body.lines()
        .filter_map(|line| line.trim().split_once(':'))
        .find(|(candidate, _)| candidate.eq_ignore_ascii_case(suffix))
        .and_then(|(_, count)| count.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::count_in;
    use sha1::{Digest as _, Sha1};

    #[test]
    fn the_hash_is_split_as_the_range_api_expects() {
        // "password": SHA-1 5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8.
        let digest = format!("{:X}", Sha1::digest(b"password"));
        assert_eq!(digest, "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8");
        let body = "003D68EB55068C33ACE09247EE4C639306B:3\r\n\
                    1E4C9B93F3F0682250B6CF8331B7EE68FD8:9545824\r\n\
                    1E4C9B93F3F0682250B6CF8331B7EE68FD9:0\r\n";
        assert_eq!(count_in(body, &digest[5..]), 9_545_824);
        assert_eq!(count_in(body, "1E4C9B93F3F0682250B6CF8331B7EE68FD9"), 0);
        assert_eq!(count_in(body, "0000000000000000000000000000000000A"), 0);
        assert_eq!(count_in("not an answer", &digest[5..]), 0);
    }
}

//! A Turnstile-compatible captcha check (`secret`, `response`, `remoteip` posted as a form;
//! `{"success": true}` back), off unless configured.

use std::net::IpAddr;
use std::time::Duration;

use crate::config::Captcha;

/// Checks captcha answers with the configured verifier.
#[derive(Clone)]
pub struct CaptchaVerifier {
    config: Captcha,
    http: reqwest::Client,
}

#[derive(serde::Deserialize)]
struct Answer {
    success: bool,
}

impl CaptchaVerifier {
    /// A verifier for `config`.
    #[must_use]
    pub fn new(config: Captcha) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self { config, http }
    }

    /// Whether `response` (the widget's token) verifies. An unreachable verifier counts as a
    /// failure: a captcha that can be skipped by making its verifier slow protects nothing.
    pub async fn check(&self, response: &str, ip: IpAddr) -> bool {
        let ip = ip.to_string();
        let form = [
            ("secret", self.config.secret.as_str()),
            ("response", response),
            ("remoteip", ip.as_str()),
        ];
        let answer = self
            .http
            .post(&self.config.verify_url)
            .form(&form)
            .send()
            .await;
        match answer {
            Ok(response) => response
                .json::<Answer>()
                .await
                .is_ok_and(|answer| answer.success),
            Err(error) => {
                tracing::warn!(%error, "captcha verifier unreachable");
                false
            }
        }
    }
}

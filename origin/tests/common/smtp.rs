//! A real SMTP server process (aiosmtpd, `tests/support/smtp_sink.py`) on 127.0.0.1, and the
//! messages it received. Killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::free_port;

/// A delivered message, parsed.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The file it was delivered to.
    pub file: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Mail {
    /// The `token=` value of the first link in the plain text.
    pub fn token(&self) -> String {
        let start = self.text.find("token=").expect("a link with a token") + "token=".len();
        self.text[start..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect()
    }

    /// The first link of the plain text.
    pub fn link(&self) -> String {
        self.text
            .split_whitespace()
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))
            .expect("a link")
            .to_owned()
    }

    /// The code: the line made of six digits alone.
    pub fn code(&self) -> String {
        self.text
            .lines()
            .map(str::trim)
            .find(|l| tessera_core::otp::is_code_shaped(l))
            .expect("a code alone on its line")
            .to_owned()
    }
}

/// TLS material for a STARTTLS sink: a CA, and a certificate for 127.0.0.1 that it signed.
pub struct Tls {
    pub ca_file: PathBuf,
    cert_file: PathBuf,
    key_file: PathBuf,
}

impl Tls {
    pub fn generate(dir: &Path) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let tls = Self {
            ca_file: dir.join("ca.pem"),
            cert_file: dir.join("cert.pem"),
            key_file: dir.join("key.pem"),
        };
        std::fs::write(&tls.ca_file, ca.pem()).unwrap();
        std::fs::write(&tls.cert_file, cert.pem()).unwrap();
        std::fs::write(&tls.key_file, key.serialize_pem()).unwrap();
        tls
    }
}

pub struct SmtpSink {
    pub port: u16,
    dir: tempfile::TempDir,
    tls: Option<Tls>,
    child: Option<Child>,
}

impl SmtpSink {
    /// Starts a sink speaking plain SMTP.
    pub fn start() -> Self {
        Self::start_inner(false)
    }

    /// Starts a sink that requires STARTTLS, with a certificate of its own CA.
    pub fn start_tls() -> Self {
        Self::start_inner(true)
    }

    fn start_inner(tls: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let tls = tls.then(|| Tls::generate(dir.path()));
        let mut sink = Self {
            port: free_port(),
            dir,
            tls,
            child: None,
        };
        sink.resume();
        sink
    }

    /// `smtp://127.0.0.1:<port>`, with `?tls=required` for a STARTTLS sink.
    pub fn url(&self) -> String {
        match self.tls {
            Some(_) => format!("smtp://127.0.0.1:{}?tls=required", self.port),
            None => format!("smtp://127.0.0.1:{}", self.port),
        }
    }

    /// The CA to trust for a STARTTLS sink.
    pub fn ca_file(&self) -> Option<String> {
        self.tls.as_ref().map(|t| t.ca_file.display().to_string())
    }

    /// Stops the server (the port then refuses connections).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server (again) on its port.
    pub fn resume(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
        let mut command = Command::new("python3");
        command
            .arg(script)
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--dir")
            .arg(self.dir.path().join("mail"));
        if let Some(tls) = &self.tls {
            command
                .arg("--tls-cert")
                .arg(&tls.cert_file)
                .arg("--tls-key")
                .arg(&tls.key_file);
        }
        self.child = Some(super::spawn_ready(
            command,
            "the SMTP sink did not start: it needs aiosmtpd (scripts/test installs it; or \
             `python3 -m pip install aiosmtpd`)",
        ));
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Mail> {
        let Ok(entries) = std::fs::read_dir(self.dir.path().join("mail")) else {
            return Vec::new();
        };
        let mut files: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|path| {
                let raw = std::fs::read(path).unwrap();
                let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
                Mail {
                    file: path.display().to_string(),
                    to: message
                        .to()
                        .and_then(|a| a.first())
                        .and_then(|a| a.address())
                        .unwrap_or_default()
                        .to_owned(),
                    subject: message.subject().unwrap_or_default().to_owned(),
                    text: message.body_text(0).unwrap_or_default().into_owned(),
                    html: message.body_html(0).unwrap_or_default().into_owned(),
                }
            })
            .collect()
    }

    /// The messages to `to`, oldest first.
    pub fn messages_to(&self, to: &str) -> Vec<Mail> {
        self.messages().into_iter().filter(|m| m.to == to).collect()
    }

    /// Waits (up to 15 s) until `to` has received `count` messages; returns them.
    pub async fn wait_for(&self, to: &str, count: usize) -> Vec<Mail> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let mail = self.messages_to(to);
            if mail.len() >= count {
                return mail;
            }
            assert!(
                Instant::now() < deadline,
                "{to} received {} of {count} messages: {:?}",
                mail.len(),
                self.messages()
                    .iter()
                    .map(|m| (&m.to, &m.subject))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for the newest message to `to` beyond the `seen` it had; returns it.
    pub async fn next_to(&self, to: &str, seen: usize) -> Mail {
        self.wait_for(to, seen + 1).await.swap_remove(seen)
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

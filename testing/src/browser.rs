//! A real headless browser for the tests: Debian's Chromium through chromedriver, and a small
//! page of a browser app that uses passkeys.

use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::json;

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// chromedriver on a free loopback port, in a process group of its own with the Chromium it
/// starts; the whole group is killed when this is dropped, so that a failing test leaves no
/// browser behind either.
pub struct Chromedriver {
    child: Child,
    port: u16,
}

impl Chromedriver {
    /// Starts chromedriver; panics with how to install it when it cannot start.
    pub fn start() -> Self {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "chromedriver cannot start ({e}): install Debian's chromium and \
                     chromium-driver (scripts/test does: apt-get install chromium chromium-driver)"
                )
            });
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port }
    }

    /// A new headless Chromium session.
    pub async fn browser(&self) -> Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=900,900"],
            }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// A browser app's page on `http://localhost:<port>`, with the passkey calls an app makes: its
/// scripts call Tessera's API with `fetch` and the browser's own `navigator.credentials`.
pub async fn passkey_app_page() -> String {
    let page = r#"<!doctype html><html><head><title>passkeys</title><script>
async function api(base, path, body, token) {
  const headers = {"content-type": "application/json"};
  if (token) headers.authorization = "Bearer " + token;
  const r = await fetch(base + path, {method: "POST", headers, body: JSON.stringify(body)});
  const text = await r.text();
  return {status: r.status, body: text ? JSON.parse(text) : null};
}
async function addPasskey(base, token, password) {
  const options = await api(base, "/api/auth/passkeys/register/options", {password}, token);
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options.body.publicKey);
  const credential = await navigator.credentials.create({publicKey});
  const added = await api(base, "/api/auth/passkeys/register",
    {ceremony: options.body.ceremony, credential: credential.toJSON(), name: "This browser"}, token);
  return added.status;
}
async function signInWithPasskey(base, tenant) {
  const options = await api(base, "/api/auth/passkeys/login/options", {tenant});
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options.body.publicKey);
  const credential = await navigator.credentials.get({publicKey});
  return api(base, "/api/auth/passkeys/login",
    {ceremony: options.body.ceremony, credential: credential.toJSON()});
}
</script></head><body>passkeys</body></html>"#;
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || async move { axum::response::Html(page) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port for the page");
    // WebAuthn binds passkeys to a domain: the page is opened as localhost, never 127.0.0.1.
    let url = format!(
        "http://localhost:{}",
        listener.local_addr().expect("its address").port()
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// The W3C WebAuthn WebDriver extension's "Add Virtual Authenticator": a platform (internal)
/// CTAP2 authenticator that keeps resident keys and verifies its user.
#[derive(Debug)]
pub struct AddVirtualAuthenticator;

impl fantoccini::wd::WebDriverCompatibleCommand for AddVirtualAuthenticator {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/webauthn/authenticator",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        let authenticator = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
        });
        (axum::http::Method::POST, Some(authenticator.to_string()))
    }
}

/// Runs `call` (a page function's call, its last argument the WebDriver callback) and answers
/// what it resolved to, or the error it threw.
pub async fn run_on_page(
    browser: &Client,
    call: &str,
    args: Vec<serde_json::Value>,
) -> serde_json::Value {
    let script = format!(
        "const done = arguments[arguments.length - 1];\n\
         {call}.then(done, e => done({{error: e.name + ': ' + e.message}}));"
    );
    browser
        .execute_async(&script, args)
        .await
        .expect("the script ran")
}

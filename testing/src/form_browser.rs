//! A browser without JavaScript for the hosted pages' tests: it keeps the cookies it is given
//! (checking that each is a `__Host-` cookie: Secure, HttpOnly, SameSite=Lax, Path=/), follows
//! no redirect by itself, and submits a page's form with its hidden fields.

use std::collections::HashMap;

/// The browser.
pub struct FormBrowser {
    /// Its HTTP client (no redirects followed).
    pub http: reqwest::Client,
    cookies: HashMap<String, String>,
    headers: Vec<(String, String)>,
}

/// A page as the browser got it.
pub struct Page {
    /// The status.
    pub status: u16,
    /// Where a redirect points.
    pub location: Option<String>,
    /// The body.
    pub html: String,
}

impl Default for FormBrowser {
    fn default() -> Self {
        Self::new()
    }
}

impl FormBrowser {
    /// A browser with no cookies.
    #[must_use]
    pub fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("http client"),
            cookies: HashMap::new(),
            headers: Vec::new(),
        }
    }

    /// Sends `name: value` with every request (the client address a test's edge or origin
    /// believes, say).
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sends a request with the browser's cookies and headers; keeps the cookies it sets.
    pub async fn send(&mut self, mut request: reqwest::RequestBuilder) -> Page {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        request = request.header("cookie", cookie);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let response = request.send().await.expect("request");
        for set in response.headers().get_all("set-cookie") {
            let set = set.to_str().expect("ascii cookie");
            assert!(set.contains("; Secure; HttpOnly; SameSite=Lax"), "{set}");
            assert!(set.contains("Path=/"), "{set}");
            let (name, value) = set
                .split(';')
                .next()
                .and_then(|pair| pair.split_once('='))
                .expect("name=value");
            assert!(name.starts_with("__Host-"), "{set}");
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Page {
            status,
            location,
            html: response.text().await.expect("body"),
        }
    }

    /// GETs `url`.
    pub async fn get(&mut self, url: &str) -> Page {
        let request = self.http.get(url);
        self.send(request).await
    }

    /// Submits the page's form (to `base` + its action) with its hidden fields and `fields`.
    pub async fn submit(&mut self, base: &str, page: &Page, fields: &[(&str, &str)]) -> Page {
        let action = form_action(&page.html);
        let mut form = hidden_fields(&page.html);
        for (name, value) in fields {
            form.push(((*name).to_owned(), (*value).to_owned()));
        }
        let request = self.http.post(format!("{base}{action}")).form(&form);
        self.send(request).await
    }
}

/// The action of the page's (first) form.
#[must_use]
pub fn form_action(html: &str) -> String {
    unescape(&attribute(html, "action=\""))
}

fn attribute(html: &str, start: &str) -> String {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("{start} in {html}"))
        + start.len();
    html[from..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Reverses the page templates' HTML escaping of an attribute value.
fn unescape(text: &str) -> String {
    text.replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn hidden_fields(html: &str) -> Vec<(String, String)> {
    html.split("<input type=\"hidden\" ")
        .skip(1)
        .map(|tag| {
            (
                attribute(tag, "name=\""),
                unescape(&attribute(tag, "value=\"")),
            )
        })
        .collect()
}

/// A query parameter of `url`.
#[must_use]
pub fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The `href` of the link with this `id`, unescaped.
#[must_use]
pub fn link(html: &str, id: &str) -> String {
    let tag = html
        .split("<a ")
        .find(|tag| tag.starts_with(&format!("id=\"{id}\"")))
        .unwrap_or_else(|| panic!("a link #{id} in {html}"));
    unescape(&attribute(tag, "href=\""))
}

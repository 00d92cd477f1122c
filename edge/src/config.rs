//! The Worker's configuration, from `wrangler.toml` vars and secrets.

use serde::Deserialize;
use tessera_core::identity::IdentityKey;
use tessera_core::model::TenantSlug;
use tessera_core::ratelimit::RouteClass;

/// Whether an application route needs a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteAuth {
    /// No valid token: 401 at the edge.
    Required,
    /// A valid token is attached as identity; none is fine; an invalid one is 401.
    Optional,
}

/// One entry of `ROUTES`: requests under `prefix` go to `upstream`, guarded by the edge.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AppRoute {
    /// Path prefix, e.g. `/app/`.
    pub prefix: String,
    /// Token policy.
    pub auth: RouteAuth,
    /// Rate-limit class: `credential`, `code-confirm`, `refresh`, `token`, `verify`, `public`,
    /// `unmetered` (default `public`).
    #[serde(default = "default_class", deserialize_with = "class_from_name")]
    pub class: RouteClass,
    /// Base URL the request is forwarded to (its path is kept).
    pub upstream: String,
}

fn default_class() -> RouteClass {
    RouteClass::Public
}

fn class_from_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<RouteClass, D::Error> {
    let name = String::deserialize(d)?;
    [
        RouteClass::Credential,
        RouteClass::CodeConfirm,
        RouteClass::Refresh,
        RouteClass::Token,
        RouteClass::Verify,
        RouteClass::Public,
        RouteClass::Unmetered,
    ]
    .into_iter()
    .find(|c| c.name() == name)
    .ok_or_else(|| serde::de::Error::custom(format!("unknown route class '{name}'")))
}

/// The whole configuration. `Debug` never prints the edge secret.
#[derive(Clone)]
pub struct Config {
    /// `ORIGIN_URL`: where everything not answered here goes.
    pub origin_url: String,
    /// `ISSUER`: the origin's `TESSERA_ISSUER`.
    pub issuer: String,
    /// `AUDIENCE`: the origin's `TESSERA_AUDIENCE`.
    pub audience: String,
    /// `EDGE_SECRET` (a secret): shared with the origin, and with nobody else.
    pub edge_secret: String,
    /// `IDENTITY_KEY` (a secret): the Ed25519 key that signs the identity forwarded to
    /// application upstreams, whose public half they are given (`tessera keys edge-identity`).
    /// Required when `ROUTES` is not empty.
    pub identity_key: Option<IdentityKey>,
    /// `ROUTES`: JSON array of [`AppRoute`], longest prefix first.
    pub routes: Vec<AppRoute>,
    /// `DEFAULT_TENANT`: the origin's `TESSERA_DEFAULT_TENANT`, for the per-account limit of
    /// requests that name no tenant (default `default`).
    pub default_tenant: TenantSlug,
    /// `BASE_DOMAIN`: the origin's `TESSERA_BASE_DOMAIN`; a host `<slug>.<BASE_DOMAIN>` names
    /// the tenant `<slug>` (core's `tenant::named`). Unset: subdomains name no tenant.
    pub base_domain: Option<String>,
    /// `IPV6_PREFIX`: per-IP limits charge an IPv6 client's network of this many bits (default
    /// 64, 32–128), as the origin's `TESSERA_IPV6_PREFIX` does.
    pub ipv6_prefix: u8,
    /// `JWKS_REFETCH_MIN_MS`: the shortest time between two key fetches caused by tokens
    /// naming an unknown `kid` (default 5000, at least 100).
    pub jwks_refetch_min_ms: u64,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("origin_url", &self.origin_url)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("edge_secret", &"<redacted>")
            .field("identity_key", &self.identity_key)
            .field("routes", &self.routes)
            .field("default_tenant", &self.default_tenant)
            .field("base_domain", &self.base_domain)
            .field("ipv6_prefix", &self.ipv6_prefix)
            .field("jwks_refetch_min_ms", &self.jwks_refetch_min_ms)
            .finish()
    }
}

impl Config {
    /// Builds the configuration from a lookup of variables; the error names the variable.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let required = |name: &str| {
            get(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("{name} is not set"))
        };
        let edge_secret = required("EDGE_SECRET")?;
        if edge_secret.len() < 32 {
            return Err("EDGE_SECRET must be at least 32 characters".into());
        }
        let mut routes: Vec<AppRoute> = match get("ROUTES").filter(|r| !r.trim().is_empty()) {
            Some(json) => serde_json::from_str(&json).map_err(|e| format!("ROUTES: {e}"))?,
            None => Vec::new(),
        };
        if let Some(bad) = routes
            .iter()
            .find(|r| !r.prefix.starts_with('/') || !r.upstream.starts_with("http"))
        {
            return Err(format!(
                "ROUTES: prefix '{}' must start with '/' and upstream with http",
                bad.prefix
            ));
        }
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        let identity_key = get("IDENTITY_KEY")
            .filter(|k| !k.trim().is_empty())
            .map(|k| IdentityKey::parse(&k).map_err(|e| format!("IDENTITY_KEY: {e}")))
            .transpose()?;
        if identity_key.is_none() && !routes.is_empty() {
            return Err(
                "ROUTES needs IDENTITY_KEY (make one with `tessera keys edge-identity`)".into(),
            );
        }
        Ok(Self {
            origin_url: required("ORIGIN_URL")?.trim_end_matches('/').to_owned(),
            issuer: required("ISSUER")?,
            audience: get("AUDIENCE").unwrap_or_else(|| "tessera".into()),
            edge_secret,
            identity_key,
            routes,
            default_tenant: TenantSlug::parse(
                &get("DEFAULT_TENANT").unwrap_or_else(|| "default".into()),
            )
            .map_err(|e| format!("DEFAULT_TENANT: {e}"))?,
            base_domain: get("BASE_DOMAIN")
                .map(|d| d.trim().trim_matches('.').to_ascii_lowercase())
                .filter(|d| !d.is_empty()),
            ipv6_prefix: match get("IPV6_PREFIX") {
                None => tessera_core::ratelimit::DEFAULT_IPV6_PREFIX,
                Some(bits) => bits
                    .trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|b| (tessera_core::ratelimit::MIN_IPV6_PREFIX..=128).contains(b))
                    .ok_or("IPV6_PREFIX must be a prefix length from 32 to 128")?,
            },
            jwks_refetch_min_ms: match get("JWKS_REFETCH_MIN_MS") {
                None => 5_000,
                Some(ms) => {
                    ms.parse::<u64>().ok().filter(|ms| *ms >= 100).ok_or(
                        "JWKS_REFETCH_MIN_MS must be a whole number of milliseconds >= 100",
                    )?
                }
            },
        })
    }

    /// The application route that `path` falls under, if any.
    #[must_use]
    pub fn route_for(&self, path: &str) -> Option<&AppRoute> {
        self.routes.iter().find(|r| path.starts_with(&r.prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn routes_parse_and_the_longest_prefix_wins() {
        let config = Config::from_lookup(lookup(&[
            ("ORIGIN_URL", "http://127.0.0.1:8080/"),
            ("ISSUER", "http://127.0.0.1:8080"),
            ("EDGE_SECRET", "0123456789abcdef0123456789abcdef"),
            ("IDENTITY_KEY", "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc"),
            (
                "ROUTES",
                r#"[{"prefix": "/app/", "auth": "optional", "upstream": "http://a"},
                    {"prefix": "/app/admin/", "auth": "required", "class": "credential", "upstream": "http://b"}]"#,
            ),
        ]))
        .expect("valid");
        assert_eq!(config.origin_url, "http://127.0.0.1:8080");
        assert_eq!(
            config.route_for("/app/admin/x").map(|r| r.auth),
            Some(RouteAuth::Required)
        );
        assert_eq!(
            config.route_for("/app/x").map(|r| r.class),
            Some(RouteClass::Public)
        );
        assert_eq!(config.route_for("/api/auth/login"), None);
        // The secret never reaches a log through Debug.
        let printed = format!("{config:?}");
        assert!(!printed.contains("0123456789abcdef"), "{printed}");
        assert!(printed.contains("<redacted>"));
        assert!(
            !printed.contains("BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc"),
            "{printed}"
        );
        assert_eq!(config.ipv6_prefix, 64);
    }

    #[test]
    fn routes_need_an_identity_key_and_a_bad_one_is_named() {
        let without = Config::from_lookup(lookup(&[
            ("ORIGIN_URL", "http://o"),
            ("ISSUER", "x"),
            ("EDGE_SECRET", "0123456789abcdef0123456789abcdef"),
            (
                "ROUTES",
                r#"[{"prefix": "/a/", "auth": "required", "upstream": "http://u"}]"#,
            ),
        ]))
        .expect_err("no identity key");
        assert!(without.contains("IDENTITY_KEY"), "{without}");
        let bad = Config::from_lookup(lookup(&[
            ("ORIGIN_URL", "http://o"),
            ("ISSUER", "x"),
            ("EDGE_SECRET", "0123456789abcdef0123456789abcdef"),
            ("IDENTITY_KEY", "0123456789abcdef0123456789abcdef"),
        ]))
        .expect_err("not 32 bytes of base64url");
        assert!(bad.starts_with("IDENTITY_KEY"), "{bad}");
    }

    #[test]
    fn the_ipv6_prefix_is_read_and_bounded() {
        let with = |bits: &'static str| {
            Config::from_lookup(move |k| match k {
                "ORIGIN_URL" => Some("http://o".into()),
                "ISSUER" => Some("http://o".into()),
                "EDGE_SECRET" => Some("0123456789abcdef0123456789abcdef".into()),
                "IPV6_PREFIX" => Some(bits.into()),
                _ => None,
            })
        };
        assert_eq!(with("48").map(|c| c.ipv6_prefix), Ok(48));
        assert!(with("16").is_err());
        assert!(with("129").is_err());
        assert!(with("banana").is_err());
    }

    #[test]
    fn a_missing_or_wrong_setting_is_named() {
        let missing = Config::from_lookup(lookup(&[("ISSUER", "x")])).expect_err("no secret");
        assert!(missing.contains("EDGE_SECRET"));
        let bad = Config::from_lookup(lookup(&[
            ("ORIGIN_URL", "http://o"),
            ("ISSUER", "x"),
            ("EDGE_SECRET", "0123456789abcdef0123456789abcdef"),
            (
                "ROUTES",
                r#"[{"prefix": "/a", "auth": "sometimes", "upstream": "http://u"}]"#,
            ),
        ]))
        .expect_err("bad auth");
        assert!(bad.starts_with("ROUTES"));
    }
}

//! The origin serves exactly the routes of core's policy table: every row is routed with its
//! method, every other method on a row's path is a 405, and the OpenAPI document lists exactly
//! the API rows. The wording of errors follows the row's API.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use common::{unique_ip, Backend, TestServer, EDGE_SECRET};
use reqwest::Method;
use serde_json::Value;
use tessera_core::policy::{Api, ROUTES};

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

async fn send(server: &TestServer, method: &str, path: &str) -> (u16, Value) {
    let response = server
        .http
        .request(
            Method::from_bytes(method.as_bytes()).unwrap(),
            server.url(path),
        )
        // A new client address each time, so that no per-IP quota answers before the router.
        .header("x-tessera-edge-secret", EDGE_SECRET)
        .header("x-tessera-client-ip", unique_ip())
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Whether the router's own fallbacks answered (no route, or not under this method).
fn fell_back(status: u16, body: &Value) -> bool {
    (status == 404 && body["detail"] == "No such route.") || body["code"] == "method_not_allowed"
}

#[tokio::test]
async fn the_router_serves_exactly_the_tables_routes() {
    let server = TestServer::start(Backend::Sqlite).await;
    for row in ROUTES {
        let path = row.example_path("x");
        let (status, body) = send(&server, row.method, &path).await;
        assert!(
            !fell_back(status, &body),
            "{} {} is in the table but not routed: {status} {body}",
            row.method,
            row.path
        );
        for method in METHODS {
            let in_table = ROUTES
                .iter()
                .any(|r| r.path == row.path && r.method == method);
            if in_table {
                continue;
            }
            let (status, body) = send(&server, method, &path).await;
            assert_eq!(
                (status, body["code"].as_str()),
                (405, Some("method_not_allowed")),
                "{method} {} is not in the table but answered",
                row.path
            );
            if row.api.voicestamp_wording() {
                assert_eq!(body["success"], false, "{method} {}", row.path);
            }
        }
    }
    // A path in no row falls back, worded as its prefix's API reads errors.
    let (status, body) = send(&server, "GET", "/api/v1/auth/nothing").await;
    assert_eq!((status, body["success"].as_bool()), (404, Some(false)));
    let (status, body) = send(&server, "GET", "/api/auth/nothing").await;
    assert_eq!((status, body.get("success")), (404, None));
}

/// The OpenAPI document a fresh server serves.
async fn served_document() -> Value {
    let server = TestServer::start(Backend::Sqlite).await;
    server
        .http
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_api_rows() {
    let document = served_document().await;
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method.to_ascii_lowercase()).is_some() {
                documented.insert((method.to_owned(), path.clone()));
            }
        }
    }
    // The hosted pages are HTML for people, and the internal routes the halves' own contract:
    // neither is an API operation.
    let table: BTreeSet<_> = ROUTES
        .iter()
        .filter(|r| !matches!(r.api, Api::Pages | Api::Internal))
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    assert_eq!(documented, table);
}

/// Issue 25, item 1: the document a client is generated from. Each API's bodies keep their own
/// schema (the canonical sign-in names its tenant; the team/vault one does not), every
/// operation id is unique and names its API, the four APIs declare `X-Tenant`, and there is a
/// server. (`scripts/schemathesis` also runs openapi-spec-validator over it.)
#[tokio::test]
async fn the_openapi_document_keeps_each_apis_shapes_apart() {
    let document = served_document().await;
    let body_of = |method: &str, path: &str| {
        let reference = document["paths"][path][method]["requestBody"]["content"]
            ["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let required: BTreeSet<String> = document["components"]["schemas"][&reference]["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        required
    };
    let fields = |names: &[&str]| {
        names
            .iter()
            .map(|n| (*n).to_owned())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(
        body_of("post", "/api/auth/login"),
        fields(&["email", "password"])
    );
    let login = &document["components"]["schemas"]["LoginRequest"]["properties"];
    assert!(
        login["tenant"].is_object(),
        "the canonical sign-in names its tenant: {login}"
    );
    assert_eq!(
        body_of("post", "/api/login"),
        fields(&["email", "password"])
    );
    assert_eq!(
        body_of("post", "/api/auth/refresh"),
        fields(&["refresh_token"])
    );
    assert_eq!(
        body_of("post", "/api/v2/refresh"),
        fields(&["refreshToken"])
    );
    assert_eq!(
        body_of("post", "/api/auth/reset-password"),
        fields(&["token", "password"])
    );
    assert_eq!(
        body_of("post", "/api/auth/email-code/verify"),
        fields(&["email", "code"])
    );

    let mut ids = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_owned()), "{id} twice");
            let api = tessera_core::policy::lookup(&method.to_ascii_uppercase(), path).api();
            assert!(id.starts_with(api.name()), "{id} for {method} {path}");
            let declares_tenant = operation["parameters"].as_array().is_some_and(|ps| {
                ps.iter()
                    .any(|p| p["name"] == "X-Tenant" && p["in"] == "header")
            });
            // A provider's path names its tenant, and the operator API is of none: no header
            // does.
            assert_eq!(
                declares_tenant,
                !matches!(api, Api::Operations | Api::OpenId | Api::Operator),
                "X-Tenant on {method} {path}"
            );
        }
    }
    assert!(ids.contains("team_vault_login") && ids.contains("canonical_login"));
    // A tenant slug has core's one shape wherever the document names one.
    let pattern = tessera_core::model::TENANT_SLUG_PATTERN;
    assert_eq!(
        login["tenant"]["pattern"], pattern,
        "the sign-in body's tenant"
    );
    let header = &document["paths"]["/api/auth/me"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "X-Tenant")
        .unwrap()["schema"];
    assert_eq!(header["pattern"], pattern);
    assert_eq!(header["maxLength"], tessera_core::model::TENANT_SLUG_MAX);
    assert_eq!(document["servers"][0]["url"], "/");
    let jwks = &document["paths"]["/.well-known/jwks.json"]["get"]["responses"]["200"]["content"]
        ["application/json"]["schema"]["$ref"];
    assert_eq!(jwks, "#/components/schemas/Jwks");
    assert!(document["components"]["schemas"]["Jwk"]["properties"]["use"].is_object());
}

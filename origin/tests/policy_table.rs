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

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_api_rows() {
    let server = TestServer::start(Backend::Sqlite).await;
    let document: Value = server
        .http
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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

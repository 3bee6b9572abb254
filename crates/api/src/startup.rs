//! Answering before the node is open.
//!
//! Opening a data directory can take a while (the projections file is checked page by page,
//! see `citydb-projections`); a client that connects meanwhile should get an answer, not
//! "connection refused". `citydb serve` therefore listens first, with [`Opening`]'s router:
//! `/healthz` 200, `/readyz` 503 with the reason, anything else 503 — and once the node is
//! open, [`Opening::open`] hands every request to the node's own router.

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tower::ServiceExt as _;

/// The router to serve while the node opens; see the module documentation.
#[derive(Clone)]
pub struct Opening {
    node: Arc<OnceLock<Router>>,
    reason: Arc<str>,
}

impl Opening {
    /// Answers as "not ready: `reason`" until [`open`](Self::open) is called.
    pub fn new(reason: impl Into<String>) -> Opening {
        Opening {
            node: Arc::new(OnceLock::new()),
            reason: Arc::from(reason.into()),
        }
    }

    /// Serve `router` from now on (the first call wins).
    pub fn open(&self, router: Router) {
        let _ = self.node.set(router);
    }

    /// The router to listen with.
    pub fn router(&self) -> Router {
        let this = self.clone();
        Router::new().fallback_service(tower::service_fn(move |request: Request| {
            let this = this.clone();
            async move {
                match this.node.get() {
                    Some(node) => node.clone().oneshot(request).await,
                    None => Ok::<Response, Infallible>(this.answer(&request)),
                }
            }
        }))
    }

    fn answer(&self, request: &Request) -> Response {
        let (status, body) = match request.uri().path() {
            "/healthz" => (StatusCode::OK, serde_json::json!({ "status": "ok" })),
            _ => (
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({ "status": "not ready", "reason": &*self.reason }),
            ),
        };
        let mut response = (status, axum::Json(body)).into_response();
        if status != StatusCode::OK {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;

    async fn ask(router: &Router, path: &str) -> (StatusCode, serde_json::Value) {
        let response = router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).expect("a request"))
            .await
            .expect("infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("a body");
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    #[tokio::test]
    async fn answers_while_opening_then_hands_over_to_the_node() {
        let opening = Opening::new("opening the data directory");
        let router = opening.router();
        assert_eq!(ask(&router, "/healthz").await.0, StatusCode::OK);
        let (status, body) = ask(&router, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["reason"], "opening the data directory");
        assert_eq!(
            ask(&router, "/graphql").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );

        opening.open(Router::new().route(
            "/readyz",
            get(|| async { axum::Json(serde_json::json!({ "status": "ready" })) }),
        ));
        let (status, body) = ask(&router, "/readyz").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "ready");
        assert_eq!(ask(&router, "/graphql").await.0, StatusCode::NOT_FOUND);
    }
}

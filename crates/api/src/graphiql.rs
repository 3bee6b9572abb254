//! The GraphiQL page, with its assets compiled into the binary so it works with no internet.

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const PAGE: &str = include_str!("../assets/graphiql/index.html");

/// Everything the page loads comes from this server; inline styles are needed by CodeMirror,
/// data: URLs by GraphiQL's embedded fonts and icons.
const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'none'";

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// `(file name, content type, bytes)` of every asset under `/graphiql/assets/`.
pub const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "graphiql.min.js",
        JS,
        include_bytes!("../assets/graphiql/graphiql.min.js"),
    ),
    (
        "graphiql.min.css",
        CSS,
        include_bytes!("../assets/graphiql/graphiql.min.css"),
    ),
    (
        "react.production.min.js",
        JS,
        include_bytes!("../assets/graphiql/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        JS,
        include_bytes!("../assets/graphiql/react-dom.production.min.js"),
    ),
    (
        "citydb-graphiql.js",
        JS,
        include_bytes!("../assets/graphiql/citydb-graphiql.js"),
    ),
    (
        "citydb-graphiql.css",
        CSS,
        include_bytes!("../assets/graphiql/citydb-graphiql.css"),
    ),
];

/// `/graphiql` and `/graphiql/assets/<file>`.
pub fn routes() -> Router {
    let mut router = Router::new().route("/graphiql", get(page));
    for &(name, content_type, bytes) in ASSETS {
        router = router.route(
            &format!("/graphiql/assets/{name}"),
            get(move || async move { asset(content_type, bytes) }),
        );
    }
    router
}

async fn page() -> Response {
    (
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CONTENT_SECURITY_POLICY, PAGE_CSP),
            (CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
        .into_response()
}

pub(crate) fn asset(content_type: &'static str, bytes: &'static [u8]) -> Response {
    (
        [
            (CONTENT_TYPE, content_type),
            // Versioned with the binary; an hour keeps upgrades visible soon enough.
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        bytes,
    )
        .into_response()
}

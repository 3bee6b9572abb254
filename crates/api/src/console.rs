//! The web console (`/console/`, issue 17): plain ES modules, HTML and CSS compiled into the
//! binary, so it works with no internet and nothing to install. The page talks only to this
//! server's `/graphql`, with the user's bearer token kept in the tab's session storage (never in
//! a URL). docs/console.md shows it.

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

const PAGE: &str = include_str!("../assets/console/index.html");

/// Nothing but this server: no inline script, no frames, no other origin.
const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const JS: &str = "text/javascript; charset=utf-8";

/// `(file name, content type, bytes)` of every asset under `/console/`.
pub const ASSETS: &[(&str, &str, &[u8])] = &[
    ("app.js", JS, include_bytes!("../assets/console/app.js")),
    ("api.js", JS, include_bytes!("../assets/console/api.js")),
    ("i18n.js", JS, include_bytes!("../assets/console/i18n.js")),
    ("views.js", JS, include_bytes!("../assets/console/views.js")),
    ("forms.js", JS, include_bytes!("../assets/console/forms.js")),
    (
        "requests.js",
        JS,
        include_bytes!("../assets/console/requests.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/console/style.css"),
    ),
];

/// `/console` (redirected), `/console/` and `/console/<asset>`.
pub fn routes() -> Router {
    let mut router = Router::new()
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route("/console/", get(page));
    for &(name, content_type, bytes) in ASSETS {
        router = router.route(
            &format!("/console/{name}"),
            get(move || async move { crate::graphiql::asset(content_type, bytes) }),
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

//! Parsed GraphQL documents, kept by their exact text (issue 13, item 2). Service systems send
//! a handful of operations over and over; parsing one (async-graphql's pest grammar) was 18 %
//! of the server's CPU for a PIN lookup (docs/benchmarks.md, "Where a point read's time goes").
//! A kept document is shared with each request that runs it (`Request::set_shared_query`), not
//! copied: its copy, skip/include pass and drop were 4-5 % of a point read's instructions
//! ("A kept document shared, not copied").
//!
//! Invariants:
//! - Only documents that parsed are kept, and only after the text passed the same nesting scan
//!   as every request (`bounds::scan_text`): the cache never holds what the server would refuse
//!   to parse, and the schema's extensions see the document as if freshly parsed: its expanded
//!   size is checked by every schema that runs it, once per bound ([`Expanded`]: a kept
//!   document never changes, so neither does that answer), and its validation is kept only by
//!   `crate::validated`'s rules.
//! - A kept document is never changed: the schema's hooks read it (`OperationHooks::parsed`
//!   takes `&ExecutableDocument`), and async-graphql applies a request's `@skip`/`@include` to
//!   a copy of its own (`tests/api.rs`, `a_kept_document_follows_each_requests_variables_...`).
//! - Bounded: at most [`MAX_DOCUMENTS`] documents of at most [`MAX_TEXT_BYTES`] bytes each; when
//!   full it is emptied, so text sent once by a hostile client costs at most a re-parse of the
//!   hot documents, never memory. That bound also bounds what colliding keys can cost: the
//!   texts are hashed with foldhash (seeded per process), not SipHash, whose hashing of a
//!   ~400-byte text was ~0.5 % of a PIN lookup's instructions.

use std::sync::{Arc, Mutex, OnceLock};

use foldhash::HashMap;

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationDefinition};
use async_graphql::{Positioned, Request, ServerError};

use crate::limits::MAX_NESTING;

/// Most documents kept.
pub const MAX_DOCUMENTS: usize = 512;
/// Longest document text kept (longer ones are parsed every time).
pub const MAX_TEXT_BYTES: usize = 16 * 1024;

/// The operation async-graphql runs for `operation_name` in `doc`, by its rule (`prepare_request`
/// in its `schema.rs`): a name picks among named operations (never the anonymous one); without
/// a name, the anonymous operation or the only named one. `None` where it refuses the request.
pub fn chosen_operation<'d>(
    doc: &'d ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<&'d Positioned<OperationDefinition>> {
    match (&doc.operations, operation_name) {
        (DocumentOperations::Single(op), None) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        _ => None,
    }
}

/// Put in a request's data by [`DocumentCache::parse`]: the request's text passed the nesting
/// scan at [`MAX_NESTING`], at most the schema's own bound (`limits::apply_limits`), so the
/// schema's `Limits` extension does not scan it again.
pub(crate) struct TextScanned;

impl TextScanned {
    /// Whether `request` carries the mark.
    pub(crate) fn on(request: &Request) -> bool {
        request
            .data
            .contains_key(&std::any::TypeId::of::<TextScanned>())
    }
}

/// Put in a request's data by [`DocumentCache::parse`] with a kept document: the bounds at which
/// the schema's `Limits` extension found that document's expansion (`bounds::expand`) within
/// its limits, shared by every request that runs the document. Set once, by the first request
/// that checks it; a schema with other bounds checks the document itself every time.
#[derive(Clone)]
pub(crate) struct Expanded(Arc<OnceLock<ExpansionBounds>>);

/// The nesting and field bounds an expansion was checked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ExpansionBounds {
    pub max_nesting: usize,
    pub max_fields: usize,
}

impl Expanded {
    /// The mark on `request`, if its document is a kept one.
    pub(crate) fn of(request: &Request) -> Option<&Expanded> {
        request
            .data
            .get(&std::any::TypeId::of::<Expanded>())
            .and_then(|mark| mark.downcast_ref::<Expanded>())
    }

    /// Whether the document was found within `bounds` before.
    pub(crate) fn within(&self, bounds: ExpansionBounds) -> bool {
        self.0.get() == Some(&bounds)
    }

    /// Notes that the document is within `bounds` (the first bounds noted stay).
    pub(crate) fn note(&self, bounds: ExpansionBounds) {
        let _ = self.0.set(bounds);
    }
}

/// A kept document and what is known of it.
struct Kept {
    doc: Arc<ExecutableDocument>,
    expanded: Expanded,
}

#[derive(Default)]
pub struct DocumentCache {
    documents: Mutex<HashMap<String, Kept>>,
}

impl DocumentCache {
    /// The request's document: a kept one if its text was seen before, else parsed (and kept
    /// when small enough). The request then holds it, so the schema does not parse it again.
    /// Text that fails the nesting scan (`bounds::scan_text` at [`MAX_NESTING`]: the parser
    /// recurses) is not parsed; a kept text passed it, so a hit scans nothing.
    pub fn parse<'r>(
        &self,
        request: &'r mut Request,
    ) -> Result<&'r ExecutableDocument, ServerError> {
        let kept = self.documents.lock().ok().and_then(|d| {
            d.get(&request.query)
                .map(|k| (k.doc.clone(), k.expanded.clone()))
        });
        match kept {
            Some((doc, expanded)) => {
                request.set_shared_query(doc);
                request.data.insert(expanded);
            }
            None => {
                crate::bounds::scan_text(&request.query, MAX_NESTING)
                    .map_err(|e| ServerError::new(e.to_string(), None))?;
                let doc = Arc::new(async_graphql::parser::parse_query(&request.query)?);
                request.set_shared_query(doc.clone());
                if request.query.len() <= MAX_TEXT_BYTES
                    && let Ok(mut documents) = self.documents.lock()
                {
                    if documents.len() >= MAX_DOCUMENTS {
                        documents.clear();
                    }
                    let expanded = Expanded(Arc::default());
                    request.data.insert(expanded.clone());
                    documents.insert(request.query.clone(), Kept { doc, expanded });
                }
            }
        }
        request.data.insert(TextScanned);
        request.parsed_query()
    }

    /// How many documents are kept.
    pub fn len(&self) -> usize {
        self.documents.lock().map_or(0, |d| d.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_parsed_once_and_the_same_after() {
        let cache = DocumentCache::default();
        let text = "query P($pin: String!) { citizen(pin: $pin) { id } }";
        let mut first = Request::new(text);
        let parsed = format!("{:?}", cache.parse(&mut first).unwrap());
        assert_eq!(cache.len(), 1);
        let mut second = Request::new(text);
        assert_eq!(format!("{:?}", cache.parse(&mut second).unwrap()), parsed);
        assert_eq!(
            cache.len(),
            1,
            "the second request was served from the cache"
        );
    }

    #[test]
    fn the_operation_chosen_is_the_one_async_graphql_runs() {
        let parse = |text: &str| async_graphql::parser::parse_query(text).unwrap();
        let chosen = |doc: &ExecutableDocument, name: Option<&str>| {
            chosen_operation(doc, name).map(|op| op.node.ty)
        };
        use async_graphql::parser::types::OperationType::{Mutation, Query};
        let anonymous = parse("{ me { id } }");
        assert_eq!(chosen(&anonymous, None), Some(Query));
        assert_eq!(chosen(&anonymous, Some("A")), None, "a name never picks it");
        let one = parse("mutation M { x }");
        assert_eq!(chosen(&one, None), Some(Mutation), "the only one");
        assert_eq!(chosen(&one, Some("M")), Some(Mutation));
        assert_eq!(chosen(&one, Some("N")), None);
        let two = parse("query A { x } mutation B { y }");
        assert_eq!(chosen(&two, None), None, "a name is required");
        assert_eq!(chosen(&two, Some("B")), Some(Mutation));
    }

    #[test]
    fn a_request_parsed_here_is_marked_scanned_and_a_refused_one_is_not() {
        let cache = DocumentCache::default();
        let text = "query P($pin: String!) { citizen(pin: $pin) { id } }";
        for _ in 0..2 {
            // Parsed, then kept.
            let mut request = Request::new(text);
            cache.parse(&mut request).unwrap();
            assert!(TextScanned::on(&request));
        }
        let deep = format!(
            "{{ a(x: {}1{}) }}",
            "[".repeat(MAX_NESTING + 1),
            "]".repeat(MAX_NESTING + 1)
        );
        let mut refused = Request::new(deep);
        assert!(cache.parse(&mut refused).is_err());
        assert!(!TextScanned::on(&refused));
    }

    #[test]
    fn what_does_not_parse_is_not_kept_and_the_cache_is_bounded() {
        let cache = DocumentCache::default();
        assert!(cache.parse(&mut Request::new("query {")).is_err());
        assert!(cache.is_empty());
        // Nested past the scan's bound: refused before the parser recurses into it.
        let deep = format!(
            "{{ a(x: {}1{}) }}",
            "[".repeat(MAX_NESTING + 1),
            "]".repeat(MAX_NESTING + 1)
        );
        assert!(
            async_graphql::parser::parse_query(&deep).is_ok(),
            "the parser alone takes it"
        );
        assert!(cache.parse(&mut Request::new(deep)).is_err());
        assert!(cache.is_empty());
        for i in 0..MAX_DOCUMENTS + 3 {
            cache
                .parse(&mut Request::new(format!("query Q{i} {{ me {{ id }} }}")))
                .unwrap();
            assert!(cache.len() <= MAX_DOCUMENTS);
        }
        let long = format!("query {{ me {{ id }} }} #{}", "x".repeat(MAX_TEXT_BYTES));
        let before = cache.len();
        cache.parse(&mut Request::new(long)).unwrap();
        assert_eq!(cache.len(), before, "a long text is parsed, not kept");
    }
}

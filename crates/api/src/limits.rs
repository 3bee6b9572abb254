//! Query limits, and the one extension that bounds documents and gives every GraphQL error a
//! code.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
    NextRequest, NextSubscribe, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{
    ObjectType, Request, Response, SchemaBuilder, ServerError, ServerResult, SubscriptionType,
    ValidationResult, Variables,
};
use citydb_log::LogError;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use crate::bounds::{self, BoundError};
use crate::documents::{Expanded, ExpansionBounds, TextScanned};
use crate::error::{ApiError, ErrorCode};
use crate::validated::{self, ValidationCache};

/// Limits on what one GraphQL operation may ask for. Installed in the schema by
/// [`apply_limits`] and available to resolvers as `ctx.data::<QueryLimits>()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryLimits {
    /// Deepest selection nesting.
    pub max_depth: usize,
    /// Highest complexity (fields counted, times list multipliers set by resolvers).
    pub max_complexity: usize,
    /// Largest page a connection field may return.
    pub max_page_size: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_depth: 12,
            max_complexity: 2000,
            max_page_size: 100,
        }
    }
}

impl QueryLimits {
    /// The page size for a `first` argument: `None` means the maximum; a negative value is
    /// `INVALID_INPUT`; more than `max_page_size` is `LIMIT_EXCEEDED`.
    pub fn page_size(&self, first: Option<i32>) -> Result<usize, ApiError> {
        match first {
            None => Ok(self.max_page_size),
            Some(n) if n < 0 => Err(ApiError::invalid_field(
                "`first` must not be negative",
                "first",
            )),
            Some(n) => {
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                if n > self.max_page_size {
                    Err(ApiError::limit_exceeded(format!(
                        "`first` is {n}, over the page size limit of {}",
                        self.max_page_size
                    )))
                } else {
                    Ok(n)
                }
            }
        }
    }
}

/// Nesting bound for the document text (brackets), the variables and the expanded selections:
/// well above any legitimate depth, low enough that nothing recursing over them can exhaust a
/// worker's stack. See [`crate::bounds`].
pub const MAX_NESTING: usize = 64;

/// Most values (scalars, lists and objects counted alike) in one operation's variables.
pub const MAX_VARIABLE_VALUES: usize = 10_000;

/// Most directives on one location (field, fragment, operation).
pub const MAX_DIRECTIVES: usize = 8;

/// Installs the limits on a schema: depth and complexity checks, a parser recursion bound, the
/// [`QueryLimits`] as schema data, and the [`Limits`] extension (document bounds and error
/// codes) with no hooks of the schema's own.
pub fn apply_limits<Q, M, S>(
    builder: SchemaBuilder<Q, M, S>,
    limits: &QueryLimits,
) -> SchemaBuilder<Q, M, S>
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    apply_limits_with::<Q, M, S, ()>(builder, limits)
}

/// [`apply_limits`], with the schema's own per-operation hooks `H` run inside the limits'
/// extension (see [`OperationHooks`]).
pub(crate) fn apply_limits_with<Q, M, S, H>(
    builder: SchemaBuilder<Q, M, S>,
    limits: &QueryLimits,
) -> SchemaBuilder<Q, M, S>
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
    H: OperationHooks,
{
    builder
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .limit_recursive_depth(MAX_NESTING.max(limits.max_depth * 2))
        .limit_directives(MAX_DIRECTIVES)
        .data(*limits)
        .extension(Limits::<H> {
            max_nesting: MAX_NESTING.max(limits.max_depth * 2),
            // Every selected field counts at least one towards complexity, so a document whose
            // expanded fields exceed the complexity limit would be refused anyway: refusing it
            // here, before validation expands its spreads, changes no answer, only the cost.
            max_fields: limits.max_complexity,
            validated: Arc::default(),
            hooks: PhantomData,
        })
}

/// The schema's own hooks on every operation, run inside the [`Limits`] extension rather than
/// as an extension of their own: every extension is a set of boxed futures per operation, and
/// one with a `resolve` hook a boxed future per field (docs/benchmarks.md, "The schema's hooks
/// inside the limits' extension"). One value per operation
/// ([`OperationHooks::for_operation`]), on every transport.
///
/// Order in each stage: the bounds first (`prepare_request`: the text, the variables as sent
/// and the expanded document checked), then [`OperationHooks::prepare_request`], then the
/// parse; [`OperationHooks::parsed`] sees the parsed document before its validation is looked
/// up; the response of [`OperationHooks::execute`] and [`OperationHooks::subscribe`] gets its
/// error codes after them. Errors from any hook get codes like the stage they run in.
#[async_graphql::async_trait::async_trait]
pub(crate) trait OperationHooks: Send + Sync + Sized + 'static {
    /// The hooks of one operation, made with its extension.
    fn for_operation() -> Self;

    /// The request after its bounds are checked, before it is parsed.
    fn prepare_request(
        &self,
        _ctx: &ExtensionContext<'_>,
        request: Request,
    ) -> ServerResult<Request> {
        Ok(request)
    }

    /// Checks the parsed document, before validation. The document may be shared with other
    /// requests (the server's cache of parsed documents): a hook reads it, never changes it.
    async fn parsed(
        &self,
        _ctx: &ExtensionContext<'_>,
        _doc: &ExecutableDocument,
    ) -> ServerResult<()> {
        Ok(())
    }

    /// Runs the operation (`next`), once it has been validated.
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        next.run(ctx, operation_name).await
    }

    /// A subscription's responses.
    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        next.run(ctx, stream)
    }
}

/// No hooks: the limits alone ([`apply_limits`]).
impl OperationHooks for () {
    fn for_operation() -> Self {}
}

/// The limits' extension, one for two jobs (docs/benchmarks.md, "The limits' two extensions as
/// one"); it has no per-field hook, so fields resolve without one
/// ([`Extension::resolves_fields`], patched into async-graphql: vendor/README.md):
///
/// - **document bounds**: refuses documents and variables beyond [`crate::bounds`]'s limits
///   before they are parsed, validated or executed, and validates a document once for the
///   variables' classes ([`crate::validated`]), on every transport (it runs inside the schema);
/// - **error codes**: gives every error that leaves the schema an `extensions.code`:
///   - parse errors: `INVALID_INPUT` (`LIMIT_EXCEEDED` for the parser's recursion limit);
///   - validation errors: `INVALID_INPUT`, and `LIMIT_EXCEEDED` for too deep or too complex;
///   - resolver errors whose source is an [`ApiError`] (returned with `?`): its code and
///     extensions; a raw [`LogError`] is first mapped to an `ApiError` (which replaces internal
///     detail with a generic message).
///
/// In each hook the codes wrap the bounds, as when they were two extensions with the codes
/// installed first: a kept validation is returned as it is, a fresh one's errors get codes.
/// The schema's own hooks `H` run inside, between the bounds and the codes
/// ([`OperationHooks`]).
pub struct Limits<H = ()> {
    max_nesting: usize,
    max_fields: usize,
    validated: Arc<ValidationCache>,
    hooks: PhantomData<fn() -> H>,
}

impl<H: OperationHooks> ExtensionFactory for Limits<H> {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(LimitsExtension {
            max_nesting: self.max_nesting,
            max_fields: self.max_fields,
            validated: self.validated.clone(),
            operation_name: Mutex::new(None),
            validation_key: Mutex::new(None),
            hooks: H::for_operation(),
        })
    }
}

/// One operation's: the extension is created for each.
struct LimitsExtension<H> {
    max_nesting: usize,
    max_fields: usize,
    validated: Arc<ValidationCache>,
    /// The request's, seen before parsing; the key is made once the document is parsed.
    operation_name: Mutex<Option<String>>,
    validation_key: Mutex<Option<String>>,
    hooks: H,
}

/// Refuses `doc` if its expansion exceeds `within` (`bounds::expand`), unless it is a kept
/// document (`kept`) already found within those very bounds: a kept document never changes,
/// and walking it again was ~0.7 % of a point read's instructions (docs/benchmarks.md, "A kept
/// document's expansion checked once"). Returns the expansion when it walked the document.
fn check_expansion(
    doc: &ExecutableDocument,
    kept: Option<&Expanded>,
    within: ExpansionBounds,
) -> Result<Option<bounds::Expansion>, BoundError> {
    if kept.is_some_and(|k| k.within(within)) {
        return Ok(None);
    }
    let expansion = bounds::expand(doc, within.max_nesting, within.max_fields)?;
    if let Some(kept) = kept {
        kept.note(within);
    }
    Ok(Some(expansion))
}

fn bound_error(e: BoundError) -> ServerError {
    let code = if e.is_limit() {
        ErrorCode::LimitExceeded
    } else {
        ErrorCode::InvalidInput
    };
    let mut err = ServerError::new(e.to_string(), None);
    set_code(&mut err, code);
    err
}

#[async_graphql::async_trait::async_trait]
impl<H: OperationHooks> Extension for LimitsExtension<H> {
    /// This extension has no `resolve` hook, so it says so: with no extension that resolves
    /// fields, async-graphql (patched, vendor/README.md) resolves each field directly instead of
    /// building a `ResolveInfo` and a boxed future per field and list item (−8 % of a PIN
    /// lookup's instructions, −13 % of a search page's: docs/benchmarks.md, "Fields resolved
    /// without an extension hook"). Give it a `resolve` hook and this must return `true`.
    fn resolves_fields(&self) -> bool {
        false
    }

    /// Runs before async-graphql parses the document: its parser recurses over values without a
    /// bound, and its recursion-depth check, right after parsing, already expands every spread.
    /// The document parsed here is kept in the request, so it is not parsed twice; a document
    /// that does not parse is passed on for the parse stage to report with its usual code.
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        // Text the HTTP handler's document cache scanned (at a bound no looser) is not scanned
        // again.
        if !TextScanned::on(&request) {
            bounds::scan_text(&request.query, self.max_nesting).map_err(bound_error)?;
        }
        bounds::check_variables(&request.variables, self.max_nesting, MAX_VARIABLE_VALUES)
            .map_err(bound_error)?;
        // Taken first: `parsed_query` borrows the request mutably.
        let kept = Expanded::of(&request).cloned();
        if let Ok(doc) = request.parsed_query() {
            let within = ExpansionBounds {
                max_nesting: self.max_nesting,
                max_fields: self.max_fields,
            };
            check_expansion(doc, kept.as_ref(), within).map_err(bound_error)?;
        }
        if let Ok(mut name) = self.operation_name.lock() {
            name.clone_from(&request.operation_name);
        }
        let request = self.hooks.prepare_request(ctx, request)?;
        next.run(ctx, request).await
    }

    /// Every `prepare_request` hook has run by now: these are the variables validation sees.
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<Arc<ExecutableDocument>> {
        let doc = next
            .run(ctx, query, variables)
            .await
            .map_err(parse_error_code)?;
        self.hooks
            .parsed(ctx, &doc)
            .await
            .map_err(parse_error_code)?;
        let name = self.operation_name.lock().ok().and_then(|n| n.clone());
        let key = validated::key(query, &doc, name.as_deref(), variables);
        if let Ok(mut kept) = self.validation_key.lock() {
            *kept = key;
        }
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let key = self.validation_key.lock().ok().and_then(|mut k| k.take());
        let Some(key) = key else {
            return next.run(ctx).await.map_err(validation_error_codes);
        };
        if let Some(result) = self.validated.get(&key) {
            return Ok(result);
        }
        let result = next.run(ctx).await.map_err(validation_error_codes)?;
        self.validated.keep(key, result);
        Ok(result)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        fix_response(self.hooks.execute(ctx, operation_name, next).await)
    }

    /// The whole request: errors raised while choosing the operation (after validation, before
    /// execution) pass through no other hook.
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        fix_response(next.run(ctx).await)
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        self.hooks
            .subscribe(ctx, stream, next)
            .map(fix_response)
            .boxed()
    }
}

// async-graphql reports its limit violations with these messages and no code; they are matched
// here, in the validation stage only, where no other error can carry them.
const TOO_COMPLEX: &str = "Query is too complex.";
const TOO_DEEP: &str = "Query is nested too deep.";

/// The parse stage's limit errors: the parser's own recursion limit and async-graphql's
/// nesting check right after parsing. They carry no source to match on, only these texts.
fn is_recursion_error(message: &str) -> bool {
    message == async_graphql::parser::Error::RecursionLimitExceeded.to_string()
        || message.starts_with("The recursion depth of the query cannot be greater than")
        || message.ends_with("stack limit reached")
        || message.starts_with("The number of directives on the")
}

/// Longest parse error message passed through as is.
const MAX_PARSE_MESSAGE: usize = 1024;

/// pest's messages quote the offending line whole, which for a one-line 1 MiB query would echo
/// the whole query back. A long message is cut down to pest's closing `= reason` line; the
/// error's `locations` still say where.
fn shorten_parse_message(err: &mut ServerError) {
    if err.message.len() <= MAX_PARSE_MESSAGE {
        return;
    }
    let reason = err
        .message
        .lines()
        .last()
        .and_then(|l| l.trim().strip_prefix("= "))
        .unwrap_or("syntax error")
        .to_owned();
    err.message = format!("syntax error: {reason}");
}

fn set_code(err: &mut ServerError, code: ErrorCode) {
    let ext = err.extensions.get_or_insert_with(Default::default);
    if ext.get("code").is_none() {
        ext.set("code", code.as_str());
    }
}

fn fix_resolver_error(err: &mut ServerError) {
    let api = if let Some(api) = err.source::<ApiError>() {
        Some(api.clone())
    } else {
        err.source::<LogError>()
            .map(|log| ApiError::from(log.clone()))
    };
    if let Some(api) = api {
        err.message = api.to_string();
        let ext = err.extensions.get_or_insert_with(Default::default);
        api.write_extensions(ext);
    }
}

/// async-graphql's own messages for input it could not use: argument and variable coercion
/// (`citizens(first: 3000000000)`), and choosing the operation to run (no `operationName` among
/// several operations, or an unknown one). They carry no source to match on.
fn is_input_error(message: &str) -> bool {
    message.starts_with("Failed to parse")
        || message.starts_with("Invalid value for argument")
        || message.starts_with("Unknown operation named")
        || message.starts_with("Operation name required")
        || message.starts_with("Variable ")
}

/// Gives an error that still has no code one: `INVALID_INPUT` for async-graphql's refusals of
/// the request itself, `INTERNAL` for anything else (a resolver error that is not an
/// [`ApiError`] is a bug).
fn fallback_code(err: &mut ServerError) {
    let code = if is_input_error(&err.message) {
        ErrorCode::InvalidInput
    } else {
        ErrorCode::Internal
    };
    set_code(err, code);
}

fn fix_response(mut response: Response) -> Response {
    for err in &mut response.errors {
        fix_resolver_error(err);
        fallback_code(err);
    }
    response
}

/// A parse error's code: `LIMIT_EXCEEDED` for the parser's recursion limit, else
/// `INVALID_INPUT`; the parser's message shortened.
fn parse_error_code(mut err: ServerError) -> ServerError {
    shorten_parse_message(&mut err);
    let code = if is_recursion_error(&err.message) {
        ErrorCode::LimitExceeded
    } else {
        ErrorCode::InvalidInput
    };
    set_code(&mut err, code);
    err
}

/// Validation errors' codes: `LIMIT_EXCEEDED` for too deep or too complex, else
/// `INVALID_INPUT`.
fn validation_error_codes(mut errors: Vec<ServerError>) -> Vec<ServerError> {
    for err in &mut errors {
        let code = if err.message == TOO_COMPLEX || err.message == TOO_DEEP {
            ErrorCode::LimitExceeded
        } else {
            ErrorCode::InvalidInput
        };
        set_code(err, code);
    }
    errors
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A kept document's expansion is walked by the first request at given bounds, not by the
    /// next; other bounds walk it again (and may refuse it), and a refusal is not remembered.
    #[test]
    fn a_kept_document_is_walked_once_per_bounds() {
        use crate::documents::DocumentCache;
        let cache = DocumentCache::default();
        let text = "query { a { b } ...F } fragment F on Query { c d e }";
        let check = |bounds: ExpansionBounds| {
            let mut request = Request::new(text);
            cache.parse(&mut request).unwrap();
            let kept = Expanded::of(&request).cloned();
            check_expansion(request.parsed_query().unwrap(), kept.as_ref(), bounds)
        };
        let loose = ExpansionBounds {
            max_nesting: 10,
            max_fields: 100,
        };
        let tight = ExpansionBounds {
            max_nesting: 10,
            max_fields: 3,
        };
        assert!(check(tight).is_err(), "5 fields, 3 allowed");
        assert!(check(tight).is_err(), "a refusal is not remembered");
        let walked = check(loose)
            .unwrap()
            .expect("walked the first time at these bounds");
        assert_eq!(walked.max_fields, 5);
        assert_eq!(check(loose).unwrap(), None, "not walked again");
        assert!(check(tight).is_err(), "other bounds walk it again");
        assert_eq!(check(loose).unwrap(), None);
        // A document that is not kept has no mark and is walked every time.
        let doc = async_graphql::parser::parse_query(text).unwrap();
        assert!(check_expansion(&doc, None, loose).unwrap().is_some());
        assert!(check_expansion(&doc, None, loose).unwrap().is_some());
    }

    use async_graphql::extensions::{NextResolve, ResolveInfo};
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema, SimpleObject, Value};

    use super::*;

    #[derive(SimpleObject)]
    struct Item {
        a: i32,
    }

    struct Query;

    #[Object]
    impl Query {
        async fn n(&self) -> i32 {
            7
        }
        async fn items(&self) -> Vec<Item> {
            (1..=3).map(|a| Item { a }).collect()
        }
        /// Finishes after the fields selected after it.
        async fn late(&self) -> i32 {
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
            1
        }
    }

    /// Counts the fields and list items its `resolve` hook sees; says it resolves fields as
    /// told.
    struct Counting {
        resolves: bool,
        seen: Arc<AtomicUsize>,
    }

    impl ExtensionFactory for Counting {
        fn create(&self) -> Arc<dyn Extension> {
            Arc::new(Counting {
                resolves: self.resolves,
                seen: self.seen.clone(),
            })
        }
    }

    #[async_graphql::async_trait::async_trait]
    impl Extension for Counting {
        fn resolves_fields(&self) -> bool {
            self.resolves
        }

        async fn resolve(
            &self,
            ctx: &ExtensionContext<'_>,
            info: ResolveInfo<'_>,
            next: NextResolve<'_>,
        ) -> ServerResult<Option<async_graphql::Value>> {
            self.seen.fetch_add(1, Ordering::SeqCst);
            next.run(ctx, info).await
        }
    }

    /// Runs `{ n items { a } }` with the limits and a counting extension; returns the data and
    /// how many resolutions the extension's hook saw.
    async fn run(resolves: bool) -> (Value, usize) {
        let seen = Arc::new(AtomicUsize::new(0));
        let schema = apply_limits(
            Schema::build(Query, EmptyMutation, EmptySubscription),
            &QueryLimits::default(),
        )
        .extension(Counting {
            resolves,
            seen: seen.clone(),
        })
        .finish();
        let response = schema.execute("{ n items { a } }").await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        (response.data, seen.load(Ordering::SeqCst))
    }

    fn expected() -> Value {
        async_graphql::value!({ "n": 7, "items": [{ "a": 1 }, { "a": 2 }, { "a": 3 }] })
    }

    #[tokio::test]
    async fn an_extension_with_a_resolve_hook_sees_every_field_and_item() {
        let (data, seen) = run(true).await;
        assert_eq!(data, expected());
        // `n`, `items`, its three items and their three `a`s.
        assert_eq!(seen, 8);
    }

    #[tokio::test]
    async fn response_keys_follow_the_selection_not_the_order_fields_finish_in() {
        // The patched async-graphql joins an object's fields in place (vendor/README.md);
        // upstream inserted each as it finished, so `late` came last.
        let schema = apply_limits(
            Schema::build(Query, EmptyMutation, EmptySubscription),
            &QueryLimits::default(),
        )
        .finish();
        let response = schema.execute("{ late n again: late items { a } }").await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        assert_eq!(
            serde_json::to_string(&response.data).unwrap(),
            r#"{"late":1,"n":7,"again":1,"items":[{"a":1},{"a":2},{"a":3}]}"#
        );
    }

    #[tokio::test]
    async fn without_one_fields_resolve_directly_with_the_same_answer() {
        // The limits' extension has no hook, and this one says it has none: the patched
        // async-graphql then never calls one (its hook would count), and answers the same.
        let (data, seen) = run(false).await;
        assert_eq!(data, expected());
        assert_eq!(seen, 0);
    }
}

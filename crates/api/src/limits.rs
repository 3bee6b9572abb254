//! Query limits and the extension that gives every GraphQL error a code.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextSubscribe,
    NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{
    ObjectType, Response, SchemaBuilder, ServerError, ServerResult, SubscriptionType,
    ValidationResult, Variables,
};
use citydb_log::LogError;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use crate::error::{ApiError, ErrorCode};

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

/// Parser recursion limit: well above any legitimate depth, low enough that a hostile query
/// cannot exhaust the stack before the depth check runs.
const RECURSIVE_DEPTH: usize = 64;

/// Installs the limits on a schema: depth and complexity checks, a parser recursion bound, the
/// [`QueryLimits`] as schema data, and the [`ErrorCodes`] extension.
pub fn apply_limits<Q, M, S>(
    builder: SchemaBuilder<Q, M, S>,
    limits: &QueryLimits,
) -> SchemaBuilder<Q, M, S>
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    builder
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .limit_recursive_depth(RECURSIVE_DEPTH.max(limits.max_depth * 2))
        .data(*limits)
        .extension(ErrorCodes)
}

/// Gives every error that leaves the schema an `extensions.code`:
/// - parse errors: `INVALID_INPUT` (`LIMIT_EXCEEDED` for the parser's recursion limit);
/// - validation errors: `INVALID_INPUT`, and `LIMIT_EXCEEDED` for too deep or too complex;
/// - resolver errors whose source is an [`ApiError`] (returned with `?`): its code and
///   extensions; a raw [`LogError`] is first mapped to an `ApiError` (which replaces internal
///   detail with a generic message).
pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodesExtension)
    }
}

struct ErrorCodesExtension;

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

fn fix_response(mut response: Response) -> Response {
    for err in &mut response.errors {
        fix_resolver_error(err);
    }
    response
}

#[async_graphql::async_trait::async_trait]
impl Extension for ErrorCodesExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables).await.map_err(|mut err| {
            shorten_parse_message(&mut err);
            let code = if is_recursion_error(&err.message) {
                ErrorCode::LimitExceeded
            } else {
                ErrorCode::InvalidInput
            };
            set_code(&mut err, code);
            err
        })
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|mut errors| {
            for err in &mut errors {
                let code = if err.message == TOO_COMPLEX || err.message == TOO_DEEP {
                    ErrorCode::LimitExceeded
                } else {
                    ErrorCode::InvalidInput
                };
                set_code(err, code);
            }
            errors
        })
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        fix_response(next.run(ctx, operation_name).await)
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        next.run(ctx, stream).map(fix_response).boxed()
    }
}

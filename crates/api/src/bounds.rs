//! Bounds on a GraphQL document and its variables, checked before any work that grows with
//! them is done.
//!
//! async-graphql's own checks run too late or too deep for hostile input:
//! - its parser recurses over input values and list literals without a bound, so
//!   `{a:{a:{a:…}}}` 1,500 levels deep overflows a worker's stack and aborts the process;
//! - its depth and complexity checks (and several validation rules) expand every fragment
//!   spread again at every use, so a 1 KB document whose fragments each spread the next twice
//!   costs 2^n before it is refused.
//!
//! So, in order, each pass linear in its input and with bounded recursion:
//! 1. [`scan_text`] reads the raw text once, without recursion, and refuses brackets nested
//!    deeper than the limit — before the parser sees a byte;
//! 2. [`check_variables`] walks the variables with an explicit stack;
//! 3. [`expand`] walks the parsed document once, memoising each fragment, and refuses a document
//!    whose fields *after* expanding every spread exceed the limit, whose nesting (fields,
//!    inline fragments and spreads) is too deep, or whose fragments form a cycle. Only then do
//!    validation and execution, which expand spreads, get the document.
//!
//! Every pass counts what it visited ([`Expansion::visited`]), so tests show that the work is
//! bounded by the document's size, not by what it would expand to.

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Value, Variables};

/// Why a document was refused before validation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BoundError {
    #[error(
        "the document nests brackets deeper than {limit} levels (at byte {offset}); \
         deeply nested values and lists are refused before parsing"
    )]
    TextNesting { limit: usize, offset: usize },
    #[error("the variables nest deeper than {limit} levels")]
    VariableNesting { limit: usize },
    #[error("the variables hold more than {limit} values")]
    VariableSize { limit: usize },
    #[error(
        "selections nest deeper than {limit} levels once fragments are expanded \
         (fields, inline fragments and fragment spreads each count one)"
    )]
    SelectionNesting { limit: usize },
    #[error(
        "{what} selects {fields} fields once its fragments are expanded, over the limit of {limit}"
    )]
    TooManyFields {
        what: String,
        fields: u64,
        limit: usize,
    },
    #[error("fragment `{0}` spreads itself (directly or through other fragments)")]
    FragmentCycle(String),
}

impl BoundError {
    /// A fragment cycle is invalid GraphQL; everything else is a limit.
    pub fn is_limit(&self) -> bool {
        !matches!(self, BoundError::FragmentCycle(_))
    }
}

/// What one text scan saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TextScan {
    /// Bytes looked at (each at most once).
    pub visited: usize,
    /// Deepest bracket nesting seen.
    pub max_nesting: usize,
}

/// Refuses text whose `{`, `[` and `(` nest deeper than `limit`, outside strings and comments.
/// One pass, no recursion; malformed text (an unterminated string) is left for the parser to
/// report.
pub fn scan_text(query: &str, limit: usize) -> Result<TextScan, BoundError> {
    let b = query.as_bytes();
    let mut scan = TextScan::default();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'#' => {
                while i < b.len() && b[i] != b'\n' && b[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if b[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < b.len() {
                    if b[i..].starts_with(b"\\\"\"\"") {
                        i += 4;
                    } else if b[i..].starts_with(b"\"\"\"") {
                        i += 3;
                        break;
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            b'"' => {
                i += 1;
                while i < b.len() {
                    match b[i] {
                        b'\\' => i += 2,
                        b'"' => {
                            i += 1;
                            break;
                        }
                        b'\n' | b'\r' => break,
                        _ => i += 1,
                    }
                }
                continue;
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                scan.max_nesting = scan.max_nesting.max(depth);
                if depth > limit {
                    return Err(BoundError::TextNesting { limit, offset: i });
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    scan.visited = b.len();
    Ok(scan)
}

/// Refuses variables nested deeper than `max_nesting` or holding more than `max_values` values.
/// Walks with an explicit stack, so the walk itself cannot overflow.
pub fn check_variables(
    variables: &Variables,
    max_nesting: usize,
    max_values: usize,
) -> Result<usize, BoundError> {
    let mut stack: Vec<(&Value, usize)> = variables.values().map(|v| (v, 1)).collect();
    let mut visited = 0usize;
    while let Some((value, depth)) = stack.pop() {
        visited += 1;
        if visited > max_values {
            return Err(BoundError::VariableSize { limit: max_values });
        }
        if depth > max_nesting {
            return Err(BoundError::VariableNesting { limit: max_nesting });
        }
        match value {
            Value::List(items) => stack.extend(items.iter().map(|v| (v, depth + 1))),
            Value::Object(fields) => stack.extend(fields.values().map(|v| (v, depth + 1))),
            _ => {}
        }
    }
    Ok(visited)
}

/// What [`expand`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expansion {
    /// Selections visited: each selection of the document at most once, however often its
    /// fragment is spread.
    pub visited: usize,
    /// The most fields any one operation selects once every spread is expanded.
    pub max_fields: u64,
}

#[derive(Clone, Copy)]
enum Memo {
    Visiting,
    Done { fields: u64, height: usize },
}

struct Expander<'a> {
    doc: &'a ExecutableDocument,
    memo: HashMap<&'a Name, Memo>,
    max_nesting: usize,
    visited: usize,
}

impl<'a> Expander<'a> {
    /// Fields selected by `set` once expanded, and its height; `depth` is the nesting of `set`
    /// itself. Recursion is at most `max_nesting` deep: deeper is refused before recursing.
    fn selection_set(
        &mut self,
        set: &'a SelectionSet,
        depth: usize,
    ) -> Result<(u64, usize), BoundError> {
        if depth > self.max_nesting {
            return Err(BoundError::SelectionNesting {
                limit: self.max_nesting,
            });
        }
        let mut fields = 0u64;
        let mut height = 0usize;
        for item in &set.items {
            self.visited += 1;
            let (f, h) = match &item.node {
                Selection::Field(field) => {
                    let (f, h) = self.selection_set(&field.node.selection_set.node, depth + 1)?;
                    (f.saturating_add(1), h)
                }
                Selection::InlineFragment(inline) => {
                    self.selection_set(&inline.node.selection_set.node, depth + 1)?
                }
                Selection::FragmentSpread(spread) => {
                    self.fragment(&spread.node.fragment_name.node, depth + 1)?
                }
            };
            if depth + 1 + h > self.max_nesting {
                return Err(BoundError::SelectionNesting {
                    limit: self.max_nesting,
                });
            }
            fields = fields.saturating_add(f);
            height = height.max(h + 1);
        }
        Ok((fields, height))
    }

    fn fragment(&mut self, name: &'a Name, depth: usize) -> Result<(u64, usize), BoundError> {
        match self.memo.get(name) {
            Some(Memo::Done { fields, height }) => return Ok((*fields, *height)),
            Some(Memo::Visiting) => return Err(BoundError::FragmentCycle(name.to_string())),
            None => {}
        }
        // An unknown fragment selects nothing here; validation reports it.
        let Some(def) = self.doc.fragments.get(name) else {
            return Ok((0, 0));
        };
        self.memo.insert(name, Memo::Visiting);
        let (fields, height) = self.selection_set(&def.node.selection_set.node, depth)?;
        self.memo.insert(name, Memo::Done { fields, height });
        Ok((fields, height))
    }
}

/// Refuses a document in which any operation or fragment selects more than `max_fields` fields
/// once its spreads are expanded, nests deeper than `max_nesting`, or has a fragment cycle.
/// Linear in the document: each fragment is walked once and its result reused at every spread.
pub fn expand(
    doc: &ExecutableDocument,
    max_nesting: usize,
    max_fields: usize,
) -> Result<Expansion, BoundError> {
    let mut ex = Expander {
        doc,
        memo: HashMap::new(),
        max_nesting,
        visited: 0,
    };
    let mut max = 0u64;
    let too_many = |what: String, fields: u64| BoundError::TooManyFields {
        what,
        fields,
        limit: max_fields,
    };
    // Fragments first: validation walks every definition, used or not.
    for (name, _) in doc.fragments.iter() {
        let (fields, _) = ex.fragment(name, 1)?;
        if fields > max_fields as u64 {
            return Err(too_many(format!("fragment `{name}`"), fields));
        }
    }
    for (name, op) in doc.operations.iter() {
        let (fields, _) = ex.selection_set(&op.node.selection_set.node, 1)?;
        if fields > max_fields as u64 {
            let what = name.map_or_else(|| "the operation".to_owned(), |n| format!("`{n}`"));
            return Err(too_many(what, fields));
        }
        max = max.max(fields);
    }
    Ok(Expansion {
        visited: ex.visited,
        max_fields: max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn bomb(levels: usize) -> String {
        let mut q = String::from("query { ...G0 }\n");
        for i in 0..levels {
            q.push_str(&format!(
                "fragment G{i} on Query {{ ...G{n} ...G{n} }}\n",
                n = i + 1
            ));
        }
        q.push_str(&format!("fragment G{levels} on Query {{ me {{ id }} }}\n"));
        q
    }

    #[test]
    fn a_fragment_bomb_is_refused_after_visiting_each_selection_once() {
        let doc = parse_query(bomb(30)).unwrap();
        let err = expand(&doc, 64, 2000).unwrap_err();
        assert!(matches!(err, BoundError::TooManyFields { fields, .. } if fields > 2000));
        // The same document, measured without a limit: the walk visits 2 spreads per fragment
        // plus 2 selections at the bottom, not 2^30.
        let ok = expand(&doc, 64, usize::MAX).unwrap();
        assert_eq!(ok.visited, 30 * 2 + 1 + 2);
        assert_eq!(ok.max_fields, 2u64 << 30);
    }

    #[test]
    fn fields_are_counted_with_aliases_and_spreads() {
        let doc = parse_query(
            "{ a: me { id } b: me { id } ...F } fragment F on Query { me { id role } }",
        )
        .unwrap();
        assert_eq!(expand(&doc, 64, 100).unwrap().max_fields, 2 + 2 + 2 + 1);
        let err = expand(&doc, 64, 6).unwrap_err();
        assert!(matches!(err, BoundError::TooManyFields { fields: 7, .. }));
    }

    #[test]
    fn long_fragment_chains_count_as_nesting() {
        let mut q = String::from("{ ...F0 }\n");
        for i in 0..100 {
            q.push_str(&format!("fragment F{i} on Query {{ ...F{} }}\n", i + 1));
        }
        q.push_str("fragment F100 on Query { me { id } }\n");
        let doc = parse_query(&q).unwrap();
        assert_eq!(
            expand(&doc, 64, 2000).unwrap_err(),
            BoundError::SelectionNesting { limit: 64 }
        );
    }

    #[test]
    fn fragment_cycles_are_refused_not_followed() {
        let doc = parse_query("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }")
            .unwrap();
        assert!(matches!(
            expand(&doc, 64, 2000),
            Err(BoundError::FragmentCycle(_))
        ));
    }

    #[test]
    fn nesting_counts_brackets_outside_strings_and_comments() {
        let deep = format!("{{ f(a: {}1{}) }}", "{a:".repeat(1500), "}".repeat(1500));
        let err = scan_text(&deep, 64).unwrap_err();
        assert_eq!(
            err,
            BoundError::TextNesting {
                limit: 64,
                // `{ f(` is two levels; the 63rd `{a:` (3 bytes each from byte 7) is the 65th.
                offset: 7 + 3 * 62
            }
        );
        let lists = format!("{{ f(a: {}1{}) }}", "[".repeat(3000), "]".repeat(3000));
        assert!(scan_text(&lists, 64).is_err());
        let quoted = format!(
            "{{ f(a: \"{q}\", b: \"\"\"{q}\\\"\"\"{q}\"\"\") # {q}\n }}",
            q = "{[(".repeat(100)
        );
        let scan = scan_text(&quoted, 64).unwrap();
        assert_eq!(scan.max_nesting, 2);
        assert_eq!(scan.visited, quoted.len());
    }

    #[test]
    fn deep_variables_are_refused_without_recursion() {
        let mut value = Value::from(1);
        for _ in 0..1000 {
            value = Value::List(vec![value]);
        }
        let vars = Variables::from_value(Value::Object(
            [(Name::new("v"), value)].into_iter().collect(),
        ));
        assert_eq!(
            check_variables(&vars, 64, 100_000),
            Err(BoundError::VariableNesting { limit: 64 })
        );
        assert_eq!(
            check_variables(&vars, 2000, 100),
            Err(BoundError::VariableSize { limit: 100 })
        );
        assert_eq!(check_variables(&vars, 2000, 100_000), Ok(1001));
    }
}

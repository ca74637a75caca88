//! Errors of the rule language: parsing, compiling against a schema, evaluating.

use std::fmt::{self, Display, Formatter};

use super::ast::CompareOp;
use super::schema::ValueType;

/// A place in rule source.
///
/// `offset` counts bytes from the start; `line` and `column` count from 1, and `column` counts
/// characters (Unicode scalar values), not bytes. Display names the column alone on a one-line
/// rule and adds the line otherwise.
///
/// ```
/// use fusebox_rule::parse;
///
/// let err = parse("calls >= 20 and\n  state == ").unwrap_err();
/// let position = err.position();
/// assert_eq!((position.offset, position.line, position.column), (27, 2, 12));
/// assert_eq!(position.to_string(), "line 2, column 12");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Position {
    /// Byte offset from the start of the source.
    pub offset: usize,
    /// Line number, from 1.
    pub line: usize,
    /// Column within the line in characters, from 1.
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` in `source`; an offset inside a character counts as that
    /// character's start.
    pub(crate) fn locate(source: &str, offset: usize) -> Position {
        let mut line = 1;
        let mut column = 1;
        for (index, character) in source.char_indices() {
            if index >= offset {
                break;
            }
            if character == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        Position {
            offset,
            line,
            column,
        }
    }
}

impl Display for Position {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.line == 1 {
            write!(f, "column {}", self.column)
        } else {
            write!(f, "line {}, column {}", self.line, self.column)
        }
    }
}

/// What went wrong while parsing, without the position.
///
/// ```
/// use fusebox_rule::{ParseProblem, parse};
///
/// assert_eq!(parse("retries(1)").unwrap_err().problem(), &ParseProblem::FunctionCall);
/// assert_eq!(ParseProblem::AttributeAccess.to_string(), "attribute access is not allowed");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseProblem {
    /// Something else was expected here, e.g. "a value after `>=`".
    #[error("expected {0}")]
    Expected(String),
    /// A variable was followed by `(`.
    #[error("function calls are not allowed")]
    FunctionCall,
    /// A variable was followed by `.`.
    #[error("attribute access is not allowed")]
    AttributeAccess,
    /// `a < b < c`: each comparison must stand alone.
    #[error("comparisons cannot be chained; join them with `and`")]
    ChainedComparison,
    /// A character that starts no token.
    #[error("unexpected character {0:?}")]
    UnexpectedCharacter(char),
    /// Syntax from other languages, with what to write instead.
    #[error("`{found}` is not supported; {hint}")]
    Unsupported {
        /// The text as written.
        found: String,
        /// What to write instead.
        hint: &'static str,
    },
    /// A string with no closing `"`; the position is its opening quote.
    #[error("unterminated string")]
    UnterminatedString,
    /// A backslash followed by a character that is not an escape.
    #[error(r#"unknown escape `\{0}` in a string; the escapes are \" \\ \n \r \t"#)]
    InvalidEscape(char),
    /// A malformed number literal.
    #[error("{0}")]
    InvalidNumber(&'static str),
    /// The source is longer than [`Limits::max_len`](super::Limits::max_len) bytes.
    #[error("length limit of {limit} bytes exceeded")]
    TooLong {
        /// The limit in force.
        limit: usize,
    },
    /// The source has more than [`Limits::max_tokens`](super::Limits::max_tokens) tokens.
    #[error("token limit of {limit} exceeded")]
    TooManyTokens {
        /// The limit in force.
        limit: usize,
    },
    /// Parentheses and `not` nest deeper than [`Limits::max_depth`](super::Limits::max_depth).
    #[error("nesting limit of {limit} exceeded")]
    TooDeep {
        /// The limit in force.
        limit: usize,
    },
}

/// A rule's source could not be parsed.
///
/// The message names the problem, the position and, where a different token was expected,
/// what was found there.
///
/// ```
/// use fusebox_rule::{ParseProblem, parse};
///
/// let err = parse("failure_rate >=").unwrap_err();
/// assert_eq!(err.to_string(), "expected a value after `>=` at column 16, found end of input");
/// assert_eq!(err.position().offset, 15);
/// assert!(matches!(err.problem(), ParseProblem::Expected(_)));
/// assert_eq!(err.found(), Some("end of input"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem} at {position}{}", found_suffix(.found))]
pub struct ParseError {
    problem: ParseProblem,
    position: Position,
    found: Option<String>,
}

fn found_suffix(found: &Option<String>) -> String {
    found
        .as_ref()
        .map(|found| format!(", found {found}"))
        .unwrap_or_default()
}

impl ParseError {
    pub(crate) fn new(
        problem: ParseProblem,
        source: &str,
        offset: usize,
        found: Option<String>,
    ) -> ParseError {
        ParseError {
            problem,
            position: Position::locate(source, offset),
            found,
        }
    }

    /// What went wrong.
    ///
    /// ```
    /// use fusebox_rule::{ParseProblem, parse};
    ///
    /// let err = parse("metrics.failure_rate > 0.5").unwrap_err();
    /// assert_eq!(err.problem(), &ParseProblem::AttributeAccess);
    /// ```
    pub fn problem(&self) -> &ParseProblem {
        &self.problem
    }

    /// Where it went wrong.
    ///
    /// ```
    /// use fusebox_rule::parse;
    ///
    /// assert_eq!(parse("calls >= 20 and").unwrap_err().position().column, 16);
    /// ```
    pub fn position(&self) -> Position {
        self.position
    }

    /// What was found where something else was expected: a quoted token or `end of input`.
    ///
    /// ```
    /// use fusebox_rule::parse;
    ///
    /// assert_eq!(parse("calls >= )").unwrap_err().found(), Some("`)`"));
    /// ```
    pub fn found(&self) -> Option<&str> {
        self.found.as_deref()
    }
}

/// A parsed rule does not fit its [`Schema`](super::Schema).
///
/// ```
/// use fusebox_rule::{CompileError, Rule, RuleError, Schema, ValueType};
///
/// let schema = Schema::builder().string("state").build()?;
/// let err = Rule::compile("state >= 3", &schema).unwrap_err();
/// assert_eq!(err.to_string(), "`state >= 3` compares a string with a number");
/// assert!(matches!(
///     err,
///     RuleError::Compile(CompileError::TypeMismatch { left: ValueType::String, .. })
/// ));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    /// The rule names a variable the schema does not declare.
    #[error("unknown variable `{name}`; {}", known_list(.known))]
    UnknownVariable {
        /// The name as written.
        name: String,
        /// Every name the schema declares, sorted.
        known: Vec<String>,
    },
    /// A comparison between values of different types.
    #[error("`{expression}` compares a {left} with a {right}")]
    TypeMismatch {
        /// The comparison, in canonical form.
        expression: String,
        /// Type of the left operand.
        left: ValueType,
        /// Type of the right operand.
        right: ValueType,
    },
    /// `<`, `<=`, `>` or `>=` between strings or booleans.
    #[error("`{op}` needs numbers, but `{expression}` compares {operands}s")]
    Unordered {
        /// The comparison, in canonical form.
        expression: String,
        /// The operator.
        op: CompareOp,
        /// Type of both operands.
        operands: ValueType,
    },
    /// A number or string where `and`, `or`, `not` or the whole rule needs true or false.
    #[error("`{expression}` is a {found}, but a condition (true or false) is needed here")]
    NotACondition {
        /// The offending operand, in canonical form.
        expression: String,
        /// Its type.
        found: ValueType,
    },
    /// A hand-built [`Expr`](super::Expr) that no source text could produce.
    #[error("malformed expression: {0}")]
    Malformed(&'static str),
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        "the schema declares no variables".to_owned()
    } else {
        format!("the known variables are {}", known.join(", "))
    }
}

/// A rule could not be built from source: either parsing or compiling failed.
///
/// Its message is the inner error's.
///
/// ```
/// use fusebox_rule::{Rule, RuleError, Schema};
///
/// let schema = Schema::builder().number("calls").build()?;
/// assert!(matches!(Rule::compile("calls >", &schema), Err(RuleError::Parse(_))));
/// assert!(matches!(Rule::compile("cals > 1", &schema), Err(RuleError::Compile(_))));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// The source is not valid rule syntax.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The source parsed but does not fit the schema.
    #[error(transparent)]
    Compile(#[from] CompileError),
}

/// Evaluating a compiled rule needed a variable value it did not get.
///
/// A compiled rule is type-correct against its schema, so these are the only ways evaluation
/// can fail, and both point at the variables supplied, not at the rule.
///
/// ```
/// use fusebox_rule::{EvalError, Rule, Schema, Value};
///
/// let schema = Schema::builder().number("calls").build()?;
/// let rule = Rule::compile("calls > 3", &schema)?;
/// let none: [(&str, Value<'_>); 0] = [];
/// assert_eq!(
///     rule.evaluate(&none),
///     Err(EvalError::Missing { name: "calls".into() })
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// No value was supplied for a variable the rule reads.
    #[error("variable `{name}` has no value")]
    Missing {
        /// The variable's name.
        name: String,
    },
    /// The value supplied has a different type than the schema declares.
    #[error("variable `{name}` is declared as a {expected} but its value is a {found}")]
    WrongType {
        /// The variable's name.
        name: String,
        /// The type the schema declares.
        expected: ValueType,
        /// The type of the value supplied.
        found: ValueType,
    },
}

//! A small, safe expression language for trip rules and mode rules.
//!
//! Rules come from configuration, so the language can only compare values and combine the
//! results: no arithmetic, no function calls, no attribute access, no loops. Parsing is
//! bounded in length, tokens and nesting, and a rule is compiled against a [`Schema`] that
//! whitelists the variables it may read, with their types.
//!
//! ```
//! use fusebox_rule::{Rule, Schema, Value};
//!
//! let schema = Schema::builder()
//!     .number("failure_rate")
//!     .number("calls")
//!     .build()?;
//! let trip = Rule::compile("failure_rate >= 0.5 and calls >= 20", &schema)?;
//! let window = [("failure_rate", Value::from(0.6)), ("calls", Value::from(25))];
//! assert!(trip.evaluate(&window)?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Syntax
//!
//! ```text
//! rule       := or_chain
//! or_chain   := and_chain ("or" and_chain)*
//! and_chain  := negation ("and" negation)*
//! negation   := "not" negation | comparison
//! comparison := operand (("==" | "!=" | "<" | "<=" | ">" | ">=") operand)?
//! operand    := number | string | "true" | "false" | identifier | "(" or_chain ")"
//! ```
//!
//! - Precedence, loosest first: `or`, `and`, `not`, comparison. `not a == b` is
//!   `not (a == b)`; `a or b and c` is `a or (b and c)`.
//! - Comparisons do not chain: `a < b < c` is an error; write `a < b and b < c`.
//! - A bool variable or literal is a condition by itself: `degraded and calls > 3`.
//! - Numbers: an optional `-` directly before the digits, digits, an optional fraction:
//!   `20`, `-1`, `0.5`. No exponent, no `+`, no `.5` or `5.`. All numbers are `f64`.
//! - Strings: double quotes, with the escapes `\"`, `\\`, `\n`, `\r` and `\t`; any other
//!   character after `\` is an error. Other characters, newlines included, stand for
//!   themselves.
//! - Identifiers: `[A-Za-z_][A-Za-z0-9_]*`, except the keywords `and`, `or`, `not`, `true`,
//!   `false`. Keywords are lower case and case-sensitive.
//! - Whitespace separates tokens and is otherwise ignored.
//!
//! # Types
//!
//! Every expression has a type: number, string or bool. `==` and `!=` compare two values of
//! the same type; `<`, `<=`, `>` and `>=` compare numbers only; `and`, `or`, `not` and the
//! whole rule take bools. Compiling checks all of this, so a compiled rule cannot fail on
//! types when it runs.
//!
//! Every comparison involving NaN is false, `!=` included: a failure rate of 0/0 trips
//! nothing. As a consequence, `a != b` and `not a == b` differ when either side is NaN.
//!
//! # Limits
//!
//! [`Limits`] bound the source length (1024 bytes), the tokens (50) and the nesting of
//! parentheses and `not` (16) by default. Every level of nesting costs stack in the parser,
//! compiler and evaluator, so the nesting limit is capped at [`Limits::MAX_DEPTH_CEILING`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod ast;
mod compile;
mod error;
mod eval;
mod lexer;
mod parser;
mod schema;
#[cfg(test)]
mod tests;

pub use ast::{CompareOp, Expr, Literal};
pub use compile::Rule;
pub use error::{CompileError, EvalError, ParseError, ParseProblem, Position, RuleError};
pub use eval::{Value, Variables};
pub use parser::{parse, parse_with_limits};
pub use schema::{Schema, SchemaBuilder, ValueType};

use fusebox_core::ConfigError;
use fusebox_core::check;

/// Bounds on the source a rule may be parsed from.
///
/// ```
/// use fusebox_rule::Limits;
///
/// let limits = Limits::default();
/// assert_eq!((limits.max_len(), limits.max_tokens(), limits.max_depth()), (1024, 50, 16));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    max_len: usize,
    max_tokens: usize,
    max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_len: 1024,
            max_tokens: 50,
            max_depth: 16,
        }
    }
}

impl Limits {
    /// The highest nesting limit that can be set.
    ///
    /// ```
    /// use fusebox_rule::Limits;
    ///
    /// assert!(Limits::default().with_max_depth(Limits::MAX_DEPTH_CEILING).is_ok());
    /// assert!(Limits::default().with_max_depth(Limits::MAX_DEPTH_CEILING + 1).is_err());
    /// ```
    pub const MAX_DEPTH_CEILING: usize = 64;

    /// Sets the longest source accepted, in bytes; at least 1.
    ///
    /// ```
    /// use fusebox_rule::Limits;
    ///
    /// assert_eq!(Limits::default().with_max_len(4096)?.max_len(), 4096);
    /// assert!(Limits::default().with_max_len(0).is_err());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn with_max_len(mut self, max_len: usize) -> Result<Self, ConfigError> {
        check::nonzero("max_len", max_len as u64)?;
        self.max_len = max_len;
        Ok(self)
    }

    /// Sets the most tokens accepted; at least 1. A token is a number, string, identifier,
    /// keyword, operator or parenthesis.
    ///
    /// ```
    /// use fusebox_rule::Limits;
    ///
    /// assert_eq!(Limits::default().with_max_tokens(200)?.max_tokens(), 200);
    /// assert!(Limits::default().with_max_tokens(0).is_err());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn with_max_tokens(mut self, max_tokens: usize) -> Result<Self, ConfigError> {
        check::nonzero("max_tokens", max_tokens as u64)?;
        self.max_tokens = max_tokens;
        Ok(self)
    }

    /// Sets how deep parentheses and `not` may nest, from 1 to
    /// [`MAX_DEPTH_CEILING`](Self::MAX_DEPTH_CEILING).
    ///
    /// ```
    /// use fusebox_rule::Limits;
    ///
    /// assert_eq!(Limits::default().with_max_depth(4)?.max_depth(), 4);
    /// assert!(Limits::default().with_max_depth(0).is_err());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn with_max_depth(mut self, max_depth: usize) -> Result<Self, ConfigError> {
        check::nonzero("max_depth", max_depth as u64)?;
        if max_depth > Self::MAX_DEPTH_CEILING {
            return Err(ConfigError::invalid(
                "max_depth",
                format!(
                    "must be at most {}, got {max_depth}",
                    Self::MAX_DEPTH_CEILING
                ),
            ));
        }
        self.max_depth = max_depth;
        Ok(self)
    }

    /// The longest source accepted, in bytes.
    ///
    /// ```
    /// use fusebox_rule::Limits;
    ///
    /// assert_eq!(Limits::default().max_len(), 1024);
    /// ```
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The most tokens accepted.
    ///
    /// ```
    /// use fusebox_rule::Limits;
    ///
    /// assert_eq!(Limits::default().max_tokens(), 50);
    /// ```
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// How deep parentheses and `not` may nest.
    ///
    /// ```
    /// use fusebox_rule::Limits;
    ///
    /// assert_eq!(Limits::default().max_depth(), 16);
    /// ```
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }
}

impl std::str::FromStr for Expr {
    type Err = ParseError;

    fn from_str(source: &str) -> Result<Self, Self::Err> {
        parse(source)
    }
}

/// Serializes as canonical source text.
#[cfg(feature = "serde")]
impl serde::Serialize for Expr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Deserializes from source text, parsed under the default [`Limits`]; compile the result
/// with [`Rule::from_expr`] once the schema is known.
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Expr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        parse(&source).map_err(serde::de::Error::custom)
    }
}

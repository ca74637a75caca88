//! Recursive-descent parser: source text to [`Expr`], within [`Limits`].

use super::Limits;
use super::ast::{Expr, Literal};
use super::error::{ParseError, ParseProblem};
use super::lexer::{Lexer, Token, TokenKind};

/// Parses `source` under the default [`Limits`].
///
/// Parsing checks syntax only; [`Rule::compile`](super::Rule::compile) also checks variable
/// names and types against a schema.
///
/// ```
/// use fusebox_rule::{CompareOp, Expr, parse};
///
/// let expr = parse("severity >= 0.8 and recurrence_count >= 2")?;
/// let Expr::And(operands) = &expr else { panic!("expected `and`") };
/// assert_eq!(operands.len(), 2);
/// assert!(matches!(operands[0], Expr::Compare { op: CompareOp::GreaterOrEqual, .. }));
/// # Ok::<(), fusebox_rule::ParseError>(())
/// ```
pub fn parse(source: &str) -> Result<Expr, ParseError> {
    parse_with_limits(source, &Limits::default())
}

/// Parses `source` under `limits`.
///
/// ```
/// use fusebox_rule::{Limits, ParseProblem, parse_with_limits};
///
/// let tight = Limits::default().with_max_tokens(3)?;
/// assert!(parse_with_limits("calls > 3", &tight).is_ok());
/// let err = parse_with_limits("calls > 3 and x", &tight).unwrap_err();
/// assert_eq!(err.problem(), &ParseProblem::TooManyTokens { limit: 3 });
/// assert_eq!(err.to_string(), "token limit of 3 exceeded at column 11");
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub fn parse_with_limits(source: &str, limits: &Limits) -> Result<Expr, ParseError> {
    if source.len() > limits.max_len() {
        let cut = (0..=limits.max_len())
            .rev()
            .find(|&offset| source.is_char_boundary(offset))
            .unwrap_or(0);
        return Err(ParseError::new(
            ParseProblem::TooLong {
                limit: limits.max_len(),
            },
            source,
            cut,
            None,
        ));
    }
    let mut parser = Parser {
        source,
        lexer: Lexer::new(source, limits.max_tokens()),
        peeked: None,
        previous: None,
        depth: 0,
        max_depth: limits.max_depth(),
        ended_on_bare_operand: false,
    };
    let expr = parser.or_chain()?;
    let next = parser.peek()?.clone();
    if next.kind != TokenKind::End {
        return Err(parser.unexpected_continuation(&next, false));
    }
    Ok(expr)
}

/// The last token consumed, for "after `x`" in messages.
#[derive(Clone, Copy)]
struct Previous {
    start: usize,
    end: usize,
    is_comparison: bool,
}

struct Parser<'s> {
    source: &'s str,
    lexer: Lexer<'s>,
    peeked: Option<Token>,
    previous: Option<Previous>,
    /// Parentheses and `not`s currently open: every level costs stack frames.
    depth: usize,
    max_depth: usize,
    /// Whether the last operand parsed was left without a comparison, so one could follow.
    ended_on_bare_operand: bool,
}

impl Parser<'_> {
    fn peek(&mut self) -> Result<&Token, ParseError> {
        let token = match self.peeked.take() {
            Some(token) => token,
            None => self.lexer.next_token()?,
        };
        Ok(self.peeked.insert(token))
    }

    fn advance(&mut self) -> Result<Token, ParseError> {
        let token = match self.peeked.take() {
            Some(token) => token,
            None => self.lexer.next_token()?,
        };
        self.previous = Some(Previous {
            start: token.start,
            end: token.end,
            is_comparison: matches!(token.kind, TokenKind::Compare(_)),
        });
        Ok(token)
    }

    fn enter(&mut self, opener: &Token) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(ParseError::new(
                ParseProblem::TooDeep {
                    limit: self.max_depth,
                },
                self.source,
                opener.start,
                None,
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Source text of a span, shortened so that a long string literal cannot flood a message.
    fn excerpt(&self, start: usize, end: usize) -> String {
        const MAX_CHARS: usize = 24;
        let text = self.source.get(start..end).unwrap_or_default();
        if text.chars().count() > MAX_CHARS {
            let shortened: String = text.chars().take(MAX_CHARS).collect();
            format!("`{shortened}…`")
        } else {
            format!("`{text}`")
        }
    }

    fn describe(&self, token: &Token) -> String {
        if token.kind == TokenKind::End {
            "end of input".to_owned()
        } else {
            self.excerpt(token.start, token.end)
        }
    }

    fn expected(&self, what: &str, found: &Token) -> ParseError {
        let after = self
            .previous
            .map(|previous| format!(" after {}", self.excerpt(previous.start, previous.end)))
            .unwrap_or_default();
        ParseError::new(
            ParseProblem::Expected(format!("{what}{after}")),
            self.source,
            found.start,
            Some(self.describe(found)),
        )
    }

    /// An expression ended and `found` cannot continue it.
    fn unexpected_continuation(&self, found: &Token, inside_parentheses: bool) -> ParseError {
        let mut options = Vec::with_capacity(4);
        if self.ended_on_bare_operand {
            options.push("a comparison operator");
        }
        options.extend(["`and`", "`or`"]);
        options.push(if inside_parentheses {
            "`)`"
        } else {
            "end of input"
        });
        let (last, rest) = options.split_last().unwrap_or((&"", &[]));
        self.expected(&format!("{} or {last}", rest.join(", ")), found)
    }

    /// or_chain := and_chain (`or` and_chain)*
    fn or_chain(&mut self) -> Result<Expr, ParseError> {
        let first = self.and_chain()?;
        if self.peek()?.kind != TokenKind::Or {
            return Ok(first);
        }
        let mut operands = vec![first];
        while self.peek()?.kind == TokenKind::Or {
            self.advance()?;
            operands.push(self.and_chain()?);
        }
        Ok(Expr::Or(operands))
    }

    /// and_chain := negation (`and` negation)*
    fn and_chain(&mut self) -> Result<Expr, ParseError> {
        let first = self.negation()?;
        if self.peek()?.kind != TokenKind::And {
            return Ok(first);
        }
        let mut operands = vec![first];
        while self.peek()?.kind == TokenKind::And {
            self.advance()?;
            operands.push(self.negation()?);
        }
        Ok(Expr::And(operands))
    }

    /// negation := `not` negation | comparison
    fn negation(&mut self) -> Result<Expr, ParseError> {
        if self.peek()?.kind != TokenKind::Not {
            return self.comparison();
        }
        let not = self.advance()?;
        self.enter(&not)?;
        let operand = self.negation()?;
        self.leave();
        Ok(Expr::Not(Box::new(operand)))
    }

    /// comparison := operand (op operand)?, and a second op is an error, not a chain.
    fn comparison(&mut self) -> Result<Expr, ParseError> {
        let left = self.operand()?;
        let TokenKind::Compare(op) = self.peek()?.kind else {
            self.ended_on_bare_operand = true;
            return Ok(left);
        };
        self.advance()?;
        let right = self.operand()?;
        let next = self.peek()?;
        if matches!(next.kind, TokenKind::Compare(_)) {
            let at = next.start;
            return Err(ParseError::new(
                ParseProblem::ChainedComparison,
                self.source,
                at,
                None,
            ));
        }
        self.ended_on_bare_operand = false;
        Ok(Expr::Compare {
            left: Box::new(left),
            op,
            right: Box::new(right),
        })
    }

    /// operand := number | string | `true` | `false` | identifier | `(` or_chain `)`
    fn operand(&mut self) -> Result<Expr, ParseError> {
        let token = self.peek()?.clone();
        let literal = match token.kind {
            TokenKind::Number(number) => Literal::Number(number),
            TokenKind::String(text) => Literal::String(text),
            TokenKind::True => Literal::Bool(true),
            TokenKind::False => Literal::Bool(false),
            TokenKind::Identifier(name) => {
                self.advance()?;
                let problem = match self.peek()?.kind {
                    TokenKind::OpenParen => ParseProblem::FunctionCall,
                    TokenKind::Dot => ParseProblem::AttributeAccess,
                    _ => return Ok(Expr::Variable(name)),
                };
                return Err(ParseError::new(problem, self.source, token.start, None));
            }
            TokenKind::OpenParen => {
                self.advance()?;
                self.enter(&token)?;
                let inner = self.or_chain()?;
                let close = self.peek()?.clone();
                if close.kind != TokenKind::CloseParen {
                    return Err(self.unexpected_continuation(&close, true));
                }
                self.advance()?;
                self.leave();
                return Ok(inner);
            }
            _ => {
                let after_comparison = self.previous.is_some_and(|p| p.is_comparison);
                let what = if after_comparison {
                    "a value"
                } else {
                    "an expression"
                };
                return Err(self.expected(what, &token));
            }
        };
        self.advance()?;
        Ok(Expr::Literal(literal))
    }
}

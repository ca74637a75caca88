//! Splits rule source into tokens, one at a time, so that errors come out in source order.

use super::ast::CompareOp;
use super::error::{ParseError, ParseProblem};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind {
    Number(f64),
    String(String),
    Identifier(String),
    True,
    False,
    And,
    Or,
    Not,
    Compare(CompareOp),
    OpenParen,
    CloseParen,
    Dot,
    End,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    /// Byte offset of the first character.
    pub(crate) start: usize,
    /// Byte offset just past the last character.
    pub(crate) end: usize,
}

pub(crate) struct Lexer<'s> {
    source: &'s str,
    offset: usize,
    tokens_read: usize,
    max_tokens: usize,
}

impl<'s> Lexer<'s> {
    pub(crate) fn new(source: &'s str, max_tokens: usize) -> Self {
        Lexer {
            source,
            offset: 0,
            tokens_read: 0,
            max_tokens,
        }
    }

    fn rest(&self) -> &'s str {
        self.source.get(self.offset..).unwrap_or_default()
    }

    fn peek_char(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek_second_char(&self) -> Option<char> {
        self.rest().chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let character = self.peek_char()?;
        self.offset += character.len_utf8();
        Some(character)
    }

    fn bump_while(&mut self, keep: impl Fn(char) -> bool) {
        while self.peek_char().is_some_and(&keep) {
            self.bump();
        }
    }

    fn error(&self, problem: ParseProblem, at: usize) -> ParseError {
        ParseError::new(problem, self.source, at, None)
    }

    fn unsupported(&self, found: &str, hint: &'static str, at: usize) -> ParseError {
        self.error(
            ParseProblem::Unsupported {
                found: found.to_owned(),
                hint,
            },
            at,
        )
    }

    pub(crate) fn next_token(&mut self) -> Result<Token, ParseError> {
        self.bump_while(char::is_whitespace);
        let start = self.offset;
        let Some(first) = self.peek_char() else {
            return Ok(Token {
                kind: TokenKind::End,
                start,
                end: start,
            });
        };
        self.tokens_read += 1;
        if self.tokens_read > self.max_tokens {
            return Err(self.error(
                ParseProblem::TooManyTokens {
                    limit: self.max_tokens,
                },
                start,
            ));
        }
        let kind = match first {
            '0'..='9' | '-' => self.number()?,
            '"' => self.string()?,
            'a'..='z' | 'A'..='Z' | '_' => self.word(),
            _ => self.punctuation(first)?,
        };
        Ok(Token {
            kind,
            start,
            end: self.offset,
        })
    }

    /// `-`? digits (`.` digits)?: no exponent, no leading `+`, no bare `.5` or `5.`.
    fn number(&mut self) -> Result<TokenKind, ParseError> {
        let start = self.offset;
        if self.peek_char() == Some('-') {
            self.bump();
            if !self.peek_char().is_some_and(|c| c.is_ascii_digit()) {
                return Err(self.unsupported(
                    "-",
                    "a minus sign must be followed directly by a digit; there is no arithmetic",
                    start,
                ));
            }
        }
        self.bump_while(|c| c.is_ascii_digit());
        if self.peek_char() == Some('.') {
            if !self.peek_second_char().is_some_and(|c| c.is_ascii_digit()) {
                return Err(self.error(
                    ParseProblem::InvalidNumber("expected a digit after the decimal point"),
                    self.offset,
                ));
            }
            self.bump();
            self.bump_while(|c| c.is_ascii_digit());
        }
        let text = self.source.get(start..self.offset).unwrap_or_default();
        match text.parse::<f64>() {
            Ok(number) if number.is_finite() => Ok(TokenKind::Number(number)),
            _ => Err(self.error(ParseProblem::InvalidNumber("number is too large"), start)),
        }
    }

    fn string(&mut self) -> Result<TokenKind, ParseError> {
        let start = self.offset;
        self.bump();
        let mut text = String::new();
        loop {
            let escape_at = self.offset;
            match self.bump() {
                None => return Err(self.error(ParseProblem::UnterminatedString, start)),
                Some('"') => return Ok(TokenKind::String(text)),
                Some('\\') => match self.bump() {
                    Some('"') => text.push('"'),
                    Some('\\') => text.push('\\'),
                    Some('n') => text.push('\n'),
                    Some('r') => text.push('\r'),
                    Some('t') => text.push('\t'),
                    Some(other) => {
                        return Err(self.error(ParseProblem::InvalidEscape(other), escape_at));
                    }
                    None => return Err(self.error(ParseProblem::UnterminatedString, start)),
                },
                Some(other) => text.push(other),
            }
        }
    }

    fn word(&mut self) -> TokenKind {
        let start = self.offset;
        self.bump_while(|c| c.is_ascii_alphanumeric() || c == '_');
        match self.source.get(start..self.offset).unwrap_or_default() {
            "and" => TokenKind::And,
            "or" => TokenKind::Or,
            "not" => TokenKind::Not,
            "true" => TokenKind::True,
            "false" => TokenKind::False,
            name => TokenKind::Identifier(name.to_owned()),
        }
    }

    fn punctuation(&mut self, first: char) -> Result<TokenKind, ParseError> {
        let start = self.offset;
        self.bump();
        let followed_by_equals = self.peek_char() == Some('=');
        let kind = match first {
            '(' => TokenKind::OpenParen,
            ')' => TokenKind::CloseParen,
            '.' => TokenKind::Dot,
            '>' | '<' | '=' | '!' if followed_by_equals => {
                self.bump();
                TokenKind::Compare(match first {
                    '>' => CompareOp::GreaterOrEqual,
                    '<' => CompareOp::LessOrEqual,
                    '=' => CompareOp::Equal,
                    _ => CompareOp::NotEqual,
                })
            }
            '>' => TokenKind::Compare(CompareOp::Greater),
            '<' => TokenKind::Compare(CompareOp::Less),
            '=' => return Err(self.unsupported("=", "use `==` to compare", start)),
            '!' => return Err(self.unsupported("!", "use `not` to negate", start)),
            '&' | '|' => {
                // Report `&&` as written rather than only its first character.
                if self.peek_char() == Some(first) {
                    self.bump();
                }
                let written = self.source.get(start..self.offset).unwrap_or_default();
                let hint = if first == '&' {
                    "use `and`"
                } else {
                    "use `or`"
                };
                return Err(self.unsupported(written, hint, start));
            }
            '\'' => return Err(self.unsupported("'", "strings use double quotes", start)),
            other => return Err(self.error(ParseProblem::UnexpectedCharacter(other), start)),
        };
        Ok(kind)
    }
}

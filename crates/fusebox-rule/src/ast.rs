//! The syntax tree of a rule and its canonical printing.

use std::fmt::{self, Display, Formatter, Write as _};

/// A comparison operator.
///
/// ```
/// use fusebox_rule::CompareOp;
///
/// assert_eq!(CompareOp::GreaterOrEqual.symbol(), ">=");
/// assert_eq!(CompareOp::NotEqual.to_string(), "!=");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `==`
    Equal,
    /// `!=`
    NotEqual,
    /// `<`
    Less,
    /// `<=`
    LessOrEqual,
    /// `>`
    Greater,
    /// `>=`
    GreaterOrEqual,
}

impl CompareOp {
    /// Every operator, for tests and generators.
    #[cfg(test)]
    pub(crate) const ALL: [CompareOp; 6] = [
        CompareOp::Equal,
        CompareOp::NotEqual,
        CompareOp::Less,
        CompareOp::LessOrEqual,
        CompareOp::Greater,
        CompareOp::GreaterOrEqual,
    ];

    /// The operator as written in a rule.
    ///
    /// ```
    /// use fusebox_rule::CompareOp;
    ///
    /// assert_eq!(CompareOp::Less.symbol(), "<");
    /// ```
    pub fn symbol(self) -> &'static str {
        match self {
            CompareOp::Equal => "==",
            CompareOp::NotEqual => "!=",
            CompareOp::Less => "<",
            CompareOp::LessOrEqual => "<=",
            CompareOp::Greater => ">",
            CompareOp::GreaterOrEqual => ">=",
        }
    }

    /// Whether the operator orders its operands, which only numbers support.
    pub(crate) fn is_ordering(self) -> bool {
        !matches!(self, CompareOp::Equal | CompareOp::NotEqual)
    }
}

impl Display for CompareOp {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// A literal value written in a rule.
///
/// ```
/// use fusebox_rule::{Expr, Literal, parse};
///
/// assert_eq!(parse("true")?, Expr::Literal(Literal::Bool(true)));
/// assert_eq!(Literal::String("a\"b".into()).to_string(), r#""a\"b""#);
/// # Ok::<(), fusebox_rule::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A finite number; the parser never produces NaN or an infinity.
    Number(f64),
    /// A string, already unescaped.
    String(String),
    /// `true` or `false`.
    Bool(bool),
}

impl Display for Literal {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            // `f64`'s Display is the shortest text that reads back to the same value and never
            // uses an exponent, so it is valid rule syntax for every finite number.
            Literal::Number(number) => write!(f, "{number}"),
            Literal::String(text) => write_quoted(f, text),
            Literal::Bool(flag) => write!(f, "{flag}"),
        }
    }
}

fn write_quoted(f: &mut Formatter<'_>, text: &str) -> fmt::Result {
    f.write_char('"')?;
    for character in text.chars() {
        match character {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            other => f.write_char(other)?,
        }
    }
    f.write_char('"')
}

/// A parsed rule.
///
/// Parentheses leave no node of their own: they only shape the tree. `and` and `or` hold all
/// the operands of one unparenthesized chain, so `a and b and c` is one [`Expr::And`] with
/// three operands, while `(a and b) and c` nests one inside another.
///
/// [`Display`] prints canonical source: single spaces, lower-case keywords, parentheses only
/// where the tree needs them. Parsing that text gives back an equal tree for every tree the
/// parser can produce (`and`/`or` with at least two operands, finite numbers, variable names
/// that are identifiers and not keywords).
///
/// ```
/// use fusebox_rule::parse;
///
/// let expr = parse("not(calls>=20 and (state==\"open\"))or x")?;
/// assert_eq!(expr.to_string(), r#"not (calls >= 20 and state == "open") or x"#);
/// assert_eq!(parse(&expr.to_string())?, expr);
/// # Ok::<(), fusebox_rule::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Expr {
    /// A literal number, string or boolean.
    Literal(Literal),
    /// A variable, looked up by name when the rule is evaluated.
    Variable(String),
    /// `not operand`.
    Not(Box<Expr>),
    /// `a and b and ...`: true when every operand is.
    And(Vec<Expr>),
    /// `a or b or ...`: true when any operand is.
    Or(Vec<Expr>),
    /// `left op right`.
    Compare {
        /// The left operand.
        left: Box<Expr>,
        /// The operator.
        op: CompareOp,
        /// The right operand.
        right: Box<Expr>,
    },
}

impl Expr {
    /// Writes `self` as an operand of `parent`, in parentheses where the grammar would
    /// otherwise read the text differently.
    fn write_operand(&self, f: &mut Formatter<'_>, needs_parentheses: bool) -> fmt::Result {
        if needs_parentheses {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }

    fn write_chain(&self, f: &mut Formatter<'_>, operands: &[Expr], keyword: &str) -> fmt::Result {
        for (index, operand) in operands.iter().enumerate() {
            if index > 0 {
                write!(f, " {keyword} ")?;
            }
            // A nested chain of the same kind, or a looser one, would merge into this chain.
            let needs_parentheses = matches!(
                (self, operand),
                (Expr::And(_), Expr::And(_) | Expr::Or(_)) | (Expr::Or(_), Expr::Or(_))
            );
            operand.write_operand(f, needs_parentheses)?;
        }
        Ok(())
    }
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Literal(literal) => write!(f, "{literal}"),
            Expr::Variable(name) => f.write_str(name),
            Expr::Not(operand) => {
                f.write_str("not ")?;
                operand.write_operand(f, matches!(**operand, Expr::And(_) | Expr::Or(_)))
            }
            Expr::And(operands) => self.write_chain(f, operands, "and"),
            Expr::Or(operands) => self.write_chain(f, operands, "or"),
            Expr::Compare { left, op, right } => {
                // Comparison operands are plain values; anything else is parenthesized, which
                // also keeps `(a == b) == c` from reading as a chained comparison.
                let is_compound =
                    |expr: &Expr| !matches!(expr, Expr::Literal(_) | Expr::Variable(_));
                left.write_operand(f, is_compound(left))?;
                write!(f, " {op} ")?;
                right.write_operand(f, is_compound(right))
            }
        }
    }
}

//! Type-checking a parsed rule against a schema, and the compiled [`Rule`].

use std::fmt::{self, Display, Formatter};

use super::Limits;
use super::ast::{CompareOp, Expr, Literal};
use super::error::{CompileError, EvalError, RuleError};
use super::eval::{Condition, Operand, Variables};
use super::parser::parse_with_limits;
use super::schema::{Schema, ValueType};

/// Deepest tree [`Rule::from_expr`] accepts. Each parenthesis level of parsed source adds at
/// most three nodes (comparison, `or`, `and`) and each `not` one, so every tree the parser
/// can produce under [`Limits::MAX_DEPTH_CEILING`] fits, while a hand-built tree cannot
/// exhaust the stack of the recursive compiler.
const MAX_TREE_DEPTH: usize = 4 * (Limits::MAX_DEPTH_CEILING + 1);

/// A rule compiled against a [`Schema`]: syntax, variable names and types are all checked,
/// so evaluating it can only fail when a variable value is missing or of the wrong type.
///
/// A `Rule` is immutable, cheap to evaluate and `Send + Sync`.
///
/// ```
/// use fusebox_rule::{Rule, Schema, Value};
///
/// let schema = Schema::builder()
///     .string("state")
///     .number("retries_1h")
///     .number("failed_components")
///     .build()?;
/// let rule = Rule::compile(
///     r#"(state == "open" or retries_1h > 10) and failed_components < 2"#,
///     &schema,
/// )?;
/// let now = [
///     ("state", Value::from("closed")),
///     ("retries_1h", Value::from(12)),
///     ("failed_components", Value::from(1)),
/// ];
/// assert!(rule.evaluate(&now)?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Rule {
    source: String,
    expr: Expr,
    condition: Condition,
    variables: Vec<String>,
}

impl Rule {
    /// Parses `source` under the default [`Limits`] and compiles it against `schema`.
    ///
    /// ```
    /// use fusebox_rule::{Rule, Schema, Value};
    ///
    /// let schema = Schema::builder()
    ///     .number("severity")
    ///     .number("recurrence_count")
    ///     .build()?;
    /// let rule = Rule::compile("severity >= 0.8 and recurrence_count >= 2", &schema)?;
    /// let vars = [("severity", Value::from(0.9)), ("recurrence_count", Value::from(2))];
    /// assert!(rule.evaluate(&vars)?);
    /// assert!(Rule::compile("os == \"linux\"", &schema).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn compile(source: &str, schema: &Schema) -> Result<Rule, RuleError> {
        Rule::compile_with_limits(source, schema, &Limits::default())
    }

    /// Parses `source` under `limits` and compiles it against `schema`.
    ///
    /// ```
    /// use fusebox_rule::{Limits, Rule, Schema};
    ///
    /// let schema = Schema::builder().number("calls").build()?;
    /// let limits = Limits::default().with_max_len(8)?;
    /// assert!(Rule::compile_with_limits("calls>1", &schema, &limits).is_ok());
    /// assert!(Rule::compile_with_limits("calls > 1", &schema, &limits).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn compile_with_limits(
        source: &str,
        schema: &Schema,
        limits: &Limits,
    ) -> Result<Rule, RuleError> {
        let expr = parse_with_limits(source, limits)?;
        let condition = Compiler { schema }.condition(&expr, 0)?;
        Ok(Rule::assemble(source.to_owned(), expr, condition))
    }

    /// Compiles an already parsed (or deserialized, or hand-built) expression against
    /// `schema`. The rule's source is the expression's canonical text.
    ///
    /// Hand-built trees are checked for what the parser guarantees: finite numbers, `and` and
    /// `or` with at least two operands, bounded depth.
    ///
    /// ```
    /// use fusebox_rule::{CompileError, Expr, Literal, Rule, Schema};
    ///
    /// let schema = Schema::builder().boolean("degraded").build()?;
    /// let expr = Expr::Not(Box::new(Expr::Variable("degraded".into())));
    /// let rule = Rule::from_expr(expr, &schema)?;
    /// assert_eq!(rule.source(), "not degraded");
    ///
    /// let nan = Expr::Literal(Literal::Number(f64::NAN));
    /// assert!(matches!(Rule::from_expr(nan, &schema), Err(CompileError::Malformed(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_expr(expr: Expr, schema: &Schema) -> Result<Rule, CompileError> {
        let condition = Compiler { schema }.condition(&expr, 0)?;
        // Printed only once compiled: the compiler bounds the depth that printing recurses to.
        Ok(Rule::assemble(expr.to_string(), expr, condition))
    }

    fn assemble(source: String, expr: Expr, condition: Condition) -> Rule {
        let mut names = Vec::new();
        condition.collect_variables(&mut names);
        names.sort_unstable();
        names.dedup();
        let variables = names.into_iter().map(str::to_owned).collect();
        Rule {
            source,
            expr,
            condition,
            variables,
        }
    }

    /// Evaluates the rule with `variables`.
    ///
    /// `and` and `or` evaluate left to right and stop as soon as the result is known, so a
    /// variable in an operand that is never reached need not have a value. Every comparison
    /// with a NaN number is false, `!=` included.
    ///
    /// ```
    /// use fusebox_rule::{EvalError, Rule, Schema, Value};
    ///
    /// let schema = Schema::builder().boolean("degraded").number("calls").build()?;
    /// let rule = Rule::compile("degraded and calls > 3", &schema)?;
    /// let calm = [("degraded", Value::from(false))];
    /// assert_eq!(rule.evaluate(&calm), Ok(false));
    /// let busy = [("degraded", Value::from(true))];
    /// assert_eq!(rule.evaluate(&busy), Err(EvalError::Missing { name: "calls".into() }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn evaluate<V: Variables + ?Sized>(&self, variables: &V) -> Result<bool, EvalError> {
        self.condition.evaluate(variables)
    }

    /// The source the rule was compiled from, as given.
    ///
    /// ```
    /// use fusebox_rule::{Rule, Schema};
    ///
    /// let rule = Rule::compile("true  or  false", &Schema::default())?;
    /// assert_eq!(rule.source(), "true  or  false");
    /// assert_eq!(rule.to_string(), "true or false");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The parsed expression.
    ///
    /// ```
    /// use fusebox_rule::{Expr, Literal, Rule, Schema};
    ///
    /// let rule = Rule::compile("(true)", &Schema::default())?;
    /// assert_eq!(rule.expr(), &Expr::Literal(Literal::Bool(true)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// The variables the rule reads, sorted and without repeats.
    ///
    /// ```
    /// use fusebox_rule::{Rule, Schema};
    ///
    /// let schema = Schema::builder().number("calls").number("failure_rate").build()?;
    /// let rule = Rule::compile("failure_rate >= 0.5 and calls >= 20 and calls < 1000", &schema)?;
    /// assert_eq!(rule.variables(), ["calls", "failure_rate"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn variables(&self) -> &[String] {
        &self.variables
    }
}

/// Prints the canonical form of the rule's expression.
impl Display for Rule {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)
    }
}

/// Serializes as the source string.
#[cfg(feature = "serde")]
impl serde::Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

/// A compiled subexpression with its static type.
enum Typed {
    Condition(Condition),
    Number(Operand<f64>),
    String(Operand<String>),
}

impl Typed {
    fn value_type(&self) -> ValueType {
        match self {
            Typed::Condition(_) => ValueType::Bool,
            Typed::Number(_) => ValueType::Number,
            Typed::String(_) => ValueType::String,
        }
    }
}

struct Compiler<'s> {
    schema: &'s Schema,
}

impl Compiler<'_> {
    fn condition(&self, expr: &Expr, depth: usize) -> Result<Condition, CompileError> {
        match self.typed(expr, depth)? {
            Typed::Condition(condition) => Ok(condition),
            other => Err(CompileError::NotACondition {
                expression: expr.to_string(),
                found: other.value_type(),
            }),
        }
    }

    fn conditions(&self, operands: &[Expr], depth: usize) -> Result<Vec<Condition>, CompileError> {
        if operands.len() < 2 {
            return Err(CompileError::Malformed(
                "`and` and `or` need at least two operands",
            ));
        }
        operands
            .iter()
            .map(|operand| self.condition(operand, depth + 1))
            .collect()
    }

    fn typed(&self, expr: &Expr, depth: usize) -> Result<Typed, CompileError> {
        if depth > MAX_TREE_DEPTH {
            return Err(CompileError::Malformed("the expression nests too deeply"));
        }
        Ok(match expr {
            Expr::Literal(Literal::Number(number)) if number.is_finite() => {
                Typed::Number(Operand::Constant(*number))
            }
            Expr::Literal(Literal::Number(_)) => {
                return Err(CompileError::Malformed("numbers must be finite"));
            }
            Expr::Literal(Literal::String(text)) => Typed::String(Operand::Constant(text.clone())),
            Expr::Literal(Literal::Bool(flag)) => Typed::Condition(Condition::Constant(*flag)),
            Expr::Variable(name) => {
                let name = name.clone();
                match self.schema.get(&name) {
                    Some(ValueType::Number) => Typed::Number(Operand::Variable(name)),
                    Some(ValueType::String) => Typed::String(Operand::Variable(name)),
                    Some(ValueType::Bool) => Typed::Condition(Condition::Flag(name)),
                    None => {
                        return Err(CompileError::UnknownVariable {
                            name,
                            known: self.schema.names(),
                        });
                    }
                }
            }
            Expr::Not(operand) => Typed::Condition(Condition::Not(Box::new(
                self.condition(operand, depth + 1)?,
            ))),
            Expr::And(operands) => {
                Typed::Condition(Condition::All(self.conditions(operands, depth)?))
            }
            Expr::Or(operands) => {
                Typed::Condition(Condition::Any(self.conditions(operands, depth)?))
            }
            Expr::Compare { left, op, right } => {
                let left_typed = self.typed(left, depth + 1)?;
                let right_typed = self.typed(right, depth + 1)?;
                Typed::Condition(compare(expr, left_typed, *op, right_typed)?)
            }
        })
    }
}

fn compare(
    expr: &Expr,
    left: Typed,
    op: CompareOp,
    right: Typed,
) -> Result<Condition, CompileError> {
    let equal = op == CompareOp::Equal;
    match (left, right) {
        (Typed::Number(left), Typed::Number(right)) => Ok(Condition::Numbers { left, op, right }),
        (Typed::String(left), Typed::String(right)) if !op.is_ordering() => {
            Ok(Condition::Strings { left, equal, right })
        }
        (Typed::Condition(left), Typed::Condition(right)) if !op.is_ordering() => {
            Ok(Condition::Bools {
                left: Box::new(left),
                equal,
                right: Box::new(right),
            })
        }
        (left, right) if left.value_type() == right.value_type() => Err(CompileError::Unordered {
            expression: expr.to_string(),
            op,
            operands: left.value_type(),
        }),
        (left, right) => Err(CompileError::TypeMismatch {
            expression: expr.to_string(),
            left: left.value_type(),
            right: right.value_type(),
        }),
    }
}

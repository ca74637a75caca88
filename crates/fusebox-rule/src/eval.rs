//! Values supplied at evaluation time, and the evaluation of compiled rules.

use std::borrow::{Borrow, Cow};
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash};

use super::ast::CompareOp;
use super::error::EvalError;
use super::schema::ValueType;

/// The value of a variable, supplied when a rule is evaluated.
///
/// Integer conversions go through `f64`, so integers beyond 2^53 lose precision.
///
/// ```
/// use fusebox_rule::{Value, ValueType};
///
/// assert_eq!(Value::from(20_u32), Value::Number(20.0));
/// assert_eq!(Value::from("open").value_type(), ValueType::String);
/// assert_eq!(Value::from(true), Value::Bool(true));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// A number; NaN is allowed and makes every comparison false.
    Number(f64),
    /// A string, borrowed or owned.
    String(Cow<'a, str>),
    /// `true` or `false`.
    Bool(bool),
}

impl Value<'_> {
    /// The type of this value.
    ///
    /// ```
    /// use fusebox_rule::{Value, ValueType};
    ///
    /// assert_eq!(Value::Bool(false).value_type(), ValueType::Bool);
    /// ```
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::Number(_) => ValueType::Number,
            Value::String(_) => ValueType::String,
            Value::Bool(_) => ValueType::Bool,
        }
    }

    fn reborrow(&self) -> Value<'_> {
        match self {
            Value::Number(number) => Value::Number(*number),
            Value::String(text) => Value::String(Cow::Borrowed(text)),
            Value::Bool(flag) => Value::Bool(*flag),
        }
    }
}

impl From<f64> for Value<'_> {
    fn from(number: f64) -> Self {
        Value::Number(number)
    }
}

impl From<f32> for Value<'_> {
    fn from(number: f32) -> Self {
        Value::Number(number.into())
    }
}

impl From<i32> for Value<'_> {
    fn from(number: i32) -> Self {
        Value::Number(number.into())
    }
}

impl From<u32> for Value<'_> {
    fn from(number: u32) -> Self {
        Value::Number(number.into())
    }
}

impl From<i64> for Value<'_> {
    fn from(number: i64) -> Self {
        // Precision loss above 2^53 is documented on the type.
        Value::Number(number as f64)
    }
}

impl From<u64> for Value<'_> {
    fn from(number: u64) -> Self {
        Value::Number(number as f64)
    }
}

impl From<usize> for Value<'_> {
    fn from(number: usize) -> Self {
        Value::Number(number as f64)
    }
}

impl From<bool> for Value<'_> {
    fn from(flag: bool) -> Self {
        Value::Bool(flag)
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(text: &'a str) -> Self {
        Value::String(Cow::Borrowed(text))
    }
}

impl From<String> for Value<'_> {
    fn from(text: String) -> Self {
        Value::String(Cow::Owned(text))
    }
}

/// Supplies variable values by name when a rule is evaluated.
///
/// Implemented for arrays and slices of `(&str, Value)` pairs (searched in order, so keep
/// them short) and for `HashMap`/`BTreeMap` keyed by strings. Implement it on your own type to
/// read values straight from where they live.
///
/// ```
/// use fusebox_rule::{Rule, Schema, Value, Variables};
///
/// struct Snapshot {
///     calls: u64,
///     failures: u64,
/// }
///
/// impl Variables for Snapshot {
///     fn get(&self, name: &str) -> Option<Value<'_>> {
///         match name {
///             "calls" => Some(self.calls.into()),
///             // 0 / 0 is NaN, and NaN compares false: no calls, no trip.
///             "failure_rate" => Some((self.failures as f64 / self.calls as f64).into()),
///             _ => None,
///         }
///     }
/// }
///
/// let schema = Schema::builder().number("calls").number("failure_rate").build()?;
/// let rule = Rule::compile("failure_rate >= 0.5 and calls >= 20", &schema)?;
/// assert!(rule.evaluate(&Snapshot { calls: 20, failures: 10 })?);
/// assert!(!rule.evaluate(&Snapshot { calls: 0, failures: 0 })?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Variables {
    /// The value of `name`, or `None` if this source has none.
    fn get(&self, name: &str) -> Option<Value<'_>>;
}

impl<V: Variables + ?Sized> Variables for &V {
    fn get(&self, name: &str) -> Option<Value<'_>> {
        (**self).get(name)
    }
}

impl Variables for [(&str, Value<'_>)] {
    fn get(&self, name: &str) -> Option<Value<'_>> {
        self.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.reborrow())
    }
}

impl<const N: usize> Variables for [(&str, Value<'_>); N] {
    fn get(&self, name: &str) -> Option<Value<'_>> {
        Variables::get(self.as_slice(), name)
    }
}

impl<K, S> Variables for HashMap<K, Value<'_>, S>
where
    K: Borrow<str> + Hash + Eq,
    S: BuildHasher,
{
    fn get(&self, name: &str) -> Option<Value<'_>> {
        HashMap::get(self, name).map(Value::reborrow)
    }
}

impl<K> Variables for BTreeMap<K, Value<'_>>
where
    K: Borrow<str> + Ord,
{
    fn get(&self, name: &str) -> Option<Value<'_>> {
        BTreeMap::get(self, name).map(Value::reborrow)
    }
}

/// A type-checked rule, ready to evaluate: every node knows its operand types.
#[derive(Debug, Clone)]
pub(crate) enum Condition {
    Constant(bool),
    Flag(String),
    Not(Box<Condition>),
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Numbers {
        left: Operand<f64>,
        op: CompareOp,
        right: Operand<f64>,
    },
    Strings {
        left: Operand<String>,
        equal: bool,
        right: Operand<String>,
    },
    Bools {
        left: Box<Condition>,
        equal: bool,
        right: Box<Condition>,
    },
}

/// A number or string operand: known at compile time or read from a variable.
#[derive(Debug, Clone)]
pub(crate) enum Operand<T> {
    Constant(T),
    Variable(String),
}

fn lookup<'v, V: Variables + ?Sized>(variables: &'v V, name: &str) -> Result<Value<'v>, EvalError> {
    variables.get(name).ok_or_else(|| EvalError::Missing {
        name: name.to_owned(),
    })
}

impl Operand<f64> {
    fn number<V: Variables + ?Sized>(&self, variables: &V) -> Result<f64, EvalError> {
        match self {
            Operand::Constant(number) => Ok(*number),
            Operand::Variable(name) => match lookup(variables, name)? {
                Value::Number(number) => Ok(number),
                other => Err(wrong_type(name, ValueType::Number, &other)),
            },
        }
    }
}

impl Operand<String> {
    fn text<'v, V: Variables + ?Sized>(
        &'v self,
        variables: &'v V,
    ) -> Result<Cow<'v, str>, EvalError> {
        match self {
            Operand::Constant(text) => Ok(Cow::Borrowed(text)),
            Operand::Variable(name) => match lookup(variables, name)? {
                Value::String(text) => Ok(text),
                other => Err(wrong_type(name, ValueType::String, &other)),
            },
        }
    }
}

fn wrong_type(name: &str, expected: ValueType, found: &Value<'_>) -> EvalError {
    EvalError::WrongType {
        name: name.to_owned(),
        expected,
        found: found.value_type(),
    }
}

/// Every comparison involving NaN is false, `!=` included, so a NaN never satisfies a rule
/// by accident (IEEE 754 would make `NaN != x` true).
fn compare_numbers(left: f64, op: CompareOp, right: f64) -> bool {
    if left.is_nan() || right.is_nan() {
        return false;
    }
    match op {
        CompareOp::Equal => left == right,
        CompareOp::NotEqual => left != right,
        CompareOp::Less => left < right,
        CompareOp::LessOrEqual => left <= right,
        CompareOp::Greater => left > right,
        CompareOp::GreaterOrEqual => left >= right,
    }
}

impl Condition {
    /// Evaluates left to right; `and` and `or` stop at the first operand that decides them,
    /// so a variable in an operand never reached is never looked up.
    pub(crate) fn evaluate<V: Variables + ?Sized>(&self, variables: &V) -> Result<bool, EvalError> {
        match self {
            Condition::Constant(flag) => Ok(*flag),
            Condition::Flag(name) => match lookup(variables, name)? {
                Value::Bool(flag) => Ok(flag),
                other => Err(wrong_type(name, ValueType::Bool, &other)),
            },
            Condition::Not(operand) => Ok(!operand.evaluate(variables)?),
            Condition::All(operands) => {
                for operand in operands {
                    if !operand.evaluate(variables)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Condition::Any(operands) => {
                for operand in operands {
                    if operand.evaluate(variables)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Condition::Numbers { left, op, right } => Ok(compare_numbers(
                left.number(variables)?,
                *op,
                right.number(variables)?,
            )),
            Condition::Strings { left, equal, right } => {
                Ok((left.text(variables)? == right.text(variables)?) == *equal)
            }
            Condition::Bools { left, equal, right } => {
                Ok((left.evaluate(variables)? == right.evaluate(variables)?) == *equal)
            }
        }
    }

    /// Collects the variables this condition reads.
    pub(crate) fn collect_variables<'c>(&'c self, names: &mut Vec<&'c str>) {
        fn operand<'c, T>(operand: &'c Operand<T>, names: &mut Vec<&'c str>) {
            if let Operand::Variable(name) = operand {
                names.push(name);
            }
        }
        match self {
            Condition::Constant(_) => {}
            Condition::Flag(name) => names.push(name),
            Condition::Not(inner) => inner.collect_variables(names),
            Condition::All(operands) | Condition::Any(operands) => {
                for inner in operands {
                    inner.collect_variables(names);
                }
            }
            Condition::Numbers { left, right, .. } => {
                operand(left, names);
                operand(right, names);
            }
            Condition::Strings { left, right, .. } => {
                operand(left, names);
                operand(right, names);
            }
            Condition::Bools { left, right, .. } => {
                left.collect_variables(names);
                right.collect_variables(names);
            }
        }
    }
}

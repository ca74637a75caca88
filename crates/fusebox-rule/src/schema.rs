//! The whitelist of variables a rule may read, with their types.

use std::collections::BTreeMap;
use std::fmt::{self, Display, Formatter};

use fusebox_core::ConfigError;

/// The type of a value in a rule.
///
/// ```
/// use fusebox_rule::{Value, ValueType};
///
/// assert_eq!(Value::from(0.5).value_type(), ValueType::Number);
/// assert_eq!(ValueType::Bool.to_string(), "bool");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "lowercase")
)]
pub enum ValueType {
    /// A 64-bit float.
    Number,
    /// A string.
    String,
    /// `true` or `false`.
    Bool,
}

impl Display for ValueType {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueType::Number => "number",
            ValueType::String => "string",
            ValueType::Bool => "bool",
        })
    }
}

/// The variables a rule may read and their types.
///
/// Compiling a rule against a schema rejects names it does not declare and comparisons between
/// mismatched types, so a compiled rule cannot fail on types when it runs.
///
/// ```
/// use fusebox_rule::{Schema, ValueType};
///
/// let schema = Schema::builder()
///     .number("severity")
///     .number("recurrence_count")
///     .build()?;
/// assert_eq!(schema.get("severity"), Some(ValueType::Number));
/// assert_eq!(schema.get("os"), None);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    variables: BTreeMap<String, ValueType>,
}

impl Schema {
    /// Starts an empty schema.
    ///
    /// ```
    /// use fusebox_rule::Schema;
    ///
    /// let schema = Schema::builder().boolean("degraded").build()?;
    /// assert_eq!(schema.iter().count(), 1);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn builder() -> SchemaBuilder {
        SchemaBuilder::default()
    }

    /// The declared type of `name`, if declared.
    ///
    /// ```
    /// use fusebox_rule::{Schema, ValueType};
    ///
    /// let schema = Schema::builder().string("state").build()?;
    /// assert_eq!(schema.get("state"), Some(ValueType::String));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn get(&self, name: &str) -> Option<ValueType> {
        self.variables.get(name).copied()
    }

    /// Every declared variable with its type, sorted by name.
    ///
    /// ```
    /// use fusebox_rule::{Schema, ValueType};
    ///
    /// let schema = Schema::builder().number("calls").boolean("degraded").build()?;
    /// let names: Vec<_> = schema.iter().map(|(name, _)| name).collect();
    /// assert_eq!(names, ["calls", "degraded"]);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, ValueType)> + '_ {
        self.variables
            .iter()
            .map(|(name, value_type)| (name.as_str(), *value_type))
    }

    pub(crate) fn names(&self) -> Vec<String> {
        self.variables.keys().cloned().collect()
    }
}

/// Collects variable declarations for a [`Schema`]; [`SchemaBuilder::build`] checks them.
///
/// ```
/// use fusebox_rule::{Schema, ValueType};
///
/// let schema = Schema::builder()
///     .variable("failed_components", ValueType::Number)
///     .build()?;
/// assert_eq!(schema.get("failed_components"), Some(ValueType::Number));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default)]
#[must_use = "a schema builder does nothing until `build` is called"]
pub struct SchemaBuilder {
    declarations: Vec<(String, ValueType)>,
}

impl SchemaBuilder {
    /// Declares `name` with type `value_type`.
    ///
    /// ```
    /// use fusebox_rule::{Schema, ValueType};
    ///
    /// let schema = Schema::builder().variable("state", ValueType::String).build()?;
    /// assert_eq!(schema.get("state"), Some(ValueType::String));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn variable(mut self, name: impl Into<String>, value_type: ValueType) -> Self {
        self.declarations.push((name.into(), value_type));
        self
    }

    /// Declares a number variable.
    ///
    /// ```
    /// use fusebox_rule::{Schema, ValueType};
    ///
    /// let schema = Schema::builder().number("calls").build()?;
    /// assert_eq!(schema.get("calls"), Some(ValueType::Number));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn number(self, name: impl Into<String>) -> Self {
        self.variable(name, ValueType::Number)
    }

    /// Declares a string variable.
    ///
    /// ```
    /// use fusebox_rule::{Schema, ValueType};
    ///
    /// let schema = Schema::builder().string("state").build()?;
    /// assert_eq!(schema.get("state"), Some(ValueType::String));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn string(self, name: impl Into<String>) -> Self {
        self.variable(name, ValueType::String)
    }

    /// Declares a bool variable.
    ///
    /// ```
    /// use fusebox_rule::{Schema, ValueType};
    ///
    /// let schema = Schema::builder().boolean("degraded").build()?;
    /// assert_eq!(schema.get("degraded"), Some(ValueType::Bool));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn boolean(self, name: impl Into<String>) -> Self {
        self.variable(name, ValueType::Bool)
    }

    /// Checks the declarations: each name must be an identifier (`[A-Za-z_][A-Za-z0-9_]*`)
    /// that is not a keyword, and declared once.
    ///
    /// ```
    /// use fusebox_rule::Schema;
    ///
    /// assert!(Schema::builder().number("calls").build().is_ok());
    /// assert!(Schema::builder().number("not").build().is_err());
    /// assert!(Schema::builder().number("a.b").build().is_err());
    /// assert!(Schema::builder().number("calls").string("calls").build().is_err());
    /// ```
    pub fn build(self) -> Result<Schema, ConfigError> {
        let mut variables = BTreeMap::new();
        for (name, value_type) in self.declarations {
            if !is_identifier(&name) {
                return Err(ConfigError::invalid(
                    "rule variable",
                    format!("`{name}` is not an identifier ([A-Za-z_][A-Za-z0-9_]*)"),
                ));
            }
            if KEYWORDS.contains(&name.as_str()) {
                return Err(ConfigError::invalid(
                    "rule variable",
                    format!("`{name}` is a keyword of the rule language"),
                ));
            }
            if variables.contains_key(&name) {
                return Err(ConfigError::invalid(
                    "rule variable",
                    format!("`{name}` is declared twice"),
                ));
            }
            variables.insert(name, value_type);
        }
        Ok(Schema { variables })
    }
}

pub(crate) const KEYWORDS: [&str; 5] = ["and", "or", "not", "true", "false"];

pub(crate) fn is_identifier(name: &str) -> bool {
    let mut characters = name.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && characters.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

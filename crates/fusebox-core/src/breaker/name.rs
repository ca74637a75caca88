//! Breaker names: free to carry when static, shared when built at run time.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// The name of a breaker or policy.
///
/// A `&'static str` name is carried by copying a pointer, so a rejection costs no atomic
/// reference count; a `String` name is shared behind an `Arc`.
///
/// ```
/// use fusebox_core::breaker::Name;
/// let a = Name::from("payments");
/// let b = Name::from(String::from("payments"));
/// assert_eq!(a, b);
/// assert_eq!(&*a, "payments");
/// assert_eq!(a, "payments");
/// ```
#[derive(Clone)]
pub struct Name(Repr);

#[derive(Clone)]
enum Repr {
    Static(&'static str),
    Shared(Arc<str>),
}

impl Name {
    /// The name as a string slice.
    ///
    /// ```
    /// use fusebox_core::breaker::Name;
    /// let name = Name::from(format!("tenant-{}", 42));
    /// assert_eq!(name.as_str(), "tenant-42");
    /// assert_eq!(Name::from("static").as_str(), "static");
    /// ```
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(s) => s,
            Repr::Shared(s) => s,
        }
    }
}

impl Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<&'static str> for Name {
    fn from(s: &'static str) -> Self {
        Name(Repr::Static(s))
    }
}

impl From<String> for Name {
    fn from(s: String) -> Self {
        Name(Repr::Shared(s.into()))
    }
}

impl From<Arc<str>> for Name {
    fn from(s: Arc<str>) -> Self {
        Name(Repr::Shared(s))
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}
impl Eq for Name {}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::hash::Hash for Name {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Name::from)
    }
}

#[cfg(feature = "metrics")]
impl Name {
    /// The name as a metric label value, without copying the text.
    ///
    /// ```
    /// use fusebox_core::breaker::Name;
    /// assert_eq!(Name::from("db").label_value().as_ref(), "db");
    /// ```
    pub fn label_value(&self) -> metrics::SharedString {
        match &self.0 {
            Repr::Static(s) => metrics::SharedString::from(*s),
            Repr::Shared(s) => metrics::SharedString::from(Arc::clone(s)),
        }
    }
}

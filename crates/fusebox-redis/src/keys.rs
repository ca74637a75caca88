//! How a breaker's name is written into its keys.

use std::borrow::Cow;

/// `name` as it sits between the braces of its keys: `%`, `{` and `}` become `%25`, `%7B`
/// and `%7D`, so the braces close exactly where the name ends. The `BREAKERS` script writes
/// names the same way.
pub(crate) fn key_part(name: &str) -> Cow<'_, str> {
    if !name.contains(['%', '{', '}']) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        match c {
            '%' => out.push_str("%25"),
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::key_part;
    use std::borrow::Cow;

    #[test]
    fn plain_names_are_kept_as_they_are() {
        assert!(matches!(
            key_part("payments-eu"),
            Cow::Borrowed("payments-eu")
        ));
        assert_eq!(key_part("día:1"), "día:1");
    }

    #[test]
    fn braces_and_the_escape_itself_are_escaped() {
        assert_eq!(key_part("a}:lease:y"), "a%7D:lease:y");
        assert_eq!(key_part("{x}"), "%7Bx%7D");
        assert_eq!(key_part("100%"), "100%25");
        // Without escaping `%` itself, this name would collide with "a}".
        assert_ne!(key_part("a%7D"), key_part("a}"));
    }
}

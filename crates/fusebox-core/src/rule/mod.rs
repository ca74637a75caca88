//! A small, safe expression language for trip rules and mode rules.

//! Feeds arbitrary UTF-8 to the rule parser, the compiler and the evaluator.
//!
//! Besides "never panics", it checks that canonical printing reads back to the same tree.

#![no_main]

use std::sync::OnceLock;

use fusebox_rule::{Limits, Rule, Schema, Value, parse_with_limits};
use libfuzzer_sys::fuzz_target;

struct Setup {
    schema: Schema,
    /// The defaults, and the widest limits allowed, which reach the nesting ceiling.
    limit_sets: [Limits; 2],
}

fn setup() -> Option<&'static Setup> {
    static SETUP: OnceLock<Option<Setup>> = OnceLock::new();
    SETUP
        .get_or_init(|| {
            let schema = Schema::builder()
                .number("failure_rate")
                .number("calls")
                .string("state")
                .boolean("degraded")
                .build()
                .ok()?;
            let widest = Limits::default()
                .with_max_len(usize::MAX)
                .and_then(|limits| limits.with_max_tokens(usize::MAX))
                .and_then(|limits| limits.with_max_depth(Limits::MAX_DEPTH_CEILING))
                .ok()?;
            Some(Setup {
                schema,
                limit_sets: [Limits::default(), widest],
            })
        })
        .as_ref()
}

fuzz_target!(|data: &[u8]| {
    let (Ok(source), Some(setup)) = (std::str::from_utf8(data), setup()) else {
        return;
    };
    let [_, widest] = &setup.limit_sets;
    for limits in &setup.limit_sets {
        if let Ok(expr) = parse_with_limits(source, limits) {
            let printed = expr.to_string();
            assert_eq!(
                parse_with_limits(&printed, widest).as_ref(),
                Ok(&expr),
                "canonical text {printed:?} does not read back"
            );
        }
        if let Ok(rule) = Rule::compile_with_limits(source, &setup.schema, limits) {
            let all = [
                ("failure_rate", Value::from(f64::NAN)),
                ("calls", Value::from(20)),
                ("state", Value::from("open")),
                ("degraded", Value::from(true)),
            ];
            let _ = rule.evaluate(&all);
            // Missing and mistyped values must be errors, not panics.
            let wrong = [("calls", Value::from("twenty")), ("state", Value::from(1))];
            let _ = rule.evaluate(&wrong);
        }
    }
});

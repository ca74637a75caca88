//! Tests of the rule language; the grammar and its limits (`grammar`) and the property
//! tests (`properties`) have files of their own.

mod grammar;
mod properties;

use std::collections::{BTreeMap, HashMap};

use super::*;

fn variable(name: &str) -> Expr {
    Expr::Variable(name.to_owned())
}

fn number(value: f64) -> Expr {
    Expr::Literal(Literal::Number(value))
}

fn compare(left: Expr, op: CompareOp, right: Expr) -> Expr {
    Expr::Compare {
        left: Box::new(left),
        op,
        right: Box::new(right),
    }
}

fn not(operand: Expr) -> Expr {
    Expr::Not(Box::new(operand))
}

fn breaker_schema() -> Schema {
    Schema::builder()
        .number("failure_rate")
        .number("calls")
        .string("state")
        .number("retries_1h")
        .number("failed_components")
        .boolean("degraded")
        .build()
        .expect("static schema is valid")
}

fn parse_error(source: &str) -> ParseError {
    parse(source).expect_err("source should not parse")
}

fn compile_error(source: &str) -> CompileError {
    match Rule::compile(source, &breaker_schema()) {
        Err(RuleError::Compile(error)) => error,
        other => panic!("expected a compile error for {source:?}, got {other:?}"),
    }
}

/// Limits that only the stack-safety ceiling bounds, for printing arbitrary trees back.
fn generous_limits() -> Limits {
    Limits::default()
        .with_max_len(usize::MAX)
        .and_then(|limits| limits.with_max_tokens(usize::MAX))
        .and_then(|limits| limits.with_max_depth(Limits::MAX_DEPTH_CEILING))
        .expect("valid limits")
}

// ---- examples from the issue and parity with the earlier condition parser ----

#[test]
fn issue_examples_compile_and_evaluate() {
    let schema = breaker_schema();
    let trip = Rule::compile("failure_rate >= 0.5 and calls >= 20", &schema).unwrap();
    let vars = [
        ("failure_rate", Value::from(0.5)),
        ("calls", Value::from(20)),
    ];
    assert_eq!(trip.evaluate(&vars), Ok(true));
    let vars = [
        ("failure_rate", Value::from(0.5)),
        ("calls", Value::from(19)),
    ];
    assert_eq!(trip.evaluate(&vars), Ok(false));

    let mode = Rule::compile(
        r#"(state == "open" or retries_1h > 10) and failed_components < 2"#,
        &schema,
    )
    .unwrap();
    let open = [
        ("state", Value::from("open")),
        ("retries_1h", Value::from(0)),
        ("failed_components", Value::from(1)),
    ];
    assert_eq!(mode.evaluate(&open), Ok(true));
    let too_many_failed = [
        ("state", Value::from("open")),
        ("retries_1h", Value::from(0)),
        ("failed_components", Value::from(2)),
    ];
    assert_eq!(mode.evaluate(&too_many_failed), Ok(false));
}

#[test]
fn severity_rule_matches_the_earlier_parser() {
    let schema = Schema::builder()
        .number("severity")
        .number("recurrence_count")
        .build()
        .unwrap();
    let rule = Rule::compile("severity >= 0.8 and recurrence_count >= 2", &schema).unwrap();
    for (severity, count, expected) in [
        (0.8, 2, true),
        (0.95, 7, true),
        (0.79, 2, false),
        (0.8, 1, false),
    ] {
        let vars = [
            ("severity", Value::from(severity)),
            ("recurrence_count", Value::from(count)),
        ];
        assert_eq!(rule.evaluate(&vars), Ok(expected), "{severity} {count}");
    }
    // Only whitelisted names.
    assert!(matches!(
        Rule::compile("severity >= 0.8 and hostname == \"x\"", &schema),
        Err(RuleError::Compile(CompileError::UnknownVariable { .. }))
    ));
}

/// `not x` plus 24 × `and x`: 2 + 48 = 50 tokens.
fn rule_with_tokens(extra_not: bool) -> String {
    let mut source = String::from(if extra_not { "not not x" } else { "not x" });
    for _ in 0..24 {
        source.push_str(" and x");
    }
    source
}

#[test]
fn fifty_tokens_pass_and_fifty_one_fail() {
    assert!(parse(&rule_with_tokens(false)).is_ok());
    let err = parse_error(&rule_with_tokens(true));
    assert_eq!(err.problem(), &ParseProblem::TooManyTokens { limit: 50 });
    // The 51st token is the last `x`.
    assert_eq!(err.position().offset, rule_with_tokens(true).len() - 1);
}

// ---- compiling against a schema ----

#[test]
fn compile_errors_are_specific() {
    assert_eq!(
        compile_error("sevrity > 1").to_string(),
        "unknown variable `sevrity`; the known variables are calls, degraded, \
         failed_components, failure_rate, retries_1h, state"
    );
    assert_eq!(
        compile_error("state >= 3").to_string(),
        "`state >= 3` compares a string with a number"
    );
    assert_eq!(
        compile_error("state < \"open\"").to_string(),
        "`<` needs numbers, but `state < \"open\"` compares strings"
    );
    assert_eq!(
        compile_error("(calls > 1) > degraded").to_string(),
        "`>` needs numbers, but `(calls > 1) > degraded` compares bools"
    );
    assert_eq!(
        compile_error("calls").to_string(),
        "`calls` is a number, but a condition (true or false) is needed here"
    );
    assert!(matches!(
        compile_error("degraded and \"yes\""),
        CompileError::NotACondition {
            found: ValueType::String,
            ..
        }
    ));
    assert!(matches!(
        compile_error("not 1"),
        CompileError::NotACondition { .. }
    ));
    assert_eq!(
        Rule::compile("x", &Schema::default())
            .unwrap_err()
            .to_string(),
        "unknown variable `x`; the schema declares no variables"
    );
}

#[test]
fn hand_built_trees_are_checked_like_parsed_ones() {
    let schema = breaker_schema();
    let malformed = |expr: Expr| {
        matches!(
            Rule::from_expr(expr, &schema),
            Err(CompileError::Malformed(_))
        )
    };
    assert!(malformed(Expr::And(vec![])));
    assert!(malformed(Expr::Or(vec![variable("degraded")])));
    assert!(malformed(compare(
        number(f64::INFINITY),
        CompareOp::Less,
        variable("calls")
    )));

    // Deeper than any parsed tree can be, shallow enough for the test's own drop.
    let mut deep = variable("degraded");
    for _ in 0..300 {
        deep = not(deep);
    }
    assert!(malformed(deep));

    let rule = Rule::from_expr(
        Expr::Or(vec![
            variable("degraded"),
            compare(variable("calls"), CompareOp::Greater, number(3.0)),
        ]),
        &schema,
    )
    .unwrap();
    assert_eq!(rule.source(), "degraded or calls > 3");
    assert_eq!(rule.variables(), ["calls", "degraded"]);
}

#[test]
fn schema_rejects_names_no_rule_could_use() {
    for name in ["", "1abc", "a-b", "a.b", "and", "true", "é"] {
        assert!(Schema::builder().number(name).build().is_err(), "{name:?}");
    }
    let err = Schema::builder()
        .number("calls")
        .boolean("calls")
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid `rule variable`: `calls` is declared twice"
    );
}

// ---- evaluation ----

#[test]
fn nan_compares_false_under_every_operator() {
    let schema = breaker_schema();
    for op in CompareOp::ALL {
        for source in [
            format!("failure_rate {op} 0.5"),
            format!("failure_rate {op} failure_rate"),
        ] {
            let rule = Rule::compile(&source, &schema).unwrap();
            let vars = [("failure_rate", Value::from(f64::NAN))];
            assert_eq!(rule.evaluate(&vars), Ok(false), "{source}");
        }
    }
    let negated = Rule::compile("not failure_rate == 0.5", &schema).unwrap();
    assert_eq!(
        negated.evaluate(&[("failure_rate", Value::from(f64::NAN))]),
        Ok(true)
    );
}

#[test]
fn infinities_compare_as_numbers() {
    let rule = Rule::compile("calls > 1000000", &breaker_schema()).unwrap();
    assert_eq!(
        rule.evaluate(&[("calls", Value::from(f64::INFINITY))]),
        Ok(true)
    );
    assert_eq!(
        rule.evaluate(&[("calls", Value::from(f64::NEG_INFINITY))]),
        Ok(false)
    );
}

#[test]
fn missing_or_mistyped_values_are_errors() {
    let rule = Rule::compile("state == \"open\" or calls > 3", &breaker_schema()).unwrap();
    let none: [(&str, Value<'_>); 0] = [];
    assert_eq!(
        rule.evaluate(&none),
        Err(EvalError::Missing {
            name: "state".into()
        })
    );
    let wrong = [("state", Value::from(1))];
    assert_eq!(
        rule.evaluate(&wrong),
        Err(EvalError::WrongType {
            name: "state".into(),
            expected: ValueType::String,
            found: ValueType::Number,
        })
    );
    assert_eq!(
        EvalError::Missing {
            name: "calls".into()
        }
        .to_string(),
        "variable `calls` has no value"
    );
    // `or` stops at its first true operand.
    assert_eq!(rule.evaluate(&[("state", Value::from("open"))]), Ok(true));
}

#[test]
fn equality_of_strings_and_bools() {
    let schema = breaker_schema();
    let vars = [
        ("state", Value::from("half_open")),
        ("degraded", Value::from(false)),
        ("calls", Value::from(5)),
    ];
    for (source, expected) in [
        ("state == \"half_open\"", true),
        ("state != \"half_open\"", false),
        ("\"half_open\" == state", true),
        ("degraded == false", true),
        ("degraded != (calls > 3)", true),
        ("(calls > 3) == (not degraded)", true),
    ] {
        let outcome = Rule::compile(source, &schema).map(|rule| rule.evaluate(&vars));
        assert_eq!(outcome, Ok(Ok(expected)), "{source}");
    }
}

#[test]
fn maps_supply_variables() {
    let rule = Rule::compile("state == \"open\" and calls >= 2", &breaker_schema()).unwrap();
    let mut hashed: HashMap<String, Value<'static>> = HashMap::new();
    hashed.insert("state".into(), Value::from(String::from("open")));
    hashed.insert("calls".into(), Value::from(2_u64));
    assert_eq!(rule.evaluate(&hashed), Ok(true));

    let sorted: BTreeMap<&str, Value<'_>> = [
        ("state", Value::from("open")),
        ("calls", Value::from(1_usize)),
    ]
    .into();
    assert_eq!(rule.evaluate(&sorted), Ok(false));

    let dynamic: &dyn Variables = &hashed;
    assert_eq!(rule.evaluate(dynamic), Ok(true));
}

// ---- canonical printing ----

#[test]
fn display_adds_only_the_parentheses_the_tree_needs() {
    for (source, canonical) in [
        ("((a))", "a"),
        ("(a or b) and c", "(a or b) and c"),
        ("(a and b) or c", "a and b or c"),
        ("(a or b) or c", "(a or b) or c"),
        ("not (a == 1)", "not a == 1"),
        ("(not a) == b", "(not a) == b"),
        ("not(a and b)", "not (a and b)"),
        ("a == (b)", "a == b"),
        ("(a == b) != (c < 1)", "(a == b) != (c < 1)"),
        ("x==\"tab\there\"", "x == \"tab\\there\""),
    ] {
        let expr = parse(source).unwrap();
        assert_eq!(expr.to_string(), canonical, "{source}");
        assert_eq!(parse(canonical).unwrap(), expr, "{source}");
    }
}

// ---- serde ----

#[cfg(feature = "serde")]
#[test]
fn expressions_load_from_config_text() {
    #[derive(serde::Deserialize, serde::Serialize)]
    struct BreakerConfig {
        trip: Expr,
    }

    let config: BreakerConfig =
        toml::from_str("trip = \"failure_rate >= 0.5 and  calls >= 20\"").unwrap();
    let rule = Rule::from_expr(config.trip, &breaker_schema()).unwrap();
    assert_eq!(rule.source(), "failure_rate >= 0.5 and calls >= 20");

    let back = toml::to_string(&BreakerConfig {
        trip: rule.expr().clone(),
    })
    .unwrap();
    assert_eq!(
        back.trim(),
        "trip = \"failure_rate >= 0.5 and calls >= 20\""
    );

    let err = toml::from_str::<BreakerConfig>("trip = \"calls >=\"")
        .err()
        .map(|err| err.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("expected a value after `>=` at column 9"),
        "{err}"
    );

    let schema: BTreeMap<String, ValueType> =
        toml::from_str("calls = \"number\"\nstate = \"string\"").unwrap();
    assert_eq!(schema.get("state"), Some(&ValueType::String));
}

#[cfg(feature = "serde")]
#[test]
fn rules_serialize_as_their_source() {
    #[derive(serde::Serialize)]
    struct Saved {
        rule: Rule,
    }
    let rule = Rule::compile("degraded  or calls > 3", &breaker_schema()).unwrap();
    let text = toml::to_string(&Saved { rule }).unwrap();
    assert_eq!(text.trim(), "rule = \"degraded  or calls > 3\"");
}

#[test]
fn compiled_rules_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Rule>();
    assert_send_sync::<Schema>();
    assert_send_sync::<RuleError>();
}

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;

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

// ---- grammar ----

#[test]
fn precedence_is_or_then_and_then_not_then_comparison() {
    assert_eq!(
        parse("a or b and c").unwrap(),
        Expr::Or(vec![
            variable("a"),
            Expr::And(vec![variable("b"), variable("c")])
        ])
    );
    assert_eq!(
        parse("not a == 1").unwrap(),
        not(compare(variable("a"), CompareOp::Equal, number(1.0)))
    );
    assert_eq!(
        parse("not a and b").unwrap(),
        Expr::And(vec![not(variable("a")), variable("b")])
    );
    assert_eq!(
        parse("a and b and c").unwrap(),
        Expr::And(vec![variable("a"), variable("b"), variable("c")])
    );
    assert_eq!(
        parse("(a and b) and c").unwrap(),
        Expr::And(vec![
            Expr::And(vec![variable("a"), variable("b")]),
            variable("c")
        ])
    );
}

#[test]
fn every_operator_lexes_with_or_without_spaces() {
    for op in CompareOp::ALL {
        let spaced = parse(&format!("a {op} -1.5")).unwrap();
        let tight = parse(&format!("a{op}-1.5")).unwrap();
        assert_eq!(spaced, compare(variable("a"), op, number(-1.5)));
        assert_eq!(spaced, tight);
    }
}

#[test]
fn chained_comparisons_are_rejected_but_parenthesized_ones_parse() {
    let err = parse_error("a < b < c");
    assert_eq!(err.problem(), &ParseProblem::ChainedComparison);
    assert_eq!(err.position().column, 7);
    assert!(parse("(a < b) == (b < c)").is_ok());
}

#[test]
fn bare_bools_are_conditions() {
    let schema = breaker_schema();
    let rule = Rule::compile("degraded and calls > 3", &schema).unwrap();
    let vars = [("degraded", Value::from(true)), ("calls", Value::from(4))];
    assert_eq!(rule.evaluate(&vars), Ok(true));
    assert_eq!(
        Rule::compile("true", &schema).unwrap().evaluate(&vars),
        Ok(true)
    );
    assert_eq!(
        Rule::compile("not false and not not true", &schema)
            .unwrap()
            .evaluate(&vars),
        Ok(true)
    );
}

#[test]
fn literals() {
    assert_eq!(parse("x == -0.25").unwrap().to_string(), "x == -0.25");
    assert_eq!(parse("x == 007").unwrap().to_string(), "x == 7");
    assert_eq!(
        parse(r#"x == "a\"b\\c\nd\re\tf""#).unwrap(),
        compare(
            variable("x"),
            CompareOp::Equal,
            Expr::Literal(Literal::String("a\"b\\c\nd\re\tf".into()))
        )
    );
    assert_eq!(
        parse("x == \"é\u{1F600}\"").unwrap().to_string(),
        "x == \"é\u{1F600}\""
    );
    let huge = format!("x > 1{}", "0".repeat(400));
    assert_eq!(
        parse_error(&huge).problem(),
        &ParseProblem::InvalidNumber("number is too large")
    );
}

#[test]
fn error_messages_name_the_problem_and_the_column() {
    let cases = [
        (
            "failure_rate >=",
            "expected a value after `>=` at column 16, found end of input",
        ),
        (
            "calls >= 20 and",
            "expected an expression after `and` at column 16, found end of input",
        ),
        ("", "expected an expression at column 1, found end of input"),
        (
            "calls 20",
            "expected a comparison operator, `and`, `or` or end of input after `calls` \
             at column 7, found `20`",
        ),
        (
            "(calls > 1",
            "expected `and`, `or` or `)` after `1` at column 11, found end of input",
        ),
        (
            "calls > 1)",
            "expected `and`, `or` or end of input after `1` at column 10, found `)`",
        ),
        (
            "retries(1) > 3",
            "function calls are not allowed at column 1",
        ),
        (
            "x > 1 and os.name == \"a\"",
            "attribute access is not allowed at column 11",
        ),
        (
            "a < b < c",
            "comparisons cannot be chained; join them with `and` at column 7",
        ),
        (
            "a = 1",
            "`=` is not supported; use `==` to compare at column 3",
        ),
        ("a && b", "`&&` is not supported; use `and` at column 3"),
        ("a || b", "`||` is not supported; use `or` at column 3"),
        (
            "!a",
            "`!` is not supported; use `not` to negate at column 1",
        ),
        (
            "a == 'x'",
            "`'` is not supported; strings use double quotes at column 6",
        ),
        (
            "a > - 1",
            "`-` is not supported; a minus sign must be followed directly by a digit; \
             there is no arithmetic at column 5",
        ),
        (
            "a > 1.",
            "expected a digit after the decimal point at column 6",
        ),
        ("a == \"open", "unterminated string at column 6"),
        (
            r#"a == "\q""#,
            r#"unknown escape `\q` in a string; the escapes are \" \\ \n \r \t at column 7"#,
        ),
        ("a # b", "unexpected character '#' at column 3"),
        (
            "a == \"a very long string literal that goes on\" b",
            "expected `and`, `or` or end of input after `\"a very long string lite…` \
             at column 48, found `b`",
        ),
    ];
    for (source, message) in cases {
        assert_eq!(
            parse_error(source).to_string(),
            message,
            "source: {source:?}"
        );
    }
}

#[test]
fn positions_count_lines_and_characters() {
    let err = parse_error("état == 1");
    assert_eq!(err.problem(), &ParseProblem::UnexpectedCharacter('é'));
    assert_eq!((err.position().offset, err.position().column), (0, 1));

    let err = parse_error("x == \"é\" and\n\n  (y >");
    let position = err.position();
    assert_eq!((position.line, position.column), (3, 7));
    assert_eq!(position.offset, "x == \"é\" and\n\n  (y >".len());
    assert!(err.to_string().contains("at line 3, column 7"));
}

// ---- limits ----

#[test]
fn nesting_beyond_the_limit_is_an_error_not_a_stack_overflow() {
    let sixteen = format!("{}x{}", "(".repeat(16), ")".repeat(16));
    assert!(parse(&sixteen).is_ok());
    let seventeen = format!("{}x{}", "(".repeat(17), ")".repeat(17));
    assert_eq!(
        parse_error(&seventeen).problem(),
        &ParseProblem::TooDeep { limit: 16 }
    );
    assert_eq!(
        parse_error(&"not ".repeat(17)).problem(),
        &ParseProblem::TooDeep { limit: 16 }
    );

    // Only the depth limit stands between this input and the stack.
    let limits = Limits::default()
        .with_max_len(usize::MAX)
        .and_then(|limits| limits.with_max_tokens(usize::MAX))
        .unwrap();
    let deep = format!("{}x{}", "(".repeat(100_000), ")".repeat(100_000));
    assert!(matches!(
        parse_with_limits(&deep, &limits).map_err(|err| err.problem().clone()),
        Err(ParseProblem::TooDeep { limit: 16 })
    ));
}

#[test]
fn the_deepest_allowed_rule_compiles_evaluates_and_prints() {
    let limits = generous_limits();
    let half = Limits::MAX_DEPTH_CEILING / 2;
    let source = format!("{}degraded{}", "(not ".repeat(half), ")".repeat(half));
    let rule = Rule::compile_with_limits(&source, &breaker_schema(), &limits).unwrap();
    assert_eq!(rule.evaluate(&[("degraded", Value::from(true))]), Ok(true));
    assert_eq!(
        parse_with_limits(&rule.to_string(), &limits).unwrap(),
        *rule.expr()
    );
}

#[test]
fn length_limit_applies_before_lexing() {
    let limits = Limits::default().with_max_len(5).unwrap();
    assert!(parse_with_limits("a > 1", &limits).is_ok());
    let err = parse_with_limits("a > 10", &limits).unwrap_err();
    assert_eq!(err.problem(), &ParseProblem::TooLong { limit: 5 });
    assert_eq!(err.position().offset, 5);
    // A cut inside a character is reported at that character's start.
    let err = parse_with_limits("a==\"é\"", &limits).unwrap_err();
    assert_eq!(err.position().offset, 4);
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

// ---- properties ----

fn identifier() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_]{0,8}".prop_filter("keywords are not identifiers", |name| {
        !["and", "or", "not", "true", "false"].contains(&name.as_str())
    })
}

fn finite_number() -> impl Strategy<Value = f64> {
    prop_oneof![
        (-1000_i32..1000).prop_map(f64::from),
        any::<f64>().prop_filter("finite", |n| n.is_finite()),
    ]
}

fn any_leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        finite_number().prop_map(number),
        any::<String>().prop_map(|text| Expr::Literal(Literal::String(text))),
        any::<bool>().prop_map(|flag| Expr::Literal(Literal::Bool(flag))),
        identifier().prop_map(Expr::Variable),
    ]
}

fn any_operator() -> impl Strategy<Value = CompareOp> {
    prop::sample::select(CompareOp::ALL.to_vec())
}

/// Every tree shape the parser can produce, whatever the types.
fn any_expr() -> impl Strategy<Value = Expr> {
    any_leaf().prop_recursive(5, 48, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(not),
            prop::collection::vec(inner.clone(), 2..5).prop_map(Expr::And),
            prop::collection::vec(inner.clone(), 2..5).prop_map(Expr::Or),
            (inner.clone(), any_operator(), inner)
                .prop_map(|(left, op, right)| compare(left, op, right)),
        ]
    })
}

/// Text that is mostly rule tokens, so the parser gets past its first few characters.
fn token_soup() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "(",
        ")",
        " and ",
        " or ",
        "not ",
        "calls",
        "state",
        "degraded",
        "failure_rate",
        "1",
        "-2.5",
        "0.",
        "\"open\"",
        "\"\\",
        "\"",
        "==",
        ">=",
        "<",
        "!=",
        ".",
        ",",
        "!",
        "=",
        "&&",
        " ",
        "\n",
        "true",
        "false",
        "x(",
        "é",
        "-",
        "\t",
    ]);
    prop::collection::vec(pieces, 0..70).prop_map(|pieces| pieces.concat())
}

fn sample_values() -> [(&'static str, Value<'static>); 5] {
    [
        ("failure_rate", Value::from(f64::NAN)),
        ("calls", Value::from(20)),
        ("state", Value::from("open")),
        ("retries_1h", Value::from(3)),
        ("degraded", Value::from(true)),
    ]
}

/// Whatever the input: no panic, and whatever parses prints back to the same tree.
fn exercise(source: &str) -> Result<(), TestCaseError> {
    if let Ok(expr) = parse(source) {
        let reparsed = parse_with_limits(&expr.to_string(), &generous_limits());
        prop_assert_eq!(reparsed, Ok(expr));
    }
    if let Ok(rule) = Rule::compile(source, &breaker_schema()) {
        let _ = rule.evaluate(&sample_values());
        let _ = rule.evaluate(&sample_values()[..2]);
    }
    Ok(())
}

/// The meaning of a well-typed tree, computed straight from the syntax.
fn reference(expr: &Expr, vars: &HashMap<String, Value<'static>>) -> Value<'static> {
    match expr {
        Expr::Literal(Literal::Number(n)) => Value::Number(*n),
        Expr::Literal(Literal::String(s)) => Value::from(s.clone()),
        Expr::Literal(Literal::Bool(b)) => Value::Bool(*b),
        Expr::Variable(name) => vars[name].clone(),
        Expr::Not(inner) => Value::Bool(reference(inner, vars) == Value::Bool(false)),
        Expr::And(items) => Value::Bool(
            items
                .iter()
                .all(|e| reference(e, vars) == Value::Bool(true)),
        ),
        Expr::Or(items) => Value::Bool(
            items
                .iter()
                .any(|e| reference(e, vars) == Value::Bool(true)),
        ),
        Expr::Compare { left, op, right } => {
            let (left, right) = (reference(left, vars), reference(right, vars));
            Value::Bool(match (left, right) {
                (Value::Number(a), Value::Number(b)) => match op {
                    CompareOp::Equal => a == b,
                    CompareOp::NotEqual => !a.is_nan() && !b.is_nan() && a != b,
                    CompareOp::Less => a < b,
                    CompareOp::LessOrEqual => a <= b,
                    CompareOp::Greater => a > b,
                    CompareOp::GreaterOrEqual => a >= b,
                },
                (a, b) if *op == CompareOp::Equal => a == b,
                (a, b) => a != b,
            })
        }
    }
}

fn number_operand() -> impl Strategy<Value = Expr> {
    prop_oneof![
        (-3_i32..3).prop_map(|n| number(f64::from(n))),
        prop::sample::select(vec!["n1", "n2"]).prop_map(variable),
    ]
}

fn string_operand() -> impl Strategy<Value = Expr> {
    prop_oneof![
        prop::sample::select(vec!["open", "closed"])
            .prop_map(|s| Expr::Literal(Literal::String(s.into()))),
        Just(variable("s1")),
    ]
}

/// Bool-typed trees over the variables of `typed_schema`.
fn condition_expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(|flag| Expr::Literal(Literal::Bool(flag))),
        prop::sample::select(vec!["b1", "b2"]).prop_map(variable),
        (number_operand(), any_operator(), number_operand())
            .prop_map(|(left, op, right)| compare(left, op, right)),
        (string_operand(), any::<bool>(), string_operand()).prop_map(|(left, equal, right)| {
            let op = if equal {
                CompareOp::Equal
            } else {
                CompareOp::NotEqual
            };
            compare(left, op, right)
        }),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(not),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
            (inner.clone(), any::<bool>(), inner).prop_map(|(left, equal, right)| {
                let op = if equal {
                    CompareOp::Equal
                } else {
                    CompareOp::NotEqual
                };
                compare(left, op, right)
            }),
        ]
    })
}

fn typed_schema() -> Schema {
    Schema::builder()
        .number("n1")
        .number("n2")
        .string("s1")
        .boolean("b1")
        .boolean("b2")
        .build()
        .expect("static schema is valid")
}

fn typed_values() -> impl Strategy<Value = HashMap<String, Value<'static>>> {
    let number = prop_oneof![
        (-3_i32..3).prop_map(f64::from),
        Just(f64::NAN),
        Just(f64::INFINITY),
    ];
    (
        number.clone(),
        number,
        prop::sample::select(vec!["open", "closed", ""]),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(n1, n2, s1, b1, b2)| {
            HashMap::from([
                ("n1".to_owned(), Value::from(n1)),
                ("n2".to_owned(), Value::from(n2)),
                ("s1".to_owned(), Value::from(s1.to_owned())),
                ("b1".to_owned(), Value::from(b1)),
                ("b2".to_owned(), Value::from(b2)),
            ])
        })
}

proptest! {
    #[test]
    fn printing_then_parsing_gives_the_same_tree(expr in any_expr()) {
        let printed = expr.to_string();
        prop_assert_eq!(parse_with_limits(&printed, &generous_limits()), Ok(expr));
    }

    #[test]
    fn arbitrary_text_never_panics(source in any::<String>()) {
        exercise(&source)?;
    }

    #[test]
    fn token_soup_never_panics(source in token_soup()) {
        exercise(&source)?;
    }

    #[test]
    fn compiled_rules_agree_with_the_reference_meaning(
        expr in condition_expr(),
        vars in typed_values(),
    ) {
        let rule = Rule::from_expr(expr.clone(), &typed_schema());
        prop_assert!(rule.is_ok(), "{:?}", rule);
        let rule = rule.map_err(|err| TestCaseError::fail(err.to_string()))?;
        prop_assert_eq!(rule.evaluate(&vars), Ok(reference(&expr, &vars) == Value::Bool(true)));
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

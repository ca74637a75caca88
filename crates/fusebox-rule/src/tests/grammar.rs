//! The grammar and its limits: precedence, operators, literals, error positions, and the
//! bounds on nesting and length.

use super::*;

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

//! Property tests: printing and parsing agree, no input makes the parser panic, and
//! compiled rules agree with a reference meaning computed from the syntax.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

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

//! Guards and computed values are CEL expressions (the `cel` crate) over the instance
//! data, the input, the actor, the clock and the review result.
//!
//! Variables visible to an expression:
//! - `data`: the instance data (a map of field name to value)
//! - `input`: the input of the event being fired (a map)
//! - `actor`: `{ id, roles: [..], org }`
//! - `now`: the current instant (a CEL timestamp); `today`: the local date `"YYYY-MM-DD"`
//! - `review`: the aggregated result of the latest closed review round, or `null`
//! - `budget`: the project's budget facts `{ lines, total, spent, remaining,
//!   execution_rate }` (money as yuan strings), or `null` before the first budget line
//!
//! Functions added to the standard library: `yuan(x)` turns a money string such as
//! `"12500.50"` into a double, so that `yuan(data.budget) <= 500000.0` reads naturally;
//! `date(x)` turns `"YYYY-MM-DD"` into a timestamp at local midnight; `days_after(d, n)`
//! is the date `n` calendar days after the date `d` (`"YYYY-MM-DD"`, `0 <= n <= 3660`),
//! e.g. a correction window: `days_after(today, data.correction_window_days)`;
//! `next_report_due(schedule, after, end)` is the first report date of a `report_schedule`
//! value strictly after the date `after`, or `null` past the date `end` (or when `end` is
//! `null`, never): the task book's next progress report.

use std::collections::BTreeSet;
use std::sync::Arc;

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::{Context, Program, Value};
use chrono::{DateTime, Utc};

use crate::Money;

pub const VARIABLES: [&str; 7] = ["data", "input", "actor", "now", "today", "review", "budget"];

/// A compiled CEL expression with its source text.
#[derive(Debug)]
pub struct Expression {
    source: String,
    program: Program,
}

/// Fields an expression reads, by the variable they hang off.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct References {
    pub data_fields: BTreeSet<String>,
    pub input_fields: BTreeSet<String>,
    /// Top-level identifiers that are not one of [`VARIABLES`] nor a local variable of a
    /// comprehension (`all`, `exists`, `map`…).
    pub unknown_variables: BTreeSet<String>,
}

/// What an expression is evaluated against.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub data: &'a serde_json::Value,
    pub input: &'a serde_json::Value,
    pub actor: &'a serde_json::Value,
    pub review: &'a serde_json::Value,
    pub budget: &'a serde_json::Value,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("expression `{expression}` failed: {message}")]
    Evaluation { expression: String, message: String },
    #[error("expression `{expression}` returned {got}, not true or false")]
    NotBoolean { expression: String, got: String },
}

/// The longest expression accepted, in characters.
pub const MAX_EXPRESSION_CHARS: usize = 1_000;
/// The deepest nesting of brackets (`(`, `[`, `{`, counted in string literals too).
pub const MAX_EXPRESSION_NESTING: usize = 16;
/// The deepest syntax tree accepted: CEL evaluates (and drops) a tree recursively, on the
/// async worker that fires the event, and 250 chained `+` overflow a 2 MiB stack in a
/// debug build. Shipped guards are less than 10 deep.
pub const MAX_EXPRESSION_DEPTH: usize = 32;
/// The CEL parser recurses per bracket and per operator with large frames (a dozen nested
/// parentheses fill a 2 MiB thread stack in a debug build), so it runs on its own thread
/// with this stack, after the caps above bound how deep it can go.
const PARSER_STACK_BYTES: usize = 64 * 1024 * 1024;

impl Expression {
    pub fn compile(source: &str) -> Result<Self, String> {
        let chars = source.chars().count();
        if chars > MAX_EXPRESSION_CHARS {
            return Err(format!(
                "the expression has {chars} characters; at most {MAX_EXPRESSION_CHARS} are accepted"
            ));
        }
        let mut depth = 0usize;
        let mut deepest = 0usize;
        for c in source.chars() {
            match c {
                '(' | '[' | '{' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                ')' | ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        if deepest > MAX_EXPRESSION_NESTING {
            return Err(format!(
                "the expression nests brackets {deepest} deep; at most {MAX_EXPRESSION_NESTING} are accepted"
            ));
        }
        let parsed = std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("cel-parser".into())
                .stack_size(PARSER_STACK_BYTES)
                .spawn_scoped(scope, || {
                    let program = Program::compile(source).map_err(|e| e.to_string())?;
                    // Measured (and, when too deep, dropped) here, on the large stack.
                    let depth = tree_depth(program.expression());
                    if depth > MAX_EXPRESSION_DEPTH {
                        return Err(format!(
                            "the expression nests {depth} operations deep; at most {MAX_EXPRESSION_DEPTH} are accepted"
                        ));
                    }
                    Ok(program)
                })
                .map_err(|e| format!("cannot start the expression parser: {e}"))?
                .join()
                .unwrap_or_else(|_| Err("the expression parser failed".to_string()))
        });
        parsed
            .map(|program| Self {
                source: source.to_string(),
                program,
            })
            .map_err(|e| e.replace('\n', "; "))
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn references(&self) -> References {
        let mut refs = References::default();
        walk(self.program.expression(), &mut Vec::new(), &mut refs);
        refs
    }

    pub fn evaluate(&self, scope: &Scope<'_>) -> Result<serde_json::Value, GuardError> {
        let context = build_context(scope).map_err(|message| GuardError::Evaluation {
            expression: self.source.clone(),
            message,
        })?;
        let value = self
            .program
            .execute(&context)
            .map_err(|e| GuardError::Evaluation {
                expression: self.source.clone(),
                message: e.to_string(),
            })?;
        value.json().map_err(|e| GuardError::Evaluation {
            expression: self.source.clone(),
            message: e.to_string(),
        })
    }

    pub fn evaluate_bool(&self, scope: &Scope<'_>) -> Result<bool, GuardError> {
        match self.evaluate(scope)? {
            serde_json::Value::Bool(b) => Ok(b),
            other => Err(GuardError::NotBoolean {
                expression: self.source.clone(),
                got: other.to_string(),
            }),
        }
    }

    /// A rendering of the expression tree without node ids, to compare two expressions
    /// for equality regardless of spacing.
    pub fn shape(&self) -> String {
        shape(self.program.expression())
    }

    /// For `a == literal`: the shape of `a` and the literal, used to recognise guards that
    /// exclude each other (`input.outcome == 'pass'` / `input.outcome == 'fail'`).
    pub fn equality_test(&self) -> Option<(String, String)> {
        equality_test(self.program.expression())
    }

    /// The shapes of the conjuncts of `a && b && …` (the expression itself otherwise),
    /// each with whether it is negated (`!x`) and, for `x == literal`, the literal.
    pub fn conjuncts(&self) -> Vec<Conjunct> {
        let mut out = Vec::new();
        collect_conjuncts(self.program.expression(), &mut out);
        out
    }

    /// For `!x`: the shape of `x`.
    pub fn negated(&self) -> Option<String> {
        match &self.program.expression().expr {
            Expr::Call(call) if call.func_name == "!_" && call.args.len() == 1 => {
                Some(shape(&call.args[0]))
            }
            _ => None,
        }
    }
}

/// One term of a conjunction, in a form that makes contradictions easy to spot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conjunct {
    /// `x` (shape of x).
    Plain(String),
    /// `!x` (shape of x).
    Not(String),
    /// `x == literal` (shape of x, literal).
    Equals(String, String),
    /// `x != literal` or `!(x == literal)` (shape of x, literal).
    NotEquals(String, String),
}

impl Conjunct {
    /// Whether `self && other` can never hold.
    pub fn contradicts(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Plain(a), Self::Not(b)) | (Self::Not(b), Self::Plain(a)) => a == b,
            (Self::Equals(a, la), Self::Equals(b, lb)) => a == b && la != lb,
            (Self::Equals(a, la), Self::NotEquals(b, lb))
            | (Self::NotEquals(b, lb), Self::Equals(a, la)) => a == b && la == lb,
            _ => false,
        }
    }
}

fn collect_conjuncts(e: &IdedExpr, out: &mut Vec<Conjunct>) {
    match &e.expr {
        Expr::Call(call) if call.func_name == "_&&_" => {
            for a in &call.args {
                collect_conjuncts(a, out);
            }
        }
        Expr::Call(call) if call.func_name == "!_" && call.args.len() == 1 => {
            match equality_test(&call.args[0]) {
                Some((operand, literal)) => out.push(Conjunct::NotEquals(operand, literal)),
                None => out.push(Conjunct::Not(shape(&call.args[0]))),
            }
        }
        Expr::Call(call) if call.func_name == "_!=_" && call.args.len() == 2 => {
            let (a, b) = (&call.args[0], &call.args[1]);
            match (&a.expr, &b.expr) {
                (_, Expr::Literal(l)) => out.push(Conjunct::NotEquals(shape(a), format!("{l:?}"))),
                (Expr::Literal(l), _) => out.push(Conjunct::NotEquals(shape(b), format!("{l:?}"))),
                _ => out.push(Conjunct::Plain(shape(e))),
            }
        }
        _ => match equality_test(e) {
            Some((operand, literal)) => out.push(Conjunct::Equals(operand, literal)),
            None => out.push(Conjunct::Plain(shape(e))),
        },
    }
}

/// The top-level conjuncts of `source` (`a && b && (c || d)` → `a`, `b`, `(c || d)`), split
/// on the text outside brackets and string literals. Used to find the part of a guard that
/// can be decided before the input is known (routing rules such as
/// `data.applicant_kind == 'unit'`).
pub fn split_conjuncts(source: &str) -> Vec<&str> {
    let bytes = source.as_bytes();
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(q) => {
                if c == b'\\' {
                    i += 1;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                b'\'' | b'"' => quote = Some(c),
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth = depth.saturating_sub(1),
                b'&' if depth == 0 && bytes.get(i + 1) == Some(&b'&') => {
                    parts.push(source[start..i].trim());
                    i += 1;
                    start = i + 1;
                }
                _ => {}
            },
        }
        i += 1;
    }
    parts.push(source[start..].trim());
    parts
}

fn equality_test(e: &IdedExpr) -> Option<(String, String)> {
    match &e.expr {
        Expr::Call(call) if call.func_name == "_==_" && call.args.len() == 2 => {
            let (a, b) = (&call.args[0], &call.args[1]);
            match (&a.expr, &b.expr) {
                (_, Expr::Literal(l)) => Some((shape(a), format!("{l:?}"))),
                (Expr::Literal(l), _) => Some((shape(b), format!("{l:?}"))),
                _ => None,
            }
        }
        _ => None,
    }
}

fn shape(e: &IdedExpr) -> String {
    match &e.expr {
        Expr::Unspecified => "?".into(),
        Expr::Ident(name) => name.clone(),
        Expr::Literal(l) => format!("{l:?}"),
        Expr::Select(s) => format!(
            "{}{}.{}",
            if s.test { "has:" } else { "" },
            shape(&s.operand),
            s.field
        ),
        Expr::Call(c) => {
            let target = c
                .target
                .as_ref()
                .map(|t| shape(t) + ".")
                .unwrap_or_default();
            let args: Vec<String> = c.args.iter().map(shape).collect();
            format!("{target}{}({})", c.func_name, args.join(","))
        }
        Expr::List(l) => {
            let items: Vec<String> = l.elements.iter().map(shape).collect();
            format!("[{}]", items.join(","))
        }
        Expr::Map(m) => {
            let entries: Vec<String> = m
                .entries
                .iter()
                .map(|entry| match &entry.expr {
                    EntryExpr::MapEntry(me) => format!("{}:{}", shape(&me.key), shape(&me.value)),
                    EntryExpr::StructField(sf) => format!("{}:{}", sf.field, shape(&sf.value)),
                })
                .collect();
            format!("{{{}}}", entries.join(","))
        }
        Expr::Struct(s) => format!("{}{{..}}", s.type_name),
        Expr::Comprehension(c) => format!(
            "comp({},{},{},{})",
            shape(&c.iter_range),
            c.iter_var,
            shape(&c.loop_step),
            shape(&c.result)
        ),
    }
}

fn walk(e: &IdedExpr, locals: &mut Vec<String>, refs: &mut References) {
    match &e.expr {
        Expr::Unspecified | Expr::Literal(_) => {}
        Expr::Ident(name) => {
            if !VARIABLES.contains(&name.as_str()) && !locals.iter().any(|l| l == name) {
                refs.unknown_variables.insert(name.clone());
            }
        }
        Expr::Select(s) => {
            if let Expr::Ident(root) = &s.operand.expr
                && !locals.iter().any(|l| l == root)
            {
                match root.as_str() {
                    "data" => {
                        refs.data_fields.insert(s.field.clone());
                    }
                    "input" => {
                        refs.input_fields.insert(s.field.clone());
                    }
                    _ => {}
                }
            }
            walk(&s.operand, locals, refs);
        }
        Expr::Call(c) => {
            if let Some(t) = &c.target {
                walk(t, locals, refs);
            }
            for a in &c.args {
                walk(a, locals, refs);
            }
        }
        Expr::List(l) => {
            for item in &l.elements {
                walk(item, locals, refs);
            }
        }
        Expr::Map(m) => {
            for entry in &m.entries {
                match &entry.expr {
                    EntryExpr::MapEntry(me) => {
                        walk(&me.key, locals, refs);
                        walk(&me.value, locals, refs);
                    }
                    EntryExpr::StructField(sf) => walk(&sf.value, locals, refs),
                }
            }
        }
        Expr::Struct(s) => {
            for entry in &s.entries {
                if let EntryExpr::StructField(sf) = &entry.expr {
                    walk(&sf.value, locals, refs);
                }
            }
        }
        Expr::Comprehension(c) => {
            walk(&c.iter_range, locals, refs);
            walk(&c.accu_init, locals, refs);
            let before = locals.len();
            locals.push(c.iter_var.clone());
            if let Some(v2) = &c.iter_var2 {
                locals.push(v2.clone());
            }
            locals.push(c.accu_var.clone());
            walk(&c.loop_cond, locals, refs);
            walk(&c.loop_step, locals, refs);
            walk(&c.result, locals, refs);
            locals.truncate(before);
        }
    }
}

/// The depth of a syntax tree (a literal or a name is 1).
fn tree_depth(e: &IdedExpr) -> usize {
    let children: Vec<&IdedExpr> = match &e.expr {
        Expr::Unspecified | Expr::Literal(_) | Expr::Ident(_) => Vec::new(),
        Expr::Select(s) => vec![&s.operand],
        Expr::Call(c) => c.target.iter().map(|t| &**t).chain(&c.args).collect(),
        Expr::List(l) => l.elements.iter().collect(),
        Expr::Map(m) => m
            .entries
            .iter()
            .flat_map(|entry| match &entry.expr {
                EntryExpr::MapEntry(me) => vec![&me.key, &me.value],
                EntryExpr::StructField(sf) => vec![&sf.value],
            })
            .collect(),
        Expr::Struct(s) => s
            .entries
            .iter()
            .filter_map(|entry| match &entry.expr {
                EntryExpr::StructField(sf) => Some(&sf.value),
                EntryExpr::MapEntry(_) => None,
            })
            .collect(),
        Expr::Comprehension(c) => vec![
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ],
    };
    1 + children.into_iter().map(tree_depth).max().unwrap_or(0)
}

fn build_context(scope: &Scope<'_>) -> Result<Context<'static, 'static>, String> {
    let mut ctx = Context::default();
    let conv = |v: &serde_json::Value| cel::to_value(v).map_err(|e| e.to_string());
    ctx.add_variable_from_value("data", conv(scope.data)?);
    ctx.add_variable_from_value("input", conv(scope.input)?);
    ctx.add_variable_from_value("actor", conv(scope.actor)?);
    ctx.add_variable_from_value("review", conv(scope.review)?);
    ctx.add_variable_from_value("budget", conv(scope.budget)?);
    ctx.add_variable_from_value("now", Value::Timestamp(scope.now.fixed_offset()));
    let today = crate::calendar::local_date(scope.now).to_string();
    ctx.add_variable_from_value("today", Value::String(Arc::new(today)));
    ctx.add_function("yuan", yuan).map_err(|e| e.to_string())?;
    ctx.add_function("date", date).map_err(|e| e.to_string())?;
    ctx.add_function("days_after", days_after)
        .map_err(|e| e.to_string())?;
    ctx.add_function("next_report_due", next_report_due)
        .map_err(|e| e.to_string())?;
    Ok(ctx)
}

#[allow(
    clippy::needless_pass_by_value,
    reason = "CEL functions receive their arguments by value"
)]
fn yuan(value: Arc<String>) -> cel::ResolveResult {
    Money::parse(&value)
        .map(|m| Value::Float(m.as_yuan_f64()))
        .map_err(|e| cel::ExecutionError::function_error("yuan", e.to_string()))
}

#[allow(
    clippy::needless_pass_by_value,
    reason = "CEL functions receive their arguments by value"
)]
fn date(value: Arc<String>) -> cel::ResolveResult {
    let day = crate::dates::parse_date(&value)
        .map_err(|e| cel::ExecutionError::function_error("date", e.to_string()))?;
    let at = crate::calendar::local_instant(day, chrono::NaiveTime::MIN);
    Ok(Value::Timestamp(at.fixed_offset()))
}

/// The longest span `days_after` adds: ten years.
const MAX_DAYS_AFTER: i64 = 3_660;

#[allow(
    clippy::needless_pass_by_value,
    reason = "CEL functions receive their arguments by value"
)]
fn days_after(value: Arc<String>, days: Value) -> cel::ResolveResult {
    let day = crate::dates::parse_date(&value)
        .map_err(|e| cel::ExecutionError::function_error("days_after", e.to_string()))?;
    // JSON numbers arrive as `uint` when positive, as `int` from literals.
    let days = match days {
        Value::Int(n) => n,
        Value::UInt(n) => i64::try_from(n).unwrap_or(i64::MAX),
        other => {
            return Err(cel::ExecutionError::function_error(
                "days_after",
                format!("the number of days must be an integer, not {other:?}"),
            ));
        }
    };
    if !(0..=MAX_DAYS_AFTER).contains(&days) {
        return Err(cel::ExecutionError::function_error(
            "days_after",
            format!("{days} days is outside 0 to {MAX_DAYS_AFTER}"),
        ));
    }
    let later = day
        .checked_add_days(chrono::Days::new(days.unsigned_abs()))
        .ok_or_else(|| cel::ExecutionError::function_error("days_after", "date out of range"))?;
    Ok(Value::String(Arc::new(later.to_string())))
}

#[allow(
    clippy::needless_pass_by_value,
    reason = "CEL functions receive their arguments by value"
)]
fn next_report_due(schedule: Value, after: Arc<String>, end: Value) -> cel::ResolveResult {
    let fail = |e: String| cel::ExecutionError::function_error("next_report_due", e);
    let schedule = schedule.json().map_err(|e| fail(e.to_string()))?;
    let after = crate::dates::parse_date(&after).map_err(|e| fail(e.to_string()))?;
    let end = match end {
        Value::String(s) => Some(crate::dates::parse_date(&s).map_err(|e| fail(e.to_string()))?),
        _ => None,
    };
    Ok(match crate::tasks::next_report_due(&schedule, after, end) {
        Some(day) => Value::String(Arc::new(day.to_string())),
        None => Value::Null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope<'a>(data: &'a serde_json::Value, input: &'a serde_json::Value) -> Scope<'a> {
        static NULL: serde_json::Value = serde_json::Value::Null;
        Scope {
            data,
            input,
            actor: &NULL,
            review: &NULL,
            budget: &NULL,
            now: "2024-06-01T02:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn evaluates_over_data_input_and_money() {
        let data = json!({"budget": "300000.00", "indicators": [{"weight": 1}]});
        let input = json!({"outcome": "pass"});
        let e = Expression::compile(
            "yuan(data.budget) <= 500000.0 && size(data.indicators) > 0 && input.outcome == 'pass'",
        )
        .unwrap();
        assert!(e.evaluate_bool(&scope(&data, &input)).unwrap());
        let e = Expression::compile("date('2024-06-29') > now && today == '2024-06-01'").unwrap();
        assert!(e.evaluate_bool(&scope(&data, &input)).unwrap());
    }

    #[test]
    fn reports_references_and_unknown_variables() {
        let e = Expression::compile(
            "has(data.budget) && data.indicators.all(i, i.weight > 0) && input.x == y",
        )
        .unwrap();
        let r = e.references();
        assert_eq!(
            r.data_fields,
            ["budget", "indicators"].map(String::from).into()
        );
        assert_eq!(r.input_fields, ["x"].map(String::from).into());
        assert_eq!(r.unknown_variables, ["y"].map(String::from).into());
    }

    #[test]
    fn non_boolean_and_missing_fields_are_errors() {
        let data = json!({});
        let input = json!({});
        let e = Expression::compile("1 + 1").unwrap();
        assert!(matches!(
            e.evaluate_bool(&scope(&data, &input)),
            Err(GuardError::NotBoolean { .. })
        ));
        let e = Expression::compile("data.missing == 1").unwrap();
        assert!(matches!(
            e.evaluate_bool(&scope(&data, &input)),
            Err(GuardError::Evaluation { .. })
        ));
        assert!(Expression::compile("data.x ==").is_err());
    }

    #[test]
    fn recognises_exclusive_shapes() {
        let a = Expression::compile("input.outcome == 'pass'").unwrap();
        let b = Expression::compile("input.outcome   ==   'fail'").unwrap();
        assert_eq!(a.equality_test().unwrap().0, b.equality_test().unwrap().0);
        assert_ne!(a.equality_test().unwrap().1, b.equality_test().unwrap().1);
        let n = Expression::compile("!(input.outcome == 'pass')").unwrap();
        assert_eq!(n.negated().unwrap(), a.shape());
    }

    #[test]
    fn days_after_adds_calendar_days_within_bounds() {
        let data = json!({"closing_date": "2024-12-30", "window": 5});
        let input = json!({});
        let e = Expression::compile("days_after(data.closing_date, data.window)").unwrap();
        assert_eq!(
            e.evaluate(&scope(&data, &input)).unwrap(),
            json!("2025-01-04")
        );
        let e = Expression::compile("days_after(today, 0) == today").unwrap();
        assert!(e.evaluate_bool(&scope(&data, &input)).unwrap());
        for bad in [
            "days_after(today, -1)",
            "days_after(today, 3661)",
            "days_after('x', 1)",
        ] {
            let e = Expression::compile(bad).unwrap();
            assert!(e.evaluate(&scope(&data, &input)).is_err(), "{bad}");
        }
    }

    #[test]
    fn top_level_conjuncts_are_split_outside_brackets_and_strings() {
        assert_eq!(
            split_conjuncts("data.a == 'x && y' && (b || c && d) && f(e && g)"),
            vec!["data.a == 'x && y'", "(b || c && d)", "f(e && g)"]
        );
        assert_eq!(split_conjuncts("a"), vec!["a"]);
    }

    #[test]
    fn equal_and_not_equal_to_one_literal_contradict() {
        let a = Expression::compile("data.kind == 'unit' && x").unwrap();
        let b = Expression::compile("data.kind != 'unit' && x").unwrap();
        let c = Expression::compile("!(data.kind == 'unit')").unwrap();
        let d = Expression::compile("data.kind != 'city'").unwrap();
        let contradict = |p: &Expression, q: &Expression| {
            p.conjuncts()
                .iter()
                .any(|x| q.conjuncts().iter().any(|y| x.contradicts(y)))
        };
        assert!(contradict(&a, &b));
        assert!(contradict(&a, &c));
        assert!(!contradict(&a, &d));
        assert!(!contradict(&b, &d));
    }
}

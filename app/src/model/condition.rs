//! A policy's CEL condition: bounded in shape when compiled, bounded in work when
//! evaluated, and strict where CEL is lenient. See ARCHITECTURE.md, "Policies".
//!
//! - **Shape.** The evaluator recurses once per level of the expression, so a condition's
//!   depth and size are capped when it is compiled, at save and at load alike: a stored
//!   condition can never exhaust a thread's stack.
//! - **Work.** Evaluation spends a [`Budget`]: one step per loop iteration and per
//!   comparison, and an optional deadline. A condition that runs out fails (and so fails
//!   closed), however large the request it reads.
//! - **Strictness.** CEL answers `false` for `==` between unlike types (`["users"] ==
//!   "users"`), so `payload.table != 'users'` would hold for `{"table": ["users"]}`.
//!   Here `==` and `!=` between unlike types is an error instead, which fails closed.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use cel::common::ast::{CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedExpr, operators};
use cel::{ExecutionError, Value as CelValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The longest condition, in bytes.
pub const MAX_SOURCE_BYTES: usize = 4096;
/// How deeply a condition may nest, in expression levels (macros count their expansion).
pub const MAX_DEPTH: usize = 32;
/// How many expression nodes a condition may have (macros count their expansion).
pub const MAX_NODES: usize = 1000;
/// The stack a condition is parsed and evaluated on. Both recurse once per level, with
/// frames that are large in debug builds (about 100 KiB a level for the parser), so
/// they run on a stack of this size rather than on whatever thread called them.
const STACK_BYTES: usize = 32 << 20;

/// The steps one request's matching may take across every condition, by default.
pub const DEFAULT_STEPS: u64 = 100_000;

/// The request's parts a condition may name.
pub const VARIABLES: &[&str] = &[
    "action",
    "resource",
    "labels",
    "payload",
    "context",
    "agent",
    "on_behalf_of",
    "title",
    "reason",
];

const STEP: &str = "signoff_step";
const STRICT_EQUALS: &str = "signoff_equals";
const STRICT_NOT_EQUALS: &str = "signoff_not_equals";

/// The standard environment, built once rather than per evaluation.
static ENV: LazyLock<Arc<cel::Env>> = LazyLock::new(|| Arc::new(cel::Env::stdlib()));

/// What matching may spend: steps, and optionally a deadline. Shared by every condition
/// one match (or one batch of matches) evaluates; once spent, it stays spent.
#[derive(Debug)]
pub struct Budget {
    steps_left: AtomicU64,
    deadline: Option<Instant>,
    spent: AtomicBool,
}

impl Budget {
    pub fn new(steps: u64, deadline: Option<Instant>) -> Budget {
        Budget {
            steps_left: AtomicU64::new(steps),
            deadline,
            spent: AtomicBool::new(false),
        }
    }

    /// The default steps and no deadline.
    pub fn standard() -> Budget {
        Budget::new(DEFAULT_STEPS, None)
    }

    /// Whether evaluation ran out of steps or time.
    pub fn is_spent(&self) -> bool {
        self.spent.load(Ordering::Relaxed)
    }

    fn step(&self) -> Result<(), ExecutionError> {
        let left = self.steps_left.load(Ordering::Relaxed);
        let late = self.deadline.is_some_and(|deadline| Instant::now() >= deadline);
        if left == 0 || late || self.is_spent() {
            self.spent.store(true, Ordering::Relaxed);
            return Err(ExecutionError::function_error(STEP, "the condition ran out of time"));
        }
        self.steps_left.store(left - 1, Ordering::Relaxed);
        Ok(())
    }
}

/// A compiled condition, ready to evaluate.
#[derive(Clone)]
pub struct Condition {
    /// The parsed expression, rewritten to spend the budget and compare strictly.
    expr: Arc<IdedExpr>,
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The expression can be large; its source is in the policy beside it.
        f.debug_struct("Condition").finish_non_exhaustive()
    }
}

impl Condition {
    /// Parses `source`, refusing one that does not parse, is too long, too deep or too
    /// large, or names something a request does not have; positions are 1-based.
    pub fn compile(source: &str) -> Result<Condition, PolicyProblem> {
        const FIELD: &str = "match.condition";
        let refuse = |message: String| PolicyProblem {
            field: FIELD.into(),
            message,
            position: None,
        };
        if source.len() > MAX_SOURCE_BYTES {
            return Err(refuse(format!("at most {MAX_SOURCE_BYTES} characters")));
        }
        let program = stacker::grow(STACK_BYTES, || cel::Program::compile(source)).map_err(|errors| {
            let first = errors.errors.first();
            PolicyProblem {
                field: FIELD.into(),
                message: first.map(|e| e.msg.clone()).unwrap_or_else(|| "does not parse".into()),
                position: first.map(|e| (e.pos.0.max(1) as u32, (e.pos.1 + 1).max(1) as u32)),
            }
        })?;
        let shape = Shape::of(program.expression());
        if shape.depth > MAX_DEPTH {
            return Err(refuse(format!(
                "nests {} levels deep, more than the {MAX_DEPTH} allowed; split it into simpler parts",
                shape.depth
            )));
        }
        if shape.nodes > MAX_NODES {
            return Err(refuse(format!(
                "has {} parts, more than the {MAX_NODES} allowed; simplify it",
                shape.nodes
            )));
        }
        let references = program.references();
        let mut unknown: Vec<&str> = references
            .variables()
            .into_iter()
            .filter(|name| !VARIABLES.contains(name) && !bound_in_macro(source, name))
            .collect();
        unknown.sort_unstable();
        if let Some(name) = unknown.first() {
            return Err(PolicyProblem {
                field: FIELD.into(),
                message: format!(
                    "`{name}` is not part of a request; a condition may use {}",
                    VARIABLES.join(", ")
                ),
                position: position_of(source, name),
            });
        }
        let mut expr = program.expression().clone();
        instrument(&mut expr);
        Ok(Condition { expr: Arc::new(expr) })
    }

    /// Evaluates the condition for `request`, spending `budget`. `Err` says why it could
    /// not be evaluated: a missing field, unlike types compared, the budget spent.
    pub fn evaluate(&self, request: &RequestFacts<'_>, budget: &Arc<Budget>) -> Result<bool, String> {
        // Reading the request into CEL values recurses too (JSON nests up to 128 deep).
        stacker::grow(STACK_BYTES, || self.evaluate_here(request, budget))
    }

    fn evaluate_here(&self, request: &RequestFacts<'_>, budget: &Arc<Budget>) -> Result<bool, String> {
        let mut context = cel::Context::with_env(Arc::clone(&ENV));
        let json = |value: &Value| cel::to_value(value).map_err(|err| format!("cannot read the request: {err}"));
        context.add_variable_from_value("action", request.action.to_string());
        context.add_variable_from_value("resource", request.resource.to_string());
        context.add_variable_from_value("agent", request.agent.to_string());
        context.add_variable_from_value("title", request.title.to_string());
        context.add_variable_from_value("reason", request.reason.to_string());
        context.add_variable_from_value(
            "on_behalf_of",
            match request.on_behalf_of {
                Some(person) => CelValue::from(person.to_string()),
                None => CelValue::Null,
            },
        );
        context.add_variable_from_value(
            "labels",
            cel::to_value(request.labels).map_err(|err| format!("cannot read the labels: {err}"))?,
        );
        context.add_variable_from_value("payload", json(request.payload)?);
        context.add_variable_from_value(
            "context",
            match request.context {
                Some(value) => json(value)?,
                None => json(&Value::Object(serde_json::Map::new()))?,
            },
        );
        let steps = Arc::clone(budget);
        let declared = context
            .add_function(STEP, move |value: CelValue| -> Result<CelValue, ExecutionError> {
                steps.step()?;
                Ok(value)
            })
            .and_then(|()| {
                let steps = Arc::clone(budget);
                context.add_function(
                    STRICT_EQUALS,
                    move |left: CelValue, right: CelValue| -> Result<CelValue, ExecutionError> {
                        steps.step()?;
                        strict_equals(&left, &right).map(CelValue::Bool)
                    },
                )
            })
            .and_then(|()| {
                let steps = Arc::clone(budget);
                context.add_function(
                    STRICT_NOT_EQUALS,
                    move |left: CelValue, right: CelValue| -> Result<CelValue, ExecutionError> {
                        steps.step()?;
                        strict_equals(&left, &right).map(|equal| CelValue::Bool(!equal))
                    },
                )
            });
        declared.map_err(|err| format!("the condition cannot run: {err:?}"))?;
        if budget.is_spent() {
            return Err("matching ran out of time before this condition".into());
        }
        let result = CelValue::resolve(&self.expr, &context);
        if budget.is_spent() {
            // Whatever CEL made of the error (`error || true` is true), a spent budget
            // means the answer is not known: fail closed.
            return Err("the condition ran out of time".into());
        }
        match result {
            Ok(CelValue::Bool(result)) => Ok(result),
            Ok(other) => Err(format!("the condition gave {other:?}, not true or false")),
            Err(err) => Err(format!("the condition failed: {err}")),
        }
    }
}

/// `==` that refuses to compare values of unlike types (numbers are one type, and
/// `null` compares with anything, so `payload.x == null` still reads as "absent").
fn strict_equals(left: &CelValue, right: &CelValue) -> Result<bool, ExecutionError> {
    use cel::objects::ValueType as T;
    let kind = |value: &CelValue| match value.type_of() {
        T::Int | T::UInt | T::Float => std::mem::discriminant(&T::Float),
        other => std::mem::discriminant(&other),
    };
    let null = std::mem::discriminant(&T::Null);
    let (l, r) = (kind(left), kind(right));
    if l != r && l != null && r != null {
        return Err(ExecutionError::function_error(
            "==",
            format!("cannot compare a {} with a {}", left.type_of(), right.type_of()),
        ));
    }
    Ok(left == right)
}

/// Depth and node count of an expression, walked without recursion.
struct Shape {
    depth: usize,
    nodes: usize,
}

impl Shape {
    fn of(root: &IdedExpr) -> Shape {
        let mut shape = Shape { depth: 0, nodes: 0 };
        let mut stack = vec![(root, 1)];
        while let Some((expr, depth)) = stack.pop() {
            shape.nodes += 1;
            shape.depth = shape.depth.max(depth);
            if shape.nodes > MAX_NODES || shape.depth > MAX_DEPTH {
                // Enough to refuse; the rest need not be counted.
                break;
            }
            stack.extend(children(expr).into_iter().map(|child| (child, depth + 1)));
        }
        shape
    }
}

fn children(expr: &IdedExpr) -> Vec<&IdedExpr> {
    match &expr.expr {
        Expr::Call(call) => call.target.as_deref().into_iter().chain(&call.args).collect(),
        Expr::Comprehension(c) => vec![&c.iter_range, &c.accu_init, &c.loop_cond, &c.loop_step, &c.result],
        Expr::List(list) => list.elements.iter().collect(),
        Expr::Map(map) => map
            .entries
            .iter()
            .flat_map(|entry| entry_children(&entry.expr))
            .collect(),
        Expr::Struct(s) => s.entries.iter().flat_map(|entry| entry_children(&entry.expr)).collect(),
        Expr::Select(select) => vec![&select.operand],
        Expr::Unspecified | Expr::Ident(_) | Expr::Literal(_) => Vec::new(),
    }
}

fn entry_children(entry: &EntryExpr) -> Vec<&IdedExpr> {
    match entry {
        EntryExpr::MapEntry(entry) => vec![&entry.key, &entry.value],
        EntryExpr::StructField(field) => vec![&field.value],
    }
}

fn children_mut(expr: &mut IdedExpr) -> Vec<&mut IdedExpr> {
    match &mut expr.expr {
        Expr::Call(call) => call.target.as_deref_mut().into_iter().chain(&mut call.args).collect(),
        Expr::Comprehension(c) => vec![
            &mut c.iter_range,
            &mut c.accu_init,
            &mut c.loop_cond,
            &mut c.loop_step,
            &mut c.result,
        ],
        Expr::List(list) => list.elements.iter_mut().collect(),
        Expr::Map(map) => map
            .entries
            .iter_mut()
            .flat_map(|entry| entry_children_mut(&mut entry.expr))
            .collect(),
        Expr::Struct(s) => s
            .entries
            .iter_mut()
            .flat_map(|entry| entry_children_mut(&mut entry.expr))
            .collect(),
        Expr::Select(select) => vec![&mut select.operand],
        Expr::Unspecified | Expr::Ident(_) | Expr::Literal(_) => Vec::new(),
    }
}

fn entry_children_mut(entry: &mut EntryExpr) -> Vec<&mut IdedExpr> {
    match entry {
        EntryExpr::MapEntry(entry) => vec![&mut entry.key, &mut entry.value],
        EntryExpr::StructField(field) => vec![&mut field.value],
    }
}

/// Rewrites `==` and `!=` into their strict forms, and makes every loop iteration spend
/// a step (see [`spend_per_iteration`]).
fn instrument(root: &mut IdedExpr) {
    let mut stack = vec![root];
    while let Some(expr) = stack.pop() {
        if let Expr::Call(call) = &mut expr.expr
            && call.target.is_none()
            && call.args.len() == 2
        {
            match call.func_name.as_str() {
                operators::EQUALS => call.func_name = STRICT_EQUALS.into(),
                operators::NOT_EQUALS => call.func_name = STRICT_NOT_EQUALS.into(),
                _ => {}
            }
        }
        if let Expr::Comprehension(comprehension) = &mut expr.expr {
            spend_per_iteration(comprehension);
        }
        stack.extend(children_mut(expr));
    }
}

/// Makes a loop spend a step per element, where a spent budget ends the loop at once.
/// The evaluator checks a loop's condition before each element and lets its error out
/// (an error in `all`'s or `exists`'s predicate is held back instead, and the loop would
/// run on), so the step wraps the condition. `map` and `filter` keep their shape, which
/// the evaluator runs specially (`acc + [e]`, `g ? acc + [e] : acc`, a literal
/// condition): there the step wraps the guard or the element, whose errors also end it.
fn spend_per_iteration(comprehension: &mut ComprehensionExpr) {
    let accu = comprehension.accu_var.clone();
    let is_accu = |e: &IdedExpr| matches!(&e.expr, Expr::Ident(name) if *name == accu);
    let appends = matches!(comprehension.loop_cond.expr, Expr::Literal(_)) && is_accu(&comprehension.result);
    let appended = |step: &IdedExpr| match &step.expr {
        Expr::Call(call) if call.func_name == operators::ADD && call.target.is_none() => {
            matches!(call.args.as_slice(), [lhs, rhs] if is_accu(lhs) && matches!(rhs.expr, Expr::List(_)))
        }
        _ => false,
    };
    let per_element = match &mut comprehension.loop_step.expr {
        Expr::Call(call)
            if appends
                && call.func_name == operators::CONDITIONAL
                && call.args.len() == 3
                && appended(&call.args[1])
                && is_accu(&call.args[2]) =>
        {
            call.args.first_mut()
        }
        Expr::Call(call) if appends && appended_call(call, &accu) => {
            match call.args.get_mut(1).map(|list| &mut list.expr) {
                Some(Expr::List(list)) => list.elements.first_mut(),
                _ => None,
            }
        }
        _ => None,
    };
    match per_element {
        Some(element) => wrap(element),
        None => wrap(&mut comprehension.loop_cond),
    }
}

fn appended_call(call: &CallExpr, accu: &str) -> bool {
    call.func_name == operators::ADD
        && call.target.is_none()
        && matches!(call.args.as_slice(), [lhs, rhs]
            if matches!(&lhs.expr, Expr::Ident(name) if name == accu) && matches!(rhs.expr, Expr::List(_)))
}

fn wrap(expr: &mut IdedExpr) {
    let inner = std::mem::take(expr);
    *expr = IdedExpr {
        id: inner.id,
        expr: Expr::Call(CallExpr {
            func_name: STEP.into(),
            target: None,
            args: vec![inner],
        }),
    };
}

/// Whether `name` is a comprehension variable (`all(x, …)`, `exists(x, …)`, `map(x, …)`):
/// those are bound by the macro, not read from the request.
fn bound_in_macro(source: &str, name: &str) -> bool {
    ["all", "exists", "exists_one", "map", "filter"]
        .iter()
        .any(|macro_name| {
            source.match_indices(&format!("{macro_name}(")).any(|(at, found)| {
                source[at + found.len()..]
                    .trim_start()
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.trim_start().starts_with(','))
            })
        })
}

/// Line and column (1-based) of the first whole-word occurrence of `word`.
fn position_of(source: &str, word: &str) -> Option<(u32, u32)> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    for (line_no, line) in source.lines().enumerate() {
        for (at, _) in line.match_indices(word) {
            let before = line[..at].chars().next_back();
            let after = line[at + word.len()..].chars().next();
            if !before.is_some_and(|c| is_ident(c) || c == '.') && !after.is_some_and(is_ident) {
                return Some((line_no as u32 + 1, line[..at].chars().count() as u32 + 1));
            }
        }
    }
    None
}

/// A problem with a policy, at the field it concerns (`match.condition`, `effect.ttl`),
/// with the position in that field where there is one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyProblem {
    pub field: String,
    pub message: String,
    /// Line and column (1-based) in the field's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<(u32, u32)>,
}

impl fmt::Display for PolicyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, column)) => write!(f, "{} (line {line}, column {column}): {}", self.field, self.message),
            None => write!(f, "{}: {}", self.field, self.message),
        }
    }
}

/// What matching looks at.
#[derive(Clone, Copy, Debug)]
pub struct RequestFacts<'a> {
    pub agent: &'a str,
    pub action: &'a str,
    pub resource: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub payload: &'a Value,
    pub context: Option<&'a Value>,
    pub on_behalf_of: Option<&'a str>,
    pub title: &'a str,
    pub reason: &'a str,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    fn evaluate(source: &str, payload: &Value) -> Result<bool, String> {
        let labels = BTreeMap::new();
        let facts = RequestFacts {
            agent: "bot",
            action: "db.export",
            resource: "orders",
            labels: &labels,
            payload,
            context: None,
            on_behalf_of: None,
            title: "t",
            reason: "r",
        };
        Condition::compile(source)
            .expect("compiles")
            .evaluate(&facts, &Arc::new(Budget::standard()))
    }

    #[test]
    fn a_long_chain_is_refused_at_compile_not_run() {
        // The shape that overflowed the stack: 1,400 chained `+`, 2.8 KB.
        let chain = format!("payload.n{} > 0", "+1".repeat(1400));
        assert!(chain.len() < MAX_SOURCE_BYTES);
        let refused = Condition::compile(&chain).expect_err("too deep");
        assert!(refused.message.contains("levels deep"), "{refused:?}");
        let wide = format!("payload.x in [{}]", vec!["1"; 1500].join(","));
        let refused = Condition::compile(&wide).expect_err("too many parts");
        assert!(refused.message.contains("parts"), "{refused:?}");
        let nested = format!("{}payload.x{}", "[".repeat(95), "]".repeat(95));
        assert!(Condition::compile(&nested).is_err());
    }

    #[test]
    fn reasonable_conditions_fit_the_bounds() {
        for source in [
            "payload.items.all(item, item.size < 10 && item.kind == 'x') && labels.env == 'prod'",
            "has(payload.rows) && context.ticket.startsWith('CHG-') && payload.rows > 1000",
            "payload.tables.exists(t, t in ['users', 'payments']) || action.startsWith('iam.')",
            &(0..40)
                .map(|i| format!("payload.f{i} == {i}"))
                .collect::<Vec<_>>()
                .join(" || "),
        ] {
            Condition::compile(source).unwrap_or_else(|err| panic!("{source}: {err:?}"));
        }
    }

    #[test]
    fn unlike_types_do_not_compare() {
        let list = json!({"table": ["users"]});
        let failed = evaluate("payload.table != 'users'", &list).expect_err("a list is not a string");
        assert!(failed.contains("cannot compare"), "{failed}");
        assert!(evaluate("payload.table == 'users'", &list).is_err());
        assert_eq!(
            evaluate("payload.table != 'users'", &json!({"table": "orders"})),
            Ok(true)
        );
        assert_eq!(
            evaluate("payload.table == 'users'", &json!({"table": "users"})),
            Ok(true)
        );
        assert_eq!(evaluate("payload.rows == 5", &json!({"rows": 5.0})), Ok(true));
        assert_eq!(evaluate("payload.x == null", &json!({"x": "set"})), Ok(false));
        assert_eq!(evaluate("payload.table == ['users']", &list), Ok(true));
    }

    #[test]
    fn loops_spend_the_budget_and_a_spent_budget_fails() {
        let items: Vec<Value> = (0..50_000).map(|i| json!({"size": i})).collect();
        let payload = json!({ "items": items });
        assert_eq!(evaluate("payload.items.exists(i, i.size == 49999)", &payload), Ok(true));
        assert_eq!(
            evaluate("payload.items.map(i, i.size).size() == 50000", &payload),
            Ok(true)
        );
        assert_eq!(
            evaluate("payload.items.filter(i, i.size > 10).size() > 0", &payload),
            Ok(true)
        );
        let nested = "payload.items.exists(a, payload.items.exists(b, a.size + b.size < 0))";
        let spent = evaluate(nested, &payload).expect_err("50,000² steps");
        assert!(spent.contains("ran out"), "{spent}");
        // `error || true` is true to CEL; a spent budget still fails.
        let absorbed = format!("{nested} || true");
        assert!(evaluate(&absorbed, &payload).is_err());
        let late = Budget::new(DEFAULT_STEPS, Some(Instant::now()));
        let labels = BTreeMap::new();
        let facts = RequestFacts {
            agent: "bot",
            action: "a",
            resource: "r",
            labels: &labels,
            payload: &payload,
            context: None,
            on_behalf_of: None,
            title: "t",
            reason: "r",
        };
        let condition = Condition::compile("payload.items.exists(i, i.size == 49999)").expect("compiles");
        assert!(
            condition.evaluate(&facts, &Arc::new(late)).is_err(),
            "past its deadline"
        );
    }
}

//! Property tests over the shipped workflows: random runs (random events, actors, inputs
//! and clock) never leave the states a definition defines; final states accept nothing;
//! and replaying a run's history records through the engine reproduces it, with a sealed
//! hash chain that verifies.

use std::collections::BTreeSet;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use grantflow_domain::audit::{GENESIS_HASH, HistoryRecord, verify_chain};
use grantflow_domain::calendar::WorkCalendar;
use grantflow_domain::engine::{
    Actor, Command, EngineError, Snapshot, TransitionPlan, initial_schedule, plan_transition,
};
use grantflow_domain::input::check_input;
use grantflow_domain::model::{FieldType, InputFieldDef, TransitionDef, WorkflowDefinition};
use grantflow_domain::{CompiledWorkflow, SCHEDULER_ROLE};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use serde_json::{Value, json};

const SHIPPED: [&str; 3] = ["funded-project", "demand-collection", "change-request"];

fn load(name: &str) -> CompiledWorkflow {
    let path = format!("{}/../../workflows/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    grantflow_domain::load_str(&path, &text)
        .workflow
        .unwrap_or_else(|| panic!("{name} does not load"))
}

// ---------------------------------------------------------------- plausible inputs

/// A small deterministic source of choices, from the proptest-generated salt of a step.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        // SplitMix64.
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn file_ref(d: &mut Dice) -> Value {
    let sha: String = (0..64)
        .map(|_| char::from_digit(d.below(16) as u32, 16).unwrap())
        .collect();
    json!({ "name": format!("材料{}.pdf", d.below(100)), "sha256": sha, "size": 1 + d.below(10_000_000) })
}

/// A value of the input's effective type (its own settings over its field's) that the
/// engine accepts.
fn value_for(def: &WorkflowDefinition, input: &InputFieldDef, d: &mut Dice) -> Value {
    let field = def.fields.get(&input.name);
    let ty = input.ty.or(field.map(|f| f.ty)).unwrap_or(FieldType::Text);
    let options = if input.options.is_empty() {
        field.map(|f| f.options.clone()).unwrap_or_default()
    } else {
        input.options.clone()
    };
    let max_length = input.max_length.or(field.and_then(|f| f.max_length));
    let min = input.min.or(field.and_then(|f| f.min));
    let max = input.max.or(field.and_then(|f| f.max));
    match ty {
        FieldType::Text => {
            let words = ["知识产权", "专利导航", "培训", "服务", "report", "2024"];
            let n = 1 + d.below(4) as usize;
            let mut text: String = (0..n)
                .map(|_| words[d.below(words.len() as u64) as usize])
                .collect::<Vec<_>>()
                .join(" ");
            if let Some(max) = max_length {
                text = text.chars().take(max as usize).collect();
            }
            json!(text)
        }
        FieldType::Integer => {
            let lo = min.unwrap_or(0);
            let hi = max.unwrap_or(lo + 100).max(lo);
            json!(lo + d.below((hi - lo + 1) as u64) as i64)
        }
        FieldType::Money => {
            let lo = min.unwrap_or(0);
            let hi = max.unwrap_or(1_000_000).max(lo);
            let yuan = lo + d.below((hi - lo) as u64 + 1) as i64;
            let fen = if yuan < hi { d.below(100) } else { 0 };
            json!(format!("{yuan}.{fen:02}"))
        }
        FieldType::Date => json!(format!(
            "{}-{:02}-{:02}",
            2024 + d.below(3),
            1 + d.below(12),
            1 + d.below(28)
        )),
        FieldType::Boolean => json!(d.chance(85)),
        FieldType::Enum => json!(options[d.below(options.len() as u64) as usize]),
        FieldType::Indicators => {
            let mut list = vec![
                json!({
                    "name": "培训人次",
                    "category": "output_quantity",
                    "unit": "人次",
                    "target": 10 + d.below(500),
                }),
                json!({
                    "name": "受益企业",
                    "category": "effect_economic",
                    "unit": "家",
                    "target": 1 + d.below(50),
                    "target_year": 2025,
                }),
            ];
            if d.chance(50) {
                list.push(json!({ "name": "满意度", "category": "satisfaction", "target": "较高", "direction": "qualitative" }));
            }
            Value::Array(list)
        }
        FieldType::File => file_ref(d),
        FieldType::Files => Value::Array((0..1 + d.below(3)).map(|_| file_ref(d)).collect()),
        FieldType::Tasks => json!([{
            "focus": "知识产权保护", "task": "开展培训", "deliverable_form": "培训记录",
            "department": "项目组", "due": "2024-06-30", "indicators": [],
        }]),
        FieldType::TaskProgress => {
            json!([{ "task": 1, "status": "in_progress", "percent": d.below(101) }])
        }
        FieldType::ReportSchedule => {
            json!(["quarterly", "monthly", "half_yearly"][d.below(3) as usize])
        }
    }
}

/// Input for a transition: every required field, some optional ones.
fn input_for(def: &WorkflowDefinition, t: &TransitionDef, d: &mut Dice) -> Value {
    let mut out = serde_json::Map::new();
    for input in &t.input {
        if input.required || d.chance(50) {
            out.insert(input.name.clone(), value_for(def, input, d));
        }
    }
    Value::Object(out)
}

#[test]
fn generated_inputs_are_accepted_by_every_transition() {
    for name in SHIPPED {
        let wf = load(name);
        for t in &wf.def.transitions {
            for salt in 0..50 {
                let input = input_for(&wf.def, t, &mut Dice(salt));
                assert!(
                    check_input(&wf.def, &t.input, &input).is_ok(),
                    "{name} {}: {input} is refused: {:?}",
                    t.event,
                    check_input(&wf.def, &t.input, &input)
                );
            }
        }
    }
}

// ---------------------------------------------------------------- random runs

#[derive(Debug, Clone)]
struct Step {
    /// Which event: one leaving the current state most of the time.
    event: u16,
    /// Which actor: one allowed to fire the event most of the time.
    role: u16,
    /// How long after the previous step.
    minutes: u32,
    salt: u64,
    with_reason: bool,
}

fn step() -> impl Strategy<Value = Step> {
    (
        any::<u16>(),
        any::<u16>(),
        0u32..(3 * 24 * 60),
        any::<u64>(),
        prop::bool::weighted(0.9),
    )
        .prop_map(|(event, role, minutes, salt, with_reason)| Step {
            event,
            role,
            minutes,
            salt,
            with_reason,
        })
}

#[derive(Debug, Clone)]
struct Scenario {
    start_days: u32,
    /// Days from the start to the closing date of calls.
    closing_in: u32,
    /// The aggregated review result guards see: none, failed, too few experts, passed.
    review: u8,
    prefill: bool,
    steps: Vec<Step>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        0u32..700,
        0u32..40,
        0u8..6,
        any::<bool>(),
        prop::collection::vec(step(), 1..90),
    )
        .prop_map(
            |(start_days, closing_in, review, prefill, steps)| Scenario {
                start_days,
                closing_in,
                review,
                prefill,
                steps,
            },
        )
}

fn actor_with(role: &str) -> Actor {
    if role == SCHEDULER_ROLE {
        return Actor::scheduler();
    }
    Actor {
        id: format!("{role}-7"),
        roles: vec![role.to_string()],
        org: None,
    }
}

fn apply(snapshot: &Snapshot, plan: &TransitionPlan) -> Snapshot {
    Snapshot {
        state: plan.to.clone(),
        data: plan.data.clone(),
        version: plan.new_version,
        due_at: plan.deadline.map(|d| d.due_at),
        review: snapshot.review.clone(),
        budget: snapshot.budget.clone(),
    }
}

fn record(plan: &TransitionPlan, prev: &str) -> HistoryRecord {
    HistoryRecord {
        instance_id: "prop-1".into(),
        seq: plan.new_version,
        at: plan.at,
        actor_id: plan.actor.id.clone(),
        actor_roles: plan.actor.roles.clone(),
        event: plan.event.clone(),
        from_state: plan.from.clone(),
        to_state: plan.to.clone(),
        input: plan.input.clone(),
        reason: plan.reason.clone(),
        data_hash: None,
        prev_hash: String::new(),
        hash: String::new(),
    }
    .seal(prev)
}

fn all_roles(def: &WorkflowDefinition) -> Vec<String> {
    def.roles
        .iter()
        .map(|r| r.id.clone())
        .chain([SCHEDULER_ROLE.to_string()])
        .collect()
}

fn all_events(def: &WorkflowDefinition) -> Vec<String> {
    let set: BTreeSet<String> = def.transitions.iter().map(|t| t.event.clone()).collect();
    set.into_iter().collect()
}

/// The start of a run: the initial state, data a new instance is created with, and the
/// initial deadline.
fn start(wf: &CompiledWorkflow, sc: &Scenario, now: DateTime<Utc>, cal: &WorkCalendar) -> Snapshot {
    let closing =
        grantflow_domain::calendar::local_date(now) + Duration::days(sc.closing_in.into());
    let mut data = json!({
        "call_id": "GDIP-CALL", "closing_date": closing.to_string(),
        "forward_by": closing.to_string(), "applicant_kind": "unit", "part": "retained_provincial"
    });
    if sc.prefill {
        // A change request created from a prepared draft.
        data["change_type"] = json!("schedule");
        data["change_summary"] = json!("延期");
    }
    let mut snapshot = Snapshot::initial(wf, data);
    snapshot.review = match sc.review {
        0 => Value::Null,
        1 => json!({ "total": 41.5, "count": 5 }),
        2 => json!({ "total": 90.0, "count": 2 }),
        _ => json!({ "total": 75.0, "count": 3 }),
    };
    // The budget facts the store keeps: runs with review scores also have a budget line,
    // so that approval (which needs one) is reachable.
    snapshot.budget = match sc.review {
        0 => Value::Null,
        _ => {
            json!({ "lines": 1, "total": "300000.00", "spent": "0.00", "remaining": "300000.00", "execution_rate": 0.0 })
        }
    };
    let (deadline, _) = initial_schedule(wf, &snapshot, now, cal);
    snapshot.due_at = deadline.map(|d| d.due_at);
    snapshot
}

/// Every event, fired by anyone, on a final state is refused with ALREADY_FINAL.
fn assert_accepts_nothing(
    wf: &CompiledWorkflow,
    snapshot: &Snapshot,
    now: DateTime<Utc>,
    cal: &WorkCalendar,
) -> Result<(), TestCaseError> {
    let mut events = all_events(&wf.def);
    events.push("no_such_event".into());
    for event in &events {
        for role in all_roles(&wf.def) {
            let command = Command {
                event: event.clone(),
                input: Value::Null,
                reason: Some("理由".into()),
            };
            let got = plan_transition(wf, snapshot, &actor_with(&role), &command, now, cal);
            prop_assert_eq!(
                got.err(),
                Some(EngineError::AlreadyFinal {
                    state: snapshot.state.clone()
                })
            );
        }
    }
    Ok(())
}

/// One random run; returns the states it visited.
fn run(wf: &CompiledWorkflow, sc: &Scenario) -> Result<BTreeSet<String>, TestCaseError> {
    let def = &wf.def;
    let cal = WorkCalendar::builtin();
    let roles = all_roles(def);
    let events = all_events(def);
    let mut now: DateTime<Utc> = "2024-01-02T01:00:00Z".parse::<DateTime<Utc>>().unwrap()
        + Duration::days(sc.start_days.into());
    let initial = start(wf, sc, now, &cal);
    let mut snapshot = initial.clone();
    let mut history: Vec<HistoryRecord> = Vec::new();
    let mut visited = BTreeSet::from([snapshot.state.clone()]);

    for step in &sc.steps {
        now += Duration::minutes(step.minutes.into());
        let mut dice = Dice(step.salt);
        let state = def.state(&snapshot.state);
        prop_assert!(state.is_some(), "in undefined state {}", snapshot.state);
        let state = state.unwrap();
        if state.is_final {
            assert_accepts_nothing(wf, &snapshot, now, &cal)?;
            break;
        }
        // Most steps fire an event leaving the current state, by someone allowed to; those
        // that end the run (into a final state) less often, so that runs get deep.
        let leaving: Vec<&TransitionDef> = def
            .transitions_from(&state.id)
            .flat_map(|(_, t)| {
                let closes = def.state(&t.to).is_some_and(|s| s.is_final);
                std::iter::repeat_n(t, if closes { 1 } else { 4 })
            })
            .collect();
        let pick = step.event as usize % (leaving.len() + 1);
        let (event, transition) = match leaving.get(pick) {
            Some(t) => (t.event.clone(), Some(*t)),
            None if step.event % 4 != 0 => {
                let e = &events[dice.below(events.len() as u64) as usize];
                (e.clone(), def.transitions.iter().find(|t| &t.event == e))
            }
            None => ("no_such_event".to_string(), None),
        };
        let role = match transition {
            Some(t) if step.role % 8 != 0 => t.roles[step.role as usize % t.roles.len()].clone(),
            _ => roles[step.role as usize % roles.len()].clone(),
        };
        let input = transition.map_or(Value::Null, |t| input_for(def, t, &mut dice));
        let command = Command {
            event,
            input,
            reason: step.with_reason.then(|| "依据评审意见".to_string()),
        };
        match plan_transition(wf, &snapshot, &actor_with(&role), &command, now, &cal) {
            Ok(plan) => {
                prop_assert_eq!(&plan.from, &snapshot.state);
                let target = def.state(&plan.to);
                prop_assert!(target.is_some(), "moved to undefined state {}", plan.to);
                prop_assert_eq!(plan.is_final, target.unwrap().is_final);
                prop_assert_eq!(plan.new_version, snapshot.version + 1);
                prop_assert!(plan.data.is_object());
                let prev = history
                    .last()
                    .map_or(GENESIS_HASH.to_string(), |r| r.hash.clone());
                history.push(record(&plan, &prev));
                snapshot = apply(&snapshot, &plan);
                visited.insert(snapshot.state.clone());
            }
            Err(e) => {
                prop_assert!(
                    !matches!(
                        e,
                        EngineError::UndefinedState { .. } | EngineError::AlreadyFinal { .. }
                    ),
                    "{e:?} in {}",
                    snapshot.state
                );
            }
        }
    }
    if def.state(&snapshot.state).is_some_and(|s| s.is_final) {
        assert_accepts_nothing(wf, &snapshot, now + Duration::days(1), &cal)?;
    }

    // The history verifies, and replaying it from the initial snapshot reproduces the run.
    prop_assert_eq!(verify_chain(&history), Ok(()));
    let mut replay = initial;
    for r in &history {
        let actor = Actor {
            id: r.actor_id.clone(),
            roles: r.actor_roles.clone(),
            org: None,
        };
        let command = Command {
            event: r.event.clone(),
            input: r.input.clone(),
            reason: r.reason.clone(),
        };
        let plan = plan_transition(wf, &replay, &actor, &command, r.at, &cal);
        prop_assert!(
            plan.is_ok(),
            "record {} does not replay: {:?}",
            r.seq,
            plan.err()
        );
        let plan = plan.unwrap();
        prop_assert_eq!(&plan.from, &r.from_state);
        prop_assert_eq!(&plan.to, &r.to_state);
        prop_assert_eq!(&plan.input, &r.input, "normalised input is stable");
        prop_assert_eq!(record(&plan, &r.prev_hash).hash, r.hash.clone());
        replay = apply(&replay, &plan);
    }
    prop_assert_eq!(&replay.state, &snapshot.state);
    prop_assert_eq!(&replay.data, &snapshot.data);
    prop_assert_eq!(replay.version, snapshot.version);
    prop_assert_eq!(replay.due_at, snapshot.due_at);
    Ok(visited)
}

/// Random runs of a workflow; the states they visited. With a seed the runs are the same
/// every time (to check how deep they get); without, new ones each time (more coverage
/// of the properties over many CI runs).
fn explore(name: &str, cases: u32, seed: Option<u64>) -> BTreeSet<String> {
    let wf = load(name);
    let visited = Mutex::new(BTreeSet::new());
    let mut config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    if let Some(seed) = seed {
        config.rng_seed = RngSeed::Fixed(seed);
    }
    let mut runner = TestRunner::new(config);
    let result = runner.run(&scenario(), |sc| {
        let states = run(&wf, &sc)?;
        visited.lock().unwrap().extend(states);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    visited.into_inner().unwrap()
}

const SEED: u64 = 20_240_603;

#[test]
fn funded_project_random_runs() {
    explore("funded-project", 64, None);
    let visited = explore("funded-project", 256, Some(SEED));
    // The generator gets deep: most states are reached across the runs.
    let wf = load("funded-project");
    let all = wf.def.states.len();
    assert!(
        visited.len() * 10 >= all * 7,
        "only {} of {all} states reached: {visited:?}",
        visited.len()
    );
    for deep in [
        "expert_review",
        "publicity",
        "execution",
        "acceptance_review",
        "archived",
    ] {
        assert!(visited.contains(deep), "{deep} never reached: {visited:?}");
    }
}

#[test]
fn demand_collection_random_runs() {
    explore("demand-collection", 64, None);
    let visited = explore("demand-collection", 256, Some(SEED));
    for state in [
        "province_review",
        "catalogued",
        "returned",
        "rejected_duplicate",
    ] {
        assert!(
            visited.contains(state),
            "{state} never reached: {visited:?}"
        );
    }
}

#[test]
fn change_request_random_runs() {
    explore("change-request", 64, None);
    let visited = explore("change-request", 256, Some(SEED));
    for state in ["review", "approved", "rejected", "withdrawn"] {
        assert!(
            visited.contains(state),
            "{state} never reached: {visited:?}"
        );
    }
}

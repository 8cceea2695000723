//! The state graph: every state reachable and able to finish, and no two transitions
//! out of a state that could both fire for the same event.

use super::*;

pub(super) fn check_graph(def: &WorkflowDefinition, r: &mut Reporter<'_>) {
    let Some(initial) = def.initial_state() else {
        return;
    };
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for t in &def.transitions {
        for from in t.from.as_slice() {
            edges
                .entry(from.as_str())
                .or_default()
                .insert(t.to.as_str());
        }
    }
    // Reachable from the initial state.
    let mut reached = BTreeSet::from([initial.id.as_str()]);
    let mut queue = VecDeque::from([initial.id.as_str()]);
    while let Some(s) = queue.pop_front() {
        for next in edges.get(s).into_iter().flatten() {
            if reached.insert(next) {
                queue.push_back(next);
            }
        }
    }
    // States from which a final state can be reached (reverse search).
    let mut can_finish: BTreeSet<&str> = def
        .states
        .iter()
        .filter(|s| s.is_final)
        .map(|s| s.id.as_str())
        .collect();
    loop {
        let before = can_finish.len();
        for (from, tos) in &edges {
            if tos.iter().any(|t| can_finish.contains(t)) {
                can_finish.insert(from);
            }
        }
        if can_finish.len() == before {
            break;
        }
    }
    for (i, s) in def.states.iter().enumerate() {
        if !reached.contains(s.id.as_str()) {
            r.error(
                codes::UNREACHABLE,
                &path!("states", i, "id"),
                format!(
                    "state `{}` cannot be reached from the initial state `{}`",
                    s.id, initial.id
                ),
                "add a transition into it, or remove it",
            );
        }
        if s.is_final {
            continue;
        }
        if !edges.contains_key(s.id.as_str()) {
            r.error(
                codes::DEAD_END,
                &path!("states", i, "id"),
                format!("state `{}` is not final but has no way out", s.id),
                "add a transition from it, or mark it `final = true`",
            );
        } else if !can_finish.contains(s.id.as_str()) {
            r.error(
                codes::DEAD_END,
                &path!("states", i, "id"),
                format!("no final state can be reached from state `{}`", s.id),
                "add a transition that eventually leads to a final state",
            );
        }
    }
}

/// Two transitions with the same event from one state must have guards that exclude
/// each other; otherwise the file order silently decides.
pub(super) fn check_ambiguity(def: &WorkflowDefinition, r: &mut Reporter<'_>) {
    for s in &def.states {
        let mut by_event: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, t) in def.transitions_from(&s.id) {
            by_event.entry(t.event.as_str()).or_default().push(i);
        }
        for (event, idx) in by_event {
            for (a_pos, &a) in idx.iter().enumerate() {
                for &b in &idx[a_pos + 1..] {
                    if !guards_exclusive(&def.transitions[a], &def.transitions[b]) {
                        r.warning(
                            codes::AMBIGUOUS_EVENT,
                            &path!("transitions", b, "event"),
                            format!(
                                "event `{event}` from state `{}` is handled by transitions[{a}] and transitions[{b}] whose guards may both hold; the first in the file wins",
                                s.id
                            ),
                            "give both guards that exclude each other, e.g. `input.outcome == 'pass'` and `input.outcome == 'fail'`, or `x` and `!(x)`",
                        );
                    }
                }
            }
        }
    }
}

fn guards_exclusive(a: &TransitionDef, b: &TransitionDef) -> bool {
    let (Some(ga), Some(gb)) = (&a.guard, &b.guard) else {
        return false;
    };
    let (Ok(ea), Ok(eb)) = (Expression::compile(ga), Expression::compile(gb)) else {
        // Syntax errors are reported elsewhere.
        return true;
    };
    // `g` and `!(g)`, whatever `g` is (a conjunction included).
    if ea.negated().as_deref() == Some(eb.shape().as_str())
        || eb.negated().as_deref() == Some(ea.shape().as_str())
    {
        return true;
    }
    // `x` and `!x`, `v == 'a'` and `v == 'b'`, and conjunctions containing such a pair
    // (`r && x` and `r && !x`) can never both hold.
    let (ca, cb) = (ea.conjuncts(), eb.conjuncts());
    ca.iter().any(|x| cb.iter().any(|y| x.contradicts(y)))
}

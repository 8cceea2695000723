//! Every rule a workflow file must satisfy. All problems are reported at once, each with
//! a stable code, the place in the file, a message and a hint on how to fix it.
//!
//! Every rule reads the same definition and reports through the same `Reporter`, in the
//! order a reader of the workflow file meets them; the graph rules (`graph.rs`) and the
//! review rounds (`reviews.rs`) sit beside.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::diagnostic::{Diagnostic, Severity, codes};
use crate::guard::Expression;
use crate::model::*;
use crate::path;
use crate::source::{DocPath, SourceMap};
use crate::{SCHEDULER_ROLE, Span};

mod graph;
mod reviews;

use graph::{check_ambiguity, check_graph};
use reviews::check_reviews;

/// Collects diagnostics with their locations.
pub(crate) struct Reporter<'a> {
    pub file: &'a str,
    pub map: &'a SourceMap<'a>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Reporter<'_> {
    pub fn push(
        &mut self,
        severity: Severity,
        code: &'static str,
        at: &DocPath,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        let (line, column) = self.map.locate(at);
        self.diagnostics.push(Diagnostic {
            code,
            severity,
            file: self.file.to_string(),
            line,
            column,
            path: at.to_string(),
            message: message.into(),
            hint: hint.into(),
        });
    }

    pub fn error(
        &mut self,
        code: &'static str,
        at: &DocPath,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.push(Severity::Error, code, at, message, hint);
    }

    pub fn warning(
        &mut self,
        code: &'static str,
        at: &DocPath,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.push(Severity::Warning, code, at, message, hint);
    }
}

fn is_workflow_id(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn list(items: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let v: Vec<String> = items
        .into_iter()
        .map(|s| format!("`{}`", s.as_ref()))
        .collect();
    if v.is_empty() {
        "(none declared)".into()
    } else {
        v.join(", ")
    }
}

/// The closest known name, to suggest in hints.
fn closest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn unknown_hint(kind: &str, name: &str, known: &[&str]) -> String {
    match closest(name, known.iter().copied()) {
        Some(k) => format!("did you mean `{k}`? Declared {kind}s: {}", list(known)),
        None => format!("declare it first; declared {kind}s: {}", list(known)),
    }
}

/// Run every rule over a parsed definition.
pub(crate) fn validate(def: &WorkflowDefinition, r: &mut Reporter<'_>) {
    let role_ids: Vec<&str> = def
        .roles
        .iter()
        .map(|x| x.id.as_str())
        .chain([SCHEDULER_ROLE])
        .collect();
    let stage_ids: Vec<&str> = def.stages.iter().map(|x| x.id.as_str()).collect();
    let state_ids: Vec<&str> = def.states.iter().map(|x| x.id.as_str()).collect();
    let field_ids: Vec<&str> = def.fields.keys().map(String::as_str).collect();
    let review_ids: Vec<&str> = def.reviews.keys().map(String::as_str).collect();
    let events: BTreeSet<&str> = def.transitions.iter().map(|t| t.event.as_str()).collect();

    if !is_workflow_id(&def.id) {
        r.error(
            codes::BAD_ID,
            &path!("id"),
            format!("workflow id `{}` is not a valid identifier", def.id),
            "use lowercase letters, digits and `-`, starting with a letter, e.g. `funded-project`",
        );
    }
    if def.version == 0 {
        r.error(
            codes::SHAPE,
            &path!("version"),
            "version must be 1 or more",
            "start at `version = 1` and increase it whenever a released file changes",
        );
    }
    if chrono::NaiveTime::parse_from_str(&def.remind_at, "%H:%M").is_err() {
        r.error(
            codes::BAD_TIME,
            &path!("remind_at"),
            format!("`{}` is not a time of day", def.remind_at),
            "write 24-hour `HH:MM` in Asia/Shanghai time, e.g. `09:00`",
        );
    }

    check_ids(r, &path!("roles"), def.roles.iter().map(|x| x.id.as_str()));
    check_ids(
        r,
        &path!("stages"),
        def.stages.iter().map(|x| x.id.as_str()),
    );
    check_ids(
        r,
        &path!("states"),
        def.states.iter().map(|x| x.id.as_str()),
    );
    for (i, role) in def.roles.iter().enumerate() {
        if role.id == SCHEDULER_ROLE {
            r.error(
                codes::DUPLICATE_ID,
                &path!("roles", i, "id"),
                "`scheduler` is a built-in role and cannot be declared",
                "remove this role; list `scheduler` in a transition's `roles` to let timeouts fire it",
            );
        }
    }
    for name in def.fields.keys() {
        if !is_name(name) {
            r.error(
                codes::BAD_ID,
                &path!("fields", name),
                format!("field name `{name}` is not a valid identifier"),
                "use lowercase letters, digits and `_`, starting with a letter",
            );
        }
    }
    for (name, f) in &def.fields {
        if !f.require_groups.is_empty() && f.ty != FieldType::Indicators {
            r.error(
                codes::FIELD_TYPE,
                &path!("fields", name, "require_groups"),
                format!("field `{name}` is not of type `indicators` but requires indicator groups"),
                "remove `require_groups`, or make the field `type = \"indicators\"`",
            );
        }
        if let Some(link) = &f.links_to {
            let wanted = match f.ty {
                FieldType::Tasks => Some(FieldType::Indicators),
                FieldType::TaskProgress => Some(FieldType::Tasks),
                _ => None,
            };
            let linked = def.fields.get(link).map(|l| l.ty);
            match (wanted, linked) {
                (None, _) => r.error(
                    codes::FIELD_TYPE,
                    &path!("fields", name, "links_to"),
                    format!("field `{name}` is {:?}; only `tasks` and `task_progress` fields link to another", f.ty),
                    "remove `links_to`",
                ),
                (Some(_), None) => r.error(
                    codes::UNKNOWN_FIELD,
                    &path!("fields", name, "links_to"),
                    format!("field `{name}` links to unknown field `{link}`"),
                    unknown_hint("field", link, &field_ids),
                ),
                (Some(w), Some(l)) if w != l => r.error(
                    codes::FIELD_TYPE,
                    &path!("fields", name, "links_to"),
                    format!("field `{name}` links to `{link}`, which is {l:?}, not {w:?}"),
                    "a `tasks` field links to an `indicators` field, a `task_progress` field to a `tasks` field",
                ),
                _ => {}
            }
        }
        if f.ty == FieldType::Enum && f.options.is_empty() {
            r.error(
                codes::FIELD_TYPE,
                &path!("fields", name, "type"),
                format!("enum field `{name}` has no options"),
                "add `options = [\"…\", \"…\"]`",
            );
        }
    }

    // States.
    let initial: Vec<usize> = def
        .states
        .iter()
        .enumerate()
        .filter(|(_, s)| s.initial)
        .map(|(i, _)| i)
        .collect();
    if initial.is_empty() && !def.states.is_empty() {
        r.error(
            codes::NO_INITIAL,
            &path!("states"),
            "no state is marked `initial = true`",
            "mark the state where new instances start with `initial = true`",
        );
    }
    for &i in initial.iter().skip(1) {
        r.error(
            codes::MANY_INITIAL,
            &path!("states", i, "initial"),
            format!(
                "state `{}` is initial, but `{}` already is",
                def.states[i].id, def.states[initial[0]].id
            ),
            "exactly one state may be initial; remove `initial = true` from all but one",
        );
    }
    for (i, s) in def.states.iter().enumerate() {
        if !stage_ids.contains(&s.stage.as_str()) {
            r.error(
                codes::UNKNOWN_STAGE,
                &path!("states", i, "stage"),
                format!("state `{}` is in unknown stage `{}`", s.id, s.stage),
                unknown_hint("stage", &s.stage, &stage_ids),
            );
        }
        for (j, f) in s.requires.iter().enumerate() {
            if !def.fields.contains_key(f) {
                r.error(
                    codes::UNKNOWN_FIELD,
                    &path!("states", i, "requires", j),
                    format!("state `{}` requires unknown field `{f}`", s.id),
                    unknown_hint("field", f, &field_ids),
                );
            }
        }
        for (j, role) in s.assignees.iter().enumerate() {
            if !role_ids.contains(&role.as_str()) {
                r.error(
                    codes::UNKNOWN_ROLE,
                    &path!("states", i, "assignees", j),
                    format!("state `{}` is assigned to unknown role `{role}`", s.id),
                    unknown_hint("role", role, &role_ids),
                );
            }
        }
        if let Some(d) = &s.deadline {
            check_deadline(def, r, i, s, d, &role_ids);
        }
        for (j, cp) in s.checkpoints.iter().enumerate() {
            check_checkpoint(
                def,
                r,
                &path!("states", i, "checkpoints", j),
                s,
                cp,
                &role_ids,
            );
        }
    }

    // Transitions.
    for (i, t) in def.transitions.iter().enumerate() {
        let at = path!("transitions", i);
        if !is_name(&t.event) {
            r.error(
                codes::BAD_ID,
                &at.key("event"),
                format!("event name `{}` is not a valid identifier", t.event),
                "use lowercase letters, digits and `_`, e.g. `submit` or `return_for_correction`",
            );
        }
        for (j, from) in t.from.as_slice().iter().enumerate() {
            let p = match t.from {
                OneOrMany::One(_) => at.key("from"),
                OneOrMany::Many(_) => at.key("from").index(j),
            };
            match def.state(from) {
                None => r.error(
                    codes::UNKNOWN_STATE,
                    &p,
                    format!("transition `{}` leaves unknown state `{from}`", t.event),
                    unknown_hint("state", from, &state_ids),
                ),
                Some(s) if s.is_final => r.error(
                    codes::FINAL_HAS_EXIT,
                    &p,
                    format!(
                        "transition `{}` leaves final state `{from}`; final states accept nothing",
                        t.event
                    ),
                    format!(
                        "remove `{from}` from `from`, or drop `final = true` from state `{from}`"
                    ),
                ),
                Some(_) => {}
            }
        }
        if def.state(&t.to).is_none() {
            r.error(
                codes::UNKNOWN_STATE,
                &at.key("to"),
                format!("transition `{}` goes to unknown state `{}`", t.event, t.to),
                unknown_hint("state", &t.to, &state_ids),
            );
        }
        if t.roles.is_empty() {
            r.error(
                codes::UNKNOWN_ROLE,
                &at.key("roles"),
                format!("transition `{}` allows no role", t.event),
                "list the roles that may fire it, e.g. `roles = [\"manager\"]`",
            );
        }
        for (j, role) in t.roles.iter().enumerate() {
            if !role_ids.contains(&role.as_str()) {
                r.error(
                    codes::UNKNOWN_ROLE,
                    &at.key("roles").index(j),
                    format!("transition `{}` allows unknown role `{role}`", t.event),
                    unknown_hint("role", role, &role_ids),
                );
            }
        }
        let mut input_names = BTreeSet::new();
        for (j, input) in t.input.iter().enumerate() {
            let ip = at.key("input").index(j);
            if !input_names.insert(input.name.as_str()) {
                r.error(
                    codes::DUPLICATE_ID,
                    &ip.key("name"),
                    format!("input `{}` is listed twice", input.name),
                    "remove the duplicate",
                );
            }
            match (def.fields.get(&input.name), input.transient) {
                (None, false) => r.error(
                    codes::UNKNOWN_FIELD,
                    &ip.key("name"),
                    format!(
                        "input `{}` of `{}` is not a declared field",
                        input.name, t.event
                    ),
                    format!(
                        "declare it under [fields.{}], or mark the input `transient = true` to keep it only in the history; {}",
                        input.name,
                        unknown_hint("field", &input.name, &field_ids)
                    ),
                ),
                (Some(f), false) => {
                    if let Some(ty) = input.ty
                        && ty != f.ty
                    {
                        r.error(
                            codes::FIELD_TYPE,
                            &ip.key("type"),
                            format!(
                                "input `{}` has type {ty:?} but field `{}` is {:?}",
                                input.name, input.name, f.ty
                            ),
                            "drop `type` from the input to use the field's type",
                        );
                    }
                }
                (_, true) => {
                    if input.ty.is_none() {
                        r.error(
                            codes::FIELD_TYPE,
                            &ip,
                            format!("transient input `{}` has no type", input.name),
                            "add `type = \"text\"` (or integer, money, date, boolean, enum, indicators, file, files)",
                        );
                    }
                }
            }
            let ty = input.ty.or(def.fields.get(&input.name).map(|f| f.ty));
            let options_empty = input.options.is_empty()
                && def
                    .fields
                    .get(&input.name)
                    .is_none_or(|f| f.options.is_empty());
            if ty == Some(FieldType::Enum) && options_empty {
                r.error(
                    codes::FIELD_TYPE,
                    &ip,
                    format!("enum input `{}` has no options", input.name),
                    "add `options = [\"…\"]` to the input or to the field",
                );
            }
        }
        if let Some(guard) = &t.guard {
            check_expression(r, def, &at.key("guard"), guard, &input_names, &t.event);
        }
        for (j, effect) in t.effects.iter().enumerate() {
            let ep = at.key("effects").index(j);
            check_effect(
                def,
                r,
                &ep,
                effect,
                &input_names,
                t,
                &role_ids,
                &review_ids,
                &events,
            );
        }
    }

    check_graph(def, r);
    check_ambiguity(def, r);
    check_reviews(def, r, &state_ids, &events);
}

/// Ids of the list at `section` (e.g. `reviews.<id>.criteria`): well-formed and unique.
fn check_ids<'a>(r: &mut Reporter<'_>, section: &DocPath, ids: impl Iterator<Item = &'a str>) {
    let mut seen = BTreeMap::new();
    for (i, id) in ids.enumerate() {
        if !is_name(id) {
            r.error(
                codes::BAD_ID,
                &section.index(i).key("id"),
                format!("`{id}` is not a valid identifier"),
                "use lowercase letters, digits and `_`, starting with a letter",
            );
        }
        if let Some(first) = seen.insert(id, i) {
            r.error(
                codes::DUPLICATE_ID,
                &section.index(i).key("id"),
                format!("`{id}` is declared twice in {section} (first at {section}[{first}])"),
                "ids must be unique; rename or remove one",
            );
        }
    }
}

fn check_deadline(
    def: &WorkflowDefinition,
    r: &mut Reporter<'_>,
    i: usize,
    s: &StateDef,
    d: &DeadlineDef,
    role_ids: &[&str],
) {
    let at = path!("states", i, "deadline");
    match (&d.after, &d.date_field) {
        (None, None) | (Some(_), Some(_)) => r.error(
            codes::DEADLINE_SPEC,
            &at,
            format!(
                "the deadline of state `{}` needs exactly one of `after` and `date_field`",
                s.id
            ),
            "write `after = \"5wd\"` for a duration, or `date_field = \"closing_date\"` for a date in the data",
        ),
        _ => {}
    }
    if let Some(after) = d.after
        && after.is_zero()
    {
        r.error(
            codes::BAD_DURATION,
            &at.key("after"),
            format!("the deadline of state `{}` is zero", s.id),
            "give a positive duration such as `7d`",
        );
    }
    if let Some(field) = &d.after_field {
        if d.after.is_none() {
            r.error(
                codes::DEADLINE_SPEC,
                &at.key("after_field"),
                format!("`after_field` of state `{}` needs `after`", s.id),
                "write `after = \"7d\"`: its unit applies to the field's count, and it is the default while the field is absent",
            );
        }
        match def.fields.get(field) {
            None => r.error(
                codes::UNKNOWN_FIELD,
                &at.key("after_field"),
                format!("deadline count field `{field}` is not declared"),
                format!("declare it under [fields.{field}] with `type = \"integer\"`"),
            ),
            Some(f) if f.ty != FieldType::Integer => r.error(
                codes::FIELD_TYPE,
                &at.key("after_field"),
                format!(
                    "deadline count field `{field}` is {:?}, not an integer",
                    f.ty
                ),
                "point `after_field` at a field of type `integer`",
            ),
            Some(_) => {}
        }
    }
    if let Some(field) = &d.date_field {
        match def.fields.get(field) {
            None => r.error(
                codes::UNKNOWN_FIELD,
                &at.key("date_field"),
                format!("deadline date field `{field}` is not declared"),
                format!("declare it under [fields.{field}] with `type = \"date\"`"),
            ),
            Some(f) if f.ty != FieldType::Date => r.error(
                codes::FIELD_TYPE,
                &at.key("date_field"),
                format!("deadline date field `{field}` is {:?}, not a date", f.ty),
                "point `date_field` at a field of type `date`",
            ),
            Some(_) => {}
        }
    }
    check_ladder(
        r,
        &at.key("reminders"),
        &d.reminders,
        d.after,
        &format!("state `{}`", s.id),
    );
    for (j, e) in d.escalations.iter().enumerate() {
        if e.notify.is_empty() {
            r.error(
                codes::UNKNOWN_ROLE,
                &at.key("escalations").index(j).key("notify"),
                "an escalation notifies nobody",
                "list the roles to alert, e.g. `notify = [\"manager\"]`",
            );
        }
        for (k, role) in e.notify.iter().enumerate() {
            if !role_ids.contains(&role.as_str()) {
                r.error(
                    codes::UNKNOWN_ROLE,
                    &at.key("escalations").index(j).key("notify").index(k),
                    format!("escalation notifies unknown role `{role}`"),
                    unknown_hint("role", role, role_ids),
                );
            }
        }
    }
    if let Some(event) = &d.timeout {
        let handled = def
            .transitions_from(&s.id)
            .any(|(_, t)| &t.event == event && t.roles.iter().any(|r| r == SCHEDULER_ROLE));
        if !handled {
            r.error(
                codes::TIMEOUT_UNHANDLED,
                &at.key("timeout"),
                format!(
                    "timeout event `{event}` of state `{}` has no transition from `{}` that the scheduler may fire",
                    s.id, s.id
                ),
                format!(
                    "add a transition with `event = \"{event}\"`, `from = \"{}\"` and `roles = [\"scheduler\"]`, or remove `timeout`",
                    s.id
                ),
            );
        }
    }
}

fn check_checkpoint(
    def: &WorkflowDefinition,
    r: &mut Reporter<'_>,
    at: &crate::source::DocPath,
    s: &StateDef,
    cp: &crate::model::CheckpointDef,
    role_ids: &[&str],
) {
    if !is_name(&cp.id) || s.checkpoints.iter().filter(|c| c.id == cp.id).count() > 1 {
        r.error(
            codes::BAD_ID,
            &at.key("id"),
            format!("checkpoint id `{}` of state `{}` is not a unique identifier", cp.id, s.id),
            "use lowercase letters, digits and `_`, unique within the state, e.g. `progress_report`",
        );
    }
    match def.fields.get(&cp.date_field) {
        None => r.error(
            codes::UNKNOWN_FIELD,
            &at.key("date_field"),
            format!("checkpoint date field `{}` is not declared", cp.date_field),
            format!(
                "declare it under [fields.{}] with `type = \"date\"`",
                cp.date_field
            ),
        ),
        Some(f) if f.ty != FieldType::Date => r.error(
            codes::FIELD_TYPE,
            &at.key("date_field"),
            format!(
                "checkpoint date field `{}` is {:?}, not a date",
                cp.date_field, f.ty
            ),
            "point `date_field` at a field of type `date`",
        ),
        Some(_) => {}
    }
    check_ladder(
        r,
        &at.key("reminders"),
        &cp.reminders,
        None,
        &format!("checkpoint `{}` of state `{}`", cp.id, s.id),
    );
    for (j, e) in cp.escalations.iter().enumerate() {
        for (k, role) in e.notify.iter().enumerate() {
            if !role_ids.contains(&role.as_str()) {
                r.error(
                    codes::UNKNOWN_ROLE,
                    &at.key("escalations").index(j).key("notify").index(k),
                    format!("escalation notifies unknown role `{role}`"),
                    unknown_hint("role", role, role_ids),
                );
            }
        }
        if e.notify.is_empty() {
            r.error(
                codes::UNKNOWN_ROLE,
                &at.key("escalations").index(j).key("notify"),
                "an escalation notifies nobody",
                "list the roles to alert, e.g. `notify = [\"manager\"]`",
            );
        }
    }
}

/// A reminder ladder (at `at`) of a deadline `after` long, for `owner` (a state or a review
/// round): every reminder falls after the start, and nothing repeats or fires at zero.
fn check_ladder(
    r: &mut Reporter<'_>,
    at: &DocPath,
    ladder: &ReminderLadder,
    after: Option<Span>,
    owner: &str,
) {
    for (j, before) in ladder.before.iter().enumerate() {
        if before.is_zero() {
            r.error(
                codes::BAD_DURATION,
                &at.key("before").index(j),
                "a reminder zero days before is the due reminder",
                "use `at_due = true` instead",
            );
        } else if let Some(after) = after
            && reminder_not_before(*before, after)
        {
            r.error(
                codes::REMINDER_AFTER_DEADLINE,
                &at.key("before").index(j),
                format!(
                    "reminder `{before}` before the deadline of {owner} would fall before the state is even entered (the deadline is `{after}`)"
                ),
                format!("use an offset shorter than `{after}`, or lengthen the deadline"),
            );
        }
    }
    if let Some(every) = ladder.overdue_every
        && every.is_zero()
    {
        r.error(
            codes::BAD_DURATION,
            &at.key("overdue_every"),
            "overdue reminders cannot repeat every 0",
            "give a positive interval such as `2d`",
        );
    }
}

/// Whether a reminder `before` the due time would fall at or before the moment the state
/// was entered, for a deadline `after` long.
fn reminder_not_before(before: Span, after: Span) -> bool {
    match (before, after) {
        (Span::Days(b), Span::Days(a))
        | (Span::WorkingDays(b), Span::WorkingDays(a))
        | (Span::Hours(b), Span::Hours(a)) => b >= a,
        // A calendar-day reminder before a working-day deadline: at least `a` calendar
        // days always separate entry and due, so only `b > a` is sure to be too early
        // when holidays are short; be strict and compare with the minimum.
        (b, a) => b.approx_hours() >= a.approx_hours(),
    }
}

fn check_expression(
    r: &mut Reporter<'_>,
    def: &WorkflowDefinition,
    at: &DocPath,
    source: &str,
    inputs: &BTreeSet<&str>,
    event: &str,
) {
    let expr = match Expression::compile(source) {
        Ok(e) => e,
        Err(message) => {
            r.error(
                codes::CEL_SYNTAX,
                at,
                format!("`{source}` is not a valid CEL expression: {message}"),
                "check quotes and operators; CEL strings use single or double quotes and `&&`, `||`, `!` for logic",
            );
            return;
        }
    };
    let refs = expr.references();
    let field_ids: Vec<&str> = def.fields.keys().map(String::as_str).collect();
    for f in &refs.data_fields {
        if !def.fields.contains_key(f) {
            r.error(
                codes::CEL_UNKNOWN_FIELD,
                at,
                format!("`{source}` reads `data.{f}`, a field no state or input defines"),
                unknown_hint("field", f, &field_ids),
            );
        }
    }
    let input_list: Vec<&str> = inputs.iter().copied().collect();
    for f in &refs.input_fields {
        if !inputs.contains(f.as_str()) {
            r.error(
                codes::CEL_UNKNOWN_FIELD,
                at,
                format!("`{source}` reads `input.{f}`, but `{event}` takes no such input"),
                unknown_hint("input", f, &input_list),
            );
        }
    }
    for v in &refs.unknown_variables {
        r.error(
            codes::CEL_UNKNOWN_VARIABLE,
            at,
            format!("`{source}` uses unknown variable `{v}`"),
            format!(
                "expressions can read {}; did you mean `data.{v}`?",
                list(crate::guard::VARIABLES)
            ),
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn check_effect(
    def: &WorkflowDefinition,
    r: &mut Reporter<'_>,
    at: &DocPath,
    effect: &EffectDef,
    inputs: &BTreeSet<&str>,
    t: &TransitionDef,
    role_ids: &[&str],
    review_ids: &[&str],
    events: &BTreeSet<&str>,
) {
    let field_ids: Vec<&str> = def.fields.keys().map(String::as_str).collect();
    match effect {
        EffectDef::Set(set) => {
            if !def.fields.contains_key(&set.field) {
                r.error(
                    codes::UNKNOWN_FIELD,
                    &at.key("set").key("field"),
                    format!("effect sets undeclared field `{}`", set.field),
                    unknown_hint("field", &set.field, &field_ids),
                );
            }
            check_expression(
                r,
                def,
                &at.key("set").key("value"),
                &set.value,
                inputs,
                &t.event,
            );
        }
        EffectDef::Unset(field) => {
            if !def.fields.contains_key(field) {
                r.error(
                    codes::UNKNOWN_FIELD,
                    &at.key("unset"),
                    format!("effect removes undeclared field `{field}`"),
                    unknown_hint("field", field, &field_ids),
                );
            }
        }
        EffectDef::OpenReview(id) => {
            if !def.reviews.contains_key(id) {
                r.error(
                    codes::UNKNOWN_REVIEW,
                    &at.key("open_review"),
                    format!("effect opens unknown review round `{id}`"),
                    unknown_hint("review round", id, review_ids),
                );
            }
        }
        EffectDef::Schedule(s) => {
            if s.after.is_zero() {
                r.error(
                    codes::BAD_DURATION,
                    &at.key("schedule").key("after"),
                    "a timer cannot fire after 0",
                    "give a positive duration such as `7d`",
                );
            }
            if !events.contains(s.event.as_str()) {
                r.error(
                    codes::UNKNOWN_EVENT,
                    &at.key("schedule").key("event"),
                    format!(
                        "timer `{}` fires `{}`, which no transition handles",
                        s.timer, s.event
                    ),
                    "add a transition for that event with `roles = [\"scheduler\"]`",
                );
            }
        }
        EffectDef::Cancel(name) => {
            let scheduled = def.transitions.iter().any(|t| {
                t.effects
                    .iter()
                    .any(|e| matches!(e, EffectDef::Schedule(s) if &s.timer == name))
            });
            if !scheduled {
                r.error(
                    codes::UNKNOWN_TIMER,
                    &at.key("cancel"),
                    format!("effect cancels timer `{name}`, which nothing schedules"),
                    "cancel a timer named in a `schedule` effect",
                );
            }
        }
        EffectDef::Notify(n) => {
            for (k, role) in n.roles.iter().enumerate() {
                if !role_ids.contains(&role.as_str()) {
                    r.error(
                        codes::UNKNOWN_ROLE,
                        &at.key("notify").key("roles").index(k),
                        format!("effect notifies unknown role `{role}`"),
                        unknown_hint("role", role, role_ids),
                    );
                }
            }
        }
    }
}

//! Loading workflow files: parse, validate, compile guards, and identify each definition
//! by id, version and content hash.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveTime;
use sha2::{Digest, Sha256};
use toml_edit::{DocumentMut, Item, Value};

use crate::diagnostic::{Diagnostic, Severity, codes, has_errors};
use crate::guard::Expression;
use crate::model::{EffectDef, WorkflowDefinition};
use crate::source::{DocPath, Seg, SourceMap};
use crate::validate::{Reporter, validate};
use crate::{Span, canonical};

/// A validated definition with its guards compiled, ready for the engine.
#[derive(Debug)]
pub struct CompiledWorkflow {
    pub def: WorkflowDefinition,
    /// SHA-256 of the canonical JSON of the definition: comments and spacing do not count.
    pub hash: String,
    /// Guard of each transition, by index.
    pub(crate) guards: Vec<Option<Expression>>,
    /// For a guard that reads `input`: the conjunction of its top-level conjuncts that do
    /// not, decided before the input is known (`availableTransitions` explains a routing
    /// rule such as `data.applicant_kind == 'unit'` with it).
    pub(crate) preconditions: Vec<Option<Expression>>,
    /// `set` effect expressions of each transition, by transition then effect index.
    pub(crate) set_values: Vec<Vec<Option<Expression>>>,
    pub(crate) remind_at: NaiveTime,
}

/// The result of loading one file: a compiled workflow when there are no errors, and every
/// diagnostic (warnings included) either way.
pub struct LoadOutcome {
    pub workflow: Option<CompiledWorkflow>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Keys whose string values are durations (`7d`, `5wd`, `48h`).
const DURATION_KEYS: [&str; 5] = [
    "after",
    "before",
    "overdue_every",
    "after_overdue",
    "deadline",
];

pub fn load_str(file: &str, text: &str) -> LoadOutcome {
    let map = SourceMap::new(text);
    let mut r = Reporter {
        file,
        map: &map,
        diagnostics: Vec::new(),
    };
    let mut doc: DocumentMut = match text.parse() {
        Ok(doc) => doc,
        Err(e) => {
            let e: toml_edit::TomlError = e;
            let (line, column) = e.span().map(|s| map.line_col(s.start)).unwrap_or((1, 1));
            r.diagnostics.push(Diagnostic {
                code: codes::SYNTAX,
                severity: Severity::Error,
                file: file.to_string(),
                line,
                column,
                path: String::new(),
                message: format!("not valid TOML: {}", e.message().trim()),
                hint: "fix the TOML syntax at this place (quotes, brackets, `=` between key and value)".into(),
            });
            return LoadOutcome {
                workflow: None,
                diagnostics: r.diagnostics,
            };
        }
    };
    // Bad durations are reported one by one and replaced by a placeholder, so that the
    // rest of the file is still checked.
    patch_durations(doc.as_item_mut(), &DocPath::root(), &mut r);
    let patched = doc.to_string();
    let def: WorkflowDefinition = match toml::from_str(&patched) {
        Ok(def) => def,
        Err(e) => {
            let (line, column) = e
                .span()
                .map(|s| SourceMap::new(&patched).line_col(s.start))
                .unwrap_or((1, 1));
            r.diagnostics.push(Diagnostic {
                code: codes::SHAPE,
                severity: Severity::Error,
                file: file.to_string(),
                line,
                column,
                path: String::new(),
                message: e.message().trim().to_string(),
                hint: "compare with workflows/schema.json: a key is misspelt, missing, or has the wrong type".into(),
            });
            return LoadOutcome {
                workflow: None,
                diagnostics: r.diagnostics,
            };
        }
    };
    validate(&def, &mut r);
    let mut diagnostics = r.diagnostics;
    diagnostics.sort_by_key(|d| (d.line, d.column));
    if has_errors(&diagnostics) {
        return LoadOutcome {
            workflow: None,
            diagnostics,
        };
    }
    let workflow = CompiledWorkflow::compile(def).expect("validated definitions compile");
    LoadOutcome {
        workflow: Some(workflow),
        diagnostics,
    }
}

fn patch_durations(item: &mut Item, at: &DocPath, r: &mut Reporter<'_>) {
    match item {
        Item::Table(t) => {
            for (k, v) in t.iter_mut() {
                let child = at.key(&k);
                if DURATION_KEYS.contains(&k.get()) {
                    patch_duration_value(v, &child, r);
                }
                patch_durations(v, &child, r);
            }
        }
        Item::ArrayOfTables(a) => {
            for (i, t) in a.iter_mut().enumerate() {
                let child = at.index(i);
                for (k, v) in t.iter_mut() {
                    let grandchild = child.key(&k);
                    if DURATION_KEYS.contains(&k.get()) {
                        patch_duration_value(v, &grandchild, r);
                    }
                    patch_durations(v, &grandchild, r);
                }
            }
        }
        Item::Value(v) => patch_inline(v, at, r),
        Item::None => {}
    }
}

fn patch_inline(v: &mut Value, at: &DocPath, r: &mut Reporter<'_>) {
    match v {
        Value::InlineTable(t) => {
            for (k, child) in t.iter_mut() {
                let p = at.key(&k);
                if DURATION_KEYS.contains(&k.get()) {
                    patch_duration_in_value(child, &p, r);
                }
                patch_inline(child, &p, r);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter_mut().enumerate() {
                patch_inline(child, &at.index(i), r);
            }
        }
        _ => {}
    }
}

fn patch_duration_value(item: &mut Item, at: &DocPath, r: &mut Reporter<'_>) {
    if let Item::Value(v) = item {
        patch_duration_in_value(v, at, r);
    }
}

fn patch_duration_in_value(v: &mut Value, at: &DocPath, r: &mut Reporter<'_>) {
    match v {
        Value::String(s) => {
            if let Err(e) = Span::parse(s.value()) {
                r.error(
                    codes::BAD_DURATION,
                    at,
                    e.to_string(),
                    "e.g. `7d` for seven calendar days, `5wd` for five working days, `48h` for two days in hours",
                );
                *v = placeholder_duration(s, at);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter_mut().enumerate() {
                patch_duration_in_value(child, &at.index(i), r);
            }
        }
        _ => {}
    }
}

/// A valid duration to stand in for a bad one, so that the rest of the file is still
/// checked without the stand-in causing problems of its own: the longest duration for a
/// deadline (`after`, a review `deadline`), so that no reminder looks as if it came before
/// the state is entered; the shortest for reminders and intervals. It is padded with spaces
/// (durations are trimmed when parsed) and keeps the original's surrounding whitespace, so
/// that the columns of whatever follows on the line do not move.
fn placeholder_duration(original: &toml_edit::Formatted<String>, at: &DocPath) -> Value {
    let long = matches!(
        at.0.last(),
        Some(Seg::Key(k)) if k == "after" || k == "deadline"
    );
    let mut text = if long { "3660d" } else { "1h" }.to_string();
    let width = original.display_repr().chars().count();
    // The stand-in is written as a basic string: its text between two quotes.
    while text.chars().count() + 2 < width {
        text.push(' ');
    }
    let mut value = Value::from(text);
    *value.decor_mut() = original.decor().clone();
    value
}

/// The part of a guard that reads no `input`, when the guard reads `input` and has such a
/// part.
fn precondition_of(guard: &Option<Expression>) -> Option<Expression> {
    let guard = guard.as_ref()?;
    if guard.references().input_fields.is_empty() {
        return None;
    }
    let data_only: Vec<&str> = crate::guard::split_conjuncts(guard.source())
        .into_iter()
        .filter(|part| {
            Expression::compile(part).is_ok_and(|e| {
                let refs = e.references();
                refs.input_fields.is_empty()
                    && refs.unknown_variables.is_empty()
                    && !part.contains("input")
            })
        })
        .collect();
    if data_only.is_empty() {
        return None;
    }
    Expression::compile(&data_only.join(" && ")).ok()
}

impl CompiledWorkflow {
    /// Compile the expressions of a definition. Callers normally go through [`load_str`],
    /// which validates first; this fails only on CEL syntax errors.
    pub fn compile(def: WorkflowDefinition) -> Result<Self, String> {
        let guards = def
            .transitions
            .iter()
            .map(|t| t.guard.as_deref().map(Expression::compile).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        let preconditions = guards.iter().map(precondition_of).collect();
        let set_values = def
            .transitions
            .iter()
            .map(|t| {
                t.effects
                    .iter()
                    .map(|e| match e {
                        EffectDef::Set(s) => Expression::compile(&s.value).map(Some),
                        _ => Ok(None),
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let remind_at = NaiveTime::parse_from_str(&def.remind_at, "%H:%M")
            .map_err(|e| format!("remind_at: {e}"))?;
        let hash = definition_hash(&def);
        Ok(Self {
            def,
            hash,
            guards,
            preconditions,
            set_values,
            remind_at,
        })
    }

    pub fn id(&self) -> &str {
        &self.def.id
    }

    pub fn version(&self) -> u32 {
        self.def.version
    }

    pub fn remind_at(&self) -> NaiveTime {
        self.remind_at
    }
}

/// SHA-256 (hex) of the canonical JSON of a definition.
pub fn definition_hash(def: &WorkflowDefinition) -> String {
    let json = serde_json::to_value(def).expect("definitions serialise");
    hex::encode(Sha256::digest(canonical::to_string(&json).as_bytes()))
}

/// Every loaded workflow, by id and version.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    by_id: BTreeMap<String, BTreeMap<u32, Arc<CompiledWorkflow>>>,
}

impl Registry {
    pub fn insert(&mut self, wf: CompiledWorkflow) -> Result<(), String> {
        let versions = self.by_id.entry(wf.def.id.clone()).or_default();
        if let Some(existing) = versions.get(&wf.def.version)
            && existing.hash != wf.hash
        {
            return Err(format!(
                "workflow `{}` version {} is defined twice with different content",
                wf.def.id, wf.def.version
            ));
        }
        versions.insert(wf.def.version, Arc::new(wf));
        Ok(())
    }

    pub fn get(&self, id: &str, version: u32) -> Option<Arc<CompiledWorkflow>> {
        self.by_id.get(id)?.get(&version).cloned()
    }

    pub fn latest(&self, id: &str) -> Option<Arc<CompiledWorkflow>> {
        self.by_id.get(id)?.values().next_back().cloned()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<CompiledWorkflow>> {
        self.by_id.values().flat_map(|v| v.values())
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.by_id.keys().map(String::as_str)
    }
}

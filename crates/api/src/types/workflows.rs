//! Workflows as GraphQL objects: stages, states, transitions and their inputs.

use super::*;

pub struct WorkflowGql(pub Arc<CompiledWorkflow>);

#[derive(SimpleObject)]
#[graphql(name = "Stage")]
pub struct StageGql {
    pub id: String,
    pub title: I18nText,
}

#[derive(SimpleObject)]
#[graphql(name = "State")]
pub struct StateGql {
    pub id: String,
    pub title: I18nText,
    pub stage: String,
    pub initial: bool,
    #[graphql(name = "final")]
    pub is_final: bool,
    pub assignees: Vec<String>,
    pub requires: Vec<String>,
}

#[derive(SimpleObject)]
#[graphql(name = "TransitionDef")]
pub struct TransitionDefGql {
    pub event: String,
    pub title: I18nText,
    pub from: Vec<String>,
    pub to: String,
    pub roles: Vec<String>,
    pub guard: Option<String>,
    pub input: Vec<InputFieldGql>,
    pub reason_required: bool,
}

#[derive(SimpleObject, Clone)]
#[graphql(name = "InputField")]
pub struct InputFieldGql {
    pub name: String,
    /// text, integer, money, date, boolean, enum, indicators, file, files
    #[graphql(name = "type")]
    pub ty: String,
    pub required: bool,
    pub title: Option<I18nText>,
    pub options: Vec<String>,
}

pub(super) fn type_name(t: FieldType) -> String {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub fn input_field(wf: &CompiledWorkflow, d: &InputFieldDef) -> InputFieldGql {
    let field = wf.def.fields.get(&d.name);
    InputFieldGql {
        name: d.name.clone(),
        ty: type_name(d.ty.or(field.map(|f| f.ty)).unwrap_or(FieldType::Text)),
        required: d.required,
        title: d.title.as_ref().or(field.map(|f| &f.title)).map(Into::into),
        options: if d.options.is_empty() {
            field.map(|f| f.options.clone()).unwrap_or_default()
        } else {
            d.options.clone()
        },
    }
}

#[Object(name = "Workflow")]
impl WorkflowGql {
    async fn id(&self) -> &str {
        &self.0.def.id
    }
    async fn version(&self) -> u32 {
        self.0.def.version
    }
    /// SHA-256 of the definition's canonical JSON.
    async fn hash(&self) -> &str {
        &self.0.hash
    }
    async fn title(&self) -> I18nText {
        (&self.0.def.title).into()
    }
    async fn description(&self) -> Option<I18nText> {
        self.0.def.description.as_ref().map(Into::into)
    }
    async fn stages(&self) -> Vec<StageGql> {
        self.0
            .def
            .stages
            .iter()
            .map(|s| StageGql {
                id: s.id.clone(),
                title: (&s.title).into(),
            })
            .collect()
    }
    async fn states(&self) -> Vec<StateGql> {
        self.0
            .def
            .states
            .iter()
            .map(|s| StateGql {
                id: s.id.clone(),
                title: (&s.title).into(),
                stage: s.stage.clone(),
                initial: s.initial,
                is_final: s.is_final,
                assignees: s.assignees.clone(),
                requires: s.requires.clone(),
            })
            .collect()
    }
    async fn transitions(&self) -> Vec<TransitionDefGql> {
        self.0
            .def
            .transitions
            .iter()
            .map(|t| TransitionDefGql {
                event: t.event.clone(),
                title: (&t.title).into(),
                from: t.from.as_slice().to_vec(),
                to: t.to.clone(),
                roles: t.roles.clone(),
                guard: t.guard.clone(),
                input: t.input.iter().map(|d| input_field(&self.0, d)).collect(),
                reason_required: t.reason_required,
            })
            .collect()
    }
    /// The state machine as a Mermaid diagram (stages as clusters, roles and guards on
    /// the edges).
    async fn mermaid(&self) -> String {
        grantflow_domain::diagram::mermaid(&self.0.def)
    }
    /// The same as Graphviz dot.
    async fn dot(&self) -> String {
        grantflow_domain::diagram::dot(&self.0.def)
    }
}

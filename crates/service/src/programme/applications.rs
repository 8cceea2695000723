//! Applications and demands belong to a stored call (issue 12): the service fills the
//! call's dates, the catalogue item, its part and the applicant's kind into a new
//! instance's data, checks that the call is open and that the applicant's kind may apply
//! for the item, and refuses submissions once the call is closed. The workflow routes on
//! these fields (`data.applicant_kind`, `data.part`); no user ever sets them.

use super::*;

/// Data the service sets from the stored call, its item and the applicant's organisation;
/// initial data naming one of them is refused (`SET_BY_SERVICE`).
pub const SERVICE_OWNED_FIELDS: [&str; 8] = [
    "call_id",
    "closing_date",
    "forward_by",
    "catalogue_item",
    "part",
    "applicant_kind",
    "correction_window_days",
    "correction_due",
];

/// The events that hand in a new application or demand: refused once its call is closed.
pub const SUBMISSION_EVENTS: [&str; 2] = ["submit", "submit_to_province"];

/// Whether instances of the workflow belong to a call.
pub fn is_call_bound(workflow_id: &str) -> bool {
    workflow_id == PROJECT_WORKFLOW || workflow_id == DEMAND_WORKFLOW
}

impl Services {
    /// The data the service sets on a new instance of a call-bound workflow: the call's
    /// id and closing date (also the city's forwarding deadline) for a demand; for an
    /// application also the catalogue item, its part, the applicant's kind
    /// and the call's correction window. Refuses data that sets any of them, an unknown
    /// or closed call, an unknown item and an applicant of a kind the item does not admit.
    pub(crate) async fn call_bound_data(
        &self,
        workflow_id: &str,
        org_id: Uuid,
        call_id: Option<Uuid>,
        catalogue_item: Option<&str>,
        data: &Value,
    ) -> ServiceResult<Map<String, Value>> {
        let owned: Vec<FieldError> = SERVICE_OWNED_FIELDS
            .iter()
            .filter(|k| data.get(**k).is_some())
            .map(|k| {
                FieldError::new(
                    &format!("data.{k}"),
                    "SET_BY_SERVICE",
                    format!("「{k}」由系统按申报通知填写，不能由申报单位填写"),
                    format!("`{k}` is set from the stored call, not by the applicant"),
                )
            })
            .collect();
        if !owned.is_empty() {
            return Err(ServiceError::Invalid(owned));
        }
        let Some(call_id) = call_id else {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                "callId",
                "REQUIRED",
                "须指定所属申报通知（callId）",
                "the call (callId) is required",
            )]));
        };
        let call = match self.store.get_call(call_id).await {
            Ok(c) => c,
            Err(StoreError::NotFound { .. }) => {
                return refused(
                    Refusal::new(
                        RefusalReason::UnknownCall,
                        format!("没有编号为 {call_id} 的申报通知"),
                        format!("there is no call {call_id}"),
                    )
                    .with_details(json!({ "callId": call_id.to_string() })),
                );
            }
            Err(e) => return Err(e.into()),
        };
        let today = local_date(self.now());
        if call.status != grantflow_store::programme::CallStatus::Open || today > call.closing_date
        {
            return refused(call_closed(&call));
        }
        let mut out = Map::new();
        out.insert("call_id".into(), Value::from(call.id.to_string()));
        out.insert(
            "closing_date".into(),
            Value::from(call.closing_date.to_string()),
        );
        // The city bureau forwards demands and applications by the province's closing
        // date.
        out.insert(
            "forward_by".into(),
            Value::from(call.closing_date.to_string()),
        );
        if workflow_id != PROJECT_WORKFLOW {
            return Ok(out);
        }
        let Some(item_id) = catalogue_item.map(str::trim).filter(|s| !s.is_empty()) else {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                "catalogueItem",
                "REQUIRED",
                "须指定申报的目录项目（catalogueItem）",
                "the catalogue item (catalogueItem) is required",
            )]));
        };
        let Some((_, _, item)) = call.items().find(|(_, _, i)| i.item_id == item_id) else {
            return refused(
                Refusal::new(
                    RefusalReason::UnknownCatalogueItem,
                    format!("申报通知「{}」的目录中没有项目「{item_id}」", call.title),
                    format!(
                        "the call `{}` has no catalogue item `{item_id}`",
                        call.title
                    ),
                )
                .with_details(json!({ "catalogueItem": item_id })),
            );
        };
        let org = match self.store.get_org(org_id).await {
            Err(StoreError::NotFound { .. }) => {
                return Err(ServiceError::NotFound("organisation".into()));
            }
            other => other?,
        };
        let kind = ApplicantKind::parse(org.kind.as_str());
        let admitted = kind.is_some_and(|k| {
            item.eligible.is_empty() || item.eligible.iter().any(|e| e == k.as_str())
        });
        if !admitted {
            return refused(not_eligible(item, org.kind));
        }
        let kind = kind.map(ApplicantKind::as_str).unwrap_or_default();
        out.insert("catalogue_item".into(), Value::from(item.item_id.clone()));
        out.insert("part".into(), Value::from(item.part.clone()));
        out.insert("applicant_kind".into(), Value::from(kind));
        out.insert(
            "correction_window_days".into(),
            Value::from(call.correction_window_days),
        );
        Ok(out)
    }

    /// A submission of a call-bound instance whose call is closed is refused.
    pub(crate) async fn check_call_open_for(
        &self,
        instance: &Instance,
        event: &str,
    ) -> ServiceResult<()> {
        if !is_call_bound(&instance.workflow_id) || !SUBMISSION_EVENTS.contains(&event) {
            return Ok(());
        }
        let Some(call_id) = instance
            .data
            .get("call_id")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
        else {
            return Ok(());
        };
        match self.store.get_call(call_id).await {
            Ok(call) if call.status != grantflow_store::programme::CallStatus::Open => {
                refused(call_closed(&call))
            }
            Ok(_) | Err(StoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

fn call_closed(call: &Call) -> Refusal {
    Refusal::new(
        RefusalReason::CallClosed,
        format!("申报通知「{}」已截止（{}）", call.title, call.closing_date),
        format!(
            "the call `{}` is closed ({})",
            call.title, call.closing_date
        ),
    )
    .with_details(json!({ "callId": call.id.to_string() }))
}

/// Why an organisation of `kind` may not apply for `item`, naming the item and who may.
fn not_eligible(item: &CallItem, kind: OrgKind) -> Refusal {
    let (kind_zh, kind_en) = kind.title();
    let names = |lang: Lang| {
        item.eligible
            .iter()
            .filter_map(|k| ApplicantKind::parse(k))
            .map(|k| k.name(lang))
            .collect::<Vec<_>>()
    };
    Refusal::new(
        RefusalReason::NotEligible,
        format!(
            "「{}」（{}）的申报主体为「{}」，{}不在可申报范围内（可申报：{}）",
            item.name,
            item.item_id,
            item.applicant.replace('\n', " "),
            kind_zh,
            names(Lang::ZhCn).join("、")
        ),
        format!(
            "`{}` ({}) is for {}: a {} may not apply (may apply: {})",
            item.name,
            item.item_id,
            item.applicant.replace('\n', " "),
            kind_en,
            names(Lang::En).join(", ")
        ),
    )
    .with_details(json!({
        "catalogueItem": item.item_id,
        "applicantKind": kind.as_str(),
        "eligible": item.eligible,
    }))
}

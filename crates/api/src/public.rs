//! 公示 in public: the list of projects under publicity and the objection form, both
//! usable without a token, and the managers' side (objections listed and resolved). The
//! list is also served as downloads at public HTTP paths (`/public/publicity.json`,
//! `/public/publicity.csv`).
//!
//! Nothing else is visible without logging in: the list carries only what a 公示
//! publishes (project, unit, catalogue item, amount, publicity period), and a submission
//! answers only its own receipt. Submissions are limited per client address (the
//! signed-in user when there is one): [`OBJECTIONS_PER_HOUR`] an hour.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use grantflow_programme::export::{Cell, Column, ColumnKind, Sheet, write_csv};
use grantflow_service::publicity::{NewPublicObjection, PublicityEntry};
use grantflow_store::public::{ObjectionEvent, ObjectionStatus, PublicObjection};
use serde_json::json;

use crate::AppState;
use crate::auth::scope;
use crate::context::{guards, rc, service_err, viewer_with_scope};
use crate::error::{ApiError, Code};
use crate::types::parse_id;

/// Objections one client address (or signed-in user) may submit per hour.
pub const OBJECTIONS_PER_HOUR: u32 = 5;

/// A project under publicity, as the public sees it.
#[derive(SimpleObject)]
#[graphql(name = "PublicityEntry")]
pub struct PublicityEntryGql {
    /// The project's id (for `submitPublicObjection`).
    pub instance_id: ID,
    /// 项目名称
    pub title: String,
    /// 承担单位
    pub unit: String,
    /// The catalogue item's id (`2022-3-1-20`) and name.
    pub catalogue_item: Option<String>,
    pub catalogue_item_name: Option<String>,
    /// The approved funding in yuan (`"300000.00"`).
    pub amount: Option<String>,
    /// 公示期: first and last day (Asia/Shanghai).
    pub publicity_start: Option<NaiveDate>,
    pub publicity_end: Option<NaiveDate>,
}

impl From<PublicityEntry> for PublicityEntryGql {
    fn from(e: PublicityEntry) -> Self {
        Self {
            instance_id: ID(e.instance_id.to_string()),
            title: e.title,
            unit: e.unit,
            catalogue_item: e.catalogue_item,
            catalogue_item_name: e.catalogue_item_name,
            amount: e.amount,
            publicity_start: e.publicity_start,
            publicity_end: e.publicity_end,
        }
    }
}

#[derive(InputObject)]
pub struct PublicObjectionInput {
    pub instance_id: ID,
    /// 姓名或单位名称 (at most 100 characters).
    pub name: String,
    /// 联系方式: phone or e-mail (at most 200 characters).
    pub contact: String,
    /// 异议理由 (at most 4000 characters).
    pub reason: String,
}

/// What the public gets back: a receipt, nothing of the project.
#[derive(SimpleObject)]
pub struct PublicObjectionReceipt {
    pub id: ID,
    pub submitted_at: DateTime<Utc>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ObjectionStatusGql {
    Open,
    Upheld,
    Dismissed,
}

impl From<ObjectionStatus> for ObjectionStatusGql {
    fn from(s: ObjectionStatus) -> Self {
        match s {
            ObjectionStatus::Open => Self::Open,
            ObjectionStatus::Upheld => Self::Upheld,
            ObjectionStatus::Dismissed => Self::Dismissed,
        }
    }
}

/// The manager's decision on an objection.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ObjectionOutcome {
    /// 异议成立
    Upheld,
    /// 异议不成立
    Dismissed,
}

/// One step of an objection.
#[derive(SimpleObject)]
#[graphql(name = "PublicObjectionStep")]
pub struct ObjectionStepGql {
    /// `submitted`, `upheld` or `dismissed`.
    pub action: String,
    pub reason: Option<String>,
    pub actor_id: Option<ID>,
    pub at: DateTime<Utc>,
}

impl From<ObjectionEvent> for ObjectionStepGql {
    fn from(e: ObjectionEvent) -> Self {
        Self {
            action: e.action,
            reason: e.reason,
            actor_id: e.actor_id.map(|a| ID(a.to_string())),
            at: e.at,
        }
    }
}

/// An objection of the public (managers and auditors).
pub struct PublicObjectionGql(pub PublicObjection);

#[Object(name = "PublicObjection")]
impl PublicObjectionGql {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn instance_id(&self) -> ID {
        ID(self.0.instance_id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn contact(&self) -> &str {
        &self.0.contact
    }
    async fn reason(&self) -> &str {
        &self.0.reason
    }
    async fn submitted_at(&self) -> DateTime<Utc> {
        self.0.submitted_at
    }
    async fn status(&self) -> ObjectionStatusGql {
        self.0.status.into()
    }
    /// The manager's reason for upholding or dismissing.
    async fn resolution(&self) -> Option<&str> {
        self.0.resolution.as_deref()
    }
    async fn resolved_by(&self) -> Option<ID> {
        self.0.resolved_by.map(|u| ID(u.to_string()))
    }
    async fn resolved_at(&self) -> Option<DateTime<Utc>> {
        self.0.resolved_at
    }
    /// Every step, oldest first.
    async fn history(&self, ctx: &Context<'_>) -> Result<Vec<ObjectionStepGql>> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let steps = rc(ctx)
            .services
            .public_objection_history(&v.user, self.0.id)
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(steps.into_iter().map(Into::into).collect())
    }
}

#[derive(Default)]
pub struct PublicQuery;

#[Object]
impl PublicQuery {
    /// 公示: the projects under publicity, for anyone, without a token. Only what a 公示
    /// publishes: project, unit, catalogue item, amount, the publicity period.
    async fn publicity_list(&self, ctx: &Context<'_>) -> Result<Vec<PublicityEntryGql>> {
        let list = rc(ctx)
            .services
            .publicity_list()
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(list.into_iter().map(Into::into).collect())
    }

    /// Objections of the public, newest first (managers and auditors): of one project or
    /// of all, open ones only when `openOnly`.
    async fn public_objections(
        &self,
        ctx: &Context<'_>,
        instance_id: Option<ID>,
        #[graphql(default = false)] open_only: bool,
    ) -> Result<Vec<PublicObjectionGql>> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let instance_id = instance_id
            .as_ref()
            .map(|i| parse_id(i, "instanceId"))
            .transpose()?;
        let list = rc(ctx)
            .services
            .public_objections(&v.user, instance_id, open_only)
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(list.into_iter().map(PublicObjectionGql).collect())
    }
}

#[derive(Default)]
pub struct PublicMutation;

#[Object]
impl PublicMutation {
    /// 公示异议: anyone, without a token, may object to a project under publicity (name,
    /// contact, reason). Limited per client address; a project not under publicity is
    /// NOT_FOUND. The objection lands with the manager, and approval does not continue
    /// until it is resolved.
    async fn submit_public_objection(
        &self,
        ctx: &Context<'_>,
        input: PublicObjectionInput,
    ) -> Result<PublicObjectionReceipt> {
        let r = rc(ctx);
        let key = format!(
            "objection:{}",
            crate::throttle::principal_key(r.viewer.as_ref(), r.client_addr)
        );
        if let Err(wait) = guards(ctx).objections.check(&key, 1, r.services.now()) {
            return Err(ApiError::new(Code::RateLimited)
                .with_message(
                    format!("提交异议过于频繁，请 {wait} 秒后再试"),
                    format!("too many objections; try again in {wait} s"),
                )
                .with_details(json!({ "reason": "TOO_MANY_OBJECTIONS", "retryAfterSeconds": wait }))
                .into());
        }
        let instance_id = parse_id(&input.instance_id, "instanceId")?;
        let stored = r
            .services
            .submit_public_objection(NewPublicObjection {
                instance_id,
                name: input.name,
                contact: input.contact,
                reason: input.reason,
            })
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(PublicObjectionReceipt {
            id: ID(stored.id.to_string()),
            submitted_at: stored.submitted_at,
        })
    }

    /// A manager upholds (异议成立) or dismisses (异议不成立) an open objection, with a
    /// reason; the step is kept in the objection's history.
    async fn resolve_public_objection(
        &self,
        ctx: &Context<'_>,
        objection_id: ID,
        outcome: ObjectionOutcome,
        reason: String,
    ) -> Result<PublicObjectionGql> {
        let v = viewer_with_scope(ctx, scope::TRANSITION)?;
        let id = parse_id(&objection_id, "objectionId")?;
        let outcome = match outcome {
            ObjectionOutcome::Upheld => ObjectionStatus::Upheld,
            ObjectionOutcome::Dismissed => ObjectionStatus::Dismissed,
        };
        let resolved = rc(ctx)
            .services
            .resolve_public_objection(&v.user, id, outcome, &reason)
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(PublicObjectionGql(resolved))
    }
}

// ------------------------------------------------------------------ HTTP downloads

fn download(body: Vec<u8>, media: &'static str, file: &'static str) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static(file));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

async fn entries(app: &AppState) -> Result<Vec<PublicityEntry>, Response> {
    app.services.publicity_list().await.map_err(|e| {
        tracing::error!(error = %e, "the public list failed");
        let status = match e {
            grantflow_service::ServiceError::Store(grantflow_store::StoreError::Unavailable(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, "服务器内部错误 (internal error)").into_response()
    })
}

/// `GET /public/publicity.json`: the list as JSON (`{ "projects": [...] }`).
pub async fn publicity_json(State(app): State<AppState>) -> Response {
    match entries(&app).await {
        Ok(list) => download(
            json!({ "projects": list }).to_string().into_bytes(),
            "application/json; charset=utf-8",
            "inline; filename=\"publicity.json\"",
        ),
        Err(r) => r,
    }
}

/// The list as a sheet (the CSV download; cells that a spreadsheet would run as a
/// formula are written as text).
pub fn publicity_sheet(list: &[PublicityEntry]) -> Sheet {
    let text = |s: &Option<String>| s.clone().map_or(Cell::Empty, Cell::Text);
    let date = |d: &Option<NaiveDate>| d.map_or(Cell::Empty, |d| Cell::Text(d.to_string()));
    Sheet {
        name: "公示".into(),
        title: None,
        columns: [
            "项目名称 project",
            "承担单位 unit",
            "目录项目编号 catalogue item",
            "目录项目名称 catalogue item name",
            "金额（元） amount (yuan)",
            "公示开始 publicity start",
            "公示结束 publicity end",
        ]
        .into_iter()
        .map(|h| Column::new(h, ColumnKind::Text))
        .collect(),
        rows: list
            .iter()
            .map(|e| {
                vec![
                    Cell::Text(e.title.clone()),
                    Cell::Text(e.unit.clone()),
                    text(&e.catalogue_item),
                    text(&e.catalogue_item_name),
                    text(&e.amount),
                    date(&e.publicity_start),
                    date(&e.publicity_end),
                ]
            })
            .collect(),
    }
}

/// `GET /public/publicity.csv`: the list as CSV (UTF-8 with BOM, for Excel).
pub async fn publicity_csv(State(app): State<AppState>) -> Response {
    match entries(&app).await {
        Ok(list) => download(
            write_csv(&publicity_sheet(&list)),
            "text/csv; charset=utf-8",
            "attachment; filename=\"publicity.csv\"",
        ),
        Err(r) => r,
    }
}

//! The task book of a funded project as typed GraphQL objects: its task rows (工作重点 /
//! 具体任务 / 成果形式 / 责任部门 / 时限 / linked indicators), the progress report schedule,
//! the latest progress per task and every progress report from the history.
//!
//! Read from the instance data the viewer may see (the same blind view as `data`) and
//! from the history (empty for a reviewer of a blind round, as `history` is).

use chrono::NaiveDate;
use serde_json::Value;

use super::*;

/// The event whose history records are progress reports.
pub const PROGRESS_EVENT: &str = "submit_progress_report";

/// The task book (任务书) of a project: null until task rows are submitted.
pub struct TaskBookGql {
    pub data: Value,
    pub instance: Instance,
}

/// Progress of a task: 未开始, 进行中, 已完成, 滞后.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "TaskStatus")]
pub enum TaskStatusGql {
    NotStarted,
    InProgress,
    Completed,
    Delayed,
}

impl TaskStatusGql {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "not_started" => Self::NotStarted,
            "in_progress" => Self::InProgress,
            "completed" => Self::Completed,
            "delayed" => Self::Delayed,
            _ => return None,
        })
    }
}

/// A reference to an uploaded file.
#[derive(SimpleObject, Clone)]
#[graphql(name = "FileReference")]
pub struct FileRefGql {
    pub name: String,
    pub sha256: String,
    pub size: i64,
}

/// One row of the task table.
#[derive(SimpleObject, Clone)]
#[graphql(name = "TaskRow")]
pub struct TaskRowGql {
    /// The row's number (1, 2, …): progress reports name it.
    pub no: i32,
    /// 工作重点
    pub focus: String,
    /// 具体任务
    pub task: String,
    /// 成果形式
    pub deliverable_form: String,
    /// 责任部门
    pub department: String,
    /// 时限
    pub due: Option<NaiveDate>,
    /// Names of the performance targets (绩效指标) the task serves.
    pub indicators: Vec<String>,
    /// The latest progress reported on the task.
    pub progress: Option<TaskProgressGql>,
}

/// Progress on one task in one report.
#[derive(SimpleObject, Clone)]
#[graphql(name = "TaskProgress")]
pub struct TaskProgressGql {
    pub task: i32,
    pub status: TaskStatusGql,
    /// 0–100.
    pub percent: Option<i32>,
    pub description: Option<String>,
    /// 成果材料: file references.
    pub deliverables: Vec<FileRefGql>,
}

/// One progress report (a `submit_progress_report` in the history).
#[derive(SimpleObject)]
#[graphql(name = "ProgressReport")]
pub struct ProgressReportGql {
    /// The history record's sequence number.
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor_id: String,
    pub rows: Vec<TaskProgressGql>,
}

/// When progress reports are due: a named period or set dates.
#[derive(SimpleObject)]
#[graphql(name = "ReportSchedule")]
pub struct ReportScheduleGql {
    /// `monthly`, `quarterly` or `half_yearly`; null for set dates.
    pub kind: Option<String>,
    /// The set dates, when the schedule is given as dates.
    pub dates: Vec<NaiveDate>,
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn date(v: Option<&Value>) -> Option<NaiveDate> {
    v.and_then(Value::as_str).and_then(|s| s.parse().ok())
}

fn progress_rows(v: Option<&Value>) -> Vec<TaskProgressGql> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|row| {
            Some(TaskProgressGql {
                task: i32::try_from(row.get("task")?.as_u64()?).ok()?,
                status: TaskStatusGql::parse(row.get("status")?.as_str()?)?,
                percent: row
                    .get("percent")
                    .and_then(Value::as_u64)
                    .and_then(|p| i32::try_from(p).ok()),
                description: row
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                deliverables: row
                    .get("deliverables")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|f| FileRefGql {
                        name: text(f, "name"),
                        sha256: text(f, "sha256"),
                        size: f.get("size").and_then(Value::as_i64).unwrap_or(0),
                    })
                    .collect(),
            })
        })
        .collect()
}

#[Object(name = "TaskBook")]
impl TaskBookGql {
    /// The task rows, each with its latest progress.
    async fn tasks(&self) -> Vec<TaskRowGql> {
        let latest = progress_rows(self.data.get("progress"));
        self.data
            .get("tasks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|row| {
                let no = i32::try_from(row.get("no")?.as_u64()?).ok()?;
                Some(TaskRowGql {
                    no,
                    focus: text(row, "focus"),
                    task: text(row, "task"),
                    deliverable_form: text(row, "deliverable_form"),
                    department: text(row, "department"),
                    due: date(row.get("due")),
                    indicators: row
                        .get("indicators")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|n| n.as_str().map(str::to_string))
                        .collect(),
                    progress: latest.iter().find(|p| p.task == no).cloned(),
                })
            })
            .collect()
    }
    async fn schedule(&self) -> Option<ReportScheduleGql> {
        match self.data.get("report_schedule")? {
            Value::String(kind) => Some(ReportScheduleGql {
                kind: Some(kind.clone()),
                dates: Vec::new(),
            }),
            Value::Array(dates) => Some(ReportScheduleGql {
                kind: None,
                dates: dates.iter().filter_map(|d| date(Some(d))).collect(),
            }),
            _ => None,
        }
    }
    /// When the next progress report is due (null after the last period).
    async fn next_report_due(&self) -> Option<NaiveDate> {
        date(self.data.get("next_report_due"))
    }
    /// The due date the latest report was made for.
    async fn last_report_due(&self) -> Option<NaiveDate> {
        date(self.data.get("last_report_due"))
    }
    /// Whether the next report is past its due date and the project is still in execution.
    async fn report_overdue(&self, ctx: &Context<'_>) -> bool {
        let today = grantflow_domain::calendar::local_date(rc(ctx).services.now());
        self.instance.state == "execution"
            && date(self.data.get("next_report_due")).is_some_and(|d| d < today)
    }
    /// Every progress report, oldest first.
    async fn reports(&self, ctx: &Context<'_>) -> Result<Vec<ProgressReportGql>> {
        if crate::review::hides_applicant(ctx, &self.instance).await? {
            return Ok(Vec::new());
        }
        let records = rc(ctx)
            .services
            .store
            .history(self.instance.id)
            .await
            .map_err(|e| crate::context::store_err(ctx, e))?;
        Ok(records
            .into_iter()
            .filter(|r| r.event == PROGRESS_EVENT)
            .map(|r| ProgressReportGql {
                seq: r.seq,
                at: r.at,
                actor_id: r.actor_id,
                rows: progress_rows(r.input.get("progress")),
            })
            .collect())
    }
}

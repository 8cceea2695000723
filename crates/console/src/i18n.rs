//! The console's words in Simplified Chinese (the default) and English. Domain terms keep
//! both names where the glossary does.

use std::collections::BTreeMap;

mod reports;

/// The console speaks the domain's languages; its pages carry the tag (`Lang::tag`).
pub use grantflow_domain::Lang;

/// The language the language cookie (or the language switch's form) names: `en` is
/// English, anything else the default, Simplified Chinese.
pub fn lang_from_cookie(value: Option<&str>) -> Lang {
    match value {
        Some("en") => Lang::En,
        _ => Lang::ZhCn,
    }
}

/// The key of `I18nText` objects in GraphQL answers.
pub fn graphql_key(lang: Lang) -> &'static str {
    match lang {
        Lang::ZhCn => "zhCn",
        Lang::En => "en",
    }
}

/// (key, zh-CN, en)
const TEXTS: &[(&str, &str, &str)] = &[
    (
        "app",
        "广东省知识产权工作项目管理",
        "Guangdong IP work programme",
    ),
    ("login", "登录", "Log in"),
    ("logout", "退出登录", "Log out"),
    ("username", "用户名", "Username"),
    ("password", "密码", "Password"),
    (
        "login_failed",
        "用户名或密码错误",
        "Wrong username or password",
    ),
    ("home", "我的待办", "Waiting on me"),
    ("instances", "全部事项", "All instances"),
    (
        "nothing_waits",
        "目前没有等待您处理的事项。",
        "Nothing waits on you now.",
    ),
    ("title", "标题", "Title"),
    ("state", "状态", "State"),
    ("stage", "阶段", "Stage"),
    ("due", "截止时间", "Due"),
    ("overdue", "已逾期", "Overdue"),
    ("data", "数据", "Data"),
    ("history", "历史记录", "History"),
    ("actions", "可执行的操作", "What you can do"),
    ("unavailable", "暂不可执行", "Not available now"),
    ("reason", "理由", "Reason"),
    ("fire", "执行", "Do it"),
    (
        "timers",
        "待触发的提醒与期限",
        "Pending reminders and deadlines",
    ),
    (
        "not_found",
        "未找到该事项，或您无权查看。",
        "Not found, or not yours to see.",
    ),
    ("back", "返回", "Back"),
    ("switch_lang", "English", "中文"),
    ("done", "已完成", "Done"),
    ("error", "出错了", "Something went wrong"),
    (
        "csrf",
        "表单已过期，请刷新页面后重试。",
        "The form expired; reload the page and retry.",
    ),
    (
        "rate_limited",
        "请求过于频繁，请稍后再试。",
        "Too many requests; please wait a moment.",
    ),
    ("actor", "操作人", "By"),
    ("event", "操作", "Action"),
    ("at", "时间", "At"),
    ("skip", "跳到正文", "Skip to content"),
    ("required", "必填", "required"),
    ("reviews", "我的评审", "My reviews"),
    ("round", "评审轮次", "Round"),
    ("blind", "盲评", "Blind"),
    ("closed", "已结束", "Closed"),
    ("application", "申报材料", "Application"),
    (
        "declare_first",
        "声明无利益冲突后方可查看申报材料。",
        "Declare that you have no conflict of interest to see the application.",
    ),
    (
        "application_hidden",
        "您已退出本评审，申报材料不再显示。",
        "You left this panel; the application is no longer shown.",
    ),
    (
        "declare_no_conflict",
        "声明无利益冲突",
        "Declare no conflict of interest",
    ),
    (
        "declare_conflict",
        "声明存在利益冲突（回避）",
        "Declare a conflict of interest (recuse)",
    ),
    ("decline", "拒绝评审", "Decline the review"),
    ("scores", "评分", "Scores"),
    ("score", "得分", "Score"),
    ("comment", "评语", "Comment"),
    ("weight", "权重", "Weight"),
    (
        "justification",
        "偏离说明（总分远离中位数时必填）",
        "Justification (required when your total is far from the median)",
    ),
    (
        "submit_scores",
        "提交评分（提交后封存）",
        "Submit the scores (sealed once submitted)",
    ),
    (
        "sealed",
        "已提交的评分（已封存）",
        "Submitted scores (sealed)",
    ),
    ("version", "版本", "Version"),
    ("total", "总分", "Total"),
    (
        "peers",
        "其他专家的评分（匿名）",
        "The other experts' scores (anonymous)",
    ),
    ("expert", "专家", "Expert"),
    (
        "needs_justification",
        "您的总分远离专家组中位数，请填写偏离说明后重新提交。",
        "Your total is far from the panel's median: add a justification.",
    ),
    ("organisation", "单位", "Unit"),
    (
        "diagram",
        "流程图（当前状态高亮）",
        "Workflow diagram (current state highlighted)",
    ),
    ("kind", "类型", "Kind"),
    // 公示异议 and 第三方绩效评价 (objections.rs, third_party.rs)
    ("objections", "公示异议", "Public objections"),
    ("objections_all", "全部异议", "All objections"),
    ("objections_open", "待处理异议", "Open objections"),
    ("publicity_public", "公开的立项公示", "The public notice"),
    ("no_objections", "没有公示异议。", "No public objections."),
    ("call", "项目通知", "Call"),
    (
        "objections_blocking",
        "待处理，立项暂停",
        "open: approval waits",
    ),
    (
        "objections_block_note",
        "公示期间收到的异议尚未处理：全部处理（异议成立或不成立）之前，公示不能结束，立项不能继续。",
        "Objections received during the public notice are open: until each is upheld or dismissed, the notice cannot end and approval cannot continue.",
    ),
    (
        "resolve_objections",
        "处理这些异议",
        "Resolve these objections",
    ),
    ("objection_open", "待处理", "Open"),
    ("objection_upheld", "异议成立", "Upheld"),
    ("objection_dismissed", "异议不成立", "Dismissed"),
    ("objector_contact", "联系方式", "Contact"),
    ("objection_reason", "异议理由", "Reason given"),
    ("objection_opinion", "处理意见", "Opinion"),
    ("objection_outcome", "处理结果", "Outcome"),
    ("resolve_objection", "提交处理结果", "Resolve the objection"),
    (
        "choose_outcome",
        "请选择异议成立或不成立",
        "Choose upheld or dismissed",
    ),
    (
        "third_party_evaluation",
        "第三方绩效评价",
        "Third-party evaluation",
    ),
    (
        "third_party_tasks",
        "第三方评价任务",
        "Evaluations assigned to us",
    ),
    (
        "nothing_assigned",
        "目前没有分配给本机构的项目。",
        "No project is assigned to your institution.",
    ),
    (
        "assigned_institution",
        "承担评价的第三方机构",
        "Assigned institution",
    ),
    ("not_assigned", "尚未委托", "Not assigned"),
    (
        "assign_evaluation",
        "委托第三方机构评价",
        "Assign the evaluation",
    ),
    ("institution", "第三方机构", "Institution"),
    ("assign_to_institution", "委托", "Assign"),
    (
        "choose_institution",
        "请选择第三方机构",
        "Choose an institution",
    ),
    (
        "record_third_party",
        "记录第三方评价",
        "Record our evaluation",
    ),
    (
        "record_third_party_note",
        "按与项目管理处室相同的评分方法（预算执行、产出、效益、满意度）计算并记录。",
        "Scored by the manager's method (budget execution, outputs, effects, satisfaction) and recorded.",
    ),
    ("evaluation_report", "评价报告", "Evaluation report"),
    (
        "comparison_caption",
        "单位自评、第三方评价与处室评价对照",
        "Self-evaluation, third-party and manager's evaluation side by side",
    ),
    ("self_evaluation", "单位自评", "Self-evaluation"),
    ("third_party_column", "第三方评价", "Third party"),
    ("manager_column", "处室评价", "Manager"),
    ("differences", "差异", "Differences"),
    ("threshold", "标记阈值（分）", "flagged from (points)"),
    ("compared", "对比", "Compared"),
    ("difference", "差值", "Difference"),
    ("flag", "标记", "Flag"),
    ("flagged", "差异较大", "Large difference"),
    (
        "between_self_vs_third_party",
        "自评 → 第三方",
        "self → third party",
    ),
    ("between_self_vs_manager", "自评 → 处室", "self → manager"),
    (
        "between_third_party_vs_manager",
        "第三方 → 处室",
        "third party → manager",
    ),
    ("part_budget_execution", "预算执行", "Budget execution"),
    ("part_output", "产出", "Outputs"),
    ("part_effect", "效益", "Effects"),
    ("part_satisfaction", "满意度", "Satisfaction"),
    ("assignment_history", "委托记录", "Assignments"),
    (
        "third_party_report_link",
        "第三方评价与自评对照",
        "Third-party evaluation beside the self-evaluation",
    ),
    ("status", "状态", "Status"),
    ("messages", "已发送的通知", "Messages sent"),
    ("template", "模板", "Template"),
    ("recipient", "收件人", "Recipient"),
    ("chain_ok", "哈希链校验通过", "The hash chain verifies"),
    ("chain_broken", "哈希链校验失败", "The hash chain is broken"),
    ("hash", "哈希（本条 ← 上一条）", "Hash (this ← previous)"),
    ("forgot", "忘记密码", "Forgot your password"),
    ("account", "我的账户", "My account"),
    ("roles", "角色", "Roles"),
    ("email", "电子邮箱", "E-mail"),
    ("change_password", "修改密码", "Change password"),
    ("old_password", "当前密码", "Current password"),
    ("new_password", "新密码", "New password"),
    ("repeat_password", "再次输入新密码", "New password again"),
    ("notifications", "通知设置", "Notifications"),
    ("notify_how", "期限提醒邮件", "Deadline e-mails"),
    ("notify_IMMEDIATE", "立即发送", "Immediately"),
    ("notify_DIGEST_ONLY", "仅每日汇总", "Daily digest only"),
    (
        "notify_NONE",
        "不发送（升级提醒除外）",
        "None (escalations still arrive)",
    ),
    ("save", "保存", "Save"),
    ("saved", "已保存。", "Saved."),
    (
        "password_changed",
        "密码已修改，其他会话已退出。",
        "Password changed; your other sessions ended.",
    ),
    (
        "passwords_differ",
        "两次输入的新密码不一致。",
        "The two new passwords differ.",
    ),
    (
        "reset_sent",
        "如该邮箱已登记，重置链接已发送，请查收邮件。",
        "If the address is registered, a reset link is on its way.",
    ),
    ("send_reset", "发送重置链接", "Send the reset link"),
    ("reset_password", "重置密码", "Reset the password"),
    (
        "reset_token",
        "重置码（邮件中的链接已自动填入）",
        "Reset code (filled in by the e-mail's link)",
    ),
    ("calls", "项目通知", "Calls"),
    ("year", "年度", "Year"),
    ("closing", "截止日期", "Closing date"),
    ("items", "目录项目数", "Catalogue items"),
    ("call_OPEN", "征集中", "Open"),
    ("call_CLOSED", "已截止", "Closed"),
    (
        "open_call",
        "按项目目录文件发布通知",
        "Open a call from a catalogue file",
    ),
    (
        "catalogue_file",
        "项目目录文件（TOML）",
        "Catalogue file (TOML)",
    ),
    ("optional", "选填", "optional"),
    (
        "file_missing",
        "请选择要上传的文件。",
        "Choose a file to upload.",
    ),
    (
        "file_too_large",
        "文件过大（最多 5 MB）。",
        "The file is too large (at most 5 MB).",
    ),
    (
        "upload_malformed",
        "上传的表单无法读取。",
        "The uploaded form cannot be read.",
    ),
    ("issuer", "发文单位", "Issuer"),
    (
        "duplicates",
        "需求汇总与疑似重复",
        "Demands: summary and duplicates",
    ),
    ("ranking", "评审排名", "Ranking"),
    (
        "export_summary",
        "导出汇总表（XLSX）",
        "Export the 汇总表 (XLSX)",
    ),
    (
        "export_evaluations",
        "导出绩效评价表（XLSX）",
        "Export the evaluations (XLSX)",
    ),
    ("import_result", "导入结果", "Import result"),
    ("imported", "已导入需求", "Demands imported"),
    ("row", "行", "Row"),
    ("column", "列", "Column"),
    ("header", "表头", "Header"),
    ("problem", "问题", "Problem"),
    ("more_errors", "错误总数", "Errors in all"),
    ("new_demand", "填报项目需求", "Propose a demand"),
    ("new_application", "申报项目", "Apply for a project"),
    ("create", "创建", "Create"),
    (
        "import_sheet",
        "上传需求征集表（XLSX）",
        "Upload a 需求征集表 (XLSX)",
    ),
    ("sheet_file", "需求征集表文件", "Demand form file"),
    (
        "import_hint",
        "任一行有误时不导入任何数据，并逐行逐列列出错误。",
        "If any row is wrong nothing is imported, and every error is listed by row and column.",
    ),
    ("upload", "上传", "Upload"),
    ("summary", "概况", "At a glance"),
    ("demands", "需求", "Demands"),
    ("projects", "项目", "Projects"),
    ("evaluated", "已评价", "Evaluated"),
    ("grades", "评价等级", "Grades"),
    ("budget_execution", "预算执行", "Budget execution"),
    ("yuan", "元", "yuan"),
    ("funnel", "各阶段项目数", "Projects by stage"),
    ("parent", "所属项目", "Belongs to"),
    ("expert_pool", "专家库", "Expert pool"),
    ("experts", "库内专家", "Experts in the pool"),
    ("expert_categories", "擅长大类（1–8）", "Categories (1–8)"),
    ("keywords", "专业关键词", "Keywords"),
    ("load", "在评数 / 上限", "Load / cap"),
    ("late_reviews", "逾期", "late"),
    ("expert_active", "在库", "Active"),
    ("expert_suspended", "暂停", "Suspended"),
    ("expert_retired", "退出", "Retired"),
    ("suspension_due", "建议暂停", "suspension suggested"),
    (
        "exclusions",
        "回避（合作单位）",
        "Exclusions (collaborations)",
    ),
    ("until", "至", "until"),
    (
        "expert_profile",
        "新增或修改专家",
        "Add or change an expert",
    ),
    ("new_expert_by_id", "（按用户编号新增）", "(add by user id)"),
    (
        "expert_user_id",
        "专家用户编号（新增时填写）",
        "Expert's user id (to add one)",
    ),
    ("workload_cap", "评审数量上限", "Workload cap"),
    ("save_expert", "保存专家信息", "Save the expert"),
    (
        "record_exclusion",
        "登记合作关系（回避）",
        "Record a collaboration (exclusion)",
    ),
    (
        "collaboration_until",
        "合作截止日",
        "Collaboration ended on",
    ),
    (
        "excluded_experts",
        "本次抽取排除的专家及原因",
        "Experts the draw excluded, and why",
    ),
    ("reasons", "原因", "Reasons"),
    ("assign_manually", "指定评审专家", "Assign experts by hand"),
    ("assign", "指定", "Assign"),
    ("assigned", "已指定", "Assigned"),
    ("change_requests", "项目变更申请", "Change requests"),
    ("new_change_request", "申请项目变更", "Request a change"),
    (
        "charts",
        "评价等级与预算执行",
        "Grades and budget execution",
    ),
    ("grades_by_city", "各地市项目评价等级", "Grades by city"),
    (
        "grades_by_category",
        "各大类项目评价等级",
        "Grades by category",
    ),
    (
        "execution_by_city",
        "各地市预算执行率",
        "Budget execution by city",
    ),
    (
        "execution_by_category",
        "各大类预算执行率",
        "Budget execution by category",
    ),
    ("close_call", "截止本通知", "Close the call"),
    ("catalogue", "项目目录", "Catalogue"),
    ("item", "项目", "Item"),
    ("direction", "项目方向", "Direction"),
    ("eligible", "申报主体", "Eligible applicant"),
    ("candidates", "疑似重复", "Duplicate candidates"),
    ("demand", "需求", "Demand"),
    ("similarity", "相似度", "Similarity"),
    ("merge", "合并", "Merge"),
    ("merge_b_into_a", "将 B 并入 A", "Merge B into A"),
    ("merges", "已合并", "Merged"),
    ("open_round", "进行中", "Open"),
    ("panel", "评审专家组", "Panel"),
    (
        "spread",
        "专家总分分布（红线为中位数）",
        "Spread of the experts' totals (red: median)",
    ),
    ("draw", "抽取专家", "Draw experts"),
    ("seed", "随机种子", "Seed"),
    ("drawn", "已抽取", "Drawn"),
    ("unfilled", "空缺席位", "seats unfilled"),
    ("replaced", "已替换", "replaced"),
    ("rank", "名次", "Rank"),
    ("median", "中位数", "Median"),
    ("outbox", "邮件发送", "Outbox"),
    ("outbox_DEAD", "发送失败", "Dead letters"),
    ("outbox_PENDING", "待发送", "Pending"),
    ("outbox_SENT", "已发送", "Sent"),
    ("open_instance", "查看", "Open"),
    ("live_updated", "列表已更新。", "The list was updated."),
    ("budget", "项目预算", "Project budget"),
    ("budgeted", "预算", "Budgeted"),
    ("spent", "已支出", "Spent"),
    ("remaining", "结余", "Remaining"),
    ("budget_lines", "预算科目", "Budget lines"),
    ("budget_line", "预算科目", "Budget line"),
    ("subject", "科目", "Subject"),
    ("source", "资金来源", "Source"),
    ("amount", "金额", "Amount"),
    ("spending", "支出记录", "Spending"),
    ("spent_on", "支出日期", "Spent on"),
    ("description", "说明", "Description"),
    ("add_line", "新增预算科目", "Add a budget line"),
    ("record_spending", "登记支出", "Record spending"),
    ("report_dates", "报告日期", "Report dates"),
    ("task_book", "任务书", "Task book"),
    (
        "report_schedule",
        "进展报告周期",
        "Progress report schedule",
    ),
    (
        "next_report_due",
        "下次进展报告截止日",
        "Next progress report due",
    ),
    (
        "last_report_due",
        "最近一次报告所属期限",
        "Period of the latest report",
    ),
    ("approved_funding", "立项资助金额", "Approved funding"),
    ("disbursed", "已拨付", "Disbursed"),
    (
        "rate_of_disbursed",
        "执行率（按拨付）",
        "Execution rate of disbursed",
    ),
    (
        "rate_of_approved",
        "执行率（按立项金额）",
        "Execution rate of approved",
    ),
    ("disbursements", "拨付记录", "Disbursements"),
    ("record_disbursement", "登记拨付", "Record a disbursement"),
    ("batch", "批次", "Batch"),
    ("paid_on", "拨付日期", "Paid on"),
    ("voucher", "凭证号", "Voucher"),
    ("review_round", "评审轮次与专家组", "Review round and panel"),
    ("evaluation", "绩效评价", "Performance evaluation"),
    ("part", "评价部分", "Part"),
    ("points", "得分", "Points"),
    ("indicator", "指标", "Indicator"),
    ("evaluated_at", "评价时间", "Evaluated at"),
    (
        "preview",
        "评价预览（尚未记录）",
        "Preview (not recorded yet)",
    ),
    ("record_evaluation", "记录评价结果", "Record the evaluation"),
    ("not_evaluated", "尚未评价。", "Not evaluated yet."),
    ("extend_deadline", "延长期限", "Extend the deadline"),
    ("new_due_date", "新的截止日期", "New due date"),
];

/// The main table and the tables of page groups kept in their own files.
fn all() -> impl Iterator<Item = &'static (&'static str, &'static str, &'static str)> {
    TEXTS.iter().chain(reports::TEXTS)
}

/// Every text in `lang`, for templates (`tr.login`).
pub fn texts(lang: Lang) -> BTreeMap<&'static str, &'static str> {
    all()
        .map(|(k, zh, en)| (*k, if lang == Lang::En { *en } else { *zh }))
        .collect()
}

/// One text.
pub fn text(lang: Lang, key: &str) -> &'static str {
    all()
        .find(|(k, _, _)| *k == key)
        .map_or("", |(_, zh, en)| if lang == Lang::En { en } else { zh })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_unique_and_translated() {
        let mut keys: Vec<&str> = all().map(|(k, _, _)| *k).collect();
        keys.sort_unstable();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "a key is listed twice");
        for (k, zh, en) in all() {
            assert!(!zh.is_empty() && !en.is_empty(), "{k}");
        }
        assert_eq!(text(Lang::En, "login"), "Log in");
        assert_eq!(text(lang_from_cookie(None), "login"), "登录");
    }
}

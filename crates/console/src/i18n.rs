//! The console's words in Simplified Chinese (the default) and English. Domain terms keep
//! both names where the glossary does.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    ZhCn,
    En,
}

impl Lang {
    /// From the language cookie; anything else is the default, Simplified Chinese.
    pub fn from_cookie(value: Option<&str>) -> Self {
        match value {
            Some("en") => Self::En,
            _ => Self::ZhCn,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::ZhCn => "zh-CN",
            Self::En => "en",
        }
    }

    /// The key of `I18nText` objects in GraphQL answers.
    pub fn graphql_key(self) -> &'static str {
        match self {
            Self::ZhCn => "zhCn",
            Self::En => "en",
        }
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
];

/// Every text in `lang`, for templates (`tr.login`).
pub fn texts(lang: Lang) -> BTreeMap<&'static str, &'static str> {
    TEXTS
        .iter()
        .map(|(k, zh, en)| (*k, if lang == Lang::En { *en } else { *zh }))
        .collect()
}

/// One text.
pub fn text(lang: Lang, key: &str) -> &'static str {
    TEXTS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map_or("", |(_, zh, en)| if lang == Lang::En { en } else { zh })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_unique_and_translated() {
        let mut keys: Vec<&str> = TEXTS.iter().map(|(k, _, _)| *k).collect();
        keys.sort_unstable();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "a key is listed twice");
        for (k, zh, en) in TEXTS {
            assert!(!zh.is_empty() && !en.is_empty(), "{k}");
        }
        assert_eq!(text(Lang::En, "login"), "Log in");
        assert_eq!(text(Lang::from_cookie(None), "login"), "登录");
    }
}

//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test file uses a different subset

use chrono::{TimeZone, Utc};
use grantflow_mail::{DeadlineEvent, Lang, OutgoingEmail, Recipient, render, sample_context};

/// The reminder for the formal-check correction deadline of project GD-2024-0042, due
/// 2024-06-05 23:59:59 in Beijing (15:59:59 UTC), three days ahead.
pub fn reminder_event() -> DeadlineEvent {
    DeadlineEvent {
        instance_id: "GD-2024-0042".into(),
        deadline_key: "formal_check.correction".into(),
        at: Utc.with_ymd_and_hms(2024, 6, 5, 15, 59, 59).unwrap(),
        summary: "截止：形式审查整改材料提交, 2024年广东省知识产权保护中心建设项目; 第1轮".into(),
        description: "项目：2024年广东省知识产权保护中心建设项目\n事项：形式审查整改材料提交\n\
                      请登录广东省知识产权业务管理阳光政务平台提交整改材料，逾期未提交的申报将不予受理。"
            .into(),
        url: Some("https://grantflow.example.gov.cn/projects/GD-2024-0042".into()),
        stamp: Utc.with_ymd_and_hms(2024, 6, 2, 1, 0, 0).unwrap(),
        sequence: 0,
    }
}

pub fn reminder_email(idempotency_key: &str, lang: Lang) -> OutgoingEmail {
    OutgoingEmail {
        idempotency_key: idempotency_key.into(),
        to: vec![
            Recipient::new("张三", "zhangsan@applicant.example.com"),
            Recipient::address_only("office@applicant.example.com"),
        ],
        cc: vec![Recipient::new(
            "李四（知识产权促进处）",
            "lisi@gdipa.example.gov.cn",
        )],
        content: render("reminder", lang, &sample_context("reminder").unwrap()).unwrap(),
        calendar: Some(reminder_event()),
    }
}

/// Mail bodies travel with CRLF line ends; the templates produce LF.
pub fn lf(text: &str) -> String {
    text.replace("\r\n", "\n")
}

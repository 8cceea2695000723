//! Rendering a reminder in both languages, and its calendar attachment parsed back by an
//! independent iCalendar parser.

use crate::common;

use std::str::FromStr;

use chrono::{TimeZone, Utc};
use grantflow_mail::{Lang, RenderError, render, sample_context};
use icalendar::{Calendar, CalendarDateTime, Component, DatePerhapsTime, parser::unfold};
use serde_json::json;

fn reminder_context() -> serde_json::Value {
    json!({
        "recipient_name": "张三",
        "link": "https://grantflow.example.gov.cn/projects/GD-2024-0042",
        "project_name": "2024年广东省知识产权保护中心建设项目",
        "task": "形式审查整改材料提交",
        // 23:59:59 on 5 June in Beijing.
        "deadline": "2024-06-05T15:59:59Z",
        "days_left": 3,
    })
}

#[test]
fn a_reminder_in_chinese_shows_the_deadline_in_beijing_time_and_the_days_left() {
    let email = render("reminder", Lang::ZhCn, &reminder_context()).unwrap();
    assert_eq!(
        email.subject,
        "【截止提醒】2024年广东省知识产权保护中心建设项目：形式审查整改材料提交还有 3 天截止"
    );
    for expected in [
        "张三，您好：",
        "项目：2024年广东省知识产权保护中心建设项目",
        "事项：形式审查整改材料提交",
        "截止时间：2024年6月5日（星期三）23:59（北京时间）",
        "剩余天数：3 天",
        "办理入口：https://grantflow.example.gov.cn/projects/GD-2024-0042",
    ] {
        assert!(
            email.text.contains(expected),
            "missing {expected:?} in:\n{}",
            email.text
        );
    }
    assert!(email.html.starts_with("<!DOCTYPE html>"));
    assert!(email.html.contains(r#"<html lang="zh-CN">"#));
    assert!(
        email
            .html
            .contains(&format!("<title>{}</title>", email.subject))
    );
    assert!(
        email
            .html
            .contains("<strong>2024年6月5日（星期三）23:59（北京时间）</strong>")
    );
    assert!(email.html.contains("<strong>3 天</strong>"));
    // The HTML part is HTML (auto-escaped), the text part is not.
    assert!(email.html.contains("<td>形式审查整改材料提交</td>"));
    assert!(!email.text.contains('<'));
}

#[test]
fn a_reminder_in_english_shows_the_same_values() {
    let email = render("reminder", Lang::En, &reminder_context()).unwrap();
    assert_eq!(
        email.subject,
        "[Reminder] 2024年广东省知识产权保护中心建设项目: 形式审查整改材料提交 is due in 3 days"
    );
    for expected in [
        "Dear 张三,",
        "Project: 2024年广东省知识产权保护中心建设项目",
        "Deadline: Wednesday, 5 June 2024, 23:59 (Beijing time)",
        "Days left: 3",
    ] {
        assert!(
            email.text.contains(expected),
            "missing {expected:?} in:\n{}",
            email.text
        );
    }
    assert!(email.html.contains(r#"<html lang="en">"#));
    assert!(
        email
            .html
            .contains("<strong>Wednesday, 5 June 2024, 23:59 (Beijing time)</strong>")
    );
}

#[test]
fn rendering_with_a_missing_variable_or_an_unknown_template_fails() {
    let mut context = reminder_context();
    context.as_object_mut().unwrap().remove("deadline");
    assert!(matches!(
        render("reminder", Lang::En, &context),
        Err(RenderError::MissingVariables { missing, .. }) if missing == ["deadline"]
    ));
    assert!(matches!(
        render("reminders", Lang::En, &reminder_context()),
        Err(RenderError::UnknownTemplate(_))
    ));
}

#[test]
fn every_template_has_a_subject_text_and_html_in_both_languages() {
    for name in grantflow_mail::TEMPLATE_NAMES {
        for lang in [Lang::ZhCn, Lang::En] {
            let email = render(name, lang, &sample_context(name).unwrap()).unwrap();
            assert!(!email.subject.is_empty() && !email.text.is_empty() && !email.html.is_empty());
        }
    }
}

#[test]
fn the_calendar_event_parses_back_with_its_uid_start_and_escaped_text() {
    let event = common::reminder_event();
    let ics = event.to_ics();

    // Folded: the description is far longer than 75 octets.
    assert!(ics.contains("\r\n "), "{ics}");
    let calendar = Calendar::from_str(&ics).unwrap();
    assert_eq!(calendar.property_value("METHOD"), Some("PUBLISH"));
    let parsed: Vec<_> = calendar.events().collect();
    assert_eq!(parsed.len(), 1);
    let parsed = parsed[0];
    assert_eq!(parsed.get_uid(), Some(event.uid().as_str()));
    assert_eq!(
        parsed.get_start(),
        Some(DatePerhapsTime::DateTime(CalendarDateTime::Utc(
            Utc.with_ymd_and_hms(2024, 6, 5, 15, 59, 59).unwrap()
        )))
    );
    assert_eq!(parsed.get_timestamp(), Some(event.stamp));
    // Commas, semicolons and line breaks survive escaping and folding.
    assert_eq!(parsed.get_summary(), Some(event.summary.as_str()));
    assert_eq!(parsed.get_description(), Some(event.description.as_str()));
    assert_eq!(parsed.get_url(), event.url.as_deref());

    // Unfolding gives one logical line per property.
    let unfolded = unfold(&ics);
    assert!(
        unfolded
            .lines()
            .any(|line| line == "DTSTART:20240605T155959Z")
    );
}

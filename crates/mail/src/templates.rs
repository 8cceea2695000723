//! Email templates (minijinja, embedded in the binary) in Simplified Chinese and English.
//!
//! Each template has a subject and a plain-text body (`<lang>/<name>.txt`, blocks `subject` and
//! `body`) and an HTML body (`<lang>/<name>.html`, auto-escaped). Undefined variables are an
//! error, so a caller that forgets a value gets an error instead of a mail with a hole in it.
//!
//! Timestamps in the context are RFC 3339 strings (any offset, e.g. `2024-06-05T15:59:59Z`) and
//! are shown in Asia/Shanghai by the `datetime` filter; `date` shows the calendar day. A plain
//! `YYYY-MM-DD` is taken as a date that is already a China Standard Time calendar day.
//!
//! Every template gets `recipient_name` and `link` (a URL into the platform), plus:
//!
//! | template | variables |
//! | --- | --- |
//! | `reminder` | `project_name`, `task`, `deadline`, `days_left` |
//! | `due` | `project_name`, `task`, `deadline` |
//! | `overdue` | `project_name`, `task`, `deadline`, `days_overdue` |
//! | `escalation` | `role` (the supervising role addressed), `late_party` (who is late), `project_name`, `task`, `deadline`, `days_overdue` |
//! | `timeout` | `project_name`, `task`, `deadline`, `fired_at`, `outcome` (what the timeout did) |
//! | `digest` | `due_soon` and `overdue`: lists of `{project_name, task, deadline, days_left}` / `{project_name, task, deadline, days_overdue}` (either may be empty) |
//! | `password_reset` | `token`, `expires_at` (`link` is the one-time reset link) |
//! | `notification` | `project_name`, `event` (e.g. 退回修改), `actor`, `occurred_at`, `reason` (may be null) |
//! | `review_assigned` | `project_name`, `review_kind` (e.g. 专家评审), `deadline` |
//!
//! [`sample_context`] returns a complete context for each template.

use std::sync::LazyLock;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Weekday};
use chrono_tz::Asia::Shanghai;
use minijinja::{Environment, ErrorKind, State, UndefinedBehavior};
use serde_json::{Value, json};

/// The names of all templates.
pub const TEMPLATE_NAMES: [&str; 9] = [
    "reminder",
    "due",
    "overdue",
    "escalation",
    "timeout",
    "digest",
    "password_reset",
    "notification",
    "review_assigned",
];

/// The language of an email: the one `Lang` of the domain (Simplified Chinese unless the
/// recipient chose English); its tag is also the template folder name.
pub use grantflow_domain::Lang;

impl From<grantflow_domain::UnknownLang> for RenderError {
    fn from(e: grantflow_domain::UnknownLang) -> Self {
        Self::UnknownLanguage(e.0)
    }
}

/// A rendered email: subject, plain-text body and HTML body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("unknown email template {0:?}")]
    UnknownTemplate(String),
    #[error("unknown email language {0:?} (expected zh-CN or en)")]
    UnknownLanguage(String),
    #[error("the context of an email template must be a JSON object")]
    ContextNotAnObject,
    #[error("template {template} ({lang}): missing context variables: {}", missing.join(", "))]
    MissingVariables {
        template: String,
        lang: Lang,
        missing: Vec<String>,
    },
    #[error("template {template} ({lang}): {detail}")]
    Template {
        template: String,
        lang: Lang,
        detail: String,
    },
}

/// Renders `template` in `lang` with `context` (a JSON object; see the module docs for the
/// variables of each template).
pub fn render(template: &str, lang: Lang, context: &Value) -> Result<RenderedEmail, RenderError> {
    if !TEMPLATE_NAMES.contains(&template) {
        return Err(RenderError::UnknownTemplate(template.to_owned()));
    }
    let Value::Object(fields) = context else {
        return Err(RenderError::ContextNotAnObject);
    };
    // Strict undefined catches these too, but minijinja's error does not say which one.
    let missing: Vec<String> = template_variables(template, lang)?
        .into_iter()
        .filter(|name| !fields.contains_key(name))
        .collect();
    if !missing.is_empty() {
        return Err(RenderError::MissingVariables {
            template: template.to_owned(),
            lang,
            missing,
        });
    }
    let mut fields = fields.clone();
    fields.insert("lang".to_owned(), Value::from(lang.tag()));
    let context = Value::Object(fields);

    let template_error = |err: minijinja::Error| RenderError::Template {
        template: template.to_owned(),
        lang,
        detail: describe(&err),
    };
    let text_template = ENVIRONMENT
        .get_template(&format!("{}/{template}.txt", lang.tag()))
        .map_err(template_error)?;
    let mut captured = text_template
        .render_captured(&context)
        .map_err(template_error)?;
    // A header is one line: collapse whatever whitespace the template left.
    let subject = captured
        .with_state_mut(|state| state.render_block("subject"))
        .map_err(template_error)?;
    let text = captured.into_output();
    let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");

    // The HTML layout shows the subject as the page title.
    let mut context = context;
    context["subject"] = Value::from(subject.as_str());
    let html = ENVIRONMENT
        .get_template(&format!("{}/{template}.html", lang.tag()))
        .and_then(|html_template| html_template.render(&context))
        .map_err(template_error)?;

    Ok(RenderedEmail {
        subject,
        text: text.trim().to_owned() + "\n",
        html,
    })
}

/// The variables a template reads from its context, in both languages.
pub fn template_variables(template: &str, lang: Lang) -> Result<Vec<String>, RenderError> {
    if !TEMPLATE_NAMES.contains(&template) {
        return Err(RenderError::UnknownTemplate(template.to_owned()));
    }
    let mut variables = std::collections::BTreeSet::new();
    for extension in ["txt", "html"] {
        let name = format!("{}/{template}.{extension}", lang.tag());
        let parsed = ENVIRONMENT
            .get_template(&name)
            .map_err(|err| RenderError::Template {
                template: template.to_owned(),
                lang,
                detail: describe(&err),
            })?;
        variables.extend(parsed.undeclared_variables(false));
        // Layouts are separate templates: their variables count too.
        let layout = ENVIRONMENT
            .get_template(&format!("{}/_layout.{extension}", lang.tag()))
            .map_err(|err| RenderError::Template {
                template: template.to_owned(),
                lang,
                detail: describe(&err),
            })?;
        variables.extend(layout.undeclared_variables(false));
    }
    // Supplied by `render` itself.
    variables.remove("lang");
    variables.remove("subject");
    Ok(variables.into_iter().collect())
}

/// A complete context for `template`, with plausible values; for previews, docs and tests.
pub fn sample_context(template: &str) -> Option<Value> {
    let mut context = json!({
        "recipient_name": "张三",
        "link": "https://grantflow.example.gov.cn/projects/GD-2024-0042",
    });
    let specific = match template {
        "reminder" => json!({
            "project_name": "2024年广东省知识产权保护中心建设项目",
            "task": "形式审查整改材料提交",
            "deadline": "2024-06-05T15:59:59Z",
            "days_left": 3,
        }),
        "due" => json!({
            "project_name": "2024年广东省知识产权保护中心建设项目",
            "task": "验收材料提交",
            "deadline": "2024-06-05T15:59:59Z",
        }),
        "overdue" => json!({
            "project_name": "2024年广东省知识产权保护中心建设项目",
            "task": "绩效自评报告提交",
            "deadline": "2024-06-05T15:59:59Z",
            "days_overdue": 2,
        }),
        "escalation" => json!({
            "role": "知识产权促进处",
            "late_party": "广州市某某科技有限公司",
            "project_name": "2024年广东省知识产权保护中心建设项目",
            "task": "中期检查材料提交",
            "deadline": "2024-06-05T15:59:59Z",
            "days_overdue": 5,
        }),
        "timeout" => json!({
            "project_name": "2024年广东省知识产权保护中心建设项目",
            "task": "形式审查整改",
            "deadline": "2024-06-05T15:59:59Z",
            "fired_at": "2024-06-05T16:00:00Z",
            "outcome": "申报已按逾期未整改处理，状态变为不予受理",
        }),
        "digest" => json!({
            "due_soon": [
                {"project_name": "项目甲", "task": "验收材料提交", "deadline": "2024-06-07T09:59:59Z", "days_left": 2},
                {"project_name": "项目乙", "task": "专家评审", "deadline": "2024-06-10T09:59:59Z", "days_left": 5},
            ],
            "overdue": [
                {"project_name": "项目丙", "task": "绩效自评报告提交", "deadline": "2024-06-01T15:59:59Z", "days_overdue": 4},
            ],
        }),
        "password_reset" => json!({
            "token": "7Q2K-9XWM",
            "expires_at": "2024-06-05T04:30:00Z",
        }),
        "notification" => json!({
            "project_name": "2024年广东省知识产权保护中心建设项目",
            "event": "退回修改",
            "actor": "知识产权促进处 李四",
            "occurred_at": "2024-06-03T02:15:00Z",
            "reason": "预算明细缺少专家咨询费测算依据",
        }),
        "review_assigned" => json!({
            "project_name": "2024年广东省知识产权保护中心建设项目",
            "review_kind": "专家评审",
            "deadline": "2024-06-12T09:59:59Z",
        }),
        _ => return None,
    };
    if let (Value::Object(all), Value::Object(specific)) = (&mut context, specific) {
        all.extend(specific);
    }
    Some(context)
}

/// minijinja's `Display` omits the cause chain; undefined variables name themselves only there.
fn describe(err: &minijinja::Error) -> String {
    let mut out = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

macro_rules! embedded_templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../templates/", $name)))),*]
    };
}

const EMBEDDED: &[(&str, &str)] = embedded_templates![
    "zh-CN/_layout.txt",
    "zh-CN/_layout.html",
    "zh-CN/reminder.txt",
    "zh-CN/reminder.html",
    "zh-CN/due.txt",
    "zh-CN/due.html",
    "zh-CN/overdue.txt",
    "zh-CN/overdue.html",
    "zh-CN/escalation.txt",
    "zh-CN/escalation.html",
    "zh-CN/timeout.txt",
    "zh-CN/timeout.html",
    "zh-CN/digest.txt",
    "zh-CN/digest.html",
    "zh-CN/password_reset.txt",
    "zh-CN/password_reset.html",
    "zh-CN/notification.txt",
    "zh-CN/notification.html",
    "zh-CN/review_assigned.txt",
    "zh-CN/review_assigned.html",
    "en/_layout.txt",
    "en/_layout.html",
    "en/reminder.txt",
    "en/reminder.html",
    "en/due.txt",
    "en/due.html",
    "en/overdue.txt",
    "en/overdue.html",
    "en/escalation.txt",
    "en/escalation.html",
    "en/timeout.txt",
    "en/timeout.html",
    "en/digest.txt",
    "en/digest.html",
    "en/password_reset.txt",
    "en/password_reset.html",
    "en/notification.txt",
    "en/notification.html",
    "en/review_assigned.txt",
    "en/review_assigned.html",
];

static ENVIRONMENT: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    // The default auto-escape callback escapes `.html` templates and leaves `.txt` alone.
    env.add_filter("datetime", datetime_filter);
    env.add_filter("date", date_filter);
    for (name, source) in EMBEDDED {
        // The templates are part of the binary; a syntax error is a bug caught by every test.
        env.add_template(name, source)
            .unwrap_or_else(|err| panic!("embedded email template {name}: {err}"));
    }
    env
});

/// A timestamp in the context: an instant (RFC 3339) or a CST calendar day (`YYYY-MM-DD`).
enum Shown {
    Instant(DateTime<chrono_tz::Tz>),
    Day(NaiveDate),
}

fn parse_shown(value: &str) -> Result<Shown, minijinja::Error> {
    if let Ok(instant) = DateTime::parse_from_rfc3339(value) {
        return Ok(Shown::Instant(instant.with_timezone(&Shanghai)));
    }
    if let Ok(day) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Ok(Shown::Day(day));
    }
    Err(minijinja::Error::new(
        ErrorKind::InvalidOperation,
        format!("{value:?} is neither an RFC 3339 timestamp nor a YYYY-MM-DD date"),
    ))
}

fn state_lang(state: &State) -> Lang {
    state
        .lookup("lang")
        .and_then(|value| value.as_str().and_then(|tag| tag.parse().ok()))
        .unwrap_or_default()
}

#[allow(
    clippy::needless_pass_by_value,
    reason = "minijinja filters receive their arguments by value"
)]
fn datetime_filter(state: &State, value: String) -> Result<String, minijinja::Error> {
    let lang = state_lang(state);
    Ok(match parse_shown(&value)? {
        Shown::Instant(at) => {
            let day = format_day(at.date_naive(), lang);
            match lang {
                Lang::ZhCn => format!("{day}{:02}:{:02}（北京时间）", at.hour(), at.minute()),
                Lang::En => format!("{day}, {:02}:{:02} (Beijing time)", at.hour(), at.minute()),
            }
        }
        Shown::Day(day) => format_day(day, lang),
    })
}

#[allow(
    clippy::needless_pass_by_value,
    reason = "minijinja filters receive their arguments by value"
)]
fn date_filter(state: &State, value: String) -> Result<String, minijinja::Error> {
    let lang = state_lang(state);
    Ok(match parse_shown(&value)? {
        Shown::Instant(at) => format_day(at.date_naive(), lang),
        Shown::Day(day) => format_day(day, lang),
    })
}

fn format_day(day: NaiveDate, lang: Lang) -> String {
    match lang {
        Lang::ZhCn => {
            let weekday = ["一", "二", "三", "四", "五", "六", "日"]
                [day.weekday().num_days_from_monday() as usize];
            format!(
                "{}年{}月{}日（星期{weekday}）",
                day.year(),
                day.month(),
                day.day()
            )
        }
        Lang::En => {
            const MONTHS: [&str; 12] = [
                "January",
                "February",
                "March",
                "April",
                "May",
                "June",
                "July",
                "August",
                "September",
                "October",
                "November",
                "December",
            ];
            let weekday = match day.weekday() {
                Weekday::Mon => "Monday",
                Weekday::Tue => "Tuesday",
                Weekday::Wed => "Wednesday",
                Weekday::Thu => "Thursday",
                Weekday::Fri => "Friday",
                Weekday::Sat => "Saturday",
                Weekday::Sun => "Sunday",
            };
            format!(
                "{weekday}, {} {} {}",
                day.day(),
                MONTHS[day.month0() as usize],
                day.year()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_renders_its_sample_in_both_languages() {
        for name in TEMPLATE_NAMES {
            let context = sample_context(name).expect("every template has a sample");
            for lang in [Lang::ZhCn, Lang::En] {
                let rendered = render(name, lang, &context)
                    .unwrap_or_else(|err| panic!("{name} {lang}: {err}"));
                assert!(!rendered.subject.is_empty(), "{name} {lang}: empty subject");
                assert!(!rendered.subject.contains('\n'));
                assert!(
                    rendered.text.contains("张三"),
                    "{name} {lang}: {}",
                    rendered.text
                );
                assert!(
                    rendered.html.contains("张三"),
                    "{name} {lang}: {}",
                    rendered.html
                );
                assert!(rendered.html.contains(&format!("lang=\"{}\"", lang.tag())));
            }
        }
    }

    #[test]
    fn both_languages_of_a_template_read_the_same_variables() {
        for name in TEMPLATE_NAMES {
            let zh = template_variables(name, Lang::ZhCn).unwrap();
            let en = template_variables(name, Lang::En).unwrap();
            assert_eq!(zh, en, "{name}");
            let sample = sample_context(name).unwrap();
            let sample_keys: Vec<String> = sample.as_object().unwrap().keys().cloned().collect();
            let mut sample_keys = sample_keys;
            sample_keys.sort();
            assert_eq!(
                zh, sample_keys,
                "{name}: the sample context is not exactly the variables"
            );
        }
    }

    #[test]
    fn a_missing_variable_is_an_error_that_names_it() {
        let mut context = sample_context("reminder").unwrap();
        context.as_object_mut().unwrap().remove("days_left");
        let err = render("reminder", Lang::ZhCn, &context).unwrap_err();
        assert!(
            matches!(&err, RenderError::MissingVariables { template, missing, .. }
                if template == "reminder" && missing == &["days_left"]),
            "{err:?}"
        );
        assert!(err.to_string().contains("days_left"), "{err}");
    }

    #[test]
    fn a_missing_field_of_a_list_item_is_an_error_too() {
        let mut context = sample_context("digest").unwrap();
        context["overdue"][0]
            .as_object_mut()
            .unwrap()
            .remove("days_overdue");
        for lang in [Lang::ZhCn, Lang::En] {
            let err = render("digest", lang, &context).unwrap_err();
            assert!(matches!(err, RenderError::Template { .. }), "{err:?}");
        }
    }

    #[test]
    fn an_unknown_template_or_language_is_an_error() {
        assert!(matches!(
            render("birthday", Lang::En, &json!({})),
            Err(RenderError::UnknownTemplate(name)) if name == "birthday"
        ));
        assert!(matches!(
            "fr".parse::<Lang>().map_err(RenderError::from),
            Err(RenderError::UnknownLanguage(_))
        ));
        assert_eq!("zh-Hans".parse::<Lang>().unwrap(), Lang::ZhCn);
        assert_eq!("EN-us".parse::<Lang>().unwrap(), Lang::En);
        assert!(matches!(
            render("reminder", Lang::En, &json!([1, 2])),
            Err(RenderError::ContextNotAnObject)
        ));
    }

    #[test]
    fn user_text_is_escaped_in_html_but_not_in_plain_text() {
        let mut context = sample_context("notification").unwrap();
        context["reason"] = json!("<script>alert(1)</script> & 预算");
        let rendered = render("notification", Lang::ZhCn, &context).unwrap();
        assert!(
            rendered
                .html
                .contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; 预算")
        );
        assert!(!rendered.html.contains("<script>"));
        assert!(rendered.text.contains("<script>alert(1)</script> & 预算"));
    }

    #[test]
    fn a_null_reason_is_allowed() {
        let mut context = sample_context("notification").unwrap();
        context["reason"] = Value::Null;
        for lang in [Lang::ZhCn, Lang::En] {
            let rendered = render("notification", lang, &context).unwrap();
            assert!(!rendered.text.contains("none"), "{}", rendered.text);
        }
    }

    #[test]
    fn instants_are_shown_in_china_standard_time() {
        // 15:59:59 UTC is 23:59 the same day in Beijing; 16:00 UTC is already the next day.
        let mut context = sample_context("due").unwrap();
        context["deadline"] = json!("2024-06-05T15:59:59Z");
        let zh = render("due", Lang::ZhCn, &context).unwrap();
        assert!(
            zh.text.contains("2024年6月5日（星期三）23:59（北京时间）"),
            "{}",
            zh.text
        );
        let en = render("due", Lang::En, &context).unwrap();
        assert!(
            en.text
                .contains("Wednesday, 5 June 2024, 23:59 (Beijing time)"),
            "{}",
            en.text
        );

        context["deadline"] = json!("2024-06-05T16:00:00Z");
        let zh = render("due", Lang::ZhCn, &context).unwrap();
        assert!(
            zh.text.contains("2024年6月6日（星期四）00:00"),
            "{}",
            zh.text
        );

        context["deadline"] = json!("2024-06-06T00:00:00+08:00");
        let zh = render("due", Lang::ZhCn, &context).unwrap();
        assert!(
            zh.text.contains("2024年6月6日（星期四）00:00"),
            "{}",
            zh.text
        );
    }

    #[test]
    fn a_date_that_is_not_a_timestamp_is_an_error() {
        let mut context = sample_context("due").unwrap();
        context["deadline"] = json!("next Friday");
        let err = render("due", Lang::En, &context).unwrap_err();
        assert!(err.to_string().contains("next Friday"), "{err}");
    }

    #[test]
    fn english_counts_agree_with_their_nouns() {
        let mut context = sample_context("reminder").unwrap();
        context["days_left"] = json!(1);
        let one = render("reminder", Lang::En, &context).unwrap();
        assert!(one.subject.contains("1 day"), "{}", one.subject);
        assert!(!one.subject.contains("1 days"), "{}", one.subject);
        context["days_left"] = json!(3);
        let three = render("reminder", Lang::En, &context).unwrap();
        assert!(three.subject.contains("3 days"), "{}", three.subject);
    }

    #[test]
    fn an_empty_digest_says_so() {
        let mut context = sample_context("digest").unwrap();
        context["due_soon"] = json!([]);
        let rendered = render("digest", Lang::ZhCn, &context).unwrap();
        assert!(rendered.text.contains("项目丙"));
        assert!(
            rendered.text.contains("未来 7 天内没有到期事项"),
            "{}",
            rendered.text
        );
    }
}

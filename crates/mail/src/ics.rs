//! An iCalendar (RFC 5545) event for a deadline, attached to reminder emails so the recipient
//! can put it in a calendar with one click. Written by hand: it is one VEVENT, and the rules
//! that matter (CRLF, folding at 75 octets, TEXT escaping) are short.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// A deadline as a calendar event (`METHOD:PUBLISH`, no attendees, no reply expected).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlineEvent {
    /// The workflow instance (project, application, …) the deadline belongs to.
    pub instance_id: String,
    /// Which deadline of that instance, e.g. `formal_check.correction`. With `instance_id`
    /// it makes the UID, so a moved deadline updates the calendar entry instead of adding one.
    pub deadline_key: String,
    /// The moment the deadline bites.
    pub at: DateTime<Utc>,
    pub summary: String,
    pub description: String,
    pub url: Option<String>,
    /// DTSTAMP: when this version of the event was made (the outbox message's creation time,
    /// so that a message re-sent after a crash carries the same bytes). Calendars keep the
    /// event with the latest stamp.
    pub stamp: DateTime<Utc>,
    /// Bumped each time the deadline is moved; calendars apply the highest sequence.
    pub sequence: u32,
}

impl DeadlineEvent {
    /// `deadline-<32 hex digits>@grantflow`, the same for the same instance and deadline key.
    pub fn uid(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.instance_id.as_bytes());
        // A separator that cannot occur in either part keeps ("ab","c") and ("a","bc") apart.
        hasher.update([0]);
        hasher.update(self.deadline_key.as_bytes());
        let digest = hex::encode(hasher.finalize());
        format!("deadline-{}@grantflow", &digest[..32])
    }

    /// The whole VCALENDAR, CRLF line endings, folded at 75 octets.
    pub fn to_ics(&self) -> String {
        let mut out = String::new();
        let mut line = |content: String| {
            out.push_str(&fold(&content));
            out.push_str("\r\n");
        };
        line("BEGIN:VCALENDAR".into());
        line("VERSION:2.0".into());
        line("PRODID:-//grantflow//grantflow-mail//EN".into());
        line("CALSCALE:GREGORIAN".into());
        line("METHOD:PUBLISH".into());
        line("BEGIN:VEVENT".into());
        line(format!("UID:{}", self.uid()));
        line(format!("DTSTAMP:{}", utc_stamp(self.stamp)));
        line(format!("DTSTART:{}", utc_stamp(self.at)));
        line(format!("SEQUENCE:{}", self.sequence));
        line(format!("SUMMARY:{}", escape_text(&self.summary)));
        line(format!("DESCRIPTION:{}", escape_text(&self.description)));
        if let Some(url) = &self.url {
            // A URI is not TEXT: no backslash escaping, but it must stay on one logical line.
            let url: String = url.chars().filter(|c| !c.is_control()).collect();
            line(format!("URL:{url}"));
        }
        // A deadline does not make the recipient busy.
        line("TRANSP:TRANSPARENT".into());
        line("END:VEVENT".into());
        line("END:VCALENDAR".into());
        out
    }
}

fn utc_stamp(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

/// RFC 5545 §3.3.11: backslash, semicolon and comma are escaped; line breaks become `\n`.
pub(crate) fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// RFC 5545 §3.1: lines longer than 75 octets are split with CRLF + one space; the space counts
/// towards the next line's 75. Splits fall between characters, never inside a UTF-8 sequence.
pub(crate) fn fold(line: &str) -> String {
    const LIMIT: usize = 75;
    let mut out = String::with_capacity(line.len() + line.len() / LIMIT * 3);
    let mut used = 0;
    for c in line.chars() {
        let width = c.len_utf8();
        if used + width > LIMIT {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push(c);
        used += width;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn event() -> DeadlineEvent {
        DeadlineEvent {
            instance_id: "GD-2024-0042".into(),
            deadline_key: "formal_check.correction".into(),
            at: Utc.with_ymd_and_hms(2024, 6, 5, 15, 59, 59).unwrap(),
            summary: "截止：形式审查整改材料提交".into(),
            description: "项目：2024年广东省知识产权保护中心建设项目\n请登录系统提交整改材料。"
                .into(),
            url: Some("https://grantflow.example.gov.cn/projects/GD-2024-0042".into()),
            stamp: Utc.with_ymd_and_hms(2024, 6, 2, 1, 0, 0).unwrap(),
            sequence: 0,
        }
    }

    #[test]
    fn every_line_ends_with_crlf_and_is_at_most_75_octets() {
        let ics = event().to_ics();
        assert!(ics.ends_with("END:VCALENDAR\r\n"));
        assert!(!ics.replace("\r\n", "").contains('\n'));
        for physical in ics.split("\r\n") {
            assert!(
                physical.len() <= 75,
                "{} octets: {physical}",
                physical.len()
            );
        }
    }

    #[test]
    fn folding_splits_between_characters_and_unfolds_to_the_original() {
        let long = format!("DESCRIPTION:{}", "知识产权".repeat(40));
        let folded = fold(&long);
        assert!(folded.contains("\r\n "));
        for physical in folded.split("\r\n") {
            assert!(physical.len() <= 75);
        }
        assert_eq!(folded.replace("\r\n ", ""), long);
        assert_eq!(fold("SHORT:x"), "SHORT:x");
        let exactly = "X".repeat(75);
        assert_eq!(fold(&exactly), exactly);
        assert_eq!(fold(&"X".repeat(76)), format!("{}\r\n X", "X".repeat(75)));
    }

    #[test]
    fn text_escaping_follows_rfc_5545() {
        assert_eq!(escape_text("a,b;c\\d\ne\r\nf"), "a\\,b\\;c\\\\d\\ne\\nf");
    }

    #[test]
    fn the_uid_depends_on_instance_and_deadline_only() {
        let original = event();
        let mut moved = event();
        moved.at = Utc.with_ymd_and_hms(2024, 6, 12, 15, 59, 59).unwrap();
        moved.summary = "changed".into();
        moved.sequence = 1;
        assert_eq!(original.uid(), moved.uid());
        let mut other = event();
        other.deadline_key = "acceptance.submission".into();
        assert_ne!(original.uid(), other.uid());
        let uid = original.uid();
        assert!(
            uid.starts_with("deadline-") && uid.ends_with("@grantflow"),
            "{uid}"
        );
    }

    #[test]
    fn dtstart_is_in_utc() {
        let ics = event().to_ics();
        assert!(ics.contains("\r\nDTSTART:20240605T155959Z\r\n"), "{ics}");
        assert!(ics.contains("\r\nMETHOD:PUBLISH\r\n"));
    }
}

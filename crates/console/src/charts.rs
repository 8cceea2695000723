//! Small server-rendered SVG charts: a call's funnel by stage (horizontal bars), the
//! spread of the experts' totals per project (one row of dots per project, its median
//! marked), and grades and budget execution grouped by city or category (stacked bars of
//! 优/良/中/差, execution-rate bars). The grouped charts are data-driven: they take
//! [`ProjectFigure`] rows, whatever query produced them (today the call summary's projects;
//! a richer report can hand over the same rows or its own [`Group`]s). Presentation attributes only (the CSP forbids inline styles); every chart
//! has an accessible name and the numbers are also printed beside the marks.

use std::fmt::Write;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const LABEL_W: f64 = 220.0;
const PLOT_W: f64 = 420.0;
const ROW_H: f64 = 28.0;

fn open(out: &mut String, id: &str, label: &str, height: f64) {
    let width = LABEL_W + PLOT_W + 60.0;
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-labelledby="{id}" viewBox="0 0 {width} {height}" width="{width}" height="{height}"><title id="{id}">{}</title>"#,
        escape(label)
    );
}

fn label(s: &str) -> String {
    // 14 characters and an ellipsis fit the label column at 13px, CJK included.
    let t: String = s.chars().take(14).collect();
    escape(&if t.chars().count() < s.chars().count() {
        format!("{t}…")
    } else {
        t
    })
}

/// Bars of `(label, count)`, longest = the largest count.
pub(crate) fn funnel(rows: &[(String, i64)], title: &str) -> String {
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1) as f64;
    let mut out = String::new();
    open(
        &mut out,
        "funnel-title",
        title,
        rows.len() as f64 * ROW_H + 8.0,
    );
    for (i, (name, n)) in rows.iter().enumerate() {
        let y = i as f64 * ROW_H + 4.0;
        let w = (*n as f64 / max * PLOT_W).max(if *n > 0 { 2.0 } else { 0.0 });
        let _ = write!(
            out,
            r##"<text x="{}" y="{}" text-anchor="end" font-size="13" fill="#1d2733">{}</text><rect x="{LABEL_W}" y="{y}" width="{w:.1}" height="{}" fill="#0b5cad"><title>{}: {n}</title></rect><text x="{:.1}" y="{}" font-size="13" fill="#1d2733">{n}</text>"##,
            LABEL_W - 8.0,
            y + 17.0,
            label(name),
            ROW_H - 8.0,
            escape(name),
            LABEL_W + w + 6.0,
            y + 17.0,
        );
    }
    out.push_str("</svg>");
    out
}

/// One row per project: each expert's total as a dot on a 0–`scale` axis, the median
/// as a vertical tick.
pub(crate) fn spread(rows: &[(String, Vec<f64>)], scale: f64, title: &str) -> String {
    let scale = if scale > 0.0 { scale } else { 100.0 };
    let x = |v: f64| LABEL_W + (v.clamp(0.0, scale) / scale) * PLOT_W;
    let mut out = String::new();
    let height = rows.len() as f64 * ROW_H + 30.0;
    open(&mut out, "spread-title", title, height);
    for (i, (name, totals)) in rows.iter().enumerate() {
        let y = i as f64 * ROW_H + 16.0;
        let _ = write!(
            out,
            r##"<text x="{}" y="{}" text-anchor="end" font-size="13" fill="#1d2733">{}</text><line x1="{LABEL_W}" y1="{y}" x2="{}" y2="{y}" stroke="#d5dbe3"/>"##,
            LABEL_W - 8.0,
            y + 4.0,
            label(name),
            LABEL_W + PLOT_W,
        );
        for t in totals {
            let _ = write!(
                out,
                r##"<circle cx="{:.1}" cy="{y}" r="5" fill="#0b5cad" fill-opacity="0.7"><title>{t:.1}</title></circle>"##,
                x(*t)
            );
        }
        if let Some(m) = median(totals) {
            let _ = write!(
                out,
                r##"<line x1="{0:.1}" y1="{1}" x2="{0:.1}" y2="{2}" stroke="#b3261e" stroke-width="2"><title>median {m:.1}</title></line><text x="{3}" y="{4}" font-size="12" fill="#5b6675">{m:.1}</text>"##,
                x(m),
                y - 9.0,
                y + 9.0,
                LABEL_W + PLOT_W + 8.0,
                y + 4.0,
            );
        }
    }
    // The axis: 0, half and the full scale.
    let axis_y = rows.len() as f64 * ROW_H + 20.0;
    for v in [0.0, scale / 2.0, scale] {
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{axis_y}" text-anchor="middle" font-size="11" fill="#5b6675">{v}</text>"##,
            x(v)
        );
    }
    out.push_str("</svg>");
    out
}

/// One project's figures for the grouped charts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ProjectFigure {
    pub city: String,
    pub category: String,
    /// 优, 良, 中 or 差 once graded.
    pub grade: Option<String>,
    pub budgeted: f64,
    pub spent: f64,
}

/// The grades, in the order the bars stack them, with their colours (distinct in grey
/// too; each segment also carries its count as a title).
pub(crate) const GRADES: [(&str, &str); 4] = [
    ("优", "#1b7f3b"),
    ("良", "#0b5cad"),
    ("中", "#c77700"),
    ("差", "#b3261e"),
];

/// The figures of one group (a city, a category).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Group {
    pub name: String,
    pub projects: usize,
    /// Counts by [`GRADES`].
    pub grades: [i64; 4],
    pub budgeted: f64,
    pub spent: f64,
}

impl Group {
    pub(crate) fn rate(&self) -> Option<f64> {
        (self.budgeted > 0.0).then(|| self.spent / self.budgeted)
    }
}

/// Groups `projects` by `key` (groups in name order).
pub(crate) fn group_by(
    projects: &[ProjectFigure],
    key: impl Fn(&ProjectFigure) -> &str,
) -> Vec<Group> {
    let mut groups: std::collections::BTreeMap<String, Group> = Default::default();
    for p in projects {
        let g = groups.entry(key(p).to_string()).or_insert_with(|| Group {
            name: key(p).to_string(),
            ..Group::default()
        });
        g.projects += 1;
        g.budgeted += p.budgeted;
        g.spent += p.spent;
        if let Some(i) = p
            .grade
            .as_deref()
            .and_then(|grade| GRADES.iter().position(|(g, _)| *g == grade))
        {
            g.grades[i] += 1;
        }
    }
    groups.into_values().collect()
}

/// Stacked bars of each group's graded projects by grade, with a legend; `id` names the
/// chart for its title.
pub(crate) fn grades(groups: &[Group], id: &str, title: &str) -> String {
    let max = groups
        .iter()
        .map(|g| g.grades.iter().sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let mut out = String::new();
    open(&mut out, id, title, groups.len() as f64 * ROW_H + 34.0);
    for (i, g) in groups.iter().enumerate() {
        let y = i as f64 * ROW_H + 4.0;
        let _ = write!(
            out,
            r##"<text x="{}" y="{}" text-anchor="end" font-size="13" fill="#1d2733">{}</text>"##,
            LABEL_W - 8.0,
            y + 17.0,
            label(&g.name),
        );
        let mut x = LABEL_W;
        for (k, (grade, colour)) in GRADES.iter().enumerate() {
            let n = g.grades[k];
            if n == 0 {
                continue;
            }
            let w = n as f64 / max * PLOT_W;
            let _ = write!(
                out,
                r##"<rect class="grade" data-grade="{grade}" x="{x:.1}" y="{y}" width="{w:.1}" height="{}" fill="{colour}"><title>{}: {grade} {n}</title></rect>"##,
                ROW_H - 8.0,
                escape(&g.name),
            );
            x += w;
        }
        let total: i64 = g.grades.iter().sum();
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{}" font-size="13" fill="#1d2733">{total}/{}</text>"##,
            x + 6.0,
            y + 17.0,
            g.projects,
        );
    }
    // The legend.
    let ly = groups.len() as f64 * ROW_H + 20.0;
    for (k, (grade, colour)) in GRADES.iter().enumerate() {
        let lx = LABEL_W + k as f64 * 60.0;
        let _ = write!(
            out,
            r##"<rect x="{lx}" y="{}" width="12" height="12" fill="{colour}"/><text x="{}" y="{ly}" font-size="12" fill="#1d2733">{grade}</text>"##,
            ly - 10.0,
            lx + 16.0,
        );
    }
    out.push_str("</svg>");
    out
}

/// Bars of each group's budget execution (spent ÷ budgeted, 0–100 %; more is drawn at
/// the full width and printed as it is), with the amounts printed beside them.
pub(crate) fn execution(groups: &[Group], id: &str, title: &str) -> String {
    let mut out = String::new();
    open(&mut out, id, title, groups.len() as f64 * ROW_H + 8.0);
    for (i, g) in groups.iter().enumerate() {
        let y = i as f64 * ROW_H + 4.0;
        let rate = g.rate();
        let w = rate.map_or(0.0, |r| r.clamp(0.0, 1.0) * PLOT_W);
        let shown = rate.map_or_else(|| "—".to_string(), |r| format!("{:.1}%", r * 100.0));
        let _ = write!(
            out,
            r##"<text x="{}" y="{}" text-anchor="end" font-size="13" fill="#1d2733">{}</text><rect x="{LABEL_W}" y="{y}" width="{PLOT_W}" height="{}" fill="#eef1f5"/><rect class="execution" x="{LABEL_W}" y="{y}" width="{w:.1}" height="{}" fill="#0b5cad"><title>{}: {shown} ({:.2} / {:.2})</title></rect><text x="{:.1}" y="{}" font-size="13" fill="#1d2733">{shown}</text>"##,
            LABEL_W - 8.0,
            y + 17.0,
            label(&g.name),
            ROW_H - 8.0,
            ROW_H - 8.0,
            escape(&g.name),
            g.spent,
            g.budgeted,
            LABEL_W + PLOT_W + 6.0,
            y + 17.0,
        );
    }
    out.push_str("</svg>");
    out
}

fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn funnel_bars_scale_to_the_largest_stage() {
        let svg = funnel(
            &[
                ("申报".into(), 10),
                ("评审".into(), 5),
                ("<验收>".into(), 0),
            ],
            "漏斗",
        );
        assert!(svg.contains(r#"width="420.0""#) && svg.contains(r#"width="210.0""#));
        assert!(svg.contains("&lt;验收&gt;") && !svg.contains("<验收>"));
        assert!(!svg.contains("style="));
    }

    #[test]
    fn spread_marks_each_total_and_the_median() {
        let svg = spread(&[("项目".into(), vec![80.0, 90.0, 70.0])], 100.0, "分布");
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains("median 80.0"));
        assert_eq!(median(&[1.0, 3.0]), Some(2.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn projects_group_by_city_and_category_into_grade_and_execution_bars() {
        let p = |city: &str, category: &str, grade: Option<&str>, budgeted, spent| ProjectFigure {
            city: city.into(),
            category: category.into(),
            grade: grade.map(str::to_string),
            budgeted,
            spent,
        };
        let projects = [
            p("广州", "保护", Some("优"), 100.0, 90.0),
            p("广州", "运用", Some("中"), 100.0, 50.0),
            p("深圳", "保护", None, 200.0, 0.0),
            p("深圳", "保护", Some("优"), 0.0, 0.0),
        ];
        let cities = group_by(&projects, |p| &p.city);
        assert_eq!(cities.len(), 2);
        assert_eq!(cities[0].grades, [1, 0, 1, 0]);
        assert_eq!(cities[0].rate(), Some(0.7));
        assert_eq!(cities[1].projects, 2);
        let categories = group_by(&projects, |p| &p.category);
        assert_eq!(
            categories.iter().find(|g| g.name == "保护").unwrap().grades,
            [2, 0, 0, 0]
        );

        let svg = grades(&cities, "by-city", "按地市的评价等级");
        assert_eq!(svg.matches(r#"class="grade""#).count(), 3);
        assert!(svg.contains("2/2") && svg.contains("1/2"));
        let svg = execution(&cities, "exec-city", "按地市的预算执行率");
        assert!(svg.contains("70.0%"));
        assert!(svg.contains(r#"width="0.0""#), "深圳 spent nothing");
        assert!(!svg.contains("style="));
        let none = execution(
            &[Group {
                name: "空".into(),
                ..Group::default()
            }],
            "x",
            "t",
        );
        assert!(none.contains("—"));
    }
}

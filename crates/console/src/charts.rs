//! Small server-rendered SVG charts: a call's funnel by stage (horizontal bars) and the
//! spread of the experts' totals per project (one row of dots per project, its median
//! marked). Presentation attributes only (the CSP forbids inline styles); every chart
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
    let t: String = s.chars().take(16).collect();
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
}

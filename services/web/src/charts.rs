//! Charts drawn on the server as SVG, so the figures page needs no script and passes the Content-Security-
//! Policy (presentation attributes only, no `style`). Labels are escaped here: the SVG is put in the page as
//! it is.

use std::fmt::Write;

/// One bar: its label, its length (in the chart's unit) and the text shown at its end.
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub shown: String,
}

const WIDTH: f64 = 640.0;
const LABEL: f64 = 220.0;
const ROW: f64 = 26.0;

/// Horizontal bars, one per row, scaled to the longest; `title` is the chart's accessible name.
pub fn bars(title: &str, bars: &[Bar]) -> String {
    let height = ROW * bars.len().max(1) as f64 + 8.0;
    let max = bars.iter().map(|b| b.value).fold(0.0, f64::max).max(1e-9);
    let mut svg = format!(
        r#"<svg class="chart" role="img" aria-label="{}" viewBox="0 0 {WIDTH} {height}" xmlns="http://www.w3.org/2000/svg">"#,
        escape(title)
    );
    for (i, b) in bars.iter().enumerate() {
        let y = 4.0 + ROW * i as f64;
        let length = (WIDTH - LABEL - 80.0) * (b.value / max).clamp(0.0, 1.0);
        let _ = write!(
            svg,
            r##"<text x="{x}" y="{ty}" text-anchor="end" font-size="13" fill="#1d2433">{label}</text><rect x="{LABEL}" y="{y}" width="{length:.1}" height="18" fill="#0b5cad"></rect><text x="{vx:.1}" y="{ty}" font-size="13" fill="#1d2433">{shown}</text>"##,
            x = LABEL - 8.0,
            ty = y + 14.0,
            label = escape(&b.label),
            vx = LABEL + length + 6.0,
            shown = escape(&b.shown),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Vertical columns, one per item (e.g. per week), scaled to the tallest, labelled underneath.
pub fn columns(title: &str, columns: &[Bar]) -> String {
    let (height, base) = (220.0, 180.0);
    let step = (WIDTH - 40.0) / columns.len().max(1) as f64;
    let max = columns
        .iter()
        .map(|b| b.value)
        .fold(0.0, f64::max)
        .max(1e-9);
    let mut svg = format!(
        r##"<svg class="chart" role="img" aria-label="{}" viewBox="0 0 {WIDTH} {height}" xmlns="http://www.w3.org/2000/svg"><line x1="20" y1="{base}" x2="{}" y2="{base}" stroke="#5a6375"></line>"##,
        escape(title),
        WIDTH - 20.0
    );
    for (i, c) in columns.iter().enumerate() {
        let tall = (base - 30.0) * (c.value / max).clamp(0.0, 1.0);
        let x = 20.0 + step * i as f64 + step * 0.15;
        let _ = write!(
            svg,
            r##"<rect x="{x:.1}" y="{top:.1}" width="{w:.1}" height="{tall:.1}" fill="#0b5cad"></rect><text x="{cx:.1}" y="{vy:.1}" text-anchor="middle" font-size="12" fill="#1d2433">{shown}</text><text x="{cx:.1}" y="{ly}" text-anchor="middle" font-size="12" fill="#5a6375">{label}</text>"##,
            top = base - tall,
            w = step * 0.7,
            cx = x + step * 0.35,
            vy = base - tall - 6.0,
            ly = base + 18.0,
            shown = escape(&c.shown),
            label = escape(&c.label),
        );
    }
    svg.push_str("</svg>");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(label: &str, value: f64) -> Bar {
        Bar {
            label: label.into(),
            value,
            shown: format!("{value}"),
        }
    }

    #[test]
    fn bars_are_scaled_to_the_longest_and_labels_escaped() {
        let svg = bars(
            "Статуси",
            &[bar("<b>Placed</b>", 4.0), bar("Declined", 2.0)],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains("&lt;b&gt;Placed&lt;/b&gt;") && !svg.contains("<b>"));
        // The longest fills the room after the labels; half as much, half as long.
        assert!(
            svg.contains(r#"width="340.0""#) && svg.contains(r#"width="170.0""#),
            "{svg}"
        );
        assert!(!svg.contains("style="), "the CSP allows no inline style");
    }

    #[test]
    fn columns_without_values_draw_nothing_tall() {
        let svg = columns("weeks", &[bar("W1", 0.0), bar("W2", 0.0)]);
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains(r#"height="0.0""#));
    }
}

//! Charts drawn on the server as SVG inside the page: readable without scripts, each with a
//! title and a description in words for screen readers.

use loop_api::Language;
use maud::{Markup, html};

use super::catalogue::M;

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 160.0;
/// Room under the bars for the day labels.
const AXIS: f64 = 20.0;

/// Colours of the outcomes (with the page's white, each has a contrast above 4.5:1).
const GREEN: &str = "#1a7f37";
const RED: &str = "#cf222e";
const AMBER: &str = "#9a6700";

/// Stored bytes per day as a line over an area: `points` are (day, bytes), oldest first.
pub fn stored(lang: Language, id: &str, points: &[(String, i64)]) -> Markup {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return html! { p { (M::NoData.text(lang)) } };
    };
    let max = points.iter().map(|p| p.1).max().unwrap_or(0).max(1) as f64;
    let step = if points.len() > 1 {
        WIDTH / (points.len() - 1) as f64
    } else {
        0.0
    };
    let plot = HEIGHT - AXIS;
    let xy: Vec<(f64, f64)> = points
        .iter()
        .enumerate()
        .map(|(i, p)| (i as f64 * step, plot - p.1 as f64 / max * (plot - 4.0)))
        .collect();
    let line: Vec<String> = xy.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    let area = format!(
        "0,{plot} {} {:.1},{plot}",
        line.join(" "),
        xy.last().map_or(0.0, |p| p.0)
    );
    let size = |b: i64| crate::notify::email::size(b.max(0) as u64);
    let desc = M::ChartStoredDesc.fill(lang, &[&size(first.1), &first.0, &size(last.1), &last.0]);
    html! {
        svg.chart role="img" aria-labelledby={(id) "-t " (id) "-d"}
            viewBox={"0 0 " (WIDTH) " " (HEIGHT)} preserveAspectRatio="none" {
            title id={(id) "-t"} { (M::StoredOverTime.text(lang)) }
            desc id={(id) "-d"} { (desc) }
            polygon points=(area) fill="#dbe9f9" {}
            polyline points=(line.join(" ")) fill="none" stroke="#0a58ca" stroke-width="2" {}
            text x="0" y=(HEIGHT - 4.0) font-size="11" fill="#444" { (first.0) }
            text x=(WIDTH) y=(HEIGHT - 4.0) font-size="11" fill="#444" text-anchor="end" {
                (last.0) " · " (size(last.1))
            }
        }
    }
}

/// Jobs that ended per day, stacked by outcome: `days` are (label, [succeeded, failed,
/// other]), oldest first.
pub fn outcomes(lang: Language, id: &str, days: &[(String, [i64; 3])]) -> Markup {
    let total: [i64; 3] = days.iter().fold([0; 3], |mut t, d| {
        (0..3).for_each(|i| t[i] += d.1[i]);
        t
    });
    let all: i64 = total.iter().sum();
    if days.is_empty() || all == 0 {
        return html! { p { (M::NoData.text(lang)) } };
    }
    let max = days
        .iter()
        .map(|d| d.1.iter().sum::<i64>())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let slot = WIDTH / days.len() as f64;
    let plot = HEIGHT - AXIS;
    let desc = M::ChartJobsDesc.fill(
        lang,
        &[
            &all.to_string(),
            &days.len().to_string(),
            &total[0].to_string(),
            &total[1].to_string(),
            &total[2].to_string(),
        ],
    );
    let colours = [GREEN, RED, AMBER];
    html! {
        svg.chart role="img" aria-labelledby={(id) "-t " (id) "-d"}
            viewBox={"0 0 " (WIDTH) " " (HEIGHT)} {
            title id={(id) "-t"} { (M::JobsPerDay.text(lang)) }
            desc id={(id) "-d"} { (desc) }
            @for (i, (label, counts)) in days.iter().enumerate() {
                @let x = i as f64 * slot + slot * 0.15;
                @let mut top = plot;
                @for (k, n) in counts.iter().enumerate() {
                    @if *n > 0 {
                        @let h = *n as f64 / max * (plot - 4.0);
                        @let y = { top -= h; top };
                        rect x=(format!("{x:.1}")) y=(format!("{y:.1}"))
                            width=(format!("{:.1}", slot * 0.7)) height=(format!("{h:.1}"))
                            fill=(colours[k]) {}
                    }
                }
                @if i == 0 || i + 1 == days.len() {
                    text x=(format!("{:.1}", x)) y=(HEIGHT - 4.0) font-size="11" fill="#444" {
                        (label)
                    }
                }
            }
        }
        ul.legend {
            li { span.swatch.ok {} (M::Succeeded.text(lang)) ": " (total[0]) }
            li { span.swatch.failed {} (M::FailedJobs.text(lang)) ": " (total[1]) }
            li { span.swatch.other {} (M::OtherJobs.text(lang)) ": " (total[2]) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bars_stack_to_the_day_with_most_jobs() {
        let days = vec![
            ("2026-12-01".to_string(), [2, 0, 0]),
            ("2026-12-02".to_string(), [1, 1, 2]),
        ];
        let svg = outcomes(Language::En, "jobs", &days).into_string();
        // The busiest day's bars fill the plot's height (140 px less 4 of margin): 34 each.
        assert_eq!(svg.matches("height=\"34.0\"").count(), 2, "{svg}");
        assert!(svg.contains("6 jobs in 2 days: 3 succeeded, 1 failed, 2 other."));
        assert!(svg.contains(RED) && svg.contains(AMBER) && svg.contains(GREEN));
        assert!(
            outcomes(Language::En, "j", &[])
                .into_string()
                .contains("No data")
        );
    }

    #[test]
    fn the_line_runs_from_the_first_day_to_the_last() {
        let pts = vec![
            ("2026-11-01".to_string(), 0),
            ("2026-11-30".to_string(), 2048),
        ];
        let svg = stored(Language::Nl, "s", &pts).into_string();
        assert!(svg.contains("points=\"0.0,140.0 600.0,4.0\""), "{svg}");
        assert!(
            svg.contains("van 0 B op 2026-11-01 tot 2.0 KiB op 2026-11-30"),
            "{svg}"
        );
    }
}

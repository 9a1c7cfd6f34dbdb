//! Messages per day as an inline SVG bar chart: no script, no font to
//! fetch, readable in print. Days without messages between the first and
//! the last are drawn as empty, so gaps show.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use kurir_proto::Date;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 30.0;
const TOP: f64 = 12.0;
/// At most this many days are drawn (the newest); the chart says so.
const MAX_DAYS: usize = 366;

/// The chart of `per_day` (day → messages), or a sentence when empty.
pub(super) fn per_day_svg(per_day: &BTreeMap<Date, usize>) -> String {
    let (Some(first), Some(last)) = (per_day.keys().next(), per_day.keys().next_back()) else {
        return "<p>No messages.</p>\n".to_owned();
    };
    let span = usize::try_from(last.days_since_epoch() - first.days_since_epoch())
        .unwrap_or(0)
        .saturating_add(1);
    let shown = span.min(MAX_DAYS);
    let start = last.days_since_epoch() - (shown as i64 - 1);
    let days: Vec<(Date, usize)> = (0..shown)
        .map(|i| {
            let d = Date::from_days_since_epoch(start + i as i64);
            (d, per_day.get(&d).copied().unwrap_or(0))
        })
        .collect();
    let max = days.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let plot_w = WIDTH - LEFT - 10.0;
    let plot_h = HEIGHT - BOTTOM - TOP;
    let slot = plot_w / shown as f64;
    let bar = (slot * 0.8).clamp(1.0, 36.0);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"messages per day, \
         {first} to {last}\" font-family=\"sans-serif\" font-size=\"10\">"
    );
    let base = HEIGHT - BOTTOM;
    let _ = writeln!(
        o,
        "<line x1=\"{LEFT}\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\" stroke=\"#333\"/>\
         <line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{base}\" stroke=\"#333\"/>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{max}</text>\
         <text x=\"{}\" y=\"{base}\" text-anchor=\"end\">0</text>",
        WIDTH - 10.0,
        LEFT - 4.0,
        TOP + 8.0,
        LEFT - 4.0,
    );
    // A date label is about 60 px wide: one every 70 px at most.
    let label_every = ((70.0 / slot).ceil() as usize).max(1);
    for (i, (day, n)) in days.iter().enumerate() {
        let x = LEFT + i as f64 * slot + (slot - bar) / 2.0;
        let h = plot_h * (*n as f64) / (max as f64);
        if *n > 0 {
            let _ = writeln!(
                o,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\" \
                 fill=\"#3b6ea8\" data-day=\"{day}\" data-count=\"{n}\"><title>{day}: {n}</title></rect>",
                base - h
            );
        }
        if i % label_every == 0 || i + 1 == days.len() {
            let _ = writeln!(
                o,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{day}</text>",
                x + bar / 2.0,
                HEIGHT - BOTTOM + 14.0
            );
        }
    }
    o.push_str("</svg>\n");
    if span > shown {
        let _ = writeln!(
            o,
            "<p class=\"muted\">The newest {shown} of {span} days are drawn.</p>"
        );
    }
    o
}

//! SVG bar charts for the results pages, as typed views for `results/chart.hbs` and
//! `results/stacked.hbs`. Labels are wrapped over lines (`<tspan>`), never cut; the same
//! figures are always in a table beside the chart.

use serde::Serialize;

/// Left column of a chart, where the labels go; bars start at its right edge.
const LABEL_WIDTH: f64 = 220.0;
/// The longest bar.
const BAR_SPAN: f64 = 340.0;
/// Characters per line of a label in the left column (13 px text in 220 px, with a margin).
const LABEL_CHARS: usize = 26;
/// Characters per line of a legend entry (13 px text from x = 240 to the 640 px edge).
const LEGEND_CHARS: usize = 52;
const LINE_HEIGHT: usize = 16;

/// Colours told apart by colour-blind readers too: Okabe and Ito's eight, then four of Paul
/// Tol's "muted" set (indigo, wine, olive, rose). Options past these twelve take the same
/// colours again with stripes, then with stripes the other way: each (colour, pattern) pair is
/// used once. The legend and the data table carry the same information in words.
pub const PALETTE: [&str; 12] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
    "#332288", "#882255", "#999933", "#CC6677",
];

/// Pattern tiers: plain, stripes at 45°, stripes at -45°.
const TIERS: usize = 3;

/// The most series a stacked chart draws; past it the table alone shows the figures.
pub const MAX_SERIES: usize = PALETTE.len() * TIERS;

/// A line of a label, at its own baseline.
#[derive(Debug, Serialize)]
pub struct Line {
    pub y: usize,
    pub text: String,
}

/// `text` broken at spaces into lines of at most `width` characters; a word longer than a
/// line gets a line of its own, whole.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let needed =
            current.chars().count() + usize::from(!current.is_empty()) + word.chars().count();
        if !current.is_empty() && needed > width {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    lines
}

/// The lines of `text` wrapped at `width`, the first baseline at `first_y`.
fn lines(text: &str, width: usize, first_y: usize) -> Vec<Line> {
    wrap(text, width)
        .into_iter()
        .enumerate()
        .map(|(i, text)| Line {
            y: first_y + i * LINE_HEIGHT,
            text,
        })
        .collect()
}

/// The height of a chart row whose label takes `n` lines.
fn row_height(n: usize) -> usize {
    (n * LINE_HEIGHT + 8).max(24)
}

/// A horizontal bar chart.
#[derive(Debug, Serialize)]
pub struct BarChart {
    /// Unique on the page: the id of the chart's title.
    pub key: String,
    pub title: String,
    pub height: usize,
    pub bars: Vec<Bar>,
}

#[derive(Debug, Serialize)]
pub struct Bar {
    pub label: Vec<Line>,
    pub y: usize,
    pub width: f64,
    pub value_x: f64,
    pub value_y: usize,
    pub value: String,
}

/// One bar of a chart: its label, its length, and the value written after it.
pub struct BarData {
    pub label: String,
    pub value: f64,
    pub shown: String,
}

impl BarChart {
    pub fn new(key: String, title: String, data: &[BarData]) -> BarChart {
        let max = data
            .iter()
            .map(|b| b.value)
            .fold(0.0_f64, f64::max)
            .max(1e-9);
        let mut top = 4;
        let bars = data
            .iter()
            .map(|b| {
                let label = lines(&b.label, LABEL_CHARS, top + 14);
                let height = row_height(label.len());
                let width = (b.value / max * BAR_SPAN).round();
                let bar = Bar {
                    y: top,
                    width,
                    value_x: LABEL_WIDTH + 6.0 + width,
                    value_y: top + 14,
                    value: b.shown.clone(),
                    label,
                };
                top += height;
                bar
            })
            .collect();
        BarChart {
            key,
            title,
            height: top + 4,
            bars,
        }
    }
}

/// How a series is filled: a plain colour, or a pattern defined in the chart.
#[derive(Debug, Serialize)]
pub struct Fill {
    /// The value of the `fill` attribute.
    pub paint: String,
    pub colour: &'static str,
    /// The pattern to define, for series past the first twelve.
    pub pattern: Option<Pattern>,
}

#[derive(Debug, Serialize)]
pub struct Pattern {
    pub id: String,
    pub colour: &'static str,
    pub angle: i32,
}

/// The fill of series `index` in the chart `key`: distinct for every index below
/// [`MAX_SERIES`].
pub fn fill(key: &str, index: usize) -> Fill {
    let colour = PALETTE[index % PALETTE.len()];
    match index / PALETTE.len() {
        0 => Fill {
            paint: colour.to_string(),
            colour,
            pattern: None,
        },
        tier => {
            let id = format!("{key}-p{index}");
            Fill {
                paint: format!("url(#{id})"),
                colour,
                pattern: Some(Pattern {
                    id,
                    colour,
                    angle: if tier == 1 { 45 } else { -45 },
                }),
            }
        }
    }
}

/// A stacked horizontal bar chart of a breakdown: one bar per group, one segment per series,
/// each segment's length its count (so bars compare group sizes too), with a legend.
#[derive(Debug, Serialize)]
pub struct StackedChart {
    pub key: String,
    pub title: String,
    pub height: usize,
    pub fills: Vec<Fill>,
    pub bars: Vec<StackedBar>,
    pub legend: Vec<LegendEntry>,
}

#[derive(Debug, Serialize)]
pub struct StackedBar {
    pub label: Vec<Line>,
    pub segments: Vec<Segment>,
    pub total_x: f64,
    pub total_y: usize,
    pub total: i64,
}

#[derive(Debug, Serialize)]
pub struct Segment {
    pub x: f64,
    pub y: usize,
    pub width: f64,
    pub fill: String,
    pub tip: String,
}

#[derive(Debug, Serialize)]
pub struct LegendEntry {
    pub y: usize,
    pub fill: String,
    pub label: Vec<Line>,
}

impl StackedChart {
    /// `groups`: (label, counts in the order of `series`). `None` past [`MAX_SERIES`] series.
    pub fn new(
        key: &str,
        title: String,
        series: &[String],
        groups: &[(String, Vec<i64>)],
    ) -> Option<StackedChart> {
        if series.len() > MAX_SERIES {
            return None;
        }
        let fills: Vec<Fill> = (0..series.len()).map(|s| fill(key, s)).collect();
        let max = groups
            .iter()
            .map(|(_, counts)| counts.iter().sum::<i64>())
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        let mut top = 4;
        let bars = groups
            .iter()
            .map(|(label, counts)| {
                let lines = lines(label, LABEL_CHARS, top + 14);
                let height = row_height(lines.len());
                let mut x = LABEL_WIDTH;
                let segments = counts
                    .iter()
                    .zip(series.iter().zip(&fills))
                    .filter(|(n, _)| **n > 0)
                    .map(|(n, (name, f))| {
                        let width = (*n as f64 / max * BAR_SPAN).round().max(1.0);
                        let seg = Segment {
                            x,
                            y: top,
                            width,
                            fill: f.paint.clone(),
                            tip: format!("{label}, {name}: {n}"),
                        };
                        x += width;
                        seg
                    })
                    .collect();
                let bar = StackedBar {
                    label: lines,
                    segments,
                    total_x: x + 6.0,
                    total_y: top + 14,
                    total: counts.iter().sum(),
                };
                top += height;
                bar
            })
            .collect();
        top += 8;
        let legend = series
            .iter()
            .zip(&fills)
            .map(|(name, f)| {
                let label = lines(name, LEGEND_CHARS, top + 12);
                let entry = LegendEntry {
                    y: top,
                    fill: f.paint.clone(),
                    label,
                };
                top += (entry.label.len() * LINE_HEIGHT + 4).max(20);
                entry
            })
            .collect();
        Some(StackedChart {
            key: key.to_string(),
            title,
            height: top + 4,
            fills,
            bars,
            legend,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_every_word_whole() {
        let text = "Ministry of Foreign Affairs and International Cooperation (consular section)";
        let lines = wrap(text, 26);
        assert!(lines.len() > 1);
        assert_eq!(lines.join(" "), text);
        assert!(lines.iter().all(|l| l.chars().count() <= 26), "{lines:?}");
        let long = wrap("Interministerialcoordinationcommittee x", 10);
        assert_eq!(long, ["Interministerialcoordinationcommittee", "x"]);
        assert_eq!(wrap("", 10), [""]);
    }

    #[test]
    fn every_series_up_to_the_maximum_has_its_own_fill() {
        let fills: Vec<(String, Option<i32>)> = (0..MAX_SERIES)
            .map(|i| {
                let f = fill("k", i);
                (f.colour.to_string(), f.pattern.map(|p| p.angle))
            })
            .collect();
        let unique: std::collections::BTreeSet<_> = fills.iter().collect();
        assert_eq!(unique.len(), MAX_SERIES);
        let colours: std::collections::BTreeSet<_> = PALETTE.iter().collect();
        assert_eq!(colours.len(), 12);
    }
}

//! What each results page shows, as typed views for strict templates: built from the figures
//! `crate::results` computed, in the page's language.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::charts::{BarChart, BarData, StackedChart};
use crate::i18n::translate;
use crate::reference::{Countries, Country};
use crate::results::aggregate::{Filter, Grouping, NumberStats, RateRow, TextAnswer};
use crate::results::cache::Weight;
use crate::results::practices::{by_theme, Listing, Match, Need, Practice};
use crate::survey::{EscapeKind, Question, QuestionKind, Survey, OTHER_CODE};

/// The page's language and the reference list of countries: what every label needs.
#[derive(Clone, Copy)]
pub struct Words<'a> {
    pub lang: &'static str,
    pub countries: &'a Countries,
}

impl Words<'_> {
    pub fn t(&self, id: &str, args: &[(&str, String)]) -> String {
        translate(self.lang, id, args)
    }

    pub fn percent(&self, part: i64, whole: i64) -> String {
        if whole == 0 {
            return "–".into();
        }
        let n = part as f64 * 100.0 / whole as f64;
        // French and Spanish put a (narrow no-break) space before the sign.
        match self.lang {
            "fr" | "es" => format!("{n:.0}\u{202f}%"),
            _ => format!("{n:.0}%"),
        }
    }

    pub fn grouping(&self, g: Grouping) -> String {
        self.t(&format!("results-group-{}", g.key()), &[])
    }

    /// The label of group `code` of `grouping`.
    pub fn group(&self, grouping: Option<Grouping>, code: &str) -> String {
        let find = |f: &dyn Fn(&Country) -> Option<String>| self.countries.iter().find_map(f);
        let lang = self.lang;
        match grouping {
            None => self.t("results-all", &[]),
            Some(Grouping::Region) => {
                find(&|c| (c.region_code == code).then(|| c.region(lang).to_string()))
                    .unwrap_or_else(|| code.into())
            }
            Some(Grouping::Subregion) => {
                find(&|c| (c.subregion_code == code).then(|| c.subregion(lang).to_string()))
                    .unwrap_or_else(|| code.into())
            }
            Some(Grouping::Income) if code.is_empty() => self.t("results-unclassified", &[]),
            Some(Grouping::Income) => self.t(&format!("results-income-{code}"), &[]),
            Some(Grouping::Development) => match code {
                "developed" => self.t("results-developed", &[]),
                "developing" => self.t("results-developing", &[]),
                _ => self.t("results-unclassified", &[]),
            },
            Some(Grouping::Ldc | Grouping::Lldc | Grouping::Sids) if code == "other" => {
                self.t("results-other-countries", &[])
            }
            Some(Grouping::Ldc) => self.t("results-ldc", &[]),
            Some(Grouping::Lldc) => self.t("results-lldc", &[]),
            Some(Grouping::Sids) => self.t("results-sids", &[]),
        }
    }

    /// A country's name in the page's language.
    fn country(&self, iso3: &str) -> String {
        self.countries
            .get(iso3)
            .map(|c| c.name(self.lang).to_string())
            .unwrap_or_else(|| iso3.into())
    }
}

/// What every results page starts with: the survey and the filters as a query string.
#[derive(Serialize)]
pub struct Head {
    pub id: String,
    pub title: String,
    pub query: String,
}

impl Head {
    pub fn new(survey: &Survey, lang: &str, query: String) -> Head {
        Head {
            id: survey.id.clone(),
            title: survey.title.get(lang).to_string(),
            query,
        }
    }
}

/// The filter form (`results/filters.hbs`).
#[derive(Serialize)]
pub struct Filters {
    pub regions: Vec<Choice>,
    pub incomes: Vec<Choice>,
    /// Empty on pages without a breakdown.
    pub by_options: Vec<Choice>,
    pub drafts: bool,
    /// Accepted responses only.
    pub accepted: bool,
}

#[derive(Serialize)]
pub struct Choice {
    pub code: String,
    pub label: String,
    pub selected: bool,
}

impl Filters {
    pub fn new(w: Words, filter: &Filter, by: Option<Option<Grouping>>) -> Filters {
        let mut regions: BTreeMap<String, String> = BTreeMap::new();
        for c in w.countries.iter() {
            regions.insert(c.region_code.clone(), c.region(w.lang).to_string());
        }
        let regions = regions
            .into_iter()
            .map(|(code, label)| Choice {
                selected: filter.region.as_deref() == Some(code.as_str()),
                code,
                label,
            })
            .collect();
        let incomes = ["L", "LM", "UM", "H"]
            .iter()
            .map(|c| Choice {
                code: c.to_string(),
                label: w.t(&format!("results-income-{c}"), &[]),
                selected: filter.income.as_deref() == Some(*c),
            })
            .collect();
        let by_options = match by {
            None => Vec::new(),
            Some(by) => Grouping::ALL
                .iter()
                .map(|g| Choice {
                    code: g.key().to_string(),
                    label: w.grouping(*g),
                    selected: by == Some(*g),
                })
                .collect(),
        };
        Filters {
            regions,
            incomes,
            by_options,
            drafts: filter.include_drafts,
            accepted: filter.accepted_only,
        }
    }
}

/// `results/dashboard.hbs`.
#[derive(Serialize)]
pub struct DashboardPage {
    #[serde(flatten)]
    pub head: Head,
    #[serde(flatten)]
    pub filters: Filters,
    pub rate_tables: Vec<RateTable>,
    pub questions: Vec<QuestionLink>,
    /// The survey has file questions: the zip export is offered.
    pub has_files: bool,
    /// "What changed since <previous round>", for a survey that follows another.
    pub changes_link: Option<String>,
}

#[derive(Serialize)]
pub struct RateTable {
    pub heading: String,
    pub chart: BarChart,
    pub rows: Vec<RateLine>,
}

#[derive(Serialize)]
pub struct RateLine {
    pub label: String,
    pub targeted: i64,
    pub invited: i64,
    pub opened: i64,
    pub drafts: i64,
    pub submitted: i64,
    pub accepted: i64,
    pub rate: String,
}

#[derive(Serialize)]
pub struct QuestionLink {
    pub id: String,
    pub text: String,
}

impl RateTable {
    pub fn new(w: Words, grouping: Option<Grouping>, rows: &[RateRow]) -> RateTable {
        let heading = grouping
            .map(|g| w.grouping(g))
            .unwrap_or_else(|| w.t("results-all", &[]));
        let lines: Vec<RateLine> = rows
            .iter()
            .map(|r| RateLine {
                label: w.group(grouping, &r.grp),
                targeted: r.targeted,
                invited: r.invited,
                opened: r.opened,
                drafts: r.drafts,
                submitted: r.submitted,
                accepted: r.accepted,
                rate: w.percent(r.submitted, r.targeted),
            })
            .collect();
        let bars: Vec<BarData> = rows
            .iter()
            .zip(&lines)
            .map(|(r, line)| BarData {
                label: line.label.clone(),
                value: if r.targeted == 0 {
                    0.0
                } else {
                    r.submitted as f64 * 100.0 / r.targeted as f64
                },
                shown: line.rate.clone(),
            })
            .collect();
        let key = grouping.map(|g| g.key()).unwrap_or("all").to_string();
        let title = format!("{}: {heading}", w.t("results-rate", &[]));
        RateTable {
            chart: BarChart::new(key, title, &bars),
            heading,
            rows: lines,
        }
    }
}

impl DashboardPage {
    pub fn new(
        w: Words,
        head: Head,
        filters: Filters,
        survey: &Survey,
        tables: Vec<(Option<Grouping>, Vec<RateRow>)>,
    ) -> DashboardPage {
        DashboardPage {
            head,
            filters,
            rate_tables: tables
                .iter()
                .map(|(g, rows)| RateTable::new(w, *g, rows))
                .collect(),
            questions: survey
                .questions()
                .map(|q| QuestionLink {
                    id: q.id.clone(),
                    text: q.text.get(w.lang).to_string(),
                })
                .collect(),
            has_files: survey.questions().any(|q| q.kind.is_file()),
            changes_link: survey
                .previous
                .as_ref()
                .and_then(|p| p.definition.as_ref())
                .map(|p| {
                    w.t(
                        "changes-link",
                        &[("previous", p.title.get(w.lang).to_string())],
                    )
                }),
        }
    }
}

/// The figures of one question, as loaded from the database.
#[derive(Clone)]
pub struct QuestionFigures {
    /// Per group: (asked, answered).
    pub asked: BTreeMap<String, (i64, i64)>,
    /// (group, answer key, count).
    pub counts: Vec<(String, String, i64)>,
    pub stats: Option<NumberStats>,
    /// (count, earliest, latest).
    pub dates: Option<(i64, Option<String>, Option<String>)>,
    pub texts: Vec<TextAnswer>,
    pub others: Vec<TextAnswer>,
    /// A file question: how many files the counted responses attached.
    pub files: Option<i64>,
    /// (group, non-answer, count): "not known" and "not applicable", counted apart.
    pub escapes: Vec<(String, EscapeKind, i64)>,
    /// The previous round's figures of the question this one carries from, in this round's
    /// codes (a choice question of a survey that follows another).
    pub previous: Option<PreviousFigures>,
}

/// The previous round's counts of a carried choice question, keys renamed into this round's.
#[derive(Clone)]
pub struct PreviousFigures {
    pub asked: BTreeMap<String, (i64, i64)>,
    pub counts: Vec<(String, String, i64)>,
    pub escapes: Vec<(String, EscapeKind, i64)>,
}

impl Weight for PreviousFigures {
    fn weight(&self) -> usize {
        self.asked.weight() + self.counts.weight() + self.escapes.weight()
    }
}

impl Weight for QuestionFigures {
    fn weight(&self) -> usize {
        self.asked.weight()
            + self.counts.weight()
            + self.stats.weight()
            + self.dates.weight()
            + self.texts.weight()
            + self.others.weight()
            + self.files.weight()
            + self.escapes.weight()
            + self.previous.weight()
    }
}

impl PreviousFigures {
    /// In a group: how many answers with a value (the percentages' denominator).
    fn valued(&self, grp: &str) -> i64 {
        let answered = self.asked.get(grp).map_or(0, |(_, a)| *a);
        let escaped: i64 = self
            .escapes
            .iter()
            .filter(|(g, _, _)| g == grp)
            .map(|(_, _, n)| *n)
            .sum();
        answered - escaped
    }
}

impl QuestionFigures {
    /// In a group: how many answered "not known" and "not applicable".
    fn escaped(&self, grp: &str) -> (i64, i64) {
        let count = |kind: EscapeKind| {
            self.escapes
                .iter()
                .filter(|(g, k, _)| g == grp && *k == kind)
                .map(|(_, _, n)| *n)
                .sum()
        };
        (
            count(EscapeKind::NotKnown),
            count(EscapeKind::NotApplicable),
        )
    }
}

/// `results/question.hbs`.
#[derive(Serialize)]
pub struct QuestionPage {
    #[serde(flatten)]
    pub head: Head,
    #[serde(flatten)]
    pub filters: Filters,
    pub question_text: String,
    pub groups: Vec<GroupResult>,
    pub breakdown: Option<Breakdown>,
    pub stats: Option<String>,
    pub texts: Vec<NamedText>,
    pub other_texts: Vec<NamedText>,
}

/// One group's answers (all countries when there is no breakdown).
#[derive(Serialize)]
pub struct GroupResult {
    pub label: String,
    pub asked: i64,
    pub answered: i64,
    /// "12 not known", "3 not applicable": counted apart from the options.
    pub escaped: Vec<String>,
    /// Why the percentages are of fewer answers than `answered`, when some are escapes.
    pub escaped_note: Option<String>,
    pub counts: Vec<CountLine>,
    pub chart: Option<BarChart>,
    /// The table has a "previous round" column.
    pub previous: bool,
}

#[derive(Serialize)]
pub struct CountLine {
    pub label: String,
    pub count: i64,
    pub percent: String,
    /// The previous round's count and percentage ("3 (25%)"), when shown.
    pub previous: Option<String>,
}

/// Every group in one stacked chart, and the same figures as a cross-table.
#[derive(Serialize)]
pub struct Breakdown {
    pub grouping: String,
    pub title: String,
    pub series: Vec<String>,
    /// How many options there are (the chart is left out past `charts::MAX_SERIES`).
    pub options: usize,
    pub rows: Vec<CrossLine>,
    /// `None` when there are too many options to tell apart in a chart.
    pub chart: Option<StackedChart>,
}

#[derive(Serialize)]
pub struct CrossLine {
    pub label: String,
    pub answered: i64,
    pub cells: Vec<String>,
}

#[derive(Serialize)]
pub struct NamedText {
    pub country: String,
    pub value: String,
}

/// How one question's answers are labelled and ordered.
pub struct Answers<'a> {
    w: Words<'a>,
    q: &'a Question,
    /// The order options are listed in the definition; answers outside it come after.
    order: Vec<String>,
}

impl<'a> Answers<'a> {
    pub fn new(w: Words<'a>, q: &'a Question) -> Answers<'a> {
        let order = match &q.kind {
            QuestionKind::YesNo => vec!["yes".into(), "no".into()],
            QuestionKind::Matrix { rows, scale } => rows
                .iter()
                .flat_map(|r| scale.iter().map(move |s| format!("{}={}", r.code, s.code)))
                .collect(),
            _ => q
                .kind
                .options()
                .iter()
                .map(|o| o.code.clone())
                .chain(std::iter::once(OTHER_CODE.to_string()))
                .collect(),
        };
        Answers { w, q, order }
    }

    fn position(&self, key: &str) -> usize {
        self.order
            .iter()
            .position(|o| o == key)
            .unwrap_or(usize::MAX)
    }

    /// The label of an answer key: the option's label; "Other" as the respondent's form
    /// names that option (not its "Please specify" box); country names; "row: scale".
    pub fn label(&self, key: &str) -> String {
        let lang = self.w.lang;
        match &self.q.kind {
            QuestionKind::YesNo => self.w.t(key, &[]),
            QuestionKind::Country => self.w.country(key),
            QuestionKind::Matrix { rows, scale } => {
                let (r, s) = key.split_once('=').unwrap_or((key, ""));
                let find = |list: &[crate::survey::Choice], code: &str| {
                    list.iter()
                        .find(|x| x.code == code)
                        .map(|x| x.label.get(lang).to_string())
                        .unwrap_or_else(|| code.into())
                };
                format!("{}: {}", find(rows, r), find(scale, s))
            }
            _ if key == OTHER_CODE => self.w.t("other-option", &[]),
            _ => self
                .q
                .kind
                .options()
                .iter()
                .find(|o| o.code == key)
                .map(|o| o.label.get(lang).to_string())
                .unwrap_or_else(|| key.into()),
        }
    }
}

impl QuestionPage {
    pub fn new(
        w: Words,
        head: Head,
        filters: Filters,
        q: &Question,
        by: Option<Grouping>,
        figures: QuestionFigures,
    ) -> QuestionPage {
        let answers = Answers::new(w, q);
        let text = q.text.get(w.lang).to_string();
        let groups = figures
            .asked
            .iter()
            .map(|(grp, (asked, answered))| {
                let counted = Counted {
                    asked: *asked,
                    answered: *answered,
                    escaped: figures.escaped(grp),
                };
                let previous = figures.previous.as_ref().map(|p| (p, p.valued(grp)));
                group_result(&answers, &figures.counts, &text, by, grp, counted, previous)
            })
            .collect();
        let breakdown = match (&q.kind, by) {
            (QuestionKind::Matrix { .. }, _) | (_, None) => None,
            _ if figures.counts.is_empty() => None,
            (_, Some(g)) => Some(breakdown(&answers, &figures, &text, g)),
        };
        let named = |list: Vec<TextAnswer>| -> Vec<NamedText> {
            list.into_iter()
                .map(|a| {
                    let country = w
                        .countries
                        .get(&a.iso3)
                        .map(|c| c.name(w.lang).to_string())
                        .unwrap_or(a.iso3);
                    NamedText {
                        country: crate::survey::respondent_name(&a.unit, &country),
                        value: a.value,
                    }
                })
                .collect()
        };
        QuestionPage {
            head,
            filters,
            question_text: text,
            groups,
            breakdown,
            stats: match figures.files {
                // "3 of 5 responses attached evidence (7 files)".
                Some(files) => {
                    let (asked, answered) = figures
                        .asked
                        .values()
                        .fold((0, 0), |(a, b), (x, y)| (a + x, b + y));
                    let args = [
                        ("countries", answered.to_string()),
                        ("answered", asked.to_string()),
                        ("files", files.to_string()),
                    ];
                    Some(crate::i18n::translate(w.lang, "results-files", &args))
                }
                None => stats_line(w, &q.kind, figures.stats, figures.dates),
            },
            texts: named(figures.texts),
            other_texts: named(figures.others),
        }
    }
}

/// How many responses of a group were asked, answered, and answered "not known" and "not
/// applicable".
struct Counted {
    asked: i64,
    answered: i64,
    escaped: (i64, i64),
}

impl Counted {
    /// The answers with a value: the percentages' denominator.
    fn valued(&self) -> i64 {
        self.answered - self.escaped.0 - self.escaped.1
    }
}

fn group_result(
    answers: &Answers,
    counts: &[(String, String, i64)],
    question_text: &str,
    by: Option<Grouping>,
    grp: &str,
    counted: Counted,
    previous: Option<(&PreviousFigures, i64)>,
) -> GroupResult {
    let w = answers.w;
    let Counted {
        asked,
        answered,
        escaped: (not_known, not_applicable),
    } = counted;
    let valued = counted.valued();
    let mut here: Vec<(&str, i64)> = counts
        .iter()
        .filter(|(g, _, _)| g == grp)
        .map(|(_, k, n)| (k.as_str(), *n))
        .collect();
    // Options answered only in the previous round are listed too, with no answer now.
    if let Some((p, _)) = previous {
        for (_, k, _) in p.counts.iter().filter(|(g, _, _)| g == grp) {
            if !here.iter().any(|(h, _)| h == k) {
                here.push((k.as_str(), 0));
            }
        }
    }
    here.sort_by_key(|(k, n)| (answers.position(k), -n));
    let lines: Vec<CountLine> = here
        .iter()
        .map(|(k, n)| CountLine {
            label: answers.label(k),
            count: *n,
            percent: w.percent(*n, valued),
            previous: previous.map(|(p, valued)| {
                let before: i64 = p
                    .counts
                    .iter()
                    .filter(|(g, key, _)| g == grp && key == k)
                    .map(|(_, _, n)| *n)
                    .sum();
                format!("{before} ({})", w.percent(before, valued))
            }),
        })
        .collect();
    let label = w.group(by, grp);
    let escaped: Vec<String> = [
        ("results-not-known", not_known),
        ("results-not-applicable", not_applicable),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .map(|(id, n)| w.t(id, &[("count", n.to_string())]))
    .collect();
    let bars: Vec<BarData> = lines
        .iter()
        .map(|l| BarData {
            label: l.label.clone(),
            value: l.count as f64,
            shown: l.count.to_string(),
        })
        .collect();
    let key = format!("g{}", grp.replace(|c: char| !c.is_ascii_alphanumeric(), ""));
    GroupResult {
        chart: (!bars.is_empty())
            .then(|| BarChart::new(key, format!("{question_text}: {label}"), &bars)),
        label,
        asked,
        answered,
        // Only where there are percentages (choices), not for figures, dates or texts.
        escaped_note: (!escaped.is_empty() && !lines.is_empty())
            .then(|| w.t("results-escaped-note", &[("valued", valued.to_string())])),
        escaped,
        counts: lines,
        previous: previous.is_some(),
    }
}

/// A breakdown of a choice question: every group in one stacked chart, with the same figures
/// in a cross-table (a matrix has a chart per group instead: its row and scale pairs do not
/// stack into one meaningful bar).
fn breakdown(
    answers: &Answers,
    figures: &QuestionFigures,
    question_text: &str,
    g: Grouping,
) -> Breakdown {
    let w = answers.w;
    // Every option answered in some group, in the definition's order.
    let mut keys: Vec<&String> = figures.counts.iter().map(|(_, key, _)| key).collect();
    keys.sort_by(|a, b| answers.position(a).cmp(&answers.position(b)).then(a.cmp(b)));
    keys.dedup();
    let series: Vec<String> = keys.iter().map(|k| answers.label(k)).collect();
    let per_group: Vec<(String, Vec<i64>, i64, i64)> = figures
        .asked
        .iter()
        .map(|(grp, (_, answered))| {
            // Percentages are of the answers with a value.
            let (not_known, not_applicable) = figures.escaped(grp);
            let valued = answered - not_known - not_applicable;
            let counts_here = keys
                .iter()
                .map(|k| {
                    figures
                        .counts
                        .iter()
                        .filter(|(g2, key, _)| g2 == grp && key == *k)
                        .map(|(_, _, n)| *n)
                        .sum()
                })
                .collect();
            (w.group(Some(g), grp), counts_here, *answered, valued)
        })
        .collect();
    let rows = per_group
        .iter()
        .map(|(label, counts_here, answered, valued)| CrossLine {
            label: label.clone(),
            answered: *answered,
            cells: counts_here
                .iter()
                .map(|n| format!("{n} ({})", w.percent(*n, *valued)))
                .collect(),
        })
        .collect();
    let grouping = w.grouping(g);
    let title = format!("{question_text}: {grouping}");
    let chart_groups: Vec<(String, Vec<i64>)> = per_group
        .into_iter()
        .map(|(label, counts, _, _)| (label, counts))
        .collect();
    Breakdown {
        chart: StackedChart::new("stacked", title.clone(), &series, &chart_groups),
        grouping,
        title,
        options: series.len(),
        series,
        rows,
    }
}

fn stats_line(
    w: Words,
    kind: &QuestionKind,
    stats: Option<NumberStats>,
    dates: Option<(i64, Option<String>, Option<String>)>,
) -> Option<String> {
    // Numbers as the page's language writes them; shares with their sign.
    let number = |n: f64| match kind {
        QuestionKind::Percentage => crate::i18n::format_percent(w.lang, &n.to_string()),
        _ => crate::i18n::format_number(w.lang, &n.to_string()),
    };
    let fmt = |n: Option<f64>| n.map(number).unwrap_or_else(|| "–".into());
    if let Some(s) = stats {
        return Some(w.t(
            "results-stats",
            &[
                ("count", s.count.to_string()),
                ("min", fmt(s.min)),
                ("median", fmt(s.median)),
                ("max", fmt(s.max)),
            ],
        ));
    }
    dates.map(|(n, lo, hi)| {
        w.t(
            "results-dates",
            &[
                ("count", n.to_string()),
                ("min", lo.unwrap_or_default()),
                ("max", hi.unwrap_or_default()),
            ],
        )
    })
}

/// Practices on one page of the compendium.
pub const COMPENDIUM_PAGE: usize = 200;

/// `results/compendium.hbs`.
#[derive(Serialize)]
pub struct CompendiumPage<'a> {
    #[serde(flatten)]
    pub head: Head,
    pub themes: Vec<ThemeSection<'a>>,
    pub theme_links: Vec<ThemeLink>,
    pub all_href: String,
    pub all_current: bool,
    pub showing: Option<String>,
    pub previous: Option<String>,
    pub next: Option<String>,
}

#[derive(Serialize)]
pub struct ThemeSection<'a> {
    pub label: &'a str,
    pub practices: Vec<&'a Practice>,
}

#[derive(Serialize)]
pub struct ThemeLink {
    pub label: String,
    pub count: usize,
    pub href: String,
    pub current: bool,
}

/// Which part of the compendium a page shows: a theme or all, and a page number.
pub struct CompendiumPart<'a> {
    pub theme: Option<&'a str>,
    pub page: Option<usize>,
}

/// What one page of the compendium shows of its listings: worked out from the listings alone,
/// so that only the practices shown are read in full.
pub struct CompendiumWindow<'a> {
    survey: &'a Survey,
    /// Every theme with practices: (id, label, how many).
    themes: Vec<(&'a str, &'a str, usize)>,
    chosen: Option<&'a str>,
    /// The page's listings, each with the label of the theme it is shown under (a practice in
    /// two themes is shown under both).
    window: Vec<(&'a str, &'a Listing)>,
    /// Where the window starts among the listings shown (0-based), and how many there are.
    start: usize,
    total: usize,
    current: usize,
    pages: usize,
}

impl<'a> CompendiumWindow<'a> {
    pub fn new(
        survey: &'a Survey,
        list: &'a [Listing],
        part: CompendiumPart,
        lang: &str,
    ) -> CompendiumWindow<'a> {
        let grouped = by_theme(survey, list, lang);
        let chosen = survey
            .themes
            .iter()
            .map(|th| th.id.as_str())
            .find(|id| part.theme == Some(*id));
        // A large round (thousands of organisations) would make one page of megabytes: the
        // page shows COMPENDIUM_PAGE practices at a time; the Markdown download has them all.
        let shown = grouped
            .iter()
            .filter(|(id, _, _)| chosen.is_none_or(|c| c == *id))
            .flat_map(|(_, label, ps)| ps.iter().map(move |p| (*label, *p)));
        let total = grouped
            .iter()
            .filter(|(id, _, _)| chosen.is_none_or(|c| c == *id))
            .map(|(_, _, ps)| ps.len())
            .sum::<usize>();
        let pages = total.div_ceil(COMPENDIUM_PAGE).max(1);
        let current = part.page.unwrap_or(1).clamp(1, pages);
        let start = (current - 1) * COMPENDIUM_PAGE;
        let window = shown.skip(start).take(COMPENDIUM_PAGE).collect();
        CompendiumWindow {
            survey,
            themes: grouped
                .iter()
                .map(|(id, label, ps)| (*id, *label, ps.len()))
                .collect(),
            chosen,
            window,
            start,
            total,
            current,
            pages,
        }
    }

    /// The listings to read in full for the page, each once.
    pub fn listings(&self) -> Vec<Listing> {
        let mut seen = std::collections::HashSet::new();
        self.window
            .iter()
            .filter(|(_, l)| seen.insert((l.response_id.as_str(), &*l.question)))
            .map(|(_, l)| (*l).clone())
            .collect()
    }
}

impl<'a> CompendiumPage<'a> {
    /// The page of `window`, with `practices` the window's listings read in full.
    pub fn new(
        w: Words,
        head: Head,
        window: CompendiumWindow<'a>,
        practices: &'a [Practice],
    ) -> CompendiumPage<'a> {
        let survey = window.survey;
        let base = head.query.clone();
        let link = |theme: Option<&str>, page: usize| {
            let mut q = base.clone();
            let mut add = |part: String| {
                q.push(if q.is_empty() { '?' } else { '&' });
                q.push_str(&part);
            };
            if let Some(th) = theme {
                add(format!("theme={th}"));
            }
            if page > 1 {
                add(format!("page={page}"));
            }
            format!("/admin/surveys/{}/results/compendium{q}", survey.id)
        };
        let theme_links = window
            .themes
            .iter()
            .map(|(id, label, count)| ThemeLink {
                label: label.to_string(),
                count: *count,
                href: link(Some(id), 1),
                current: window.chosen == Some(*id),
            })
            .collect();
        let full: HashMap<(&str, &str), &'a Practice> = practices
            .iter()
            .map(|p| ((p.listing.response_id.as_str(), &*p.listing.question), p))
            .collect();
        let mut themes: Vec<ThemeSection<'a>> = Vec::new();
        // A practice recalled since its listing was read is not shown.
        let shown = window.window.iter().filter_map(|(label, l)| {
            full.get(&(l.response_id.as_str(), &*l.question))
                .map(|p| (*label, *p))
        });
        for (label, p) in shown {
            match themes.last_mut() {
                Some(last) if last.label == label => last.practices.push(p),
                _ => themes.push(ThemeSection {
                    label,
                    practices: vec![p],
                }),
            }
        }
        let (start, total, current) = (window.start, window.total, window.current);
        let on_page: usize = themes.iter().map(|t| t.practices.len()).sum();
        CompendiumPage {
            themes,
            theme_links,
            all_href: link(None, 1),
            all_current: window.chosen.is_none(),
            showing: (on_page > 0).then(|| {
                w.t(
                    "results-showing",
                    &[
                        ("from", (start + 1).to_string()),
                        ("to", (start + on_page).to_string()),
                        ("total", total.to_string()),
                    ],
                )
            }),
            previous: (current > 1).then(|| link(window.chosen, current - 1)),
            next: (current < window.pages).then(|| link(window.chosen, current + 1)),
            head,
        }
    }
}

/// `results/needs.hbs`.
#[derive(Serialize)]
pub struct NeedsPage {
    #[serde(flatten)]
    pub head: Head,
    #[serde(flatten)]
    pub filters: Filters,
    pub chart: Option<BarChart>,
    pub needs: Vec<NeedLine>,
    pub matches: Vec<MatchLine>,
}

#[derive(Serialize)]
pub struct NeedLine {
    pub label: String,
    pub theme: String,
    pub level: Option<&'static str>,
    pub countries: i64,
    pub development: String,
    pub regions: String,
}

#[derive(Serialize)]
pub struct MatchLine {
    pub country: String,
    pub theme: String,
    pub need: String,
    pub partners: String,
}

impl NeedsPage {
    pub fn new(
        w: Words,
        head: Head,
        filters: Filters,
        survey: &Survey,
        needs: &[Need],
        matches: &[Match],
    ) -> NeedsPage {
        let theme_label = |id: Option<&String>| {
            id.and_then(|id| survey.themes.iter().find(|th| &th.id == id))
                .map(|th| th.label.get(w.lang).to_string())
                .unwrap_or_default()
        };
        let bars: Vec<BarData> = needs
            .iter()
            .take(15)
            .map(|n| BarData {
                label: n.label.clone(),
                value: n.countries as f64,
                shown: n.countries.to_string(),
            })
            .collect();
        let counted = |grouping: Grouping, list: &BTreeMap<String, i64>| {
            list.iter()
                .map(|(k, v)| format!("{}: {v}", w.group(Some(grouping), k)))
                .collect::<Vec<_>>()
                .join("; ")
        };
        NeedsPage {
            chart: (!bars.is_empty())
                .then(|| BarChart::new("needs".into(), w.t("results-needs", &[]), &bars)),
            needs: needs
                .iter()
                .map(|n| NeedLine {
                    label: n.label.clone(),
                    theme: theme_label(n.theme.as_ref()),
                    level: n.level,
                    countries: n.countries,
                    development: counted(Grouping::Development, &n.by_development),
                    regions: counted(Grouping::Region, &n.by_region),
                })
                .collect(),
            matches: matches
                .iter()
                .map(|m| MatchLine {
                    country: w.country(&m.iso3),
                    theme: theme_label(Some(&m.theme)),
                    need: m.need.clone(),
                    partners: m
                        .partners
                        .iter()
                        .take(5)
                        .map(|p| w.country(&p.iso3))
                        .collect::<Vec<_>>()
                        .join(", "),
                })
                .collect(),
            head,
            filters,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::render::{Layout, Templates};

    fn page_with(series: usize) -> QuestionPage {
        let series: Vec<String> = (1..=series).map(|i| format!("Option {i}")).collect();
        let groups = vec![("Africa".to_string(), vec![1; series.len()])];
        QuestionPage {
            head: Head {
                id: "s".into(),
                title: "Survey".into(),
                query: String::new(),
            },
            filters: Filters {
                regions: Vec::new(),
                incomes: Vec::new(),
                by_options: Vec::new(),
                drafts: false,
                accepted: false,
            },
            question_text: "Partner".into(),
            groups: Vec::new(),
            breakdown: Some(Breakdown {
                grouping: "Region".into(),
                title: "Partner: Region".into(),
                options: series.len(),
                chart: StackedChart::new("stacked", "Partner: Region".into(), &series, &groups),
                series,
                rows: Vec::new(),
            }),
            stats: None,
            texts: Vec::new(),
            other_texts: Vec::new(),
        }
    }

    #[test]
    fn a_breakdown_past_the_distinct_fills_is_a_table_with_a_sentence() {
        let templates = Templates::new().unwrap();
        let render = |n: usize| {
            templates
                .render_view("results/question", "en", &Layout::default(), &page_with(n))
                .unwrap()
        };
        let most = render(super::super::charts::MAX_SERIES);
        assert!(
            most.contains("<svg") && most.contains("url(#stacked-p35)"),
            "{most}"
        );
        assert!(most.contains("patternTransform=\"rotate(-45)\""));
        let too_many = render(super::super::charts::MAX_SERIES + 1);
        assert!(!too_many.contains("<svg"), "{too_many}");
        assert!(
            too_many.contains("options are too many to tell apart in a chart"),
            "{too_many}"
        );
        assert!(too_many.contains("<th scope=\"col\">Option 37</th>"));
    }
}

//! The what-changed pages as typed views, and their exports as tables of text (the same
//! labels people read on the pages).

use serde::Serialize;

use crate::i18n::translate;
use crate::reference::Countries;
use crate::results::aggregate::Filter;
use crate::results::changes::load::CountryResponse;
use crate::results::changes::{
    compare, Class, Compared, Overall, QuestionTotals, Rounds, Tally, NONE, TICKED,
};
use crate::survey::answer::Item;
use crate::survey::display::{display_value, escape_label_id};
use crate::survey::{EscapeKind, Question, QuestionKind, OTHER_CODE};
use crate::text::csv::SafeWriter;

/// A header line and rows of cells.
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// The table as CSV: every cell through the formula-injection guard.
pub fn table_csv(table: &Table) -> Result<String, csv::Error> {
    let mut w = SafeWriter::new();
    w.write_record(&table.header)?;
    for row in &table.rows {
        w.write_record(row)?;
    }
    w.finish()
}

/// The table as a one-sheet workbook, every cell as text.
pub fn table_xlsx(table: &Table) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("changes")?;
    for (r, row) in std::iter::once(&table.header)
        .chain(&table.rows)
        .enumerate()
    {
        for (c, cell) in row.iter().enumerate() {
            if !cell.is_empty() {
                sheet.write_string(r as u32, c as u16, cell)?;
            }
        }
    }
    book.save_to_buffer()
}

fn class_label(lang: &str, class: Class) -> String {
    translate(lang, &format!("changes-class-{}", class.code()), &[])
}

/// `admin/changes.hbs`: one country's responses compared with the previous round.
#[derive(Serialize)]
pub struct CountryChanges {
    pub id: String,
    pub iso3: String,
    pub country: String,
    pub survey_title: String,
    pub previous_title: String,
    /// The page's heading and title.
    pub title: String,
    pub with_unit: bool,
    pub responses: Vec<ResponseChanges>,
}

#[derive(Serialize)]
pub struct ResponseChanges {
    pub unit: String,
    /// Draft, submitted, accepted...
    pub status: String,
    /// Which version of the previous round it is compared with.
    pub origin: String,
    pub summary: Vec<ClassCount>,
    pub sections: Vec<SectionChanges>,
}

#[derive(Serialize)]
pub struct ClassCount {
    pub code: &'static str,
    pub label: String,
    pub count: usize,
}

#[derive(Serialize)]
pub struct SectionChanges {
    pub title: String,
    pub rows: Vec<ChangeRow>,
}

#[derive(Serialize)]
pub struct ChangeRow {
    pub question_id: String,
    pub question: String,
    /// The previous round's question it carries from ('' when it does not carry).
    pub carried_from: String,
    /// The same, when its id was different (a renamed question).
    pub from_question: Option<String>,
    pub class: &'static str,
    pub class_label: String,
    pub old: String,
    pub new: String,
    pub has_old: bool,
    pub has_new: bool,
}

/// An answer as people read it ('' for none).
fn shown(q: &Question, items: Option<&Vec<Item>>, lang: &str, countries: &Countries) -> String {
    let name_of = |code: &str| {
        countries
            .get(code)
            .map(|c| c.name(lang).to_string())
            .unwrap_or_else(|| code.to_string())
    };
    match items {
        Some(items) if !items.is_empty() => display_value(q, items, lang, &name_of),
        _ => String::new(),
    }
}

impl CountryChanges {
    pub fn new(
        rounds: Rounds,
        countries: &Countries,
        lang: &'static str,
        iso3: &str,
        country: String,
        loaded: &[CountryResponse],
    ) -> CountryChanges {
        let previous_title = rounds.previous.title.get(lang).to_string();
        let responses = loaded
            .iter()
            .map(|r| {
                let compared = compare(
                    rounds,
                    &r.current,
                    r.previous.as_ref().map(|(_, a)| a),
                    &|q| r.confirmed.contains(q),
                    countries,
                );
                let origin = match &r.previous {
                    Some((n, _)) => translate(
                        lang,
                        "changes-origin",
                        &[
                            ("version", n.to_string()),
                            ("previous", previous_title.clone()),
                        ],
                    ),
                    None => translate(
                        lang,
                        "changes-origin-none",
                        &[("previous", previous_title.clone())],
                    ),
                };
                response_changes(rounds, countries, lang, r, &compared, origin)
            })
            .collect();
        CountryChanges {
            id: rounds.current.id.clone(),
            iso3: iso3.to_string(),
            title: translate(
                lang,
                "changes-country-title",
                &[("country", country.clone())],
            ),
            country,
            survey_title: rounds.current.title.get(lang).to_string(),
            previous_title,
            with_unit: !rounds.current.unit.is_country(),
            responses,
        }
    }

    /// The export: a row per question of each response.
    pub fn table(&self) -> Table {
        let header = [
            "unit",
            "status",
            "section",
            "question_id",
            "question",
            "from_question_id",
            "class",
            "class_label",
            "previous_answer",
            "current_answer",
        ]
        .iter()
        .map(|h| h.to_string())
        .collect();
        let mut rows = Vec::new();
        for r in &self.responses {
            for s in &r.sections {
                for c in &s.rows {
                    rows.push(vec![
                        r.unit.clone(),
                        r.status.clone(),
                        s.title.clone(),
                        c.question_id.clone(),
                        c.question.clone(),
                        c.carried_from.clone(),
                        c.class.to_string(),
                        c.class_label.clone(),
                        c.old.clone(),
                        c.new.clone(),
                    ]);
                }
            }
        }
        Table { header, rows }
    }
}

fn response_changes(
    rounds: Rounds,
    countries: &Countries,
    lang: &str,
    r: &CountryResponse,
    compared: &[Compared],
    origin: String,
) -> ResponseChanges {
    let summary = Class::ALL
        .iter()
        .map(|class| ClassCount {
            code: class.code(),
            label: class_label(lang, *class),
            count: compared.iter().filter(|c| c.class == *class).count(),
        })
        .filter(|c| c.count > 0)
        .collect();
    let mut compared = compared.iter();
    let sections = rounds
        .current
        .sections
        .iter()
        .map(|s| SectionChanges {
            title: s.title.get(lang).to_string(),
            rows: s
                .questions
                .iter()
                .filter_map(|q| {
                    let c = compared.next()?;
                    let old = match (&c.old, &c.old_as_given) {
                        (Some(items), _) => shown(q, Some(items), lang, countries),
                        (None, Some(items)) => {
                            let from = c.from_question.as_deref().unwrap_or(&q.id);
                            match rounds.previous.question(from) {
                                Some(pq) => shown(pq, Some(items), lang, countries),
                                None => String::new(),
                            }
                        }
                        (None, None) => String::new(),
                    };
                    let new = shown(q, c.new.as_ref(), lang, countries);
                    Some(ChangeRow {
                        question_id: q.id.clone(),
                        question: q.text.get(lang).to_string(),
                        carried_from: c.from_question.clone().unwrap_or_default(),
                        from_question: c.from_question.clone().filter(|f| *f != q.id),
                        class: c.class.code(),
                        class_label: class_label(lang, c.class),
                        has_old: !old.is_empty(),
                        has_new: !new.is_empty(),
                        old,
                        new,
                    })
                })
                .collect(),
        })
        .collect();
    ResponseChanges {
        unit: r.response.unit.clone(),
        status: translate(
            lang,
            &format!("admin-status-{}", r.response.status.as_str()),
            &[],
        ),
        origin,
        summary,
        sections,
    }
}

/// `results/changes.hbs`: every counted response compared with the previous round.
#[derive(Serialize)]
pub struct OverallChanges {
    pub id: String,
    pub title: String,
    pub previous_title: String,
    pub heading: String,
    /// The results filters as a query string, kept in links.
    pub query: String,
    /// "12 responses compared (submitted versions)", with the filter in force.
    pub compared: String,
    pub summary: Vec<SummaryRow>,
    /// The summary's class columns.
    pub classes: Vec<String>,
    /// The movement tables' count columns: all, each region, each income group.
    pub headings: Vec<Heading>,
    pub movements: Vec<MovementTable>,
    #[serde(skip)]
    export: Vec<Vec<String>>,
}

#[derive(Serialize)]
pub struct SummaryRow {
    pub id: String,
    pub question: String,
    /// Counts in the order of [`CLASSES_SHOWN`].
    pub counts: Vec<usize>,
    /// Asked afresh (not compared) by every response.
    pub not_carried: bool,
}

/// The classes the overall table has a column for.
const CLASSES_SHOWN: [Class; 5] = [
    Class::Changed,
    Class::ConfirmedUnchanged,
    Class::Unchanged,
    Class::NewlyAnswered,
    Class::NoLongerAnswered,
];

#[derive(Serialize)]
pub struct MovementTable {
    pub id: String,
    pub question: String,
    /// A column for rows (options of a multiple choice, rows of a matrix).
    pub with_rows: bool,
    pub rows: Vec<MoveRow>,
}

#[derive(Serialize)]
pub struct MoveRow {
    pub row: String,
    pub from: String,
    pub to: String,
    /// Whether the answer stayed the same.
    pub same: bool,
    /// All, then each region, then each income group (as `columns`).
    pub cells: Vec<usize>,
}

/// How a movement's states and rows are named.
struct Labels<'a> {
    q: &'a Question,
    lang: &'a str,
}

impl Labels<'_> {
    fn option(&self, code: &str) -> String {
        if code == OTHER_CODE {
            return translate(self.lang, "other-option", &[]);
        }
        self.q
            .kind
            .options()
            .iter()
            .find(|o| o.code == code)
            .map(|o| o.label.get(self.lang).to_string())
            .unwrap_or_else(|| code.to_string())
    }

    fn state(&self, code: &str) -> String {
        if let Some(kind) = EscapeKind::of_item(code) {
            return translate(self.lang, escape_label_id(kind), &[]);
        }
        match (code, &self.q.kind) {
            (NONE, _) => translate(self.lang, "changes-no-answer", &[]),
            (TICKED, _) => translate(self.lang, "changes-ticked", &[]),
            (_, QuestionKind::YesNo) => translate(self.lang, code, &[]),
            (_, QuestionKind::Matrix { scale, .. }) => scale
                .iter()
                .find(|s| s.code == code)
                .map(|s| s.label.get(self.lang).to_string())
                .unwrap_or_else(|| code.to_string()),
            _ => self.option(code),
        }
    }

    fn row(&self, code: &str) -> String {
        match (code, &self.q.kind) {
            ("", _) => translate(self.lang, "changes-whole-answer", &[]),
            (_, QuestionKind::Matrix { rows, .. }) => rows
                .iter()
                .find(|r| r.code == code)
                .map(|r| r.label.get(self.lang).to_string())
                .unwrap_or_else(|| code.to_string()),
            _ => self.option(code),
        }
    }
}

/// A column of the movement tables: all, a region, an income group.
struct Column {
    grouping: &'static str,
    code: String,
    label: String,
}

impl Column {
    fn count(&self, t: &Tally) -> usize {
        match self.grouping {
            "region" => t.by_region.get(&self.code).copied().unwrap_or(0),
            "income" => t.by_income.get(&self.code).copied().unwrap_or(0),
            _ => t.all,
        }
    }
}

fn columns(o: &Overall, countries: &Countries, lang: &str) -> Vec<Column> {
    let mut out = vec![Column {
        grouping: "all",
        code: String::new(),
        label: translate(lang, "results-all", &[]),
    }];
    for code in &o.regions {
        let label = countries
            .iter()
            .find(|c| &c.region_code == code)
            .map(|c| c.region(lang).to_string())
            .unwrap_or_else(|| code.clone());
        out.push(Column {
            grouping: "region",
            code: code.clone(),
            label,
        });
    }
    // Income groups from the poorest, as the results pages list them.
    let mut incomes: Vec<&String> = o.incomes.iter().collect();
    let rank = |c: &str| {
        ["L", "LM", "UM", "H"]
            .iter()
            .position(|x| *x == c)
            .unwrap_or(9)
    };
    incomes.sort_by_key(|c| rank(c));
    for code in incomes {
        let label = if code.is_empty() {
            translate(lang, "results-unclassified", &[])
        } else {
            translate(lang, &format!("results-income-{code}"), &[])
        };
        out.push(Column {
            grouping: "income",
            code: code.clone(),
            label,
        });
    }
    out
}

/// The column headings of the movement tables.
#[derive(Serialize)]
pub struct Heading {
    pub label: String,
    pub grouping: &'static str,
}

impl OverallChanges {
    pub fn new(
        rounds: Rounds,
        countries: &Countries,
        lang: &'static str,
        filter: &Filter,
        query: String,
        o: &Overall,
    ) -> OverallChanges {
        let t = |id: &str, args: &[(&str, String)]| translate(lang, id, args);
        let cols = columns(o, countries, lang);
        let mut export = Vec::new();
        let mut summary = Vec::new();
        let mut movements = Vec::new();
        for (totals, q) in o.questions.iter().zip(rounds.current.questions()) {
            let text = q.text.get(lang).to_string();
            summary.push(SummaryRow {
                id: q.id.clone(),
                question: text.clone(),
                counts: CLASSES_SHOWN.iter().map(|c| totals.count(*c)).collect(),
                not_carried: o.responses > 0 && totals.count(Class::NotCarried) == o.responses,
            });
            for class in Class::ALL {
                export.push(vec![
                    q.id.clone(),
                    text.clone(),
                    class.code().to_string(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    "all".to_string(),
                    String::new(),
                    t("results-all", &[]),
                    totals.count(class).to_string(),
                ]);
            }
            if let Some(table) = movement(totals, q, lang, &cols, &mut export, &text) {
                movements.push(table);
            }
        }
        let mut compared = t("changes-compared", &[("count", o.responses.to_string())]);
        if filter.accepted_only {
            compared.push(' ');
            compared.push_str(&t("changes-accepted-only", &[]));
        }
        OverallChanges {
            id: rounds.current.id.clone(),
            title: rounds.current.title.get(lang).to_string(),
            previous_title: rounds.previous.title.get(lang).to_string(),
            heading: t("changes-overall-title", &[]),
            query,
            compared,
            summary,
            classes: CLASSES_SHOWN
                .iter()
                .map(|c| class_label(lang, *c))
                .collect(),
            headings: cols
                .iter()
                .map(|c| Heading {
                    label: c.label.clone(),
                    grouping: c.grouping,
                })
                .collect(),
            movements,
            export,
        }
    }

    /// The export, long: per question a line per class, then a line per movement and group.
    pub fn table(&self) -> Table {
        let header = [
            "question_id",
            "question",
            "figure",
            "row",
            "row_label",
            "from",
            "from_label",
            "to",
            "to_label",
            "grouping",
            "group",
            "group_label",
            "count",
        ]
        .iter()
        .map(|h| h.to_string())
        .collect();
        Table {
            header,
            rows: self.export.clone(),
        }
    }
}

/// A choice question's movement table (None for other questions, and when nothing moved),
/// its lines added to the export.
fn movement(
    totals: &QuestionTotals,
    q: &Question,
    lang: &str,
    cols: &[Column],
    export: &mut Vec<Vec<String>>,
    text: &str,
) -> Option<MovementTable> {
    if totals.moves.is_empty() {
        return None;
    }
    let labels = Labels { q, lang };
    let with_rows = matches!(
        q.kind,
        QuestionKind::MultipleChoice { .. } | QuestionKind::Matrix { .. }
    );
    let mut rows = Vec::new();
    for ((row, from, to), tally) in &totals.moves {
        let (row_label, from_label, to_label) =
            (labels.row(row), labels.state(from), labels.state(to));
        for c in cols {
            let n = c.count(tally);
            if n == 0 {
                continue;
            }
            export.push(vec![
                q.id.clone(),
                text.to_string(),
                "movement".to_string(),
                row.clone(),
                if with_rows {
                    row_label.clone()
                } else {
                    String::new()
                },
                from.clone(),
                from_label.clone(),
                to.clone(),
                to_label.clone(),
                c.grouping.to_string(),
                c.code.clone(),
                c.label.clone(),
                n.to_string(),
            ]);
        }
        rows.push(MoveRow {
            row: if with_rows { row_label } else { String::new() },
            from: from_label,
            to: to_label,
            same: from == to,
            cells: cols.iter().map(|c| c.count(tally)).collect(),
        });
    }
    Some(MovementTable {
        id: q.id.clone(),
        question: text.to_string(),
        with_rows,
        rows,
    })
}

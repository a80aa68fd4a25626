//! Reading a filled questionnaire back: the archive bounded before anything parses it, the
//! workbook recognised as this respondent's (survey, country, organisation, checksum), every
//! cell checked with the web form's rules, conflicts with answers changed online since the
//! export found, and a clean file saved as one save.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Cursor, Read};

use calamine::{Data, Range, Reader, Xlsx};
use chrono::{DateTime, Utc};

use super::workbook::Labels;
use super::*;
use crate::db::sections::{self, SectionWrite, WriteOutcome};
use crate::db::DbConn;
use crate::i18n::translate;
use crate::reference::Countries;
use crate::respond::{self, RespondError, Respondent};
use crate::survey::answer::{validate, Answers, FieldError, RawAnswer, Visibility};
use crate::survey::model::{EscapeKind, Survey, OTHER_CODE};

/// Largest upload accepted (a 200-question workbook is about 60 KB).
pub const MAX_UPLOAD_BYTES: usize = 5 * 1024 * 1024;
/// Entries of the archive at most: ours has about 15 plus one per section.
const MAX_ENTRIES: usize = 300;
/// Uncompressed bytes read at most, over all entries.
const MAX_UNZIPPED_BYTES: u64 = 40 * 1024 * 1024;

/// Why a file is not taken at all: one message, nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Foreign {
    #[error("not an Excel workbook (.xlsx)")]
    NotWorkbook,
    #[error("the file is too large once unpacked")]
    TooLarge,
    #[error("not a questionnaire downloaded from Coherence")]
    NotOurs,
    #[error("a questionnaire of another survey")]
    OtherSurvey,
    #[error("a questionnaire of another country or organisation")]
    OtherRespondent,
    #[error("the survey changed since the file was downloaded")]
    OldVersion,
    #[error("the file's hidden identifiers were changed")]
    Tampered,
    #[error("the file holds sections this link does not answer")]
    NotYourSections,
}

impl Foreign {
    pub fn message_id(self) -> &'static str {
        match self {
            Foreign::NotWorkbook => "sheet-foreign-not-workbook",
            Foreign::TooLarge => "sheet-foreign-too-large",
            Foreign::NotOurs => "sheet-foreign-not-ours",
            Foreign::OtherSurvey => "sheet-foreign-other-survey",
            Foreign::OtherRespondent => "sheet-foreign-other-respondent",
            Foreign::OldVersion => "sheet-foreign-old-version",
            Foreign::Tampered => "sheet-foreign-tampered",
            Foreign::NotYourSections => "sheet-foreign-sections",
        }
    }
}

/// Whose workbook the upload must be.
pub struct Expect<'a> {
    pub survey: &'a Survey,
    pub country: &'a str,
    pub unit: &'a str,
}

/// A cell as read.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Number(f64),
    /// An Excel date serial (days since 1899-12-30).
    Date(f64),
}

#[derive(Debug, Clone)]
pub struct CellRow {
    pub row: u32,
    pub question: String,
    pub key: String,
    pub answer: Cell,
    pub escape: Cell,
    pub reason: Cell,
    /// The first of the answer, non-answer and reason cells holding a formula (its column):
    /// a formula is never read as a value (one written without its result reads as empty,
    /// which would clear the answer).
    pub formula: Option<u16>,
}

#[derive(Debug, Clone)]
pub struct SheetData {
    pub section: String,
    /// The section's version when the workbook was written.
    pub version: i32,
    pub sheet: String,
    pub rows: Vec<CellRow>,
}

/// A workbook recognised as the respondent's.
#[derive(Debug, Clone)]
pub struct Book {
    pub lang: String,
    pub sheets: Vec<SheetData>,
    /// Each question's answer digest at export.
    pub digests: HashMap<String, String>,
}

/// Read and recognise an upload; nothing else is looked at until this succeeds.
pub fn read(bytes: &[u8], expect: &Expect) -> Result<Book, Foreign> {
    bound_archive(bytes)?;
    // calamine 0.30 panics on some malformed sheets (a shared string index past the list,
    // found by the workbook fuzz target): such a file is not a workbook, and the request
    // must not fail with the worker. Nothing shared is changed while reading.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_bounded(bytes, expect)))
        .unwrap_or(Err(Foreign::NotWorkbook))
}

fn read_bounded(bytes: &[u8], expect: &Expect) -> Result<Book, Foreign> {
    let mut wb: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).map_err(|_| Foreign::NotWorkbook)?;
    let meta = wb
        .worksheet_range(META_SHEET)
        .map_err(|_| Foreign::NotOurs)?;
    let rows = meta_rows(&meta);
    let value = |key: &str| {
        rows.iter()
            .find(|r| r.first().is_some_and(|k| k == key))
            .and_then(|r| r.get(1).cloned())
            .unwrap_or_default()
    };
    if value("format") != FORMAT {
        return Err(Foreign::NotOurs);
    }
    if value("survey") != expect.survey.id {
        return Err(Foreign::OtherSurvey);
    }
    if value("country") != expect.country || value("unit") != expect.unit {
        return Err(Foreign::OtherRespondent);
    }
    let stated = value("checksum");
    let body: Vec<Vec<String>> = rows
        .iter()
        .filter(|r| r.first().is_none_or(|k| k != "checksum"))
        .cloned()
        .collect();
    let mut sheets = Vec::new();
    let mut digests = HashMap::new();
    for r in &body {
        let cell = |i: usize| r.get(i).cloned().unwrap_or_default();
        match r.first().map(String::as_str) {
            Some("section") => {
                let version = cell(2).parse().map_err(|_| Foreign::Tampered)?;
                let range = wb
                    .worksheet_range(&cell(3))
                    .map_err(|_| Foreign::Tampered)?;
                let formulas = wb
                    .worksheet_formula(&cell(3))
                    .map_err(|_| Foreign::Tampered)?;
                sheets.push(SheetData {
                    section: cell(1),
                    version,
                    sheet: cell(3),
                    rows: section_rows(&range, &formulas),
                });
            }
            Some("question") => {
                digests.insert(cell(1), cell(2));
            }
            _ => {}
        }
    }
    let sum = checksum(
        body.iter().map(Vec::as_slice),
        sheets.iter().map(|s| {
            (
                s.sheet.as_str(),
                s.rows
                    .iter()
                    .map(|r| (r.row, r.question.as_str(), r.key.as_str()))
                    .collect(),
            )
        }),
    );
    if sum != stated {
        return Err(Foreign::Tampered);
    }
    // Checked once the checksum holds: a changed survey means a changed layout.
    if value("survey_version") != expect.survey.version {
        return Err(Foreign::OldVersion);
    }
    Ok(Book {
        lang: value("lang"),
        sheets,
        digests,
    })
}

/// The archive must be small once unpacked, whatever its entries declare: every entry is
/// inflated here, counting the bytes actually produced, and reading stops at the cap. So a zip
/// bomb costs at most `MAX_UNZIPPED_BYTES` of work and no memory, before calamine sees it.
fn bound_archive(bytes: &[u8]) -> Result<(), Foreign> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|_| Foreign::NotWorkbook)?;
    if zip.len() > MAX_ENTRIES {
        return Err(Foreign::TooLarge);
    }
    let mut total: u64 = 0;
    let mut buf = vec![0u8; 64 * 1024];
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|_| Foreign::NotWorkbook)?;
        // A worksheet's text is kept (within the same total) to measure its extent.
        let sheet = is_worksheet(entry.name());
        let mut text = Vec::new();
        loop {
            let n = match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(_) => return Err(Foreign::NotWorkbook),
            };
            total += n as u64;
            if total > MAX_UNZIPPED_BYTES {
                return Err(Foreign::TooLarge);
            }
            if sheet {
                text.extend_from_slice(&buf[..n]);
            }
        }
        if sheet && sheet_extent(&text) > MAX_SHEET_CELLS {
            return Err(Foreign::TooLarge);
        }
    }
    Ok(())
}

/// The most cells a sheet's rectangle may span. calamine allocates a grid from a sheet's first
/// to its last cell, so two cells at A1 and XFD1048576 in a 7 KB file would ask for hundreds of
/// gigabytes and abort the server (found by the `workbook` fuzz target). Our workbooks span a
/// few thousand cells.
const MAX_SHEET_CELLS: u64 = 1_000_000;

fn is_worksheet(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.starts_with("xl/worksheets/") && name.ends_with(".xml")
}

/// How many cells the rectangle of a worksheet's XML may span, at most: from the smallest to
/// the largest row and column that a row's or cell's `r` attribute or the `<dimension ref>`
/// names, widened by every row or cell written without `r` (which take the next position).
fn sheet_extent(xml: &[u8]) -> u64 {
    let mut extent = Extent::default();
    // Cells without `r` in the current row: they follow one another in it.
    let mut in_row = 0u64;
    let mut i = 0;
    while let Some(open) = xml[i..].iter().position(|b| *b == b'<') {
        let start = i + open + 1;
        let Some(len) = xml[start..].iter().position(|b| *b == b'>') else {
            break;
        };
        let tag = &xml[start..start + len];
        i = start + len;
        let name_len = tag
            .iter()
            .position(|b| b.is_ascii_whitespace() || *b == b'/')
            .unwrap_or(tag.len());
        let name = &tag[..name_len];
        // `x:c` as `c`: a namespace prefix changes nothing.
        let name = name.rsplit(|b| *b == b':').next().unwrap_or(name);
        let attr = |key: &[u8]| {
            let at = tag.windows(key.len()).position(|w| w == key)? + key.len();
            let end = tag[at..].iter().position(|b| *b == b'"')? + at;
            Some(&tag[at..end])
        };
        match name {
            b"row" => {
                in_row = 0;
                match attr(b" r=\"") {
                    Some(r) => extent.note(r),
                    None => extent.rows_unnamed += 1,
                }
            }
            b"c" => match attr(b" r=\"") {
                Some(r) => extent.note(r),
                None => {
                    in_row += 1;
                    extent.cols_unnamed = extent.cols_unnamed.max(in_row);
                }
            },
            b"dimension" => {
                for cell in attr(b" ref=\"").unwrap_or_default().split(|b| *b == b':') {
                    extent.note(cell);
                }
            }
            _ => {}
        }
    }
    extent.cells()
}

/// The positions a sheet's XML names, and how many rows (in the sheet) and cells (in its
/// fullest row) it leaves unnamed.
#[derive(Default)]
struct Extent {
    rows: Option<(u64, u64)>,
    cols: Option<(u64, u64)>,
    rows_unnamed: u64,
    cols_unnamed: u64,
}

impl Extent {
    /// A reference: `B7` (a cell), `7` (a row).
    fn note(&mut self, reference: &[u8]) {
        let letters = reference
            .iter()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        let widen = |range: &mut Option<(u64, u64)>, n: u64| {
            *range = Some(range.map_or((n, n), |(lo, hi)| (lo.min(n), hi.max(n))));
        };
        let digits = &reference[letters..];
        if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
            // A number too long for u64 (calamine wraps it) is as far as it gets.
            let row = std::str::from_utf8(digits)
                .ok()
                .and_then(|d| d.parse::<u64>().ok())
                .unwrap_or(u64::MAX);
            widen(&mut self.rows, row);
        }
        if letters > 0 {
            let col = reference[..letters].iter().fold(0u64, |n, b| {
                n.saturating_mul(26)
                    .saturating_add(u64::from(b.to_ascii_uppercase() - b'A' + 1))
            });
            widen(&mut self.cols, col);
        }
    }

    fn cells(&self) -> u64 {
        let span = |range: Option<(u64, u64)>, unnamed: u64| {
            // Unnamed positions may start anywhere from the first: count from 1 then.
            let (lo, hi) = range.unwrap_or((1, 0));
            let lo = if unnamed > 0 { 1 } else { lo };
            hi.saturating_add(unnamed)
                .saturating_sub(lo)
                .saturating_add(1)
        };
        span(self.rows, self.rows_unnamed).saturating_mul(span(self.cols, self.cols_unnamed))
    }
}

fn text_of(d: Option<&Data>) -> String {
    match cell_of(d) {
        Cell::Text(s) => s,
        Cell::Number(n) | Cell::Date(n) => number_text(n),
        Cell::Empty => String::new(),
    }
}

fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

fn cell_of(d: Option<&Data>) -> Cell {
    match d {
        None | Some(Data::Empty) => Cell::Empty,
        Some(Data::String(s)) if s.trim().is_empty() => Cell::Empty,
        Some(Data::String(s)) => Cell::Text(s.clone()),
        Some(Data::Float(f)) => Cell::Number(*f),
        Some(Data::Int(i)) => Cell::Number(*i as f64),
        Some(Data::Bool(b)) => Cell::Text(if *b { "TRUE" } else { "FALSE" }.into()),
        Some(Data::DateTime(d)) => Cell::Date(d.as_f64()),
        Some(Data::DateTimeIso(s)) => Cell::Text(s.chars().take(10).collect()),
        Some(Data::DurationIso(s)) => Cell::Text(s.clone()),
        Some(Data::Error(e)) => Cell::Text(format!("#{e:?}")),
    }
}

fn meta_rows(range: &Range<Data>) -> Vec<Vec<String>> {
    let Some((end_r, end_c)) = range.end() else {
        return Vec::new();
    };
    (0..=end_r)
        .map(|r| {
            let mut row: Vec<String> = (0..=end_c)
                .map(|c| text_of(range.get_value((r, c))))
                .collect();
            while row.last().is_some_and(String::is_empty) {
                row.pop();
            }
            row
        })
        .collect()
}

fn section_rows(range: &Range<Data>, formulas: &Range<String>) -> Vec<CellRow> {
    let Some((end_r, _)) = range.end() else {
        return Vec::new();
    };
    (1..=end_r)
        .filter_map(|r| {
            let question = text_of(range.get_value((r, COL_QUESTION as u32)));
            if question.is_empty() {
                return None;
            }
            Some(CellRow {
                row: r,
                question,
                key: text_of(range.get_value((r, COL_KEY as u32))),
                answer: cell_of(range.get_value((r, COL_ANSWER as u32))),
                escape: cell_of(range.get_value((r, COL_ESCAPE as u32))),
                reason: cell_of(range.get_value((r, COL_REASON as u32))),
                formula: [COL_ANSWER, COL_ESCAPE, COL_REASON].into_iter().find(|c| {
                    formulas
                        .get_value((r, u32::from(*c)))
                        .is_some_and(|f| !f.trim().is_empty())
                }),
            })
        })
        .collect()
}

/// A refused cell: where (`Sheet!D7`) and why, in the respondent's language.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CellError {
    pub place: String,
    pub message: String,
}

/// An answer changed online since the export, which the file would change too.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SheetConflict {
    pub place: String,
    pub question: String,
    pub online: String,
    pub yours: String,
}

#[derive(Debug, Clone)]
pub enum ImportOutcome {
    /// Saved as one save: how many sections and questions changed.
    Saved {
        sections: usize,
        questions: usize,
    },
    /// The file holds exactly what is stored.
    Unchanged,
    Errors(Vec<CellError>),
    Conflicts(Vec<SheetConflict>),
    Foreign(Foreign),
}

/// A section's changed questions and their new items.
type Changes = Vec<(String, Vec<crate::survey::answer::Item>)>;

/// A section's raw answers and where each question's cells are.
struct Parsed {
    raw: HashMap<String, RawAnswer>,
    /// Question -> the cell its errors point to, and its escape cell.
    places: HashMap<String, (String, String)>,
    errors: Vec<(String, CellError)>,
}

/// Check every cell and save the whole file as one save, or say what stops it.
pub fn import(
    conn: &mut DbConn,
    survey: &Survey,
    countries: &Countries,
    who: &Respondent,
    book: &Book,
    lang: &str,
    now: DateTime<Utc>,
) -> Result<ImportOutcome, RespondError> {
    let labels = Labels::new(lang, countries);
    let mut parsed = Parsed {
        raw: HashMap::new(),
        places: HashMap::new(),
        errors: Vec::new(),
    };
    for sheet in &book.sheets {
        let Some(section) = survey.section(&sheet.section) else {
            return Ok(ImportOutcome::Foreign(Foreign::Tampered));
        };
        if !who.may_answer(&section.id) {
            return Ok(ImportOutcome::Foreign(Foreign::NotYourSections));
        }
        if let Err(f) = parse_sheet(section, sheet, &labels, &mut parsed) {
            return Ok(ImportOutcome::Foreign(f));
        }
    }
    for _attempt in 0..2 {
        let state = respond::load(conn, survey, who, now.naive_utc())?;
        respond::check_writable(survey, &state, now)?;
        // Each question's new items, checked with the form's rules.
        let mut new_items: BTreeMap<String, Vec<crate::survey::answer::Item>> = BTreeMap::new();
        let mut field_errors: Vec<(String, CellError)> = Vec::new();
        for sheet in &book.sheets {
            let Some(section) = survey.section(&sheet.section) else {
                continue;
            };
            for q in section.questions.iter().filter(|q| !rows_of(q).is_empty()) {
                if parsed.errors.iter().any(|(id, _)| id == &q.id) {
                    continue;
                }
                let Some(raw) = parsed.raw.get(&q.id) else {
                    continue;
                };
                match validate(q, raw, countries) {
                    Ok(items) => {
                        new_items.insert(q.id.clone(), items);
                    }
                    Err(e) => {
                        let (value_cell, escape_cell) =
                            parsed.places.get(&q.id).cloned().unwrap_or_default();
                        let place = if raw.escape.is_some() {
                            escape_cell
                        } else {
                            value_cell
                        };
                        field_errors.push((
                            q.id.clone(),
                            CellError {
                                place,
                                message: field_message(lang, &e),
                            },
                        ));
                    }
                }
            }
        }
        // Which questions the answers show once the file's are in: hidden ones are not read.
        let mut merged: Answers = state.answers.clone();
        for (q, items) in &new_items {
            if items.is_empty() {
                merged.remove(q);
            } else {
                merged.insert(q.clone(), items.clone());
            }
        }
        let vis = Visibility::evaluate(survey, &merged);
        let mut errors: Vec<CellError> = parsed
            .errors
            .iter()
            .chain(field_errors.iter())
            .filter(|(q, _)| vis.question(q))
            .map(|(_, e)| e.clone())
            .collect();
        if !errors.is_empty() {
            errors.sort_by_key(|e| place_order(&e.place));
            return Ok(ImportOutcome::Errors(errors));
        }
        let mut changes: Vec<(&SheetData, Changes)> = Vec::new();
        let mut conflicts = Vec::new();
        for sheet in &book.sheets {
            let Some(section) = survey.section(&sheet.section) else {
                continue;
            };
            if !vis.section(&section.id) {
                continue;
            }
            let moved = state.section_version(&section.id) != sheet.version;
            let mut section_changes = Vec::new();
            for q in section.questions.iter().filter(|q| vis.question(&q.id)) {
                let Some(items) = new_items.get(&q.id) else {
                    continue;
                };
                let stored = state.answers.get(&q.id).cloned().unwrap_or_default();
                if *items == stored {
                    continue;
                }
                let exported = book.digests.get(&q.id);
                // An answer the file leaves as it was exported is not the file's to change: a
                // newer value saved online stays.
                if exported == Some(&items_digest(items)) {
                    continue;
                }
                let changed_online = exported != Some(&items_digest(&stored));
                if moved && changed_online {
                    let place = parsed
                        .places
                        .get(&q.id)
                        .map(|p| p.0.clone())
                        .unwrap_or_default();
                    conflicts.push(SheetConflict {
                        place,
                        question: q.text.get(lang).to_string(),
                        online: describe(q, &stored, &labels),
                        yours: describe(q, items, &labels),
                    });
                }
                section_changes.push((q.id.clone(), items.clone()));
            }
            if !section_changes.is_empty() {
                changes.push((sheet, section_changes));
            }
        }
        if !conflicts.is_empty() {
            return Ok(ImportOutcome::Conflicts(conflicts));
        }
        if changes.is_empty() {
            return Ok(ImportOutcome::Unchanged);
        }
        let mut after = state.answers.clone();
        for (_, list) in &changes {
            for (q, items) in list {
                if items.is_empty() {
                    after.remove(q);
                } else {
                    after.insert(q.clone(), items.clone());
                }
            }
        }
        let after_vis = Visibility::evaluate(survey, &after);
        let hidden_after: HashSet<String> = survey
            .questions()
            .filter(|q| !after_vis.question(&q.id))
            .map(|q| q.id.clone())
            .collect();
        let hidden_before: HashSet<String> = survey
            .questions()
            .filter(|q| !state.visibility.question(&q.id))
            .map(|q| q.id.clone())
            .collect();
        let stored = |q: &str| state.answers.get(q).map_or(&[][..], Vec::as_slice);
        let writes: Vec<SectionWrite> = changes
            .iter()
            .map(|(sheet, list)| SectionWrite {
                response_id: &state.response.id,
                section_id: &sheet.section,
                base_version: state.section_version(&sheet.section),
                token_id: &who.token.id,
                survey_version: &survey.version,
                stored_survey_version: &state.response.survey_version,
                survey_id: &survey.id,
                country_iso3: &state.response.country_iso3,
                changes: list,
                stored: &stored,
                hidden_before: &hidden_before,
                hidden_after: &hidden_after,
                now: now.naive_utc(),
            })
            .collect();
        match sections::write_sections(conn, &writes)? {
            WriteOutcome::Saved { .. } => {
                return Ok(ImportOutcome::Saved {
                    sections: changes.len(),
                    questions: changes.iter().map(|(_, l)| l.len()).sum(),
                })
            }
            // Someone saved between the read and the write: look again.
            WriteOutcome::Stale => continue,
            WriteOutcome::NotEditable => {
                let state = respond::load(conn, survey, who, now.naive_utc())?;
                respond::check_writable(survey, &state, now)?;
                return Err(RespondError::AlreadySubmitted);
            }
        }
    }
    Ok(ImportOutcome::Conflicts(Vec::new()))
}

/// Errors in reading order: sheet, then row.
fn place_order(place: &str) -> (String, u32) {
    let (sheet, cell) = place.rsplit_once('!').unwrap_or(("", place));
    let row: u32 = cell
        .trim_start_matches(|c: char| c.is_ascii_alphabetic())
        .parse()
        .unwrap_or(0);
    (sheet.to_string(), row)
}

fn field_message(lang: &str, e: &FieldError) -> String {
    translate(lang, e.message_id, &e.args)
}

/// `Sheet!D7`.
fn place(sheet: &str, row: u32, col: u16) -> String {
    format!("{sheet}!{}", cell_name(row, col))
}

/// A section sheet's cells turned into the form's raw answers, with the cells no answer can be
/// read from (a label not in the list).
fn parse_sheet(
    section: &crate::survey::model::Section,
    sheet: &SheetData,
    labels: &Labels,
    out: &mut Parsed,
) -> Result<(), Foreign> {
    let lang = labels.lang();
    for q in &section.questions {
        let expected = rows_of(q);
        if expected.is_empty() {
            continue;
        }
        let rows: Vec<&CellRow> = sheet.rows.iter().filter(|r| r.question == q.id).collect();
        let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
        let want: Vec<&str> = expected.iter().map(RowKind::key).collect();
        if keys != want {
            return Err(Foreign::Tampered);
        }
        let mut raw = RawAnswer::default();
        let mut value_cell = String::new();
        let mut escape_cell = String::new();
        for (row, kind) in rows.iter().zip(&expected) {
            if let Some(col) = row.formula {
                out.errors.push((
                    q.id.clone(),
                    CellError {
                        place: place(&sheet.sheet, row.row, col),
                        message: translate(lang, "sheet-error-formula", &[]),
                    },
                ));
                continue;
            }
            let here = place(&sheet.sheet, row.row, COL_ANSWER);
            if value_cell.is_empty() && *kind != RowKind::Heading {
                value_cell = here.clone();
            }
            if kind.is_first() {
                escape_cell = place(&sheet.sheet, row.row, COL_ESCAPE);
                let escape = cell_text(&row.escape, false);
                if !escape.is_empty() {
                    let found = labels
                        .escapes(q)
                        .into_iter()
                        .find(|(l, k)| same(l, &escape) || k.code() == escape.trim());
                    match found {
                        Some((_, k)) => raw.escape = Some(k.code().to_string()),
                        None => out.errors.push((
                            q.id.clone(),
                            CellError {
                                place: escape_cell.clone(),
                                message: translate(lang, "sheet-error-escape", &[]),
                            },
                        )),
                    }
                }
                let reason = cell_text(&row.reason, false);
                if !reason.is_empty() {
                    raw.reason = Some(reason);
                }
            }
            let mut refuse = |message_id: &str| {
                out.errors.push((
                    q.id.clone(),
                    CellError {
                        place: here.clone(),
                        message: translate(lang, message_id, &[]),
                    },
                ));
            };
            let is_date = matches!(q.kind, QuestionKind::Date { .. });
            let text = cell_text(&row.answer, is_date);
            match kind {
                RowKind::Heading => {}
                RowKind::Other => {
                    if !text.is_empty() {
                        raw.other = Some(text);
                    }
                }
                RowKind::Option(code) => match pick(labels, q, kind, &text) {
                    Pick::Empty => {}
                    Pick::Code(c) if c == "yes" => raw.values.push(code.clone()),
                    Pick::Code(_) => {}
                    Pick::Unknown => refuse("error-yes-no"),
                },
                RowKind::MatrixRow(code) => match pick(labels, q, kind, &text) {
                    Pick::Empty => {}
                    Pick::Code(c) => {
                        raw.rows.insert(code.clone(), c);
                    }
                    Pick::Unknown => refuse("error-not-an-option"),
                },
                RowKind::Value => match pick(labels, q, kind, &text) {
                    Pick::Empty => {}
                    Pick::Code(c) => raw.values.push(c),
                    Pick::Unknown => refuse(match q.kind {
                        QuestionKind::YesNo => "error-yes-no",
                        QuestionKind::Country => "error-not-country",
                        _ => "error-not-an-option",
                    }),
                },
            }
        }
        out.places.insert(q.id.clone(), (value_cell, escape_cell));
        out.raw.insert(q.id.clone(), raw);
    }
    Ok(())
}

enum Pick {
    Empty,
    Code(String),
    Unknown,
}

/// A cell's value as the form would send it: a drop-down's label becomes its code, the rest
/// is passed on as typed for the form's rules to judge.
fn pick(labels: &Labels, q: &Question, kind: &RowKind, text: &str) -> Pick {
    if text.is_empty() {
        return Pick::Empty;
    }
    let Some(list) = labels.list_for(q, kind) else {
        return Pick::Code(text.to_string());
    };
    let found = list.iter().find(|(l, _)| same(l, text)).or_else(|| {
        list.iter()
            .find(|(_, c)| c.eq_ignore_ascii_case(text.trim()))
    });
    match found {
        Some((_, code)) => Pick::Code(code.clone()),
        None => Pick::Unknown,
    }
}

fn same(label: &str, text: &str) -> bool {
    label.trim().to_lowercase() == text.trim().to_lowercase()
}

/// A cell as text: numbers without a needless ".0", dates as YYYY-MM-DD where one is wanted.
fn cell_text(cell: &Cell, date: bool) -> String {
    match cell {
        Cell::Empty => String::new(),
        Cell::Text(s) => s.clone(),
        Cell::Date(n) | Cell::Number(n) if date => {
            serial_date(*n).unwrap_or_else(|| number_text(*n))
        }
        Cell::Date(n) => serial_date(*n).unwrap_or_else(|| number_text(*n)),
        Cell::Number(n) => number_text(*n),
    }
}

/// An Excel date serial (1900 system) as YYYY-MM-DD.
fn serial_date(n: f64) -> Option<String> {
    if !(61.0..2_958_466.0).contains(&n) {
        return None;
    }
    let epoch = chrono::NaiveDate::from_ymd_opt(1899, 12, 30)?;
    let d = epoch.checked_add_signed(chrono::Duration::days(n.floor() as i64))?;
    Some(d.format("%Y-%m-%d").to_string())
}

/// An answer as a person reads it, for the conflict list.
fn describe(q: &Question, items: &[crate::survey::answer::Item], labels: &Labels) -> String {
    if items.is_empty() {
        return String::from("—");
    }
    if let Some((k, reason)) = items
        .iter()
        .find_map(|i| EscapeKind::of_item(&i.item).map(|k| (k, i.value.as_str())))
    {
        let name = labels
            .escapes(q)
            .into_iter()
            .find(|(_, e)| *e == k)
            .map(|(l, _)| l)
            .unwrap_or_else(|| k.code().to_string());
        return if reason.is_empty() {
            name
        } else {
            format!("{name}: {reason}")
        };
    }
    let label_of = |row: &RowKind, code: &str| {
        labels
            .list_for(q, row)
            .and_then(|l| l.into_iter().find(|(_, c)| c == code).map(|(l, _)| l))
            .unwrap_or_else(|| code.to_string())
    };
    let parts: Vec<String> = items
        .iter()
        .map(|i| match &q.kind {
            _ if i.item == crate::survey::answer::OTHER_ITEM => i.value.clone(),
            QuestionKind::MultipleChoice { options, .. } => options
                .iter()
                .find(|o| o.code == i.item)
                .map(|o| o.label.get(labels.lang()).to_string())
                .unwrap_or_else(|| {
                    if i.item == OTHER_CODE {
                        translate(labels.lang(), "other-option", &[])
                    } else {
                        i.item.clone()
                    }
                }),
            QuestionKind::Matrix { rows, .. } => {
                let row = rows
                    .iter()
                    .find(|r| r.code == i.item)
                    .map(|r| r.label.get(labels.lang()).to_string())
                    .unwrap_or_else(|| i.item.clone());
                format!(
                    "{row}: {}",
                    label_of(&RowKind::MatrixRow(i.item.clone()), &i.value)
                )
            }
            _ => label_of(&RowKind::Value, &i.value),
        })
        .collect();
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::survey::model::{Escape, Escapes, Section, Text};

    fn question(escapes: Escapes) -> Question {
        Question {
            id: "staff".into(),
            text: Text::english("Staff"),
            help: None,
            required: true,
            show_if: None,
            kind: QuestionKind::Integer {
                min: Some(0),
                max: None,
            },
            marker: None,
            escapes,
        }
    }

    fn sheet(escape: &str, reason: &str, answer: Cell) -> SheetData {
        let text = |s: &str| {
            if s.is_empty() {
                Cell::Empty
            } else {
                Cell::Text(s.into())
            }
        };
        SheetData {
            section: "s".into(),
            version: 0,
            sheet: "1. S".into(),
            rows: vec![CellRow {
                row: 1,
                question: "staff".into(),
                key: String::new(),
                answer,
                escape: text(escape),
                reason: text(reason),
                formula: None,
            }],
        }
    }

    /// A workbook with the meta sheet only, its cell A1 the shared string `index`.
    fn shared_string_workbook(index: usize) -> Vec<u8> {
        use std::io::Write;
        let entries = [
            (
                "[Content_Types].xml",
                r#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>"#.to_string(),
            ),
            (
                "_rels/.rels",
                r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.to_string(),
            ),
            (
                "xl/_rels/workbook.xml.rels",
                r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>"#.to_string(),
            ),
            (
                "xl/workbook.xml",
                format!(r#"<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="{META_SHEET}" sheetId="1" r:id="rId1"/></sheets></workbook>"#),
            ),
            (
                "xl/sharedStrings.xml",
                r#"<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1"><si><t>format</t></si></sst>"#.to_string(),
            ),
            (
                "xl/worksheets/sheet1.xml",
                format!(r#"<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="s"><v>{index}</v></c></row></sheetData></worksheet>"#),
            ),
        ];
        let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, text) in entries {
            out.start_file(name, zip::write::SimpleFileOptions::default())
                .unwrap();
            out.write_all(text.as_bytes()).unwrap();
        }
        out.finish().unwrap().into_inner()
    }

    #[test]
    fn a_shared_string_past_the_list_is_not_a_workbook() {
        // Found by the workbook fuzz target: calamine indexed the shared strings unchecked
        // and the read panicked.
        let (survey, _) = crate::survey::parse_survey(
            "coherence-2008.toml",
            include_str!("../../surveys/coherence-2008.toml"),
        );
        let survey = survey.unwrap();
        let expect = Expect {
            survey: &survey,
            country: "SWE",
            unit: "",
        };
        // The same file with a valid index is read as a workbook, not ours.
        assert_eq!(
            read(&shared_string_workbook(0), &expect).err(),
            Some(Foreign::NotOurs)
        );
        assert_eq!(
            read(&shared_string_workbook(3328), &expect).err(),
            Some(Foreign::NotWorkbook)
        );
    }

    #[test]
    fn a_sheet_spanning_too_many_cells_is_refused_before_calamine() {
        // Found by the workbook fuzz target: cells at A1 and XFD1048576 made calamine ask for
        // a grid of hundreds of gigabytes, which aborts the process.
        let cells = |xml: &str| sheet_extent(xml.as_bytes());
        let far = r#"<worksheet><sheetData><row r="1"><c r="A1"/></row>
            <row r="1048576"><x:c t="s" r="XFD1048576"><v>0</v></x:c></row></sheetData></worksheet>"#;
        assert_eq!(cells(far), 1_048_576 * 16_384);
        assert_eq!(cells(r#"<dimension ref="B2:C4"/>"#), 6);
        // A row number too long for any integer (calamine wrapped it to a far row).
        assert_eq!(
            cells(r#"<c r="A1"/><c r="D2222222222222222222222222"/>"#),
            u64::MAX
        );
        // Rows and cells without `r` take the next positions: counted, the fullest row's cells.
        let unnamed = "<row><c/><c/><c/></row><row><c/></row><row r=\"5\"><c r=\"B5\"/></row>";
        assert_eq!(cells(unnamed), 7 * 5);
        // A workbook the app writes spans a few thousand cells at most.
        let (survey, _) = crate::survey::parse_survey(
            "coherence-2008.toml",
            include_str!("../../surveys/coherence-2008.toml"),
        );
        let survey = survey.unwrap();
        let expect = Expect {
            survey: &survey,
            country: "SWE",
            unit: "",
        };
        let mut zipped = Cursor::new(Vec::new());
        {
            use std::io::Write;
            let mut zip = zip::ZipWriter::new(&mut zipped);
            let options = zip::write::SimpleFileOptions::default();
            zip.start_file("xl/worksheets/sheet1.xml", options).unwrap();
            zip.write_all(far.as_bytes()).unwrap();
            zip.finish().unwrap();
        }
        assert_eq!(
            read(&zipped.into_inner(), &expect).err(),
            Some(Foreign::TooLarge)
        );
    }

    fn parse(q: Question, data: &SheetData) -> Parsed {
        let countries = Countries::load().unwrap();
        let labels = Labels::new("fr", &countries);
        let section = Section {
            id: "s".into(),
            title: Text::english("S"),
            intro: None,
            show_if: None,
            questions: vec![q],
        };
        let mut out = Parsed {
            raw: HashMap::new(),
            places: HashMap::new(),
            errors: Vec::new(),
        };
        parse_sheet(&section, data, &labels, &mut out).unwrap();
        out
    }

    #[test]
    fn a_non_answer_is_read_from_its_label_with_its_reason() {
        let escapes = Escapes {
            not_known: Some(Escape {
                reason_required: true,
            }),
            not_applicable: None,
        };
        let out = parse(
            question(escapes.clone()),
            &sheet("Inconnu", "Pas de registre", Cell::Empty),
        );
        let raw = &out.raw["staff"];
        assert_eq!(raw.escape.as_deref(), Some("not_known"));
        assert_eq!(raw.reason.as_deref(), Some("Pas de registre"));
        assert!(out.errors.is_empty());
        assert_eq!(out.places["staff"].1, "1. S!E2");

        // A non-answer the question does not allow is refused at its cell.
        let out = parse(
            question(escapes),
            &sheet("Sans objet", "", Cell::Number(3.0)),
        );
        assert_eq!(out.errors.len(), 1);
        assert_eq!(out.errors[0].1.place, "1. S!E2");
        assert_eq!(out.raw["staff"].values, ["3"]);
    }

    #[test]
    fn numbers_and_dates_read_as_the_form_sends_them() {
        assert_eq!(cell_text(&Cell::Number(12.0), false), "12");
        assert_eq!(cell_text(&Cell::Number(0.25), false), "0.25");
        assert_eq!(cell_text(&Cell::Date(43968.0), true), "2020-05-17");
        assert_eq!(cell_text(&Cell::Number(43968.0), true), "2020-05-17");
        assert_eq!(
            cell_text(&Cell::Text("2020-05-17".into()), true),
            "2020-05-17"
        );
    }
}

//! The questionnaire as a spreadsheet: a workbook a ministry fills offline ([`workbook`]) and
//! uploads back ([`import`]), checked cell by cell with the web form's rules and saved at once.
//!
//! Both directions share one layout, so what the export writes is what the import reads:
//! - a section sheet per section the link may answer, a row per question (a heading row and a
//!   row per option of a multiple choice, answered yes/no; a heading row and a row per row of a
//!   matrix; a row for the "other, please specify" text), with the question id and the row's
//!   key in hidden columns A and B, the answer in D, and, where the question allows them, the
//!   non-answer ("not known", "not applicable") in E and its reason in F;
//! - a hidden `coherence` sheet: survey, survey version, country, organisation, language, each
//!   section's version at export and sheet, a digest of each exported answer, and a checksum
//!   over all of it and every sheet's id columns;
//! - a hidden `lists` sheet holding the drop-down lists (choices, countries, yes/no, scales).
//!
//! The checksum is a plain SHA-256, not a keyed signature: it catches an edited id column or a
//! workbook pieced together from two, and anyone able to recompute it gains nothing, since every
//! cell is checked again against the link's rights and the survey's rules on import.

pub mod import;
pub mod workbook;

use sha2::{Digest, Sha256};

use crate::survey::answer::{Item, OTHER_ITEM};
use crate::survey::model::{Question, QuestionKind};

/// Names the hidden sheets; section sheets are named after their sections.
pub const META_SHEET: &str = "coherence";
pub const LISTS_SHEET: &str = "lists";
/// The first cell of the meta sheet, so a workbook of another layout is told apart.
pub const FORMAT: &str = "coherence-questionnaire-1";

/// Columns of a section sheet (zero-based).
pub const COL_QUESTION: u16 = 0;
pub const COL_KEY: u16 = 1;
pub const COL_TEXT: u16 = 2;
pub const COL_ANSWER: u16 = 3;
pub const COL_ESCAPE: u16 = 4;
pub const COL_REASON: u16 = 5;

/// Keys of the rows that are not an option or a matrix row.
pub const KEY_VALUE: &str = "";
pub const KEY_HEADING: &str = "#question";

/// What one row of a section sheet stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowKind {
    /// The answer of a one-value question.
    Value,
    /// A multiple choice's or matrix's heading: no answer of its own, the non-answer if any.
    Heading,
    /// One option of a multiple choice, answered yes or no.
    Option(String),
    /// One row of a matrix, answered on the scale.
    MatrixRow(String),
    /// The "other, please specify" text.
    Other,
}

impl RowKind {
    pub fn key(&self) -> &str {
        match self {
            RowKind::Value => KEY_VALUE,
            RowKind::Heading => KEY_HEADING,
            RowKind::Option(c) | RowKind::MatrixRow(c) => c,
            RowKind::Other => OTHER_ITEM,
        }
    }

    /// Whether the row carries the question's non-answer cells (its first row).
    pub fn is_first(&self) -> bool {
        matches!(self, RowKind::Value | RowKind::Heading)
    }
}

/// The rows a question takes, in order; none for a question answered only online.
pub fn rows_of(q: &Question) -> Vec<RowKind> {
    let mut rows = match &q.kind {
        QuestionKind::ShortText { .. }
        | QuestionKind::LongText { .. }
        | QuestionKind::SingleChoice { .. }
        | QuestionKind::YesNo
        | QuestionKind::Integer { .. }
        | QuestionKind::Decimal { .. }
        | QuestionKind::Percentage
        | QuestionKind::Date { .. }
        | QuestionKind::Country
        | QuestionKind::Email
        | QuestionKind::Url => vec![RowKind::Value],
        QuestionKind::MultipleChoice { options, .. } => std::iter::once(RowKind::Heading)
            .chain(options.iter().map(|o| RowKind::Option(o.code.clone())))
            .collect(),
        QuestionKind::Matrix { rows, .. } => std::iter::once(RowKind::Heading)
            .chain(rows.iter().map(|r| RowKind::MatrixRow(r.code.clone())))
            .collect(),
        // Documents are attached online: the instructions sheet says so.
        QuestionKind::File { .. } => return Vec::new(),
    };
    if q.kind.has_other() {
        if let QuestionKind::MultipleChoice { .. } = q.kind {
            rows.push(RowKind::Option(crate::survey::model::OTHER_CODE.into()));
        }
        rows.push(RowKind::Other);
    }
    rows
}

/// A short digest of a question's stored items: what the export saw, compared on import to
/// tell an answer changed online since.
pub fn items_digest(items: &[Item]) -> String {
    let mut h = Sha256::new();
    for it in items {
        h.update(it.item.as_bytes());
        h.update([0x1f]);
        h.update(it.value.as_bytes());
        h.update([0x1e]);
    }
    hex::encode(&h.finalize()[..8])
}

/// The checksum of a workbook: the meta rows (without the checksum's own) and, per section
/// sheet, every row's number and id cells.
pub fn checksum<'a>(
    meta_rows: impl Iterator<Item = &'a [String]>,
    sheets: impl Iterator<Item = (&'a str, Vec<(u32, &'a str, &'a str)>)>,
) -> String {
    let mut h = Sha256::new();
    for row in meta_rows {
        // An empty last cell is not written at all: read back, the row is shorter.
        let len = row.iter().rposition(|c| !c.is_empty()).map_or(0, |i| i + 1);
        for cell in &row[..len] {
            h.update(cell.as_bytes());
            h.update([0x1f]);
        }
        h.update([0x1e]);
    }
    for (name, rows) in sheets {
        h.update(name.as_bytes());
        h.update([0x1d]);
        for (r, q, k) in rows {
            h.update(r.to_string().as_bytes());
            h.update([0x1f]);
            h.update(q.as_bytes());
            h.update([0x1f]);
            h.update(k.as_bytes());
            h.update([0x1e]);
        }
    }
    hex::encode(h.finalize())
}

/// A sheet name Excel accepts for a section: numbered, without `[]:*?/\`, at most 31 chars.
pub fn sheet_name(number: usize, title: &str) -> String {
    let clean: String = title
        .chars()
        .filter(|c| !matches!(c, '[' | ']' | ':' | '*' | '?' | '/' | '\\' | '\''))
        .collect();
    let name = format!("{number}. {}", clean.trim());
    name.chars().take(31).collect::<String>().trim().to_string()
}

/// A cell's A1 name, as errors show it (`'1. Policy'!D7` reads as `1. Policy!D7`).
pub fn cell_name(row: u32, col: u16) -> String {
    rust_xlsxwriter::utility::row_col_to_cell(row, col)
}

//! Writing the questionnaire workbook: instructions, a sheet per section with the current
//! answers and drop-down lists, and the hidden sheets the import reads (see the module above).

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};
use rust_xlsxwriter::{
    DataValidation, DataValidationRule, ExcelDateTime, Format, FormatBorder, Formula, Workbook,
    Worksheet, XlsxError,
};

use super::*;
use crate::i18n::translate;
use crate::reference::Countries;
use crate::respond::{Respondent, ResponseState};
use crate::survey::answer::Item;
use crate::survey::model::{Choice, EscapeKind, Survey, OTHER_CODE};

/// Everything the workbook is written from.
pub struct Export<'a> {
    pub survey: &'a Survey,
    pub who: &'a Respondent,
    pub state: &'a ResponseState,
    pub lang: &'a str,
    pub countries: &'a Countries,
    /// When it was written (shown on the instructions sheet).
    pub now: chrono::NaiveDateTime,
}

/// The labels a respondent reads in drop-downs, and the codes they stand for.
pub struct Labels<'a> {
    lang: &'a str,
    countries: &'a Countries,
}

impl<'a> Labels<'a> {
    pub fn new(lang: &'a str, countries: &'a Countries) -> Self {
        Labels { lang, countries }
    }

    pub fn lang(&self) -> &'a str {
        self.lang
    }

    pub fn yes_no(&self) -> Vec<(String, &'static str)> {
        vec![
            (translate(self.lang, "yes", &[]), "yes"),
            (translate(self.lang, "no", &[]), "no"),
        ]
    }

    /// The choices of a single choice (with "Other"), or a matrix's scale.
    pub fn choices(&self, choices: &[Choice], other: bool) -> Vec<(String, String)> {
        let mut list: Vec<(String, String)> = choices
            .iter()
            .map(|c| (c.label.get(self.lang).to_string(), c.code.clone()))
            .collect();
        if other {
            list.push((translate(self.lang, "other-option", &[]), OTHER_CODE.into()));
        }
        list
    }

    pub fn countries(&self) -> Vec<(String, String)> {
        self.countries
            .sorted_by_name(self.lang)
            .into_iter()
            .map(|c| (c.name(self.lang).to_string(), c.iso3.clone()))
            .collect()
    }

    /// The non-answers a question allows.
    pub fn escapes(&self, q: &Question) -> Vec<(String, EscapeKind)> {
        EscapeKind::ALL
            .into_iter()
            .filter(|k| q.escapes.get(*k).is_some())
            .map(|k| (translate(self.lang, escape_message(k), &[]), k))
            .collect()
    }

    /// The drop-down list of a row's answer cell, if it has one.
    pub fn list_for(&self, q: &Question, row: &RowKind) -> Option<Vec<(String, String)>> {
        let pairs = |v: Vec<(String, &'static str)>| {
            v.into_iter()
                .map(|(l, c)| (l, c.to_string()))
                .collect::<Vec<_>>()
        };
        match (row, &q.kind) {
            (RowKind::Option(_), _) => Some(pairs(self.yes_no())),
            (RowKind::MatrixRow(_), QuestionKind::Matrix { scale, .. }) => {
                Some(self.choices(scale, false))
            }
            (RowKind::Value, QuestionKind::SingleChoice { options, other }) => {
                Some(self.choices(options, *other))
            }
            (RowKind::Value, QuestionKind::YesNo) => Some(pairs(self.yes_no())),
            (RowKind::Value, QuestionKind::Country) => Some(self.countries()),
            _ => None,
        }
    }
}

fn escape_message(kind: EscapeKind) -> &'static str {
    match kind {
        EscapeKind::NotKnown => "sheet-not-known",
        EscapeKind::NotApplicable => "sheet-not-applicable",
    }
}

/// The sections of the workbook: those the link may answer, in order, with their sheet names.
pub fn sheet_sections<'a>(
    survey: &'a Survey,
    who: &Respondent,
    lang: &str,
) -> Vec<(&'a crate::survey::model::Section, String)> {
    survey
        .sections
        .iter()
        .enumerate()
        .filter(|(_, s)| who.may_answer(&s.id))
        .map(|(i, s)| (s, sheet_name(i + 1, s.title.get(lang))))
        .collect()
}

/// The meta sheet's rows, in order (the checksum row excluded).
fn meta_rows(x: &Export) -> Vec<Vec<String>> {
    let t = &x.who.token;
    let mut rows = vec![
        vec!["format".to_string(), FORMAT.to_string()],
        vec!["survey".into(), x.survey.id.clone()],
        vec!["survey_version".into(), x.survey.version.clone()],
        vec!["country".into(), t.country_iso3.clone()],
        vec!["unit".into(), t.unit.clone()],
        vec!["lang".into(), x.lang.to_string()],
    ];
    for (s, name) in sheet_sections(x.survey, x.who, x.lang) {
        rows.push(vec![
            "section".into(),
            s.id.clone(),
            x.state.section_version(&s.id).to_string(),
            name,
        ]);
        for q in s.questions.iter().filter(|q| !rows_of(q).is_empty()) {
            let items = x.state.answers.get(&q.id).map(Vec::as_slice).unwrap_or(&[]);
            rows.push(vec!["question".into(), q.id.clone(), items_digest(items)]);
        }
    }
    rows
}

/// The hidden lists, each in its own column of the `lists` sheet, written once however many
/// questions use them.
#[derive(Default)]
struct Lists {
    columns: Vec<Vec<String>>,
    index: HashMap<Vec<String>, u16>,
}

impl Lists {
    /// The formula a data validation refers to for this list.
    fn formula(&mut self, labels: Vec<String>) -> Formula {
        let n = labels.len().max(1) as u32;
        let col = match self.index.get(&labels) {
            Some(c) => *c,
            None => {
                let c = self.columns.len() as u16;
                self.index.insert(labels.clone(), c);
                self.columns.push(labels);
                c
            }
        };
        let letter = rust_xlsxwriter::utility::column_number_to_name(col);
        Formula::new(format!("={LISTS_SHEET}!${letter}$1:${letter}${n}"))
    }
}

struct Formats {
    header: Format,
    text: Format,
    heading: Format,
    answer: Format,
    date: Format,
    title: Format,
}

impl Formats {
    fn new() -> Formats {
        let answer = Format::new()
            .set_unlocked()
            .set_text_wrap()
            .set_border(FormatBorder::Thin)
            .set_background_color("#FFF8DC");
        Formats {
            header: Format::new()
                .set_bold()
                .set_border_bottom(FormatBorder::Medium),
            text: Format::new().set_text_wrap(),
            heading: Format::new().set_text_wrap().set_bold(),
            date: answer.clone().set_num_format("yyyy-mm-dd"),
            answer,
            title: Format::new().set_bold().set_font_size(14),
        }
    }
}

/// Write the workbook.
pub fn write(x: &Export) -> Result<Vec<u8>, WorkbookError> {
    let labels = Labels::new(x.lang, x.countries);
    let f = Formats::new();
    let mut book = Workbook::new();
    let mut lists = Lists::default();
    let sections = sheet_sections(x.survey, x.who, x.lang);

    instructions(&mut book, x, &f)?;
    let mut id_cells: Vec<(String, IdCells)> = Vec::new();
    for (section, name) in &sections {
        let sheet = book.add_worksheet();
        sheet.set_name(name)?;
        let ids = section_sheet(sheet, x, &labels, &mut lists, &f, section)?;
        id_cells.push((name.clone(), ids));
    }

    let lists_sheet = book.add_worksheet();
    lists_sheet.set_name(LISTS_SHEET)?;
    for (c, column) in lists.columns.iter().enumerate() {
        for (r, v) in column.iter().enumerate() {
            lists_sheet.write_string(r as u32, c as u16, v)?;
        }
    }
    lists_sheet.set_hidden(true);
    lists_sheet.protect();

    let rows = meta_rows(x);
    let sum = checksum(
        rows.iter().map(Vec::as_slice),
        id_cells.iter().map(|(name, ids)| {
            (
                name.as_str(),
                ids.iter()
                    .map(|(r, q, k)| (*r, q.as_str(), k.as_str()))
                    .collect(),
            )
        }),
    );
    let meta = book.add_worksheet();
    meta.set_name(META_SHEET)?;
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            meta.write_string(r as u32, c as u16, v)?;
        }
    }
    meta.write_string(rows.len() as u32, 0, "checksum")?;
    meta.write_string(rows.len() as u32, 1, &sum)?;
    meta.set_hidden(true);
    meta.protect();
    lock_structure(&book.save_to_buffer()?)
}

#[derive(Debug, thiserror::Error)]
pub enum WorkbookError {
    #[error("writing the workbook: {0}")]
    Xlsx(#[from] XlsxError),
    #[error("locking the workbook's structure: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("locking the workbook's structure: {0}")]
    Io(#[from] std::io::Error),
}

/// Protect the workbook's structure (no sheet added, removed, renamed, moved or unhidden), which
/// rust_xlsxwriter does not write: the archive is copied with `<workbookProtection
/// lockStructure="1"/>` added to `xl/workbook.xml`, where the schema puts it (before
/// `<bookViews>`). Without a password, like the sheets' protection: it guards against
/// mistakes, and the import checks everything anyway.
fn lock_structure(xlsx: &[u8]) -> Result<Vec<u8>, WorkbookError> {
    use std::io::{Read, Write};
    let mut input = zip::ZipArchive::new(std::io::Cursor::new(xlsx))?;
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for i in 0..input.len() {
        let mut entry = input.by_index(i)?;
        let name = entry.name().to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data)?;
        if name == "xl/workbook.xml" {
            let text = String::from_utf8_lossy(&data);
            if let Some(at) = text.find("<bookViews") {
                let locked = format!(
                    "{}<workbookProtection lockStructure=\"1\"/>{}",
                    &text[..at],
                    &text[at..]
                );
                data = locked.into_bytes();
            }
        }
        out.start_file(name, options)?;
        out.write_all(&data)?;
    }
    Ok(out.finish()?.into_inner())
}

fn instructions(book: &mut Workbook, x: &Export, f: &Formats) -> Result<(), XlsxError> {
    let lang = x.lang;
    let sheet = book.add_worksheet();
    sheet.set_name(translate(lang, "sheet-instructions-name", &[]))?;
    sheet.set_column_width(0, 100)?;
    let country = x
        .countries
        .get(&x.who.token.country_iso3)
        .map(|c| c.name(lang).to_string())
        .unwrap_or_else(|| x.who.token.country_iso3.clone());
    let respondent = crate::survey::model::respondent_name(&x.who.token.unit, &country);
    sheet.write_string_with_format(0, 0, x.survey.title.get(lang), &f.title)?;
    let date = x.now.format("%Y-%m-%d %H:%M UTC").to_string();
    let mut lines = vec![
        translate(
            lang,
            "sheet-for",
            &[("respondent", respondent), ("date", date)],
        ),
        String::new(),
        translate(lang, "sheet-how-answer", &[]),
        translate(lang, "sheet-how-lists", &[]),
        translate(lang, "sheet-how-required", &[]),
        translate(lang, "sheet-how-escapes", &[]),
        translate(lang, "sheet-how-structure", &[]),
        translate(lang, "sheet-how-upload", &[]),
        translate(lang, "sheet-how-conflicts", &[]),
    ];
    let online: Vec<String> = x
        .survey
        .sections
        .iter()
        .filter(|s| x.who.may_answer(&s.id))
        .flat_map(|s| s.questions.iter())
        .filter(|q| rows_of(q).is_empty())
        .map(|q| format!("- {}", q.text.get(lang)))
        .collect();
    if !online.is_empty() {
        lines.push(String::new());
        lines.push(translate(lang, "sheet-attach-online", &[]));
        lines.extend(online);
    }
    for (i, line) in lines.iter().enumerate() {
        sheet.write_string_with_format(i as u32 + 2, 0, line, &f.text)?;
    }
    sheet.protect();
    Ok(())
}

/// Each row's number, question id and key.
type IdCells = Vec<(u32, String, String)>;

/// One section's sheet; returns each row's number, question id and key, for the checksum.
fn section_sheet(
    sheet: &mut Worksheet,
    x: &Export,
    labels: &Labels,
    lists: &mut Lists,
    f: &Formats,
    section: &crate::survey::model::Section,
) -> Result<IdCells, XlsxError> {
    let lang = x.lang;
    let headers = [
        "sheet-col-id",
        "sheet-col-key",
        "sheet-col-question",
        "sheet-col-answer",
        "sheet-col-escape",
        "sheet-col-reason",
    ];
    for (c, h) in headers.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, translate(lang, h, &[]), &f.header)?;
    }
    sheet.set_column_width(COL_TEXT, 70)?;
    sheet.set_column_width(COL_ANSWER, 40)?;
    sheet.set_column_width(COL_ESCAPE, 22)?;
    sheet.set_column_width(COL_REASON, 40)?;
    sheet.set_column_hidden(COL_QUESTION)?;
    sheet.set_column_hidden(COL_KEY)?;
    sheet.set_freeze_panes(1, 0)?;

    let mut ids = Vec::new();
    let mut r: u32 = 1;
    for q in &section.questions {
        let items = x.state.answers.get(&q.id).map(Vec::as_slice).unwrap_or(&[]);
        for row in rows_of(q) {
            sheet.write_string(r, COL_QUESTION, &q.id)?;
            sheet.write_string(r, COL_KEY, row.key())?;
            ids.push((r, q.id.clone(), row.key().to_string()));
            let text = row_text(q, &row, labels);
            let fmt = if row == RowKind::Heading {
                &f.heading
            } else {
                &f.text
            };
            sheet.write_string_with_format(r, COL_TEXT, &text, fmt)?;
            if row != RowKind::Heading {
                answer_cell(sheet, r, q, &row, items, labels, lists, f)?;
            }
            if row.is_first() {
                escape_cells(sheet, r, q, items, labels, lists, f)?;
            }
            r += 1;
        }
    }
    sheet.protect();
    Ok(ids)
}

/// What column C says on a row: the question (with `*` when required), or the option's,
/// matrix row's or "please specify" label.
fn row_text(q: &Question, row: &RowKind, labels: &Labels) -> String {
    let lang = labels.lang;
    let star = if q.required { " *" } else { "" };
    let question = || {
        let mut text = format!("{}{star}", q.text.get(lang));
        if let Some(help) = &q.help {
            text.push('\n');
            text.push_str(help.get(lang));
        }
        text
    };
    match row {
        RowKind::Value | RowKind::Heading => question(),
        RowKind::Option(code) if code == OTHER_CODE => {
            format!("    {}", translate(lang, "other-option", &[]))
        }
        RowKind::Option(code) | RowKind::MatrixRow(code) => {
            let choices = match &q.kind {
                QuestionKind::Matrix { rows, .. } => rows.as_slice(),
                _ => q.kind.options(),
            };
            let label = choices
                .iter()
                .find(|c| &c.code == code)
                .map(|c| c.label.get(lang))
                .unwrap_or(code);
            format!("    {label}")
        }
        RowKind::Other => format!("    {}", translate(lang, "other-specify", &[])),
    }
}

#[allow(clippy::too_many_arguments)]
fn answer_cell(
    sheet: &mut Worksheet,
    r: u32,
    q: &Question,
    row: &RowKind,
    items: &[Item],
    labels: &Labels,
    lists: &mut Lists,
    f: &Formats,
) -> Result<(), XlsxError> {
    let c = COL_ANSWER;
    let escaped = items.iter().any(|i| EscapeKind::of_item(&i.item).is_some());
    let value_items: &[Item] = if escaped { &[] } else { items };
    let scalar = value_items.iter().find(|i| i.item.is_empty());
    // The drop-down, if any, and the current value shown by its label.
    if let Some(list) = labels.list_for(q, row) {
        let names: Vec<String> = list.iter().map(|(l, _)| l.clone()).collect();
        let dv = DataValidation::new()
            .allow_list_formula(lists.formula(names))
            .ignore_blank(true);
        sheet.add_data_validation(r, c, r, c, &dv)?;
        let code: Option<&str> = match row {
            RowKind::Option(code) if !value_items.is_empty() => {
                Some(if value_items.iter().any(|i| &i.item == code) {
                    "yes"
                } else {
                    "no"
                })
            }
            RowKind::MatrixRow(code) => value_items
                .iter()
                .find(|i| &i.item == code)
                .map(|i| i.value.as_str()),
            RowKind::Value => scalar.map(|i| i.value.as_str()),
            _ => None,
        };
        let label = code.and_then(|code| list.iter().find(|(_, c)| c == code));
        return match label {
            Some((l, _)) => sheet
                .write_string_with_format(r, c, l, &f.answer)
                .map(|_| ()),
            None => sheet.write_blank(r, c, &f.answer).map(|_| ()),
        };
    }
    if *row == RowKind::Other {
        let other = value_items.iter().find(|i| i.item == OTHER_ITEM);
        let dv = DataValidation::new()
            .allow_text_length(DataValidationRule::LessThanOrEqualTo(
                crate::survey::model::DEFAULT_SHORT_MAX as u32,
            ))
            .ignore_blank(true);
        sheet.add_data_validation(r, c, r, c, &dv)?;
        return match other {
            Some(i) => sheet
                .write_string_with_format(r, c, &i.value, &f.answer)
                .map(|_| ()),
            None => sheet.write_blank(r, c, &f.answer).map(|_| ()),
        };
    }
    let dv = match &q.kind {
        QuestionKind::Integer { min, max } => {
            let clamp = |n: i64| n.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
            let lo = min.map(clamp).unwrap_or(i32::MIN);
            let hi = max.map(clamp).unwrap_or(i32::MAX);
            Some(DataValidation::new().allow_whole_number(DataValidationRule::Between(lo, hi)))
        }
        QuestionKind::Decimal { min, max } => Some(DataValidation::new().allow_decimal_number(
            DataValidationRule::Between(min.unwrap_or(-1e15), max.unwrap_or(1e15)),
        )),
        QuestionKind::Percentage => Some(
            DataValidation::new().allow_decimal_number(DataValidationRule::Between(0.0, 100.0)),
        ),
        QuestionKind::Date { min, max } => {
            let lo = min.and_then(|d| excel_date(d).ok());
            let hi = max.and_then(|d| excel_date(d).ok());
            let lo = lo.map_or_else(|| ExcelDateTime::from_ymd(1900, 1, 1), Ok)?;
            let hi = hi.map_or_else(|| ExcelDateTime::from_ymd(9999, 12, 31), Ok)?;
            Some(DataValidation::new().allow_date(DataValidationRule::Between(lo, hi)))
        }
        QuestionKind::ShortText { max_length, .. } | QuestionKind::LongText { max_length, .. } => {
            Some(
                DataValidation::new().allow_text_length(DataValidationRule::LessThanOrEqualTo(
                    (*max_length).min(u32::MAX as usize) as u32,
                )),
            )
        }
        QuestionKind::SingleChoice { .. }
        | QuestionKind::MultipleChoice { .. }
        | QuestionKind::YesNo
        | QuestionKind::Matrix { .. }
        | QuestionKind::Country
        | QuestionKind::Email
        | QuestionKind::Url
        | QuestionKind::File { .. } => None,
    };
    if let Some(dv) = dv {
        sheet.add_data_validation(r, c, r, c, &dv.ignore_blank(true))?;
    }
    match (scalar, &q.kind) {
        (None, QuestionKind::Date { .. }) => sheet.write_blank(r, c, &f.date)?,
        (None, _) => sheet.write_blank(r, c, &f.answer)?,
        (Some(i), QuestionKind::Date { .. }) => {
            match NaiveDate::parse_from_str(&i.value, "%Y-%m-%d")
                .ok()
                .and_then(|d| excel_date(d).ok())
            {
                Some(d) => sheet.write_datetime_with_format(r, c, d, &f.date)?,
                None => sheet.write_string_with_format(r, c, &i.value, &f.date)?,
            }
        }
        (Some(i), k) if k.is_numeric() => match i.num {
            Some(n) => sheet.write_number_with_format(r, c, n, &f.answer)?,
            None => sheet.write_string_with_format(r, c, &i.value, &f.answer)?,
        },
        (Some(i), _) => sheet.write_string_with_format(r, c, &i.value, &f.answer)?,
    };
    Ok(())
}

fn excel_date(d: NaiveDate) -> Result<ExcelDateTime, XlsxError> {
    let year = u16::try_from(d.year()).map_err(|_| XlsxError::DateTimeRangeError(d.to_string()))?;
    ExcelDateTime::from_ymd(year, d.month() as u8, d.day() as u8)
}

/// The non-answer drop-down and its reason, on a question's first row, where it allows them.
fn escape_cells(
    sheet: &mut Worksheet,
    r: u32,
    q: &Question,
    items: &[Item],
    labels: &Labels,
    lists: &mut Lists,
    f: &Formats,
) -> Result<(), XlsxError> {
    let choices = labels.escapes(q);
    if choices.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = choices.iter().map(|(l, _)| l.clone()).collect();
    let dv = DataValidation::new()
        .allow_list_formula(lists.formula(names))
        .ignore_blank(true);
    sheet.add_data_validation(r, COL_ESCAPE, r, COL_ESCAPE, &dv)?;
    let given = items
        .iter()
        .find_map(|i| EscapeKind::of_item(&i.item).map(|k| (k, i.value.as_str())));
    match given.and_then(|(k, reason)| choices.iter().find(|(_, c)| *c == k).map(|c| (c, reason))) {
        Some(((label, _), reason)) => {
            sheet.write_string_with_format(r, COL_ESCAPE, label, &f.answer)?;
            sheet.write_string_with_format(r, COL_REASON, reason, &f.answer)?;
        }
        None => {
            sheet.write_blank(r, COL_ESCAPE, &f.answer)?;
            sheet.write_blank(r, COL_REASON, &f.answer)?;
        }
    }
    Ok(())
}

//! Exports of a survey's responses: CSV (one row per country, codes not labels) with a
//! codebook, XLSX (responses and codebook sheets), and JSON.
//!
//! "Not known" and "not applicable" are written as the codes `not_known` and `not_applicable`
//! in every answer column of the question, with the reason in a column `<question>.reason`
//! (present for questions that allow them); in JSON, the answer is `{"not_known": "reason"}`.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDateTime;
use diesel::sql_types::{Double, Integer, Nullable, Text, Timestamp};
use diesel::{QueryableByName, RunQueryDsl};
use serde::Serialize;
use serde_json::{json, Value as Json};

use super::aggregate::{answers_from, push_filter, Filter};
use super::sql::Sql;
use crate::db::responses::ResponseStatus;
use crate::db::{DbConn, QueryError};
use crate::survey::answer::{escape_of, Answers, FileItem, Item, OTHER_ITEM};
use crate::survey::{EscapeKind, Question, QuestionKind, Survey, OTHER_CODE};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Db(#[from] QueryError),
    #[error("writing CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("writing XLSX: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    #[error("writing JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("writing: {0}")]
    Io(#[from] std::io::Error),
}

/// One column of the flat export.
#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub name: String,
    pub question: String,
    pub kind: &'static str,
    pub text: String,
    /// For an option or matrix-row column: its code and label.
    pub code: Option<String>,
    pub label: Option<String>,
    /// The codes the column's cells may hold, with their labels ("code=label; ...").
    pub values: String,
}

const FIXED: &[&str] = &[
    "iso3",
    "country",
    "m49_region",
    "income_fy09",
    "development",
    "status",
    "submitted_at",
    "version",
    "state",
    "digest",
];

/// The same, with the organisation after the country in a survey of organisations.
const FIXED_WITH_UNIT: &[&str] = &[
    "iso3",
    "country",
    "organisation",
    "m49_region",
    "income_fy09",
    "development",
    "status",
    "submitted_at",
    "version",
    "state",
    "digest",
];

/// What the fixed columns hold, for the codebook: (column, type, description, values).
const FIXED_CODEBOOK: &[(&str, &str, &str, &str)] = &[
    ("iso3", "text", "Country", "ISO 3166-1 alpha-3 code"),
    ("country", "text", "Country name (English)", "text"),
    ("organisation", "text", "Organisation that answered", "text"),
    (
        "m49_region",
        "text",
        "UN M49 region",
        "002=Africa; 019=Americas; 142=Asia; 150=Europe; 009=Oceania",
    ),
    (
        "income_fy09",
        "text",
        "World Bank income group, FY09",
        "L; LM; UM; H",
    ),
    (
        "development",
        "text",
        "Development group",
        "developed; developing",
    ),
    (
        "status",
        "text",
        "Where the response stands now",
        "draft; awaiting_sign_off; submitted; under_review; returned; accepted",
    ),
    (
        "submitted_at",
        "date",
        "When the exported version was submitted (UTC)",
        "YYYY-MM-DDTHH:MM:SSZ",
    ),
    (
        "version",
        "integer",
        "The version exported: the latest submitted and not recalled",
        "number; empty for a draft",
    ),
    (
        "state",
        "text",
        "What happened to the exported version",
        "submitted; under_review; returned; accepted; draft=never submitted (drafts included)",
    ),
    (
        "digest",
        "text",
        "SHA-256 of the version's canonical content (the receipt's digest)",
        "64 hexadecimal digits",
    ),
];

/// The columns before the questions': who answered, and the country's groups.
pub fn fixed_columns(survey: &Survey) -> &'static [&'static str] {
    if survey.unit.is_country() {
        FIXED
    } else {
        FIXED_WITH_UNIT
    }
}

/// The columns after the fixed ones, in questionnaire order.
pub fn columns(survey: &Survey) -> Vec<Column> {
    let mut out = Vec::new();
    for q in survey.questions() {
        let first = out.len();
        let text = q.text.get("en").to_string();
        let codes = |list: &[crate::survey::Choice]| {
            list.iter()
                .map(|c| format!("{}={}", c.code, c.label.get("en")))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let col = |name: String, code: Option<&str>, label: Option<&str>, values: String| Column {
            name,
            question: q.id.clone(),
            kind: q.kind.type_name(),
            text: text.clone(),
            code: code.map(String::from),
            label: label.map(String::from),
            values,
        };
        match &q.kind {
            QuestionKind::MultipleChoice { options, other, .. } => {
                for o in options {
                    out.push(col(
                        format!("{}.{}", q.id, o.code),
                        Some(&o.code),
                        Some(o.label.get("en")),
                        "1=selected; 0=not selected".into(),
                    ));
                }
                if *other {
                    out.push(col(
                        format!("{}.{OTHER_CODE}", q.id),
                        Some(OTHER_CODE),
                        Some("Other"),
                        "1=selected; 0=not selected".into(),
                    ));
                    out.push(col(
                        format!("{}.other_text", q.id),
                        None,
                        Some("Other, specified"),
                        "text".into(),
                    ));
                }
            }
            QuestionKind::Matrix { rows, scale } => {
                for r in rows {
                    out.push(col(
                        format!("{}.{}", q.id, r.code),
                        Some(&r.code),
                        Some(r.label.get("en")),
                        codes(scale),
                    ));
                }
            }
            QuestionKind::SingleChoice { options, other } => {
                let mut values = codes(options);
                if *other {
                    values.push_str(&format!("; {OTHER_CODE}=Other"));
                }
                out.push(col(q.id.clone(), None, None, values));
                if *other {
                    out.push(col(
                        format!("{}.other_text", q.id),
                        None,
                        Some("Other, specified"),
                        "text".into(),
                    ));
                }
            }
            QuestionKind::YesNo => out.push(col(q.id.clone(), None, None, "yes; no".into())),
            QuestionKind::Country => out.push(col(
                q.id.clone(),
                None,
                None,
                "ISO 3166-1 alpha-3 code".into(),
            )),
            QuestionKind::Date { .. } => {
                out.push(col(q.id.clone(), None, None, "YYYY-MM-DD".into()))
            }
            QuestionKind::Integer { .. } | QuestionKind::Decimal { .. } => {
                out.push(col(q.id.clone(), None, None, "number".into()))
            }
            QuestionKind::Percentage => out.push(col(
                q.id.clone(),
                None,
                None,
                "number from 0 to 100 (percent)".into(),
            )),
            QuestionKind::ShortText { .. }
            | QuestionKind::LongText { .. }
            | QuestionKind::Email
            | QuestionKind::Url => out.push(col(q.id.clone(), None, None, "text".into())),
            QuestionKind::File { .. } => out.push(col(
                q.id.clone(),
                None,
                None,
                "names of the attached files, separated by \"; \" (the files: zip export)".into(),
            )),
        }
        escape_columns(q, &mut out, first);
    }
    out
}

/// Where a question allows "not known" or "not applicable": their codes among the values of
/// each of its answer columns (from `first`), and a column for the reason.
fn escape_columns(q: &Question, out: &mut Vec<Column>, first: usize) {
    let allowed: Vec<String> = EscapeKind::ALL
        .into_iter()
        .filter(|k| q.escapes.get(*k).is_some())
        .map(|k| format!("{}={}", k.code(), escape_label(k)))
        .collect();
    if allowed.is_empty() {
        return;
    }
    let allowed = allowed.join("; ");
    for c in out[first..].iter_mut() {
        if !c.name.ends_with(".other_text") {
            c.values = format!("{}; {allowed}", c.values);
        }
    }
    out.push(Column {
        name: reason_column(q),
        question: q.id.clone(),
        kind: q.kind.type_name(),
        text: q.text.get("en").to_string(),
        code: None,
        label: Some("Reason for not known / not applicable".into()),
        values: "text (empty: no reason given, or answered)".into(),
    });
}

fn escape_label(kind: EscapeKind) -> &'static str {
    match kind {
        EscapeKind::NotKnown => "Not known",
        EscapeKind::NotApplicable => "Not applicable",
    }
}

/// The column holding why a question was answered "not known" or "not applicable".
fn reason_column(q: &Question) -> String {
    format!("{}.reason", q.id)
}

/// One response with its country's groups and its counted answers: those of the version that
/// counts (see [`super::aggregate`]), or a draft's live visible answers when drafts are in.
pub struct ExportRow {
    pub fixed: Vec<String>,
    pub answers: Answers,
}

#[derive(QueryableByName, Debug)]
struct ResponseLine {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    iso3: String,
    #[diesel(sql_type = Text)]
    name_en: String,
    #[diesel(sql_type = Text)]
    unit: String,
    #[diesel(sql_type = Text)]
    region_code: String,
    #[diesel(sql_type = Text)]
    income_fy09: String,
    #[diesel(sql_type = Text)]
    development: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<Integer>)]
    counted_version: Option<i32>,
    #[diesel(sql_type = Integer)]
    version_count: i32,
    #[diesel(sql_type = Nullable<Text>)]
    digest: Option<String>,
    #[diesel(sql_type = Nullable<Timestamp>)]
    submitted_at: Option<NaiveDateTime>,
    #[diesel(sql_type = Nullable<Timestamp>)]
    returned_at: Option<NaiveDateTime>,
    #[diesel(sql_type = Nullable<Timestamp>)]
    accepted_at: Option<NaiveDateTime>,
}

impl ResponseLine {
    /// What happened to the exported version: accepted, returned, under review (the latest
    /// version while the response is), submitted; "draft" for a response never submitted.
    fn state(&self) -> &'static str {
        let Some(version) = self.counted_version else {
            return "draft";
        };
        if self.accepted_at.is_some() {
            "accepted"
        } else if self.returned_at.is_some() {
            "returned"
        } else if version == self.version_count
            && ResponseStatus::parse(&self.status) == Some(ResponseStatus::UnderReview)
        {
            "under_review"
        } else {
            "submitted"
        }
    }
}

#[derive(QueryableByName, Debug)]
struct AnswerLine {
    #[diesel(sql_type = Text)]
    response_id: String,
    #[diesel(sql_type = Text)]
    question_id: String,
    #[diesel(sql_type = Text)]
    item: String,
    #[diesel(sql_type = Text)]
    value: String,
    #[diesel(sql_type = Nullable<Double>)]
    num: Option<f64>,
}

/// Record in the audit log that the survey's responses were exported: the format and the
/// filter as query parameters.
pub fn record_download(
    conn: &mut DbConn,
    survey: &Survey,
    actor: crate::audit::Actor,
    format: &str,
    filter: &Filter,
    now: NaiveDateTime,
) -> Result<(), QueryError> {
    let event = crate::audit::Event {
        survey_id: &survey.id,
        country_iso3: "",
        actor,
        kind: crate::audit::AuditKind::ExportDownloaded,
        detail: json!({ "format": format, "filter": filter.parameters() }),
    };
    crate::audit::record(conn, &event, now)
}

pub fn load(
    conn: &mut DbConn,
    survey: &Survey,
    filter: &Filter,
) -> Result<Vec<ExportRow>, ExportError> {
    // Like every result, an export holds the survey's population only (a response kept from a
    // country outside it, say after the population was narrowed, is left out).
    let filter = &filter.clone().within(survey);
    let mut sql = Sql::new(
        "SELECT r.id AS id, c.iso3 AS iso3, c.name_en AS name_en, r.unit AS unit, \
         c.region_code AS region_code, c.income_fy09 AS income_fy09, c.development AS development, \
         r.status AS status, r.counted_version AS counted_version, r.version_count AS version_count, \
         v.digest AS digest, v.submitted_at AS submitted_at, v.returned_at AS returned_at, \
         v.accepted_at AS accepted_at \
         FROM responses r JOIN countries c ON c.iso3 = r.country_iso3 \
         LEFT JOIN response_versions v ON v.response_id = r.id AND v.number = r.counted_version \
         WHERE r.survey_id = ",
    );
    sql.bind(survey.id.clone());
    push_filter(&mut sql, filter);
    sql.push(" ORDER BY c.name_en, r.unit");
    let rows: Vec<ResponseLine> = sql.query().load(conn)?;
    // The answers that count, in one query, the same ones the aggregates count.
    let mut sql = Sql::new(
        "SELECT a.response_id AS response_id, a.question_id AS question_id, a.item AS item, \
         a.value AS value, a.num AS num",
    );
    answers_from(&mut sql, &survey.id, filter);
    sql.push(" ORDER BY a.response_id, a.question_id, a.item");
    let lines: Vec<AnswerLine> = sql.query().load(conn)?;
    let mut all: HashMap<String, Answers> = HashMap::new();
    for a in lines {
        all.entry(a.response_id)
            .or_default()
            .entry(a.question_id)
            .or_default()
            .push(Item {
                item: a.item,
                value: a.value,
                num: a.num,
            });
    }
    Ok(rows
        .into_iter()
        .map(|r| {
            let state = r.state();
            ExportRow {
                fixed: [r.iso3, r.name_en]
                    .into_iter()
                    .chain((!survey.unit.is_country()).then_some(r.unit))
                    .chain([
                        r.region_code,
                        r.income_fy09,
                        r.development,
                        r.status,
                        r.submitted_at
                            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                            .unwrap_or_default(),
                        r.counted_version.map(|v| v.to_string()).unwrap_or_default(),
                        state.to_string(),
                        r.digest.unwrap_or_default(),
                    ])
                    .collect(),
                answers: all.remove(&r.id).unwrap_or_default(),
            }
        })
        .collect())
}

/// The cell of `column` for a response: a code, a number, 1/0 for an option, or text.
fn cell(survey: &Survey, column: &Column, answers: &Answers) -> String {
    let items: &[Item] = answers
        .get(&column.question)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let Some(q) = survey.question(&column.question) else {
        return String::new();
    };
    let escape = escape_of(items);
    if column.code.is_none() && column.name == reason_column(q) {
        return escape
            .map(|(_, reason)| reason.to_string())
            .unwrap_or_default();
    }
    if column.name.ends_with(".other_text") {
        return items
            .iter()
            .find(|i| i.item == OTHER_ITEM)
            .map(|i| i.value.clone())
            .unwrap_or_default();
    }
    if let Some((kind, _)) = escape {
        return kind.code().to_string();
    }
    match (&q.kind, &column.code) {
        (QuestionKind::MultipleChoice { .. }, Some(code)) => {
            if items.is_empty() {
                String::new()
            } else if items.iter().any(|i| &i.item == code) {
                "1".into()
            } else {
                "0".into()
            }
        }
        (QuestionKind::File { .. }, _) => FileItem::all(items)
            .into_iter()
            .map(|f| f.name)
            .collect::<Vec<_>>()
            .join("; "),
        (QuestionKind::Matrix { .. }, Some(row)) => items
            .iter()
            .find(|i| &i.item == row)
            .map(|i| i.value.clone())
            .unwrap_or_default(),
        _ => items
            .iter()
            .find(|i| i.item.is_empty())
            .map(|i| i.value.clone())
            .unwrap_or_default(),
    }
}

pub fn to_csv(survey: &Survey, rows: &[ExportRow]) -> Result<String, ExportError> {
    let cols = columns(survey);
    let mut w = crate::text::csv::SafeWriter::new();
    let header: Vec<&str> = fixed_columns(survey)
        .iter()
        .copied()
        .chain(cols.iter().map(|c| c.name.as_str()))
        .collect();
    w.write_record(&header)?;
    for r in rows {
        let cells: Vec<String> = r
            .fixed
            .iter()
            .cloned()
            .chain(cols.iter().map(|c| cell(survey, c, &r.answers)))
            .collect();
        w.write_record(&cells)?;
    }
    Ok(w.finish()?)
}

/// The codebook's columns, in the CSV file and the XLSX sheet alike.
const CODEBOOK_HEADER: [&str; 7] = [
    "column",
    "question",
    "type",
    "question_text",
    "code",
    "label",
    "values",
];

/// The codebook's lines for the fixed columns a survey's export has.
fn fixed_codebook(survey: &Survey) -> impl Iterator<Item = [&'static str; 7]> + '_ {
    FIXED_CODEBOOK
        .iter()
        .filter(|(name, ..)| fixed_columns(survey).contains(name))
        .map(|(name, kind, text, values)| [*name, "", *kind, *text, "", "", *values])
}

pub fn codebook_csv(survey: &Survey) -> Result<String, ExportError> {
    let mut w = crate::text::csv::SafeWriter::new();
    w.write_record(CODEBOOK_HEADER)?;
    for line in fixed_codebook(survey) {
        w.write_record(line)?;
    }
    for c in columns(survey) {
        w.write_record([
            c.name.as_str(),
            &c.question,
            c.kind,
            &c.text,
            c.code.as_deref().unwrap_or(""),
            c.label.as_deref().unwrap_or(""),
            &c.values,
        ])?;
    }
    Ok(w.finish()?)
}

pub fn to_xlsx(survey: &Survey, rows: &[ExportRow]) -> Result<Vec<u8>, ExportError> {
    use rust_xlsxwriter::Workbook;
    let cols = columns(survey);
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("responses")?;
    let fixed = fixed_columns(survey);
    for (i, h) in fixed
        .iter()
        .copied()
        .chain(cols.iter().map(|c| c.name.as_str()))
        .enumerate()
    {
        sheet.write_string(0, i as u16, h)?;
    }
    for (r, row) in rows.iter().enumerate() {
        let r = r as u32 + 1;
        for (i, v) in row.fixed.iter().enumerate() {
            sheet.write_string(r, i as u16, v)?;
        }
        for (i, c) in cols.iter().enumerate() {
            let v = cell(survey, c, &row.answers);
            let col = (fixed.len() + i) as u16;
            let q = survey.question(&c.question);
            let kind = q.map(|q| &q.kind);
            // A reason is text, even "2010".
            let reason = q.is_some_and(|q| c.code.is_none() && c.name == reason_column(q));
            let numeric = !reason
                && (kind.is_some_and(|k| k.is_numeric())
                    || (matches!(kind, Some(QuestionKind::MultipleChoice { .. }))
                        && c.code.is_some()));
            match v.parse::<f64>() {
                Ok(n) if numeric => sheet.write_number(r, col, n)?,
                _ if v.is_empty() => sheet,
                _ => sheet.write_string(r, col, &v)?,
            };
        }
    }
    let sheet = book.add_worksheet();
    sheet.set_name("codebook")?;
    for (i, h) in CODEBOOK_HEADER.iter().enumerate() {
        sheet.write_string(0, i as u16, *h)?;
    }
    let fixed_lines: Vec<[&str; 7]> = fixed_codebook(survey).collect();
    for (r, cells) in fixed_lines.iter().enumerate() {
        for (i, v) in cells.iter().enumerate() {
            sheet.write_string(r as u32 + 1, i as u16, *v)?;
        }
    }
    for (r, c) in cols.iter().enumerate() {
        let r = (fixed_lines.len() + r) as u32 + 1;
        let cells = [
            c.name.as_str(),
            &c.question,
            c.kind,
            &c.text,
            c.code.as_deref().unwrap_or(""),
            c.label.as_deref().unwrap_or(""),
            &c.values,
        ];
        for (i, v) in cells.iter().enumerate() {
            sheet.write_string(r, i as u16, *v)?;
        }
    }
    Ok(book.save_to_buffer()?)
}

/// JSON: `{"survey", "version", "responses": [{"iso3", "country", ..., "answers": {...}}]}`.
/// An answer is a string (text, code, date), a number, a list of codes (multiple choice, with
/// `other_text`), an object row -> scale code (matrix), a list of files, each with its
/// `name`, `size` in bytes and `sha256` (file question), or `{"not_known": "reason"}` (and
/// `{"not_applicable": "reason"}`).
pub fn to_json(survey: &Survey, rows: &[ExportRow]) -> Result<String, ExportError> {
    let list: Vec<Json> = rows
        .iter()
        .map(|r| {
            let mut answers = BTreeMap::new();
            for q in survey.questions() {
                let Some(items) = r.answers.get(&q.id) else { continue };
                if let Some((kind, reason)) = escape_of(items) {
                    answers.insert(q.id.clone(), json!({ kind.code(): reason }));
                    continue;
                }
                let other = items.iter().find(|i| i.item == OTHER_ITEM).map(|i| i.value.clone());
                let value = match &q.kind {
                    QuestionKind::MultipleChoice { .. } => {
                        let codes: Vec<&str> = items.iter().filter(|i| i.item != OTHER_ITEM).map(|i| i.item.as_str()).collect();
                        json!({"selected": codes, "other_text": other})
                    }
                    QuestionKind::Matrix { .. } => {
                        let m: BTreeMap<&str, &str> = items.iter().map(|i| (i.item.as_str(), i.value.as_str())).collect();
                        json!(m)
                    }
                    QuestionKind::Integer { .. } | QuestionKind::Decimal { .. } | QuestionKind::Percentage => {
                        items.first().and_then(|i| i.num).map(|n| json!(n)).unwrap_or(Json::Null)
                    }
                    QuestionKind::File { .. } => {
                        let files: Vec<Json> = FileItem::all(items).into_iter().map(|f| json!({"name": f.name, "size": f.size, "sha256": f.sha256})).collect();
                        json!(files)
                    }
                    QuestionKind::SingleChoice { .. } if other.is_some() => {
                        json!({"code": items.iter().find(|i| i.item.is_empty()).map(|i| i.value.clone()), "other_text": other})
                    }
                    _ => json!(items.iter().find(|i| i.item.is_empty()).map(|i| i.value.clone())),
                };
                answers.insert(q.id.clone(), value);
            }
            let keys = fixed_columns(survey);
            let mut obj = serde_json::Map::new();
            for (k, v) in keys.iter().zip(&r.fixed) {
                // The version as a number; a draft has none.
                let value = match *k {
                    "version" => v.parse::<i64>().map(Json::from).unwrap_or(Json::Null),
                    "digest" | "submitted_at" if v.is_empty() => Json::Null,
                    _ => json!(v),
                };
                obj.insert((*k).to_string(), value);
            }
            obj.insert("answers".into(), json!(answers));
            Json::Object(obj)
        })
        .collect();
    Ok(serde_json::to_string_pretty(&json!({
        "survey": survey.id,
        "version": survey.version,
        "responses": list,
    }))?)
}

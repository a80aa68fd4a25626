//! Turning submitted form values into stored answer items, and reading them back.
//!
//! A question's answer is a list of items, which is how it is stored (a row each), so SQL can
//! count and group answers:
//! - a scalar answer (text, number, date, yes/no, single choice, country...): one item `""`;
//! - a multiple choice: one item per selected option code (value "1");
//! - a matrix: one item per answered row, the value being the scale code;
//! - the "other, please specify" text: an item `#other`;
//! - a file question: one item per attached file, the item being the file's id (in the
//!   `files` table), the value `<sha256 hex>/<name>` and `num` its size in bytes, so that
//!   versions and the response's digest cover each file's content, not only its name.
//! - "not known" or "not applicable" given instead of an answer: one item `#not_known` or
//!   `#not_applicable` alone, whose value is the reason (possibly empty).
//!
//! Items whose key starts with `#` are never option codes or matrix rows.

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;
use validator::{ValidateEmail, ValidateUrl};

use super::condition::AnswerLookup;
use super::model::*;

pub const OTHER_ITEM: &str = "#other";
/// The longest reason for "not known" or "not applicable".
pub const REASON_MAX: usize = 500;

/// Whether an item is an answer's value (an option, a row, a scalar), not `#other` or an
/// escape.
pub fn is_value_item(item: &str) -> bool {
    !item.starts_with('#')
}

/// The non-answer given in `items`, with its reason, if any.
pub fn escape_of(items: &[Item]) -> Option<(EscapeKind, &str)> {
    items
        .iter()
        .find_map(|i| EscapeKind::of_item(&i.item).map(|k| (k, i.value.as_str())))
}

/// Whether two answers are the same as stored: item and value, in any order (the numeric copy
/// follows the value).
pub fn same_items(a: &[Item], b: &[Item]) -> bool {
    let key = |items: &[Item]| -> Vec<(String, String)> {
        let mut k: Vec<(String, String)> = items
            .iter()
            .map(|i| (i.item.clone(), i.value.clone()))
            .collect();
        k.sort();
        k
    };
    key(a) == key(b)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub item: String,
    pub value: String,
    /// The numeric value of integer and decimal answers, for SQL aggregation.
    pub num: Option<f64>,
}

impl Item {
    pub fn scalar(value: String, num: Option<f64>) -> Item {
        Item {
            item: String::new(),
            value,
            num,
        }
    }
}

/// One attached file as its answer item records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileItem {
    pub id: String,
    pub sha256: String,
    pub name: String,
    pub size: u64,
}

impl FileItem {
    /// The answer item recording this file.
    pub fn item(&self) -> Item {
        Item {
            item: self.id.clone(),
            value: format!("{}/{}", self.sha256, self.name),
            num: Some(self.size as f64),
        }
    }

    /// The file an answer item of a file question records (None for other items).
    pub fn of_item(item: &Item) -> Option<FileItem> {
        if item.item.is_empty() || item.item.starts_with('#') {
            return None;
        }
        let (sha256, name) = item.value.split_once('/')?;
        Some(FileItem {
            id: item.item.clone(),
            sha256: sha256.to_string(),
            name: name.to_string(),
            size: item.num.map_or(0, |n| n.max(0.0) as u64),
        })
    }

    /// The files of a question's items, by name (ids are random: their order means nothing).
    pub fn all(items: &[Item]) -> Vec<FileItem> {
        let mut files: Vec<FileItem> = items.iter().filter_map(FileItem::of_item).collect();
        files.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        files
    }
}

/// All answers of one response: question id -> items sorted by item key.
pub type Answers = BTreeMap<String, Vec<Item>>;

/// Why a value was refused: a message id of the interface's translations, with its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub message_id: &'static str,
    pub args: Vec<(&'static str, String)>,
}

impl FieldError {
    fn new(message_id: &'static str) -> Self {
        FieldError {
            message_id,
            args: Vec::new(),
        }
    }

    fn with(mut self, name: &'static str, value: impl ToString) -> Self {
        self.args.push((name, value.to_string()));
        self
    }
}

/// The raw values a form sent for one question, already grouped by field.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RawAnswer {
    /// Values of the field named after the question id (several for a multiple choice).
    pub values: Vec<String>,
    /// The "other, please specify" box (`<id>.other`).
    pub other: Option<String>,
    /// Matrix rows (`<id>.<row>`).
    pub rows: BTreeMap<String, String>,
    /// A non-answer picked instead of a value (`<id>.escape`: `not_known`, `not_applicable`).
    pub escape: Option<String>,
    /// Why that non-answer was given (`<id>.reason`).
    pub reason: Option<String>,
}

impl RawAnswer {
    /// The raw answer from stored items, to show a saved answer in a form again.
    pub fn from_items(kind: &QuestionKind, items: &[Item]) -> RawAnswer {
        let mut raw = RawAnswer::default();
        for it in items {
            if let Some(kind) = EscapeKind::of_item(&it.item) {
                raw.escape = Some(kind.code().to_string());
                raw.reason = Some(it.value.clone());
            } else if it.item == OTHER_ITEM {
                raw.other = Some(it.value.clone());
            } else if matches!(kind, QuestionKind::Matrix { .. }) {
                raw.rows.insert(it.item.clone(), it.value.clone());
            } else if matches!(kind, QuestionKind::MultipleChoice { .. }) {
                raw.values.push(it.item.clone());
            } else {
                raw.values.push(it.value.clone());
            }
        }
        raw
    }

    pub fn first(&self) -> &str {
        self.values.first().map(String::as_str).unwrap_or("")
    }
}

/// Tells whether an ISO alpha-3 code is in the reference list.
pub trait CountryCodes {
    fn is_country(&self, iso3: &str) -> bool;
}

/// A decimal number as people write it: spaces between digits, "0,25" in French and Spanish.
fn parse_decimal(text: &str) -> Result<f64, FieldError> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let compact = if compact.contains('.') {
        compact
    } else {
        compact.replace(',', ".")
    };
    compact
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite())
        .ok_or_else(|| FieldError::new("error-not-number"))
}

/// Check a question's raw value; `Ok(vec![])` means "no answer". The single entry point for
/// every way answers come in (web form, spreadsheet): "not known"/"not applicable" picked in
/// `raw.escape` (a code the question allows; '' or `answer` for a value) replaces the value,
/// which is then ignored, by one item holding the reason.
pub fn validate(
    question: &Question,
    raw: &RawAnswer,
    countries: &dyn CountryCodes,
) -> Result<Vec<Item>, FieldError> {
    if let Some(code) = raw
        .escape
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty() && *c != "answer")
    {
        return escaped(question, code, raw.reason.as_deref().unwrap_or(""));
    }
    let single = normalise_text(raw.first());
    match &question.kind {
        QuestionKind::ShortText {
            min_length,
            max_length,
        }
        | QuestionKind::LongText {
            min_length,
            max_length,
        } => {
            if single.is_empty() {
                return Ok(vec![]);
            }
            let len = single.chars().count();
            if len > *max_length {
                return Err(FieldError::new("error-too-long").with("max", max_length));
            }
            if let Some(min) = min_length {
                if len < *min {
                    return Err(FieldError::new("error-too-short").with("min", min));
                }
            }
            Ok(vec![Item::scalar(single, None)])
        }
        QuestionKind::SingleChoice { options, other } => {
            if single.is_empty() {
                return Ok(vec![]);
            }
            let is_other = *other && single == OTHER_CODE;
            if !is_other && !options.iter().any(|o| o.code == single) {
                return Err(FieldError::new("error-not-an-option"));
            }
            let mut items = vec![Item::scalar(single, None)];
            push_other(&mut items, is_other, raw)?;
            Ok(items)
        }
        QuestionKind::MultipleChoice {
            options,
            other,
            min_selections,
            max_selections,
        } => {
            let mut selected: Vec<String> = Vec::new();
            for v in &raw.values {
                let v = v.trim();
                if v.is_empty() || selected.iter().any(|s| s == v) {
                    continue;
                }
                let known = options.iter().any(|o| o.code == v) || (*other && v == OTHER_CODE);
                if !known {
                    return Err(FieldError::new("error-not-an-option"));
                }
                selected.push(v.to_string());
            }
            if selected.is_empty() {
                return Ok(vec![]);
            }
            if let Some(min) = min_selections {
                if selected.len() < *min {
                    return Err(FieldError::new("error-too-few-choices").with("min", min));
                }
            }
            if let Some(max) = max_selections {
                if selected.len() > *max {
                    return Err(FieldError::new("error-too-many-choices").with("max", max));
                }
            }
            let is_other = selected.iter().any(|s| s == OTHER_CODE);
            let mut items: Vec<Item> = selected
                .into_iter()
                .map(|code| Item {
                    item: code,
                    value: "1".into(),
                    num: None,
                })
                .collect();
            push_other(&mut items, is_other, raw)?;
            items.sort_by(|a, b| a.item.cmp(&b.item));
            Ok(items)
        }
        QuestionKind::YesNo => match single.as_str() {
            "" => Ok(vec![]),
            "yes" | "no" => Ok(vec![Item::scalar(single, None)]),
            _ => Err(FieldError::new("error-yes-no")),
        },
        QuestionKind::Integer { min, max } => {
            if single.is_empty() {
                return Ok(vec![]);
            }
            let compact: String = single.chars().filter(|c| !c.is_whitespace()).collect();
            let n: i64 = compact
                .parse()
                .map_err(|_| FieldError::new("error-not-integer"))?;
            if let Some(min) = min {
                if n < *min {
                    return Err(FieldError::new("error-number-too-small").with("min", min));
                }
            }
            if let Some(max) = max {
                if n > *max {
                    return Err(FieldError::new("error-number-too-large").with("max", max));
                }
            }
            Ok(vec![Item::scalar(n.to_string(), Some(n as f64))])
        }
        QuestionKind::Decimal { min, max } => {
            if single.is_empty() {
                return Ok(vec![]);
            }
            let n = parse_decimal(&single)?;
            if let Some(min) = min {
                if n < *min {
                    return Err(FieldError::new("error-number-too-small").with("min", min));
                }
            }
            if let Some(max) = max {
                if n > *max {
                    return Err(FieldError::new("error-number-too-large").with("max", max));
                }
            }
            Ok(vec![Item::scalar(n.to_string(), Some(n))])
        }
        QuestionKind::Percentage => {
            if single.is_empty() {
                return Ok(vec![]);
            }
            // "12.5", "12,5", "12,5 %" and "12.5%" are the same share.
            let n = parse_decimal(single.trim_end().trim_end_matches('%'))?;
            if n < 0.0 {
                return Err(FieldError::new("error-number-too-small").with("min", 0));
            }
            if n > 100.0 {
                return Err(FieldError::new("error-number-too-large").with("max", 100));
            }
            Ok(vec![Item::scalar(n.to_string(), Some(n))])
        }
        QuestionKind::Date { min, max } => {
            if single.is_empty() {
                return Ok(vec![]);
            }
            let d = NaiveDate::parse_from_str(&single, "%Y-%m-%d")
                .map_err(|_| FieldError::new("error-not-date"))?;
            if let Some(min) = min {
                if d < *min {
                    return Err(FieldError::new("error-date-too-early").with("min", min));
                }
            }
            if let Some(max) = max {
                if d > *max {
                    return Err(FieldError::new("error-date-too-late").with("max", max));
                }
            }
            Ok(vec![Item::scalar(d.format("%Y-%m-%d").to_string(), None)])
        }
        QuestionKind::Matrix { rows, scale } => {
            let mut items = Vec::new();
            for (row, value) in &raw.rows {
                let value = value.trim();
                if value.is_empty() {
                    continue;
                }
                if !rows.iter().any(|r| &r.code == row) || !scale.iter().any(|s| s.code == value) {
                    return Err(FieldError::new("error-not-an-option"));
                }
                items.push(Item {
                    item: row.clone(),
                    value: value.to_string(),
                    num: None,
                });
            }
            Ok(items)
        }
        QuestionKind::Country => {
            if single.is_empty() {
                return Ok(vec![]);
            }
            let code = single.to_ascii_uppercase();
            if !countries.is_country(&code) {
                return Err(FieldError::new("error-not-country"));
            }
            Ok(vec![Item::scalar(code, None)])
        }
        QuestionKind::Email => {
            if single.is_empty() {
                return Ok(vec![]);
            }
            if single.len() > 254 || !single.validate_email() {
                return Err(FieldError::new("error-not-email"));
            }
            Ok(vec![Item::scalar(single, None)])
        }
        QuestionKind::Url => {
            if single.is_empty() {
                return Ok(vec![]);
            }
            // Only web addresses: a javascript: link must never reach a results page.
            let lower = single.to_ascii_lowercase();
            let web = lower.starts_with("http://") || lower.starts_with("https://");
            if !web || single.len() > 2000 || !single.validate_url() {
                return Err(FieldError::new("error-not-url"));
            }
            Ok(vec![Item::scalar(single, None)])
        }
        // Files are not typed into a field: `respond::files` builds their items from the
        // uploads and removals of a save, and a save without any keeps them as they are.
        QuestionKind::File { .. } => Ok(vec![]),
    }
}

/// The item of a non-answer, or why it is refused: not allowed here, no reason where one is
/// required, a reason too long.
fn escaped(question: &Question, code: &str, reason: &str) -> Result<Vec<Item>, FieldError> {
    let Some((kind, escape)) =
        EscapeKind::parse(code).and_then(|k| question.escapes.get(k).map(|e| (k, e)))
    else {
        return Err(FieldError::new("error-escape-not-allowed"));
    };
    let reason = normalise_text(reason);
    if reason.chars().count() > REASON_MAX {
        return Err(FieldError::new("error-reason-too-long").with("max", REASON_MAX));
    }
    if reason.is_empty() && escape.reason_required {
        return Err(FieldError::new("error-reason-required"));
    }
    Ok(vec![Item {
        item: kind.item().to_string(),
        value: reason,
        num: None,
    }])
}

fn push_other(items: &mut Vec<Item>, is_other: bool, raw: &RawAnswer) -> Result<(), FieldError> {
    if !is_other {
        return Ok(());
    }
    let text = normalise_text(raw.other.as_deref().unwrap_or(""));
    if text.is_empty() {
        return Err(FieldError::new("error-other-needs-text"));
    }
    if text.chars().count() > DEFAULT_SHORT_MAX {
        return Err(FieldError::new("error-too-long").with("max", DEFAULT_SHORT_MAX));
    }
    items.push(Item {
        item: OTHER_ITEM.into(),
        value: text,
        num: None,
    });
    Ok(())
}

/// Line breaks become `\n` (a lone `\r` too: replacing only `\r\n` left one in "\r\r\n"), NULs
/// are dropped (no one types one, and PostgreSQL cannot store it in text), and the ends are
/// trimmed.
fn normalise_text(s: &str) -> String {
    let trimmed = s.trim();
    if !trimmed.contains(['\r', '\0']) {
        // What nearly every field holds: one copy, where the three replacements make four.
        return trimmed.to_string();
    }
    normalise_text_by_rules(s)
}

/// [`normalise_text`]'s rules applied one by one.
fn normalise_text_by_rules(s: &str) -> String {
    s.replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\0', "")
        .trim()
        .to_string()
}

/// Which sections and questions are shown, given the answers so far.
#[derive(Debug, Default, Clone)]
pub struct Visibility {
    visible: HashSet<String>,
    visible_sections: HashSet<String>,
}

impl Visibility {
    /// Evaluate every condition in document order. A hidden question's answer does not count:
    /// conditions see only the answers of visible questions.
    pub fn evaluate(survey: &Survey, answers: &Answers) -> Visibility {
        let mut vis = Visibility::default();
        for section in &survey.sections {
            let shown = section.show_if.as_ref().is_none_or(|c| {
                c.evaluate(&Effective {
                    answers,
                    visible: &vis.visible,
                })
            });
            if !shown {
                continue;
            }
            vis.visible_sections.insert(section.id.clone());
            for q in &section.questions {
                let shown = q.show_if.as_ref().is_none_or(|c| {
                    c.evaluate(&Effective {
                        answers,
                        visible: &vis.visible,
                    })
                });
                if shown {
                    vis.visible.insert(q.id.clone());
                }
            }
        }
        vis
    }

    pub fn question(&self, id: &str) -> bool {
        self.visible.contains(id)
    }

    pub fn section(&self, id: &str) -> bool {
        self.visible_sections.contains(id)
    }
}

struct Effective<'a> {
    answers: &'a Answers,
    visible: &'a HashSet<String>,
}

impl Effective<'_> {
    fn items(&self, question: &str) -> &[Item] {
        if !self.visible.contains(question) {
            return &[];
        }
        self.answers.get(question).map(Vec::as_slice).unwrap_or(&[])
    }
}

impl AnswerLookup for Effective<'_> {
    fn scalar(&self, question: &str, row: Option<&str>) -> Option<String> {
        let key = row.unwrap_or("");
        self.items(question)
            .iter()
            .find(|i| i.item == key)
            .map(|i| i.value.clone())
    }

    fn selected(&self, question: &str, option: &str) -> bool {
        self.items(question).iter().any(|i| i.item == option)
    }

    /// "Not known" and "not applicable" count as answered; they have no value, so a
    /// comparison or an option test on them is false.
    fn answered(&self, question: &str) -> bool {
        !self.items(question).is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionProgress {
    NotStarted,
    InProgress,
    Complete,
    /// Skipped by a condition: nothing to answer.
    NotApplicable,
}

/// A required, visible, unanswered question.
#[derive(Debug, Clone, PartialEq)]
pub struct Missing {
    pub section: String,
    pub question: String,
}

pub fn missing_answers(survey: &Survey, answers: &Answers, vis: &Visibility) -> Vec<Missing> {
    let mut out = Vec::new();
    for s in survey.sections.iter().filter(|s| vis.section(&s.id)) {
        for q in &s.questions {
            if q.required && vis.question(&q.id) && !is_answered(q, answers) {
                out.push(Missing {
                    section: s.id.clone(),
                    question: q.id.clone(),
                });
            }
        }
    }
    out
}

/// Whether a question has an answer; "not known" and "not applicable" are answers.
fn is_answered(q: &Question, answers: &Answers) -> bool {
    let items = answers.get(&q.id).map(Vec::as_slice).unwrap_or(&[]);
    if escape_of(items).is_some() {
        return true;
    }
    match &q.kind {
        // A required matrix needs every row.
        QuestionKind::Matrix { rows, .. } => {
            rows.iter().all(|r| items.iter().any(|i| i.item == r.code))
        }
        QuestionKind::ShortText { .. }
        | QuestionKind::LongText { .. }
        | QuestionKind::SingleChoice { .. }
        | QuestionKind::MultipleChoice { .. }
        | QuestionKind::YesNo
        | QuestionKind::Integer { .. }
        | QuestionKind::Decimal { .. }
        | QuestionKind::Percentage
        | QuestionKind::Date { .. }
        | QuestionKind::Country
        | QuestionKind::Email
        | QuestionKind::Url
        | QuestionKind::File { .. } => !items.is_empty(),
    }
}

pub fn section_progress(section: &Section, answers: &Answers, vis: &Visibility) -> SectionProgress {
    if !vis.section(&section.id) {
        return SectionProgress::NotApplicable;
    }
    let visible: Vec<&Question> = section
        .questions
        .iter()
        .filter(|q| vis.question(&q.id))
        .collect();
    let answered = visible.iter().filter(|q| is_answered(q, answers)).count();
    let required_done = visible
        .iter()
        .filter(|q| q.required)
        .all(|q| is_answered(q, answers));
    if answered == 0 {
        SectionProgress::NotStarted
    } else if required_done {
        SectionProgress::Complete
    } else {
        SectionProgress::InProgress
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Few;
    impl CountryCodes for Few {
        fn is_country(&self, iso3: &str) -> bool {
            iso3 == "SWE"
        }
    }

    fn q(kind: QuestionKind) -> Question {
        Question {
            id: "q".into(),
            text: Text::english("Q"),
            help: None,
            required: false,
            show_if: None,
            kind,
            marker: None,
            escapes: Escapes::default(),
        }
    }

    fn raw(v: &str) -> RawAnswer {
        RawAnswer {
            values: vec![v.into()],
            ..Default::default()
        }
    }

    #[test]
    fn numbers_are_bounded() {
        let question = q(QuestionKind::Integer {
            min: Some(0),
            max: Some(10),
        });
        assert_eq!(
            validate(&question, &raw("11"), &Few)
                .unwrap_err()
                .message_id,
            "error-number-too-large"
        );
        assert_eq!(
            validate(&question, &raw("x"), &Few).unwrap_err().message_id,
            "error-not-integer"
        );
        let ok = validate(&question, &raw(" 7 "), &Few).unwrap();
        assert_eq!(ok[0].num, Some(7.0));
        let share = q(QuestionKind::Decimal {
            min: None,
            max: None,
        });
        assert_eq!(
            validate(&share, &raw("0,25"), &Few).unwrap()[0].num,
            Some(0.25)
        );
    }

    #[test]
    fn text_normalisation_is_idempotent() {
        // Found by fuzzing (fuzz/corpus/form_answers/regression-cr-cr-lf): "a\r\r\nb" was
        // stored as "a\r\nb", which the same form saved again changed to "a\nb", so an
        // unchanged answer counted as a change (and as a conflict with another official).
        let question = q(QuestionKind::LongText {
            min_length: None,
            max_length: 100,
        });
        for text in ["a\r\r\nb", "a\rb", "a\r\n\r\nb", " a\n\rb\r "] {
            let saved = validate(&question, &raw(text), &Few).unwrap();
            assert!(!saved[0].value.contains('\r'), "{:?}", saved[0].value);
            let shown = RawAnswer::from_items(&question.kind, &saved);
            assert_eq!(validate(&question, &shown, &Few).unwrap(), saved);
        }
    }

    #[test]
    fn text_normalisation_copies_once_and_keeps_its_rules() {
        // The shortcut for text without `\r` or NUL must give what the rules give.
        for text in [
            "",
            "  ",
            "plain",
            " padded\t",
            "a\r\nb",
            " \0 a",
            "a \0",
            "\0",
            "\r\n\0\r",
            "a\r\r\nb ",
            "\u{3000}wide\u{3000}",
            "x\0\ny",
        ] {
            assert_eq!(
                normalise_text(text),
                normalise_text_by_rules(text),
                "{text:?}"
            );
        }
    }

    #[test]
    fn urls_must_be_web_addresses() {
        let question = q(QuestionKind::Url);
        assert!(validate(&question, &raw("javascript:alert(1)"), &Few).is_err());
        assert!(validate(&question, &raw("https://example.org/plan"), &Few).is_ok());
    }

    #[test]
    fn countries_come_from_the_list() {
        let question = q(QuestionKind::Country);
        assert_eq!(
            validate(&question, &raw("swe"), &Few).unwrap()[0].value,
            "SWE"
        );
        assert!(validate(&question, &raw("XYZ"), &Few).is_err());
    }

    fn escaped_raw(code: &str, reason: &str, value: &str) -> RawAnswer {
        RawAnswer {
            values: vec![value.into()],
            escape: Some(code.into()),
            reason: Some(reason.into()),
            ..Default::default()
        }
    }

    fn with_escapes(kind: QuestionKind) -> Question {
        let mut question = q(kind);
        question.escapes = Escapes {
            not_known: Some(Escape::default()),
            not_applicable: Some(Escape {
                reason_required: true,
            }),
        };
        question
    }

    #[test]
    fn an_escape_replaces_the_value_by_one_item_with_its_reason() {
        let question = with_escapes(QuestionKind::Integer {
            min: None,
            max: None,
        });
        let items = validate(
            &question,
            &escaped_raw("not_known", " not collected\r\n", "12"),
            &Few,
        )
        .unwrap();
        assert_eq!(
            items,
            vec![Item {
                item: "#not_known".into(),
                value: "not collected".into(),
                num: None
            }]
        );
        // Shown again in a form, it validates to the same items.
        let shown = RawAnswer::from_items(&question.kind, &items);
        assert_eq!(shown.escape.as_deref(), Some("not_known"));
        assert_eq!(validate(&question, &shown, &Few).unwrap(), items);
        // No reason where none is required.
        assert_eq!(
            validate(&question, &escaped_raw("not_known", "", ""), &Few).unwrap()[0].value,
            ""
        );
        // "answer" (or nothing) picks the value.
        assert_eq!(
            validate(&question, &escaped_raw("answer", "why", "12"), &Few).unwrap()[0].value,
            "12"
        );
        assert_eq!(
            validate(&question, &escaped_raw("", "", "12"), &Few).unwrap()[0].num,
            Some(12.0)
        );
    }

    #[test]
    fn escapes_are_refused_where_not_allowed_or_without_a_required_reason() {
        let question = with_escapes(QuestionKind::YesNo);
        let error = |raw: &RawAnswer| validate(&question, raw, &Few).unwrap_err().message_id;
        assert_eq!(
            error(&escaped_raw("not_applicable", "  ", "")),
            "error-reason-required"
        );
        assert_eq!(
            error(&escaped_raw(
                "not_applicable",
                &"x".repeat(REASON_MAX + 1),
                ""
            )),
            "error-reason-too-long"
        );
        assert_eq!(
            error(&escaped_raw("unknown", "", "")),
            "error-escape-not-allowed"
        );
        let plain = q(QuestionKind::YesNo);
        assert_eq!(
            validate(&plain, &escaped_raw("not_known", "", "yes"), &Few)
                .unwrap_err()
                .message_id,
            "error-escape-not-allowed"
        );
    }

    #[test]
    fn an_escape_answers_a_required_question_but_no_comparison() {
        let mut question = with_escapes(QuestionKind::Matrix {
            rows: vec![Choice {
                code: "r".into(),
                label: Text::english("R"),
                theme: None,
            }],
            scale: vec![Choice {
                code: "s".into(),
                label: Text::english("S"),
                theme: None,
            }],
        });
        question.required = true;
        let answers = Answers::from([(
            "q".to_string(),
            vec![Item {
                item: "#not_known".into(),
                value: String::new(),
                num: None,
            }],
        )]);
        assert!(is_answered(&question, &answers));
        let visible = HashSet::from(["q".to_string()]);
        let lookup = Effective {
            answers: &answers,
            visible: &visible,
        };
        assert!(lookup.answered("q"));
        assert_eq!(lookup.scalar("q", None), None);
        assert_eq!(lookup.scalar("q", Some("r")), None);
    }
}

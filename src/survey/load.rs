//! Reading survey files: TOML with spans, turned into a checked [`Survey`].
//!
//! The walk is hand-written over toml's spanned document rather than a serde derive so that
//! every problem in a file is reported with its line and column, not only the first.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use sha2::{Digest, Sha256};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::condition::{CompareOp, Condition, Literal};
use super::model::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in a survey file, with the place it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub severity: Severity,
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}:{}: {level}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// The outcome of loading a set of files: the good surveys and every diagnostic.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub surveys: Vec<Survey>,
    pub diagnostics: Vec<Diagnostic>,
}

impl LoadReport {
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }
}

/// Load every `*.toml` file under the given paths (files or directories).
pub fn load_paths(paths: &[PathBuf]) -> LoadReport {
    let mut report = LoadReport::default();
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            match std::fs::read_dir(path) {
                Ok(entries) => {
                    let mut found: Vec<PathBuf> = entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                        .collect();
                    found.sort();
                    files.extend(found);
                }
                Err(e) => report.diagnostics.push(file_error(path, e.to_string())),
            }
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() {
        let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        report.diagnostics.push(Diagnostic {
            file: shown.join(", "),
            line: 1,
            column: 1,
            severity: Severity::Error,
            message: "no survey files (*.toml) found".into(),
        });
    }
    let mut seen_ids: HashMap<String, String> = HashMap::new();
    for file in files {
        let source = match std::fs::read_to_string(&file) {
            Ok(s) => s,
            Err(e) => {
                report.diagnostics.push(file_error(&file, e.to_string()));
                continue;
            }
        };
        let name = file.display().to_string();
        let (survey, diags) = parse_survey(&name, &source);
        report.diagnostics.extend(diags);
        if let Some(survey) = survey {
            if let Some(other) = seen_ids.get(&survey.id) {
                report.diagnostics.push(Diagnostic {
                    file: name.clone(),
                    line: 1,
                    column: 1,
                    severity: Severity::Error,
                    message: format!("survey id '{}' is already used by {other}", survey.id),
                });
                continue;
            }
            seen_ids.insert(survey.id.clone(), name);
            report.surveys.push(survey);
        }
    }
    report
}

fn file_error(path: &Path, message: String) -> Diagnostic {
    Diagnostic {
        file: path.display().to_string(),
        line: 1,
        column: 1,
        severity: Severity::Error,
        message: format!("cannot read: {message}"),
    }
}

/// Parse one survey file. Returns the survey only when it has no errors.
pub fn parse_survey(file: &str, source: &str) -> (Option<Survey>, Vec<Diagnostic>) {
    let mut cx = Cx {
        file,
        source,
        diagnostics: Vec::new(),
    };
    let (doc, syntax_errors) = DeTable::parse_recoverable(source);
    for e in &syntax_errors {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        cx.error(
            offset..offset,
            format!("TOML syntax: {}", e.message().trim()),
        );
    }
    let survey = if syntax_errors.is_empty() {
        let mut walker = Walker::default();
        walker.survey(&mut cx, doc.get_ref(), source)
    } else {
        None
    };
    let mut diagnostics = cx.diagnostics;
    diagnostics.sort_by_key(|d| (d.line, d.column));
    diagnostics.dedup();
    let ok = !diagnostics.iter().any(|d| d.severity == Severity::Error);
    (if ok { survey } else { None }, diagnostics)
}

struct Cx<'a> {
    file: &'a str,
    source: &'a str,
    diagnostics: Vec<Diagnostic>,
}

impl Cx<'_> {
    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.source.len());
        let before = &self.source[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let column = self.source[line_start..offset].chars().count() + 1;
        (line, column)
    }

    fn push(&mut self, span: Range<usize>, severity: Severity, message: String) {
        let (line, column) = self.position(span.start);
        self.diagnostics.push(Diagnostic {
            file: self.file.to_string(),
            line,
            column,
            severity,
            message,
        });
    }

    fn error(&mut self, span: Range<usize>, message: String) {
        self.push(span, Severity::Error, message);
    }
}

type Value<'i> = Spanned<DeValue<'i>>;

/// Reads the keys of one table, remembering which are allowed, and reports the rest.
struct Table<'a, 'i> {
    table: &'a DeTable<'i>,
    span: Range<usize>,
    what: String,
    allowed: &'static [&'static str],
}

impl<'a, 'i> Table<'a, 'i> {
    /// `what` names the table in messages; a table with a string `id` is named by it
    /// ("section 's'") instead of "a section".
    fn new(
        cx: &mut Cx,
        value: &'a Value<'i>,
        what: String,
        allowed: &'static [&'static str],
    ) -> Option<Self> {
        match value.get_ref() {
            DeValue::Table(table) => {
                let id = table
                    .iter()
                    .find(|(k, _)| k.get_ref() == "id")
                    .and_then(|(_, v)| v.get_ref().as_str());
                let what = match (what.strip_prefix("a "), id) {
                    (Some(kind), Some(id)) => format!("{kind} '{id}'"),
                    _ => what,
                };
                let t = Table {
                    table,
                    span: value.span(),
                    what,
                    allowed,
                };
                t.report_unknown(cx);
                Some(t)
            }
            other => {
                cx.error(
                    value.span(),
                    format!("{what} must be a table, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn report_unknown(&self, cx: &mut Cx) {
        for (key, _) in self.table.iter() {
            if !self.allowed.contains(&key.get_ref().as_ref()) {
                cx.error(
                    key.span(),
                    format!(
                        "unknown key '{}' in {} (allowed: {})",
                        key.get_ref(),
                        self.what,
                        self.allowed.join(", ")
                    ),
                );
            }
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value<'i>> {
        self.table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(_, v)| v)
    }

    fn key_span(&self, key: &str) -> Range<usize> {
        self.table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(k, _)| k.span())
            .unwrap_or_else(|| self.span.clone())
    }

    fn missing(&self, cx: &mut Cx, key: &str) {
        cx.error(
            self.span.start..self.span.start,
            format!("missing required key '{key}' in {}", self.what),
        );
    }

    fn wrong_type(&self, cx: &mut Cx, key: &str, expected: &str, found: &Value) {
        cx.error(
            found.span(),
            format!(
                "'{key}' in {} must be {expected}, found {}",
                self.what,
                found.get_ref().type_str()
            ),
        );
    }

    fn string(&self, cx: &mut Cx, key: &str) -> Option<Spanned<String>> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(Spanned::new(v.span(), s.to_string())),
            _ => {
                self.wrong_type(cx, key, "a string", v);
                None
            }
        }
    }

    fn required_string(&self, cx: &mut Cx, key: &str) -> Option<Spanned<String>> {
        if self.get(key).is_none() {
            self.missing(cx, key);
            return None;
        }
        self.string(cx, key)
    }

    fn bool(&self, cx: &mut Cx, key: &str) -> Option<bool> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(cx, key, "true or false", v);
                None
            }
        }
    }

    fn integer(&self, cx: &mut Cx, key: &str) -> Option<i64> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(n),
                Err(_) => {
                    cx.error(v.span(), format!("'{key}' is out of range"));
                    None
                }
            },
            _ => {
                self.wrong_type(cx, key, "an integer", v);
                None
            }
        }
    }

    fn count(&self, cx: &mut Cx, key: &str) -> Option<usize> {
        let n = self.integer(cx, key)?;
        match usize::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                cx.error(self.key_span(key), format!("'{key}' must not be negative"));
                None
            }
        }
    }

    fn number(&self, cx: &mut Cx, key: &str) -> Option<f64> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .map(|n| n as f64),
            DeValue::Float(f) => f.as_str().replace('_', "").parse().ok(),
            _ => {
                self.wrong_type(cx, key, "a number", v);
                None
            }
        }
    }

    fn date(&self, cx: &mut Cx, key: &str) -> Option<NaiveDate> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::Datetime(dt) if dt.time.is_none() => dt
                .date
                .and_then(|d| NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into())),
            _ => {
                self.wrong_type(cx, key, "a date such as 2008-09-30", v);
                None
            }
        }
    }

    /// A date (the whole day, UTC) or an offset date-time.
    fn instant(&self, cx: &mut Cx, key: &str, end_of_day: bool) -> Option<DateTime<Utc>> {
        let v = self.get(key)?;
        let parsed = match v.get_ref() {
            DeValue::Datetime(dt) => match (dt.date, dt.time, dt.offset) {
                (Some(d), None, None) => {
                    NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into()).and_then(
                        |date| {
                            let t = if end_of_day {
                                date.and_hms_opt(23, 59, 59)
                            } else {
                                date.and_hms_opt(0, 0, 0)
                            };
                            t.map(|t| Utc.from_utc_datetime(&t))
                        },
                    )
                }
                (Some(_), Some(_), Some(_)) => DateTime::parse_from_rfc3339(&dt.to_string())
                    .ok()
                    .map(|d| d.with_timezone(&Utc)),
                _ => None,
            },
            _ => None,
        };
        if parsed.is_none() {
            self.wrong_type(
                cx,
                key,
                "a date (2008-09-30) or a date-time with offset (2008-09-30T17:00:00+02:00)",
                v,
            );
        }
        parsed
    }

    fn string_list(&self, cx: &mut Cx, key: &str) -> Vec<Spanned<String>> {
        let Some(v) = self.get(key) else {
            return Vec::new();
        };
        match v.get_ref() {
            DeValue::Array(items) => items
                .iter()
                .filter_map(|item| match item.get_ref() {
                    DeValue::String(s) => Some(Spanned::new(item.span(), s.to_string())),
                    other => {
                        cx.error(
                            item.span(),
                            format!(
                                "'{key}' in {} must list strings, found {}",
                                self.what,
                                other.type_str()
                            ),
                        );
                        None
                    }
                })
                .collect(),
            _ => {
                self.wrong_type(cx, key, "a list of strings", v);
                Vec::new()
            }
        }
    }

    fn items(&self, cx: &mut Cx, key: &str) -> &'a [Value<'i>] {
        let Some(v) = self.get(key) else {
            return &[];
        };
        match v.get_ref() {
            DeValue::Array(items) => items.as_ref(),
            _ => {
                self.wrong_type(cx, key, "a list", v);
                &[]
            }
        }
    }

    /// A translatable text: a plain string (English) or a table `{ en = "...", fr = "..." }`.
    fn text(&self, cx: &mut Cx, key: &str, required: bool) -> Option<Text> {
        let Some(v) = self.get(key) else {
            if required {
                self.missing(cx, key);
            }
            return None;
        };
        match v.get_ref() {
            DeValue::String(s) => {
                if s.trim().is_empty() {
                    cx.error(v.span(), format!("'{key}' in {} is empty", self.what));
                }
                Some(Text::english(s.to_string()))
            }
            DeValue::Table(t) => {
                let mut text = Text::default();
                for (lang, value) in t.iter() {
                    let lang_code = lang.get_ref().as_ref();
                    if !LANGUAGES.contains(&lang_code) {
                        cx.error(
                            lang.span(),
                            format!(
                                "unknown language '{lang_code}' in '{key}' of {} (allowed: {})",
                                self.what,
                                LANGUAGES.join(", ")
                            ),
                        );
                        continue;
                    }
                    match value.get_ref() {
                        DeValue::String(s) => {
                            text.0.insert(lang_code.to_string(), s.to_string());
                        }
                        other => cx.error(
                            value.span(),
                            format!(
                                "'{key}.{lang_code}' must be a string, found {}",
                                other.type_str()
                            ),
                        ),
                    }
                }
                if !text.has("en") {
                    cx.error(
                        v.span(),
                        format!("'{key}' in {} has no English text (en)", self.what),
                    );
                }
                Some(text)
            }
            _ => {
                self.wrong_type(cx, key, "a string or a table of languages", v);
                None
            }
        }
    }
}

const SURVEY_KEYS: &[&str] = &[
    "id",
    "title",
    "description",
    "languages",
    "opens",
    "closes",
    "respondent_unit",
    "themes",
    "sections",
];
const THEME_KEYS: &[&str] = &["id", "label"];
const SECTION_KEYS: &[&str] = &["id", "title", "intro", "show_if", "questions"];
const QUESTION_KEYS: &[&str] = &[
    "id",
    "type",
    "text",
    "help",
    "required",
    "show_if",
    "options",
    "other",
    "min_selections",
    "max_selections",
    "min",
    "max",
    "min_length",
    "max_length",
    "rows",
    "scale",
    "marker",
    "themes",
    "themes_from",
    "cite_question",
    "related",
    "level",
    "priority_question",
];
const CHOICE_KEYS: &[&str] = &["code", "label", "theme"];

/// Cross-references that can only be checked once every question is known.
struct PendingRef {
    from: String,
    key: &'static str,
    target: Spanned<String>,
    expect: Expect,
}

#[derive(Clone, Copy)]
enum Expect {
    AnyQuestion,
    YesNo,
    ThemePicker,
    Priority,
}

#[derive(Default)]
struct Walker {
    /// Every question id in the file with its type, in document order (for show_if checks).
    all_questions: Vec<(String, QuestionKind)>,
    theme_ids: HashSet<String>,
    pending: Vec<PendingRef>,
}

impl Walker {
    fn survey(&mut self, cx: &mut Cx, doc: &DeTable, source: &str) -> Option<Survey> {
        let root_value = Spanned::new(0..0, DeValue::Table(doc.clone()));
        let root = Table::new(cx, &root_value, "the survey".into(), SURVEY_KEYS)?;
        let id = root.required_string(cx, "id");
        if let Some(id) = &id {
            check_identifier(cx, id, "survey id");
        }
        let title = root.text(cx, "title", true);
        let description = root.text(cx, "description", false);
        let opens = root.instant(cx, "opens", false);
        let closes = root.instant(cx, "closes", true);
        if let (Some(o), Some(c)) = (opens, closes) {
            if o >= c {
                cx.error(
                    root.key_span("closes"),
                    "'closes' must be after 'opens'".into(),
                );
            }
        }
        let mut unit = RespondentUnit::Country;
        if let Some(given) = root.string(cx, "respondent_unit") {
            match RespondentUnit::parse(given.get_ref()) {
                Some(u) => unit = u,
                None => cx.error(
                    given.span(),
                    format!(
                        "respondent_unit '{}' is not supported (\"country\" or \"organisation\")",
                        given.get_ref()
                    ),
                ),
            }
        }
        let mut languages = vec!["en".to_string()];
        for lang in root.string_list(cx, "languages") {
            if !LANGUAGES.contains(&lang.get_ref().as_str()) {
                cx.error(
                    lang.span(),
                    format!(
                        "unknown language '{}' (allowed: {})",
                        lang.get_ref(),
                        LANGUAGES.join(", ")
                    ),
                );
            } else if !languages.contains(lang.get_ref()) {
                languages.push(lang.into_inner());
            }
        }

        let mut themes = Vec::new();
        for item in root.items(cx, "themes") {
            let Some(t) = Table::new(cx, item, "a theme".into(), THEME_KEYS) else {
                continue;
            };
            let Some(tid) = t.required_string(cx, "id") else {
                continue;
            };
            check_identifier(cx, &tid, "theme id");
            let label = t.text(cx, "label", true).unwrap_or_default();
            if !self.theme_ids.insert(tid.get_ref().clone()) {
                cx.error(
                    tid.span(),
                    format!("duplicate theme id '{}'", tid.get_ref()),
                );
            }
            themes.push(Theme {
                id: tid.into_inner(),
                label,
            });
        }

        // A first pass collects every question id, so a show_if can tell "later" from "unknown".
        let section_items = root.items(cx, "sections");
        let mut future: HashSet<String> = HashSet::new();
        for s in section_items {
            if let DeValue::Table(st) = s.get_ref() {
                if let Some(qs) = st.iter().find(|(k, _)| k.get_ref() == "questions") {
                    if let DeValue::Array(items) = qs.1.get_ref() {
                        for q in items.iter() {
                            if let Some(DeValue::String(qid)) =
                                q.get_ref().as_table().and_then(|t| {
                                    t.iter()
                                        .find(|(k, _)| k.get_ref() == "id")
                                        .map(|(_, v)| v.get_ref())
                                })
                            {
                                future.insert(qid.to_string());
                            }
                        }
                    }
                }
            }
        }

        let mut sections = Vec::new();
        let mut section_ids = HashSet::new();
        if section_items.is_empty() {
            cx.error(0..0, "the survey has no [[sections]]".into());
        }
        for item in section_items {
            if let Some(section) = self.section(cx, item, &future, &mut section_ids) {
                sections.push(section);
            }
        }
        self.resolve_pending(cx);

        Some(Survey {
            id: id?.into_inner(),
            title: title?,
            description,
            languages,
            opens,
            closes,
            unit,
            themes,
            sections,
            version: hex::encode(Sha256::digest(source.as_bytes())),
            source: source.to_string(),
            path: cx.file.to_string(),
        })
    }

    fn section(
        &mut self,
        cx: &mut Cx,
        item: &Value,
        future: &HashSet<String>,
        section_ids: &mut HashSet<String>,
    ) -> Option<Section> {
        let t = Table::new(cx, item, "a section".into(), SECTION_KEYS)?;
        let id = t.required_string(cx, "id");
        if let Some(id) = &id {
            check_identifier(cx, id, "section id");
            if !section_ids.insert(id.get_ref().clone()) {
                cx.error(
                    id.span(),
                    format!("duplicate section id '{}'", id.get_ref()),
                );
            }
        }
        let title = t.text(cx, "title", true);
        let intro = t.text(cx, "intro", false);
        let show_if = self.condition(cx, &t, future, None);
        let mut questions = Vec::new();
        let items = t.items(cx, "questions");
        if items.is_empty() {
            cx.error(
                t.span.start..t.span.start,
                format!("{} has no questions", t.what),
            );
        }
        for q in items {
            if let Some(q) = self.question(cx, q, future) {
                questions.push(q);
            }
        }
        Some(Section {
            id: id?.into_inner(),
            title: title?,
            intro,
            show_if,
            questions,
        })
    }

    fn question(
        &mut self,
        cx: &mut Cx,
        item: &Value,
        future: &HashSet<String>,
    ) -> Option<Question> {
        let t = Table::new(cx, item, "a question".into(), QUESTION_KEYS)?;
        let id = t.required_string(cx, "id");
        if let Some(id) = &id {
            check_identifier(cx, id, "question id");
            if self.all_questions.iter().any(|(q, _)| q == id.get_ref()) {
                cx.error(
                    id.span(),
                    format!("duplicate question id '{}'", id.get_ref()),
                );
            }
        }
        let text = t.text(cx, "text", true);
        let help = t.text(cx, "help", false);
        let required = t.bool(cx, "required").unwrap_or(false);
        // The condition may only look at questions before this one.
        let show_if = self.condition(cx, &t, future, id.as_ref().map(|i| i.get_ref().as_str()));
        let kind = self.kind(cx, &t);
        let kind_ok = kind.is_some();
        let kind = kind.unwrap_or(QuestionKind::YesNo);
        let id_text = id.as_ref().map(|i| i.get_ref().clone()).unwrap_or_default();
        let marker = self.marker(cx, &t, &id_text, &kind);
        if let Some(id) = &id {
            self.all_questions
                .push((id.get_ref().clone(), kind.clone()));
        }
        if !kind_ok {
            return None;
        }
        Some(Question {
            id: id?.into_inner(),
            text: text?,
            help,
            required,
            show_if,
            kind,
            marker,
        })
    }

    fn kind(&mut self, cx: &mut Cx, t: &Table) -> Option<QuestionKind> {
        let type_name = t.required_string(cx, "type")?;
        // Which keys belong to which type, so a stray `options` on an integer is reported.
        let allowed: &[&str] = match type_name.get_ref().as_str() {
            "short_text" | "long_text" => &["min_length", "max_length"],
            "single_choice" => &["options", "other"],
            "multiple_choice" => &["options", "other", "min_selections", "max_selections"],
            "integer" | "decimal" | "date" => &["min", "max"],
            "matrix" => &["rows", "scale"],
            "yes_no" | "country" | "email" | "url" => &[],
            other => {
                cx.error(
                    type_name.span(),
                    format!(
                        "unknown question type '{other}' (allowed: short_text, long_text, single_choice, multiple_choice, yes_no, integer, decimal, date, matrix, country, email, url)"
                    ),
                );
                return None;
            }
        };
        const TYPE_KEYS: &[&str] = &[
            "options",
            "other",
            "min_selections",
            "max_selections",
            "min",
            "max",
            "min_length",
            "max_length",
            "rows",
            "scale",
        ];
        for key in TYPE_KEYS {
            if t.get(key).is_some() && !allowed.contains(key) {
                cx.error(
                    t.key_span(key),
                    format!(
                        "'{key}' does not apply to a {} question ({})",
                        type_name.get_ref(),
                        t.what
                    ),
                );
            }
        }
        let kind = match type_name.get_ref().as_str() {
            "short_text" | "long_text" => {
                let long = type_name.get_ref() == "long_text";
                let min_length = t.count(cx, "min_length");
                let max_length = t.count(cx, "max_length").unwrap_or(if long {
                    DEFAULT_LONG_MAX
                } else {
                    DEFAULT_SHORT_MAX
                });
                if min_length.is_some_and(|m| m > max_length) {
                    cx.error(
                        t.key_span("min_length"),
                        format!(
                            "min_length is greater than max_length ({max_length}) in {}",
                            t.what
                        ),
                    );
                }
                if long {
                    QuestionKind::LongText {
                        min_length,
                        max_length,
                    }
                } else {
                    QuestionKind::ShortText {
                        min_length,
                        max_length,
                    }
                }
            }
            "single_choice" => QuestionKind::SingleChoice {
                options: self.choices(cx, t, "options", true)?,
                other: t.bool(cx, "other").unwrap_or(false),
            },
            "multiple_choice" => {
                let options = self.choices(cx, t, "options", true)?;
                let other = t.bool(cx, "other").unwrap_or(false);
                let min_selections = t.count(cx, "min_selections");
                let max_selections = t.count(cx, "max_selections");
                let available = options.len() + usize::from(other);
                if let (Some(lo), Some(hi)) = (min_selections, max_selections) {
                    if lo > hi {
                        cx.error(
                            t.key_span("min_selections"),
                            format!(
                                "min_selections is greater than max_selections in {}",
                                t.what
                            ),
                        );
                    }
                }
                if min_selections.is_some_and(|m| m > available) {
                    cx.error(
                        t.key_span("min_selections"),
                        format!(
                            "min_selections is more than the {available} options of {}",
                            t.what
                        ),
                    );
                }
                QuestionKind::MultipleChoice {
                    options,
                    other,
                    min_selections,
                    max_selections,
                }
            }
            "integer" => {
                let min = t.integer(cx, "min");
                let max = t.integer(cx, "max");
                self.check_bounds(cx, t, min, max);
                QuestionKind::Integer { min, max }
            }
            "decimal" => {
                let min = t.number(cx, "min");
                let max = t.number(cx, "max");
                self.check_bounds(cx, t, min, max);
                QuestionKind::Decimal { min, max }
            }
            "date" => {
                let min = t.date(cx, "min");
                let max = t.date(cx, "max");
                self.check_bounds(cx, t, min, max);
                QuestionKind::Date { min, max }
            }
            "matrix" => {
                let rows = self.choices(cx, t, "rows", false);
                let scale = self.choices(cx, t, "scale", false);
                QuestionKind::Matrix {
                    rows: rows?,
                    scale: scale?,
                }
            }
            "yes_no" => QuestionKind::YesNo,
            "country" => QuestionKind::Country,
            "email" => QuestionKind::Email,
            "url" => QuestionKind::Url,
            _ => return None,
        };
        Some(kind)
    }

    fn check_bounds<T: PartialOrd>(&self, cx: &mut Cx, t: &Table, min: Option<T>, max: Option<T>) {
        if let (Some(lo), Some(hi)) = (min, max) {
            if lo > hi {
                cx.error(
                    t.key_span("min"),
                    format!("min is greater than max in {}", t.what),
                );
            }
        }
    }

    fn choices(
        &mut self,
        cx: &mut Cx,
        t: &Table,
        key: &'static str,
        allow_theme: bool,
    ) -> Option<Vec<Choice>> {
        let items = t.items(cx, key);
        if items.is_empty() {
            cx.error(
                t.span.start..t.span.start,
                format!("{} needs a non-empty '{key}' list", t.what),
            );
            return None;
        }
        let mut out = Vec::new();
        let mut codes = HashSet::new();
        for item in items {
            let what = format!("an entry of '{key}' in {}", t.what);
            let Some(c) = Table::new(cx, item, what, CHOICE_KEYS) else {
                continue;
            };
            let Some(code) = c.required_string(cx, "code") else {
                continue;
            };
            check_identifier(cx, &code, "code");
            if !codes.insert(code.get_ref().clone()) {
                cx.error(
                    code.span(),
                    format!(
                        "duplicate code '{}' in '{key}' of {}",
                        code.get_ref(),
                        t.what
                    ),
                );
            }
            // `<question>.other` is the "please specify" field, so no row may take that name.
            if key == "rows" && code.get_ref() == OTHER_CODE {
                cx.error(
                    code.span(),
                    format!("row code '{OTHER_CODE}' is reserved in {}", t.what),
                );
            }
            if key == "options" && code.get_ref() == OTHER_CODE && t.get("other").is_some() {
                cx.error(
                    code.span(),
                    format!(
                        "code '{OTHER_CODE}' is reserved for the 'other' box in {}",
                        t.what
                    ),
                );
            }
            let label = c.text(cx, "label", true).unwrap_or_default();
            let theme = c.string(cx, "theme");
            if let Some(theme) = &theme {
                if !allow_theme {
                    cx.error(theme.span(), format!("'theme' does not apply to '{key}'"));
                } else {
                    self.check_theme(cx, theme);
                }
            }
            out.push(Choice {
                code: code.into_inner(),
                label,
                theme: theme.map(Spanned::into_inner),
            });
        }
        Some(out)
    }

    fn check_theme(&self, cx: &mut Cx, theme: &Spanned<String>) {
        if !self.theme_ids.contains(theme.get_ref()) {
            cx.error(
                theme.span(),
                format!(
                    "unknown theme '{}' (declare it under [[themes]])",
                    theme.get_ref()
                ),
            );
        }
    }

    fn marker(&mut self, cx: &mut Cx, t: &Table, qid: &str, kind: &QuestionKind) -> Option<Marker> {
        let marker = t.string(cx, "marker");
        const MARKER_KEYS: &[&str] = &[
            "themes",
            "themes_from",
            "cite_question",
            "related",
            "level",
            "priority_question",
        ];
        let Some(marker) = marker else {
            for key in MARKER_KEYS {
                if t.get(key).is_some() {
                    cx.error(
                        t.key_span(key),
                        format!("'{key}' needs a 'marker' in {}", t.what),
                    );
                }
            }
            return None;
        };
        let themes: Vec<String> = t
            .string_list(cx, "themes")
            .into_iter()
            .inspect(|th| self.check_theme(cx, th))
            .map(Spanned::into_inner)
            .collect();
        let mut pend = |key: &'static str, target: Spanned<String>, expect: Expect| {
            self.pending.push(PendingRef {
                from: qid.to_string(),
                key,
                target,
                expect,
            });
        };
        match marker.get_ref().as_str() {
            "good_practice" => {
                for key in ["level", "priority_question"] {
                    if t.get(key).is_some() {
                        cx.error(
                            t.key_span(key),
                            format!("'{key}' applies to capacity needs, not good practices"),
                        );
                    }
                }
                let themes_from = t.string(cx, "themes_from");
                let cite_question = t.string(cx, "cite_question");
                let related = t.string_list(cx, "related");
                if let Some(f) = &themes_from {
                    pend("themes_from", f.clone(), Expect::ThemePicker);
                }
                if let Some(c) = &cite_question {
                    pend("cite_question", c.clone(), Expect::YesNo);
                }
                for r in &related {
                    pend("related", r.clone(), Expect::AnyQuestion);
                }
                if themes.is_empty() && themes_from.is_none() {
                    cx.error(
                        marker.span(),
                        format!("good practice {} needs 'themes' or 'themes_from'", t.what),
                    );
                }
                Some(Marker::GoodPractice {
                    themes,
                    themes_from: themes_from.map(Spanned::into_inner),
                    cite_question: cite_question.map(Spanned::into_inner),
                    related: related.into_iter().map(Spanned::into_inner).collect(),
                })
            }
            "capacity_need" => {
                for key in ["themes_from", "cite_question", "related"] {
                    if t.get(key).is_some() {
                        cx.error(
                            t.key_span(key),
                            format!("'{key}' applies to good practices, not capacity needs"),
                        );
                    }
                }
                let level = match t.string(cx, "level") {
                    None => None,
                    Some(l) => match l.get_ref().as_str() {
                        "policy" => Some(NeedLevel::Policy),
                        "institutional" => Some(NeedLevel::Institutional),
                        other => {
                            cx.error(
                                l.span(),
                                format!("unknown level '{other}' (allowed: policy, institutional)"),
                            );
                            None
                        }
                    },
                };
                let priority_question = t.string(cx, "priority_question");
                if let Some(p) = &priority_question {
                    pend("priority_question", p.clone(), Expect::Priority);
                }
                let option_themes = kind.options().iter().any(|o| o.theme.is_some());
                if themes.is_empty() && !option_themes {
                    cx.error(
                        marker.span(),
                        format!(
                            "capacity need {} needs 'themes' or options with a 'theme'",
                            t.what
                        ),
                    );
                }
                Some(Marker::CapacityNeed {
                    themes,
                    level,
                    priority_question: priority_question.map(Spanned::into_inner),
                })
            }
            other => {
                cx.error(
                    marker.span(),
                    format!("unknown marker '{other}' (allowed: good_practice, capacity_need)"),
                );
                None
            }
        }
    }

    fn resolve_pending(&mut self, cx: &mut Cx) {
        for p in std::mem::take(&mut self.pending) {
            let target = p.target.get_ref();
            let Some((_, kind)) = self.all_questions.iter().find(|(q, _)| q == target) else {
                cx.error(
                    p.target.span(),
                    format!(
                        "'{}' of question '{}' refers to unknown question '{target}'",
                        p.key, p.from
                    ),
                );
                continue;
            };
            let problem = match p.expect {
                Expect::AnyQuestion => None,
                Expect::YesNo if *kind != QuestionKind::YesNo => Some("a yes_no question"),
                Expect::ThemePicker
                    if !matches!(
                        kind,
                        QuestionKind::MultipleChoice { .. } | QuestionKind::SingleChoice { .. }
                    ) || !kind.options().iter().all(|o| o.theme.is_some()) =>
                {
                    Some("a choice question whose every option has a 'theme'")
                }
                Expect::Priority
                    if !matches!(
                        kind,
                        QuestionKind::Matrix { .. } | QuestionKind::SingleChoice { .. }
                    ) =>
                {
                    Some("a matrix or single_choice question")
                }
                _ => None,
            };
            if let Some(expected) = problem {
                cx.error(
                    p.target.span(),
                    format!(
                        "'{}' of question '{}' must name {expected}; '{target}' is a {}",
                        p.key,
                        p.from,
                        kind.type_name()
                    ),
                );
            }
        }
    }

    /// Parse and check a `show_if`. `current` is the question being read (None for a section).
    fn condition(
        &self,
        cx: &mut Cx,
        t: &Table,
        future: &HashSet<String>,
        current: Option<&str>,
    ) -> Option<Condition> {
        let raw = t.string(cx, "show_if")?;
        // Offsets inside the expression map to the file (past the opening quote) only where the
        // file has the expression as is between two quotes; one written with escapes or over
        // several lines has other offsets, so its problems are shown at its start.
        let span = raw.span();
        let written = cx.source.get(span.clone()).unwrap_or("");
        let verbatim = written.len() == raw.get_ref().len() + 2
            && written.get(1..written.len() - 1) == Some(raw.get_ref().as_str());
        let place = |offset: usize| {
            let at = if verbatim {
                span.start + 1 + offset
            } else {
                span.start
            };
            at..at
        };
        let cond = match Condition::parse(raw.get_ref()) {
            Ok(c) => c,
            Err(e) => {
                cx.error(
                    place(e.offset),
                    format!("show_if of {} does not parse: {}", t.what, e.message),
                );
                return None;
            }
        };
        let mut ok = true;
        for r in cond.references() {
            let at = place(r.offset);
            let earlier = self.all_questions.iter().find(|(q, _)| *q == r.question);
            match earlier {
                None if current == Some(r.question.as_str()) => {
                    cx.error(
                        at,
                        format!("show_if of {} refers to the question itself", t.what),
                    );
                    ok = false;
                }
                None if future.contains(&r.question) => {
                    cx.error(
                        at,
                        format!(
                            "show_if of {} refers to '{}', which comes later; conditions may only use earlier questions",
                            t.what, r.question
                        ),
                    );
                    ok = false;
                }
                None => {
                    cx.error(
                        at,
                        format!(
                            "show_if of {} refers to unknown question '{}'",
                            t.what, r.question
                        ),
                    );
                    ok = false;
                }
                Some((_, kind)) => {
                    if let Some(row) = &r.row {
                        let known = matches!(kind, QuestionKind::Matrix { rows, .. } if rows.iter().any(|x| &x.code == row));
                        if !known {
                            cx.error(
                                at,
                                format!(
                                    "'{}.{row}' in show_if of {} is not a row of a matrix question",
                                    r.question, t.what
                                ),
                            );
                            ok = false;
                        }
                    }
                }
            }
        }
        for (target, option) in cond.memberships() {
            if let Some((_, kind)) = self
                .all_questions
                .iter()
                .find(|(q, _)| *q == target.question)
            {
                let at = place(target.offset);
                match kind {
                    QuestionKind::MultipleChoice { options, other, .. } => {
                        let known = options.iter().any(|o| o.code == option)
                            || (*other && option == OTHER_CODE);
                        if !known {
                            cx.error(
                                at,
                                format!(
                                    "'{option}' is not an option of '{}' (show_if of {})",
                                    target.question, t.what
                                ),
                            );
                            ok = false;
                        }
                    }
                    _ => {
                        cx.error(
                            at,
                            format!(
                                "'in' needs a multiple_choice question; '{}' is a {}",
                                target.question,
                                kind.type_name()
                            ),
                        );
                        ok = false;
                    }
                }
            }
        }
        for (target, op, value) in cond.comparisons() {
            let Some((_, kind)) = self
                .all_questions
                .iter()
                .find(|(q, _)| *q == target.question)
            else {
                continue;
            };
            let at = place(target.offset);
            let problem = comparison_problem(kind, target.row.is_some(), op, value);
            if let Some(problem) = problem {
                cx.error(at, format!("show_if of {}: {problem}", t.what));
                ok = false;
            }
        }
        ok.then_some(cond)
    }
}

fn comparison_problem(
    kind: &QuestionKind,
    row: bool,
    op: CompareOp,
    value: &Literal,
) -> Option<String> {
    let ordering = !matches!(op, CompareOp::Eq | CompareOp::Ne);
    let codes = |choices: &[Choice]| choices.iter().map(|c| c.code.clone()).collect::<Vec<_>>();
    match (kind, value) {
        (QuestionKind::MultipleChoice { .. }, _) => {
            Some("a multiple_choice answer is tested with \"code\" in question".into())
        }
        (QuestionKind::Matrix { .. }, _) if !row => {
            Some("compare one row of a matrix: question.row == \"code\"".into())
        }
        (QuestionKind::Integer { .. } | QuestionKind::Decimal { .. }, Literal::Number(_)) => None,
        (QuestionKind::Integer { .. } | QuestionKind::Decimal { .. }, _) => {
            Some("a number question is compared with a number".into())
        }
        (_, Literal::Number(_)) => Some("only number questions compare with numbers".into()),
        (QuestionKind::YesNo, Literal::Bool(_)) if !ordering => None,
        (QuestionKind::YesNo, Literal::Text(t)) if !ordering && (t == "yes" || t == "no") => None,
        (QuestionKind::YesNo, _) => {
            Some("a yes_no answer is compared with == or != to true/false or \"yes\"/\"no\"".into())
        }
        (_, Literal::Bool(_)) => Some("only yes_no questions compare with true/false".into()),
        (QuestionKind::SingleChoice { options, other }, Literal::Text(t)) => {
            let mut valid = codes(options);
            if *other {
                valid.push(OTHER_CODE.into());
            }
            (!valid.contains(t)).then(|| {
                format!(
                    "'{t}' is not an option (expected one of: {})",
                    valid.join(", ")
                )
            })
        }
        (QuestionKind::Matrix { scale, .. }, Literal::Text(t)) => {
            let valid = codes(scale);
            (!valid.contains(t)).then(|| {
                format!(
                    "'{t}' is not on the scale (expected one of: {})",
                    valid.join(", ")
                )
            })
        }
        (QuestionKind::Date { .. }, Literal::Text(t)) => NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .is_err()
            .then(|| format!("'{t}' is not a date (YYYY-MM-DD)")),
        (_, Literal::Text(_)) if ordering => {
            Some("ordering comparisons need a number or date question".into())
        }
        _ => None,
    }
}

fn check_identifier(cx: &mut Cx, id: &Spanned<String>, what: &str) {
    let s = id.get_ref();
    let valid = !s.is_empty()
        && s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !valid {
        cx.error(
            id.span(),
            format!(
                "{what} '{s}' must start with a lower-case letter and use only a-z, 0-9, '_' and '-' (at most 64)"
            ),
        );
    }
}

/// Warnings for texts missing in a language the survey declares.
pub fn translation_warnings(survey: &Survey) -> Vec<String> {
    let mut out = Vec::new();
    for lang in survey.languages.iter().filter(|l| *l != "en") {
        let mut missing = 0usize;
        let mut count = |t: &Text| {
            if !t.has(lang) {
                missing += 1;
            }
        };
        count(&survey.title);
        for s in &survey.sections {
            count(&s.title);
            for q in &s.questions {
                count(&q.text);
                if let Some(h) = &q.help {
                    count(h);
                }
                for o in q.kind.options() {
                    count(&o.label);
                }
            }
        }
        if missing > 0 {
            out.push(format!(
                "{}: {missing} texts have no '{lang}' translation (English is shown instead)",
                survey.id
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A survey whose only question has the given `show_if` line (line 10 of the file).
    fn with_show_if(line: &str) -> String {
        format!(
            "id = \"s\"\ntitle = \"T\"\n[[sections]]\nid = \"a\"\ntitle = \"A\"\n\
             [[sections.questions]]\nid = \"q\"\ntype = \"yes_no\"\ntext = \"Q\"\n{line}\n"
        )
    }

    /// The one diagnostic of a file: line, column and message.
    fn only_error(source: &str) -> (usize, usize, String) {
        let (survey, diagnostics) = parse_survey("t.toml", source);
        assert!(survey.is_none());
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        let d = &diagnostics[0];
        (d.line, d.column, d.message.clone())
    }

    #[test]
    fn show_if_offsets_with_escapes_do_not_split_characters() {
        // Found by fuzzing (fuzz/corpus/survey_file/regression-show-if-escapes): the offset of
        // a problem inside a show_if was added to the string's place in the file, but escapes
        // make the file longer than the expression, so the sum fell inside the 'é' (a panic
        // slicing the source) or on a wrong column.
        let (line, column, message) = only_error(&with_show_if(r#"show_if = "\t\t'éééé'!""#));
        assert_eq!((line, column), (10, 11), "{message}");
        assert!(message.contains("does not parse"), "{message}");
        // Over several lines, the same: shown at the string's start.
        let (line, column, message) = only_error(&with_show_if("show_if = \"\"\"\nq ==\né\"\"\""));
        assert_eq!((line, column), (10, 11), "{message}");
        // Written as is, in either kind of quotes, the problem is pointed at exactly.
        for quoted in [r#""q == true and""#, "'q == true and'"] {
            let (line, column, message) = only_error(&with_show_if(&format!("show_if = {quoted}")));
            assert_eq!((line, column), (10, 25), "{message}");
        }
    }
}

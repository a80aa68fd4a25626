//! The survey definition as the rest of the program sees it: checked, typed, HTTP- and SQL-free.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::condition::Condition;
use super::population::Population;

/// Languages a survey text may be given in: the UN's six official languages.
pub const LANGUAGES: &[&str] = &["en", "fr", "es", "ar", "zh", "ru"];

/// A text in several languages; English is always present.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Text(pub BTreeMap<String, String>);

impl Text {
    pub fn english(s: impl Into<String>) -> Text {
        Text(BTreeMap::from([("en".to_string(), s.into())]))
    }

    /// The text in `lang`, or in English where that translation is missing.
    pub fn get(&self, lang: &str) -> &str {
        self.0
            .get(lang)
            .or_else(|| self.0.get("en"))
            .map(String::as_str)
            .unwrap_or("")
    }

    pub fn has(&self, lang: &str) -> bool {
        self.0.contains_key(lang)
    }
}

#[derive(Debug, Clone)]
pub struct Survey {
    pub id: String,
    pub title: Text,
    pub description: Option<Text>,
    pub languages: Vec<String>,
    pub opens: Option<DateTime<Utc>>,
    pub closes: Option<DateTime<Utc>>,
    /// Who answers: one response per country, or one per organisation of a country.
    pub unit: RespondentUnit,
    /// The countries asked: responses from any other country are refused and never counted.
    pub population: Population,
    /// Whether a coordinator sends the response to the country's approver, whose sign-off
    /// submits it, instead of submitting it directly.
    pub sign_off: bool,
    pub themes: Vec<Theme>,
    pub sections: Vec<Section>,
    /// The round this survey follows, whose answers pre-fill a country's new response.
    pub previous: Option<PreviousRound>,
    /// SHA-256 of the file's bytes: the version a response was answered against.
    pub version: String,
    pub source: String,
    pub path: String,
    /// What the file says became of earlier ids: `[[renamed]]` questions and options' `was`.
    pub renamed: Renames,
}

/// How the ids of an earlier version of the file map to this one's, so that stored answers
/// follow a question or an option whose id changed during a round.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Renames {
    /// `(from, to)`: the old question id and the question now holding its answers.
    pub questions: Vec<(String, String)>,
    /// Per (new) question id: old code -> new code, of choice options and matrix scale entries
    /// (the values stored in answers).
    pub options: BTreeMap<String, BTreeMap<String, String>>,
    /// Per (new) question id: old row code -> new row code, of matrix rows.
    pub rows: BTreeMap<String, BTreeMap<String, String>>,
}

impl Renames {
    /// The question an old id now stands for: its `to`, else the same id.
    pub fn question<'a>(&'a self, old: &'a str) -> &'a str {
        self.questions
            .iter()
            .find(|(from, _)| from == old)
            .map_or(old, |(_, to)| to.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.questions.is_empty() && self.options.is_empty() && self.rows.is_empty()
    }
}

/// A place in a survey file, kept for problems only found once other files are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Place {
    pub line: usize,
    pub column: usize,
}

/// The round a survey follows (`previous = "..."`): a country's response to this survey starts
/// from its last accepted (else last submitted) response to that one.
#[derive(Debug, Clone)]
pub struct PreviousRound {
    /// The previous round's survey id.
    pub survey: String,
    pub at: Place,
    /// Whether every carried answer must be confirmed "still accurate" or changed before the
    /// response can be submitted (`confirm_carried`, true unless set to false).
    pub confirm_carried: bool,
    /// The `[[carry]]` mappings as written.
    pub rules: Vec<CarryRule>,
    /// Questions asked afresh each round even though the previous round had them
    /// (`not_carried = [...]`: the date of the reply, who filled it in).
    pub not_carried: Vec<String>,
    pub not_carried_at: Vec<Place>,
    /// What carries into which question, worked out once the previous survey is loaded
    /// (see [`crate::survey::rounds::plan`]).
    pub plan: crate::survey::rounds::CarryPlan,
    /// The previous round's survey as loaded with this one (None until then).
    pub definition: Option<std::sync::Arc<Survey>>,
}

/// One `[[carry]]` mapping: a question of the previous round whose id, options or scale
/// changed, and where its answers go in this one.
#[derive(Debug, Clone, PartialEq)]
pub struct CarryRule {
    pub from: String,
    pub to: String,
    /// Old option (or matrix scale) code -> new code; `""` means "not carried".
    pub options: BTreeMap<String, String>,
    /// Old matrix row code -> new row code; `""` means "not carried".
    pub rows: BTreeMap<String, String>,
    pub from_at: Place,
    pub to_at: Place,
    pub options_at: Place,
    pub rows_at: Place,
}

/// What one response stands for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RespondentUnit {
    /// The country's government: one response per country, shared by its officials.
    #[default]
    Country,
    /// An organisation of a country (a ministry, an agency, a local authority): one response
    /// per organisation, named by the contact's office or the link's `--unit`.
    Organisation,
}

impl RespondentUnit {
    pub fn parse(s: &str) -> Option<RespondentUnit> {
        match s {
            "country" => Some(RespondentUnit::Country),
            "organisation" => Some(RespondentUnit::Organisation),
            _ => None,
        }
    }

    pub fn is_country(self) -> bool {
        self == RespondentUnit::Country
    }
}

/// How a response is named to people: the country, or "organisation, country".
pub fn respondent_name(unit: &str, country: &str) -> String {
    if unit.is_empty() {
        country.to_string()
    } else {
        format!("{unit}, {country}")
    }
}

#[derive(Debug, Clone)]
pub struct Theme {
    pub id: String,
    pub label: Text,
}

#[derive(Debug, Clone)]
pub struct Section {
    pub id: String,
    pub title: Text,
    pub intro: Option<Text>,
    pub show_if: Option<Condition>,
    pub questions: Vec<Question>,
}

#[derive(Debug, Clone)]
pub struct Question {
    pub id: String,
    pub text: Text,
    pub help: Option<Text>,
    pub required: bool,
    pub show_if: Option<Condition>,
    pub kind: QuestionKind,
    pub marker: Option<Marker>,
    /// The honest non-answers this question accepts in place of an answer.
    pub escapes: Escapes,
}

/// "Not known" and "not applicable": answers a respondent may give instead of a value, kept
/// distinct from an empty answer everywhere (stored, shown, counted and exported as such).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Escapes {
    pub not_known: Option<Escape>,
    pub not_applicable: Option<Escape>,
}

impl Escapes {
    pub fn any(&self) -> bool {
        self.not_known.is_some() || self.not_applicable.is_some()
    }

    pub fn get(&self, kind: EscapeKind) -> Option<&Escape> {
        match kind {
            EscapeKind::NotKnown => self.not_known.as_ref(),
            EscapeKind::NotApplicable => self.not_applicable.as_ref(),
        }
    }
}

/// How one non-answer is allowed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Escape {
    /// Whether the respondent must say why (a short reason).
    pub reason_required: bool,
}

/// Which non-answer was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EscapeKind {
    NotKnown,
    NotApplicable,
}

impl EscapeKind {
    pub const ALL: [EscapeKind; 2] = [EscapeKind::NotKnown, EscapeKind::NotApplicable];

    /// The code used in forms, files and exports: `not_known`, `not_applicable`.
    pub fn code(self) -> &'static str {
        match self {
            EscapeKind::NotKnown => "not_known",
            EscapeKind::NotApplicable => "not_applicable",
        }
    }

    pub fn parse(code: &str) -> Option<EscapeKind> {
        EscapeKind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The answer item that stores it (its value is the reason, possibly empty).
    pub fn item(self) -> &'static str {
        match self {
            EscapeKind::NotKnown => "#not_known",
            EscapeKind::NotApplicable => "#not_applicable",
        }
    }

    pub fn of_item(item: &str) -> Option<EscapeKind> {
        EscapeKind::ALL.into_iter().find(|k| k.item() == item)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub code: String,
    pub label: Text,
    /// For theme pickers and capacity-need lists: the theme this option stands for.
    pub theme: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum QuestionKind {
    ShortText {
        min_length: Option<usize>,
        max_length: usize,
    },
    LongText {
        min_length: Option<usize>,
        max_length: usize,
    },
    SingleChoice {
        options: Vec<Choice>,
        other: bool,
    },
    MultipleChoice {
        options: Vec<Choice>,
        other: bool,
        min_selections: Option<usize>,
        max_selections: Option<usize>,
    },
    YesNo,
    Integer {
        min: Option<i64>,
        max: Option<i64>,
    },
    Decimal {
        min: Option<f64>,
        max: Option<f64>,
    },
    Date {
        min: Option<NaiveDate>,
        max: Option<NaiveDate>,
    },
    Matrix {
        rows: Vec<Choice>,
        scale: Vec<Choice>,
    },
    Country,
    Email,
    Url,
    /// A share from 0 to 100, written with or without "%" and with a decimal point or comma;
    /// stored as a number, shown with "%".
    Percentage,
    /// Evidence: up to `max_files` documents of `max_size_mb` each, of the `accept`ed types.
    File {
        max_files: usize,
        max_size_mb: u32,
        accept: Vec<FileType>,
    },
}

/// A kind of document a file question accepts, recognised from its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileType {
    Pdf,
    Docx,
    Xlsx,
    Odt,
    Ods,
    Csv,
    Png,
    Jpeg,
}

impl FileType {
    pub const ALL: [FileType; 8] = [
        FileType::Pdf,
        FileType::Docx,
        FileType::Xlsx,
        FileType::Odt,
        FileType::Ods,
        FileType::Csv,
        FileType::Png,
        FileType::Jpeg,
    ];

    /// The code used in survey files and stored with each file.
    pub fn code(self) -> &'static str {
        match self {
            FileType::Pdf => "pdf",
            FileType::Docx => "docx",
            FileType::Xlsx => "xlsx",
            FileType::Odt => "odt",
            FileType::Ods => "ods",
            FileType::Csv => "csv",
            FileType::Png => "png",
            FileType::Jpeg => "jpeg",
        }
    }

    pub fn parse(code: &str) -> Option<FileType> {
        FileType::ALL.into_iter().find(|t| t.code() == code)
    }

    /// The file name extensions that stand for this type.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            FileType::Pdf => &["pdf"],
            FileType::Docx => &["docx"],
            FileType::Xlsx => &["xlsx"],
            FileType::Odt => &["odt"],
            FileType::Ods => &["ods"],
            FileType::Csv => &["csv"],
            FileType::Png => &["png"],
            FileType::Jpeg => &["jpg", "jpeg"],
        }
    }

    /// The type a file name's extension claims, if any.
    pub fn of_name(name: &str) -> Option<FileType> {
        let (_, ext) = name.rsplit_once('.')?;
        let ext = ext.to_ascii_lowercase();
        FileType::ALL
            .into_iter()
            .find(|t| t.extensions().contains(&ext.as_str()))
    }

    /// The media type a download is labelled with.
    pub fn media_type(self) -> &'static str {
        match self {
            FileType::Pdf => "application/pdf",
            FileType::Docx => {
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            }
            FileType::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            FileType::Odt => "application/vnd.oasis.opendocument.text",
            FileType::Ods => "application/vnd.oasis.opendocument.spreadsheet",
            FileType::Csv => "text/csv",
            FileType::Png => "image/png",
            FileType::Jpeg => "image/jpeg",
        }
    }
}

/// Which list of a question a code belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OptionList {
    /// A choice question's options.
    Options,
    /// A matrix's rows.
    Rows,
    /// A matrix's scale.
    Scale,
}

impl OptionList {
    pub fn name(self) -> &'static str {
        match self {
            OptionList::Options => "option",
            OptionList::Rows => "row",
            OptionList::Scale => "scale entry",
        }
    }
}

/// Defaults of a file question: a few documents of a reasonable size, of every type.
pub const DEFAULT_MAX_FILES: usize = 5;
pub const DEFAULT_MAX_SIZE_MB: u32 = 10;
/// The largest a survey may allow, per file and per question.
pub const MAX_FILES_LIMIT: usize = 20;
pub const MAX_SIZE_MB_LIMIT: u32 = 50;

/// The code stored for the "other, please specify" option of a choice question.
pub const OTHER_CODE: &str = "other";
/// Default bound on free text, so a draft cannot grow without limit.
pub const DEFAULT_SHORT_MAX: usize = 500;
pub const DEFAULT_LONG_MAX: usize = 10_000;

impl QuestionKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            QuestionKind::ShortText { .. } => "short_text",
            QuestionKind::LongText { .. } => "long_text",
            QuestionKind::SingleChoice { .. } => "single_choice",
            QuestionKind::MultipleChoice { .. } => "multiple_choice",
            QuestionKind::YesNo => "yes_no",
            QuestionKind::Integer { .. } => "integer",
            QuestionKind::Decimal { .. } => "decimal",
            QuestionKind::Date { .. } => "date",
            QuestionKind::Matrix { .. } => "matrix",
            QuestionKind::Country => "country",
            QuestionKind::Email => "email",
            QuestionKind::Url => "url",
            QuestionKind::Percentage => "percentage",
            QuestionKind::File { .. } => "file",
        }
    }

    /// The entries of one of the question's lists of codes (empty when it has no such list).
    pub fn choices(&self, list: OptionList) -> &[Choice] {
        match (self, list) {
            (QuestionKind::Matrix { rows, .. }, OptionList::Rows) => rows,
            (QuestionKind::Matrix { scale, .. }, OptionList::Scale) => scale,
            (_, OptionList::Options) => self.options(),
            (_, OptionList::Rows | OptionList::Scale) => &[],
        }
    }

    /// Whether `code` is a code of that list: one of its entries, or `other` for a choice
    /// with an "other" box.
    pub fn has_code(&self, list: OptionList, code: &str) -> bool {
        self.choices(list).iter().any(|c| c.code == code)
            || (list == OptionList::Options && self.has_other() && code == OTHER_CODE)
    }

    pub fn options(&self) -> &[Choice] {
        match self {
            QuestionKind::SingleChoice { options, .. }
            | QuestionKind::MultipleChoice { options, .. } => options,
            QuestionKind::ShortText { .. }
            | QuestionKind::LongText { .. }
            | QuestionKind::YesNo
            | QuestionKind::Integer { .. }
            | QuestionKind::Decimal { .. }
            | QuestionKind::Date { .. }
            | QuestionKind::Matrix { .. }
            | QuestionKind::Country
            | QuestionKind::Email
            | QuestionKind::Url
            | QuestionKind::Percentage
            | QuestionKind::File { .. } => &[],
        }
    }

    /// Whether answers are numbers (stored with their value in `num`, summed and averaged in
    /// results, written as numbers in spreadsheets).
    pub fn is_numeric(&self) -> bool {
        match self {
            QuestionKind::Integer { .. }
            | QuestionKind::Decimal { .. }
            | QuestionKind::Percentage => true,
            QuestionKind::ShortText { .. }
            | QuestionKind::LongText { .. }
            | QuestionKind::SingleChoice { .. }
            | QuestionKind::MultipleChoice { .. }
            | QuestionKind::YesNo
            | QuestionKind::Date { .. }
            | QuestionKind::Matrix { .. }
            | QuestionKind::Country
            | QuestionKind::Email
            | QuestionKind::Url
            | QuestionKind::File { .. } => false,
        }
    }

    /// Whether answers are attached files (one item per file), not typed values.
    pub fn is_file(&self) -> bool {
        matches!(self, QuestionKind::File { .. })
    }

    pub fn has_other(&self) -> bool {
        matches!(
            self,
            QuestionKind::SingleChoice { other: true, .. }
                | QuestionKind::MultipleChoice { other: true, .. }
        )
    }
}

/// What an answer stands for in the results: a good practice or a capacity-building need.
#[derive(Debug, Clone, PartialEq)]
pub enum Marker {
    GoodPractice {
        /// Fixed themes, and/or a multiple-choice question whose selected options carry themes.
        themes: Vec<String>,
        themes_from: Option<String>,
        /// The yes/no question saying whether the practice may be cited with the country's name.
        cite_question: Option<String>,
        /// Other answers shown with the practice in the compendium (title, partners...).
        related: Vec<String>,
    },
    CapacityNeed {
        themes: Vec<String>,
        level: Option<NeedLevel>,
        /// A question (matrix row per option, or single choice) giving the need's priority.
        priority_question: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeedLevel {
    Policy,
    Institutional,
}

impl Survey {
    pub fn section(&self, id: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.id == id)
    }

    pub fn question(&self, id: &str) -> Option<&Question> {
        self.questions().find(|q| q.id == id)
    }

    pub fn questions(&self) -> impl Iterator<Item = &Question> {
        self.sections.iter().flat_map(|s| s.questions.iter())
    }

    pub fn is_closed(&self, now: DateTime<Utc>) -> bool {
        self.closes.is_some_and(|c| now > c)
    }

    pub fn is_open_yet(&self, now: DateTime<Utc>) -> bool {
        self.opens.is_none_or(|o| now >= o)
    }
}

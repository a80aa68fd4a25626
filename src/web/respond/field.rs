//! One question on a section page: the view the field partial (`templates/respond/field.hbs`)
//! renders. The question's kind decides the control, in [`FieldKind::of`]'s one `match`: a new
//! question type is a compiler error there.

use std::borrow::Cow;

use serde::Serialize;

use crate::i18n::format_number;
use crate::survey::answer::{FileItem, Item, RawAnswer};
use crate::survey::display::escape_label_id;
use crate::survey::{Choice, EscapeKind, Escapes, FileType, Question, QuestionKind, OTHER_CODE};
use crate::web::render::{translate, Fragment};
use crate::web::CountryOptions;

#[derive(Serialize)]
pub struct FieldView<'a> {
    pub id: &'a str,
    pub text: &'a str,
    pub help: Option<&'a str>,
    pub required: bool,
    /// The translated message of a value that did not validate.
    pub error: Option<String>,
    /// Groups of controls (choices, matrices) are a fieldset with a legend; a single control
    /// has a label.
    pub fieldset: bool,
    /// Serialised externally tagged: the template tests `kind.short`, `kind.choice`...
    pub kind: FieldKind<'a>,
    /// "Answer" / "Not known" / "Not applicable" and a reason, where the question allows them.
    pub escape: Option<EscapeChoice>,
    /// The answer came from the previous round: its mark and "still accurate" box.
    pub carried: Option<CarriedMark>,
}

/// A question whose answer was carried from the previous round: marked so, with the box
/// `<id>.confirm` ("still accurate"), and, once the answer differs from the one carried, the
/// previous round's answer beside it.
#[derive(Serialize)]
pub struct CarriedMark {
    /// The box is ticked: someone of the country said the answer is still accurate.
    pub confirmed: bool,
    /// The answer differs from the one carried.
    pub changed: bool,
    /// The answer as carried, as text (shown when it was changed).
    pub previous: String,
}

/// The radio group `<id>.escape` beside the field, and the reason box `<id>.reason`.
#[derive(Serialize)]
pub struct EscapeChoice {
    pub options: Vec<EscapeOption>,
    pub reason: String,
    pub reason_max: usize,
    /// Which non-answers need a reason, when some do.
    pub reason_hint: Option<String>,
}

#[derive(Serialize)]
pub struct EscapeOption {
    /// `answer`, `not_known`, `not_applicable`.
    pub code: &'static str,
    pub label: String,
    pub checked: bool,
}

impl EscapeChoice {
    fn new(escapes: &Escapes, raw: &RawAnswer, lang: &str) -> Option<EscapeChoice> {
        if !escapes.any() {
            return None;
        }
        let picked = raw.escape.as_deref().and_then(EscapeKind::parse);
        let allowed: Vec<(EscapeKind, bool)> = EscapeKind::ALL
            .into_iter()
            .filter_map(|k| escapes.get(k).map(|e| (k, e.reason_required)))
            .collect();
        let mut options = vec![EscapeOption {
            code: "answer",
            label: translate(lang, "escape-answer", &[]),
            checked: picked.is_none_or(|p| !allowed.iter().any(|(k, _)| *k == p)),
        }];
        options.extend(allowed.iter().map(|(k, _)| EscapeOption {
            code: k.code(),
            label: translate(lang, escape_label_id(*k), &[]),
            checked: picked == Some(*k),
        }));
        let needing: Vec<String> = allowed
            .iter()
            .filter(|(_, required)| *required)
            .map(|(k, _)| translate(lang, escape_label_id(*k), &[]))
            .collect();
        Some(EscapeChoice {
            options,
            reason: raw.reason.clone().unwrap_or_default(),
            reason_max: crate::survey::answer::REASON_MAX,
            reason_hint: (!needing.is_empty()).then(|| {
                translate(
                    lang,
                    "escape-reason-required",
                    &[("escapes", needing.join(", "))],
                )
            }),
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind<'a> {
    /// A one-line input.
    Short {
        input_type: &'static str,
        /// Numbers are text inputs with an input mode: number inputs would reject "1 500"
        /// before the server could explain why.
        inputmode: Option<&'static str>,
        maxlength: Option<usize>,
        value: String,
    },
    Long {
        maxlength: usize,
        value: String,
    },
    /// A share from 0 to 100: a decimal input followed by "%".
    Percent {
        value: String,
    },
    /// The country list, rendered once per language at start.
    Select {
        options_html: String,
    },
    /// Radio buttons or checkboxes.
    Choice {
        multiple: bool,
        input_type: &'static str,
        options: Vec<ChoiceOption<'a>>,
        other: Option<OtherBox>,
    },
    Matrix {
        rows: Vec<MatrixRow<'a>>,
        scale: Vec<ScalePoint<'a>>,
    },
    /// The attached files (each with a remove box and a download link) and a file input.
    File {
        files: Vec<AttachedFile>,
        /// The `accept` attribute: the extensions of the accepted types.
        accept: String,
        /// What may be attached, said in words ("PDF, DOCX; at most 5 files of 10 MB").
        limits: String,
        /// Whether another file may still be attached.
        room: bool,
    },
}

/// A file already attached to a file question.
#[derive(Serialize)]
pub struct AttachedFile {
    pub id: String,
    pub name: String,
    pub size: String,
}

#[derive(Serialize)]
pub struct ChoiceOption<'a> {
    pub code: &'a str,
    pub label: Cow<'a, str>,
    pub checked: bool,
}

/// The "other, please specify" box of a choice.
#[derive(Serialize)]
pub struct OtherBox {
    pub value: String,
}

#[derive(Serialize)]
pub struct MatrixRow<'a> {
    pub code: &'a str,
    pub label: &'a str,
    pub cells: Vec<MatrixCell<'a>>,
}

#[derive(Serialize)]
pub struct MatrixCell<'a> {
    pub code: &'a str,
    pub checked: bool,
}

#[derive(Serialize)]
pub struct ScalePoint<'a> {
    pub code: &'a str,
    pub label: &'a str,
}

impl<'a> FieldView<'a> {
    /// `stored`: the question's saved items, which a file question shows whatever was posted.
    pub fn new(
        q: &'a Question,
        raw: &RawAnswer,
        stored: &[Item],
        error: Option<String>,
        lang: &str,
        countries: &CountryOptions,
    ) -> FieldView<'a> {
        let kind = match &q.kind {
            QuestionKind::File {
                max_files,
                max_size_mb,
                accept,
            } => file_field(stored, *max_files, *max_size_mb, accept, lang),
            _ => FieldKind::of(&q.kind, raw, lang, countries),
        };
        FieldView {
            id: &q.id,
            text: q.text.get(lang),
            help: q.help.as_ref().map(|h| h.get(lang)),
            required: q.required,
            error,
            fieldset: kind.is_group(),
            kind,
            escape: EscapeChoice::new(&q.escapes, raw, lang),
            carried: None,
        }
    }

    /// Marked as carried from the previous round.
    pub fn with_carried(mut self, mark: CarriedMark) -> Self {
        self.carried = Some(mark);
        self
    }
}

impl<'a> FieldKind<'a> {
    /// The control for a question of `kind`, showing `raw`.
    pub fn of(
        kind: &'a QuestionKind,
        raw: &RawAnswer,
        lang: &str,
        countries: &CountryOptions,
    ) -> FieldKind<'a> {
        let value = raw.first().to_string();
        let short = |input_type, inputmode, maxlength, value| FieldKind::Short {
            input_type,
            inputmode,
            maxlength,
            value,
        };
        match kind {
            QuestionKind::ShortText { max_length, .. } => {
                short("text", None, Some(*max_length), value)
            }
            QuestionKind::LongText { max_length, .. } => FieldKind::Long {
                maxlength: *max_length,
                value,
            },
            QuestionKind::Email => short("email", None, None, value),
            QuestionKind::Url => short("url", None, None, value),
            QuestionKind::Date { .. } => short("date", None, None, value),
            QuestionKind::Integer { .. } => short("text", Some("numeric"), None, value),
            QuestionKind::Decimal { .. } => {
                let shown = format_number(lang, raw.first());
                short("text", Some("decimal"), None, shown)
            }
            QuestionKind::Percentage => FieldKind::Percent {
                value: format_number(lang, raw.first()),
            },
            QuestionKind::Country => FieldKind::Select {
                options_html: countries.options_html(lang, raw.first()),
            },
            QuestionKind::YesNo => FieldKind::Choice {
                multiple: false,
                input_type: "radio",
                options: ["yes", "no"]
                    .into_iter()
                    .map(|code| ChoiceOption {
                        code,
                        label: Cow::Owned(translate(lang, code, &[])),
                        checked: raw.first() == code,
                    })
                    .collect(),
                other: None,
            },
            QuestionKind::SingleChoice { options, other } => {
                choices(options, *other, false, raw, lang)
            }
            QuestionKind::MultipleChoice { options, other, .. } => {
                choices(options, *other, true, raw, lang)
            }
            QuestionKind::Matrix { rows, scale } => FieldKind::Matrix {
                rows: rows
                    .iter()
                    .map(|r| {
                        let selected = raw.rows.get(&r.code);
                        MatrixRow {
                            code: &r.code,
                            label: r.label.get(lang),
                            cells: scale
                                .iter()
                                .map(|s| MatrixCell {
                                    code: &s.code,
                                    checked: selected == Some(&s.code),
                                })
                                .collect(),
                        }
                    })
                    .collect(),
                scale: scale
                    .iter()
                    .map(|s| ScalePoint {
                        code: &s.code,
                        label: s.label.get(lang),
                    })
                    .collect(),
            },
            // Built from the stored files by `file_field`; a file question never reaches here.
            QuestionKind::File {
                max_files,
                max_size_mb,
                accept,
            } => file_field(&[], *max_files, *max_size_mb, accept, lang),
        }
    }

    fn is_group(&self) -> bool {
        match self {
            FieldKind::Choice { .. } | FieldKind::Matrix { .. } | FieldKind::File { .. } => true,
            FieldKind::Short { .. }
            | FieldKind::Long { .. }
            | FieldKind::Percent { .. }
            | FieldKind::Select { .. } => false,
        }
    }
}

/// A file question's control: the files attached so far and room for one more.
fn file_field<'a>(
    stored: &[Item],
    max_files: usize,
    max_size_mb: u32,
    accept: &[FileType],
    lang: &str,
) -> FieldKind<'a> {
    let files: Vec<AttachedFile> = FileItem::all(stored)
        .into_iter()
        .map(|f| AttachedFile {
            size: crate::files::human_size(lang, f.size),
            id: f.id,
            name: f.name,
        })
        .collect();
    let extensions: Vec<String> = accept
        .iter()
        .flat_map(|t| t.extensions().iter().map(|e| format!(".{e}")))
        .collect();
    let types: Vec<String> = accept
        .iter()
        .map(|t| t.code().to_ascii_uppercase())
        .collect();
    let limits = translate(
        lang,
        "file-limits",
        &[
            ("types", types.join(", ")),
            ("count", max_files.to_string()),
            ("size", max_size_mb.to_string()),
        ],
    );
    FieldKind::File {
        room: files.len() < max_files,
        files,
        accept: extensions.join(","),
        limits,
    }
}

fn choices<'a>(
    options: &'a [Choice],
    other: bool,
    multiple: bool,
    raw: &RawAnswer,
    lang: &str,
) -> FieldKind<'a> {
    let mut list: Vec<ChoiceOption> = options
        .iter()
        .map(|o| ChoiceOption {
            code: &o.code,
            label: Cow::Borrowed(o.label.get(lang)),
            checked: raw.values.contains(&o.code),
        })
        .collect();
    if other {
        list.push(ChoiceOption {
            code: OTHER_CODE,
            label: Cow::Owned(translate(lang, "other-option", &[])),
            checked: raw.values.iter().any(|v| v == OTHER_CODE),
        });
    }
    FieldKind::Choice {
        multiple,
        input_type: if multiple { "checkbox" } else { "radio" },
        options: list,
        other: other.then(|| OtherBox {
            value: raw.other.clone().unwrap_or_default(),
        }),
    }
}

/// A field is rendered from a skeleton per question, language and shape: everything but the
/// answer, the error and the marks is the question's (see [`crate::web::render::Templates::render_fragment`]).
impl Fragment for FieldView<'_> {
    fn shape(&self, shape: &mut Vec<u8>) {
        let flag = |shape: &mut Vec<u8>, b: bool| shape.push(u8::from(b));
        flag(shape, self.error.is_some());
        match &self.kind {
            FieldKind::Short { .. } => shape.push(b's'),
            FieldKind::Long { .. } => shape.push(b'l'),
            FieldKind::Percent { .. } => shape.push(b'p'),
            FieldKind::Select { .. } => shape.push(b'c'),
            FieldKind::Choice { options, .. } => {
                shape.push(b'o');
                shape.extend(options.iter().map(|o| u8::from(o.checked)));
            }
            FieldKind::Matrix { rows, .. } => {
                shape.push(b'm');
                for r in rows {
                    shape.extend(r.cells.iter().map(|c| u8::from(c.checked)));
                    shape.push(b'/');
                }
            }
            FieldKind::File { files, room, .. } => {
                shape.push(b'f');
                shape.extend_from_slice(&files.len().to_le_bytes());
                flag(shape, *room);
            }
        }
        match &self.escape {
            None => shape.push(b'-'),
            Some(e) => {
                shape.push(b'e');
                shape.extend(e.options.iter().map(|o| u8::from(o.checked)));
            }
        }
        match &self.carried {
            None => shape.push(b'-'),
            Some(c) => shape.extend([b'c', u8::from(c.confirmed), u8::from(c.changed)]),
        }
    }

    fn per_request(&mut self) -> Vec<&mut String> {
        let mut out = Vec::new();
        if let Some(e) = &mut self.error {
            out.push(e);
        }
        match &mut self.kind {
            FieldKind::Short { value, .. }
            | FieldKind::Long { value, .. }
            | FieldKind::Percent { value } => out.push(value),
            FieldKind::Select { options_html } => out.push(options_html),
            FieldKind::Choice { other, .. } => {
                if let Some(o) = other {
                    out.push(&mut o.value);
                }
            }
            FieldKind::Matrix { .. } => {}
            FieldKind::File { files, .. } => {
                for f in files {
                    out.extend([&mut f.id, &mut f.name, &mut f.size]);
                }
            }
        }
        if let Some(e) = &mut self.escape {
            out.push(&mut e.reason);
        }
        if let Some(c) = &mut self.carried {
            out.push(&mut c.previous);
        }
        out
    }
}

/// What keys a question's skeletons besides its shape: the survey's version, the question,
/// the language.
pub fn fragment_key(survey: &crate::survey::Survey, q: &Question, lang: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(survey.version.len() + survey.id.len() + q.id.len() + 8);
    for part in [&survey.version, &survey.id, &q.id] {
        key.extend_from_slice(part.as_bytes());
        key.push(0);
    }
    key.extend_from_slice(lang.as_bytes());
    key
}

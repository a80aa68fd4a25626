//! The walk over a survey document: the survey's own keys, themes, sections and questions.

use std::collections::HashSet;

use sha2::{Digest, Sha256};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::escapes::ESCAPE_KEYS;
use super::population::population;
use super::references::{check_identifier, PendingRef};
use super::table::{Table, Value};
use super::Cx;
use crate::survey::model::*;

const SURVEY_KEYS: &[&str] = &[
    "id",
    "title",
    "description",
    "languages",
    "opens",
    "closes",
    "respondent_unit",
    "population",
    "sign_off",
    "not_known",
    "not_applicable",
    "previous",
    "confirm_carried",
    "carry",
    "not_carried",
    "themes",
    "sections",
    "renamed",
];
const THEME_KEYS: &[&str] = &["id", "label"];
const SECTION_KEYS: &[&str] = &["id", "title", "intro", "show_if", "questions"];
/// The keys that belong to some question types only; `rules.rs` says which to which.
pub(super) const TYPE_KEYS: [&str; 13] = [
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
    "max_files",
    "max_size_mb",
    "accept",
];
/// The keys that go with a `marker`; `rules.rs` says which to which marker.
pub(super) const MARKER_KEYS: [&str; 6] = [
    "themes",
    "themes_from",
    "cite_question",
    "related",
    "level",
    "priority_question",
];
/// Every key of a question, in the order the "allowed" message lists them.
const QUESTION_KEYS: &[&str] = &concat::<28>(&[
    &["id", "type", "text", "help", "required", "show_if"],
    &TYPE_KEYS,
    &["marker"],
    &MARKER_KEYS,
    &ESCAPE_KEYS,
]);

/// Key lists as one, at compile time (`N` must be their lengths added).
const fn concat<const N: usize>(parts: &[&[&'static str]]) -> [&'static str; N] {
    let mut out = [""; N];
    let (mut part, mut n) = (0, 0);
    while part < parts.len() {
        let mut i = 0;
        while i < parts[part].len() {
            out[n] = parts[part][i];
            (i, n) = (i + 1, n + 1);
        }
        part += 1;
    }
    assert!(n == N, "N must be the lengths of the parts added");
    out
}
pub(super) const CHOICE_KEYS: &[&str] = &["code", "label", "theme", "was"];

#[derive(Default)]
pub(super) struct Walker {
    /// Every question id in the file with its type, in document order (for show_if checks).
    pub(super) all_questions: Vec<(String, QuestionKind)>,
    pub(super) theme_ids: HashSet<String>,
    pub(super) pending: Vec<PendingRef>,
    /// The survey's `not_known`/`not_applicable`, which each question may override.
    pub(super) default_escapes: Escapes,
    /// Options' `was`, checked once every question is read (`renames.rs`).
    pub(super) was: Vec<super::renames::WasEntry>,
}

impl Walker {
    pub(super) fn survey(&mut self, cx: &mut Cx, doc: &DeTable, source: &str) -> Option<Survey> {
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
        let population = population(cx, &root, unit);
        let sign_off = root.bool(cx, "sign_off").unwrap_or(false);
        let previous = super::rounds::previous_round(cx, &root);
        self.default_escapes = self.escapes(cx, &root, &Escapes::default());
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
        let renamed = self.renames(cx, &root, &sections);

        Some(Survey {
            id: id?.into_inner(),
            title: title?,
            description,
            languages,
            opens,
            closes,
            unit,
            population: population?,
            sign_off,
            themes,
            sections,
            previous,
            version: hex::encode(Sha256::digest(source.as_bytes())),
            source: source.to_string(),
            path: cx.file.to_string(),
            renamed,
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
        // Evidence is attached or not: a file question is simply left empty, so it takes no
        // non-answer (the survey's default passes it by; its own setting is an error).
        let escapes = if kind.is_file() {
            for key in ESCAPE_KEYS {
                if let Some(v) = t.get(key) {
                    cx.error(
                        v.span(),
                        format!("a file question takes no '{key}': leave it unanswered instead"),
                    );
                }
            }
            Escapes::default()
        } else {
            self.escapes(cx, &t, &self.default_escapes)
        };
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
            escapes,
        })
    }
}

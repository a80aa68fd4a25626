//! Translatable texts: read from a file, and the warnings for missing translations.

use toml::de::DeValue;

use super::table::Table;
use super::Cx;
use crate::survey::model::*;

impl Table<'_, '_> {
    /// A translatable text: a plain string (English) or a table `{ en = "...", fr = "..." }`.
    pub(super) fn text(&self, cx: &mut Cx, key: &str, required: bool) -> Option<Text> {
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

//! Each question type's rules: which keys apply, bounds, options, rows and scales; and the
//! markers (good practice, capacity need) a question may carry.

use std::collections::HashSet;

use toml::Spanned;

use super::references::{check_identifier, Expect, PendingRef};
use super::table::Table;
use super::walk::{Walker, CHOICE_KEYS, MARKER_KEYS, TYPE_KEYS};
use super::Cx;
use crate::survey::model::*;

impl Walker {
    pub(super) fn kind(&mut self, cx: &mut Cx, t: &Table) -> Option<QuestionKind> {
        let type_name = t.required_string(cx, "type")?;
        // Which keys belong to which type, so a stray `options` on an integer is reported.
        let allowed: &[&str] = match type_name.get_ref().as_str() {
            "short_text" | "long_text" => &["min_length", "max_length"],
            "single_choice" => &["options", "other"],
            "multiple_choice" => &["options", "other", "min_selections", "max_selections"],
            "integer" | "decimal" | "date" => &["min", "max"],
            "matrix" => &["rows", "scale"],
            "file" => &["max_files", "max_size_mb", "accept"],
            "yes_no" | "country" | "email" | "url" | "percentage" => &[],
            other => {
                cx.error(
                    type_name.span(),
                    format!(
                        "unknown question type '{other}' (allowed: short_text, long_text, single_choice, multiple_choice, yes_no, integer, decimal, percentage, date, matrix, country, email, url, file)"
                    ),
                );
                return None;
            }
        };
        for key in &TYPE_KEYS {
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
            "percentage" => QuestionKind::Percentage,
            "file" => self.file_kind(cx, t),
            _ => return None,
        };
        Some(kind)
    }

    /// A file question: how many files, how large, of which types (defaults: 5 files of
    /// 10 MB, every type).
    fn file_kind(&mut self, cx: &mut Cx, t: &Table) -> QuestionKind {
        let mut max_files = t.count(cx, "max_files").unwrap_or(DEFAULT_MAX_FILES);
        if !(1..=MAX_FILES_LIMIT).contains(&max_files) {
            cx.error(
                t.key_span("max_files"),
                format!(
                    "max_files must be from 1 to {MAX_FILES_LIMIT} in {}",
                    t.what
                ),
            );
            max_files = DEFAULT_MAX_FILES;
        }
        let size = t
            .count(cx, "max_size_mb")
            .unwrap_or(DEFAULT_MAX_SIZE_MB as usize);
        let max_size_mb = match u32::try_from(size) {
            Ok(mb) if (1..=MAX_SIZE_MB_LIMIT).contains(&mb) => mb,
            _ => {
                cx.error(
                    t.key_span("max_size_mb"),
                    format!(
                        "max_size_mb must be from 1 to {MAX_SIZE_MB_LIMIT} in {}",
                        t.what
                    ),
                );
                DEFAULT_MAX_SIZE_MB
            }
        };
        let mut accept = Vec::new();
        let listed = t.string_list(cx, "accept");
        for code in &listed {
            match FileType::parse(code.get_ref()) {
                Some(ty) if !accept.contains(&ty) => accept.push(ty),
                Some(_) => cx.error(
                    code.span(),
                    format!("'{}' is listed twice in 'accept' of {}", code.get_ref(), t.what),
                ),
                None => cx.error(
                    code.span(),
                    format!(
                        "unknown file type '{}' in 'accept' of {} (allowed: pdf, docx, xlsx, odt, ods, csv, png, jpeg)",
                        code.get_ref(),
                        t.what
                    ),
                ),
            }
        }
        if t.get("accept").is_some() && listed.is_empty() {
            cx.error(
                t.key_span("accept"),
                format!("'accept' of {} lists no file type", t.what),
            );
        }
        if accept.is_empty() {
            accept = FileType::ALL.to_vec();
        }
        accept.sort();
        QuestionKind::File {
            max_files,
            max_size_mb,
            accept,
        }
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
            // `<question>.escape` and `<question>.reason` carry "not known"/"not applicable",
            // `<question>.confirm` says a carried answer is still accurate.
            if key == "rows" && ["escape", "reason", "confirm"].contains(&code.get_ref().as_str()) {
                cx.error(
                    code.span(),
                    format!(
                        "row code '{}' is reserved for the form's own fields in {}",
                        code.get_ref(),
                        t.what
                    ),
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
            self.read_was(cx, t, key, code.get_ref(), &c);
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

    pub(super) fn marker(
        &mut self,
        cx: &mut Cx,
        t: &Table,
        qid: &str,
        kind: &QuestionKind,
    ) -> Option<Marker> {
        let marker = t.string(cx, "marker");
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
}

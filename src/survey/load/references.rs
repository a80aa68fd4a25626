//! What refers to what: identifiers, themes, markers' questions and show_if conditions.

use std::collections::HashSet;

use chrono::NaiveDate;
use toml::Spanned;

use super::table::Table;
use super::walk::Walker;
use super::Cx;
use crate::survey::condition::{CompareOp, Condition, Literal};
use crate::survey::model::*;

/// Cross-references that can only be checked once every question is known.
pub(super) struct PendingRef {
    pub(super) from: String,
    pub(super) key: &'static str,
    pub(super) target: Spanned<String>,
    pub(super) expect: Expect,
}

#[derive(Clone, Copy)]
pub(super) enum Expect {
    AnyQuestion,
    YesNo,
    ThemePicker,
    Priority,
}

impl Walker {
    pub(super) fn check_theme(&self, cx: &mut Cx, theme: &Spanned<String>) {
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

    pub(super) fn resolve_pending(&mut self, cx: &mut Cx) {
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
    pub(super) fn condition(
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
        (QuestionKind::File { .. }, _) => {
            Some("a file question is tested with answered(question) only".into())
        }
        (QuestionKind::Matrix { .. }, _) if !row => {
            Some("compare one row of a matrix: question.row == \"code\"".into())
        }
        (
            QuestionKind::Integer { .. } | QuestionKind::Decimal { .. } | QuestionKind::Percentage,
            Literal::Number(_),
        ) => None,
        (
            QuestionKind::Integer { .. } | QuestionKind::Decimal { .. } | QuestionKind::Percentage,
            _,
        ) => Some("a number question is compared with a number".into()),
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

pub(super) fn check_identifier(cx: &mut Cx, id: &Spanned<String>, what: &str) {
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

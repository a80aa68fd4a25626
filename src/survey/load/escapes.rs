//! `not_known` and `not_applicable`: the honest non-answers a survey allows by default and a
//! question allows, overrides or turns off.
//!
//! ```toml
//! not_known = true                               # allowed, no reason asked
//! not_applicable = { reason_required = true }    # allowed, with a short reason
//! # and on a question, `not_known = false` turns the survey's default off.
//! ```

use toml::de::DeValue;

use super::table::Table;
use super::walk::Walker;
use super::Cx;
use crate::survey::model::*;

/// The keys, on the survey and on a question alike.
pub(super) const ESCAPE_KEYS: [&str; 2] = ["not_known", "not_applicable"];
const ESCAPE_TABLE_KEYS: &[&str] = &["reason_required"];

impl Walker {
    /// The escapes a table (the survey or a question) sets, on top of `base`.
    pub(super) fn escapes(&self, cx: &mut Cx, t: &Table, base: &Escapes) -> Escapes {
        let mut out = base.clone();
        for kind in EscapeKind::ALL {
            let Some(setting) = escape_setting(cx, t, kind.code()) else {
                continue;
            };
            match kind {
                EscapeKind::NotKnown => out.not_known = setting,
                EscapeKind::NotApplicable => out.not_applicable = setting,
            }
        }
        out
    }
}

/// `None` when the key is absent (or wrong, reported); `Some(None)` when turned off.
fn escape_setting(cx: &mut Cx, t: &Table, key: &str) -> Option<Option<Escape>> {
    let v = t.get(key)?;
    match v.get_ref() {
        DeValue::Boolean(on) => Some(on.then(Escape::default)),
        DeValue::Table(_) => {
            let what = format!("'{key}' in {}", t.what);
            let inner = Table::new(cx, v, what, ESCAPE_TABLE_KEYS)?;
            let reason_required = inner.bool(cx, "reason_required").unwrap_or(false);
            Some(Some(Escape { reason_required }))
        }
        _ => {
            t.wrong_type(
                cx,
                key,
                "true, false or a table such as { reason_required = true }",
                v,
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::survey::load::parse_survey;
    use crate::survey::model::*;

    /// A survey with `survey_line` at the top and two questions, the second with
    /// `question_line` (line 14 of the file).
    fn file(survey_line: &str, question_line: &str) -> String {
        format!(
            "id = \"s\"\ntitle = \"T\"\n{survey_line}\n[[sections]]\nid = \"a\"\ntitle = \"A\"\n\
             [[sections.questions]]\nid = \"q1\"\ntype = \"integer\"\ntext = \"Q1\"\n\
             [[sections.questions]]\nid = \"q2\"\ntype = \"integer\"\n{question_line}\ntext = \"Q2\"\n"
        )
    }

    #[test]
    fn survey_default_and_question_overrides() {
        let source = file(
            "not_known = true\nnot_applicable = { reason_required = true }",
            "not_known = false",
        );
        let (survey, diagnostics) = parse_survey("t.toml", &source);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let survey = survey.unwrap();
        let q1 = &survey.question("q1").unwrap().escapes;
        assert_eq!(q1.not_known, Some(Escape::default()));
        assert_eq!(
            q1.not_applicable,
            Some(Escape {
                reason_required: true
            })
        );
        let q2 = &survey.question("q2").unwrap().escapes;
        assert_eq!(q2.not_known, None);
        assert!(q2.not_applicable.is_some());
        // Without the keys, nothing is allowed.
        let (survey, _) = parse_survey("t.toml", &file("", ""));
        assert!(!survey.unwrap().question("q1").unwrap().escapes.any());
    }

    #[test]
    fn bad_values_are_reported_where_they_are() {
        let (survey, diagnostics) = parse_survey("t.toml", &file("", "not_known = \"yes\""));
        assert!(survey.is_none());
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        assert_eq!((diagnostics[0].line, diagnostics[0].column), (14, 13));
        assert!(diagnostics[0].message.contains("true, false or a table"));
        let (_, diagnostics) =
            parse_survey("t.toml", &file("not_applicable = { reason = true }", ""));
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        assert_eq!((diagnostics[0].line, diagnostics[0].column), (3, 20));
        assert!(diagnostics[0].message.contains("unknown key 'reason'"));
    }

    #[test]
    fn matrix_rows_may_not_take_the_escape_field_names() {
        let source = "id = \"s\"\ntitle = \"T\"\n[[sections]]\nid = \"a\"\ntitle = \"A\"\n\
             [[sections.questions]]\nid = \"m\"\ntype = \"matrix\"\ntext = \"M\"\n\
             rows = [{ code = \"escape\", label = \"E\" }, { code = \"reason\", label = \"R\" }]\n\
             scale = [{ code = \"x\", label = \"X\" }]\n";
        let (survey, diagnostics) = parse_survey("t.toml", source);
        assert!(survey.is_none());
        assert_eq!(diagnostics.len(), 2, "{diagnostics:?}");
        assert!(diagnostics
            .iter()
            .all(|d| d.line == 10 && d.message.contains("is reserved")));
    }

    #[test]
    fn file_questions_take_no_non_answer() {
        let source = |question_line: &str| {
            format!(
                "id = \"s\"\ntitle = \"T\"\nnot_known = true\n[[sections]]\nid = \"a\"\n\
                 title = \"A\"\n[[sections.questions]]\nid = \"docs\"\ntype = \"file\"\n\
                 {question_line}\ntext = \"Documents\"\n"
            )
        };
        // The survey's default passes a file question by.
        let (survey, diagnostics) = parse_survey("t.toml", &source(""));
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        assert!(!survey.unwrap().question("docs").unwrap().escapes.any());
        // Its own setting is an error where it is written.
        let (survey, diagnostics) = parse_survey("t.toml", &source("not_applicable = true"));
        assert!(survey.is_none());
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        assert_eq!((diagnostics[0].line, diagnostics[0].column), (10, 18));
        assert!(diagnostics[0].message.contains("file question takes no"));
    }
}

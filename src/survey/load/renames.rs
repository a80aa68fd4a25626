//! What became of earlier ids, for a file changed while a round is open: a top-level
//! `[[renamed]]` list (`from = "old_question"`, `to = "new_question"`) and an option's
//! `was = "old_code"` (choice options, matrix rows and scale entries). Checked once every
//! question is read: a `to` must be a question, a `from` must not still be one, a `was` must
//! not be a current code of the same list, and nothing may be mapped twice.

use std::collections::{BTreeMap, HashSet};

use toml::Spanned;

use super::references::check_identifier;
use super::table::Table;
use super::walk::Walker;
use super::Cx;
use crate::survey::model::*;

pub(super) const RENAMED_KEYS: &[&str] = &["from", "to"];

/// One option's `was`, kept until the whole file is read.
pub(super) struct WasEntry {
    question: String,
    /// `options`, `rows` or `scale`.
    list: &'static str,
    code: String,
    was: Spanned<String>,
}

impl Walker {
    /// Remember the `was` of an entry of `list` (`options`, `rows`, `scale`) of a question.
    pub(super) fn read_was(
        &mut self,
        cx: &mut Cx,
        question: &Table,
        list: &'static str,
        code: &str,
        entry: &Table,
    ) {
        let Some(was) = entry.string(cx, "was") else {
            return;
        };
        check_identifier(cx, &was, "'was' code");
        let question = (question.get("id"))
            .and_then(|v| v.get_ref().as_str())
            .unwrap_or_default()
            .to_string();
        self.was.push(WasEntry {
            question,
            list,
            code: code.to_string(),
            was,
        });
    }

    /// The file's renames, checked against its questions.
    pub(super) fn renames(&mut self, cx: &mut Cx, root: &Table, sections: &[Section]) -> Renames {
        let mut out = Renames::default();
        let question = |id: &str| {
            (sections.iter())
                .flat_map(|s| s.questions.iter())
                .find(|q| q.id == id)
        };
        for entry in std::mem::take(&mut self.was) {
            let Some(q) = question(&entry.question) else {
                continue;
            };
            let (list, map) = match (&q.kind, entry.list) {
                (QuestionKind::Matrix { .. }, "rows") => (OptionList::Rows, &mut out.rows),
                (QuestionKind::Matrix { .. }, _) => (OptionList::Scale, &mut out.options),
                (_, _) => (OptionList::Options, &mut out.options),
            };
            let old = entry.was.get_ref();
            let what = format!("'{}' of question '{}'", entry.list, q.id);
            if *old == entry.code {
                cx.error(
                    entry.was.span(),
                    format!("'was = \"{old}\"' is the entry's own code in {what}"),
                );
            } else if q.kind.has_code(list, old) {
                cx.error(
                    entry.was.span(),
                    format!(
                        "'was = \"{old}\"' names a code still in {what}: an old code cannot also be a current one"
                    ),
                );
            } else {
                let codes = map.entry(q.id.clone()).or_insert_with(BTreeMap::new);
                if codes.contains_key(old) {
                    cx.error(
                        entry.was.span(),
                        format!("'was = \"{old}\"' is given twice in {what}"),
                    );
                } else {
                    codes.insert(old.clone(), entry.code);
                }
            }
        }
        let mut froms = HashSet::new();
        let mut tos = HashSet::new();
        for item in root.items(cx, "renamed") {
            let Some(t) = Table::new(cx, item, "a [[renamed]] entry".into(), RENAMED_KEYS) else {
                continue;
            };
            let from = t.required_string(cx, "from");
            let to = t.required_string(cx, "to");
            let (Some(from), Some(to)) = (from, to) else {
                continue;
            };
            check_identifier(cx, &from, "question id");
            if question(from.get_ref()).is_some() {
                cx.error(
                    from.span(),
                    format!(
                        "'from = \"{}\"' is still a question of the file: only an id no longer used can be renamed",
                        from.get_ref()
                    ),
                );
                continue;
            }
            match question(to.get_ref()) {
                None => {
                    cx.error(
                        to.span(),
                        format!("'to = \"{}\"' is not a question of the file", to.get_ref()),
                    );
                    continue;
                }
                Some(q) if q.kind.is_file() => {
                    cx.error(
                        to.span(),
                        format!(
                            "'to = \"{}\"' is a file question: attached files stay with their question",
                            to.get_ref()
                        ),
                    );
                    continue;
                }
                Some(_) => {}
            }
            if !froms.insert(from.get_ref().clone()) {
                cx.error(
                    from.span(),
                    format!("'from = \"{}\"' is renamed twice", from.get_ref()),
                );
                continue;
            }
            if !tos.insert(to.get_ref().clone()) {
                cx.error(
                    to.span(),
                    format!(
                        "'to = \"{}\"' is the target of two [[renamed]] entries",
                        to.get_ref()
                    ),
                );
                continue;
            }
            out.questions.push((from.into_inner(), to.into_inner()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::survey::parse_survey;

    const BASE: &str = "id = \"s\"\ntitle = \"T\"\n[[sections]]\nid = \"a\"\ntitle = \"A\"\n\
        [[sections.questions]]\nid = \"q\"\ntype = \"single_choice\"\ntext = \"Q\"\n\
        options = [{ code = \"x\", label = \"X\" }, { code = \"y\", label = \"Y\", was = \"old_y\" }]\n\
        [[sections.questions]]\nid = \"m\"\ntype = \"matrix\"\ntext = \"M\"\n\
        rows = [{ code = \"r1\", label = \"R\", was = \"r0\" }]\n\
        scale = [{ code = \"s1\", label = \"S\", was = \"s0\" }]\n";

    /// Every error of a file: (line, column, message).
    fn errors(source: &str) -> Vec<(usize, usize, String)> {
        let (survey, diagnostics) = parse_survey("t.toml", source);
        assert!(survey.is_none(), "should not load");
        diagnostics
            .into_iter()
            .map(|d| (d.line, d.column, d.message))
            .collect()
    }

    #[test]
    fn renames_and_was_are_read() {
        let source = format!("{BASE}[[renamed]]\nfrom = \"old_q\"\nto = \"q\"\n");
        let (survey, diagnostics) = parse_survey("t.toml", &source);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let r = survey.expect("loads").renamed;
        assert_eq!(r.questions, vec![("old_q".into(), "q".into())]);
        assert_eq!(r.question("old_q"), "q");
        assert_eq!(r.question("other"), "other");
        assert_eq!(r.options["q"]["old_y"], "y");
        assert_eq!(r.options["m"]["s0"], "s1");
        assert_eq!(r.rows["m"]["r0"], "r1");
    }

    #[test]
    fn renamed_errors_are_placed() {
        let cases = [
            (
                "from = \"q\"\nto = \"m\"",
                18,
                8,
                "'from = \"q\"' is still a question",
            ),
            (
                "from = \"gone\"\nto = \"nowhere\"",
                19,
                6,
                "'to = \"nowhere\"' is not a question",
            ),
            ("from = \"gone\"", 17, 1, "missing required key 'to'"),
            (
                "from = \"gone\"\nto = \"q\"\ncolour = 1",
                20,
                1,
                "unknown key 'colour'",
            ),
        ];
        for (entry, line, column, message) in cases {
            let found = errors(&format!("{BASE}[[renamed]]\n{entry}\n"));
            assert!(
                found
                    .iter()
                    .any(|(l, c, m)| (*l, *c) == (line, column) && m.contains(message)),
                "{entry}: {found:?}"
            );
        }
        let twice = errors(&format!(
            "{BASE}[[renamed]]\nfrom = \"g\"\nto = \"q\"\n[[renamed]]\nfrom = \"g\"\nto = \"m\"\n"
        ));
        assert!(
            twice.contains(&(21, 8, "'from = \"g\"' is renamed twice".into())),
            "{twice:?}"
        );
    }

    #[test]
    fn was_errors_are_placed() {
        // An old code that is still a current one, and one given twice.
        let still = BASE.replace("was = \"old_y\"", "was = \"x\"");
        let found = errors(&still);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].0, found[0].1), (10, 74), "{found:?}");
        assert!(found[0]
            .2
            .contains("names a code still in 'options' of question 'q'"));
        let twice = BASE.replace(
            "{ code = \"x\", label = \"X\" }",
            "{ code = \"x\", label = \"X\", was = \"old_y\" }",
        );
        let found = errors(&twice);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].2.contains("is given twice"), "{found:?}");
        assert_eq!(found[0].0, 10);
        let own = BASE.replace("was = \"r0\"", "was = \"r1\"");
        let found = errors(&own);
        assert!(
            found[0].2.contains("the entry's own code in 'rows'"),
            "{found:?}"
        );
        assert_eq!((found[0].0, found[0].1), (15, 43), "{found:?}");
    }
}

//! Reading survey files: TOML with spans, turned into a checked [`Survey`].
//!
//! The walk is hand-written over toml's spanned document rather than a serde derive so that
//! every problem in a file is reported with its line and column, not only the first.
//!
//! One job per file: [`table`] reads one TOML table with its spans, [`walk`] walks the document
//! (survey, themes, sections, questions), [`rules`] holds each question type's rules and
//! markers, [`references`] checks identifiers and what refers to what (show_if, markers,
//! themes), [`population`] reads who the survey is asked of (a keyword or a list file),
//! [`translations`] reads translatable texts and reports missing translations, [`escapes`]
//! reads which questions allow "not known" and "not applicable", [`renames`] reads what became
//! of earlier ids (`[[renamed]]`, options' `was`).

mod escapes;
mod population;
mod references;
mod renames;
mod rounds;
mod rules;
mod table;
mod translations;
mod walk;

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::DeTable;

use super::model::*;
pub use translations::translation_warnings;
use walk::Walker;

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
    link_rounds(&mut report);
    report
}

/// Work out what each survey that follows another round carries from it; a survey whose
/// mappings do not fit the previous round is left out, like any survey with errors.
fn link_rounds(report: &mut LoadReport) {
    let mut keep = vec![true; report.surveys.len()];
    for (i, kept) in keep.iter_mut().enumerate() {
        let current = &report.surveys[i];
        let Some(round) = &current.previous else {
            continue;
        };
        let error = |message: String| Diagnostic {
            file: current.path.clone(),
            line: round.at.line,
            column: round.at.column,
            severity: Severity::Error,
            message,
        };
        let previous = report.surveys.iter().find(|s| s.id == round.survey);
        let definition = previous.map(|p| std::sync::Arc::new(p.clone()));
        let (plan, problems) = match previous {
            None => (
                Default::default(),
                vec![error(format!(
                    "previous round '{}' is not among the survey files read (check them together, e.g. `coherence check surveys/`)",
                    round.survey
                ))],
            ),
            Some(p) if p.id == current.id => (
                Default::default(),
                vec![error("a survey cannot follow itself".into())],
            ),
            Some(p) if p.unit != current.unit => (
                Default::default(),
                vec![error(format!(
                    "previous round '{}' is answered per {}, this one per {}: answers cannot carry",
                    p.id,
                    unit_name(p.unit),
                    unit_name(current.unit)
                ))],
            ),
            Some(p) => super::rounds::plan(p, current),
        };
        *kept = !problems.iter().any(|d| d.severity == Severity::Error);
        report.diagnostics.extend(problems);
        if let Some(round) = report.surveys[i].previous.as_mut() {
            round.plan = plan;
            round.definition = definition;
        }
    }
    let mut keep = keep.into_iter();
    report.surveys.retain(|_| keep.next().unwrap_or(true));
}

fn unit_name(unit: RespondentUnit) -> &'static str {
    match unit {
        RespondentUnit::Country => "country",
        RespondentUnit::Organisation => "organisation",
    }
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
    // The survey file's own problems first, then those of the files it names.
    diagnostics.sort_by(|a, b| {
        (a.file != file, &a.file, a.line, a.column).cmp(&(
            b.file != file,
            &b.file,
            b.line,
            b.column,
        ))
    });
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

    /// A problem in another file the survey names (its population list), at a line and column.
    fn push_in(
        &mut self,
        file: &str,
        (line, column): (usize, usize),
        severity: Severity,
        message: String,
    ) {
        self.diagnostics.push(Diagnostic {
            file: file.to_string(),
            line,
            column,
            severity,
            message,
        });
    }
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

//! Who a survey is asked of: its population of countries, and the list-file format that
//! declares one.
//!
//! A list file (the shipped `data/un-member-states.txt`, or a survey's own file in `surveys/`)
//! is UTF-8 text with one ISO 3166-1 alpha-3 code per line, in capitals; `#` starts a comment,
//! on its own line or after the code; blank lines are ignored.

use std::collections::BTreeSet;
use std::sync::Arc;

/// The countries a survey is asked of. Responses, links and contacts of other countries are
/// refused, and results count only responses from these countries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Population {
    pub kind: PopulationKind,
    codes: Arc<BTreeSet<String>>,
}

/// Where a population comes from, as the survey file names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PopulationKind {
    /// `un_member_states`: the 193 Member States of the United Nations (the default of a survey
    /// answered per country).
    UnMemberStates,
    /// `all`: every country and area of the reference list (the default of a survey of
    /// organisations).
    All,
    /// A list file beside the survey file, by its file name.
    List(String),
}

impl PopulationKind {
    pub const UN_MEMBER_STATES: &'static str = "un_member_states";
    pub const ALL: &'static str = "all";

    /// The value of `population` in the survey file.
    pub fn key(&self) -> &str {
        match self {
            PopulationKind::UnMemberStates => Self::UN_MEMBER_STATES,
            PopulationKind::All => Self::ALL,
            PopulationKind::List(file) => file,
        }
    }
}

impl Population {
    pub fn new(kind: PopulationKind, codes: impl IntoIterator<Item = String>) -> Population {
        Population {
            kind,
            codes: Arc::new(codes.into_iter().collect()),
        }
    }

    pub fn contains(&self, iso3: &str) -> bool {
        self.codes.contains(iso3)
    }

    /// The codes, in alphabetical order.
    pub fn codes(&self) -> impl Iterator<Item = &str> {
        self.codes.iter().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// Whether this is every country of the reference list, so that no filter is needed.
    pub fn is_everyone(&self) -> bool {
        self.kind == PopulationKind::All
    }

    /// The one-line refusal for a code outside the population, e.g. "TWN is not in the
    /// population of survey 'coherence-2008' (the 193 UN Member States)".
    pub fn refusal(&self, survey_id: &str, iso3: &str) -> String {
        let which = match &self.kind {
            PopulationKind::UnMemberStates => {
                format!("the {} UN Member States", self.len())
            }
            PopulationKind::All => "the reference country list".to_string(),
            PopulationKind::List(file) => format!("the {} countries of {file}", self.len()),
        };
        format!("{iso3} is not in the population of survey '{survey_id}' ({which})")
    }
}

/// One line of a list file that holds a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedCode {
    /// 1-based line and column (in characters) of the code.
    pub line: usize,
    pub column: usize,
    /// The code as written, or why it is not a code.
    pub code: Result<String, String>,
}

/// Read a list file: every line with something other than a comment, in order. A code is three
/// capital letters A-Z; anything else on such a line is reported with its place.
pub fn parse_list(text: &str) -> Vec<ListedCode> {
    // A byte-order mark, as some editors write, is not part of the first line.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let without_comment = raw.split('#').next().unwrap_or("");
        let item = without_comment.trim();
        if item.is_empty() {
            continue;
        }
        let leading = without_comment.len() - without_comment.trim_start().len();
        let column = without_comment[..leading].chars().count() + 1;
        let code = if item.len() == 3 && item.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(item.to_string())
        } else {
            Err(format!(
                "'{item}' is not an ISO 3166-1 alpha-3 code (three capital letters, one per line)"
            ))
        };
        out.push(ListedCode {
            line: n + 1,
            column,
            code,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_lines_comments_and_places() {
        let listed =
            parse_list("\u{feff}# GFMD\n\nSWE  # Sweden\n  PHL\r\nswe\nSWE, MEX\n\u{feff}x\n");
        let summary: Vec<(usize, usize, bool)> = listed
            .iter()
            .map(|l| (l.line, l.column, l.code.is_ok()))
            .collect();
        assert_eq!(
            summary,
            [
                (3, 1, true),
                (4, 3, true),
                (5, 1, false),
                (6, 1, false),
                (7, 1, false)
            ]
        );
        assert_eq!(listed[1].code, Ok("PHL".to_string()));
    }

    #[test]
    fn refusal_names_the_population() {
        let p = Population::new(PopulationKind::List("gfmd.txt".into()), ["SWE".to_string()]);
        assert!(p.contains("SWE") && !p.contains("NOR"));
        assert_eq!(
            p.refusal("s", "NOR"),
            "NOR is not in the population of survey 's' (the 1 countries of gfmd.txt)"
        );
    }
}

//! The survey's `population`: a keyword or a list file beside the survey file, checked against
//! the reference country list with the list file's own lines.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use super::table::Table;
use super::{Cx, Severity};
use crate::reference::{reference_codes, un_member_states};
use crate::survey::model::RespondentUnit;
use crate::survey::population::{parse_list, Population, PopulationKind};

/// A list file larger than this is refused (the reference list has 249 codes).
const LIST_LIMIT: u64 = 64 * 1024;

/// Read `population`, or its default: the UN Member States for a survey answered per country,
/// every country for a survey of organisations. None when it is wrong (reported).
pub(super) fn population(cx: &mut Cx, root: &Table, unit: RespondentUnit) -> Option<Population> {
    let given = match root.get("population") {
        None => None,
        Some(_) => Some(root.string(cx, "population")?),
    };
    let kind = match given.as_ref().map(|g| g.get_ref().as_str()) {
        None if unit.is_country() => PopulationKind::UnMemberStates,
        None => PopulationKind::All,
        Some(PopulationKind::UN_MEMBER_STATES) => PopulationKind::UnMemberStates,
        Some(PopulationKind::ALL) => PopulationKind::All,
        Some(name) if is_list_file_name(name) => PopulationKind::List(name.to_string()),
        Some(other) => {
            let span = given.as_ref().map(|g| g.span()).unwrap_or(0..0);
            cx.error(
                span,
                format!(
                    "population '{other}' is not supported: \"{}\", \"{}\", or the name of a list file (*.txt) beside the survey file",
                    PopulationKind::UN_MEMBER_STATES,
                    PopulationKind::ALL
                ),
            );
            return None;
        }
    };
    match kind {
        PopulationKind::UnMemberStates => Some(Population::new(kind, un_member_states())),
        PopulationKind::All => Some(Population::new(kind, reference_codes().map(str::to_string))),
        PopulationKind::List(ref name) => {
            let span = given.map(|g| g.span()).unwrap_or(0..0);
            let codes = list_file(cx, span, name)?;
            Some(Population::new(kind, codes))
        }
    }
}

/// A plain file name ending in `.txt`: no directory, nothing hidden.
fn is_list_file_name(name: &str) -> bool {
    name.len() > 4
        && name.ends_with(".txt")
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The codes of a list file beside the survey file; every problem reported at its line in the
/// list file (a missing or unreadable file at the survey's `population`).
fn list_file(cx: &mut Cx, span: std::ops::Range<usize>, name: &str) -> Option<Vec<String>> {
    let dir = Path::new(cx.file).parent().unwrap_or(Path::new(""));
    let path = dir.join(name);
    let shown = path.display().to_string();
    let text = match read_limited(&path) {
        Ok(text) => text,
        Err(e) => {
            cx.error(
                span,
                format!("cannot read the population list {shown}: {e}"),
            );
            return None;
        }
    };
    let known: std::collections::HashSet<&str> = reference_codes().collect();
    let mut first_line: HashMap<String, usize> = HashMap::new();
    let mut codes = Vec::new();
    let mut ok = true;
    for listed in parse_list(&text) {
        let mut at = |severity, message| {
            cx.push_in(&shown, (listed.line, listed.column), severity, message);
        };
        match listed.code {
            Err(message) => {
                at(Severity::Error, message);
                ok = false;
            }
            Ok(code) if !known.contains(code.as_str()) => {
                at(
                    Severity::Error,
                    format!("'{code}' is not a country of the reference list (data/countries.csv)"),
                );
                ok = false;
            }
            Ok(code) => match first_line.get(&code) {
                Some(first) => at(
                    Severity::Warning,
                    format!("'{code}' is listed twice (first on line {first})"),
                ),
                None => {
                    first_line.insert(code.clone(), listed.line);
                    codes.push(code);
                }
            },
        }
    }
    if ok && codes.is_empty() {
        cx.error(
            span,
            format!("the population list {shown} lists no country"),
        );
        return None;
    }
    ok.then_some(codes)
}

fn read_limited(path: &Path) -> std::io::Result<String> {
    let file = std::fs::File::open(path)?;
    let mut text = String::new();
    file.take(LIST_LIMIT + 1).read_to_string(&mut text)?;
    if text.len() as u64 > LIST_LIMIT {
        return Err(std::io::Error::other(format!(
            "larger than {} KB",
            LIST_LIMIT / 1024
        )));
    }
    Ok(text)
}

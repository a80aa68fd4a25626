//! Rounds: a survey that follows another (`previous = "..."`) starts each country's response
//! from the country's answers to the previous round. This module works out which answers carry
//! into which question (the [`CarryPlan`], checked when the files are read) and turns one
//! stored answer of the previous round into this round's answer.
//!
//! A question carries from the previous round's question named in a `[[carry]]` mapping, or by
//! default from the question with the same id (or the id a `[[renamed]]` of this round gives
//! it, with options renamed by `was` carrying under their new codes; or the new id a
//! `[[renamed]]` of the previous round gave it), when the types are compatible (the same type,
//! short and long text, an integer into a decimal, a single choice into a multiple choice, yes/no into a
//! choice). Every option (matrix row, scale point) of the old question must have a place in the new
//! one: the same code, a code mapped in `options`/`rows`, or `""` to leave it behind. File
//! questions never carry (evidence is attached for each round), nor those the survey lists in
//! `not_carried` (asked afresh: the date of the reply, who filled it in).

use std::collections::BTreeMap;

use super::answer::{validate, CountryCodes, Item, RawAnswer};
use super::load::{Diagnostic, Severity};
use super::model::*;

/// Which question of this round takes its answer from which question of the previous one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CarryPlan {
    /// Keyed by this round's question id.
    pub questions: BTreeMap<String, Carried>,
}

/// Where one question's answer comes from, and how its codes are renamed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Carried {
    /// The previous round's question id.
    pub from: String,
    /// Option (or scale) codes renamed: old -> new, `""` to leave the option behind. A code not
    /// listed keeps its name.
    pub options: BTreeMap<String, String>,
    /// Matrix rows renamed the same way.
    pub rows: BTreeMap<String, String>,
}

impl CarryPlan {
    pub fn get(&self, question_id: &str) -> Option<&Carried> {
        self.questions.get(question_id)
    }
}

/// Whether an answer of type `from` can become an answer of type `to`.
pub fn compatible(from: &QuestionKind, to: &QuestionKind) -> bool {
    use QuestionKind as K;
    if from.is_file() || to.is_file() {
        return false;
    }
    from.type_name() == to.type_name()
        || matches!(
            (from, to),
            (K::ShortText { .. }, K::LongText { .. })
                | (K::LongText { .. }, K::ShortText { .. })
                | (K::Integer { .. }, K::Decimal { .. })
                | (K::SingleChoice { .. }, K::MultipleChoice { .. })
                | (K::YesNo, K::SingleChoice { .. })
                | (K::YesNo, K::MultipleChoice { .. })
        )
}

/// The codes an answer of `kind` may hold as its value: options (with `other`), yes/no, or a
/// matrix's scale.
fn value_codes(kind: &QuestionKind) -> Option<Vec<String>> {
    match kind {
        QuestionKind::SingleChoice { other, .. } | QuestionKind::MultipleChoice { other, .. } => {
            let mut codes = codes(kind, OptionList::Options);
            if *other {
                codes.push(OTHER_CODE.to_string());
            }
            Some(codes)
        }
        QuestionKind::YesNo => Some(vec!["yes".into(), "no".into()]),
        QuestionKind::Matrix { .. } => Some(codes(kind, OptionList::Scale)),
        _ => None,
    }
}

fn row_codes(kind: &QuestionKind) -> Option<Vec<String>> {
    matches!(kind, QuestionKind::Matrix { .. }).then(|| codes(kind, OptionList::Rows))
}

fn codes(kind: &QuestionKind, list: OptionList) -> Vec<String> {
    kind.choices(list).iter().map(|c| c.code.clone()).collect()
}

/// Where a code of the previous round goes: renamed, left behind (None), or the same code.
fn target<'a>(map: &'a BTreeMap<String, String>, code: &'a str) -> Option<&'a str> {
    match map.get(code).map(String::as_str) {
        Some("") => None,
        Some(new) => Some(new),
        None => Some(code),
    }
}

/// Work out what carries from `previous` into `current`, with every problem found (errors for
/// mappings that cannot work, warnings for same-id questions whose type changed).
pub fn plan(previous: &Survey, current: &Survey) -> (CarryPlan, Vec<Diagnostic>) {
    let mut plan = CarryPlan::default();
    let mut problems = Vec::new();
    let Some(round) = &current.previous else {
        return (plan, problems);
    };
    let mut report = |at: Place, severity: Severity, message: String| {
        problems.push(Diagnostic {
            file: current.path.clone(),
            line: at.line,
            column: at.column,
            severity,
            message,
        })
    };
    for rule in &round.rules {
        let from = previous.question(&rule.from);
        let to = current.question(&rule.to);
        if from.is_none() {
            report(
                rule.from_at,
                Severity::Error,
                format!(
                    "[[carry]] from '{}': no such question in the previous round '{}'",
                    rule.from, previous.id
                ),
            );
        }
        if to.is_none() {
            report(
                rule.to_at,
                Severity::Error,
                format!(
                    "[[carry]] to '{}': no such question in this survey",
                    rule.to
                ),
            );
        }
        let (Some(from), Some(to)) = (from, to) else {
            continue;
        };
        if from.kind.is_file() || to.kind.is_file() {
            report(
                rule.to_at,
                Severity::Error,
                format!(
                    "[[carry]] '{}' -> '{}': file questions do not carry (evidence is attached for each round)",
                    rule.from, rule.to
                ),
            );
            continue;
        }
        if !compatible(&from.kind, &to.kind) {
            report(
                rule.to_at,
                Severity::Error,
                format!(
                    "[[carry]] '{}' -> '{}': an answer of type {} cannot carry into a {} question (give the question a new id instead)",
                    rule.from,
                    rule.to,
                    from.kind.type_name(),
                    to.kind.type_name()
                ),
            );
            continue;
        }
        let carried = Carried {
            from: rule.from.clone(),
            options: rule.options.clone(),
            rows: rule.rows.clone(),
        };
        let mut codes_ok = true;
        for (at, message) in check_codes(&carried, from, to, &previous.id) {
            codes_ok = false;
            let at = match message.0 {
                CodeKind::Row if rule.rows_at != rule.from_at => rule.rows_at,
                CodeKind::Value if rule.options_at != rule.from_at => rule.options_at,
                _ => at.unwrap_or(rule.to_at),
            };
            report(at, Severity::Error, message.1);
        }
        if codes_ok {
            plan.questions.insert(rule.to.clone(), carried);
        }
    }
    for (id, at) in round.not_carried.iter().zip(&round.not_carried_at) {
        if current.question(id).is_none() {
            report(
                *at,
                Severity::Error,
                format!("not_carried: no question '{id}' in this survey"),
            );
        } else if round.rules.iter().any(|r| &r.to == id) {
            report(
                *at,
                Severity::Error,
                format!("not_carried: '{id}' is also the target of a [[carry]] mapping"),
            );
        }
    }
    // Same id, no mapping: carried when it can be.
    for q in current.questions() {
        if plan.questions.contains_key(&q.id)
            || round.rules.iter().any(|r| r.to == q.id)
            || round.not_carried.contains(&q.id)
        {
            continue;
        }
        // A question renamed during this round (`[[renamed]]`) still carries from its old id.
        let from = current
            .renamed
            .questions
            .iter()
            .find(|(from, to)| *to == q.id && previous.question(from).is_some())
            .map_or(q.id.as_str(), |(from, _)| from.as_str());
        // One the previous round renamed while it was open (its own `[[renamed]]`; its answers
        // moved with it) carries from the new id there, unless this round asks that one too.
        let from = match previous.question(from) {
            None if current.question(previous.renamed.question(from)).is_none() => {
                previous.renamed.question(from)
            }
            _ => from,
        };
        let Some(old) = previous.question(from) else {
            continue;
        };
        if old.kind.is_file() && q.kind.is_file() {
            continue;
        }
        let at = question_place(&current.source, &q.id);
        if !compatible(&old.kind, &q.kind) {
            report(
                at,
                Severity::Warning,
                format!(
                    "question '{}' was of type {} in the previous round '{}' and is of type {} now: its answers are not carried (give it a new id, or map it with [[carry]] if they can be)",
                    q.id,
                    old.kind.type_name(),
                    previous.id,
                    q.kind.type_name()
                ),
            );
            continue;
        }
        // Options and rows renamed during this round (`was`) carry under their new codes.
        let renamed_codes = |maps: &BTreeMap<String, BTreeMap<String, String>>, old_codes| {
            let old_codes: Vec<String> = old_codes;
            maps.get(&q.id)
                .into_iter()
                .flatten()
                .filter(|(old, _)| old_codes.contains(old))
                .map(|(old, new)| (old.clone(), new.clone()))
                .collect::<BTreeMap<_, _>>()
        };
        let carried = Carried {
            from: from.to_string(),
            options: renamed_codes(
                &current.renamed.options,
                value_codes(&old.kind).unwrap_or_default(),
            ),
            rows: renamed_codes(
                &current.renamed.rows,
                row_codes(&old.kind).unwrap_or_default(),
            ),
        };
        let problems = check_codes(&carried, old, q, &previous.id);
        if problems.is_empty() {
            plan.questions.insert(q.id.clone(), carried);
        }
        for (_, (_, message)) in problems {
            report(
                at,
                Severity::Error,
                format!(
                    "{message} (add a [[carry]] from = \"{0}\", to = \"{0}\" with the mapping)",
                    q.id
                ),
            );
        }
    }
    (plan, problems)
}

#[derive(Clone, Copy)]
enum CodeKind {
    Value,
    Row,
}

/// Every old code of `from` must land on a code of `to` (or be left behind with `""`), and every
/// mapping must name an old code and a new one.
fn check_codes(
    carried: &Carried,
    from: &Question,
    to: &Question,
    previous_id: &str,
) -> Vec<(Option<Place>, (CodeKind, String))> {
    let mut out = Vec::new();
    for (kind, old, new, map, noun, a_noun) in [
        (
            CodeKind::Value,
            value_codes(&from.kind),
            value_codes(&to.kind),
            &carried.options,
            "option",
            "an option",
        ),
        (
            CodeKind::Row,
            row_codes(&from.kind),
            row_codes(&to.kind),
            &carried.rows,
            "row",
            "a row",
        ),
    ] {
        let key = match kind {
            CodeKind::Value => "options",
            CodeKind::Row => "rows",
        };
        let (Some(old), Some(new)) = (old, new) else {
            if !map.is_empty() {
                out.push((
                    None,
                    (
                        kind,
                        format!(
                            "'{key}' maps nothing here: '{}' -> '{}' has no {noun}s to rename",
                            carried.from, to.id
                        ),
                    ),
                ));
            }
            continue;
        };
        for (o, n) in map {
            if !old.contains(o) {
                out.push((
                    None,
                    (
                        kind,
                        format!(
                            "'{o}' in '{key}' is not {a_noun} of '{}' in the previous round '{previous_id}'",
                            carried.from
                        ),
                    ),
                ));
            } else if !n.is_empty() && !new.contains(n) {
                out.push((
                    None,
                    (
                        kind,
                        format!("'{n}' in '{key}' is not {a_noun} of '{}'", to.id),
                    ),
                ));
            }
        }
        for o in &old {
            if map.contains_key(o) {
                continue;
            }
            if !new.contains(o) {
                out.push((
                    None,
                    (
                        kind,
                        format!(
                            "{noun} '{o}' of '{}' in the previous round '{previous_id}' has no place in '{}': map it in {key} = {{ {o} = \"<new code>\" }} (\"\" to leave it behind)",
                            carried.from, to.id
                        ),
                    ),
                ));
            }
        }
    }
    out
}

/// Where question `id` is declared in a survey file (its `id = "..."` line under
/// `[[sections.questions]]`), for problems found after the file was read.
fn question_place(source: &str, id: &str) -> Place {
    let mut in_question = false;
    for (n, line) in source.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            in_question = trimmed.starts_with("[[sections.questions]]");
            continue;
        }
        if !in_question {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("id") {
            let value = rest.trim_start().strip_prefix('=').map(str::trim);
            if value.is_some_and(|v| v.trim_matches(|c| c == '"' || c == '\'') == id) {
                return Place {
                    line: n + 1,
                    column: line.len() - trimmed.len() + 1,
                };
            }
        }
    }
    Place { line: 1, column: 1 }
}

/// This round's answer to `to`, from the previous round's answer `items` to `from`: codes
/// renamed, options left behind dropped, and the result checked as if typed into the new
/// question. None when nothing of it carries or it is not a valid answer any more.
pub fn carry_answer(
    carried: &Carried,
    from: &Question,
    to: &Question,
    items: &[Item],
    countries: &dyn CountryCodes,
) -> Option<Vec<Item>> {
    let mut raw = RawAnswer::from_items(&from.kind, items);
    if value_codes(&from.kind).is_some() && !matches!(from.kind, QuestionKind::Matrix { .. }) {
        raw.values = raw
            .values
            .iter()
            .filter_map(|v| target(&carried.options, v).map(str::to_string))
            .collect();
    }
    if let QuestionKind::Matrix { .. } = from.kind {
        raw.rows = raw
            .rows
            .iter()
            .filter_map(|(row, scale)| {
                Some((
                    target(&carried.rows, row)?.to_string(),
                    target(&carried.options, scale)?.to_string(),
                ))
            })
            .collect();
    }
    if !raw.values.iter().any(|v| v == OTHER_CODE) {
        raw.other = None;
    }
    if raw.escape.is_none() && raw.values.iter().all(|v| v.trim().is_empty()) && raw.rows.is_empty()
    {
        return None;
    }
    validate(to, &raw, countries)
        .ok()
        .filter(|items| !items.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::survey::parse_survey;

    struct All;
    impl CountryCodes for All {
        fn is_country(&self, _: &str) -> bool {
            true
        }
    }

    const ROUND_ONE: &str = r#"
id = "r1"
title = "Round one"
closes = 2027-01-01
[[sections]]
id = "s"
title = "S"
[[sections.questions]]
id = "unit"
type = "single_choice"
text = "Where?"
options = [{ code = "pm", label = "PM" }, { code = "mfa", label = "MFA" }, { code = "none", label = "None" }]
[[sections.questions]]
id = "staff"
type = "integer"
text = "Staff"
[[sections.questions]]
id = "name"
type = "short_text"
text = "Name"
[[sections.questions]]
id = "plan"
type = "yes_no"
text = "Plan?"
"#;

    fn surveys(two: &str) -> (Survey, Survey, Vec<Diagnostic>) {
        let (one, d) = parse_survey("r1.toml", ROUND_ONE);
        assert!(d.is_empty(), "{d:?}");
        let (two, d) = parse_survey("r2.toml", two);
        assert!(d.iter().all(|d| d.severity != Severity::Error), "{d:?}");
        let (one, mut two) = (one.unwrap(), two.unwrap());
        let (plan, problems) = plan(&one, &two);
        if let Some(p) = two.previous.as_mut() {
            p.plan = plan;
        }
        (one, two, problems)
    }

    const HEAD: &str =
        "id = \"r2\"\ntitle = \"Round two\"\ncloses = 2028-01-01\nprevious = \"r1\"\n";

    #[test]
    fn renamed_question_and_options_carry_and_values_are_checked_again() {
        let two = format!(
            "{HEAD}[[carry]]\nfrom = \"unit\"\nto = \"units\"\noptions = {{ pm = \"head\", none = \"\" }}\n\
             [[sections]]\nid = \"s\"\ntitle = \"S\"\n\
             [[sections.questions]]\nid = \"units\"\ntype = \"multiple_choice\"\ntext = \"Where?\"\n\
             options = [{{ code = \"head\", label = \"Head\" }}, {{ code = \"mfa\", label = \"MFA\" }}]\n\
             [[sections.questions]]\nid = \"staff\"\ntype = \"decimal\"\ntext = \"Staff\"\n\
             [[sections.questions]]\nid = \"name\"\ntype = \"long_text\"\ntext = \"Name\"\n"
        );
        let (one, two, problems) = surveys(&two);
        assert!(problems.is_empty(), "{problems:?}");
        let plan = &two.previous.as_ref().unwrap().plan;
        assert_eq!(
            plan.questions.keys().collect::<Vec<_>>(),
            ["name", "staff", "units"]
        );
        let units = plan.get("units").unwrap();
        let carry = |from: &str, to: &str, c: &Carried, value: &str| {
            carry_answer(
                c,
                one.question(from).unwrap(),
                two.question(to).unwrap(),
                &[Item::scalar(value.into(), None)],
                &All,
            )
        };
        let head = carry("unit", "units", units, "pm").unwrap();
        assert_eq!(
            (head[0].item.as_str(), head[0].value.as_str()),
            ("head", "1")
        );
        assert_eq!(carry("unit", "units", units, "none"), None);
        let staff = carry("staff", "staff", plan.get("staff").unwrap(), "12").unwrap();
        assert_eq!(staff[0].num, Some(12.0));
    }

    #[test]
    fn a_question_the_previous_round_renamed_while_open_still_carries() {
        // The previous round's file renamed `staff` to `staff_count` while it was open: its
        // stored answers moved there, and this round's `staff` carries from it.
        let one = ROUND_ONE.replace("id = \"staff\"", "id = \"staff_count\"")
            + "[[renamed]]\nfrom = \"staff\"\nto = \"staff_count\"\n";
        let two = format!(
            "{HEAD}[[sections]]\nid = \"s\"\ntitle = \"S\"\n\
             [[sections.questions]]\nid = \"staff\"\ntype = \"integer\"\ntext = \"Staff\"\n"
        );
        let (one, d) = parse_survey("r1.toml", &one);
        assert!(d.is_empty(), "{d:?}");
        let (two, d) = parse_survey("r2.toml", &two);
        assert!(d.iter().all(|d| d.severity != Severity::Error), "{d:?}");
        let (plan, problems) = plan(&one.unwrap(), &two.unwrap());
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            plan.get("staff").map(|c| c.from.as_str()),
            Some("staff_count")
        );
    }

    #[test]
    fn options_without_a_place_and_impossible_types_are_errors_with_their_place() {
        let two = format!(
            "{HEAD}[[carry]]\nfrom = \"staff\"\nto = \"when\"\n\
             [[carry]]\nfrom = \"nope\"\nto = \"unit\"\n\
             [[sections]]\nid = \"s\"\ntitle = \"S\"\n\
             [[sections.questions]]\nid = \"unit\"\ntype = \"single_choice\"\ntext = \"Where?\"\n\
             options = [{{ code = \"pm\", label = \"PM\" }}]\n\
             [[sections.questions]]\nid = \"when\"\ntype = \"date\"\ntext = \"When\"\n\
             [[sections.questions]]\nid = \"plan\"\ntype = \"integer\"\ntext = \"Plan\"\n"
        );
        let (_, _, problems) = surveys(&two);
        let shown: Vec<String> = problems.iter().map(|d| d.to_string()).collect();
        assert!(
            shown.iter().any(|d| d.starts_with("r2.toml:7:6: error:")
                && d.contains("type integer cannot carry into a date question")),
            "{shown:#?}"
        );
        assert!(
            shown.iter().any(|d| d.starts_with("r2.toml:9:8: error:")
                && d.contains("no such question in the previous round 'r1'")),
            "{shown:#?}"
        );
        // The 'unit' rule fails on its from; the same-id default is not tried for a target
        // named by a rule.
        assert!(
            !shown.iter().any(|d| d.contains("option 'mfa'")),
            "{shown:#?}"
        );
        assert!(
            shown.iter().any(|d| d.starts_with("r2.toml:24:1: warning:")
                && d.contains("'plan' was of type yes_no")),
            "{shown:#?}"
        );
    }

    #[test]
    fn a_same_id_choice_that_lost_an_option_needs_a_mapping() {
        let two = format!(
            "{HEAD}[[sections]]\nid = \"s\"\ntitle = \"S\"\n\
             [[sections.questions]]\nid = \"unit\"\ntype = \"single_choice\"\ntext = \"Where?\"\n\
             options = [{{ code = \"pm\", label = \"PM\" }}, {{ code = \"mfa\", label = \"MFA\" }}]\n"
        );
        let (_, two, problems) = surveys(&two);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!((problems[0].line, problems[0].column), (9, 1));
        assert!(
            problems[0].message.contains("option 'none' of 'unit'"),
            "{problems:?}"
        );
        assert!(two.previous.unwrap().plan.questions.is_empty());
    }
}

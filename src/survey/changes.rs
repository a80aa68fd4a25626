//! A survey file changed while a round is open: what the new version changes against the
//! previous one (questions removed or renamed, options removed or remapped, types and
//! conditions changed), and what that does to the answers stored under the previous one.
//!
//! HTTP- and SQL-free: the stored answers come in as [`StoredItem`]s and the outcome is an
//! [`Impact`] that `db::definitions` applies (remapped rows, orphaned rows hidden, the hidden
//! questions of each draft, the notices) and a report that start and `coherence check
//! --database` print. Nothing here deletes anything: an answer that no longer fits the
//! definition is *orphaned*: kept, hidden and counted in the report.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

use super::answer::{Answers, Item, Visibility, OTHER_ITEM};
use super::condition::{CompareOp, Condition, QuestionRef};
use super::model::*;

/// What a new version changes in the definition, by the new question ids.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    /// Old question ids with no question now (and not renamed).
    pub removed_questions: Vec<String>,
    /// Questions new in this version.
    pub added_questions: Vec<String>,
    /// `(from, to)`: the renames of questions the previous version had.
    pub renamed_questions: Vec<(String, String)>,
    /// `(question, list, code)`: options of the previous version no longer offered (unmapped).
    pub removed_options: Vec<(String, OptionList, String)>,
    /// `(question, list, old, new)`: options mapped by `was`.
    pub remapped_options: Vec<(String, OptionList, String, String)>,
    /// `(question, old type, new type, whether stored answers keep their meaning)`.
    pub type_changes: Vec<(String, &'static str, &'static str, bool)>,
    /// `(what, id, before, after)`: a section's or a question's `show_if` changed; what is
    /// `section` or `question`, a missing condition is "".
    pub condition_changes: Vec<(&'static str, String, String, String)>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        *self == Changes::default()
    }
}

/// Compare the previous version of a file with the new one.
pub fn compare(old: &Survey, new: &Survey) -> Changes {
    let mut out = Changes::default();
    let renames = &new.renamed;
    let carried: HashSet<&str> = old.questions().map(|q| renames.question(&q.id)).collect();
    for q in old.questions() {
        let to = renames.question(&q.id);
        let Some(nq) = new.question(to) else {
            out.removed_questions.push(q.id.clone());
            continue;
        };
        if to != q.id {
            out.renamed_questions.push((q.id.clone(), to.to_string()));
        }
        if !compatible(&q.kind, &nq.kind) || q.kind.type_name() != nq.kind.type_name() {
            out.type_changes.push((
                nq.id.clone(),
                q.kind.type_name(),
                nq.kind.type_name(),
                compatible(&q.kind, &nq.kind),
            ));
            if !compatible(&q.kind, &nq.kind) {
                continue;
            }
        }
        for list in [OptionList::Options, OptionList::Rows, OptionList::Scale] {
            for code in q.kind.choices(list).iter().map(|c| c.code.as_str()) {
                let mapped = map_code(renames, &nq.id, list, code);
                if mapped != code {
                    out.remapped_options.push((
                        nq.id.clone(),
                        list,
                        code.to_string(),
                        mapped.to_string(),
                    ));
                }
                if !nq.kind.has_code(list, mapped) {
                    out.removed_options
                        .push((nq.id.clone(), list, code.to_string()));
                }
            }
        }
        let before = q.show_if.as_ref().map(|c| condition_text(c, renames));
        let after = nq
            .show_if
            .as_ref()
            .map(|c| condition_text(c, &Renames::default()));
        if before != after {
            out.condition_changes.push((
                "question",
                nq.id.clone(),
                before.unwrap_or_default(),
                after.unwrap_or_default(),
            ));
        }
    }
    for s in &new.sections {
        let Some(os) = old.section(&s.id) else {
            continue;
        };
        let before = os.show_if.as_ref().map(|c| condition_text(c, renames));
        let after = s
            .show_if
            .as_ref()
            .map(|c| condition_text(c, &Renames::default()));
        if before != after {
            out.condition_changes.push((
                "section",
                s.id.clone(),
                before.unwrap_or_default(),
                after.unwrap_or_default(),
            ));
        }
    }
    out.added_questions = new
        .questions()
        .filter(|q| !carried.contains(q.id.as_str()))
        .map(|q| q.id.clone())
        .collect();
    out
}

/// Whether answers stored for `old` keep their meaning as answers to `new`: the same type,
/// short and long text, or an integer that became a decimal.
pub fn compatible(old: &QuestionKind, new: &QuestionKind) -> bool {
    use QuestionKind as K;
    old.type_name() == new.type_name()
        || matches!(
            (old, new),
            (K::ShortText { .. }, K::LongText { .. })
                | (K::LongText { .. }, K::ShortText { .. })
                | (K::Integer { .. }, K::Decimal { .. })
        )
}

/// An old code of `list` of (new) question `question`, as the file maps it.
fn map_code<'a>(renames: &'a Renames, question: &str, list: OptionList, code: &'a str) -> &'a str {
    let maps = match list {
        OptionList::Rows => &renames.rows,
        OptionList::Options | OptionList::Scale => &renames.options,
    };
    maps.get(question)
        .and_then(|m| m.get(code))
        .map_or(code, String::as_str)
}

/// A condition written out the same way whatever its spacing, with old question ids (and
/// their options) renamed as the file says, so that a rename alone is no condition change.
pub fn condition_text(c: &Condition, renames: &Renames) -> String {
    let target = |t: &QuestionRef| {
        let q = renames.question(&t.question);
        match &t.row {
            Some(row) => {
                let row = map_code(renames, q, OptionList::Rows, row);
                format!("{q}.{row}")
            }
            None => q.to_string(),
        }
    };
    match c {
        Condition::Compare {
            target: t,
            op,
            value,
        } => {
            let op = match op {
                CompareOp::Eq => "==",
                CompareOp::Ne => "!=",
                CompareOp::Lt => "<",
                CompareOp::Le => "<=",
                CompareOp::Gt => ">",
                CompareOp::Ge => ">=",
            };
            // A compared text may be an option code (single choice) or a scale entry.
            let value = match value {
                super::condition::Literal::Text(code) => {
                    let q = renames.question(&t.question);
                    let list = if t.row.is_some() {
                        OptionList::Scale
                    } else {
                        OptionList::Options
                    };
                    format!("\"{}\"", map_code(renames, q, list, code))
                }
                other => other.to_string(),
            };
            format!("{} {op} {value}", target(t))
        }
        Condition::Contains { target: t, option } => {
            let q = renames.question(&t.question);
            let option = map_code(renames, q, OptionList::Options, option);
            format!("\"{option}\" in {}", target(t))
        }
        Condition::Answered(t) => format!("answered({})", target(t)),
        Condition::Not(c) => format!("not ({})", condition_text(c, renames)),
        Condition::And(a, b) => format!(
            "({}) and ({})",
            condition_text(a, renames),
            condition_text(b, renames)
        ),
        Condition::Or(a, b) => format!(
            "({}) or ({})",
            condition_text(a, renames),
            condition_text(b, renames)
        ),
    }
}

/// One stored answer item: of a draft (`version` None, the `answers` table) or of a submitted
/// version (`version_answers`).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredItem {
    pub response_id: String,
    pub country: String,
    pub version: Option<i32>,
    pub question_id: String,
    pub item: String,
    pub value: String,
    pub num: Option<f64>,
}

/// Why a stored answer no longer fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Orphan {
    RemovedQuestion,
    RemovedOption,
    TypeChanged,
    /// Mapped onto an answer the response already holds (two old options made one): kept
    /// aside, not refused.
    Merged,
}

impl Orphan {
    /// How it is stored (`orphaned_answers.reason`).
    pub fn code(self) -> &'static str {
        match self {
            Orphan::RemovedQuestion => "removed_question",
            Orphan::RemovedOption => "removed_option",
            Orphan::TypeChanged => "type_changed",
            Orphan::Merged => "merged",
        }
    }

    /// Whether a change orphaning such answers needs a mapping or --accept-orphans.
    pub fn refuses(self) -> bool {
        self != Orphan::Merged
    }
}

/// A stored row's new place: (question, item, value, section).
#[derive(Debug, Clone, PartialEq)]
pub struct Remap {
    pub row: StoredItem,
    pub question_id: String,
    pub item: String,
    pub value: String,
    pub section_id: String,
}

/// How many responses and countries hold such answers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Holders {
    pub responses: BTreeSet<String>,
    pub countries: BTreeSet<String>,
}

impl Holders {
    fn add(&mut self, row: &StoredItem) {
        self.responses.insert(row.response_id.clone());
        self.countries.insert(row.country.clone());
    }

    fn text(&self) -> String {
        let r = self.responses.len();
        let c = self.countries.len();
        format!(
            "{r} response{} ({c} countr{})",
            if r == 1 { "" } else { "s" },
            if c == 1 { "y" } else { "ies" }
        )
    }
}

/// What a new version does to the stored answers.
#[derive(Debug, Clone, Default)]
pub struct Impact {
    pub changes: Changes,
    /// Per reason and question (the old id for a removed question): who holds such answers.
    pub orphaned: BTreeMap<(Orphan, String), Holders>,
    /// Per question (new id): who holds answers moved by a mapping.
    pub remapped: BTreeMap<String, Holders>,
    /// Per question: who holds answers that a changed condition now hides.
    pub newly_hidden: BTreeMap<String, Holders>,
    /// Rows to move (mappings).
    pub remaps: Vec<Remap>,
    /// Draft rows orphaned, and why: set aside (the question's are hidden where they are).
    pub orphan_rows: Vec<(Orphan, StoredItem)>,
    /// Per draft response: the questions hidden under the new definition.
    pub hidden: BTreeMap<String, HashSet<String>>,
    /// Per response: the sections (of the new version) to look at again.
    pub notices: BTreeMap<String, BTreeSet<String>>,
}

impl Impact {
    /// Whether the change orphans stored answers that nothing maps.
    pub fn orphans(&self) -> bool {
        self.orphaned.keys().any(|(why, _)| why.refuses())
    }

    /// How many responses hold answers an unmapped change orphans.
    pub fn orphan_count(&self) -> usize {
        (self.orphaned.iter())
            .filter(|((why, _), _)| why.refuses())
            .flat_map(|(_, h)| h.responses.iter())
            .collect::<BTreeSet<_>>()
            .len()
    }

    /// The report printed at start and by `coherence check --database`: one line per change
    /// and its effect on stored answers.
    pub fn report(&self, survey: &str, from: &str, to: &str) -> String {
        let c = &self.changes;
        let mut out = format!(
            "survey '{survey}' changed since it was last loaded (version {} -> {}):\n",
            short(from),
            short(to)
        );
        let held = |key: (Orphan, &str)| {
            self.orphaned
                .get(&(key.0, key.1.to_string()))
                .map(Holders::text)
        };
        for q in &c.removed_questions {
            let _ = match held((Orphan::RemovedQuestion, q)) {
                Some(h) => writeln!(
                    out,
                    "  question '{q}' removed: answers of {h} are kept but no longer shown"
                ),
                None => writeln!(out, "  question '{q}' removed: no stored answer"),
            };
        }
        for (from, to) in &c.renamed_questions {
            let moved = self.remapped.get(to).map(Holders::text);
            let _ = writeln!(
                out,
                "  question '{from}' renamed '{to}': {}",
                moved.map_or("no stored answer".into(), |h| format!(
                    "answers of {h} follow it"
                ))
            );
        }
        for (q, list, code) in &c.removed_options {
            let _ = match held((Orphan::RemovedOption, q)) {
                Some(h) => writeln!(
                    out,
                    "  {} '{code}' of question '{q}' removed: answers of {h} point to removed options",
                    list.name()
                ),
                None => writeln!(
                    out,
                    "  {} '{code}' of question '{q}' removed: no stored answer points to it",
                    list.name()
                ),
            };
        }
        for (q, list, old, new) in &c.remapped_options {
            let _ = writeln!(
                out,
                "  {} '{old}' of question '{q}' is now '{new}'{}",
                list.name(),
                self.remapped.get(q).map_or(String::new(), |h| format!(
                    ": answers of {} follow it",
                    h.text()
                ))
            );
        }
        for (q, old, new, ok) in &c.type_changes {
            let effect = match (ok, held((Orphan::TypeChanged, q))) {
                (true, _) => "answers keep their meaning".to_string(),
                (false, Some(h)) => format!("answers of {h} no longer fit and are kept aside"),
                (false, None) => "no stored answer".to_string(),
            };
            let _ = writeln!(
                out,
                "  type of question '{q}' changed from {old} to {new}: {effect}"
            );
        }
        for (what, id, before, after) in &c.condition_changes {
            let shown = |s: &str| {
                if s.is_empty() {
                    "(none)".to_string()
                } else {
                    s.to_string()
                }
            };
            let _ = writeln!(
                out,
                "  condition of {what} '{id}' changed from {} to {}",
                shown(before),
                shown(after)
            );
        }
        for (q, h) in &self.newly_hidden {
            let _ = writeln!(
                out,
                "  answers of {} to question '{q}' become hidden under the new conditions",
                h.text()
            );
        }
        if let Some((_, h)) = self
            .orphaned
            .iter()
            .find(|((why, _), _)| *why == Orphan::Merged)
        {
            let _ = writeln!(
                out,
                "  answers of {} mapped onto an answer already given are kept aside",
                h.text()
            );
        }
        if !c.added_questions.is_empty() {
            let _ = writeln!(out, "  questions added: {}", c.added_questions.join(", "));
        }
        if !self.orphans() && self.remapped.is_empty() && self.newly_hidden.is_empty() {
            out.push_str("  no stored answer is affected\n");
        }
        printable(&out)
    }
}

/// Text for a terminal: a control character from a survey file (a compared string may hold
/// any) is written as its escape, so printing a report never drives the operator's terminal.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' => c.to_string(),
            // Bidirectional overrides too: they reorder what the terminal shows.
            c if c.is_control()
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                c.escape_unicode().to_string()
            }
            c => c.to_string(),
        })
        .collect()
}

fn short(version: &str) -> &str {
    version.get(..12).unwrap_or(version)
}

/// What the new version does to each stored row: kept, moved by a mapping, or orphaned.
pub fn impact(old: &Survey, new: &Survey, rows: &[StoredItem]) -> Impact {
    let mut out = Impact {
        changes: compare(old, new),
        ..Impact::default()
    };
    let renames = &new.renamed;
    let section_of: HashMap<&str, &str> = new
        .sections
        .iter()
        .flat_map(|s| {
            s.questions
                .iter()
                .map(move |q| (q.id.as_str(), s.id.as_str()))
        })
        .collect();
    // Every key held, so that a mapping never lands on an answer already there.
    let key = |r: &StoredItem, q: &str, item: &str| {
        (
            r.response_id.clone(),
            r.version,
            q.to_string(),
            item.to_string(),
        )
    };
    let mut taken: HashSet<_> = rows
        .iter()
        .map(|r| key(r, &r.question_id, &r.item))
        .collect();
    // Each response's (or version's) answers as the old and the new definition read them.
    type Group = (Option<i32>, String);
    let mut before: BTreeMap<Group, Answers> = BTreeMap::new();
    let mut after: BTreeMap<Group, Answers> = BTreeMap::new();
    let mut placed: Vec<(&StoredItem, String)> = Vec::new();
    for r in rows {
        let group = (r.version, r.response_id.clone());
        before.entry(group.clone()).or_default();
        after.entry(group.clone()).or_default();
        let Some(oq) = old.question(&r.question_id) else {
            continue; // Not a question of the previous version either: already aside.
        };
        let item = Item {
            item: r.item.clone(),
            value: r.value.clone(),
            num: r.num,
        };
        before
            .entry(group.clone())
            .or_default()
            .entry(r.question_id.clone())
            .or_default()
            .push(item.clone());
        let fate = fate(oq, new, r);
        let (q, item, value) = match fate {
            Err(why) => {
                orphan(
                    &mut out,
                    why,
                    if why == Orphan::RemovedQuestion {
                        &oq.id
                    } else {
                        renames.question(&oq.id)
                    },
                    r,
                    &section_of,
                );
                continue;
            }
            Ok(place) => place,
        };
        if (q.as_str(), item.as_str(), value.as_str())
            != (r.question_id.as_str(), r.item.as_str(), r.value.as_str())
        {
            if (q != r.question_id || item != r.item) && !taken.insert(key(r, &q, &item)) {
                orphan(&mut out, Orphan::Merged, &q, r, &section_of);
                continue;
            }
            out.remapped.entry(q.clone()).or_default().add(r);
            let section = section_of.get(q.as_str()).copied().unwrap_or_default();
            if r.version.is_none() {
                notice(&mut out, r, section);
            }
            out.remaps.push(Remap {
                row: r.clone(),
                question_id: q.clone(),
                item: item.clone(),
                value: value.clone(),
                section_id: section.to_string(),
            });
        }
        after
            .entry(group)
            .or_default()
            .entry(q.clone())
            .or_default()
            .push(Item {
                item,
                value,
                num: r.num,
            });
        placed.push((r, q));
    }
    // Answers a changed condition now hides.
    let mut visible: BTreeMap<Group, (Visibility, Visibility)> = BTreeMap::new();
    for (group, answers) in &after {
        let old_answers = before.get(group).cloned().unwrap_or_default();
        visible.insert(
            group.clone(),
            (
                Visibility::evaluate(old, &old_answers),
                Visibility::evaluate(new, answers),
            ),
        );
        if group.0.is_none() {
            let vis = &visible[group].1;
            let hidden = new
                .questions()
                .filter(|q| !vis.question(&q.id))
                .map(|q| q.id.clone())
                .collect();
            out.hidden.insert(group.1.clone(), hidden);
        }
    }
    for (r, q) in placed {
        let Some((was, now)) = visible.get(&(r.version, r.response_id.clone())) else {
            continue;
        };
        if was.question(&r.question_id) && !now.question(&q) {
            out.newly_hidden.entry(q.clone()).or_default().add(r);
            if r.version.is_none() {
                let section = section_of.get(q.as_str()).copied().unwrap_or_default();
                notice(&mut out, r, section);
            }
        }
    }
    out
}

fn orphan(
    out: &mut Impact,
    why: Orphan,
    question: &str,
    r: &StoredItem,
    section_of: &HashMap<&str, &str>,
) {
    out.orphaned
        .entry((why, question.to_string()))
        .or_default()
        .add(r);
    if r.version.is_none() {
        out.orphan_rows.push((why, r.clone()));
        if let Some(section) = section_of.get(question) {
            notice(out, r, section);
        }
    }
}

fn notice(out: &mut Impact, r: &StoredItem, section: &str) {
    if !section.is_empty() {
        out.notices
            .entry(r.response_id.clone())
            .or_default()
            .insert(section.to_string());
    }
}

/// A carried answer (see [`crate::survey::rounds`]) of old question `question_id` under the new
/// version: the question now holding it and the items that still fit (codes renamed as the file
/// maps them; an option no longer offered is dropped, so the answer reads as changed). None when
/// the question is gone or nothing changes.
pub fn carried_fate(
    old: &Survey,
    new: &Survey,
    question_id: &str,
    items: &[Item],
) -> Option<(String, Vec<Item>)> {
    let oq = old.question(question_id)?;
    let to = new.question(new.renamed.question(question_id))?;
    // As `impact` does for stored rows: an item mapped onto one the answer already holds (two
    // old options made one) is left out, so that the answer is carried once.
    let mut taken: HashSet<String> = items.iter().map(|i| i.item.clone()).collect();
    let mut kept = Vec::new();
    for it in items {
        let row = StoredItem {
            response_id: String::new(),
            country: String::new(),
            version: None,
            question_id: question_id.to_string(),
            item: it.item.clone(),
            value: it.value.clone(),
            num: it.num,
        };
        if let Ok((_, item, value)) = fate(oq, new, &row) {
            if item != it.item && !taken.insert(item.clone()) {
                continue;
            }
            kept.push(Item {
                item,
                value,
                num: it.num,
            });
        }
    }
    (to.id != question_id || kept != items).then(|| (to.id.clone(), kept))
}

/// Where a stored row of old question `oq` goes in the new version: (question, item, value),
/// or why it no longer fits.
fn fate(oq: &Question, new: &Survey, r: &StoredItem) -> Result<(String, String, String), Orphan> {
    let renames = &new.renamed;
    let to = renames.question(&oq.id);
    let nq = new.question(to).ok_or(Orphan::RemovedQuestion)?;
    if !compatible(&oq.kind, &nq.kind) {
        return Err(Orphan::TypeChanged);
    }
    let q = nq.id.clone();
    let keep = |item: &str, value: &str| Ok((q.clone(), item.to_string(), value.to_string()));
    if r.item.starts_with('#') {
        // "Not known", "not applicable" and the "other" text.
        if r.item == OTHER_ITEM && !nq.kind.has_other() && oq.kind.has_other() {
            return Err(Orphan::RemovedOption);
        }
        return keep(&r.item, &r.value);
    }
    // An old code: mapped, still offered, or (if it was valid before) removed.
    let code = |list: OptionList, code: &str| -> Result<String, Orphan> {
        let mapped = map_code(renames, &nq.id, list, code);
        if nq.kind.has_code(list, mapped) || !oq.kind.has_code(list, code) {
            Ok(mapped.to_string())
        } else {
            Err(Orphan::RemovedOption)
        }
    };
    match &nq.kind {
        QuestionKind::SingleChoice { .. } => keep(&r.item, &code(OptionList::Options, &r.value)?),
        QuestionKind::MultipleChoice { .. } => keep(&code(OptionList::Options, &r.item)?, &r.value),
        QuestionKind::Matrix { .. } => keep(
            &code(OptionList::Rows, &r.item)?,
            &code(OptionList::Scale, &r.value)?,
        ),
        _ => keep(&r.item, &r.value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::survey::parse_survey;

    const OLD: &str = r#"id = "s"
title = "T"
[[sections]]
id = "a"
title = "A"
[[sections.questions]]
id = "colour"
type = "single_choice"
text = "Colour"
options = [{ code = "red", label = "Red" }, { code = "blue", label = "Blue" }, { code = "green", label = "Green" }]
[[sections.questions]]
id = "tools"
type = "multiple_choice"
text = "Tools"
options = [{ code = "x", label = "X" }, { code = "y", label = "Y" }]
[[sections.questions]]
id = "old_name"
type = "short_text"
text = "Name"
[[sections.questions]]
id = "staff"
type = "integer"
text = "Staff"
[[sections.questions]]
id = "gone"
type = "yes_no"
text = "Gone"
[[sections]]
id = "b"
title = "B"
[[sections.questions]]
id = "detail"
type = "long_text"
text = "Detail"
show_if = "colour == \"red\""
"#;

    fn survey(source: &str) -> Survey {
        let (s, d) = parse_survey("s.toml", source);
        s.unwrap_or_else(|| panic!("{d:?}"))
    }

    fn row(response: &str, q: &str, item: &str, value: &str) -> StoredItem {
        StoredItem {
            response_id: response.into(),
            country: format!("C{response}"),
            version: None,
            question_id: q.into(),
            item: item.into(),
            value: value.into(),
            num: None,
        }
    }

    #[test]
    fn a_typo_fix_changes_nothing() {
        let new = OLD.replace("text = \"Colour\"", "text = \"Color\"");
        let (old, new) = (survey(OLD), survey(&new));
        let rows = [
            row("1", "colour", "", "red"),
            row("1", "detail", "", "text"),
        ];
        let impact = impact(&old, &new, &rows);
        assert!(impact.changes.is_empty(), "{:?}", impact.changes);
        assert!(!impact.orphans());
        assert!(impact.remaps.is_empty() && impact.notices.is_empty());
        assert!(impact
            .report("s", "a", "b")
            .contains("no stored answer is affected"));
    }

    #[test]
    fn every_kind_of_change_is_found() {
        let new = OLD
            .replace(
                "{ code = \"blue\", label = \"Blue\" }, { code = \"green\", label = \"Green\" }",
                "{ code = \"navy\", label = \"Navy\", was = \"blue\" }",
            )
            .replace("id = \"old_name\"", "id = \"name\"")
            .replace("type = \"integer\"", "type = \"date\"")
            .replace(
                "[[sections.questions]]\nid = \"gone\"\ntype = \"yes_no\"\ntext = \"Gone\"\n",
                "",
            )
            .replace("colour == \\\"red\\\"", "colour == \\\"navy\\\"")
            + "[[renamed]]\nfrom = \"old_name\"\nto = \"name\"\n";
        let (old, new) = (survey(OLD), survey(&new));
        let c = compare(&old, &new);
        assert_eq!(c.removed_questions, vec!["gone".to_string()]);
        assert_eq!(
            c.renamed_questions,
            vec![("old_name".into(), "name".into())]
        );
        assert_eq!(
            c.removed_options,
            vec![("colour".into(), OptionList::Options, "green".into())]
        );
        assert_eq!(
            c.remapped_options,
            vec![(
                "colour".into(),
                OptionList::Options,
                "blue".into(),
                "navy".into()
            )]
        );
        assert_eq!(
            c.type_changes,
            vec![("staff".into(), "integer", "date", false)]
        );
        assert_eq!(
            c.condition_changes,
            vec![(
                "question",
                "detail".into(),
                "colour == \"red\"".into(),
                "colour == \"navy\"".into()
            )]
        );
        assert!(c.added_questions.is_empty());

        let rows = [
            row("1", "colour", "", "blue"),
            row("1", "old_name", "", "Ann"),
            row("1", "gone", "", "yes"),
            row("2", "colour", "", "green"),
            row("2", "staff", "", "4"),
            row("3", "colour", "", "red"),
            row("3", "detail", "", "kept but hidden"),
        ];
        let i = impact(&old, &new, &rows);
        assert!(i.orphans());
        let holders = |why, q: &str| i.orphaned[&(why, q.to_string())].responses.len();
        assert_eq!(holders(Orphan::RemovedQuestion, "gone"), 1);
        assert_eq!(holders(Orphan::RemovedOption, "colour"), 1);
        assert_eq!(holders(Orphan::TypeChanged, "staff"), 1);
        let moved: Vec<_> = (i.remaps.iter())
            .map(|m| {
                (
                    m.row.response_id.as_str(),
                    m.question_id.as_str(),
                    m.value.as_str(),
                )
            })
            .collect();
        assert_eq!(moved, vec![("1", "colour", "navy"), ("1", "name", "Ann")]);
        assert_eq!(i.newly_hidden["detail"].responses.len(), 1);
        assert!(i.hidden["3"].contains("detail"));
        assert_eq!(i.orphan_rows.len(), 3);
        let sections: Vec<_> = i.notices["3"].iter().cloned().collect();
        assert_eq!(sections, vec!["b".to_string()]);
        let report = i.report("s", "0123456789abcdef", "fedcba9876543210");
        for line in [
            "version 0123456789ab -> fedcba987654",
            "question 'gone' removed: answers of 1 response (1 country) are kept but no longer shown",
            "question 'old_name' renamed 'name': answers of 1 response (1 country) follow it",
            "option 'green' of question 'colour' removed: answers of 1 response (1 country) point to removed options",
            "option 'blue' of question 'colour' is now 'navy'",
            "type of question 'staff' changed from integer to date: answers of 1 response (1 country) no longer fit",
            "condition of question 'detail' changed from colour == \"red\" to colour == \"navy\"",
            "answers of 1 response (1 country) to question 'detail' become hidden",
        ] {
            assert!(report.contains(line), "{line}\n{report}");
        }
    }

    #[test]
    fn spacing_and_renames_are_no_condition_change() {
        let old = survey(OLD);
        let spaced = survey(&OLD.replace("colour == \\\"red\\\"", "colour   ==  \\\"red\\\""));
        assert!(compare(&old, &spaced).is_empty());
        let renamed = OLD
            .replace("id = \"colour\"", "id = \"hue\"")
            .replace("colour == \\\"red\\\"", "hue == \\\"red\\\"")
            + "[[renamed]]\nfrom = \"colour\"\nto = \"hue\"\n";
        let c = compare(&old, &survey(&renamed));
        assert!(c.condition_changes.is_empty(), "{c:?}");
        assert_eq!(c.renamed_questions.len(), 1);
    }

    #[test]
    fn a_mapping_onto_a_given_answer_is_kept_aside() {
        let new = OLD.replace(
            "options = [{ code = \"x\", label = \"X\" }, { code = \"y\", label = \"Y\" }]",
            "options = [{ code = \"x\", label = \"X\", was = \"y\" }]",
        );
        let (old, new) = (survey(OLD), survey(&new));
        let rows = [
            row("1", "tools", "x", "1"),
            row("1", "tools", "y", "1"),
            row("2", "tools", "y", "1"),
        ];
        let i = impact(&old, &new, &rows);
        assert!(!i.orphans(), "merged answers do not refuse");
        assert_eq!(
            i.orphaned[&(Orphan::Merged, "tools".to_string())]
                .responses
                .len(),
            1
        );
        assert_eq!(i.remaps.len(), 1);
        assert_eq!(i.remaps[0].row.response_id, "2");
        assert_eq!(i.remaps[0].item, "x");
    }

    #[test]
    fn the_report_prints_no_control_character_of_the_file() {
        // A condition comparing a text answer with a string holding terminal escapes.
        let new = OLD.replace(
            "colour == \\\"red\\\"",
            "old_name == \\\"\\u001b]0;owned\\u0007\\u001b[2J\\\"",
        );
        let (old, new) = (survey(OLD), survey(&new));
        let report = impact(&old, &new, &[]).report("s", "a", "b");
        assert!(report.contains("old_name =="), "{report}");
        assert!(
            !report.chars().any(|c| c.is_control() && c != '\n'),
            "{report:?}"
        );
        assert!(report.contains("\\u{1b}[2J"), "{report}");
    }

    #[test]
    fn a_carried_answer_merged_onto_a_given_one_keeps_it_once() {
        let new = OLD.replace(
            "options = [{ code = \"x\", label = \"X\" }, { code = \"y\", label = \"Y\" }]",
            "options = [{ code = \"x\", label = \"X\", was = \"y\" }]",
        );
        let (old, new) = (survey(OLD), survey(&new));
        let item = |code: &str| Item {
            item: code.into(),
            value: "1".into(),
            num: None,
        };
        // As the stored draft becomes: the moved `y` is kept aside, `x` stays, once.
        assert_eq!(
            carried_fate(&old, &new, "tools", &[item("y"), item("x")]),
            Some(("tools".to_string(), vec![item("x")]))
        );
        assert_eq!(
            carried_fate(&old, &new, "tools", &[item("y")]),
            Some(("tools".to_string(), vec![item("x")]))
        );
    }
}

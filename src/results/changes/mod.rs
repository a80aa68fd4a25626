//! What changed between two rounds of a survey. Each question of this round is compared with
//! the previous round's answer from the version the response started from (see [`load`]),
//! turned into this round's codes through the carry plan
//! ([`crate::survey::rounds::carry_answer`]), and put in one [`Class`]. Questions a condition
//! hides count as not answered, in either round.
//!
//! Per country the comparison uses the response's current answers; overall it uses each
//! response's counted (submitted) version, as the results pages do ([`overall`]). For choice
//! questions (single, multiple, yes/no, matrix rows) the overall figures also count the
//! movement between options (from -> to), in all and by region and income group.
//!
//! Nothing here knows HTTP; the queries are in [`load`].

pub mod load;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Serialize;

use crate::reference::Countries;
use crate::survey::answer::{
    escape_of, is_value_item, same_items, Answers, CountryCodes, Item, Visibility,
};
use crate::survey::rounds::carry_answer;
use crate::survey::{Question, QuestionKind, Survey};

/// How one question's answer stands against the previous round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Answered in both rounds, differently.
    Changed,
    /// The same answer, confirmed "still accurate" by the country.
    ConfirmedUnchanged,
    /// The same answer, not confirmed (yet).
    Unchanged,
    /// Answered now, with no previous answer: a new question, or one left empty last time.
    NewlyAnswered,
    /// Answered in the previous round, empty (or hidden) now.
    NoLongerAnswered,
    /// Answered in neither round.
    NotAnswered,
    /// Asked afresh: a question the previous round also had that does not carry (a file
    /// question, one listed in `not_carried`, or one whose type changed). Not compared.
    NotCarried,
}

impl Class {
    pub const ALL: [Class; 7] = [
        Class::Changed,
        Class::ConfirmedUnchanged,
        Class::Unchanged,
        Class::NewlyAnswered,
        Class::NoLongerAnswered,
        Class::NotAnswered,
        Class::NotCarried,
    ];

    /// The code used in exports and message ids: `changed`, `confirmed`, `unconfirmed`, `new`,
    /// `cleared`, `unanswered`, `not_carried`.
    pub fn code(self) -> &'static str {
        match self {
            Class::Changed => "changed",
            Class::ConfirmedUnchanged => "confirmed",
            Class::Unchanged => "unconfirmed",
            Class::NewlyAnswered => "new",
            Class::NoLongerAnswered => "cleared",
            Class::NotAnswered => "unanswered",
            Class::NotCarried => "not_carried",
        }
    }

    fn index(self) -> usize {
        Class::ALL.iter().position(|c| *c == self).unwrap_or(0)
    }
}

/// The two rounds compared: this one and the one it follows.
#[derive(Clone, Copy)]
pub struct Rounds<'a> {
    pub current: &'a Survey,
    pub previous: &'a Survey,
}

impl<'a> Rounds<'a> {
    /// The rounds of `survey`, when it follows another whose definition is loaded.
    pub fn of(survey: &'a Survey) -> Option<Rounds<'a>> {
        let previous = survey.previous.as_ref()?.definition.as_deref()?;
        Some(Rounds {
            current: survey,
            previous,
        })
    }

    /// The previous round's question `q` takes its answer from, when it carries.
    pub fn source(
        &self,
        q: &Question,
    ) -> Option<(&'a Question, &'a crate::survey::rounds::Carried)> {
        let carried = self.current.previous.as_ref()?.plan.get(&q.id)?;
        Some((self.previous.question(&carried.from)?, carried))
    }
}

/// One question of this round compared with the previous round.
#[derive(Debug, Clone, PartialEq)]
pub struct Compared {
    /// This round's question id.
    pub question: String,
    /// The previous round's question it carries from (None: it does not carry).
    pub from_question: Option<String>,
    pub class: Class,
    /// The previous answer in this round's codes (None: nothing carried from it).
    pub old: Option<Vec<Item>>,
    /// The previous answer as given, when it exists but nothing of it carries (an option left
    /// behind), or when the question is asked afresh: shown with the previous round's
    /// question.
    pub old_as_given: Option<Vec<Item>>,
    /// This round's answer (None: empty or hidden).
    pub new: Option<Vec<Item>>,
}

/// The answers a condition does not hide, empty ones left out.
fn shown(survey: &Survey, answers: &Answers) -> Answers {
    let vis = Visibility::evaluate(survey, answers);
    answers
        .iter()
        .filter(|(q, items)| vis.question(q) && !items.is_empty())
        .map(|(q, items)| (q.clone(), items.clone()))
        .collect()
}

/// Compare every question of this round, in survey order. `current` and `previous` are the
/// two responses' answers (hidden ones are left out here); `confirmed` tells whether the
/// country confirmed a carried answer "still accurate".
pub fn compare(
    rounds: Rounds,
    current: &Answers,
    previous: Option<&Answers>,
    confirmed: &dyn Fn(&str) -> bool,
    countries: &dyn CountryCodes,
) -> Vec<Compared> {
    let current = shown(rounds.current, current);
    let previous = previous.map(|p| shown(rounds.previous, p));
    rounds
        .current
        .questions()
        .map(|q| {
            let new = current.get(&q.id).cloned();
            let Some((from, carried)) = rounds.source(q) else {
                let asked_before = rounds.previous.question(&q.id).is_some();
                let old_as_given = previous
                    .as_ref()
                    .filter(|_| asked_before)
                    .and_then(|p| p.get(&q.id).cloned());
                let class = match (asked_before, &new) {
                    (true, _) => Class::NotCarried,
                    (false, Some(_)) => Class::NewlyAnswered,
                    (false, None) => Class::NotAnswered,
                };
                return Compared {
                    question: q.id.clone(),
                    from_question: None,
                    class,
                    old: None,
                    old_as_given,
                    new,
                };
            };
            let given = previous.as_ref().and_then(|p| p.get(&from.id));
            let old = given.and_then(|items| carry_answer(carried, from, q, items, countries));
            let class = match (&old, &new) {
                (None, None) => Class::NotAnswered,
                (None, Some(_)) => Class::NewlyAnswered,
                (Some(_), None) => Class::NoLongerAnswered,
                (Some(o), Some(n)) if same_items(o, n) => {
                    if confirmed(&q.id) {
                        Class::ConfirmedUnchanged
                    } else {
                        Class::Unchanged
                    }
                }
                (Some(_), Some(_)) => Class::Changed,
            };
            Compared {
                question: q.id.clone(),
                from_question: Some(from.id.clone()),
                class,
                old_as_given: if old.is_none() { given.cloned() } else { None },
                old,
                new,
            }
        })
        .collect()
}

/// The "no answer" state in a movement.
pub const NONE: &str = "";
/// A multiple choice's option ticked, in a movement.
pub const TICKED: &str = "#ticked";

/// One answer's movement between rounds for a choice question: (row, from, to). The row is ""
/// for single choice and yes/no, the option for a multiple choice (from/to: [`TICKED`] or
/// [`NONE`]), the matrix row for a matrix (from/to: scale codes). An escape ("not known", "not
/// applicable") is a state of its own (its item code), in row "" of every kind. Nothing when
/// neither round has an answer, or the question is not a choice.
pub fn moves(
    q: &Question,
    old: Option<&[Item]>,
    new: Option<&[Item]>,
) -> Vec<(String, String, String)> {
    if old.is_none() && new.is_none() {
        return Vec::new();
    }
    let escape =
        |items: Option<&[Item]>| items.and_then(escape_of).map(|(k, _)| k.item().to_string());
    match &q.kind {
        QuestionKind::SingleChoice { .. } | QuestionKind::YesNo => {
            let state = |items: Option<&[Item]>| {
                escape(items).unwrap_or_else(|| {
                    items
                        .and_then(|i| i.iter().find(|i| i.item.is_empty()))
                        .map(|i| i.value.clone())
                        .unwrap_or_default()
                })
            };
            vec![(String::new(), state(old), state(new))]
        }
        QuestionKind::MultipleChoice { .. } | QuestionKind::Matrix { .. } => {
            let matrix = matches!(q.kind, QuestionKind::Matrix { .. });
            let cells = |items: Option<&[Item]>| -> BTreeMap<String, String> {
                items
                    .unwrap_or_default()
                    .iter()
                    .filter(|i| is_value_item(&i.item))
                    .map(|i| {
                        let to = if matrix {
                            i.value.clone()
                        } else {
                            TICKED.into()
                        };
                        (i.item.clone(), to)
                    })
                    .collect()
            };
            let (a, b) = (cells(old), cells(new));
            let mut out = Vec::new();
            let (ea, eb) = (escape(old), escape(new));
            if ea.is_some() || eb.is_some() {
                out.push((
                    String::new(),
                    ea.unwrap_or_default(),
                    eb.unwrap_or_default(),
                ));
            }
            // Rows and options in the definition's order.
            let order: Vec<String> = match &q.kind {
                QuestionKind::Matrix { rows, .. } => rows.iter().map(|r| r.code.clone()).collect(),
                _ => q
                    .kind
                    .options()
                    .iter()
                    .map(|o| o.code.clone())
                    .chain(std::iter::once(crate::survey::OTHER_CODE.to_string()))
                    .collect(),
            };
            for row in order {
                let (f, t) = (a.get(&row), b.get(&row));
                if f.is_none() && t.is_none() {
                    continue;
                }
                out.push((
                    row,
                    f.cloned().unwrap_or_default(),
                    t.cloned().unwrap_or_default(),
                ));
            }
            out
        }
        _ => Vec::new(),
    }
}

/// A result key of the previous round's question (an option code, `yes`/`no`, `row=scale` for a
/// matrix, as [`crate::results::aggregate::choice_counts`] gives them) in this round's codes;
/// None for an option left behind.
pub fn renamed_key(
    carried: &crate::survey::rounds::Carried,
    from: &QuestionKind,
    key: &str,
) -> Option<String> {
    let target = |map: &BTreeMap<String, String>, code: &str| -> Option<String> {
        match map.get(code).map(String::as_str) {
            Some("") => None,
            Some(new) => Some(new.to_string()),
            None => Some(code.to_string()),
        }
    };
    match from {
        QuestionKind::Matrix { .. } => {
            let (row, scale) = key.split_once('=')?;
            Some(format!(
                "{}={}",
                target(&carried.rows, row)?,
                target(&carried.options, scale)?
            ))
        }
        QuestionKind::SingleChoice { .. }
        | QuestionKind::MultipleChoice { .. }
        | QuestionKind::YesNo => target(&carried.options, key),
        _ => Some(key.to_string()),
    }
}

/// Where a movement's row comes in the definition: the whole answer first, then options or
/// matrix rows in order.
fn row_rank(q: &Question, row: &str) -> usize {
    if row.is_empty() {
        return 0;
    }
    let codes: Vec<&str> = match &q.kind {
        QuestionKind::Matrix { rows, .. } => rows.iter().map(|r| r.code.as_str()).collect(),
        kind => kind.options().iter().map(|o| o.code.as_str()).collect(),
    };
    codes
        .iter()
        .position(|c| *c == row)
        .map_or(usize::MAX - 1, |p| p + 1)
}

/// Where a movement's state comes: options (yes/no, a matrix's scale) in the definition's
/// order, "other", ticked, the non-answers, then no answer.
fn state_rank(q: &Question, state: &str) -> usize {
    let codes: Vec<&str> = match &q.kind {
        QuestionKind::YesNo => vec!["yes", "no"],
        QuestionKind::Matrix { scale, .. } => scale.iter().map(|s| s.code.as_str()).collect(),
        kind => kind.options().iter().map(|o| o.code.as_str()).collect(),
    };
    if let Some(p) = codes.iter().position(|c| *c == state) {
        return p;
    }
    let n = codes.len();
    match state {
        crate::survey::OTHER_CODE => n,
        TICKED => n + 1,
        NONE => n + 5,
        s => match crate::survey::EscapeKind::of_item(s) {
            Some(crate::survey::EscapeKind::NotKnown) => n + 2,
            Some(crate::survey::EscapeKind::NotApplicable) => n + 3,
            None => n + 4,
        },
    }
}

/// Whether the overall page counts movement between options for a question of this kind.
pub fn is_choice(kind: &QuestionKind) -> bool {
    matches!(
        kind,
        QuestionKind::SingleChoice { .. }
            | QuestionKind::MultipleChoice { .. }
            | QuestionKind::YesNo
            | QuestionKind::Matrix { .. }
    )
}

/// One response as the overall figures count it: its counted version and the previous
/// round's answers it is compared with.
pub struct Counted {
    pub iso3: String,
    pub current: Answers,
    pub previous: Option<Answers>,
    /// This round's questions whose carried answer the country confirmed.
    pub confirmed: HashSet<String>,
}

/// Counts in all, by region and by income group.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Tally {
    pub all: usize,
    pub by_region: BTreeMap<String, usize>,
    pub by_income: BTreeMap<String, usize>,
}

impl Tally {
    fn add(&mut self, region: &str, income: &str) {
        self.all += 1;
        *self.by_region.entry(region.to_string()).or_default() += 1;
        *self.by_income.entry(income.to_string()).or_default() += 1;
    }
}

/// One question's overall figures.
#[derive(Debug, Clone, PartialEq)]
pub struct QuestionTotals {
    pub question: String,
    /// Responses per class, in [`Class::ALL`] order.
    pub classes: [usize; 7],
    /// (row, from, to) -> how many responses moved so, in the order first met (the
    /// definition's order of rows).
    pub moves: Vec<((String, String, String), Tally)>,
}

impl QuestionTotals {
    pub fn count(&self, class: Class) -> usize {
        self.classes[class.index()]
    }
}

/// The overall figures: how many responses were compared, and per question.
#[derive(Debug, Clone, PartialEq)]
pub struct Overall {
    pub responses: usize,
    /// Region and income group codes of the responses compared, for the columns.
    pub regions: BTreeSet<String>,
    pub incomes: BTreeSet<String>,
    pub questions: Vec<QuestionTotals>,
}

/// Count every response's classes and movements, question by question in survey order.
pub fn overall(rounds: Rounds, responses: &[Counted], countries: &Countries) -> Overall {
    let mut questions: Vec<QuestionTotals> = rounds
        .current
        .questions()
        .map(|q| QuestionTotals {
            question: q.id.clone(),
            classes: [0; 7],
            moves: Vec::new(),
        })
        .collect();
    let (mut regions, mut incomes) = (BTreeSet::new(), BTreeSet::new());
    for r in responses {
        let (region, income) = countries
            .get(&r.iso3)
            .map(|c| (c.region_code.as_str(), c.income_fy09.as_str()))
            .unwrap_or(("", ""));
        regions.insert(region.to_string());
        incomes.insert(income.to_string());
        let compared = compare(
            rounds,
            &r.current,
            r.previous.as_ref(),
            &|q| r.confirmed.contains(q),
            countries,
        );
        for (c, (totals, q)) in compared
            .iter()
            .zip(questions.iter_mut().zip(rounds.current.questions()))
        {
            totals.classes[c.class.index()] += 1;
            if c.class == Class::NotCarried || !is_choice(&q.kind) {
                continue;
            }
            for m in moves(q, c.old.as_deref(), c.new.as_deref()) {
                match totals.moves.iter_mut().find(|(k, _)| *k == m) {
                    Some((_, tally)) => tally.add(region, income),
                    None => {
                        let mut tally = Tally::default();
                        tally.add(region, income);
                        totals.moves.push((m, tally));
                    }
                }
            }
        }
    }
    // Rows, then from and to, in the definition's order.
    for totals in &mut questions {
        if let Some(q) = rounds.current.question(&totals.question) {
            totals.moves.sort_by_key(|((row, from, to), _)| {
                (row_rank(q, row), state_rank(q, from), state_rank(q, to))
            });
        }
    }
    Overall {
        responses: responses.len(),
        regions,
        incomes,
        questions,
    }
}

#[cfg(test)]
mod tests;

//! Reading which round a survey follows: `previous`, `confirm_carried` and `[[carry]]`.
//!
//! Only what one file can tell is checked here; whether the mappings fit the previous survey
//! is checked once every file is read ([`crate::survey::rounds::plan`]).

use std::collections::{BTreeMap, HashSet};

use toml::de::DeValue;

use super::references::check_identifier;
use super::table::Table;
use super::Cx;
use crate::survey::model::*;

pub(super) const CARRY_KEYS: &[&str] = &["from", "to", "options", "rows"];

impl Cx<'_> {
    pub(super) fn place(&self, offset: usize) -> Place {
        let (line, column) = self.position(offset);
        Place { line, column }
    }
}

/// The survey's previous round, if it declares one.
pub(super) fn previous_round(cx: &mut Cx, root: &Table) -> Option<PreviousRound> {
    let previous = root.string(cx, "previous");
    let confirm = root.bool(cx, "confirm_carried");
    let carry_items = root.items(cx, "carry");
    let not_carried = root.string_list(cx, "not_carried");
    let Some(previous) = previous else {
        for key in ["confirm_carried", "carry", "not_carried"] {
            if root.get(key).is_some() {
                cx.error(
                    root.key_span(key),
                    format!(
                        "'{key}' needs 'previous = \"<survey id>\"', the round this one follows"
                    ),
                );
            }
        }
        return None;
    };
    check_identifier(cx, &previous, "previous survey id");
    let mut rules = Vec::new();
    let mut targets = HashSet::new();
    for item in carry_items {
        let Some(t) = Table::new(cx, item, "a [[carry]] mapping".into(), CARRY_KEYS) else {
            continue;
        };
        let (Some(from), Some(to)) = (t.required_string(cx, "from"), t.required_string(cx, "to"))
        else {
            continue;
        };
        if !targets.insert(to.get_ref().clone()) {
            cx.error(
                to.span(),
                format!(
                    "question '{}' is already the target of a [[carry]] mapping",
                    to.get_ref()
                ),
            );
        }
        let options = code_map(cx, &t, "options");
        let rows = code_map(cx, &t, "rows");
        rules.push(CarryRule {
            from_at: cx.place(from.span().start),
            to_at: cx.place(to.span().start),
            options_at: cx.place(t.key_span("options").start),
            rows_at: cx.place(t.key_span("rows").start),
            from: from.into_inner(),
            to: to.into_inner(),
            options,
            rows,
        });
    }
    Some(PreviousRound {
        at: cx.place(previous.span().start),
        survey: previous.into_inner(),
        confirm_carried: confirm.unwrap_or(true),
        rules,
        not_carried_at: not_carried
            .iter()
            .map(|q| cx.place(q.span().start))
            .collect(),
        not_carried: not_carried.into_iter().map(|q| q.into_inner()).collect(),
        plan: Default::default(),
        definition: None,
    })
}

/// `options = { old = "new", dropped = "" }`: codes of the previous round to codes of this one.
fn code_map(cx: &mut Cx, t: &Table, key: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let Some(v) = t.get(key) else {
        return map;
    };
    let DeValue::Table(pairs) = v.get_ref() else {
        t.wrong_type(cx, key, "a table of old code = \"new code\"", v);
        return map;
    };
    for (old, new) in pairs.iter() {
        match new.get_ref() {
            DeValue::String(code) => {
                map.insert(old.get_ref().to_string(), code.to_string());
            }
            other => cx.error(
                new.span(),
                format!(
                    "'{}' in '{key}' of {} must map to a code (a string; \"\" to leave it behind), found {}",
                    old.get_ref(),
                    t.what,
                    other.type_str()
                ),
            ),
        }
    }
    map
}

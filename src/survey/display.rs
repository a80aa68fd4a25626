//! An answer as a reader sees it: option labels, country names, matrix rows, in a language.

use crate::i18n::translate;

use super::answer::{escape_of, Item, OTHER_ITEM};
use super::{EscapeKind, Question, QuestionKind, OTHER_CODE};

/// The message id naming a non-answer ("Not known", "Not applicable").
pub fn escape_label_id(kind: EscapeKind) -> &'static str {
    match kind {
        EscapeKind::NotKnown => "escape-not-known",
        EscapeKind::NotApplicable => "escape-not-applicable",
    }
}

/// An answer as a reader sees it: option labels, country names, matrix rows; "Not known: the
/// reason" for a non-answer.
pub fn display_value(
    q: &Question,
    items: &[Item],
    lang: &str,
    country_name: &dyn Fn(&str) -> String,
) -> String {
    if items.is_empty() {
        return translate(lang, "conflict-empty", &[]);
    }
    if let Some((kind, reason)) = escape_of(items) {
        let label = translate(lang, escape_label_id(kind), &[]);
        return if reason.is_empty() {
            label
        } else {
            translate(
                lang,
                "escape-with-reason",
                &[("escape", label), ("reason", reason.to_string())],
            )
        };
    }
    let label_of = |code: &str| -> String {
        if code == OTHER_CODE {
            return translate(lang, "other-option", &[]);
        }
        q.kind
            .options()
            .iter()
            .find(|o| o.code == code)
            .map(|o| o.label.get(lang).to_string())
            .unwrap_or_else(|| code.to_string())
    };
    let other = items
        .iter()
        .find(|i| i.item == OTHER_ITEM)
        .map(|i| i.value.clone());
    let main: Vec<String> = match &q.kind {
        QuestionKind::MultipleChoice { .. } => items
            .iter()
            .filter(|i| i.item != OTHER_ITEM)
            .map(|i| label_of(&i.item))
            .collect(),
        QuestionKind::SingleChoice { .. } => items
            .iter()
            .filter(|i| i.item != OTHER_ITEM)
            .map(|i| label_of(&i.value))
            .collect(),
        QuestionKind::YesNo => items
            .iter()
            .map(|i| translate(lang, &i.value, &[]))
            .collect(),
        QuestionKind::Country => items.iter().map(|i| country_name(&i.value)).collect(),
        QuestionKind::Matrix { rows, scale } => rows
            .iter()
            .filter_map(|r| {
                let cell = items.iter().find(|i| i.item == r.code)?;
                let s = scale.iter().find(|s| s.code == cell.value)?;
                Some(format!("{}: {}", r.label.get(lang), s.label.get(lang)))
            })
            .collect(),
        QuestionKind::Integer { .. } | QuestionKind::Decimal { .. } => items
            .iter()
            .map(|i| crate::i18n::format_number(lang, &i.value))
            .collect(),
        QuestionKind::Percentage => items
            .iter()
            .map(|i| crate::i18n::format_percent(lang, &i.value))
            .collect(),
        QuestionKind::File { .. } => super::answer::FileItem::all(items)
            .into_iter()
            .map(|f| f.name)
            .collect(),
        QuestionKind::ShortText { .. }
        | QuestionKind::LongText { .. }
        | QuestionKind::Date { .. }
        | QuestionKind::Email
        | QuestionKind::Url => items.iter().map(|i| i.value.clone()).collect(),
    };
    let mut text = main.join("\n");
    if let Some(o) = other {
        text.push_str(&format!(" ({o})"));
    }
    text
}

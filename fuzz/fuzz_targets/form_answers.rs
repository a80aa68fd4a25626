//! A respondent's form post, as the web layer reads it: the urlencoded body decoded to
//! (name, value) pairs, grouped by question, and every question of the shipped surveys
//! validated; then the answers that passed go through visibility, missing answers and section
//! progress, as a saved response does.
#![no_main]

use std::sync::LazyLock;

use coherence::reference::Countries;
use coherence::respond::group_form;
use coherence::survey::answer::{
    missing_answers, section_progress, validate, Answers, RawAnswer, Visibility,
};
use coherence::survey::{parse_survey, QuestionKind, Survey};
use libfuzzer_sys::fuzz_target;

static SURVEYS: LazyLock<Vec<Survey>> = LazyLock::new(|| {
    [
        (
            "coherence-2008.toml",
            include_str!("../../surveys/coherence-2008.toml"),
        ),
        (
            "focal-points.toml",
            include_str!("../../surveys/focal-points.toml"),
        ),
    ]
    .into_iter()
    .map(|(name, source)| match parse_survey(name, source) {
        (Some(s), _) => s,
        (None, diagnostics) => panic!("shipped survey {name} does not load: {diagnostics:?}"),
    })
    .collect()
});

static COUNTRIES: LazyLock<Countries> =
    LazyLock::new(|| Countries::load().expect("the shipped country list loads"));

fuzz_target!(|data: &[u8]| {
    // The server refuses a body that does not decode (400, `files::read_section_post`); here it
    // is an empty form, so that every input reaches the grouping and the checks.
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(data).unwrap_or_default();
    let raw = group_form(pairs);
    let empty = RawAnswer::default();
    for survey in SURVEYS.iter() {
        let mut answers = Answers::new();
        for section in &survey.sections {
            for q in &section.questions {
                let given = raw.get(&q.id).unwrap_or(&empty);
                let Ok(items) = validate(q, given, &*COUNTRIES) else {
                    continue;
                };
                check_items(&q.kind, &items);
                // A saved answer is shown in the form again and may be saved again unchanged:
                // validating what the form shows must give the same items back.
                let shown = RawAnswer::from_items(&q.kind, &items);
                let again = validate(q, &shown, &*COUNTRIES);
                assert_eq!(
                    again.as_ref(),
                    Ok(&items),
                    "question {}: re-saving {shown:?} does not give the saved answer back",
                    q.id
                );
                if !items.is_empty() {
                    answers.insert(q.id.clone(), items);
                }
            }
        }
        let vis = Visibility::evaluate(survey, &answers);
        for m in missing_answers(survey, &answers, &vis) {
            assert!(vis.section(&m.section) && vis.question(&m.question));
        }
        for section in &survey.sections {
            let _ = section_progress(section, &answers, &vis);
        }
    }
});

/// The shape of stored items: what the SQL aggregation relies on.
fn check_items(kind: &QuestionKind, items: &[coherence::survey::answer::Item]) {
    // "Not known" or "not applicable": one item alone, its value the reason (maybe empty).
    if items
        .iter()
        .any(|i| coherence::survey::EscapeKind::of_item(&i.item).is_some())
    {
        assert_eq!(items.len(), 1);
        assert!(items[0].num.is_none());
        return;
    }
    match kind {
        QuestionKind::MultipleChoice { .. } => {
            assert!(items.windows(2).all(|w| w[0].item < w[1].item));
        }
        QuestionKind::Matrix { .. } => {
            assert!(items.iter().all(|i| !i.value.is_empty()));
        }
        QuestionKind::SingleChoice { .. } => assert!(items.len() <= 2),
        _ => assert!(items.len() <= 1 && items.iter().all(|i| i.item.is_empty())),
    }
    for i in items {
        assert!(!i.value.is_empty() || i.item.is_empty());
        if let Some(n) = i.num {
            assert!(n.is_finite());
        }
    }
}

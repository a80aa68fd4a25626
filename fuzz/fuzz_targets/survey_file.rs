//! A survey definition file (TOML) as `coherence check` and the server read it: any text must
//! give diagnostics, never a panic, and every diagnostic must point inside the file.
#![no_main]

use coherence::survey::answer::{
    missing_answers, section_progress, Answers, CountryCodes, Item, Visibility,
};
use coherence::survey::load::translation_warnings;
use coherence::survey::rounds::{carry_answer, plan};
use coherence::survey::{parse_survey, Severity};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let (survey, diagnostics) = parse_survey("fuzz.toml", source);
    let lines: Vec<&str> = source.split('\n').collect();
    // Diagnostics of a population list file the survey names point into that file instead.
    for d in diagnostics.iter().filter(|d| d.file == "fuzz.toml") {
        assert!(d.line >= 1, "line 0 in {d}");
        assert!(d.column >= 1, "column 0 in {d}");
        assert!(d.line <= lines.len(), "line past the end in {d}");
        // A column may point one past the last character (the end of the line).
        let width = lines[d.line - 1].chars().count();
        assert!(d.column <= width + 1, "column past the line's end in {d}");
        let _ = d.to_string();
    }
    if let Some(survey) = survey {
        assert!(
            !diagnostics.iter().any(|d| d.severity == Severity::Error),
            "a survey came back with errors"
        );
        let _ = translation_warnings(&survey);
        // A fresh response: every condition evaluated against no answers.
        let answers = Answers::new();
        let vis = Visibility::evaluate(&survey, &answers);
        let _ = missing_answers(&survey, &answers, &vis);
        for section in &survey.sections {
            let _ = section_progress(section, &answers, &vis);
        }
        // A survey that follows a round: its mappings checked against itself as the previous
        // round point inside the file too, and every question's own answer carries.
        if survey.previous.is_some() {
            let (plan, problems) = plan(&survey, &survey);
            for d in &problems {
                assert!(
                    d.line >= 1 && d.line <= lines.len(),
                    "line outside the file in {d}"
                );
                let width = lines[d.line - 1].chars().count();
                assert!(
                    d.column >= 1 && d.column <= width + 1,
                    "column outside in {d}"
                );
            }
            for (to, carried) in &plan.questions {
                if let (Some(from), Some(q)) = (survey.question(&carried.from), survey.question(to))
                {
                    let items = [Item::scalar("x".into(), None)];
                    let _ = carry_answer(carried, from, q, &items, &Everyone);
                }
            }
        }
    }
});

struct Everyone;

impl CountryCodes for Everyone {
    fn is_country(&self, _: &str) -> bool {
        true
    }
}

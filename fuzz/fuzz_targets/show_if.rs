//! `show_if` conditions: the expression parser on any text, and evaluation of what parses.
//!
//! Input: the expression, then optionally a NUL byte and the answers it is evaluated against,
//! one per line: `q=value` (a scalar), `q.row=value` (a matrix row), `q+option` (a selected
//! option of a multiple choice).
#![no_main]

use std::collections::{HashMap, HashSet};

use coherence::survey::condition::{AnswerLookup, Condition};
use libfuzzer_sys::fuzz_target;

#[derive(Default)]
struct Lookup {
    scalars: HashMap<(String, Option<String>), String>,
    selected: HashSet<(String, String)>,
    answered: HashSet<String>,
}

impl Lookup {
    fn parse(spec: &str) -> Lookup {
        let mut l = Lookup::default();
        for line in spec.lines() {
            if let Some((key, value)) = line.split_once('=') {
                let (q, row) = match key.split_once('.') {
                    Some((q, row)) => (q, Some(row.to_string())),
                    None => (key, None),
                };
                l.answered.insert(q.to_string());
                l.scalars.insert((q.to_string(), row), value.to_string());
            } else if let Some((q, option)) = line.split_once('+') {
                l.answered.insert(q.to_string());
                l.selected.insert((q.to_string(), option.to_string()));
            }
        }
        l
    }
}

impl AnswerLookup for Lookup {
    fn scalar(&self, question: &str, row: Option<&str>) -> Option<String> {
        self.scalars
            .get(&(question.to_string(), row.map(str::to_string)))
            .cloned()
    }
    fn selected(&self, question: &str, option: &str) -> bool {
        self.selected
            .contains(&(question.to_string(), option.to_string()))
    }
    fn answered(&self, question: &str) -> bool {
        self.answered.contains(question)
    }
}

fuzz_target!(|data: &[u8]| {
    let (expr, spec) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(expr) = std::str::from_utf8(expr) else {
        return;
    };
    let spec = String::from_utf8_lossy(spec);
    match Condition::parse(expr) {
        Err(e) => {
            // The loader maps the offset into the file: it must be a place in the expression.
            assert!(e.offset <= expr.len(), "offset {} past the end", e.offset);
            assert!(
                expr.is_char_boundary(e.offset),
                "offset {} inside a character",
                e.offset
            );
            assert!(!e.message.is_empty());
        }
        Ok(cond) => {
            for r in cond.references() {
                assert!(r.offset < expr.len());
                assert!(expr[r.offset..].starts_with(r.question.as_str()));
            }
            let _ = cond.memberships();
            let _ = cond.comparisons();
            let answers = Lookup::parse(&spec);
            let shown = cond.evaluate(&answers);
            let negated = Condition::Not(Box::new(cond.clone()));
            assert_eq!(negated.evaluate(&answers), !shown);
            // With no answers at all, every comparison and membership is false.
            let _ = cond.evaluate(&Lookup::default());
        }
    }
});

//! A filled questionnaire upload: any bytes through `questionnaire::import::read` against the
//! shipped coherence-2008 survey, for the countries of the committed workbooks (written by the
//! app: `coherence questionnaire coherence-2008 --country AGO ...`, see fuzz/corpus/workbook/).
//! Never a panic; libFuzzer's -timeout and -rss_limit_mb bound the time and memory of one
//! input (the archive is bounded before calamine parses it). The committed workbooks read back
//! as ours.
#![no_main]

use std::sync::LazyLock;

use coherence::questionnaire::import::{read, Expect, Foreign};
use coherence::survey::{parse_survey, Survey};
use libfuzzer_sys::fuzz_target;

static SURVEY: LazyLock<Survey> = LazyLock::new(|| {
    let survey = match parse_survey(
        "coherence-2008.toml",
        include_str!("../../surveys/coherence-2008.toml"),
    ) {
        (Some(s), _) => s,
        (None, diagnostics) => panic!("the shipped survey does not load: {diagnostics:?}"),
    };
    // Workbooks the app wrote are recognised (a survey changed since needs new seeds:
    // see the README's Fuzzing section).
    for (country, bytes) in [
        ("AGO", &include_bytes!("../corpus/workbook/ago-en.xlsx")[..]),
        ("TUR", &include_bytes!("../corpus/workbook/tur-es.xlsx")[..]),
        (
            "SWE",
            &include_bytes!("../corpus/workbook/swe-blank.xlsx")[..],
        ),
    ] {
        let expect = Expect {
            survey: &survey,
            country,
            unit: "",
        };
        if let Err(e) = read(bytes, &expect) {
            panic!("the app's own {country} workbook is refused: {e:?}");
        }
    }
    survey
});

/// The respondents of the committed workbooks: a file of another is refused as such before
/// its sections are read, so each is tried in turn.
const COUNTRIES: [&str; 3] = ["AGO", "TUR", "SWE"];

fuzz_target!(|data: &[u8]| {
    let survey = &*SURVEY;
    for country in COUNTRIES {
        let expect = Expect {
            survey,
            country,
            unit: "",
        };
        match read(data, &expect) {
            Err(Foreign::OtherRespondent) => continue,
            Err(e) => {
                let _ = e.message_id();
                return;
            }
            Ok(book) => {
                for sheet in &book.sheets {
                    let mut last = 0;
                    for row in &sheet.rows {
                        assert!(row.row > last, "rows out of order in {}", sheet.sheet);
                        last = row.row;
                        assert!(!row.question.is_empty());
                    }
                }
                return;
            }
        }
    }
});

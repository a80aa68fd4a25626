//! A filled questionnaire upload: any bytes through `questionnaire::import::read` against the
//! shipped coherence-2008 survey, for the countries of the committed workbooks (written by the
//! app: `coherence questionnaire coherence-2008 --country AGO ...`, see fuzz/corpus/workbook/).
//! Never a panic; libFuzzer's -timeout and -rss_limit_mb bound the time and memory of one
//! input (the archive is bounded before calamine parses it). The committed workbooks read back
//! as ours.
//!
//! Bytes mutated inside a zip mostly break its checksums (CRC-32) and stop at the archive
//! check, so an input starting with `ENTRY` is the app's AGO workbook with one entry replaced:
//! the byte after `ENTRY` picks the entry (by index, modulo their number), the rest is its new
//! content, and the archive is written again (stored), so calamine's XML parsing is fuzzed too.
#![no_main]

use std::io::{Cursor, Read, Write};
use std::sync::LazyLock;

use coherence::questionnaire::import::{read, Expect, Foreign};
use coherence::survey::{parse_survey, Survey};
use libfuzzer_sys::fuzz_target;
use zip::write::SimpleFileOptions;

static AGO: &[u8] = include_bytes!("../corpus/workbook/ago-en.xlsx");

/// The entries of the app's AGO workbook, in order.
static ENTRIES: LazyLock<Vec<(String, Vec<u8>)>> = LazyLock::new(|| {
    let mut zip = zip::ZipArchive::new(Cursor::new(AGO)).expect("the seed workbook is a zip");
    (0..zip.len())
        .map(|i| {
            let mut entry = zip.by_index(i).expect("an entry of the seed workbook");
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).expect("the entry inflates");
            (entry.name().to_string(), bytes)
        })
        .collect()
});

/// The AGO workbook with entry `pick` (modulo their number) replaced by `content`.
fn with_entry(pick: u8, content: &[u8]) -> Vec<u8> {
    let entries = &*ENTRIES;
    let replaced = usize::from(pick) % entries.len();
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (i, (name, bytes)) in entries.iter().enumerate() {
        out.start_file(name.as_str(), options).expect("a new entry");
        let bytes = if i == replaced { content } else { bytes };
        out.write_all(bytes).expect("an entry written to memory");
    }
    out.finish().expect("the archive written").into_inner()
}

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

/// calamine panics on some malformed sheets and `read` catches that (the file is not a
/// workbook); libfuzzer-sys's panic hook aborts on any panic before it unwinds, so this hook
/// lets calamine's own panics unwind to `read`. Any other panic still aborts, and one that
/// `read` failed to catch aborts in libfuzzer-sys.
static CALAMINE_PANICS_UNWIND: LazyLock<()> = LazyLock::new(|| {
    let fuzzer_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info
            .location()
            .is_some_and(|l| l.file().contains("/calamine-"))
        {
            return;
        }
        fuzzer_hook(info);
    }));
});

/// The respondents of the committed workbooks: a file of another is refused as such before
/// its sections are read, so each is tried in turn.
const COUNTRIES: [&str; 3] = ["AGO", "TUR", "SWE"];

fuzz_target!(|data: &[u8]| {
    LazyLock::force(&CALAMINE_PANICS_UNWIND);
    let survey = &*SURVEY;
    let rebuilt;
    let data = match data.strip_prefix(b"ENTRY") {
        Some([pick, content @ ..]) => {
            rebuilt = with_entry(*pick, content);
            &rebuilt[..]
        }
        _ => data,
    };
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

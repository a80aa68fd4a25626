//! `coherence check`: one broken fixture per error kind, with the message and its location.

use std::path::PathBuf;
use std::process::Command;

use crate::helpers::fixtures;

fn broken(name: &str) -> PathBuf {
    fixtures().join("broken").join(format!("{name}.toml"))
}

/// Run the real binary; (exit code, stdout, stderr).
fn check(paths: &[PathBuf]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_coherence"))
        .arg("check")
        .args(paths)
        .output()
        .expect("run coherence check");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn each_error_kind_is_reported_with_file_line_and_column() {
    let cases = [
        ("syntax", "2:11", "TOML syntax: invalid basic string"),
        ("unknown_key", "6:1", "unknown key 'colour' in section 's'"),
        (
            "missing_field",
            "6:1",
            "missing required key 'type' in question 'q'",
        ),
        ("duplicate_id", "11:6", "duplicate question id 'q'"),
        (
            "show_if_unknown",
            "10:12",
            "refers to unknown question 'ghost'",
        ),
        ("show_if_later", "10:12", "refers to 'r', which comes later"),
        (
            "show_if_syntax",
            "14:25",
            "does not parse: expected a question id",
        ),
        (
            "missing_options",
            "6:1",
            "question 'q' needs a non-empty 'options' list",
        ),
        (
            "contradicting_bounds",
            "10:1",
            "min is greater than max in question 'q'",
        ),
        ("unknown_theme", "14:11", "unknown theme 'unknown'"),
        (
            "missing_english",
            "2:9",
            "'title' in the survey has no English text (en)",
        ),
    ];
    for (name, at, message) in cases {
        let path = broken(name);
        let (code, _, stderr) = check(std::slice::from_ref(&path));
        assert_eq!(code, 1, "{name}: exit status");
        let expected = format!("{}:{at}: error: ", path.display());
        let line = stderr
            .lines()
            .find(|l| l.starts_with(&expected))
            .unwrap_or_else(|| panic!("{name}: no error at {at} in:\n{stderr}"));
        assert!(
            line.contains(message),
            "{name}: '{line}' should say '{message}'"
        );
    }
}

#[test]
fn all_errors_are_reported_not_only_the_first() {
    let paths: Vec<PathBuf> = ["unknown_key", "duplicate_id", "unknown_theme"]
        .iter()
        .map(|n| broken(n))
        .collect();
    let (code, _, stderr) = check(&paths);
    assert_eq!(code, 1);
    assert!(stderr.contains("3 error(s)"), "{stderr}");
    // Several errors inside one file, too.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("many.toml");
    std::fs::write(
        &file,
        "id = \"x\"\ntitle = \"X\"\nbogus = 1\n[[sections]]\nid = \"s\"\ntitle = \"S\"\n\
         [[sections.questions]]\nid = \"q\"\ntype = \"integer\"\ntext = \"Q\"\nmin = 3\nmax = 1\n\
         [[sections.questions]]\nid = \"r\"\ntype = \"dropdown\"\ntext = \"R\"\n",
    )
    .unwrap();
    let (code, _, stderr) = check(&[file]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("3:1: error: unknown key 'bogus'"),
        "{stderr}"
    );
    assert!(
        stderr.contains("11:1: error: min is greater than max"),
        "{stderr}"
    );
    assert!(
        stderr.contains("15:8: error: unknown question type 'dropdown'"),
        "{stderr}"
    );
}

#[test]
fn shipped_surveys_pass_with_a_summary_line_each() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let (code, stdout, stderr) = check(&[root.join("surveys")]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[0].starts_with("coherence-2008: ok"));
    assert!(
        lines[1].starts_with("coherence-2010: ok")
            && lines[1].ends_with("; follows coherence-2008: 48 of its questions carry)"),
        "{stdout}"
    );
    assert!(lines[2].starts_with("focal-points: ok"));
}

/// The second round's mappings are checked against the first round's file: a mapping that
/// leaves an option without a place, one to a question that does not exist, and a type that
/// cannot carry are each reported at their place; the second round alone cannot be checked.
#[test]
fn a_round_is_checked_against_the_round_it_follows() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root.join("surveys/coherence-2008.toml"),
        dir.path().join("coherence-2008.toml"),
    )
    .unwrap();
    let second = std::fs::read_to_string(root.join("surveys/coherence-2010.toml")).unwrap();
    let broken = second
        .replace(
            "options = { nationals_abroad = \"diaspora\" }",
            "options = { nationals_abroad = \"diaspora_office\" }",
        )
        .replace(
            "options = { dont_know = \"\" }",
            "options = { maybe = \"\" }",
        )
        .replacen(
            "[[themes]]",
            "[[carry]]\nfrom = \"policy_year\"\nto = \"reply_date\"\n\n[[themes]]",
            1,
        );
    assert_ne!(broken, second);
    let file = dir.path().join("coherence-2010.toml");
    std::fs::write(&file, &broken).unwrap();
    let (code, _, stderr) = check(&[dir.path().to_path_buf()]);
    assert_ne!(code, 0);
    let at = |needle: &str| {
        let line = stderr
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no '{needle}' in {stderr}"));
        line.split(": error").next().unwrap().to_string()
    };
    let name = file.display().to_string();
    let line_of = |needle: &str| broken.lines().position(|l| l.contains(needle)).unwrap() + 1;
    assert_eq!(
        at("'diaspora_office' in 'options' is not an option"),
        format!("{name}:{}:1", line_of("diaspora_office")),
        "{stderr}"
    );
    assert!(
        stderr.contains("option 'dont_know' of 'mechanism_effectiveness'"),
        "{stderr}"
    );
    assert!(
        stderr.contains("'maybe' in 'options' is not an option"),
        "{stderr}"
    );
    assert_eq!(
        at("an answer of type integer cannot carry into a date question"),
        format!("{name}:{}:6", line_of("to = \"reply_date\"")),
        "{stderr}"
    );
    // Alone, the second round names a round that is not there.
    let (code, _, stderr) = check(&[root.join("surveys/coherence-2010.toml")]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("previous round 'coherence-2008' is not among the survey files read"),
        "{stderr}"
    );
}

#[test]
fn shipped_surveys_cover_every_type_and_enough_conditions() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let report = coherence::survey::load_paths(&[root.join("surveys")]);
    assert!(!report.has_errors());
    let questions: Vec<&coherence::survey::Question> =
        report.surveys.iter().flat_map(|s| s.questions()).collect();
    assert!(questions.len() >= 50, "{} questions", questions.len());
    let mut types: Vec<&str> = questions.iter().map(|q| q.kind.type_name()).collect();
    types.sort();
    types.dedup();
    assert_eq!(types.len(), 14, "{types:?}");
    let conditions = questions.iter().filter(|q| q.show_if.is_some()).count();
    assert!(conditions >= 5);
    assert!(questions.iter().any(|q| matches!(
        q.marker,
        Some(coherence::survey::Marker::GoodPractice { .. })
    )));
    assert!(questions.iter().any(|q| matches!(
        q.marker,
        Some(coherence::survey::Marker::CapacityNeed { .. })
    )));
    // Complete French and Spanish texts.
    for s in &report.surveys {
        assert_eq!(s.languages, ["en", "fr", "es"], "{}", s.id);
        let missing = coherence::survey::load::translation_warnings(s);
        assert!(missing.is_empty(), "{missing:?}");
    }
}

#[test]
fn a_broken_survey_stops_the_server_with_the_same_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(broken("duplicate_id"), dir.path().join("dup.toml")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_coherence"))
        .arg("serve")
        .env("COHERENCE_SURVEYS", dir.path())
        .env("COHERENCE_DATABASE_URL", dir.path().join("x.db"))
        .env("COHERENCE_BIND", "127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("dup.toml:11:6: error: duplicate question id 'q'"),
        "{stderr}"
    );
}

#[test]
fn a_bad_setting_is_one_line_and_a_non_zero_exit() {
    for (var, value) in [
        ("COHERENCE_BIND", "everywhere"),
        ("COHERENCE_DATABASE_URL", "mysql://localhost/x"),
        ("COHERENCE_BASE_URL", "survey.example.org"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_coherence"))
            .arg("serve")
            .env(var, value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{var}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{var}: {stderr}");
        assert!(lines[0].starts_with(&format!("error: {var}: ")), "{stderr}");
    }
}

#[test]
fn missing_translations_are_warned_per_survey_and_language() {
    let (code, stdout, stderr) = check(&[fixtures().join("surveys")]);
    assert_eq!(code, 0, "warnings do not fail the check");
    assert!(
        stderr.contains("warning: fixture: 20 texts have no 'fr' translation"),
        "{stderr}"
    );
    assert!(
        stderr.contains("warning: fixture: 20 texts have no 'es' translation"),
        "{stderr}"
    );
    assert!(stdout.contains("fixture: ok") && stdout.contains("languages en/fr/es"));
}

/// A one-question survey with the given `population` line (line 3 of the file).
fn with_population(dir: &std::path::Path, line: &str) -> PathBuf {
    let file = dir.join("asked.toml");
    std::fs::write(
        &file,
        format!(
            "id = \"asked\"\ntitle = \"Asked\"\n{line}\n[[sections]]\nid = \"s\"\ntitle = \"S\"\n\
             [[sections.questions]]\nid = \"q\"\ntype = \"yes_no\"\ntext = \"Q\"\n"
        ),
    )
    .unwrap();
    file
}

#[test]
fn a_bad_population_key_is_reported_at_its_value() {
    let dir = tempfile::tempdir().unwrap();
    for (line, at, message) in [
        (
            "population = \"g20\"",
            "3:14",
            "population 'g20' is not supported: \"un_member_states\", \"all\", or the name of a list file",
        ),
        (
            "population = \"../elsewhere/list.txt\"",
            "3:14",
            "population '../elsewhere/list.txt' is not supported",
        ),
        (
            "population = 193",
            "3:14",
            "'population' in the survey must be a string, found integer",
        ),
        (
            "population = \"participants.txt\"",
            "3:14",
            "cannot read the population list",
        ),
        (
            "populations = \"all\"",
            "3:1",
            "unknown key 'populations' in the survey",
        ),
    ] {
        let file = with_population(dir.path(), line);
        let (code, _, stderr) = check(std::slice::from_ref(&file));
        assert_eq!(code, 1, "{line}: {stderr}");
        let expected = format!("{}:{at}: error: {message}", file.display());
        assert!(stderr.contains(&expected), "{line}: expected '{expected}' in:\n{stderr}");
    }
}

#[test]
fn a_population_list_is_checked_line_by_line_against_the_reference_list() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("gfmd-participants.txt");
    std::fs::write(
        &list,
        "# GFMD 2008 participants (an excerpt)\nSWE  # Sweden\n\nPHL\n  XYZ   # no such country\nmex\nSWE\n",
    )
    .unwrap();
    let file = with_population(dir.path(), "population = \"gfmd-participants.txt\"");
    let (code, _, stderr) = check(std::slice::from_ref(&file));
    assert_eq!(code, 1, "{stderr}");
    let shown = list.display();
    for expected in [
        format!("{shown}:5:3: error: 'XYZ' is not a country of the reference list"),
        format!("{shown}:6:1: error: 'mex' is not an ISO 3166-1 alpha-3 code"),
        format!("{shown}:7:1: warning: 'SWE' is listed twice (first on line 2)"),
    ] {
        assert!(
            stderr.contains(&expected),
            "expected '{expected}' in:\n{stderr}"
        );
    }
    assert!(stderr.contains("2 error(s)"), "{stderr}");

    // Fixed, the survey is asked of exactly the listed countries, the same on a second load.
    std::fs::write(&list, "# GFMD\nSWE\nPHL # Philippines\nMEX\nTWN\n").unwrap();
    let (code, stdout, stderr) = check(std::slice::from_ref(&file));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("asked: ok"), "{stdout}");
    let report = coherence::survey::load_paths(std::slice::from_ref(&file));
    let population = &report.surveys[0].population;
    assert_eq!(
        population.codes().collect::<Vec<_>>(),
        ["MEX", "PHL", "SWE", "TWN"]
    );
    assert_eq!(
        population.kind,
        coherence::survey::PopulationKind::List("gfmd-participants.txt".into())
    );

    // An empty list asks no one: an error at the survey's population.
    std::fs::write(&list, "# nobody yet\n").unwrap();
    let (code, _, stderr) = check(std::slice::from_ref(&file));
    assert_eq!(code, 1);
    assert!(
        stderr.contains(&format!(
            "{}:3:14: error: the population list {shown} lists no country",
            file.display()
        )),
        "{stderr}"
    );
}

#[test]
fn the_population_defaults_to_the_193_member_states_or_everyone_for_organisations() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let report = coherence::survey::load_paths(&[root.join("surveys"), fixtures().join("surveys")]);
    assert!(!report.has_errors(), "{:?}", report.diagnostics);
    let countries = coherence::reference::Countries::load().unwrap();
    for s in &report.surveys {
        let p = &s.population;
        if s.unit.is_country() {
            assert_eq!(
                p.kind,
                coherence::survey::PopulationKind::UnMemberStates,
                "{}",
                s.id
            );
            assert_eq!(p.len(), 193, "{}", s.id);
            assert!(
                p.contains("SWE") && p.contains("SSD") && !p.contains("TWN") && !p.contains("VAT")
            );
        } else {
            assert_eq!(p.kind, coherence::survey::PopulationKind::All, "{}", s.id);
            assert_eq!(p.len(), countries.iter().count(), "{}", s.id);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = with_population(dir.path(), "population = \"all\"");
    let report = coherence::survey::load_paths(&[file]);
    assert_eq!(report.surveys[0].population.len(), countries.iter().count());
}

//! Results benchmark: 200 countries of demo responses to the shipped coherence survey, then the
//! dashboard's response rates by region, one question's breakdown by region and the
//! good-practice compendium, timed through the library functions the pages call (the SQL is
//! the same; HTTP and rendering are measured by benches/load.rs). Prints mean and p50/max.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use coherence::db::{self, DbUrl};
use coherence::reference::Countries;
use coherence::results::aggregate::{self, Filter, Grouping};
use coherence::results::{demo, practices};
use diesel::{Connection, PgConnection, RunQueryDsl};

const ITERATIONS: usize = 30;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let report = coherence::survey::load_paths(&[root.join("surveys")]);
    let catalog = coherence::survey::Catalog::new(report.surveys);
    let survey = catalog
        .get("coherence-2008")
        .expect("shipped survey")
        .clone();
    let countries = Countries::load().expect("countries");
    let dir = tempfile::tempdir().expect("temp dir");
    // The stress set: a survey answered per organisation, 100,000 organisations by default.
    let units: usize = std::env::var("COHERENCE_BENCH_UNITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    // COHERENCE_BENCH_KEEP=<dir> keeps the generated databases (a SQLite file in <dir>, a
    // PostgreSQL database named after the count) and reuses them on the next run.
    let keep = std::env::var("COHERENCE_BENCH_KEEP")
        .ok()
        .map(PathBuf::from);
    // COHERENCE_BENCH_SKIP_SQLITE=1 times PostgreSQL alone (a full run takes half an hour).
    let mut backends = Vec::new();
    if std::env::var("COHERENCE_BENCH_SKIP_SQLITE").is_err() {
        let file = match &keep {
            Some(k) => k.join(format!("results-{units}.db")),
            None => dir.path().join("results.db"),
        };
        let reuse = keep.is_some() && done_marker(&file).exists();
        backends.push((
            "sqlite",
            file.display().to_string(),
            reuse,
            done_marker(&file),
        ));
    }
    match std::env::var("COHERENCE_BENCH_PG") {
        Ok(server) => {
            let name = match &keep {
                Some(_) => format!("coherence_results_keep_{units}"),
                None => format!("coherence_results_{}", db::new_id()),
            };
            let marker = keep
                .as_ref()
                .map(|k| k.join(format!("{name}.done")))
                .unwrap_or_else(|| dir.path().join("pg.done"));
            let reuse = marker.exists();
            if !reuse {
                let mut admin =
                    PgConnection::establish(&format!("{server}/postgres")).expect("PostgreSQL");
                diesel::sql_query(format!("DROP DATABASE IF EXISTS {name}"))
                    .execute(&mut admin)
                    .expect("drop database");
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .expect("create database");
            }
            backends.push(("postgres", format!("{server}/{name}"), reuse, marker));
        }
        Err(_) => println!("postgres: not run (set COHERENCE_BENCH_PG or use benches/run.sh)"),
    }
    let fixtures = coherence::survey::load_paths(&[root.join("tests/fixtures/surveys")]);
    let stress = coherence::survey::Catalog::new(fixtures.surveys)
        .get("institutions")
        .expect("tests/fixtures/surveys/institutions.toml")
        .clone();
    for (name, url, reuse, marker) in backends {
        if !reuse && name == "sqlite" {
            let _ = std::fs::remove_file(&url);
        }
        let pool = db::connect(&DbUrl::parse(&url).expect("url"), 2).expect("database");
        let mut conn = pool.get().expect("connection");
        // The Markdown download reads its texts on a second connection.
        let mut second = pool.get().expect("second connection");
        if reuse {
            println!("\n== {name}: reusing the kept databases ({url})");
        } else {
            coherence::db::queries::sync_countries(&mut conn, &countries).expect("countries");
            let t = Instant::now();
            let s = demo::generate(&mut conn, &survey, &countries, 200, 2008).expect("demo data");
            println!(
                "\n== {name}: 200 countries ({} submitted, {} drafts) generated in {:.1} s",
                s.submitted,
                s.drafts,
                t.elapsed().as_secs_f64()
            );
        }
        practices::keep_roles(&mut conn, &survey).expect("listings kept");
        time_results(
            [&mut conn, &mut second],
            &survey,
            &countries,
            "mechanisms_present",
            &Filter::default(),
            None,
        );
        if !reuse {
            let t = Instant::now();
            let s = demo::generate(&mut conn, &stress, &countries, units, 2008).expect("demo data");
            println!(
                "\n== {name}: stress set, {units} organisations ({} submitted, {} drafts) generated in {:.1} s",
                s.submitted,
                s.drafts,
                t.elapsed().as_secs_f64()
            );
            std::fs::write(&marker, "").expect("marker");
        }
        // What the server does when it starts: the compendium's listings kept from then on.
        let t = Instant::now();
        if practices::keep_roles(&mut conn, &stress).expect("listings kept") {
            println!(
                "\n== {name}: the compendium's listings computed in {:.1} s (as the server's start does)",
                t.elapsed().as_secs_f64()
            );
        }
        println!("\n== {name}: stress set, {units} organisations");
        let shell = Shell::new(name, &url);
        time_results(
            [&mut conn, &mut second],
            &stress,
            &countries,
            "areas",
            &Filter::default(),
            Some(&shell),
        );
        // With drafts included (the pages' "include drafts" box): the live answers of the
        // responses never submitted as well, read from the answers rather than the kept
        // tallies. No hand-written comparison: the hand queries count the counted versions.
        println!("\n== {name}: stress set, {units} organisations, with drafts included");
        let drafts = Filter {
            include_drafts: true,
            ..Filter::default()
        };
        time_results(
            [&mut conn, &mut second],
            &stress,
            &countries,
            "areas",
            &drafts,
            None,
        );
    }
}

/// Beside a kept SQLite file: present once its data sets are complete.
fn done_marker(file: &std::path::Path) -> PathBuf {
    file.with_extension("done")
}

/// Times what the results pages compute: the dashboard's response rates by region, one
/// multiple-choice question by region, the compendium and the ranked needs; on the stress set,
/// beside each, the same figures written by hand and run by the database's own shell.
fn time_results(
    [conn, second]: [&mut db::DbConn; 2],
    survey: &coherence::survey::Survey,
    countries: &Countries,
    question: &str,
    filter: &Filter,
    shell: Option<&Shell>,
) {
    let question = survey.question(question).expect("question").clone();
    let ours = time("dashboard: response rates by region", || {
        aggregate::response_rates(conn, survey, filter, Some(Grouping::Region)).expect("rates");
    });
    compare(shell, ours, &hand::rates(&survey.id));
    // The dashboard page shows four groupings, from one statement.
    let groupings = [
        None,
        Some(Grouping::Region),
        Some(Grouping::Income),
        Some(Grouping::Development),
    ];
    time("dashboard: the page's four groupings", || {
        aggregate::response_rates_by(conn, survey, filter, &groupings).expect("rates");
    });
    let ours = time("one question (multiple choice) by region", || {
        aggregate::choice_counts(conn, &survey.id, &question, filter, Some(Grouping::Region))
            .expect("counts");
        aggregate::asked_and_answered(
            conn,
            &survey.id,
            &question.id,
            filter,
            Some(Grouping::Region),
        )
        .expect("asked");
    });
    compare(shell, ours, &hand::question(&survey.id, &question.id));
    // The compendium's first view: every practice listed and ordered (no texts), and the
    // page's 200 read in full. Beside it, by hand: the listing's answers.
    let mut practices = 0;
    let ours = time("good-practice compendium: first page", || {
        // As the page reads them: with drafts included, the drafts' on the second connection.
        let listed =
            practices::listings_on_two(conn, Some(&mut *second), survey, countries, filter, "en")
                .expect("listings");
        practices = listed.len();
        let page: Vec<_> = listed.into_iter().take(200).collect();
        practices::practices(conn, survey, countries, filter, page, "en").expect("practices");
    });
    let marked: Vec<(&str, Vec<&str>, Vec<&str>)> = survey
        .questions()
        .filter_map(|q| match &q.marker {
            Some(coherence::survey::Marker::GoodPractice {
                themes_from,
                cite_question,
                related,
                ..
            }) => Some((
                q.id.as_str(),
                themes_from
                    .iter()
                    .chain(cite_question)
                    .map(String::as_str)
                    .collect(),
                related.iter().map(String::as_str).collect(),
            )),
            _ => None,
        })
        .collect();
    let listed: Vec<String> = marked
        .iter()
        .flat_map(|(q, keys, _)| hand::listings(&survey.id, q, keys))
        .collect();
    compare(shell, ours, &listed);
    // The download as the server sends it: every practice read (its texts on a second
    // connection, as the server does when it can have one), then written as Markdown; and
    // the same on one connection.
    let mut markdown_bytes = 0;
    let ours = time("good-practice compendium: all (Markdown)", || {
        markdown_bytes = practices::compendium_download(
            conn,
            Some(&mut *second),
            survey,
            countries,
            filter,
            "en",
        )
        .expect("compendium")
        .len();
    });
    let mut one_connection_bytes = 0;
    time("  the same on one connection", || {
        one_connection_bytes =
            practices::compendium_download(conn, None, survey, countries, filter, "en")
                .expect("compendium")
                .len();
    });
    assert_eq!(markdown_bytes, one_connection_bytes);
    let wanted: Vec<&str> = marked
        .iter()
        .flat_map(|(q, keys, related)| {
            std::iter::once(*q)
                .chain(keys.clone())
                .chain(related.clone())
        })
        .collect();
    compare(shell, ours, &hand::answers(&survey.id, &wanted));
    println!(
        "  ({practices} practices in the compendium, {:.1} MB of Markdown)",
        markdown_bytes as f64 / 1e6
    );
    let ours = time("ranked capacity needs", || {
        practices::ranked_needs(conn, survey, filter, "en").expect("needs");
    });
    let needs: Vec<&str> = survey
        .questions()
        .filter(|q| {
            matches!(
                q.marker,
                Some(coherence::survey::Marker::CapacityNeed { .. })
            )
        })
        .map(|q| q.id.as_str())
        .collect();
    compare(shell, ours, &hand::needs(&survey.id, &needs));
}

/// Prints the hand-written queries' time beside ours, and the ratio.
fn compare(shell: Option<&Shell>, ours: Duration, statements: &[String]) {
    let Some(shell) = shell else { return };
    match shell.time(statements) {
        Some(hand) => println!(
            "  {:<43} p50 {:>7.2} ms  (ours {}x, {} statement(s) by {})",
            "the same written by hand",
            hand * 1e3,
            ratio(ours.as_secs_f64() / hand.max(1e-6)),
            statements.len(),
            shell.program()
        ),
        None => println!("  (the {} shell did not run)", shell.program()),
    }
}

/// A ratio to two significant digits: a page read from `answer_tallies` takes a few
/// thousandths of the GROUP BY over the answers.
fn ratio(r: f64) -> String {
    if r >= 0.1 {
        format!("{r:.2}")
    } else {
        format!("{r:.1e}")
    }
}

/// The database's own shell: `sqlite3` with `.timer on`, or `psql` with `\timing`. Its
/// timings are the engine's alone (no driver, no rows turned into Rust values), on the same
/// database with its page cache as warm as ours: the fairest floor for our queries.
struct Shell {
    backend: &'static str,
    url: String,
}

const SHELL_RUNS: usize = 7;

impl Shell {
    fn new(backend: &'static str, url: &str) -> Shell {
        Shell {
            backend,
            url: url.to_string(),
        }
    }

    fn program(&self) -> &'static str {
        if self.backend == "sqlite" {
            "sqlite3"
        } else {
            "psql"
        }
    }

    /// The median over runs of the statements' summed time, in seconds.
    fn time(&self, statements: &[String]) -> Option<f64> {
        use std::io::Write;
        let mut script = String::new();
        if self.backend == "sqlite" {
            script.push_str(".timer on\n.output /dev/null\n");
        } else {
            script.push_str("\\timing on\n\\o /dev/null\n");
        }
        for _ in 0..SHELL_RUNS + 1 {
            for s in statements {
                script.push_str(s);
                script.push_str(";\n");
            }
        }
        let mut cmd = if self.backend == "sqlite" {
            let mut c = std::process::Command::new("sqlite3");
            c.arg("-readonly").arg(&self.url);
            c
        } else {
            let mut c = std::process::Command::new("psql");
            c.arg("-q").arg("-X").arg(&self.url);
            c
        };
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .ok()?;
        child.stdin.take()?.write_all(script.as_bytes()).ok()?;
        let out = child.wait_with_output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let times: Vec<f64> = text
            .lines()
            .filter_map(|l| {
                if let Some(rest) = l.strip_prefix("Run Time: real ") {
                    rest.split_whitespace().next()?.parse().ok()
                } else {
                    let ms: f64 = l
                        .strip_prefix("Time: ")?
                        .split_whitespace()
                        .next()?
                        .parse()
                        .ok()?;
                    Some(ms / 1e3)
                }
            })
            .collect();
        if times.len() != (SHELL_RUNS + 1) * statements.len() {
            return None;
        }
        // The first run warms the page cache as ours was warmed by its first call.
        let mut runs: Vec<f64> = times
            .chunks(statements.len())
            .skip(1)
            .map(|c| c.iter().sum())
            .collect();
        runs.sort_by(f64::total_cmp);
        Some(runs[SHELL_RUNS / 2])
    }
}

/// The figures each page shows, as someone would write them by hand: the same filter
/// (submitted responses, their counted version) and grouping.
mod hand {
    pub fn rates(survey: &str) -> Vec<String> {
        vec![format!(
            "SELECT c.region_code, COUNT(*) AS targeted, \
             SUM(CASE WHEN r.counted_version IS NULL AND EXISTS (SELECT 1 FROM section_states s WHERE s.response_id = r.id) THEN 1 ELSE 0 END) AS drafts, \
             SUM(CASE WHEN r.counted_version IS NOT NULL THEN 1 ELSE 0 END) AS submitted, \
             SUM(CASE WHEN r.counted_version IS NOT NULL AND r.status = 'accepted' THEN 1 ELSE 0 END) AS accepted \
             FROM responses r JOIN countries c ON c.iso3 = r.country_iso3 \
             WHERE r.survey_id = '{survey}' GROUP BY c.region_code"
        )]
    }

    const COUNTED: &str = "FROM version_answers a JOIN responses r ON r.id = a.response_id \
        AND a.version = r.counted_version JOIN countries c ON c.iso3 = r.country_iso3";

    pub fn question(survey: &str, question: &str) -> Vec<String> {
        vec![
            format!(
                "SELECT c.region_code, a.item, COUNT(*) {COUNTED} WHERE r.survey_id = '{survey}' \
                 AND a.question_id = '{question}' AND a.item NOT LIKE '#%' GROUP BY c.region_code, a.item"
            ),
            format!(
                "SELECT c.region_code, COUNT(*) FROM responses r JOIN countries c ON c.iso3 = r.country_iso3 \
                 WHERE r.survey_id = '{survey}' AND r.counted_version IS NOT NULL AND NOT EXISTS \
                 (SELECT 1 FROM hidden_questions h WHERE h.response_id = r.id AND h.question_id = '{question}') \
                 GROUP BY c.region_code"
            ),
            format!(
                "SELECT c.region_code, COUNT(DISTINCT a.response_id) {COUNTED} WHERE r.survey_id = '{survey}' \
                 AND a.question_id = '{question}' GROUP BY c.region_code"
            ),
        ]
    }

    pub fn answers(survey: &str, questions: &[&str]) -> Vec<String> {
        let list = questions
            .iter()
            .map(|q| format!("'{q}'"))
            .collect::<Vec<_>>()
            .join(", ");
        vec![format!(
            "SELECT r.id, r.country_iso3, r.unit, a.question_id, a.item, a.value {COUNTED} \
             WHERE r.survey_id = '{survey}' AND a.question_id IN ({list})"
        )]
    }

    /// A practice question's answers with its own values (the texts) left out, and its themes
    /// and citation answers.
    pub fn listings(survey: &str, question: &str, keys: &[&str]) -> Vec<String> {
        let list = std::iter::once(&question)
            .chain(keys)
            .map(|q| format!("'{q}'"))
            .collect::<Vec<_>>()
            .join(", ");
        vec![format!(
            "SELECT r.id, r.country_iso3, r.unit, a.question_id, a.item, \
             CASE WHEN a.question_id = '{question}' THEN '' ELSE a.value END {COUNTED} \
             WHERE r.survey_id = '{survey}' AND a.question_id IN ({list})"
        )]
    }

    pub fn needs(survey: &str, questions: &[&str]) -> Vec<String> {
        questions
            .iter()
            .map(|q| {
                format!(
                    "SELECT c.development, c.region_code, a.item, COUNT(*) {COUNTED} \
                     WHERE r.survey_id = '{survey}' AND a.question_id = '{q}' AND a.item NOT LIKE '#%' \
                     GROUP BY c.development, c.region_code, a.item"
                )
            })
            .collect()
    }
}

fn time(what: &str, mut f: impl FnMut()) -> Duration {
    f();
    let mut samples: Vec<Duration> = (0..ITERATIONS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / ITERATIONS as u32;
    println!(
        "{what:<45} mean {:>7.2} ms  p50 {:>7.2} ms  max {:>7.2} ms  ({ITERATIONS} runs)",
        mean.as_secs_f64() * 1e3,
        samples[ITERATIONS / 2].as_secs_f64() * 1e3,
        samples[ITERATIONS - 1].as_secs_f64() * 1e3
    );
    samples[ITERATIONS / 2]
}

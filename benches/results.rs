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
    // COHERENCE_BENCH_SKIP_SQLITE=1 times PostgreSQL alone (a full run takes half an hour).
    let mut backends = Vec::new();
    if std::env::var("COHERENCE_BENCH_SKIP_SQLITE").is_err() {
        backends.push((
            "sqlite",
            dir.path().join("results.db").display().to_string(),
        ));
    }
    match std::env::var("COHERENCE_BENCH_PG") {
        Ok(server) => {
            let name = format!("coherence_results_{}", db::new_id());
            let mut admin =
                PgConnection::establish(&format!("{server}/postgres")).expect("PostgreSQL");
            diesel::sql_query(format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .expect("create database");
            backends.push(("postgres", format!("{server}/{name}")));
        }
        Err(_) => println!("postgres: not run (set COHERENCE_BENCH_PG or use benches/run.sh)"),
    }
    // The stress set: a survey answered per organisation, 100,000 organisations by default.
    let units: usize = std::env::var("COHERENCE_BENCH_UNITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let fixtures = coherence::survey::load_paths(&[root.join("tests/fixtures/surveys")]);
    let stress = coherence::survey::Catalog::new(fixtures.surveys)
        .get("institutions")
        .expect("tests/fixtures/surveys/institutions.toml")
        .clone();
    for (name, url) in backends {
        let pool = db::connect(&DbUrl::parse(&url).expect("url"), 2).expect("database");
        let mut conn = pool.get().expect("connection");
        coherence::db::queries::sync_countries(&mut conn, &countries).expect("countries");
        let t = Instant::now();
        let s = demo::generate(&mut conn, &survey, &countries, 200, 2008).expect("demo data");
        println!(
            "\n== {name}: 200 countries ({} submitted, {} drafts) generated in {:.1} s",
            s.submitted,
            s.drafts,
            t.elapsed().as_secs_f64()
        );
        time_results(&mut conn, &survey, &countries, "mechanisms_present");
        let t = Instant::now();
        let s = demo::generate(&mut conn, &stress, &countries, units, 2008).expect("demo data");
        println!(
            "\n== {name}: stress set, {units} organisations ({} submitted, {} drafts) generated in {:.1} s",
            s.submitted,
            s.drafts,
            t.elapsed().as_secs_f64()
        );
        time_results(&mut conn, &stress, &countries, "areas");
    }
}

/// Times what the results pages compute: the dashboard's response rates by region, one
/// multiple-choice question by region, the compendium and the ranked needs.
fn time_results(
    conn: &mut db::DbConn,
    survey: &coherence::survey::Survey,
    countries: &Countries,
    question: &str,
) {
    let filter = Filter::default();
    let question = survey.question(question).expect("question").clone();
    time("dashboard: response rates by region", || {
        aggregate::response_rates(conn, survey, &filter, Some(Grouping::Region)).expect("rates");
    });
    time("one question (multiple choice) by region", || {
        aggregate::choice_counts(conn, &survey.id, &question, &filter, Some(Grouping::Region))
            .expect("counts");
        aggregate::asked_and_answered(
            conn,
            &survey.id,
            &question.id,
            &filter,
            Some(Grouping::Region),
        )
        .expect("asked");
    });
    let mut practices = 0;
    time("good-practice compendium", || {
        practices = practices::compendium(conn, survey, countries, &filter, "en")
            .expect("compendium")
            .len();
    });
    println!("  ({practices} practices in the compendium)");
    time("ranked capacity needs", || {
        practices::ranked_needs(conn, survey, &filter, "en").expect("needs");
    });
}

fn time(what: &str, mut f: impl FnMut()) {
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
}

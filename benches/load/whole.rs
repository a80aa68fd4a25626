//! The "whole responses" scenario: each connection takes a fresh personal link of the shipped
//! `coherence-2008` survey and does what a focal point does, as a new browser (its own cookies
//! and connection): the overview, every section's form and its save (posted as the browser
//! posts it: url-encoded, or multipart where the section has a file question; saved again when
//! the answers revealed more questions), the review page, and the submission.
//!
//! The survey is the shipped file with one change: it is answered per organisation, so that
//! every link opens a new response (a survey of countries has only 193). Its questions,
//! sections, conditions and languages are the shipped ones.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coherence::db::schema::responses;
use coherence::survey::Survey;
use diesel::prelude::*;

use super::{
    cpu_seconds, hidden, loadavg, machine_busy_seconds, peak_rss_mib, profile, rss_split_mib,
    server_counters, start_server_with, CONNECTIONS,
};

/// Links issued per connection: more than a connection completes in a run on this machine.
const LINKS_PER_CONNECTION: usize = 400;

const SURVEY: &str = "coherence-2008";

/// The steps of a response, in the order a focal point takes them.
const STEPS: [&str; 5] = [
    "GET overview",
    "GET section",
    "POST section save",
    "GET review",
    "POST submit",
];

/// One section's form as a browser posts it, without the per-visit token and version.
struct SectionForm {
    id: String,
    fields: Vec<(String, String)>,
    /// The section has a file question: the browser posts multipart, with an empty file part.
    files: Vec<String>,
}

#[derive(Default)]
struct Tally {
    latencies: [Vec<Duration>; 5],
    errors: [usize; 5],
    completed: usize,
    requests: usize,
}

/// The bench copy of the shipped survey, in a directory of its own.
fn survey_dir(dir: &Path) -> (std::path::PathBuf, Survey) {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("surveys/coherence-2008.toml");
    let text = std::fs::read_to_string(&shipped).expect("shipped coherence-2008");
    let text = text.replacen(
        "respondent_unit = \"country\"",
        "respondent_unit = \"organisation\"",
        1,
    );
    assert!(text.contains("respondent_unit = \"organisation\""));
    let surveys = dir.join("whole-surveys");
    std::fs::create_dir_all(&surveys).expect("surveys dir");
    let file = surveys.join("coherence-2008.toml");
    std::fs::write(&file, &text).expect("write survey");
    let (survey, problems) = coherence::survey::parse_survey("coherence-2008.toml", &text);
    let survey = survey.unwrap_or_else(|| panic!("bench survey: {problems:?}"));
    (surveys, survey)
}

/// Issue `n` links, each for a new organisation, spread over the UN Member States, straight
/// into the database (thousands through the command line would take minutes).
fn issue_links(db: &str, n: usize) -> Vec<(String, String)> {
    let url = coherence::db::DbUrl::parse(db).expect("database url");
    let pool = coherence::db::connect(&url, 1).expect("database");
    let mut conn = pool.get().expect("connection");
    let countries: Vec<String> = coherence::reference::un_member_states().collect();
    let now = chrono::Utc::now().naive_utc();
    let mut links = Vec::with_capacity(n);
    coherence::db::transaction(&mut conn, |conn| -> Result<(), diesel::result::Error> {
        for i in 0..n {
            let iso3 = &countries[i % countries.len()];
            let token = coherence::access::new_token();
            let unit = format!("Bench organisation {i}");
            coherence::db::tokens::insert_token(
                conn,
                &coherence::db::tokens::NewToken {
                    survey_id: SURVEY,
                    country_iso3: iso3,
                    unit: &unit,
                    token_hash: &coherence::access::hash_token(&token),
                    holder_name: None,
                    holder_email: None,
                    now,
                    expires_at: None,
                    role: coherence::db::tokens::LinkRole::Coordinator,
                    sections: &[],
                },
            )?;
            links.push((format!("/r/{token}"), iso3.clone()));
        }
        Ok(())
    })
    .expect("issue links");
    links
}

fn submitted(db: &str) -> i64 {
    let url = coherence::db::DbUrl::parse(db).expect("database url");
    let pool = coherence::db::connect(&url, 1).expect("database");
    let mut conn = pool.get().expect("connection");
    responses::table
        .filter(responses::survey_id.eq(SURVEY))
        .filter(responses::status.eq("submitted"))
        .count()
        .get_result(&mut *conn)
        .expect("count submitted")
}

pub async fn run(db: &str, duration: Duration, healthz_per_second: f64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (surveys, survey) = survey_dir(dir.path());
    // The server records the survey and the countries first: links refer to both.
    let server = start_server_with(db, &surveys).await;
    let links = issue_links(db, CONNECTIONS * LINKS_PER_CONNECTION);
    // Each connection answers its responses alike (seeded by the connection), as one
    // country's colleagues would: generated before the clock starts.
    let forms: Vec<Vec<SectionForm>> = (0..CONNECTIONS)
        .map(|i| {
            survey
                .sections
                .iter()
                .map(|s| SectionForm {
                    id: s.id.clone(),
                    fields: coherence::results::demo::section_fields(
                        &survey,
                        s,
                        &links[i].1,
                        2008 + i as u64,
                    ),
                    files: s
                        .questions
                        .iter()
                        .filter(|q| matches!(q.kind, coherence::survey::QuestionKind::File { .. }))
                        .map(|q| q.id.clone())
                        .collect(),
                })
                .collect()
        })
        .collect();
    let pid = server.child.id();
    let base = Arc::new(server.address.clone());
    let links = Arc::new(links);
    let forms = Arc::new(forms);
    let next = Arc::new(AtomicUsize::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let load_before = loadavg();
    let counters_before = server_counters(&base).await;
    let cpu_before = cpu_seconds(pid);
    let generator_cpu_before = cpu_seconds(std::process::id());
    let machine_before = machine_busy_seconds();
    let _profile = profile("whole responses", pid, duration);
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let (base, links, forms, next, tally) = (
            base.clone(),
            links.clone(),
            forms.clone(),
            next.clone(),
            tally.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut mine = Tally::default();
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((link, _)) = links.get(i) else { break };
                if respond(&base, link, &forms[c], &mut mine).await {
                    mine.completed += 1;
                }
            }
            if let Ok(mut t) = tally.lock() {
                for s in 0..STEPS.len() {
                    t.latencies[s].append(&mut mine.latencies[s]);
                    t.errors[s] += mine.errors[s];
                }
                t.completed += mine.completed;
                t.requests += mine.requests;
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let secs = start.elapsed().as_secs_f64();
    let server_cpu = cpu_seconds(pid) - cpu_before;
    let generator_cpu = cpu_seconds(std::process::id()) - generator_cpu_before;
    let machine_cpu = machine_busy_seconds() - machine_before;
    let counters_after = server_counters(&base).await;
    let rss = peak_rss_mib(pid);
    let (anon, file) = rss_split_mib(pid);
    drop(server);
    let mut tally = std::mem::take(&mut *tally.lock().expect("tally"));
    let stored = submitted(db);
    let per_second = tally.requests as f64 / secs;
    println!(
        "whole responses of {SURVEY} ({} questions, {} sections; a fresh link each): {:.1} responses/s, {:.0} req/s ({:.1} % of /healthz), server CPU {:.0} us/req, {:.1} ms per response",
        survey.questions().count(),
        survey.sections.len(),
        tally.completed as f64 / secs,
        per_second,
        100.0 * per_second / healthz_per_second.max(1.0),
        server_cpu * 1e6 / tally.requests.max(1) as f64,
        server_cpu * 1e3 / tally.completed.max(1) as f64,
    );
    // The generator shares the machine: what it spends on each response bounds the rate as
    // the server's own CPU does (the kernel's work for both sides is counted in each). On
    // PostgreSQL the database's processes share it too: they are most of the rest of the
    // machine's CPU, read from the kernel's totals.
    let completed = tally.completed.max(1) as f64;
    let (server_ms, generator_ms) = (
        server_cpu * 1e3 / completed,
        generator_cpu * 1e3 / completed,
    );
    let rest_ms = ((machine_cpu - server_cpu - generator_cpu) * 1e3 / completed).max(0.0);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let rest = match db.starts_with("postgres") {
        true => "the rest of the machine (PostgreSQL's processes, and anything else running)",
        false => "the rest of the machine",
    };
    println!(
        "  generator CPU {generator_ms:.1} ms per response, {rest} {rest_ms:.1} ms; with the server's {server_ms:.1} ms, {cores:.0} cores allow at most {:.0} responses/s here",
        cores * 1e3 / (server_ms + generator_ms + rest_ms).max(f64::EPSILON)
    );
    if let (Some((s0, _)), Some((s1, _))) = (counters_before, counters_after) {
        println!(
            "  SQL statements: {:.2} per request, {:.1} per response",
            (s1 - s0) / tally.requests.max(1) as f64,
            (s1 - s0) / tally.completed.max(1) as f64
        );
    }
    for (s, name) in STEPS.iter().enumerate() {
        let l = &mut tally.latencies[s];
        l.sort();
        let pct = |p: f64| {
            l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
                .as_secs_f64()
                * 1000.0
        };
        println!(
            "  {name:<20} {:>8} requests  p50 {:>6.2} ms  p99 {:>6.2} ms  errors {}",
            l.len(),
            pct(0.5),
            pct(0.99),
            tally.errors[s]
        );
    }
    println!(
        "  completed {} responses in {secs:.1} s; submitted responses in the database: {stored}; server peak RSS {rss:.1} MiB (at the end: anonymous {anon:.1}, file-backed {file:.1}); load before {load_before}, after {}",
        tally.completed,
        loadavg()
    );
    assert_eq!(
        stored, tally.completed as i64,
        "every acknowledged submission must be stored, and nothing else submitted"
    );
}

/// One response, start to submission, as a new browser; false at the first step that fails.
async fn respond(base: &str, link: &str, forms: &[SectionForm], t: &mut Tally) -> bool {
    let Ok(client) = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
    else {
        return false;
    };
    let url = format!("{base}{link}");
    if get(&client, &url, 0, t).await.is_none() {
        return false;
    }
    for form in forms {
        let section_url = format!("{url}/s/{}", form.id);
        // A save that reveals questions brings the form back with them ("more"): the focal
        // point answers and saves again (the fields already hold every answer).
        for _round in 0..3 {
            let page = match fetch(&client, &section_url, 1, t).await {
                Fetched::Page(page) => page,
                // A section its answers hide (the second good practice, when there is none):
                // not on the overview, not visited.
                Fetched::NotFound => break,
                Fetched::Failed => return false,
            };
            let (csrf, version) = (hidden(&page, "_csrf"), hidden(&page, "_version"));
            let started = Instant::now();
            let sent = if page.contains("enctype=\"multipart/form-data\"") {
                let mut body = reqwest::multipart::Form::new()
                    .text("_csrf", csrf)
                    .text("_version", version);
                for (k, v) in &form.fields {
                    body = body.text(k.clone(), v.clone());
                }
                for f in &form.files {
                    // What a browser sends for a file input left empty.
                    let empty = reqwest::multipart::Part::bytes(Vec::new())
                        .file_name("")
                        .mime_str("application/octet-stream")
                        .expect("mime");
                    body = body.part(f.clone(), empty);
                }
                client.post(&section_url).multipart(body).send().await
            } else {
                let mut fields: Vec<(&str, &str)> = vec![("_csrf", &csrf), ("_version", &version)];
                fields.extend(form.fields.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                client
                    .post(&section_url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(serde_urlencoded::to_string(&fields).unwrap_or_default())
                    .send()
                    .await
            };
            t.requests += 1;
            let location = match sent {
                Ok(r) if r.status() == 303 => r
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .unwrap_or("")
                    .to_string(),
                _ => {
                    t.errors[2] += 1;
                    return false;
                }
            };
            t.latencies[2].push(started.elapsed());
            if !location.contains("more=1") {
                break;
            }
        }
    }
    let Some(review) = get(&client, &format!("{url}/review"), 3, t).await else {
        return false;
    };
    let started = Instant::now();
    let sent = client
        .post(format!("{url}/submit"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            serde_urlencoded::to_string([("_csrf", hidden(&review, "_csrf"))]).unwrap_or_default(),
        )
        .send()
        .await;
    t.requests += 1;
    match sent {
        Ok(r) if r.status() == 303 => {
            t.latencies[4].push(started.elapsed());
            true
        }
        _ => {
            t.errors[4] += 1;
            false
        }
    }
}

/// GET a page that must answer 200: its body, timed as step `step`.
async fn get(client: &reqwest::Client, url: &str, step: usize, t: &mut Tally) -> Option<String> {
    match fetch(client, url, step, t).await {
        Fetched::Page(page) => Some(page),
        Fetched::NotFound => {
            t.errors[step] += 1;
            None
        }
        Fetched::Failed => None,
    }
}

enum Fetched {
    Page(String),
    NotFound,
    /// Any other answer, or none: counted as an error of the step.
    Failed,
}

/// GET a page, timed as step `step` when it answers 200.
async fn fetch(client: &reqwest::Client, url: &str, step: usize, t: &mut Tally) -> Fetched {
    let started = Instant::now();
    t.requests += 1;
    match client.get(url).send().await {
        Ok(r) if r.status() == 200 => match r.text().await {
            Ok(b) => {
                t.latencies[step].push(started.elapsed());
                Fetched::Page(b)
            }
            Err(_) => {
                t.errors[step] += 1;
                Fetched::Failed
            }
        },
        Ok(r) if r.status() == 404 => Fetched::NotFound,
        _ => {
            t.errors[step] += 1;
            Fetched::Failed
        }
    }
}

//! Faults: the database unavailable, the server killed, PostgreSQL restarted, the disk full.
//!
//! `database_unavailable_gets_the_503_page` runs with the suite, on both backends. The other
//! tests are `#[ignore]`d: they load the real `coherence serve` process (a subprocess) with 24
//! concurrent savers and break things under it. `bash tests/faults.sh` runs them: it builds the
//! binary, starts a PostgreSQL cluster it may restart and mounts a small tmpfs, and passes them
//! in `COHERENCE_FAULTS_*` variables. Each prints one `FAULTS ...` line of figures.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coherence::db::{self, schema, DbUrl};
use diesel::prelude::*;

use crate::helpers::{fixtures, free_port, fresh_database, Backend, Page, TestApp};
use crate::on_both_backends;

on_both_backends!(database_unavailable_gets_the_503_page);

const EN_TITLE: &str = "The service is briefly unavailable";
const EN_NOT_SAVED: &str = "The answers on the page you sent were not saved";

/// A 503 in the service's look, saying the answers were not saved, with `Retry-After`.
fn assert_unavailable_page(page: &Page, title: &str) {
    assert_eq!(page.status, 503, "{}", page.body);
    let header = |name: &str| page.headers.get(name).and_then(|v| v.to_str().ok());
    assert_eq!(header("retry-after"), Some("10"));
    assert!(header("content-type").is_some_and(|c| c.starts_with("text/html")));
    assert!(page.body.contains(title), "{}", page.body);
    assert!(
        page.body.contains("/static/app.css"),
        "the page is in the service's look: {}",
        page.body
    );
}

/// The database stops answering under a running server: the request gets a 503 page saying
/// the answers were not saved, and the same form sent again once the database is back is
/// saved, without restarting the server. On PostgreSQL, connections killed under the pool are
/// first replaced without the user noticing.
async fn database_unavailable_gets_the_503_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app.issue_token("fixture", "SWE", "Anna");
    let action = format!("{link}/s/basics");
    let form = app.get(&action).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let answers = [
        ("name", "Anna"),
        ("active", "yes"),
        ("notes", "kept after the outage"),
    ];
    match backend {
        Backend::Sqlite => {
            // Another process holds the write lock past the busy timeout (10 s), as a long
            // import or a careless backup would: SQLITE_BUSY.
            let mut other = diesel::SqliteConnection::establish(&app.database_url).unwrap();
            diesel::sql_query("BEGIN IMMEDIATE")
                .execute(&mut other)
                .unwrap();
            let refused = app.post_form_from(&form, &action, &answers).await;
            assert_unavailable_page(&refused, EN_TITLE);
            assert!(refused.body.contains(EN_NOT_SAVED), "{}", refused.body);
            // Reading still works: the database is there, only locked for writing.
            assert_eq!(app.get("/healthz").await.status, 200);
            diesel::sql_query("ROLLBACK").execute(&mut other).unwrap();
        }
        Backend::Postgres => {
            let (server, name) = app.database_url.rsplit_once('/').unwrap();
            let mut admin = PgConnection::establish(&format!("{server}/postgres")).unwrap();
            let terminate = format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            );
            // Every pooled connection killed: the pool finds them dead at checkout and opens
            // new ones.
            let killed = diesel::sql_query(&terminate).execute(&mut admin).unwrap();
            assert!(killed >= 1, "the pool had connections");
            assert_eq!(app.get("/healthz").await.status, 200);
            assert_eq!(app.get(&action).await.status, 200);
            // Now the database refuses connections, as a server that is down or restarting.
            diesel::sql_query(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
                .execute(&mut admin)
                .unwrap();
            diesel::sql_query(&terminate).execute(&mut admin).unwrap();
            let started = Instant::now();
            let french = format!("{action}?lang=fr");
            let (refused, health, fr) = tokio::join!(
                app.post_form_from(&form, &action, &answers),
                app.get("/healthz"),
                app.get(&french),
            );
            assert_unavailable_page(&refused, EN_TITLE);
            assert!(refused.body.contains(EN_NOT_SAVED), "{}", refused.body);
            assert_eq!(health.status, 503, "healthz while the database is down");
            assert_unavailable_page(&fr, "Le service est momentanément indisponible");
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "the 503 comes after the pool's timeout, not much later: {:?}",
                started.elapsed()
            );
            diesel::sql_query(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
                .execute(&mut admin)
                .unwrap();
        }
    }
    // The same form, sent again: saved, by the same server process.
    let deadline = Instant::now() + Duration::from_secs(30);
    let saved = loop {
        let page = app.post_form_from(&form, &action, &answers).await;
        if page.status != 503 || Instant::now() > deadline {
            break page;
        }
    };
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(app.get("/healthz").await.status, 200);
    let after = app.get(&action).await;
    assert_eq!(
        after.field_value("notes").as_deref(),
        Some("kept after the outage")
    );
    app.stop().await;
}

/// A statement held behind a lock (a migration on another server rewriting the table, a psql
/// session left open in a transaction) is cancelled after the pool's statement timeout: the page
/// read, which runs on the worker's own thread, and the save both get the 503 page within about
/// that time rather than holding the worker and the browser, nothing half-saved; once the lock
/// is gone the same form is saved and the page shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_stuck_behind_a_lock_get_the_503_page_after_the_statement_timeout() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let url = fresh_database(Backend::Postgres, dir.path());
    let timeout = Duration::from_secs(1);
    let app = TestApp::start_with(
        url,
        fixtures().join("surveys"),
        dir,
        vec![("COHERENCE_STATEMENT_TIMEOUT_SECS", "1".into())],
    )
    .await;
    let link = app.issue_token("fixture", "SWE", "Anna");
    let action = format!("{link}/s/basics");
    let first = app.get(&action).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let before = [("name", "Anna"), ("notes", "saved before the lock")];
    let saved = app.post_form_from(&first, &action, &before).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let form = app.get(&action).await;
    assert_eq!(
        form.field_value("notes").as_deref(),
        Some("saved before the lock")
    );

    let mut other = PgConnection::establish(&app.database_url).unwrap();
    diesel::sql_query("BEGIN").execute(&mut other).unwrap();
    diesel::sql_query("LOCK TABLE answers IN ACCESS EXCLUSIVE MODE")
        .execute(&mut other)
        .unwrap();
    let answers = [("name", "Anna"), ("notes", "saved after the lock")];
    let started = Instant::now();
    let (read, refused) = tokio::join!(
        app.get(&action),
        app.post_form_from(&form, &action, &answers)
    );
    let waited = started.elapsed();
    assert_unavailable_page(&read, EN_TITLE);
    assert_unavailable_page(&refused, EN_TITLE);
    assert!(refused.body.contains(EN_NOT_SAVED), "{}", refused.body);
    assert!(
        waited >= timeout && waited < timeout * 8,
        "the statements waited for the lock until the timeout, and no longer: {waited:?}"
    );
    // The rest of the service works meanwhile, and the cancelled statements left their pooled
    // connections usable.
    assert_eq!(app.get("/healthz").await.status, 200);
    diesel::sql_query("ROLLBACK").execute(&mut other).unwrap();

    let shown = app.get(&action).await;
    assert_eq!(
        shown.field_value("notes").as_deref(),
        Some("saved before the lock"),
        "the refused save changed nothing"
    );
    let saved = app.post_form_from(&form, &action, &answers).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let after = app.get(&action).await;
    assert_eq!(
        after.field_value("notes").as_deref(),
        Some("saved after the lock")
    );
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Load tests against the real process, run by tests/faults.sh.
// ---------------------------------------------------------------------------------------------

/// Concurrent savers, one country (and personal link) each.
const SAVERS: usize = 24;
const COUNTRIES: [&str; SAVERS] = [
    "AFG", "AGO", "ALB", "AND", "ARE", "ARG", "ARM", "ATG", "AUS", "AUT", "AZE", "BDI", "BEL",
    "BEN", "BFA", "BGD", "BGR", "BHR", "BHS", "BIH", "BLR", "BLZ", "BOL", "BRA",
];
/// Every load test stops by itself within this time, whatever happens.
const TEST_LIMIT: Duration = Duration::from_secs(150);

fn faults_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the fault tests with `bash tests/faults.sh` (as root)")
    })
}

/// The real `coherence serve`, restarted on the same port and database.
struct Served {
    bin: PathBuf,
    port: u16,
    database_url: String,
    log: PathBuf,
    child: Option<Child>,
    starts: u32,
}

impl Served {
    fn new(database_url: &str, log_dir: &Path) -> Served {
        let bin = std::env::var("COHERENCE_FAULTS_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(env!("CARGO_BIN_EXE_coherence")));
        Served {
            bin,
            port: free_port(),
            database_url: database_url.to_string(),
            log: log_dir.join("server.log"),
            child: None,
            starts: 0,
        }
    }

    fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.env("COHERENCE_DATABASE_URL", &self.database_url)
            .env("COHERENCE_SURVEYS", fixtures().join("surveys"))
            .env("COHERENCE_BIND", format!("127.0.0.1:{}", self.port))
            .env("COHERENCE_BASE_URL", self.address())
            .env("COHERENCE_DB_POOL", "8")
            // Each saver saves as fast as it can: far past a person's pace, which the per-link
            // budget would otherwise refuse. Durability, not that limit, is under test here.
            .env("COHERENCE_LINK_SAVES_PER_MINUTE", "100000")
            .env("COHERENCE_LOG", "warn")
            .env_remove("COHERENCE_SMTP_URL");
        cmd
    }

    /// One personal link per saver, issued with the command line: (country, path).
    fn issue_links(&self) -> Vec<(String, String)> {
        COUNTRIES
            .iter()
            .enumerate()
            .map(|(i, country)| {
                let out = self
                    .command()
                    .args(["token", "issue", "--survey", "fixture", "--country"])
                    .arg(country)
                    .args(["--name", &format!("Saver {i}")])
                    .output()
                    .expect("run coherence token issue");
                assert!(
                    out.status.success(),
                    "token issue: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let stdout = String::from_utf8_lossy(&out.stdout);
                let line = stdout.lines().last().expect("a link").trim();
                let path = &line[line.find("/r/").expect("a /r/ link")..];
                (country.to_string(), path.to_string())
            })
            .collect()
    }

    /// Start the server and wait until it answers /healthz; how long that took.
    async fn start(&mut self) -> Duration {
        let started = Instant::now();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("server log");
        let child = self
            .command()
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start coherence serve");
        self.child = Some(child);
        self.starts += 1;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let url = format!("{}/healthz", self.address());
        while started.elapsed() < Duration::from_secs(60) {
            if !self.is_running() {
                panic!("the server exited at start:\n{}", self.log_tail());
            }
            if let Ok(r) = client.get(&url).send().await {
                if r.status() == 200 {
                    return started.elapsed();
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "the server did not answer within 60 s:\n{}",
            self.log_tail()
        );
    }

    fn sigkill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }

    /// SIGTERM, and wait (at most 20 s) for a graceful stop.
    fn terminate(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let until = Instant::now() + Duration::from_secs(20);
            while Instant::now() < until {
                if let Ok(Some(_)) = child.try_wait() {
                    self.child = None;
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.sigkill();
    }

    fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.sigkill();
    }
}

/// A response as the load clients see it.
struct Reply {
    status: u16,
    location: String,
    retry_after: bool,
    html: bool,
    body: String,
}

async fn fetch(req: reqwest::RequestBuilder) -> Result<Reply, reqwest::Error> {
    let res = req.send().await?;
    let header = |name: &str| {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let status = res.status().as_u16();
    let location = header("location");
    let retry_after = !header("retry-after").is_empty();
    let html = header("content-type").starts_with("text/html");
    let body = res.text().await?;
    Ok(Reply {
        status,
        location,
        retry_after,
        html,
        body,
    })
}

fn hidden(body: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body.find(&marker)? + marker.len();
    let end = body[start..].find('"')? + start;
    Some(body[start..end].to_string())
}

/// What the clients saw, by status.
#[derive(Default)]
struct Tally {
    statuses: BTreeMap<u16, u32>,
    /// Requests that got no answer (connection refused or reset: the server was killed).
    unanswered: u32,
    /// Of those, saves: sent, but whether they were stored is not known to the client.
    saves_in_doubt: u32,
    /// 503s with the "briefly unavailable" page and Retry-After.
    clear_503: u32,
    /// Anything else than the expected status or a clear 503: status and start of the body.
    unexpected: Vec<String>,
}

impl Tally {
    fn record(&mut self, reply: &Reply, expected: u16) {
        *self.statuses.entry(reply.status).or_default() += 1;
        if reply.status == expected {
            return;
        }
        let clear = reply.status == 503
            && reply.html
            && reply.retry_after
            && reply.body.contains(EN_TITLE)
            && reply.body.contains(EN_NOT_SAVED)
            && reply.body.contains("/static/app.css");
        if clear {
            self.clear_503 += 1;
        } else if self.unexpected.len() < 5 {
            let start: String = reply.body.chars().take(300).collect();
            self.unexpected
                .push(format!("{} (expected {expected}): {start}", reply.status));
        } else {
            self.unexpected.push(format!("{}", reply.status));
        }
    }

    fn add(&mut self, other: &Tally) {
        for (s, n) in &other.statuses {
            *self.statuses.entry(*s).or_default() += n;
        }
        self.unanswered += other.unanswered;
        self.saves_in_doubt += other.saves_in_doubt;
        self.clear_503 += other.clear_503;
        self.unexpected.extend(other.unexpected.iter().cloned());
    }

    fn count(&self, status: u16) -> u32 {
        self.statuses.get(&status).copied().unwrap_or(0)
    }
}

/// A save the server acknowledged (303 to the section with `saved=1`).
struct Ack {
    seq: u32,
    /// The section's version this save made: the form's `_version` plus one.
    version: i32,
    at: Instant,
}

struct SaverReport {
    index: usize,
    country: String,
    acks: Vec<Ack>,
    /// The last save sent (acknowledged or not).
    sent: u32,
    tally: Tally,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// The notes a saver sends with its save number `seq`: distinct for every save, with `pad`
/// letters of filler to make the rows bigger.
fn notes_value(index: usize, seq: u32, pad: usize) -> String {
    let filler: String = (0..pad)
        .map(|i| (b'a' + ((i * 7 + seq as usize * 13 + index) % 26) as u8) as char)
        .collect();
    format!("saver {index} save {seq} {filler}")
}

fn seq_of(notes: &str) -> Option<u32> {
    notes.split(' ').nth(3)?.parse().ok()
}

/// Open the section form, post a save with distinct values, again and again until told to stop.
async fn saver(
    address: String,
    index: usize,
    country: String,
    link: String,
    pad: usize,
    stop: Arc<AtomicBool>,
) -> SaverReport {
    let client = client();
    let action = format!("{address}{link}/s/basics");
    let deadline = Instant::now() + TEST_LIMIT;
    let mut report = SaverReport {
        index,
        country,
        acks: Vec::new(),
        sent: 0,
        tally: Tally::default(),
    };
    let name = format!("S{index}");
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && report.sent < 100_000 {
        let form = match fetch(client.get(&action)).await {
            Ok(r) => r,
            Err(_) => {
                report.tally.unanswered += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        report.tally.record(&form, 200);
        let fields = hidden(&form.body, "_csrf")
            .zip(hidden(&form.body, "_version").and_then(|v| v.parse::<i32>().ok()));
        let Some((csrf, version)) = fields.filter(|_| form.status == 200) else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        report.sent += 1;
        let seq = report.sent;
        let body = serde_urlencoded::to_string([
            ("_csrf", csrf.as_str()),
            ("_version", &version.to_string()),
            ("name", &name),
            ("active", "yes"),
            ("notes", &notes_value(index, seq, pad)),
        ])
        .unwrap();
        let post = client
            .post(&action)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        match fetch(post).await {
            Ok(reply) => {
                report.tally.record(&reply, 303);
                if reply.status == 303 && reply.location.contains("saved=1") {
                    report.acks.push(Ack {
                        seq,
                        version: version + 1,
                        at: Instant::now(),
                    });
                }
            }
            Err(_) => {
                report.tally.unanswered += 1;
                report.tally.saves_in_doubt += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    report
}

fn start_savers(
    address: &str,
    links: &[(String, String)],
    pad: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<SaverReport>> {
    links
        .iter()
        .enumerate()
        .map(|(i, (country, link))| {
            tokio::spawn(saver(
                address.to_string(),
                i,
                country.clone(),
                link.clone(),
                pad,
                stop.clone(),
            ))
        })
        .collect()
}

async fn join_all<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("load task"));
    }
    out
}

/// Page readers: a respondent's overview and section pages, over and over.
async fn reader(address: String, link: String, stop: Arc<AtomicBool>) -> Tally {
    let client = client();
    let deadline = Instant::now() + TEST_LIMIT;
    let mut tally = Tally::default();
    let pages = [
        format!("{address}{link}"),
        format!("{address}{link}/s/basics"),
    ];
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && n < 1_000_000 {
        match fetch(client.get(&pages[n % 2])).await {
            Ok(reply) => tally.record(&reply, 200),
            Err(_) => tally.unanswered += 1,
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tally
}

/// /healthz every 100 ms: (when asked, when answered, status; 0 for no answer).
async fn health_poller(address: String, stop: Arc<AtomicBool>) -> Vec<(Instant, Instant, u16)> {
    let client = client();
    let deadline = Instant::now() + TEST_LIMIT;
    let mut seen = Vec::new();
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let asked = Instant::now();
        let status = match client.get(format!("{address}/healthz")).send().await {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        };
        seen.push((asked, Instant::now(), status));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen
}

/// Every acknowledged save, checked in the database.
struct Verified {
    acknowledged: usize,
    verified: usize,
    lost: Vec<String>,
}

/// For each saver: every acknowledged save's version has its audit entry (a save with base
/// version v writes version v+1, exactly once; entries recorded before the kill are chained
/// when the log is read), and the stored notes are those of the
/// last acknowledged save or of a later one this saver sent (sent, committed, but killed
/// before the answer).
fn verify(database_url: &str, reports: &[SaverReport]) -> Verified {
    use schema::{answers, responses};
    let url = DbUrl::parse(database_url).unwrap();
    let pool = db::connect(&url, 1).expect("open the database to verify");
    let mut conn = pool.get().unwrap();
    let saved: Vec<db::audit::AuditRow> = db::audit::entries(&mut conn, Some("fixture"))
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "saved")
        .collect();
    let mut out = Verified {
        acknowledged: 0,
        verified: 0,
        lost: Vec::new(),
    };
    for r in reports {
        out.acknowledged += r.acks.len();
        let Some(last) = r.acks.last() else {
            continue;
        };
        let response: Option<String> = responses::table
            .filter(responses::survey_id.eq("fixture"))
            .filter(responses::country_iso3.eq(&r.country))
            .select(responses::id)
            .first(&mut conn)
            .optional()
            .unwrap();
        let Some(response) = response else {
            out.lost.push(format!(
                "{}: {} saves acknowledged, no response stored",
                r.country,
                r.acks.len()
            ));
            continue;
        };
        let versions: HashSet<i32> = saved
            .iter()
            .filter(|e| e.country_iso3 == r.country)
            .map(|e| serde_json::from_str::<serde_json::Value>(&e.detail).unwrap())
            .filter(|d| d["section"] == "basics")
            .map(|d| d["version"].as_i64().unwrap() as i32)
            .collect();
        let notes: Option<String> = answers::table
            .filter(answers::response_id.eq(&response))
            .filter(answers::question_id.eq("notes"))
            .select(answers::value)
            .first(&mut conn)
            .optional()
            .unwrap();
        let stored = notes.as_deref().and_then(seq_of);
        let mut ok = 0;
        for ack in &r.acks {
            if versions.contains(&ack.version) {
                ok += 1;
            } else {
                out.lost.push(format!(
                    "{}: save {} acknowledged as version {}, not in the audit log",
                    r.country, ack.seq, ack.version
                ));
            }
        }
        let expected_prefix = format!("saver {} save ", r.index);
        match stored {
            Some(s)
                if s >= last.seq
                    && s <= r.sent
                    && notes.as_deref().unwrap_or("").starts_with(&expected_prefix) => {}
            _ => {
                ok = ok.min(r.acks.len() - 1);
                out.lost.push(format!(
                    "{}: last acknowledged save {}, stored notes are save {:?}",
                    r.country, last.seq, stored
                ));
            }
        }
        out.verified += ok;
    }
    out
}

fn summarise(reports: &[SaverReport]) -> Tally {
    let mut all = Tally::default();
    for r in reports {
        all.add(&r.tally);
    }
    all
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// SIGKILL the server again and again at random moments while 24 officials save, restart it
/// on the same port and database each time: no acknowledged save may be missing.
async fn sigkill_under_concurrent_savers(backend: Backend) {
    let kills: u32 = std::env::var("COHERENCE_FAULTS_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15)
        .clamp(1, 50);
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(backend, dir.path());
    let mut server = Served::new(&url, dir.path());
    let links = server.issue_links();
    server.start().await;
    let stop = Arc::new(AtomicBool::new(false));
    let savers = start_savers(&server.address(), &links, 200, &stop);
    let began = Instant::now();
    let mut restarts = Vec::new();
    for _ in 0..kills {
        if began.elapsed() > TEST_LIMIT - Duration::from_secs(30) {
            break;
        }
        let wait = rand::random_range(150..700);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        server.sigkill();
        restarts.push(server.start().await);
    }
    // Let the savers save after the last restart too.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let reports = join_all(savers).await;
    let elapsed = began.elapsed();
    let v = verify(&url, &reports);
    let tally = summarise(&reports);
    let killed = restarts.len();
    println!(
        "\nFAULTS sigkill {backend:?}: savers={SAVERS} kills={killed} saves_sent={} \
         acknowledged={} verified={} lost={} unanswered_saves={} clear_503={} unexpected={} \
         restart_ms_max={} duration_s={:.1}",
        reports.iter().map(|r| r.sent).sum::<u32>(),
        v.acknowledged,
        v.verified,
        v.lost.len(),
        tally.saves_in_doubt,
        tally.clear_503,
        tally.unexpected.len(),
        restarts.iter().map(|d| ms(*d)).max().unwrap_or(0),
        elapsed.as_secs_f64(),
    );
    server.terminate();
    assert_eq!(killed as u32, kills, "every planned kill happened");
    assert!(v.lost.is_empty(), "acknowledged saves lost: {:#?}", v.lost);
    assert_eq!(v.verified, v.acknowledged);
    assert!(
        v.acknowledged >= SAVERS * 2,
        "too few saves acknowledged to mean anything: {}",
        v.acknowledged
    );
    assert!(
        tally.unexpected.is_empty(),
        "unexpected answers: {:#?}",
        tally.unexpected
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a load test against the real process: run by tests/faults.sh"]
async fn sigkill_under_concurrent_savers_sqlite() {
    sigkill_under_concurrent_savers(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a load test against the real process: run by tests/faults.sh"]
async fn sigkill_under_concurrent_savers_postgres() {
    sigkill_under_concurrent_savers(Backend::Postgres).await
}

/// `pg_ctl` as the postgres user, on the cluster tests/faults.sh started.
fn pg_ctl(action: &[&str]) -> Duration {
    let bin = faults_env("COHERENCE_FAULTS_PG_BIN");
    let data = PathBuf::from(faults_env("COHERENCE_FAULTS_PG_DATA"));
    let log = data.parent().unwrap().join("log");
    let started = Instant::now();
    // The server's output goes to its log: a pipe held open by it would never close.
    let status = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(format!("{bin}/pg_ctl"))
        .arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(&log)
        .args(["-m", "fast", "-w", "-t", "60"])
        .args(action)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run pg_ctl");
    assert!(status.success(), "pg_ctl {action:?} failed");
    started.elapsed()
}

/// PostgreSQL restarted, then stopped for longer than the pool's timeout, while officials save
/// and read: requests that cannot reach it get the 503 page (never a 500), /healthz says 503
/// then 200, the same server process recovers by itself, and no acknowledged save is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "restarts the PostgreSQL cluster: run by tests/faults.sh"]
async fn postgres_restart_under_load() {
    let down_for = Duration::from_secs(7);
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(Backend::Postgres, dir.path());
    let mut server = Served::new(&url, dir.path());
    let links = server.issue_links();
    server.start().await;
    let address = server.address();
    let stop = Arc::new(AtomicBool::new(false));
    let savers = start_savers(&address, &links, 200, &stop);
    let readers: Vec<_> = links
        .iter()
        .take(4)
        .map(|(_, link)| tokio::spawn(reader(address.clone(), link.clone(), stop.clone())))
        .collect();
    let health = tokio::spawn(health_poller(address.clone(), stop.clone()));
    let began = Instant::now();

    tokio::time::sleep(Duration::from_secs(2)).await;
    let restart_took = pg_ctl(&["restart"]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let down_at = Instant::now();
    pg_ctl(&["stop"]);
    tokio::time::sleep(down_for).await;
    // `restart` of a stopped cluster starts it with the options it last ran with.
    pg_ctl(&["restart"]);
    let up_at = Instant::now();
    // Recovery: a save stored after PostgreSQL is back (bounded), then a little more load.
    while up_at.elapsed() < Duration::from_secs(30) && first_save_after(&url, up_at).is_none() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let reports = join_all(savers).await;
    let read_tallies = join_all(readers).await;
    let health = health.await.unwrap();
    let elapsed = began.elapsed();

    let v = verify(&url, &reports);
    let mut tally = summarise(&reports);
    for t in &read_tallies {
        tally.add(t);
    }
    let first_ack_after_up = reports
        .iter()
        .flat_map(|r| r.acks.iter())
        .filter(|a| a.at > up_at)
        .map(|a| a.at - up_at)
        .min();
    let health_503_while_down = health
        .iter()
        .filter(|(asked, _, s)| *s == 503 && *asked >= down_at && *asked < up_at)
        .count();
    // The slowest /healthz asked while PostgreSQL was down: the check has a thread of its own
    // (db::health), so it does not queue behind requests waiting out the pool's 5 s.
    let health_slowest_while_down = health
        .iter()
        .filter(|(asked, _, _)| *asked >= down_at && *asked < up_at)
        .map(|(asked, answered, _)| *answered - *asked)
        .max()
        .unwrap_or_default();
    let health_200_after = health
        .iter()
        .filter(|(asked, _, s)| *s == 200 && *asked > up_at)
        .map(|(asked, _, _)| *asked - up_at)
        .min();
    let still_running = server.is_running();
    let cause_logged = server.log_text().matches("database unavailable").count();
    println!(
        "\nFAULTS pg-restart: savers={SAVERS} readers=4 pg_restart_ms={} down_s={} \
         acknowledged={} verified={} lost={} clear_503={} status_500={} unexpected={} \
         healthz_503_while_down={} healthz_slowest_while_down_ms={} healthz_200_after_ms={} \
         first_save_after_up_ms={} \
         server_restarted={} unavailable_logged={} duration_s={:.1}",
        ms(restart_took),
        down_for.as_secs(),
        v.acknowledged,
        v.verified,
        v.lost.len(),
        tally.clear_503,
        tally.count(500),
        tally.unexpected.len(),
        health_503_while_down,
        ms(health_slowest_while_down),
        health_200_after.map(ms).unwrap_or(0),
        first_ack_after_up.map(ms).unwrap_or(0),
        server.starts > 1 || !still_running,
        cause_logged,
        elapsed.as_secs_f64(),
    );
    server.terminate();
    assert!(still_running, "the server died:\n{}", server.log_tail());
    assert_eq!(server.starts, 1, "the server was not restarted");
    assert!(v.lost.is_empty(), "acknowledged saves lost: {:#?}", v.lost);
    assert_eq!(v.verified, v.acknowledged);
    assert!(
        tally.unexpected.is_empty(),
        "unexpected answers (500s or 503s without the page): {:#?}",
        tally.unexpected
    );
    assert!(tally.clear_503 >= 1, "no request saw the 503 page");
    assert!(health_503_while_down >= 1, "/healthz never said 503");
    assert!(
        health_slowest_while_down <= Duration::from_secs(4),
        "/healthz took {health_slowest_while_down:?} to answer while PostgreSQL was down"
    );
    assert!(health_200_after.is_some(), "/healthz never said 200 again");
    assert!(
        first_ack_after_up.is_some(),
        "no save acknowledged after PostgreSQL came back"
    );
    assert!(cause_logged >= 1, "the cause of the 503s is in the log");
}

/// How long after `since` the first save was recorded, if any yet: its audit entry, sealed
/// or not (read without sealing: this only watches).
fn first_save_after(database_url: &str, since: Instant) -> Option<Duration> {
    use schema::{audit_log, audit_pending};
    let url = DbUrl::parse(database_url).ok()?;
    let mut conn = match url {
        DbUrl::Postgres(u) => db::DbConn::Postgres(PgConnection::establish(&u).ok()?),
        DbUrl::Sqlite(p) => db::DbConn::Sqlite(diesel::SqliteConnection::establish(&p).ok()?),
    };
    let wall_since =
        chrono::Utc::now().naive_utc() - chrono::Duration::from_std(since.elapsed()).ok()?;
    let pending: Option<chrono::NaiveDateTime> = audit_pending::table
        .filter(audit_pending::kind.eq("saved"))
        .filter(audit_pending::at.gt(wall_since))
        .select(diesel::dsl::min(audit_pending::at))
        .first(&mut conn)
        .ok()?;
    let sealed: Option<chrono::NaiveDateTime> = audit_log::table
        .filter(audit_log::kind.eq("saved"))
        .filter(audit_log::at.gt(wall_since))
        .select(diesel::dsl::min(audit_log::at))
        .first(&mut conn)
        .ok()?;
    let first = pending.into_iter().chain(sealed).min()?;
    (first - wall_since).to_std().ok()
}

/// The SQLite database on a small tmpfs that fills up while officials save: the saves that
/// cannot be stored get the 503 page (no panic, no 500), the same server stores saves again
/// once space is freed, nothing acknowledged is lost, and the file passes `integrity_check`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a small tmpfs mounted by tests/faults.sh"]
async fn sqlite_disk_full() {
    let full_for = Duration::from_secs(6);
    let tmpfs = PathBuf::from(faults_env("COHERENCE_FAULTS_TMPFS"));
    let db_path = tmpfs.join("faults.db");
    for f in ["faults.db", "faults.db-wal", "faults.db-shm", "filler"] {
        let _ = std::fs::remove_file(tmpfs.join(f));
    }
    let logs = tempfile::tempdir().unwrap();
    let url = db_path.display().to_string();
    let mut server = Served::new(&url, logs.path());
    let links = server.issue_links();
    server.start().await;
    let stop = Arc::new(AtomicBool::new(false));
    // Bigger answers, so every save needs new pages in the write-ahead log.
    let savers = start_savers(&server.address(), &links, 2000, &stop);
    let began = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Fill the file system, and keep it full: take back whatever SQLite frees.
    let filler = tmpfs.join("filler");
    let filled = fill(&filler, 256 * 1024);
    let full_at = Instant::now();
    while full_at.elapsed() < full_for {
        fill(&filler, 4096);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    std::fs::remove_file(&filler).expect("free the space");
    let freed_at = Instant::now();
    // Recovery: a save stored after the space was freed (bounded), then a little more load.
    while freed_at.elapsed() < Duration::from_secs(20) && first_save_after(&url, freed_at).is_none()
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let reports = join_all(savers).await;
    let elapsed = began.elapsed();
    let still_running = server.is_running();
    let log = server.log_text();
    let v = verify(&url, &reports);
    let tally = summarise(&reports);
    let refused_while_full = tally.clear_503;
    let acks_while_full = reports
        .iter()
        .flat_map(|r| r.acks.iter())
        .filter(|a| a.at > full_at && a.at < freed_at)
        .count();
    let first_ack_after_free = reports
        .iter()
        .flat_map(|r| r.acks.iter())
        .filter(|a| a.at > freed_at)
        .map(|a| a.at - freed_at)
        .min();
    server.terminate();
    let integrity = integrity_check(&db_path);
    println!(
        "\nFAULTS sqlite-disk-full: savers={SAVERS} filled_mb={:.1} full_s={} \
         acknowledged={} verified={} lost={} clear_503={} status_500={} unexpected={} \
         acks_while_full={} first_save_after_free_ms={} server_restarted={} panics={} \
         full_logged={} integrity_check={} duration_s={:.1}",
        filled as f64 / 1_048_576.0,
        full_for.as_secs(),
        v.acknowledged,
        v.verified,
        v.lost.len(),
        refused_while_full,
        tally.count(500),
        tally.unexpected.len(),
        acks_while_full,
        first_ack_after_free.map(ms).unwrap_or(0),
        server.starts > 1 || !still_running,
        log.matches("panicked").count(),
        log.matches("database or disk is full").count(),
        integrity,
        elapsed.as_secs_f64(),
    );
    assert!(still_running, "the server died:\n{log}");
    assert!(!log.contains("panicked"), "a panic:\n{log}");
    assert!(v.lost.is_empty(), "acknowledged saves lost: {:#?}", v.lost);
    assert_eq!(v.verified, v.acknowledged);
    assert!(
        tally.unexpected.is_empty(),
        "unexpected answers (500s or 503s without the page): {:#?}",
        tally.unexpected
    );
    assert!(refused_while_full >= 1, "no save was refused while full");
    assert!(
        first_ack_after_free.is_some(),
        "no save acknowledged after the space was freed"
    );
    assert_eq!(integrity, "ok");
}

/// Append `chunk`-sized blocks to `path` until the file system refuses; bytes written.
fn fill(path: &Path, chunk: usize) -> u64 {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("filler file");
    let block = vec![0x5a_u8; chunk];
    let mut written = 0u64;
    // Bounded: a tmpfs of a few MB fills long before 4096 blocks of 256 KB (1 GiB).
    for _ in 0..4096 {
        match file.write(&block) {
            Ok(0) | Err(_) => break,
            Ok(n) => written += n as u64,
        }
    }
    let _ = file.sync_all();
    written
}

fn integrity_check(path: &Path) -> String {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        integrity_check: String,
    }
    let mut conn = diesel::SqliteConnection::establish(&path.display().to_string())
        .expect("open the database");
    let rows: Vec<Row> = diesel::sql_query("PRAGMA integrity_check")
        .load(&mut conn)
        .expect("integrity_check");
    rows.into_iter()
        .map(|r| r.integrity_check)
        .collect::<Vec<_>>()
        .join("; ")
}

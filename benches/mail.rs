//! Invitation benchmark: 10,000 contacts of one survey invited through the admin page, the
//! release server's outbox worker delivering them to a real SMTP server on loopback (aiosmtpd,
//! `tests/smtp_server.py`). Timed from the invite request to the last message at the server,
//! then checked: every contact received exactly one message, and the database records each
//! as sent. See benches/README.md.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};

#[path = "common/scratch.rs"]
mod scratch;

use scratch::ScratchDatabase;

const ADMIN: (&str, &str) = ("admin@bench.example.org", "a long benchmark passphrase");

fn main() {
    let count: usize = std::env::var("COHERENCE_BENCH_INVITES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let only = std::env::args()
        .skip(1)
        .find(|a| a == "sqlite" || a == "postgres");
    println!("machine: {}", machine());
    let mut backends = vec!["sqlite"];
    match std::env::var("COHERENCE_BENCH_PG") {
        Ok(_) => backends.push("postgres"),
        Err(_) => println!("postgres: not run (set COHERENCE_BENCH_PG or use benches/run.sh)"),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut failed = false;
    for backend in backends {
        if only.as_deref().is_some_and(|o| o != backend) {
            continue;
        }
        failed |= !runtime.block_on(run_backend(backend, count));
    }
    if failed {
        std::process::exit(1);
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{cores} cores, {cpu}")
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// aiosmtpd on loopback, writing each message to `dir/new/`.
fn start_smtp(dir: &Path) -> (Process, u16) {
    let python = std::env::var("COHERENCE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let port = free_port();
    let mut child = Command::new(python)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_server.py"))
        .args(["--port", &port.to_string(), "--dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the SMTP server (COHERENCE_TEST_PYTHON: a Python with aiosmtpd)");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("SMTP server output");
    assert_eq!(line.trim(), "ready", "the SMTP server did not start");
    (Process(child), port)
}

fn coherence(db: &str, smtp_port: u16) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_coherence"));
    cmd.env(
        "COHERENCE_SURVEYS",
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/fixtures"),
    )
    .env("COHERENCE_DATABASE_URL", db)
    .env(
        "COHERENCE_SMTP_URL",
        format!("smtp://127.0.0.1:{smtp_port}"),
    )
    .env("COHERENCE_MAIL_FROM", "Bench <survey@bench.example.org>")
    .env("COHERENCE_MAIL_POLL_MS", "100")
    .env("COHERENCE_BASE_URL", "http://bench.invalid")
    .env("COHERENCE_LOG", "warn");
    cmd
}

fn run(mut cmd: Command, stdin: Option<&str>) {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run coherence");
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).expect("stdin");
    }
    let out = child.wait_with_output().expect("coherence output");
    assert!(
        out.status.success(),
        "coherence: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of the hidden form field `name` in a page.
fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body.find(&marker).expect("hidden field") + marker.len();
    let end = body[start..].find('"').expect("closing quote") + start;
    body[start..end].to_string()
}

/// The messages at the server, by recipient (from each file's To: header).
fn received(dir: &Path) -> HashMap<String, usize> {
    let mut by_recipient = HashMap::new();
    let Ok(entries) = std::fs::read_dir(dir.join("new")) else {
        return by_recipient;
    };
    for entry in entries.flatten() {
        let Ok(raw) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let to = raw
            .lines()
            .take_while(|l| !l.is_empty())
            .find_map(|l| l.strip_prefix("To: "))
            .unwrap_or("")
            .trim()
            .to_string();
        *by_recipient.entry(to).or_insert(0) += 1;
    }
    by_recipient
}

fn arrived(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("new"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// How many outbox rows are in each state.
fn outbox_states(db: &str) -> HashMap<String, i64> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        status: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let query = "SELECT status, COUNT(*) AS n FROM outbox GROUP BY status";
    let rows: Vec<Row> = if db.starts_with("postgres") {
        let mut conn = PgConnection::establish(db).expect("reach the database");
        diesel::sql_query(query).load(&mut conn).expect("outbox")
    } else {
        let mut conn = SqliteConnection::establish(db).expect("open the database");
        diesel::sql_query(query).load(&mut conn).expect("outbox")
    };
    rows.into_iter().map(|r| (r.status, r.n)).collect()
}

async fn run_backend(backend: &str, count: usize) -> bool {
    let dir = tempfile::tempdir().expect("temp dir");
    let scratch = ScratchDatabase::new(backend, dir.path(), "bench.db", "coherence_mail");
    let db = scratch.url.clone();
    println!("\n== {backend}: {count} invitations");
    let maildir = dir.path().join("maildir");
    let (_smtp, smtp_port) = start_smtp(&maildir);

    // The contacts, spread over the UN Member States, imported with the CLI.
    let countries: Vec<String> = coherence::reference::un_member_states().collect();
    let mut csv = String::from("country,name,email,language,office\n");
    for i in 0..count {
        let c = &countries[i % countries.len()];
        csv.push_str(&format!(
            "{c},Official {i},official{i}@{}.gov.example,en,Ministry of Foreign Affairs\n",
            c.to_lowercase()
        ));
    }
    let file = dir.path().join("contacts.csv");
    std::fs::write(&file, csv).expect("write contacts");
    let mut import = coherence(&db, smtp_port);
    import.args(["contacts", "import", "bench"]).arg(&file);
    run(import, None);
    let mut add = coherence(&db, smtp_port);
    add.args([
        "user",
        "add",
        "--email",
        ADMIN.0,
        "--role",
        "admin",
        "--password-stdin",
    ]);
    run(add, Some(&format!("{}\n", ADMIN.1)));

    // The release server, with its outbox worker.
    let port = free_port();
    let mut serve = coherence(&db, smtp_port);
    serve
        .arg("serve")
        .env("COHERENCE_BIND", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null());
    let server = Process(serve.spawn().expect("start server"));
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .expect("client");
    let mut healthy = false;
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
            if r.status().is_success() {
                healthy = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(healthy, "server did not become healthy");
    let page = |path: &'static str| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move {
            client
                .get(url)
                .send()
                .await
                .expect("GET")
                .text()
                .await
                .expect("body")
        }
    };
    let csrf = hidden(&page("/admin/login").await, "_csrf");
    let res = client
        .post(format!("{base}/admin/login"))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("email", ADMIN.0),
            ("password", ADMIN.1),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(res.status(), 303, "login");
    let csrf = hidden(&page("/admin").await, "_csrf");

    // What an administrator does: one click on "invite", then the worker sends.
    let load_before = loadavg();
    let started = Instant::now();
    let res = client
        .post(format!("{base}/admin/surveys/bench/invite"))
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .expect("invite");
    let queued_after = started.elapsed();
    let invite_status = res.status();
    let body = res.text().await.unwrap_or_default();
    assert!(
        invite_status.is_success() || invite_status.is_redirection(),
        "invite: {invite_status} {body}"
    );
    let deadline = Duration::from_secs(600);
    let mut last_seen = 0;
    let mut last_change = Instant::now();
    loop {
        let n = arrived(&maildir);
        if n >= count {
            break;
        }
        if n != last_seen {
            last_seen = n;
            last_change = Instant::now();
        }
        if started.elapsed() > deadline || last_change.elapsed() > Duration::from_secs(60) {
            println!("stalled at {n} of {count} messages");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = started.elapsed();
    let load_after = loadavg();
    // Anything sent twice would arrive in the next moments.
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(server);

    let by_recipient = received(&maildir);
    let messages: usize = by_recipient.values().sum();
    let twice = by_recipient.values().filter(|n| **n > 1).count();
    let expected_missing = (0..count)
        .filter(|i| {
            let c = &countries[i % countries.len()];
            let to = format!("official{i}@{}.gov.example", c.to_lowercase());
            !by_recipient
                .keys()
                .any(|k| k.contains(&format!("<{to}>")) || *k == to)
        })
        .count();
    let states = outbox_states(&db);
    let sent_in_db = states.get("sent").copied().unwrap_or(0);
    println!(
        "queued in {:.2} s (the invite request), all delivered in {:.2} s: {:.0} messages/s",
        queued_after.as_secs_f64(),
        total.as_secs_f64(),
        messages as f64 / total.as_secs_f64()
    );
    println!("load average before {load_before}, after {load_after}");
    println!(
        "at the server: {messages} messages, {} recipients, {twice} received more than one, {expected_missing} contacts received none",
        by_recipient.len()
    );
    println!("in the database: {states:?}");
    let ok = messages == count
        && twice == 0
        && expected_missing == 0
        && sent_in_db == count as i64
        && states.len() == 1;
    println!(
        "{}: exactly once {}; target under 30 s {}",
        backend,
        if ok { "held" } else { "FAILED" },
        if total < Duration::from_secs(30) {
            "met"
        } else {
            "missed"
        }
    );
    ok
}

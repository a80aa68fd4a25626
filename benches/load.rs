//! Load benchmark: the release server as its own process, driven over loopback by 64
//! concurrent connections. See benches/README.md. Prints figures; asserts only that every
//! acknowledged save is in the database afterwards.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "common/scratch.rs"]
mod scratch;
#[path = "load/whole.rs"]
mod whole;

use scratch::ScratchDatabase;

const CONNECTIONS: usize = 64;

fn main() {
    let secs: u64 = std::env::var("COHERENCE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let only = std::env::args()
        .skip(1)
        .find(|a| a == "sqlite" || a == "postgres");
    println!("machine: {}", machine());
    println!(
        "load: {CONNECTIONS} connections, {secs} s per scenario, generator on the same machine"
    );
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
    for backend in backends {
        if only.as_deref().is_some_and(|o| o != backend) {
            continue;
        }
        runtime.block_on(run_backend(backend, Duration::from_secs(secs)));
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

/// CPU time (user + system) the process has used so far, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let ticks_per_second = 100.0; // USER_HZ on Linux
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces) start after ')'.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / ticks_per_second)
        })
        .unwrap_or(0.0)
}

/// CPU time every process of the machine has used so far (user, system and interrupts, not
/// idle or waiting for I/O), in seconds: what is left after the server's and the generator's
/// is the database server's processes on PostgreSQL, and anything else running.
fn machine_busy_seconds() -> f64 {
    let ticks_per_second = 100.0; // USER_HZ on Linux
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("cpu "))?;
            let f: Vec<f64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|n| n.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal (guest time is in user's)
            let busy = [0, 1, 2, 5, 6, 7]
                .iter()
                .filter_map(|&i| f.get(i))
                .sum::<f64>();
            Some(busy / ticks_per_second)
        })
        .unwrap_or(0.0)
}

fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// The server's resident memory now, split as the kernel counts it: (anonymous, file-backed:
/// the binary's pages and SQLite's memory-mapped database), in MiB.
fn rss_split_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    };
    (field("RssAnon:"), field("RssFile:"))
}

struct Server {
    child: Child,
    address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn surveys_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/fixtures")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn coherence(db: &str) -> Command {
    coherence_with(db, &surveys_dir())
}

fn coherence_with(db: &str, surveys: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_coherence"));
    cmd.env("COHERENCE_DATABASE_URL", db)
        .env("COHERENCE_SURVEYS", surveys)
        // Each connection saves as fast as it can: throughput is measured, not the per-link
        // budget a person never reaches.
        .env("COHERENCE_LINK_SAVES_PER_MINUTE", "1000000")
        .env("COHERENCE_LOG", "warn");
    cmd
}

async fn start_server(db: &str) -> Server {
    start_server_with(db, &surveys_dir()).await
}

async fn start_server_with(db: &str, surveys: &std::path::Path) -> Server {
    let port = free_port();
    let mut child = coherence_with(db, surveys)
        .arg("serve")
        .env("COHERENCE_BIND", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .spawn()
        .expect("start server");
    let address = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{address}/healthz")).send().await {
            if r.status().is_success() {
                return Server { child, address };
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("server did not become healthy");
}

async fn run_backend(backend: &str, duration: Duration) {
    let dir = tempfile::tempdir().expect("temp dir");
    let scratch = ScratchDatabase::new(backend, dir.path(), "bench.db", "coherence_bench");
    let db = scratch.url.clone();
    println!("\n== {backend}");
    // One personal link per connection, each for its own country.
    let mut links = Vec::new();
    for iso3 in coherence::reference::un_member_states().take(CONNECTIONS) {
        let out = coherence(&db)
            .args(["token", "issue", "--survey", "bench", "--country", &iso3])
            .env("COHERENCE_BASE_URL", "http://bench.invalid")
            .output()
            .expect("issue token");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let link = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or("")
            .to_string();
        links.push(link.replace("http://bench.invalid", ""));
    }
    let server = start_server(&db).await;
    let pid = server.child.id();
    let base = Arc::new(server.address.clone());
    let links = Arc::new(links);

    let healthz = {
        let base = base.clone();
        measure(
            "GET /healthz",
            &server.address,
            pid,
            duration,
            move |_i, client, state| {
                let url = format!("{base}/healthz");
                async move { (get_ok(&client, &url).await, state) }
            },
        )
        .await
    };
    let page_bytes = {
        let client = reqwest::Client::new();
        let r = client
            .get(format!("{base}{}/s/main", links[0]))
            .send()
            .await
            .expect("page");
        r.bytes().await.expect("page body").len()
    };
    let page = {
        let base = base.clone();
        let links = links.clone();
        measure(
            &format!("GET section page (20 questions, {page_bytes} bytes)"),
            &server.address,
            pid,
            duration,
            move |i, client, state| {
                let url = format!("{base}{}/s/main", links[i]);
                async move { (get_ok(&client, &url).await, state) }
            },
        )
        .await
    };
    // Draft saves: each connection saves its own country's section, tracking the version.
    let acknowledged: Arc<std::sync::Mutex<Vec<Option<String>>>> =
        Arc::new(std::sync::Mutex::new(vec![None; CONNECTIONS]));
    let save = {
        let base = base.clone();
        let links = links.clone();
        let ack = acknowledged.clone();
        measure(
            "POST draft save of the section",
            &server.address,
            pid,
            duration,
            move |i, client, mut state| {
                let url = format!("{base}{}/s/main", links[i]);
                let ack = ack.clone();
                async move {
                    if state.csrf.is_empty() {
                        let Ok(r) = client.get(&url).send().await else {
                            return (false, state);
                        };
                        let Ok(body) = r.text().await else {
                            return (false, state);
                        };
                        state.csrf = hidden(&body, "_csrf");
                        state.version = hidden(&body, "_version").parse().unwrap_or(0);
                    }
                    state.counter += 1;
                    let marker = format!("save {} of link {i}", state.counter);
                    let body = save_body(&state.csrf, state.version, state.counter, &marker);
                    let sent = client
                        .post(&url)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body)
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status() == 303 => {
                            state.version += 1;
                            if let Ok(mut a) = ack.lock() {
                                a[i] = Some(marker);
                            }
                            (true, state)
                        }
                        _ => {
                            state.csrf.clear();
                            (false, state)
                        }
                    }
                }
            },
        )
        .await
    };
    let rss = peak_rss_mib(server.child.id());
    let (anon, file) = rss_split_mib(server.child.id());
    // Every acknowledged save must be what the database now holds.
    let client = reqwest::Client::new();
    let acknowledged = acknowledged.lock().map(|a| a.clone()).unwrap_or_default();
    let mut missing = 0;
    for (i, marker) in acknowledged.iter().enumerate() {
        let Some(marker) = marker else { continue };
        let body = client
            .get(format!("{base}{}/s/main", links[i]))
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("body");
        if !body.contains(&format!("name=\"t1\" value=\"{marker}\"")) {
            missing += 1;
        }
    }
    for r in [&healthz, &page, &save] {
        r.print(healthz.per_second());
    }
    println!(
        "server peak RSS {rss:.1} MiB (at the end: anonymous {anon:.1}, file-backed {file:.1}); load average after: {}; acknowledged saves missing from the database: {missing}",
        loadavg()
    );
    assert_eq!(missing, 0, "every acknowledged save must be stored");
    drop(server);
    drop(scratch);
    let whole_db = ScratchDatabase::new(backend, dir.path(), "whole.db", "coherence_bench");
    whole::run(&whole_db.url, duration, healthz.per_second()).await;
}

async fn get_ok(client: &reqwest::Client, url: &str) -> bool {
    match client.get(url).send().await {
        Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
        Err(_) => false,
    }
}

#[derive(Default)]
struct ConnState {
    csrf: String,
    version: i64,
    counter: u64,
}

fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    body.find(&marker)
        .map(|i| {
            let rest = &body[i + marker.len()..];
            rest[..rest.find('"').unwrap_or(0)].to_string()
        })
        .unwrap_or_default()
}

fn save_body(csrf: &str, version: i64, n: u64, marker: &str) -> String {
    let pick = |k: u64| ["a", "b", "c", "d"][(n + k) as usize % 4];
    let long = format!("Draft paragraph {n}: the inter-ministerial committee met in plenary and in working groups, reviewed the national development plan and agreed on follow-up actions with the statistics office.");
    let n1 = n.to_string();
    let d1 = format!("{}.5", n % 100);
    let fields: Vec<(&str, &str)> = vec![
        ("_csrf", csrf),
        ("t1", marker),
        ("t2", "Ministry of Foreign Affairs"),
        (
            "t3",
            if n.is_multiple_of(2) {
                "Directorate for migration"
            } else {
                "Migration unit"
            },
        ),
        ("t4", "Focal point"),
        ("t5", "Geneva"),
        ("l1", &long),
        ("l2", "Second long answer, unchanged between saves."),
        ("l3", ""),
        ("s1", pick(0)),
        ("s2", "other"),
        ("s2.other", "Another arrangement"),
        ("m1", pick(1)),
        ("m1", pick(2)),
        ("m2", "a"),
        ("y1", if n.is_multiple_of(2) { "yes" } else { "no" }),
        ("y2", "yes"),
        ("n1", &n1),
        ("n2", "42"),
        ("d1", &d1),
        ("dt", "2008-10-27"),
        ("c1", "PHL"),
        ("x1.r1", "hi"),
        ("x1.r2", "mid"),
        ("x1.r3", "lo"),
    ];
    let mut body = serde_urlencoded::to_string(&fields).unwrap_or_default();
    body.push_str(&format!("&_version={version}"));
    body
}

struct Report {
    name: String,
    requests: usize,
    errors: usize,
    secs: f64,
    p50: Duration,
    p99: Duration,
    load_before: String,
    cpu_us_per_request: f64,
    /// SQL statements the server sent per request, from its `/metrics` (None where it has none).
    statements_per_request: Option<f64>,
}

impl Report {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.secs
    }

    fn print(&self, healthz: f64) {
        let statements = self
            .statements_per_request
            .map(|n| format!("{n:.2}"))
            .unwrap_or_else(|| "n/a".into());
        println!(
            "{:<52} {:>8.0} req/s ({:>5.1} % of /healthz)  p50 {:>6.2} ms  p99 {:>6.2} ms  errors {}  server CPU {:.0} us/req  SQL statements/req {statements}  (requests {}, load before {})",
            self.name,
            self.per_second(),
            100.0 * self.per_second() / healthz.max(1.0),
            self.p50.as_secs_f64() * 1000.0,
            self.p99.as_secs_f64() * 1000.0,
            self.errors,
            self.cpu_us_per_request,
            self.requests,
            self.load_before,
        );
    }
}

/// The server's counters from `GET /metrics` (Prometheus text): SQL statements sent and
/// requests served, or None where the server has no such page.
async fn server_counters(base: &str) -> Option<(f64, f64)> {
    let body = reqwest::get(format!("{base}/metrics")).await.ok()?;
    if !body.status().is_success() {
        return None;
    }
    let text = body.text().await.ok()?;
    let value = |name: &str| -> Option<f64> {
        text.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
            .reduce(|a, b| a + b)
    };
    Some((
        value("coherence_sql_statements_total")?,
        value("coherence_http_requests_total")?,
    ))
}

/// `COHERENCE_BENCH_PERF=<text>`: the scenarios whose name contains `<text>` run under
/// `perf record --call-graph dwarf` attached to the server, written to `perf-<pid>-<n>.data` in the temporary
/// directory (build with `CARGO_PROFILE_RELEASE_DEBUG=line-tables-only` for source lines).
fn profile(name: &str, server_pid: u32, duration: Duration) -> Option<Child> {
    let wanted = std::env::var("COHERENCE_BENCH_PERF").ok()?;
    if !name.contains(&wanted) {
        return None;
    }
    let out = std::env::temp_dir()
        .join(format!("perf-{server_pid}-{}.data", name.len()))
        .display()
        .to_string();
    println!("profiling \"{name}\" into {out}");
    Command::new("perf")
        .args([
            "record",
            "-F",
            "499",
            "--call-graph",
            "dwarf,16384",
            "-o",
            &out,
            "-p",
        ])
        .arg(server_pid.to_string())
        .args(["--", "sleep"])
        .arg(duration.as_secs().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

async fn measure<F, Fut>(
    name: &str,
    base: &str,
    server_pid: u32,
    duration: Duration,
    f: F,
) -> Report
where
    F: Fn(usize, reqwest::Client, ConnState) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = (bool, ConnState)> + Send,
{
    // Each connection is set up, and makes its first request, before the clock starts: the
    // figures are for 64 connections already open, as under a steady load, not for 64
    // clients built and connecting at once (the first half second's p99 was 5 to 10 times
    // the rest's).
    let ready = Arc::new(tokio::sync::Barrier::new(CONNECTIONS + 1));
    let go = Arc::new(tokio::sync::Barrier::new(CONNECTIONS + 1));
    let clock: Arc<std::sync::OnceLock<Instant>> = Arc::default();
    let mut tasks = Vec::new();
    for i in 0..CONNECTIONS {
        let f = f.clone();
        let (ready, go, clock) = (ready.clone(), go.clone(), clock.clone());
        tasks.push(tokio::spawn(async move {
            // One client (one keep-alive connection) per simulated browser.
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .cookie_store(true)
                .pool_max_idle_per_host(1)
                .build()
                .expect("client");
            let (_, mut state) = f(i, client.clone(), ConnState::default()).await;
            ready.wait().await;
            go.wait().await;
            let start = *clock.get().expect("clock set before go");
            let deadline = start + duration;
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            while Instant::now() < deadline {
                let t = Instant::now();
                let (ok, next) = f(i, client.clone(), state).await;
                state = next;
                latencies.push((t.elapsed(), t - start));
                if !ok {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    ready.wait().await;
    let load_before = loadavg();
    let counters_before = server_counters(base).await;
    let cpu_before = cpu_seconds(server_pid);
    let _profile = profile(name, server_pid, duration);
    let start = Instant::now();
    let _ = clock.set(start);
    go.wait().await;
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("task");
        all.extend(l);
        errors += e;
    }
    let secs = start.elapsed().as_secs_f64();
    let server_cpu = cpu_seconds(server_pid) - cpu_before;
    // The counters' own request is counted once on each side: it cancels out of the difference
    // of requests, and adds no statement.
    let statements_per_request = match (counters_before, server_counters(base).await) {
        (Some((s0, _)), Some((s1, _))) => Some((s1 - s0) / all.len().max(1) as f64),
        _ => None,
    };
    if std::env::var_os("COHERENCE_BENCH_SERIES").is_some() {
        print_series(name, &all);
    }
    let mut all: Vec<Duration> = all.into_iter().map(|(latency, _)| latency).collect();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Report {
        name: name.to_string(),
        requests: all.len(),
        errors,
        secs,
        p50: pct(0.50),
        p99: pct(0.99),
        load_before,
        cpu_us_per_request: server_cpu * 1e6 / all.len().max(1) as f64,
        statements_per_request,
    }
}

/// `COHERENCE_BENCH_SERIES=1`: the latencies second by second (by when each request was
/// sent), to tell a steady tail from a slow start or a stall.
fn print_series(name: &str, latencies: &[(Duration, Duration)]) {
    let seconds = latencies
        .iter()
        .map(|(_, at)| at.as_secs() as usize + 1)
        .max()
        .unwrap_or(0);
    let mut by_second = vec![Vec::new(); seconds];
    for (latency, at) in latencies {
        by_second[at.as_secs() as usize].push(*latency);
    }
    for (second, mut these) in by_second.into_iter().enumerate() {
        if these.is_empty() {
            continue;
        }
        these.sort();
        let ms = |p: f64| {
            these[((these.len() as f64 * p) as usize).min(these.len() - 1)].as_secs_f64() * 1000.0
        };
        println!(
            "  {name}, second {second}: {} requests, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            these.len(),
            ms(0.5),
            ms(0.99),
            ms(1.0)
        );
    }
}

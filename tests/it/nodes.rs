//! Several nodes: two `coherence serve` processes (the real binary) on one PostgreSQL database,
//! behind a real nginx with a round-robin upstream, driven through the proxy and node by node.
//! PostgreSQL only: nodes on several machines share a database server (a SQLite file belongs
//! to one machine), and the point is what the nodes share through it: migrations, sessions,
//! the outbox, drafts.
//!
//! Which node served a request is read from nginx's own access log (`$upstream_addr`), and
//! some requests go straight to one node's port with the same cookies. nginx runs as a single
//! process (`master_process off`): it dies with the test, and its round-robin alternates.

use std::collections::{BTreeSet, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use coherence::db::{self, schema, DbUrl};
use diesel::prelude::*;

use crate::helpers::{fixtures, free_port, fresh_database, mail_env, Backend, Page, SmtpServer};

const ADMIN: (&str, &str) = ("admin@gfmd.example.org", "a long admin passphrase");
/// How long a node, nginx or a command may take to start or finish.
const STARTUP: Duration = Duration::from_secs(60);
/// Any one HTTP request.
const REQUEST: Duration = Duration::from_secs(30);
/// The whole round, should something hang that no other bound catches.
const ROUND: Duration = Duration::from_secs(240);

mod two_nodes_behind_nginx_run_a_whole_round {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        tokio::time::timeout(super::ROUND, super::whole_round())
            .await
            .expect("the round on two nodes took too long");
    }
}

/// Failed sign-ins spread over both nodes count together: at most 10 failed password checks
/// per account per 15 minutes, then 429, whichever node answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_login_limits() {
    tokio::time::timeout(ROUND, async {
        let cluster = Cluster::start(None).await;
        cluster.add_admin();
        let browser = Browser::new();
        // One form, then twelve posts in a row: round-robin alternates them between the
        // nodes (a form before each post would send every post to the same node).
        let csrf = browser
            .get(&cluster.proxy, "/admin/login")
            .await
            .hidden("_csrf");
        let mark = cluster.mark().await;
        let mut statuses = Vec::new();
        for _ in 0..12 {
            let res = browser
                .post(
                    &cluster.proxy,
                    "/admin/login",
                    &[
                        ("_csrf", &csrf),
                        ("email", ADMIN.0),
                        ("password", "not the right passphrase"),
                    ],
                )
                .await;
            statuses.push(res.status);
        }
        let posts = cluster.requests_since(mark, 12).await;
        for node in cluster.node_addresses() {
            let n = posts.iter().filter(|r| r.upstream == node).count();
            assert_eq!(n, 6, "half the attempts went to {node}: {posts:?}");
        }
        let mut expected = vec![401; 10];
        expected.extend([429, 429]);
        assert_eq!(
            statuses, expected,
            "ten wrong passwords over both nodes, then 429"
        );
        // Each node, asked directly, refuses the account too; so does the right password.
        for node in &cluster.nodes {
            let res = browser
                .login(&node.address, ADMIN.0, "still not the passphrase")
                .await;
            assert_eq!(res.status, 429, "node {}", node.address);
        }
        let res = browser.login(&cluster.proxy, ADMIN.0, ADMIN.1).await;
        assert_eq!(res.status, 429, "blocked for a while, even the right one");
    })
    .await
    .expect("the login-limit test took too long");
}

async fn whole_round() {
    let t0 = Instant::now();
    let mut times = Vec::new();
    let lap = |what: &str, times: &mut Vec<String>| {
        times.push(format!("{what}: {:.1}s", t0.elapsed().as_secs_f64()));
    };
    nginx_binary();
    // A slow SMTP server (50 ms per message), so both nodes' workers are busy at once.
    let smtp = SmtpServer::start(&[], 50);
    let mut cluster = Cluster::start(Some(smtp.port)).await;
    lap("both nodes and nginx up", &mut times);

    // 1. Started together on a brand-new database, each migration ran once.
    let mut conn = cluster.db();
    let versions: Vec<Version> =
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations ORDER BY version")
            .load(&mut conn)
            .expect("migration versions");
    let versions: Vec<String> = versions.into_iter().map(|v| v.version).collect();
    assert_eq!(
        versions,
        expected_versions(),
        "each migration recorded once"
    );
    let countries: i64 = schema::countries::table
        .count()
        .get_result(&mut conn)
        .unwrap();
    let listed = coherence::reference::Countries::load()
        .unwrap()
        .iter()
        .count();
    assert_eq!(
        countries, listed as i64,
        "the country list, loaded by both nodes at once"
    );
    for node in &cluster.nodes {
        let health = get(&plain_client(), &format!("{}/healthz", node.address)).await;
        assert_eq!((health.status, health.body.as_str()), (200, "ok"));
    }
    let health = get(&plain_client(), &format!("{}/healthz", cluster.proxy)).await;
    assert_eq!(health.status, 200);
    let waited: Vec<&str> = cluster
        .nodes
        .iter()
        .filter(|n| {
            n.process
                .log()
                .contains("another instance is applying migrations")
        })
        .map(|n| n.process.name.as_str())
        .collect();
    times.push(format!("waited for the other's migrations: {waited:?}"));

    // 2. An administrator signs in through the proxy; the session works on both nodes.
    cluster.add_admin();
    let admin = Browser::new();
    let mark = cluster.mark().await;
    let res = admin.login(&cluster.proxy, ADMIN.0, ADMIN.1).await;
    assert_eq!(res.status, 303, "sign-in through the proxy: {}", res.body);
    let login = cluster.requests_since(mark, 2).await;
    let form_node = login
        .iter()
        .find(|r| r.method == "GET" && r.path == "/admin/login")
        .expect("login form in the access log")
        .upstream
        .clone();
    let post_node = login
        .iter()
        .find(|r| r.method == "POST" && r.path == "/admin/login")
        .expect("login post in the access log")
        .upstream
        .clone();
    assert_ne!(
        form_node, post_node,
        "the login form's CSRF token came from one node and was accepted by the other"
    );
    for node in &cluster.nodes {
        let page = admin.get(&node.address, "/admin").await;
        assert_eq!(page.status, 200, "the session on node {}", node.address);
        assert!(page.body.contains("Fixture survey"));
    }
    let mark = cluster.mark().await;
    for _ in 0..4 {
        assert_eq!(admin.get(&cluster.proxy, "/admin").await.status, 200);
    }
    assert_eq!(
        cluster.upstreams_since(mark, 4, "GET", "/admin").await,
        cluster.node_addresses(),
        "the admin pages through the proxy came from both nodes"
    );
    lap("signed in on both nodes", &mut times);

    // 3. Contacts imported and invited through the admin pages (form and post on different
    //    nodes); both nodes' outbox workers run, each message is delivered once.
    let contacts = 12;
    let res = upload_contacts(&admin, &cluster.proxy, &contacts_csv(contacts)).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(
        res.body.contains("12 added, 0 updated, 0 unchanged"),
        "{}",
        res.body
    );
    let res = admin
        .post_with_csrf_of(
            &cluster.proxy,
            "/admin",
            "/admin/surveys/fixture/invite",
            &[],
        )
        .await;
    assert!(
        res.body.contains("12 message(s) queued (0 skipped)"),
        "{}",
        res.body
    );
    let mails = smtp.wait_for(contacts).await;
    lap("12 invitations delivered", &mut times);
    // Ten more polls of both workers: nothing else arrives.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let mails_after = smtp.messages();
    assert_eq!(mails_after.len(), contacts, "no message sent twice");
    let ids: HashSet<&str> = mails.iter().map(|m| m.message_id.as_str()).collect();
    let recipients: HashSet<&str> = mails.iter().map(|m| m.to.as_str()).collect();
    assert_eq!((ids.len(), recipients.len()), (contacts, contacts));
    let statuses: Vec<(String, i64)> = schema::outbox::table
        .group_by(schema::outbox::status)
        .select((schema::outbox::status, diesel::dsl::count_star()))
        .load(&mut conn)
        .unwrap();
    assert_eq!(statuses, vec![("sent".to_string(), contacts as i64)]);
    // The workers claim in batches (up to 16 per SMTP connection), so one node may send all
    // twelve: at least one node holds a pooled SMTP connection afterwards. That two nodes'
    // workers share a larger outbox without sending anything twice is
    // outbox_speed::two_nodes_deliver_each_invitation_exactly_once.
    let holding: usize = cluster
        .nodes
        .iter()
        .map(|node| smtp_connections(node.process.pid(), smtp.port))
        .sum();
    assert!(holding > 0, "no node holds an SMTP connection");
    let page = admin.get(&cluster.proxy, "/admin/surveys/fixture").await;
    assert!(
        page.body.contains("Email: 0 waiting, 12 sent, 0 failed"),
        "{}",
        page.body
    );

    // 4. A focal point opens the emailed link and answers, alternating nodes per request;
    //    CSRF tokens issued by one node are accepted by the other.
    let mail_to = |prefix: &str| {
        mails
            .iter()
            .find(|m| m.to.starts_with(prefix))
            .unwrap_or_else(|| panic!("an invitation to {prefix}"))
    };
    let phl = mail_to("official1@phl");
    let url = phl
        .body
        .split_whitespace()
        .find(|w| w.contains("/r/"))
        .unwrap_or_default();
    assert!(
        url.starts_with(&format!("{}/r/", cluster.proxy)),
        "links point at the proxy: {url}"
    );
    let link = phl.link_path().expect("a personal link");
    let maria = Browser::new();
    let (a, b) = (&cluster.nodes[0].address, &cluster.nodes[1].address);
    let overview = maria.get(&cluster.proxy, &link).await;
    assert!(overview.body.contains("Response of Philippines"));
    let form = maria.get(a, &format!("{link}/s/basics")).await;
    assert_eq!(form.status, 200);
    let saved = maria
        .post_from(
            b,
            &form,
            &format!("{link}/s/basics"),
            &[("name", "Maria"), ("active", "no")],
        )
        .await;
    assert_eq!(saved.status, 303, "form from A, saved on B: {}", saved.body);
    let form = maria.get(b, &format!("{link}/s/plans")).await;
    let saved = maria
        .post_from(a, &form, &format!("{link}/s/plans"), &[("has_plan", "no")])
        .await;
    assert_eq!(saved.status, 303, "form from B, saved on A: {}", saved.body);
    for node in [a, b] {
        let page = maria.get(node, &format!("{link}/s/basics")).await;
        assert_eq!(page.field_value("name").as_deref(), Some("Maria"), "{node}");
    }
    lap("focal point answered on both nodes", &mut times);

    // 5. Two officials of one country save the same section on different nodes: the
    //    conflict is found as on one node.
    let anna = Browser::new();
    let bjorn = Browser::new();
    let link_0 = mail_to("official0@swe").link_path().unwrap();
    let link_6 = mail_to("official6@swe").link_path().unwrap();
    let form_0 = anna.get(a, &format!("{link_0}/s/basics")).await;
    let form_6 = bjorn.get(b, &format!("{link_6}/s/basics")).await;
    let saved = anna
        .post_from(
            a,
            &form_0,
            &format!("{link_0}/s/basics"),
            &[("name", "Anna"), ("active", "no")],
        )
        .await;
    assert_eq!(saved.status, 303);
    let res = bjorn
        .post_from(
            b,
            &form_6,
            &format!("{link_6}/s/basics"),
            &[("name", "Björn"), ("active", "no")],
        )
        .await;
    assert_eq!(
        res.status, 409,
        "a stale save on the other node: {}",
        res.body
    );
    assert!(res.body.contains("Someone else saved this section"));
    assert!(
        res.body.contains("Official 0 saved this section"),
        "names who saved: {}",
        res.body
    );
    assert!(
        res.body.contains("<td>Björn</td><td>Anna</td>"),
        "{}",
        res.body
    );
    for node in [a, b] {
        let stored = bjorn.get(node, &format!("{link_6}/s/basics")).await;
        assert_eq!(
            stored.field_value("name").as_deref(),
            Some("Anna"),
            "{node}"
        );
    }

    // 6. The focal point submits through the proxy (review on one node, submit on the
    //    other); the results dashboard, through the proxy, counts it on both nodes.
    let mark = cluster.mark().await;
    let review = maria.get(&cluster.proxy, &format!("{link}/review")).await;
    let csrf = review.hidden("_csrf");
    let submitted = maria
        .post(
            &cluster.proxy,
            &format!("{link}/submit"),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(submitted.status, 303, "{}", submitted.body);
    let steps = cluster.requests_since(mark, 2).await;
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert_ne!(
        steps[0].upstream, steps[1].upstream,
        "review and submit on different nodes"
    );
    let mark = cluster.mark().await;
    for _ in 0..2 {
        let dash = admin
            .get(&cluster.proxy, "/admin/surveys/fixture/results")
            .await;
        assert_eq!(dash.status, 200);
        // All countries: the 193 UN Member States asked, 6 invited, 2 opened, 1 in draft,
        // 1 submitted, none accepted.
        assert!(
            dash.body.contains(
                "<td>193</td><td>6</td><td>2</td><td>1</td><td>1</td><td>0</td><td>1%</td>"
            ),
            "{}",
            dash.body
        );
    }
    assert_eq!(
        cluster
            .upstreams_since(mark, 2, "GET", "/admin/surveys/fixture/results")
            .await,
        cluster.node_addresses()
    );
    let all = cluster.requests_since(0, 0).await;
    let served: BTreeSet<String> = all.iter().map(|r| r.upstream.clone()).collect();
    assert_eq!(served, cluster.node_addresses());
    assert!(
        all.iter().all(|r| r.status < 500),
        "no server error through the proxy"
    );
    cluster.assert_nodes_alive();
    lap("submitted and counted", &mut times);
    eprintln!("nodes round: {}", times.join(", "));
}

#[derive(diesel::QueryableByName)]
struct Version {
    #[diesel(sql_type = diesel::sql_types::Text)]
    version: String,
}

/// The versions diesel records for the PostgreSQL migrations: the folder name's digits.
fn expected_versions() -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
    let mut versions: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.split('_').next().unwrap_or("").replace('-', "")
        })
        .collect();
    versions.sort();
    versions
}

/// Twelve contacts, two per country.
fn contacts_csv(n: usize) -> String {
    let countries = ["SWE", "PHL", "MAR", "MEX", "KEN", "BGD"];
    let mut csv = String::from("country,name,email,language,office\n");
    for i in 0..n {
        let c = countries[i % countries.len()];
        csv.push_str(&format!(
            "{c},Official {i},official{i}@{}.gov.example,en,Ministry of Foreign Affairs\n",
            c.to_lowercase()
        ));
    }
    csv
}

async fn upload_contacts(admin: &Browser, base: &str, csv: &str) -> Page {
    let page = admin.get(base, "/admin/surveys/fixture").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let form = crate::helpers::contacts_form(page.hidden("_csrf"), csv);
    let res = admin
        .client
        .post(format!("{base}/admin/surveys/fixture/contacts"))
        .multipart(form)
        .send()
        .await
        .expect("upload contacts");
    page_of(res).await
}

/// Established TCP connections from process `pid` to `port` on loopback (Linux /proc).
fn smtp_connections(pid: u32, port: u16) -> usize {
    let remote = format!("0100007F:{port:04X}");
    let inodes: HashSet<String> = std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 9 && f[2] == remote && f[3] == "01").then(|| f[9].to_string())
        })
        .collect();
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
                .filter_map(|l| {
                    let l = l.to_string_lossy().into_owned();
                    Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
                })
                .filter(|inode| inodes.contains(inode))
                .count()
        })
        .unwrap_or(0)
}

/// A browser: a cookie store shared by every address it talks to (cookies ignore ports, so
/// the proxy's cookies are sent to each node's own port too).
struct Browser {
    client: reqwest::Client,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .cookie_store(true)
                .timeout(REQUEST)
                .build()
                .expect("client"),
        }
    }

    async fn get(&self, base: &str, path: &str) -> Page {
        get(&self.client, &format!("{base}{path}")).await
    }

    async fn post(&self, base: &str, path: &str, fields: &[(&str, &str)]) -> Page {
        let res = self
            .client
            .post(format!("{base}{path}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(fields).expect("form"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {base}{path}: {e}"));
        page_of(res).await
    }

    /// Post answers with the CSRF token and version of a form page (maybe from another node).
    async fn post_from(
        &self,
        base: &str,
        form: &Page,
        path: &str,
        answers: &[(&str, &str)],
    ) -> Page {
        let (csrf, version) = (form.hidden("_csrf"), form.hidden("_version"));
        let mut fields = vec![("_csrf", csrf.as_str()), ("_version", version.as_str())];
        fields.extend_from_slice(answers);
        self.post(base, path, &fields).await
    }

    /// Open `page` for its CSRF token, then post to `action`.
    async fn post_with_csrf_of(
        &self,
        base: &str,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> Page {
        let csrf = self.get(base, page).await.hidden("_csrf");
        let mut all = vec![("_csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(base, action, &all).await
    }

    async fn login(&self, base: &str, email: &str, password: &str) -> Page {
        self.post_with_csrf_of(
            base,
            "/admin/login",
            "/admin/login",
            &[("email", email), ("password", password)],
        )
        .await
    }
}

fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client")
}

async fn get(client: &reqwest::Client, url: &str) -> Page {
    let res = client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    page_of(res).await
}

async fn page_of(res: reqwest::Response) -> Page {
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let location = headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let body = res.text().await.expect("body");
    Page {
        status,
        location,
        body,
        headers,
    }
}

/// A child process, stopped when dropped: SIGTERM (nginx and the server shut down cleanly),
/// then SIGKILL if it is still there after five seconds.
struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Process {
        let out = std::fs::File::create(log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Process {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.pid().to_string()])
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.exited().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if self.exited().is_none() {
                eprintln!("{} did not stop on SIGTERM; killing it", self.name);
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }
}

struct Node {
    address: String,
    process: Process,
}

/// A request as nginx logged it: which node served it.
#[derive(Debug)]
struct Logged {
    upstream: String,
    method: String,
    path: String,
    status: u16,
}

/// Two nodes on one fresh PostgreSQL database, nginx in front. Fields drop in order: nginx
/// first, then the nodes, then the directory with the logs.
struct Cluster {
    nginx: Process,
    nodes: Vec<Node>,
    proxy: String,
    database_url: String,
    dir: tempfile::TempDir,
}

impl Cluster {
    async fn start(smtp_port: Option<u16>) -> Cluster {
        let nginx_bin = nginx_binary();
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = fresh_database(Backend::Postgres, dir.path());
        let proxy_port = free_port();
        let proxy = format!("http://127.0.0.1:{proxy_port}");
        // Both nodes start at the same moment on the brand-new database.
        let mut nodes: Vec<Node> = ["a", "b"]
            .iter()
            .map(|name| {
                let port = free_port();
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_coherence"));
                cmd.arg("serve")
                    .env("COHERENCE_DATABASE_URL", &database_url)
                    .env("COHERENCE_BIND", format!("127.0.0.1:{port}"))
                    .env("COHERENCE_BASE_URL", &proxy)
                    .env("COHERENCE_SURVEYS", fixtures().join("surveys"))
                    .env("COHERENCE_DB_POOL", "4")
                    .env("COHERENCE_LOG", "info")
                    .env("COHERENCE_TRUSTED_PROXIES", "127.0.0.1")
                    .env_remove("COHERENCE_SMTP_URL");
                if let Some(smtp) = smtp_port {
                    for (k, v) in mail_env(smtp) {
                        cmd.env(k, v);
                    }
                }
                let log = dir.path().join(format!("node-{name}.log"));
                Node {
                    address: format!("http://127.0.0.1:{port}"),
                    process: Process::spawn(&format!("node {name}"), &mut cmd, &log),
                }
            })
            .collect();
        for node in &mut nodes {
            wait_healthy(&node.address, &mut node.process).await;
        }
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, nginx_conf(dir.path(), proxy_port, &nodes)).unwrap();
        let mut nginx = Process::spawn(
            "nginx",
            Command::new(&nginx_bin)
                .arg("-c")
                .arg(&conf)
                .arg("-p")
                .arg(dir.path())
                .args(["-e", "stderr", "-g", "daemon off;"]),
            &dir.path().join("nginx-error.log"),
        );
        wait_healthy(&proxy, &mut nginx).await;
        Cluster {
            nginx,
            nodes,
            proxy,
            database_url,
            dir,
        }
    }

    fn db(&self) -> db::PooledConn {
        let url = DbUrl::parse(&self.database_url).unwrap();
        db::connect(&url, 1).unwrap().get().unwrap()
    }

    fn node_addresses(&self) -> BTreeSet<String> {
        self.nodes
            .iter()
            .map(|n| n.address.trim_start_matches("http://").to_string())
            .collect()
    }

    /// Create the administrator with the real command line.
    fn add_admin(&self) {
        let out = self.cli(
            &[
                "user",
                "add",
                "--email",
                ADMIN.0,
                "--role",
                "admin",
                "--password-stdin",
            ],
            &format!("{}\n", ADMIN.1),
        );
        assert!(
            out.status.success(),
            "user add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn cli(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_coherence"))
            .args(args)
            .env("COHERENCE_DATABASE_URL", &self.database_url)
            .env("COHERENCE_SURVEYS", fixtures().join("surveys"))
            .env("COHERENCE_BASE_URL", &self.proxy)
            .env_remove("COHERENCE_BIND")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run coherence");
        let _ = child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes());
        let deadline = Instant::now() + STARTUP;
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("coherence {args:?} did not finish within {STARTUP:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("output")
    }

    fn access_log(&self) -> Vec<Logged> {
        std::fs::read_to_string(self.dir.path().join("nginx-access.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split(' ').collect();
                let [upstream, method, path, status] = f[..] else {
                    return None;
                };
                Some(Logged {
                    // "A, B" when nginx had to try a second node: the last one answered.
                    upstream: upstream.rsplit(", ").next()?.to_string(),
                    method: method.to_string(),
                    path: path.to_string(),
                    status: status.parse().ok()?,
                })
            })
            .collect()
    }

    /// Where the requests to come will start in the access log. nginx writes a request's line
    /// a moment after the response went out: wait until the log stops growing.
    async fn mark(&self) -> usize {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut n = self.access_log().len();
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = self.access_log().len();
            if now == n || Instant::now() > deadline {
                return now;
            }
            n = now;
        }
    }

    /// The requests logged since `mark`, once there are at least `expected` of them.
    async fn requests_since(&self, mark: usize, expected: usize) -> Vec<Logged> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.access_log();
            if log.len() >= mark + expected || Instant::now() > deadline {
                return log.into_iter().skip(mark).collect();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Which nodes served `method path` among the `expected` requests since `mark`.
    async fn upstreams_since(
        &self,
        mark: usize,
        expected: usize,
        method: &str,
        path: &str,
    ) -> BTreeSet<String> {
        self.requests_since(mark, expected)
            .await
            .into_iter()
            .filter(|r| r.method == method && r.path == path)
            .map(|r| r.upstream)
            .collect()
    }

    fn assert_nodes_alive(&mut self) {
        for node in &mut self.nodes {
            if let Some(status) = node.process.exited() {
                panic!(
                    "{} exited ({status}):\n{}",
                    node.process.name,
                    node.process.log()
                );
            }
        }
        assert!(self.nginx.exited().is_none(), "nginx exited");
    }
}

/// The nginx binary the test runs: required, never skipped.
fn nginx_binary() -> String {
    let nginx = std::env::var("COHERENCE_TEST_NGINX").unwrap_or_else(|_| {
        panic!(
            "COHERENCE_TEST_NGINX is not set: the several-nodes test needs nginx (the path of \
             its binary, e.g. /usr/sbin/nginx). `.ci/run` installs Debian's nginx and sets it."
        )
    });
    assert!(
        Path::new(&nginx).is_file(),
        "COHERENCE_TEST_NGINX={nginx} is not a file"
    );
    nginx
}

/// nginx on loopback with a generated configuration: the pid and temporary files under `dir`,
/// the error log on standard error (a file in `dir`), nothing in the root-owned default paths.
fn nginx_conf(dir: &Path, port: u16, nodes: &[Node]) -> String {
    let d = dir.display();
    let servers: String = nodes
        .iter()
        .map(|n| {
            format!(
                "        server {};\n",
                n.address.trim_start_matches("http://")
            )
        })
        .collect();
    format!(
        r#"master_process off;
error_log stderr info;
pid {d}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    log_format nodes '$upstream_addr $request_method $uri $status';
    access_log {d}/nginx-access.log nodes;
    client_body_temp_path {d}/nginx-body;
    proxy_temp_path {d}/nginx-proxy;
    fastcgi_temp_path {d}/nginx-fastcgi;
    uwsgi_temp_path {d}/nginx-uwsgi;
    scgi_temp_path {d}/nginx-scgi;
    upstream coherence {{
{servers}    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 2m;
        location / {{
            proxy_pass http://coherence;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header Host $host;
            proxy_connect_timeout 5s;
            proxy_read_timeout 60s;
        }}
    }}
}}
"#
    )
}

/// Wait until `base`/healthz answers 200, failing with the process's log if it exits or
/// takes too long.
async fn wait_healthy(base: &str, process: &mut Process) {
    let client = plain_client();
    let deadline = Instant::now() + STARTUP;
    loop {
        if let Some(status) = process.exited() {
            panic!("{} exited ({status}):\n{}", process.name, process.log());
        }
        if let Ok(res) = client.get(format!("{base}/healthz")).send().await {
            if res.status() == 200 {
                return;
            }
        }
        if Instant::now() > deadline {
            panic!(
                "{} did not answer on {base} within {STARTUP:?}:\n{}",
                process.name,
                process.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

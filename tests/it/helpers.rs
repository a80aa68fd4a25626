//! Starting the real application on a free port, with its own database, for each test.

use std::path::{Path, PathBuf};
use std::process::Command;

use actix_web::dev::ServerHandle;
use coherence::config::Settings;
use coherence::startup::Application;
use diesel::{Connection, PgConnection, RunQueryDsl};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty database of the given backend; its URL.
pub fn fresh_database(backend: Backend, dir: &Path) -> String {
    match backend {
        Backend::Sqlite => dir.join("test.db").display().to_string(),
        Backend::Postgres => {
            let server = std::env::var("COHERENCE_TEST_PG").unwrap_or_else(|_| {
                panic!(
                    "COHERENCE_TEST_PG is not set: the PostgreSQL half of the suite needs a server \
                     (postgres://user@host:port). `.ci/run` starts one."
                )
            });
            let name = format!("coherence_test_{}", hex::encode(rand::random::<[u8; 8]>()));
            let mut admin = PgConnection::establish(&format!("{server}/postgres"))
                .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL at {server}: {e}"));
            diesel::sql_query(format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .expect("create test database");
            format!("{server}/{name}")
        }
    }
}

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub struct TestApp {
    pub address: String,
    pub database_url: String,
    pub surveys: PathBuf,
    /// Extra settings (email) the app was started with, reused on restart and by the CLI.
    pub env: Vec<(&'static str, String)>,
    pub client: reqwest::Client,
    pub handle: ServerHandle,
    // Kept so the SQLite file lives as long as the app.
    pub dir: std::sync::Arc<tempfile::TempDir>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, fixtures().join("surveys")).await
    }

    pub async fn spawn_with(backend: Backend, surveys: PathBuf) -> TestApp {
        let dir = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
        let database_url = fresh_database(backend, dir.path());
        Self::start(database_url, surveys, dir).await
    }

    /// An app that sends email through the SMTP server on `smtp_port`.
    pub async fn spawn_with_mail(backend: Backend, smtp_port: u16) -> TestApp {
        let dir = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
        let database_url = fresh_database(backend, dir.path());
        Self::start_with(
            database_url,
            fixtures().join("surveys"),
            dir,
            mail_env(smtp_port),
        )
        .await
    }

    /// Start (again) on an existing database.
    pub async fn start(
        database_url: String,
        surveys: PathBuf,
        dir: std::sync::Arc<tempfile::TempDir>,
    ) -> TestApp {
        Self::start_with(database_url, surveys, dir, Vec::new()).await
    }

    pub async fn start_with(
        database_url: String,
        surveys: PathBuf,
        dir: std::sync::Arc<tempfile::TempDir>,
        env: Vec<(&'static str, String)>,
    ) -> TestApp {
        let db = database_url.clone();
        let surveys_text = surveys.display().to_string();
        let extra = env.clone();
        let settings = Settings::from_lookup(|k| match k {
            "COHERENCE_DATABASE_URL" => Some(db.clone()),
            "COHERENCE_BIND" => Some("127.0.0.1:0".into()),
            "COHERENCE_SURVEYS" => Some(surveys_text.clone()),
            "COHERENCE_DB_POOL" => Some("4".into()),
            other => extra
                .iter()
                .find(|(k, _)| *k == other)
                .map(|(_, v)| v.clone()),
        })
        .expect("settings");
        let app = Application::build(settings).expect("application starts");
        let address = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .build()
            .expect("client");
        TestApp {
            address,
            database_url,
            surveys,
            env,
            client,
            handle,
            dir,
        }
    }

    /// The messages delivered once the outbox has nothing left to send: at least `n` arrived,
    /// and no message is waiting or being sent. An exact count right after
    /// [`SmtpServer::wait_for`] could not see a duplicate still on its way; here it would be
    /// among them, since a message is marked sent only after the SMTP server took it.
    pub async fn mails_when_outbox_empty(&self, smtp: &SmtpServer, n: usize) -> Vec<Mail> {
        use coherence::db::schema::outbox;
        use diesel::{ExpressionMethods, QueryDsl};
        smtp.wait_for(n).await;
        let unsent = |conn: &mut coherence::db::DbConn| {
            outbox::table
                .filter(outbox::status.eq_any(["pending", "sending"]))
                .count()
                .get_result(conn)
                .expect("the outbox is counted")
        };
        let limit = std::time::Duration::from_secs(15);
        let unsent = self.count_until(limit, unsent, |n| n == 0).await;
        assert_eq!(
            unsent, 0,
            "the outbox still had messages to send after 15 s"
        );
        smtp.messages()
    }

    /// What `count` reads from this app's database, read again every 50 ms until `done`
    /// accepts it or `limit` has passed: the last count.
    pub async fn count_until(
        &self,
        limit: std::time::Duration,
        count: impl Fn(&mut coherence::db::DbConn) -> i64,
        done: impl Fn(i64) -> bool,
    ) -> i64 {
        let mut conn = writable_conn(&self.database_url);
        let deadline = std::time::Instant::now() + limit;
        loop {
            let counted = count(&mut conn);
            if done(counted) || std::time::Instant::now() >= deadline {
                return counted;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Run the real command line against this app's database and settings.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        use std::io::Write;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_coherence"));
        cmd.args(args)
            .env("COHERENCE_DATABASE_URL", &self.database_url)
            .env("COHERENCE_SURVEYS", &self.surveys)
            .env("COHERENCE_BASE_URL", &self.address)
            .env_remove("COHERENCE_BIND")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("run coherence");
        if let Some(input) = stdin {
            let _ = child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes());
        }
        drop(child.stdin.take());
        child.wait_with_output().expect("coherence output")
    }

    /// Create an account with the CLI (password from stdin).
    pub fn add_user(&self, email: &str, password: &str, role: &str, surveys: &[&str]) {
        let mut args = vec![
            "user",
            "add",
            "--email",
            email,
            "--role",
            role,
            "--password-stdin",
        ];
        for s in surveys {
            args.push("--survey");
            args.push(s);
        }
        let out = self.cli(&args, Some(&format!("{password}\n")));
        assert!(
            out.status.success(),
            "user add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Sign in through the login form; returns the response to the form post.
    pub async fn login(&self, email: &str, password: &str) -> Page {
        let form = self.get("/admin/login").await;
        let csrf = form.hidden("_csrf");
        self.post(
            "/admin/login",
            &[("_csrf", &csrf), ("email", email), ("password", password)],
        )
        .await
    }

    /// Another browser on the same running server: its own cookies.
    pub fn clone_with_new_client(&self) -> TestApp {
        let mut other = self.clone_handle();
        other.client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .build()
            .expect("client");
        other
    }

    /// Another handle on the same running server (for a second browser).
    pub fn clone_handle(&self) -> TestApp {
        TestApp {
            address: self.address.clone(),
            database_url: self.database_url.clone(),
            surveys: self.surveys.clone(),
            env: self.env.clone(),
            client: self.client.clone(),
            handle: self.handle.clone(),
            dir: self.dir.clone(),
        }
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
    }

    /// Issue a personal link with the real command line; returns the link's path (`/r/...`).
    pub fn issue_token(&self, survey: &str, country: &str, name: &str) -> String {
        self.issue_token_with(&["--survey", survey, "--country", country, "--name", name])
    }

    /// Issue a personal link for an organisation of a country (a survey of organisations).
    pub fn issue_unit_token(&self, survey: &str, country: &str, unit: &str) -> String {
        self.issue_token_with(&["--survey", survey, "--country", country, "--unit", unit])
    }

    /// Run `coherence token issue` with these arguments; returns the link's path.
    pub fn issue_token_with(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_coherence"))
            .args(["token", "issue"])
            .args(args)
            .env("COHERENCE_DATABASE_URL", &self.database_url)
            .env("COHERENCE_SURVEYS", &self.surveys)
            .env("COHERENCE_BASE_URL", "https://survey.example.org")
            .env_remove("COHERENCE_BIND")
            .output()
            .expect("run coherence token issue");
        assert!(
            out.status.success(),
            "token issue failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).expect("utf-8");
        let link = stdout
            .lines()
            .last()
            .expect("a link line")
            .trim()
            .to_string();
        let path = link
            .strip_prefix("https://survey.example.org")
            .unwrap_or_else(|| panic!("link has the base URL: {link}"));
        path.to_string()
    }

    /// Import a contacts file through the survey page's form, as an administrator does.
    pub async fn upload_contacts(&self, survey: &str, csv: &str) -> Page {
        let page = self.get(&format!("/admin/surveys/{survey}")).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let form = contacts_form(page.hidden("_csrf"), csv);
        let res = self
            .client
            .post(format!("{}/admin/surveys/{survey}/contacts", self.address))
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body = res.text().await.unwrap();
        Page {
            status,
            location: None,
            body,
            headers: Default::default(),
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        let res = self
            .client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("GET");
        Page::from(res).await
    }

    /// A counter or gauge from the app's `/metrics` (Prometheus' text format).
    pub async fn metric(&self, name: &str) -> u64 {
        let page = self.get("/metrics").await;
        assert_eq!(page.status, 200, "/metrics: {}", page.body);
        page.body
            .lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| {
                let (n, v) = l.split_once(' ')?;
                (n == name).then(|| v.trim().parse().expect("a whole number"))
            })
            .unwrap_or_else(|| panic!("{name} is not in /metrics:\n{}", page.body))
    }

    /// SQL statements the app's pooled connections have sent since it started.
    pub async fn sql_statements(&self) -> u64 {
        self.metric("coherence_sql_statements_total").await
    }

    /// GET `path`, with the number of SQL statements the request sent (the app must have
    /// nothing else running, like the email worker, for the count to be this request's).
    pub async fn get_counting(&self, path: &str) -> (Page, u64) {
        let before = self.sql_statements().await;
        let page = self.get(path).await;
        let after = self.sql_statements().await;
        (page, after - before)
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(form).expect("encode form");
        self.post_raw(path, body).await
    }

    pub async fn post_raw(&self, path: &str, body: String) -> Page {
        let res = self
            .client
            .post(format!("{}{path}", self.address))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("POST");
        Page::from(res).await
    }

    /// Open a section form and post it with the given answers (CSRF and version taken from it).
    pub async fn save_section(&self, link: &str, section: &str, answers: &[(&str, &str)]) -> Page {
        let form = self.get(&format!("{link}/s/{section}")).await;
        assert_eq!(form.status, 200, "section form {section}: {}", form.body);
        self.post_form_from(&form, &format!("{link}/s/{section}"), answers)
            .await
    }

    /// Submit the response with the CSRF token of an already loaded review page.
    pub async fn post_form_from_review(&self, review: &Page, link: &str) -> Page {
        let csrf = review.hidden("_csrf");
        self.post(&format!("{link}/submit"), &[("_csrf", &csrf)])
            .await
    }

    /// Open the review page and submit the response from it.
    pub async fn submit(&self, link: &str) -> Page {
        let review = self.get(&format!("{link}/review")).await;
        self.post_form_from_review(&review, link).await
    }

    /// Post `fields` to `action` with the CSRF token of the form on `page` (loaded first).
    pub async fn post_with_csrf_of(
        &self,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> Page {
        let form = self.get(page).await;
        assert_eq!(form.status, 200, "{page}: {}", form.body);
        let csrf = form.hidden("_csrf");
        let mut all = vec![("_csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(action, &all).await
    }

    /// Post answers with the hidden fields of an already loaded form page.
    pub async fn post_form_from(
        &self,
        form: &Page,
        action: &str,
        answers: &[(&str, &str)],
    ) -> Page {
        let csrf = form.hidden("_csrf");
        let version = form.hidden("_version");
        let mut fields: Vec<(&str, &str)> = vec![("_csrf", &csrf), ("_version", &version)];
        fields.extend_from_slice(answers);
        self.post(action, &fields).await
    }
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Page {
    async fn from(res: reqwest::Response) -> Page {
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

    /// The value of a hidden input.
    pub fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no hidden field {name} in page:\n{}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').expect("closing quote") + start;
        self.body[start..end].to_string()
    }

    /// The error message shown next to a question's field, if any.
    pub fn field_error(&self, question: &str) -> Option<String> {
        let marker = format!("id=\"{question}-error\"><span class=\"vh\">Error:</span> ");
        let start = self.body.find(&marker)? + marker.len();
        let end = self.body[start..].find("</p>")? + start;
        Some(self.body[start..end].to_string())
    }

    /// The value shown in a text input or textarea.
    pub fn field_value(&self, question: &str) -> Option<String> {
        let input = format!("name=\"{question}\" value=\"");
        if let Some(i) = self.body.find(&input) {
            let start = i + input.len();
            let end = self.body[start..].find('"')? + start;
            return Some(self.body[start..end].to_string());
        }
        let area = format!("name=\"{question}\" rows=\"6\"");
        let i = self.body.find(&area)?;
        let start = self.body[i..].find('>')? + i + 1;
        let end = self.body[start..].find("</textarea>")? + start;
        Some(self.body[start..end].to_string())
    }

    /// Whether the option `code` of a choice question is checked or selected.
    pub fn is_checked(&self, question: &str, code: &str) -> bool {
        let id = format!("id=\"q-{question}-{code}\" name=\"{question}\" value=\"{code}\" checked");
        self.body.contains(&id)
    }

    /// Whether the radio `code` of a question's "Answer / Not known / Not applicable" group is
    /// checked.
    pub fn escape_checked(&self, question: &str, code: &str) -> bool {
        self.body.contains(&format!(
            "id=\"q-{question}-escape-{code}\" name=\"{question}.escape\" value=\"{code}\" checked"
        ))
    }

    pub fn has_field(&self, question: &str) -> bool {
        self.body.contains(&format!("id=\"field-{question}\""))
    }
}

/// Run a test body once on SQLite and once on PostgreSQL, as two named tests.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            }
        )*
    };
}

/// The contacts import form as a browser posts it: the CSRF token and the file.
pub fn contacts_form(csrf: String, csv: &str) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new().text("_csrf", csrf).part(
        "file",
        reqwest::multipart::Part::bytes(csv.as_bytes().to_vec())
            .file_name("contacts.csv")
            .mime_str("text/csv")
            .unwrap(),
    )
}

pub fn mail_env(smtp_port: u16) -> Vec<(&'static str, String)> {
    vec![
        (
            "COHERENCE_SMTP_URL",
            format!("smtp://127.0.0.1:{smtp_port}"),
        ),
        (
            "COHERENCE_MAIL_FROM",
            "GFMD Survey <survey@gfmd.example.org>".into(),
        ),
        ("COHERENCE_MAIL_RETRY_MS", "300".into()),
        ("COHERENCE_MAIL_POLL_MS", "100".into()),
    ]
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A real SMTP server (aiosmtpd) on loopback, writing messages into a maildir.
pub struct SmtpServer {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

/// A delivered message, decoded enough to read.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub message_id: String,
    pub body: String,
}

impl Mail {
    /// The personal link in the message, as a path (`/r/...`).
    pub fn link_path(&self) -> Option<String> {
        let i = self.body.find("/r/")?;
        let token: String = self.body[i + 3..]
            .chars()
            .take_while(|c| c.is_ascii_hexdigit())
            .collect();
        (token.len() == 48).then(|| format!("/r/{token}"))
    }
}

impl SmtpServer {
    pub fn start(reject: &[&str], delay_ms: u64) -> SmtpServer {
        Self::start_on(
            free_port(),
            tempfile::tempdir().expect("maildir"),
            reject,
            delay_ms,
        )
    }

    /// A server that also defers (451, once per address) recipients starting with `defer`.
    pub fn start_with(reject: &[&str], defer: &[&str], delay_ms: u64) -> SmtpServer {
        Self::launch(
            free_port(),
            tempfile::tempdir().expect("maildir"),
            reject,
            defer,
            delay_ms,
        )
    }

    pub fn start_on(
        port: u16,
        dir: tempfile::TempDir,
        reject: &[&str],
        delay_ms: u64,
    ) -> SmtpServer {
        Self::launch(port, dir, reject, &[], delay_ms)
    }

    fn launch(
        port: u16,
        dir: tempfile::TempDir,
        reject: &[&str],
        defer: &[&str],
        delay_ms: u64,
    ) -> SmtpServer {
        use std::io::BufRead;
        let python = std::env::var("COHERENCE_TEST_PYTHON").unwrap_or_else(|_| {
            panic!("COHERENCE_TEST_PYTHON is not set: the email tests need a Python with aiosmtpd. `.ci/run` sets it up.")
        });
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_server.py");
        let mut cmd = Command::new(python);
        cmd.arg(script)
            .args(["--port", &port.to_string(), "--dir"])
            .arg(dir.path())
            .args(["--delay-ms", &delay_ms.to_string()])
            .stdout(std::process::Stdio::piped());
        for r in reject {
            cmd.args(["--reject", r]);
        }
        for d in defer {
            cmd.args(["--defer", d]);
        }
        let mut child = cmd.spawn().expect("start the SMTP server");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("SMTP server output");
        assert_eq!(line.trim(), "ready", "SMTP server did not start");
        SmtpServer {
            port,
            dir,
            child: Some(child),
        }
    }

    pub fn messages(&self) -> Vec<Mail> {
        read_maildir(self.dir.path())
    }

    /// How many connections said EHLO to this server.
    pub fn connections(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("connections"))
            .ok()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Wait until `n` messages arrived (or fail after a while).
    pub async fn wait_for(&self, n: usize) -> Vec<Mail> {
        for _ in 0..300 {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("expected {n} messages, got {}", self.messages().len());
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn read_maildir(dir: &Path) -> Vec<Mail> {
    let Ok(entries) = std::fs::read_dir(dir.join("new")) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    files
        .iter()
        .filter_map(|f| std::fs::read(f).ok())
        .map(|raw| parse_mail(&String::from_utf8_lossy(&raw)))
        .collect()
}

fn parse_mail(raw: &str) -> Mail {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    // A header with its folded continuation lines (those starting with white space).
    let header = |name: &str| -> String {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        let mut lines = head
            .lines()
            .skip_while(|l| !l.to_ascii_lowercase().starts_with(&prefix));
        let Some(first) = lines.next() else {
            return String::new();
        };
        let mut value = first[name.len() + 1..].trim().to_string();
        for more in lines.take_while(|l| l.starts_with([' ', '\t'])) {
            value.push(' ');
            value.push_str(more.trim());
        }
        value
    };
    // Undo quoted-printable soft line breaks and escapes, enough to read links and text.
    let soft = body.replace("=\n", "");
    let mut decoded = Vec::new();
    let bytes = soft.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&soft[i + 1..i + 3], 16) {
                decoded.push(b);
                i += 3;
                continue;
            }
        }
        decoded.push(bytes[i]);
        i += 1;
    }
    Mail {
        to: header("To"),
        subject: header("Subject"),
        message_id: header("Message-ID"),
        body: String::from_utf8_lossy(&decoded).into_owned(),
    }
}

/// The ids of the secretariat's queries a respondent page of `link` points to, in order of
/// first appearance.
pub fn query_ids(body: &str, link: &str) -> Vec<String> {
    let marker = format!("{link}/queries/");
    let mut ids: Vec<String> = Vec::new();
    for (i, _) in body.match_indices(&marker) {
        let id: String = body[i + marker.len()..]
            .chars()
            .take_while(|c| c.is_ascii_hexdigit())
            .collect();
        if !id.is_empty() && !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

/// A connection of its own to `database_url` that may write anything, as a database
/// administrator's session would: rows the pages cannot reach, an attacker's tampering,
/// migrations run by hand. The pool's SQLite connections refuse to write (the server writes on
/// its pool's writer, in the database's write turn); this one writes beside them, and waits for
/// SQLite's lock like any other process.
pub fn writable_conn(database_url: &str) -> coherence::db::DbConn {
    let url = coherence::db::DbUrl::parse(database_url).expect("database URL");
    coherence::db::connect(&url, 1)
        .and_then(|pool| pool.open_apart())
        .expect("a connection of its own")
}

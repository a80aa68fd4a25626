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

    /// Start (again) on an existing database.
    pub async fn start(
        database_url: String,
        surveys: PathBuf,
        dir: std::sync::Arc<tempfile::TempDir>,
    ) -> TestApp {
        let db = database_url.clone();
        let surveys_text = surveys.display().to_string();
        let settings = Settings::from_lookup(|k| match k {
            "COHERENCE_DATABASE_URL" => Some(db.clone()),
            "COHERENCE_BIND" => Some("127.0.0.1:0".into()),
            "COHERENCE_SURVEYS" => Some(surveys_text.clone()),
            "COHERENCE_DB_POOL" => Some("4".into()),
            _ => None,
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
            client,
            handle,
            dir,
        }
    }

    /// Another handle on the same running server (for a second browser).
    pub fn clone_handle(&self) -> TestApp {
        TestApp {
            address: self.address.clone(),
            database_url: self.database_url.clone(),
            surveys: self.surveys.clone(),
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
        let out = Command::new(env!("CARGO_BIN_EXE_coherence"))
            .args([
                "token",
                "issue",
                "--survey",
                survey,
                "--country",
                country,
                "--name",
                name,
            ])
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

    pub async fn get(&self, path: &str) -> Page {
        let res = self
            .client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("GET");
        Page::from(res).await
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

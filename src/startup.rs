//! Building the application: storage, surveys, templates, and the bound HTTP server.
//! Used unchanged by `main` and by the integration tests (which bind port 0).

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpServer};
use chrono::Utc;

use crate::config::Settings;
use crate::db::{self, countries, survey_versions, tokens, DbError, Pool};
use crate::mail::templates::EmailTemplates;
use crate::mail::{Mailer, Worker};
use crate::reference::{Countries, ReferenceError};
use crate::survey::{load_paths, Catalog, Diagnostic, Severity};
use crate::web::render::Templates;
use crate::web::{self as routes, AppState};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{}", format_diagnostics(.0))]
    Surveys(Vec<Diagnostic>),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("templates: {0}")]
    Templates(#[from] Box<handlebars::TemplateError>),
    #[error(transparent)]
    Mail(#[from] crate::mail::MailError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

fn format_diagnostics(d: &[Diagnostic]) -> String {
    let errors: Vec<String> = d
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.to_string())
        .collect();
    format!(
        "the survey definitions have {} error(s); fix them or check with `coherence check`:\n{}",
        errors.len(),
        errors.join("\n")
    )
}

/// Surveys, countries and a migrated database with the reference data in place.
pub struct Storage {
    pub pool: Pool,
    pub catalog: Catalog,
    pub countries: Arc<Countries>,
    /// Whether no personal link exists yet (a fresh installation).
    pub fresh: bool,
}

pub fn open_storage(settings: &Settings) -> Result<Storage, StartupError> {
    let report = load_paths(std::slice::from_ref(&settings.surveys));
    if report.has_errors() {
        return Err(StartupError::Surveys(report.diagnostics));
    }
    let countries = Arc::new(Countries::load()?);
    let pool = db::connect(&settings.database, settings.pool_size)?;
    let mut conn = pool.get().map_err(DbError::from)?;
    countries::sync_countries(&mut conn, &countries).map_err(DbError::from)?;
    let now = Utc::now().naive_utc();
    for s in &report.surveys {
        survey_versions::record_survey_version(&mut conn, s, now).map_err(DbError::from)?;
        let made = crate::report::backfill_versions(&mut conn, s, now).map_err(DbError::from)?;
        if made > 0 {
            tracing::info!(survey = %s.id, versions = made, "stored submitted responses as version 1");
        }
    }
    let fresh = tokens::count_tokens(&mut conn).map_err(DbError::from)? == 0;
    drop(conn);
    Ok(Storage {
        pool,
        catalog: Catalog::new(report.surveys),
        countries,
        fresh,
    })
}

pub struct Application {
    port: u16,
    pub base_url: String,
    server: Server,
    worker: Option<Worker>,
    pub storage_fresh: bool,
    pub survey_ids: Vec<String>,
}

impl Application {
    pub fn build(mut settings: Settings) -> Result<Application, StartupError> {
        let storage = open_storage(&settings)?;
        let templates = Templates::new().map_err(Box::new)?;
        let listener = TcpListener::bind(settings.bind).map_err(|source| StartupError::Bind {
            addr: settings.bind.to_string(),
            source,
        })?;
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        tracing::info!(address = %format!("{}:{port}", settings.bind.ip()), "listening");
        if !settings.base_url_explicit {
            // Port 0 means "any": links must carry the port actually bound.
            settings.base_url = format!("http://{}:{port}", settings.bind.ip());
        }
        let base_url = settings.base_url.clone();
        let survey_ids = storage.catalog.iter().map(|s| s.id.clone()).collect();
        let storage_fresh = storage.fresh;
        let emails = EmailTemplates::new().map_err(Box::new)?;
        let mailer = settings.mail.as_ref().map(Mailer::new).transpose()?;
        let worker = mailer
            .clone()
            .map(|m| Worker::start(storage.pool.clone(), m));
        let state = web::Data::new(AppState::new(
            storage.pool,
            storage.catalog,
            storage.countries,
            templates,
            settings.clone(),
            mailer,
            emails,
        ));
        let https = settings.is_https();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .wrap(actix_web::middleware::from_fn(routes::body_timeout))
                .wrap(routes::error_pages())
                .wrap(actix_web::middleware::from_fn(routes::with_language))
                .wrap(routes::security_headers(https))
                // Gzip for whoever asks: pages shrink several times on slow connections.
                .wrap(actix_web::middleware::Compress::default())
                .configure(routes::configure)
        })
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            addr: settings.bind.to_string(),
            source,
        })?
        .run();
        Ok(Application {
            port,
            server,
            worker,
            base_url,
            storage_fresh,
            survey_ids,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serve until stopped, then let the email worker finish the message it is sending.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        if let Some(worker) = self.worker {
            // Joining blocks: do it off the async executor.
            let _ = actix_web::rt::task::spawn_blocking(move || worker.stop()).await;
        }
        result
    }
}

//! Building the application: storage, surveys, templates, and the bound HTTP server.
//! Used unchanged by `main` and by the integration tests (which bind port 0).

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpServer};
use chrono::Utc;

use crate::config::Settings;
use crate::db::{self, countries, definitions, survey_versions, tokens, DbConn, DbError, Pool};
use crate::mail::templates::EmailTemplates;
use crate::mail::{Mailer, Worker};
use crate::reference::{Countries, ReferenceError};
use crate::survey::changes::{self, Impact};
use crate::survey::{load_paths, parse_survey, Catalog, Diagnostic, Severity, Survey};
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
    /// A changed survey file would leave stored answers without their question or option.
    #[error("{0}")]
    Orphans(String),
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
    /// What each survey file changed since it was last loaded did to the stored answers.
    pub definition_reports: Vec<String>,
}

pub fn open_storage(settings: &Settings) -> Result<Storage, StartupError> {
    let report = load_paths(std::slice::from_ref(&settings.surveys));
    if report.has_errors() {
        return Err(StartupError::Surveys(report.diagnostics));
    }
    let countries = Arc::new(Countries::load()?);
    let pool = db::connect_with(
        &settings.database,
        settings.pool_size,
        Some(settings.statement_timeout),
    )?;
    // Work at start is not a request's: no statement timeout (see the pool's).
    let (fresh, reviews) = pool.without_statement_timeout(|conn| -> Result<_, StartupError> {
        countries::sync_countries(conn, &countries).map_err(DbError::from)?;
        let now = Utc::now().naive_utc();
        let reviews = review_definitions(conn, &report.surveys)?;
        if !settings.accept_orphans && reviews.iter().any(DefinitionReview::refuses) {
            return Err(StartupError::Orphans(refusal(&reviews)));
        }
        for s in &report.surveys {
            match reviews.iter().find(|r| r.survey_id == s.id) {
                Some(review) => accept_definition(conn, s, review, now)?,
                None => {
                    survey_versions::record_survey_version(conn, s, now).map_err(DbError::from)?
                }
            }
            let made = crate::report::backfill_versions(conn, s, now).map_err(DbError::from)?;
            if made > 0 {
                tracing::info!(survey = %s.id, versions = made, "stored submitted responses as version 1");
            }
            // The compendium's listings, kept by the database from now on for this definition.
            if crate::results::practices::keep_roles(conn, s).map_err(DbError::from)? {
                tracing::info!(survey = %s.id, "good-practice listings computed for this definition");
            }
        }
        let fresh = tokens::count_tokens(conn).map_err(DbError::from)? == 0;
        Ok((fresh, reviews))
    })?;
    Ok(Storage {
        pool,
        catalog: Catalog::new(report.surveys),
        countries,
        fresh,
        definition_reports: reviews.into_iter().map(|r| r.report).collect(),
    })
}

/// A survey file whose version was never loaded, compared with the version loaded last.
#[derive(Debug)]
pub struct DefinitionReview {
    pub survey_id: String,
    pub from_version: String,
    pub to_version: String,
    /// What the change does to stored answers; None when the previous version no longer
    /// parses (nothing is compared then).
    pub impact: Option<Impact>,
    /// The report printed at start and by `coherence check --database`.
    pub report: String,
    /// The version loaded before, as it parsed.
    pub old: Option<Box<Survey>>,
}

impl DefinitionReview {
    /// Whether starting would leave stored answers that nothing maps without their question
    /// or option.
    pub fn refuses(&self) -> bool {
        self.impact.as_ref().is_some_and(Impact::orphans)
    }
}

/// Compare each survey whose file is a version not loaded before with the version loaded
/// last (a known version was accepted when it was loaded). A first load compares nothing.
pub fn review_definitions(
    conn: &mut DbConn,
    surveys: &[Survey],
) -> Result<Vec<DefinitionReview>, DbError> {
    let mut out = Vec::new();
    for s in surveys {
        if definitions::is_known_version(conn, &s.id, &s.version)? {
            continue;
        }
        let Some((from, source)) = definitions::latest_version(conn, &s.id)? else {
            continue;
        };
        // Under the current file's path, so that a population list next to it still resolves.
        let (old, _) = parse_survey(&s.path, &source);
        let (impact, report) = match &old {
            Some(old) => {
                let rows = definitions::stored_items(conn, &s.id)?;
                let impact = changes::impact(old, s, &rows);
                let report = impact.report(&s.id, &from, &s.version);
                (Some(impact), report)
            }
            None => (
                None,
                format!(
                    "survey '{}' changed since it was last loaded (version {} -> {}):\n  the version loaded before no longer parses: nothing is compared\n",
                    s.id,
                    from.get(..12).unwrap_or(&from),
                    s.version.get(..12).unwrap_or(&s.version)
                ),
            ),
        };
        out.push(DefinitionReview {
            survey_id: s.id.clone(),
            from_version: from,
            to_version: s.version.clone(),
            impact,
            report,
            old: old.map(Box::new),
        });
    }
    Ok(out)
}

/// Why start refuses: every report, then what to do.
pub fn refusal(reviews: &[DefinitionReview]) -> String {
    let reports: String = reviews.iter().map(|r| r.report.as_str()).collect();
    format!(
        "{reports}refusing to start: the changes above leave stored answers without their question or option. \
         Map them in the survey file ([[renamed]] for a question, was = \"old_code\" on an option) \
         or start with --accept-orphans to keep them stored but hidden (recorded in the audit log)"
    )
}

/// Apply a reviewed change to the stored answers and record it with the new version, in one
/// transaction (a second server starting on the same files waits, then finds it done).
fn accept_definition(
    conn: &mut DbConn,
    survey: &Survey,
    review: &DefinitionReview,
    now: chrono::NaiveDateTime,
) -> Result<(), DbError> {
    let empty = Impact::default();
    let impact = review.impact.as_ref().unwrap_or(&empty);
    db::transaction(conn, |conn| {
        db::lock_for_startup(conn)?;
        if definitions::is_known_version(conn, &survey.id, &survey.version)? {
            return Ok(());
        }
        let change = definitions::apply(
            conn,
            impact,
            &definitions::NewChange {
                survey_id: &survey.id,
                from_version: &review.from_version,
                to_version: &review.to_version,
                accepted_orphans: review.refuses(),
                report: &review.report,
                now,
            },
        )?;
        if review.refuses() {
            crate::audit::record(
                conn,
                &crate::audit::Event {
                    survey_id: &survey.id,
                    country_iso3: "",
                    actor: crate::audit::Actor::Cli,
                    kind: crate::audit::AuditKind::OrphansAccepted,
                    detail: serde_json::json!({
                        "change": change,
                        "from_version": review.from_version,
                        "to_version": review.to_version,
                        "orphaned_responses": impact.orphan_count(),
                        "report": review.report,
                    }),
                },
                now,
            )?;
        }
        // Answers carried from a previous round follow their question and codes, so that
        // "changed since the previous round" and confirmations stay right.
        if let Some(old) = &review.old {
            for (response, carried) in db::carried::survey_carried_answers(conn, &survey.id)? {
                for c in carried.values() {
                    if let Some((to, items)) =
                        changes::carried_fate(old, survey, &c.question_id, &c.items)
                    {
                        db::carried::rewrite(conn, &response, &c.question_id, &to, &items)?;
                    }
                }
            }
        }
        survey_versions::record_survey_version(conn, survey, now)?;
        Ok::<(), db::QueryError>(())
    })?;
    tracing::info!(survey = %survey.id, "survey file changed:\n{}", review.report);
    Ok(())
}

pub struct Application {
    port: u16,
    pub base_url: String,
    server: Server,
    worker: Option<Worker>,
    sealer: crate::audit::Sealer,
    pub storage_fresh: bool,
    pub survey_ids: Vec<String>,
    /// What changed survey files did to stored answers (printed by `serve`).
    pub definition_reports: Vec<String>,
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
        let definition_reports = storage.definition_reports;
        let emails = EmailTemplates::new().map_err(Box::new)?;
        let mailer = settings.mail.as_ref().map(Mailer::new).transpose()?;
        let worker = mailer
            .clone()
            .map(|m| Worker::start(storage.pool.clone(), m));
        let sealer = crate::audit::Sealer::start(storage.pool.clone());
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
        // Database work runs on each worker's blocking threads, and waits there for one of the
        // pool's connections. actix's default, 512 threads shared by the workers, let 64
        // concurrent requests hold 64 threads, each with its stack, all but a few waiting for
        // a connection; with the pool's size per worker the rest wait as queued tasks, within
        // the same 5 s (`db::wait_left`). Peak RSS under the load benchmark's whole responses
        // fell from 46.8 to 38.7 MiB (89 threads to 18). The zip export, which lasts as long
        // as the download, has a thread of its own.
        .worker_max_blocking_threads(settings.pool_size.max(1) as usize)
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
            sealer,
            base_url,
            storage_fresh,
            survey_ids,
            definition_reports,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serve until stopped, then let the email worker finish the message it is sending, and
    /// chain the audit entries recorded last.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        let (worker, sealer) = (self.worker, self.sealer);
        // Joining blocks: do it off the async executor.
        let _ = actix_web::rt::task::spawn_blocking(move || {
            if let Some(worker) = worker {
                worker.stop();
            }
            sealer.stop();
        })
        .await;
        result
    }
}

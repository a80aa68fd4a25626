//! Command line: `coherence [serve|check|migrate|token issue]`.

use std::path::PathBuf;

use chrono::Utc;
use clap::{Parser, Subcommand};

use crate::access::{hash_token, new_token};
use crate::config::Settings;
use crate::db::{self, queries, DbError};
use crate::startup::{open_storage, Application, StartupError};
use crate::survey::{load::translation_warnings, load_paths, Severity};

#[derive(Parser, Debug)]
#[command(
    name = "coherence",
    version,
    about = "Survey platform for intergovernmental policy questionnaires"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start the web service (the default). Configured by COHERENCE_* variables (see README).
    Serve,
    /// Check survey definition files (default: the surveys directory).
    Check { paths: Vec<PathBuf> },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Personal links for national focal points.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenAction {
    /// Issue a personal link for one official of a country; the link is the last line printed.
    Issue {
        #[arg(long)]
        survey: String,
        /// ISO 3166-1 alpha-3 code, e.g. SWE.
        #[arg(long)]
        country: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        email: Option<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{0}")]
    Usage(String),
    #[error("the survey files have errors")]
    CheckFailed,
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        Command::Check { paths } => check(paths),
        Command::Migrate => {
            let settings = Settings::from_env()?;
            let pool = db::connect(&settings.database, 1)?;
            drop(pool);
            println!("{}: migrations applied", settings.database.backend());
            Ok(())
        }
        Command::Token {
            action:
                TokenAction::Issue {
                    survey,
                    country,
                    name,
                    email,
                },
        } => issue_token(&survey, &country, name, email),
    }
}

async fn serve() -> Result<(), CliError> {
    let settings = Settings::from_env()?;
    let base_url = settings.base_url.clone();
    let backend = settings.database.backend();
    let db_shown = settings.database.display();
    let app = Application::build(settings)?;
    println!("Coherence is listening on {base_url} ({backend}: {db_shown})");
    println!("Surveys: {}", app.survey_ids.join(", "));
    if app.storage_fresh {
        let example = app.survey_ids.first().cloned().unwrap_or_default();
        println!(
            "No personal links exist yet. To answer as a country, issue one in another terminal:"
        );
        println!("  cargo run --release -- token issue --survey {example} --country SWE --name \"Your name\"");
        println!("and open the link it prints.");
    }
    app.run_until_stopped().await?;
    Ok(())
}

fn check(paths: Vec<PathBuf>) -> Result<(), CliError> {
    let paths = if paths.is_empty() {
        vec![Settings::from_env()?.surveys]
    } else {
        paths
    };
    let report = load_paths(&paths);
    for d in &report.diagnostics {
        eprintln!("{d}");
    }
    if report.has_errors() {
        let n = report
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        eprintln!("{n} error(s)");
        return Err(CliError::CheckFailed);
    }
    for s in &report.surveys {
        for w in translation_warnings(s) {
            eprintln!("warning: {w}");
        }
        let questions = s.questions().count();
        let conditions = s.questions().filter(|q| q.show_if.is_some()).count()
            + s.sections.iter().filter(|x| x.show_if.is_some()).count();
        println!(
            "{}: ok ({} sections, {questions} questions, {conditions} conditions, {} themes, languages {})",
            s.id,
            s.sections.len(),
            s.themes.len(),
            s.languages.join("/")
        );
    }
    Ok(())
}

fn issue_token(
    survey: &str,
    country: &str,
    name: Option<String>,
    email: Option<String>,
) -> Result<(), CliError> {
    let settings = Settings::from_env()?;
    let storage = open_storage(&settings)?;
    let country = country.trim().to_ascii_uppercase();
    let Some(s) = storage.catalog.get(survey) else {
        let known: Vec<String> = storage.catalog.iter().map(|s| s.id.clone()).collect();
        return Err(CliError::Usage(format!(
            "unknown survey '{survey}' (known: {})",
            known.join(", ")
        )));
    };
    let Some(c) = storage.countries.get(&country) else {
        return Err(CliError::Usage(format!(
            "unknown country code '{country}': use an ISO 3166-1 alpha-3 code such as SWE"
        )));
    };
    if let Some(e) = &email {
        use validator::ValidateEmail;
        if !e.validate_email() {
            return Err(CliError::Usage(format!("'{e}' is not an email address")));
        }
    }
    let token = new_token();
    let mut conn = storage.pool.get().map_err(DbError::from)?;
    queries::insert_token(
        &mut conn,
        &queries::NewToken {
            survey_id: &s.id,
            country_iso3: &country,
            token_hash: &hash_token(&token),
            holder_name: name.as_deref(),
            holder_email: email.as_deref(),
            now: Utc::now().naive_utc(),
        },
    )
    .map_err(DbError::from)?;
    println!(
        "Personal link for {} ({}) to '{}'{}. Keep it private: it gives access to the country's response.",
        c.name_en,
        country,
        s.title.get("en"),
        name.map(|n| format!(", issued to {n}")).unwrap_or_default()
    );
    println!("{}/r/{token}", settings.base_url);
    Ok(())
}

//! Command line: `coherence [serve|check|migrate|token issue|audit verify|...]`.

use std::path::PathBuf;

use chrono::Utc;
use clap::{Parser, Subcommand};

use crate::access::hash_token;
use crate::accounts::{self, Role};
use crate::campaign::Campaign;
use crate::config::Settings;
use crate::contacts;
use crate::db::{self, queries, DbError};
use crate::mail::{self, templates::EmailTemplates, Mailer};
use crate::startup::{open_storage, Application, StartupError};
use crate::survey::{load::translation_warnings, load_paths, RespondentUnit, Severity};

#[derive(Parser, Debug)]
#[command(
    name = "coherence",
    version,
    about = "Survey platform for intergovernmental policy questionnaires"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Serve even though a changed survey file leaves stored answers without their question
    /// or option (they stay stored, hidden; the decision goes to the audit log).
    #[arg(long)]
    pub accept_orphans: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start the web service (the default). Configured by COHERENCE_* variables (see README).
    Serve {
        /// Start even though a changed survey file leaves stored answers without their
        /// question or option (they stay stored, hidden; the decision goes to the audit log).
        #[arg(long)]
        accept_orphans: bool,
    },
    /// Check survey definition files (default: the surveys directory).
    Check {
        paths: Vec<PathBuf>,
        /// Also compare each file with the version the database last loaded and say what
        /// starting on it would do to the stored answers (exit 1 if start would refuse).
        #[arg(long)]
        database: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Personal links for national focal points.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Administrator and survey-owner accounts.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Focal-point contacts of a survey.
    Contacts {
        #[command(subcommand)]
        action: ContactsAction,
    },
    /// Email each contact (of the given countries, or all) their personal link; then send.
    Invite {
        survey: String,
        #[arg(long = "country")]
        countries: Vec<String>,
    },
    /// Remind the contacts of countries that have not submitted; then send.
    Remind { survey: String },
    /// Fill a database with plausible, reproducible responses (80% submitted) for N countries,
    /// or, in a survey answered per organisation, for N organisations (--units). For a round
    /// that follows another, both rounds: the previous one first (when it has no submitted
    /// response yet), then the new one, starting from it, its carried answers confirmed or
    /// changed.
    DemoData {
        survey: String,
        #[arg(long, default_value_t = 60)]
        countries: usize,
        /// Organisations to generate, spread over every country (surveys of organisations).
        #[arg(long)]
        units: Option<usize>,
        #[arg(long, default_value_t = 2008)]
        seed: u64,
    },
    /// Export the responses (the counted version of each submitted one, drafts too with
    /// --drafts, accepted ones only with --accepted-only) as csv, xlsx or json; csv also writes
    /// the codebook next to the file (FILE.codebook.csv); zip holds the CSV, the codebook and
    /// every attached file (files/ISO3/QUESTION/NAME).
    Export {
        survey: String,
        #[arg(long, default_value = "csv")]
        format: String,
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        drafts: bool,
        #[arg(long)]
        accepted_only: bool,
    },
    /// A country's questionnaire as an Excel workbook to fill offline
    /// (`questionnaire SURVEY --country ISO3 --out FILE.xlsx`), and the filled workbook read
    /// back as one save (`questionnaire import SURVEY --country ISO3 FILE.xlsx`).
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Questionnaire {
        #[command(subcommand)]
        action: Option<QuestionnaireAction>,
        #[command(flatten)]
        export: Option<QuestionnaireExport>,
    },
    /// The audit log: check its hash chains, or write it out.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
}

#[derive(Subcommand, Debug)]
pub enum QuestionnaireAction {
    /// Write the workbook of a country (or organisation) with its current answers (the same
    /// as `questionnaire SURVEY ...` without `export`).
    Export(QuestionnaireExport),
    /// Check a filled workbook and save it as one save of the country's link (the newest live
    /// coordinator or approver link, or --link); every bad cell is listed, nothing is saved
    /// until the file is clean.
    Import {
        survey: String,
        #[arg(long)]
        country: String,
        #[arg(long, default_value = "")]
        unit: String,
        /// The personal link the save is attributed to (its URL or its last part).
        #[arg(long)]
        link: Option<String>,
        file: PathBuf,
    },
}

/// Which workbook to write: a country's (or organisation's), in a language, to a file.
#[derive(clap::Args, Debug)]
pub struct QuestionnaireExport {
    survey: String,
    #[arg(long)]
    country: String,
    /// The organisation, in a survey answered per organisation.
    #[arg(long, default_value = "")]
    unit: String,
    /// The workbook's language (default: the survey's first).
    #[arg(long)]
    lang: Option<String>,
    #[arg(long)]
    out: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum AuditAction {
    /// Recompute the hash chain of a survey (or of every survey) and compare it with its head;
    /// prints each chain's entries and head hash, or the first entry that does not match
    /// (exit status 1).
    Verify { survey: Option<String> },
    /// Write the entries (of a survey, or all) as JSON lines, to standard output or --out FILE.
    Export {
        survey: Option<String>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserAction {
    /// Create an account; prints a one-time link to set the password (or reads it from stdin).
    Add {
        #[arg(long)]
        email: String,
        /// admin (everything) or owner (results and round management of their surveys).
        #[arg(long)]
        role: String,
        /// Surveys an owner owns (repeat for several).
        #[arg(long = "survey")]
        surveys: Vec<String>,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ContactsAction {
    /// Import contacts from CSV (header: country,name,email,language,office). All or nothing.
    Import { survey: String, file: PathBuf },
    /// Write the contacts as CSV (to standard output, or --out FILE).
    Export {
        survey: String,
        #[arg(long)]
        out: Option<PathBuf>,
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
        /// The organisation the link answers for, in a survey whose respondent_unit is
        /// "organisation" (required there, refused otherwise).
        #[arg(long)]
        unit: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        email: Option<String>,
        /// The last day (UTC) the link works, YYYY-MM-DD; without it the link never expires.
        #[arg(long)]
        expires: Option<String>,
        /// coordinator (answers every section and submits, or sends for sign-off; the
        /// default), contributor (only the sections named with --section; cannot submit) or
        /// approver (signs off where the survey sets sign_off, else as a coordinator).
        #[arg(long, default_value = "coordinator")]
        role: String,
        /// A section a contributor may answer, by its id; repeat for several.
        #[arg(long = "section")]
        sections: Vec<String>,
    },
    /// Revoke personal links: one link (--link), or a country's live links, narrowed by
    /// --unit and --email. A revoked link shows a page saying so; saved answers are kept.
    Revoke {
        /// The link itself (its URL or its last part).
        #[arg(long, conflicts_with_all = ["survey", "country", "unit", "email"])]
        link: Option<String>,
        #[arg(long, requires = "country")]
        survey: Option<String>,
        #[arg(long, requires = "survey")]
        country: Option<String>,
        #[arg(long)]
        unit: Option<String>,
        #[arg(long)]
        email: Option<String>,
    },
    /// List a country's links: holder, role, issued, first and last use, and whether each works.
    List {
        #[arg(long)]
        survey: String,
        #[arg(long)]
        country: String,
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
    #[error("the audit log does not verify: {0}")]
    AuditBroken(crate::audit::Break),
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
    /// A domain module's failure, its cause kept (main prints the chain).
    #[error(transparent)]
    Failed(crate::error::Cause),
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let top_level_accept = cli.accept_orphans;
    let default = Command::Serve {
        accept_orphans: false,
    };
    match cli.command.unwrap_or(default) {
        Command::Serve { accept_orphans } => serve(accept_orphans || top_level_accept).await,
        Command::Check { paths, database } => check(paths, database),
        Command::Migrate => {
            let settings = Settings::from_env()?;
            let pool = db::connect_with(&settings.database, 1, None)?;
            drop(pool);
            println!("{}: migrations applied", settings.database.backend());
            Ok(())
        }
        Command::Token {
            action:
                TokenAction::Issue {
                    survey,
                    country,
                    unit,
                    name,
                    email,
                    expires,
                    role,
                    sections,
                },
        } => issue_token(
            &survey,
            &country,
            unit,
            name,
            email,
            expires,
            Grant { role, sections },
        ),
        Command::Token {
            action:
                TokenAction::Revoke {
                    link,
                    survey,
                    country,
                    unit,
                    email,
                },
        } => revoke_tokens(link, survey, country, unit, email),
        Command::Token {
            action: TokenAction::List { survey, country },
        } => list_tokens(&survey, &country),
        Command::User {
            action:
                UserAction::Add {
                    email,
                    role,
                    surveys,
                    password_stdin,
                },
        } => add_user(&email, &role, &surveys, password_stdin),
        Command::Contacts { action } => contacts_command(action),
        Command::Invite { survey, countries } => send_round(&survey, Round::Invite(countries)),
        Command::Remind { survey } => send_round(&survey, Round::Remind),
        Command::Export {
            survey,
            format,
            out,
            drafts,
            accepted_only,
        } => export(&survey, &format, out, drafts, accepted_only),
        Command::DemoData {
            survey,
            countries,
            units,
            seed,
        } => demo_data(&survey, countries, units, seed),
        Command::Audit { action } => audit_command(action),
        Command::Questionnaire { action, export } => match (action, export) {
            (Some(action), _) => questionnaire_command(action),
            (None, Some(export)) => questionnaire_command(QuestionnaireAction::Export(export)),
            (None, None) => Err(CliError::Usage(
                "questionnaire: name a survey (to write its workbook) or `import`".into(),
            )),
        },
    }
}

/// The link a command-line questionnaire acts through: the one named, or the respondent's
/// newest live link that answers every section.
fn questionnaire_link(
    conn: &mut db::DbConn,
    survey: &str,
    country: &str,
    unit: &str,
    link: Option<&str>,
) -> Result<crate::respond::Respondent, CliError> {
    use crate::db::tokens::{self, LinkRole};
    let now = Utc::now().naive_utc();
    let token = match link {
        Some(link) => {
            let secret = link.trim_end_matches('/').rsplit('/').next().unwrap_or("");
            tokens::find_token(conn, &hash_token(secret))
                .map_err(DbError::from)?
                .filter(|t| t.survey_id == survey && t.country_iso3 == country && t.unit == unit)
                .ok_or_else(|| {
                    CliError::Usage("no such personal link for this survey and country".into())
                })?
        }
        None => tokens::country_tokens(conn, survey, country)
            .map_err(DbError::from)?
            .into_iter()
            .find(|t| t.unit == unit && t.role != LinkRole::Contributor && t.ended(now).is_none())
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "no live personal link for {country} in '{survey}': issue one first \
                     (coherence token issue)"
                ))
            })?,
    };
    if let Some(end) = token.ended(now) {
        return Err(CliError::Usage(format!("that personal link was {end}")));
    }
    Ok(crate::respond::Respondent { token })
}

fn questionnaire_command(action: QuestionnaireAction) -> Result<(), CliError> {
    use crate::questionnaire::import::{self, Expect, ImportOutcome};
    use crate::questionnaire::workbook::{self, Export};
    let settings = Settings::from_env()?;
    let storage = open_storage(&settings)?;
    let mut conn = storage.pool.get().map_err(DbError::from)?;
    match action {
        QuestionnaireAction::Export(QuestionnaireExport {
            survey,
            country,
            unit,
            lang,
            out,
        }) => {
            let survey = find_survey(&storage, &survey)?;
            let country = country.to_uppercase();
            let lang =
                lang.unwrap_or_else(|| survey.languages.first().cloned().unwrap_or_default());
            if !survey.languages.contains(&lang) {
                return Err(CliError::Usage(format!(
                    "'{}' is not offered in '{lang}' (languages: {})",
                    survey.id,
                    survey.languages.join(", ")
                )));
            }
            let who = questionnaire_link(&mut conn, &survey.id, &country, &unit, None)?;
            let now = Utc::now();
            let state = crate::respond::load(&mut conn, &survey, &who, now.naive_utc())
                .map_err(|e| CliError::Failed(e.into()))?;
            let bytes = workbook::write(&Export {
                survey: &survey,
                who: &who,
                state: &state,
                lang: &lang,
                countries: &storage.countries,
                now: now.naive_utc(),
            })
            .map_err(|e| CliError::Failed(e.into()))?;
            std::fs::write(&out, bytes)?;
            eprintln!("questionnaire of {country} written to {}", out.display());
            Ok(())
        }
        QuestionnaireAction::Import {
            survey,
            country,
            unit,
            link,
            file,
        } => {
            let survey = find_survey(&storage, &survey)?;
            let country = country.to_uppercase();
            let who = questionnaire_link(&mut conn, &survey.id, &country, &unit, link.as_deref())?;
            let data = std::fs::read(&file)
                .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
            let expect = Expect {
                survey: &survey,
                country: &country,
                unit: &unit,
            };
            let refused = |message: String| {
                CliError::Usage(format!("{}: {message}; nothing was saved", file.display()))
            };
            let book = import::read(&data, &expect).map_err(|f| refused(f.to_string()))?;
            let lang = if survey.languages.contains(&book.lang) {
                book.lang.clone()
            } else {
                "en".to_string()
            };
            let outcome = import::import(
                &mut conn,
                &survey,
                &storage.countries,
                &who,
                &book,
                &lang,
                Utc::now(),
            )
            .map_err(|e| refused(e.to_string()))?;
            match outcome {
                ImportOutcome::Saved {
                    sections,
                    questions,
                } => {
                    println!("{country}: {questions} answer(s) saved in {sections} section(s)");
                    Ok(())
                }
                ImportOutcome::Unchanged => {
                    println!("{country}: the file holds the saved answers; nothing changed");
                    Ok(())
                }
                ImportOutcome::Errors(errors) => {
                    for e in &errors {
                        eprintln!("{}: {}", e.place, e.message);
                    }
                    Err(refused(format!("{} cell(s) refused", errors.len())))
                }
                ImportOutcome::Conflicts(conflicts) => {
                    for c in &conflicts {
                        eprintln!(
                            "{}: {}: changed online to \"{}\"; the file says \"{}\"",
                            c.place, c.question, c.online, c.yours
                        );
                    }
                    Err(refused(format!(
                        "{} answer(s) changed online since the export",
                        conflicts.len()
                    )))
                }
                ImportOutcome::Foreign(f) => Err(refused(f.to_string())),
            }
        }
    }
}

fn audit_command(action: AuditAction) -> Result<(), CliError> {
    use crate::audit;
    let settings = Settings::from_env()?;
    // A maintenance command, not a request: its statements (the whole log read) have no limit.
    let pool = db::connect_with(&settings.database, 1, None)?;
    let mut conn = pool.get().map_err(DbError::from)?;
    match action {
        AuditAction::Verify { survey } => {
            let found = audit::verify(&mut conn, survey.as_deref()).map_err(DbError::from)?;
            for c in &found.chains {
                println!(
                    "{}: {} entries, head {}",
                    audit::chain_name(&c.chain),
                    c.entries,
                    c.head_hash
                );
            }
            if let Some(broken) = found.broken {
                return Err(CliError::AuditBroken(broken));
            }
            let entries: i64 = found.chains.iter().map(|c| c.entries).sum();
            println!(
                "audit log verified: {} chain(s), {entries} entries",
                found.chains.len()
            );
            Ok(())
        }
        AuditAction::Export { survey, out } => {
            let fail = |e: audit::ExportError| CliError::Failed(Box::new(e));
            match out {
                Some(path) => {
                    let file = std::fs::File::create(&path)?;
                    let mut w = std::io::BufWriter::new(file);
                    let n = audit::export(&mut conn, survey.as_deref(), &mut w).map_err(fail)?;
                    eprintln!("{n} audit entries written to {}", path.display());
                }
                None => {
                    let stdout = std::io::stdout();
                    let mut w = std::io::BufWriter::new(stdout.lock());
                    audit::export(&mut conn, survey.as_deref(), &mut w).map_err(fail)?;
                }
            }
            Ok(())
        }
    }
}

/// The survey with this id, or a one-line error naming the known ones.
fn find_survey(
    storage: &crate::startup::Storage,
    id: &str,
) -> Result<std::sync::Arc<crate::survey::Survey>, CliError> {
    storage.catalog.get(id).cloned().ok_or_else(|| {
        let known: Vec<String> = storage.catalog.iter().map(|s| s.id.clone()).collect();
        CliError::Usage(format!(
            "unknown survey '{id}' (known: {})",
            known.join(", ")
        ))
    })
}

fn demo_data(
    survey_id: &str,
    countries: usize,
    units: Option<usize>,
    seed: u64,
) -> Result<(), CliError> {
    let settings = Settings::from_env()?;
    let storage = open_storage(&settings)?;
    let survey = find_survey(&storage, survey_id)?;
    let (n, what) = match (survey.unit, units) {
        (RespondentUnit::Country, None) => (countries, "countries"),
        (RespondentUnit::Country, Some(_)) => {
            return Err(CliError::Usage(format!(
                "'{}' is answered once per country: use --countries, not --units",
                survey.id
            )))
        }
        (RespondentUnit::Organisation, units) => (units.unwrap_or(countries), "organisations"),
    };
    let mut conn = storage.pool.get().map_err(DbError::from)?;
    let fail = |e: crate::results::demo::DemoError| CliError::Usage(e.to_string());
    // A round that follows another: both rounds, linked.
    if let Some(previous) = survey.previous.as_ref().and_then(|p| p.definition.clone()) {
        let s = crate::results::demo::generate_rounds(
            &mut conn,
            &survey,
            &previous,
            &storage.countries,
            n,
            seed,
        )
        .map_err(fail)?;
        match &s.previous {
            Some((id, p)) => println!(
                "{id}: demo responses for {} {what} ({} submitted, {} drafts; {} accepted, {} of them \
                 submitted again after reopening), seed {seed}",
                p.submitted + p.drafts,
                p.submitted,
                p.drafts,
                p.accepted,
                p.resubmitted
            ),
            None => println!(
                "{}: already has submitted responses, left as they are",
                previous.id
            ),
        }
        let c = &s.current;
        println!(
            "{}: demo responses for {} {what} ({} submitted, {} drafts; {} started from the \
             previous round: {} carried answers confirmed, {} changed), seed {seed}",
            survey.id,
            c.submitted + c.drafts,
            c.submitted,
            c.drafts,
            c.prefilled,
            c.confirmed,
            c.changed
        );
        return Ok(());
    }
    let s = crate::results::demo::generate(&mut conn, &survey, &storage.countries, n, seed)
        .map_err(fail)?;
    println!(
        "{}: demo responses for {} {what} ({} submitted, {} drafts), seed {seed}",
        survey.id,
        s.submitted + s.drafts,
        s.submitted,
        s.drafts
    );
    Ok(())
}

fn export(
    survey_id: &str,
    format: &str,
    out: Option<PathBuf>,
    drafts: bool,
    accepted_only: bool,
) -> Result<(), CliError> {
    use crate::results::{aggregate::Filter, export as ex};
    if !["csv", "xlsx", "json", "zip"].contains(&format) {
        return Err(CliError::Usage(format!(
            "unknown format '{format}' (csv, xlsx, json or zip)"
        )));
    }
    if (format == "xlsx" || format == "zip") && out.is_none() {
        return Err(CliError::Usage(format!(
            "{format} is binary: give --out FILE.{format}"
        )));
    }
    let settings = Settings::from_env()?;
    let storage = open_storage(&settings)?;
    let survey = find_survey(&storage, survey_id)?;
    let mut conn = storage.pool.get().map_err(DbError::from)?;
    let filter = Filter {
        include_drafts: drafts,
        accepted_only,
        ..Default::default()
    }
    .within(&survey);
    let fail = |e: ex::ExportError| CliError::Usage(e.to_string());
    let rows = ex::load(&mut conn, &survey, &filter).map_err(fail)?;
    let now = Utc::now().naive_utc();
    ex::record_download(
        &mut conn,
        &survey,
        crate::audit::Actor::Cli,
        format,
        &filter,
        now,
    )
    .map_err(DbError::from)?;
    if let (Some(path), "zip") = (&out, format) {
        // The same streaming writer as the results page's download.
        let file = std::io::BufWriter::new(std::fs::File::create(path)?);
        let n = crate::results::bundle::write_zip(&mut conn, &survey, &rows, file).map_err(fail)?;
        eprintln!(
            "{} responses and {n} files written to {}",
            rows.len(),
            path.display()
        );
        return Ok(());
    }
    let bytes: Vec<u8> = match format {
        "xlsx" => ex::to_xlsx(&survey, &rows).map_err(fail)?,
        "json" => ex::to_json(&survey, &rows).map_err(fail)?.into_bytes(),
        _ => ex::to_csv(&survey, &rows).map_err(fail)?.into_bytes(),
    };
    match out {
        Some(path) => {
            std::fs::write(&path, bytes)?;
            if format == "csv" {
                let codebook = path.with_extension("codebook.csv");
                std::fs::write(&codebook, ex::codebook_csv(&survey).map_err(fail)?)?;
                eprintln!(
                    "{} responses written to {} (codebook: {})",
                    rows.len(),
                    path.display(),
                    codebook.display()
                );
            } else {
                eprintln!("{} responses written to {}", rows.len(), path.display());
            }
        }
        None => {
            use std::io::Write;
            std::io::stdout().write_all(&bytes)?;
        }
    }
    Ok(())
}

fn add_user(
    email: &str,
    role: &str,
    surveys: &[String],
    password_stdin: bool,
) -> Result<(), CliError> {
    let settings = Settings::from_env()?;
    let role = Role::parse(role)
        .ok_or_else(|| CliError::Usage(format!("unknown role '{role}' (admin or owner)")))?;
    let storage = open_storage(&settings)?;
    for s in surveys {
        if storage.catalog.get(s).is_none() {
            return Err(CliError::Usage(format!("unknown survey '{s}'")));
        }
    }
    let password = if password_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Some(line.trim_end_matches(['\n', '\r']).to_string())
    } else {
        None
    };
    let mut conn = storage.pool.get().map_err(DbError::from)?;
    let account = accounts::create_user(
        &mut conn,
        email,
        role,
        password.as_deref(),
        surveys,
        Utc::now().naive_utc(),
    )
    .map_err(|e| CliError::Usage(e.to_string()))?;
    println!(
        "{} account created for {}.",
        role.as_str(),
        account.user.email
    );
    if let Some(token) = account.setup_token {
        println!("Send this one-time link (valid 72 hours) to set the password:");
        println!("{}/admin/setup/{token}", settings.base_url);
    }
    Ok(())
}

fn contacts_command(action: ContactsAction) -> Result<(), CliError> {
    let settings = Settings::from_env()?;
    let storage = open_storage(&settings)?;
    let mut conn = storage.pool.get().map_err(DbError::from)?;
    match action {
        ContactsAction::Import { survey, file } => {
            let Some(asked) = storage.catalog.get(&survey) else {
                return Err(CliError::Usage(format!("unknown survey '{survey}'")));
            };
            let data = std::fs::read(&file)
                .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
            match contacts::parse_csv_for(&data, storage.countries.as_ref(), asked) {
                Err(errors) => {
                    for e in &errors {
                        eprintln!("{}: {e}", file.display());
                    }
                    Err(CliError::Usage(format!(
                        "{} problem(s) in {}; nothing was imported",
                        errors.len(),
                        file.display()
                    )))
                }
                Ok(rows) => {
                    let s = contacts::import(&mut conn, &survey, &rows, Utc::now().naive_utc())
                        .map_err(DbError::from)?;
                    println!(
                        "{}: {} added, {} updated, {} unchanged",
                        survey, s.added, s.updated, s.unchanged
                    );
                    Ok(())
                }
            }
        }
        ContactsAction::Export { survey, out } => {
            let list = contacts::list(&mut conn, &survey).map_err(DbError::from)?;
            let text = contacts::to_csv(&list).map_err(|e| CliError::Usage(e.to_string()))?;
            match out {
                Some(path) => std::fs::write(&path, text)?,
                None => print!("{text}"),
            }
            Ok(())
        }
    }
}

enum Round {
    Invite(Vec<String>),
    Remind,
}

fn send_round(survey_id: &str, round: Round) -> Result<(), CliError> {
    let settings = Settings::from_env()?;
    let mail_settings = settings.mail.clone().ok_or_else(|| {
        CliError::Usage(
            "COHERENCE_SMTP_URL is not set: set it (and COHERENCE_MAIL_FROM) to send email".into(),
        )
    })?;
    let storage = open_storage(&settings)?;
    let survey = find_survey(&storage, survey_id)?;
    let mailer = Mailer::new(&mail_settings).map_err(|e| CliError::Usage(e.to_string()))?;
    let emails = EmailTemplates::new().map_err(|e| CliError::Usage(e.to_string()))?;
    let help = mailer.from_address();
    let campaign = Campaign {
        survey: &survey,
        countries: &storage.countries,
        emails: &emails,
        base_url: &settings.base_url,
        help: &help,
    };
    let now = Utc::now().naive_utc();
    let queued = {
        let mut conn = storage.pool.get().map_err(DbError::from)?;
        match round {
            Round::Invite(countries) => {
                let countries: Vec<String> =
                    countries.iter().map(|c| c.trim().to_uppercase()).collect();
                for c in &countries {
                    if storage.countries.get(c).is_none() {
                        return Err(CliError::Usage(format!("unknown country code '{c}'")));
                    }
                }
                campaign.invite(&mut conn, &countries, now)
            }
            Round::Remind => campaign.remind(&mut conn, now),
        }
        .map_err(|e| CliError::Usage(e.to_string()))?
    };
    println!(
        "{} message(s) queued, {} contact(s) skipped",
        queued.queued, queued.skipped
    );
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut last_shown = 0;
    let report = mail::drain(&storage.pool, &mailer, "cli", &stop, |r| {
        let done = r.sent + r.retrying + r.failed;
        if done - last_shown >= 5 {
            println!(
                "... {} sent, {} to retry, {} failed",
                r.sent, r.retrying, r.failed
            );
            last_shown = done;
        }
    })
    .map_err(|e| CliError::Usage(e.to_string()))?;
    println!(
        "{} sent, {} waiting to be retried (the server sends them later), {} failed",
        report.sent, report.retrying, report.failed
    );
    Ok(())
}

async fn serve(accept_orphans: bool) -> Result<(), CliError> {
    let mut settings = Settings::from_env()?;
    settings.accept_orphans = accept_orphans;
    let backend = settings.database.backend();
    let db_shown = settings.database.display();
    let app = Application::build(settings)?;
    for report in &app.definition_reports {
        print!("{report}");
    }
    let base_url = app.base_url.clone();
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

fn check(paths: Vec<PathBuf>, database: bool) -> Result<(), CliError> {
    // The database comes from the usual configuration; so do the files unless given.
    let settings = if paths.is_empty() || database {
        Some(Settings::from_env()?)
    } else {
        None
    };
    let paths = match (paths.is_empty(), &settings) {
        (true, Some(s)) => vec![s.surveys.clone()],
        _ => paths,
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
        let round = s.previous.as_ref().map_or(String::new(), |p| {
            format!(
                "; follows {}: {} of its questions carry",
                p.survey,
                p.plan.questions.len()
            )
        });
        println!(
            "{}: ok ({} sections, {questions} questions, {conditions} conditions, {} themes, languages {}{round})",
            s.id,
            s.sections.len(),
            s.themes.len(),
            s.languages.join("/")
        );
    }
    match settings.filter(|_| database) {
        Some(settings) => check_database(&settings, &report.surveys),
        None => Ok(()),
    }
}

/// `check --database`: what starting on these files would do to the stored answers (nothing
/// is changed; exit 1 where start would refuse).
fn check_database(settings: &Settings, surveys: &[crate::survey::Survey]) -> Result<(), CliError> {
    let pool = db::connect_with(&settings.database, 1, None)?;
    let mut conn = pool.get().map_err(DbError::from)?;
    let reviews = crate::startup::review_definitions(&mut conn, surveys)?;
    if reviews
        .iter()
        .any(crate::startup::DefinitionReview::refuses)
    {
        return Err(CliError::Startup(StartupError::Orphans(
            crate::startup::refusal(&reviews),
        )));
    }
    for r in &reviews {
        print!("{}", r.report);
    }
    if reviews.is_empty() {
        println!("database: no survey file changed since it was last loaded");
    }
    Ok(())
}

/// What a new link may do, as typed: `--role` and its `--section`s.
struct Grant {
    role: String,
    sections: Vec<String>,
}

fn issue_token(
    survey: &str,
    country: &str,
    unit: Option<String>,
    name: Option<String>,
    email: Option<String>,
    expires: Option<String>,
    grant: Grant,
) -> Result<(), CliError> {
    use crate::db::tokens::LinkRole;
    let Some(role) = LinkRole::parse(grant.role.trim()) else {
        return Err(CliError::Usage(format!(
            "--role '{}' must be coordinator, contributor or approver",
            grant.role
        )));
    };
    let settings = Settings::from_env()?;
    let expires_at = expires
        .as_deref()
        .map(|d| parse_expiry(d, Utc::now().naive_utc()))
        .transpose()?;
    let storage = open_storage(&settings)?;
    let country = country.trim().to_ascii_uppercase();
    let s = find_survey(&storage, survey)?;
    let Some(c) = storage.countries.get(&country) else {
        return Err(CliError::Usage(format!(
            "unknown country code '{country}': use an ISO 3166-1 alpha-3 code such as SWE"
        )));
    };
    if !s.population.contains(&country) {
        return Err(CliError::Usage(s.population.refusal(&s.id, &country)));
    }
    let unit = unit.map(|u| u.trim().to_string()).unwrap_or_default();
    // Stored lower-case, as contacts' are, so `token revoke --email` finds it however typed.
    let email = email.map(|e| e.trim().to_lowercase());
    let holder = crate::review::NewHolder {
        name: name.as_deref().unwrap_or_default(),
        email: email.as_deref().unwrap_or_default(),
        unit: &unit,
        expires_at,
        role,
        sections: &grant.sections,
    };
    if let Err(problem) = holder.check(&s) {
        use crate::review::HolderProblem as P;
        return Err(CliError::Usage(match problem {
            P::UnitNotAsked => format!("'{}' is answered once per country: leave out --unit", s.id),
            P::UnitMissing => format!(
                "'{}' is answered per organisation: name it with --unit \"Ministry of ...\"",
                s.id
            ),
            P::TooLong => format!(
                "--name and --unit take at most {} characters",
                crate::review::MAX_HOLDER_CHARS
            ),
            P::Unprintable => "--name and --unit take printable text on one line".into(),
            P::BadEmail => format!("'{}' is not an email address", holder.email),
            P::NoSection => {
                "a contributor answers only some sections: name each with --section ID".into()
            }
            P::SectionsNotAsked => "--section is only for --role contributor: \
                coordinators and approvers answer every section"
                .into(),
            P::UnknownSection => format!(
                "'{}' has no section '{}' (its sections: {})",
                s.id,
                holder.unknown_section(&s).unwrap_or_default(),
                s.sections
                    .iter()
                    .map(|x| x.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }));
    }
    let mut conn = storage.pool.get().map_err(DbError::from)?;
    let by = crate::audit::Actor::Cli;
    let token =
        crate::review::issue_link(&mut conn, &s, &country, &holder, by, Utc::now().naive_utc())
            .map_err(DbError::from)?;
    let whom = crate::survey::respondent_name(&unit, &format!("{} ({country})", c.name_en));
    println!(
        "Personal link for {whom} to '{}'{}. Keep it private: it gives access to the response.",
        s.title.get("en"),
        name.map(|n| format!(", issued to {n}")).unwrap_or_default()
    );
    match role {
        LinkRole::Contributor => println!(
            "A contributor link: it answers only {} and cannot submit.",
            grant.sections.join(", ")
        ),
        LinkRole::Coordinator | LinkRole::Approver => println!("A {role} link."),
    }
    if let Some(e) = expires_at {
        println!("It works until {} UTC.", e.format("%Y-%m-%d %H:%M"));
    }
    println!("{}/r/{token}", settings.base_url);
    Ok(())
}

/// The end of the given day (UTC), which must be from today to two years ahead.
fn parse_expiry(text: &str, now: chrono::NaiveDateTime) -> Result<chrono::NaiveDateTime, CliError> {
    let bad = || {
        CliError::Usage(format!(
            "--expires '{text}' must be a date YYYY-MM-DD from today to two years ahead"
        ))
    };
    let day = chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| bad())?;
    let today = now.date();
    if day < today || day > today + chrono::Duration::days(731) {
        return Err(bad());
    }
    day.and_hms_opt(23, 59, 59).ok_or_else(bad)
}

fn revoke_tokens(
    link: Option<String>,
    survey: Option<String>,
    country: Option<String>,
    unit: Option<String>,
    email: Option<String>,
) -> Result<(), CliError> {
    let settings = Settings::from_env()?;
    let storage = open_storage(&settings)?;
    let mut conn = storage.pool.get().map_err(DbError::from)?;
    let now = Utc::now().naive_utc();
    let revoked = match (link, survey, country) {
        (Some(link), _, _) => {
            let token = link
                .trim()
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or("");
            let row = if crate::access::looks_like_token(token) {
                queries::find_token(&mut conn, &hash_token(token)).map_err(DbError::from)?
            } else {
                None
            };
            let Some(row) = row else {
                return Err(CliError::Usage("no such personal link".into()));
            };
            revoke_recorded(
                &mut conn,
                &queries::RevokeLinks {
                    survey_id: &row.survey_id,
                    country_iso3: &row.country_iso3,
                    unit: None,
                    holder_email: None,
                    id: Some(&row.id),
                },
                now,
            )?
        }
        (None, Some(survey), Some(country)) => {
            let s = find_survey(&storage, &survey)?;
            let country = country.trim().to_ascii_uppercase();
            if storage.countries.get(&country).is_none() {
                return Err(CliError::Usage(format!("unknown country code '{country}'")));
            }
            let unit = unit.map(|u| u.trim().to_string());
            let email = email.map(|e| e.trim().to_lowercase());
            revoke_recorded(
                &mut conn,
                &queries::RevokeLinks {
                    survey_id: &s.id,
                    country_iso3: &country,
                    unit: unit.as_deref(),
                    holder_email: email.as_deref(),
                    id: None,
                },
                now,
            )?
        }
        _ => {
            return Err(CliError::Usage(
                "name the link with --link, or the links with --survey and --country".into(),
            ))
        }
    };
    println!("{revoked} link(s) revoked");
    Ok(())
}

/// Revoke links and record it in the audit log, in one transaction.
fn revoke_recorded(
    conn: &mut db::DbConn,
    links: &queries::RevokeLinks,
    now: chrono::NaiveDateTime,
) -> Result<usize, CliError> {
    use crate::audit::{self, Actor, AuditKind, Event};
    let revoked = db::transaction(conn, |conn| {
        let n = queries::revoke_tokens(conn, links, REVOKED_BY_CLI, now)?;
        if n > 0 {
            let detail = serde_json::json!({
                "links": n,
                "link": links.id,
                "unit": links.unit,
                "email": links.holder_email,
            });
            let event = Event {
                survey_id: links.survey_id,
                country_iso3: links.country_iso3,
                actor: Actor::Cli,
                kind: AuditKind::LinkRevoked,
                detail,
            };
            audit::record(conn, &event, now)?;
        }
        Ok::<_, db::QueryError>(n)
    });
    Ok(revoked.map_err(DbError::from)?)
}

/// `revoked_by` of links revoked with `coherence token revoke`.
const REVOKED_BY_CLI: &str = "command line";

fn list_tokens(survey: &str, country: &str) -> Result<(), CliError> {
    let settings = Settings::from_env()?;
    let storage = open_storage(&settings)?;
    let s = find_survey(&storage, survey)?;
    let country = country.trim().to_ascii_uppercase();
    let mut conn = storage.pool.get().map_err(DbError::from)?;
    let rows = queries::country_tokens(&mut conn, &s.id, &country).map_err(DbError::from)?;
    let now = Utc::now().naive_utc();
    let when = |t: Option<chrono::NaiveDateTime>| {
        t.map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_else(|| "-".into())
    };
    println!("holder\tunit\trole\tissued\tfirst used\tlast used\tstatus");
    for r in &rows {
        let status = match r.ended(now) {
            None => match r.expires_at {
                Some(e) => format!("works until {}", e.format("%Y-%m-%d")),
                None => "works".into(),
            },
            Some(_) if r.revoked_at.is_some() => format!(
                "revoked {} ({})",
                when(r.revoked_at),
                r.revoked_by.as_deref().unwrap_or("")
            ),
            Some(_) => format!("expired {}", when(r.expires_at)),
        };
        let holder = match (&r.holder_name, &r.holder_email) {
            (Some(n), Some(e)) => format!("{n} <{e}>"),
            (Some(n), None) => n.clone(),
            (None, Some(e)) => e.clone(),
            (None, None) => "-".into(),
        };
        let role = match r.role {
            crate::db::tokens::LinkRole::Contributor => format!("contributor ({})", r.sections),
            other => other.to_string(),
        };
        println!(
            "{holder}\t{}\t{role}\t{}\t{}\t{}\t{status}",
            if r.unit.is_empty() { "-" } else { &r.unit },
            when(Some(r.created_at)),
            when(r.first_used_at),
            when(r.last_used_at),
        );
    }
    println!("{} link(s)", rows.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_orphans_is_a_flag_of_serve_and_of_the_default_command() {
        let cli = Cli::try_parse_from(["coherence", "serve", "--accept-orphans"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Serve {
                accept_orphans: true
            })
        ));
        let cli = Cli::try_parse_from(["coherence", "--accept-orphans"]).unwrap();
        assert!(cli.accept_orphans && cli.command.is_none());
        let cli = Cli::try_parse_from(["coherence", "check", "--database"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Check { database: true, .. })
        ));
        assert!(Cli::try_parse_from(["coherence", "migrate", "--accept-orphans"]).is_err());
    }
}

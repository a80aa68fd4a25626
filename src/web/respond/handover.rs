//! Handing sections to colleagues, from the respondent's side: the coordinator's colleagues
//! page (hand sections to a colleague; the link emailed, or shown once when email is off),
//! revoking a colleague's link, and marking a section ready.
//!
//! Only a coordinator's link reaches the colleagues page and revokes; every other link gets
//! the same 404 as an unknown page.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde::Serialize;

use super::link::{Link, Respondent};
use super::views;
use super::{CsrfForm, PostedForm};
use crate::db::sections::ReadyOutcome;
use crate::db::tokens::{self, LinkRole};
use crate::db::DbConn;
use crate::error::AppError;
use crate::handover::{self, AssignProblem, Colleague, Mailing, MAX_CONTRIBUTORS};
use crate::respond::{self, ResponseState};
use crate::review::{HolderProblem, MAX_EMAIL_BYTES, MAX_HOLDER_CHARS};
use crate::web::language::INTERFACE_LANGUAGES;
use crate::web::render::translate;
use crate::web::MessagePage;

/// The overview's team: the live contributor links of the response (none read for a
/// contributor, who sees only its own sections).
pub fn team(
    conn: &mut DbConn,
    who: &respond::Respondent,
    _: &ResponseState,
) -> Result<views::Team, AppError> {
    let t = &who.token;
    let contributors = if t.role == LinkRole::Contributor {
        Vec::new()
    } else {
        let now = Utc::now().naive_utc();
        tokens::live_contributors(conn, &t.survey_id, &t.country_iso3, &t.unit, now)?
    };
    Ok(views::Team { contributors })
}

/// The colleagues page: the form, and after a hand-over, what became of it.
#[derive(Serialize)]
struct ColleaguesView {
    base: String,
    csrf: String,
    country: String,
    /// The page's language, sent back with the form: the email's language.
    lang: &'static str,
    error: Option<String>,
    /// Whom the last hand-over was emailed to.
    emailed_to: Option<String>,
    /// The colleague's link when email is off: shown this once, never stored.
    new_link: Option<String>,
    name: String,
    email: String,
    sections: Vec<SectionChoice>,
    max_name: usize,
    max_email: usize,
    /// Email is configured: the link goes by email (else it is shown here once).
    email_on: bool,
}

#[derive(Serialize)]
struct SectionChoice {
    id: String,
    title: String,
    checked: bool,
}

/// The posted form, as typed.
#[derive(Clone, Default)]
struct ColleagueForm {
    name: String,
    email: String,
    sections: Vec<String>,
    lang: String,
}

impl ColleagueForm {
    fn from_pairs(pairs: Vec<(String, String)>) -> ColleagueForm {
        let mut form = ColleagueForm::default();
        for (key, value) in pairs {
            match key.as_str() {
                "name" => form.name = value,
                "email" => form.email = value,
                // Never more than the survey has: unknown ids are refused anyway.
                "section" if form.sections.len() < 1000 => form.sections.push(value),
                "lang" => form.lang = value,
                _ => {}
            }
        }
        form
    }
}

/// What the page shows besides the form.
#[derive(Default)]
struct Outcome {
    error: Option<String>,
    emailed_to: Option<String>,
    new_link: Option<String>,
}

fn colleagues_page(
    link: &Link,
    form: &ColleagueForm,
    outcome: Outcome,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let token = link.form_token();
    let view = ColleaguesView {
        base: link.base(),
        csrf: token.token.clone(),
        country: link.respondent_name(),
        lang: link.lang,
        error: outcome.error,
        emailed_to: outcome.emailed_to,
        new_link: outcome.new_link,
        name: form.name.clone(),
        email: form.email.clone(),
        sections: (link.survey.sections.iter())
            .map(|s| SectionChoice {
                id: s.id.clone(),
                title: s.title.get(link.lang).to_string(),
                checked: form.sections.contains(&s.id),
            })
            .collect(),
        max_name: MAX_HOLDER_CHARS,
        max_email: MAX_EMAIL_BYTES,
        email_on: link.state.mailer.is_some(),
    };
    let layout = link.layout(translate(link.lang, "handover-page-title", &[]), true);
    link.render("respond/colleagues", &layout, &view, status, Some(&token))
}

fn only_coordinators(link: &Link) -> Result<(), AppError> {
    match link.who.token.role {
        LinkRole::Coordinator => Ok(()),
        LinkRole::Contributor | LinkRole::Approver => Err(AppError::NotFound),
    }
}

pub async fn colleagues(link: Respondent) -> Result<HttpResponse, AppError> {
    let page = link.open(super::link::Visit::Quiet).await?;
    only_coordinators(&page.link)?;
    let form = ColleagueForm::default();
    colleagues_page(&page.link, &form, Outcome::default(), StatusCode::OK)
}

fn problem_text(lang: &str, problem: AssignProblem) -> String {
    let t = |id: &str, args: &[(&str, String)]| translate(lang, id, args);
    match problem {
        AssignProblem::NameMissing => t("handover-name-missing", &[]),
        AssignProblem::EmailMissing => t("handover-email-missing", &[]),
        AssignProblem::TooMany => t(
            "handover-too-many",
            &[("max", MAX_CONTRIBUTORS.to_string())],
        ),
        AssignProblem::TooManyToday => t(
            "handover-too-many-today",
            &[("max", crate::access::HANDOVERS_PER_LINK.max.to_string())],
        ),
        AssignProblem::Holder(HolderProblem::BadEmail) => t("handover-bad-email", &[]),
        AssignProblem::Holder(HolderProblem::TooLong) => {
            t("error-too-long", &[("max", MAX_HOLDER_CHARS.to_string())])
        }
        AssignProblem::Holder(HolderProblem::Unprintable) => t("handover-unprintable", &[]),
        AssignProblem::Holder(HolderProblem::NoSection) => t("handover-no-section", &[]),
        // The form offers only the survey's sections, and the link's own unit.
        AssignProblem::NotCoordinator
        | AssignProblem::Holder(
            HolderProblem::UnknownSection
            | HolderProblem::SectionsNotAsked
            | HolderProblem::UnitNotAsked
            | HolderProblem::UnitMissing,
        ) => t("handover-no-section", &[]),
    }
}

pub async fn assign(
    link: Respondent,
    CsrfForm(pairs): PostedForm,
) -> Result<HttpResponse, AppError> {
    let form = ColleagueForm::from_pairs(pairs);
    let posted = form.clone();
    let (link, assigned) = link
        .write(move |conn, app, who, survey| {
            if who.token.role != LinkRole::Coordinator {
                return Err(AppError::NotFound);
            }
            let lang = (INTERFACE_LANGUAGES.iter())
                .map(|(code, _)| *code)
                .find(|code| *code == posted.lang)
                .unwrap_or("en");
            let sender = (who.token.holder_name.clone())
                .or_else(|| who.token.holder_email.clone())
                .unwrap_or_else(|| translate(lang, "handover-sender-unnamed", &[]));
            let help = app.mailer.as_ref().map(|m| m.from_address());
            let mailing = help.as_deref().map(|help| Mailing {
                emails: &app.emails,
                countries: &app.countries,
                base_url: &app.settings.base_url,
                help,
                lang,
                sender: &sender,
            });
            let colleague = Colleague {
                name: &posted.name,
                email: &posted.email,
                sections: &posted.sections,
            };
            let now = Utc::now().naive_utc();
            Ok(handover::assign(
                conn,
                survey,
                &who.token,
                &colleague,
                mailing.as_ref(),
                now,
            )?)
        })
        .await?;
    match assigned {
        Ok(done) => {
            let outcome = if done.emailed {
                Outcome {
                    emailed_to: Some(form.email.trim().to_lowercase()),
                    ..Outcome::default()
                }
            } else {
                let base = &link.state.settings.base_url;
                Outcome {
                    new_link: Some(format!("{base}/r/{}", done.link)),
                    ..Outcome::default()
                }
            };
            colleagues_page(&link, &ColleagueForm::default(), outcome, StatusCode::OK)
        }
        Err(problem) => {
            let outcome = Outcome {
                error: Some(problem_text(link.lang, problem)),
                ..Outcome::default()
            };
            colleagues_page(&link, &form, outcome, StatusCode::UNPROCESSABLE_ENTITY)
        }
    }
}

/// Revoke a colleague's contributor link of the coordinator's own response (another
/// country's, organisation's or role's link id: 404).
pub async fn revoke(
    link: Respondent,
    path: web::Path<(String, String)>,
    _: PostedForm,
) -> Result<HttpResponse, AppError> {
    let link_id = path.into_inner().1;
    let (link, revoked) = link
        .write(move |conn, _, who, _| {
            let now = Utc::now().naive_utc();
            Ok(handover::revoke_contributor(
                conn, &who.token, &link_id, now,
            )?)
        })
        .await?;
    match revoked {
        Some(_) => Ok(link.redirect("#colleagues")),
        None => Err(AppError::NotFound),
    }
}

/// Mark a section ready (a contributor its own sections, the coordinator any).
pub async fn ready(
    link: Respondent,
    path: web::Path<(String, String)>,
    _: PostedForm,
) -> Result<HttpResponse, AppError> {
    let section_id = path.into_inner().1;
    let (link, outcome) = link
        .write(move |conn, _, who, survey| {
            let now = Utc::now();
            let rs = respond::load(conn, survey, who, now.naive_utc())?;
            Ok(handover::mark_ready(
                conn,
                survey,
                &who.token,
                &rs,
                &section_id,
                now,
            ))
        })
        .await?;
    match outcome {
        Ok(ReadyOutcome::Marked | ReadyOutcome::Already) => Ok(link.redirect("#handover")),
        Ok(ReadyOutcome::NotStarted) => {
            let view = MessagePage {
                title: translate(link.lang, "handover-not-started-title", &[]),
                body: translate(link.lang, "handover-not-started-body", &[]),
                back: Some(link.base()),
            };
            let layout = link.layout(view.title.clone(), false);
            link.render("message", &layout, &view, StatusCode::CONFLICT, None)
        }
        Err(e) => super::refusal(&link, e),
    }
}

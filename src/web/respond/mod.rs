//! The focal point's pages: overview, one page per section, review and submit, print.
//!
//! Each handler reads: the link ([`Respondent`]), the domain call, the typed view, the page.

mod cycle;
mod field;
mod files;
mod handover;
mod link;
mod queries;
mod questionnaire;
mod views;

pub use cycle::{
    recall, receipt, review, send_back, send_for_sign_off, sign_off, submit, version_content,
};

use std::collections::{HashMap, HashSet};

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::Utc;

use super::extract::CsrfForm;
use crate::error::AppError;
use crate::respond::{
    self, confirmed_in_form, group_form, ResponseState, SaveOutcome, SaveRequest,
};
use crate::survey::answer::RawAnswer;
use crate::web::render::translate;
use link::Respondent;
use link::{Link, Page, Turn, Visit};
use views::{OverviewView, PrintView, SectionExtras, SectionView};

/// A section form or the submit button, as posted: every (name, value) pair in order.
type PostedForm = CsrfForm<Vec<(String, String)>>;

pub use files::admin_file;
pub use files::download as file_download;
pub use handover::revoke as colleague_revoke;
pub use handover::{assign as colleagues_assign, colleagues, ready as section_ready};
pub use queries::{query_page, query_reply};
pub use questionnaire::{
    after_upload as questionnaire_after, download as questionnaire_download,
    upload as questionnaire_upload,
};

pub async fn overview(link: Respondent) -> Result<HttpResponse, AppError> {
    let (page, ((team, notices), threads)) =
        queries::open_with_queries(link, Visit::Record, |conn, who, rs| {
            let notices = crate::db::definitions::notices(conn, &rs.response.id)?;
            Ok((handover::team(conn, who, rs)?, notices))
        })
        .await?;
    let form = page.link.form_token();
    let view = OverviewView::new(&page, &team, form.token.clone())
        .with_queries(queries::notes(&page.link, &threads))
        .with_definition_notices(&page, &notices);
    let title = page.link.survey.title.get(page.link.lang).to_string();
    let layout = page.link.layout(title, true);
    page.link.render(
        "respond/overview",
        &layout,
        &view,
        StatusCode::OK,
        Some(&form),
    )
}

#[derive(serde::Deserialize)]
pub struct SectionQuery {
    saved: Option<u8>,
    more: Option<u8>,
}

pub async fn section_form(
    link: Respondent,
    path: web::Path<(String, String)>,
    query: web::Query<SectionQuery>,
) -> Result<HttpResponse, AppError> {
    let (page, ((), threads)) =
        queries::open_with_queries(link, Visit::Quiet, |_, _, _| Ok(())).await?;
    let extras = SectionExtras {
        saved: query.saved == Some(1),
        revealed: query.more == Some(1),
        queries: queries::notes(&page.link, &threads),
        ..SectionExtras::default()
    };
    section_page(&page, &path.1, extras, StatusCode::OK)
}

fn section_page(
    page: &Page,
    section_id: &str,
    extras: SectionExtras,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let form = page.link.form_token();
    let view = SectionView::new(page, section_id, extras, form.token.clone())?
        .ok_or(AppError::NotFound)?;
    let layout = page.link.layout(view.title.to_string(), true);
    page.link
        .render("respond/section", &layout, &view, status, Some(&form))
}

/// A section form as posted: url-encoded, or multipart where the section has a file question.
pub async fn section_save(
    link: Respondent,
    path: web::Path<(String, String)>,
    req: actix_web::HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    let section_id = path.into_inner().1;
    let post = files::read_section_post(&link, &req, &section_id, payload).await?;
    let mut form = SectionForm::from_pairs(post.pairs);
    form.files = post.files;
    let (link, saved) = save(link, section_id.clone(), form).await?;
    let (outcome, rs, posted) = match saved {
        Ok(AfterSave::Saved { revealed }) => {
            let more = if revealed { "&more=1" } else { "" };
            return Ok(link.redirect(&format!("/s/{section_id}?saved=1{more}")));
        }
        Ok(AfterSave::ShowAgain {
            outcome,
            rs,
            posted,
        }) => (outcome, *rs, posted),
        // The response stopped being editable (sent for sign-off, submitted, closed): the form
        // again, read-only with the reason, holding what was typed so it can be copied.
        Ok(AfterSave::Refused { rs, posted }) => {
            let extras = SectionExtras {
                posted: Some(posted),
                refused: true,
                ..SectionExtras::default()
            };
            let page = Page { link, rs: *rs };
            return section_page(&page, &section_id, extras, StatusCode::CONFLICT);
        }
        Err(e) => return refusal(&link, e),
    };
    let (extras, status) = SectionExtras::shown_again(&link, outcome, posted);
    let page = Page { link, rs };
    section_page(&page, &section_id, extras, status)
}

/// A posted section form: the section's version when the form was opened, and the answers
/// grouped by question.
struct SectionForm {
    base_version: i32,
    raw: HashMap<String, RawAnswer>,
    files: HashMap<String, crate::files::FilePost>,
    /// The carried questions whose "still accurate" box is ticked.
    confirmed: HashSet<String>,
    /// The section's "all unchanged answers are still accurate" box.
    confirm_all: bool,
}

impl SectionForm {
    fn from_pairs(pairs: Vec<(String, String)>) -> SectionForm {
        let base_version = (pairs.iter().find(|(k, _)| k == "_version"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let confirmed = confirmed_in_form(&pairs);
        let confirm_all = pairs
            .iter()
            .any(|(k, v)| k == respond::CONFIRM_SECTION_FIELD && v == "1");
        SectionForm {
            base_version,
            raw: group_form(pairs),
            files: HashMap::new(),
            confirmed,
            confirm_all,
        }
    }
}

/// What a save leads to: back to the section with "saved", or the form shown again (values
/// refused, a conflict) with the response as stored now.
enum AfterSave {
    Saved {
        revealed: bool,
    },
    ShowAgain {
        outcome: SaveOutcome,
        rs: Box<ResponseState>,
        posted: HashMap<String, RawAnswer>,
    },
    /// The response may not change now: nothing was stored.
    Refused {
        rs: Box<ResponseState>,
        posted: HashMap<String, RawAnswer>,
    },
}

/// Save a section and, when the form must be shown again, load the response in the same
/// blocking task; a clean save loads nothing. A save without files is brief enough to take
/// SQLite's write turn for all of it (see [`Respondent::write_opened`]); one with files
/// checks them first.
async fn save(
    link: Respondent,
    section_id: String,
    form: SectionForm,
) -> Result<(Link, Result<AfterSave, respond::RespondError>), AppError> {
    let turn = match form.files.is_empty() {
        true => Turn::Whole,
        false => Turn::ForEachWrite,
    };
    link.write_opened(turn, move |conn, app, who, survey, opened| {
        let stored = opened.load(conn, survey, who, Visit::Quiet)?;
        let save = SaveRequest {
            section_id: &section_id,
            base_version: form.base_version,
            raw: &form.raw,
            files: &form.files,
            confirmed: Some(&form.confirmed),
            confirm_all: form.confirm_all,
        };
        let now = Utc::now();
        let outcome = respond::save_section(
            conn,
            survey,
            app.countries.as_ref(),
            who,
            &save,
            Some(stored),
            now,
        );
        let posted = form.raw;
        use respond::RespondError as E;
        if let Err(E::Closed(_) | E::NotOpenYet | E::AlreadySubmitted | E::State(_)) = outcome {
            let rs = respond::load(conn, survey, who, now.naive_utc())?;
            return Ok(Ok(AfterSave::Refused {
                rs: Box::new(rs),
                posted,
            }));
        }
        Ok(outcome.and_then(|outcome| match outcome {
            SaveOutcome::Saved { errors, revealed } if errors.is_empty() => Ok(AfterSave::Saved {
                revealed: !revealed.is_empty(),
            }),
            outcome => {
                let rs = respond::load(conn, survey, who, now.naive_utc())?;
                Ok(AfterSave::ShowAgain {
                    outcome,
                    rs: Box::new(rs),
                    posted,
                })
            }
        }))
    })
    .await
}

/// A clear page for a response that cannot change (closed survey, already submitted).
fn refusal(link: &Link, e: respond::RespondError) -> Result<HttpResponse, AppError> {
    let view = views::refusal(link, e)?;
    let layout = link.layout(view.title.clone(), false);
    link.render("message", &layout, &view, StatusCode::CONFLICT, None)
}

#[derive(serde::Deserialize)]
pub struct PrintQuery {
    answers: Option<String>,
}

/// The whole questionnaire on one printable page: blank, or with this country's answers
/// (`?answers=1`).
pub async fn print(
    link: Respondent,
    query: web::Query<PrintQuery>,
) -> Result<HttpResponse, AppError> {
    let page = link.open(Visit::Quiet).await?;
    let view = PrintView::new(&page, query.answers.as_deref() == Some("1"));
    let layout = page
        .link
        .layout(translate(page.link.lang, "print-title", &[]), true);
    page.link
        .render("respond/print", &layout, &view, StatusCode::OK, None)
}

//! The questionnaire as a spreadsheet: download it (`questionnaire.xlsx`) and upload it back
//! filled (a multipart form on the overview), see [`crate::questionnaire`].

use actix_multipart::Multipart;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Serialize;

use super::link::{Respondent, Visit};
use crate::error::AppError;
use crate::questionnaire::import::{self, CellError, Expect, ImportOutcome, SheetConflict};
use crate::questionnaire::workbook::{self, Export};
use crate::web::extract;
use crate::web::render::translate;
use crate::web::AppState;

const XLSX_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

pub async fn download(link: Respondent) -> Result<HttpResponse, AppError> {
    let page = link.open(Visit::Quiet).await?;
    let link = &page.link;
    let export = Export {
        survey: &link.survey,
        who: &link.who,
        state: &page.rs,
        lang: link.lang,
        countries: &link.state.countries,
        now: Utc::now().naive_utc(),
    };
    let bytes = workbook::write(&export).map_err(AppError::internal)?;
    let t = &link.who.token;
    let who = if t.unit.is_empty() {
        t.country_iso3.clone()
    } else {
        format!("{}-{}", t.country_iso3, t.unit)
    };
    let name: String = format!("{}-{who}-{}.xlsx", link.survey.id, link.lang)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok(HttpResponse::Ok()
        .content_type(XLSX_TYPE)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(bytes))
}

#[derive(Serialize)]
struct UploadView {
    title: String,
    message: String,
    ok: bool,
    errors: Vec<CellError>,
    conflicts: Vec<SheetConflict>,
    base: String,
}

pub async fn upload(
    state: web::Data<AppState>,
    req: HttpRequest,
    link: Respondent,
    payload: Multipart,
) -> Result<HttpResponse, AppError> {
    // As a section post with files: the link is known to be live before its body is read,
    // and only a few uploads are held in memory at once.
    link.survey().await?;
    let turn = state.uploads.acquire().await;
    let file = extract::read_file_form(&req, payload, import::MAX_UPLOAD_BYTES).await?;
    drop(turn);
    let requested = link.requested_lang();
    let (link, outcome) = link
        .write(move |conn, app, who, survey| {
            if file.is_empty() {
                return Ok(Ok(None));
            }
            let lang = if survey.languages.iter().any(|l| l == requested) {
                requested
            } else {
                "en"
            };
            let expect = Expect {
                survey,
                country: &who.token.country_iso3,
                unit: &who.token.unit,
            };
            let book = match import::read(&file, &expect) {
                Ok(book) => book,
                Err(f) => return Ok(Ok(Some(ImportOutcome::Foreign(f)))),
            };
            let now = Utc::now();
            Ok(import::import(conn, survey, &app.countries, who, &book, lang, now).map(Some))
        })
        .await?;
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => return super::refusal(&link, e),
    };
    let lang = link.lang;
    let mut view = UploadView {
        title: translate(lang, "sheet-result-title", &[]),
        message: String::new(),
        ok: false,
        errors: Vec::new(),
        conflicts: Vec::new(),
        base: link.base(),
    };
    let status = match outcome {
        None => {
            view.message = translate(lang, "sheet-missing-file", &[]);
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Some(ImportOutcome::Saved {
            sections,
            questions,
        }) => {
            view.ok = true;
            let args = [
                ("sections", sections.to_string()),
                ("questions", questions.to_string()),
            ];
            view.message = translate(lang, "sheet-result-saved", &args);
            StatusCode::OK
        }
        Some(ImportOutcome::Unchanged) => {
            view.ok = true;
            view.message = translate(lang, "sheet-result-unchanged", &[]);
            StatusCode::OK
        }
        Some(ImportOutcome::Errors(errors)) => {
            view.message = translate(lang, "sheet-result-errors", &[]);
            view.errors = errors;
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Some(ImportOutcome::Conflicts(conflicts)) => {
            view.message = translate(lang, "sheet-result-conflicts", &[]);
            view.conflicts = conflicts;
            StatusCode::CONFLICT
        }
        Some(ImportOutcome::Foreign(f)) => {
            view.message = translate(lang, f.message_id(), &[]);
            StatusCode::UNPROCESSABLE_ENTITY
        }
    };
    let layout = link.layout(view.title.clone(), true);
    link.render("respond/questionnaire", &layout, &view, status, None)
}

/// The upload's result page links to itself in other languages: those links lead back to the
/// overview in that language.
pub async fn after_upload(req: HttpRequest) -> HttpResponse {
    let token = req.match_info().get("token").unwrap_or_default();
    let query = req.query_string();
    let to = if query.is_empty() {
        format!("/r/{token}")
    } else {
        format!("/r/{token}?{query}")
    };
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

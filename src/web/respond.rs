//! The focal point's pages: overview, one page per section, review and submit.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde_json::{json, Value as Json};

use super::render::translate;
use super::CountryOptions;
use super::{csrf, language, AppState};
use crate::access::{address_subject, hash_token, looks_like_token, UNKNOWN_LINKS_PER_ADDRESS};
use crate::db::attempts;
use crate::db::{queries, DbConn};
use crate::error::AppError;
use crate::i18n::format_datetime;
use crate::reference::Countries;
use crate::respond::{
    self, group_form, Respondent, ResponseState, SaveOutcome, SaveRequest, SubmitOutcome,
};
use crate::survey::answer::{missing_answers, section_progress, FieldError, RawAnswer};
use crate::survey::display::display_value;
use crate::survey::{Question, QuestionKind, Section, Survey, OTHER_CODE};

/// The page's language among those the survey offers.
fn lang_of(req: &HttpRequest, survey: &Survey) -> &'static str {
    language::choose(req, |c| survey.languages.iter().any(|l| l == c))
}

/// Links to this page in each language the survey offers (none when it offers one).
fn language_links(req: &HttpRequest, survey: &Survey, lang: &str) -> Json {
    language::links(req, |c| survey.languages.iter().any(|l| l == c), lang)
}

fn base_path(token: &str) -> String {
    format!("/r/{token}")
}

/// Respondent pages carry the personal link: never cache them anywhere.
fn private_page(
    req: &HttpRequest,
    mut res: HttpResponse,
    csrf_token: Option<&csrf::FormToken>,
    secure: bool,
) -> HttpResponse {
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    language::remember(req, &mut res, secure);
    if let Some(token) = csrf_token {
        token.set_cookie(&mut res, secure);
    }
    res
}

/// What a personal link led to.
enum LinkLookup<T> {
    Found(T),
    Unknown,
    /// Unknown, and this address has tried too many unknown links.
    Limited,
    Ended(crate::access::LinkEnd),
}

/// Resolve the personal link, then run `work` with it in the same blocking task, so a page
/// or a save costs one thread hop. A valid link always works, whatever its address did;
/// unknown links count against the caller's address (in the database, for every node).
async fn as_respondent<T, F>(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    token: &str,
    work: F,
) -> Result<T, AppError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConn, &Respondent, &Arc<Survey>) -> Result<T, AppError> + Send + 'static,
{
    let address = address_subject(super::client_address(req, &state.settings));
    let app = state.clone();
    let hash = looks_like_token(token).then(|| hash_token(token));
    let found = web::block(move || -> Result<LinkLookup<T>, AppError> {
        let mut conn = app.pool.get().map_err(crate::db::DbError::from)?;
        let now = Utc::now().naive_utc();
        let row = match &hash {
            Some(h) => queries::find_token(&mut conn, h)?,
            None => None,
        };
        let known = row.and_then(|row| {
            let survey = app.catalog.get(&row.survey_id).cloned()?;
            Some((row, survey))
        });
        let Some((row, survey)) = known else {
            let limit = UNKNOWN_LINKS_PER_ADDRESS;
            let tried = attempts::hit(&mut conn, &limit.counter(&address), limit.window(), now)?;
            return Ok(if tried > limit.max {
                LinkLookup::Limited
            } else {
                LinkLookup::Unknown
            });
        };
        if let Some(end) = row.ended(now) {
            return Ok(LinkLookup::Ended(end));
        }
        if row.first_used_at.is_none() {
            // "First opened" for the administrators' status table: one write per link, ever.
            queries::touch_token(&mut conn, &row.id, now)?;
        }
        let who = Respondent { token: row };
        work(&mut conn, &who, &survey).map(LinkLookup::Found)
    })
    .await??;
    match found {
        LinkLookup::Found(t) => Ok(t),
        LinkLookup::Unknown => Err(AppError::NotFound),
        LinkLookup::Limited => Err(AppError::RateLimited),
        LinkLookup::Ended(end) => Err(AppError::LinkEnded(end)),
    }
}

/// Saves and submissions through one link are budgeted per minute (see `AppState`). Spent
/// once the link is known to exist, so made-up links cannot fill the budget's table.
fn spend_write_budget(state: &AppState, who: &Respondent) -> Result<(), AppError> {
    if state.link_writes.take(&who.token.id) {
        Ok(())
    } else {
        Err(AppError::LinkWritesLimited)
    }
}

/// The respondent, the survey and the response as stored.
async fn authenticate_and_load(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    token: &str,
    touch: bool,
) -> Result<(Respondent, Arc<Survey>, ResponseState), AppError> {
    as_respondent(state, req, token, move |conn, who, survey| {
        let now = Utc::now().naive_utc();
        if touch {
            queries::touch_token(conn, &who.token.id, now)?;
        }
        let rs = respond::load(conn, survey, who, now)?;
        Ok((who.clone(), survey.clone(), rs))
    })
    .await
}

fn load_state(
    state: &web::Data<AppState>,
    survey: &Arc<Survey>,
    who: &Respondent,
    touch: bool,
) -> impl std::future::Future<Output = Result<ResponseState, AppError>> {
    let pool = state.pool.clone();
    let survey = survey.clone();
    let who = who.clone();
    async move {
        web::block(move || -> Result<ResponseState, AppError> {
            let mut conn = pool.get().map_err(crate::db::DbError::from)?;
            let now = Utc::now().naive_utc();
            if touch {
                queries::touch_token(&mut conn, &who.token.id, now)?;
            }
            Ok(respond::load(&mut conn, &survey, &who, now)?)
        })
        .await?
    }
}

fn secure(state: &AppState) -> bool {
    state.settings.is_https()
}

pub async fn overview(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let token = path.into_inner();
    let (who, survey, rs) = authenticate_and_load(&state, &req, &token, true).await?;
    let lang = lang_of(&req, &survey);
    let now = Utc::now();
    let sections: Vec<Json> = survey
        .sections
        .iter()
        .map(|s| {
            let status = section_progress(s, &rs.answers, &rs.visibility);
            let status = serde_json::to_value(status).unwrap_or_default();
            let status = status.as_str().unwrap_or("not_started").to_string();
            json!({
                "id": s.id,
                "title": s.title.get(lang),
                "status_key": format!("overview-status-{status}"),
                "status": status,
            })
        })
        .collect();
    let data = json!({
        "page_title": survey.title.get(lang),
        "survey_title": survey.title.get(lang),
        "languages": language_links(&req, &survey, lang),
        "description": survey.description.as_ref().map(|d| d.get(lang)),
        "country": respondent_name(&state.countries, &who.token, lang),
        "deadline": rs.closes.map(|c| format_datetime(lang, c.naive_utc())),
        "closed_at": rs.closes.filter(|c| now > *c).map(|c| format_datetime(lang, c.naive_utc())),
        "opens_at": survey.opens.filter(|o| now < *o).map(|o| format_datetime(lang, o.naive_utc())),
        "submitted_at": rs.response.submitted_at.map(|t| format_datetime(lang, t)),
        "sections": sections,
        "base": base_path(&token),
    });
    let res = state.page("respond/overview", lang, data)?;
    Ok(private_page(&req, res, None, secure(&state)))
}

fn country_name(countries: &Countries, iso3: &str, lang: &str) -> String {
    countries
        .get(iso3)
        .map(|c| c.name(lang).to_string())
        .unwrap_or_else(|| iso3.to_string())
}

/// Whose response this is: the country, or "organisation, country".
fn respondent_name(countries: &Countries, token: &queries::TokenRow, lang: &str) -> String {
    crate::survey::respondent_name(
        &token.unit,
        &country_name(countries, &token.country_iso3, lang),
    )
}

/// Why a response cannot change now, as a message id, or None when it can.
fn readonly_reason(survey: &Survey, rs: &ResponseState) -> Option<&'static str> {
    let now = Utc::now();
    if !rs.is_draft() {
        Some("section-readonly")
    } else if rs.is_closed(now) || !survey.is_open_yet(now) {
        Some("section-closed")
    } else {
        None
    }
}

#[derive(Default)]
struct SectionExtras {
    errors: BTreeMap<String, FieldError>,
    /// Values to show instead of the stored ones (after a failed or conflicting save).
    posted: Option<HashMap<String, RawAnswer>>,
    saved: bool,
    revealed: bool,
    conflict: Option<Json>,
    version: Option<i32>,
}

#[derive(serde::Deserialize)]
pub struct SectionQuery {
    saved: Option<u8>,
    more: Option<u8>,
}

pub async fn section_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: web::Query<SectionQuery>,
) -> Result<HttpResponse, AppError> {
    let (token, section_id) = path.into_inner();
    let (_, survey, rs) = authenticate_and_load(&state, &req, &token, false).await?;
    let extras = SectionExtras {
        saved: query.saved == Some(1),
        revealed: query.more == Some(1),
        ..Default::default()
    };
    render_section(
        &state,
        &req,
        &token,
        &survey,
        &rs,
        &section_id,
        extras,
        StatusCode::OK,
    )
}

#[allow(clippy::too_many_arguments)]
fn render_section(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    token: &str,
    survey: &Survey,
    rs: &ResponseState,
    section_id: &str,
    extras: SectionExtras,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let lang = lang_of(req, survey);
    let Some((index, section)) = survey
        .sections
        .iter()
        .enumerate()
        .find(|(_, s)| s.id == section_id)
    else {
        return Err(AppError::NotFound);
    };
    if !rs.visibility.section(&section.id) {
        return Err(AppError::NotFound);
    }
    let csrf_token = csrf::form_token(req, csrf::Binding::Link(token), secure(state));
    let mut questions = Vec::new();
    let mut error_list = Vec::new();
    for q in section
        .questions
        .iter()
        .filter(|q| rs.visibility.question(&q.id))
    {
        let raw = match &extras.posted {
            Some(posted) => posted.get(&q.id).cloned().unwrap_or_default(),
            None => RawAnswer::from_items(
                &q.kind,
                rs.answers.get(&q.id).map(Vec::as_slice).unwrap_or(&[]),
            ),
        };
        let error = extras
            .errors
            .get(&q.id)
            .map(|e| translate(lang, e.message_id, &e.args));
        if let Some(message) = &error {
            error_list.push(json!({"id": q.id, "text": q.text.get(lang), "message": message}));
        }
        questions.push(field_view(q, &raw, error, lang, &state.country_options));
    }
    let data = json!({
        "page_title": section.title.get(lang),
        "survey_title": survey.title.get(lang),
        "languages": language_links(req, survey, lang),
        "id": section.id,
        "title": section.title.get(lang),
        "intro": section.intro.as_ref().map(|t| t.get(lang)),
        "number": index + 1,
        "total": survey.sections.len(),
        "questions": questions,
        "error_list": error_list,
        "kept": !extras.errors.is_empty() && extras.conflict.is_none(),
        "saved": extras.saved,
        "revealed": extras.revealed,
        "conflict": extras.conflict,
        "readonly_key": readonly_reason(survey, rs),
        "csrf": csrf_token.token,
        "version": extras.version.unwrap_or_else(|| rs.section_version(&section.id)),
        "base": base_path(token),
    });
    let mut res = state.page("respond/section", lang, data)?;
    *res.status_mut() = status;
    Ok(private_page(req, res, Some(&csrf_token), secure(state)))
}

fn field_view(
    q: &Question,
    raw: &RawAnswer,
    error: Option<String>,
    lang: &str,
    countries: &CountryOptions,
) -> Json {
    let mut v = json!({
        "id": q.id,
        "text": q.text.get(lang),
        "help": q.help.as_ref().map(|h| h.get(lang)),
        "required": q.required,
        "error": error,
        "value": raw.first(),
    });
    let choice = |code: &str, label: String, checked: bool| json!({"code": code, "label": label, "checked": checked});
    let extra = match &q.kind {
        QuestionKind::ShortText { max_length, .. } => {
            json!({"is_short": true, "input_type": "text", "maxlength": max_length})
        }
        QuestionKind::LongText { max_length, .. } => {
            json!({"is_long": true, "maxlength": max_length})
        }
        QuestionKind::Email => json!({"is_short": true, "input_type": "email"}),
        QuestionKind::Url => json!({"is_short": true, "input_type": "url"}),
        QuestionKind::Date { .. } => json!({"is_short": true, "input_type": "date"}),
        // Text inputs with an input mode: number inputs would reject "1 500" before the server
        // could explain why.
        QuestionKind::Integer { .. } => {
            json!({"is_short": true, "input_type": "text", "inputmode": "numeric"})
        }
        QuestionKind::Decimal { .. } => {
            json!({"is_short": true, "input_type": "text", "inputmode": "decimal",
                   "value": crate::i18n::format_number(lang, raw.first())})
        }
        QuestionKind::Country => {
            json!({"is_select": true, "options_html": countries.options_html(lang, raw.first())})
        }
        QuestionKind::YesNo => {
            let options = vec![
                choice("yes", translate(lang, "yes", &[]), raw.first() == "yes"),
                choice("no", translate(lang, "no", &[]), raw.first() == "no"),
            ];
            json!({"is_choice": true, "fieldset": true, "choice_type": "radio", "options": options})
        }
        QuestionKind::SingleChoice { options, other }
        | QuestionKind::MultipleChoice { options, other, .. } => {
            let multiple = matches!(q.kind, QuestionKind::MultipleChoice { .. });
            let mut list: Vec<Json> = options
                .iter()
                .map(|o| {
                    choice(
                        &o.code,
                        o.label.get(lang).to_string(),
                        raw.values.contains(&o.code),
                    )
                })
                .collect();
            if *other {
                list.push(choice(
                    OTHER_CODE,
                    translate(lang, "other-option", &[]),
                    raw.values.iter().any(|v| v == OTHER_CODE),
                ));
            }
            json!({
                "is_choice": true, "fieldset": true, "multiple": multiple,
                "choice_type": if multiple { "checkbox" } else { "radio" },
                "options": list, "has_other": other, "other_value": raw.other,
            })
        }
        QuestionKind::Matrix { rows, scale } => {
            let rows: Vec<Json> = rows
                .iter()
                .map(|r| {
                    let selected = raw.rows.get(&r.code);
                    let cells: Vec<Json> = scale
                        .iter()
                        .map(|s| json!({"code": s.code, "checked": selected == Some(&s.code)}))
                        .collect();
                    json!({"code": r.code, "label": r.label.get(lang), "cells": cells})
                })
                .collect();
            let scale: Vec<Json> = scale
                .iter()
                .map(|s| json!({"code": s.code, "label": s.label.get(lang)}))
                .collect();
            json!({"is_matrix": true, "fieldset": true, "rows": rows, "scale": scale})
        }
    };
    if let (Json::Object(base), Json::Object(extra)) = (&mut v, extra) {
        base.extend(extra);
    }
    v
}

fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

pub async fn section_save(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let (token, section_id) = path.into_inner();
    let pairs = parse_form(&body);
    csrf::verify(&req, &state.settings, &pairs, csrf::Binding::Link(&token))?;
    let base_version: i32 = pairs
        .iter()
        .find(|(k, _)| k == "_version")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let raw = group_form(&pairs);
    let (who, survey, outcome) = {
        let countries = state.countries.clone();
        let raw = raw.clone();
        let section_id = section_id.clone();
        let app = state.clone();
        as_respondent(&state, &req, &token, move |conn, who, survey| {
            spend_write_budget(&app, who)?;
            let save = SaveRequest {
                section_id: &section_id,
                base_version,
                raw: &raw,
            };
            let outcome =
                respond::save_section(conn, survey, countries.as_ref(), who, &save, Utc::now())
                    .map_err(AppError::from);
            Ok((who.clone(), survey.clone(), outcome))
        })
        .await?
    };
    let outcome = match outcome {
        Ok(o) => o,
        Err(AppError::Respond(e)) => return respond_refusal(&state, &req, &token, &survey, e),
        Err(e) => return Err(e),
    };
    let lang = lang_of(&req, &survey);
    match outcome {
        SaveOutcome::Saved { errors, revealed } if errors.is_empty() => {
            let more = if revealed.is_empty() { "" } else { "&more=1" };
            Ok(HttpResponse::SeeOther()
                .insert_header((
                    header::LOCATION,
                    format!("/r/{token}/s/{section_id}?saved=1{more}"),
                ))
                .finish())
        }
        SaveOutcome::Saved { errors, revealed } => {
            let rs = load_state(&state, &survey, &who, false).await?;
            let extras = SectionExtras {
                errors,
                posted: Some(raw),
                revealed: !revealed.is_empty(),
                ..Default::default()
            };
            render_section(
                &state,
                &req,
                &token,
                &survey,
                &rs,
                &section_id,
                extras,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        SaveOutcome::Conflict {
            conflicts,
            current_version,
            saved_by,
            saved_at,
            errors,
        } => {
            let rs = load_state(&state, &survey, &who, false).await?;
            let items: Vec<Json> = conflicts
                .iter()
                .filter_map(|c| {
                    let q = survey.question(&c.question)?;
                    Some(json!({
                        "text": q.text.get(lang),
                        "yours": display_value(q, &c.yours, lang, &|c| country_name(&state.countries, c, lang)),
                        "theirs": display_value(q, &c.theirs, lang, &|c| country_name(&state.countries, c, lang)),
                    }))
                })
                .collect();
            let who_name = saved_by.unwrap_or_else(|| translate(lang, "conflict-someone", &[]));
            let extras = SectionExtras {
                errors,
                posted: Some(raw),
                conflict: Some(json!({
                    "who": who_name,
                    "date": saved_at.map(|t| format_datetime(lang, t)).unwrap_or_default(),
                    "items": items,
                })),
                version: Some(current_version),
                ..Default::default()
            };
            render_section(
                &state,
                &req,
                &token,
                &survey,
                &rs,
                &section_id,
                extras,
                StatusCode::CONFLICT,
            )
        }
    }
}

/// A clear page for a response that cannot change (closed survey, already submitted).
fn respond_refusal(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    token: &str,
    survey: &Survey,
    e: respond::RespondError,
) -> Result<HttpResponse, AppError> {
    let lang = lang_of(req, survey);
    let t = |id: &str, args: &[(&str, String)]| translate(lang, id, args);
    let (title, body) = match &e {
        respond::RespondError::Closed(at) => {
            let date = format_datetime(lang, at.naive_utc());
            (t("closed-title", &[]), t("closed-body", &[("date", date)]))
        }
        respond::RespondError::NotOpenYet => {
            let date = survey
                .opens
                .map(|o| format_datetime(lang, o.naive_utc()))
                .unwrap_or_default();
            (
                t("not-open-title", &[]),
                t("overview-not-open", &[("date", date)]),
            )
        }
        respond::RespondError::AlreadySubmitted => (
            t("submitted-readonly-title", &[]),
            t("section-readonly", &[]),
        ),
        _ => return Err(AppError::Respond(e)),
    };
    let mut res = state.page(
        "message",
        lang,
        json!({"page_title": title, "title": title, "body": body, "back": base_path(token), "languages": language_links(req, survey, lang)}),
    )?;
    *res.status_mut() = StatusCode::CONFLICT;
    Ok(private_page(req, res, None, secure(state)))
}

fn review_page(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    token: &str,
    survey: &Survey,
    rs: &ResponseState,
    show_missing: bool,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let lang = lang_of(req, survey);
    let csrf_token = csrf::form_token(req, csrf::Binding::Link(token), secure(state));
    let visible_sections: Vec<&Section> = survey
        .sections
        .iter()
        .filter(|s| rs.visibility.section(&s.id))
        .collect();
    let sections: Vec<Json> = visible_sections
        .iter()
        .map(|s| {
            let answers: Vec<Json> = s
                .questions
                .iter()
                .filter(|q| rs.visibility.question(&q.id))
                .map(|q| {
                    let items = rs.answers.get(&q.id).map(Vec::as_slice).unwrap_or(&[]);
                    let value = (!items.is_empty()).then(|| {
                        display_value(q, items, lang, &|c| country_name(&state.countries, c, lang))
                    });
                    json!({"id": q.id, "text": q.text.get(lang), "value": value})
                })
                .collect();
            json!({"id": s.id, "title": s.title.get(lang), "answers": answers})
        })
        .collect();
    let missing: Vec<Json> = if show_missing {
        missing_answers(survey, &rs.answers, &rs.visibility)
            .into_iter()
            .filter_map(|m| {
                let q = survey.question(&m.question)?;
                Some(
                    json!({"section": m.section, "question": m.question, "text": q.text.get(lang)}),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    let data = json!({
        "page_title": translate(lang, "review-title", &[]),
        "survey_title": survey.title.get(lang),
        "languages": language_links(req, survey, lang),
        "sections": sections,
        "missing": missing,
        "editable": readonly_reason(survey, rs).is_none(),
        "submitted_at": rs.response.submitted_at.map(|t| format_datetime(lang, t)),
        "csrf": csrf_token.token,
        "base": base_path(token),
    });
    let mut res = state.page("respond/review", lang, data)?;
    *res.status_mut() = status;
    Ok(private_page(req, res, Some(&csrf_token), secure(state)))
}

pub async fn review(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let token = path.into_inner();
    let (_, survey, rs) = authenticate_and_load(&state, &req, &token, false).await?;
    review_page(
        &state,
        &req,
        &token,
        &survey,
        &rs,
        rs.is_draft(),
        StatusCode::OK,
    )
}

pub async fn submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let token = path.into_inner();
    csrf::verify(
        &req,
        &state.settings,
        &parse_form(&body),
        csrf::Binding::Link(&token),
    )?;
    let app = state.clone();
    let (who, survey, outcome) = as_respondent(&state, &req, &token, move |conn, who, survey| {
        spend_write_budget(&app, who)?;
        let outcome = respond::submit(conn, survey, who, Utc::now()).map_err(AppError::from);
        Ok((who.clone(), survey.clone(), outcome))
    })
    .await?;
    match outcome {
        Ok(SubmitOutcome::Submitted) => Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, base_path(&token)))
            .finish()),
        Ok(SubmitOutcome::Incomplete(_)) => {
            let rs = load_state(&state, &survey, &who, false).await?;
            review_page(
                &state,
                &req,
                &token,
                &survey,
                &rs,
                true,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        Err(AppError::Respond(e)) => respond_refusal(&state, &req, &token, &survey, e),
        Err(e) => Err(e),
    }
}

/// The whole questionnaire on one printable page: blank (every question, with its options), or
/// with this country's answers (`?answers=1`: the questions it was asked).
pub async fn print(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let token = path.into_inner();
    let (who, survey, rs) = authenticate_and_load(&state, &req, &token, false).await?;
    let lang = lang_of(&req, &survey);
    let with_answers = req.query_string().split('&').any(|kv| kv == "answers=1");
    let name_of = |code: &str| country_name(&state.countries, code, lang);
    let mut sections = Vec::new();
    let mut number = 0;
    for (si, section) in survey.sections.iter().enumerate() {
        if with_answers && !rs.visibility.section(&section.id) {
            continue;
        }
        let mut questions = Vec::new();
        for q in &section.questions {
            if with_answers && !rs.visibility.question(&q.id) {
                continue;
            }
            number += 1;
            let items: &[crate::survey::answer::Item] = if with_answers {
                rs.answers.get(&q.id).map(Vec::as_slice).unwrap_or(&[])
            } else {
                &[]
            };
            let raw = RawAnswer::from_items(&q.kind, items);
            let mut options: Vec<Json> = match &q.kind {
                QuestionKind::YesNo => ["yes", "no"]
                    .iter()
                    .map(|c| json!({"label": translate(lang, c, &[]), "checked": raw.first() == *c}))
                    .collect(),
                _ => q
                    .kind
                    .options()
                    .iter()
                    .map(|o| json!({"label": o.label.get(lang), "checked": raw.values.contains(&o.code)}))
                    .collect(),
            };
            if q.kind.has_other() {
                let other = raw.other.clone().unwrap_or_default();
                let label = format!(
                    "{} {}",
                    translate(lang, "other-specify", &[]),
                    if other.is_empty() {
                        "______".to_string()
                    } else {
                        other
                    }
                );
                options.push(
                    json!({"label": label, "checked": raw.values.iter().any(|v| v == OTHER_CODE)}),
                );
            }
            let (rows, scale) = match &q.kind {
                QuestionKind::Matrix { rows, scale } => (
                    rows.iter()
                        .map(|r| {
                            let cells: Vec<bool> = scale
                                .iter()
                                .map(|s| raw.rows.get(&r.code) == Some(&s.code))
                                .collect();
                            json!({"label": r.label.get(lang), "cells": cells})
                        })
                        .collect::<Vec<_>>(),
                    scale
                        .iter()
                        .map(|s| s.label.get(lang).to_string())
                        .collect::<Vec<_>>(),
                ),
                _ => (Vec::new(), Vec::new()),
            };
            let free = matches!(
                q.kind,
                QuestionKind::ShortText { .. }
                    | QuestionKind::LongText { .. }
                    | QuestionKind::Integer { .. }
                    | QuestionKind::Decimal { .. }
                    | QuestionKind::Date { .. }
                    | QuestionKind::Country
                    | QuestionKind::Email
                    | QuestionKind::Url
            );
            let answer =
                (free && !items.is_empty()).then(|| display_value(q, items, lang, &name_of));
            questions.push(json!({
                "number": format!("{}.{}", si + 1, number),
                "text": q.text.get(lang),
                "help": q.help.as_ref().map(|h| h.get(lang)),
                "required": q.required,
                "conditional": !with_answers && q.show_if.is_some(),
                "options": (!options.is_empty()).then_some(options),
                "rows": (!rows.is_empty()).then_some(rows),
                "scale": scale,
                "free": free,
                "answer": answer,
            }));
        }
        number = 0;
        sections.push(json!({
            "number": si + 1,
            "title": section.title.get(lang),
            "conditional": !with_answers && section.show_if.is_some(),
            "questions": questions,
        }));
    }
    let data = json!({
        "page_title": translate(lang, "print-title", &[]),
        "survey_title": survey.title.get(lang),
        "languages": language_links(&req, &survey, lang),
        "country": respondent_name(&state.countries, &who.token, lang),
        "deadline": rs.closes.map(|c| format_datetime(lang, c.naive_utc())),
        "sections": sections,
        "base": base_path(&token),
    });
    let res = state.page("respond/print", lang, data)?;
    Ok(private_page(&req, res, None, secure(&state)))
}

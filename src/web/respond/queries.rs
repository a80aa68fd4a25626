//! The secretariat's queries as the country sees them: beside their questions on the section
//! pages, listed on the overview, and each thread on its own page with a reply form.
//!
//! A contributor sees only the queries on its own sections; any other query is the same bare
//! 404 as an unknown page. Replies are taken while the query is open and the response is not
//! accepted (under review, returned, or submitted again).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::link::{Link, Page, Respondent, Visit};
use crate::db::review_queries::AuthorKind;
use crate::error::AppError;
use crate::report::queries::{self, Author, Thread, MAX_QUERY_TEXT};
use crate::report::secretariat::{ReviewError, TextProblem};
use crate::respond;
use crate::web::extract::CsrfForm;
use crate::web::render::translate;

/// A query in a list or beside its question.
#[derive(Serialize)]
pub struct QueryNote {
    id: String,
    question_id: String,
    question: String,
    section: String,
    open: bool,
    /// The secretariat's first message.
    first: String,
    href: String,
}

/// The notes of the queries a link sees.
pub fn notes(link: &Link, threads: &[Thread]) -> Vec<QueryNote> {
    threads
        .iter()
        .map(|t| {
            let q = &t.query.question_id;
            let section = link
                .survey
                .sections
                .iter()
                .find(|s| s.questions.iter().any(|x| &x.id == q));
            QueryNote {
                id: t.query.id.clone(),
                question_id: q.clone(),
                question: link
                    .survey
                    .question(q)
                    .map(|x| x.text.get(link.lang).to_string())
                    .unwrap_or_else(|| q.clone()),
                section: section
                    .map(|s| s.title.get(link.lang).to_string())
                    .unwrap_or_default(),
                open: t.is_open(),
                first: t
                    .messages
                    .first()
                    .map(|m| m.body.clone())
                    .unwrap_or_default(),
                href: format!("{}/queries/{}", link.base(), t.query.id),
            }
        })
        .collect()
}

/// A page's material with the queries its link sees, in one blocking task.
/// `more` is read in the same task too (the overview's colleagues).
pub async fn open_with_queries<T, F>(
    link: Respondent,
    visit: Visit,
    more: F,
) -> Result<(Page, (T, Vec<Thread>)), AppError>
where
    T: Send + 'static,
    F: FnOnce(
            &mut crate::db::DbConn,
            &respond::Respondent,
            &respond::ResponseState,
        ) -> Result<T, AppError>
        + Send
        + 'static,
{
    let (link, (rs, extra, threads)) = link
        .read_with(visit, move |conn, _, who, survey, opened| {
            let has_queries = opened.has_queries;
            let rs = opened.load(conn, survey, who, visit)?;
            // Most responses have none: nothing to read then.
            let threads = match has_queries {
                true => queries::link_threads(conn, survey, &who.token, &rs.response)
                    .map_err(review_error)?,
                false => Vec::new(),
            };
            let extra = more(conn, who, &rs)?;
            Ok((rs, extra, threads))
        })
        .await?;
    Ok((Page { link, rs }, (extra, threads)))
}

fn review_error(e: ReviewError) -> AppError {
    crate::web::admin::review_app_error(e)
}

/// One query's thread with the reply form.
#[derive(Serialize)]
struct QueryView {
    id: String,
    question: String,
    section: String,
    /// The section's page, where the answer can be changed.
    section_href: Option<String>,
    answer: Option<String>,
    open: bool,
    messages: Vec<MessageView>,
    can_reply: bool,
    sent: bool,
    error: Option<String>,
    /// What was typed, kept when the reply is refused.
    body: String,
    max: usize,
    csrf: String,
    base: String,
}

#[derive(Serialize)]
struct MessageView {
    author: String,
    secretariat: bool,
    at: String,
    body: String,
}

/// What the query page shows: the thread and the answer as it stands.
struct Loaded {
    thread: Thread,
    accepted: bool,
    rs: respond::ResponseState,
}

fn query_view(link: &Link, loaded: &Loaded, csrf: String, sent: bool) -> QueryView {
    let q = &loaded.thread.query.question_id;
    let survey = &link.survey;
    let section = survey
        .sections
        .iter()
        .find(|s| s.questions.iter().any(|x| &x.id == q));
    let question = survey.question(q);
    let answer = question.and_then(|question| {
        let items = loaded.rs.answers.get(q).filter(|i| !i.is_empty())?;
        let name_of = |c: &str| link.country_name(c);
        Some(crate::survey::display::display_value(
            question, items, link.lang, &name_of,
        ))
    });
    QueryView {
        id: loaded.thread.query.id.clone(),
        question: question
            .map(|x| x.text.get(link.lang).to_string())
            .unwrap_or_else(|| q.clone()),
        section: section
            .map(|s| s.title.get(link.lang).to_string())
            .unwrap_or_default(),
        section_href: section
            .filter(|s| loaded.rs.visibility.section(&s.id))
            .map(|s| format!("{}/s/{}#field-{q}", link.base(), s.id)),
        answer,
        open: loaded.thread.is_open(),
        messages: loaded
            .thread
            .messages
            .iter()
            .map(|m| {
                let secretariat = m.author_kind == AuthorKind::Secretariat;
                MessageView {
                    author: if secretariat {
                        translate(link.lang, "query-secretariat", &[])
                    } else {
                        m.author_name.clone()
                    },
                    secretariat,
                    at: crate::i18n::format_datetime(link.lang, m.at),
                    body: m.body.clone(),
                }
            })
            .collect(),
        can_reply: loaded.thread.is_open() && !loaded.accepted,
        sent,
        error: None,
        body: String::new(),
        max: MAX_QUERY_TEXT,
        csrf,
        base: link.base(),
    }
}

fn load(
    conn: &mut crate::db::DbConn,
    survey: &crate::survey::Survey,
    who: &respond::Respondent,
    query_id: &str,
) -> Result<Loaded, AppError> {
    let (thread, r) =
        queries::link_thread(conn, survey, &who.token, query_id).map_err(review_error)?;
    let rs = respond::load(conn, survey, who, Utc::now().naive_utc())?;
    Ok(Loaded {
        thread,
        accepted: r.status == crate::db::responses::ResponseStatus::Accepted,
        rs,
    })
}

#[derive(Deserialize)]
pub struct QueryPageQuery {
    sent: Option<u8>,
}

pub async fn query_page(
    link: Respondent,
    path: web::Path<(String, String)>,
    query: web::Query<QueryPageQuery>,
) -> Result<HttpResponse, AppError> {
    let query_id = path.into_inner().1;
    let (link, loaded) = link
        .resolve(false, move |conn, _, who, survey| {
            load(conn, survey, who, &query_id)
        })
        .await?;
    let form = link.form_token();
    let view = query_view(&link, &loaded, form.token.clone(), query.sent == Some(1));
    render(&link, &view, StatusCode::OK, &form)
}

fn render(
    link: &Link,
    view: &QueryView,
    status: StatusCode,
    form: &crate::web::csrf::FormToken,
) -> Result<HttpResponse, AppError> {
    let title = translate(
        link.lang,
        "query-title",
        &[("question", view.question.clone())],
    );
    let layout = link.layout(title, true);
    link.render("respond/query", &layout, view, status, Some(form))
}

#[derive(Deserialize)]
pub struct ReplyForm {
    #[serde(default)]
    body: String,
}

pub async fn query_reply(
    link: Respondent,
    path: web::Path<(String, String)>,
    CsrfForm(form): CsrfForm<ReplyForm>,
) -> Result<HttpResponse, AppError> {
    let query_id = path.into_inner().1;
    let body = form.body;
    let typed = body.clone();
    let (link, (replied, loaded)) = link
        .write(move |conn, _, who, survey| {
            let (thread, r) =
                queries::link_thread(conn, survey, &who.token, &query_id).map_err(review_error)?;
            let now = Utc::now().naive_utc();
            let replied = queries::reply(
                conn,
                &thread.query,
                &r,
                Author::Country(&who.token),
                &body,
                now,
            );
            let loaded = match replied {
                Ok(()) => None,
                Err(_) => Some(load(conn, survey, who, &query_id)?),
            };
            Ok((replied, loaded))
        })
        .await?;
    let (e, loaded) = match (replied, loaded) {
        (Ok(()), _) | (Err(_), None) => {
            let to = format!("/queries/{}?sent=1", path_id(&link));
            return Ok(link.redirect(&to));
        }
        (Err(e), Some(loaded)) => (e, loaded),
    };
    let (message, status) = match e {
        ReviewError::Invalid(TextProblem::Empty) => (
            translate(link.lang, "query-text-empty", &[]),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ReviewError::Invalid(TextProblem::TooLong) => (
            translate(
                link.lang,
                "error-too-long",
                &[("max", MAX_QUERY_TEXT.to_string())],
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ReviewError::QueryClosed => (
            translate(link.lang, "query-closed-note", &[]),
            StatusCode::CONFLICT,
        ),
        ReviewError::State(_) => (
            translate(link.lang, "query-reply-not-now", &[]),
            StatusCode::CONFLICT,
        ),
        e => return Err(review_error(e)),
    };
    let form = link.form_token();
    let mut view = query_view(&link, &loaded, form.token.clone(), false);
    view.error = Some(message);
    view.body = typed;
    render(&link, &view, status, &form)
}

/// The query id of the request's path.
fn path_id(link: &Link) -> String {
    link.req
        .match_info()
        .get("query")
        .unwrap_or_default()
        .to_string()
}

//! The report cycle on the country page: the response's state and the secretariat's decisions
//! (begin review, return, accept), queries per question with their threads, the versions with
//! any one shown and two compared, the download of a version's canonical content, entering a
//! report received outside Coherence, and the country's audit entries.

use std::collections::HashMap;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::country::{country_page, Outcome};
use super::{help_address, no_store, t, with_conn};
use crate::campaign;
use crate::db::audit::AuditRow;
use crate::db::responses::{ResponseRow, ResponseStatus};
use crate::db::review_queries::AuthorKind;
use crate::db::tokens::TokenRow;
use crate::db::versions::{self, VersionAnswers, VersionRow};
use crate::error::AppError;
use crate::i18n::format_datetime;
use crate::report::queries::{self, Author, MAX_QUERY_TEXT};
use crate::report::secretariat::{
    self, Cycle, CycleRequest, DiffRow, EntryProblem, Mailing, ReviewError, TextProblem,
};
use crate::report::Channel;
use crate::survey::answer::{FileItem, Item, Visibility};
use crate::survey::display::display_value;
use crate::survey::Survey;
use crate::web::extract::{CsrfForm, SurveyAdmin};
use crate::web::AppState;

/// Who is who on the country page: link holders by link id, users' emails by user id, and
/// each entry link's owner and channel.
pub struct Names {
    pub links: HashMap<String, String>,
    pub users: HashMap<String, String>,
    pub entries: HashMap<String, (String, String)>,
}

impl Names {
    pub fn link(&self, id: &str) -> String {
        self.links
            .get(id)
            .cloned()
            .unwrap_or_else(|| t("admin-link-unnamed", &[]))
    }

    pub fn user(&self, id: &str) -> String {
        self.users
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }

    /// "entered by X (paper)" for an entry link, else None.
    pub fn entry(&self, link_id: &str) -> Option<String> {
        self.entries
            .get(link_id)
            .map(|(by, channel)| entered_by(&self.user(by), channel))
    }

    /// An audit entry's actor as a reader knows them.
    fn actor(&self, actor: &str) -> String {
        match actor.split_once(':') {
            Some(("link", id)) => self.link(id),
            Some(("user", id)) => self.user(id),
            _ if actor == "cli" => t("admin-audit-cli", &[]),
            _ => t("admin-audit-system", &[]),
        }
    }
}

fn entered_by(who: &str, channel: &str) -> String {
    let channel = t(&format!("admin-channel-{channel}"), &[]);
    t(
        "admin-entered-by",
        &[("who", who.to_string()), ("channel", channel)],
    )
}

/// Load what the names need: the users named by versions, entries and audit entries.
pub fn load_names(
    conn: &mut crate::db::DbConn,
    links: &[TokenRow],
    cycles: &[Cycle],
    audit: &[AuditRow],
) -> Result<Names, AppError> {
    let mut entries = HashMap::new();
    for l in links {
        if let Some(e) = crate::db::tokens::entry_of(conn, &l.id)? {
            entries.insert(l.id.clone(), e);
        }
    }
    let mut users: Vec<String> = entries.values().map(|e| e.0.clone()).collect();
    for c in cycles {
        users.extend(c.versions.iter().filter_map(|v| v.entered_by.clone()));
    }
    users.extend(
        audit
            .iter()
            .filter_map(|a| a.actor.strip_prefix("user:").map(str::to_string)),
    );
    let users = secretariat::user_emails(conn, users).map_err(app_error)?;
    let links = links
        .iter()
        .map(|l| {
            let name = l
                .holder_name
                .clone()
                .or_else(|| l.holder_email.clone())
                .unwrap_or_else(|| t("admin-link-unnamed", &[]));
            (l.id.clone(), name)
        })
        .collect();
    Ok(Names {
        links,
        users,
        entries,
    })
}

/// A domain refusal as the web layer answers it when no page says more.
pub fn app_error(e: ReviewError) -> AppError {
    match e {
        ReviewError::NotFound => AppError::NotFound,
        ReviewError::Db(e) => AppError::Db(e),
        ReviewError::Render(e) => AppError::Render(e),
        ReviewError::State(_) | ReviewError::OpenQueries(_) | ReviewError::QueryClosed => {
            AppError::Conflict
        }
        ReviewError::Invalid(_) => AppError::BadRequest,
    }
}

/// The report cycle of one response on the country page.
#[derive(Serialize)]
pub struct CycleView {
    status: String,
    /// Submitted: the review may begin.
    can_review: bool,
    /// Submitted or under review: queries, return and accept.
    can_decide: bool,
    open_queries: usize,
    versions: Vec<VersionView>,
    shown: Option<ShownView>,
    diff: Option<DiffView>,
    threads: Vec<ThreadView>,
    /// The raise-a-query form's questions.
    questions: Vec<QuestionChoice>,
    max_text: usize,
    /// Accepting was asked with open queries: the confirmation form.
    confirm_accept: bool,
}

#[derive(Serialize)]
struct VersionView {
    number: i32,
    submitted: String,
    by: String,
    signed_off: Option<String>,
    channel: String,
    marks: Vec<String>,
    counted: bool,
    view_url: String,
    json_url: String,
    diff_url: Option<String>,
}

#[derive(Serialize)]
struct ShownView {
    number: i32,
    digest: String,
    sections: Vec<ShownSection>,
}

#[derive(Serialize)]
struct ShownSection {
    title: String,
    answers: Vec<ShownAnswer>,
}

#[derive(Serialize)]
struct ShownAnswer {
    question: String,
    answer: String,
    answered: bool,
    /// A file question's files, each linked for download.
    files: Vec<FileLink>,
}

/// An attached file named and linked to the owners' download route, as on the current answers.
#[derive(Serialize)]
struct FileLink {
    name: String,
    href: String,
}

#[derive(Serialize)]
struct DiffView {
    from: i32,
    to: i32,
    rows: Vec<DiffRowView>,
}

#[derive(Serialize)]
struct DiffRowView {
    question: String,
    old: String,
    new: String,
    /// For a file question, the files on each side, linked (a version's files stay stored).
    old_files: Vec<FileLink>,
    new_files: Vec<FileLink>,
    by: String,
    at: String,
}

#[derive(Serialize)]
struct ThreadView {
    id: String,
    question: String,
    section: String,
    version: i32,
    open: bool,
    status: String,
    messages: Vec<MessageView>,
    change: Option<ChangeView>,
}

#[derive(Serialize)]
struct MessageView {
    author: String,
    secretariat: bool,
    at: String,
    body: String,
}

#[derive(Serialize)]
struct ChangeView {
    old: String,
    new: String,
    /// "in version 2" or "in the draft".
    place: String,
    by: Option<String>,
    at: Option<String>,
}

#[derive(Serialize)]
struct QuestionChoice {
    id: String,
    label: String,
}

fn when(lang: &str, at: NaiveDateTime) -> String {
    format_datetime(lang, at)
}

/// A response's state as the page words it.
pub fn status_label(s: ResponseStatus) -> String {
    t(&format!("admin-status-{}", s.as_str()), &[])
}

struct Ctx<'a> {
    state: &'a AppState,
    survey: &'a Survey,
    lang: &'a str,
    names: &'a Names,
    /// The country page's address, under which its files are downloaded.
    base: String,
}

impl Ctx<'_> {
    fn display(&self, question_id: &str, items: Option<&Vec<Item>>) -> String {
        let Some(items) = items.filter(|i| !i.is_empty()) else {
            return t("admin-answer-missing", &[]);
        };
        let name_of = |code: &str| {
            self.state
                .countries
                .get(code)
                .map(|c| c.name(self.lang).to_string())
                .unwrap_or_else(|| code.to_string())
        };
        match self.survey.question(question_id) {
            Some(q) => display_value(q, items, self.lang, &name_of),
            None => items
                .iter()
                .map(|i| i.value.clone())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// The files a file question's items record, linked; none for other questions.
    fn files(&self, question_id: &str, items: Option<&Vec<Item>>) -> Vec<FileLink> {
        let is_file = self
            .survey
            .question(question_id)
            .is_some_and(|q| q.kind.is_file());
        match items {
            Some(items) if is_file => FileItem::all(items)
                .into_iter()
                .map(|f| FileLink {
                    href: format!("{}/files/{}", self.base, f.id),
                    name: f.name,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    fn question_text(&self, id: &str) -> String {
        self.survey
            .question(id)
            .map(|q| q.text.get(self.lang).to_string())
            .unwrap_or_else(|| id.to_string())
    }

    fn section_title(&self, question_id: &str) -> String {
        self.survey
            .sections
            .iter()
            .find(|s| s.questions.iter().any(|q| q.id == question_id))
            .map(|s| s.title.get(self.lang).to_string())
            .unwrap_or_default()
    }
}

pub fn cycle_view(
    state: &AppState,
    survey: &Survey,
    lang: &str,
    names: &Names,
    r: &ResponseRow,
    cycle: &Cycle,
    confirm_accept: bool,
) -> CycleView {
    let base = format!("/admin/surveys/{}/countries/{}", survey.id, r.country_iso3);
    let ctx = Ctx {
        state,
        survey,
        lang,
        names,
        base: base.clone(),
    };
    let unit_q = if r.unit.is_empty() {
        String::new()
    } else {
        format!("&unit={}", urlencoding(&r.unit))
    };
    let versions = cycle
        .versions
        .iter()
        .map(|v| version_view(&ctx, &base, &unit_q, r, v))
        .collect();
    let threads = cycle
        .threads
        .iter()
        .map(|(th, change)| ThreadView {
            id: th.query.id.clone(),
            question: ctx.question_text(&th.query.question_id),
            section: ctx.section_title(&th.query.question_id),
            version: th.query.version,
            open: th.is_open(),
            status: match th.query.closed_at {
                Some(at) if !th.is_open() => t(
                    "admin-query-closed-on",
                    &[
                        ("date", when(lang, at)),
                        (
                            "by",
                            names.user(th.query.closed_by.as_deref().unwrap_or_default()),
                        ),
                    ],
                ),
                _ => t("admin-query-open", &[]),
            },
            messages: th
                .messages
                .iter()
                .map(|m| MessageView {
                    author: m.author_name.clone(),
                    secretariat: m.author_kind == AuthorKind::Secretariat,
                    at: when(lang, m.at),
                    body: m.body.clone(),
                })
                .collect(),
            change: change.as_ref().map(|c| ChangeView {
                old: ctx.display(&th.query.question_id, c.old.as_ref()),
                new: ctx.display(&th.query.question_id, c.new.as_ref()),
                place: match c.in_version {
                    Some(n) => t("admin-change-in-version", &[("number", n.to_string())]),
                    None => t("admin-change-in-draft", &[]),
                },
                by: c.changed_by.as_deref().map(|l| names.link(l)),
                at: c.changed_at.map(|at| when(lang, at)),
            }),
        })
        .collect();
    let decidable = matches!(
        r.status,
        ResponseStatus::Submitted | ResponseStatus::UnderReview
    );
    let questions = if decidable {
        survey
            .sections
            .iter()
            .flat_map(|s| {
                s.questions.iter().map(move |q| QuestionChoice {
                    id: q.id.clone(),
                    label: format!("{} — {}", s.title.get(lang), q.text.get(lang)),
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    CycleView {
        status: status_label(r.status),
        can_review: r.status == ResponseStatus::Submitted,
        can_decide: decidable,
        open_queries: cycle.open_queries(),
        versions,
        shown: cycle
            .shown
            .as_ref()
            .map(|(v, answers)| shown_view(&ctx, v, answers)),
        diff: cycle.diff.as_ref().map(|(from, to, rows)| DiffView {
            from: *from,
            to: *to,
            rows: rows.iter().map(|d| diff_row(&ctx, d)).collect(),
        }),
        threads,
        questions,
        max_text: MAX_QUERY_TEXT,
        confirm_accept: confirm_accept && decidable,
    }
}

/// Enough percent-encoding for an organisation's name in a query string.
fn urlencoding(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|e| e.trim_start_matches('=').to_string())
        .unwrap_or_default()
}

fn version_view(
    ctx: &Ctx,
    base: &str,
    unit_q: &str,
    r: &ResponseRow,
    v: &VersionRow,
) -> VersionView {
    let lang = ctx.lang;
    let mut marks = Vec::new();
    for (at, id) in [
        (v.recalled_at, "admin-version-recalled"),
        (v.returned_at, "admin-version-returned"),
        (v.accepted_at, "admin-version-accepted"),
    ] {
        if let Some(at) = at {
            marks.push(t(id, &[("date", when(lang, at))]));
        }
    }
    let channel = match &v.entered_by {
        Some(by) => entered_by(&ctx.names.user(by), &v.channel),
        None => t(&format!("admin-channel-{}", v.channel), &[]),
    };
    let signed_off = v.signed_off_name.as_ref().map(|name| {
        let title = v.signed_off_title.clone().unwrap_or_default();
        if title.is_empty() {
            name.clone()
        } else {
            format!("{name}, {title}")
        }
    });
    let unit_only = unit_q.trim_start_matches('&');
    let json_q = if unit_only.is_empty() {
        String::new()
    } else {
        format!("?{unit_only}")
    };
    VersionView {
        number: v.number,
        submitted: when(lang, v.submitted_at),
        by: ctx.names.link(&v.submitted_by),
        signed_off,
        channel,
        marks,
        counted: Some(v.number) == r.counted_version,
        view_url: format!("{base}?version={}{unit_q}#versions", v.number),
        json_url: format!("{base}/versions/{}.json{json_q}", v.number),
        diff_url: (v.number > 1).then(|| {
            format!(
                "{base}?from={}&to={}{unit_q}#versions",
                v.number - 1,
                v.number
            )
        }),
    }
}

fn shown_view(ctx: &Ctx, v: &VersionRow, answers: &VersionAnswers) -> ShownView {
    let visibility = Visibility::evaluate(ctx.survey, &answers.answers);
    let sections = ctx
        .survey
        .sections
        .iter()
        .filter(|s| visibility.section(&s.id))
        .map(|s| ShownSection {
            title: s.title.get(ctx.lang).to_string(),
            answers: s
                .questions
                .iter()
                .filter(|q| visibility.question(&q.id))
                .map(|q| {
                    let items = answers.answers.get(&q.id);
                    ShownAnswer {
                        question: q.text.get(ctx.lang).to_string(),
                        answer: ctx.display(&q.id, items),
                        answered: items.is_some_and(|i| !i.is_empty()),
                        files: ctx.files(&q.id, items),
                    }
                })
                .collect(),
        })
        .collect();
    ShownView {
        number: v.number,
        digest: v.digest.clone(),
        sections,
    }
}

fn diff_row(ctx: &Ctx, d: &DiffRow) -> DiffRowView {
    DiffRowView {
        question: ctx.question_text(&d.question_id),
        old: ctx.display(&d.question_id, d.old.as_ref()),
        new: ctx.display(&d.question_id, d.new.as_ref()),
        old_files: ctx.files(&d.question_id, d.old.as_ref()),
        new_files: ctx.files(&d.question_id, d.new.as_ref()),
        by: d
            .changed_by
            .as_deref()
            .map(|l| ctx.names.link(l))
            .unwrap_or_default(),
        at: d
            .changed_at
            .map(|at| when(ctx.lang, at))
            .unwrap_or_default(),
    }
}

/// One audit entry, readable.
#[derive(Serialize)]
pub struct AuditView {
    at: String,
    who: String,
    what: String,
    detail: String,
}

pub fn audit_views(
    rows: &[AuditRow],
    names: &Names,
    survey: &Survey,
    lang: &str,
) -> Vec<AuditView> {
    rows.iter()
        .map(|a| AuditView {
            at: when(lang, a.at),
            who: names.actor(&a.actor),
            what: t(&format!("admin-audit-{}", a.kind), &[]),
            detail: summarise(&a.detail, survey, lang),
        })
        .collect()
}

/// An entry's detail in a line: its fields as "key: value", questions by their text, long
/// texts cut.
fn summarise(detail: &str, survey: &Survey, lang: &str) -> String {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(detail)
    else {
        return String::new();
    };
    map.iter()
        .filter(|(k, v)| !v.is_null() && *k != "link" && *k != "query" && *v != "")
        .map(|(k, v)| {
            let value = match v {
                serde_json::Value::String(s) if k == "question" => survey
                    .question(s)
                    .map(|q| q.text.get(lang).to_string())
                    .unwrap_or_else(|| s.clone()),
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| i.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            let value: String = if value.chars().count() > 120 {
                value.chars().take(120).chain("…".chars()).collect()
            } else {
                value
            };
            format!("{k}: {value}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The form of a decision: which of the country's responses (an organisation's, or '').
#[derive(Deserialize)]
pub struct UnitForm {
    #[serde(default)]
    unit: String,
    /// Accepting with open queries: the owner ticked "accept all the same".
    #[serde(default)]
    confirm: Option<String>,
}

/// A decision's refusal shown on the country page.
async fn refusal_page(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    scope: &SurveyAdmin,
    iso3: &str,
    e: ReviewError,
) -> Result<HttpResponse, AppError> {
    let (text, status) = match &e {
        ReviewError::State(s) => (
            t("admin-cycle-refused", &[("status", status_label(*s))]),
            StatusCode::CONFLICT,
        ),
        ReviewError::QueryClosed => (t("admin-query-already-closed", &[]), StatusCode::CONFLICT),
        ReviewError::Invalid(TextProblem::Empty) => (
            t("admin-query-text-empty", &[]),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ReviewError::Invalid(TextProblem::TooLong) => (
            t("error-too-long", &[("max", MAX_QUERY_TEXT.to_string())]),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        _ => return Err(app_error(e)),
    };
    let outcome = Outcome::error(text);
    country_page(state, req, scope, iso3, outcome, status).await
}

/// Run a decision on the response of `unit` as the signed-in user.
async fn decide<T, F>(
    state: &web::Data<AppState>,
    scope: &SurveyAdmin,
    iso3: &str,
    unit: &str,
    act: F,
) -> Result<Result<T, ReviewError>, AppError>
where
    T: Send + 'static,
    F: FnOnce(
            &mut crate::db::DbConn,
            &Survey,
            &ResponseRow,
            &crate::accounts::User,
        ) -> Result<T, ReviewError>
        + Send
        + 'static,
{
    state.countries.get(iso3).ok_or(AppError::NotFound)?;
    let (survey, user) = (scope.survey.clone(), scope.user.clone());
    let (code, unit) = (iso3.to_string(), unit.trim().to_string());
    with_conn(state, move |conn| {
        let r = match secretariat::find(conn, &survey, &code, &unit) {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        Ok(act(conn, &survey, &r, &user))
    })
    .await
}

fn respondent(state: &AppState, iso3: &str, unit: &str) -> String {
    let country = state
        .countries
        .get(iso3)
        .map(|c| c.name(crate::web::page_language()).to_string())
        .unwrap_or_else(|| iso3.to_string());
    crate::survey::respondent_name(unit.trim(), &country)
}

pub async fn begin_review(
    state: web::Data<AppState>,
    req: HttpRequest,
    scope: SurveyAdmin,
    path: web::Path<(String, String)>,
    CsrfForm(form): CsrfForm<UnitForm>,
) -> Result<HttpResponse, AppError> {
    let iso3 = path.into_inner().1;
    let done = decide(&state, &scope, &iso3, &form.unit, |conn, _, r, user| {
        secretariat::begin_review(conn, r, user, campaign::now())
    })
    .await?;
    if let Err(e) = done {
        return refusal_page(&state, &req, &scope, &iso3, e).await;
    }
    let who = respondent(&state, &iso3, &form.unit);
    let outcome = Outcome::message(t("admin-review-begun", &[("country", who)]));
    country_page(&state, &req, &scope, &iso3, outcome, StatusCode::OK).await
}

pub async fn return_response(
    state: web::Data<AppState>,
    req: HttpRequest,
    scope: SurveyAdmin,
    path: web::Path<(String, String)>,
    CsrfForm(form): CsrfForm<UnitForm>,
) -> Result<HttpResponse, AppError> {
    let iso3 = path.into_inner().1;
    let app = state.clone();
    let help = help_address(&state);
    let done = decide(
        &state,
        &scope,
        &iso3,
        &form.unit,
        move |conn, survey, r, user| {
            let mailing = Mailing {
                emails: &app.emails,
                countries: &app.countries,
                help: &help,
            };
            secretariat::return_response(conn, survey, &mailing, r, user, campaign::now())
        },
    )
    .await?;
    let queued = match done {
        Ok(n) => n,
        Err(e) => return refusal_page(&state, &req, &scope, &iso3, e).await,
    };
    let who = respondent(&state, &iso3, &form.unit);
    let args = [("country", who), ("emails", queued.to_string())];
    let outcome = Outcome::message(t("admin-returned-done", &args));
    country_page(&state, &req, &scope, &iso3, outcome, StatusCode::OK).await
}

pub async fn accept(
    state: web::Data<AppState>,
    req: HttpRequest,
    scope: SurveyAdmin,
    path: web::Path<(String, String)>,
    CsrfForm(form): CsrfForm<UnitForm>,
) -> Result<HttpResponse, AppError> {
    let iso3 = path.into_inner().1;
    let confirmed = form.confirm.as_deref() == Some("yes");
    let done = decide(
        &state,
        &scope,
        &iso3,
        &form.unit,
        move |conn, _, r, user| secretariat::accept(conn, r, user, confirmed, campaign::now()),
    )
    .await?;
    let who = respondent(&state, &iso3, &form.unit);
    match done {
        Ok(()) => {
            let outcome = Outcome::message(t("admin-accepted-done", &[("country", who)]));
            country_page(&state, &req, &scope, &iso3, outcome, StatusCode::OK).await
        }
        Err(ReviewError::OpenQueries(n)) => {
            let mut outcome = Outcome::error(t(
                "admin-accept-confirm",
                &[("country", who), ("open", n.to_string())],
            ));
            outcome.confirm_accept = Some(form.unit.trim().to_string());
            country_page(&state, &req, &scope, &iso3, outcome, StatusCode::CONFLICT).await
        }
        Err(e) => refusal_page(&state, &req, &scope, &iso3, e).await,
    }
}

#[derive(Deserialize)]
pub struct RaiseForm {
    #[serde(default)]
    unit: String,
    #[serde(default)]
    question: String,
    #[serde(default)]
    body: String,
}

pub async fn raise_query(
    state: web::Data<AppState>,
    req: HttpRequest,
    scope: SurveyAdmin,
    path: web::Path<(String, String)>,
    CsrfForm(form): CsrfForm<RaiseForm>,
) -> Result<HttpResponse, AppError> {
    let iso3 = path.into_inner().1;
    if scope.survey.question(form.question.trim()).is_none() {
        let outcome = Outcome::error(t("admin-query-no-question", &[]));
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return country_page(&state, &req, &scope, &iso3, outcome, status).await;
    }
    let (question, body) = (form.question.trim().to_string(), form.body.clone());
    let done = decide(
        &state,
        &scope,
        &iso3,
        &form.unit,
        move |conn, survey, r, user| {
            queries::raise(conn, survey, r, &question, &body, user, campaign::now())
        },
    )
    .await?;
    if let Err(e) = done {
        return refusal_page(&state, &req, &scope, &iso3, e).await;
    }
    let outcome = Outcome::message(t("admin-query-raised", &[]));
    country_page(&state, &req, &scope, &iso3, outcome, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct ThreadForm {
    #[serde(default)]
    unit: String,
    #[serde(default)]
    body: String,
}

/// What to do with a query: reply in its thread or close it.
enum ThreadAct {
    Reply(String),
    Close,
}

async fn on_query(
    state: web::Data<AppState>,
    req: HttpRequest,
    scope: SurveyAdmin,
    path: web::Path<(String, String, String)>,
    unit: String,
    act: ThreadAct,
) -> Result<HttpResponse, AppError> {
    let (_, iso3, query_id) = path.into_inner();
    let message = match act {
        ThreadAct::Reply(_) => t("admin-query-replied", &[]),
        ThreadAct::Close => t("admin-query-closed-done", &[]),
    };
    let done = decide(&state, &scope, &iso3, &unit, move |conn, _, r, user| {
        let query = queries::response_query(conn, r, &query_id)?;
        let now = campaign::now();
        match act {
            ThreadAct::Reply(body) => {
                queries::reply(conn, &query, r, Author::Secretariat(user), &body, now)
            }
            ThreadAct::Close => queries::close(conn, r, &query, user, now),
        }
    })
    .await?;
    if let Err(e) = done {
        return refusal_page(&state, &req, &scope, &iso3, e).await;
    }
    let outcome = Outcome::message(message);
    country_page(&state, &req, &scope, &iso3, outcome, StatusCode::OK).await
}

pub async fn reply_query(
    state: web::Data<AppState>,
    req: HttpRequest,
    scope: SurveyAdmin,
    path: web::Path<(String, String, String)>,
    CsrfForm(form): CsrfForm<ThreadForm>,
) -> Result<HttpResponse, AppError> {
    on_query(
        state,
        req,
        scope,
        path,
        form.unit,
        ThreadAct::Reply(form.body),
    )
    .await
}

pub async fn close_query(
    state: web::Data<AppState>,
    req: HttpRequest,
    scope: SurveyAdmin,
    path: web::Path<(String, String, String)>,
    CsrfForm(form): CsrfForm<ThreadForm>,
) -> Result<HttpResponse, AppError> {
    on_query(state, req, scope, path, form.unit, ThreadAct::Close).await
}

#[derive(Deserialize)]
pub struct VersionQuery {
    #[serde(default)]
    unit: String,
}

/// A version's canonical content, byte for byte: its SHA-256 is the receipt's digest.
pub async fn version_json(
    state: web::Data<AppState>,
    scope: SurveyAdmin,
    path: web::Path<(String, String, String)>,
    query: web::Query<VersionQuery>,
) -> Result<HttpResponse, AppError> {
    let (_, iso3, number) = path.into_inner();
    let number: i32 = number.parse().map_err(|_| AppError::NotFound)?;
    let unit = query.into_inner().unit;
    let version = decide(&state, &scope, &iso3, &unit, move |conn, _, r, _| {
        versions::version(conn, &r.id, number)?.ok_or(ReviewError::NotFound)
    })
    .await?
    .map_err(app_error)?;
    let filename = format!("{}-{iso3}-v{number}.json", scope.survey.id);
    Ok(no_store(
        HttpResponse::Ok()
            .content_type("application/json")
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ))
            .body(version.content),
    ))
}

#[derive(Deserialize)]
pub struct EntryForm {
    #[serde(default)]
    unit: String,
    #[serde(default)]
    channel: String,
}

/// Open a link to enter a report the country sent by email, on paper or otherwise, and go
/// to its forms.
pub async fn open_entry(
    state: web::Data<AppState>,
    req: HttpRequest,
    scope: SurveyAdmin,
    path: web::Path<(String, String)>,
    CsrfForm(form): CsrfForm<EntryForm>,
) -> Result<HttpResponse, AppError> {
    let iso3 = path.into_inner().1;
    state.countries.get(&iso3).ok_or(AppError::NotFound)?;
    let channel = Channel::parse(form.channel.trim()).unwrap_or(Channel::Web);
    let (survey, user, code) = (scope.survey.clone(), scope.user.clone(), iso3.clone());
    let unit = form.unit.clone();
    let opened = with_conn(&state, move |conn| {
        secretariat::open_entry(conn, &survey, &code, &unit, channel, &user, campaign::now())
            .map_err(app_error)
    })
    .await?;
    match opened {
        Ok(token) => Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, format!("/r/{token}")))
            .finish()),
        Err(problem) => {
            let text = match problem {
                EntryProblem::Channel => t("admin-entry-bad-channel", &[]),
                EntryProblem::Population => {
                    scope.survey.population.refusal(&scope.survey.id, &iso3)
                }
                EntryProblem::Unit => t("admin-issue-unit-missing", &[]),
            };
            let outcome = Outcome::error(text);
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            country_page(&state, &req, &scope, &iso3, outcome, status).await
        }
    }
}

/// The channels an owner may enter a report for.
#[derive(Serialize)]
pub struct ChannelChoice {
    value: &'static str,
    label: String,
}

pub fn channel_choices() -> Vec<ChannelChoice> {
    [Channel::Email, Channel::Paper, Channel::Other]
        .into_iter()
        .map(|c| ChannelChoice {
            value: c.as_str(),
            label: t(&format!("admin-channel-{}", c.as_str()), &[]),
        })
        .collect()
}

/// The page's `?version=`, `?from=&to=` (and `?unit=` in a survey of organisations).
#[derive(Deserialize, Default, Clone)]
pub struct CycleQuery {
    version: Option<i32>,
    from: Option<i32>,
    to: Option<i32>,
    #[serde(default)]
    unit: String,
}

impl CycleQuery {
    /// What to load for the response of `unit`: the request applies to the one it names.
    pub fn for_unit(&self, unit: &str) -> CycleRequest {
        if self.unit.trim() != unit {
            return CycleRequest::default();
        }
        CycleRequest {
            version: self.version,
            from: self.from,
            to: self.to,
        }
    }
}

//! A survey's round at a glance: the status table of every country (counts that are also
//! filters, a filter by region and by stage, sorting), contacts, invitations and reminders.

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::{admin_view, campaign_for, csv_response, t, with_conn, Notices};
use crate::accounts::User;
use crate::campaign::{self, CountryStatus, Invitation, Stage};
use crate::contacts;
use crate::db::responses::ResponseStatus;
use crate::error::AppError;
use crate::mail;
use crate::survey::Survey;
use crate::web::extract::{CsrfForm, SurveyAdmin};
use crate::web::AppState;
use chrono::NaiveDateTime;

/// Largest contact file accepted.
const MAX_CSV_BYTES: usize = 2 * 1024 * 1024;

/// How the status table is sorted and filtered (the query string of the survey page).
#[derive(Deserialize, Default, Clone)]
pub struct TableQuery {
    sort: Option<String>,
    region: Option<String>,
    stage: Option<String>,
}

impl TableQuery {
    fn sort(&self) -> String {
        let s = self.sort.as_deref().unwrap_or("country");
        let known = campaign::SORT_KEYS.contains(&s.trim_start_matches('-'));
        if known { s } else { "country" }.to_string()
    }

    fn stage(&self) -> Option<StageFilter> {
        self.stage.as_deref().and_then(StageFilter::parse)
    }

    fn region(&self) -> Option<&str> {
        self.region.as_deref().filter(|r| !r.is_empty())
    }

    /// The query string for these filters with another sort or stage.
    fn href(&self, id: &str, sort: &str, stage: Option<StageFilter>) -> String {
        let mut pairs = vec![("sort", sort.to_string())];
        if let Some(r) = self.region() {
            pairs.push(("region", r.to_string()));
        }
        if let Some(s) = stage {
            pairs.push(("stage", s.as_str().to_string()));
        }
        let query = serde_urlencoded::to_string(pairs).unwrap_or_default();
        format!("/admin/surveys/{id}?{query}")
    }
}

/// The stages a secretariat filters the table by. "Invited" and "opened" count every country
/// that got at least that far, so the counts read as a funnel; so does "submitted", every
/// response with the secretariat (submitted, under review or accepted), of which "under
/// review" and "accepted" are parts. "Awaiting sign-off" and "returned" are with the country.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StageFilter {
    NotInvited,
    Invited,
    Opened,
    Draft,
    AwaitingSignOff,
    Submitted,
    UnderReview,
    Returned,
    Accepted,
}

impl StageFilter {
    const ALL: [StageFilter; 9] = [
        StageFilter::NotInvited,
        StageFilter::Invited,
        StageFilter::Opened,
        StageFilter::Draft,
        StageFilter::AwaitingSignOff,
        StageFilter::Submitted,
        StageFilter::UnderReview,
        StageFilter::Returned,
        StageFilter::Accepted,
    ];

    fn as_str(self) -> &'static str {
        match self {
            StageFilter::NotInvited => "not-invited",
            StageFilter::Invited => "invited",
            StageFilter::Opened => "opened",
            StageFilter::Draft => "draft",
            StageFilter::AwaitingSignOff => "awaiting-sign-off",
            StageFilter::Submitted => "submitted",
            StageFilter::UnderReview => "under-review",
            StageFilter::Returned => "returned",
            StageFilter::Accepted => "accepted",
        }
    }

    fn parse(s: &str) -> Option<StageFilter> {
        StageFilter::ALL.into_iter().find(|f| f.as_str() == s)
    }

    fn label(self) -> String {
        t(&format!("admin-stage-{}", self.as_str()), &[])
    }

    /// Each count is a fact about the country, not a step of a funnel: a country may answer
    /// through a link issued by hand without an invitation ever being sent.
    fn matches(self, row: &CountryStatus) -> bool {
        let stage = row.stage();
        match self {
            StageFilter::NotInvited => row.invited.is_none(),
            StageFilter::Invited => row.invited.is_some(),
            StageFilter::Opened => {
                row.first_opened.is_some()
                    || row.started
                    || row.response.is_some_and(|s| s != ResponseStatus::Draft)
            }
            StageFilter::Draft => stage == Stage::Draft,
            StageFilter::AwaitingSignOff => stage == Stage::AwaitingSignOff,
            StageFilter::Submitted => row.response.is_some_and(ResponseStatus::is_submitted),
            StageFilter::UnderReview => stage == Stage::UnderReview,
            StageFilter::Returned => stage == Stage::Returned,
            StageFilter::Accepted => stage == Stage::Accepted,
        }
    }
}

#[derive(Serialize)]
struct SurveyPage {
    id: String,
    title: String,
    #[serde(flatten)]
    notices: Notices,
    import_errors: Vec<String>,
    outbox: String,
    /// "Asked" first, then one per stage: each a link that filters the table.
    counts: Vec<CountLink>,
    regions: Vec<Choice>,
    stages: Vec<Choice>,
    sort: String,
    columns: Vec<Column>,
    rows: Vec<Row>,
    /// "12 of 193 countries shown" when a filter is on.
    shown: Option<String>,
    is_admin: bool,
    mail_on: bool,
    failures: Vec<String>,
}

#[derive(Serialize)]
struct CountLink {
    label: String,
    count: usize,
    href: String,
    current: bool,
}

#[derive(Serialize)]
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Serialize)]
struct Column {
    label: String,
    href: String,
    /// `ascending` or `descending` on the sorted column.
    sorted: Option<&'static str>,
}

/// One line of the table: dates as days, the full time in a tooltip-free `<time>` element.
#[derive(Serialize)]
struct Row {
    iso3: String,
    name: String,
    contacts: usize,
    invited: Cell,
    opened: Cell,
    progress: String,
    submitted: Cell,
    reminder: Cell,
    errors: usize,
    deadline: Cell,
    stage: String,
}

/// A date cell: the day shown, the full UTC time kept in `datetime`.
#[derive(Serialize, Default)]
struct Cell {
    day: String,
    datetime: String,
}

impl Cell {
    fn at(value: Option<NaiveDateTime>) -> Cell {
        match value {
            None => Cell::default(),
            Some(at) => Cell {
                day: at.format("%Y-%m-%d").to_string(),
                datetime: at.format("%Y-%m-%dT%H:%M").to_string(),
            },
        }
    }

    fn invited(value: Option<Invitation>) -> Cell {
        match value {
            None => Cell::default(),
            Some(Invitation::Queued) => Cell {
                day: t("admin-queued", &[]),
                datetime: String::new(),
            },
            Some(Invitation::Delivered(at)) => Cell::at(Some(at)),
        }
    }
}

const COLUMNS: [(&str, &str); 8] = [
    ("country", "admin-col-country"),
    ("contacts", "admin-col-contacts"),
    ("invited", "admin-col-invited"),
    ("opened", "admin-col-opened"),
    ("progress", "admin-col-progress"),
    ("submitted", "admin-col-submitted"),
    ("reminder", "admin-col-reminder"),
    ("errors", "admin-col-errors"),
];

fn columns(id: &str, q: &TableQuery) -> Vec<Column> {
    let sort = q.sort();
    COLUMNS
        .iter()
        .map(|(key, label)| {
            let (sorted, next) = if sort == *key {
                (Some("ascending"), format!("-{key}"))
            } else if sort == format!("-{key}") {
                (Some("descending"), key.to_string())
            } else {
                (None, key.to_string())
            };
            Column {
                label: t(label, &[]),
                href: q.href(id, &next, q.stage()),
                sorted,
            }
        })
        .collect()
}

/// What the survey page loads: the table, delivery failures, outbox counts.
struct Loaded {
    rows: Vec<CountryStatus>,
    failures: Vec<mail::OutboxRow>,
    counts: Vec<(String, i64)>,
}

async fn load(
    state: &web::Data<AppState>,
    survey: &std::sync::Arc<Survey>,
    sort: String,
    lang: &'static str,
) -> Result<Loaded, AppError> {
    let (app, s) = (state.clone(), survey.clone());
    with_conn(state, move |conn| {
        let rows = campaign::status_table(conn, &s, &app.countries, &sort, lang)?;
        Ok(Loaded {
            rows,
            failures: mail::failures(conn, &s.id)?,
            counts: mail::counts(conn, &s.id)?,
        })
    })
    .await
}

fn outbox_line(counts: &[(String, i64)]) -> String {
    let count = |status: &str| {
        counts
            .iter()
            .find(|(s, _)| s == status)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    };
    let pending = count(mail::STATUS_PENDING) + count(mail::STATUS_SENDING);
    t(
        "admin-outbox",
        &[
            ("pending", pending.to_string()),
            ("sent", count(mail::STATUS_SENT).to_string()),
            ("failed", count(mail::STATUS_FAILED).to_string()),
        ],
    )
}

fn stage_label(stage: Stage) -> String {
    let filter = match stage {
        Stage::Listed => StageFilter::NotInvited,
        Stage::Invited => StageFilter::Invited,
        Stage::Opened => StageFilter::Opened,
        Stage::Draft => StageFilter::Draft,
        Stage::AwaitingSignOff => StageFilter::AwaitingSignOff,
        Stage::Submitted => StageFilter::Submitted,
        Stage::UnderReview => StageFilter::UnderReview,
        Stage::Returned => StageFilter::Returned,
        Stage::Accepted => StageFilter::Accepted,
    };
    filter.label()
}

fn row_view(r: &CountryStatus) -> Row {
    let stage = r.stage();
    let name = if r.unit.is_empty() {
        r.country.clone()
    } else {
        format!("{}, {}", r.unit, r.country)
    };
    Row {
        iso3: r.iso3.clone(),
        name,
        contacts: r.contacts,
        invited: Cell::invited(r.invited),
        opened: Cell::at(r.first_opened),
        progress: format!("{}/{}", r.sections_done, r.sections_total),
        submitted: Cell::at(r.submitted),
        reminder: Cell::at(r.last_reminder),
        errors: r.delivery_errors,
        deadline: Cell::at(r.deadline),
        stage: stage_label(stage),
    }
}

/// The survey page: counts, filters, the table, and (for administrators) the forms.
/// The table's part of the page: counts, filters and the lines shown.
struct Table {
    counts: Vec<CountLink>,
    regions: Vec<Choice>,
    stages: Vec<Choice>,
    rows: Vec<Row>,
    shown: Option<String>,
}

impl Table {
    fn new(state: &AppState, survey: &Survey, all: &[CountryStatus], q: &TableQuery) -> Table {
        let region_of = |iso3: &str| state.countries.get(iso3).map(|c| c.region_code.as_str());
        let in_region: Vec<&CountryStatus> = all
            .iter()
            .filter(|r| {
                q.region()
                    .is_none_or(|code| region_of(&r.iso3) == Some(code))
            })
            .collect();
        let rows: Vec<Row> = in_region
            .iter()
            .filter(|r| q.stage().is_none_or(|f| f.matches(r)))
            .map(|r| row_view(r))
            .collect();
        let filtered = q.region().is_some() || q.stage().is_some();
        let shown = filtered.then(|| {
            let counts = [
                ("shown", rows.len().to_string()),
                ("total", all.len().to_string()),
            ];
            t("admin-rows-shown", &counts)
        });
        Table {
            counts: count_links(survey, &in_region, q),
            regions: region_choices(state, all, q),
            stages: stage_choices(q),
            rows,
            shown,
        }
    }
}

/// "Asked" and one count per stage, each a link that filters the table. Counted: the survey's
/// population (a response kept from outside it is listed, not counted).
fn count_links(survey: &Survey, in_region: &[&CountryStatus], q: &TableQuery) -> Vec<CountLink> {
    let asked: Vec<&CountryStatus> = in_region
        .iter()
        .copied()
        .filter(|r| !survey.unit.is_country() || survey.population.contains(&r.iso3))
        .collect();
    let mut counts = vec![CountLink {
        label: t("admin-stage-asked", &[]),
        count: asked.len(),
        href: q.href(&survey.id, &q.sort(), None),
        current: q.stage().is_none(),
    }];
    counts.extend(StageFilter::ALL.into_iter().map(|f| CountLink {
        label: f.label(),
        count: asked.iter().filter(|r| f.matches(r)).count(),
        href: q.href(&survey.id, &q.sort(), Some(f)),
        current: q.stage() == Some(f),
    }));
    counts
}

/// "All regions" and every region with a line in the table, by name.
fn region_choices(state: &AppState, all: &[CountryStatus], q: &TableQuery) -> Vec<Choice> {
    let lang = crate::web::page_language();
    let mut seen: Vec<(String, String)> = all
        .iter()
        .filter_map(|r| state.countries.get(&r.iso3))
        .map(|c| (c.region_code.clone(), c.region(lang).to_string()))
        .collect();
    seen.sort_by(|a, b| a.1.cmp(&b.1));
    seen.dedup();
    let all_regions = Choice {
        value: String::new(),
        label: t("admin-filter-all-regions", &[]),
        selected: q.region().is_none(),
    };
    let each = seen.into_iter().map(|(code, label)| Choice {
        selected: q.region() == Some(code.as_str()),
        value: code,
        label,
    });
    std::iter::once(all_regions).chain(each).collect()
}

fn stage_choices(q: &TableQuery) -> Vec<Choice> {
    let all_stages = Choice {
        value: String::new(),
        label: t("admin-filter-all-stages", &[]),
        selected: q.stage().is_none(),
    };
    let each = StageFilter::ALL.into_iter().map(|f| Choice {
        value: f.as_str().to_string(),
        label: f.label(),
        selected: q.stage() == Some(f),
    });
    std::iter::once(all_stages).chain(each).collect()
}

fn failure_lines(failures: &[mail::OutboxRow]) -> Vec<String> {
    failures
        .iter()
        .map(|f| {
            let parts = [
                ("recipient", f.recipient.clone()),
                ("kind", f.kind.to_string()),
                ("error", f.last_error.clone().unwrap_or_default()),
            ];
            t("admin-failure-row", &parts)
        })
        .collect()
}

/// The survey page: counts, filters, the table, and (for administrators) the forms.
async fn survey_page(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    (user, survey): (&User, &std::sync::Arc<Survey>),
    q: &TableQuery,
    notices: Notices,
    import_errors: Vec<String>,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let lang = crate::web::page_language();
    let loaded = load(state, survey, q.sort(), lang).await?;
    let table = Table::new(state, survey, &loaded.rows, q);
    let title = survey.title.get(lang).to_string();
    let view = SurveyPage {
        id: survey.id.clone(),
        title: title.clone(),
        notices,
        import_errors,
        outbox: outbox_line(&loaded.counts),
        counts: table.counts,
        regions: table.regions,
        stages: table.stages,
        sort: q.sort(),
        columns: columns(&survey.id, q),
        rows: table.rows,
        shown: table.shown,
        is_admin: user.is_admin(),
        mail_on: state.mailer.is_some(),
        failures: failure_lines(&loaded.failures),
    };
    let page = format!("/admin/surveys/{}", survey.id);
    let layout = super::wide_layout(req, title, &page);
    admin_view(state, req, "admin/survey", layout, &view, status)
}

pub async fn survey(
    state: web::Data<AppState>,
    req: HttpRequest,
    scope: SurveyAdmin,
    query: web::Query<TableQuery>,
) -> Result<HttpResponse, AppError> {
    let who = (&scope.user, &scope.survey);
    let notices = Notices::default();
    survey_page(
        &state,
        &req,
        who,
        &query,
        notices,
        Vec::new(),
        StatusCode::OK,
    )
    .await
}

/// After a form: the page again, unfiltered, with what the form did.
async fn after_form(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    scope: &SurveyAdmin,
    notices: Notices,
    import_errors: Vec<String>,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let who = (&scope.user, &scope.survey);
    let q = TableQuery::default();
    survey_page(state, req, who, &q, notices, import_errors, status).await
}

pub async fn status_csv(
    state: web::Data<AppState>,
    scope: SurveyAdmin,
    query: web::Query<TableQuery>,
) -> Result<HttpResponse, AppError> {
    let (app, survey) = (state.clone(), scope.survey.clone());
    let sort = query.sort();
    let csv = with_conn(&state, move |conn| {
        // The CSV is data: English names, whatever the page's language.
        let rows = campaign::status_table(conn, &survey, &app.countries, &sort, "en")?;
        campaign::status_csv(&survey, &rows).map_err(AppError::from)
    })
    .await?;
    let name = format!("{}-status.csv", scope.survey.id);
    Ok(csv_response(csv, &name))
}

fn admin_only(scope: &SurveyAdmin) -> Result<(), AppError> {
    if scope.user.is_admin() {
        Ok(())
    } else {
        Err(AppError::Forbidden)
    }
}

pub async fn contacts_csv(
    state: web::Data<AppState>,
    scope: SurveyAdmin,
) -> Result<HttpResponse, AppError> {
    admin_only(&scope)?;
    let id = scope.survey.id.clone();
    let csv = with_conn(&state, move |conn| {
        let list = contacts::list(conn, &id)?;
        contacts::to_csv(&list).map_err(AppError::from)
    })
    .await?;
    Ok(csv_response(
        csv,
        &format!("{}-contacts.csv", scope.survey.id),
    ))
}

pub async fn import_contacts(
    state: web::Data<AppState>,
    req: HttpRequest,
    scope: SurveyAdmin,
    payload: Multipart,
) -> Result<HttpResponse, AppError> {
    admin_only(&scope)?;
    let file = crate::web::extract::read_file_form(&req, payload, MAX_CSV_BYTES).await?;
    let rows = contacts::parse_csv_for(&file, state.countries.as_ref(), &scope.survey);
    let rows = match rows {
        Ok(rows) => rows,
        Err(errors) => {
            let list = errors.iter().map(|e| e.to_string()).collect();
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return after_form(&state, &req, &scope, Notices::default(), list, status).await;
        }
    };
    let id = scope.survey.id.clone();
    let s = with_conn(&state, move |conn| {
        Ok(contacts::import(conn, &id, &rows, campaign::now())?)
    })
    .await?;
    let counts = [
        ("added", s.added.to_string()),
        ("updated", s.updated.to_string()),
        ("unchanged", s.unchanged.to_string()),
    ];
    let done = Notices::message(t("admin-import-done", &counts));
    after_form(&state, &req, &scope, done, Vec::new(), StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct RoundForm {
    #[serde(default)]
    countries: String,
}

/// The codes typed in the invitation form: separated by commas, spaces or semicolons.
fn country_codes(text: &str) -> Vec<String> {
    text.split([',', ' ', ';'])
        .map(|c| c.trim().to_uppercase())
        .filter(|c| !c.is_empty())
        .collect()
}

/// Why an invitation or reminder round cannot run: unknown codes, or email switched off.
fn round_refusal(state: &AppState, only: &[String]) -> Option<(String, StatusCode)> {
    let unknown: Vec<&str> = only
        .iter()
        .filter(|c| state.countries.get(c).is_none())
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        let codes = [("codes", unknown.join(", "))];
        Some((
            t("admin-bad-countries", &codes),
            StatusCode::UNPROCESSABLE_ENTITY,
        ))
    } else if state.mailer.is_none() {
        Some((t("admin-mail-off", &[]), StatusCode::CONFLICT))
    } else {
        None
    }
}

#[derive(Clone, Copy)]
enum Round {
    Invite,
    Remind,
}

async fn round(
    state: web::Data<AppState>,
    req: HttpRequest,
    scope: SurveyAdmin,
    form: RoundForm,
    which: Round,
) -> Result<HttpResponse, AppError> {
    admin_only(&scope)?;
    let only = country_codes(&form.countries);
    let refusal = round_refusal(&state, &only);
    if let Some((error, status)) = refusal {
        return after_form(
            &state,
            &req,
            &scope,
            Notices::error(error),
            Vec::new(),
            status,
        )
        .await;
    }
    let (app, s) = (state.clone(), scope.survey.clone());
    let help = super::help_address(&state);
    let queued = with_conn(&state, move |conn| {
        let c = campaign_for(&app, &s, &help);
        let queued = match which {
            Round::Invite => c.invite(conn, &only, campaign::now())?,
            Round::Remind => c.remind(conn, campaign::now())?,
        };
        Ok(queued)
    })
    .await?;
    let counts = [
        ("queued", queued.queued.to_string()),
        ("skipped", queued.skipped.to_string()),
    ];
    let done = Notices::message(t("admin-queued-result", &counts));
    after_form(&state, &req, &scope, done, Vec::new(), StatusCode::OK).await
}

pub async fn invite(
    state: web::Data<AppState>,
    req: HttpRequest,
    scope: SurveyAdmin,
    CsrfForm(form): CsrfForm<RoundForm>,
) -> Result<HttpResponse, AppError> {
    round(state, req, scope, form, Round::Invite).await
}

pub async fn remind(
    state: web::Data<AppState>,
    req: HttpRequest,
    scope: SurveyAdmin,
    CsrfForm(form): CsrfForm<RoundForm>,
) -> Result<HttpResponse, AppError> {
    round(state, req, scope, form, Round::Remind).await
}

//! Results pages for survey owners and administrators: dashboard, one question, compendium,
//! needs and matching, exports. The numbers come from `crate::results`; `views` shapes them
//! into each page's typed view (tables, and SVG bar charts from `charts` beside them).

mod charts;
mod stream;
mod views;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

use super::admin::{admin_view, csv_response, no_store, with_conn};
use super::extract::{Lang, SurveyAdmin};
use super::render::Layout;
use super::AppState;
use crate::db::DbConn;
use crate::error::AppError;
use crate::reference::Countries;
use crate::results::aggregate::{self, Filter, Grouping};
use crate::results::cache::Weight;
use crate::results::{export, practices};
use crate::survey::{Question, QuestionKind, Survey};
use views::{
    CompendiumPage, CompendiumPart, CompendiumWindow, DashboardPage, Filters, Head, NeedsPage,
    QuestionFigures, QuestionPage, Words,
};

#[derive(serde::Deserialize, Default)]
pub struct ResultsQuery {
    drafts: Option<String>,
    /// "1": only responses the secretariat accepted.
    accepted: Option<String>,
    region: Option<String>,
    income: Option<String>,
    by: Option<String>,
    /// Compendium page: one theme only, and which page of practices.
    theme: Option<String>,
    page: Option<usize>,
}

impl ResultsQuery {
    /// The filter the query asks for, within the survey's population.
    pub(super) fn filter(&self, countries: &Countries, survey: &Survey) -> Filter {
        let region = self
            .region
            .clone()
            .filter(|r| countries.iter().any(|c| &c.region_code == r));
        let income = self
            .income
            .clone()
            .filter(|i| ["L", "LM", "UM", "H"].contains(&i.as_str()));
        Filter {
            include_drafts: self.drafts.as_deref() == Some("1"),
            accepted_only: self.accepted.as_deref() == Some("1"),
            region,
            income,
            population: None,
        }
        .within(survey)
    }

    /// The same filters as a query string, for links between results pages.
    pub(super) fn query_string(&self, filter: &Filter) -> String {
        match filter.parameters() {
            p if p.is_empty() => p,
            p => format!("?{p}"),
        }
    }
}

fn words(state: &AppState, Lang(lang): Lang) -> Words<'_> {
    Words {
        lang,
        countries: &state.countries,
    }
}

/// A results page from its view, titled `title`.
fn results_view<T: serde::Serialize>(
    state: &AppState,
    req: &HttpRequest,
    name: &str,
    title: String,
    view: &T,
) -> Result<HttpResponse, AppError> {
    admin_view(
        state,
        req,
        name,
        Layout::titled(title),
        view,
        StatusCode::OK,
    )
}

/// Where a page's figures are kept for repeat views: what they depend on besides the
/// generations of the surveys they count (None: results with drafts, never kept).
fn cache_key(page: &str, survey: &Survey, filter: &Filter, rest: &str) -> Option<String> {
    (!filter.include_drafts).then(|| {
        format!(
            "{page}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{rest}",
            survey.id,
            survey.version,
            filter.parameters()
        )
    })
}

/// `compute`'s figures, or the same kept from an earlier view while none of `surveys` changed
/// what counts since.
fn cached<T: Weight + Send + Sync + 'static>(
    state: &AppState,
    conn: &mut DbConn,
    key: Option<String>,
    surveys: &[&str],
    compute: impl FnOnce(&mut DbConn) -> Result<T, AppError>,
) -> Result<std::sync::Arc<T>, AppError> {
    match key {
        None => Ok(std::sync::Arc::new(compute(conn)?)),
        Some(key) => {
            let generations = crate::results::cache::generations(conn, surveys)?;
            state
                .results_cache
                .get_or_compute(&key, generations, || compute(conn))
        }
    }
}

/// The groupings the dashboard shows response rates by.
const RATE_GROUPINGS: [Option<Grouping>; 4] = [
    None,
    Some(Grouping::Region),
    Some(Grouping::Income),
    Some(Grouping::Development),
];

pub async fn dashboard(
    state: web::Data<AppState>,
    req: HttpRequest,
    scope: SurveyAdmin,
    lang: Lang,
    query: web::Query<ResultsQuery>,
) -> Result<HttpResponse, AppError> {
    let survey = scope.survey;
    let filter = query.filter(&state.countries, &survey);
    let (s, f) = (survey.clone(), filter.clone());
    let tables = with_conn(&state, move |conn| {
        let rates = aggregate::response_rates_by(conn, &s, &f, &RATE_GROUPINGS)?;
        Ok(RATE_GROUPINGS.into_iter().zip(rates).collect::<Vec<_>>())
    })
    .await?;
    let w = words(&state, lang);
    let head = Head::new(&survey, w.lang, query.query_string(&filter));
    let filters = Filters::new(w, &filter, None);
    let view = DashboardPage::new(w, head, filters, &survey, tables);
    results_view(
        &state,
        &req,
        "results/dashboard",
        w.t("results-title", &[]),
        &view,
    )
}

/// What the results show of a question, by its kind. The match has no catch-all: a new
/// question kind must say how its results are shown.
enum Shown {
    /// Counts per option (choices, yes/no, matrix cells, countries).
    Choices,
    /// Count, minimum, median, maximum.
    Numbers,
    /// Count, earliest, latest.
    Dates,
    /// Every answer with its country.
    Texts,
    /// How many countries attached evidence, and how many files.
    Files,
}

impl Shown {
    fn of(kind: &QuestionKind) -> Shown {
        use QuestionKind as K;
        match kind {
            K::SingleChoice { .. }
            | K::MultipleChoice { .. }
            | K::YesNo
            | K::Matrix { .. }
            | K::Country => Shown::Choices,
            K::Integer { .. } | K::Decimal { .. } | K::Percentage => Shown::Numbers,
            K::Date { .. } => Shown::Dates,
            K::ShortText { .. } | K::LongText { .. } | K::Email | K::Url => Shown::Texts,
            K::File { .. } => Shown::Files,
        }
    }
}

/// Every figure the question page shows, for `filter`, broken down by `by`.
fn question_figures(
    conn: &mut DbConn,
    survey_id: &str,
    q: &Question,
    filter: &Filter,
    by: Option<Grouping>,
) -> Result<QuestionFigures, AppError> {
    let (s, id, f) = (survey_id, q.id.as_str(), filter);
    let shown = Shown::of(&q.kind);
    Ok(QuestionFigures {
        asked: aggregate::asked_and_answered(conn, s, id, f, by)?,
        counts: match shown {
            Shown::Choices => aggregate::choice_counts(conn, s, q, f, by)?,
            _ => Vec::new(),
        },
        stats: match shown {
            Shown::Numbers => Some(aggregate::number_stats(conn, s, id, f)?),
            _ => None,
        },
        dates: match shown {
            Shown::Dates => Some(aggregate::date_range(conn, s, id, f)?),
            _ => None,
        },
        texts: match shown {
            Shown::Texts => aggregate::text_answers(conn, s, id, false, f)?,
            Shown::Files => aggregate::file_names(conn, s, id, f)?,
            _ => Vec::new(),
        },
        files: match shown {
            Shown::Files => Some(aggregate::file_count(conn, s, id, f)?),
            _ => None,
        },
        escapes: aggregate::escape_counts(conn, s, id, f, by)?,
        others: if q.kind.has_other() {
            aggregate::text_answers(conn, s, id, true, f)?
        } else {
            Vec::new()
        },
        previous: None,
    })
}

/// The previous round and its question a choice question carries from, for the "previous
/// round" column (None for a first round, a question that does not carry, or other kinds).
fn previous_source(
    survey: &Survey,
    q: &Question,
) -> Option<(
    std::sync::Arc<Survey>,
    Question,
    crate::survey::rounds::Carried,
)> {
    if !matches!(Shown::of(&q.kind), Shown::Choices) {
        return None;
    }
    let round = survey.previous.as_ref()?;
    let previous = round.definition.clone()?;
    let carried = round.plan.get(&q.id)?.clone();
    let from = previous.question(&carried.from)?.clone();
    Some((previous, from, carried))
}

/// The previous round's counts of the question a choice question carries from, with the same
/// filter (within the previous round's population), its options renamed into this round's
/// codes (options merged into one are added up; options left behind are left out).
fn previous_figures(
    conn: &mut DbConn,
    previous: &Survey,
    from: &Question,
    carried: &crate::survey::rounds::Carried,
    filter: &Filter,
    by: Option<Grouping>,
) -> Result<views::PreviousFigures, AppError> {
    let f = Filter {
        population: None,
        ..filter.clone()
    }
    .within(previous);
    let mut counts: Vec<(String, String, i64)> = Vec::new();
    for (grp, key, n) in aggregate::choice_counts(conn, &previous.id, from, &f, by)? {
        let Some(key) = crate::results::changes::renamed_key(carried, &from.kind, &key) else {
            continue;
        };
        match counts.iter_mut().find(|(g, k, _)| *g == grp && *k == key) {
            Some(line) => line.2 += n,
            None => counts.push((grp, key, n)),
        }
    }
    Ok(views::PreviousFigures {
        asked: aggregate::asked_and_answered(conn, &previous.id, &from.id, &f, by)?,
        counts,
        escapes: aggregate::escape_counts(conn, &previous.id, &from.id, &f, by)?,
    })
}

pub async fn question(
    state: web::Data<AppState>,
    req: HttpRequest,
    scope: SurveyAdmin,
    lang: Lang,
    path: web::Path<(String, String)>,
    query: web::Query<ResultsQuery>,
) -> Result<HttpResponse, AppError> {
    let survey = scope.survey;
    let q = survey
        .question(&path.1)
        .cloned()
        .ok_or(AppError::NotFound)?;
    let filter = query.filter(&state.countries, &survey);
    let by = query.by.as_deref().and_then(Grouping::parse);
    let (s, f, qq) = (survey.id.clone(), filter.clone(), q.clone());
    let source = previous_source(&survey, &q);
    let user = scope.user.clone();
    let app = state.clone();
    let this = survey.clone();
    let figures = with_conn(&state, move |conn| {
        // The previous round's figures only for those who may see that survey too.
        let source = match source {
            Some((previous, ..))
                if !crate::accounts::may_see_survey(conn, &user, &previous.id)? =>
            {
                None
            }
            source => source,
        };
        let shown = source.as_ref().map(|(p, ..)| p.version.clone());
        let rest = format!("{}\u{1f}{by:?}\u{1f}{shown:?}", qq.id);
        let key = cache_key("question", &this, &f, &rest);
        let surveys: Vec<&str> = std::iter::once(s.as_str())
            .chain(source.as_ref().map(|(p, ..)| p.id.as_str()))
            .collect();
        let figures = cached(&app, conn, key, &surveys, |conn| {
            let mut figures = question_figures(conn, &s, &qq, &f, by)?;
            if let Some((previous, from, carried)) = &source {
                figures.previous = Some(previous_figures(conn, previous, from, carried, &f, by)?);
            }
            Ok(figures)
        })?;
        Ok(std::sync::Arc::unwrap_or_clone(figures))
    })
    .await?;
    let w = words(&state, lang);
    let head = Head::new(&survey, w.lang, query.query_string(&filter));
    let filters = Filters::new(w, &filter, Some(by));
    let view = QuestionPage::new(w, head, filters, &q, by, figures);
    let title = q.text.get(w.lang).to_string();
    results_view(&state, &req, "results/question", title, &view)
}

async fn load_listings(
    state: &web::Data<AppState>,
    survey: &std::sync::Arc<Survey>,
    filter: &Filter,
    lang: &'static str,
) -> Result<std::sync::Arc<Vec<practices::Listing>>, AppError> {
    let (app, s, f) = (state.clone(), survey.clone(), filter.clone());
    with_conn(state, move |conn| cached_listings(&app, conn, &s, &f, lang)).await
}

/// The compendium's listings, kept for repeat views (the compendium page, its Markdown, the
/// matching): the texts are read for what a page shows.
fn cached_listings(
    app: &AppState,
    conn: &mut DbConn,
    survey: &Survey,
    filter: &Filter,
    lang: &'static str,
) -> Result<std::sync::Arc<Vec<practices::Listing>>, AppError> {
    let key = cache_key("compendium", survey, filter, lang);
    cached(app, conn, key, &[survey.id.as_str()], |conn| {
        // With drafts included, the drafts' listings on a second connection while the counted
        // versions' are read, when the pool has one free at once; else one after the other.
        let mut second = filter.with_drafts().then(|| app.pool.try_get()).flatten();
        Ok(practices::listings_on_two(
            conn,
            second.as_deref_mut(),
            survey,
            &app.countries,
            filter,
            lang,
        )?)
    })
}

/// The given listings read in full.
async fn load_practices(
    state: &web::Data<AppState>,
    survey: &std::sync::Arc<Survey>,
    filter: &Filter,
    listings: Vec<practices::Listing>,
    lang: &'static str,
) -> Result<Vec<practices::Practice>, AppError> {
    let (app, s, f) = (state.clone(), survey.clone(), filter.clone());
    with_conn(state, move |conn| {
        Ok(practices::practices(
            conn,
            &s,
            &app.countries,
            &f,
            listings,
            lang,
        )?)
    })
    .await
}

pub async fn compendium(
    state: web::Data<AppState>,
    req: HttpRequest,
    scope: SurveyAdmin,
    lang: Lang,
    query: web::Query<ResultsQuery>,
) -> Result<HttpResponse, AppError> {
    let survey = scope.survey;
    let filter = query.filter(&state.countries, &survey);
    let list = load_listings(&state, &survey, &filter, lang.0).await?;
    let part = CompendiumPart {
        theme: query.theme.as_deref(),
        page: query.page,
    };
    let window = CompendiumWindow::new(&survey, &list, part, lang.0);
    let shown = load_practices(&state, &survey, &filter, window.listings(), lang.0).await?;
    let w = words(&state, lang);
    let head = Head::new(&survey, w.lang, query.query_string(&filter));
    let view = CompendiumPage::new(w, head, window, &shown);
    let title = w.t("results-compendium", &[]);
    results_view(&state, &req, "results/compendium", title, &view)
}

pub async fn compendium_markdown(
    state: web::Data<AppState>,
    scope: SurveyAdmin,
    Lang(lang): Lang,
    query: web::Query<ResultsQuery>,
) -> Result<HttpResponse, AppError> {
    let survey = scope.survey;
    let filter = query.filter(&state.countries, &survey);
    let (app, s, f) = (state.clone(), survey.clone(), filter.clone());
    let md = with_conn(&state, move |conn| {
        let key = cache_key("compendium.md", &s, &f, lang);
        cached(&app, conn, key, &[s.id.as_str()], |conn| {
            // The texts on a second connection while the listings are read, when the pool
            // has one free at once; else one after the other.
            let mut second = app.pool.try_get();
            let second = second.as_deref_mut();
            Ok(practices::compendium_download(
                conn,
                second,
                &s,
                &app.countries,
                &f,
                lang,
            )?)
        })
    })
    .await?;
    Ok(no_store(
        HttpResponse::Ok()
            .content_type("text/markdown; charset=utf-8")
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}-compendium.md\"", survey.id),
            ))
            .body(String::clone(&md)),
    ))
}

pub async fn needs(
    state: web::Data<AppState>,
    req: HttpRequest,
    scope: SurveyAdmin,
    lang: Lang,
    query: web::Query<ResultsQuery>,
) -> Result<HttpResponse, AppError> {
    let survey = scope.survey;
    let filter = query.filter(&state.countries, &survey);
    let (app, s, f, l) = (state.clone(), survey.clone(), filter.clone(), lang.0);
    let figures = with_conn(&state, move |conn| {
        let key = cache_key("needs", &s, &f, l);
        cached(&app, conn, key, &[s.id.as_str()], |conn| {
            let needs = practices::ranked_needs(conn, &s, &f, l)?;
            let list = cached_listings(&app, conn, &s, &f, l)?;
            let matches = practices::partner_matches(conn, &s, &app.countries, &list, &f, l)?;
            Ok((needs, matches))
        })
    })
    .await?;
    let (needs, matches) = &*figures;
    let w = words(&state, lang);
    let head = Head::new(&survey, w.lang, query.query_string(&filter));
    let filters = Filters::new(w, &filter, None);
    let view = NeedsPage::new(w, head, filters, &survey, needs, matches);
    results_view(
        &state,
        &req,
        "results/needs",
        w.t("results-needs", &[]),
        &view,
    )
}

#[derive(Clone, Copy)]
pub enum Format {
    Csv,
    Codebook,
    Xlsx,
    Json,
}

impl Format {
    /// As the audit log names it.
    fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Codebook => "codebook",
            Format::Xlsx => "xlsx",
            Format::Json => "json",
        }
    }
}

async fn export_as(
    state: web::Data<AppState>,
    scope: SurveyAdmin,
    query: web::Query<ResultsQuery>,
    format: Format,
) -> Result<HttpResponse, AppError> {
    let survey = scope.survey;
    let filter = query.filter(&state.countries, &survey);
    let s = survey.clone();
    let by = scope.user.id;
    let bytes = with_conn(&state, move |conn| {
        let bytes = match format {
            Format::Codebook => export::codebook_csv(&s)?.into_bytes(),
            _ => {
                let rows = export::load(conn, &s, &filter)?;
                match format {
                    Format::Xlsx => export::to_xlsx(&s, &rows)?,
                    Format::Json => export::to_json(&s, &rows)?.into_bytes(),
                    _ => export::to_csv(&s, &rows)?.into_bytes(),
                }
            }
        };
        let actor = crate::audit::Actor::User(&by);
        export::record_download(
            conn,
            &s,
            actor,
            format.name(),
            &filter,
            crate::campaign::now(),
        )?;
        Ok(bytes)
    })
    .await?;
    let id = &survey.id;
    Ok(match format {
        Format::Csv => csv_response(
            String::from_utf8_lossy(&bytes).into_owned(),
            &format!("{id}-responses.csv"),
        ),
        Format::Codebook => csv_response(
            String::from_utf8_lossy(&bytes).into_owned(),
            &format!("{id}-codebook.csv"),
        ),
        Format::Xlsx => no_store(
            HttpResponse::Ok()
                .content_type("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
                .insert_header((
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{id}-responses.xlsx\""),
                ))
                .body(bytes),
        ),
        Format::Json => no_store(
            HttpResponse::Ok()
                .content_type("application/json")
                .insert_header((
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{id}-responses.json\""),
                ))
                .body(bytes),
        ),
    })
}

pub async fn export_csv(
    state: web::Data<AppState>,
    scope: SurveyAdmin,
    query: web::Query<ResultsQuery>,
) -> Result<HttpResponse, AppError> {
    export_as(state, scope, query, Format::Csv).await
}

pub async fn export_codebook(
    state: web::Data<AppState>,
    scope: SurveyAdmin,
    query: web::Query<ResultsQuery>,
) -> Result<HttpResponse, AppError> {
    export_as(state, scope, query, Format::Codebook).await
}

pub async fn export_xlsx(
    state: web::Data<AppState>,
    scope: SurveyAdmin,
    query: web::Query<ResultsQuery>,
) -> Result<HttpResponse, AppError> {
    export_as(state, scope, query, Format::Xlsx).await
}

pub async fn export_json(
    state: web::Data<AppState>,
    scope: SurveyAdmin,
    query: web::Query<ResultsQuery>,
) -> Result<HttpResponse, AppError> {
    export_as(state, scope, query, Format::Json).await
}

/// How long a zip export waits for one of the few being written to end.
const ZIP_EXPORT_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The responses, codebook and every attached file as one zip, streamed: a thread writes the
/// archive into a bounded channel that the body drains, reading one file at a time with a
/// pooled connection taken for that read only, so neither memory nor the pool depends on the
/// total or on how fast the client reads. At most [`super::CONCURRENT_ZIP_EXPORTS`] are written
/// at once; a request waits [`ZIP_EXPORT_WAIT`] for its turn, then is told to come back (503).
/// The download is in the audit before the first byte; a failure midway breaks the transfer
/// (logged), so no partial file looks whole.
pub async fn export_zip(
    state: web::Data<AppState>,
    scope: SurveyAdmin,
    query: web::Query<ResultsQuery>,
) -> Result<HttpResponse, AppError> {
    let turn = tokio::time::timeout(ZIP_EXPORT_WAIT, state.zip_exports.clone().acquire_owned())
        .await
        .map_err(|_| AppError::Overloaded)?
        .map_err(|_| AppError::Overloaded)?;
    let survey = scope.survey;
    let filter = query.filter(&state.countries, &survey);
    let s = survey.clone();
    let by = scope.user.id;
    let rows = with_conn(&state, move |conn| {
        let rows = export::load(conn, &s, &filter)?;
        let actor = crate::audit::Actor::User(&by);
        let now = crate::campaign::now();
        export::record_download(conn, &s, actor, "zip", &filter, now)?;
        Ok(rows)
    })
    .await?;
    let body = stream::zip_body(state.pool.clone(), survey.clone(), rows, turn);
    let id = &survey.id;
    Ok(no_store(
        HttpResponse::Ok()
            .content_type("application/zip")
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{id}-responses.zip\""),
            ))
            // Entries are deflated or already-compressed documents: not compressed again.
            .insert_header(header::ContentEncoding::Identity)
            .streaming(body),
    ))
}

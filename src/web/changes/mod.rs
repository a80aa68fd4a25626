//! What changed between rounds, for survey owners and administrators: one country's page and
//! export (`/admin/surveys/{id}/countries/{iso3}/changes`, `.csv`, `.xlsx`), and the overall
//! page and export under the survey's results (`/admin/surveys/{id}/results/changes`, `.csv`).
//! The figures come from [`crate::results::changes`]; [`views`] shapes them.

mod views;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

use super::admin::{admin_view, csv_response, no_store, with_conn};
use super::extract::{Lang, SurveyAdmin};
use super::render::Layout;
use super::results::ResultsQuery;
use super::AppState;
use crate::error::AppError;
use crate::results::changes::{self, load, Rounds};
use views::{CountryChanges, OverallChanges};

/// The survey's rounds, or 404 for a survey that follows no other.
fn rounds_of(scope: &SurveyAdmin) -> Result<Rounds<'_>, AppError> {
    Rounds::of(&scope.survey).ok_or(AppError::NotFound)
}

/// The previous round's answers are shown only to those who may see that survey too (an
/// owner of the new round alone does not read the old one's answers through it).
fn may_see_previous(
    conn: &mut crate::db::DbConn,
    user: &crate::db::users::User,
    previous: &str,
) -> Result<(), AppError> {
    if crate::accounts::may_see_survey(conn, user, previous)? {
        Ok(())
    } else {
        Err(AppError::Forbidden)
    }
}

/// A country's responses compared with the previous round.
async fn country_view(
    state: &web::Data<AppState>,
    scope: &SurveyAdmin,
    iso3: &str,
    lang: &'static str,
) -> Result<CountryChanges, AppError> {
    let rounds = rounds_of(scope)?;
    let country = state
        .countries
        .get(iso3)
        .ok_or(AppError::NotFound)?
        .name(lang)
        .to_string();
    let (s, prev, code, user) = (
        scope.survey.clone(),
        rounds.previous.id.clone(),
        iso3.to_string(),
        scope.user.clone(),
    );
    let loaded = with_conn(state, move |conn| {
        may_see_previous(conn, &user, &prev)?;
        Ok(load::country(conn, &s, &prev, &code)?)
    })
    .await?;
    Ok(CountryChanges::new(
        rounds,
        &state.countries,
        lang,
        iso3,
        country,
        &loaded,
    ))
}

pub async fn country(
    state: web::Data<AppState>,
    req: HttpRequest,
    scope: SurveyAdmin,
    Lang(lang): Lang,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let iso3 = path.into_inner().1;
    let view = country_view(&state, &scope, &iso3, lang).await?;
    let page = format!(
        "/admin/surveys/{}/countries/{iso3}/changes",
        scope.survey.id
    );
    let layout = Layout {
        languages: super::language::link_list_at(&req, &page, |_| true, lang),
        ..Layout::wide(view.title.clone())
    };
    admin_view(&state, &req, "admin/changes", layout, &view, StatusCode::OK)
}

pub async fn country_csv(
    state: web::Data<AppState>,
    scope: SurveyAdmin,
    Lang(lang): Lang,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let iso3 = path.into_inner().1;
    let view = country_view(&state, &scope, &iso3, lang).await?;
    let body = views::table_csv(&view.table())?;
    Ok(csv_response(
        body,
        &format!("{}-{iso3}-changes.csv", scope.survey.id),
    ))
}

pub async fn country_xlsx(
    state: web::Data<AppState>,
    scope: SurveyAdmin,
    Lang(lang): Lang,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let iso3 = path.into_inner().1;
    let view = country_view(&state, &scope, &iso3, lang).await?;
    let bytes = views::table_xlsx(&view.table()).map_err(AppError::internal)?;
    Ok(no_store(
        HttpResponse::Ok()
            .content_type("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"{}-{iso3}-changes.xlsx\"",
                    scope.survey.id
                ),
            ))
            .body(bytes),
    ))
}

/// Every counted response compared with the previous round, for the query's filter.
async fn overall_view(
    state: &web::Data<AppState>,
    scope: &SurveyAdmin,
    query: &ResultsQuery,
    lang: &'static str,
) -> Result<OverallChanges, AppError> {
    let rounds = rounds_of(scope)?;
    let filter = query.filter(&state.countries, &scope.survey);
    let (s, prev, f, user) = (
        scope.survey.clone(),
        rounds.previous.id.clone(),
        filter.clone(),
        scope.user.clone(),
    );
    let counted = with_conn(state, move |conn| {
        may_see_previous(conn, &user, &prev)?;
        Ok(load::counted(conn, &s, &prev, &f)?)
    })
    .await?;
    let figures = changes::overall(rounds, &counted, &state.countries);
    Ok(OverallChanges::new(
        rounds,
        &state.countries,
        lang,
        &filter,
        query.query_string(&filter),
        &figures,
    ))
}

pub async fn overall(
    state: web::Data<AppState>,
    req: HttpRequest,
    scope: SurveyAdmin,
    Lang(lang): Lang,
    query: web::Query<ResultsQuery>,
) -> Result<HttpResponse, AppError> {
    let view = overall_view(&state, &scope, &query, lang).await?;
    let layout = Layout::wide(view.heading.clone());
    admin_view(
        &state,
        &req,
        "results/changes",
        layout,
        &view,
        StatusCode::OK,
    )
}

pub async fn overall_csv(
    state: web::Data<AppState>,
    scope: SurveyAdmin,
    Lang(lang): Lang,
    query: web::Query<ResultsQuery>,
) -> Result<HttpResponse, AppError> {
    let view = overall_view(&state, &scope, &query, lang).await?;
    let body = views::table_csv(&view.table())?;
    Ok(csv_response(
        body,
        &format!("{}-changes.csv", scope.survey.id),
    ))
}

//! The `responses` table: one response per country (or organisation) and survey, a draft until
//! it is submitted; and `response_events`, what administrators did to a response.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::schema::{response_events, responses};
use super::states::text_enum;
use super::{answers, new_id, DbConn};
use crate::survey::answer::Answers;
use crate::survey::Survey;

text_enum! {
    /// Where a response stands.
    pub enum ResponseStatus("response status") {
        /// Being answered; it may change.
        Draft = "draft",
        /// Sent by the country; it changes only if an administrator reopens it.
        Submitted = "submitted",
    }
}

text_enum! {
    /// What an administrator did to a response.
    pub enum ResponseEventKind("response event") {
        /// A submitted response made a draft again.
        Reopened = "reopened",
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = responses)]
pub struct ResponseRow {
    pub id: String,
    pub survey_id: String,
    pub country_iso3: String,
    #[diesel(deserialize_as = String)]
    pub status: ResponseStatus,
    pub survey_version: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub submitted_at: Option<NaiveDateTime>,
    pub submitted_by: Option<String>,
    pub unit: String,
}

impl ResponseRow {
    pub fn is_draft(&self) -> bool {
        self.status == ResponseStatus::Draft
    }

    pub fn is_submitted(&self) -> bool {
        self.status == ResponseStatus::Submitted
    }
}

pub fn find_response(
    conn: &mut DbConn,
    survey_id: &str,
    iso3: &str,
    unit: &str,
) -> QueryResult<Option<ResponseRow>> {
    let rows: Vec<ResponseRow> = responses::table
        .filter(responses::survey_id.eq(survey_id))
        .filter(responses::country_iso3.eq(iso3))
        .filter(responses::unit.eq(unit))
        .select(ResponseRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().next())
}

/// Every response of a survey.
pub fn survey_responses(conn: &mut DbConn, survey_id: &str) -> QueryResult<Vec<ResponseRow>> {
    responses::table
        .filter(responses::survey_id.eq(survey_id))
        .order((responses::country_iso3, responses::unit))
        .select(ResponseRow::as_select())
        .load(conn)
}

/// The response of a country (or of one of its organisations), created as an empty draft on
/// first use.
pub fn get_or_create_response(
    conn: &mut DbConn,
    survey: &Survey,
    iso3: &str,
    unit: &str,
    now: NaiveDateTime,
) -> QueryResult<ResponseRow> {
    if let Some(r) = find_response(conn, &survey.id, iso3, unit)? {
        return Ok(r);
    }
    let id = new_id();
    // What an empty response is not asked (conditions on answers it does not have yet).
    let empty = crate::survey::answer::Visibility::evaluate(survey, &Answers::new());
    let hidden: std::collections::HashSet<String> = survey
        .questions()
        .filter(|q| !empty.question(&q.id))
        .map(|q| q.id.clone())
        .collect();
    let inserted = conn.transaction::<_, DieselError, _>(|conn| {
        diesel::insert_into(responses::table)
            .values((
                responses::id.eq(&id),
                responses::survey_id.eq(&survey.id),
                responses::country_iso3.eq(iso3),
                responses::unit.eq(unit),
                responses::status.eq(ResponseStatus::Draft.as_str()),
                responses::survey_version.eq(&survey.version),
                responses::created_at.eq(now),
                responses::updated_at.eq(now),
            ))
            .execute(conn)?;
        answers::sync_hidden(conn, &id, &hidden)
    });
    match inserted {
        // Another official of the same country created it at the same moment.
        Ok(_) | Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {}
        Err(e) => return Err(e),
    }
    find_response(conn, &survey.id, iso3, unit)?.ok_or(DieselError::NotFound)
}

/// Record a save on the response: when, and under which version of the survey.
pub(super) fn touch(
    conn: &mut DbConn,
    response_id: &str,
    survey_version: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(responses::table.find(response_id))
        .set((
            responses::updated_at.eq(now),
            responses::survey_version.eq(survey_version),
        ))
        .execute(conn)?;
    Ok(())
}

/// Mark a draft submitted; false when it was not a draft any more.
pub fn submit_response(
    conn: &mut DbConn,
    response_id: &str,
    token_id: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let n = diesel::update(
        responses::table
            .filter(responses::id.eq(response_id))
            .filter(responses::status.eq(ResponseStatus::Draft.as_str())),
    )
    .set((
        responses::status.eq(ResponseStatus::Submitted.as_str()),
        responses::submitted_at.eq(now),
        responses::submitted_by.eq(token_id),
        responses::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Make a submitted response a draft again, recording who did it; false when it was not
/// submitted (any more). Call inside a transaction with what goes with it.
pub fn reopen_response(
    conn: &mut DbConn,
    response_id: &str,
    user_id: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let n = diesel::update(
        responses::table
            .filter(responses::id.eq(response_id))
            .filter(responses::status.eq(ResponseStatus::Submitted.as_str())),
    )
    .set((
        responses::status.eq(ResponseStatus::Draft.as_str()),
        responses::submitted_at.eq(None::<NaiveDateTime>),
        responses::submitted_by.eq(None::<String>),
        responses::updated_at.eq(now),
    ))
    .execute(conn)?;
    if n == 1 {
        diesel::insert_into(response_events::table)
            .values((
                response_events::id.eq(new_id()),
                response_events::response_id.eq(response_id),
                response_events::kind.eq(ResponseEventKind::Reopened.as_str()),
                response_events::user_id.eq(user_id),
                response_events::at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(n == 1)
}

/// Which responses an export takes.
pub struct ExportFilter<'a> {
    pub include_drafts: bool,
    pub region: Option<&'a str>,
    pub income: Option<&'a str>,
}

/// A response with its country's groups, for exports.
#[derive(Debug, Clone, Queryable)]
pub struct ResponseWithCountry {
    pub id: String,
    pub iso3: String,
    pub country_name_en: String,
    pub unit: String,
    pub region_code: String,
    pub income_fy09: String,
    pub development: String,
    #[diesel(deserialize_as = String)]
    pub status: ResponseStatus,
    pub submitted_at: Option<NaiveDateTime>,
}

/// The responses of a survey with their countries, by country name (English) then unit.
pub fn responses_with_countries(
    conn: &mut DbConn,
    survey_id: &str,
    filter: &ExportFilter,
) -> QueryResult<Vec<ResponseWithCountry>> {
    use super::schema::countries;
    let mut q = responses::table
        .inner_join(countries::table.on(countries::iso3.eq(responses::country_iso3)))
        .filter(responses::survey_id.eq(survey_id))
        .select((
            responses::id,
            countries::iso3,
            countries::name_en,
            responses::unit,
            countries::region_code,
            countries::income_fy09,
            countries::development,
            responses::status,
            responses::submitted_at,
        ))
        .order((countries::name_en, responses::unit))
        .into_boxed();
    if !filter.include_drafts {
        q = q.filter(responses::status.eq(ResponseStatus::Submitted.as_str()));
    }
    if let Some(r) = filter.region {
        q = q.filter(countries::region_code.eq(r.to_string()));
    }
    if let Some(i) = filter.income {
        q = q.filter(countries::income_fy09.eq(i.to_string()));
    }
    q.load(conn)
}

/// Every response of a country in a survey (one per organisation in a survey of them).
pub fn country_responses(
    conn: &mut DbConn,
    survey_id: &str,
    iso3: &str,
) -> QueryResult<Vec<ResponseRow>> {
    responses::table
        .filter(responses::survey_id.eq(survey_id))
        .filter(responses::country_iso3.eq(iso3))
        .order(responses::unit)
        .select(ResponseRow::as_select())
        .load(conn)
}

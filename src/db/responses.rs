//! The `responses` table: one response per country (or organisation) and survey, a draft until
//! it is submitted; and `response_events`, what administrators did to a response.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{Integer, Nullable, Text, Timestamp};

use super::schema::{response_events, responses};
use super::sql::{json, Kept};
use super::states::text_enum;
use super::{answers, carried, new_id, DbConn};
use crate::survey::answer::Answers;
use crate::survey::Survey;

text_enum! {
    /// Where a response stands.
    pub enum ResponseStatus("response status") {
        /// Being answered; it may change.
        Draft = "draft",
        /// Sent by a coordinator to the country's approver, who signs off or sends it back;
        /// nobody may change it meanwhile.
        AwaitingSignOff = "awaiting_sign_off",
        /// Sent by the country as a new version; the country may still recall it.
        Submitted = "submitted",
        /// The secretariat is reviewing it: the country can no longer recall it.
        UnderReview = "under_review",
        /// The secretariat sent it back with queries: the country may change it and resubmit.
        Returned = "returned",
        /// Final: only reopening by an administrator changes it.
        Accepted = "accepted",
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
    /// The version results count: the latest submitted one not recalled.
    pub counted_version: Option<i32>,
    /// How many versions were submitted (the next is `version_count + 1`).
    pub version_count: i32,
    /// The approver's message when the response was last sent back, with who and when.
    pub sent_back_message: Option<String>,
    pub sent_back_by: Option<String>,
    pub sent_back_at: Option<NaiveDateTime>,
}

impl ResponseStatus {
    /// Whether the country may change the answers: a draft, or a response returned to it.
    pub fn is_editable(self) -> bool {
        matches!(self, ResponseStatus::Draft | ResponseStatus::Returned)
    }

    /// Whether the country has sent it (a version exists and is with the secretariat).
    pub fn is_submitted(self) -> bool {
        matches!(
            self,
            ResponseStatus::Submitted | ResponseStatus::UnderReview | ResponseStatus::Accepted
        )
    }
}

impl ResponseRow {
    /// Whether the country may change the answers (see [`ResponseStatus::is_editable`]).
    pub fn is_draft(&self) -> bool {
        self.status.is_editable()
    }

    /// Whether the response is with the secretariat: submitted, under review or accepted.
    pub fn is_submitted(&self) -> bool {
        self.status.is_submitted()
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

/// The response of a country (or of one of its organisations), created on first use: an
/// empty draft, or in a round that follows another one, a draft starting with the answers
/// `start` carries (computed by the caller, only used when the response is created), written
/// with the response in one transaction by `token_id`'s link.
pub fn get_or_create_response(
    conn: &mut DbConn,
    survey: &Survey,
    iso3: &str,
    unit: &str,
    now: NaiveDateTime,
    start: impl FnOnce(&mut DbConn) -> QueryResult<Option<carried::Start>>,
    token_id: &str,
) -> QueryResult<ResponseRow> {
    if let Some(r) = find_response(conn, &survey.id, iso3, unit)? {
        return Ok(r);
    }
    let start = start(conn)?;
    let id = new_id();
    let mut starting = Answers::new();
    for a in start.iter().flat_map(|s| &s.answers) {
        starting.insert(a.question_id.clone(), a.items.clone());
    }
    // What the response is not asked (conditions on answers it does not have yet).
    let visibility = crate::survey::answer::Visibility::evaluate(survey, &starting);
    let hidden: std::collections::HashSet<String> = survey
        .questions()
        .filter(|q| !visibility.question(&q.id))
        .map(|q| q.id.clone())
        .collect();
    // In the write turn, on the pool's writer (see `db::transaction`): on a pooled SQLite
    // connection of its own it held SQLite's write lock outside the turn, and the turn's writer
    // slept in the busy handler until it let go.
    let inserted = super::transaction::<_, DieselError>(conn, |conn| {
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
        if let Some(start) = &start {
            for a in &start.answers {
                answers::replace_answer(
                    conn,
                    &answers::AnswerWrite {
                        response_id: &id,
                        question_id: &a.question_id,
                        section_id: &a.section_id,
                        items: &a.items,
                        visible: !hidden.contains(&a.question_id),
                        token_id,
                        now,
                    },
                )?;
            }
            carried::record(
                conn,
                &carried::CarriedFrom {
                    response_id: id.clone(),
                    from_response_id: start.from_response_id.clone(),
                    from_version: start.from_version,
                    carried_at: now,
                },
                &start.answers,
            )?;
            crate::audit::record(
                conn,
                &crate::audit::Event {
                    survey_id: &survey.id,
                    country_iso3: iso3,
                    actor: crate::audit::Actor::Link(token_id),
                    kind: crate::audit::AuditKind::Carried,
                    detail: serde_json::json!({
                        "from_response": start.from_response_id,
                        "from_version": start.from_version,
                        "carried": start.answers.iter().map(|a| &a.question_id).collect::<Vec<_>>(),
                    }),
                },
                now,
            )?;
        }
        answers::hide_in_new_response(conn, &id, &hidden)
    });
    match inserted {
        // Another official of the same country created it at the same moment.
        Ok(_) | Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {}
        Err(e) => return Err(e),
    }
    find_response(conn, &survey.id, iso3, unit)?.ok_or(DieselError::NotFound)
}

/// How many responses the survey has, whatever their state.
pub fn count_of_survey(conn: &mut DbConn, survey_id: &str) -> QueryResult<i64> {
    responses::table
        .filter(responses::survey_id.eq(survey_id))
        .count()
        .get_result(conn)
}

/// Whether the response may still change (a draft, or returned): the reason a save's claim
/// of its section wrote nothing, when the section's version is not.
pub(super) fn is_editable(conn: &mut DbConn, response_id: &str) -> QueryResult<bool> {
    let n: i64 = responses::table
        .filter(responses::id.eq(response_id))
        .filter(responses::status.eq_any([
            ResponseStatus::Draft.as_str(),
            ResponseStatus::Returned.as_str(),
        ]))
        .count()
        .get_result(conn)?;
    Ok(n == 1)
}

/// Move a response from one of `from` to `to`; false when it was in none of them (any more).
/// The first write of a state change: on PostgreSQL it locks the response's row until the
/// transaction ends, so a save or another change of state waits and then sees the new state.
pub fn change_status(
    conn: &mut DbConn,
    response_id: &str,
    from: &[ResponseStatus],
    to: ResponseStatus,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    super::write_statement(conn, |conn| {
        let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let n = diesel::update(
            responses::table
                .filter(responses::id.eq(response_id))
                .filter(responses::status.eq_any(from)),
        )
        .set((
            responses::status.eq(to.as_str()),
            responses::updated_at.eq(now),
        ))
        .execute(conn)?;
        Ok(n == 1)
    })
}

/// Mark a response submitted as its next version, from one of `from`: the version's number,
/// or None when the response was in none of those states (any more). The version counts once
/// its answers are stored ([`set_counted_version`]): what results count (`answer_tallies`) is
/// then added from the stored version at once, rather than answer by answer as each is written.
pub fn record_submission(
    conn: &mut DbConn,
    response_id: &str,
    from: &[ResponseStatus],
    token_id: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<i32>> {
    super::write_statement(conn, |conn| {
        let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        // Every submission runs it: kept prepared (see `Kept`), since the triggers on `responses`
        // make preparing it cost more than running it.
        let n = Kept::<RecordSubmission>::new("UPDATE responses SET status = ")
            .bind::<Text, _>(ResponseStatus::Submitted.as_str())
            .sql(", version_count = version_count + 1, submitted_at = ")
            .bind::<Timestamp, _>(now)
            .sql(", submitted_by = ")
            .bind::<Text, _>(token_id)
            .sql(", updated_at = ")
            .bind::<Timestamp, _>(now)
            .sql(
                ", sent_back_message = NULL, sent_back_by = NULL, sent_back_at = NULL \
                 WHERE id = ",
            )
            .bind::<Text, _>(response_id)
            .sql(" AND status IN ")
            .bind_json_elements(conn, json(&from)?)
            .execute(conn)?;
        if n == 0 {
            return Ok(None);
        }
        responses::table
            .find(response_id)
            .select(responses::version_count)
            .first(conn)
            .map(Some)
    })
}

/// The responses of a survey submitted before versions existed: submitted, with no version.
/// Read at every start, so the database does the filtering.
pub fn unversioned_submissions(
    conn: &mut DbConn,
    survey_id: &str,
) -> QueryResult<Vec<ResponseRow>> {
    responses::table
        .filter(responses::survey_id.eq(survey_id))
        .filter(responses::status.eq(ResponseStatus::Submitted.as_str()))
        .filter(responses::version_count.eq(0))
        .select(ResponseRow::as_select())
        .load(conn)
}

/// Make a response submitted before versions existed count as its version 1.
pub fn record_backfilled_version(conn: &mut DbConn, response_id: &str) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::update(
            responses::table
                .filter(responses::id.eq(response_id))
                .filter(responses::version_count.eq(0)),
        )
        .set((
            responses::version_count.eq(1),
            responses::counted_version.eq(Some(1)),
        ))
        .execute(conn)?;
        Ok(())
    })
}

/// Record the approver's message on a response sent back for changes.
pub fn record_sent_back(
    conn: &mut DbConn,
    response_id: &str,
    message: &str,
    token_id: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::update(responses::table.find(response_id))
            .set((
                responses::sent_back_message.eq(message),
                responses::sent_back_by.eq(token_id),
                responses::sent_back_at.eq(now),
            ))
            .execute(conn)?;
        Ok(())
    })
}

/// Set which version results count (None: none, every version was recalled).
pub fn set_counted_version(
    conn: &mut DbConn,
    response_id: &str,
    version: Option<i32>,
) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        // Kept prepared (see `Kept`): the tallies' triggers on `responses` make preparing it cost
        // more than running it.
        Kept::<SetCountedVersion>::new("UPDATE responses SET counted_version = ")
            .bind::<Nullable<Integer>, _>(version)
            .sql(" WHERE id = ")
            .bind::<Text, _>(response_id)
            .execute(conn)?;
        Ok(())
    })
}

super::sql::statement_names! {
    RecordSubmission;
    SetCountedVersion;
}

pub fn response_by_id(conn: &mut DbConn, response_id: &str) -> QueryResult<Option<ResponseRow>> {
    responses::table
        .find(response_id)
        .select(ResponseRow::as_select())
        .first(conn)
        .optional()
}

/// Make a response with the secretariat (submitted, under review or accepted) a draft again, recording who did it; false when it was not
/// submitted (any more). Call inside a transaction with what goes with it.
pub fn reopen_response(
    conn: &mut DbConn,
    response_id: &str,
    user_id: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    super::write_statement(conn, |conn| {
        let n = diesel::update(
            responses::table
                .filter(responses::id.eq(response_id))
                .filter(responses::status.eq_any([
                    ResponseStatus::Submitted.as_str(),
                    ResponseStatus::UnderReview.as_str(),
                    ResponseStatus::Accepted.as_str(),
                ])),
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
    })
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

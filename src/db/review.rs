//! Queries behind the secretariat's page for one country (see `crate::review`).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::queries::ResponseRow;
use super::schema::{outbox, responses};
use super::DbConn;

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

/// One email sent (or waiting) to someone of the country, without its body.
#[derive(Debug, Clone, Queryable)]
pub struct MessageRow {
    pub contact_id: Option<String>,
    pub recipient: String,
    pub kind: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
}

/// The country's emails in a survey, newest first.
pub fn country_messages(
    conn: &mut DbConn,
    survey_id: &str,
    iso3: &str,
) -> QueryResult<Vec<MessageRow>> {
    outbox::table
        .filter(outbox::survey_id.eq(survey_id))
        .filter(outbox::country_iso3.eq(iso3))
        .order((outbox::created_at.desc(), outbox::id))
        .select((
            outbox::contact_id,
            outbox::recipient,
            outbox::kind,
            outbox::status,
            outbox::attempts,
            outbox::last_error,
            outbox::created_at,
            outbox::sent_at,
        ))
        .load(conn)
}

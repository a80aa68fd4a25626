//! The `survey_versions` table: each survey file's text, kept once per version.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::survey_versions;
use super::DbConn;
use crate::survey::Survey;

/// Remember a survey file's version (content hash) and text, once.
pub fn record_survey_version(
    conn: &mut DbConn,
    survey: &Survey,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let exists: i64 = survey_versions::table
        .filter(survey_versions::survey_id.eq(&survey.id))
        .filter(survey_versions::version.eq(&survey.version))
        .count()
        .get_result(conn)?;
    if exists > 0 {
        // The usual case at every start: a read, without taking SQLite's write turn.
        return Ok(());
    }
    // In a transaction of its own, a savepoint when the caller's is open: on PostgreSQL the
    // unique violation below would otherwise abort the caller's whole transaction.
    let inserted = super::transaction(conn, |conn| {
        diesel::insert_into(survey_versions::table)
            .values((
                survey_versions::survey_id.eq(&survey.id),
                survey_versions::version.eq(&survey.version),
                survey_versions::title.eq(survey.title.get("en")),
                survey_versions::source.eq(&survey.source),
                survey_versions::loaded_at.eq(now),
            ))
            .execute(conn)
    });
    // Two instances starting together may both insert: the first one wins.
    match inserted {
        Err(e) if super::is_unique_violation(&e) => Ok(()),
        other => other.map(drop),
    }
}

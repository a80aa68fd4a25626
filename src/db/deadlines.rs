//! The `deadline_extensions` table: a later deadline an owner gave one country.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::deadline_extensions;
use super::DbConn;

/// A country's extended deadline, if an owner set one.
pub fn deadline_extension(
    conn: &mut DbConn,
    survey_id: &str,
    iso3: &str,
) -> QueryResult<Option<NaiveDateTime>> {
    let rows: Vec<NaiveDateTime> = deadline_extensions::table
        .filter(deadline_extensions::survey_id.eq(survey_id))
        .filter(deadline_extensions::country_iso3.eq(iso3))
        .select(deadline_extensions::closes_at)
        .load(conn)?;
    Ok(rows.into_iter().next())
}

/// Every extended deadline of a survey, by country.
pub fn survey_extensions(
    conn: &mut DbConn,
    survey_id: &str,
) -> QueryResult<HashMap<String, NaiveDateTime>> {
    Ok(deadline_extensions::table
        .filter(deadline_extensions::survey_id.eq(survey_id))
        .select((
            deadline_extensions::country_iso3,
            deadline_extensions::closes_at,
        ))
        .load::<(String, NaiveDateTime)>(conn)?
        .into_iter()
        .collect())
}

/// Set (or move) a country's deadline, recording who did it.
pub fn set_extension(
    conn: &mut DbConn,
    survey_id: &str,
    iso3: &str,
    closes_at: NaiveDateTime,
    set_by: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::delete(
            deadline_extensions::table
                .filter(deadline_extensions::survey_id.eq(survey_id))
                .filter(deadline_extensions::country_iso3.eq(iso3)),
        )
        .execute(conn)?;
        diesel::insert_into(deadline_extensions::table)
            .values((
                deadline_extensions::survey_id.eq(survey_id),
                deadline_extensions::country_iso3.eq(iso3),
                deadline_extensions::closes_at.eq(closes_at),
                deadline_extensions::set_by.eq(set_by),
                deadline_extensions::set_at.eq(now),
            ))
            .execute(conn)?;
        Ok(())
    })
}

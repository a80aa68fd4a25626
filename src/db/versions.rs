//! `response_versions` (every submission, immutable) and `version_answers` (each version's
//! counted answers as rows, for results and for differences between versions).

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};

use super::schema::{response_versions, version_answers};
use super::sql::Kept;
use super::DbConn;
use crate::survey::answer::{Answers, Item};

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = response_versions)]
pub struct VersionRow {
    pub response_id: String,
    pub number: i32,
    pub survey_version: String,
    pub content: String,
    pub digest: String,
    pub submitted_at: NaiveDateTime,
    /// The link that submitted it (a coordinator's, an approver's, or an owner's entry link).
    pub submitted_by: String,
    /// The approver's link, and the name and title they typed, where the country signed off.
    pub signed_off_by: Option<String>,
    pub signed_off_name: Option<String>,
    pub signed_off_title: Option<String>,
    /// How the report reached the secretariat: `web`, or for a report entered by an owner
    /// `email`, `paper` or `other`.
    pub channel: String,
    /// The owner who entered it, for a report received outside Coherence.
    pub entered_by: Option<String>,
    pub recalled_at: Option<NaiveDateTime>,
    pub returned_at: Option<NaiveDateTime>,
    pub accepted_at: Option<NaiveDateTime>,
}

pub struct NewVersion<'a> {
    pub response_id: &'a str,
    pub number: i32,
    pub survey_version: &'a str,
    pub content: &'a str,
    pub digest: &'a str,
    pub submitted_at: NaiveDateTime,
    pub submitted_by: &'a str,
    pub signed_off_by: Option<&'a str>,
    pub signed_off_name: Option<&'a str>,
    pub signed_off_title: Option<&'a str>,
    pub channel: &'a str,
    pub entered_by: Option<&'a str>,
}

/// Store a version and copy the response's visible answers into it, in one statement each.
pub fn insert_version(conn: &mut DbConn, v: &NewVersion) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::insert_into(response_versions::table)
            .values((
                response_versions::response_id.eq(v.response_id),
                response_versions::number.eq(v.number),
                response_versions::survey_version.eq(v.survey_version),
                response_versions::content.eq(v.content),
                response_versions::digest.eq(v.digest),
                response_versions::submitted_at.eq(v.submitted_at),
                response_versions::submitted_by.eq(v.submitted_by),
                response_versions::signed_off_by.eq(v.signed_off_by),
                response_versions::signed_off_name.eq(v.signed_off_name),
                response_versions::signed_off_title.eq(v.signed_off_title),
                response_versions::channel.eq(v.channel),
                response_versions::entered_by.eq(v.entered_by),
            ))
            .execute(conn)?;
        // Kept prepared (see `Kept`): the tallies' trigger on `version_answers` makes preparing it
        // cost more than running it.
        Kept::<CopyVersionAnswers>::new(
            "INSERT INTO version_answers \
             (response_id, version, question_id, item, value, num, updated_by, updated_at) \
             SELECT response_id, ",
        )
        .bind::<Integer, _>(v.number)
        .sql(
            ", question_id, item, value, num, updated_by, updated_at \
             FROM answers WHERE visible = TRUE AND response_id = ",
        )
        .bind::<Text, _>(v.response_id)
        .execute(conn)?;
        Ok(())
    })
}

super::sql::statement_names! {
    CopyVersionAnswers;
}

/// Every version of a response, oldest first.
pub fn versions(conn: &mut DbConn, response_id: &str) -> QueryResult<Vec<VersionRow>> {
    response_versions::table
        .filter(response_versions::response_id.eq(response_id))
        .order(response_versions::number)
        .select(VersionRow::as_select())
        .load(conn)
}

pub fn version(
    conn: &mut DbConn,
    response_id: &str,
    number: i32,
) -> QueryResult<Option<VersionRow>> {
    response_versions::table
        .find((response_id, number))
        .select(VersionRow::as_select())
        .first(conn)
        .optional()
}

/// A version's answers, with who last changed each question and when.
pub fn version_answers(
    conn: &mut DbConn,
    response_id: &str,
    number: i32,
) -> QueryResult<VersionAnswers> {
    let rows: Vec<(String, String, String, Option<f64>, String, NaiveDateTime)> =
        version_answers::table
            .filter(version_answers::response_id.eq(response_id))
            .filter(version_answers::version.eq(number))
            .order((version_answers::question_id, version_answers::item))
            .select((
                version_answers::question_id,
                version_answers::item,
                version_answers::value,
                version_answers::num,
                version_answers::updated_by,
                version_answers::updated_at,
            ))
            .load(conn)?;
    let mut out = VersionAnswers::default();
    for (q, item, value, num, by, at) in rows {
        out.changed.insert(q.clone(), (by, at));
        out.answers
            .entry(q)
            .or_default()
            .push(Item { item, value, num });
    }
    Ok(out)
}

#[derive(Debug, Clone, Default)]
pub struct VersionAnswers {
    pub answers: Answers,
    /// Per question: the link that last changed it, and when.
    pub changed: BTreeMap<String, (String, NaiveDateTime)>,
}

/// Set one of a version's dates (returned, recalled, accepted) if it is not set yet.
pub fn mark(
    conn: &mut DbConn,
    response_id: &str,
    number: i32,
    what: Mark,
    at: NaiveDateTime,
) -> QueryResult<bool> {
    super::write_statement(conn, |conn| {
        let target = response_versions::table.find((response_id, number));
        let n = match what {
            Mark::Recalled => {
                diesel::update(target.filter(response_versions::recalled_at.is_null()))
                    .set(response_versions::recalled_at.eq(at))
                    .execute(conn)?
            }
            Mark::Returned => {
                diesel::update(target.filter(response_versions::returned_at.is_null()))
                    .set(response_versions::returned_at.eq(at))
                    .execute(conn)?
            }
            Mark::Accepted => {
                diesel::update(target.filter(response_versions::accepted_at.is_null()))
                    .set(response_versions::accepted_at.eq(at))
                    .execute(conn)?
            }
        };
        Ok(n == 1)
    })
}

#[derive(Debug, Clone, Copy)]
pub enum Mark {
    Recalled,
    Returned,
    Accepted,
}

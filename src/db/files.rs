//! The `files` table: documents attached to file questions, content included (BLOB on
//! SQLite, bytea on PostgreSQL). A response's answer items name a file by its id; a file is
//! kept while its draft or any of its versions refers to it.

use std::collections::HashSet;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{answers, files, responses, version_answers};
use super::DbConn;

/// A stored file without its content.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = files)]
pub struct FileMeta {
    pub id: String,
    pub response_id: String,
    pub question_id: String,
    pub name: String,
    pub declared_type: String,
    pub detected_type: String,
    pub size: i64,
    pub sha256: String,
    pub created_at: NaiveDateTime,
    pub created_by: String,
}

/// A file to store, checked.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = files)]
pub struct NewFile {
    pub id: String,
    pub response_id: String,
    pub question_id: String,
    pub name: String,
    pub declared_type: String,
    pub detected_type: String,
    pub size: i64,
    pub sha256: String,
    pub content: Vec<u8>,
    pub created_at: NaiveDateTime,
    pub created_by: String,
}

pub fn insert(conn: &mut DbConn, file: &NewFile) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::insert_into(files::table)
            .values(file)
            .execute(conn)
            .map(|_| ())
    })
}

/// Delete those of `ids` (files of `response_id`) that neither the draft's answers nor any
/// version refers to any more. Returns how many were deleted.
pub fn delete_unreferenced(
    conn: &mut DbConn,
    response_id: &str,
    ids: &[String],
) -> QueryResult<usize> {
    super::write_statement(conn, |conn| {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut used: HashSet<String> = answers::table
            .filter(answers::response_id.eq(response_id))
            .filter(answers::item.eq_any(ids))
            .select(answers::item)
            .load::<String>(conn)?
            .into_iter()
            .collect();
        used.extend(
            version_answers::table
                .filter(version_answers::response_id.eq(response_id))
                .filter(version_answers::item.eq_any(ids))
                .select(version_answers::item)
                .load::<String>(conn)?,
        );
        let gone: Vec<&String> = ids.iter().filter(|id| !used.contains(*id)).collect();
        if gone.is_empty() {
            return Ok(0);
        }
        diesel::delete(
            files::table
                .filter(files::response_id.eq(response_id))
                .filter(files::id.eq_any(gone)),
        )
        .execute(conn)
    })
}

/// Where a stored file belongs: its response's survey, country and organisation.
#[derive(Debug, Clone)]
pub struct Owner {
    pub survey_id: String,
    pub country_iso3: String,
    pub unit: String,
}

/// A file with its content and whose response it is attached to.
pub fn get(conn: &mut DbConn, id: &str) -> QueryResult<Option<(FileMeta, Owner, Vec<u8>)>> {
    let row = files::table
        .inner_join(responses::table.on(responses::id.eq(files::response_id)))
        .filter(files::id.eq(id))
        .select((
            FileMeta::as_select(),
            responses::survey_id,
            responses::country_iso3,
            responses::unit,
            files::content,
        ))
        .first::<(FileMeta, String, String, String, Vec<u8>)>(conn)
        .optional()?;
    Ok(row.map(|(meta, survey_id, country_iso3, unit, content)| {
        (
            meta,
            Owner {
                survey_id,
                country_iso3,
                unit,
            },
            content,
        )
    }))
}

/// The content of the files `ids`, one query: (id, content).
pub fn contents(conn: &mut DbConn, ids: &[String]) -> QueryResult<Vec<(String, Vec<u8>)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    // Bounded batches keep each statement's parameter list within both backends' limits.
    for chunk in ids.chunks(500) {
        out.extend(
            files::table
                .filter(files::id.eq_any(chunk))
                .select((files::id, files::content))
                .load::<(String, Vec<u8>)>(conn)?,
        );
    }
    Ok(out)
}

//! `queries` and `query_messages`: the secretariat's questions on a question of a submitted
//! version, and the thread of messages on each.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{queries, query_messages};
use super::states::text_enum;
use super::{new_id, DbConn};

text_enum! {
    pub enum QueryStatus("query status") {
        Open = "open",
        /// The secretariat is satisfied with the reply or the change.
        Closed = "closed",
    }
}

text_enum! {
    /// Who wrote a message in a query's thread.
    pub enum AuthorKind("query author") {
        /// A survey owner or administrator (`author` is the user id).
        Secretariat = "secretariat",
        /// A personal link of the country (`author` is the link id).
        Country = "country",
    }
}

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = queries)]
pub struct QueryRow {
    pub id: String,
    pub response_id: String,
    pub question_id: String,
    /// The version it was raised on.
    pub version: i32,
    #[diesel(deserialize_as = String)]
    pub status: QueryStatus,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub closed_by: Option<String>,
    pub closed_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = query_messages)]
pub struct MessageRow {
    pub id: String,
    pub query_id: String,
    #[diesel(deserialize_as = String)]
    pub author_kind: AuthorKind,
    pub author: String,
    /// The author's name or email as it was when they wrote.
    pub author_name: String,
    pub body: String,
    pub at: NaiveDateTime,
}

pub struct NewMessage<'a> {
    pub query_id: &'a str,
    pub author_kind: AuthorKind,
    pub author: &'a str,
    pub author_name: &'a str,
    pub body: &'a str,
    pub at: NaiveDateTime,
}

/// Open a query on a question with its first message; the new query's id.
pub fn insert_query(
    conn: &mut DbConn,
    response_id: &str,
    question_id: &str,
    version: i32,
    first: &NewMessage,
) -> QueryResult<String> {
    super::write_statement(conn, |conn| {
        let id = new_id();
        diesel::insert_into(queries::table)
            .values((
                queries::id.eq(&id),
                queries::response_id.eq(response_id),
                queries::question_id.eq(question_id),
                queries::version.eq(version),
                queries::status.eq(QueryStatus::Open.as_str()),
                queries::created_by.eq(first.author),
                queries::created_at.eq(first.at),
            ))
            .execute(conn)?;
        insert_message(
            conn,
            &NewMessage {
                query_id: &id,
                ..*first
            },
        )?;
        Ok(id)
    })
}

pub fn insert_message(conn: &mut DbConn, m: &NewMessage) -> QueryResult<String> {
    super::write_statement(conn, |conn| {
        let id = new_id();
        diesel::insert_into(query_messages::table)
            .values((
                query_messages::id.eq(&id),
                query_messages::query_id.eq(m.query_id),
                query_messages::author_kind.eq(m.author_kind.as_str()),
                query_messages::author.eq(m.author),
                query_messages::author_name.eq(m.author_name),
                query_messages::body.eq(m.body),
                query_messages::at.eq(m.at),
            ))
            .execute(conn)?;
        Ok(id)
    })
}

/// Close an open query; false when it was closed already.
pub fn close_query(
    conn: &mut DbConn,
    query_id: &str,
    by: &str,
    at: NaiveDateTime,
) -> QueryResult<bool> {
    super::write_statement(conn, |conn| {
        let n = diesel::update(
            queries::table
                .filter(queries::id.eq(query_id))
                .filter(queries::status.eq(QueryStatus::Open.as_str())),
        )
        .set((
            queries::status.eq(QueryStatus::Closed.as_str()),
            queries::closed_by.eq(by),
            queries::closed_at.eq(at),
        ))
        .execute(conn)?;
        Ok(n == 1)
    })
}

/// The queries on a response, oldest first.
pub fn response_queries(conn: &mut DbConn, response_id: &str) -> QueryResult<Vec<QueryRow>> {
    queries::table
        .filter(queries::response_id.eq(response_id))
        .order((queries::created_at, queries::id))
        .select(QueryRow::as_select())
        .load(conn)
}

pub fn find_query(conn: &mut DbConn, query_id: &str) -> QueryResult<Option<QueryRow>> {
    queries::table
        .find(query_id)
        .select(QueryRow::as_select())
        .first(conn)
        .optional()
}

/// Every message on a response's queries, oldest first.
pub fn response_messages(conn: &mut DbConn, response_id: &str) -> QueryResult<Vec<MessageRow>> {
    query_messages::table
        .inner_join(queries::table.on(queries::id.eq(query_messages::query_id)))
        .filter(queries::response_id.eq(response_id))
        .order((query_messages::at, query_messages::id))
        .select(MessageRow::as_select())
        .load(conn)
}

/// How many queries on a response are open.
pub fn open_query_count(conn: &mut DbConn, response_id: &str) -> QueryResult<i64> {
    queries::table
        .filter(queries::response_id.eq(response_id))
        .filter(queries::status.eq(QueryStatus::Open.as_str()))
        .count()
        .get_result(conn)
}

//! Queries per question: the secretariat asks about a question of the submitted version, the
//! country replies in a thread, the secretariat closes the query. Knows nothing of HTTP.
//!
//! A query is raised on a submitted response (which begins its review) or one under review.
//! The country replies while the query is open and the response is not accepted; a
//! contributor sees and replies only to queries on its own sections.

use chrono::NaiveDateTime;

use super::secretariat::{begin_review_in, refused, ReviewError, TextProblem};
use crate::audit::{self, Actor, AuditKind, Event};
use crate::db::responses::{self, ResponseRow, ResponseStatus};
use crate::db::review_queries::{self, AuthorKind, MessageRow, NewMessage, QueryRow, QueryStatus};
use crate::db::tokens::TokenRow;
use crate::db::users::User;
use crate::db::versions::{self, VersionAnswers};
use crate::db::{answers, DbConn};
use crate::survey::answer::Item;
use crate::survey::Survey;

/// The longest message kept in a thread, in characters.
pub const MAX_QUERY_TEXT: usize = 4000;

/// A message's text, trimmed; refused when empty or too long.
pub fn check_text(body: &str) -> Result<String, ReviewError> {
    let body = body.trim();
    if body.is_empty() {
        return Err(ReviewError::Invalid(TextProblem::Empty));
    }
    if body.chars().count() > MAX_QUERY_TEXT {
        return Err(ReviewError::Invalid(TextProblem::TooLong));
    }
    Ok(body.to_string())
}

/// A query with its messages, oldest first.
#[derive(Debug, Clone)]
pub struct Thread {
    pub query: QueryRow,
    pub messages: Vec<MessageRow>,
}

impl Thread {
    pub fn is_open(&self) -> bool {
        self.query.status == QueryStatus::Open
    }
}

/// Every query on a response with its thread, oldest first (two queries in all).
pub fn threads(conn: &mut DbConn, response_id: &str) -> Result<Vec<Thread>, ReviewError> {
    let queries = review_queries::response_queries(conn, response_id)?;
    let mut messages = review_queries::response_messages(conn, response_id)?;
    Ok(queries
        .into_iter()
        .map(|query| {
            let (mine, rest) = std::mem::take(&mut messages)
                .into_iter()
                .partition(|m| m.query_id == query.id);
            messages = rest;
            Thread {
                query,
                messages: mine,
            }
        })
        .collect())
}

/// The section a question belongs to.
fn section_of<'a>(survey: &'a Survey, question_id: &str) -> Option<&'a str> {
    survey
        .sections
        .iter()
        .find(|s| s.questions.iter().any(|q| q.id == question_id))
        .map(|s| s.id.as_str())
}

/// Whether a link sees a query: the query is on its response, and on a section it answers.
fn link_sees(survey: &Survey, link: &TokenRow, r: &ResponseRow, q: &QueryRow) -> bool {
    let own = r.id == q.response_id
        && r.survey_id == link.survey_id
        && r.country_iso3 == link.country_iso3
        && r.unit == link.unit;
    own && section_of(survey, &q.question_id).is_some_and(|s| link.may_answer(s))
}

/// The queries a link sees on its response, oldest first.
pub fn link_threads(
    conn: &mut DbConn,
    survey: &Survey,
    link: &TokenRow,
    r: &ResponseRow,
) -> Result<Vec<Thread>, ReviewError> {
    Ok(threads(conn, &r.id)?
        .into_iter()
        .filter(|t| link_sees(survey, link, r, &t.query))
        .collect())
}

/// One query as a link finds it, with its response; NotFound when the link may not see it.
pub fn link_thread(
    conn: &mut DbConn,
    survey: &Survey,
    link: &TokenRow,
    query_id: &str,
) -> Result<(Thread, ResponseRow), ReviewError> {
    let query = review_queries::find_query(conn, query_id)?.ok_or(ReviewError::NotFound)?;
    let r = responses::response_by_id(conn, &query.response_id)?.ok_or(ReviewError::NotFound)?;
    if !link_sees(survey, link, &r, &query) {
        return Err(ReviewError::NotFound);
    }
    let thread = threads(conn, &r.id)?
        .into_iter()
        .find(|t| t.query.id == query.id)
        .ok_or(ReviewError::NotFound)?;
    Ok((thread, r))
}

/// Raise a query on a question of the counted version, with its first message. On a
/// submitted response this begins the review. Returns the query's id.
pub fn raise(
    conn: &mut DbConn,
    survey: &Survey,
    r: &ResponseRow,
    question_id: &str,
    body: &str,
    user: &User,
    now: NaiveDateTime,
) -> Result<String, ReviewError> {
    survey.question(question_id).ok_or(ReviewError::NotFound)?;
    let body = check_text(body)?;
    crate::db::transaction(conn, |conn| {
        // The first write locks the response: begin the review, or hold it under review.
        let began = begin_review_in(conn, r, user, now)?;
        if !began
            && !responses::change_status(
                conn,
                &r.id,
                &[ResponseStatus::UnderReview],
                ResponseStatus::UnderReview,
                now,
            )?
        {
            return Err(refused(conn, &r.id));
        }
        let fresh = responses::response_by_id(conn, &r.id)?.ok_or(ReviewError::NotFound)?;
        let version = fresh.counted_version.ok_or(ReviewError::NotFound)?;
        let id = review_queries::insert_query(
            conn,
            &r.id,
            question_id,
            version,
            &NewMessage {
                query_id: "",
                author_kind: AuthorKind::Secretariat,
                author: &user.id,
                author_name: &user.email,
                body: &body,
                at: now,
            },
        )?;
        audit::record(
            conn,
            &Event {
                survey_id: &r.survey_id,
                country_iso3: &r.country_iso3,
                actor: Actor::User(&user.id),
                kind: AuditKind::QueryRaised,
                detail: serde_json::json!({
                    "unit": r.unit,
                    "query": id,
                    "question": question_id,
                    "version": version,
                    "text": body,
                }),
            },
            now,
        )?;
        Ok(id)
    })
}

/// Who writes in a thread.
pub enum Author<'a> {
    Secretariat(&'a User),
    Country(&'a TokenRow),
}

/// Add a message to an open query's thread: the secretariat's, or the country's while its
/// response is not accepted.
pub fn reply(
    conn: &mut DbConn,
    query: &QueryRow,
    r: &ResponseRow,
    author: Author,
    body: &str,
    now: NaiveDateTime,
) -> Result<(), ReviewError> {
    let body = check_text(body)?;
    if matches!(author, Author::Country(_)) && r.status == ResponseStatus::Accepted {
        return Err(ReviewError::State(r.status));
    }
    let (kind, id, name, actor) = match author {
        Author::Secretariat(u) => (
            AuthorKind::Secretariat,
            u.id.as_str(),
            u.email.clone(),
            Actor::User(&u.id),
        ),
        Author::Country(t) => (
            AuthorKind::Country,
            t.id.as_str(),
            t.holder_name
                .clone()
                .or_else(|| t.holder_email.clone())
                .unwrap_or_default(),
            Actor::Link(&t.id),
        ),
    };
    crate::db::transaction(conn, |conn| {
        // Still open, read inside the transaction that writes.
        let now_query =
            review_queries::find_query(conn, &query.id)?.ok_or(ReviewError::NotFound)?;
        if now_query.status != QueryStatus::Open {
            return Err(ReviewError::QueryClosed);
        }
        review_queries::insert_message(
            conn,
            &NewMessage {
                query_id: &query.id,
                author_kind: kind,
                author: id,
                author_name: &name,
                body: &body,
                at: now,
            },
        )?;
        audit::record(
            conn,
            &Event {
                survey_id: &r.survey_id,
                country_iso3: &r.country_iso3,
                actor,
                kind: AuditKind::QueryReplied,
                detail: serde_json::json!({
                    "unit": r.unit,
                    "query": query.id,
                    "question": query.question_id,
                    "text": body,
                }),
            },
            now,
        )?;
        Ok(())
    })
}

/// A query of a response, by id; NotFound when it is another response's.
pub fn response_query(
    conn: &mut DbConn,
    r: &ResponseRow,
    query_id: &str,
) -> Result<QueryRow, ReviewError> {
    review_queries::find_query(conn, query_id)?
        .filter(|q| q.response_id == r.id)
        .ok_or(ReviewError::NotFound)
}

/// Close a query: the secretariat is satisfied. Closing a closed query says so.
pub fn close(
    conn: &mut DbConn,
    r: &ResponseRow,
    query: &QueryRow,
    user: &User,
    now: NaiveDateTime,
) -> Result<(), ReviewError> {
    crate::db::transaction(conn, |conn| {
        if !review_queries::close_query(conn, &query.id, &user.id, now)? {
            return Err(ReviewError::QueryClosed);
        }
        audit::record(
            conn,
            &Event {
                survey_id: &r.survey_id,
                country_iso3: &r.country_iso3,
                actor: Actor::User(&user.id),
                kind: AuditKind::QueryClosed,
                detail: serde_json::json!({
                    "unit": r.unit,
                    "query": query.id,
                    "question": query.question_id,
                }),
            },
            now,
        )?;
        Ok(())
    })
}

/// What became of a queried question since the version the query was raised on.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub old: Option<Vec<Item>>,
    pub new: Option<Vec<Item>>,
    /// Where the new value is: a later version's number, or None for the draft.
    pub in_version: Option<i32>,
    /// The link that changed it, and when (known for a later version).
    pub changed_by: Option<String>,
    pub changed_at: Option<NaiveDateTime>,
}

/// The queried question's answer in the version the query was raised on, against the latest
/// version since or, failing one, the answers as stored now; None when it did not change.
pub fn what_changed(
    conn: &mut DbConn,
    r: &ResponseRow,
    query: &QueryRow,
    later: Option<i32>,
) -> Result<Option<Change>, ReviewError> {
    let old = versions::version_answers(conn, &r.id, query.version)?;
    let (new, in_version) = match later.filter(|n| *n > query.version) {
        Some(n) => (versions::version_answers(conn, &r.id, n)?, Some(n)),
        None => (
            VersionAnswers {
                answers: answers::visible_answers(conn, &r.id)?,
                ..VersionAnswers::default()
            },
            None,
        ),
    };
    let q = &query.question_id;
    let (a, b) = (old.answers.get(q), new.answers.get(q));
    if a == b {
        return Ok(None);
    }
    let changed = new.changed.get(q);
    Ok(Some(Change {
        old: a.cloned(),
        new: b.cloned(),
        in_version,
        changed_by: changed.map(|c| c.0.clone()),
        changed_at: changed.map(|c| c.1),
    }))
}

//! The `answers` table (a row per answer item) and `hidden_questions` (the questions a
//! condition hides in a response, whose answers are kept but not counted).

use std::collections::{HashMap, HashSet};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text, Timestamp};

use super::schema::{answers, hidden_questions, responses};
use super::sql::{json, Kept};
use super::DbConn;
use crate::survey::answer::{Answers, Item};

pub fn load_answers(conn: &mut DbConn, response_id: &str) -> QueryResult<Answers> {
    response_answers(conn, response_id, false)
}

/// The answers of a response that a condition does not hide: what a submission contains.
pub fn visible_answers(conn: &mut DbConn, response_id: &str) -> QueryResult<Answers> {
    response_answers(conn, response_id, true)
}

fn response_answers(
    conn: &mut DbConn,
    response_id: &str,
    only_visible: bool,
) -> QueryResult<Answers> {
    let q = answers::table
        .filter(answers::response_id.eq(response_id))
        .order((answers::question_id, answers::item))
        .select((
            answers::question_id,
            answers::item,
            answers::value,
            answers::num,
        ));
    // Not one boxed query: the statement cache finds a boxed query by its SQL, written again
    // at each page view to look it up; these two it finds by their type (on the backend's own
    // connection: see `db::native!`).
    let rows: Vec<(String, String, String, Option<f64>)> = match only_visible {
        true => super::native!(conn, |c| q.filter(answers::visible.eq(true)).load(c))?,
        false => super::native!(conn, |c| q.load(c))?,
    };
    let mut out = Answers::new();
    for (q, item, value, num) in rows {
        out.entry(q).or_default().push(Item { item, value, num });
    }
    Ok(out)
}

/// The answers of every response of a survey, by response id, in one query (hidden ones
/// included, as [`load_answers`] gives them).
pub fn survey_answers(conn: &mut DbConn, survey_id: &str) -> QueryResult<HashMap<String, Answers>> {
    survey_answer_rows(conn, survey_id, false)
}

/// The answers a condition does not hide, of every response of a survey, by response id.
pub fn visible_survey_answers(
    conn: &mut DbConn,
    survey_id: &str,
) -> QueryResult<HashMap<String, Answers>> {
    survey_answer_rows(conn, survey_id, true)
}

fn survey_answer_rows(
    conn: &mut DbConn,
    survey_id: &str,
    only_visible: bool,
) -> QueryResult<HashMap<String, Answers>> {
    let mut q = answers::table
        .inner_join(responses::table.on(responses::id.eq(answers::response_id)))
        .filter(responses::survey_id.eq(survey_id))
        .order((answers::response_id, answers::question_id, answers::item))
        .select((
            answers::response_id,
            answers::question_id,
            answers::item,
            answers::value,
            answers::num,
        ))
        .into_boxed();
    if only_visible {
        q = q.filter(answers::visible.eq(true));
    }
    let rows: Vec<(String, String, String, String, Option<f64>)> = q.load(conn)?;
    let mut out: HashMap<String, Answers> = HashMap::new();
    for (response, question, item, value, num) in rows {
        out.entry(response)
            .or_default()
            .entry(question)
            .or_default()
            .push(Item { item, value, num });
    }
    Ok(out)
}

/// Replace a question's answer in a response (no items: the answer is removed).
pub(super) struct AnswerWrite<'a> {
    pub response_id: &'a str,
    pub question_id: &'a str,
    pub section_id: &'a str,
    pub items: &'a [Item],
    pub visible: bool,
    pub token_id: &'a str,
    pub now: NaiveDateTime,
}

pub(super) fn replace_answer(conn: &mut DbConn, w: &AnswerWrite) -> QueryResult<()> {
    replace_answers(
        conn,
        &AnswersWrite {
            response_id: w.response_id,
            section_id: w.section_id,
            changes: &[(w.question_id, w.items)],
            hidden: &|_| !w.visible,
            stored: &|_| true,
            token_id: w.token_id,
            now: w.now,
        },
    )
}

/// Replace several questions' answers in a response (a question with no items: its answer
/// is removed).
pub(super) struct AnswersWrite<'a> {
    pub response_id: &'a str,
    pub section_id: &'a str,
    /// (question, its new items).
    pub changes: &'a [(&'a str, &'a [Item])],
    /// Whether a condition hides the question (its items are stored as not visible).
    pub hidden: &'a dyn Fn(&str) -> bool,
    /// Whether the question may have stored items (false only when the caller read the
    /// response under a lock it still holds and found none): the DELETE is sent only for a
    /// change of some question that may.
    pub stored: &'a dyn Fn(&str) -> bool,
    pub token_id: &'a str,
    pub now: NaiveDateTime,
}

/// [`AnswersWrite`] in two statements however many questions change: one DELETE of their old
/// items (none when no question had any), one INSERT of the new ones (none when every change
/// removes an answer). Both are of fixed text, kept prepared ([`Kept`]): the questions and the
/// rows travel as one JSON array each, which the database unpacks.
pub(super) fn replace_answers(conn: &mut DbConn, w: &AnswersWrite) -> QueryResult<()> {
    if w.changes.is_empty() {
        return Ok(());
    }
    if w.changes.iter().any(|(q, _)| (w.stored)(q)) {
        let questions: Vec<&str> = w.changes.iter().map(|(q, _)| *q).collect();
        delete_answers(conn, w.response_id, json(&questions)?)?;
    }
    // (question, item, value, num, visible): a JSON array each.
    let rows: Vec<(&str, &str, &str, Option<f64>, bool)> = w
        .changes
        .iter()
        .flat_map(|(q, items)| {
            let visible = !(w.hidden)(q);
            items
                .iter()
                .map(move |it| (*q, it.item.as_str(), it.value.as_str(), it.num, visible))
        })
        .collect();
    if !rows.is_empty() {
        insert_answers(conn, w, json(&rows)?)?;
    }
    Ok(())
}

super::sql::statement_names! {
    DeleteAnswers;
    InsertAnswers;
    SetVisible;
}

/// Delete a response's answers to the questions of a JSON array.
fn delete_answers(conn: &mut DbConn, response_id: &str, questions: String) -> QueryResult<usize> {
    Kept::<DeleteAnswers>::new("DELETE FROM answers WHERE response_id = ")
        .bind::<Text, _>(response_id)
        .sql(" AND question_id IN ")
        .bind_json_elements(conn, questions)
        .execute(conn)
}

/// Insert the rows of a JSON array of `[question, item, value, num, visible]`.
fn insert_answers(conn: &mut DbConn, w: &AnswersWrite, rows: String) -> QueryResult<usize> {
    let (columns, source) = match conn {
        DbConn::Sqlite(_) => (
            "value->>0, value->>1, value->>2, value->>3, value->>4 FROM json_each(",
            ")",
        ),
        DbConn::Postgres(_) => (
            "e->>0, e->>1, e->>2, (e->>3)::float8, (e->>4)::boolean \
             FROM json_array_elements(",
            "::json) AS e",
        ),
    };
    Kept::<InsertAnswers>::new(
        "INSERT INTO answers (response_id, section_id, updated_at, updated_by, question_id, \
         item, value, num, visible) SELECT ",
    )
    .bind::<Text, _>(w.response_id)
    .sql(", ")
    .bind::<Text, _>(w.section_id)
    .sql(", ")
    .bind::<Timestamp, _>(w.now)
    .sql(", ")
    .bind::<Text, _>(w.token_id)
    .sql(", ")
    .sql(columns)
    .bind::<Text, _>(rows)
    .sql(source)
    .execute(conn)
}

/// Bring hidden_questions and answers.visible in line with `hidden` (only what changed).
pub(super) fn sync_hidden(
    conn: &mut DbConn,
    response_id: &str,
    hidden: &HashSet<String>,
) -> QueryResult<()> {
    let stored: HashSet<String> = hidden_questions::table
        .filter(hidden_questions::response_id.eq(response_id))
        .select(hidden_questions::question_id)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    for q in hidden.difference(&stored) {
        diesel::insert_into(hidden_questions::table)
            .values((
                hidden_questions::response_id.eq(response_id),
                hidden_questions::question_id.eq(q),
            ))
            .execute(conn)?;
        set_visible(conn, response_id, q, false)?;
    }
    for q in stored.difference(hidden) {
        diesel::delete(
            hidden_questions::table
                .filter(hidden_questions::response_id.eq(response_id))
                .filter(hidden_questions::question_id.eq(q)),
        )
        .execute(conn)?;
        set_visible(conn, response_id, q, true)?;
    }
    Ok(())
}

fn set_visible(
    conn: &mut DbConn,
    response_id: &str,
    question: &str,
    visible: bool,
) -> QueryResult<()> {
    Kept::<SetVisible>::new("UPDATE answers SET visible = ")
        .bind::<Bool, _>(visible)
        .sql(" WHERE response_id = ")
        .bind::<Text, _>(response_id)
        .sql(" AND question_id = ")
        .bind::<Text, _>(question)
        .execute(conn)?;
    Ok(())
}

//! The `answers` table (a row per answer item) and `hidden_questions` (the questions a
//! condition hides in a response, whose answers are kept but not counted).

use std::collections::{HashMap, HashSet};

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{answers, hidden_questions, responses};
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
    let mut q = answers::table
        .filter(answers::response_id.eq(response_id))
        .order((answers::question_id, answers::item))
        .select((
            answers::question_id,
            answers::item,
            answers::value,
            answers::num,
        ))
        .into_boxed();
    if only_visible {
        q = q.filter(answers::visible.eq(true));
    }
    let rows: Vec<(String, String, String, Option<f64>)> = q.load(conn)?;
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

/// Rows in one multi-row INSERT: 9 bound values each, well under SQLite's 32,766 and
/// PostgreSQL's 65,535 parameters, and more items than a section's form holds in practice
/// (a larger save takes one more statement per this many items).
const INSERT_ROWS: usize = 1000;

/// [`AnswersWrite`] in two statements however many questions change: one DELETE of their old
/// items (none when no question had any), one multi-row INSERT of the new ones (none when every
/// change removes an answer).
pub(super) fn replace_answers(conn: &mut DbConn, w: &AnswersWrite) -> QueryResult<()> {
    if w.changes.is_empty() {
        return Ok(());
    }
    let questions: Vec<&str> = w.changes.iter().map(|(q, _)| *q).collect();
    if questions.iter().any(|q| (w.stored)(q)) {
        diesel::delete(
            answers::table
                .filter(answers::response_id.eq(w.response_id))
                .filter(answers::question_id.eq_any(&questions)),
        )
        .execute(conn)?;
    }
    let rows: Vec<_> = w
        .changes
        .iter()
        .flat_map(|(q, items)| {
            let visible = !(w.hidden)(q);
            items.iter().map(move |it| {
                (
                    answers::response_id.eq(w.response_id),
                    answers::question_id.eq(*q),
                    answers::item.eq(it.item.as_str()),
                    answers::value.eq(it.value.as_str()),
                    answers::num.eq(it.num),
                    answers::section_id.eq(w.section_id),
                    answers::updated_at.eq(w.now),
                    answers::updated_by.eq(w.token_id),
                    answers::visible.eq(visible),
                )
            })
        })
        .collect();
    for chunk in rows.chunks(INSERT_ROWS) {
        super::insert_rows!(conn, answers::table, chunk)?;
    }
    Ok(())
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
    diesel::update(
        answers::table
            .filter(answers::response_id.eq(response_id))
            .filter(answers::question_id.eq(question)),
    )
    .set(answers::visible.eq(visible))
    .execute(conn)?;
    Ok(())
}

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
    diesel::delete(
        answers::table
            .filter(answers::response_id.eq(w.response_id))
            .filter(answers::question_id.eq(w.question_id)),
    )
    .execute(conn)?;
    for it in w.items {
        diesel::insert_into(answers::table)
            .values((
                answers::response_id.eq(w.response_id),
                answers::question_id.eq(w.question_id),
                answers::item.eq(&it.item),
                answers::value.eq(&it.value),
                answers::num.eq(it.num),
                answers::section_id.eq(w.section_id),
                answers::updated_at.eq(w.now),
                answers::updated_by.eq(w.token_id),
                answers::visible.eq(w.visible),
            ))
            .execute(conn)?;
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

//! The `answers` table (a row per answer item) and `hidden_questions` (the questions a
//! condition hides in a response, whose answers are kept but not counted).

use std::collections::{HashMap, HashSet};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamp};

use super::schema::{answers, hidden_questions, responses};
use super::sql::{json, Kept};
use super::DbConn;
use crate::survey::answer::{Answers, Item};

pub fn load_answers(conn: &mut DbConn, response_id: &str) -> QueryResult<Answers> {
    response_answers(conn, response_id, false)
}

/// A response's answers as the link's look-up gathers them (`[[question, item, value, num],
/// ...]`, or nothing for none: see [`super::tokens::open_token`]), as [`load_answers`] gives
/// them.
pub fn from_json(text: Option<&str>) -> QueryResult<Answers> {
    let rows: Vec<(String, String, String, Option<f64>)> = match text {
        Some(text) => serde_json::from_str(text)
            .map_err(|e| diesel::result::Error::DeserializationError(e.into()))?,
        None => Vec::new(),
    };
    let mut out = Answers::new();
    for (q, item, value, num) in rows {
        out.entry(q).or_default().push(Item { item, value, num });
    }
    // In the order of the table's key, as a read of the rows gives them.
    for items in out.values_mut() {
        items.sort_unstable_by(|a, b| a.item.cmp(&b.item));
    }
    Ok(out)
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

/// A question's starting answer in a response created in the same transaction.
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
            // Called for a response created in the same transaction: nothing is stored.
            stored: &|_| &[],
            token_id: w.token_id,
            now: w.now,
        },
    )
}

/// Replace several questions' answers in a response (a question with no items: its answer
/// is removed).
pub(super) struct AnswersWrite<'a, 's> {
    pub response_id: &'a str,
    pub section_id: &'a str,
    /// (question, its new items).
    pub changes: &'a [(&'a str, &'a [Item])],
    /// Whether a condition hides the question (its items are stored as not visible).
    pub hidden: &'a dyn Fn(&str) -> bool,
    /// The question's items as stored (none when it has no answer). The caller read them
    /// under a guarantee that they are still those (the claim of the section's version, or
    /// a response created in the same transaction).
    pub stored: &'a dyn Fn(&str) -> &'s [Item],
    pub token_id: &'a str,
    pub now: NaiveDateTime,
}

/// [`AnswersWrite`] in one statement however many questions change, where no stored item
/// goes away: an INSERT of the new items that updates those already stored (an answer's
/// value changed keeps its item). A change that drops stored items (a choice unticked, an
/// answer cleared) adds one DELETE of just those. Both are of fixed text, kept prepared
/// ([`Kept`]): the rows travel as one JSON array, which the database unpacks. (A draft save
/// sends the same arrays to `section_saves`, see [`super::sections`].)
pub(super) fn replace_answers(conn: &mut DbConn, w: &AnswersWrite) -> QueryResult<()> {
    let rows = ItemRows::of(w)?;
    if let Some(dropped) = rows.dropped {
        delete_items(conn, w.response_id, dropped)?;
    }
    if let Some(upserted) = rows.upserted {
        upsert_answers(conn, w, upserted)?;
    }
    Ok(())
}

/// What an [`AnswersWrite`] changes in `answers`, as the JSON arrays the statements unpack;
/// None where there is nothing.
pub(super) struct ItemRows {
    /// `[question, item]` of every stored item that the new items do not keep.
    pub dropped: Option<String>,
    /// `[question, item, value, num, visible]` of every new item: inserted, or updated in
    /// place where the item is stored.
    pub upserted: Option<String>,
}

impl ItemRows {
    pub fn of(w: &AnswersWrite) -> QueryResult<ItemRows> {
        let dropped: Vec<(&str, &str)> = w
            .changes
            .iter()
            .flat_map(|(q, items)| {
                (w.stored)(q)
                    .iter()
                    .filter(|old| !items.iter().any(|new| new.item == old.item))
                    .map(move |old| (*q, old.item.as_str()))
            })
            .collect();
        let upserted: Vec<(&str, &str, &str, Option<f64>, bool)> = w
            .changes
            .iter()
            .flat_map(|(q, items)| {
                let visible = !(w.hidden)(q);
                items
                    .iter()
                    .map(move |it| (*q, it.item.as_str(), it.value.as_str(), it.num, visible))
            })
            .collect();
        Ok(ItemRows {
            dropped: (!dropped.is_empty()).then(|| json(&dropped)).transpose()?,
            upserted: (!upserted.is_empty())
                .then(|| json(&upserted))
                .transpose()?,
        })
    }
}

super::sql::statement_names! {
    DeleteItems;
    UpsertAnswers;
    InsertHidden;
    DeleteHidden;
    SetVisible;
}

/// Delete a response's answer items named by a JSON array of `[question, item]`.
fn delete_items(conn: &mut DbConn, response_id: &str, pairs: String) -> QueryResult<usize> {
    let (source, close) = match conn {
        DbConn::Sqlite(_) => ("(SELECT value->>0, value->>1 FROM json_each(", "))"),
        DbConn::Postgres(_) => (
            "(SELECT e->>0, e->>1 FROM json_array_elements(",
            "::json) AS e)",
        ),
    };
    Kept::<DeleteItems>::new("DELETE FROM answers WHERE response_id = ")
        .bind::<Text, _>(response_id)
        .sql(" AND (question_id, item) IN ")
        .sql(source)
        .bind::<Text, _>(pairs)
        .sql(close)
        .execute(conn)
}

/// Insert the rows of a JSON array of `[question, item, value, num, visible]`, updating an
/// item already stored in place.
fn upsert_answers(conn: &mut DbConn, w: &AnswersWrite<'_, '_>, rows: String) -> QueryResult<usize> {
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
    Kept::<UpsertAnswers>::new(
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
    // `WHERE true`: without a WHERE, SQLite would read ON as the start of a join's condition.
    .sql(
        " WHERE true ON CONFLICT (response_id, question_id, item) DO UPDATE SET \
         value = excluded.value, num = excluded.num, section_id = excluded.section_id, \
         updated_at = excluded.updated_at, updated_by = excluded.updated_by, \
         visible = excluded.visible",
    )
    .execute(conn)
}

/// Bring hidden_questions and answers.visible in line with `hidden` (only what changed), in
/// at most four statements however many questions change: the stored set read, the questions
/// newly hidden added, those shown again removed, and their answers' visibility set.
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
    let newly_hidden: Vec<&str> = hidden.difference(&stored).map(String::as_str).collect();
    let shown: Vec<&str> = stored.difference(hidden).map(String::as_str).collect();
    insert_hidden(conn, response_id, &newly_hidden)?;
    if !shown.is_empty() {
        Kept::<DeleteHidden>::new("DELETE FROM hidden_questions WHERE response_id = ")
            .bind::<Text, _>(response_id)
            .sql(" AND question_id IN ")
            .bind_json_elements(conn, json(&shown)?)
            .execute(conn)?;
    }
    if !newly_hidden.is_empty() || !shown.is_empty() {
        // The answers of the questions shown again become visible, those newly hidden not.
        Kept::<SetVisible>::new("UPDATE answers SET visible = question_id IN ")
            .bind_json_elements(conn, json(&shown)?)
            .sql(" WHERE response_id = ")
            .bind::<Text, _>(response_id)
            .sql(" AND question_id IN ")
            .bind_json_elements(conn, json(&[&newly_hidden[..], &shown[..]].concat())?)
            .execute(conn)?;
    }
    Ok(())
}

/// The questions a condition hides in a response created in the same transaction, whose
/// answers (the starting ones) were written with their visibility: one INSERT.
pub(super) fn hide_in_new_response(
    conn: &mut DbConn,
    response_id: &str,
    hidden: &HashSet<String>,
) -> QueryResult<()> {
    let hidden: Vec<&str> = hidden.iter().map(String::as_str).collect();
    insert_hidden(conn, response_id, &hidden)
}

/// Add questions to a response's hidden ones, in one statement (none for no question).
fn insert_hidden(conn: &mut DbConn, response_id: &str, questions: &[&str]) -> QueryResult<()> {
    if questions.is_empty() {
        return Ok(());
    }
    let (source, close) = match conn {
        DbConn::Sqlite(_) => ("value FROM json_each(", ")"),
        DbConn::Postgres(_) => ("json_array_elements_text(", "::json)"),
    };
    Kept::<InsertHidden>::new("INSERT INTO hidden_questions (response_id, question_id) SELECT ")
        .bind::<Text, _>(response_id)
        .sql(", ")
        .sql(source)
        .bind::<Text, _>(json(&questions)?)
        .sql(close)
        .execute(conn)?;
    Ok(())
}

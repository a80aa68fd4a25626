//! The `carried_from` and `carried_answers` tables: where a response of a round that follows
//! another started from, and each answer carried into it with its confirmation.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{carried_answers, carried_from, response_versions, responses};
use super::DbConn;
use crate::survey::answer::{same_items, Item};

/// The response and version of the previous round a response started from.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = carried_from)]
pub struct CarriedFrom {
    pub response_id: String,
    pub from_response_id: String,
    pub from_version: i32,
    pub carried_at: NaiveDateTime,
}

/// One answer carried from the previous round, as it was carried.
#[derive(Debug, Clone, PartialEq)]
pub struct CarriedAnswer {
    pub response_id: String,
    pub question_id: String,
    /// The previous round's question it came from.
    pub from_question_id: String,
    /// The answer as carried (codes already renamed for this round).
    pub items: Vec<Item>,
    /// When and by which link someone of the country said it is still accurate.
    pub confirmed_at: Option<NaiveDateTime>,
    pub confirmed_by: Option<String>,
}

impl CarriedAnswer {
    /// Whether `current` is still the answer as carried (compared item by item, values as
    /// stored).
    pub fn is_unchanged(&self, current: Option<&Vec<Item>>) -> bool {
        same_items(&self.items, current.map_or(&[][..], |v| v.as_slice()))
    }
}

/// What a new response starts with when its survey follows another round: the previous
/// round's response and version, and each answer carried (already in this round's codes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Start {
    pub from_response_id: String,
    pub from_version: i32,
    pub answers: Vec<StartAnswer>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StartAnswer {
    pub question_id: String,
    pub from_question_id: String,
    pub section_id: String,
    pub items: Vec<Item>,
}

/// Items as `carried_answers.items` holds them: a JSON array of [item, value, num] triples.
fn items_json(items: &[Item]) -> String {
    let triples: Vec<(&str, &str, Option<f64>)> = items
        .iter()
        .map(|i| (i.item.as_str(), i.value.as_str(), i.num))
        .collect();
    // Strings and numbers only: serialising cannot fail.
    serde_json::to_string(&triples).unwrap_or_else(|_| "[]".into())
}

type CarriedRow = (
    String,
    String,
    String,
    String,
    Option<NaiveDateTime>,
    Option<String>,
);

fn from_row(
    (response_id, question_id, from_question_id, items, confirmed_at, confirmed_by): CarriedRow,
) -> CarriedAnswer {
    // Written by `record` only; a row that does not parse counts as carrying nothing.
    let items: Vec<(String, String, Option<f64>)> =
        serde_json::from_str(&items).unwrap_or_default();
    CarriedAnswer {
        response_id,
        question_id,
        from_question_id,
        items: items
            .into_iter()
            .map(|(item, value, num)| Item { item, value, num })
            .collect(),
        confirmed_at,
        confirmed_by,
    }
}

const COLUMNS: (
    carried_answers::response_id,
    carried_answers::question_id,
    carried_answers::from_question_id,
    carried_answers::items,
    carried_answers::confirmed_at,
    carried_answers::confirmed_by,
) = (
    carried_answers::response_id,
    carried_answers::question_id,
    carried_answers::from_question_id,
    carried_answers::items,
    carried_answers::confirmed_at,
    carried_answers::confirmed_by,
);

/// The version of a country's response to `survey_id` that a new round starts from: the last
/// accepted one, else the one counted (the last submitted, not recalled). None when the country
/// (or organisation) never submitted one.
pub fn source_version(
    conn: &mut DbConn,
    survey_id: &str,
    iso3: &str,
    unit: &str,
) -> QueryResult<Option<(String, i32)>> {
    let found: Option<(String, Option<i32>)> = responses::table
        .filter(responses::survey_id.eq(survey_id))
        .filter(responses::country_iso3.eq(iso3))
        .filter(responses::unit.eq(unit))
        .select((responses::id, responses::counted_version))
        .first(conn)
        .optional()?;
    let Some((response_id, counted)) = found else {
        return Ok(None);
    };
    let accepted: Option<i32> = response_versions::table
        .filter(response_versions::response_id.eq(&response_id))
        .filter(response_versions::accepted_at.is_not_null())
        .select(diesel::dsl::max(response_versions::number))
        .first(conn)?;
    Ok(accepted.or(counted).map(|v| (response_id, v)))
}

#[derive(diesel::QueryableByName)]
struct LastAccepted {
    #[diesel(sql_type = diesel::sql_types::Text)]
    response_id: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Integer>)]
    number: Option<i32>,
}

/// [`source_version`] of every country (and organisation) of `survey_id` at once, in two
/// queries: (iso3, unit) -> (response id, version).
pub fn source_versions(
    conn: &mut DbConn,
    survey_id: &str,
) -> QueryResult<HashMap<(String, String), (String, i32)>> {
    let rows: Vec<(String, String, String, Option<i32>)> = responses::table
        .filter(responses::survey_id.eq(survey_id))
        .select((
            responses::id,
            responses::country_iso3,
            responses::unit,
            responses::counted_version,
        ))
        .load(conn)?;
    let mut sql = super::sql::Sql::new(
        "SELECT v.response_id AS response_id, MAX(v.number) AS number FROM response_versions v \
         JOIN responses r ON r.id = v.response_id WHERE v.accepted_at IS NOT NULL AND r.survey_id = ",
    );
    sql.bind(survey_id).push(" GROUP BY v.response_id");
    let accepted: HashMap<String, Option<i32>> = sql
        .query()
        .load::<LastAccepted>(conn)?
        .into_iter()
        .map(|a| (a.response_id, a.number))
        .collect();
    Ok(rows
        .into_iter()
        .filter_map(|(id, iso3, unit, counted)| {
            let version = accepted.get(&id).copied().flatten().or(counted)?;
            Some(((iso3, unit), (id, version)))
        })
        .collect())
}

/// Record where a new response started from and every answer carried into it (the answers
/// themselves are written with the response, see `responses::get_or_create_response`).
pub(super) fn record(
    conn: &mut DbConn,
    from: &CarriedFrom,
    answers: &[StartAnswer],
) -> QueryResult<()> {
    diesel::insert_into(carried_from::table)
        .values((
            carried_from::response_id.eq(&from.response_id),
            carried_from::from_response_id.eq(&from.from_response_id),
            carried_from::from_version.eq(from.from_version),
            carried_from::carried_at.eq(from.carried_at),
        ))
        .execute(conn)?;
    if answers.is_empty() {
        return Ok(());
    }
    // One statement per 200 answers (all values bound as text: the columns are text).
    for chunk in answers.chunks(200) {
        let mut sql = super::sql::Sql::new(
            "INSERT INTO carried_answers (response_id, question_id, from_question_id, items) VALUES ",
        );
        let response = sql.param(from.response_id.as_str());
        for (n, a) in chunk.iter().enumerate() {
            let json = items_json(&a.items);
            sql.push(if n == 0 { "(" } else { ", (" })
                .push(&response)
                .push(", ")
                .bind(a.question_id.as_str())
                .push(", ")
                .bind(a.from_question_id.as_str())
                .push(", ")
                .bind(json)
                .push(")");
        }
        sql.query().execute(conn)?;
    }
    Ok(())
}

pub fn carried_from(conn: &mut DbConn, response_id: &str) -> QueryResult<Option<CarriedFrom>> {
    carried_from::table
        .find(response_id)
        .select(CarriedFrom::as_select())
        .first(conn)
        .optional()
}

/// The answers carried into a response, by question id.
pub fn carried_answers(
    conn: &mut DbConn,
    response_id: &str,
) -> QueryResult<HashMap<String, CarriedAnswer>> {
    let rows: Vec<CarriedRow> = carried_answers::table
        .filter(carried_answers::response_id.eq(response_id))
        .select(COLUMNS)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(from_row)
        .map(|c| (c.question_id.clone(), c))
        .collect())
}

/// The answers carried into every response of a survey: response id -> question id -> answer.
pub fn survey_carried_answers(
    conn: &mut DbConn,
    survey_id: &str,
) -> QueryResult<HashMap<String, HashMap<String, CarriedAnswer>>> {
    let rows: Vec<CarriedRow> = carried_answers::table
        .inner_join(responses::table.on(responses::id.eq(carried_answers::response_id)))
        .filter(responses::survey_id.eq(survey_id))
        .select(COLUMNS)
        .load(conn)?;
    let mut out: HashMap<String, HashMap<String, CarriedAnswer>> = HashMap::new();
    for c in rows.into_iter().map(from_row) {
        out.entry(c.response_id.clone())
            .or_default()
            .insert(c.question_id.clone(), c);
    }
    Ok(out)
}

/// Where every response of a survey started from: response id -> its origin.
pub fn survey_carried_from(
    conn: &mut DbConn,
    survey_id: &str,
) -> QueryResult<HashMap<String, CarriedFrom>> {
    let rows: Vec<CarriedFrom> = carried_from::table
        .inner_join(responses::table.on(responses::id.eq(carried_from::response_id)))
        .filter(responses::survey_id.eq(survey_id))
        .select(CarriedFrom::as_select())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|c| (c.response_id.clone(), c))
        .collect())
}

/// Mark carried answers of a response confirmed "still accurate" (those not confirmed yet) and
/// take the confirmation back from others; the rest are left as they are.
pub fn set_confirmed(
    conn: &mut DbConn,
    response_id: &str,
    confirmed: &[&str],
    unconfirmed: &[&str],
    by: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        if !confirmed.is_empty() {
            diesel::update(
                carried_answers::table
                    .filter(carried_answers::response_id.eq(response_id))
                    .filter(carried_answers::question_id.eq_any(confirmed))
                    .filter(carried_answers::confirmed_at.is_null()),
            )
            .set((
                carried_answers::confirmed_at.eq(now),
                carried_answers::confirmed_by.eq(by),
            ))
            .execute(conn)?;
        }
        if !unconfirmed.is_empty() {
            diesel::update(
                carried_answers::table
                    .filter(carried_answers::response_id.eq(response_id))
                    .filter(carried_answers::question_id.eq_any(unconfirmed))
                    .filter(carried_answers::confirmed_at.is_not_null()),
            )
            .set((
                carried_answers::confirmed_at.eq(None::<NaiveDateTime>),
                carried_answers::confirmed_by.eq(None::<String>),
            ))
            .execute(conn)?;
        }
        Ok(())
    })
}

/// Move a carried answer to the question and codes a changed survey file gives it (see
/// `survey::changes::carried_fate`), keeping its confirmation.
pub fn rewrite(
    conn: &mut DbConn,
    response_id: &str,
    question_id: &str,
    to: &str,
    items: &[Item],
) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::update(
            carried_answers::table
                .filter(carried_answers::response_id.eq(response_id))
                .filter(carried_answers::question_id.eq(question_id)),
        )
        .set((
            carried_answers::question_id.eq(to),
            carried_answers::items.eq(items_json(items)),
        ))
        .execute(conn)?;
        Ok(())
    })
}

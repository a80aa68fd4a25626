//! Reading what the comparison of two rounds needs: a country's responses with the previous
//! round's answers they started from, or every counted response of a survey with theirs, in a
//! constant number of queries.
//!
//! A response compares with the version of the previous round it started from
//! (`carried_from`); a response created before the country's previous one was submitted has
//! none, and compares with the previous round's source version (the last accepted, else the
//! counted one), as a new response would start from now.

use std::collections::{HashMap, HashSet};

use diesel::sql_types::{Integer, Nullable, Text};
use diesel::{QueryResult, QueryableByName, RunQueryDsl};

use super::Counted;
use crate::db::responses::{self, ResponseRow};
use crate::db::{answers, carried, versions, DbConn};
use crate::results::aggregate::{self, Filter};
use crate::results::sql::Sql;
use crate::survey::answer::{Answers, Item};
use crate::survey::Survey;

/// One of a country's responses to this round, with what it is compared with.
pub struct CountryResponse {
    pub response: ResponseRow,
    /// Its current answers (hidden ones included: the comparison leaves them out).
    pub current: Answers,
    /// The previous round's version it is compared with (number), and that version's answers.
    pub previous: Option<(i32, Answers)>,
    /// Questions whose carried answer the country confirmed.
    pub confirmed: HashSet<String>,
}

/// The previous round's response and version a response compares with.
fn origin(
    conn: &mut DbConn,
    previous_survey: &str,
    r: &ResponseRow,
) -> QueryResult<Option<(String, i32)>> {
    if let Some(from) = carried::carried_from(conn, &r.id)? {
        return Ok(Some((from.from_response_id, from.from_version)));
    }
    carried::source_version(conn, previous_survey, &r.country_iso3, &r.unit)
}

/// A country's responses to `survey` (one per organisation in a survey of them), each with the
/// previous round's answers it is compared with.
pub fn country(
    conn: &mut DbConn,
    survey: &Survey,
    previous_survey: &str,
    iso3: &str,
) -> QueryResult<Vec<CountryResponse>> {
    let mut out = Vec::new();
    for response in responses::country_responses(conn, &survey.id, iso3)? {
        let current = answers::load_answers(conn, &response.id)?;
        let previous = match origin(conn, previous_survey, &response)? {
            Some((id, number)) => Some((
                number,
                versions::version_answers(conn, &id, number)?.answers,
            )),
            None => None,
        };
        let confirmed = carried::carried_answers(conn, &response.id)?
            .into_values()
            .filter(|c| c.confirmed_at.is_some())
            .map(|c| c.question_id)
            .collect();
        out.push(CountryResponse {
            response,
            current,
            previous,
            confirmed,
        });
    }
    Ok(out)
}

#[derive(QueryableByName)]
struct VersionItem {
    #[diesel(sql_type = Text)]
    response_id: String,
    #[diesel(sql_type = Integer)]
    version: i32,
    #[diesel(sql_type = Text)]
    question_id: String,
    #[diesel(sql_type = Text)]
    item: String,
    #[diesel(sql_type = Text)]
    value: String,
    #[diesel(sql_type = Nullable<diesel::sql_types::Double>)]
    num: Option<f64>,
}

#[derive(QueryableByName)]
struct CountedResponse {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    country_iso3: String,
    #[diesel(sql_type = Text)]
    unit: String,
    #[diesel(sql_type = Integer)]
    counted_version: i32,
}

/// The answers of every version of a survey's responses that `wanted` names, by (response,
/// version); with `counted_only`, only each response's counted version is read.
fn version_items(
    conn: &mut DbConn,
    survey_id: &str,
    counted_only: bool,
    wanted: &dyn Fn(&str, i32) -> bool,
) -> QueryResult<HashMap<(String, i32), Answers>> {
    let mut sql = Sql::new(
        "SELECT va.response_id AS response_id, va.version AS version, va.question_id AS question_id, \
         va.item AS item, va.value AS value, va.num AS num FROM version_answers va \
         JOIN responses r ON r.id = va.response_id",
    );
    if counted_only {
        sql.push(" AND va.version = r.counted_version");
    }
    sql.push(" WHERE r.survey_id = ")
        .bind(survey_id)
        .push(" ORDER BY va.response_id, va.version, va.question_id, va.item");
    let rows: Vec<VersionItem> = sql.query().load(conn)?;
    let mut out: HashMap<(String, i32), Answers> = HashMap::new();
    for row in rows {
        if !wanted(&row.response_id, row.version) {
            continue;
        }
        out.entry((row.response_id, row.version))
            .or_default()
            .entry(row.question_id)
            .or_default()
            .push(Item {
                item: row.item,
                value: row.value,
                num: row.num,
            });
    }
    Ok(out)
}

/// Every response of `survey` that counts (its counted version, within the filter's
/// population, region and income group, as the results pages select them; drafts never), with
/// the previous round's answers it compares with. Seven queries, whatever the number of
/// countries.
pub fn counted(
    conn: &mut DbConn,
    survey: &Survey,
    previous_survey: &str,
    filter: &Filter,
) -> QueryResult<Vec<Counted>> {
    let submitted = Filter {
        include_drafts: false,
        ..filter.clone()
    };
    let mut sql = Sql::new(
        "SELECT r.id AS id, r.country_iso3 AS country_iso3, r.unit AS unit, \
         r.counted_version AS counted_version",
    );
    aggregate::responses_from(&mut sql, &survey.id, &submitted);
    sql.push(" ORDER BY r.country_iso3, r.unit");
    let counted: Vec<CountedResponse> = sql.query().load(conn)?;
    let mut current = version_items(conn, &survey.id, true, &|_, _| true)?;
    let from = carried::survey_carried_from(conn, &survey.id)?;
    let carried = carried::survey_carried_answers(conn, &survey.id)?;
    // The previous round's source versions, for responses that did not start from one.
    let source = carried::source_versions(conn, previous_survey)?;
    let origin_of = |r: &CountedResponse| -> Option<(String, i32)> {
        match from.get(&r.id) {
            Some(f) => Some((f.from_response_id.clone(), f.from_version)),
            None => source
                .get(&(r.country_iso3.clone(), r.unit.clone()))
                .cloned(),
        }
    };
    let origins: HashMap<String, (String, i32)> = counted
        .iter()
        .filter_map(|r| Some((r.id.clone(), origin_of(r)?)))
        .collect();
    let wanted: HashSet<(String, i32)> = origins.values().cloned().collect();
    let previous = version_items(conn, previous_survey, false, &|id, v| {
        wanted.contains(&(id.to_string(), v))
    })?;
    Ok(counted
        .into_iter()
        .map(|r| {
            let origin = origins.get(&r.id);
            Counted {
                current: current
                    .remove(&(r.id.clone(), r.counted_version))
                    .unwrap_or_default(),
                previous: origin.map(|o| previous.get(o).cloned().unwrap_or_default()),
                confirmed: carried
                    .get(&r.id)
                    .map(|m| {
                        m.values()
                            .filter(|c| c.confirmed_at.is_some())
                            .map(|c| c.question_id.clone())
                            .collect()
                    })
                    .unwrap_or_default(),
                iso3: r.country_iso3,
            }
        })
        .collect())
}

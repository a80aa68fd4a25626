//! Pre-filling a new round: a country's response to a survey that follows another round starts
//! from the country's last accepted (else last submitted) response to that round, each answer
//! carried through the survey's carry plan (renamed questions and options, see
//! [`crate::survey::rounds`]).

use diesel::QueryResult;

use crate::db::carried::{self, Start, StartAnswer};
use crate::db::versions;
use crate::db::DbConn;
use crate::survey::answer::CountryCodes;
use crate::survey::rounds::carry_answer;
use crate::survey::Survey;

/// Country codes as already checked: a carried answer was valid when it was submitted, and
/// the reference list only grows.
struct AlreadyChecked;

impl CountryCodes for AlreadyChecked {
    fn is_country(&self, _: &str) -> bool {
        true
    }
}

/// What a new response of `survey` for this country (or organisation) starts with; None for a
/// first round, or when the country never submitted the previous one.
pub fn starting_answers(
    conn: &mut DbConn,
    survey: &Survey,
    iso3: &str,
    unit: &str,
) -> QueryResult<Option<Start>> {
    let Some(round) = &survey.previous else {
        return Ok(None);
    };
    let Some(previous) = &round.definition else {
        return Ok(None);
    };
    let Some((from_response_id, from_version)) =
        carried::source_version(conn, &previous.id, iso3, unit)?
    else {
        return Ok(None);
    };
    let before = versions::version_answers(conn, &from_response_id, from_version)?.answers;
    let mut answers = Vec::new();
    for section in &survey.sections {
        for q in &section.questions {
            let Some(carried) = round.plan.get(&q.id) else {
                continue;
            };
            let (Some(from), Some(items)) =
                (previous.question(&carried.from), before.get(&carried.from))
            else {
                continue;
            };
            if let Some(items) = carry_answer(carried, from, q, items, &AlreadyChecked) {
                answers.push(StartAnswer {
                    question_id: q.id.clone(),
                    from_question_id: carried.from.clone(),
                    section_id: section.id.clone(),
                    items,
                });
            }
        }
    }
    Ok(Some(Start {
        from_response_id,
        from_version,
        answers,
    }))
}

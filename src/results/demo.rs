//! Plausible, reproducible responses for a survey, so a newcomer sees results pages at once
//! and benchmarks have data. Answers go through the same validation and save path as a
//! browser's, so conditions, hidden questions and good-practice markers behave as for real.

use std::collections::HashMap;

use chrono::{NaiveDate, Utc};
use diesel::Connection;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};

use crate::access::{hash_token, new_token};
use crate::db::{queries, DbConn};
use crate::reference::Countries;
use crate::respond::{self, Respondent, SaveOutcome, SaveRequest, SubmitOutcome};
use crate::survey::answer::RawAnswer;
use crate::survey::{QuestionKind, Survey, OTHER_CODE};

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0}")]
    Respond(#[from] respond::RespondError),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    #[error("the survey is closed or not open: demo responses cannot be saved")]
    NotWritable,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DemoSummary {
    pub submitted: usize,
    pub drafts: usize,
}

const PHRASES: &[&str] = &[
    "An inter-ministerial committee chaired by the Ministry of Foreign Affairs meets every quarter",
    "The national development plan includes a chapter on labour migration with targets and indicators",
    "A diaspora bond and a matching-grant scheme channel remittances into local infrastructure",
    "Pre-departure orientation seminars inform workers of their rights in countries of destination",
    "The statistics office added a migration module to the labour-force survey",
    "A bilateral agreement regulates seasonal agricultural work and return",
    "Migrant resource centres offer advice on recruitment fees and contracts",
    "Focal points in line ministries share information before every international meeting",
];

fn text(rng: &mut StdRng, min: usize, max: usize) -> String {
    let mut s = String::new();
    while s.chars().count() < min.max(40) {
        if !s.is_empty() {
            s.push_str(". ");
        }
        s.push_str(PHRASES.choose(rng).copied().unwrap_or("A practice"));
    }
    s.push('.');
    s.chars().take(max).collect()
}

/// A valid raw answer for a question, or None to leave it blank.
fn raw_answer(
    rng: &mut StdRng,
    survey: &Survey,
    q: &crate::survey::Question,
    iso3: &str,
    countries: &[&str],
) -> Option<RawAnswer> {
    if !q.required && rng.random_bool(0.25) {
        return None;
    }
    let mut raw = RawAnswer::default();
    match &q.kind {
        QuestionKind::ShortText { max_length, .. } => {
            raw.values.push(text(rng, 10, (*max_length).min(80)));
        }
        QuestionKind::LongText {
            min_length,
            max_length,
        } => {
            raw.values
                .push(text(rng, min_length.unwrap_or(0) + 10, *max_length));
        }
        QuestionKind::SingleChoice { options, other } => {
            if *other && rng.random_bool(0.1) {
                raw.values.push(OTHER_CODE.into());
                raw.other = Some("Office of the Prime Minister".into());
            } else {
                raw.values.push(options.choose(rng)?.code.clone());
            }
        }
        QuestionKind::MultipleChoice {
            options,
            min_selections,
            max_selections,
            ..
        } => {
            let lo = min_selections.unwrap_or(1).max(1);
            let hi = max_selections
                .unwrap_or(options.len())
                .min(options.len())
                .max(lo);
            let n = rng.random_range(lo..=hi.min(lo + 3));
            let mut picked: Vec<&crate::survey::Choice> = options.iter().collect();
            picked.shuffle(rng);
            raw.values = picked.into_iter().take(n).map(|o| o.code.clone()).collect();
            // "None" options exclude the others.
            if let Some(none) = raw.values.iter().position(|v| v == "none") {
                raw.values = vec![raw.values.remove(none)];
            }
        }
        QuestionKind::YesNo => raw
            .values
            .push(if rng.random_bool(0.6) { "yes" } else { "no" }.into()),
        QuestionKind::Integer { min, max } => {
            let lo = min.unwrap_or(0);
            let hi = max.unwrap_or(lo + 100).max(lo);
            raw.values
                .push(rng.random_range(lo..=hi.min(lo + 60)).to_string());
        }
        QuestionKind::Decimal { min, max } => {
            let lo = min.unwrap_or(0.0);
            let hi = max.unwrap_or(lo + 100.0).max(lo);
            raw.values.push(format!("{:.1}", rng.random_range(lo..=hi)));
        }
        // Demo responses attach no documents.
        QuestionKind::File { .. } => return None,
        QuestionKind::Percentage => raw
            .values
            .push(format!("{:.1}", rng.random_range(0.0..=100.0))),
        QuestionKind::Date { min, max } => {
            let lo = min.unwrap_or(NaiveDate::from_ymd_opt(2000, 1, 1)?);
            // Dates of events that happened: not after today.
            let hi = max
                .unwrap_or(Utc::now().date_naive())
                .min(Utc::now().date_naive())
                .max(lo);
            let days = (hi - lo).num_days().max(0);
            let d = lo + chrono::Duration::days(rng.random_range(0..=days));
            raw.values.push(d.format("%Y-%m-%d").to_string());
        }
        QuestionKind::Matrix { rows, scale } => {
            for r in rows {
                raw.rows
                    .insert(r.code.clone(), scale.choose(rng)?.code.clone());
            }
        }
        QuestionKind::Country => raw
            .values
            .push(countries.iter().find(|c| **c != iso3).copied()?.to_string()),
        QuestionKind::Email => raw
            .values
            .push(format!("focal.point@{}.gov.example", iso3.to_lowercase())),
        QuestionKind::Url => raw.values.push(format!(
            "https://www.{}.gov.example/{}",
            iso3.to_lowercase(),
            survey.id
        )),
    }
    Some(raw)
}

/// Kinds of organisation named in a survey of organisations.
const ORGANISATIONS: &[&str] = &[
    "Ministry of Labour",
    "Ministry of Foreign Affairs",
    "National Statistics Office",
    "Central Bank",
    "Ministry of Planning",
    "Municipality",
    "Diaspora Affairs Agency",
    "Overseas Employment Administration",
];

/// Responses committed together: one transaction per batch keeps a large set from paying a
/// commit per statement.
const BATCH: usize = 50;

/// Fill `n` responses (80% submitted), reproducibly for a given seed. In a survey answered
/// per country, `n` countries answer; in a survey of organisations, `n` organisations spread
/// over every country answer.
pub fn generate(
    conn: &mut DbConn,
    survey: &Survey,
    countries: &Countries,
    n: usize,
    seed: u64,
) -> Result<DemoSummary, DemoError> {
    let now = Utc::now();
    if survey.is_closed(now) || !survey.is_open_yet(now) {
        return Err(DemoError::NotWritable);
    }
    let mut rng = StdRng::seed_from_u64(seed);
    // Only countries of the survey's population answer (every country in a survey of
    // organisations, unless its file says otherwise).
    let mut all: Vec<&str> = countries
        .iter()
        .map(|c| c.iso3.as_str())
        .filter(|iso3| survey.population.contains(iso3))
        .collect();
    all.shuffle(&mut rng);
    if all.is_empty() {
        return Ok(DemoSummary::default());
    }
    let respondents: Vec<(&str, String)> = if survey.unit.is_country() {
        all.iter().take(n).map(|c| (*c, String::new())).collect()
    } else {
        (0..n)
            .map(|i| {
                let kind = ORGANISATIONS[i % ORGANISATIONS.len()];
                (all[i % all.len()], format!("{kind} {}", i / all.len() + 1))
            })
            .collect()
    };
    let chosen: Vec<&str> = all.iter().take(n).copied().collect();
    let mut summary = DemoSummary::default();
    for batch in respondents.chunks(BATCH) {
        conn.transaction(|conn| {
            for (iso3, unit) in batch {
                respond_as(
                    conn,
                    survey,
                    countries,
                    (iso3, unit),
                    &chosen,
                    &mut rng,
                    &mut summary,
                )?;
            }
            Ok::<_, DemoError>(())
        })?;
    }
    Ok(summary)
}

/// One respondent's answers, saved section by section and submitted (or left a draft).
fn respond_as(
    conn: &mut DbConn,
    survey: &Survey,
    countries: &Countries,
    (iso3, unit): (&str, &str),
    chosen: &[&str],
    rng: &mut StdRng,
    summary: &mut DemoSummary,
) -> Result<(), DemoError> {
    let now = Utc::now();
    let token_id = queries::insert_token(
        conn,
        &queries::NewToken {
            survey_id: &survey.id,
            country_iso3: iso3,
            unit,
            token_hash: &hash_token(&new_token()),
            holder_name: Some("Demo data"),
            holder_email: None,
            now: now.naive_utc(),
            expires_at: None,
            role: crate::db::tokens::LinkRole::Coordinator,
            sections: &[],
        },
    )?;
    let token =
        queries::find_token_by_id(conn, &token_id)?.ok_or(diesel::result::Error::NotFound)?;
    let who = Respondent { token };
    let submit = rng.random_bool(0.8);
    for section in &survey.sections {
        // Answer what is visible; answers that reveal more questions get a second pass.
        for _pass in 0..3 {
            let state = respond::load(conn, survey, &who, now.naive_utc())?;
            if !state.visibility.section(&section.id) {
                break;
            }
            let mut raw: HashMap<String, RawAnswer> = HashMap::new();
            for q in section
                .questions
                .iter()
                .filter(|q| state.visibility.question(&q.id))
            {
                let existing = state.answers.get(&q.id);
                let value = match existing {
                    Some(items) => Some(RawAnswer::from_items(&q.kind, items)),
                    None => raw_answer(rng, survey, q, iso3, chosen),
                };
                if let Some(v) = value {
                    raw.insert(q.id.clone(), v);
                }
            }
            let no_files = std::collections::HashMap::new();
            let req = SaveRequest {
                files: &no_files,
                section_id: &section.id,
                base_version: state.section_version(&section.id),
                raw: &raw,
                confirmed: None,
                confirm_all: false,
            };
            match respond::save_section(conn, survey, countries, &who, &req, now)? {
                SaveOutcome::Saved { revealed, .. } if revealed.is_empty() => break,
                SaveOutcome::Saved { .. } => continue,
                SaveOutcome::Conflict { .. } => break,
            }
        }
    }
    if submit {
        match respond::submit(conn, survey, &who, &|_, _, _| Ok(()), now)? {
            SubmitOutcome::Submitted(_) => summary.submitted += 1,
            SubmitOutcome::Incomplete(_) => summary.drafts += 1,
        }
    } else {
        summary.drafts += 1;
    }
    Ok(())
}

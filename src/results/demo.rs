//! Plausible, reproducible responses for a survey, so a newcomer sees results pages at once
//! and benchmarks have data. Answers go through the same validation and save path as a
//! browser's, so conditions, hidden questions and good-practice markers behave as for real.

use std::collections::{HashMap, HashSet};

use chrono::{NaiveDate, Utc};
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};

use crate::access::{hash_token, new_token};
use crate::db::responses::{self, ResponseStatus};
use crate::db::versions::{self, Mark};
use crate::db::{queries, DbConn};
use crate::reference::Countries;
use crate::respond::{self, Respondent, SaveOutcome, SaveRequest, SubmitOutcome};
use crate::survey::answer::{validate, RawAnswer};
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
    /// Submitted responses the secretariat accepted (in a round another one follows).
    pub accepted: usize,
    /// Of those, submitted again with a change after being reopened: the next round starts
    /// from the accepted version, not this later one.
    pub resubmitted: usize,
    /// In a round that follows another: responses that started from the previous round, and
    /// their carried answers confirmed "still accurate" or changed.
    pub prefilled: usize,
    pub confirmed: usize,
    pub changed: usize,
}

/// What `demo-data` filled for a round that follows another: the previous round first when it
/// had no submitted response yet.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RoundsSummary {
    /// The previous round's id, and what was filled in it (None: it had submissions already).
    pub previous: Option<(String, DemoSummary)>,
    pub current: DemoSummary,
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
    let mut rng = StdRng::seed_from_u64(seed);
    let (respondents, chosen) = pick(survey, countries, n, &[], &mut rng);
    fill(
        conn,
        survey,
        countries,
        &respondents,
        &chosen,
        false,
        &mut rng,
    )
}

/// Fill a round that follows another (`previous`), and the previous one first (the same
/// countries) when it has no submitted response yet: some of its responses accepted, and some
/// of those reopened and submitted again with a change, so that the new round starts from the
/// last accepted version. Each new response starts from the previous round's answers; about
/// 70% of the carried answers are confirmed "still accurate" and 30% changed.
pub fn generate_rounds(
    conn: &mut DbConn,
    survey: &Survey,
    previous: &Survey,
    countries: &Countries,
    n: usize,
    seed: u64,
) -> Result<RoundsSummary, DemoError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let answered: Vec<(String, String)> = responses::survey_responses(conn, &previous.id)?
        .into_iter()
        .filter(|r| r.status.is_submitted())
        .map(|r| (r.country_iso3, r.unit))
        .collect();
    let mut summary = RoundsSummary::default();
    let respondents = if answered.is_empty() {
        let (respondents, chosen) = pick(previous, countries, n, &[], &mut rng);
        let filled = fill(
            conn,
            previous,
            countries,
            &respondents,
            &chosen,
            true,
            &mut rng,
        )?;
        summary.previous = Some((previous.id.clone(), filled));
        respondents
    } else {
        // Those who answered the previous round first, then others.
        let (respondents, _) = pick(survey, countries, n, &answered, &mut rng);
        respondents
    };
    let respondents: Vec<(String, String)> = respondents
        .into_iter()
        .filter(|(iso3, _)| survey.population.contains(iso3))
        .collect();
    let chosen: Vec<String> = respondents.iter().map(|(c, _)| c.clone()).collect();
    summary.current = fill(
        conn,
        survey,
        countries,
        &respondents,
        &chosen,
        false,
        &mut rng,
    )?;
    Ok(summary)
}

/// Who answers: `first` (in a random order), then others of the survey's population, `n` in
/// all; and the countries chosen (for answers naming a country).
fn pick(
    survey: &Survey,
    countries: &Countries,
    n: usize,
    first: &[(String, String)],
    rng: &mut StdRng,
) -> (Vec<(String, String)>, Vec<String>) {
    // Only countries of the survey's population answer (every country in a survey of
    // organisations, unless its file says otherwise).
    let mut all: Vec<&str> = countries
        .iter()
        .map(|c| c.iso3.as_str())
        .filter(|iso3| survey.population.contains(iso3))
        .collect();
    all.shuffle(rng);
    if all.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let mut respondents: Vec<(String, String)> = first.to_vec();
    respondents.shuffle(rng);
    respondents.truncate(n);
    let more = n - respondents.len();
    if survey.unit.is_country() {
        let others = all
            .iter()
            .filter(|c| !respondents.iter().any(|(r, _)| r == *c))
            .take(more)
            .map(|c| (c.to_string(), String::new()))
            .collect::<Vec<_>>();
        respondents.extend(others);
    } else {
        respondents.extend((0..more).map(|i| {
            let kind = ORGANISATIONS[i % ORGANISATIONS.len()];
            let unit = format!("{kind} {}", i / all.len() + 1);
            (all[i % all.len()].to_string(), unit)
        }));
    }
    let chosen = all.iter().take(n).map(|c| c.to_string()).collect();
    (respondents, chosen)
}

/// Fill the responses of `respondents` in batches; `accept`: accept some of the submitted
/// ones, and submit some of those again with a change.
fn fill(
    conn: &mut DbConn,
    survey: &Survey,
    countries: &Countries,
    respondents: &[(String, String)],
    chosen: &[String],
    accept: bool,
    rng: &mut StdRng,
) -> Result<DemoSummary, DemoError> {
    let now = Utc::now();
    if survey.is_closed(now) || !survey.is_open_yet(now) {
        return Err(DemoError::NotWritable);
    }
    let chosen: Vec<&str> = chosen.iter().map(String::as_str).collect();
    let mut summary = DemoSummary::default();
    for batch in respondents.chunks(BATCH) {
        // `db::transaction`: on SQLite it takes the process's writer turn first, which the
        // saves and submissions inside then hold already. With a bare transaction they waited
        // for that turn while holding the database's write lock, and a server's audit sealer
        // in the same process, holding the turn, waited for the lock until its busy timeout:
        // minutes of stalls for the tests that fill demo data beside a running server.
        crate::db::transaction(conn, |conn| {
            for (iso3, unit) in batch {
                respond_as(
                    conn,
                    survey,
                    countries,
                    (iso3, unit),
                    &chosen,
                    accept,
                    rng,
                    &mut summary,
                )?;
            }
            Ok::<_, DemoError>(())
        })?;
    }
    Ok(summary)
}

/// One respondent's answers, saved section by section and submitted (or left a draft). In a
/// round that follows another, each carried answer is confirmed or changed.
#[allow(clippy::too_many_arguments)]
fn respond_as(
    conn: &mut DbConn,
    survey: &Survey,
    countries: &Countries,
    (iso3, unit): (&str, &str),
    chosen: &[&str],
    accept: bool,
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
    // Carried answers: true to confirm, false to change (decided once, kept over passes).
    let mut keep: HashMap<String, bool> = HashMap::new();
    for section in &survey.sections {
        // Answer what is visible; answers that reveal more questions get a second pass.
        for _pass in 0..3 {
            let state = respond::load(conn, survey, &who, now.naive_utc())?;
            if !state.visibility.section(&section.id) {
                break;
            }
            let mut raw: HashMap<String, RawAnswer> = HashMap::new();
            let mut ticked: HashSet<String> = HashSet::new();
            for q in section
                .questions
                .iter()
                .filter(|q| state.visibility.question(&q.id))
            {
                let existing = state.answers.get(&q.id);
                let value = match (state.carried_shown(&q.id), existing) {
                    // A carried answer not decided yet: confirmed, or changed to another valid
                    // value (confirmed when none is found).
                    (Some(c), _) if !keep.contains_key(&q.id) => {
                        let changed = rng
                            .random_bool(0.3)
                            .then(|| changed_answer(rng, survey, q, iso3, chosen, countries, c))
                            .flatten();
                        keep.insert(q.id.clone(), changed.is_none());
                        changed.or_else(|| existing.map(|i| RawAnswer::from_items(&q.kind, i)))
                    }
                    (_, Some(items)) => Some(RawAnswer::from_items(&q.kind, items)),
                    (_, None) => raw_answer(rng, survey, q, iso3, chosen),
                };
                if keep.get(&q.id) == Some(&true) {
                    ticked.insert(q.id.clone());
                }
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
                confirmed: (!state.carried.is_empty()).then_some(&ticked),
                confirm_all: false,
            };
            match respond::save_section(conn, survey, countries, &who, &req, None, now)? {
                SaveOutcome::Saved { revealed, .. } if revealed.is_empty() => break,
                SaveOutcome::Saved { .. } => continue,
                SaveOutcome::Conflict { .. } => break,
            }
        }
    }
    let state = respond::load(conn, survey, &who, now.naive_utc())?;
    if !state.carried.is_empty() {
        summary.prefilled += 1;
        for q in state.carried.keys() {
            if state.carried_changed(q) {
                summary.changed += 1;
            } else if state
                .carried
                .get(q)
                .is_some_and(|c| c.confirmed_at.is_some())
            {
                summary.confirmed += 1;
            }
        }
    }
    if !submit {
        summary.drafts += 1;
        return Ok(());
    }
    match respond::submit(conn, survey, &who, None, &|_, _, _| Ok(()), now)? {
        SubmitOutcome::Submitted(version) => {
            summary.submitted += 1;
            if accept && rng.random_bool(0.4) {
                accept_and_revise(conn, survey, countries, &who, version.number, rng, summary)?;
            }
        }
        SubmitOutcome::Incomplete(_) => summary.drafts += 1,
    }
    Ok(())
}

/// Another valid answer than the carried one, for a carried question; None when none is found.
fn changed_answer(
    rng: &mut StdRng,
    survey: &Survey,
    q: &crate::survey::Question,
    iso3: &str,
    chosen: &[&str],
    countries: &Countries,
    carried: &crate::db::carried::CarriedAnswer,
) -> Option<RawAnswer> {
    for _ in 0..6 {
        let Some(raw) = raw_answer(rng, survey, q, iso3, chosen) else {
            continue;
        };
        match validate(q, &raw, countries) {
            Ok(items) if !carried.is_unchanged(Some(&items)) => return Some(raw),
            _ => continue,
        }
    }
    None
}

/// The secretariat accepts the version just submitted; half the time the response is then
/// reopened and submitted again with one answer changed, a later version that is not accepted.
fn accept_and_revise(
    conn: &mut DbConn,
    survey: &Survey,
    countries: &Countries,
    who: &Respondent,
    number: i32,
    rng: &mut StdRng,
    summary: &mut DemoSummary,
) -> Result<(), DemoError> {
    let now = Utc::now();
    let naive = now.naive_utc();
    let state = respond::load(conn, survey, who, naive)?;
    let id = &state.response.id;
    let from = [ResponseStatus::Submitted];
    if !responses::change_status(conn, id, &from, ResponseStatus::Accepted, naive)? {
        return Ok(());
    }
    versions::mark(conn, id, number, Mark::Accepted, naive)?;
    summary.accepted += 1;
    if !rng.random_bool(0.5) {
        return Ok(());
    }
    let from = [ResponseStatus::Accepted];
    if !responses::change_status(conn, id, &from, ResponseStatus::Draft, naive)? {
        return Ok(());
    }
    // One visible answer of the first section that has one changes.
    for section in survey.sections.iter() {
        let visible = |q: &&crate::survey::Question| {
            state.visibility.question(&q.id) && !q.kind.is_file() && q.show_if.is_none()
        };
        let Some(q) = section.questions.iter().find(visible) else {
            continue;
        };
        let Some(raw) = raw_answer(rng, survey, q, &who.token.country_iso3, &[]) else {
            continue;
        };
        let answers = HashMap::from([(q.id.clone(), raw)]);
        // The other questions of the section keep their answers.
        let mut all: HashMap<String, RawAnswer> = section
            .questions
            .iter()
            .filter_map(|q| {
                let items = state.answers.get(&q.id)?;
                Some((q.id.clone(), RawAnswer::from_items(&q.kind, items)))
            })
            .collect();
        all.extend(answers);
        let no_files = HashMap::new();
        let req = SaveRequest {
            files: &no_files,
            section_id: &section.id,
            base_version: state.section_version(&section.id),
            raw: &all,
            confirmed: None,
            confirm_all: false,
        };
        respond::save_section(conn, survey, countries, who, &req, None, now)?;
        break;
    }
    if let SubmitOutcome::Submitted(_) =
        respond::submit(conn, survey, who, None, &|_, _, _| Ok(()), now)?
    {
        summary.resubmitted += 1;
    }
    Ok(())
}

/// The fields a focal point's browser posts for one section, answered as the demo answers
/// (optional questions sometimes left blank, no documents attached), named as the section form
/// names them: `<id>` (repeated for several choices), `<id>.other`, `<id>.<row>`. The load
/// benchmark's whole responses post these.
pub fn section_fields(
    survey: &Survey,
    section: &crate::survey::Section,
    iso3: &str,
    seed: u64,
) -> Vec<(String, String)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let countries: Vec<String> = crate::reference::un_member_states().collect();
    let countries: Vec<&str> = countries.iter().map(String::as_str).collect();
    let mut fields = Vec::new();
    for q in &section.questions {
        let Some(raw) = raw_answer(&mut rng, survey, q, iso3, &countries) else {
            continue;
        };
        for v in raw.values {
            fields.push((q.id.clone(), v));
        }
        if let Some(other) = raw.other {
            fields.push((format!("{}.other", q.id), other));
        }
        for (row, v) in raw.rows {
            fields.push((format!("{}.{row}", q.id), v));
        }
    }
    fields
}

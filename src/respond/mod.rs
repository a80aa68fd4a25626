//! A country's response: drafting section by section, conflicts between officials, submission.
//! Knows nothing of HTTP: handlers call these functions inside a blocking task.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::db::responses::{self, ResponseRow};
use crate::db::sections::{self, SectionStateRow, SectionWrite, WriteOutcome};
use crate::db::tokens::{self, TokenRow};
use crate::db::{answers, deadlines, DbConn, DbError, QueryError};
use crate::survey::answer::{
    missing_answers, validate, Answers, CountryCodes, FieldError, Item, Missing, RawAnswer,
    Visibility,
};
use crate::survey::Survey;

#[derive(Debug, thiserror::Error)]
pub enum RespondError {
    #[error("the survey closed on {0}")]
    Closed(DateTime<Utc>),
    #[error("the survey is not open yet")]
    NotOpenYet,
    #[error("the response was already submitted")]
    AlreadySubmitted,
    #[error("no such section")]
    NoSuchSection,
    /// The link may not submit (a contributor's): answered as an unknown page.
    #[error("this link does not submit the response")]
    NotSubmitter,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<QueryError> for RespondError {
    fn from(e: QueryError) -> Self {
        RespondError::Db(DbError::Query(e))
    }
}

/// Who is answering: the personal link that was used, and the survey it belongs to.
#[derive(Debug, Clone)]
pub struct Respondent {
    pub token: TokenRow,
}

impl Respondent {
    /// Whether the link opens and saves this section (a contributor only its own).
    pub fn may_answer(&self, section_id: &str) -> bool {
        self.token.may_answer(section_id)
    }

    /// Whether the link reviews and submits the whole response (not a contributor).
    pub fn may_submit(&self) -> bool {
        self.token.may_submit()
    }
}

/// Everything stored about a country's response.
#[derive(Debug, Clone)]
pub struct ResponseState {
    pub response: ResponseRow,
    pub answers: Answers,
    pub sections: HashMap<String, SectionStateRow>,
    pub visibility: Visibility,
    /// This country's deadline: the survey's, or the one an owner extended it to.
    pub closes: Option<DateTime<Utc>>,
}

impl ResponseState {
    pub fn is_draft(&self) -> bool {
        self.response.is_draft()
    }

    pub fn is_closed(&self, now: DateTime<Utc>) -> bool {
        self.closes.is_some_and(|c| now > c)
    }

    pub fn section_version(&self, section: &str) -> i32 {
        self.sections.get(section).map(|s| s.version).unwrap_or(0)
    }
}

pub fn load(
    conn: &mut DbConn,
    survey: &Survey,
    who: &Respondent,
    now: NaiveDateTime,
) -> Result<ResponseState, RespondError> {
    let response = responses::get_or_create_response(
        conn,
        survey,
        &who.token.country_iso3,
        &who.token.unit,
        now,
    )?;
    let answers = answers::load_answers(conn, &response.id)?;
    let sections = sections::section_states(conn, &response.id)?
        .into_iter()
        .map(|s| (s.section_id.clone(), s))
        .collect();
    let visibility = Visibility::evaluate(survey, &answers);
    let closes = deadlines::deadline_extension(conn, &survey.id, &who.token.country_iso3)?
        .map(|t| t.and_utc())
        .or(survey.closes);
    Ok(ResponseState {
        response,
        answers,
        sections,
        visibility,
        closes,
    })
}

/// Whether the response may still change.
fn check_writable(
    survey: &Survey,
    state: &ResponseState,
    now: DateTime<Utc>,
) -> Result<(), RespondError> {
    if let Some(closes) = state.closes {
        if now > closes {
            return Err(RespondError::Closed(closes));
        }
    }
    if !survey.is_open_yet(now) {
        return Err(RespondError::NotOpenYet);
    }
    if !state.is_draft() {
        return Err(RespondError::AlreadySubmitted);
    }
    Ok(())
}

/// One question where the saver's value and the newer saved value differ.
#[derive(Debug, Clone)]
pub struct Conflict {
    pub question: String,
    pub yours: Vec<Item>,
    pub theirs: Vec<Item>,
}

#[derive(Debug, Clone)]
pub enum SaveOutcome {
    Saved {
        /// Values that did not validate: not stored; everything else was.
        errors: BTreeMap<String, FieldError>,
        /// Questions of this section that the new answers made appear.
        revealed: Vec<String>,
    },
    /// Another official saved this section since the form was opened: nothing was stored.
    Conflict {
        conflicts: Vec<Conflict>,
        current_version: i32,
        saved_by: Option<String>,
        saved_at: Option<NaiveDateTime>,
        errors: BTreeMap<String, FieldError>,
    },
}

pub struct SaveRequest<'a> {
    pub section_id: &'a str,
    pub base_version: i32,
    pub raw: &'a HashMap<String, RawAnswer>,
}

pub fn save_section(
    conn: &mut DbConn,
    survey: &Survey,
    countries: &dyn CountryCodes,
    who: &Respondent,
    req: &SaveRequest,
    now: DateTime<Utc>,
) -> Result<SaveOutcome, RespondError> {
    let naive_now = now.naive_utc();
    let section = survey
        .section(req.section_id)
        .filter(|s| who.may_answer(&s.id))
        .ok_or(RespondError::NoSuchSection)?;
    // A stale write is retried once against fresh state, then reported as a conflict.
    for _attempt in 0..2 {
        let state = load(conn, survey, who, naive_now)?;
        check_writable(survey, &state, now)?;
        if !state.visibility.section(&section.id) {
            return Err(RespondError::NoSuchSection);
        }
        let mut errors = BTreeMap::new();
        let mut changes: Vec<(String, Vec<Item>)> = Vec::new();
        let empty = RawAnswer::default();
        // Only the questions the form showed (visible under the stored answers) are read.
        for q in section
            .questions
            .iter()
            .filter(|q| state.visibility.question(&q.id))
        {
            let raw = req.raw.get(&q.id).unwrap_or(&empty);
            match validate(q, raw, countries) {
                Ok(items) => {
                    let stored = state.answers.get(&q.id).cloned().unwrap_or_default();
                    if items != stored {
                        changes.push((q.id.clone(), items));
                    }
                }
                Err(e) => {
                    errors.insert(q.id.clone(), e);
                }
            }
        }
        let current = state.section_version(&section.id);
        if current != req.base_version && !changes.is_empty() {
            let latest = state.sections.get(&section.id);
            let saved_by = match latest {
                Some(s) => tokens::token_names(conn, std::slice::from_ref(&s.updated_by))?
                    .remove(&s.updated_by)
                    .flatten(),
                None => None,
            };
            return Ok(SaveOutcome::Conflict {
                conflicts: changes
                    .into_iter()
                    .map(|(question, yours)| Conflict {
                        theirs: state.answers.get(&question).cloned().unwrap_or_default(),
                        question,
                        yours,
                    })
                    .collect(),
                current_version: current,
                saved_by,
                saved_at: latest.map(|s| s.updated_at),
                errors,
            });
        }
        if changes.is_empty() {
            return Ok(SaveOutcome::Saved {
                errors,
                revealed: Vec::new(),
            });
        }
        let mut answers = state.answers.clone();
        for (q, items) in &changes {
            if items.is_empty() {
                answers.remove(q);
            } else {
                answers.insert(q.clone(), items.clone());
            }
        }
        let after = Visibility::evaluate(survey, &answers);
        let hidden_after: std::collections::HashSet<String> = survey
            .questions()
            .filter(|q| !after.question(&q.id))
            .map(|q| q.id.clone())
            .collect();
        let write = SectionWrite {
            response_id: &state.response.id,
            section_id: &section.id,
            base_version: current,
            token_id: &who.token.id,
            survey_version: &survey.version,
            changes: &changes,
            hidden_after: &hidden_after,
            now: naive_now,
        };
        match sections::write_section(conn, &write)? {
            WriteOutcome::Saved { .. } => {
                let revealed = section
                    .questions
                    .iter()
                    .filter(|q| after.question(&q.id) && !state.visibility.question(&q.id))
                    .map(|q| q.id.clone())
                    .collect();
                return Ok(SaveOutcome::Saved { errors, revealed });
            }
            // Someone saved between our read and our write: look again.
            WriteOutcome::Stale => continue,
        }
    }
    // Two stale writes in a row: report whatever is now stored as the conflict.
    let state = load(conn, survey, who, naive_now)?;
    Ok(SaveOutcome::Conflict {
        conflicts: Vec::new(),
        current_version: state.section_version(&section.id),
        saved_by: None,
        saved_at: None,
        errors: BTreeMap::new(),
    })
}

#[derive(Debug, Clone)]
pub enum SubmitOutcome {
    Submitted,
    Incomplete(Vec<Missing>),
}

pub fn submit(
    conn: &mut DbConn,
    survey: &Survey,
    who: &Respondent,
    now: DateTime<Utc>,
) -> Result<SubmitOutcome, RespondError> {
    if !who.may_submit() {
        return Err(RespondError::NotSubmitter);
    }
    let state = load(conn, survey, who, now.naive_utc())?;
    check_writable(survey, &state, now)?;
    let missing = missing_answers(survey, &state.answers, &state.visibility);
    if !missing.is_empty() {
        return Ok(SubmitOutcome::Incomplete(missing));
    }
    if responses::submit_response(conn, &state.response.id, &who.token.id, now.naive_utc())? {
        Ok(SubmitOutcome::Submitted)
    } else {
        Err(RespondError::AlreadySubmitted)
    }
}

/// Group a form's (name, value) pairs by question: `q`, `q.other`, `q.<row>`.
pub fn group_form(pairs: &[(String, String)]) -> HashMap<String, RawAnswer> {
    let mut out: HashMap<String, RawAnswer> = HashMap::new();
    for (name, value) in pairs {
        if name.starts_with('_') {
            continue;
        }
        match name.split_once('.') {
            Some((q, "other")) => out.entry(q.to_string()).or_default().other = Some(value.clone()),
            Some((q, row)) => {
                out.entry(q.to_string())
                    .or_default()
                    .rows
                    .insert(row.to_string(), value.clone());
            }
            None => out
                .entry(name.clone())
                .or_default()
                .values
                .push(value.clone()),
        }
    }
    out
}

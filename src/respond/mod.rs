//! A country's response: drafting section by section, conflicts between officials, submission.
//! Knows nothing of HTTP: handlers call these functions inside a blocking task.

pub mod carry;

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::audit::{self, Actor, AuditKind, Event};
use crate::db::carried::{self, CarriedAnswer};
use crate::db::responses::{self, ResponseRow, ResponseStatus};
use crate::db::sections::{self, SectionStateRow, SectionWrite, WriteOutcome};
use crate::db::tokens::{self, StoredResponse, TokenRow};
use crate::db::versions::{self, Mark, VersionRow};
use crate::db::{answers, deadlines, files, DbConn, DbError, QueryError};
use crate::files::{CheckedPost, FilePost};
use crate::report::{self, Channel, SignOff, Submission};
use crate::survey::answer::{
    missing_answers, validate, Answers, CountryCodes, FieldError, Item, Missing, RawAnswer,
    Visibility,
};
use crate::survey::{QuestionKind, Section, Survey};

#[derive(Debug, thiserror::Error)]
pub enum RespondError {
    #[error("the survey closed on {0}")]
    Closed(DateTime<Utc>),
    #[error("the survey is not open yet")]
    NotOpenYet,
    #[error("the response was already submitted")]
    AlreadySubmitted,
    /// The response is not in a state that allows this (sent for sign-off, under review...).
    #[error("the response is {0}")]
    State(ResponseStatus),
    /// The survey asks for national sign-off: a coordinator sends the response to its approver.
    #[error("this survey is submitted through its national sign-off")]
    SignOffRequired,
    /// The link is not the country's approver (or the survey has no sign-off): answered as an
    /// unknown page.
    #[error("this link does not sign off")]
    NotApprover,
    /// A typed value refused (sign-off name or title, a message), keyed by its field.
    #[error("{field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: &'static str,
    },
    #[error("no such section")]
    NoSuchSection,
    /// The link may not submit (a contributor's): answered as an unknown page.
    #[error("this link does not submit the response")]
    NotSubmitter,
    /// An email could not be written (a template error).
    #[error("email: {0}")]
    Email(String),
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

    /// Whether the link is the country's approver.
    pub fn is_approver(&self) -> bool {
        self.token.role == tokens::LinkRole::Approver
    }

    /// For a link an owner opened to enter a report received outside Coherence: the owner and
    /// how the report came. None for the country's own links.
    pub fn entry(&self, conn: &mut DbConn) -> Result<Option<(String, Channel)>, QueryError> {
        Ok(tokens::entry_of(conn, &self.token.id)?
            .map(|(by, channel)| (by, Channel::parse(&channel).unwrap_or(Channel::Other))))
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
    /// The answers carried from the previous round, by question (none outside a round that
    /// follows another).
    pub carried: HashMap<String, CarriedAnswer>,
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

    /// The carried answer of a question the respondent sees now, if one was carried.
    pub fn carried_shown(&self, question: &str) -> Option<&CarriedAnswer> {
        self.carried
            .get(question)
            .filter(|_| self.visibility.question(question))
    }

    /// Whether the question's answer differs from the one carried from the previous round.
    pub fn carried_changed(&self, question: &str) -> bool {
        self.carried
            .get(question)
            .is_some_and(|c| !c.is_unchanged(self.answers.get(question)))
    }

    /// The carried answers the respondent still has to confirm "still accurate" (or change),
    /// in the survey's order: visible, unchanged and not confirmed. Whether the survey asks for
    /// it at all is [`must_confirm`]'s question.
    pub fn left_to_confirm(&self, survey: &Survey) -> Vec<Missing> {
        if self.carried.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for s in survey
            .sections
            .iter()
            .filter(|s| self.visibility.section(&s.id))
        {
            for q in &s.questions {
                let Some(c) = self.carried_shown(&q.id) else {
                    continue;
                };
                if c.confirmed_at.is_none() && c.is_unchanged(self.answers.get(&q.id)) {
                    out.push(Missing {
                        section: s.id.clone(),
                        question: q.id.clone(),
                    });
                }
            }
        }
        out
    }

    /// What stops the response being submitted: required questions without an answer, and
    /// carried answers neither confirmed nor changed where the survey asks for that.
    pub fn blocking(&self, survey: &Survey) -> Vec<Missing> {
        let mut out = missing_answers(survey, &self.answers, &self.visibility);
        if must_confirm(survey) {
            out.extend(self.left_to_confirm(survey));
        }
        out
    }
}

/// Whether the survey follows a round whose carried answers must each be confirmed or changed
/// before submitting (`confirm_carried`, true unless the file says false).
pub fn must_confirm(survey: &Survey) -> bool {
    survey.previous.as_ref().is_some_and(|p| p.confirm_carried)
}

/// Everything stored about the link's response, created on first use.
pub fn load(
    conn: &mut DbConn,
    survey: &Survey,
    who: &Respondent,
    now: NaiveDateTime,
) -> Result<ResponseState, RespondError> {
    let response = create_response(conn, survey, who, now)?;
    let extension = deadlines::deadline_extension(conn, &survey.id, &who.token.country_iso3)?;
    read_state(conn, survey, response, extension)
}

/// As [`load`], from what the link's look-up read with it (the response with its answers and
/// section states, if it exists, and the country's deadline extension: [`tokens::open_token`]):
/// a page then reads nothing more, but the carried answers in a round that follows another.
pub fn load_opened(
    conn: &mut DbConn,
    survey: &Survey,
    who: &Respondent,
    response: Option<StoredResponse>,
    extension: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> Result<ResponseState, RespondError> {
    let Some(stored) = response else {
        let response = create_response(conn, survey, who, now)?;
        return read_state(conn, survey, response, extension);
    };
    state_of(
        conn,
        survey,
        stored.row,
        stored.answers,
        stored.sections,
        extension,
    )
}

fn create_response(
    conn: &mut DbConn,
    survey: &Survey,
    who: &Respondent,
    now: NaiveDateTime,
) -> Result<ResponseRow, RespondError> {
    let (iso3, unit) = (&who.token.country_iso3, &who.token.unit);
    Ok(responses::get_or_create_response(
        conn,
        survey,
        iso3,
        unit,
        now,
        |conn| carry::starting_answers(conn, survey, iso3, unit),
        &who.token.id,
    )?)
}

fn read_state(
    conn: &mut DbConn,
    survey: &Survey,
    response: ResponseRow,
    extension: Option<NaiveDateTime>,
) -> Result<ResponseState, RespondError> {
    let answers = answers::load_answers(conn, &response.id)?;
    let sections = sections::section_states(conn, &response.id)?;
    state_of(conn, survey, response, answers, sections, extension)
}

/// The response's state from its stored answers and section states (the carried answers read
/// here, in a round that follows another).
fn state_of(
    conn: &mut DbConn,
    survey: &Survey,
    response: ResponseRow,
    answers: Answers,
    sections: Vec<SectionStateRow>,
    extension: Option<NaiveDateTime>,
) -> Result<ResponseState, RespondError> {
    let sections = sections
        .into_iter()
        .map(|s| (s.section_id.clone(), s))
        .collect();
    let visibility = Visibility::evaluate(survey, &answers);
    let closes = extension.map(|t| t.and_utc()).or(survey.closes);
    let carried = match survey.previous {
        Some(_) => carried::carried_answers(conn, &response.id)?,
        None => HashMap::new(),
    };
    Ok(ResponseState {
        response,
        answers,
        sections,
        visibility,
        closes,
        carried,
    })
}

/// Whether the response may still change: open, before its deadline (unless returned by the
/// secretariat), and a draft or returned.
pub fn check_writable(
    survey: &Survey,
    state: &ResponseState,
    now: DateTime<Utc>,
) -> Result<(), RespondError> {
    // A response the secretariat returned may be changed and resubmitted after the deadline:
    // the return reopened the conversation.
    let returned = state.response.status == ResponseStatus::Returned;
    if let Some(closes) = state.closes.filter(|_| !returned) {
        if now > closes {
            return Err(RespondError::Closed(closes));
        }
    }
    if !survey.is_open_yet(now) {
        return Err(RespondError::NotOpenYet);
    }
    editable(state)
}

/// Whether the country may change the response now: a draft, or returned by the secretariat.
fn editable(state: &ResponseState) -> Result<(), RespondError> {
    match state.response.status {
        s if s.is_editable() => Ok(()),
        ResponseStatus::Submitted => Err(RespondError::AlreadySubmitted),
        s => Err(RespondError::State(s)),
    }
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
    /// Files attached and removed, by file question (a question absent keeps its files).
    pub files: &'a HashMap<String, FilePost>,
    /// The carried questions whose "still accurate" box was ticked (`<q>.confirm`), for a form
    /// that shows those boxes: the section's other carried questions are unconfirmed. None
    /// leaves every confirmation as it is.
    pub confirmed: Option<&'a HashSet<String>>,
    /// The section's "all unchanged answers are still accurate" box: every carried answer of the
    /// section that this save leaves as carried is confirmed too.
    pub confirm_all: bool,
}

/// Save a section. `stored` is the response as the caller just read it (with the link, see
/// [`load_opened`]), if it did: the first attempt starts from it, a retry reads again.
pub fn save_section(
    conn: &mut DbConn,
    survey: &Survey,
    countries: &dyn CountryCodes,
    who: &Respondent,
    req: &SaveRequest,
    stored: Option<ResponseState>,
    now: DateTime<Utc>,
) -> Result<SaveOutcome, RespondError> {
    let naive_now = now.naive_utc();
    let section = survey
        .section(req.section_id)
        .filter(|s| who.may_answer(&s.id))
        .ok_or(RespondError::NoSuchSection)?;
    // Uploads are checked once (their content does not depend on what is stored).
    let mut file_posts: HashMap<&str, Result<CheckedPost, FieldError>> = HashMap::new();
    for q in &section.questions {
        if let (
            QuestionKind::File {
                max_size_mb,
                accept,
                ..
            },
            Some(post),
        ) = (&q.kind, req.files.get(&q.id))
        {
            let limits = crate::files::Limits {
                max_size_mb: *max_size_mb,
                accept,
            };
            file_posts.insert(&q.id, CheckedPost::of(post, limits));
        }
    }
    // A stale write is retried once against fresh state, then reported as a conflict.
    let mut stored = stored;
    for _attempt in 0..2 {
        let mut state = match stored.take() {
            Some(state) => state,
            None => load(conn, survey, who, naive_now)?,
        };
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
            let stored = state.answers.get(&q.id).map(Vec::as_slice).unwrap_or(&[]);
            let checked = match &q.kind {
                // Files come from the uploads and removals; none posted keeps them as they are.
                QuestionKind::File { max_files, .. } => match file_posts.get(q.id.as_str()) {
                    None => Ok(stored.to_vec()),
                    Some(Err(e)) => Err(e.clone()),
                    Some(Ok(post)) => post.items(stored, *max_files),
                },
                _ => validate(q, raw, countries),
            };
            match checked {
                Ok(items) => {
                    if items.as_slice() != stored {
                        changes.push((q.id.clone(), items));
                    }
                }
                Err(e) => {
                    errors.insert(q.id.clone(), e);
                }
            }
        }
        let current = state.section_version(&section.id);
        let mut confirmations = req
            .confirmed
            .map(|ticked| Confirmations::of(section, &state, &changes, ticked, req.confirm_all))
            .unwrap_or_default();
        // A form opened before someone else's save may confirm, but not take back a
        // confirmation it may not have shown.
        if current != req.base_version {
            confirmations.only_confirm(&state);
        }
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
        // A save that only ticks or unticks boxes is still a save of the section.
        if changes.is_empty() && !confirmations.differ {
            return Ok(SaveOutcome::Saved {
                errors,
                revealed: Vec::new(),
            });
        }
        let after = with_changes(&mut state.answers, &mut changes, |answers| {
            Visibility::evaluate(survey, answers)
        });
        let hidden_after: std::collections::HashSet<String> = survey
            .questions()
            .filter(|q| !after.question(&q.id))
            .map(|q| q.id.clone())
            .collect();
        let hidden_before: std::collections::HashSet<String> = survey
            .questions()
            .filter(|q| !state.visibility.question(&q.id))
            .map(|q| q.id.clone())
            .collect();
        let write = SectionWrite {
            response_id: &state.response.id,
            section_id: &section.id,
            base_version: current,
            token_id: &who.token.id,
            survey_version: &survey.version,
            stored_survey_version: &state.response.survey_version,
            survey_id: &survey.id,
            country_iso3: &state.response.country_iso3,
            changes: &changes,
            stored: &|q| state.answers.get(q).map_or(&[], Vec::as_slice),
            hidden_before: &hidden_before,
            hidden_after: &hidden_after,
            now: naive_now,
        };
        let write_all = |conn: &mut DbConn| -> Result<_, QueryError> {
            let outcome = sections::write_section(conn, &write)?;
            if matches!(outcome, WriteOutcome::Saved { .. }) {
                confirmations.write(conn, &state.response.id, &who.token.id, naive_now)?;
                store_files(
                    conn,
                    &changes,
                    &state,
                    &file_posts,
                    &who.token.id,
                    naive_now,
                )?;
            }
            Ok(outcome)
        };
        // The section's write is one statement; files and confirmations join it in one
        // transaction.
        let stores_more =
            confirmations.differ || posted_files(&changes, &file_posts).next().is_some();
        let written = match stores_more {
            true => crate::db::transaction(conn, write_all)?,
            false => write_all(conn)?,
        };
        match written {
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
            // The state changed between our read and our write (sent for sign-off, submitted).
            WriteOutcome::NotEditable => {
                let state = load(conn, survey, who, naive_now)?;
                editable(&state)?;
                return Err(RespondError::AlreadySubmitted);
            }
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

/// `f` given the answers a save of `changes` leaves: the changes swapped into `answers` and
/// out again, so that both end as they were. A copy of every answer instead was a tenth of a
/// draft save's allocations.
fn with_changes<T>(
    answers: &mut Answers,
    changes: &mut [(String, Vec<Item>)],
    f: impl FnOnce(&Answers) -> T,
) -> T {
    for (question, items) in changes.iter_mut() {
        swap_answer(answers, question, items);
    }
    let out = f(answers);
    for (question, items) in changes.iter_mut() {
        swap_answer(answers, question, items);
    }
    out
}

/// Exchange a question's stored answer (none stored: an empty list) with `items`. A question
/// left with an empty list is removed, as a save of nothing removes it: done twice, the swap
/// undoes itself.
fn swap_answer(answers: &mut Answers, question: &str, items: &mut Vec<Item>) {
    match answers.get_mut(question) {
        Some(stored) => {
            std::mem::swap(stored, items);
            if stored.is_empty() {
                answers.remove(question);
            }
        }
        None if !items.is_empty() => {
            answers.insert(question.to_string(), std::mem::take(items));
        }
        None => {}
    }
}

/// The "still accurate" boxes of a section's carried questions, as posted.
#[derive(Debug, Default)]
struct Confirmations {
    confirmed: Vec<String>,
    unconfirmed: Vec<String>,
    /// Some box says other than what is stored.
    differ: bool,
}

impl Confirmations {
    /// The carried questions the form showed (visible under the stored answers), split by
    /// whether their box was ticked (or the section's box, for those the save leaves as
    /// carried).
    fn of(
        section: &Section,
        state: &ResponseState,
        changes: &[(String, Vec<Item>)],
        ticked: &HashSet<String>,
        all: bool,
    ) -> Confirmations {
        let mut out = Confirmations::default();
        for q in &section.questions {
            let Some(c) = state.carried_shown(&q.id) else {
                continue;
            };
            let after = match changes.iter().find(|(id, _)| *id == q.id) {
                Some((_, items)) => Some(items),
                None => state.answers.get(&q.id),
            };
            let tick = ticked.contains(&q.id) || (all && c.is_unchanged(after));
            out.differ |= tick != c.confirmed_at.is_some();
            match tick {
                true => out.confirmed.push(q.id.clone()),
                false => out.unconfirmed.push(q.id.clone()),
            }
        }
        out
    }

    /// Leave every confirmation stored as it is, adding only the boxes ticked.
    fn only_confirm(&mut self, state: &ResponseState) {
        self.unconfirmed.clear();
        self.differ = self.confirmed.iter().any(|q| {
            state
                .carried
                .get(q)
                .is_some_and(|c| c.confirmed_at.is_none())
        });
    }

    /// Inside the save's transaction; no statement when no box says other than what is stored
    /// (a section without carried questions included).
    fn write(
        &self,
        conn: &mut DbConn,
        response_id: &str,
        by: &str,
        now: NaiveDateTime,
    ) -> Result<(), QueryError> {
        if !self.differ {
            return Ok(());
        }
        let confirmed: Vec<&str> = self.confirmed.iter().map(String::as_str).collect();
        let unconfirmed: Vec<&str> = self.unconfirmed.iter().map(String::as_str).collect();
        carried::set_confirmed(conn, response_id, &confirmed, &unconfirmed, by, now)
    }
}

/// The checked uploads and removals of the questions a save changes: what [`store_files`]
/// writes.
fn posted_files<'a>(
    changes: &'a [(String, Vec<Item>)],
    posts: &'a HashMap<&str, Result<CheckedPost, FieldError>>,
) -> impl Iterator<Item = (&'a String, &'a CheckedPost)> {
    changes
        .iter()
        .filter_map(|(question, _)| match posts.get(question.as_str()) {
            Some(Ok(post)) => Some((question, post)),
            _ => None,
        })
}

/// Inside a save's transaction: store the files its changes attach, and delete those it
/// removed that no version refers to.
fn store_files(
    conn: &mut DbConn,
    changes: &[(String, Vec<Item>)],
    state: &ResponseState,
    posts: &HashMap<&str, Result<CheckedPost, FieldError>>,
    token_id: &str,
    now: NaiveDateTime,
) -> Result<(), QueryError> {
    for (question, post) in posted_files(changes, posts) {
        for (id, file) in &post.added {
            files::insert(
                conn,
                &files::NewFile {
                    id: id.clone(),
                    response_id: state.response.id.clone(),
                    question_id: question.clone(),
                    name: file.name.clone(),
                    declared_type: file.declared_type.clone(),
                    detected_type: file.detected.code().to_string(),
                    size: file.bytes.len() as i64,
                    sha256: file.sha256.clone(),
                    content: file.bytes.clone(),
                    created_at: now,
                    created_by: token_id.to_string(),
                },
            )?;
        }
        let stored = state
            .answers
            .get(question)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let removed: Vec<String> = post.removed(stored).cloned().collect();
        files::delete_unreferenced(conn, &state.response.id, &removed)?;
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub enum SubmitOutcome {
    /// A new version was stored: its receipt.
    Submitted(Box<VersionRow>),
    Incomplete(Vec<Missing>),
}

/// What else a new version sets going, inside its transaction: the receipt emails.
pub type OnVersion<'a> =
    &'a dyn Fn(&mut DbConn, &ResponseRow, &VersionRow) -> Result<(), RespondError>;

/// What else sending for sign-off sets going, inside its transaction: the approver's email.
pub type OnSent<'a> = &'a dyn Fn(&mut DbConn, &ResponseRow) -> Result<(), RespondError>;

/// Submit the response as its next version, where the survey does not ask for national
/// sign-off (or the link is an owner's, entering a report received outside Coherence).
/// `stored` is the response as the caller just read it (with the link, see [`load_opened`]),
/// if it did; it is read here otherwise. Either way the transaction then claims the response
/// from the states it may be submitted from, so a response changed meanwhile is refused.
pub fn submit(
    conn: &mut DbConn,
    survey: &Survey,
    who: &Respondent,
    stored: Option<ResponseState>,
    on_version: OnVersion,
    now: DateTime<Utc>,
) -> Result<SubmitOutcome, RespondError> {
    if !who.may_submit() {
        return Err(RespondError::NotSubmitter);
    }
    let entry = who.entry(conn)?;
    if survey.sign_off && entry.is_none() {
        return Err(RespondError::SignOffRequired);
    }
    let state = match stored {
        Some(state) => state,
        None => load(conn, survey, who, now.naive_utc())?,
    };
    check_writable(survey, &state, now)?;
    let missing = state.blocking(survey);
    if !missing.is_empty() {
        return Ok(SubmitOutcome::Incomplete(missing));
    }
    let submission = Submission {
        number: 0,
        token_id: &who.token.id,
        sign_off: None,
        channel: entry.as_ref().map_or(Channel::Web, |e| e.1),
        entered_by: entry.as_ref().map(|e| e.0.as_str()),
        now: now.naive_utc(),
    };
    let version = record_version(
        conn,
        survey,
        &state.response,
        &[ResponseStatus::Draft, ResponseStatus::Returned],
        submission,
        on_version,
    )?;
    Ok(SubmitOutcome::Submitted(Box::new(version)))
}

/// Mark the response submitted from one of `from` and store the new version, with its audit
/// entry, in one transaction.
fn record_version(
    conn: &mut DbConn,
    survey: &Survey,
    response: &ResponseRow,
    from: &[ResponseStatus],
    mut s: Submission,
    on_version: OnVersion,
) -> Result<VersionRow, RespondError> {
    crate::db::transaction(conn, |conn| {
        let Some(number) =
            responses::record_submission(conn, &response.id, from, s.token_id, s.now)?
        else {
            let now = responses::response_by_id(conn, &response.id)?;
            return Err(match now.map(|r| r.status) {
                Some(ResponseStatus::Submitted) | None => RespondError::AlreadySubmitted,
                Some(state) => RespondError::State(state),
            });
        };
        s.number = number;
        let version = report::create_version(conn, survey, response, &s)?;
        responses::set_counted_version(conn, &response.id, Some(number))?;
        audit::record(
            conn,
            &Event {
                survey_id: &survey.id,
                country_iso3: &response.country_iso3,
                actor: Actor::Link(s.token_id),
                kind: AuditKind::Submitted,
                detail: serde_json::json!({
                    "unit": response.unit,
                    "version": number,
                    "digest": version.digest,
                    "channel": version.channel,
                    "entered_by": version.entered_by,
                    "signed_off_by": version.signed_off_name,
                }),
            },
            s.now,
        )?;
        on_version(conn, response, &version)?;
        Ok(version)
    })
}

/// Where sending for sign-off leads.
#[derive(Debug, Clone)]
pub enum ForSignOff {
    Sent,
    Incomplete(Vec<Missing>),
}

/// A coordinator sends a complete response to the country's approver, where the survey asks
/// for national sign-off. Nobody may change it until the approver sends it back.
pub fn send_for_sign_off(
    conn: &mut DbConn,
    survey: &Survey,
    who: &Respondent,
    on_sent: OnSent,
    now: DateTime<Utc>,
) -> Result<ForSignOff, RespondError> {
    if !who.may_submit() {
        return Err(RespondError::NotSubmitter);
    }
    if !survey.sign_off {
        return Err(RespondError::NotSubmitter);
    }
    let state = load(conn, survey, who, now.naive_utc())?;
    check_writable(survey, &state, now)?;
    let missing = state.blocking(survey);
    if !missing.is_empty() {
        return Ok(ForSignOff::Incomplete(missing));
    }
    let naive = now.naive_utc();
    crate::db::transaction(conn, |conn| {
        let moved = responses::change_status(
            conn,
            &state.response.id,
            &[ResponseStatus::Draft, ResponseStatus::Returned],
            ResponseStatus::AwaitingSignOff,
            naive,
        )?;
        if !moved {
            return Err(state_now(
                conn,
                &state.response.id,
                ResponseStatus::Submitted,
            )?);
        }
        record_by_link(
            conn,
            survey,
            who,
            &state.response,
            AuditKind::SentForSignOff,
            serde_json::json!({ "unit": state.response.unit }),
            naive,
        )?;
        on_sent(conn, &state.response)
    })?;
    Ok(ForSignOff::Sent)
}

/// The longest sign-off name, title or message kept.
pub const MAX_SIGN_OFF_TEXT: usize = 200;
pub const MAX_MESSAGE: usize = 4000;

/// The approver signs off a response sent for sign-off: it is submitted as a new version with
/// their name and title. Refused (incomplete) while carried answers are left to confirm.
pub fn sign_off(
    conn: &mut DbConn,
    survey: &Survey,
    who: &Respondent,
    signed: &SignOff,
    on_version: OnVersion,
    now: DateTime<Utc>,
) -> Result<SubmitOutcome, RespondError> {
    let state = approver_state(conn, survey, who, now)?;
    if must_confirm(survey) {
        let left = state.left_to_confirm(survey);
        if !left.is_empty() {
            return Ok(SubmitOutcome::Incomplete(left));
        }
    }
    for (field, value) in [("name", &signed.name), ("title", &signed.title)] {
        if value.trim().is_empty() {
            return Err(RespondError::Invalid {
                field,
                problem: "required",
            });
        }
        if value.chars().count() > MAX_SIGN_OFF_TEXT {
            return Err(RespondError::Invalid {
                field,
                problem: "too_long",
            });
        }
        // One line of printable text, as every name on a link: a line break or a direction
        // override would make the receipt and its email read other than what was signed.
        if value.trim().chars().any(crate::review::unprintable) {
            return Err(RespondError::Invalid {
                field,
                problem: "unprintable",
            });
        }
    }
    let signed = SignOff {
        name: signed.name.trim().to_string(),
        title: signed.title.trim().to_string(),
    };
    let naive = now.naive_utc();
    let submission = Submission {
        number: 0,
        token_id: &who.token.id,
        sign_off: Some((&who.token.id, &signed)),
        channel: Channel::Web,
        entered_by: None,
        now: naive,
    };
    crate::db::transaction(conn, |conn| {
        let version = record_version(
            conn,
            survey,
            &state.response,
            &[ResponseStatus::AwaitingSignOff],
            submission,
            on_version,
        )?;
        record_by_link(
            conn,
            survey,
            who,
            &state.response,
            AuditKind::SignedOff,
            serde_json::json!({
                "unit": state.response.unit,
                "version": version.number,
                "name": signed.name,
                "title": signed.title,
            }),
            naive,
        )?;
        Ok(SubmitOutcome::Submitted(Box::new(version)))
    })
}

/// The approver sends a response back to its coordinators with a message: they may change it
/// again and send it once more.
pub fn send_back(
    conn: &mut DbConn,
    survey: &Survey,
    who: &Respondent,
    message: &str,
    now: DateTime<Utc>,
) -> Result<ResponseStatus, RespondError> {
    let state = approver_state(conn, survey, who, now)?;
    let message = message.trim();
    if message.is_empty() {
        return Err(RespondError::Invalid {
            field: "message",
            problem: "required",
        });
    }
    if message.chars().count() > MAX_MESSAGE {
        return Err(RespondError::Invalid {
            field: "message",
            problem: "too_long",
        });
    }
    let naive = now.naive_utc();
    let history = versions::versions(conn, &state.response.id)?;
    let back_to = report::editable_state(&history);
    crate::db::transaction(conn, |conn| {
        let moved = responses::change_status(
            conn,
            &state.response.id,
            &[ResponseStatus::AwaitingSignOff],
            back_to,
            naive,
        )?;
        if !moved {
            return Err(state_now(
                conn,
                &state.response.id,
                ResponseStatus::Submitted,
            )?);
        }
        responses::record_sent_back(conn, &state.response.id, message, &who.token.id, naive)?;
        record_by_link(
            conn,
            survey,
            who,
            &state.response,
            AuditKind::SentBack,
            serde_json::json!({ "unit": state.response.unit, "message": message }),
            naive,
        )?;
        Ok(back_to)
    })
}

/// The state a response is in now, after a change of state from another one was refused
/// (`missing`: the state reported if the response is gone).
fn state_now(
    conn: &mut DbConn,
    response_id: &str,
    missing: ResponseStatus,
) -> Result<RespondError, QueryError> {
    let now = responses::response_by_id(conn, response_id)?;
    Ok(RespondError::State(now.map_or(missing, |r| r.status)))
}

/// Record in the audit log what a link did to its response.
fn record_by_link(
    conn: &mut DbConn,
    survey: &Survey,
    who: &Respondent,
    response: &ResponseRow,
    kind: AuditKind,
    detail: serde_json::Value,
    now: NaiveDateTime,
) -> Result<(), QueryError> {
    audit::record(
        conn,
        &Event {
            survey_id: &survey.id,
            country_iso3: &response.country_iso3,
            actor: Actor::Link(&who.token.id),
            kind,
            detail,
        },
        now,
    )
}

/// The response as an approver finds it: only an approver of a survey with sign-off, and only
/// while the response awaits it.
fn approver_state(
    conn: &mut DbConn,
    survey: &Survey,
    who: &Respondent,
    now: DateTime<Utc>,
) -> Result<ResponseState, RespondError> {
    if !survey.sign_off || !who.is_approver() {
        return Err(RespondError::NotApprover);
    }
    let state = load(conn, survey, who, now.naive_utc())?;
    if state.response.status != ResponseStatus::AwaitingSignOff {
        return Err(RespondError::State(state.response.status));
    }
    Ok(state)
}

/// The country takes back its submission while the secretariat has not begun reviewing it:
/// it becomes a draft again (or stays returned), the version is marked recalled and no longer
/// counts.
pub fn recall(
    conn: &mut DbConn,
    survey: &Survey,
    who: &Respondent,
    now: DateTime<Utc>,
) -> Result<ResponseStatus, RespondError> {
    if !who.may_submit() {
        return Err(RespondError::NotSubmitter);
    }
    let state = load(conn, survey, who, now.naive_utc())?;
    let naive = now.naive_utc();
    crate::db::transaction(conn, |conn| {
        // The state change comes first: it is the lock against the secretariat's review.
        let moved = responses::change_status(
            conn,
            &state.response.id,
            &[ResponseStatus::Submitted],
            ResponseStatus::Draft,
            naive,
        )?;
        if !moved {
            return Err(state_now(conn, &state.response.id, ResponseStatus::Draft)?);
        }
        // The version recalled is the one submitted now, which may be newer than the one
        // read before the state changed (a submission racing the recall).
        let number = responses::response_by_id(conn, &state.response.id)?
            .map_or(state.response.version_count, |r| r.version_count);
        versions::mark(conn, &state.response.id, number, Mark::Recalled, naive)?;
        let history = versions::versions(conn, &state.response.id)?;
        let back_to = report::editable_state(&history);
        if back_to != ResponseStatus::Draft {
            responses::change_status(
                conn,
                &state.response.id,
                &[ResponseStatus::Draft],
                back_to,
                naive,
            )?;
        }
        responses::set_counted_version(
            conn,
            &state.response.id,
            report::counted_version(&history),
        )?;
        record_by_link(
            conn,
            survey,
            who,
            &state.response,
            AuditKind::Recalled,
            serde_json::json!({ "unit": state.response.unit, "version": number }),
            naive,
        )?;
        Ok(back_to)
    })
}

/// The suffix of a carried question's "still accurate" box (`<q>.confirm`, value `1`); the
/// survey loader keeps `confirm` from being a matrix row's code.
pub const CONFIRM_FIELD: &str = "confirm";

/// The name of a section's "all unchanged carried answers are still accurate" box.
pub const CONFIRM_SECTION_FIELD: &str = "_confirm_section";

/// The questions whose "still accurate" box a form ticked.
pub fn confirmed_in_form(pairs: &[(String, String)]) -> HashSet<String> {
    pairs
        .iter()
        .filter(|(_, value)| value == "1")
        .filter_map(|(name, _)| match name.split_once('.') {
            Some((q, CONFIRM_FIELD)) if !q.starts_with('_') => Some(q.to_string()),
            _ => None,
        })
        .collect()
}

/// Group a form's (name, value) pairs by question: `q`, `q.other`, `q.<row>`. The values are
/// moved, not copied.
pub fn group_form(pairs: Vec<(String, String)>) -> HashMap<String, RawAnswer> {
    let mut out: HashMap<String, RawAnswer> = HashMap::new();
    for (name, value) in pairs {
        if name.starts_with('_') {
            continue;
        }
        match name.split_once('.') {
            Some((q, "other")) => out.entry(q.to_string()).or_default().other = Some(value),
            Some((q, "escape")) => out.entry(q.to_string()).or_default().escape = Some(value),
            Some((q, "reason")) => out.entry(q.to_string()).or_default().reason = Some(value),
            // A carried answer's "still accurate" box: read by `confirmed_in_form`.
            Some((_, CONFIRM_FIELD)) => {}
            Some((q, row)) => {
                out.entry(q.to_string())
                    .or_default()
                    .rows
                    .insert(row.to_string(), value);
            }
            None => out.entry(name).or_default().values.push(value),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(values: &[&str]) -> Vec<Item> {
        values
            .iter()
            .map(|v| Item {
                item: String::new(),
                value: v.to_string(),
                num: None,
            })
            .collect()
    }

    #[test]
    fn a_save_is_seen_with_its_changes_and_leaves_the_answers_as_they_were() {
        let mut answers = Answers::new();
        answers.insert("kept".into(), items(&["k"]));
        answers.insert("changed".into(), items(&["old"]));
        answers.insert("cleared".into(), items(&["gone"]));
        let before = answers.clone();
        let mut changes = vec![
            ("changed".to_string(), items(&["new", "newer"])),
            ("cleared".to_string(), Vec::new()),
            ("added".to_string(), items(&["first"])),
        ];
        let wanted = changes.clone();
        let seen = with_changes(&mut answers, &mut changes, |after| after.clone());
        let mut expected = Answers::new();
        expected.insert("kept".into(), items(&["k"]));
        expected.insert("changed".into(), items(&["new", "newer"]));
        expected.insert("added".into(), items(&["first"]));
        assert_eq!(seen, expected);
        assert_eq!(answers, before);
        assert_eq!(changes, wanted);
    }
}

//! The secretariat's side of the report cycle: beginning the review of a submitted response,
//! returning it to the country (with an email listing its open queries), accepting it; and
//! what changed between two versions, question by question. Knows nothing of HTTP.
//!
//! Each change of state is one transaction whose first write is the guarded status update (the
//! lock against a country saving, recalling or resubmitting at the same moment), with its
//! audit entry; a change refused because the state moved meanwhile says what it is now.

use std::collections::{BTreeSet, HashMap};

use chrono::NaiveDateTime;

use crate::audit::{self, Actor, AuditKind, Event};
use crate::db::outbox::{self, NewMessage};
use crate::db::responses::{self, ResponseRow, ResponseStatus};
use crate::db::review_queries::{self, QueryStatus};
use crate::db::tokens::{self, LinkRole};
use crate::db::users::User;
use crate::db::versions::{self, Mark, VersionAnswers, VersionRow};
use crate::db::{deadlines, DbConn, DbError, QueryError};
use crate::mail::templates::{EmailTemplates, Letter, Message};
use crate::reference::Countries;
use crate::survey::answer::Item;

use super::queries::{Change, Thread};
use super::Channel;
use crate::survey::Survey;

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The response is not (any more) in a state that allows this: its state now.
    #[error("the response is {0}")]
    State(ResponseStatus),
    /// Accepting with open queries needs the owner's confirmation.
    #[error("{0} queries are still open")]
    OpenQueries(i64),
    /// No such response, version, query or question (or not one this link may see).
    #[error("not found")]
    NotFound,
    /// A typed text refused: empty or too long.
    #[error("{0}")]
    Invalid(TextProblem),
    /// The query was closed already.
    #[error("the query is closed")]
    QueryClosed,
    #[error("rendering an email failed: {0}")]
    Render(#[from] handlebars::RenderError),
    #[error(transparent)]
    Db(#[from] DbError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextProblem {
    Empty,
    TooLong,
}

impl std::fmt::Display for TextProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TextProblem::Empty => "the text is empty",
            TextProblem::TooLong => "the text is too long",
        })
    }
}

impl From<QueryError> for ReviewError {
    fn from(e: QueryError) -> Self {
        ReviewError::Db(DbError::Query(e))
    }
}

/// The state a response is in now, for a refusal; NotFound when it is gone.
pub(super) fn refused(conn: &mut DbConn, response_id: &str) -> ReviewError {
    match responses::response_by_id(conn, response_id) {
        Ok(Some(r)) => ReviewError::State(r.status),
        Ok(None) => ReviewError::NotFound,
        Err(e) => e.into(),
    }
}

/// The response of a country (and organisation) in a survey, if it has one.
pub fn find(
    conn: &mut DbConn,
    survey: &Survey,
    iso3: &str,
    unit: &str,
) -> Result<ResponseRow, ReviewError> {
    responses::find_response(conn, &survey.id, iso3, unit)?.ok_or(ReviewError::NotFound)
}

fn record(
    conn: &mut DbConn,
    r: &ResponseRow,
    user: &User,
    kind: AuditKind,
    detail: serde_json::Value,
    now: NaiveDateTime,
) -> Result<(), ReviewError> {
    audit::record(
        conn,
        &Event {
            survey_id: &r.survey_id,
            country_iso3: &r.country_iso3,
            actor: Actor::User(&user.id),
            kind,
            detail,
        },
        now,
    )?;
    Ok(())
}

/// Begin reviewing a submitted response: the country can no longer recall it.
pub fn begin_review(
    conn: &mut DbConn,
    r: &ResponseRow,
    user: &User,
    now: NaiveDateTime,
) -> Result<(), ReviewError> {
    crate::db::transaction(conn, |conn| {
        if !begin_review_in(conn, r, user, now)? {
            return Err(refused(conn, &r.id));
        }
        Ok(())
    })
}

/// Inside a transaction: submitted -> under review, with its audit entry; false when the
/// response was not submitted (any more).
pub(super) fn begin_review_in(
    conn: &mut DbConn,
    r: &ResponseRow,
    user: &User,
    now: NaiveDateTime,
) -> Result<bool, ReviewError> {
    let moved = responses::change_status(
        conn,
        &r.id,
        &[ResponseStatus::Submitted],
        ResponseStatus::UnderReview,
        now,
    )?;
    if moved {
        let detail = serde_json::json!({ "unit": r.unit, "version": r.counted_version });
        record(conn, r, user, AuditKind::ReviewStarted, detail, now)?;
    }
    Ok(moved)
}

/// What returning a response needs to write its emails.
pub struct Mailing<'a> {
    pub emails: &'a EmailTemplates,
    pub countries: &'a Countries,
    /// Where respondents write for help (the sender address).
    pub help: &'a str,
}

/// Return a submitted or reviewed response to the country: it may change its answers and
/// submit again. The counted version is marked returned, and the country's coordinators and
/// approver are emailed the questions of the open queries. Returns how many emails were
/// queued.
pub fn return_response(
    conn: &mut DbConn,
    survey: &Survey,
    mailing: &Mailing,
    r: &ResponseRow,
    user: &User,
    now: NaiveDateTime,
) -> Result<usize, ReviewError> {
    crate::db::transaction(conn, |conn| {
        let moved = responses::change_status(
            conn,
            &r.id,
            &[ResponseStatus::Submitted, ResponseStatus::UnderReview],
            ResponseStatus::Returned,
            now,
        )?;
        if !moved {
            return Err(refused(conn, &r.id));
        }
        // Read after the lock: the version counted now.
        let fresh = responses::response_by_id(conn, &r.id)?.ok_or(ReviewError::NotFound)?;
        if let Some(n) = fresh.counted_version {
            versions::mark(conn, &r.id, n, Mark::Returned, now)?;
        }
        let open: Vec<String> = review_queries::response_queries(conn, &r.id)?
            .into_iter()
            .filter(|q| q.status == QueryStatus::Open)
            .map(|q| q.question_id)
            .collect();
        let queued = queue_returned(conn, survey, mailing, &fresh, &open, now)?;
        let detail = serde_json::json!({
            "unit": r.unit,
            "version": fresh.counted_version,
            "open_queries": open.len(),
            "emails": queued,
        });
        record(conn, &fresh, user, AuditKind::Returned, detail, now)?;
        Ok(queued)
    })
}

/// Who is told of a return: the holders of the response's live coordinator and approver links
/// with an address (not the owners' entry links), once per address, each in their contact
/// language where they are a contact.
fn queue_returned(
    conn: &mut DbConn,
    survey: &Survey,
    mailing: &Mailing,
    r: &ResponseRow,
    open: &[String],
    now: NaiveDateTime,
) -> Result<usize, ReviewError> {
    let contacts = crate::contacts::list_for_country(conn, &survey.id, &r.country_iso3)?;
    let language: HashMap<String, String> = contacts
        .into_iter()
        .map(|c| (c.email.to_lowercase(), c.language))
        .collect();
    let deadline = deadlines::deadline_extension(conn, &survey.id, &r.country_iso3)?
        .or(survey.closes.map(|c| c.naive_utc()));
    let links = tokens::country_tokens(conn, &survey.id, &r.country_iso3)?;
    let roles = [LinkRole::Coordinator, LinkRole::Approver];
    let mut queued = 0;
    for holder in super::notify::holders(links, &r.unit, &roles, now) {
        if tokens::entry_of(conn, &holder.link_id)?.is_some() {
            continue;
        }
        let email = holder.email;
        let lang = language
            .get(&email.to_lowercase())
            .filter(|l| survey.languages.contains(l))
            .cloned()
            .or_else(|| survey.languages.first().cloned())
            .unwrap_or_else(|| "en".into());
        let country = mailing
            .countries
            .get(&r.country_iso3)
            .map(|c| c.name(&lang).to_string())
            .unwrap_or_else(|| r.country_iso3.clone());
        let queries = open
            .iter()
            .map(|q| {
                survey
                    .question(q)
                    .map(|q| q.text.get(&lang).to_string())
                    .unwrap_or_else(|| q.clone())
            })
            .collect();
        let letter = Letter {
            name: holder.name,
            survey: survey.title.get(&lang).to_string(),
            country: crate::survey::respondent_name(&r.unit, &country),
            deadline: deadline.map(|d| crate::i18n::format_datetime(&lang, d)),
            help: mailing.help.to_string(),
        };
        let message = Message::Returned { queries };
        let mail = mailing.emails.render(&message, &letter, &lang)?;
        outbox::enqueue(
            conn,
            &NewMessage {
                kind: message.kind(),
                survey_id: &survey.id,
                country_iso3: &r.country_iso3,
                contact_id: None,
                recipient: &email,
                subject: &mail.subject,
                body_text: &mail.text,
                body_html: &mail.html,
            },
            now,
        )?;
        queued += 1;
    }
    Ok(queued)
}

/// Accept a submitted or reviewed response: final, only reopening changes it. With open
/// queries it is refused unless `confirmed` (the owner said to accept all the same).
pub fn accept(
    conn: &mut DbConn,
    r: &ResponseRow,
    user: &User,
    confirmed: bool,
    now: NaiveDateTime,
) -> Result<(), ReviewError> {
    crate::db::transaction(conn, |conn| {
        let moved = responses::change_status(
            conn,
            &r.id,
            &[ResponseStatus::Submitted, ResponseStatus::UnderReview],
            ResponseStatus::Accepted,
            now,
        )?;
        if !moved {
            return Err(refused(conn, &r.id));
        }
        let open = review_queries::open_query_count(conn, &r.id)?;
        if open > 0 && !confirmed {
            // Rolled back: nothing changed.
            return Err(ReviewError::OpenQueries(open));
        }
        let fresh = responses::response_by_id(conn, &r.id)?.ok_or(ReviewError::NotFound)?;
        if let Some(n) = fresh.counted_version {
            versions::mark(conn, &r.id, n, Mark::Accepted, now)?;
        }
        let detail = serde_json::json!({
            "unit": r.unit,
            "version": fresh.counted_version,
            "open_queries": open,
        });
        record(conn, &fresh, user, AuditKind::Accepted, detail, now)?;
        Ok(())
    })
}

/// One question whose answer differs between two versions (or a version and the draft).
#[derive(Debug, Clone, PartialEq)]
pub struct DiffRow {
    pub question_id: String,
    /// The answer before (None: not answered, or not asked).
    pub old: Option<Vec<Item>>,
    pub new: Option<Vec<Item>>,
    /// The link that last changed it in the newer version, and when (None when the newer
    /// side does not answer it: the change is the answer's removal).
    pub changed_by: Option<String>,
    pub changed_at: Option<NaiveDateTime>,
}

/// The questions whose answers differ from `old` to `new`, in the survey's order (questions
/// the survey no longer has last, by id).
pub fn diff(survey: &Survey, old: &VersionAnswers, new: &VersionAnswers) -> Vec<DiffRow> {
    let order: HashMap<&str, usize> = survey
        .questions()
        .enumerate()
        .map(|(i, q)| (q.id.as_str(), i))
        .collect();
    let ids: BTreeSet<&String> = old.answers.keys().chain(new.answers.keys()).collect();
    let mut rows: Vec<DiffRow> = ids
        .into_iter()
        .filter_map(|q| {
            let (a, b) = (old.answers.get(q), new.answers.get(q));
            if a == b {
                return None;
            }
            let changed = new.changed.get(q);
            Some(DiffRow {
                question_id: q.clone(),
                old: a.cloned(),
                new: b.cloned(),
                changed_by: changed.map(|c| c.0.clone()),
                changed_at: changed.map(|c| c.1),
            })
        })
        .collect();
    rows.sort_by_key(|r| {
        (
            order
                .get(r.question_id.as_str())
                .copied()
                .unwrap_or(usize::MAX),
            r.question_id.clone(),
        )
    });
    rows
}

/// The difference between two versions of a response (either order: the older is `old`).
pub fn version_diff(
    conn: &mut DbConn,
    survey: &Survey,
    response_id: &str,
    a: i32,
    b: i32,
) -> Result<Vec<DiffRow>, ReviewError> {
    let (from, to) = (a.min(b), a.max(b));
    for n in [from, to] {
        versions::version(conn, response_id, n)?.ok_or(ReviewError::NotFound)?;
    }
    let old = versions::version_answers(conn, response_id, from)?;
    let new = versions::version_answers(conn, response_id, to)?;
    Ok(diff(survey, &old, &new))
}

/// Which version the country page shows, and which two it compares.
#[derive(Debug, Clone, Copy, Default)]
pub struct CycleRequest {
    pub version: Option<i32>,
    pub from: Option<i32>,
    pub to: Option<i32>,
}

/// A response's report cycle as the country page shows it.
pub struct Cycle {
    /// Oldest first.
    pub versions: Vec<VersionRow>,
    /// Every query with its thread, and what became of its question since.
    pub threads: Vec<(Thread, Option<Change>)>,
    /// The version asked for, with its answers.
    pub shown: Option<(VersionRow, VersionAnswers)>,
    /// The two versions compared (older first) and what differs.
    pub diff: Option<(i32, i32, Vec<DiffRow>)>,
}

impl Cycle {
    pub fn open_queries(&self) -> usize {
        self.threads.iter().filter(|(t, _)| t.is_open()).count()
    }
}

/// Load a response's versions and queries, and the version or the difference asked for (a
/// version or pair the response does not have is left out).
pub fn load_cycle(
    conn: &mut DbConn,
    survey: &Survey,
    r: &ResponseRow,
    req: &CycleRequest,
) -> Result<Cycle, ReviewError> {
    let history = versions::versions(conn, &r.id)?;
    let latest = history.last().map(|v| v.number);
    let mut threads = Vec::new();
    for t in super::queries::threads(conn, &r.id)? {
        let change = super::queries::what_changed(conn, r, &t.query, latest)?;
        threads.push((t, change));
    }
    let shown = match req
        .version
        .and_then(|n| history.iter().find(|v| v.number == n))
    {
        Some(v) => Some((v.clone(), versions::version_answers(conn, &r.id, v.number)?)),
        None => None,
    };
    let has = |n: i32| history.iter().any(|v| v.number == n);
    let diff = match (req.from, req.to) {
        (Some(a), Some(b)) if a != b && has(a) && has(b) => {
            Some((a.min(b), a.max(b), version_diff(conn, survey, &r.id, a, b)?))
        }
        _ => None,
    };
    Ok(Cycle {
        versions: history,
        threads,
        shown,
        diff,
    })
}

/// The email addresses of users by id (one query per distinct user: the few owners who acted).
pub fn user_emails(
    conn: &mut DbConn,
    ids: impl IntoIterator<Item = String>,
) -> Result<HashMap<String, String>, ReviewError> {
    let ids: BTreeSet<String> = ids.into_iter().collect();
    let mut out = HashMap::new();
    for id in ids {
        if let Some(u) = crate::db::users::find_user(conn, &id)? {
            out.insert(id, u.email);
        }
    }
    Ok(out)
}

/// Why an owner may not open an entry link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryProblem {
    /// The channel is not email, paper or other.
    Channel,
    /// The country is not in the survey's population.
    Population,
    /// The organisation missing (a survey of organisations) or given (a survey of countries).
    Unit,
}

/// Open a link for an owner to enter a report the country sent by email, on paper or some
/// other way: a coordinator link held by the owner, marked as an entry with its channel (so
/// the version it submits records both and skips national sign-off), with its audit entry.
/// Returns the link's secret (its address is `/r/<secret>`).
pub fn open_entry(
    conn: &mut DbConn,
    survey: &Survey,
    iso3: &str,
    unit: &str,
    channel: Channel,
    user: &User,
    now: NaiveDateTime,
) -> Result<Result<String, EntryProblem>, ReviewError> {
    if channel == Channel::Web {
        return Ok(Err(EntryProblem::Channel));
    }
    if !survey.population.contains(iso3) {
        return Ok(Err(EntryProblem::Population));
    }
    let holder = crate::review::NewHolder {
        name: "",
        email: &user.email,
        unit,
        expires_at: None,
        role: LinkRole::Coordinator,
        sections: &[],
    };
    if holder.check(survey).is_err() {
        return Ok(Err(EntryProblem::Unit));
    }
    crate::db::transaction(conn, |conn| {
        let token = crate::review::issue_link(
            conn,
            survey,
            iso3,
            &holder,
            audit::Actor::User(&user.id),
            now,
        )?;
        let row = tokens::find_token(conn, &crate::access::hash_token(&token))?
            .ok_or(ReviewError::NotFound)?;
        tokens::record_entry(conn, &row.id, &user.id, channel.as_str())?;
        audit::record(
            conn,
            &Event {
                survey_id: &survey.id,
                country_iso3: iso3,
                actor: Actor::User(&user.id),
                kind: AuditKind::EntryOpened,
                detail: serde_json::json!({
                    "unit": unit.trim(),
                    "link": row.id,
                    "channel": channel.as_str(),
                }),
            },
            now,
        )?;
        Ok(Ok(token))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(value: &str) -> Item {
        Item {
            item: String::new(),
            value: value.into(),
            num: None,
        }
    }

    fn answers(rows: &[(&str, &str, &str, u32)]) -> VersionAnswers {
        let mut v = VersionAnswers::default();
        for (q, value, by, minute) in rows {
            v.answers.insert(q.to_string(), vec![item(value)]);
            let at = chrono::NaiveDate::from_ymd_opt(2026, 11, 30)
                .and_then(|d| d.and_hms_opt(10, *minute, 0))
                .unwrap();
            v.changed.insert(q.to_string(), (by.to_string(), at));
        }
        v
    }

    fn survey() -> Survey {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/surveys/fixture.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        crate::survey::load::parse_survey("fixture.toml", &text)
            .0
            .unwrap()
    }

    #[test]
    fn diff_lists_only_changed_questions_in_survey_order_with_who_and_when() {
        let s = survey();
        let v1 = answers(&[("name", "MFA", "l1", 1), ("active", "yes", "l1", 1)]);
        let v2 = answers(&[
            ("name", "MFA", "l1", 1),
            ("active", "no", "l2", 5),
            ("colour", "red", "l2", 6),
        ]);
        let rows = diff(&s, &v1, &v2);
        let ids: Vec<&str> = rows.iter().map(|r| r.question_id.as_str()).collect();
        assert_eq!(ids, ["colour", "active"]);
        assert_eq!(rows[0].old, None);
        assert_eq!(rows[0].new, Some(vec![item("red")]));
        assert_eq!(rows[1].old, Some(vec![item("yes")]));
        assert_eq!(rows[1].new, Some(vec![item("no")]));
        assert_eq!(rows[1].changed_by.as_deref(), Some("l2"));
        assert_eq!(
            rows[1].changed_at.map(|t| t.to_string()).as_deref(),
            Some("2026-11-30 10:05:00")
        );
        // An answer removed: old value, no new one, nobody to name.
        let back = diff(&s, &v2, &v1);
        let colour = back.iter().find(|r| r.question_id == "colour").unwrap();
        assert_eq!(
            (colour.new.clone(), colour.changed_by.clone()),
            (None, None)
        );
        assert!(diff(&s, &v1, &v1).is_empty());
    }
}

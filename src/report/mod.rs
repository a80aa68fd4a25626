//! The national report cycle around the form: every submission an immutable version with a
//! digest anyone can recompute, and the states a response goes through.
//!
//! ```text
//! draft --(submit, or sign-off)--> submitted --(review)--> under review --(accept)--> accepted
//!   ^  \--(send for sign-off)--> awaiting sign-off --(send back)--> draft / returned
//!   |                        submitted --(recall)--> draft / returned
//!   |          submitted / under review --(return)--> returned --(resubmit)--> submitted
//!   +-- reopened by an administrator (from submitted, under review or accepted)
//! ```
//!
//! The country may change its answers only in `draft` and `returned`. Knows nothing of HTTP.

pub mod notify;
pub mod queries;
pub mod secretariat;

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::db::responses::{ResponseRow, ResponseStatus};
use crate::db::states::text_enum;
use crate::db::versions::{self, NewVersion, VersionRow};
use crate::db::{answers, DbConn, QueryError};
use crate::survey::answer::Answers;
use crate::survey::Survey;

text_enum! {
    /// How a report reached the secretariat.
    pub enum Channel("report channel") {
        /// Answered by the country in Coherence.
        Web = "web",
        /// Received by email and entered by an owner.
        Email = "email",
        /// Received on paper and entered by an owner.
        Paper = "paper",
        /// Received some other way and entered by an owner.
        Other = "other",
    }
}

/// The national authority's sign-off, as typed on the cover of the report.
#[derive(Debug, Clone)]
pub struct SignOff {
    pub name: String,
    pub title: String,
}

/// The canonical form of a submitted version, whose SHA-256 is the receipt's digest: JSON
/// with no whitespace, keys in byte order at every level (this struct's fields are declared
/// in that order), strings as serde_json writes them (UTF-8, only `"`, `\` and control
/// characters escaped). `answers` maps each visible answered question to its items, each
/// item (`""` for a single value, an option code, or a matrix row) to its stored value.
#[derive(Debug, Serialize)]
struct Canonical<'a> {
    answers: BTreeMap<&'a str, BTreeMap<&'a str, &'a str>>,
    country: &'a str,
    survey: &'a str,
    survey_version: &'a str,
    unit: &'a str,
    version: i32,
}

/// The canonical content of a version (see [`Canonical`]).
pub fn canonical_content(
    survey: &Survey,
    response: &ResponseRow,
    number: i32,
    answers: &Answers,
) -> String {
    let canonical = Canonical {
        answers: answers
            .iter()
            .map(|(q, items)| {
                let items = items
                    .iter()
                    .map(|i| (i.item.as_str(), i.value.as_str()))
                    .collect();
                (q.as_str(), items)
            })
            .collect(),
        country: &response.country_iso3,
        survey: &survey.id,
        survey_version: &survey.version,
        unit: &response.unit,
        version: number,
    };
    // Serialising maps of strings cannot fail.
    serde_json::to_string(&canonical).unwrap_or_default()
}

/// The SHA-256 of a version's canonical content, in lower-case hex.
pub fn digest(content: &str) -> String {
    hex::encode(Sha256::digest(content.as_bytes()))
}

/// Who submits a version, and how it reached the secretariat.
pub struct Submission<'a> {
    pub number: i32,
    /// The link that submitted it.
    pub token_id: &'a str,
    pub sign_off: Option<(&'a str, &'a SignOff)>,
    pub channel: Channel,
    pub entered_by: Option<&'a str>,
    pub now: NaiveDateTime,
}

/// Store version `number` of a response from its visible answers as stored now. Call inside
/// the transaction that marked the response submitted.
pub fn create_version(
    conn: &mut DbConn,
    survey: &Survey,
    response: &ResponseRow,
    s: &Submission,
) -> Result<VersionRow, QueryError> {
    let answers = answers::visible_answers(conn, &response.id)?;
    let content = canonical_content(survey, response, s.number, &answers);
    let digest = digest(&content);
    versions::insert_version(
        conn,
        &NewVersion {
            response_id: &response.id,
            number: s.number,
            survey_version: &survey.version,
            content: &content,
            digest: &digest,
            submitted_at: s.now,
            submitted_by: s.token_id,
            signed_off_by: s.sign_off.map(|(by, _)| by),
            signed_off_name: s.sign_off.map(|(_, o)| o.name.as_str()),
            signed_off_title: s.sign_off.map(|(_, o)| o.title.as_str()),
            channel: s.channel.as_str(),
            entered_by: s.entered_by,
        },
    )?;
    versions::version(conn, &response.id, s.number)?.ok_or(QueryError::NotFound)
}

/// The state a response goes back to when the country may change it again (sent back by its
/// approver, or recalled): `returned` while the secretariat's latest return stands, else
/// `draft`.
pub fn editable_state(history: &[VersionRow]) -> ResponseStatus {
    let latest = history.iter().rev().find(|v| v.recalled_at.is_none());
    match latest {
        Some(v) if v.returned_at.is_some() => ResponseStatus::Returned,
        _ => ResponseStatus::Draft,
    }
}

/// The version results count: the latest one the country did not recall.
pub fn counted_version(history: &[VersionRow]) -> Option<i32> {
    history
        .iter()
        .rev()
        .find(|v| v.recalled_at.is_none())
        .map(|v| v.number)
}

/// Store version 1 of every response of a survey submitted before versions existed (their
/// status is `submitted` and they have no version), from its answers as stored: so results,
/// which count versions, keep counting them. Returns how many were stored.
pub fn backfill_versions(
    conn: &mut DbConn,
    survey: &Survey,
    now: NaiveDateTime,
) -> Result<usize, QueryError> {
    let unversioned = crate::db::responses::unversioned_submissions(conn, &survey.id)?;
    for r in &unversioned {
        crate::db::transaction(conn, |conn| {
            crate::db::responses::record_backfilled_version(conn, &r.id)?;
            create_version(
                conn,
                survey,
                r,
                &Submission {
                    number: 1,
                    token_id: r.submitted_by.as_deref().unwrap_or(""),
                    sign_off: None,
                    channel: Channel::Web,
                    entered_by: None,
                    now: r.submitted_at.unwrap_or(now),
                },
            )
        })?;
    }
    Ok(unversioned.len())
}

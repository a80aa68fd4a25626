//! The audit log: what happened to each national report, by whom, in an append-only hash
//! chain per survey that `coherence audit verify` recomputes (storage in [`crate::db::audit`]).

use chrono::NaiveDateTime;
use serde_json::Value;

use crate::db::audit::{self, AuditRow, NewEntry, GENESIS};
use crate::db::states::text_enum;
use crate::db::{DbConn, QueryError};

text_enum! {
    /// What an audit entry records.
    pub enum AuditKind("audit entry kind") {
        /// A section saved: which questions changed, by which link.
        Saved = "saved",
        LinkIssued = "link_issued",
        LinkRevoked = "link_revoked",
        /// A coordinator handed sections to a colleague (a contributor link).
        SectionsAssigned = "sections_assigned",
        SectionReady = "section_ready",
        SentForSignOff = "sent_for_sign_off",
        SentBack = "sent_back",
        SignedOff = "signed_off",
        Submitted = "submitted",
        Recalled = "recalled",
        ReviewStarted = "review_started",
        Returned = "returned",
        QueryRaised = "query_raised",
        QueryReplied = "query_replied",
        QueryClosed = "query_closed",
        Accepted = "accepted",
        Reopened = "reopened",
        /// An owner opened a link to enter a report received by email or on paper.
        EntryOpened = "entry_opened",
        ExportDownloaded = "export_downloaded",
        EmailQueued = "email_queued",
        EmailDelivered = "email_delivered",
    }
}

/// Who did it.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// A personal link, by its id (never its secret).
    Link(&'a str),
    /// An administrator or owner, by user id.
    User(&'a str),
    /// The command line.
    Cli,
    /// The service itself (the outbox worker).
    System,
}

impl Actor<'_> {
    pub fn text(&self) -> String {
        match self {
            Actor::Link(id) => format!("link:{id}"),
            Actor::User(id) => format!("user:{id}"),
            Actor::Cli => "cli".into(),
            Actor::System => "system".into(),
        }
    }
}

/// One thing that happened, to be recorded.
pub struct Event<'a> {
    /// The survey ('' for what concerns no survey).
    pub survey_id: &'a str,
    /// The country ('' for what concerns no country).
    pub country_iso3: &'a str,
    pub actor: Actor<'a>,
    pub kind: AuditKind,
    /// The particulars, as a JSON object.
    pub detail: Value,
}

/// Record an event. Call inside the transaction of the change it records.
pub fn record(conn: &mut DbConn, event: &Event, now: NaiveDateTime) -> Result<(), QueryError> {
    let detail = event.detail.to_string();
    audit::append(
        conn,
        &NewEntry {
            chain: event.survey_id,
            country_iso3: event.country_iso3,
            actor: &event.actor.text(),
            kind: event.kind.as_str(),
            detail: &detail,
            at: now,
        },
    )?;
    Ok(())
}

/// The first entry of a chain that does not match, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub chain: String,
    /// The sequence number the entry should have.
    pub expected_seq: i64,
    /// The stored entry at that place, if any.
    pub found_seq: Option<i64>,
    pub reason: BreakReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakReason {
    /// The entry's content does not give its stored hash (it was altered).
    Altered,
    /// The entry does not follow the previous one (one was deleted, inserted or moved).
    Unlinked,
    /// The chain ends before its head says it does (entries removed at the end).
    Truncated,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let chain = if self.chain.is_empty() {
            "(no survey)"
        } else {
            &self.chain
        };
        match self.reason {
            BreakReason::Altered => write!(
                f,
                "{chain}: entry {} was altered: its content does not give its hash",
                self.expected_seq
            ),
            BreakReason::Unlinked => write!(
                f,
                "{chain}: entry {} does not follow entry {}: an entry was deleted, inserted or moved",
                self.found_seq.unwrap_or(self.expected_seq),
                self.expected_seq - 1
            ),
            BreakReason::Truncated => write!(
                f,
                "{chain}: the chain ends at entry {} but its head records entry {}: entries were removed",
                self.expected_seq - 1,
                self.found_seq.unwrap_or(self.expected_seq)
            ),
        }
    }
}

/// What `verify` found: entries checked per chain, and the first break, if any.
#[derive(Debug, Clone)]
pub struct Verified {
    pub chains: Vec<(String, i64, String)>,
    pub broken: Option<Break>,
}

/// Recompute a survey's chain (or every chain) from its first entry.
pub fn verify(conn: &mut DbConn, survey: Option<&str>) -> Result<Verified, QueryError> {
    let rows = audit::entries(conn, survey)?;
    let heads = audit::heads(conn)?;
    let mut chains: Vec<(String, i64, String)> = Vec::new();
    let mut i = 0;
    while i < rows.len() {
        let chain = rows[i].chain.clone();
        let end = rows[i..]
            .iter()
            .position(|r| r.chain != chain)
            .map_or(rows.len(), |p| i + p);
        let head = heads.iter().find(|h| h.0 == chain);
        if let Some(broken) = check_chain(&chain, &rows[i..end], head) {
            return Ok(Verified {
                chains,
                broken: Some(broken),
            });
        }
        let last = &rows[end - 1];
        chains.push((chain, last.seq, last.hash.clone()));
        i = end;
    }
    // A head whose entries are all gone.
    for (chain, seq, _) in &heads {
        let wanted = survey.is_none_or(|s| s == chain);
        if wanted && *seq > 0 && !chains.iter().any(|c| &c.0 == chain) {
            return Ok(Verified {
                chains,
                broken: Some(Break {
                    chain: chain.clone(),
                    expected_seq: 1,
                    found_seq: Some(*seq),
                    reason: BreakReason::Truncated,
                }),
            });
        }
    }
    Ok(Verified {
        chains,
        broken: None,
    })
}

fn check_chain(
    chain: &str,
    rows: &[AuditRow],
    head: Option<&(String, i64, String)>,
) -> Option<Break> {
    let mut prev = GENESIS.to_string();
    for (n, row) in rows.iter().enumerate() {
        let expected_seq = n as i64 + 1;
        let unlinked = row.seq != expected_seq || row.prev_hash != prev;
        if unlinked {
            return Some(Break {
                chain: chain.to_string(),
                expected_seq,
                found_seq: Some(row.seq),
                reason: BreakReason::Unlinked,
            });
        }
        if row.computed_hash() != row.hash {
            return Some(Break {
                chain: chain.to_string(),
                expected_seq,
                found_seq: Some(row.seq),
                reason: BreakReason::Altered,
            });
        }
        prev = row.hash.clone();
    }
    let last = rows.len() as i64;
    match head {
        Some((_, seq, hash)) if *seq != last || *hash != prev => Some(Break {
            chain: chain.to_string(),
            expected_seq: last + 1,
            found_seq: Some(*seq),
            reason: BreakReason::Truncated,
        }),
        _ => None,
    }
}

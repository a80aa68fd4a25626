//! The audit log: what happened to each national report, by whom, in an append-only hash
//! chain per survey that `coherence audit verify` recomputes (storage in [`crate::db::audit`]).

use std::io::Write;
use std::sync::mpsc;
use std::time::Duration;

use chrono::NaiveDateTime;
use serde_json::Value;

use crate::db::audit::{self, AuditRow, NewEntry, GENESIS};
use crate::db::states::text_enum;
use crate::db::{DbConn, DbError, Pool, QueryError};

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
        DeadlineChanged = "deadline_changed",
        SignedIn = "signed_in",
        SignInFailed = "sign_in_failed",
        /// A new round's response started from the country's answers to the previous round.
        Carried = "carried",
        /// A changed survey file left stored answers without their question or option, and
        /// the operator started with --accept-orphans.
        OrphansAccepted = "orphans_accepted",
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

/// Record an event: one statement, inside the transaction of the change it records (see
/// [`audit::append`]; the sealer chains it within a second).
pub fn record(conn: &mut DbConn, event: &Event, now: NaiveDateTime) -> Result<(), QueryError> {
    record_all(conn, std::slice::from_ref(event), now)
}

/// Record several events with one statement.
pub fn record_all(
    conn: &mut DbConn,
    events: &[Event],
    now: NaiveDateTime,
) -> Result<(), QueryError> {
    let texts: Vec<(String, String)> = events
        .iter()
        .map(|e| (e.actor.text(), e.detail.to_string()))
        .collect();
    let entries: Vec<NewEntry> = events
        .iter()
        .zip(&texts)
        .map(|(e, (actor, detail))| NewEntry {
            chain: e.survey_id,
            country_iso3: e.country_iso3,
            actor,
            kind: e.kind.as_str(),
            detail,
            at: now,
        })
        .collect();
    audit::append_all(conn, &entries)?;
    Ok(())
}

/// Chain every event recorded so far (see [`audit::seal`]): the number chained.
pub fn seal(conn: &mut DbConn) -> Result<u64, QueryError> {
    audit::seal(conn)
}

/// How often the service seals what was recorded.
pub const SEAL_EVERY: Duration = Duration::from_secs(1);

/// The service's sealer: a thread that chains recorded events every [`SEAL_EVERY`], and once
/// more when stopped.
pub struct Sealer {
    /// Dropped to stop the thread, which waits on the other end between seals: it wakes once
    /// a second, or at once when stopped (it used to sleep in 50 ms steps to notice a stop
    /// flag, twenty wake-ups a second on an idle server).
    stop: Option<mpsc::Sender<()>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Sealer {
    pub fn start(pool: Pool) -> Sealer {
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("audit-sealer".into())
            .spawn(move || {
                // Its own connection (see `Pool::open_apart`), opened again after an error
                // (PostgreSQL restarted, say).
                let mut conn: Option<DbConn> = None;
                // An outage is logged when it starts and when it ends, not every second.
                let mut failing = false;
                let mut stopping = false;
                loop {
                    let sealed = match conn.as_mut() {
                        Some(c) => seal(c).map_err(DbError::from),
                        None => pool.open_apart().and_then(|mut c| {
                            let n = seal(&mut c)?;
                            conn = Some(c);
                            Ok(n)
                        }),
                    };
                    match sealed {
                        Err(e) => {
                            conn = None;
                            if !failing {
                                tracing::error!(error = %crate::error::chain(&e), "audit sealer");
                            }
                            failing = true;
                        }
                        Ok(_) if failing => {
                            tracing::info!("audit sealer: sealing again");
                            failing = false;
                        }
                        Ok(_) => {}
                    }
                    if stopping {
                        return;
                    }
                    stopping = !matches!(
                        stopped.recv_timeout(SEAL_EVERY),
                        Err(mpsc::RecvTimeoutError::Timeout)
                    );
                }
            })
            .ok();
        Sealer {
            stop: Some(stop),
            handle,
        }
    }

    /// Seal once more, and stop.
    pub fn stop(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        self.stop.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Sealer {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The first entry of a chain that does not match, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub chain: String,
    /// The entry named: the first stored entry that does not match or, when entries are
    /// missing at the end, the first one missing.
    pub seq: i64,
    pub reason: BreakReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakReason {
    /// Its content does not give its stored hash: the entry was altered.
    Altered,
    /// It does not follow entry `after` (not the next number, or not holding that entry's
    /// hash): an entry was deleted before it, or entries were inserted or moved.
    Unlinked { after: i64 },
    /// It comes after the last entry the chain's head records (`head`): it was added without
    /// going through the application, or the head was moved back.
    BeyondHead { head: i64 },
    /// The head records this entry with another hash: the head was altered.
    HeadMismatch,
    /// The chain ends before this entry, but its head records entry `head`: entries were
    /// removed at the end.
    Missing { head: i64 },
    /// The chain has entries but no head: its head was deleted.
    NoHead,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let seq = self.seq;
        write!(f, "chain {}, entry {seq}: ", chain_name(&self.chain))?;
        match self.reason {
            BreakReason::Altered => write!(
                f,
                "altered: its content does not give its stored hash"
            ),
            BreakReason::Unlinked { after: 0 } => write!(
                f,
                "out of place: it is not the chain's first entry (entries were deleted, inserted or moved)"
            ),
            BreakReason::Unlinked { after } => write!(
                f,
                "out of place: it does not follow entry {after} (an entry was deleted, inserted or moved)"
            ),
            BreakReason::BeyondHead { head } => write!(
                f,
                "not in the chain: its head ends at entry {head} (an entry was added behind the application's back, or the head moved back)"
            ),
            BreakReason::HeadMismatch => write!(
                f,
                "the chain's head records another hash for this entry (the head was altered)"
            ),
            BreakReason::Missing { head } => write!(
                f,
                "missing: the chain ends at entry {} but its head records entry {head} (entries were removed at the end)",
                seq - 1
            ),
            BreakReason::NoHead => write!(
                f,
                "the chain has no head (its head was deleted)"
            ),
        }
    }
}

/// A chain's name as printed: its survey id, or `(no survey)`.
pub fn chain_name(chain: &str) -> &str {
    if chain.is_empty() {
        "(no survey)"
    } else {
        chain
    }
}

/// A chain that verified: its entries, and the hash of its last one (its head), which a
/// secretariat can note elsewhere to detect a later rewriting of the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainChecked {
    pub chain: String,
    pub entries: i64,
    pub head_hash: String,
}

/// What `verify` found: the chains that verified, and the first break, if any.
#[derive(Debug, Clone)]
pub struct Verified {
    pub chains: Vec<ChainChecked>,
    pub broken: Option<Break>,
}

/// Why a walk through the log stopped.
enum Stop {
    Db(QueryError),
    Broken(Break),
}

impl From<QueryError> for Stop {
    fn from(e: QueryError) -> Self {
        Stop::Db(e)
    }
}

/// Recompute a survey's chain (or every chain, in the order of their names) from its first
/// entry, reading the log a page at a time, and compare each chain's end with its head.
pub fn verify(conn: &mut DbConn, survey: Option<&str>) -> Result<Verified, QueryError> {
    seal(conn)?;
    audit::in_snapshot(conn, |conn| verify_now(conn, survey))
}

fn verify_now(conn: &mut DbConn, survey: Option<&str>) -> Result<Verified, QueryError> {
    let heads: Vec<(String, i64, String)> = audit::heads(conn)?
        .into_iter()
        .filter(|h| survey.is_none_or(|s| s == h.0))
        .collect();
    let mut walk = Walk {
        heads: &heads,
        current: None,
        chains: Vec::new(),
    };
    let walked = audit::for_each(conn, survey, |row| walk.step(row));
    let walked = walked.and_then(|()| walk.finish());
    let broken = match walked {
        Ok(()) => None,
        Err(Stop::Broken(b)) => Some(b),
        Err(Stop::Db(e)) => return Err(e),
    };
    let broken = broken.or_else(|| {
        // A head whose entries are all gone.
        heads
            .iter()
            .find(|(chain, seq, _)| *seq > 0 && !walk.chains.iter().any(|c| &c.chain == chain))
            .map(|(chain, seq, _)| Break {
                chain: chain.clone(),
                seq: 1,
                reason: BreakReason::Missing { head: *seq },
            })
    });
    Ok(Verified {
        chains: walk.chains,
        broken,
    })
}

/// The chain being walked.
struct Cursor {
    chain: String,
    last: i64,
    prev: String,
    /// Its head: (last sequence number, last hash).
    head: (i64, String),
}

struct Walk<'h> {
    heads: &'h [(String, i64, String)],
    current: Option<Cursor>,
    chains: Vec<ChainChecked>,
}

impl Walk<'_> {
    fn step(&mut self, row: &AuditRow) -> Result<(), Stop> {
        let broken = |reason| {
            Stop::Broken(Break {
                chain: row.chain.clone(),
                seq: row.seq,
                reason,
            })
        };
        if self.current.as_ref().is_none_or(|c| c.chain != row.chain) {
            self.finish()?;
            let head = self.heads.iter().find(|h| h.0 == row.chain);
            let Some((_, seq, hash)) = head else {
                return Err(broken(BreakReason::NoHead));
            };
            self.current = Some(Cursor {
                chain: row.chain.clone(),
                last: 0,
                prev: GENESIS.to_string(),
                head: (*seq, hash.clone()),
            });
        }
        let Some(c) = self.current.as_mut() else {
            return Ok(());
        };
        if row.seq != c.last + 1 || row.prev_hash != c.prev {
            return Err(broken(BreakReason::Unlinked { after: c.last }));
        }
        if row.computed_hash() != row.hash {
            return Err(broken(BreakReason::Altered));
        }
        if row.seq > c.head.0 {
            return Err(broken(BreakReason::BeyondHead { head: c.head.0 }));
        }
        if row.seq == c.head.0 && row.hash != c.head.1 {
            return Err(broken(BreakReason::HeadMismatch));
        }
        c.last = row.seq;
        c.prev.clone_from(&row.hash);
        Ok(())
    }

    /// The end of the chain being walked: its head must record its last entry.
    fn finish(&mut self) -> Result<(), Stop> {
        let Some(c) = self.current.take() else {
            return Ok(());
        };
        if c.head.0 > c.last {
            return Err(Stop::Broken(Break {
                chain: c.chain,
                seq: c.last + 1,
                reason: BreakReason::Missing { head: c.head.0 },
            }));
        }
        self.chains.push(ChainChecked {
            chain: c.chain,
            entries: c.last,
            head_hash: c.prev,
        });
        Ok(())
    }
}

/// One line of `coherence audit export`: an entry as stored, its time in RFC 3339 (UTC, to
/// the microsecond) and its detail as a JSON object (as a string if it is not valid JSON).
#[derive(Debug, serde::Serialize)]
pub struct ExportedEntry<'a> {
    pub chain: &'a str,
    pub seq: i64,
    pub at: String,
    pub country: &'a str,
    pub actor: &'a str,
    pub kind: &'a str,
    pub detail: Value,
    pub prev_hash: &'a str,
    pub hash: &'a str,
}

impl<'a> ExportedEntry<'a> {
    pub fn of(row: &'a AuditRow) -> Self {
        ExportedEntry {
            chain: &row.chain,
            seq: row.seq,
            at: row
                .at
                .and_utc()
                .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string(),
            country: &row.country_iso3,
            actor: &row.actor,
            kind: &row.kind,
            detail: serde_json::from_str(&row.detail)
                .unwrap_or_else(|_| Value::String(row.detail.clone())),
            prev_hash: &row.prev_hash,
            hash: &row.hash,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("reading the audit log")]
    Db(#[from] QueryError),
    #[error("writing the audit log")]
    Io(#[from] std::io::Error),
}

/// Write the entries of a survey's chain (or of every chain) as JSON lines, a page at a time;
/// the number of entries written.
pub fn export(
    conn: &mut DbConn,
    survey: Option<&str>,
    out: &mut impl Write,
) -> Result<u64, ExportError> {
    let mut n = 0;
    seal(conn)?;
    audit::in_snapshot(conn, |conn| {
        audit::for_each(conn, survey, |row| {
            serde_json::to_writer(&mut *out, &ExportedEntry::of(row))
                .map_err(std::io::Error::from)?;
            out.write_all(b"\n")?;
            n += 1;
            Ok::<(), ExportError>(())
        })
    })?;
    out.flush()?;
    Ok(n)
}

//! `audit_log` and `audit_heads`: the append-only record, one hash chain per survey.
//!
//! An entry's hash is the SHA-256 of its own content and of the previous entry's hash
//! ([`entry_hash`]); `audit_heads` keeps each chain's last sequence number and hash. Appending
//! updates the head row first: on PostgreSQL that row lock makes a second writer of the same
//! chain wait for the first to commit, and on SQLite the first write takes the database's write
//! lock, so two entries never claim the same place in a chain.

use chrono::{NaiveDateTime, Timelike};
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use super::schema::{audit_heads, audit_log};
use super::{is_unique_violation, DbConn};

/// The `prev_hash` of a chain's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    pub chain: String,
    pub seq: i64,
    pub at: NaiveDateTime,
    pub country_iso3: String,
    pub actor: String,
    pub kind: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// What an entry records, before it takes its place in the chain.
pub struct NewEntry<'a> {
    /// The survey's id ('' for events of no survey).
    pub chain: &'a str,
    pub country_iso3: &'a str,
    pub actor: &'a str,
    pub kind: &'a str,
    /// JSON text.
    pub detail: &'a str,
    pub at: NaiveDateTime,
}

/// Times are kept to the microsecond, what PostgreSQL stores, so an entry read back from
/// either backend hashes as it was written.
pub fn stored_time(at: NaiveDateTime) -> NaiveDateTime {
    at.with_nanosecond(at.nanosecond() / 1_000 * 1_000)
        .unwrap_or(at)
}

/// The SHA-256 (hex) of an entry: its fields, one per line, in this order, then the previous
/// entry's hash. The time is written `YYYY-MM-DDTHH:MM:SS.ffffff`.
#[allow(clippy::too_many_arguments)]
pub fn entry_hash(
    chain: &str,
    seq: i64,
    at: NaiveDateTime,
    country_iso3: &str,
    actor: &str,
    kind: &str,
    detail: &str,
    prev_hash: &str,
) -> String {
    let mut h = Sha256::new();
    let at = at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
    for field in [
        chain,
        &seq.to_string(),
        &at,
        country_iso3,
        actor,
        kind,
        detail,
        prev_hash,
    ] {
        h.update(field.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

impl AuditRow {
    /// The hash this entry's content gives, to compare with the stored one.
    pub fn computed_hash(&self) -> String {
        entry_hash(
            &self.chain,
            self.seq,
            self.at,
            &self.country_iso3,
            &self.actor,
            &self.kind,
            &self.detail,
            &self.prev_hash,
        )
    }
}

/// Append an entry to its chain. Call inside the transaction of the change it records, so that
/// both are kept or neither.
pub fn append(conn: &mut DbConn, e: &NewEntry) -> QueryResult<AuditRow> {
    // Take the head's lock first (a write that changes nothing, which also reads the head),
    // creating the chain on its first entry; a savepoint keeps a lost race for the creation
    // from aborting the caller's transaction on PostgreSQL.
    let head = match lock_head(conn, e.chain)? {
        Some(head) => head,
        None => {
            let created = conn.transaction(|conn| {
                diesel::insert_into(audit_heads::table)
                    .values((
                        audit_heads::chain.eq(e.chain),
                        audit_heads::seq.eq(0i64),
                        audit_heads::hash.eq(GENESIS),
                    ))
                    .execute(conn)
            });
            match created {
                Err(ref err) if is_unique_violation(err) => {}
                other => {
                    other?;
                }
            }
            lock_head(conn, e.chain)?.ok_or(diesel::result::Error::NotFound)?
        }
    };
    let (seq, prev_hash) = (head.seq, head.hash);
    let at = stored_time(e.at);
    let row = AuditRow {
        chain: e.chain.to_string(),
        seq: seq + 1,
        at,
        country_iso3: e.country_iso3.to_string(),
        actor: e.actor.to_string(),
        kind: e.kind.to_string(),
        detail: e.detail.to_string(),
        hash: entry_hash(
            e.chain,
            seq + 1,
            at,
            e.country_iso3,
            e.actor,
            e.kind,
            e.detail,
            &prev_hash,
        ),
        prev_hash,
    };
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::chain.eq(&row.chain),
            audit_log::seq.eq(row.seq),
            audit_log::at.eq(row.at),
            audit_log::country_iso3.eq(&row.country_iso3),
            audit_log::actor.eq(&row.actor),
            audit_log::kind.eq(&row.kind),
            audit_log::detail.eq(&row.detail),
            audit_log::prev_hash.eq(&row.prev_hash),
            audit_log::hash.eq(&row.hash),
        ))
        .execute(conn)?;
    diesel::update(audit_heads::table.find(e.chain))
        .set((
            audit_heads::seq.eq(row.seq),
            audit_heads::hash.eq(&row.hash),
        ))
        .execute(conn)?;
    Ok(row)
}

#[derive(QueryableByName)]
struct Head {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    seq: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    hash: String,
}

/// Lock a chain's head and read it, in one statement; None when the chain has no head yet.
fn lock_head(conn: &mut DbConn, chain: &str) -> QueryResult<Option<Head>> {
    let mut heads: Vec<Head> =
        diesel::sql_query("UPDATE audit_heads SET seq = seq WHERE chain = $1 RETURNING seq, hash")
            .into_boxed::<super::sql::Backend>()
            .bind::<diesel::sql_types::Text, _>(chain)
            .load(conn)?;
    Ok(heads.pop())
}

/// Every entry of a chain in the order of the chain, or of every chain (by chain, then order).
pub fn entries(conn: &mut DbConn, chain: Option<&str>) -> QueryResult<Vec<AuditRow>> {
    let mut q = audit_log::table
        .select(AuditRow::as_select())
        .order((audit_log::chain, audit_log::seq))
        .into_boxed();
    if let Some(c) = chain {
        q = q.filter(audit_log::chain.eq(c.to_string()));
    }
    q.load(conn)
}

/// At most `limit` entries in the order of the chains (by chain, then sequence number), of one
/// chain or of every chain, starting after the entry `after` (chain, seq): a page of a walk
/// through the whole log that never holds it all in memory.
pub fn page(
    conn: &mut DbConn,
    chain: Option<&str>,
    after: Option<(&str, i64)>,
    limit: i64,
) -> QueryResult<Vec<AuditRow>> {
    let mut q = audit_log::table
        .select(AuditRow::as_select())
        .order((audit_log::chain, audit_log::seq))
        .limit(limit)
        .into_boxed();
    if let Some(c) = chain {
        q = q.filter(audit_log::chain.eq(c.to_string()));
    }
    if let Some((c, seq)) = after {
        q = q.filter(
            audit_log::chain.gt(c.to_string()).or(audit_log::chain
                .eq(c.to_string())
                .and(audit_log::seq.gt(seq))),
        );
    }
    q.load(conn)
}

/// Call `f` on every entry (of one chain or of all), in the order of the chains, reading
/// `PAGE` entries at a time; stops at the first error `f` returns.
pub fn for_each<E: From<diesel::result::Error>>(
    conn: &mut DbConn,
    chain: Option<&str>,
    mut f: impl FnMut(&AuditRow) -> Result<(), E>,
) -> Result<(), E> {
    const PAGE: i64 = 1000;
    let mut after: Option<(String, i64)> = None;
    loop {
        let rows = page(
            conn,
            chain,
            after.as_ref().map(|(c, s)| (c.as_str(), *s)),
            PAGE,
        )?;
        for row in &rows {
            f(row)?;
        }
        match rows.last() {
            Some(last) if rows.len() as i64 == PAGE => {
                after = Some((last.chain.clone(), last.seq));
            }
            _ => return Ok(()),
        }
    }
}

/// The entries of one country in a survey's chain, newest first, at most `limit`.
pub fn country_entries(
    conn: &mut DbConn,
    chain: &str,
    iso3: &str,
    limit: i64,
) -> QueryResult<Vec<AuditRow>> {
    audit_log::table
        .filter(audit_log::chain.eq(chain))
        .filter(audit_log::country_iso3.eq(iso3))
        .order(audit_log::seq.desc())
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)
}

/// Run `f` on one snapshot of the log, so that entries appended meanwhile are either all seen,
/// with their heads, or not at all: inside a transaction which on PostgreSQL, when it is not
/// nested in another, is REPEATABLE READ (on SQLite a transaction's reads see one snapshot).
pub fn in_snapshot<T, E: From<diesel::result::Error>>(
    conn: &mut DbConn,
    f: impl FnOnce(&mut DbConn) -> Result<T, E>,
) -> Result<T, E> {
    use diesel::connection::{SimpleConnection, TransactionManager};
    let depth = <DbConn as Connection>::TransactionManager::transaction_manager_status_mut(conn)
        .transaction_depth()?;
    conn.transaction(|conn| {
        if depth.is_none() && matches!(conn, DbConn::Postgres(_)) {
            conn.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")?;
        }
        f(conn)
    })
}

/// Each chain's head: (chain, last sequence number, last hash).
pub fn heads(conn: &mut DbConn) -> QueryResult<Vec<(String, i64, String)>> {
    audit_heads::table
        .order(audit_heads::chain)
        .select((audit_heads::chain, audit_heads::seq, audit_heads::hash))
        .load(conn)
}

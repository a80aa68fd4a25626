//! `audit_log` and `audit_heads`: the append-only record, one hash chain per survey.
//!
//! An entry is recorded as one row of `audit_pending` ([`append`]), in the transaction of the
//! change it records. [`seal`] moves recorded entries into `audit_log`, their chain: an entry's
//! hash is the SHA-256 of its own content and of the previous entry's hash ([`entry_hash`]),
//! and `audit_heads` keeps each chain's last sequence number and hash. Sealing updates the head
//! row first: on PostgreSQL that row lock makes a second sealer of the same chain wait for the
//! first to commit, and on SQLite the first write takes the database's write lock, so two
//! entries never claim the same place in a chain. Every reader of the log seals first.

use chrono::{NaiveDateTime, Timelike};
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use super::schema::{audit_heads, audit_log, audit_pending};
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

/// Record an entry: one row in `audit_pending`, inside the transaction of the change it
/// records, so that both are kept or neither. Nothing else is touched: [`seal`] later gives it
/// its place and hash in its chain, so that writers of one survey do not wait for each other.
pub fn append(conn: &mut DbConn, e: &NewEntry) -> QueryResult<()> {
    append_all(conn, std::slice::from_ref(e))
}

/// As [`append`], several entries with one statement (per `PENDING_ROWS_PER_INSERT`).
pub fn append_all<'a>(conn: &mut DbConn, entries: &[NewEntry<'a>]) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        let row = |e: &NewEntry<'a>| {
            (
                audit_pending::chain.eq(e.chain),
                audit_pending::at.eq(stored_time(e.at)),
                audit_pending::country_iso3.eq(e.country_iso3),
                audit_pending::actor.eq(e.actor),
                audit_pending::kind.eq(e.kind),
                audit_pending::detail.eq(e.detail),
            )
        };
        if let [one] = entries {
            // One row (a save): kept prepared by the backend's own connection (see
            // `db::native!`), which a multi-row INSERT is not.
            super::native!(conn, |c| diesel::insert_into(audit_pending::table)
                .values(row(one))
                .execute(c))?;
            return Ok(());
        }
        for chunk in entries.chunks(PENDING_ROWS_PER_INSERT) {
            let rows: Vec<_> = chunk.iter().map(row).collect();
            super::insert_rows!(conn, audit_pending::table, rows)?;
        }
        Ok(())
    })
}

/// Six parameters a row: well inside both backends' limits on bound parameters.
const PENDING_ROWS_PER_INSERT: usize = 500;

/// At most this many entries are chained per transaction.
const SEAL_BATCH: i64 = 500;

diesel::define_sql_function! {
    /// PostgreSQL: take a transaction-level advisory lock, waiting for it.
    fn pg_advisory_xact_lock(key: diesel::sql_types::BigInt);
}

#[derive(QueryableByName)]
struct Pending {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    chain: String,
    #[diesel(sql_type = diesel::sql_types::Timestamp)]
    at: NaiveDateTime,
    #[diesel(sql_type = diesel::sql_types::Text)]
    country_iso3: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    actor: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    kind: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    detail: String,
}

/// Chain every entry recorded so far (see [`append`]), a batch per transaction; the number of
/// entries chained. Each batch is taken by one `DELETE ... RETURNING`, so that no entry is
/// chained twice, and sealers take turns (other nodes, a reader sealing before it reads): on
/// SQLite the DELETE takes the database's write lock, on PostgreSQL a transaction-level
/// advisory lock is taken first. Within a chain, entries keep the order of `id`, so each
/// writer's entries keep the order it recorded them in.
///
/// With nothing recorded since the last seal (the service's sealer on an idle service, every
/// second) it only reads: the DELETE took SQLite's write lock, and the database's write turn,
/// for nothing, and while another process held the lock it held the turn for the whole busy
/// timeout, every other write of the service waiting behind it.
pub fn seal(conn: &mut DbConn) -> QueryResult<u64> {
    let recorded: bool = diesel::select(diesel::dsl::exists(
        audit_pending::table.select(audit_pending::id),
    ))
    .get_result(conn)?;
    if !recorded {
        return Ok(0);
    }
    let mut sealed = 0;
    loop {
        let n = super::transaction(conn, seal_batch)?;
        sealed += n as u64;
        if (n as i64) < SEAL_BATCH {
            return Ok(sealed);
        }
    }
}

/// Key of the PostgreSQL advisory lock sealers take turns on ("auditsea" in ASCII).
pub const SEAL_LOCK_KEY: i64 = 0x6175_6469_7473_6561;

fn seal_batch(conn: &mut DbConn) -> QueryResult<usize> {
    if let DbConn::Postgres(c) = conn {
        diesel::select(pg_advisory_xact_lock(SEAL_LOCK_KEY)).execute(c)?;
    }
    let mut taken: Vec<Pending> = diesel::sql_query(
        "DELETE FROM audit_pending WHERE id IN \
         (SELECT id FROM audit_pending ORDER BY id LIMIT $1) \
         RETURNING id, chain, at, country_iso3, actor, kind, detail",
    )
    .into_boxed::<super::sql::Backend>()
    .bind::<diesel::sql_types::BigInt, _>(SEAL_BATCH)
    .load(conn)?;
    let n = taken.len();
    // Grouped by chain (in the order of their names); within a chain, the order of recording.
    taken.sort_by(|a, b| a.chain.cmp(&b.chain).then(a.id.cmp(&b.id)));
    for chain in taken.chunk_by(|a, b| a.chain == b.chain) {
        chain_entries(conn, chain)?;
    }
    Ok(n)
}

/// Give entries of one chain their places after its head, and move the head.
fn chain_entries(conn: &mut DbConn, pending: &[Pending]) -> QueryResult<()> {
    let Some(first) = pending.first() else {
        return Ok(());
    };
    let name = first.chain.as_str();
    let head = head_for_update(conn, name)?;
    let (mut seq, mut prev_hash) = (head.seq, head.hash);
    let mut rows = Vec::with_capacity(pending.len());
    for p in pending {
        seq += 1;
        let hash = entry_hash(
            name,
            seq,
            p.at,
            &p.country_iso3,
            &p.actor,
            &p.kind,
            &p.detail,
            &prev_hash,
        );
        rows.push((
            audit_log::chain.eq(name),
            audit_log::seq.eq(seq),
            audit_log::at.eq(p.at),
            audit_log::country_iso3.eq(&p.country_iso3),
            audit_log::actor.eq(&p.actor),
            audit_log::kind.eq(&p.kind),
            audit_log::detail.eq(&p.detail),
            audit_log::prev_hash.eq(std::mem::replace(&mut prev_hash, hash.clone())),
            audit_log::hash.eq(hash),
        ));
    }
    // Nine parameters a row: chunks well inside both backends' limits.
    for chunk in rows.chunks(PENDING_ROWS_PER_INSERT) {
        super::insert_rows!(conn, audit_log::table, chunk)?;
    }
    diesel::update(audit_heads::table.find(name))
        .set((audit_heads::seq.eq(seq), audit_heads::hash.eq(&prev_hash)))
        .execute(conn)?;
    Ok(())
}

/// A chain's head, locked until the end of the transaction, created on the chain's first
/// entry; a savepoint keeps a lost race for the creation from aborting the caller's
/// transaction on PostgreSQL.
fn head_for_update(conn: &mut DbConn, chain: &str) -> QueryResult<Head> {
    if let Some(head) = lock_head(conn, chain)? {
        return Ok(head);
    }
    let created = conn.transaction(|conn| {
        diesel::insert_into(audit_heads::table)
            .values((
                audit_heads::chain.eq(chain),
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
    lock_head(conn, chain)?.ok_or(diesel::result::Error::NotFound)
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

/// Every entry of a chain in the order of the chain, or of every chain (by chain, then order),
/// once what was recorded is sealed.
pub fn entries(conn: &mut DbConn, chain: Option<&str>) -> QueryResult<Vec<AuditRow>> {
    seal(conn)?;
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

/// The entries of one country in a survey's chain, newest first, at most `limit`, once what
/// was recorded is sealed.
pub fn country_entries(
    conn: &mut DbConn,
    chain: &str,
    iso3: &str,
    limit: i64,
) -> QueryResult<Vec<AuditRow>> {
    seal(conn)?;
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

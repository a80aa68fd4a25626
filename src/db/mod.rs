//! Storage: one code path over SQLite (embedded default) and PostgreSQL.

//!
//! One module per table (or close group of tables): its row structs, insert and update
//! structs, typed states, and the queries. Nothing outside `db` names a table or builds a
//! query.

/// `$body` run on the backend's own connection `$c` (a `SqliteConnection` or a
/// `PgConnection`), for queries the MultiConnection cannot send or sends slowly:
/// - it has no multi-row INSERT;
/// - it writes a query's SQL text again each time it passes the query to the backend (twice
///   per execution: to check that the statement may be cached, then with its bound values),
///   even when the statement cache finds the query by its type. On the backend's own
///   connection a query with a static id is found without writing its SQL: for the queries
///   of every page view and save.
macro_rules! native {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConn::Sqlite($c) => $body,
            $crate::db::DbConn::Postgres($c) => $body,
        }
    };
}
pub(crate) use native;

/// One multi-row INSERT of `rows` (a slice or Vec of insertable tuples) into `table`,
/// evaluating to `QueryResult<usize>`. MultiConnection has no multi-row INSERT.
macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr) => {
        $crate::db::native!($conn, |c| diesel::insert_into($table)
            .values($rows)
            .execute(c))
    };
}
pub(crate) use insert_rows;

pub mod answers;
pub mod attempts;
pub mod audit;
pub mod carried;
pub mod contacts;
pub mod countries;
pub mod deadlines;
pub mod definitions;
pub mod files;
pub mod health;
pub mod outbox;
pub mod responses;
pub mod review_queries;
pub mod schema;
pub mod sections;
pub mod sessions;
pub mod sql;
mod sqlite_busy;
pub mod states;
pub mod survey_versions;
pub mod tokens;
pub mod unit_rates;
pub mod users;
pub mod versions;

/// The functions that lived in one `queries` module before storage was split per table,
/// under their old paths for the callers not moved yet; new code uses the table modules.
pub mod queries {
    pub use super::answers::load_answers;
    pub use super::countries::sync_countries;
    pub use super::deadlines::deadline_extension;
    pub use super::ping;
    pub use super::responses::{
        find_response, get_or_create_response, ResponseRow, ResponseStatus,
    };
    pub use super::sections::{
        section_states, write_section, SectionStateRow, SectionWrite, WriteOutcome,
    };
    pub use super::survey_versions::record_survey_version;
    pub use super::tokens::{
        count_tokens, country_tokens, find_token, find_token_by_id, insert_token, revoke_tokens,
        token_names, touch_token, NewToken, RevokeLinks, TokenRow,
    };
}

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::{Instrumentation, InstrumentationEvent, SimpleConnection};
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Postgres(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

/// Any error, as a cause kept for the log.
type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// `file` is the SQLite file (a PostgreSQL error names its server itself).
    #[error(
        "cannot connect to the database: {}{}",
        .file.as_ref().map(|f| format!("{f}: ")).unwrap_or_default(),
        .source.to_string().trim()
    )]
    Connect {
        file: Option<String>,
        #[source]
        source: Cause,
    },
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::PoolError),
    #[error("database: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migrations failed: {0}")]
    Migration(#[source] Cause),
    #[error("migrations failed: migration lock: {0}")]
    MigrationLock(#[source] diesel::result::Error),
    #[error("migrations failed: migration lock: it was not held at the end")]
    MigrationLockLost,
    #[error("migrations failed: migration lock: {file}: {source}")]
    MigrationLockFile {
        file: String,
        #[source]
        source: std::io::Error,
    },
}

impl DbError {
    /// Whether the database cannot be reached or cannot store anything right now, as opposed
    /// to a failed query: no connection within the pool's timeout, PostgreSQL down, restarting
    /// or gone away mid-request, SQLite's disk full, an I/O error, a lock held past the busy
    /// timeout, or a PostgreSQL statement cancelled after the pool's statement timeout. The request may succeed if sent again later; the web layer answers 503.
    pub fn is_unavailable(&self) -> bool {
        match self {
            DbError::Connect { .. } | DbError::Pool(_) => true,
            DbError::Query(e) => query_error_is_unavailable(e),
            DbError::Migration(_)
            | DbError::MigrationLock(_)
            | DbError::MigrationLockLost
            | DbError::MigrationLockFile { .. } => false,
        }
    }
}

/// Messages of the unavailability errors diesel reports as `DatabaseErrorKind::Unknown`: it
/// keeps neither SQLite's result code nor PostgreSQL's SQLSTATE for them. SQLite's texts are
/// those of `sqlite3_errstr` (SQLITE_FULL, SQLITE_IOERR, SQLITE_BUSY); PostgreSQL's are for a
/// server shutting down, starting or recovering (SQLSTATE 57P01-57P03) or a statement that ran
/// past the pool's [`STATEMENT_TIMEOUT`] (57014), which libpq words in English unless the
/// server's `lc_messages` says otherwise.
const UNAVAILABLE_MESSAGES: &[&str] = &[
    "database or disk is full",
    "disk I/O error",
    SQLITE_BUSY_MESSAGE,
    "terminating connection due to administrator command",
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is in recovery mode",
    "server closed the connection unexpectedly",
    "no connection to the server",
    STATEMENT_TIMEOUT_MESSAGE,
];

/// PostgreSQL's message for a statement cancelled by `statement_timeout` (SQLSTATE 57014).
const STATEMENT_TIMEOUT_MESSAGE: &str = "canceling statement due to statement timeout";

fn query_error_is_unavailable(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => true,
        Error::DatabaseError(_, info) => {
            let message = info.message();
            UNAVAILABLE_MESSAGES.iter().any(|m| message.contains(m))
        }
        // A transaction whose COMMIT or ROLLBACK failed, typically on a dropped connection.
        Error::RollbackErrorOnCommit {
            rollback_error,
            commit_error,
        } => query_error_is_unavailable(commit_error) || query_error_is_unavailable(rollback_error),
        Error::BrokenTransactionManager => true,
        _ => false,
    }
}

/// Where the data lives, decided from the URL's scheme: the derived `establish` of
/// MultiConnection would swallow PostgreSQL's error and fall back to a SQLite file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbUrl {
    Postgres(String),
    Sqlite(String),
}

impl DbUrl {
    pub fn parse(url: &str) -> Result<DbUrl, String> {
        let url = url.trim();
        if url.is_empty() {
            return Err("is empty".into());
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DbUrl::Postgres(url.to_string()));
        }
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        if path.contains("://") {
            return Err(format!(
                "'{}' is neither a postgres:// URL nor a SQLite file path",
                redact(url)
            ));
        }
        if path == ":memory:" {
            return Err(
                ":memory: gives every pooled connection its own empty database; use a file path"
                    .into(),
            );
        }
        Ok(DbUrl::Sqlite(path.to_string()))
    }

    pub fn backend(&self) -> &'static str {
        match self {
            DbUrl::Postgres(_) => "PostgreSQL",
            DbUrl::Sqlite(_) => "SQLite",
        }
    }

    /// The URL with any password hidden, for logs and messages.
    pub fn display(&self) -> String {
        match self {
            DbUrl::Postgres(u) => redact(u),
            DbUrl::Sqlite(p) => p.clone(),
        }
    }
}

/// libpq's settings that find a PostgreSQL server gone without a word (its machine off, the
/// network cut): without them a connection waiting for an answer waits for the kernel, two
/// hours and more for an idle socket and some fifteen minutes for unacknowledged data, holding
/// its pooled connection and the thread (for a page read on the worker's thread, the worker)
/// all along. With them the kernel gives up after about a minute: keepalive probes after 30 s
/// of silence, every 10 s, 3 unanswered end it; data unacknowledged for 30 s ends it. A server
/// that is only slow still answers the probes, and is left to the statement timeout.
const DEAD_PEER_SETTINGS: &[(&str, &str)] = &[
    ("keepalives", "1"),
    ("keepalives_idle", "30"),
    ("keepalives_interval", "10"),
    ("keepalives_count", "3"),
    ("tcp_user_timeout", "30000"),
];

/// A `postgres://` URL with [`DEAD_PEER_SETTINGS`] added as query parameters, except those the
/// URL sets itself.
fn with_dead_peer_timeouts(url: &str) -> String {
    let (base, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let query = base.split_once('?').map(|(_, q)| q).unwrap_or("");
    let given: Vec<&str> = query
        .split('&')
        .filter_map(|pair| pair.split('=').next())
        .collect();
    let mut out = base.to_string();
    let mut separator = if base.contains('?') {
        if base.ends_with('?') || base.ends_with('&') {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    for (key, value) in DEAD_PEER_SETTINGS {
        if !given.contains(key) {
            out.push_str(&format!("{separator}{key}={value}"));
            separator = "&";
        }
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// What the pooled connections sent, shared by all of them: the SQL statements, counted as
/// each connection hands one to its database (`BEGIN`, `COMMIT`, `SAVEPOINT` and `RELEASE`
/// included; a batch sent in one call, like the SQLite pragmas, counts once). Statements sent
/// while a connection is being set up (those pragmas) are not counted.
#[derive(Debug, Default)]
pub struct SqlStats {
    statements: AtomicU64,
}

impl SqlStats {
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }
}

/// Watches one pooled connection (diesel's instrumentation): counts its statements in the
/// pool's [`SqlStats`], and remembers a statement that failed because the connection itself
/// is gone, so the pool drops it when it comes back instead of handing it out again. On
/// SQLite it also carries the pool's writer (see [`transaction`]).
struct ConnectionWatch {
    stats: Arc<SqlStats>,
    lost: bool,
    writer: Option<Arc<sqlite_writer::Writer>>,
    /// SQLite: its database's write turn (see [`transaction`]).
    turn: Option<Arc<sqlite_writer::WriteTurn>>,
}

impl Instrumentation for ConnectionWatch {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartQuery { .. } => {
                self.stats.statements.fetch_add(1, Ordering::Relaxed);
            }
            InstrumentationEvent::FinishQuery { error: Some(e), .. } if connection_lost(e) => {
                self.lost = true;
            }
            _ => {}
        }
    }
}

/// Messages of errors after which a PostgreSQL connection cannot serve again.
const CONNECTION_LOST_MESSAGES: &[&str] = &[
    "terminating connection",
    "the database system is shutting down",
    "server closed the connection unexpectedly",
    "no connection to the server",
];

fn connection_lost(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => true,
        Error::DatabaseError(_, info) => {
            let message = info.message();
            CONNECTION_LOST_MESSAGES.iter().any(|m| message.contains(m))
        }
        _ => false,
    }
}

fn watch(conn: &mut DbConn) -> Option<&mut ConnectionWatch> {
    let instrumentation = match conn {
        DbConn::Postgres(c) => c.instrumentation(),
        DbConn::Sqlite(c) => c.instrumentation(),
    };
    instrumentation.downcast_mut::<ConnectionWatch>()
}

/// The page cache of each SQLite connection, in KiB (`PRAGMA cache_size` takes it negated).
pub const SQLITE_CACHE_KIB: u32 = 500;

/// How many changed pages the pool's SQLite writer holds before it writes some to the log
/// ahead of the commit (`PRAGMA cache_spill`; see [`sqlite_writer_pragmas`]): about 16 MiB,
/// far above what one submission changes. A page is held only until its transaction ends.
/// Not a multiple of 256: SQLite also reads the number as whether to spill at all, by its low
/// byte (4,096 turned spilling off).
pub const SQLITE_WRITER_SPILL_PAGES: u32 = 4000;

/// What the pool's SQLite writer alone sets when it opens, for the transactions that write
/// many rows at once (a submission: the version's copy of the answers and what its triggers
/// keep for the results). The pooled connections, which read, keep SQLite's defaults: the
/// sorts and temporary tables of results over 100,000 organisations go to files, not to the
/// server's memory.
///
/// - Statement journals in memory (`temp_store = MEMORY`). Inside a transaction, a statement
///   that writes several rows journals the pages it changes so that it alone can be undone;
///   SQLite moves that journal to a temporary file past 64 KiB, and creating, writing and
///   deleting those files was 7 % of the server's CPU under whole responses (`perf`, nearly
///   all in submissions). In memory it costs what it holds while the statement runs: a bulk
///   rewrite holds more (`results::practices::keep_roles`' DELETE at 100,000 organisations,
///   about 14 MB), and so do temporary tables a write builds.
/// - Changed pages kept until the commit (`cache_spill`): past the cache's 125 pages SQLite
///   wrote changed pages to the log before the commit to make room (`pagerStress`, 4 % of the
///   server's CPU), and a page changed again was written again. Without it a whole response
///   took about 1 ms more of the server's CPU (12.0-13.0 ms against 11.0-12.1, four runs each,
///   alternated). It costs the rare bulk rewrite: `keep_roles`' at 100,000 organisations, run
///   when a definition's good-practice roles change as the server starts, takes 1.1 s instead
///   of 0.5 and up to 40 MB more memory while it runs.
fn sqlite_writer_pragmas() -> String {
    format!(" PRAGMA temp_store = MEMORY; PRAGMA cache_spill = {SQLITE_WRITER_SPILL_PAGES};")
}

/// The length of SQLite's write-ahead log, in pages, past which the pool's checkpoints start
/// it again from its beginning (16 MiB of 4 KiB pages; see [`sqlite_checkpoints`]).
pub const SQLITE_LOG_LIMIT_PAGES: i64 = 4096;

/// The size SQLite's connections cut its log file back to when it starts again from its
/// beginning (`PRAGMA journal_size_limit`), in bytes: twice [`SQLITE_LOG_LIMIT_PAGES`]. Below
/// it the file is kept and written over rather than emptied, so that a commit overwrites
/// blocks the file system has already allocated; a log that grew past it (a long read held the
/// checkpoints back) does not keep its length for good.
pub const SQLITE_LOG_KEPT_BYTES: i64 = 2 * SQLITE_LOG_LIMIT_PAGES * 4096;

/// How long a SQLite connection waits for another's lock (in `sqlite_busy`'s handler).
const SQLITE_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// SQLITE_BUSY's message (`sqlite3_errstr`), which is all diesel keeps of it.
const SQLITE_BUSY_MESSAGE: &str = "database is locked";

/// SQLITE_BUSY, which diesel reports by its message only.
fn is_sqlite_busy(e: &diesel::result::Error) -> bool {
    matches!(e, diesel::result::Error::DatabaseError(_, info) if info.message().contains(SQLITE_BUSY_MESSAGE))
}

pub struct Manager {
    url: DbUrl,
    /// PostgreSQL: how long one statement of a pooled connection may run (see [`connect_with`]).
    statement_timeout: Option<Duration>,
    stats: Arc<SqlStats>,
    /// SQLite: the connection the pool's write transactions run on.
    writer: Option<Arc<sqlite_writer::Writer>>,
    /// SQLite: whether this opens that writer, which sets its own pragmas (see
    /// [`sqlite_writer_pragmas`]).
    for_writer: bool,
    /// SQLite: the pool's checkpoints run on a thread of their own, as long as this lives;
    /// the connections opened here then leave them to it.
    checkpoints: Option<Arc<sqlite_checkpoints::Checkpoints>>,
}

impl Manager {
    /// SQLite: the write turn of the manager's file.
    fn turn(&self) -> Option<Arc<sqlite_writer::WriteTurn>> {
        match &self.url {
            DbUrl::Sqlite(path) => Some(sqlite_writer::turn_for(path)),
            DbUrl::Postgres(_) => None,
        }
    }

    fn open(&self) -> Result<DbConn, DbError> {
        match &self.url {
            DbUrl::Postgres(u) => {
                let connect_error =
                    |e: Box<dyn std::error::Error + Send + Sync>| DbError::Connect {
                        file: None,
                        source: e,
                    };
                let mut conn = diesel::PgConnection::establish(&with_dead_peer_timeouts(u))
                    .map_err(|e| connect_error(Box::new(e)))?;
                // No JIT compilation: PostgreSQL compiles a query whose estimated cost passes
                // `jit_above_cost`, and our results queries over 100,000 organisations pass it
                // by far. Compiling the dashboard's statement took 2.2 s of its 2.6 s (EXPLAIN
                // ANALYZE: inlining and optimisation), and it runs in 0.4 s without; no query
                // of ours runs long enough to repay it.
                conn.batch_execute("SET jit = off")
                    .map_err(|e| connect_error(Box::new(e)))?;
                Ok(DbConn::Postgres(conn))
            }
            DbUrl::Sqlite(path) => {
                // The connection waits for locks with the process's busy handler (see
                // `sqlite_busy`), from the moment it opens: the pragmas below also wait for a
                // lock held by another connection or process. WAL lets readers work during a
                // write.
                sqlite_busy::install();
                let mut conn =
                    diesel::SqliteConnection::establish(path).map_err(|e| DbError::Connect {
                        file: Some(path.clone()),
                        source: Box::new(e),
                    })?;
                //
                // No memory-mapped reads (SQLite's default): in WAL mode a connection unmaps
                // the whole file at the start of every transaction after another connection
                // wrote, so under saves each transaction paid a munmap and its page faults
                // again (6 % of a save's CPU in `perf`; 13 % more CPU per save measured), and
                // the mapping added 25 MiB to the server's peak resident memory under whole
                // responses (77 MiB, 50 without). Results over 100,000 organisations were no
                // slower without it.
                //
                // A page cache of 500 KiB per connection rather than SQLite's 2 MiB: in WAL mode
                // a connection empties its cache whenever another has written since its last
                // transaction, so under saves a reader's cache holds little more than the
                // current statement's pages, and the larger cache only let the server's peak
                // memory grow (whole responses, alternated on one machine: 40.2-41.2 MiB peak
                // RSS with 2 MiB, 37.7-38.2 with 500 KiB, no change in CPU per request beyond
                // the runs' noise).
                //
                // Putting a new file in WAL mode needs it alone: when connections do so at the
                // same moment (servers starting together on a new database), SQLite refuses all
                // but one at once ("database is locked") rather than let them wait for each
                // other in the busy handler. They try again, for as long as the busy timeout.
                //
                // A pool's connections do not copy the log into the file themselves when a
                // commit leaves it long (SQLite's automatic checkpoint): see
                // [`sqlite_checkpoints`]. Every connection keeps the log file's blocks for the
                // next commits when the log starts again, up to [`SQLITE_LOG_KEPT_BYTES`].
                let pragmas = format!(
                    "PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                     PRAGMA cache_size = -{SQLITE_CACHE_KIB}; \
                     PRAGMA journal_size_limit = {SQLITE_LOG_KEPT_BYTES};{}{}",
                    match self.checkpoints {
                        Some(_) => " PRAGMA wal_autocheckpoint = 0;",
                        None => "",
                    },
                    if self.for_writer {
                        sqlite_writer_pragmas()
                    } else {
                        String::new()
                    }
                );
                let patience = std::time::Instant::now() + SQLITE_BUSY_TIMEOUT;
                loop {
                    match conn.batch_execute(&pragmas) {
                        Ok(()) => break,
                        Err(e) if is_sqlite_busy(&e) && std::time::Instant::now() < patience => {
                            std::thread::sleep(std::time::Duration::from_millis(5));
                        }
                        Err(e) => {
                            return Err(DbError::Connect {
                                file: Some(path.clone()),
                                source: Box::new(e),
                            })
                        }
                    }
                }
                // Its write turn, for a connection opened apart from the pool (the pool's own
                // get theirs in `connect`, with the pool's counts).
                conn.set_instrumentation(ConnectionWatch {
                    stats: Arc::new(SqlStats::default()),
                    lost: false,
                    writer: None,
                    turn: self.turn(),
                });
                Ok(DbConn::Sqlite(conn))
            }
        }
    }
}

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = DbError;

    fn connect(&self) -> Result<DbConn, DbError> {
        let mut conn = self.open()?;
        // Only the pool's connections: migrations (on the first connection, opened apart) may
        // rewrite a large table, or wait for another server's, for as long as that takes.
        set_statement_timeout(&mut conn, self.statement_timeout).map_err(DbError::Query)?;
        if self.writer.is_some() {
            refuse_writes(&mut conn, true).map_err(DbError::Query)?;
        }
        let watch = ConnectionWatch {
            stats: self.stats.clone(),
            lost: false,
            writer: self.writer.clone(),
            // The turn `open` gave it (SQLite).
            turn: watch(&mut conn).and_then(|w| w.turn.take()),
        };
        match &mut conn {
            DbConn::Postgres(c) => c.set_instrumentation(watch),
            DbConn::Sqlite(c) => c.set_instrumentation(watch),
        }
        Ok(conn)
    }

    /// Run at every checkout, without sending a statement. A connection whose statement failed
    /// because the connection was lost is refused. PostgreSQL: libpq reads what the server
    /// sent while the connection sat in the pool, without waiting; a server that restarted, or
    /// that terminated the session, has sent its goodbye and closed the socket, which libpq
    /// reports as an error, and the pool opens a new connection instead. (A server that
    /// vanished without closing the socket is found by the first statement, which fails with
    /// the 503 page and marks the connection lost.) A SQLite connection to its file does not
    /// go away.
    fn is_valid(&self, conn: &mut DbConn) -> Result<(), DbError> {
        if watch(conn).is_some_and(|w| w.lost) {
            return Err(DbError::Query(
                diesel::result::Error::BrokenTransactionManager,
            ));
        }
        match conn {
            DbConn::Postgres(c) => {
                // The first read may bring the server's last message, the second its end.
                for _ in 0..2 {
                    if let Some(Err(e)) = c.notifications_iter().next() {
                        return Err(DbError::Query(e));
                    }
                }
                Ok(())
            }
            DbConn::Sqlite(_) => Ok(()),
        }
    }

    /// A connection left inside a transaction (its COMMIT or ROLLBACK failed), or whose
    /// statement failed because the connection was lost, is closed when given back.
    fn has_broken(&self, conn: &mut DbConn) -> bool {
        conn.is_broken() || watch(conn).is_some_and(|w| w.lost)
    }
}

/// How long a request waits for a pooled connection before it is told the service is
/// unavailable.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// What is left of [`CONNECTION_TIMEOUT`] for a request that asked for its blocking task at
/// `asked`: under load the task first waits for one of its worker's blocking threads (there are
/// as many as the pool has connections, see `startup`), and that wait counts too.
pub fn wait_left(asked: std::time::Instant) -> Duration {
    CONNECTION_TIMEOUT.saturating_sub(asked.elapsed())
}

/// PostgreSQL: the session's `statement_timeout` (None: no limit). Nothing on SQLite.
fn set_statement_timeout(conn: &mut DbConn, limit: Option<Duration>) -> QueryResult<()> {
    match conn {
        DbConn::Postgres(c) => c.batch_execute(&format!(
            "SET statement_timeout = {}",
            limit.map_or(0, |l| l.as_millis().max(1))
        )),
        DbConn::Sqlite(_) => Ok(()),
    }
}

/// SQLite: whether the connection refuses to write (`PRAGMA query_only`).
///
/// A pool's connections read; its writes go to the pool's writer, in the database's write turn
/// (see [`transaction`]). A write sent on a pooled connection instead took SQLite's lock behind
/// the turn's back, and the writer whose turn it was slept in the busy handler until it was
/// released: writes that did so (a new response, a link's first use, the outbox's marks) cost
/// about 80 sleeps a second under whole responses before they were found one by one with
/// `strace`. Refused, such a write fails at once and in the tests ("attempt to write a readonly
/// database"), and the pooled connections cannot slip back.
fn refuse_writes(conn: &mut DbConn, refuse: bool) -> QueryResult<()> {
    match conn {
        DbConn::Sqlite(c) => c.batch_execute(if refuse {
            "PRAGMA query_only = ON"
        } else {
            "PRAGMA query_only = OFF"
        }),
        DbConn::Postgres(_) => Ok(()),
    }
}

/// The connection pool, with the counts of what its connections sent.
#[derive(Clone)]
pub struct Pool {
    inner: r2d2::Pool<Manager>,
    stats: Arc<SqlStats>,
    url: DbUrl,
    statement_timeout: Option<Duration>,
    /// SQLite: the connection the pool's writes go to (see [`transaction`]).
    writer: Option<Arc<sqlite_writer::Writer>>,
}

impl std::ops::Deref for Pool {
    type Target = r2d2::Pool<Manager>;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl Pool {
    pub fn stats(&self) -> &SqlStats {
        &self.stats
    }

    /// Whether the pool has a writer, the connection its writes go to (SQLite; see
    /// [`transaction`]).
    pub fn has_writer(&self) -> bool {
        self.writer.is_some()
    }

    /// `f`, a brief work that reads what it then writes (a draft save: the link's look-up,
    /// then the section's write), in one write turn on SQLite's writer, without taking a
    /// pooled connection (only when the writer cannot be opened). It waits for the turn, and
    /// then for that connection, `timeout` in all, and then fails as SQLITE_BUSY does (a
    /// 503). On the writer its reads find the pages in the writer's cache, which no other
    /// connection's commit empties, where a pooled connection reads them back from the file
    /// after every commit. Everything `f` does holds up the process's other writes, so it
    /// must be brief and bounded: no file checked, no email rendered. Without a writer
    /// (PostgreSQL), on a pooled connection.
    ///
    /// Not for a thread already writing (it holds the turn and the writer): `f` then gets a
    /// pooled connection, which refuses to write.
    pub fn in_write_turn<T, E: From<DbError>>(
        &self,
        timeout: Duration,
        f: impl FnOnce(&mut DbConn) -> Result<T, E>,
    ) -> Result<T, E> {
        // What is left of `timeout` once the turn was waited for.
        let asked = std::time::Instant::now();
        let pooled = || {
            let left = timeout.saturating_sub(asked.elapsed());
            self.inner.get_timeout(left).map_err(DbError::from)
        };
        let Some(writer) = &self.writer else {
            return f(&mut *pooled()?);
        };
        sqlite_writer::in_turn(writer.turn(), timeout, |nested| {
            let f = match nested {
                false => match writer.run_or_give_back(f) {
                    Ok(done) => return done,
                    Err(f) => f,
                },
                true => return f(&mut *pooled()?),
            };
            sqlite_writer::on_pooled(&mut *pooled()?, f)
        })
        .map_err(|taken| DbError::Query(taken.into()))?
    }

    /// A connection of its own, outside the pool and not counted in [`Pool::stats`]: for a
    /// background task, which then neither takes a connection from requests nor blurs the
    /// statements counted per request.
    pub fn open_apart(&self) -> Result<DbConn, DbError> {
        Manager {
            url: self.url.clone(),
            statement_timeout: self.statement_timeout,
            stats: Arc::new(SqlStats::default()),
            writer: None,
            for_writer: false,
            checkpoints: None,
        }
        .open()
    }

    /// `f` on a pooled connection without the pool's statement timeout, for work that is not
    /// a request's and grows with the database: the server's start (a definition's changes
    /// applied to every stored answer, the compendium's listings computed again for every
    /// version: 2.3 s at 100,000 organisations on PostgreSQL) must not fail on a large one.
    /// The timeout is set again when `f` returns; a connection where that fails is closed
    /// rather than given back without it.
    pub fn without_statement_timeout<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&mut DbConn) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = self.inner.get().map_err(DbError::from)?;
        set_statement_timeout(&mut conn, None).map_err(DbError::Query)?;
        let done = f(&mut conn);
        if set_statement_timeout(&mut conn, self.statement_timeout).is_err() {
            if let Some(w) = watch(&mut conn) {
                w.lost = true;
            }
        }
        done
    }

    /// A connection (waiting up to `timeout`), with what `first`, its first work, returned.
    /// The check at checkout sends no statement, so it cannot see a session the server is
    /// ending at that very moment (a restart, a terminated backend): when `first` failed
    /// because the connection was lost, it runs again on another connection, as many times
    /// as the pool has connections.
    pub fn get_then<T, E: From<DbError>>(
        &self,
        timeout: Duration,
        mut first: impl FnMut(&mut DbConn) -> Result<T, E>,
    ) -> Result<(PooledConn, T), E> {
        let mut tries = self.inner.max_size();
        loop {
            let mut conn = self.inner.get_timeout(timeout).map_err(DbError::from)?;
            match first(&mut conn) {
                Ok(v) => return Ok((conn, v)),
                Err(_) if tries > 0 && watch(&mut conn).is_some_and(|w| w.lost) => tries -= 1,
                Err(e) => return Err(e),
            }
        }
    }
}

pub type PooledConn = r2d2::PooledConnection<Manager>;

/// How long one statement of a pooled PostgreSQL connection may run, waits for locks
/// included, unless `COHERENCE_STATEMENT_TIMEOUT_SECS` says otherwise. The slowest statement a
/// request sends, the Markdown download's over 100,000 organisations, takes 0.3 s (benches/):
/// a statement still running after 100 times that is stuck behind a lock (a migration rewriting
/// a table on another server, a session someone left open in psql) or a server in trouble, and
/// holds a pooled connection (and, for a page read on the worker's thread, that worker with
/// every request on it) for as long as it runs. Cancelled, the request gets the "briefly
/// unavailable" page and its connection serves again. Work that grows with the database and is
/// no request's runs without it ([`Pool::without_statement_timeout`], maintenance commands).
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// A pool of `size` connections, with [`STATEMENT_TIMEOUT`].
pub fn connect(url: &DbUrl, size: u32) -> Result<Pool, DbError> {
    connect_with(url, size, Some(STATEMENT_TIMEOUT))
}

/// A pool of `size` connections to `url`, after applying the pending migrations. PostgreSQL:
/// each pooled connection cancels a statement that runs longer than `statement_timeout`, if
/// given (SQLSTATE 57014, which [`DbError::is_unavailable`] counts as unavailable); the first
/// connection, which applies the migrations, has no limit.
pub fn connect_with(
    url: &DbUrl,
    size: u32,
    statement_timeout: Option<Duration>,
) -> Result<Pool, DbError> {
    let stats = Arc::new(SqlStats::default());
    let (writer, checkpoints) = match url {
        DbUrl::Sqlite(path) => {
            let checkpoints = sqlite_checkpoints::Checkpoints::start(Manager {
                url: url.clone(),
                statement_timeout,
                stats: Arc::new(SqlStats::default()),
                writer: None,
                for_writer: false,
                checkpoints: None,
            })?;
            let opener = Manager {
                url: url.clone(),
                statement_timeout,
                stats: stats.clone(),
                writer: None,
                for_writer: true,
                checkpoints: Some(checkpoints.clone()),
            };
            let writer = sqlite_writer::Writer::new(opener, sqlite_writer::turn_for(path));
            (Some(Arc::new(writer)), Some(checkpoints))
        }
        DbUrl::Postgres(_) => (None, None),
    };
    let writer_of_pool = writer.clone();
    let manager = Manager {
        url: url.clone(),
        statement_timeout,
        stats: stats.clone(),
        writer,
        for_writer: false,
        checkpoints,
    };
    // Try once directly so the real reason (wrong password, missing directory) is reported.
    let mut first = manager.open()?;
    run_migrations(&mut first)?;
    drop(first);
    // Every checkout checks its connection (`is_valid`, no statement sent), so connections
    // that died with a PostgreSQL restart are dropped and replaced without restarting the
    // service. A request that cannot get a connection within 5 s gets the "briefly
    // unavailable" page (503) rather than holding the browser, and a blocking thread, for
    // longer.
    let inner = r2d2::Pool::builder()
        .max_size(size)
        .test_on_check_out(true)
        .connection_timeout(CONNECTION_TIMEOUT)
        .build(manager)
        .map_err(DbError::Pool)?;
    Ok(Pool {
        inner,
        stats,
        url: url.clone(),
        statement_timeout,
        writer: writer_of_pool,
    })
}

/// Key of the PostgreSQL advisory lock held while migrations run ("coherenc" in ASCII).
/// Advisory lock keys are per database: nothing else in Coherence's database may use it.
pub const MIGRATION_LOCK_KEY: i64 = 0x636f_6865_7265_6e63;

diesel::define_sql_function! {
    /// PostgreSQL: take a session-level advisory lock if it is free, without waiting.
    fn pg_try_advisory_lock(key: diesel::sql_types::BigInt) -> diesel::sql_types::Bool;
}

diesel::define_sql_function! {
    /// PostgreSQL: release a session-level advisory lock taken by this session.
    fn pg_advisory_unlock(key: diesel::sql_types::BigInt) -> diesel::sql_types::Bool;
}

/// Apply the pending migrations, one process at a time.
///
/// Several servers (or a server and `coherence migrate`) may start together on one database.
/// Without a lock each reads the same list of pending migrations, and all but the first fail
/// part-way ("relation already exists", "duplicate column name"); each migration's own
/// transaction keeps the database consistent, but those servers do not start.
///
/// PostgreSQL: a session-level advisory lock on this connection, released on success and on
/// error (and by PostgreSQL itself should the session end). SQLite: an exclusive lock on a
/// file next to the database, `<file>.migrations-lock`. One `BEGIN IMMEDIATE` around all the
/// migrations cannot serve: diesel runs each in its own transaction, and migration 4 runs
/// outside any (it opens its own, after turning foreign keys off, which SQLite ignores inside
/// a transaction). Whoever waited then finds nothing pending.
pub fn run_migrations(conn: &mut DbConn) -> Result<Vec<String>, DbError> {
    let versions = |v: Vec<diesel::migration::MigrationVersion>| -> Vec<String> {
        v.iter().map(|m| m.to_string()).collect()
    };
    let failed = DbError::Migration;
    match conn {
        DbConn::Postgres(c) => with_pg_migration_lock(c, |c| {
            c.run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(versions)
                .map_err(failed)
        }),
        DbConn::Sqlite(c) => {
            let _lock = sqlite_migration_lock(c)?;
            c.run_pending_migrations(SQLITE_MIGRATIONS)
                .map(versions)
                .map_err(failed)
        }
    }
}

fn with_pg_migration_lock<T>(
    conn: &mut diesel::PgConnection,
    f: impl FnOnce(&mut diesel::PgConnection) -> Result<T, DbError>,
) -> Result<T, DbError> {
    let lock_error = DbError::MigrationLock;
    let free = diesel::select(pg_try_advisory_lock(MIGRATION_LOCK_KEY))
        .get_result::<bool>(conn)
        .map_err(lock_error)?;
    if !free {
        tracing::info!("another instance is applying migrations; waiting for it to finish");
        diesel::sql_query("SELECT pg_advisory_lock($1)")
            .bind::<diesel::sql_types::BigInt, _>(MIGRATION_LOCK_KEY)
            .execute(conn)
            .map_err(lock_error)?;
    }
    let result = f(conn);
    // Released on success and on error alike. Should the unlock itself fail, the session is
    // broken and PostgreSQL drops its locks with it: report the migrations' own outcome first.
    let unlocked = diesel::select(pg_advisory_unlock(MIGRATION_LOCK_KEY)).get_result::<bool>(conn);
    match (result, unlocked) {
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(lock_error(e)),
        (Ok(_), Ok(false)) => Err(DbError::MigrationLockLost),
        (Ok(v), Ok(true)) => Ok(v),
    }
}

/// Inside a transaction that loads reference data at start (the country list): wait for any
/// other server doing the same. On a brand-new PostgreSQL database two servers starting
/// together would both find a country missing and insert it, and the second fails on the
/// primary key; a transaction-level advisory lock (released at commit or rollback) makes the
/// second one wait and then find every row. SQLite needs nothing: the transaction's first
/// write already waits for the database's write lock.
pub fn lock_for_startup(conn: &mut DbConn) -> QueryResult<()> {
    match conn {
        DbConn::Postgres(c) => diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<diesel::sql_types::BigInt, _>(MIGRATION_LOCK_KEY)
            .execute(c)
            .map(|_| ()),
        DbConn::Sqlite(_) => Ok(()),
    }
}

#[derive(diesel::QueryableByName)]
struct DatabaseFile {
    #[diesel(sql_type = diesel::sql_types::Text)]
    file: String,
}

/// An exclusive lock on `<database file>.migrations-lock`, held until the value is dropped.
/// A separate file, because opening and closing another handle on the database file itself
/// would drop SQLite's own POSIX locks on it. None for a database without a file.
fn sqlite_migration_lock(
    conn: &mut diesel::SqliteConnection,
) -> Result<Option<std::fs::File>, DbError> {
    let main: DatabaseFile =
        diesel::sql_query("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .get_result(conn)
            .map_err(DbError::MigrationLock)?;
    if main.file.is_empty() {
        return Ok(None);
    }
    let path = format!("{}.migrations-lock", main.file);
    let lock_error = |source| DbError::MigrationLockFile {
        file: path.clone(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(lock_error)?;
    if file.try_lock().is_err() {
        tracing::info!("another process is applying migrations; waiting for it to finish");
        file.lock().map_err(lock_error)?;
    }
    Ok(Some(file))
}

/// Revert every migration (used by tests to prove each down.sql undoes its up.sql).
pub fn revert_all_migrations(conn: &mut DbConn) -> Result<(), DbError> {
    match conn {
        DbConn::Postgres(c) => c.revert_all_migrations(POSTGRES_MIGRATIONS).map(|_| ()),
        DbConn::Sqlite(c) => c.revert_all_migrations(SQLITE_MIGRATIONS).map(|_| ()),
    }
    .map_err(DbError::Migration)
}

/// Revert the newest migration (used by tests to prove a migration keeps existing rows).
pub fn revert_last_migration(conn: &mut DbConn) -> Result<String, DbError> {
    match conn {
        DbConn::Postgres(c) => c.revert_last_migration(POSTGRES_MIGRATIONS),
        DbConn::Sqlite(c) => c.revert_last_migration(SQLITE_MIGRATIONS),
    }
    .map(|v| v.to_string())
    .map_err(DbError::Migration)
}

/// A failed query, as the table modules report it.
pub use diesel::result::Error as QueryError;

/// Whether a write failed because a row with the same key exists (another request or node
/// wrote it first).
pub fn is_unique_violation(e: &QueryError) -> bool {
    matches!(
        e,
        QueryError::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

/// Run `f` in a transaction: committed if it returns Ok, rolled back otherwise.
///
/// On SQLite the process's write transactions to one database take turns on a lock of their
/// own first, the database's write turn: a writer waiting for SQLite's lock sleeps in its busy
/// handler in millisecond steps, where a writer waiting here wakes as soon as the previous one
/// commits. A transaction nested in another (on this thread) is already in turn.
///
/// And they run on one connection of the pool's, its writer, rather than on `conn`: in WAL
/// mode a connection forgets every page it had read as soon as another connection has written,
/// so write transactions spread over the pooled connections each started by reading the
/// tables' pages again from the file (8 % of a draft save's CPU in `perf`). The writer, the
/// only one writing, keeps them; the pooled connections refuse to write ([`refuse_writes`]).
/// `f` gets the writer; `conn` is used as it is when it is already inside a transaction (the
/// writer, in a transaction nested in another; a transaction started directly on a pooled
/// connection only reads, and a write nested in it is refused), or, allowed to write for the
/// time, when the writer cannot be opened.
pub fn transaction<T, E: From<QueryError>>(
    conn: &mut DbConn,
    f: impl FnOnce(&mut DbConn) -> Result<T, E>,
) -> Result<T, E> {
    in_write_turn(conn, |conn| conn.transaction(f))
}

/// Run `f`, a write of one statement (reads around it are fine), without a transaction: one
/// statement is atomic on its own, and BEGIN and COMMIT would double what is sent. The table
/// modules' write functions run in it whether or not their caller opened a transaction: nested,
/// it sends nothing more, and alone their write reaches the writer. On SQLite it
/// runs as [`transaction`]'s do, in the write turn and on the pool's writer, so that it neither
/// waits in SQLite's busy handler nor empties the page caches of the pooled connections; inside
/// a transaction, on `conn` as it is.
pub fn write_statement<T, E: From<QueryError>>(
    conn: &mut DbConn,
    f: impl FnOnce(&mut DbConn) -> Result<T, E>,
) -> Result<T, E> {
    in_write_turn(conn, f)
}

/// A write `f`: on SQLite with the write turn held and on the pool's writer (see
/// [`transaction`]), or on `conn` as it is when `conn` is already inside a transaction or this
/// thread already holds the turn; on PostgreSQL on `conn`.
///
/// The turn is waited for as long as SQLite waits for its lock ([`SQLITE_BUSY_TIMEOUT`]), and
/// then the write fails as SQLITE_BUSY does.
fn in_write_turn<T, E: From<QueryError>>(
    conn: &mut DbConn,
    f: impl FnOnce(&mut DbConn) -> Result<T, E>,
) -> Result<T, E> {
    let DbConn::Sqlite(sqlite) = conn else {
        return f(conn);
    };
    let in_transaction = sqlite_writer::in_transaction(sqlite);
    // A connection not opened by a `Manager` has no turn: SQLite's lock alone orders its
    // writes, as it does another process's.
    let Some((turn, writer)) = watch(conn).and_then(|w| {
        let writer = w.writer.clone().filter(|_| !in_transaction);
        Some((w.turn.clone()?, writer))
    }) else {
        return f(conn);
    };
    sqlite_writer::in_turn(&turn, SQLITE_BUSY_TIMEOUT, |nested| match writer {
        Some(writer) if !nested => writer.run(conn, f),
        _ => f(conn),
    })
    .map_err(QueryError::from)?
}

mod sqlite_writer {
    use std::cell::RefCell;
    use std::sync::{Arc, Condvar, Mutex, Weak};
    use std::time::Duration;

    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    use diesel::r2d2::{ManageConnection, R2D2Connection};

    use super::{refuse_writes, watch, DbConn, Manager, SQLITE_BUSY_MESSAGE};

    /// A database's write turn, one per SQLite file in the process ([`turn_for`]): whether a
    /// thread holds it, and the threads waiting for it. A flag under a mutex rather than a
    /// mutex held for the whole write, so that a waiter can give up after a while
    /// (`Condvar::wait_timeout_while`), which `std`'s mutex cannot. As with a mutex, the turn
    /// goes to whoever asks first once it is free, a writer already running rather than a
    /// waiter still waking (a fair hand-over, one waiter after another, was measured slower:
    /// benches/README.md, thirty-fifth slice).
    pub(crate) struct WriteTurn {
        held: Mutex<bool>,
        freed: Condvar,
    }

    /// The write turn of the SQLite file at `path`, shared by every connection of the process
    /// opened to it (the pool's, its writer, the workers' apart). One turn per file, not one
    /// for the process: a process with several databases (the integration tests' servers, each
    /// on its own file) would otherwise have one database's writes wait for another's, and
    /// now give up after their patience.
    pub(crate) fn turn_for(path: &str) -> Arc<WriteTurn> {
        static TURNS: Mutex<Vec<(String, Weak<WriteTurn>)>> = Mutex::new(Vec::new());
        // Held for no work of anyone's: never poisoned.
        let mut turns = TURNS.lock().unwrap_or_else(|e| e.into_inner());
        turns.retain(|(_, turn)| turn.strong_count() > 0);
        if let Some(turn) = turns
            .iter()
            .find(|(of, _)| of == path)
            .and_then(|(_, turn)| turn.upgrade())
        {
            return turn;
        }
        let turn = Arc::new(WriteTurn {
            held: Mutex::new(false),
            freed: Condvar::new(),
        });
        turns.push((path.to_string(), Arc::downgrade(&turn)));
        turn
    }

    /// The turn, held until this goes.
    struct Holding<'a>(&'a WriteTurn);

    impl WriteTurn {
        fn take(&self, patience: Duration) -> Result<Holding<'_>, TurnTaken> {
            // The flag's mutex is held for no work of anyone's: never poisoned.
            let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            let (mut held, _) = self
                .freed
                .wait_timeout_while(held, patience, |held| *held)
                .unwrap_or_else(|e| e.into_inner());
            if *held {
                return Err(TurnTaken(patience));
            }
            *held = true;
            Ok(Holding(self))
        }

        /// What identifies the turn in [`HOLDING`].
        fn id(&self) -> usize {
            self as *const WriteTurn as usize
        }
    }

    impl Drop for Holding<'_> {
        /// Also when the writer panicked: SQLite rolled back whatever it left half-done.
        fn drop(&mut self) {
            *self.0.held.lock().unwrap_or_else(|e| e.into_inner()) = false;
            // A waiter woken here that finds the turn taken again waits on; the one who took
            // it wakes the next when it is done.
            self.0.freed.notify_one();
        }
    }

    thread_local! {
        /// The turns this thread holds (their [`WriteTurn::id`]s), usually none or one.
        static HOLDING: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    }

    /// The write turn was not free within the patience given (see [`in_turn`]).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) struct TurnTaken(pub Duration);

    impl From<TurnTaken> for diesel::result::Error {
        /// As SQLite's own SQLITE_BUSY after its busy timeout (the turn stands in front of
        /// SQLite's lock), so that it reaches the user as the same 503 (`is_unavailable`).
        fn from(TurnTaken(patience): TurnTaken) -> Self {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::Unknown,
                Box::new(format!(
                    "{SQLITE_BUSY_MESSAGE}: the database's write turn was not free within {} ms",
                    patience.as_millis()
                )),
            )
        }
    }

    /// Run `f` holding `turn`, its database's write turn, waiting for it at most `patience`:
    /// a write held up for longer (behind a long import, or a write stuck on the disk)
    /// fails as one would in SQLite's busy handler, rather than keeping its request and a
    /// blocking thread for as long as the turn is held. `f` is told whether this thread
    /// already held it (a nested transaction, which does not wait).
    pub(super) fn in_turn<T>(
        turn: &WriteTurn,
        patience: Duration,
        f: impl FnOnce(bool) -> T,
    ) -> Result<T, TurnTaken> {
        let id = turn.id();
        if HOLDING.with(|h| h.borrow().contains(&id)) {
            return Ok(f(true));
        }
        let _turn = turn.take(patience)?;
        HOLDING.with(|h| h.borrow_mut().push(id));
        // Dropped before `_turn`: the thread no longer counts as holding it once it is free.
        struct Release(usize);
        impl Drop for Release {
            fn drop(&mut self) {
                HOLDING.with(|h| h.borrow_mut().retain(|held| *held != self.0));
            }
        }
        let _release = Release(id);
        Ok(f(false))
    }

    /// Whether a transaction is open on the connection.
    pub(super) fn in_transaction(conn: &mut diesel::SqliteConnection) -> bool {
        AnsiTransactionManager::transaction_manager_status_mut(conn)
            .transaction_depth()
            .map_or(true, |depth| depth.is_some())
    }

    /// A pool's connection for write transactions, opened at the first one.
    pub(crate) struct Writer {
        opener: Manager,
        conn: Mutex<Option<DbConn>>,
        /// Its database's write turn.
        turn: Arc<WriteTurn>,
    }

    impl Writer {
        pub(super) fn new(opener: Manager, turn: Arc<WriteTurn>) -> Writer {
            Writer {
                opener,
                conn: Mutex::new(None),
                turn,
            }
        }

        pub(super) fn turn(&self) -> &WriteTurn {
            &self.turn
        }

        /// `f` on the writer (on `fallback` if the writer cannot be opened). Called in turn,
        /// so the lock here is never waited for.
        pub(super) fn run<T>(&self, fallback: &mut DbConn, f: impl FnOnce(&mut DbConn) -> T) -> T {
            match self.run_or_give_back(f) {
                Ok(done) => done,
                Err(f) => on_pooled(fallback, f),
            }
        }

        /// `f` on the writer, or `f` given back when the writer cannot be opened. Called in
        /// turn, as [`Writer::run`].
        pub(super) fn run_or_give_back<T, F: FnOnce(&mut DbConn) -> T>(
            &self,
            f: F,
        ) -> Result<T, F> {
            let mut slot = Slot(self.conn.lock().unwrap_or_else(|e| e.into_inner()));
            let writer = match &mut *slot.0 {
                Some(writer) => writer,
                empty => match self.opener.connect() {
                    Ok(conn) => empty.insert(conn),
                    Err(e) => {
                        tracing::warn!("SQLite writer connection: {e}; writing on the pooled one");
                        return Err(f);
                    }
                },
            };
            Ok(f(writer))
        }
    }

    /// `f` on a pooled connection allowed to write while it runs (see [`refuse_writes`]).
    /// Should it not refuse writes again afterwards, it is closed rather than given back.
    pub(super) fn on_pooled<T>(conn: &mut DbConn, f: impl FnOnce(&mut DbConn) -> T) -> T {
        if let Err(e) = refuse_writes(conn, false) {
            tracing::warn!("SQLite pooled connection: {e}");
        }
        // Refusing again even when `f` panics: the connection goes back to the pool.
        struct RefuseAgain<'a>(&'a mut DbConn);
        impl Drop for RefuseAgain<'_> {
            fn drop(&mut self) {
                if refuse_writes(self.0, true).is_err() {
                    if let Some(w) = watch(self.0) {
                        w.lost = true;
                    }
                }
            }
        }
        let guard = RefuseAgain(conn);
        f(guard.0)
    }

    /// The writer while a transaction runs on it. A writer left inside a transaction (its
    /// ROLLBACK failed, or `f` panicked and diesel's transaction never ended) is closed when
    /// this goes, which rolls the transaction back and releases SQLite's write lock; the next
    /// write opens a new writer. Kept, it would hold the lock for good, and nest every later
    /// transaction in the one never committed.
    struct Slot<'a>(std::sync::MutexGuard<'a, Option<DbConn>>);

    impl Drop for Slot<'_> {
        fn drop(&mut self) {
            if self.0.as_mut().is_some_and(|writer| writer.is_broken()) {
                *self.0 = None;
            }
        }
    }
}

/// SQLite's checkpoints, run apart from the requests.
///
/// In WAL mode a commit appends the pages it changed to the log, and a checkpoint copies them
/// back into the database file. By default the connection whose commit leaves the log over
/// 1,000 pages does it there and then: under the whole-response load that was 8 % of the
/// server's CPU, inside the commits of saves and submissions and so while holding the write
/// turn every other write waits for ([`transaction`]). A pool's connections leave it instead
/// to a thread of the pool's, which checkpoints on its own connection every
/// [`INTERVAL`](sqlite_checkpoints::INTERVAL) when something was written: writers go on while
/// it copies, and a page changed many times in an interval (a section's state, a question's
/// counts) is copied once.
///
/// The checkpoint is SQLite's PASSIVE one, the automatic one's kind: it copies what no reader
/// still needs and waits for nobody. Connections opened apart from the pool (the mail and
/// audit workers') keep the automatic checkpoint.
///
/// A passive checkpoint never starts the log again from its beginning: SQLite does that at
/// the start of a write only when every page in the log has been copied, and under writes
/// that keep coming (a whole round's saves, an import, the results benchmark's generator)
/// another commit has always appended pages by the time a checkpoint ends. The log then grew
/// for as long as the writes went on (17 GB while the results benchmark wrote 100,000
/// organisations into a 750 MB database), and with it the index of the log that every
/// connection maps and searches. Once the log passes
/// [`SQLITE_LOG_LIMIT_PAGES`], the thread runs a RESTART
/// checkpoint instead: it takes the database's write turn, and SQLite's, for as long as it
/// copies what the passive one left (one interval's pages at most) and the readers of the log
/// finish, so that the next commit writes the log from its beginning again.
///
/// RESTART rather than TRUNCATE, which also empties the file: every commit after a TRUNCATE
/// appended to the file, and the file system allocated and zeroed its blocks anew (ext4's
/// delayed allocation in `pwrite`, and the truncation itself, were 8 % of a draft save's CPU
/// in `perf`). The file is cut back to [`SQLITE_LOG_KEPT_BYTES`] only when it grew past that.
mod sqlite_checkpoints {
    use std::sync::mpsc::{self, RecvTimeoutError};
    use std::sync::Arc;
    use std::time::Duration;

    use diesel::connection::SimpleConnection;

    use super::sqlite_writer::{in_turn, WriteTurn};
    use super::{DbConn, DbError, Manager, SQLITE_BUSY_TIMEOUT, SQLITE_LOG_LIMIT_PAGES};

    /// How often the log is copied into the file while something is written. SQLite's own
    /// threshold, 1,000 pages, is 30-100 ms of saves at full load on the 2-core machine.
    pub(super) const INTERVAL: Duration = Duration::from_millis(250);

    /// Held by the pool's connection manager; the thread ends as the last one goes (the
    /// channel it waits on closes).
    pub(crate) struct Checkpoints {
        _running: mpsc::Sender<()>,
    }

    impl Checkpoints {
        /// Open the thread's connection and start it. An error opening it is the pool's.
        pub(super) fn start(opener: Manager) -> Result<Arc<Checkpoints>, DbError> {
            let mut conn = opener.open()?;
            let turn = opener.turn();
            let (running, stopped) = mpsc::channel();
            std::thread::Builder::new()
                .name("sqlite-checkpoints".into())
                .spawn(move || run(&mut conn, turn.as_deref(), &stopped))
                .map_err(|e| DbError::Connect {
                    file: None,
                    source: Box::new(e),
                })?;
            Ok(Arc::new(Checkpoints { _running: running }))
        }
    }

    /// How long the RESTART checkpoint waits for SQLite's writers and for the log's readers.
    /// It holds the write turn while it waits for the readers: a long read (an export) would
    /// otherwise hold every save back for the whole busy timeout. One that cannot finish in
    /// time gives up and is tried again an interval later.
    const RESTART_PATIENCE_MS: u64 = 100;

    fn run(conn: &mut DbConn, turn: Option<&WriteTurn>, stopped: &mpsc::Receiver<()>) {
        if let Err(e) = conn.batch_execute(&format!("PRAGMA busy_timeout = {RESTART_PATIENCE_MS}"))
        {
            tracing::warn!("SQLite checkpoints: {e}");
        }
        let mut seen = data_version(conn);
        // The last failure logged: one that lasts (a full disk) is logged once, not four
        // times a second.
        let mut failing: Option<String> = None;
        while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
            // Another connection's commit changes the data version this one sees: nothing
            // to copy otherwise.
            let now = data_version(conn);
            if now.is_some() && now == seen {
                continue;
            }
            seen = now;
            let checkpointed = checkpoint(conn, "PASSIVE").and_then(|passive| {
                if passive.log < SQLITE_LOG_LIMIT_PAGES {
                    return Ok(());
                }
                // In the database's write turn: SQLite's own lock goes to whoever asks at the
                // right moment, and writes back to back left the checkpoint none (the log grew
                // to four times the limit in `storage::sqlite_log_starts_again_under_writes_that_
                // never_pause`); the turn queues it with them.
                let restart = |conn: &mut DbConn| checkpoint(conn, "RESTART").map(|_| ());
                match turn {
                    Some(turn) => in_turn(turn, SQLITE_BUSY_TIMEOUT, |_| restart(conn))
                        .map_err(diesel::result::Error::from)
                        .and_then(|restarted| restarted),
                    None => restart(conn),
                }
            });
            match checkpointed {
                Ok(()) => {
                    if failing.take().is_some() {
                        tracing::info!("SQLite checkpoints work again");
                    }
                }
                Err(e) => {
                    let message = e.to_string();
                    if failing.as_ref() != Some(&message) {
                        tracing::warn!("SQLite checkpoint: {message}");
                        failing = Some(message);
                    }
                }
            }
        }
    }

    /// What `PRAGMA wal_checkpoint` reports: the pages in the log (-1 when it is not in WAL
    /// mode).
    #[derive(diesel::QueryableByName)]
    struct Checkpointed {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        log: i64,
    }

    fn checkpoint(conn: &mut DbConn, mode: &str) -> Result<Checkpointed, diesel::result::Error> {
        use diesel::RunQueryDsl;
        diesel::sql_query(format!("PRAGMA wal_checkpoint({mode})")).get_result(conn)
    }

    #[derive(diesel::QueryableByName)]
    struct DataVersion {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        data_version: i64,
    }

    fn data_version(conn: &mut DbConn) -> Option<i64> {
        use diesel::RunQueryDsl;
        diesel::sql_query("PRAGMA data_version")
            .get_result::<DataVersion>(conn)
            .map(|v| v.data_version)
            .ok()
    }
}

/// Whether the database answers.
pub fn ping(conn: &mut DbConn) -> QueryResult<()> {
    diesel::sql_query("SELECT 1").execute(conn).map(|_| ())
}

/// A fresh random id for a row: 128 bits as hex.
pub fn new_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_route_by_scheme() {
        assert!(matches!(
            DbUrl::parse("postgres://u:p@h/db"),
            Ok(DbUrl::Postgres(_))
        ));
        assert_eq!(
            DbUrl::parse("sqlite://x.db"),
            Ok(DbUrl::Sqlite("x.db".into()))
        );
        assert_eq!(DbUrl::parse("./c.db"), Ok(DbUrl::Sqlite("./c.db".into())));
        assert!(DbUrl::parse("mysql://h/db").is_err());
        assert!(DbUrl::parse("").is_err());
        assert_eq!(
            DbUrl::parse("postgres://u:secret@h/db").unwrap().display(),
            "postgres://u:***@h/db"
        );
    }

    /// Connections opened at the same moment on a brand-new file (servers starting together)
    /// all open: putting the file in WAL mode needs it alone, and SQLite refuses the second
    /// such request at once, without waiting in its busy handler.
    #[test]
    fn postgres_urls_get_the_dead_peer_settings_they_do_not_set_themselves() {
        let all = "keepalives=1&keepalives_idle=30&keepalives_interval=10&keepalives_count=3\
                   &tcp_user_timeout=30000";
        assert_eq!(
            with_dead_peer_timeouts("postgres://u:p@h:5432/db"),
            format!("postgres://u:p@h:5432/db?{all}")
        );
        assert_eq!(
            with_dead_peer_timeouts("postgres://u@/db?host=/var/run/postgresql"),
            format!("postgres://u@/db?host=/var/run/postgresql&{all}")
        );
        assert_eq!(
            with_dead_peer_timeouts("postgres://u@h/db?"),
            format!("postgres://u@h/db?{all}")
        );
        assert_eq!(
            with_dead_peer_timeouts("postgres://u@h/db?keepalives_idle=5&tcp_user_timeout=0"),
            "postgres://u@h/db?keepalives_idle=5&tcp_user_timeout=0&keepalives=1\
             &keepalives_interval=10&keepalives_count=3"
        );
    }

    #[test]
    fn connections_opened_together_on_a_new_file_all_open() {
        use std::sync::{Arc, Barrier};
        const TOGETHER: usize = 8;
        for round in 0..20 {
            let dir = std::env::temp_dir().join(format!("coherence-open-{}", new_id()));
            std::fs::create_dir_all(&dir).unwrap();
            let url = DbUrl::Sqlite(dir.join("new.db").display().to_string());
            let barrier = Arc::new(Barrier::new(TOGETHER));
            let opened: Vec<Result<(), String>> = (0..TOGETHER)
                .map(|_| {
                    let manager = Manager {
                        url: url.clone(),
                        statement_timeout: Some(STATEMENT_TIMEOUT),
                        stats: Arc::new(SqlStats::default()),
                        writer: None,
                        for_writer: false,
                        checkpoints: None,
                    };
                    let barrier = barrier.clone();
                    std::thread::spawn(move || {
                        barrier.wait();
                        manager.open().map(drop).map_err(|e| e.to_string())
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().expect("no panic"))
                .collect();
            let _ = std::fs::remove_dir_all(&dir);
            for o in opened {
                assert!(o.is_ok(), "round {round}: {o:?}");
            }
        }
    }

    /// A fresh SQLite database in a directory of its own (removed when the guard is dropped),
    /// its pool of `size` connections, and an empty `scratch` table.
    pub(super) fn scratch_database(size: u32) -> (tempfile::TempDir, Pool) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("scratch.db");
        let pool = connect(&DbUrl::Sqlite(file.display().to_string()), size).unwrap();
        write_statement(&mut pool.get().unwrap(), |c| {
            diesel::sql_query("CREATE TABLE scratch (n INTEGER)").execute(c)
        })
        .unwrap();
        (dir, pool)
    }

    /// The write turn of [`scratch_database`]'s file.
    fn scratch_turn(dir: &tempfile::TempDir) -> Arc<sqlite_writer::WriteTurn> {
        sqlite_writer::turn_for(&dir.path().join("scratch.db").display().to_string())
    }

    /// `turn` held on a thread of its own from when this returns until the sender is used
    /// (or dropped); the thread is joined through the handle.
    fn hold_elsewhere(
        turn: Arc<sqlite_writer::WriteTurn>,
    ) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>) {
        let (taken, turn_taken) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            sqlite_writer::in_turn(&turn, SQLITE_BUSY_TIMEOUT, |_| {
                taken.send(()).unwrap();
                let _ = released.recv();
            })
            .unwrap()
        });
        turn_taken.recv().unwrap();
        (release, holder)
    }

    /// The rows of the SQLite tests' `scratch` table.
    fn scratch_rows(conn: &mut DbConn) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        diesel::sql_query("SELECT COUNT(*) AS n FROM scratch")
            .get_result::<N>(conn)
            .unwrap()
            .n
    }

    /// A write refused SQLite's lock, held by a connection of its own for 300 ms, waits and
    /// then writes, trying again in short steps (`sqlite_busy`): SQLite's own handler would
    /// have tried about a dozen times in that time, sleeping at least 1 ms each.
    #[test]
    fn sqlite_a_refused_write_waits_in_short_steps_and_then_writes() {
        use diesel::connection::SimpleConnection;
        let (_dir, pool) = scratch_database(2);
        let mut conn = pool.get().unwrap();
        let mut holder = pool.open_apart().unwrap();
        holder
            .batch_execute("BEGIN IMMEDIATE; INSERT INTO scratch VALUES (1)")
            .unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            holder.batch_execute("COMMIT").unwrap();
        });
        let waits_before = sqlite_busy::waits_so_far();
        transaction(&mut conn, |c| {
            diesel::sql_query("INSERT INTO scratch VALUES (2)").execute(c)
        })
        .unwrap();
        let waits = sqlite_busy::waits_so_far() - waits_before;
        release.join().unwrap();
        assert!(waits > 40, "{waits} tries in 300 ms");
        assert_eq!(scratch_rows(&mut conn), 2, "both writes are there");
    }

    /// Write transactions run on the pool's writer and are seen by every pooled connection
    /// once committed; the pooled connections refuse to write themselves, nor does a write
    /// transaction nested in a transaction opened directly on one of them run there; a
    /// rolled-back one leaves nothing, nor one that panicked half-way.
    #[test]
    fn sqlite_writes_run_on_the_writer_and_inside_an_open_transaction_as_they_are() {
        let (_dir, pool) = scratch_database(2);
        let count = scratch_rows;
        let mut first = pool.get().unwrap();
        let mut second = pool.get().unwrap();
        let before = pool.stats().statements();
        transaction(&mut first, |c| {
            diesel::sql_query("INSERT INTO scratch VALUES (1)").execute(c)
        })
        .unwrap();
        // BEGIN, INSERT, COMMIT: counted in the pool's statements although on the writer.
        assert_eq!(pool.stats().statements() - before, 3);
        assert_eq!(count(&mut second), 1, "seen by another pooled connection");

        let readonly = |e: QueryError| e.to_string().contains("readonly");
        let alone = diesel::sql_query("INSERT INTO scratch VALUES (2)").execute(&mut *second);
        assert!(
            alone.is_err_and(readonly),
            "a pooled connection refuses to write"
        );
        let started = std::time::Instant::now();
        let nested = first.transaction(|c| {
            assert_eq!(count(c), 1, "it reads");
            transaction(c, |c| {
                diesel::sql_query("INSERT INTO scratch VALUES (3)").execute(c)
            })
        });
        assert!(
            nested.is_err_and(readonly),
            "nor inside its own transaction"
        );
        assert!(
            started.elapsed() < SQLITE_BUSY_TIMEOUT / 2,
            "refused at once"
        );
        transaction(&mut first, |c| {
            diesel::sql_query("INSERT INTO scratch VALUES (2), (3)").execute(c)
        })
        .unwrap();
        assert_eq!(count(&mut second), 3);

        let failed: Result<(), QueryError> = transaction(&mut second, |c| {
            diesel::sql_query("INSERT INTO scratch VALUES (4)").execute(c)?;
            Err(QueryError::RollbackTransaction)
        });
        assert!(
            matches!(failed, Err(QueryError::RollbackTransaction)),
            "{failed:?}"
        );
        assert_eq!(count(&mut first), 3, "rolled back");

        // A write that panics half-way leaves neither its row nor the write lock behind.
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _: Result<(), QueryError> = transaction(&mut second, |c| {
                diesel::sql_query("INSERT INTO scratch VALUES (5)").execute(c)?;
                panic!("half-way");
            });
        }));
        assert!(panicked.is_err());
        let started = std::time::Instant::now();
        transaction(&mut first, |c| {
            diesel::sql_query("INSERT INTO scratch VALUES (6)").execute(c)
        })
        .unwrap();
        assert!(
            started.elapsed() < SQLITE_BUSY_TIMEOUT / 2,
            "the lock was released"
        );
        assert_eq!(count(&mut second), 4, "the panicked write is not there");
    }

    /// A brief work in the write turn (`Pool::in_write_turn`: a draft save's look-up and
    /// write) waits for the turn without taking a pooled connection: with the pool's only
    /// connection held by a page and the turn by another write for 300 ms, it waits for the
    /// turn (a pooled connection would not come within its 2 s), then reads and writes on the
    /// writer, a transaction nested in it as it is; the page reads meanwhile, and then sees
    /// what it wrote.
    #[test]
    fn sqlite_a_brief_work_in_the_write_turn_takes_no_pooled_connection() {
        use std::sync::mpsc;
        use std::time::{Duration, Instant};
        let (dir, pool) = scratch_database(1);
        let turn = scratch_turn(&dir);
        let mut page = pool.get().unwrap();
        let (taken, turn_taken) = mpsc::channel();
        let holder = std::thread::spawn(move || {
            sqlite_writer::in_turn(&turn, SQLITE_BUSY_TIMEOUT, |_| {
                taken.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(300));
            })
            .unwrap()
        });
        turn_taken.recv().unwrap();
        let before = pool.stats().statements();
        let brief = {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                let read = pool.in_write_turn(Duration::from_secs(2), |c| {
                    let read = scratch_rows(c);
                    diesel::sql_query("INSERT INTO scratch VALUES (1)").execute(c)?;
                    transaction(c, |c| {
                        diesel::sql_query("INSERT INTO scratch VALUES (2)").execute(c)
                    })?;
                    Ok::<_, DbError>(read)
                });
                (read, started.elapsed())
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            scratch_rows(&mut page),
            0,
            "the page reads while the work waits"
        );
        holder.join().unwrap();
        let (read, waited) = brief.join().unwrap();
        assert_eq!(read.unwrap(), 0, "it read before it wrote");
        assert!(
            waited >= Duration::from_millis(150),
            "it waited for the turn: {waited:?}"
        );
        assert_eq!(scratch_rows(&mut page), 2, "both its writes are there");
        // SELECT, INSERT, BEGIN, INSERT, COMMIT and the page's two counts.
        assert_eq!(pool.stats().statements() - before, 7);
    }

    /// The write turn is waited for with a bound: a brief work whose `timeout` passes while
    /// another write holds the turn fails as SQLITE_BUSY does (unavailable: a 503 with
    /// `Retry-After`) without running, and the turn itself (`in_turn`, which a transaction
    /// waits in for SQLite's busy timeout) is refused once its patience has passed; the next
    /// write, once the turn is free, goes through.
    #[test]
    fn sqlite_a_write_waits_for_the_turn_no_longer_than_its_bound() {
        use std::time::{Duration, Instant};
        let (dir, pool) = scratch_database(2);
        let turn = scratch_turn(&dir);
        let (release, holder) = hold_elsewhere(turn.clone());

        let started = Instant::now();
        let brief = pool.in_write_turn(Duration::from_millis(100), |c| {
            diesel::sql_query("INSERT INTO scratch VALUES (1)").execute(c)?;
            Ok::<_, DbError>(())
        });
        let waited = started.elapsed();
        let e = brief.expect_err("the turn was held");
        assert!(e.is_unavailable(), "{e}");
        assert!(e.to_string().contains(SQLITE_BUSY_MESSAGE), "{e}");
        assert!(
            waited >= Duration::from_millis(100) && waited < Duration::from_secs(2),
            "it waited its 100 ms: {waited:?}"
        );

        let mut conn = pool.get().unwrap();
        let started = Instant::now();
        let in_turn = sqlite_writer::in_turn(&turn, Duration::from_millis(100), |_| ());
        assert_eq!(
            in_turn,
            Err(sqlite_writer::TurnTaken(Duration::from_millis(100)))
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(scratch_rows(&mut conn), 0, "nothing was written");

        release.send(()).unwrap();
        holder.join().unwrap();
        transaction(&mut conn, |c| {
            diesel::sql_query("INSERT INTO scratch VALUES (2)").execute(c)
        })
        .unwrap();
        assert_eq!(scratch_rows(&mut conn), 1);
    }

    /// Each database has its own write turn: while another database's turn is held (a write
    /// there waiting out another process's lock, say), writes to this one neither wait nor
    /// fail; connections of one file share one turn.
    #[test]
    fn sqlite_two_databases_do_not_wait_for_each_others_write_turn() {
        use std::time::{Duration, Instant};
        let (held_dir, _held_pool) = scratch_database(1);
        let (_dir, pool) = scratch_database(1);
        let held = scratch_turn(&held_dir);
        assert!(
            Arc::ptr_eq(&held, &scratch_turn(&held_dir)),
            "one turn per file"
        );
        let (release, holder) = hold_elsewhere(held);
        let started = Instant::now();
        pool.in_write_turn(Duration::from_millis(100), |c| {
            diesel::sql_query("INSERT INTO scratch VALUES (1)").execute(c)?;
            Ok::<_, DbError>(())
        })
        .expect("no wait for the other database's turn");
        transaction(&mut pool.get().unwrap(), |c| {
            diesel::sql_query("INSERT INTO scratch VALUES (2)").execute(c)
        })
        .unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
        release.send(()).unwrap();
        holder.join().unwrap();
        assert_eq!(scratch_rows(&mut pool.get().unwrap()), 2);
    }

    /// When the pool's writer cannot be opened, a write runs on the pooled connection it was
    /// given, allowed to write for that time only: the connection refuses the next write made
    /// on it directly again.
    #[test]
    fn sqlite_a_write_whose_writer_cannot_open_runs_on_its_pooled_connection_for_that_once() {
        let (dir, pool) = scratch_database(1);
        let mut conn = pool.get().unwrap();
        // A writer whose file is in a directory that does not exist.
        let unopenable = Manager {
            url: DbUrl::Sqlite(
                dir.path()
                    .join("missing")
                    .join("f.db")
                    .display()
                    .to_string(),
            ),
            statement_timeout: None,
            stats: Arc::new(SqlStats::default()),
            writer: None,
            for_writer: true,
            checkpoints: None,
        };
        let unopenable = sqlite_writer::Writer::new(unopenable, scratch_turn(&dir));
        let wrote = sqlite_writer::in_turn(&scratch_turn(&dir), SQLITE_BUSY_TIMEOUT, |_| {
            unopenable.run(&mut conn, |c| {
                diesel::sql_query("INSERT INTO scratch VALUES (1)").execute(c)
            })
        })
        .unwrap();
        assert_eq!(wrote.unwrap(), 1, "written on the pooled connection");
        let alone = diesel::sql_query("INSERT INTO scratch VALUES (2)").execute(&mut *conn);
        assert!(
            alone.is_err_and(|e| e.to_string().contains("readonly")),
            "and it refuses to write again"
        );
        assert_eq!(scratch_rows(&mut conn), 1);
    }

    fn db_error(kind: diesel::result::DatabaseErrorKind, message: &str) -> DbError {
        DbError::Query(diesel::result::Error::DatabaseError(
            kind,
            Box::new(message.to_string()),
        ))
    }

    #[test]
    fn unavailability_is_told_from_failed_queries() {
        use diesel::result::DatabaseErrorKind::*;
        let unavailable = [
            DbError::Connect {
                file: None,
                source: "connection refused".into(),
            },
            db_error(
                ClosedConnection,
                "server closed the connection unexpectedly",
            ),
            db_error(UnableToSendCommand, "no connection to the server"),
            db_error(Unknown, "database or disk is full"),
            db_error(Unknown, "database is locked"),
            db_error(Unknown, "disk I/O error"),
            db_error(
                Unknown,
                "FATAL:  terminating connection due to administrator command",
            ),
            db_error(Unknown, "FATAL:  the database system is shutting down"),
            DbError::Query(diesel::result::Error::RollbackErrorOnCommit {
                rollback_error: Box::new(diesel::result::Error::BrokenTransactionManager),
                commit_error: Box::new(diesel::result::Error::DatabaseError(
                    ClosedConnection,
                    Box::new(String::from("server closed the connection")),
                )),
            }),
        ];
        for e in &unavailable {
            assert!(e.is_unavailable(), "{e}");
        }
        let failed = [
            db_error(UniqueViolation, "duplicate key"),
            db_error(Unknown, "no such table: answers"),
            db_error(Unknown, "syntax error at or near \"FROM\""),
            DbError::Query(diesel::result::Error::NotFound),
            DbError::Migration("bad".into()),
        ];
        for e in &failed {
            assert!(!e.is_unavailable(), "{e}");
        }
    }
}

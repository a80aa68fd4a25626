//! Storage: one code path over SQLite (embedded default) and PostgreSQL.

pub mod attempts;
pub mod queries;
pub mod schema;

use std::time::Duration;

use diesel::connection::SimpleConnection;
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

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::PoolError),
    #[error("database: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migrations failed: {0}")]
    Migration(String),
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

pub struct Manager {
    url: DbUrl,
}

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = DbError;

    fn connect(&self) -> Result<DbConn, DbError> {
        match &self.url {
            DbUrl::Postgres(u) => diesel::PgConnection::establish(u)
                .map(DbConn::Postgres)
                .map_err(|e| DbError::Connect(e.to_string().trim().to_string())),
            DbUrl::Sqlite(path) => {
                let mut conn = diesel::SqliteConnection::establish(path)
                    .map_err(|e| DbError::Connect(format!("{path}: {e}")))?;
                // busy_timeout first, so the other pragmas also wait for a lock held by
                // another process; WAL lets readers work during a write. Memory-mapped reads
                // share the operating system's page cache between pooled connections, where
                // SQLite's own 2 MB cache per connection made results queries over large
                // rounds read page by page (about 20% slower on 20,000 organisations).
                conn.batch_execute(
                    "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                     PRAGMA mmap_size = 268435456;",
                )
                .map_err(|e| DbError::Connect(format!("{path}: {e}")))?;
                Ok(DbConn::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), DbError> {
        conn.ping().map_err(DbError::Query)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        conn.is_broken()
    }
}

pub type Pool = r2d2::Pool<Manager>;
pub type PooledConn = r2d2::PooledConnection<Manager>;

pub fn connect(url: &DbUrl, size: u32) -> Result<Pool, DbError> {
    let manager = Manager { url: url.clone() };
    // Try once directly so the real reason (wrong password, missing directory) is reported.
    let mut first = manager.connect()?;
    run_migrations(&mut first)?;
    drop(first);
    r2d2::Pool::builder()
        .max_size(size)
        .connection_timeout(Duration::from_secs(10))
        .build(manager)
        .map_err(DbError::Pool)
}

pub fn run_migrations(conn: &mut DbConn) -> Result<Vec<String>, DbError> {
    let applied = match conn {
        DbConn::Postgres(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS),
        DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
    }
    .map_err(|e| DbError::Migration(e.to_string()))?;
    Ok(applied.iter().map(|m| m.to_string()).collect())
}

/// Revert every migration (used by tests to prove each down.sql undoes its up.sql).
pub fn revert_all_migrations(conn: &mut DbConn) -> Result<(), DbError> {
    match conn {
        DbConn::Postgres(c) => c.revert_all_migrations(POSTGRES_MIGRATIONS).map(|_| ()),
        DbConn::Sqlite(c) => c.revert_all_migrations(SQLITE_MIGRATIONS).map(|_| ()),
    }
    .map_err(|e| DbError::Migration(e.to_string()))
}

/// Revert the newest migration (used by tests to prove a migration keeps existing rows).
pub fn revert_last_migration(conn: &mut DbConn) -> Result<String, DbError> {
    match conn {
        DbConn::Postgres(c) => c.revert_last_migration(POSTGRES_MIGRATIONS),
        DbConn::Sqlite(c) => c.revert_last_migration(SQLITE_MIGRATIONS),
    }
    .map(|v| v.to_string())
    .map_err(|e| DbError::Migration(e.to_string()))
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
}

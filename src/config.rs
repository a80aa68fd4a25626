//! Settings from COHERENCE_* environment variables, each checked with a one-line error.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::access::TrustedProxies;
use crate::db::DbUrl;

#[derive(Debug, Clone)]
pub struct Settings {
    pub database: DbUrl,
    pub bind: SocketAddr,
    pub surveys: PathBuf,
    /// Public address used in personal links, without a trailing slash.
    pub base_url: String,
    /// Whether COHERENCE_BASE_URL was set; if not, the server uses the address it bound.
    pub base_url_explicit: bool,
    pub pool_size: u32,
    pub mail: Option<MailSettings>,
    /// Proxies whose X-Forwarded-For names the client (none: the peer is the client).
    pub trusted_proxies: TrustedProxies,
    /// How long a request body may go without a byte arriving before the request is dropped.
    pub body_timeout: std::time::Duration,
    /// Saves and submissions one personal link may make in a minute (per node).
    pub link_saves_per_minute: u32,
    /// PostgreSQL: how long one statement of a pooled connection may run (`db::connect_with`).
    pub statement_timeout: std::time::Duration,
    /// Start even though a changed survey file leaves stored answers without their question
    /// or option (`--accept-orphans`; never from the environment, so it is a decision made
    /// once). The answers are kept, hidden, and the decision is recorded in the audit log.
    pub accept_orphans: bool,
}

impl Settings {
    /// Whether the public address is https: cookies are then Secure, `__Host-` prefixed,
    /// and HSTS is sent.
    pub fn is_https(&self) -> bool {
        self.base_url.starts_with("https://")
    }
}

/// Outgoing email. Absent when COHERENCE_SMTP_URL is not set: nothing is sent then, and the
/// admin pages say so.
#[derive(Clone)]
pub struct MailSettings {
    /// smtp://host:port, smtps://user:pass@host:465, or smtp://host:587?tls=required (STARTTLS).
    pub smtp_url: String,
    pub from: String,
    /// First retry delay after a temporary failure; doubles with each attempt, up to an hour.
    pub retry_base: std::time::Duration,
    /// How often the worker looks for due messages.
    pub poll: std::time::Duration,
    /// SMTP connections the worker keeps open and sends over at once (COHERENCE_MAIL_CONNECTIONS).
    pub connections: u32,
    /// At most this many messages a minute to the server (COHERENCE_MAIL_PER_MINUTE); None: no limit.
    pub per_minute: Option<u32>,
}

impl std::fmt::Debug for MailSettings {
    // The SMTP URL may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field(
                "smtp_url",
                &crate::db::DbUrl::Postgres(self.smtp_url.clone()).display(),
            )
            .field("from", &self.from)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

impl Settings {
    pub fn from_env() -> Result<Settings, ConfigError> {
        Settings::from_lookup(|k| std::env::var(k).ok())
    }

    /// Read settings through `get`, so tests can configure an app without the process env.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let database =
            DbUrl::parse(&get("COHERENCE_DATABASE_URL").unwrap_or_else(|| "./coherence.db".into()))
                .map_err(|problem| ConfigError {
                    var: "COHERENCE_DATABASE_URL",
                    problem: format!("{problem}; set a SQLite file path or a postgres:// URL"),
                })?;
        let bind_text = get("COHERENCE_BIND").unwrap_or_else(|| "127.0.0.1:8080".into());
        let bind: SocketAddr = bind_text.trim().parse().map_err(|_| ConfigError {
            var: "COHERENCE_BIND",
            problem: format!("'{bind_text}' is not an address:port such as 127.0.0.1:8080"),
        })?;
        let surveys = PathBuf::from(get("COHERENCE_SURVEYS").unwrap_or_else(|| "surveys".into()));
        let base_url_explicit = get("COHERENCE_BASE_URL").is_some();
        let base_url = match get("COHERENCE_BASE_URL") {
            Some(u) => {
                let u = u.trim().trim_end_matches('/').to_string();
                if !(u.starts_with("http://") || u.starts_with("https://")) || u.len() < 10 {
                    return Err(ConfigError {
                        var: "COHERENCE_BASE_URL",
                        problem: format!("'{u}' must be an http:// or https:// address such as https://survey.example.org"),
                    });
                }
                u
            }
            None => format!("http://{bind}"),
        };
        let pool_size = match get("COHERENCE_DB_POOL") {
            None => default_pool_size(&database),
            Some(v) => v
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=128).contains(n))
                .ok_or_else(|| ConfigError {
                    var: "COHERENCE_DB_POOL",
                    problem: format!("'{v}' must be a number of connections from 1 to 128"),
                })?,
        };
        let mail = match get("COHERENCE_SMTP_URL").filter(|u| !u.trim().is_empty()) {
            None => None,
            Some(url) => {
                let url = url.trim().to_string();
                let scheme_ok = url.starts_with("smtp://") || url.starts_with("smtps://");
                if !scheme_ok || lettre::SmtpTransport::from_url(&url).is_err() {
                    return Err(ConfigError {
                        var: "COHERENCE_SMTP_URL",
                        problem: "must be smtp://host:port, smtps://user:pass@host:465 or smtp://host:587?tls=required".into(),
                    });
                }
                let from = get("COHERENCE_MAIL_FROM").unwrap_or_default();
                if from.trim().parse::<lettre::message::Mailbox>().is_err() {
                    return Err(ConfigError {
                        var: "COHERENCE_MAIL_FROM",
                        problem: format!("'{from}' must be a sender address such as \"GFMD Survey <survey@example.org>\" (required with COHERENCE_SMTP_URL)"),
                    });
                }
                let millis = |var: &'static str,
                              default: u64|
                 -> Result<std::time::Duration, ConfigError> {
                    match get(var) {
                        None => Ok(std::time::Duration::from_millis(default)),
                        Some(v) => v
                            .trim()
                            .parse::<u64>()
                            .ok()
                            .filter(|n| *n > 0)
                            .map(std::time::Duration::from_millis)
                            .ok_or(ConfigError {
                                var,
                                problem: format!("'{v}' must be a positive number of milliseconds"),
                            }),
                    }
                };
                Some(MailSettings {
                    smtp_url: url,
                    from: from.trim().to_string(),
                    retry_base: millis("COHERENCE_MAIL_RETRY_MS", 30_000)?,
                    poll: millis("COHERENCE_MAIL_POLL_MS", 2_000)?,
                    connections: match get("COHERENCE_MAIL_CONNECTIONS") {
                        None => 4,
                        Some(v) => v
                            .trim()
                            .parse::<u32>()
                            .ok()
                            .filter(|n| (1..=32).contains(n))
                            .ok_or_else(|| ConfigError {
                                var: "COHERENCE_MAIL_CONNECTIONS",
                                problem: format!(
                                    "'{v}' must be a number of connections from 1 to 32"
                                ),
                            })?,
                    },
                    per_minute: match get("COHERENCE_MAIL_PER_MINUTE") {
                        None => None,
                        Some(v) => match v.trim().parse::<u32>() {
                            Ok(0) => None,
                            Ok(n) => Some(n),
                            Err(_) => {
                                return Err(ConfigError {
                                    var: "COHERENCE_MAIL_PER_MINUTE",
                                    problem: format!(
                                        "'{v}' must be a number of messages a minute (0: no limit)"
                                    ),
                                })
                            }
                        },
                    },
                })
            }
        };
        let trusted_proxies = TrustedProxies::parse(
            &get("COHERENCE_TRUSTED_PROXIES").unwrap_or_default(),
        )
        .map_err(|problem| ConfigError {
            var: "COHERENCE_TRUSTED_PROXIES",
            problem: format!("{problem}; give addresses or CIDR blocks separated by commas"),
        })?;
        let body_timeout = match get("COHERENCE_BODY_TIMEOUT_SECS") {
            None => std::time::Duration::from_secs(20),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=600).contains(n))
                .map(std::time::Duration::from_secs)
                .ok_or_else(|| ConfigError {
                    var: "COHERENCE_BODY_TIMEOUT_SECS",
                    problem: format!("'{v}' must be a number of seconds from 1 to 600"),
                })?,
        };
        let link_saves_per_minute = match get("COHERENCE_LINK_SAVES_PER_MINUTE") {
            None => 60,
            Some(v) => v
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=1_000_000).contains(n))
                .ok_or_else(|| ConfigError {
                    var: "COHERENCE_LINK_SAVES_PER_MINUTE",
                    problem: format!("'{v}' must be a number from 1 to 1000000"),
                })?,
        };
        let statement_timeout = match get("COHERENCE_STATEMENT_TIMEOUT_SECS") {
            None => crate::db::STATEMENT_TIMEOUT,
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=3600).contains(n))
                .map(std::time::Duration::from_secs)
                .ok_or_else(|| ConfigError {
                    var: "COHERENCE_STATEMENT_TIMEOUT_SECS",
                    problem: format!("'{v}' must be a number of seconds from 1 to 3600"),
                })?,
        };
        Ok(Settings {
            accept_orphans: false,
            statement_timeout,
            link_saves_per_minute,
            trusted_proxies,
            body_timeout,
            database,
            bind,
            surveys,
            base_url,
            base_url_explicit,
            pool_size,
            mail,
        })
    }
}

/// Connections in the pool when `COHERENCE_DB_POOL` is not set. More connections than the
/// cores can run only take turns: with 8 on 2 cores, SQLite's saves spent their time switching
/// between threads queued on the write lock (1,130 saves/s, 1,150 us of CPU each; with 4: 1,667
/// and 752 us; with 2, too few to overlap reads with a write: 1,348), measured before SQLite's
/// writes had a connection of their own.
///
/// PostgreSQL: two per core, at least 4, at most 32.
///
/// SQLite: one per core, at least 2, at most 32. Its writes now run on a connection of their own
/// (`db::transaction`), besides the pool, whose connections each keep a page cache and
/// prepared statements of their own: on 2 cores a pool of 2 served as many section pages,
/// saves and whole responses as one of 4 (within the machine's noise), and the server's peak
/// memory under the load benchmark's whole responses was 39.2-39.5 MiB instead of 41.9-42.4.
fn default_pool_size(database: &DbUrl) -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u32;
    match database {
        DbUrl::Sqlite(_) => cores.clamp(2, 32),
        DbUrl::Postgres(_) => (2 * cores).clamp(4, 32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn the_default_pool_is_one_connection_per_core_on_sqlite_two_on_postgresql() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u32;
        let sqlite = with(&[]).unwrap();
        assert_eq!(sqlite.pool_size, cores.clamp(2, 32));
        let pg = with(&[("COHERENCE_DATABASE_URL", "postgres://u@localhost/db")]).unwrap();
        assert_eq!(pg.pool_size, (2 * cores).clamp(4, 32));
        let set = with(&[("COHERENCE_DB_POOL", "7")]).unwrap();
        assert_eq!(set.pool_size, 7);
    }

    #[test]
    fn defaults_and_errors() {
        let s = with(&[]).unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.base_url, "http://127.0.0.1:8080");
        assert_eq!(
            with(&[("COHERENCE_BIND", "nope")]).unwrap_err().var,
            "COHERENCE_BIND"
        );
        assert_eq!(
            with(&[("COHERENCE_DATABASE_URL", "mysql://x/y")])
                .unwrap_err()
                .var,
            "COHERENCE_DATABASE_URL"
        );
        assert!(with(&[("COHERENCE_BASE_URL", "ftp://x")]).is_err());
        assert_eq!(
            with(&[("COHERENCE_TRUSTED_PROXIES", "10.0.0.0/99")])
                .unwrap_err()
                .var,
            "COHERENCE_TRUSTED_PROXIES"
        );
        assert!(with(&[("COHERENCE_TRUSTED_PROXIES", "127.0.0.1, ::1")])
            .unwrap()
            .trusted_proxies
            .contains("::1".parse().unwrap()));
        assert_eq!(
            with(&[("COHERENCE_BODY_TIMEOUT_SECS", "0")])
                .unwrap_err()
                .var,
            "COHERENCE_BODY_TIMEOUT_SECS"
        );
        for bad in ["0", "3601", "thirty", "-5"] {
            assert_eq!(
                with(&[("COHERENCE_STATEMENT_TIMEOUT_SECS", bad)])
                    .unwrap_err()
                    .var,
                "COHERENCE_STATEMENT_TIMEOUT_SECS"
            );
        }
        assert_eq!(
            with(&[]).unwrap().statement_timeout,
            crate::db::STATEMENT_TIMEOUT
        );
        assert_eq!(
            with(&[("COHERENCE_STATEMENT_TIMEOUT_SECS", " 5 ")])
                .unwrap()
                .statement_timeout,
            std::time::Duration::from_secs(5)
        );
    }
}

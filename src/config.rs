//! Settings from COHERENCE_* environment variables, each checked with a one-line error.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::db::DbUrl;

#[derive(Debug, Clone)]
pub struct Settings {
    pub database: DbUrl,
    pub bind: SocketAddr,
    pub surveys: PathBuf,
    /// Public address used in personal links, without a trailing slash.
    pub base_url: String,
    pub pool_size: u32,
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
            None => 8,
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
        Ok(Settings {
            database,
            bind,
            surveys,
            base_url,
            pool_size,
        })
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
    }
}

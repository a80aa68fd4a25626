//! A benchmark's own database: a file in a temporary directory, or a new database on the
//! PostgreSQL server named by `COHERENCE_BENCH_PG`, dropped again when the benchmark is done
//! with it (or fails), so that runs against a server someone keeps leave nothing behind.

use diesel::{Connection, PgConnection, RunQueryDsl};

pub struct ScratchDatabase {
    /// What `COHERENCE_DATABASE_URL` is set to.
    pub url: String,
    /// PostgreSQL: the server and the database's name, to drop it.
    postgres: Option<(String, String)>,
}

impl ScratchDatabase {
    /// A new, empty database: `file` in `dir` for SQLite, else a new database named
    /// `<prefix>_<random>` on `COHERENCE_BENCH_PG`'s server.
    pub fn new(backend: &str, dir: &std::path::Path, file: &str, prefix: &str) -> ScratchDatabase {
        if backend == "sqlite" {
            return ScratchDatabase {
                url: dir.join(file).display().to_string(),
                postgres: None,
            };
        }
        let server = std::env::var("COHERENCE_BENCH_PG").expect("COHERENCE_BENCH_PG");
        let name = format!("{prefix}_{}", hex::encode(rand::random::<[u8; 6]>()));
        let mut admin =
            PgConnection::establish(&format!("{server}/postgres")).expect("reach PostgreSQL");
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .expect("create bench database");
        ScratchDatabase {
            url: format!("{server}/{name}"),
            postgres: Some((server, name)),
        }
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let Some((server, name)) = &self.postgres else {
            return;
        };
        // FORCE: a server process killed a moment ago may still hold a session.
        let dropped = PgConnection::establish(&format!("{server}/postgres")).and_then(|mut c| {
            diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut c)
                .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))
        });
        if let Err(e) = dropped {
            eprintln!("could not drop the bench database {name}: {e}");
        }
    }
}

//! Storage on both backends: migrations, reference data, the shipped surveys served end to end.

use coherence::db::{self, tokens, DbUrl};
use coherence::reference::Countries;

use crate::helpers::{fixtures, fresh_database, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    migrations_apply_revert_and_reapply,
    units_migration_keeps_every_response_and_answer,
    countries_are_loaded_with_their_groups,
    shipped_surveys_render_every_section,
    healthz_answers_when_the_database_is_up,
    servers_starting_together_migrate_once,
    the_migration_lock_is_released_when_a_migration_fails,
    the_status_table_takes_as_many_statements_for_60_countries_as_for_3,
    logs_to_a_pipe_have_no_colour_codes,
    states_are_stored_as_text_and_unknown_ones_are_errors,
    an_unreachable_database_is_one_line_with_its_cause,
    the_link_look_up_reads_answers_and_sections_as_their_tables_hold_them,
);

/// libpq is built into the program (pq-sys `bundled`): the system's shared libpq brought
/// Kerberos, LDAP and GnuTLS with it, 19 libraries loaded at every start and about 3 MiB of
/// the server's resident memory, on SQLite too (benches/README.md, thirteenth slice).
#[cfg(target_os = "linux")]
#[test]
fn the_postgresql_client_library_is_built_in() {
    // Used, so that the program is linked with libpq as the server is.
    assert!(DbUrl::parse("postgres://127.0.0.1:1/none").is_ok());
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    for library in ["libpq.so", "libgssapi", "libldap", "libkrb5", "libgnutls"] {
        assert!(!maps.contains(library), "{library} is loaded");
    }
    let url = DbUrl::parse("postgres://nobody@127.0.0.1:1/none").unwrap();
    // The built-in libpq answers (and fails to connect) without the system's.
    assert!(db::connect(&url, 1).is_err());
}

/// Two instances recording one survey version at once on PostgreSQL: the one whose INSERT meets
/// the other's row (committed while it waited) tolerates the unique violation in a savepoint, so
/// the transaction it was called in (a definition change's) goes on and commits. Without the
/// savepoint PostgreSQL would abort that whole transaction. SQLite writes one transaction at a
/// time, so there the second finds the version already recorded.
#[test]
fn postgresql_a_survey_version_recorded_meanwhile_leaves_the_callers_transaction_usable() {
    use coherence::db::schema::survey_versions;
    use diesel::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let url = DbUrl::parse(&fresh_database(Backend::Postgres, dir.path())).unwrap();
    let pool = db::connect(&url, 2).unwrap();
    let surveys = coherence::survey::load_paths(&[fixtures().join("surveys")]).surveys;
    let survey = surveys[0].clone();
    let now = chrono::Utc::now().naive_utc();
    // The other instance records the version and commits 300 ms later.
    let (recorded, other_recorded) = std::sync::mpsc::channel();
    let other = {
        let (pool, survey) = (pool.clone(), survey.clone());
        std::thread::spawn(move || {
            let mut conn = pool.get().unwrap();
            db::transaction(&mut conn, |c| {
                db::survey_versions::record_survey_version(c, &survey, now)?;
                recorded.send(()).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(300));
                Ok::<_, db::QueryError>(())
            })
            .unwrap();
        })
    };
    other_recorded.recv().unwrap();
    // This one does not see the row yet, inserts, waits for the other, meets its row.
    let mut conn = pool.get().unwrap();
    let done = db::transaction(&mut conn, |c| {
        db::survey_versions::record_survey_version(c, &survey, now)?;
        diesel::sql_query("SELECT 1").execute(c)
    });
    other.join().unwrap();
    assert!(done.is_ok(), "the caller's transaction went on: {done:?}");
    let rows: i64 = survey_versions::table
        .filter(survey_versions::survey_id.eq(&survey.id))
        .count()
        .get_result(&mut *conn)
        .unwrap();
    assert_eq!(rows, 1);
}

/// The bundled SQLite is compiled with the options `.cargo/config.toml` gives it (each is
/// explained there, with what it saved): a libsqlite3-sys that stopped reading
/// `LIBSQLITE3_FLAGS`, or a build that lost the setting, would quietly bring back STAT4's
/// re-prepares, the shared page-cache mutex or the memory statistics' mutex.
#[test]
fn the_bundled_sqlite_is_compiled_with_the_projects_options() {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct CompileOption {
        #[diesel(sql_type = diesel::sql_types::Text)]
        compile_options: String,
    }
    let config =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.cargo/config.toml"))
            .unwrap();
    let flags = config
        .lines()
        .find_map(|l| l.strip_prefix("LIBSQLITE3_FLAGS = "))
        .expect("LIBSQLITE3_FLAGS in .cargo/config.toml")
        .trim_matches('"');
    let dir = tempfile::tempdir().unwrap();
    let url = DbUrl::Sqlite(dir.path().join("options.db").display().to_string());
    let mut conn = db::connect(&url, 1).unwrap().get().unwrap();
    let options: Vec<String> = diesel::sql_query("PRAGMA compile_options")
        .load::<CompileOption>(&mut conn)
        .unwrap()
        .into_iter()
        .map(|o| o.compile_options)
        .collect();
    let mut checked = 0;
    for flag in flags.split_whitespace() {
        if let Some(defined) = flag.strip_prefix("-DSQLITE_") {
            assert!(
                options.iter().any(|o| o == defined),
                "{defined} not among {options:?}"
            );
            checked += 1;
        } else if let Some(name) = flag.strip_prefix("-USQLITE_") {
            // `-U` then `-D` of the same name redefines it: checked by the `-D`.
            if !flags.contains(&format!("-DSQLITE_{name}=")) {
                assert!(
                    !options
                        .iter()
                        .any(|o| o == name || o.starts_with(&format!("{name}="))),
                    "{name} still among {options:?}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 5, "only {checked} options read from {flags}");
}

/// Under writes that never pause, a passive checkpoint never lets SQLite start its log again
/// (another commit has always appended pages by the time it ends): the pool's checkpoints
/// start it again from its beginning once it passes `db::SQLITE_LOG_LIMIT_PAGES`, so it does
/// not grow for as long as the writes go on, and the file is written over rather than emptied.
#[test]
fn sqlite_log_starts_again_under_writes_that_never_pause() {
    use diesel::RunQueryDsl;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("log.db");
    let log = dir.path().join("log.db-wal");
    let pool = db::connect(&DbUrl::Sqlite(file.display().to_string()), 2).unwrap();
    let mut conn = pool.get().unwrap();
    db::write_statement(&mut conn, |c| {
        diesel::sql_query("CREATE TABLE filler (x BLOB)").execute(c)
    })
    .unwrap();
    // The log's header counts the times it started again (its checkpoint sequence number,
    // big-endian at offset 12); each start also changes its salts.
    let starts = || {
        use std::io::Read;
        let mut header = [0u8; 16];
        match std::fs::File::open(&log).and_then(|mut f| f.read_exact(&mut header)) {
            Ok(()) => u32::from_be_bytes(header[12..16].try_into().unwrap()),
            Err(_) => 0,
        }
    };
    let starts_before = starts();
    let size = || std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    // A page per row, 64 rows per commit, commits back to back until eight times the limit has
    // gone through the log, the checkpoints have had a second to run and the log has started
    // again twice (later on a loaded machine, where the checkpoints get less time).
    let limit = db::SQLITE_LOG_LIMIT_PAGES as u64 * 4096;
    let started = std::time::Instant::now();
    let (mut written, mut longest) = (0u64, 0u64);
    // The shortest the file was once it had passed the limit: written over, it keeps at least
    // that length (a TRUNCATE checkpoint would empty it).
    let mut shortest_after_limit: Option<u64> = None;
    while written < 8 * limit
        || started.elapsed() < std::time::Duration::from_secs(1)
        || starts() < starts_before + 2
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "the log started again {} times in two minutes while {written} bytes were written",
            starts() - starts_before
        );
        db::transaction(&mut conn, |c| {
            diesel::sql_query(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 64) \
                 INSERT INTO filler SELECT randomblob(4000) FROM n",
            )
            .execute(c)
        })
        .unwrap();
        db::write_statement(&mut conn, |c| {
            diesel::sql_query("DELETE FROM filler").execute(c)
        })
        .unwrap();
        written += 2 * 64 * 4096;
        let now = size();
        longest = longest.max(now);
        if longest > limit {
            shortest_after_limit = Some(shortest_after_limit.map_or(now, |s| s.min(now)));
        }
    }
    assert!(
        longest < written / 2,
        "the log grew to {longest} bytes while {written} bytes were written"
    );
    let shortest = shortest_after_limit.expect("the log never passed the limit");
    assert!(
        shortest >= limit,
        "the log file was cut to {shortest} bytes after passing {limit}: emptied, not written over"
    );

    // One transaction longer than the length kept: the log grows past it, and once it
    // starts again its file is cut back to that length, not kept at its longest.
    let kept = db::SQLITE_LOG_KEPT_BYTES as u64;
    let rows = kept * 3 / 2 / 4096;
    db::transaction(&mut conn, |c| {
        diesel::sql_query(format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) \
             INSERT INTO filler SELECT randomblob(4000) FROM n"
        ))
        .execute(c)
    })
    .unwrap();
    let grown = size();
    assert!(
        grown > kept,
        "one transaction of {rows} pages left a log of {grown} bytes"
    );
    let since = std::time::Instant::now();
    while size() > kept {
        assert!(
            since.elapsed() < std::time::Duration::from_secs(30),
            "the log kept {} bytes (at most {kept} wanted) 30 s after growing to {grown}",
            size()
        );
        // Small commits: one of them writes the log from its beginning again, after a
        // checkpoint copied it all.
        db::write_statement(&mut conn, |c| {
            diesel::sql_query("DELETE FROM filler WHERE rowid = (SELECT min(rowid) FROM filler)")
                .execute(c)
        })
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A SQLite connection's setting, as `PRAGMA name` reports it (in a column of that name: not
/// every setting has a table-valued `pragma_name()` to alias it with).
macro_rules! sqlite_setting {
    ($conn:expr, $name:ident) => {{
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Setting {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            $name: i64,
        }
        diesel::sql_query(concat!("PRAGMA ", stringify!($name)))
            .get_result::<Setting>($conn)
            .unwrap()
            .$name
    }};
}

/// Every SQLite connection the server opens keeps a page cache of `db::SQLITE_CACHE_KIB`
/// rather than SQLite's 2 MiB: the larger caches only raised the server's peak memory (in WAL
/// mode a connection empties its cache after another's write anyway).
#[test]
fn sqlite_connections_keep_a_small_page_cache() {
    let cache_size = |conn: &mut db::DbConn| sqlite_setting!(conn, cache_size);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cache.db");
    let pool = db::connect(&DbUrl::Sqlite(file.display().to_string()), 2).unwrap();
    let wanted = -i64::from(db::SQLITE_CACHE_KIB);
    assert_eq!(
        cache_size(&mut pool.get().unwrap()),
        wanted,
        "a pooled connection"
    );
    assert_eq!(
        cache_size(&mut pool.open_apart().unwrap()),
        wanted,
        "a connection apart from the pool"
    );
}

/// SQLite: the pool's writer, which runs the write transactions, keeps its statement journals
/// in memory and the pages it changes until the commit; the pooled connections, which read,
/// keep SQLite's defaults (the temporary tables of results over 100,000 organisations go to
/// files, not to the server's memory).
#[test]
fn sqlite_the_pools_writer_journals_statements_in_memory() {
    let temp_store = |conn: &mut db::DbConn| sqlite_setting!(conn, temp_store);
    let cache_spill = |conn: &mut db::DbConn| sqlite_setting!(conn, cache_spill);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("writer.db");
    let pool = db::connect(&DbUrl::Sqlite(file.display().to_string()), 2).unwrap();
    let mut conn = pool.get().unwrap();
    let on_writer = db::transaction(&mut conn, |writer| {
        diesel::QueryResult::Ok((temp_store(writer), cache_spill(writer)))
    })
    .unwrap();
    // 2 is MEMORY.
    assert_eq!(on_writer, (2, i64::from(db::SQLITE_WRITER_SPILL_PAGES)));
    assert_eq!(temp_store(&mut conn), 0, "a pooled connection");
    assert_eq!(temp_store(&mut pool.open_apart().unwrap()), 0);
}

/// SQLite: a pool's connections do not copy the log into the database file in their commits
/// (SQLite's automatic checkpoint, which held every other writer back while it ran); the
/// pool's own thread does, so what is written still reaches the file and the log does not
/// grow for good. A connection apart from the pool keeps the automatic checkpoint.
#[test]
fn sqlite_writes_reach_the_database_file_through_the_pools_checkpoints() {
    use diesel::RunQueryDsl;
    let autocheckpoint = |conn: &mut db::DbConn| sqlite_setting!(conn, wal_autocheckpoint);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("checkpoints.db");
    let pool = db::connect(&DbUrl::Sqlite(file.display().to_string()), 2).unwrap();
    let mut conn = pool.get().unwrap();
    assert_eq!(autocheckpoint(&mut conn), 0, "a pooled connection");
    assert_eq!(autocheckpoint(&mut pool.open_apart().unwrap()), 1000);
    db::write_statement(&mut conn, |c| {
        diesel::sql_query("CREATE TABLE filler (x BLOB)").execute(c)
    })
    .unwrap();
    let before = std::fs::metadata(&file).unwrap().len();
    // 2,000 rows of 4,000 bytes: a page each, twice SQLite's automatic threshold.
    db::transaction(&mut conn, |c| {
        diesel::sql_query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) \
             INSERT INTO filler SELECT randomblob(4000) FROM n",
        )
        .execute(c)
    })
    .unwrap();
    let wanted = before + 2000 * 4000;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut size = before;
    while size < wanted && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        size = std::fs::metadata(&file).unwrap().len();
    }
    assert!(
        size >= wanted,
        "the database file has {size} bytes, {before} before 8 MB were written"
    );
}

async fn migrations_apply_revert_and_reapply(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = DbUrl::parse(&fresh_database(backend, dir.path())).unwrap();
    let pool = db::connect(&url, 1).unwrap();
    // Of its own: migrations write, and a pooled connection refuses to.
    let mut conn = pool.open_apart().unwrap();
    // Every down.sql must undo its up.sql: revert all, then apply again from scratch.
    db::revert_all_migrations(&mut conn).unwrap();
    assert!(tokens::count_tokens(&mut conn).is_err(), "tables are gone");
    let applied = db::run_migrations(&mut conn).unwrap();
    let shipped = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .unwrap()
        .count();
    assert_eq!(applied.len(), shipped);
    assert_eq!(tokens::count_tokens(&mut conn).unwrap(), 0);
}

/// A server whose fixture link for Sweden saved its first section, that link, and a pool of
/// the test's own on the server's database.
async fn one_section_saved(backend: Backend) -> (TestApp, String, db::Pool) {
    let app = TestApp::spawn(backend).await;
    let link = app.issue_token("fixture", "SWE", "Anna");
    let saved = app
        .save_section(&link, "basics", &[("name", "Anna"), ("active", "yes")])
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let pool = db::connect(&DbUrl::parse(&app.database_url).unwrap(), 1).unwrap();
    (app, link, pool)
}

/// The respondent-units migration rebuilds `responses` on SQLite, where a careless rebuild
/// would cascade-delete every answer. Reverting it and applying it again on a database with a
/// submitted response must keep the response, its answers and its section versions.
async fn units_migration_keeps_every_response_and_answer(backend: Backend) {
    use coherence::db::schema::{answers, responses, section_states};
    use diesel::prelude::*;
    let (_app, _, pool) = one_section_saved(backend).await;
    // Of its own: migrations write, and a pooled connection refuses to.
    let mut conn = pool.open_apart().unwrap();
    let counts = |conn: &mut db::DbConn| -> (i64, i64, i64) {
        (
            responses::table.count().get_result(conn).unwrap(),
            answers::table.count().get_result(conn).unwrap(),
            section_states::table.count().get_result(conn).unwrap(),
        )
    };
    let before = counts(&mut conn);
    assert_eq!(before.0, 1);
    assert!(before.1 >= 2, "answers saved: {before:?}");
    // The newer migrations first, newest first, then the units migration.
    let mut reverted = Vec::new();
    while reverted.last().map(String::as_str) != Some("20261127000004") {
        reverted.push(db::revert_last_migration(&mut conn).unwrap());
        assert!(reverted.len() < 40, "{reverted:?}");
    }
    let mut newest_first = reverted.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(reverted, newest_first);
    assert!(
        reverted.contains(&"20261130000009".to_string()),
        "{reverted:?}"
    );
    assert_eq!(
        counts(&mut conn),
        before,
        "after reverting the units migration"
    );
    assert_eq!(db::run_migrations(&mut conn).unwrap().len(), reverted.len());
    assert_eq!(counts(&mut conn), before, "after applying it again");
    let unit: String = responses::table
        .select(responses::unit)
        .first(&mut conn)
        .unwrap();
    assert_eq!(unit, "");
}

async fn countries_are_loaded_with_their_groups(backend: Backend) {
    use coherence::db::schema::countries::dsl::*;
    use diesel::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let url = DbUrl::parse(&fresh_database(backend, dir.path())).unwrap();
    let pool = db::connect(&url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    let list = Countries::load().unwrap();
    assert_eq!(
        db::countries::sync_countries(&mut conn, &list).unwrap(),
        list.iter().count()
    );
    // A second sync updates in place.
    assert_eq!(db::countries::sync_countries(&mut conn, &list).unwrap(), 0);
    let ldc_2008_count: i64 = countries
        .filter(ldc_2008.eq(true))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(ldc_2008_count, 49);
    let by_region: Vec<(String, i64)> = countries
        .group_by(region_code)
        .select((region_code, diesel::dsl::count_star()))
        .order(region_code)
        .load(&mut conn)
        .unwrap();
    let codes: Vec<&str> = by_region.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(codes, ["002", "009", "019", "142", "150"]);
    let swe: (String, String) = countries
        .find("SWE")
        .select((income_fy09, development))
        .first(&mut conn)
        .unwrap();
    assert_eq!(swe, ("H".to_string(), "developed".to_string()));
}

async fn shipped_surveys_render_every_section(backend: Backend) {
    let surveys = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("surveys");
    let app = TestApp::spawn_with(backend, surveys).await;
    let report = coherence::survey::load_paths(std::slice::from_ref(&app.surveys));
    for survey in &report.surveys {
        let link = app.issue_token(&survey.id, "MEX", "Focal point");
        let overview = app.get(&link).await;
        assert_eq!(overview.status, 200);
        assert!(overview.body.contains("Response of Mexico"));
        for section in &survey.sections {
            let page = app.get(&format!("{link}/s/{}", section.id)).await;
            // A section hidden by its condition is not reachable yet.
            let expected = if section.show_if.is_some() { 404 } else { 200 };
            assert_eq!(page.status, expected, "{}/{}", survey.id, section.id);
        }
    }
    app.stop().await;
}

async fn healthz_answers_when_the_database_is_up(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let res = app.get("/healthz").await;
    assert_eq!((res.status, res.body.as_str()), (200, "ok"));
    let css = app.get("/static/app.css?v=1").await;
    assert!(css
        .headers
        .get("cache-control")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("immutable"));
    app.stop().await;
}

/// Several servers starting at the same moment on a brand-new database (threads here; the
/// nodes test does it with processes): each connects (which migrates), then loads the
/// country list and the survey versions, as `startup::open_storage` does. The files are read
/// before the start line, so the threads meet in the database. All must succeed, and each
/// migration is applied and recorded once.
async fn servers_starting_together_migrate_once(backend: Backend) {
    use coherence::db::schema::{countries, survey_versions};
    use diesel::prelude::*;
    use std::sync::{Arc, Barrier};
    const SERVERS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let url = DbUrl::parse(&fresh_database(backend, dir.path())).unwrap();
    let list = Arc::new(Countries::load().unwrap());
    let surveys = Arc::new(coherence::survey::load_paths(&[fixtures().join("surveys")]).surveys);
    let barrier = Arc::new(Barrier::new(SERVERS));
    let starts: Vec<_> = (0..SERVERS)
        .map(|_| {
            let (url, list, surveys, barrier) =
                (url.clone(), list.clone(), surveys.clone(), barrier.clone());
            std::thread::spawn(move || -> Result<(), String> {
                barrier.wait();
                let pool = db::connect(&url, 2).map_err(|e| e.to_string())?;
                let mut conn = pool.get().map_err(|e| e.to_string())?;
                db::countries::sync_countries(&mut conn, &list).map_err(|e| e.to_string())?;
                let now = chrono::Utc::now().naive_utc();
                for s in surveys.iter() {
                    db::survey_versions::record_survey_version(&mut conn, s, now)
                        .map_err(|e| e.to_string())?;
                }
                Ok(())
            })
        })
        .collect();
    for start in starts {
        let started = start.join().expect("no panic");
        assert!(started.is_ok(), "a server failed to start: {started:?}");
    }
    let pool = db::connect(&url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    #[derive(diesel::QueryableByName, Debug, PartialEq)]
    struct Applied {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let applied: Vec<Applied> = diesel::sql_query(
        "SELECT version, COUNT(*) AS n FROM __diesel_schema_migrations \
         GROUP BY version ORDER BY version",
    )
    .load(&mut conn)
    .unwrap();
    let folder = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let migrations = std::fs::read_dir(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(folder),
    )
    .unwrap()
    .count();
    assert_eq!(applied.len(), migrations, "every migration: {applied:?}");
    assert!(applied.iter().all(|a| a.n == 1), "each once: {applied:?}");
    let n: i64 = countries::table.count().get_result(&mut conn).unwrap();
    assert_eq!(n, list.iter().count() as i64);
    let versions: i64 = survey_versions::table
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(versions, 3, "one version per fixture survey");
}

/// A migration that fails (here: a table already in the way) must not leave the migration
/// lock held, or every later start would wait for ever.
async fn the_migration_lock_is_released_when_a_migration_fails(backend: Backend) {
    use diesel::prelude::*;
    use diesel::Connection;
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(backend, dir.path());
    let mut conn = match DbUrl::parse(&url).unwrap() {
        DbUrl::Postgres(u) => db::DbConn::Postgres(diesel::PgConnection::establish(&u).unwrap()),
        DbUrl::Sqlite(p) => db::DbConn::Sqlite(diesel::SqliteConnection::establish(&p).unwrap()),
    };
    diesel::sql_query("CREATE TABLE countries (iso3 TEXT)")
        .execute(&mut conn)
        .unwrap();
    let err = db::run_migrations(&mut conn).unwrap_err().to_string();
    assert!(err.contains("countries"), "{err}");
    // The failed connection is still open: the lock must be free for anyone else.
    match backend {
        Backend::Postgres => {
            #[derive(diesel::QueryableByName)]
            struct Free {
                #[diesel(sql_type = diesel::sql_types::Bool)]
                free: bool,
            }
            let mut other = diesel::PgConnection::establish(&url).unwrap();
            let got: Free = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS free")
                .bind::<diesel::sql_types::BigInt, _>(db::MIGRATION_LOCK_KEY)
                .get_result(&mut other)
                .unwrap();
            assert!(got.free, "the advisory lock was released");
        }
        Backend::Sqlite => {
            let lock = std::fs::File::open(format!("{url}.migrations-lock")).unwrap();
            assert!(lock.try_lock().is_ok(), "the lock file was released");
        }
    }
    // The same connection goes on working, and migrates once the obstacle is gone.
    diesel::sql_query("DROP TABLE countries")
        .execute(&mut conn)
        .unwrap();
    let applied = db::run_migrations(&mut conn).unwrap();
    assert!(!applied.is_empty());
}

/// The admin status table of a survey reads every country's contacts, emails, links,
/// responses and answers. It must cost the same few SQL statements for 3 countries as for 60
/// (no statement per response or per country), counted with diesel's instrumentation.
async fn the_status_table_takes_as_many_statements_for_60_countries_as_for_3(backend: Backend) {
    let few = status_table_statements(backend, 3);
    let many = status_table_statements(backend, 60);
    assert_eq!(
        few.len(),
        many.len(),
        "3 countries:\n{}\n60 countries:\n{}",
        few.join("\n"),
        many.join("\n")
    );
    assert!(few.len() <= 8, "{}", few.join("\n"));
    eprintln!(
        "status table: {} statements for 3 and for 60 countries",
        few.len()
    );
}

/// The statements `status_table` runs on a database with `n` countries that have contacts,
/// invitations, links and responses.
fn status_table_statements(backend: Backend, n: usize) -> Vec<String> {
    use coherence::campaign::status_table;
    use coherence::contacts::{self, ContactRow};
    use coherence::db::outbox::{self, MailKind, NewMessage};
    use coherence::db::{deadlines, responses};
    use diesel::connection::{Connection, InstrumentationEvent};
    use std::sync::{Arc, Mutex};

    let dir = tempfile::tempdir().unwrap();
    let url = DbUrl::parse(&fresh_database(backend, dir.path())).unwrap();
    let pool = db::connect(&url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    let countries = Countries::load().unwrap();
    db::countries::sync_countries(&mut conn, &countries).unwrap();
    let surveys = coherence::survey::load_paths(&[fixtures().join("surveys")]).surveys;
    let survey = surveys.iter().find(|s| s.id == "fixture").unwrap();
    let demo = coherence::results::demo::generate(&mut conn, survey, &countries, n, 7).unwrap();
    assert_eq!(demo.submitted + demo.drafts, n);
    let now = chrono::Utc::now().naive_utc();
    let answered = responses::survey_responses(&mut conn, &survey.id).unwrap();
    let rows: Vec<ContactRow> = answered
        .iter()
        .enumerate()
        .map(|(i, r)| ContactRow {
            line: i + 2,
            country: r.country_iso3.clone(),
            name: format!("Focal point {i}"),
            email: format!("fp{i}@gov.example"),
            language: "en".into(),
            office: "MFA".into(),
            role: coherence::db::tokens::LinkRole::Coordinator,
            sections: Vec::new(),
        })
        .collect();
    contacts::import(&mut conn, &survey.id, &rows, now).unwrap();
    for c in contacts::list(&mut conn, &survey.id).unwrap() {
        let m = NewMessage {
            kind: MailKind::Invite,
            survey_id: &survey.id,
            country_iso3: &c.country_iso3,
            contact_id: Some(&c.id),
            recipient: &c.email,
            subject: "Invitation",
            body_text: "text",
            body_html: "<p>html</p>",
        };
        outbox::enqueue(&mut conn, &m, now).unwrap();
    }
    let first = &answered[0].country_iso3;
    let admin = coherence::accounts::create_user(
        &mut conn,
        "admin@example.org",
        coherence::accounts::Role::Admin,
        None,
        &[],
        now,
    )
    .unwrap();
    deadlines::set_extension(&mut conn, &survey.id, first, now, &admin.user.id, now).unwrap();

    let statements = Arc::new(Mutex::new(Vec::new()));
    let seen = statements.clone();
    conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            seen.lock().unwrap().push(query.to_string());
        }
    });
    let table = status_table(&mut conn, survey, &countries, "country", "en").unwrap();
    conn.set_instrumentation(|_: InstrumentationEvent<'_>| {});

    // The table is complete: a row per State asked (the survey's population, contacted or
    // not), and for the countries of this sample their progress, invitation and deadline.
    assert_eq!(table.len(), survey.population.len());
    let table: Vec<_> = table.into_iter().filter(|r| r.contacts > 0).collect();
    assert_eq!(table.len(), n);
    assert!(table.iter().all(|r| r.contacts == 1));
    use coherence::campaign::Invitation;
    assert!(table.iter().all(|r| r.invited == Some(Invitation::Queued)));
    let submitted = table.iter().filter(|r| r.submitted.is_some()).count();
    assert_eq!(submitted, demo.submitted);
    assert!(table
        .iter()
        .filter(|r| r.submitted.is_some())
        .all(|r| r.sections_done == r.sections_total && r.sections_total > 0));
    use coherence::campaign::Stage;
    let by_stage = |stage: Stage| table.iter().filter(|r| r.stage() == stage).count();
    assert_eq!(by_stage(Stage::Submitted), demo.submitted);
    assert_eq!(by_stage(Stage::Draft), demo.drafts);
    let extended = table.iter().find(|r| &r.iso3 == first).unwrap();
    assert_eq!(
        extended
            .deadline
            .map(|d| d.format("%Y-%m-%d %H:%M").to_string()),
        Some(now.format("%Y-%m-%d %H:%M").to_string())
    );
    let list = statements.lock().unwrap().clone();
    list
}

/// Logs written to a pipe (a file, a collector) carry no ANSI colour codes.
async fn logs_to_a_pipe_have_no_colour_codes(backend: Backend) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(backend, dir.path());
    let port = crate::helpers::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_coherence"))
        .arg("serve")
        .env("COHERENCE_DATABASE_URL", &url)
        .env("COHERENCE_BIND", format!("127.0.0.1:{port}"))
        .env("COHERENCE_SURVEYS", fixtures().join("surveys"))
        .env("COHERENCE_LOG", "info")
        .env_remove("COHERENCE_SMTP_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run coherence serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut lines: Vec<String> = Vec::new();
    while !lines.iter().any(|l| l.contains("listening")) && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(line);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    lines.extend(rx.try_iter());
    let log = lines.join("\n");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("INFO") && l.contains("listening")),
        "the server logged its start:\n{log}"
    );
    assert!(!log.contains('\u{1b}'), "no escape codes:\n{log:?}");
}

/// States are written as the strings existing databases hold, read back as enums, and a
/// string no version wrote is an error naming it (not a panic, not a wrong state).
async fn states_are_stored_as_text_and_unknown_ones_are_errors(backend: Backend) {
    use coherence::db::outbox::{self, MailKind, NewMessage, OutboxStatus};
    use diesel::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let url = DbUrl::parse(&fresh_database(backend, dir.path())).unwrap();
    let pool = db::connect(&url, 1).unwrap();
    // Of its own: states are written by hand, and a pooled connection refuses to write.
    let mut conn = pool.open_apart().unwrap();
    let now = chrono::Utc::now().naive_utc();
    let message = |recipient| NewMessage {
        kind: MailKind::Reminder,
        survey_id: "fixture",
        country_iso3: "SWE",
        contact_id: None,
        recipient,
        subject: "s",
        body_text: "t",
        body_html: "h",
    };
    let sent = outbox::enqueue(&mut conn, &message("a@gov.example"), now).unwrap();
    let failed = outbox::enqueue(&mut conn, &message("b@gov.example"), now).unwrap();
    let claimed = outbox::claim_due(&mut conn, now, chrono::Duration::minutes(10), 10).unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(claimed.iter().all(|r| r.status == OutboxStatus::Sending));
    assert!(claimed.iter().all(|r| r.kind == MailKind::Reminder));
    for row in &claimed {
        if row.id == sent {
            outbox::mark_sent(&mut conn, &[row], now).unwrap();
        } else {
            outbox::mark_failed(&mut conn, row, "550 no such user").unwrap();
        }
    }
    use coherence::db::schema::outbox as table;
    let stored: Vec<(String, String, String)> = table::table
        .select((table::id, table::kind, table::status))
        .order(table::recipient)
        .load(&mut conn)
        .unwrap();
    assert_eq!(
        stored,
        [
            (sent.clone(), "reminder".into(), "sent".into()),
            (failed.clone(), "reminder".into(), "failed".into()),
        ]
    );
    let mut counts = outbox::counts(&mut conn, "fixture").unwrap();
    counts.sort();
    assert_eq!(counts, [(OutboxStatus::Sent, 1), (OutboxStatus::Failed, 1)]);
    assert_eq!(
        outbox::failures(&mut conn, "fixture").unwrap()[0].id,
        failed
    );

    // A state written by hand (or by a newer version) is reported, with its text.
    diesel::update(table::table.find(&failed))
        .set(table::status.eq("bounced"))
        .execute(&mut conn)
        .unwrap();
    let err = outbox::counts(&mut conn, "fixture")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown outbox status 'bounced'"), "{err}");
    diesel::update(table::table.find(&failed))
        .set(table::kind.eq("newsletter"))
        .execute(&mut conn)
        .unwrap();
    let err = outbox::survey_mail(&mut conn, "fixture")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown email kind 'newsletter'"), "{err}");
}

/// A database that cannot be opened stops the command with one line naming the cause, said
/// once (the message and its source are not both printed).
async fn an_unreachable_database_is_one_line_with_its_cause(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (url, cause) = match backend {
        Backend::Sqlite => (
            dir.path().join("missing-dir/x.db").display().to_string(),
            "unable to open database file".to_string(),
        ),
        Backend::Postgres => {
            let server = std::env::var("COHERENCE_TEST_PG").expect("COHERENCE_TEST_PG");
            (
                format!("{server}/coherence_no_such_database"),
                "database \"coherence_no_such_database\" does not exist".to_string(),
            )
        }
    };
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_coherence"))
        .arg("migrate")
        .env("COHERENCE_DATABASE_URL", &url)
        .env("COHERENCE_SURVEYS", fixtures().join("surveys"))
        .output()
        .expect("run coherence migrate");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("error: cannot connect to the database: "),
        "{stderr}"
    );
    assert_eq!(lines[0].matches(&cause).count(), 1, "{stderr}");
}

/// A page reads the response's answers and section states with its link, as JSON arrays each
/// backend builds: they must come back exactly as reading the tables gives them, whatever the
/// text (quotes, newlines, control characters, other scripts), the number (every bit of a
/// double, the largest and smallest), the order of a question's items, and times with and
/// without fractions of a second.
async fn the_link_look_up_reads_answers_and_sections_as_their_tables_hold_them(backend: Backend) {
    use chrono::NaiveDate;
    use coherence::db::schema::{answers, section_states};
    use diesel::prelude::*;
    let (app, link, pool) = one_section_saved(backend).await;
    // Of its own: rows are written by hand, and a pooled connection refuses to write.
    let mut conn = pool.open_apart().unwrap();
    let hash = coherence::access::hash_token(link.rsplit('/').next().unwrap());
    let first = tokens::open_token(&mut conn, &hash).unwrap().unwrap();
    let (response_id, by) = (first.response.unwrap().row.id, first.token.id);
    let texts = [
        "\"quoted\" \\ back\\slash",
        "two\nlines\r\n\ttabbed \u{1} \u{1f}",
        "Côte d’Ivoire, 中国, مصر, 🇸🇪",
        "[\"not\", \"json\"]",
        "",
    ];
    let numbers = [
        Some(1.0 / 3.0),
        Some(0.1 + 0.2),
        Some(f64::MAX),
        Some(f64::MIN_POSITIVE),
        Some(-5e-324),
        Some(-0.0),
        Some(123_456_789_012_345_680.0),
        None,
    ];
    let at = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
    let mut rows = Vec::new();
    // Items whose order as stored differs from the order they are written in.
    for (n, item) in ["b", "a", "10", "9", "a:b", "A"].iter().enumerate() {
        rows.push((
            answers::response_id.eq(response_id.clone()),
            answers::question_id.eq(format!("q{}", n % 2)),
            answers::item.eq(item.to_string()),
            answers::value.eq(texts[n % texts.len()].to_string()),
            answers::num.eq(numbers[n % numbers.len()]),
            answers::section_id.eq("basics"),
            answers::updated_at.eq(at.and_hms_opt(1, 2, 3).unwrap()),
            answers::updated_by.eq(&by),
            answers::visible.eq(n % 3 != 0),
        ));
    }
    for (n, num) in numbers.iter().enumerate() {
        rows.push((
            answers::response_id.eq(response_id.clone()),
            answers::question_id.eq(format!("n{n}")),
            answers::item.eq(String::new()),
            answers::value.eq(format!("{num:?}")),
            answers::num.eq(*num),
            answers::section_id.eq("basics"),
            answers::updated_at.eq(at.and_hms_opt(1, 2, 3).unwrap()),
            answers::updated_by.eq(&by),
            answers::visible.eq(true),
        ));
    }
    for row in rows {
        diesel::insert_into(answers::table)
            .values(row)
            .execute(&mut conn)
            .unwrap();
    }
    let states = [
        ("more", at.and_hms_opt(4, 5, 6).unwrap(), None),
        (
            "other",
            at.and_hms_micro_opt(4, 5, 6, 789_012).unwrap(),
            Some(at.and_hms_milli_opt(7, 8, 9, 100).unwrap()),
        ),
    ];
    for (section, updated_at, ready_at) in states {
        diesel::insert_into(section_states::table)
            .values((
                section_states::response_id.eq(&response_id),
                section_states::section_id.eq(section),
                section_states::version.eq(7),
                section_states::updated_at.eq(updated_at),
                section_states::updated_by.eq(&by),
                section_states::ready_at.eq(ready_at),
                section_states::ready_by.eq(ready_at.map(|_| &by)),
            ))
            .execute(&mut conn)
            .unwrap();
    }

    let opened = tokens::open_token(&mut conn, &hash)
        .unwrap()
        .unwrap()
        .response
        .unwrap();
    let answers = db::answers::load_answers(&mut conn, &response_id).unwrap();
    assert!(answers.len() >= 10, "{answers:?}");
    assert_eq!(opened.answers, answers);
    // Each number to the last bit, as the table gives it (== takes -0.0 for 0.0).
    for n in 0..numbers.len() {
        let bits =
            |a: &coherence::survey::answer::Answers| a[&format!("n{n}")][0].num.map(f64::to_bits);
        assert_eq!(bits(&opened.answers), bits(&answers), "n{n}");
    }
    // Written and read back exactly (SQLite stores -0.0 as 0).
    assert_eq!(answers["n0"][0].num, Some(1.0 / 3.0));
    assert_eq!(answers["n1"][0].num, Some(0.1 + 0.2));
    assert_eq!(answers["n4"][0].num, Some(-5e-324));
    let mut by_table = db::sections::section_states(&mut conn, &response_id).unwrap();
    let mut by_link = opened.sections;
    by_table.sort_by(|a, b| a.section_id.cmp(&b.section_id));
    by_link.sort_by(|a, b| a.section_id.cmp(&b.section_id));
    assert_eq!(by_table.len(), 3, "basics, more, other");
    assert_eq!(by_link, by_table);

    // A link whose response does not exist yet reads none.
    let other = app.issue_token("fixture", "NOR", "Ola");
    let hash = coherence::access::hash_token(other.rsplit('/').next().unwrap());
    let opened = tokens::open_token(&mut conn, &hash).unwrap().unwrap();
    assert!(opened.response.is_none());
    app.stop().await;
}

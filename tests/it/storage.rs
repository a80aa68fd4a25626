//! Storage on both backends: migrations, reference data, the shipped surveys served end to end.

use coherence::db::{self, queries, DbUrl};
use coherence::reference::Countries;

use crate::helpers::{fresh_database, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    migrations_apply_revert_and_reapply,
    units_migration_keeps_every_response_and_answer,
    countries_are_loaded_with_their_groups,
    shipped_surveys_render_every_section,
    healthz_answers_when_the_database_is_up,
);

async fn migrations_apply_revert_and_reapply(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = DbUrl::parse(&fresh_database(backend, dir.path())).unwrap();
    let pool = db::connect(&url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    // Every down.sql must undo its up.sql: revert all, then apply again from scratch.
    db::revert_all_migrations(&mut conn).unwrap();
    assert!(queries::count_tokens(&mut conn).is_err(), "tables are gone");
    let applied = db::run_migrations(&mut conn).unwrap();
    assert_eq!(applied.len(), 6);
    assert_eq!(queries::count_tokens(&mut conn).unwrap(), 0);
}

/// The respondent-units migration rebuilds `responses` on SQLite, where a careless rebuild
/// would cascade-delete every answer. Reverting it and applying it again on a database with a
/// submitted response must keep the response, its answers and its section versions.
async fn units_migration_keeps_every_response_and_answer(backend: Backend) {
    use coherence::db::schema::{answers, responses, section_states};
    use diesel::prelude::*;
    let app = TestApp::spawn(backend).await;
    let link = app.issue_token("fixture", "SWE", "Anna");
    let saved = app
        .save_section(&link, "basics", &[("name", "Anna"), ("active", "yes")])
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let url = DbUrl::parse(&app.database_url).unwrap();
    let pool = db::connect(&url, 1).unwrap();
    let mut conn = pool.get().unwrap();
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
    // The newer migrations first, then the units migration.
    assert_eq!(
        db::revert_last_migration(&mut conn).unwrap(),
        "20261129000006"
    );
    assert_eq!(
        db::revert_last_migration(&mut conn).unwrap(),
        "20261127000005"
    );
    assert_eq!(
        db::revert_last_migration(&mut conn).unwrap(),
        "20261127000004"
    );
    assert_eq!(
        counts(&mut conn),
        before,
        "after reverting the units migration"
    );
    assert_eq!(db::run_migrations(&mut conn).unwrap().len(), 3);
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
        queries::sync_countries(&mut conn, &list).unwrap(),
        list.iter().count()
    );
    // A second sync updates in place.
    assert_eq!(queries::sync_countries(&mut conn, &list).unwrap(), 0);
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

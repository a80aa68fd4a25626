//! How many SQL statements a request sends, counted by the pooled connections themselves and
//! read from `/metrics`, as the benchmark reads them from the server process. Every test runs
//! on SQLite and PostgreSQL.

use coherence::db::{self, DbUrl};
use diesel::prelude::*;

use crate::helpers::{fixtures, fresh_database, mail_env, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    metrics_counts_requests_and_statements,
    page_views_send_few_statements,
    questions_hidden_or_shown_take_a_few_statements_however_many,
    invitations_and_reminders_send_statements_per_round_not_per_contact,
);

/// Pooled PostgreSQL connections do not JIT-compile queries: on the results pages at 100,000
/// organisations compilation took most of the time (see `db::Manager::open`). They cancel a
/// statement after `db::STATEMENT_TIMEOUT`, but for work at start.
#[test]
fn pooled_postgresql_connections_do_not_jit_compile_and_time_statements_out() {
    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        jit: String,
    }
    #[derive(diesel::QueryableByName)]
    struct Timeout {
        #[diesel(sql_type = diesel::sql_types::Text)]
        statement_timeout: String,
    }
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(Backend::Postgres, dir.path());
    let pool = db::connect(&DbUrl::parse(&url).unwrap(), 2).unwrap();
    for _ in 0..2 {
        let mut conn = pool.get().unwrap();
        let shown: Vec<Setting> = diesel::sql_query("SHOW jit").load(&mut *conn).unwrap();
        assert_eq!(shown[0].jit, "off");
        let shown: Vec<Timeout> = diesel::sql_query("SHOW statement_timeout")
            .load(&mut *conn)
            .unwrap();
        assert_eq!(shown[0].statement_timeout, "30s", "db::STATEMENT_TIMEOUT");
    }
    // Work at start runs without the limit (a pool of one: the same connection), which is
    // back once it is done.
    let pool = db::connect(&DbUrl::parse(&url).unwrap(), 1).unwrap();
    let timeout = |conn: &mut db::DbConn| -> String {
        diesel::sql_query("SHOW statement_timeout")
            .load::<Timeout>(conn)
            .unwrap()
            .remove(0)
            .statement_timeout
    };
    let during = pool
        .without_statement_timeout(|conn| -> Result<String, db::DbError> { Ok(timeout(conn)) })
        .unwrap();
    assert_eq!(during, "0");
    assert_eq!(timeout(&mut pool.get().unwrap()), "30s");
}

/// PostgreSQL ended every pooled session (as a restart does): the pool sees it at checkout
/// without sending a statement, and opens new connections; no request fails.
#[tokio::test]
async fn sessions_ended_by_postgresql_are_replaced_without_a_statement() {
    use diesel::{Connection, PgConnection, RunQueryDsl};
    let app = TestApp::spawn(Backend::Postgres).await;
    let link = app.issue_token("fixture", "SWE", "Anna");
    let section = format!("{link}/s/basics");
    assert_eq!(app.get(&section).await.status, 200);
    let (server, name) = app.database_url.rsplit_once('/').unwrap();
    let mut admin = PgConnection::establish(&format!("{server}/postgres")).unwrap();
    let terminate =
        format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'");
    let killed = diesel::sql_query(&terminate).execute(&mut admin).unwrap();
    assert!(killed >= 1, "the pool had connections");
    // Time for the sessions to end (a request at the very moment retries on another).
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (health, sent) = app.get_counting("/healthz").await;
    assert_eq!(health.status, 200);
    assert_eq!(sent, 1, "no statement was sent on a dead connection");
    let (page, sent) = app.get_counting(&section).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(sent, 1, "a section page view sent {sent} statements");
    // At the very moment of the end: the request goes through on a new connection.
    diesel::sql_query(&terminate).execute(&mut admin).unwrap();
    assert_eq!(app.get(&section).await.status, 200);
    assert_eq!(app.get("/healthz").await.status, 200);
    app.stop().await;
}

async fn metrics_counts_requests_and_statements(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let page = app.get("/metrics").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    for name in [
        "coherence_http_requests_total",
        "coherence_sql_statements_total",
    ] {
        assert!(
            page.body.contains(&format!("# TYPE {name} counter\n")),
            "{}",
            page.body
        );
    }
    // Reading the counters sends no statement, and counts as a request.
    let requests = app.metric("coherence_http_requests_total").await;
    let statements = app.sql_statements().await;
    assert_eq!(app.sql_statements().await, statements);
    assert_eq!(
        app.metric("coherence_http_requests_total").await,
        requests + 3
    );
    // The health check sends exactly its one `SELECT 1`: the pool checks a connection it hands
    // out without a statement.
    let (health, sent) = app.get_counting("/healthz").await;
    assert_eq!(health.status, 200);
    assert_eq!(sent, 1);
    // A page that needs no database sends none.
    let (css, sent) = app.get_counting("/static/app.css").await;
    assert_eq!(css.status, 200);
    assert_eq!(sent, 0);
    // A save: the link read with its response, then the save, one statement (see
    // save_path.rs).
    let link = app.issue_token("fixture", "SWE", "Anna");
    let form = app.get(&format!("{link}/s/basics")).await;
    let before = app.sql_statements().await;
    let saved = app
        .post_form_from(&form, &format!("{link}/s/basics"), &[("name", "Anna")])
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let sent = app.sql_statements().await - before;
    assert_eq!(sent, 2, "a save sent {sent} statements");
    // Nothing about any survey or country is exposed.
    let metrics = app.get("/metrics").await.body;
    for secret in ["fixture", "SWE", "Anna", "basics"] {
        assert!(!metrics.contains(secret), "{metrics}");
    }
    app.stop().await;
}

async fn page_views_send_few_statements(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app.issue_token("fixture", "SWE", "Anna");
    let section = format!("{link}/s/basics");
    let (first, first_sent) = app.get_counting(&section).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let (page, sent) = app.get_counting(&section).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let (overview, overview_sent) = app.get_counting(&link).await;
    assert_eq!(overview.status, 200, "{}", overview.body);
    let (review, review_sent) = app.get_counting(&format!("{link}/review")).await;
    assert_eq!(review.status, 200, "{}", review.body);
    println!(
        "STATEMENTS {backend:?}: first section view {first_sent}, section view {sent}, \
         overview {overview_sent}, review {review_sent}"
    );
    // The link, with its response, answers and section states, in one statement.
    assert_eq!(sent, 1, "a section page view sent {sent} statements");
    // The overview also records the link's use and reads the survey-change notices and the
    // team; the review page the response's versions and the link's entry.
    assert!(
        overview_sent <= 4,
        "the overview sent {overview_sent} statements"
    );
    assert!(
        review_sent <= 3,
        "the review page sent {review_sent} statements"
    );
    // The submission reads the response with the link too, not again.
    let saved = app
        .save_section(&link, "basics", &[("name", "Anna"), ("active", "yes")])
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let saved = app
        .save_section(&link, "plans", &[("has_plan", "no")])
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let review = app.get(&format!("{link}/review")).await;
    let before = app.sql_statements().await;
    let submitted = app.post_form_from_review(&review, &link).await;
    let submit_sent = app.sql_statements().await - before;
    assert_eq!(submitted.status, 303, "{}", submitted.body);
    println!("STATEMENTS {backend:?}: submission {submit_sent}");
    // 16 when it read the response again after the link.
    assert!(
        submit_sent <= 12,
        "the submission sent {submit_sent} statements"
    );
    app.stop().await;
}

/// The shipped `coherence-2008` hides 21 of its 51 questions until earlier answers show them:
/// a link's first page records them in one statement (it took two per question), and a save
/// whose answers hide or show questions, however many, is still one statement (it added three,
/// and BEGIN and COMMIT). What is stored then matches the survey's conditions under the saved
/// answers.
async fn questions_hidden_or_shown_take_a_few_statements_however_many(backend: Backend) {
    use coherence::db::schema::{answers, hidden_questions, responses};
    use coherence::survey::answer::Visibility;
    use std::collections::BTreeSet;

    let shipped = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("surveys");
    let app = TestApp::spawn_with(backend, shipped.clone()).await;
    let text = std::fs::read_to_string(shipped.join("coherence-2008.toml")).unwrap();
    let survey = coherence::survey::parse_survey("coherence-2008.toml", &text)
        .0
        .unwrap();
    let at_first = Visibility::evaluate(&survey, &Default::default());
    let hidden_at_first = survey
        .questions()
        .filter(|q| !at_first.question(&q.id))
        .count();
    assert!(hidden_at_first >= 20, "{hidden_at_first}");

    // The first page: the response created with its hidden questions.
    let link = app.issue_token("coherence-2008", "SWE", "Anna");
    let (overview, first_sent) = app.get_counting(&link).await;
    assert_eq!(overview.status, 200, "{}", overview.body);
    // The link read and its use recorded, the response looked for, then created (BEGIN, the
    // row, its hidden questions, COMMIT), read back, and the overview's reads.
    assert!(
        first_sent <= 12,
        "the first page sent {first_sent} statements"
    );

    // Every section's save: the read and the save statement (see save_path.rs; none for a
    // save that changes nothing), which also brings the hidden questions in line when the
    // answers hide or show some.
    let mut changed_visibility = 0;
    for section in &survey.sections {
        let path = format!("{link}/s/{}", section.id);
        let form = app.get(&path).await;
        if form.status == 404 {
            continue; // a section its answers hide
        }
        let fields = coherence::results::demo::section_fields(&survey, section, "SWE", 7);
        let fields: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let before = app.sql_statements().await;
        let saved = app.post_form_from(&form, &path, &fields).await;
        let sent = app.sql_statements().await - before;
        assert_eq!(saved.status, 303, "{}", saved.body);
        let more = saved
            .location
            .as_deref()
            .is_some_and(|l| l.contains("more=1"));
        changed_visibility += usize::from(more);
        assert!(sent <= 2, "{}: {sent} statements", section.id);
    }
    assert!(changed_visibility >= 2, "saves that showed questions");

    // Stored: the questions the conditions hide under the saved answers.
    let url = db::DbUrl::parse(&app.database_url).unwrap();
    let pool = db::connect(&url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    let response: String = responses::table
        .filter(responses::survey_id.eq("coherence-2008"))
        .select(responses::id)
        .first(&mut conn)
        .unwrap();
    let answers = db::answers::load_answers(&mut conn, &response).unwrap();
    let visibility = Visibility::evaluate(&survey, &answers);
    let expected: BTreeSet<String> = survey
        .questions()
        .filter(|q| !visibility.question(&q.id))
        .map(|q| q.id.clone())
        .collect();
    let stored: BTreeSet<String> = hidden_questions::table
        .filter(hidden_questions::response_id.eq(&response))
        .select(hidden_questions::question_id)
        .load(&mut conn)
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(stored, expected);
    assert!(
        expected.len() < hidden_at_first,
        "the saves showed questions"
    );
    // And each stored answer is counted only where its question is shown.
    let rows: Vec<(String, bool)> = answers::table
        .filter(answers::response_id.eq(&response))
        .select((answers::question_id, answers::visible))
        .load(&mut conn)
        .unwrap();
    assert!(!rows.is_empty());
    for (question, visible) in rows {
        assert_eq!(visible, !expected.contains(&question), "{question}");
    }

    // An answered question hidden, then shown again: its answer is kept, not counted while
    // hidden, counted again once shown.
    let policy = format!("{link}/s/policy");
    let year_visible = |conn: &mut db::DbConn| -> (bool, bool) {
        let visible: bool = answers::table
            .filter(answers::response_id.eq(&response))
            .filter(answers::question_id.eq("policy_year"))
            .select(answers::visible)
            .first(conn)
            .unwrap();
        let hidden: i64 = hidden_questions::table
            .filter(hidden_questions::response_id.eq(&response))
            .filter(hidden_questions::question_id.eq("policy_year"))
            .count()
            .get_result(conn)
            .unwrap();
        (visible, hidden == 1)
    };
    for (has_policy, shown) in [("yes", true), ("no", false), ("yes", true)] {
        let form = app.get(&policy).await;
        let before = app.sql_statements().await;
        let saved = app
            .post_form_from(
                &form,
                &policy,
                &[
                    ("has_migration_policy", has_policy),
                    ("policy_year", "2001"),
                    ("policy_refers_development", "yes"),
                    ("aid_refers_migration", "no"),
                ],
            )
            .await;
        let sent = app.sql_statements().await - before;
        assert_eq!(saved.status, 303, "{}", saved.body);
        assert!(sent <= 3 + 4 + 3, "policy {has_policy}: {sent} statements");
        assert_eq!(
            year_visible(&mut conn),
            (shown, !shown),
            "policy {has_policy}"
        );
    }
    app.stop().await;
}

/// A round of invitations or reminders queues its links, messages and audit entries with
/// multi-row statements: 150 contacts take a few dozen statements, not several per contact
/// (before, six each: 900). Each contact still holds one live link, the reminder's replacing
/// the invitation's.
async fn invitations_and_reminders_send_statements_per_round_not_per_contact(backend: Backend) {
    const CONTACTS: usize = 150;
    let dir = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let database_url = fresh_database(backend, dir.path());
    // Email on (rounds need it), but the worker polls once at start only: it sends nothing
    // while the rounds are counted. (The audit sealer still runs: a few statements a second.)
    let mut env = vec![("COHERENCE_MAIL_POLL_MS", "3600000".to_string())];
    env.extend(mail_env(crate::helpers::free_port()));
    let app = TestApp::start_with(database_url, fixtures().join("surveys"), dir, env).await;
    app.add_user(
        "admin@gfmd.example.org",
        "a long admin passphrase",
        "admin",
        &[],
    );
    let res = app
        .login("admin@gfmd.example.org", "a long admin passphrase")
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let countries = ["SWE", "PHL", "MAR", "MEX", "KEN", "BGD", "FRA"];
    let mut csv = String::from("country,name,email,language,office\n");
    for i in 0..CONTACTS {
        let c = countries[i % countries.len()];
        csv.push_str(&format!(
            "{c},Official {i},Official{i}@{}.gov.example,{},Ministry {i}\n",
            c.to_lowercase(),
            ["en", "fr", "es"][i % 3]
        ));
    }
    let res = app.upload_contacts("fixture", &csv).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let live_links = || {
        use coherence::db::schema::access_tokens;
        let pool = db::connect(&DbUrl::parse(&app.database_url).unwrap(), 1).unwrap();
        let mut conn = pool.get().unwrap();
        let live: i64 = access_tokens::table
            .filter(access_tokens::revoked_at.is_null())
            .count()
            .get_result(&mut conn)
            .unwrap();
        let all: i64 = access_tokens::table.count().get_result(&mut conn).unwrap();
        (live, all)
    };
    for (round, queued, links) in [
        ("invite", CONTACTS, (150, 150)),
        ("remind", CONTACTS, (150, 300)),
    ] {
        let page = app.get("/admin").await;
        let before = app.sql_statements().await;
        let res = app
            .post(
                &format!("/admin/surveys/fixture/{round}"),
                &[("_csrf", &page.hidden("_csrf"))],
            )
            .await;
        let sent = app.sql_statements().await - before;
        assert!(
            res.body.contains(&format!("{queued} message(s) queued")),
            "{}",
            res.body
        );
        println!("STATEMENTS {backend:?}: {round} of {CONTACTS} contacts {sent}");
        assert!(sent <= 60, "the {round} round sent {sent} statements");
        assert_eq!(
            live_links(),
            links,
            "live and all links after the {round} round"
        );
    }
    // Inviting again queues nothing, and leaves the links alone.
    let page = app.get("/admin").await;
    let res = app
        .post(
            "/admin/surveys/fixture/invite",
            &[("_csrf", &page.hidden("_csrf"))],
        )
        .await;
    assert!(res.body.contains("0 message(s) queued"), "{}", res.body);
    assert_eq!(live_links(), (150, 300));
    app.stop().await;
}

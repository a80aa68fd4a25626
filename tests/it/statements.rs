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
    invitations_and_reminders_send_statements_per_round_not_per_contact,
);

/// Pooled PostgreSQL connections do not JIT-compile queries: on the results pages at 100,000
/// organisations compilation took most of the time (see `db::Manager::open`).
#[test]
fn pooled_postgresql_connections_do_not_jit_compile() {
    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        jit: String,
    }
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(Backend::Postgres, dir.path());
    let pool = db::connect(&DbUrl::parse(&url).unwrap(), 2).unwrap();
    for _ in 0..2 {
        let mut conn = pool.get().unwrap();
        let shown: Vec<Setting> = diesel::sql_query("SHOW jit").load(&mut *conn).unwrap();
        assert_eq!(shown[0].jit, "off");
    }
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
    assert!(sent <= 3, "a section page view sent {sent} statements");
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
    // A save is a transaction: BEGIN and COMMIT are counted with the rest.
    let link = app.issue_token("fixture", "SWE", "Anna");
    let form = app.get(&format!("{link}/s/basics")).await;
    let before = app.sql_statements().await;
    let saved = app
        .post_form_from(&form, &format!("{link}/s/basics"), &[("name", "Anna")])
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let sent = app.sql_statements().await - before;
    assert!(sent >= 4, "a save sent {sent} statements");
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
    assert!(sent <= 7, "a section page view sent {sent} statements");
    assert!(
        overview_sent <= 11,
        "the overview sent {overview_sent} statements"
    );
    assert!(
        review_sent <= 7,
        "the review page sent {review_sent} statements"
    );
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

//! Administrators and owners: contacts, invitations over a real SMTP server, the outbox under
//! failure, access control. Every test runs on SQLite and PostgreSQL.

use std::collections::HashSet;

use crate::helpers::{free_port, mail_env, Backend, SmtpServer, TestApp};
use crate::on_both_backends;

on_both_backends!(
    invitations_reach_each_contact_who_can_then_answer,
    messages_wait_while_smtp_is_down_then_all_go_out_once,
    permanent_rejections_are_recorded_and_shown,
    restart_mid_batch_loses_nothing_and_sends_nothing_twice,
    a_batch_sent_while_the_database_is_unavailable_is_recorded_once_it_is_back,
    two_instances_never_send_the_same_message,
    bad_csv_rows_are_each_reported_and_nothing_imported,
    admin_routes_refuse_anonymous_users_focal_points_and_other_owners,
    owners_extend_a_deadline_and_reopen_a_response,
    sign_in_setup_link_and_rate_limit,
    cli_invites_then_reminds_only_countries_not_submitted,
    invitations_follow_the_contacts_language,
);

const ADMIN: (&str, &str) = ("admin@gfmd.example.org", "a long admin passphrase");

/// A contacts file of `n` rows over a few countries.
fn contacts_csv(n: usize) -> String {
    let countries = ["SWE", "PHL", "MAR", "MEX", "KEN", "BGD"];
    let mut csv = String::from("country,name,email,language,office\n");
    for i in 0..n {
        let c = countries[i % countries.len()];
        csv.push_str(&format!(
            "{c},Official {i},official{i}@{}.gov.example,en,Ministry of Foreign Affairs\n",
            c.to_lowercase()
        ));
    }
    csv
}

async fn admin_post(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> crate::helpers::Page {
    let page = app.get("/admin").await;
    let csrf = page.hidden("_csrf");
    let mut all = vec![("_csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    app.post(path, &all).await
}

async fn signed_in_admin(app: &TestApp) {
    app.add_user(ADMIN.0, ADMIN.1, "admin", &[]);
    let res = app.login(ADMIN.0, ADMIN.1).await;
    assert_eq!(res.status, 303, "{}", res.body);
}

fn unique_ids(mails: &[crate::helpers::Mail]) -> usize {
    mails
        .iter()
        .map(|m| m.message_id.clone())
        .collect::<HashSet<_>>()
        .len()
}

async fn invitations_reach_each_contact_who_can_then_answer(backend: Backend) {
    let smtp = SmtpServer::start(&[], 0);
    let app = TestApp::spawn_with_mail(backend, smtp.port).await;
    signed_in_admin(&app).await;
    let res = app.upload_contacts("fixture", &contacts_csv(4)).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(
        res.body.contains("4 added, 0 updated, 0 unchanged"),
        "{}",
        res.body
    );
    // Chosen countries first (an unknown code is refused), then everyone else.
    let res = admin_post(
        &app,
        "/admin/surveys/fixture/invite",
        &[("countries", "SWE, XXX")],
    )
    .await;
    assert_eq!(res.status, 422);
    assert!(res.body.contains("Unknown country codes: XXX"));
    let res = admin_post(
        &app,
        "/admin/surveys/fixture/invite",
        &[("countries", "swe phl")],
    )
    .await;
    assert!(
        res.body.contains("2 message(s) queued (0 skipped)"),
        "{}",
        res.body
    );
    smtp.wait_for(2).await;
    let res = admin_post(&app, "/admin/surveys/fixture/invite", &[]).await;
    assert!(
        res.body.contains("2 message(s) queued (2 skipped)"),
        "{}",
        res.body
    );
    let mails = app.mails_when_outbox_empty(&smtp, 4).await;
    assert_eq!(mails.len(), 4);
    assert_eq!(unique_ids(&mails), 4);
    let countries = [
        ("official0@swe", "Sweden"),
        ("official1@phl", "Philippines"),
        ("official2@mar", "Morocco"),
        ("official3@mex", "Mexico"),
    ];
    for (prefix, country) in countries {
        let mail = mails
            .iter()
            .find(|m| m.to.starts_with(prefix))
            .unwrap_or_else(|| panic!("mail to {prefix}"));
        assert_eq!(
            mail.subject,
            format!("Fixture survey: the personal link for {country}")
        );
        assert!(
            mail.body
                .contains("Please submit the response by 31 December 2099, 23:59 (UTC)."),
            "deadline in {}",
            mail.body
        );
        assert!(
            mail.body.contains("survey@gfmd.example.org"),
            "who to ask for help"
        );
        // Follow the link and answer as that country.
        let link = mail.link_path().expect("a personal link");
        let overview = app.get(&link).await;
        assert!(
            overview.body.contains(&format!("Response of {country}")),
            "{link}"
        );
        let saved = app
            .save_section(&link, "basics", &[("name", "Focal")])
            .await;
        assert_eq!(saved.status, 303);
    }
    // The status table shows invitations delivered and links opened.
    let status = app.get("/admin/surveys/fixture/status.csv").await;
    let swe = status
        .body
        .lines()
        .find(|l| l.starts_with("SWE,"))
        .expect("SWE row");
    let cols: Vec<&str> = swe.split(',').collect();
    assert_eq!(cols[2], "1", "contacts");
    assert!(
        !cols[3].is_empty() && !cols[4].is_empty(),
        "invited and opened: {swe}"
    );
    assert!(
        swe.starts_with("SWE,Sweden,"),
        "the CSV names countries in English"
    );
    // The page names them in its language; the CSV stays English.
    let fr = app.get("/admin/surveys/fixture?lang=fr").await;
    assert!(
        fr.body
            .contains(">Suède</a> <span class=\"code\">SWE</span>"),
        "{}",
        fr.body
    );
    let csv = app.get("/admin/surveys/fixture/status.csv").await;
    assert!(csv.body.contains("\nSWE,Sweden,"));
    app.get("/admin/surveys/fixture?lang=en").await;
    // Inviting again queues nothing twice.
    let res = admin_post(&app, "/admin/surveys/fixture/invite", &[]).await;
    assert!(
        res.body.contains("0 message(s) queued (4 skipped)"),
        "{}",
        res.body
    );
    app.stop().await;
}

async fn messages_wait_while_smtp_is_down_then_all_go_out_once(backend: Backend) {
    let port = free_port();
    let app = TestApp::spawn_with_mail(backend, port).await;
    signed_in_admin(&app).await;
    app.upload_contacts("fixture", &contacts_csv(5)).await;
    let res = admin_post(&app, "/admin/surveys/fixture/invite", &[]).await;
    assert!(res.body.contains("5 message(s) queued"));
    // Nobody listens: the messages wait, with the error recorded.
    let tried = tried_and_waiting(&app, 5).await;
    assert_eq!(tried, 5, "every message tried once at least and waiting");
    let page = app.get("/admin/surveys/fixture").await;
    assert!(
        page.body.contains("Email: 5 waiting, 0 sent, 0 failed"),
        "{}",
        page.body
    );
    // The server comes up: everything goes out, once.
    let smtp = SmtpServer::start_on(port, tempfile::tempdir().unwrap(), &[], 0);
    each_sent_once(&app, &smtp, 5).await;
    app.stop().await;
}

/// Once the outbox is empty: `n` messages delivered, each once (no duplicates, `n` distinct
/// Message-IDs), and the survey's page says all `n` were sent.
async fn each_sent_once(app: &TestApp, smtp: &SmtpServer, n: usize) {
    let mails = app.mails_when_outbox_empty(smtp, n).await;
    assert_eq!(mails.len(), n, "no duplicates");
    assert_eq!(unique_ids(&mails), n);
    let page = app.get("/admin/surveys/fixture").await;
    assert!(
        page.body
            .contains(&format!("Email: 0 waiting, {n} sent, 0 failed")),
        "{}",
        page.body
    );
}

/// How many outbox messages are waiting with a failed attempt recorded, once `n` are (or after
/// 10 s).
async fn tried_and_waiting(app: &TestApp, n: i64) -> i64 {
    use coherence::db::schema::outbox;
    use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl};
    let tried = |conn: &mut coherence::db::DbConn| {
        outbox::table
            .filter(outbox::status.eq("pending"))
            .filter(outbox::attempts.gt(0))
            .filter(outbox::last_error.is_not_null())
            .count()
            .get_result(conn)
            .expect("the outbox is counted")
    };
    let limit = std::time::Duration::from_secs(10);
    app.count_until(limit, tried, |tried| tried >= n).await
}

async fn permanent_rejections_are_recorded_and_shown(backend: Backend) {
    let smtp = SmtpServer::start(&["official1@"], 0);
    let app = TestApp::spawn_with_mail(backend, smtp.port).await;
    signed_in_admin(&app).await;
    app.upload_contacts("fixture", &contacts_csv(3)).await;
    admin_post(&app, "/admin/surveys/fixture/invite", &[]).await;
    smtp.wait_for(2).await;
    let mut page = app.get("/admin/surveys/fixture").await;
    for _ in 0..50 {
        if page.body.contains("1 failed") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        page = app.get("/admin/surveys/fixture").await;
    }
    assert!(
        page.body.contains("Email: 0 waiting, 2 sent, 1 failed"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Delivery failures"));
    assert!(
        page.body.contains("official1@phl.gov.example (invite):"),
        "{}",
        page.body
    );
    assert!(page.body.contains("550"), "the server's answer is shown");
    let status = app
        .get("/admin/surveys/fixture/status.csv?sort=-errors")
        .await;
    let first = status.body.lines().nth(1).unwrap();
    assert!(
        first.starts_with("PHL,") && first.contains(",1,"),
        "{first}"
    );
    assert_eq!(smtp.messages().len(), 2);
    app.stop().await;
}

async fn restart_mid_batch_loses_nothing_and_sends_nothing_twice(backend: Backend) {
    // A slow server, so the batch is still going when the app stops.
    let smtp = SmtpServer::start(&[], 150);
    let app = TestApp::spawn_with_mail(backend, smtp.port).await;
    signed_in_admin(&app).await;
    app.upload_contacts("fixture", &contacts_csv(12)).await;
    admin_post(&app, "/admin/surveys/fixture/invite", &[]).await;
    smtp.wait_for(2).await;
    let (url, surveys, dir, env) = (
        app.database_url.clone(),
        app.surveys.clone(),
        app.dir.clone(),
        app.env.clone(),
    );
    app.stop().await;
    let sent_before_restart = smtp.messages().len();
    assert!(
        sent_before_restart < 12,
        "the batch was interrupted ({sent_before_restart} sent)"
    );
    let app = TestApp::start_with(url, surveys, dir, env).await;
    // The stopped worker recorded what it sent and gave the rest back: nothing is left
    // claimed, so the outbox empties without waiting for a lease to run out.
    let mails = app.mails_when_outbox_empty(&smtp, 12).await;
    assert_eq!(mails.len(), 12, "nothing sent twice");
    assert_eq!(unique_ids(&mails), 12);
    let recipients: HashSet<String> = mails.iter().map(|m| m.to.clone()).collect();
    assert_eq!(recipients.len(), 12, "every contact once");
    app.stop().await;
}

/// The database stops taking writes while a batch is on its way to the SMTP server (SQLite: a
/// process holds the write lock past the busy timeout; PostgreSQL: it refuses connections, and
/// those open are ended). The worker cannot record the batch as sent, and keeps trying: once
/// the database is back, every message is recorded as sent, and none goes out a second time
/// (given up, the batch would stay claimed for its 10-minute lease and then be sent again).
async fn a_batch_sent_while_the_database_is_unavailable_is_recorded_once_it_is_back(
    backend: Backend,
) {
    use coherence::db::schema::outbox;
    use diesel::{Connection, ExpressionMethods, QueryDsl, RunQueryDsl};
    // A slow server (it answers one message at a time): the batch takes about 3.6 s.
    let smtp = SmtpServer::start(&[], 300);
    let app = TestApp::spawn_with_mail(backend, smtp.port).await;
    signed_in_admin(&app).await;
    app.upload_contacts("fixture", &contacts_csv(12)).await;
    admin_post(&app, "/admin/surveys/fixture/invite", &[]).await;
    // The first message is in: the batch was claimed, and the rest are on their way.
    smtp.wait_for(1).await;
    let sending = |conn: &mut coherence::db::DbConn| -> i64 {
        outbox::table
            .filter(outbox::status.eq("sending"))
            .count()
            .get_result(conn)
            .unwrap()
    };
    match backend {
        Backend::Sqlite => {
            // The invitations' audit entries sealed first: the sealer then writes nothing
            // (and waits for no lock) until the batch is recorded, and the worker's write is
            // the first to wait for the lock.
            let pending = |conn: &mut coherence::db::DbConn| -> i64 {
                use coherence::db::schema::audit_pending;
                audit_pending::table.count().get_result(conn).unwrap()
            };
            let limit = std::time::Duration::from_secs(5);
            assert_eq!(app.count_until(limit, pending, |n| n == 0).await, 0);
            let mut other = diesel::SqliteConnection::establish(&app.database_url).unwrap();
            diesel::sql_query("PRAGMA busy_timeout = 5000")
                .execute(&mut other)
                .unwrap();
            diesel::sql_query("BEGIN IMMEDIATE")
                .execute(&mut other)
                .unwrap();
            // Past the server's 10 s wait for the lock, with 5 s to spare for a worker slow
            // to start it: its first attempt has failed.
            smtp.wait_for(12).await;
            tokio::time::sleep(std::time::Duration::from_secs(15)).await;
            let mut other = coherence::db::DbConn::Sqlite(other);
            assert_eq!(sending(&mut other), 12, "nothing recorded while locked");
            diesel::sql_query("ROLLBACK").execute(&mut other).unwrap();
        }
        Backend::Postgres => {
            let (server, name) = app.database_url.rsplit_once('/').unwrap();
            let mut admin = diesel::PgConnection::establish(&format!("{server}/postgres")).unwrap();
            diesel::sql_query(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
                .execute(&mut admin)
                .unwrap();
            diesel::sql_query(format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            ))
            .execute(&mut admin)
            .unwrap();
            // The batch ends while the database is away; the worker's attempts fail (a
            // connection ended, then none to be had within the pool's 5 s).
            smtp.wait_for(12).await;
            tokio::time::sleep(std::time::Duration::from_secs(6)).await;
            diesel::sql_query(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
                .execute(&mut admin)
                .unwrap();
        }
    }
    each_sent_once(&app, &smtp, 12).await;
    app.stop().await;
}

async fn two_instances_never_send_the_same_message(backend: Backend) {
    let smtp = SmtpServer::start(&[], 20);
    let first = TestApp::spawn_with_mail(backend, smtp.port).await;
    let second = TestApp::start_with(
        first.database_url.clone(),
        first.surveys.clone(),
        first.dir.clone(),
        mail_env(smtp.port),
    )
    .await;
    signed_in_admin(&first).await;
    first.upload_contacts("fixture", &contacts_csv(30)).await;
    admin_post(&first, "/admin/surveys/fixture/invite", &[]).await;
    let mails = first.mails_when_outbox_empty(&smtp, 30).await;
    assert_eq!(mails.len(), 30, "no message sent by both instances");
    assert_eq!(unique_ids(&mails), 30);
    first.stop().await;
    second.stop().await;
}

async fn bad_csv_rows_are_each_reported_and_nothing_imported(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    signed_in_admin(&app).await;
    let bad = "country,name,email,language,office\n\
               SWE,Anna,anna@gov.se,en,MFA\n\
               XYZ,Bo,bo@gov.example,en,MFA\n\
               PHL,Maria,not-an-email,en,DFA\n\
               MAR,Karim,karim@gov.ma,de,MAE\n\
               SWE,Anna Again,anna@gov.se,en,MFA\n";
    let res = app.upload_contacts("fixture", bad).await;
    assert_eq!(res.status, 422);
    for expected in [
        "line 3, country: &#x27;XYZ&#x27; is not an ISO 3166-1 alpha-3 country code",
        "line 4, email: &#x27;not-an-email&#x27; is not an email address",
        "line 5, language: &#x27;de&#x27; is not one of en, fr, es",
        "line 6, email: &#x27;anna@gov.se&#x27; already appears on line 2",
    ] {
        assert!(res.body.contains(expected), "{expected} in {}", res.body);
    }
    let export = app.get("/admin/surveys/fixture/contacts.csv").await;
    assert_eq!(
        export.body.trim(),
        "country,name,email,language,office",
        "nothing imported"
    );
    // A missing column.
    let res = app
        .upload_contacts("fixture", "country,name,email\nSWE,A,a@gov.se\n")
        .await;
    assert!(
        res.body.contains("line 1, language: missing column"),
        "{}",
        res.body
    );
    // The CLI reports the same way, and imports nothing.
    let file = app.dir.path().join("bad.csv");
    std::fs::write(&file, bad).unwrap();
    let out = app.cli(
        &["contacts", "import", "fixture", file.to_str().unwrap()],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 3, country: 'XYZ'"), "{stderr}");
    assert!(stderr.contains("4 problem(s)"), "{stderr}");
    // A good file imports; importing it again, edited, updates without duplicating.
    let good = contacts_csv(3);
    std::fs::write(&file, &good).unwrap();
    let out = app.cli(
        &["contacts", "import", "fixture", file.to_str().unwrap()],
        None,
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 added, 0 updated, 0 unchanged"));
    std::fs::write(&file, good.replace("Official 1,", "Official One,")).unwrap();
    let out = app.cli(
        &["contacts", "import", "fixture", file.to_str().unwrap()],
        None,
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 added, 1 updated, 2 unchanged"));
    let export = app.get("/admin/surveys/fixture/contacts.csv").await;
    assert_eq!(export.body.lines().count(), 4);
    assert!(export
        .body
        .contains("PHL,Official One,official1@phl.gov.example,en,Ministry of Foreign Affairs"));
    app.stop().await;
}

async fn admin_routes_refuse_anonymous_users_focal_points_and_other_owners(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_user(
        "owner@closed.example",
        "a long owner passphrase",
        "owner",
        &["closed"],
    );
    let gets = [
        "/admin",
        "/admin/surveys/fixture",
        "/admin/surveys/fixture/status.csv",
        "/admin/surveys/fixture/contacts.csv",
    ];
    let posts = [
        "/admin/surveys/fixture/invite",
        "/admin/surveys/fixture/remind",
        "/admin/surveys/fixture/countries/SWE/deadline",
        "/admin/surveys/fixture/countries/SWE/reopen",
        "/admin/logout",
    ];
    // Anonymous, and a focal point holding a personal link (with its CSRF cookie).
    let link = app.issue_token("fixture", "SWE", "Anna");
    for with_link in [false, true] {
        if with_link {
            assert_eq!(app.get(&link).await.status, 200);
        }
        for path in gets {
            let res = app.get(path).await;
            assert_eq!(res.status, 303, "{path}");
            assert_eq!(res.location.as_deref(), Some("/admin/login"), "{path}");
        }
        let form = app.get(&format!("{link}/s/basics")).await;
        let csrf = form.hidden("_csrf");
        for path in posts {
            let res = app
                .post(path, &[("_csrf", &csrf), ("closes", "2099-01-01")])
                .await;
            assert!(
                res.status == 303 && res.location.as_deref() == Some("/admin/login"),
                "{path}: {}",
                res.status
            );
        }
    }
    // An owner sees their own survey only, and cannot run invitations or imports.
    let res = app
        .login("owner@closed.example", "a long owner passphrase")
        .await;
    assert_eq!(res.status, 303);
    assert_eq!(app.get("/admin/surveys/closed").await.status, 200);
    let res = app.get("/admin/surveys/fixture").await;
    assert_eq!(res.status, 403);
    assert!(res.body.contains("Not allowed"));
    assert_eq!(
        app.get("/admin/surveys/fixture/status.csv").await.status,
        403
    );
    assert_eq!(
        app.get("/admin/surveys/closed/contacts.csv").await.status,
        403
    );
    assert_eq!(
        admin_post(&app, "/admin/surveys/closed/invite", &[])
            .await
            .status,
        403
    );
    assert_eq!(
        admin_post(&app, "/admin/surveys/fixture/countries/SWE/reopen", &[])
            .await
            .status,
        403
    );
    let dashboard = app.get("/admin").await;
    assert!(
        dashboard.body.contains("A survey that has closed")
            && !dashboard.body.contains("Fixture survey")
    );
    app.stop().await;
}

async fn owners_extend_a_deadline_and_reopen_a_response(backend: Backend) {
    let smtp = SmtpServer::start(&[], 0);
    let app = TestApp::spawn_with_mail(backend, smtp.port).await;
    signed_in_admin(&app).await;
    app.upload_contacts(
        "closed",
        "country,name,email,language,office\nSWE,Anna,anna@gov.se,en,MFA\n",
    )
    .await;
    let _ = app
        .client
        .post(format!("{}/admin/logout", app.address))
        .send()
        .await;
    app.add_user(
        "owner@closed.example",
        "a long owner passphrase",
        "owner",
        &["closed"],
    );
    let link = app.issue_token("closed", "SWE", "Anna");
    // Closed: nothing can be saved.
    let res = app
        .save_section(&link, "only", &[("q", "late answer")])
        .await;
    assert_eq!(res.status, 409);
    let res = app
        .login("owner@closed.example", "a long owner passphrase")
        .await;
    assert_eq!(res.status, 303);
    // A new deadline a little over a year ahead (at most two years ahead are accepted).
    let new_deadline = chrono::Utc::now().date_naive() + chrono::Duration::days(400);
    let res = admin_post(
        &app,
        "/admin/surveys/closed/countries/SWE/deadline",
        &[("closes", &new_deadline.format("%Y-%m-%d").to_string())],
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(res.body.contains(&format!(
        "The deadline of Sweden is now {} 23:59",
        new_deadline.format("%Y-%m-%d")
    )));
    let mails = smtp.wait_for(1).await;
    assert_eq!(mails[0].to, "anna@gov.se");
    assert!(
        mails[0].subject.starts_with("New deadline for Sweden"),
        "{}",
        mails[0].subject
    );
    // Sweden can answer and submit now; other countries stay closed.
    assert_eq!(
        app.save_section(&link, "only", &[("q", "on time")])
            .await
            .status,
        303
    );
    let overview = app.get(&link).await;
    assert!(overview.body.contains(&format!(
        "Deadline: {}, 23:59 (UTC)",
        new_deadline.format("%-d %B %Y")
    )));
    assert_eq!(app.submit(&link).await.status, 303);
    let other = app.issue_token("closed", "PHL", "Maria");
    assert_eq!(
        app.save_section(&other, "only", &[("q", "x")]).await.status,
        409
    );
    // Reopen: a draft again, recorded, and the country is told.
    let res = admin_post(&app, "/admin/surveys/closed/countries/SWE/reopen", &[]).await;
    assert!(
        res.body.contains("The response of Sweden is open again"),
        "{}",
        res.body
    );
    let mails = smtp.wait_for(2).await;
    assert!(mails
        .iter()
        .any(|m| m.subject.starts_with("Response reopened")));
    assert_eq!(
        app.save_section(&link, "only", &[("q", "revised")])
            .await
            .status,
        303
    );
    {
        use coherence::db::{self, schema, DbUrl};
        use diesel::prelude::*;
        let pool = db::connect(&DbUrl::parse(&app.database_url).unwrap(), 1).unwrap();
        let mut conn = pool.get().unwrap();
        let events: Vec<(String, String)> = schema::response_events::table
            .inner_join(
                schema::users::table.on(schema::users::id.eq(schema::response_events::user_id)),
            )
            .select((schema::response_events::kind, schema::users::email))
            .load(&mut conn)
            .unwrap();
        assert_eq!(
            events,
            vec![("reopened".to_string(), "owner@closed.example".to_string())]
        );
        let set_by: Vec<String> = schema::deadline_extensions::table
            .inner_join(
                schema::users::table.on(schema::users::id.eq(schema::deadline_extensions::set_by)),
            )
            .select(schema::users::email)
            .load(&mut conn)
            .unwrap();
        assert_eq!(set_by, vec!["owner@closed.example".to_string()]);
    }
    // Reopening a draft is refused.
    assert_eq!(
        admin_post(&app, "/admin/surveys/closed/countries/SWE/reopen", &[])
            .await
            .status,
        409
    );
    app.stop().await;
}

async fn sign_in_setup_link_and_rate_limit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // A password that is too short is refused by the CLI.
    let out = app.cli(
        &[
            "user",
            "add",
            "--email",
            "x@example.org",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some("short\n"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 12 characters"));
    // Without a password: a one-time setup link.
    let out = app.cli(
        &[
            "user",
            "add",
            "--email",
            "New@Example.org",
            "--role",
            "admin",
        ],
        None,
    );
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let link = stdout
        .lines()
        .last()
        .unwrap()
        .trim()
        .strip_prefix(&app.address)
        .unwrap()
        .to_string();
    assert!(link.starts_with("/admin/setup/"));
    let form = app.get(&link).await;
    assert!(form.body.contains("new@example.org"));
    let res = app
        .post(
            &link,
            &[("_csrf", &form.hidden("_csrf")), ("password", "too short")],
        )
        .await;
    assert_eq!(res.status, 422);
    assert!(res.body.contains("at least 12 characters"));
    let res = app
        .post(
            &link,
            &[
                ("_csrf", &form.hidden("_csrf")),
                ("password", "now a good passphrase"),
            ],
        )
        .await;
    assert!(res.body.contains("Your password is set"), "{}", res.body);
    assert_eq!(app.get(&link).await.status, 404, "the link is spent");
    let res = app.login("new@example.org", "now a good passphrase").await;
    assert_eq!(res.status, 303);
    let cookie = res
        .headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert_eq!(app.get("/admin").await.status, 200);
    // Sign out ends the session.
    assert_eq!(admin_post(&app, "/admin/logout", &[]).await.status, 303);
    assert_eq!(app.get("/admin").await.status, 303);
    // Wrong passwords: a message, then the address is blocked for a while.
    let res = app.login("new@example.org", "wrong passphrase!").await;
    assert_eq!(res.status, 401);
    assert!(res
        .body
        .contains("The email address or password is not right."));
    let mut blocked = false;
    for _ in 0..15 {
        if app
            .login("nobody@example.org", "wrong passphrase!")
            .await
            .status
            == 429
        {
            blocked = true;
            break;
        }
    }
    assert!(blocked, "repeated failures are rate-limited");
    app.stop().await;
}

async fn cli_invites_then_reminds_only_countries_not_submitted(backend: Backend) {
    let smtp = SmtpServer::start(&[], 0);
    let app = TestApp::spawn(backend).await;
    let app = TestApp {
        env: mail_env(smtp.port),
        ..app.clone_handle()
    };
    let file = app.dir.path().join("contacts.csv");
    std::fs::write(&file, contacts_csv(12)).unwrap();
    assert!(app
        .cli(
            &["contacts", "import", "fixture", file.to_str().unwrap()],
            None
        )
        .status
        .success());
    let out = app.cli(
        &["invite", "fixture", "--country", "swe", "--country", "PHL"],
        None,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("4 message(s) queued"), "{stdout}");
    assert!(
        stdout.contains("4 sent, 0 waiting to be retried"),
        "{stdout}"
    );
    let out = app.cli(&["invite", "fixture"], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("8 message(s) queued, 4 contact(s) skipped"),
        "{stdout}"
    );
    // The worker sends in batches (16 per SMTP connection): the 8 go in one, and progress
    // is shown as each batch is recorded.
    assert!(stdout.contains("... 8 sent"), "progress is shown: {stdout}");
    assert_eq!(app.mails_when_outbox_empty(&smtp, 12).await.len(), 12);
    // Sweden submits; the reminder goes to every other country, saying what remains.
    let swe = smtp
        .messages()
        .into_iter()
        .find(|m| m.to.ends_with("@swe.gov.example"))
        .unwrap();
    let link = swe.link_path().unwrap();
    app.save_section(&link, "basics", &[("name", "Anna"), ("active", "no")])
        .await;
    app.save_section(&link, "plans", &[("has_plan", "no")])
        .await;
    assert_eq!(app.submit(&link).await.status, 303);
    let out = app.cli(&["remind", "fixture"], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("10 message(s) queued, 2 contact(s) skipped"),
        "{stdout}"
    );
    let mails = smtp.wait_for(22).await;
    let reminders: Vec<_> = mails
        .iter()
        .filter(|m| m.subject.starts_with("Reminder:"))
        .collect();
    assert_eq!(reminders.len(), 10);
    assert!(reminders
        .iter()
        .all(|m| !m.to.ends_with("@swe.gov.example")));
    assert!(
        reminders[0]
            .body
            .contains("Sections still to complete: Basics, Plans"),
        "{}",
        reminders[0].body
    );
    // The reminder's link replaces the one its contact was invited with: one live link each.
    let reminded = reminders[0];
    let invitation = mails
        .iter()
        .find(|m| m.to == reminded.to && !m.subject.starts_with("Reminder:"))
        .unwrap();
    let old = app.get(&invitation.link_path().unwrap()).await;
    assert_eq!(old.status, 410);
    assert!(
        old.body.contains("a newer link replaced it"),
        "{}",
        old.body
    );
    assert_eq!(app.get(&reminded.link_path().unwrap()).await.status, 200);
    // Without SMTP settings the command says what to set.
    let plain = TestApp {
        env: Vec::new(),
        ..app.clone_handle()
    };
    let out = plain.cli(&["invite", "fixture"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("COHERENCE_SMTP_URL is not set"));
    app.stop().await;
}

async fn invitations_follow_the_contacts_language(backend: Backend) {
    let smtp = SmtpServer::start(&[], 0);
    let app = TestApp::spawn_with_mail(backend, smtp.port).await;
    let file = app.dir.path().join("contacts.csv");
    std::fs::write(
        &file,
        "country,name,email,language,office\nMAR,Karim,karim@gov.ma,fr,MAE\nMEX,Lucía,lucia@sre.gob.mx,es,SRE\n",
    )
    .unwrap();
    assert!(app
        .cli(
            &["contacts", "import", "fixture", file.to_str().unwrap()],
            None
        )
        .status
        .success());
    assert!(app.cli(&["invite", "fixture"], None).status.success());
    let mails = smtp.wait_for(2).await;
    let fr = mails.iter().find(|m| m.to == "karim@gov.ma").unwrap();
    assert!(
        fr.body.contains("Bonjour Karim,") && fr.body.contains("au nom de Maroc"),
        "{}",
        fr.body
    );
    assert!(fr.body.contains("?lang=fr"), "the link opens in French");
    let es = mails.iter().find(|m| m.to == "lucia@sre.gob.mx").unwrap();
    assert!(es.body.contains("en nombre de México"), "{}", es.body);
    let link = fr.link_path().unwrap();
    let page = app.get(&format!("{link}?lang=fr")).await;
    assert!(page.body.contains("Réponse de Maroc"));
    app.stop().await;
}

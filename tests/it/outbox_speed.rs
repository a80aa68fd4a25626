//! The outbox under load and failure: batches sent over pooled connections by two nodes sharing
//! one database, a worker stopped mid-batch or dead with a claim, servers that defer or refuse
//! some recipients, and the configured rate. Every message at the server is counted per
//! recipient, and the database must agree. Every test runs on SQLite and PostgreSQL.

use std::collections::HashMap;

use coherence::db::{self, DbUrl};
use diesel::prelude::*;

use crate::helpers::{mail_env, Backend, Mail, SmtpServer, TestApp};
use crate::on_both_backends;

on_both_backends!(
    two_nodes_deliver_each_invitation_exactly_once,
    a_stopped_worker_records_what_was_accepted_and_the_rest_goes_out_once,
    a_dead_workers_claim_is_taken_over_only_when_its_lease_is_stale,
    deferred_recipients_are_retried_and_refused_ones_fail,
    the_configured_rate_is_respected,
    a_line_that_begins_with_a_dot_arrives_as_written,
    a_kept_connection_the_server_closed_is_replaced_before_the_message,
    a_waiting_worker_stops_at_once,
);

const ADMIN: (&str, &str) = ("admin@gfmd.example.org", "a long admin passphrase");

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

async fn invite_all(app: &TestApp, n: usize) {
    app.add_user(ADMIN.0, ADMIN.1, "admin", &[]);
    let res = app.login(ADMIN.0, ADMIN.1).await;
    assert_eq!(res.status, 303, "{}", res.body);
    let res = app.upload_contacts("fixture", &contacts_csv(n)).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let page = app.get("/admin").await;
    let res = app
        .post(
            "/admin/surveys/fixture/invite",
            &[("_csrf", &page.hidden("_csrf"))],
        )
        .await;
    assert!(
        res.body.contains(&format!("{n} message(s) queued")),
        "{}",
        res.body
    );
}

/// How many messages each recipient received.
fn per_recipient(mails: &[Mail]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for m in mails {
        *counts.entry(m.to.clone()).or_insert(0) += 1;
    }
    counts
}

fn assert_each_once(mails: &[Mail], n: usize) {
    let counts = per_recipient(mails);
    assert_eq!(mails.len(), n, "{n} messages at the server");
    assert_eq!(counts.len(), n, "each contact received one");
    assert!(counts.values().all(|c| *c == 1), "nobody received two");
}

/// (recipient, status, attempts, last_error) of every outbox row.
fn rows(app: &TestApp) -> Vec<(String, String, i32, Option<String>)> {
    use coherence::db::schema::outbox;
    let pool = db::connect(&DbUrl::parse(&app.database_url).unwrap(), 1).unwrap();
    let mut conn = pool.get().unwrap();
    outbox::table
        .select((
            outbox::recipient,
            outbox::status,
            outbox::attempts,
            outbox::last_error,
        ))
        .order(outbox::recipient)
        .load(&mut conn)
        .unwrap()
}

fn status_counts(app: &TestApp) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for (_, status, _, _) in rows(app) {
        *counts.entry(status).or_insert(0) += 1;
    }
    counts
}

fn delivered_entries(app: &TestApp) -> usize {
    let pool = db::connect(&DbUrl::parse(&app.database_url).unwrap(), 1).unwrap();
    let mut conn = pool.get().unwrap();
    coherence::db::audit::entries(&mut conn, Some("fixture"))
        .unwrap()
        .iter()
        .filter(|r| r.kind == "email_delivered")
        .count()
}

/// Wait until the database records `n` messages as sent.
async fn wait_sent(app: &TestApp, n: usize) {
    for _ in 0..200 {
        if status_counts(app).get("sent").copied().unwrap_or(0) >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("expected {n} sent, have {:?}", status_counts(app));
}

async fn two_nodes_deliver_each_invitation_exactly_once(backend: Backend) {
    let smtp = SmtpServer::start(&[], 0);
    let first = TestApp::spawn_with_mail(backend, smtp.port).await;
    let second = TestApp::start_with(
        first.database_url.clone(),
        first.surveys.clone(),
        first.dir.clone(),
        mail_env(smtp.port),
    )
    .await;
    invite_all(&first, 300).await;
    smtp.wait_for(300).await;
    wait_sent(&first, 300).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_each_once(&smtp.messages(), 300);
    assert_eq!(status_counts(&first), HashMap::from([("sent".into(), 300)]));
    assert!(rows(&first).iter().all(|r| r.2 == 1), "one attempt each");
    assert_eq!(delivered_entries(&first), 300, "one audit entry each");
    first.stop().await;
    second.stop().await;
}

async fn a_stopped_worker_records_what_was_accepted_and_the_rest_goes_out_once(backend: Backend) {
    // A slow server, so the batch is still going when the app stops.
    let smtp = SmtpServer::start(&[], 15);
    let app = TestApp::spawn_with_mail(backend, smtp.port).await;
    invite_all(&app, 120).await;
    smtp.wait_for(10).await;
    let (url, surveys, dir, env) = (
        app.database_url.clone(),
        app.surveys.clone(),
        app.dir.clone(),
        app.env.clone(),
    );
    app.stop().await;
    // Every message the server accepted is recorded as sent, the rest given back.
    let stopped = TestApp::start_with(url.clone(), surveys.clone(), dir.clone(), Vec::new()).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let accepted = smtp.messages().len();
    assert!(
        accepted < 120,
        "the batch was interrupted ({accepted} sent)"
    );
    let counts = status_counts(&stopped);
    assert_eq!(
        counts.get("sent").copied().unwrap_or(0),
        accepted,
        "{counts:?}"
    );
    assert_eq!(
        counts.get("pending").copied().unwrap_or(0),
        120 - accepted,
        "{counts:?}"
    );
    stopped.stop().await;
    let app = TestApp::start_with(url, surveys, dir, env).await;
    smtp.wait_for(120).await;
    wait_sent(&app, 120).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_each_once(&smtp.messages(), 120);
    assert_eq!(delivered_entries(&app), 120);
    app.stop().await;
}

async fn a_dead_workers_claim_is_taken_over_only_when_its_lease_is_stale(backend: Backend) {
    use coherence::db::outbox::{self, MailKind, NewMessage};
    let smtp = SmtpServer::start(&[], 0);
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let url = crate::helpers::fresh_database(backend, dir.path());
    let idle = TestApp::start_with(
        url.clone(),
        crate::helpers::fixtures().join("surveys"),
        dir.clone(),
        Vec::new(),
    )
    .await;
    let pool = db::connect(&DbUrl::parse(&url).unwrap(), 1).unwrap();
    let mut conn = pool.get().unwrap();
    let message = |recipient| NewMessage {
        kind: MailKind::Reminder,
        survey_id: "fixture",
        country_iso3: "SWE",
        contact_id: None,
        recipient,
        subject: "Reminder",
        body_text: "text",
        body_html: "<p>html</p>",
    };
    let now = chrono::Utc::now().naive_utc();
    let long_ago = now - chrono::Duration::minutes(11);
    // A live worker holds one message claimed now; another claimed one 11 minutes ago and died.
    outbox::enqueue(&mut conn, &message("held@gov.example"), now).unwrap();
    let held = outbox::claim_due(&mut conn, now, chrono::Duration::minutes(10), 10).unwrap();
    assert_eq!(held.len(), 1);
    outbox::enqueue(&mut conn, &message("stale@gov.example"), long_ago).unwrap();
    let stale = outbox::claim_due(&mut conn, long_ago, chrono::Duration::minutes(10), 10).unwrap();
    assert_eq!(stale.len(), 1, "only the message due then");
    assert_eq!(stale[0].recipient, "stale@gov.example");
    idle.stop().await;
    let app = TestApp::start_with(
        url,
        crate::helpers::fixtures().join("surveys"),
        dir,
        mail_env(smtp.port),
    )
    .await;
    let mails = smtp.wait_for(1).await;
    wait_sent(&app, 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(smtp.messages().len(), 1);
    assert_eq!(mails[0].to, "stale@gov.example");
    // The dead worker's lease no longer holds: marking under it changes nothing.
    outbox::mark_sent(&mut conn, &[&stale[0]], now).unwrap();
    assert_eq!(delivered_entries(&app), 1);
    let states: Vec<(String, String)> = rows(&app).into_iter().map(|r| (r.0, r.1)).collect();
    assert_eq!(
        states,
        [
            ("held@gov.example".into(), "sending".into()),
            ("stale@gov.example".into(), "sent".into()),
        ]
    );
    app.stop().await;
}

async fn deferred_recipients_are_retried_and_refused_ones_fail(backend: Backend) {
    let smtp = SmtpServer::start_with(
        &["official1@", "official2@"],
        &["official3@", "official4@"],
        0,
    );
    let app = TestApp::spawn_with_mail(backend, smtp.port).await;
    invite_all(&app, 40).await;
    smtp.wait_for(38).await;
    wait_sent(&app, 38).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mails = smtp.messages();
    assert_each_once(&mails, 38);
    let rows = rows(&app);
    for (recipient, status, attempts, error) in &rows {
        let name = recipient.split('@').next().unwrap();
        match name {
            "official1" | "official2" => {
                assert_eq!(status, "failed");
                assert_eq!(*attempts, 1);
                assert!(error.as_deref().unwrap_or("").contains("550"), "{error:?}");
            }
            "official3" | "official4" => {
                assert_eq!(status, "sent");
                assert_eq!(*attempts, 2, "deferred once, then accepted");
                assert_eq!(error, &None);
            }
            _ => {
                assert_eq!(status, "sent");
                assert_eq!(*attempts, 1);
            }
        }
    }
    app.stop().await;
}

async fn the_configured_rate_is_respected(backend: Backend) {
    let smtp = SmtpServer::start(&[], 0);
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let url = crate::helpers::fresh_database(backend, dir.path());
    let mut env = mail_env(smtp.port);
    env.push(("COHERENCE_MAIL_PER_MINUTE", "600".into()));
    let app = TestApp::start_with(url, crate::helpers::fixtures().join("surveys"), dir, env).await;
    let started = std::time::Instant::now();
    invite_all(&app, 21).await;
    smtp.wait_for(21).await;
    // 600 a minute, one every 100 ms: 21 messages take at least 2 s.
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );
    wait_sent(&app, 21).await;
    assert_each_once(&smtp.messages(), 21);
    app.stop().await;
}

fn reminder<'a>(recipient: &'a str, body_text: &'a str) -> coherence::db::outbox::NewMessage<'a> {
    coherence::db::outbox::NewMessage {
        kind: coherence::db::outbox::MailKind::Reminder,
        survey_id: "fixture",
        country_iso3: "SWE",
        contact_id: None,
        recipient,
        subject: "Reminder",
        body_text,
        body_html: "<p>html</p>",
    }
}

fn enqueue(app: &TestApp, message: &coherence::db::outbox::NewMessage) {
    let pool = db::connect(&DbUrl::parse(&app.database_url).unwrap(), 1).unwrap();
    let mut conn = pool.get().unwrap();
    let now = chrono::Utc::now().naive_utc();
    coherence::db::outbox::enqueue(&mut conn, message, now).unwrap();
}

/// SMTP ends a message at a line holding only a dot, so the client doubles every dot that
/// begins a line and the server takes it off again. A message whose text has such lines arrives
/// whole, and what followed the dot is not read as SMTP commands.
async fn a_line_that_begins_with_a_dot_arrives_as_written(backend: Backend) {
    let smtp = SmtpServer::start(&[], 0);
    let app = TestApp::spawn_with_mail(backend, smtp.port).await;
    let text = ".first\n.\n..two\nRSET\n.\nMAIL FROM:<x@attacker.example>\nlast .\n.";
    enqueue(&app, &reminder("dots@gov.example", text));
    let mails = smtp.wait_for(1).await;
    wait_sent(&app, 1).await;
    assert_eq!(mails[0].to, "dots@gov.example");
    assert!(mails[0].body.contains(text), "{}", mails[0].body);
    assert!(
        mails[0].body.contains("<p>html</p>"),
        "the part after the text arrived too"
    );
    app.stop().await;
}

/// The worker keeps its connections open between messages; when the server has closed one
/// meanwhile, the next message goes out on a new connection at its first attempt.
async fn a_kept_connection_the_server_closed_is_replaced_before_the_message(backend: Backend) {
    let smtp = SmtpServer::start(&[], 0);
    let port = smtp.port;
    let app = TestApp::spawn_with_mail(backend, port).await;
    // One at a time, so that one connection serves them all.
    for (i, recipient) in ["a@gov.example", "b@gov.example", "c@gov.example"]
        .into_iter()
        .enumerate()
    {
        enqueue(&app, &reminder(recipient, "text"));
        smtp.wait_for(i + 1).await;
        wait_sent(&app, i + 1).await;
    }
    assert_eq!(smtp.connections(), 1, "the connection was kept");
    // The server goes away, closing the kept connection, and another takes its port.
    drop(smtp);
    let smtp = SmtpServer::start_on(port, tempfile::tempdir().unwrap(), &[], 0);
    enqueue(&app, &reminder("d@gov.example", "text"));
    let mails = smtp.wait_for(1).await;
    wait_sent(&app, 4).await;
    assert_eq!(mails[0].to, "d@gov.example");
    assert_eq!(smtp.connections(), 1);
    let last = rows(&app)
        .into_iter()
        .find(|r| r.0 == "d@gov.example")
        .unwrap();
    assert_eq!((last.1.as_str(), last.2, last.3), ("sent", 1, None));
    app.stop().await;
}

/// A worker sends what is due as it starts, then waits for its next poll (a minute here); asked
/// to stop while waiting, it ends at once rather than at the end of the wait.
async fn a_waiting_worker_stops_at_once(backend: Backend) {
    let smtp = SmtpServer::start(&[], 0);
    // An app without email: the only worker is the one started here.
    let app = TestApp::spawn(backend).await;
    enqueue(&app, &reminder("waiting@gov.example", "text"));
    let pool = db::connect(&DbUrl::parse(&app.database_url).unwrap(), 2).unwrap();
    let settings = coherence::config::MailSettings {
        smtp_url: format!("smtp://127.0.0.1:{}", smtp.port),
        from: "survey@gfmd.example.org".into(),
        retry_base: std::time::Duration::from_secs(60),
        poll: std::time::Duration::from_secs(60),
        connections: 1,
        per_minute: None,
    };
    let mailer = coherence::mail::Mailer::new(&settings).unwrap();
    let worker = coherence::mail::Worker::start(pool, mailer);
    let mails = smtp.wait_for(1).await;
    assert_eq!(mails[0].to, "waiting@gov.example");
    wait_sent(&app, 1).await;
    let asked = std::time::Instant::now();
    worker.stop();
    let took = asked.elapsed();
    assert!(
        took < std::time::Duration::from_secs(5),
        "the worker took {took:?} to stop"
    );
    app.stop().await;
}

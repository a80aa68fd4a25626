//! The national report cycle under attack: what a careless user or an attacker tries against
//! the country's and the secretariat's actions (replayed and racing forms, forms without their
//! CSRF token), and what the audit log must hold (every change recorded, no secret in it).
//! Every test runs on SQLite and PostgreSQL.

use coherence::db;
use coherence::db::audit::{entries, AuditRow};
use coherence::db::responses::{self, ResponseStatus};
use coherence::db::versions;

use crate::cycle::{answer_everything, cycle_app, link_csrf, post_from_review};
use crate::helpers::{query_ids, Backend, SmtpServer, TestApp};
use crate::on_both_backends;

on_both_backends!(
    deadline_changes_and_sign_ins_are_recorded_without_secrets,
    a_recall_racing_a_submission_never_leaves_a_draft_counted,
    approvers_signing_off_at_once_make_exactly_one_version,
    the_cycle_forms_refuse_a_missing_or_wrong_csrf_token,
    links_and_owners_never_reach_another_countrys_or_surveys_queries,
    markup_and_line_breaks_in_a_sign_off_stay_text_in_pages_and_emails,
    a_coordinator_cannot_hand_out_links_without_end,
    the_secretariat_and_the_country_racing_decide_once,
);

const ADMIN: (&str, &str) = ("admin@gfmd.example.org", "a long admin passphrase");

/// A connection of the test's own, which also writes what a coordinator cannot (see
/// [`crate::helpers::writable_conn`]).
fn conn(app: &TestApp) -> db::DbConn {
    crate::helpers::writable_conn(&app.database_url)
}

fn chain(app: &TestApp, name: &str) -> Vec<AuditRow> {
    entries(&mut conn(app), Some(name)).unwrap()
}

fn kinds(rows: &[AuditRow]) -> Vec<&str> {
    rows.iter().map(|r| r.kind.as_str()).collect()
}

async fn deadline_changes_and_sign_ins_are_recorded_without_secrets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_user(ADMIN.0, ADMIN.1, "admin", &[]);
    // A password typed into the email field, and a wrong password for the real account.
    let typo = "hunter2-typed-as-email";
    assert_ne!(app.login(typo, "x").await.status, 303);
    assert_ne!(app.login(ADMIN.0, "a wrong passphrase!!").await.status, 303);
    assert_eq!(app.login(ADMIN.0, ADMIN.1).await.status, 303);
    let outside = chain(&app, "");
    assert_eq!(
        kinds(&outside),
        ["sign_in_failed", "sign_in_failed", "signed_in"],
        "{outside:?}"
    );
    assert_eq!(outside[0].actor, "system");
    assert!(outside[1].actor.starts_with("user:"));
    assert_eq!(outside[1].actor, outside[2].actor);
    for row in &outside {
        for secret in [typo, "a wrong passphrase", ADMIN.1, ADMIN.0] {
            assert!(!row.detail.contains(secret), "{row:?}");
        }
    }

    // Moving a country's deadline is recorded in the survey's log, by whom and to when.
    let page = app.get("/admin/surveys/fixture/countries/SWE").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let closes = (chrono::Utc::now() + chrono::Duration::days(30))
        .format("%Y-%m-%d")
        .to_string();
    let moved = app
        .post(
            "/admin/surveys/fixture/countries/SWE/deadline",
            &[
                ("_csrf", &page.hidden("_csrf")),
                ("closes", closes.as_str()),
            ],
        )
        .await;
    assert_eq!(moved.status, 200, "{closes}: {}", moved.body);
    let log = chain(&app, "fixture");
    let changed: Vec<&AuditRow> = log
        .iter()
        .filter(|r| r.kind == "deadline_changed")
        .collect();
    assert_eq!(changed.len(), 1, "{log:?}");
    assert_eq!(changed[0].country_iso3, "SWE");
    assert_eq!(changed[0].actor, outside[2].actor);
    assert!(changed[0].detail.contains(&closes), "{:?}", changed[0]);
    let out = app.cli(&["audit", "verify"], None);
    assert!(out.status.success(), "{out:?}");
    app.stop().await;
}

/// The SWE response of the fixture survey: (status, counted version, whether each version was
/// recalled).
fn swe(app: &TestApp) -> (ResponseStatus, Option<i32>, Vec<bool>) {
    let mut c = conn(app);
    let r = responses::find_response(&mut c, "fixture", "SWE", "")
        .unwrap()
        .unwrap();
    let marks = versions::versions(&mut c, &r.id)
        .unwrap()
        .into_iter()
        .map(|v| v.recalled_at.is_some())
        .collect();
    (r.status, r.counted_version, marks)
}

async fn a_recall_racing_a_submission_never_leaves_a_draft_counted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app.issue_token("fixture", "SWE", "Anna");
    let saved = app
        .save_section(&link, "basics", &[("name", "Anna"), ("active", "yes")])
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    app.save_section(&link, "plans", &[("has_plan", "no")])
        .await;
    for round in 0..6 {
        let csrf = link_csrf(&app, &link).await;
        let fields = [("_csrf", csrf.as_str())];
        let (submit_path, recall_path) = (format!("{link}/submit"), format!("{link}/recall"));
        let (submitted, recalled) = tokio::join!(
            app.post(&submit_path, &fields),
            app.post(&recall_path, &fields)
        );
        assert!(
            [303, 409].contains(&submitted.status) && [303, 409].contains(&recalled.status),
            "round {round}: {} {}",
            submitted.status,
            recalled.status
        );
        let (status, counted, marks) = swe(&app);
        match status {
            // Recalled: no version counts, the last one is marked recalled.
            ResponseStatus::Draft => {
                assert_eq!(counted, None, "round {round}: {marks:?}");
                assert_eq!(marks.last(), Some(&true), "round {round}: {marks:?}");
            }
            // Submitted: the newest version counts, and is not marked.
            ResponseStatus::Submitted => {
                assert_eq!(counted, Some(marks.len() as i32), "round {round}");
                assert_eq!(marks.last(), Some(&false), "round {round}: {marks:?}");
                let back = post_from_review(&app, &link, "recall", &[]).await;
                assert_eq!(back.status, 303, "round {round}: {}", back.body);
            }
            other => panic!("round {round}: {other:?}"),
        }
    }
    app.stop().await;
}

async fn approvers_signing_off_at_once_make_exactly_one_version(backend: Backend) {
    let smtp = SmtpServer::start(&[], 0);
    let app = cycle_app(backend, &smtp).await;
    let coordinator =
        app.issue_token_with(&["--survey", "national", "--country", "GHA", "--name", "Ama"]);
    let approvers: Vec<String> = ["Kofi", "Efua"]
        .iter()
        .map(|name| {
            app.issue_token_with(&[
                "--survey",
                "national",
                "--country",
                "GHA",
                "--name",
                name,
                "--role",
                "approver",
            ])
        })
        .collect();
    answer_everything(&app, &coordinator).await;
    // The same form posted twice: the second send finds it sent already.
    let csrf = link_csrf(&app, &coordinator).await;
    let send = format!("{coordinator}/send-for-sign-off");
    let first = app.post(&send, &[("_csrf", &csrf)]).await;
    assert_eq!(first.status, 303, "{}", first.body);
    let again = app.post(&send, &[("_csrf", &csrf)]).await;
    assert_eq!(again.status, 409, "{}", again.body);

    // Both approvers sign off at the same moment, each twice (a double click).
    let mut csrfs = Vec::new();
    for a in &approvers {
        csrfs.push(link_csrf(&app, a).await);
    }
    let fields = |csrf: &str| {
        vec![
            ("_csrf".to_string(), csrf.to_string()),
            ("name".to_string(), "Kofi".to_string()),
            ("title".to_string(), "Minister".to_string()),
        ]
    };
    let posts = (0..4).map(|i| {
        let path = format!("{}/sign-off", approvers[i % 2]);
        let form = fields(&csrfs[i % 2]);
        let app = &app;
        async move {
            let form: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            app.post(&path, &form).await
        }
    });
    let results = futures_util::future::join_all(posts).await;
    let statuses: Vec<u16> = results.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 303).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [303, 409].contains(s)),
        "{statuses:?}"
    );
    let mut c = conn(&app);
    let r = responses::find_response(&mut c, "national", "GHA", "")
        .unwrap()
        .unwrap();
    assert_eq!(r.status, ResponseStatus::Submitted);
    assert_eq!(versions::versions(&mut c, &r.id).unwrap().len(), 1);
    let signed: Vec<AuditRow> = entries(&mut c, Some("national"))
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "signed_off" || e.kind == "submitted")
        .collect();
    assert_eq!(kinds(&signed), ["submitted", "signed_off"]);
    app.stop().await;
}

async fn the_cycle_forms_refuse_a_missing_or_wrong_csrf_token(backend: Backend) {
    let smtp = SmtpServer::start(&[], 0);
    let app = cycle_app(backend, &smtp).await;
    let coordinator =
        app.issue_token_with(&["--survey", "national", "--country", "GHA", "--name", "Ama"]);
    answer_everything(&app, &coordinator).await;
    let respondent_posts = [
        "submit",
        "send-for-sign-off",
        "sign-off",
        "send-back",
        "recall",
        "colleagues",
        "colleagues/0123456789abcdef/revoke",
        "s/policy/ready",
        "queries/0123456789abcdef",
    ];
    // A token of the same browser is needed for "wrong" to be meaningful: fetch one first.
    let good = link_csrf(&app, &coordinator).await;
    assert!(!good.is_empty());
    for action in respondent_posts {
        for token in [None, Some("not-the-token")] {
            let mut form = vec![("name", "x"), ("email", "x@example.org"), ("body", "x")];
            if let Some(t) = token {
                form.push(("_csrf", t));
            }
            let res = app.post(&format!("{coordinator}/{action}"), &form).await;
            assert_eq!(res.status, 403, "{action} {token:?}: {}", res.body);
        }
    }
    let mut c = conn(&app);
    let r = responses::find_response(&mut c, "national", "GHA", "")
        .unwrap()
        .unwrap();
    assert_eq!(r.status, ResponseStatus::Draft, "nothing was sent");
    drop(c);

    app.add_user(ADMIN.0, ADMIN.1, "admin", &[]);
    assert_eq!(app.login(ADMIN.0, ADMIN.1).await.status, 303);
    let country = "/admin/surveys/national/countries/GHA";
    assert_eq!(app.get(country).await.status, 200);
    for action in [
        "review",
        "return",
        "accept",
        "queries",
        "queries/0123456789abcdef/reply",
        "queries/0123456789abcdef/close",
        "entry",
    ] {
        for token in [None, Some("not-the-token")] {
            let mut form = vec![("unit", ""), ("body", "x"), ("channel", "paper")];
            if let Some(t) = token {
                form.push(("_csrf", t));
            }
            let res = app.post(&format!("{country}/{action}"), &form).await;
            assert_eq!(res.status, 403, "{action} {token:?}: {}", res.body);
        }
    }
    app.stop().await;
}

async fn links_and_owners_never_reach_another_countrys_or_surveys_queries(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = ("owner@closed.example", "a long owner passphrase");
    app.add_user(owner.0, owner.1, "owner", &["closed"]);
    app.add_user(ADMIN.0, ADMIN.1, "admin", &[]);
    let swe = app.issue_token("fixture", "SWE", "Lars");
    let nor = app.issue_token("fixture", "NOR", "Kari");
    let plans_only = app.issue_token_with(&[
        "--survey",
        "fixture",
        "--country",
        "SWE",
        "--name",
        "Eva",
        "--role",
        "contributor",
        "--section",
        "plans",
    ]);
    for link in [&swe, &nor] {
        let saved = app
            .save_section(link, "basics", &[("name", "MFA"), ("active", "yes")])
            .await;
        assert_eq!(saved.status, 303, "{}", saved.body);
        app.save_section(link, "plans", &[("has_plan", "no")]).await;
        assert_eq!(app.submit(link).await.status, 303);
    }
    // The secretariat asks SWE about a question of its basics, in text that is markup.
    assert_eq!(app.login(ADMIN.0, ADMIN.1).await.status, 303);
    let country = "/admin/surveys/fixture/countries/SWE";
    let page = app.get(country).await;
    let csrf = page.hidden("_csrf");
    let raised = app
        .post(
            &format!("{country}/queries"),
            &[
                ("_csrf", csrf.as_str()),
                ("question", "name"),
                ("body", "<script>alert(1)</script>"),
            ],
        )
        .await;
    assert_eq!(raised.status, 200, "{}", raised.body);
    assert!(!raised.body.contains("<script>alert"));
    let overview = app.get(&swe).await;
    let ids = query_ids(&overview.body, &swe);
    assert_eq!(ids.len(), 1, "{}", overview.body);
    let query = &ids[0];
    let thread = app.get(&format!("{swe}/queries/{query}")).await;
    assert_eq!(thread.status, 200);
    assert!(thread
        .body
        .contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!thread.body.contains("<script>alert"));

    // Another country's link, and a contributor of other sections, find no such query:
    // reading or replying (with a valid token of their own) is the bare 404.
    for (link, csrf_page) in [(&nor, "s/basics"), (&plans_only, "s/plans")] {
        let own = app.get(&format!("{link}/{csrf_page}")).await;
        let csrf = own.hidden("_csrf");
        assert!(query_ids(&app.get(link).await.body, link).is_empty());
        assert_eq!(
            app.get(&format!("{link}/queries/{query}")).await.status,
            404
        );
        let reply = app
            .post(
                &format!("{link}/queries/{query}"),
                &[("_csrf", csrf.as_str()), ("body", "not mine")],
            )
            .await;
        assert_eq!(reply.status, 404, "{}", reply.body);
    }
    // NOR's receipt numbers are its own; the contributor sees no receipt or version at all.
    assert_eq!(app.get(&format!("{nor}/receipt/2")).await.status, 404);
    assert_eq!(
        app.get(&format!("{plans_only}/receipt/1")).await.status,
        404
    );
    let content = app
        .get(&format!("{plans_only}/versions/1/content.json"))
        .await;
    assert_eq!(content.status, 404);

    // The secretariat, through NOR's page, cannot reply to or close SWE's query.
    let nor_page = app.get("/admin/surveys/fixture/countries/NOR").await;
    let csrf = nor_page.hidden("_csrf");
    for action in ["reply", "close"] {
        let res = app
            .post(
                &format!("/admin/surveys/fixture/countries/NOR/queries/{query}/{action}"),
                &[("_csrf", csrf.as_str()), ("body", "cross")],
            )
            .await;
        assert_eq!(res.status, 404, "{action}: {}", res.body);
    }
    // The owner of another survey cannot either, through their own survey's page.
    let other = app.clone_with_new_client();
    assert_eq!(other.login(owner.0, owner.1).await.status, 303);
    let closed = other.get("/admin/surveys/closed/countries/SWE").await;
    assert_eq!(closed.status, 200, "{}", closed.body);
    let csrf = closed.hidden("_csrf");
    for action in ["reply", "close"] {
        let res = other
            .post(
                &format!("/admin/surveys/closed/countries/SWE/queries/{query}/{action}"),
                &[("_csrf", csrf.as_str()), ("body", "cross")],
            )
            .await;
        assert_eq!(res.status, 404, "{action}: {}", res.body);
        let res = other
            .post(
                &format!("/admin/surveys/fixture/countries/SWE/queries/{query}/{action}"),
                &[("_csrf", csrf.as_str()), ("body", "cross")],
            )
            .await;
        assert!([403, 404].contains(&res.status), "{action}: {}", res.status);
    }
    let json = other
        .get("/admin/surveys/fixture/countries/SWE/versions/1.json")
        .await;
    assert!([403, 404].contains(&json.status), "{}", json.status);
    // Still one message, open.
    let thread = app.get(&format!("{swe}/queries/{query}")).await;
    assert!(!thread.body.contains("not mine") && !thread.body.contains("cross"));
    app.stop().await;
}

async fn markup_and_line_breaks_in_a_sign_off_stay_text_in_pages_and_emails(backend: Backend) {
    let smtp = SmtpServer::start(&[], 0);
    let app = cycle_app(backend, &smtp).await;
    let coordinator =
        app.issue_token_with(&["--survey", "national", "--country", "GHA", "--name", "Ama"]);
    let approver = app.issue_token_with(&[
        "--survey",
        "national",
        "--country",
        "GHA",
        "--name",
        "Kofi",
        "--email",
        "kofi@presidency.example.gh",
        "--role",
        "approver",
    ]);
    answer_everything(&app, &coordinator).await;
    let sent = post_from_review(&app, &coordinator, "send-for-sign-off", &[]).await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    assert_eq!(app.mails_when_outbox_empty(&smtp, 1).await.len(), 1);
    // A line break or a direction override in the name or title is refused, and nothing is
    // submitted: the receipt would read other than what was signed.
    for (name, title) in [
        (
            "Kofi",
            "Minister\r\nBcc: evil@example.org\r\n\r\nForged text",
        ),
        ("Kofi\u{202e}retsiniM", "Minister"),
    ] {
        let refused = post_from_review(
            &app,
            &approver,
            "sign-off",
            &[("name", name), ("title", title)],
        )
        .await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert!(refused.body.contains("Use printable text on one line."));
    }
    let mut c = conn(&app);
    let r = responses::find_response(&mut c, "national", "GHA", "")
        .unwrap()
        .unwrap();
    assert_eq!(r.status, ResponseStatus::AwaitingSignOff);
    drop(c);
    // Markup is kept as text: escaped in the receipt page and in the email's HTML part.
    let signed = post_from_review(
        &app,
        &approver,
        "sign-off",
        &[
            ("name", "<script>alert(1)</script>"),
            ("title", "Minister <b>x</b>"),
        ],
    )
    .await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let receipt = app.get(&format!("{approver}/receipt/1")).await;
    assert_eq!(receipt.status, 200);
    assert!(receipt
        .body
        .contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!receipt.body.contains("<script>") && !receipt.body.contains("<b>x"));
    let mails = app.mails_when_outbox_empty(&smtp, 2).await;
    assert_eq!(mails.len(), 2, "{mails:?}");
    let mail = &mails[1];
    assert_eq!(mail.to, "kofi@presidency.example.gh");
    assert!(mail.subject.starts_with("Receipt"), "{}", mail.subject);
    let html = &mail.body[mail.body.find("text/html").expect("an HTML part")..];
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(
        !html.contains("<script>") && !html.contains("<b>x"),
        "{html}"
    );
    app.stop().await;
}

async fn a_coordinator_cannot_hand_out_links_without_end(backend: Backend) {
    use coherence::db::schema::access_tokens as tokens;
    use diesel::prelude::*;
    // The per-minute limit on a link's posts set aside, to reach the daily one.
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let db = crate::helpers::fresh_database(backend, dir.path());
    let env = vec![("COHERENCE_LINK_SAVES_PER_MINUTE", "1000".to_string())];
    let app = TestApp::start_with(db, crate::helpers::fixtures().join("surveys"), dir, env).await;
    let coordinator = app.issue_token("fixture", "SWE", "Cora");
    let hand_over = |i: usize| {
        let (app, coordinator) = (&app, &coordinator);
        async move {
            let form = app.get(&format!("{coordinator}/colleagues")).await;
            assert_eq!(form.status, 200, "{}", form.body);
            let csrf = form.hidden("_csrf");
            let (name, email) = (format!("Colleague {i}"), format!("c{i}@example.org"));
            let fields = [
                ("_csrf", csrf.as_str()),
                ("name", name.as_str()),
                ("email", email.as_str()),
                ("section", "basics"),
            ];
            app.post(&format!("{coordinator}/colleagues"), &fields)
                .await
        }
    };
    // Fifty live links at most; revoking them all and handing out again: a hundred a day.
    for i in 0..100 {
        if i == 50 {
            diesel::update(tokens::table.filter(tokens::role.eq("contributor")))
                .set(tokens::revoked_at.eq(Some(chrono::Utc::now().naive_utc())))
                .execute(&mut conn(&app))
                .unwrap();
        }
        let done = hand_over(i).await;
        assert!(done.status < 400, "{i}: {}", done.body);
    }
    diesel::update(tokens::table.filter(tokens::role.eq("contributor")))
        .set(tokens::revoked_at.eq(Some(chrono::Utc::now().naive_utc())))
        .execute(&mut conn(&app))
        .unwrap();
    let refused = hand_over(100).await;
    assert!(refused.status >= 400, "{}", refused.body);
    assert!(refused.body.contains("in the last day"), "{}", refused.body);
    let issued: i64 = tokens::table
        .filter(tokens::role.eq("contributor"))
        .count()
        .get_result(&mut conn(&app))
        .unwrap();
    assert_eq!(issued, 100);
    app.stop().await;
}

async fn the_secretariat_and_the_country_racing_decide_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_user(ADMIN.0, ADMIN.1, "admin", &[]);
    assert_eq!(app.login(ADMIN.0, ADMIN.1).await.status, 303);
    let link = app.issue_token("fixture", "SWE", "Lars");
    let saved = app
        .save_section(&link, "basics", &[("name", "MFA"), ("active", "yes")])
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    app.save_section(&link, "plans", &[("has_plan", "no")])
        .await;
    let country = "/admin/surveys/fixture/countries/SWE";
    for round in 0..3 {
        assert_eq!(app.submit(&link).await.status, 303, "round {round}");
        let csrf = app.get(country).await.hidden("_csrf");
        let link_csrf = link_csrf(&app, &link).await;
        let (ret, acc, rec) = (
            format!("{country}/return"),
            format!("{country}/accept"),
            format!("{link}/recall"),
        );
        let admin_form = [("_csrf", csrf.as_str()), ("confirm", "yes")];
        let link_form = [("_csrf", link_csrf.as_str())];
        // The owner returns and accepts at once, while the country recalls.
        let (returned, accepted, recalled) = tokio::join!(
            app.post(&ret, &admin_form),
            app.post(&acc, &admin_form),
            app.post(&rec, &link_form),
        );
        let won: Vec<bool> = [
            returned.status == 200,
            accepted.status == 200,
            recalled.status == 303,
        ]
        .to_vec();
        assert_eq!(
            won.iter().filter(|w| **w).count(),
            1,
            "round {round}: {} {} {}",
            returned.status,
            accepted.status,
            recalled.status
        );
        for page in [&returned, &accepted, &recalled] {
            assert!([200, 303, 409].contains(&page.status), "{}", page.body);
        }
        let (status, counted, marks) = swe(&app);
        if won[2] {
            // Recalled: back to a draft, or returned when an earlier version was.
            assert!(
                [ResponseStatus::Draft, ResponseStatus::Returned].contains(&status),
                "round {round}: {status:?}"
            );
            assert_eq!(marks.last(), Some(&true), "round {round}: {marks:?}");
        } else {
            let expected = if won[0] {
                ResponseStatus::Returned
            } else {
                ResponseStatus::Accepted
            };
            assert_eq!(status, expected, "round {round}");
        }
        if won[1] {
            assert_eq!(counted, Some(marks.len() as i32));
            break;
        }
    }
    let out = app.cli(&["audit", "verify"], None);
    assert!(out.status.success(), "{out:?}");
    app.stop().await;
}

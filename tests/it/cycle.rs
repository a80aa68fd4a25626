//! The country's side of the report cycle over HTTP: national sign-off (sent, sent back with a
//! message, signed off), the receipt and its digest, recall, and who may do what. Emails are
//! read back from a real SMTP server. Every test runs on SQLite and PostgreSQL.

use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::helpers::{fresh_database, mail_env, query_ids, Backend, Page, SmtpServer, TestApp};
use crate::on_both_backends;

on_both_backends!(
    a_response_goes_through_national_sign_off_to_a_receipt,
    a_submission_is_recalled_before_review_and_submitted_again,
    only_the_right_links_send_sign_off_and_recall,
    a_save_racing_the_sign_off_request_is_kept_or_refused_whole,
    the_whole_national_report_cycle,
    the_access_matrix_of_roles_and_states,
    the_owner_returning_while_the_coordinator_saves_loses_nothing,
    a_response_submitted_before_versions_becomes_version_1_at_start,
);

pub fn cycle_surveys() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cycle")
}

/// The app on the cycle fixtures (a survey with sign-off), sending email through `smtp`.
pub async fn cycle_app(backend: Backend, smtp: &SmtpServer) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let db = fresh_database(backend, dir.path());
    let mut env = mail_env(smtp.port);
    env.push(("COHERENCE_MAIL_POLL_MS", "100".into()));
    TestApp::start_with(db, cycle_surveys(), dir, env).await
}

/// Fill every section of the national report.
pub async fn answer_everything(app: &TestApp, link: &str) {
    for (section, answers) in [
        (
            "policy",
            vec![("has_strategy", "yes"), ("strategy_year", "2018")],
        ),
        ("labour", vec![("workers_abroad", "250")]),
        ("remittances", vec![("remit_programme", "no")]),
    ] {
        let saved = app.save_section(link, section, &answers).await;
        assert_eq!(saved.status, 303, "{section}: {}", saved.body);
    }
}

/// POST a form of the review page (its CSRF token) to `action` under the link.
pub async fn post_from_review(
    app: &TestApp,
    link: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> Page {
    let csrf = link_csrf(app, link).await;
    let mut all = vec![("_csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    app.post(&format!("{link}/{action}"), &all).await
}

/// A CSRF token of the link's forms: from its review page, or where that shows no form (the
/// action is not offered there), from a section form.
pub async fn link_csrf(app: &TestApp, link: &str) -> String {
    for page in ["review", "s/policy", "s/labour", "s/basics", "s/plans"] {
        let page = app.get(&format!("{link}/{page}")).await;
        if page.status == 200 && page.body.contains("name=\"_csrf\"") {
            return page.hidden("_csrf");
        }
    }
    panic!("no form on any page of {link}");
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn a_response_goes_through_national_sign_off_to_a_receipt(backend: Backend) {
    let smtp = SmtpServer::start(&[], 0);
    let app = cycle_app(backend, &smtp).await;
    let coordinator = app.issue_token_with(&[
        "--survey",
        "national",
        "--country",
        "GHA",
        "--name",
        "Ama",
        "--email",
        "ama@mfa.example.gh",
    ]);
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

    // With sign-off, the coordinator sends; there is no submit button and submitting is refused.
    let review = app.get(&format!("{coordinator}/review")).await;
    assert!(review.body.contains("Send for sign-off"), "{}", review.body);
    assert!(!review.body.contains("/submit\""), "{}", review.body);
    let refused = post_from_review(&app, &coordinator, "submit", &[]).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.body.contains("send the response to your approver"));

    let sent = post_from_review(&app, &coordinator, "send-for-sign-off", &[]).await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let mails = smtp.wait_for(1).await;
    assert_eq!(mails[0].to, "kofi@presidency.example.gh");
    assert!(
        mails[0].subject.starts_with("Sign-off requested"),
        "{}",
        mails[0].subject
    );

    // Locked meanwhile: a save is refused with the reason, the answers stay.
    let form = app.get(&format!("{coordinator}/s/labour")).await;
    assert!(
        form.body.contains("sent for national sign-off"),
        "{}",
        form.body
    );
    let save = app
        .post_form_from(
            &form,
            &format!("{coordinator}/s/labour"),
            &[("workers_abroad", "1")],
        )
        .await;
    assert_eq!(save.status, 409, "{}", save.body);
    assert!(save.body.contains("sent for national sign-off"));
    assert!(save.body.contains("Your answers were not saved"));
    assert!(save.body.contains("value=\"1\""), "what was typed is kept");

    // The approver reads everything and sees both forms; an empty name is refused next to it.
    let review = app.get(&format!("{approver}/review")).await;
    assert!(review.body.contains("<dd>250</dd>"), "{}", review.body);
    assert!(review.body.contains("Sign off and submit"));
    assert!(review.body.contains("Send back for changes"));
    let bad = post_from_review(
        &app,
        &approver,
        "sign-off",
        &[("name", " "), ("title", "Chief of Staff")],
    )
    .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(
        bad.body
            .contains("id=\"sign-off-name-error\">Fill this in."),
        "{}",
        bad.body
    );
    assert!(
        bad.body.contains("value=\"Chief of Staff\""),
        "the title is kept"
    );

    // Sent back with a message: the coordinators see it and may change the response again.
    let back = post_from_review(
        &app,
        &approver,
        "send-back",
        &[("message", "Please check the <b>number</b> of workers.")],
    )
    .await;
    assert_eq!(back.status, 303, "{}", back.body);
    let review = app.get(&format!("{coordinator}/review")).await;
    assert!(
        review.body.contains("Sent back by the approver"),
        "{}",
        review.body
    );
    assert!(review
        .body
        .contains("Please check the &lt;b&gt;number&lt;/b&gt; of workers."));
    let fixed = app
        .save_section(&coordinator, "labour", &[("workers_abroad", "260")])
        .await;
    assert_eq!(fixed.status, 303, "{}", fixed.body);
    let again = post_from_review(&app, &coordinator, "send-for-sign-off", &[]).await;
    assert_eq!(again.status, 303);

    // Signed off: version 1 and its receipt.
    let signed = post_from_review(
        &app,
        &approver,
        "sign-off",
        &[("name", "Kofi Mensah"), ("title", "Chief of Staff")],
    )
    .await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let receipt_path = signed.location.clone().expect("to the receipt");
    assert_eq!(receipt_path, format!("{approver}/receipt/1"));
    let receipt = app.get(&receipt_path).await;
    assert_eq!(receipt.status, 200, "{}", receipt.body);
    assert!(receipt.body.contains("Kofi Mensah, Chief of Staff"));
    assert!(
        receipt.body.contains("Ghana submitted version 1"),
        "{}",
        receipt.body
    );
    let digest = between(&receipt.body, "<code class=\"digest\">", "</code>");
    assert_eq!(digest.len(), 64);

    // The digest is the SHA-256 of the version's file, whose form is canonical.
    let content = app
        .client
        .get(format!(
            "{}{coordinator}/versions/1/content.json",
            app.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(content.status(), 200);
    assert!(content.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"national-GHA-v1.json\""));
    let bytes = content.bytes().await.unwrap();
    assert_eq!(sha256(&bytes), digest);
    let parsed: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        serde_json::to_string(&parsed).unwrap().as_bytes(),
        &bytes[..]
    );
    assert_eq!(parsed["version"], 1);
    assert_eq!(parsed["country"], "GHA");
    assert_eq!(parsed["answers"]["workers_abroad"][""], "260");
    assert_eq!(parsed["answers"]["has_strategy"][""], "yes");

    // The receipt went to the coordinator and the approver, with the digest.
    let mails = smtp.wait_for(4).await;
    let receipts: Vec<_> = mails
        .iter()
        .filter(|m| {
            m.subject
                .starts_with("Receipt: National report, Ghana, version 1")
        })
        .collect();
    assert_eq!(
        receipts.len(),
        2,
        "{:?}",
        mails.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    let mut to: Vec<_> = receipts.iter().map(|m| m.to.as_str()).collect();
    to.sort();
    assert_eq!(to, ["ama@mfa.example.gh", "kofi@presidency.example.gh"]);
    assert!(receipts.iter().all(|m| m.body.contains(digest)));
    assert!(receipts[0].body.contains("Kofi Mensah, Chief of Staff"));

    // Submitted: nobody changes it; the overview and review say where it stands.
    let review = app.get(&format!("{coordinator}/review")).await;
    assert!(
        review.body.contains("Submitted</strong>"),
        "{}",
        review.body
    );
    assert!(review.body.contains("Receipt of version 1"));
    let resign = post_from_review(
        &app,
        &approver,
        "sign-off",
        &[("name", "Kofi"), ("title", "CoS")],
    )
    .await;
    assert_eq!(resign.status, 409, "{}", resign.body);
    app.stop().await;
}

fn between<'a>(body: &'a str, start: &str, end: &str) -> &'a str {
    let from = body
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {body}"))
        + start.len();
    let to = body[from..].find(end).expect("end marker") + from;
    &body[from..to]
}

async fn a_submission_is_recalled_before_review_and_submitted_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app.issue_token("fixture", "SWE", "Anna");
    let saved = app
        .save_section(&link, "basics", &[("name", "Anna"), ("active", "yes")])
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    app.save_section(&link, "plans", &[("has_plan", "no")])
        .await;
    let submitted = app.submit(&link).await;
    assert_eq!(submitted.status, 303, "{}", submitted.body);
    assert_eq!(
        submitted.location.as_deref(),
        Some(format!("{link}/receipt/1").as_str())
    );

    let recalled = post_from_review(&app, &link, "recall", &[]).await;
    assert_eq!(recalled.status, 303, "{}", recalled.body);
    let review = app.get(&format!("{link}/review")).await;
    assert!(review.body.contains("Draft</strong>"), "{}", review.body);
    // A draft again: it may change, and submitting gives version 2.
    let changed = app
        .save_section(&link, "basics", &[("name", "Anna B"), ("active", "yes")])
        .await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    let again = app.submit(&link).await;
    assert_eq!(
        again.location.as_deref(),
        Some(format!("{link}/receipt/2").as_str())
    );

    // Once the secretariat begins its review, recalling is refused with the reason.
    {
        use coherence::db::responses::{change_status, ResponseStatus};
        use coherence::db::schema::responses;
        use diesel::prelude::*;
        let pool =
            coherence::db::connect(&coherence::db::DbUrl::parse(&app.database_url).unwrap(), 1)
                .unwrap();
        let mut conn = pool.get().unwrap();
        let id: String = responses::table
            .select(responses::id)
            .first(&mut conn)
            .unwrap();
        let now = chrono::Utc::now().naive_utc();
        assert!(change_status(
            &mut conn,
            &id,
            &[ResponseStatus::Submitted],
            ResponseStatus::UnderReview,
            now
        )
        .unwrap());
        let counted: Option<i32> = responses::table
            .select(responses::counted_version)
            .first(&mut conn)
            .unwrap();
        assert_eq!(counted, Some(2));
    }
    let review = app.get(&format!("{link}/review")).await;
    assert!(!review.body.contains("Recall the submission"));
    let refused = post_from_review(&app, &link, "recall", &[]).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused
        .body
        .contains("The secretariat is reviewing this response"));
    app.stop().await;
}

async fn only_the_right_links_send_sign_off_and_recall(backend: Backend) {
    let smtp = SmtpServer::start(&[], 0);
    let app = cycle_app(backend, &smtp).await;
    let coordinator = app.issue_token_with(&[
        "--survey",
        "national",
        "--country",
        "KEN",
        "--name",
        "Wanjiru",
    ]);
    let contributor = app.issue_token_with(&[
        "--survey",
        "national",
        "--country",
        "KEN",
        "--name",
        "Labour ministry",
        "--role",
        "contributor",
        "--section",
        "labour",
    ]);
    let other_approver = app.issue_token_with(&[
        "--survey",
        "national",
        "--country",
        "UGA",
        "--name",
        "Okello",
        "--role",
        "approver",
    ]);
    answer_everything(&app, &coordinator).await;
    // A contributor reaches none of the cycle's actions: the same 404 as an unknown page.
    let form = app.get(&format!("{contributor}/s/labour")).await;
    let csrf = form.hidden("_csrf");
    for action in [
        "submit",
        "send-for-sign-off",
        "sign-off",
        "send-back",
        "recall",
    ] {
        let res = app
            .post(
                &format!("{contributor}/{action}"),
                &[
                    ("_csrf", csrf.as_str()),
                    ("name", "x"),
                    ("title", "y"),
                    ("message", "z"),
                ],
            )
            .await;
        assert_eq!(res.status, 404, "{action}: {}", res.body);
    }
    // A coordinator cannot sign off its own response.
    let sent = post_from_review(&app, &coordinator, "send-for-sign-off", &[]).await;
    assert_eq!(sent.status, 303);
    let own = post_from_review(
        &app,
        &coordinator,
        "sign-off",
        &[("name", "Wanjiru"), ("title", "Director")],
    )
    .await;
    assert_eq!(own.status, 404, "{}", own.body);
    // Another country's approver signs off its own (empty) response only: Kenya's stays waiting.
    let review = app.get(&format!("{other_approver}/review")).await;
    assert!(
        !review.body.contains("Sign off and submit"),
        "{}",
        review.body
    );
    let elsewhere = post_from_review(
        &app,
        &other_approver,
        "sign-off",
        &[("name", "Okello"), ("title", "PS")],
    )
    .await;
    assert_eq!(elsewhere.status, 409, "{}", elsewhere.body);
    let review = app.get(&format!("{coordinator}/review")).await;
    assert!(
        review.body.contains("Awaiting national sign-off"),
        "{}",
        review.body
    );
    for path in ["receipt/1", "versions/1/content.json"] {
        let res = app.get(&format!("{contributor}/{path}")).await;
        assert_eq!(res.status, 404, "{path}");
        let res = app.get(&format!("{coordinator}/{path}")).await;
        assert_eq!(res.status, 404, "{path}: no version yet");
    }
    app.stop().await;
}

/// A contributor saves while the coordinator sends the response for sign-off, five times:
/// each save is either stored before the response locked (and then in what the approver signs)
/// or refused with its typed value shown again; nothing is half-stored, nothing vanishes.
async fn a_save_racing_the_sign_off_request_is_kept_or_refused_whole(backend: Backend) {
    let smtp = SmtpServer::start(&[], 0);
    let app = cycle_app(backend, &smtp).await;
    let coordinator = app.issue_token_with(&[
        "--survey",
        "national",
        "--country",
        "PHL",
        "--name",
        "Maria",
    ]);
    let contributor = app.issue_token_with(&[
        "--survey",
        "national",
        "--country",
        "PHL",
        "--name",
        "DOLE",
        "--role",
        "contributor",
        "--section",
        "labour",
    ]);
    let approver = app.issue_token_with(&[
        "--survey",
        "national",
        "--country",
        "PHL",
        "--name",
        "Sec",
        "--role",
        "approver",
    ]);
    answer_everything(&app, &coordinator).await;
    let mut expected = "250".to_string();
    for round in 0..5 {
        let value = format!("{}", 300 + round);
        let form = app.get(&format!("{contributor}/s/labour")).await;
        let coordinator_csrf = link_csrf(&app, &coordinator).await;
        let (save_path, send_path) = (
            format!("{contributor}/s/labour"),
            format!("{coordinator}/send-for-sign-off"),
        );
        let answers = [("workers_abroad", value.as_str())];
        let send_fields = [("_csrf", coordinator_csrf.as_str())];
        let save = app.post_form_from(&form, &save_path, &answers);
        let send = app.post(&send_path, &send_fields);
        let (saved, sent) = tokio::join!(save, send);
        assert_eq!(sent.status, 303, "round {round}: {}", sent.body);
        match saved.status {
            303 => expected = value.clone(),
            409 => {
                assert!(
                    saved.body.contains("Your answers were not saved"),
                    "{}",
                    saved.body
                );
                assert_eq!(
                    saved.field_value("workers_abroad").as_deref(),
                    Some(value.as_str())
                );
            }
            other => panic!("round {round}: save answered {other}: {}", saved.body),
        }
        let review = app.get(&format!("{approver}/review")).await;
        assert!(
            review.body.contains(&format!("<dd>{expected}</dd>")),
            "round {round}: the approver reads {expected}"
        );
        if round < 4 {
            let back =
                post_from_review(&app, &approver, "send-back", &[("message", "again")]).await;
            assert_eq!(back.status, 303, "{}", back.body);
        }
    }
    let signed = post_from_review(
        &app,
        &approver,
        "sign-off",
        &[("name", "Sec"), ("title", "Secretary")],
    )
    .await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let content = app
        .get(&format!("{coordinator}/versions/1/content.json"))
        .await;
    let parsed: serde_json::Value = serde_json::from_str(&content.body).unwrap();
    assert_eq!(parsed["answers"]["workers_abroad"][""], expected.as_str());
    app.stop().await;
}

const OWNER: (&str, &str) = ("owner@gfmd.example.org", "a long owner passphrase");
const GHA: &str = "/admin/surveys/national/countries/GHA";

/// The first personal link in an email's body, as a path.
fn link_in(body: &str) -> String {
    let start = body.find("/r/").expect("a link in the email");
    body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '/' || *c == '_' || *c == '-')
        .collect()
}

/// Post a form of the owner's country page (its CSRF token).
async fn post_country(app: &TestApp, action: &str, fields: &[(&str, &str)]) -> Page {
    app.post_with_csrf_of(GHA, &format!("{GHA}/{action}"), fields)
        .await
}

/// Ghana's audit entries as (place in the chain, kind), oldest first.
fn audit_kinds(app: &TestApp) -> Vec<(i64, String)> {
    let pool = coherence::db::connect(&coherence::db::DbUrl::parse(&app.database_url).unwrap(), 1)
        .unwrap();
    let mut conn = pool.get().unwrap();
    let mut rows =
        coherence::db::audit::country_entries(&mut conn, "national", "GHA", 1000).unwrap();
    rows.reverse();
    rows.into_iter().map(|r| (r.seq, r.kind)).collect()
}

/// The issue's whole cycle in one test: sections handed to two ministries, sign-off after one
/// sending back, the receipt's digest against the export of v1, queries and a return, a reply,
/// a changed answer and v2 through sign-off, the difference v1 -> v2, acceptance, results
/// "accepted only", and the audit log verified, then tampered with.
async fn the_whole_national_report_cycle(backend: Backend) {
    let smtp = SmtpServer::start(&[], 0);
    let app = cycle_app(backend, &smtp).await;
    app.add_user(OWNER.0, OWNER.1, "owner", &["national"]);
    let coordinator = app.issue_token_with(&[
        "--survey",
        "national",
        "--country",
        "GHA",
        "--name",
        "Ama",
        "--email",
        "ama@mfa.example.gh",
    ]);
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

    // The coordinator hands two sections to two ministries; each gets its link by email.
    let mut contributors = Vec::new();
    for (name, email, section) in [
        ("Policy unit", "policy@interior.example.gh", "policy"),
        ("Labour ministry", "labour@labour.example.gh", "labour"),
    ] {
        let form = app.get(&format!("{coordinator}/colleagues")).await;
        assert_eq!(form.status, 200, "{}", form.body);
        let (csrf, lang) = (form.hidden("_csrf"), form.hidden("lang"));
        let done = app
            .post(
                &format!("{coordinator}/colleagues"),
                &[
                    ("_csrf", csrf.as_str()),
                    ("lang", lang.as_str()),
                    ("name", name),
                    ("email", email),
                    ("section", section),
                ],
            )
            .await;
        assert!(done.status == 200 || done.status == 303, "{}", done.body);
        let mails = smtp.wait_for(contributors.len() + 1).await;
        let mail = mails
            .iter()
            .find(|m| m.to == email)
            .expect("the assignment email");
        contributors.push((link_in(&mail.body), section));
    }
    let (policy, labour) = (contributors[0].0.clone(), contributors[1].0.clone());
    // Each ministry saves its own section and marks it ready; the other sections stay closed.
    for (link, section, answers) in [
        (
            &policy,
            "policy",
            vec![("has_strategy", "yes"), ("strategy_year", "2018")],
        ),
        (&labour, "labour", vec![("workers_abroad", "250")]),
    ] {
        let saved = app.save_section(link, section, &answers).await;
        assert_eq!(saved.status, 303, "{section}: {}", saved.body);
        assert_eq!(app.get(&format!("{link}/s/remittances")).await.status, 404);
        let csrf = link_csrf(&app, link).await;
        let ready = app
            .post(
                &format!("{link}/s/{section}/ready"),
                &[("_csrf", csrf.as_str())],
            )
            .await;
        assert_eq!(ready.status, 303, "{}", ready.body);
    }
    let overview = app.get(&coordinator).await;
    assert!(overview.body.contains("Policy unit"), "{}", overview.body);
    assert!(overview.body.contains("Labour ministry"));
    // The coordinator completes the last section and sends for sign-off.
    let saved = app
        .save_section(&coordinator, "remittances", &[("remit_programme", "no")])
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(
        post_from_review(&app, &coordinator, "send-for-sign-off", &[])
            .await
            .status,
        303
    );
    // The approver sends it back once, then signs off after it comes again.
    let back = post_from_review(
        &app,
        &approver,
        "send-back",
        &[("message", "Add the year.")],
    )
    .await;
    assert_eq!(back.status, 303, "{}", back.body);
    assert_eq!(
        post_from_review(&app, &coordinator, "send-for-sign-off", &[])
            .await
            .status,
        303
    );
    let signed = post_from_review(
        &app,
        &approver,
        "sign-off",
        &[("name", "Kofi Mensah"), ("title", "Chief of Staff")],
    )
    .await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let receipt = app.get(signed.location.as_deref().unwrap()).await;
    let digest_v1 = between(&receipt.body, "<code class=\"digest\">", "</code>").to_string();

    // The secretariat: the export of v1 gives the receipt's digest.
    assert_eq!(app.login(OWNER.0, OWNER.1).await.status, 303);
    let v1 = app
        .client
        .get(format!("{}{GHA}/versions/1.json", app.address))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(sha256(&v1), digest_v1);
    let export = app.get("/admin/surveys/national/export.json").await;
    assert_eq!(export.status, 200, "{}", export.body);
    assert!(
        export.body.contains(&digest_v1),
        "the JSON export names the digest"
    );

    // Two queries, then the response is returned: the country is emailed.
    for (question, body) in [
        ("workers_abroad", "The figure differs from your 2019 reply."),
        (
            "strategy_year",
            "Was the strategy adopted or published in 2018?",
        ),
    ] {
        let raised = post_country(&app, "queries", &[("question", question), ("body", body)]).await;
        assert_eq!(raised.status, 200, "{}", raised.body);
    }
    let returned = post_country(&app, "return", &[]).await;
    assert_eq!(returned.status, 200, "{}", returned.body);
    let mut returned_mail = None;
    for _ in 0..200 {
        returned_mail = smtp
            .messages()
            .into_iter()
            .find(|m| m.subject.contains("returned") && m.to == "ama@mfa.example.gh");
        if returned_mail.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let returned_mail = returned_mail.expect("the return email to the coordinator");
    assert!(
        returned_mail.body.contains("Workers abroad"),
        "{}",
        returned_mail.body
    );

    // The country replies to one query; the labour ministry changes its answer; the response
    // goes through sign-off again: v2.
    let ids = query_ids(&app.get(&coordinator).await.body, &coordinator);
    assert_eq!(ids.len(), 2);
    let labour_ids = query_ids(&app.get(&labour).await.body, &labour);
    assert_eq!(
        labour_ids.len(),
        1,
        "the labour ministry sees only its question's query"
    );
    let thread = app
        .get(&format!("{labour}/queries/{}", labour_ids[0]))
        .await;
    assert_eq!(thread.status, 200, "{}", thread.body);
    let csrf = thread.hidden("_csrf");
    let replied = app
        .post(
            &format!("{labour}/queries/{}", labour_ids[0]),
            &[
                ("_csrf", csrf.as_str()),
                ("body", "Corrected: 270, from the 2024 census."),
            ],
        )
        .await;
    assert_eq!(replied.status, 303, "{}", replied.body);
    let changed = app
        .save_section(&labour, "labour", &[("workers_abroad", "270")])
        .await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    assert_eq!(
        post_from_review(&app, &coordinator, "send-for-sign-off", &[])
            .await
            .status,
        303
    );
    let signed = post_from_review(
        &app,
        &approver,
        "sign-off",
        &[("name", "Kofi Mensah"), ("title", "Chief of Staff")],
    )
    .await;
    assert_eq!(
        signed.location.as_deref(),
        Some(format!("{approver}/receipt/2").as_str())
    );

    // The difference v1 -> v2 is exactly that change, by the labour ministry.
    let diff = app.get(&format!("{GHA}?from=1&to=2")).await;
    assert_eq!(
        diff.body.matches("<td class=\"old\">").count(),
        1,
        "{}",
        diff.body
    );
    assert!(
        diff.body.contains(
            "<td class=\"old\">250</td><td class=\"new\">270</td><td>Labour ministry</td>"
        ),
        "{}",
        diff.body
    );
    let page = app.get(GHA).await;
    assert!(page.body.contains("Corrected: 270, from the 2024 census."));

    // Accepted (one query still open: confirmed), and counted by "accepted only".
    let accepted = post_country(&app, "accept", &[("confirm", "yes")]).await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    let csv = app
        .get("/admin/surveys/national/export.csv?accepted=1")
        .await;
    assert_eq!(csv.status, 200, "{}", csv.body);
    let mut reader = csv::Reader::from_reader(csv.body.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 1, "{}", csv.body);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(&rows[0][col("iso3")], "GHA");
    assert_eq!(&rows[0][col("version")], "2");
    assert_eq!(&rows[0][col("state")], "accepted");
    assert_eq!(&rows[0][col("workers_abroad")], "270");

    // The audit log tells the story in order, verifies, and names a tampered entry.
    let entries = audit_kinds(&app);
    let kinds: Vec<&str> = entries.iter().map(|(_, k)| k.as_str()).collect();
    let position = |kind: &str| {
        kinds
            .iter()
            .position(|k| *k == kind)
            .unwrap_or_else(|| panic!("{kind} in {kinds:?}"))
    };
    assert!(position("sections_assigned") < position("section_ready"));
    assert!(position("section_ready") < position("sent_for_sign_off"));
    assert!(position("sent_back") < position("signed_off"));
    assert!(position("signed_off") < position("query_raised"));
    assert!(position("returned") < position("query_replied"));
    assert_eq!(kinds.iter().filter(|k| **k == "submitted").count(), 2);
    assert!(kinds.iter().rposition(|k| *k == "submitted") < Some(position("accepted")));
    // Emails delivered by the worker keep being recorded: the tampered entry is found by kind.
    let accepted_seq = entries[position("accepted")].0;
    let out = app.cli(&["audit", "verify", "national"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    {
        use diesel::connection::SimpleConnection;
        // Writable, as an attacker with the database file would have it.
        let mut conn = crate::helpers::writable_conn(&app.database_url);
        let (drop, tamper) = match backend {
            Backend::Sqlite => (
                "DROP TRIGGER audit_log_no_update;",
                "UPDATE audit_log SET detail = '{\"version\":3}' WHERE chain = 'national' AND kind = 'accepted';",
            ),
            Backend::Postgres => (
                "DROP TRIGGER audit_log_no_change ON audit_log;",
                "UPDATE audit_log SET detail = '{\"version\":3}' WHERE chain = 'national' AND kind = 'accepted';",
            ),
        };
        let refused = conn.batch_execute(tamper);
        assert!(refused.is_err(), "the database refuses a change to the log");
        conn.batch_execute(drop).unwrap();
        conn.batch_execute(tamper).unwrap();
    }
    let out = app.cli(&["audit", "verify", "national"], None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("chain national, entry {accepted_seq}: altered")),
        "{stderr}"
    );
    app.stop().await;
}

const ADMIN: (&str, &str) = ("admin@gfmd.example.org", "a long admin passphrase");

/// Post a form of a country page of the fixture survey (its CSRF token).
async fn post_fixture_country(
    app: &TestApp,
    iso3: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> Page {
    let path = format!("/admin/surveys/fixture/countries/{iso3}");
    app.post_with_csrf_of(&path, &format!("{path}/{action}"), fields)
        .await
}

/// The stored value of a question in a country's response of the fixture survey.
fn stored_value(app: &TestApp, iso3: &str, question: &str) -> Option<String> {
    let pool = coherence::db::connect(&coherence::db::DbUrl::parse(&app.database_url).unwrap(), 1)
        .unwrap();
    let mut conn = pool.get().unwrap();
    let r = coherence::db::responses::find_response(&mut conn, "fixture", iso3, "").unwrap()?;
    let answers = coherence::db::answers::load_answers(&mut conn, &r.id).unwrap();
    answers.get(question).map(|items| items[0].value.clone())
}

/// Who may do what, by role and state: another country's links never reach a country's
/// queries, receipts or versions; nobody changes a response under review or accepted; only
/// links that submit recall, and only before the review.
async fn the_access_matrix_of_roles_and_states(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_user(ADMIN.0, ADMIN.1, "admin", &[]);
    assert_eq!(app.login(ADMIN.0, ADMIN.1).await.status, 303);
    let swe = app.issue_token("fixture", "SWE", "Anna");
    let swe_contributor = app.issue_token_with(&[
        "--survey",
        "fixture",
        "--country",
        "SWE",
        "--name",
        "Bo",
        "--role",
        "contributor",
        "--section",
        "plans",
    ]);
    let swe_approver = app.issue_token_with(&[
        "--survey",
        "fixture",
        "--country",
        "SWE",
        "--name",
        "Eva",
        "--role",
        "approver",
    ]);
    let nor_approver = app.issue_token_with(&[
        "--survey",
        "fixture",
        "--country",
        "NOR",
        "--name",
        "Ola",
        "--role",
        "approver",
    ]);
    let saved = app
        .save_section(&swe, "basics", &[("name", "MFA"), ("active", "yes")])
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    app.save_section(&swe, "plans", &[("has_plan", "no")]).await;
    // A contributor does not recall; the coordinator's submission is version 1.
    assert_eq!(app.submit(&swe).await.status, 303);
    let csrf = link_csrf(&app, &swe_contributor).await;
    let res = app
        .post(
            &format!("{swe_contributor}/recall"),
            &[("_csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(res.status, 404);
    // A query on "name" begins the review.
    let raised = post_fixture_country(
        &app,
        "SWE",
        "queries",
        &[("question", "name"), ("body", "Full name?")],
    )
    .await;
    assert_eq!(raised.status, 200, "{}", raised.body);
    let overview = app.get(&swe).await;
    let ids = query_ids(&overview.body, &swe);
    assert_eq!(ids.len(), 1, "the query is listed");
    let query = ids[0].clone();

    // Norway's approver reaches none of Sweden's pages: the bare 404 of an unknown page.
    for path in [
        format!("{nor_approver}/queries/{query}"),
        format!("{nor_approver}/receipt/1"),
        format!("{nor_approver}/versions/1/content.json"),
    ] {
        assert_eq!(app.get(&path).await.status, 404, "{path}");
    }
    let csrf = link_csrf(&app, &nor_approver).await;
    let reply = app
        .post(
            &format!("{nor_approver}/queries/{query}"),
            &[("_csrf", csrf.as_str()), ("body", "Not mine")],
        )
        .await;
    assert_eq!(reply.status, 404, "{}", reply.body);
    // The contributor of "plans" does not see the query on "name".
    assert_eq!(
        app.get(&format!("{swe_contributor}/queries/{query}"))
            .await
            .status,
        404
    );

    // Under review, then accepted: every Swedish link is refused a change, with the reason.
    for state in ["under review", "accepted"] {
        if state == "accepted" {
            let accepted = post_fixture_country(&app, "SWE", "accept", &[("confirm", "yes")]).await;
            assert_eq!(accepted.status, 200, "{}", accepted.body);
        }
        for (link, section, question) in [
            (&swe, "basics", "name"),
            (&swe_approver, "basics", "name"),
            (&swe_contributor, "plans", "has_plan"),
        ] {
            let form = app.get(&format!("{link}/s/{section}")).await;
            let value = if question == "name" { "Changed" } else { "yes" };
            let res = app
                .post_form_from(&form, &format!("{link}/s/{section}"), &[(question, value)])
                .await;
            assert_eq!(res.status, 409, "{state}, {link}: {}", res.body);
            assert!(res.body.contains("Your answers were not saved"));
        }
        assert_eq!(stored_value(&app, "SWE", "name").as_deref(), Some("MFA"));
        assert_eq!(stored_value(&app, "SWE", "has_plan").as_deref(), Some("no"));
        let csrf = link_csrf(&app, &swe).await;
        for action in ["recall", "submit"] {
            let res = app
                .post(&format!("{swe}/{action}"), &[("_csrf", csrf.as_str())])
                .await;
            assert_eq!(res.status, 409, "{state}: {action}: {}", res.body);
        }
    }
    app.stop().await;
}

/// The owner returns the response while a coordinator posts a form opened before: the save is
/// either refused (the response was still with the secretariat) with its values shown again,
/// or stored after the return (the response was the country's again); version 1 never changes.
async fn the_owner_returning_while_the_coordinator_saves_loses_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_user(ADMIN.0, ADMIN.1, "admin", &[]);
    assert_eq!(app.login(ADMIN.0, ADMIN.1).await.status, 303);
    let link = app.issue_token("fixture", "SWE", "Anna");
    app.save_section(&link, "basics", &[("name", "MFA"), ("active", "yes")])
        .await;
    app.save_section(&link, "plans", &[("has_plan", "no")])
        .await;
    let form = app.get(&format!("{link}/s/basics")).await;
    assert_eq!(app.submit(&link).await.status, 303);
    let v1 = app
        .get(&format!("{link}/versions/1/content.json"))
        .await
        .body;
    let country = app.get("/admin/surveys/fixture/countries/SWE").await;
    let csrf = country.hidden("_csrf");
    let save_path = format!("{link}/s/basics");
    let answers = [("name", "Late"), ("active", "yes")];
    let return_fields = [("_csrf", csrf.as_str())];
    let (saved, returned) = tokio::join!(
        app.post_form_from(&form, &save_path, &answers),
        app.post(
            "/admin/surveys/fixture/countries/SWE/return",
            &return_fields
        ),
    );
    assert_eq!(returned.status, 200, "{}", returned.body);
    match saved.status {
        303 => assert_eq!(stored_value(&app, "SWE", "name").as_deref(), Some("Late")),
        409 => {
            assert!(
                saved.body.contains("Your answers were not saved"),
                "{}",
                saved.body
            );
            assert_eq!(saved.field_value("name").as_deref(), Some("Late"));
            assert_eq!(stored_value(&app, "SWE", "name").as_deref(), Some("MFA"));
        }
        other => panic!("the save answered {other}: {}", saved.body),
    }
    // Version 1 is what was submitted, whatever happened since.
    assert_eq!(
        app.get(&format!("{link}/versions/1/content.json"))
            .await
            .body,
        v1
    );
    assert!(v1.contains("\"name\":{\"\":\"MFA\"}"), "{v1}");
    // Returned: the country may change it now.
    let again = app
        .save_section(&link, "basics", &[("name", "MFA 2"), ("active", "yes")])
        .await;
    assert_eq!(again.status, 303, "{}", again.body);
    app.stop().await;
}

/// A database from before versions: a submitted response without any. The next start stores
/// it as version 1 from its answers, counted; a draft is left alone.
async fn a_response_submitted_before_versions_becomes_version_1_at_start(backend: Backend) {
    use coherence::db::schema::{response_versions, responses, version_answers};
    use diesel::prelude::*;
    let app = TestApp::spawn(backend).await;
    let swe = app.issue_token("fixture", "SWE", "Anna");
    let nor = app.issue_token("fixture", "NOR", "Ola");
    app.save_section(&swe, "basics", &[("name", "MFA"), ("active", "yes")])
        .await;
    app.save_section(&swe, "plans", &[("has_plan", "no")]).await;
    assert_eq!(app.submit(&swe).await.status, 303);
    app.save_section(&nor, "basics", &[("name", "UD"), ("active", "no")])
        .await;
    let v1 = app
        .get(&format!("{swe}/versions/1/content.json"))
        .await
        .body;
    let url = coherence::db::DbUrl::parse(&app.database_url).unwrap();
    {
        // As an older Coherence left it: submitted, no version.
        let mut conn = crate::helpers::writable_conn(&app.database_url);
        diesel::delete(version_answers::table)
            .execute(&mut conn)
            .unwrap();
        diesel::delete(response_versions::table)
            .execute(&mut conn)
            .unwrap();
        diesel::update(responses::table)
            .set((
                responses::version_count.eq(0),
                responses::counted_version.eq(None::<i32>),
            ))
            .execute(&mut conn)
            .unwrap();
    }
    let (db, surveys, dir) = (
        app.database_url.clone(),
        app.surveys.clone(),
        app.dir.clone(),
    );
    app.stop().await;
    let app = TestApp::start(db, surveys, dir).await;
    let pool = coherence::db::connect(&url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    let rows: Vec<(String, i32, Option<i32>)> = responses::table
        .order(responses::country_iso3)
        .select((
            responses::country_iso3,
            responses::version_count,
            responses::counted_version,
        ))
        .load(&mut conn)
        .unwrap();
    assert_eq!(
        rows,
        [
            ("NOR".to_string(), 0, None),
            ("SWE".to_string(), 1, Some(1))
        ]
    );
    let digest: String = response_versions::table
        .select(response_versions::digest)
        .first(&mut conn)
        .unwrap();
    assert_eq!(
        sha256(v1.as_bytes()),
        digest,
        "the same content as when it was submitted"
    );
    assert_eq!(
        app.get(&format!("{swe}/versions/1/content.json"))
            .await
            .body,
        v1
    );
    app.stop().await;
}

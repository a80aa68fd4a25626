//! The country's side of the report cycle over HTTP: national sign-off (sent, sent back with a
//! message, signed off), the receipt and its digest, recall, and who may do what. Emails are
//! read back from a real SMTP server. Every test runs on SQLite and PostgreSQL.

use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::helpers::{fresh_database, mail_env, Backend, Page, SmtpServer, TestApp};
use crate::on_both_backends;

on_both_backends!(
    a_response_goes_through_national_sign_off_to_a_receipt,
    a_submission_is_recalled_before_review_and_submitted_again,
    only_the_right_links_send_sign_off_and_recall,
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
    for page in ["review", "s/policy", "s/labour", "s/basics"] {
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

//! The secretariat's review of a national report over HTTP: beginning the review, queries per
//! question answered by the country, returning (the email read back from a real SMTP server),
//! resubmission as a new version and the difference between versions, acceptance (confirmed
//! when queries are open), the version's canonical download, and a report entered by an owner
//! from paper. Every test runs on SQLite and PostgreSQL.

use coherence::db::versions::{self, VersionRow};
use coherence::db::{self, responses, DbUrl};

use crate::helpers::{query_ids, Backend, Page, SmtpServer, TestApp};
use crate::on_both_backends;

on_both_backends!(
    the_secretariat_queries_returns_and_accepts_a_report,
    an_owner_enters_a_report_received_on_paper,
);

const ADMIN: (&str, &str) = ("admin@gfmd.example.org", "a long admin passphrase");
const COUNTRY: &str = "/admin/surveys/fixture/countries/SWE";

fn conn(app: &TestApp) -> db::PooledConn {
    let url = DbUrl::parse(&app.database_url).unwrap();
    let pool = db::connect(&url, 1).unwrap();
    pool.get().unwrap()
}

/// The SWE response's status and versions as stored.
fn stored(app: &TestApp) -> (String, Vec<VersionRow>) {
    let mut conn = conn(app);
    let r = responses::find_response(&mut conn, "fixture", "SWE", "")
        .unwrap()
        .unwrap();
    let v = versions::versions(&mut conn, &r.id).unwrap();
    (r.status.as_str().to_string(), v)
}

/// Post a form of the country page with its CSRF token.
async fn post_country(app: &TestApp, action: &str, fields: &[(&str, &str)]) -> Page {
    app.post_with_csrf_of(COUNTRY, &format!("{COUNTRY}/{action}"), fields)
        .await
}

async fn the_secretariat_queries_returns_and_accepts_a_report(backend: Backend) {
    let smtp = SmtpServer::start(&[], 0);
    let app = TestApp::spawn_with_mail(backend, smtp.port).await;
    app.add_user(ADMIN.0, ADMIN.1, "admin", &[]);
    assert_eq!(app.login(ADMIN.0, ADMIN.1).await.status, 303);
    let base = ["--survey", "fixture", "--country", "SWE"];
    let coordinator =
        app.issue_token_with(&[&base[..], &["--name", "Lars", "--email", "lars@gov.se"]].concat());
    let basics_only = app.issue_token_with(
        &[
            &base[..],
            &[
                "--name",
                "Eva",
                "--role",
                "contributor",
                "--section",
                "basics",
            ],
        ]
        .concat(),
    );
    // The coordinator answers and submits: version 1.
    let saved = app
        .save_section(
            &coordinator,
            "basics",
            &[("name", "MFA"), ("active", "yes")],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    app.save_section(&coordinator, "plans", &[("has_plan", "no")])
        .await;
    assert_eq!(app.submit(&coordinator).await.status, 303);
    let page = app.get(COUNTRY).await;
    assert!(
        page.body.contains("Submitted, not yet under review"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("<th scope=\"row\">v1</th>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Begin the review"));

    // A query on a question begins the review; the country can no longer recall.
    let raised = post_country(
        &app,
        "queries",
        &[("question", "name"), ("body", "Is <MFA> the full name?")],
    )
    .await;
    assert_eq!(raised.status, 200, "{}", raised.body);
    assert!(raised.body.contains("Under review"), "{}", raised.body);
    assert!(raised.body.contains("Is &lt;MFA&gt; the full name?"));
    assert_eq!(stored(&app).0, "under_review");
    let recall = recall_through_library(&app, &coordinator);
    assert!(recall.contains("under_review"), "{recall}");
    // Beginning the review again is refused clearly, and changes nothing.
    let again = post_country(&app, "review", &[]).await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(again.body.contains("Nothing was changed"), "{}", again.body);
    // An empty query is refused.
    let empty = post_country(&app, "queries", &[("question", "has_plan"), ("body", "  ")]).await;
    assert_eq!(empty.status, 422);
    let second = post_country(
        &app,
        "queries",
        &[
            ("question", "has_plan"),
            ("body", "Your 2019 reply named a plan."),
        ],
    )
    .await;
    assert_eq!(second.status, 200, "{}", second.body);

    // Accepting with open queries asks for confirmation and changes nothing.
    let unconfirmed = post_country(&app, "accept", &[]).await;
    assert_eq!(unconfirmed.status, 409, "{}", unconfirmed.body);
    assert!(
        unconfirmed.body.contains("still has 2 open queries"),
        "{}",
        unconfirmed.body
    );
    assert!(unconfirmed.body.contains("name=\"confirm\" value=\"yes\""));
    assert_eq!(stored(&app).0, "under_review");

    // Returned: the coordinator is emailed the queried questions. The receipt is delivered
    // first: queued together, the two would go out over several connections in any order.
    smtp.wait_for(1).await;
    let returned = post_country(&app, "return", &[]).await;
    assert_eq!(returned.status, 200, "{}", returned.body);
    assert!(
        returned.body.contains("emails queued: 1"),
        "{}",
        returned.body
    );
    assert!(returned.body.contains("Returned to the country"));
    // The submission's receipt came first.
    let mails = smtp.wait_for(2).await;
    assert!(mails[0].subject.starts_with("Receipt: "), "{:?}", mails[0]);
    let mail = mails
        .iter()
        .find(|m| m.subject.contains("Response returned"))
        .expect("the return email");
    assert!(mail.to.contains("lars@gov.se"), "{mail:?}");
    assert!(
        mail.subject.contains("Response returned with queries"),
        "{mail:?}"
    );
    assert!(
        mail.body.contains("- Name") && mail.body.contains("- Is there a plan?"),
        "{}",
        mail.body
    );
    let (status, v) = stored(&app);
    assert_eq!(status, "returned");
    assert!(v[0].returned_at.is_some());
    // A returned response cannot be accepted.
    assert_eq!(
        post_country(&app, "accept", &[("confirm", "yes")])
            .await
            .status,
        409
    );

    // The country sees the queries on the overview and beside their questions.
    let overview = app.get(&coordinator).await;
    let ids = query_ids(&overview.body, &coordinator);
    assert_eq!(ids.len(), 2, "{}", overview.body);
    let (name_q, plan_q) = (ids[0].clone(), ids[1].clone());
    let section = app.get(&format!("{coordinator}/s/basics")).await;
    assert!(
        section
            .body
            .contains("The secretariat asks:</strong> Is &lt;MFA&gt; the full name?"),
        "{}",
        section.body
    );
    // A contributor of another section does not see the plans query: the bare 404.
    let own = app.get(&format!("{basics_only}/queries/{name_q}")).await;
    assert_eq!(own.status, 200, "{}", own.body);
    let other = app.get(&format!("{basics_only}/queries/{plan_q}")).await;
    assert_eq!(other.status, 404);
    assert_eq!(
        query_ids(&app.get(&basics_only).await.body, &basics_only),
        [name_q.as_str()]
    );

    // The coordinator replies, changes the answer and submits again: version 2.
    let thread = app.get(&format!("{coordinator}/queries/{name_q}")).await;
    assert_eq!(thread.status, 200);
    let csrf = thread.hidden("_csrf");
    let blank = app
        .post(
            &format!("{coordinator}/queries/{name_q}"),
            &[("_csrf", &csrf), ("body", "")],
        )
        .await;
    assert_eq!(blank.status, 422, "{}", blank.body);
    let replied = app
        .post(
            &format!("{coordinator}/queries/{name_q}"),
            &[("_csrf", &csrf), ("body", "It is MFA2 now.")],
        )
        .await;
    assert_eq!(replied.status, 303, "{}", replied.body);
    let shown = app.get(replied.location.as_deref().unwrap()).await;
    assert!(
        shown.body.contains("Your reply was sent."),
        "{}",
        shown.body
    );
    assert!(shown.body.contains("It is MFA2 now."));
    let changed = app
        .save_section(
            &coordinator,
            "basics",
            &[("name", "MFA2"), ("active", "yes")],
        )
        .await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    assert_eq!(app.submit(&coordinator).await.status, 303);
    let (status, v) = stored(&app);
    assert_eq!((status.as_str(), v.len()), ("submitted", 2));

    // The owner sees the reply, what changed, and the difference v1 -> v2: exactly that.
    let page = app.get(COUNTRY).await;
    assert!(page.body.contains("It is MFA2 now."), "{}", page.body);
    assert!(
        page.body.contains("The answer has changed in version 2"),
        "{}",
        page.body
    );
    let diff = app.get(&format!("{COUNTRY}?from=1&to=2")).await;
    assert!(
        diff.body.contains("Changes from version 1 to version 2"),
        "{}",
        diff.body
    );
    let rows = diff.body.matches("<td class=\"old\">").count();
    assert_eq!(rows, 1, "{}", diff.body);
    assert!(
        diff.body.contains("<th scope=\"row\">Name</th><td class=\"old\">MFA</td><td class=\"new\">MFA2</td><td>Lars</td>"),
        "{}",
        diff.body
    );
    let shown_v1 = app.get(&format!("{COUNTRY}?version=1")).await;
    assert!(shown_v1.body.contains(&v[0].digest), "{}", shown_v1.body);
    assert!(shown_v1.body.contains("<dt>Name</dt><dd>MFA</dd>"));

    // The owner closes the name query and accepts, confirming for the one still open.
    let closed = post_country(&app, &format!("queries/{name_q}/close"), &[]).await;
    assert_eq!(closed.status, 200, "{}", closed.body);
    assert!(closed.body.contains("The query was closed."));
    assert_eq!(
        post_country(&app, &format!("queries/{name_q}/close"), &[])
            .await
            .status,
        409
    );
    let closed_reply = app
        .post(
            &format!("{coordinator}/queries/{name_q}"),
            &[("_csrf", &csrf), ("body", "One more thing")],
        )
        .await;
    assert_eq!(closed_reply.status, 409, "{}", closed_reply.body);
    let unconfirmed = post_country(&app, "accept", &[]).await;
    assert!(
        unconfirmed.body.contains("still has 1 open queries"),
        "{}",
        unconfirmed.body
    );
    let accepted = post_country(&app, "accept", &[("confirm", "yes")]).await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    assert!(accepted.body.contains("was accepted"));
    let (status, v) = stored(&app);
    assert_eq!(status, "accepted");
    assert!(v[1].accepted_at.is_some() && v[0].accepted_at.is_none());
    // Accepted is final: it cannot be returned; the country no longer replies.
    let no_return = post_country(&app, "return", &[]).await;
    assert_eq!(no_return.status, 409);
    assert!(no_return.body.contains("Nothing was changed"));
    let late = app.get(&format!("{coordinator}/queries/{plan_q}")).await;
    assert!(late.body.contains("can no longer be sent"), "{}", late.body);

    // Each version's canonical content, byte for byte: its SHA-256 is the stored digest.
    for version in &v {
        let res = app
            .client
            .get(format!(
                "{}{COUNTRY}/versions/{}.json",
                app.address, version.number
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        assert_eq!(res.headers()["content-type"], "application/json");
        assert!(res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment"));
        let bytes = res.bytes().await.unwrap();
        assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), version.digest);
    }
    assert_eq!(
        app.get(&format!("{COUNTRY}/versions/9.json")).await.status,
        404
    );

    // The record of events lists what happened, newest first.
    let page = app.get(COUNTRY).await;
    let audit = &page.body[page.body.find("id=\"audit\"").unwrap()..];
    for what in [
        "Accepted",
        "Query closed",
        "Query answered",
        "Returned",
        "Query raised",
        "Review begun",
    ] {
        assert!(
            audit.contains(&format!("<th scope=\"row\">{what}</th>")),
            "{what}: {audit}"
        );
    }
    assert!(audit.find("Accepted").unwrap() < audit.find("Review begun").unwrap());

    // The pages render in every language.
    for lang in ["en", "fr", "es"] {
        for path in [
            format!("{COUNTRY}?from=1&to=2&lang={lang}"),
            format!("{COUNTRY}?version=2&lang={lang}"),
            format!("{coordinator}/queries/{plan_q}?lang={lang}"),
            format!("{coordinator}?lang={lang}"),
            format!("{coordinator}/s/plans?lang={lang}"),
        ] {
            let page = app.get(&path).await;
            assert_eq!(page.status, 200, "{path}: {}", page.body);
            assert!(
                page.body.contains(&format!("<html lang=\"{lang}\">")),
                "{path}"
            );
        }
    }
    app.stop().await;
}

use sha2::Digest;

/// The country recalls through the respond domain (its page is the lead's): the error text.
fn recall_through_library(app: &TestApp, link: &str) -> String {
    let mut conn = conn(app);
    let secret = link.trim_start_matches("/r/");
    let token =
        coherence::db::tokens::find_token(&mut conn, &coherence::access::hash_token(secret))
            .unwrap()
            .unwrap();
    let path = app.surveys.join("fixture.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let survey = coherence::survey::load::parse_survey("fixture.toml", &text)
        .0
        .unwrap();
    let who = coherence::respond::Respondent { token };
    match coherence::respond::recall(&mut conn, &survey, &who, chrono::Utc::now()) {
        Ok(state) => format!("recalled to {}", state.as_str()),
        Err(e) => e.to_string(),
    }
}

async fn an_owner_enters_a_report_received_on_paper(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = ("owner@gfmd.example.org", "an owner's long passphrase");
    app.add_user(owner.0, owner.1, "owner", &["fixture"]);
    assert_eq!(app.login(owner.0, owner.1).await.status, 303);
    let page = app.get(COUNTRY).await;
    assert!(
        page.body
            .contains("Enter a report received outside Coherence"),
        "{}",
        page.body
    );
    // A channel that is not email, paper or other is refused.
    let bad = post_country(&app, "entry", &[("channel", "web")]).await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    let opened = post_country(&app, "entry", &[("channel", "paper")]).await;
    assert_eq!(opened.status, 303, "{}", opened.body);
    let link = opened.location.unwrap();
    assert!(link.starts_with("/r/"), "{link}");
    // The same forms; the owner enters the paper report and submits it.
    app.save_section(&link, "basics", &[("name", "Paper"), ("active", "no")])
        .await;
    app.save_section(&link, "plans", &[("has_plan", "no")])
        .await;
    let submitted = app.submit(&link).await;
    assert_eq!(submitted.status, 303, "{}", submitted.body);
    let (status, v) = stored(&app);
    assert_eq!(status, "submitted");
    assert_eq!(v[0].channel, "paper");
    assert!(v[0].entered_by.is_some());
    // Shown as such on the versions and the links.
    let page = app.get(COUNTRY).await;
    let entered = format!("entered by {} (On paper)", owner.0);
    assert_eq!(page.body.matches(&entered).count(), 2, "{}", page.body);
    assert!(page.body.contains("Entry of a report opened"));
    app.stop().await;
}

//! Link roles: coordinators (every link before roles), contributors limited to the sections
//! they were given, approvers (as coordinators until sign-off exists). Every test runs on
//! SQLite and PostgreSQL.

use coherence::db::tokens::{self, LinkRole};
use coherence::db::{self, DbUrl};

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    token_issue_gives_each_role_and_refuses_bad_sections,
    a_contributor_answers_only_its_sections_and_cannot_submit,
    the_country_page_issues_links_of_each_role,
);

const ADMIN: (&str, &str) = ("admin@gfmd.example.org", "a long admin passphrase");

/// The links of a country as stored: (holder, role, sections), oldest first.
fn stored_links(app: &TestApp, country: &str) -> Vec<(String, LinkRole, String)> {
    let url = DbUrl::parse(&app.database_url).unwrap();
    let pool = db::connect(&url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    let mut rows: Vec<_> = tokens::country_tokens(&mut conn, "fixture", country)
        .unwrap()
        .into_iter()
        .map(|r| (r.holder_name.unwrap_or_default(), r.role, r.sections))
        .collect();
    rows.reverse();
    rows
}

/// Answers stored for the country's response: (question, value).
fn stored_answers(app: &TestApp) -> Vec<(String, String)> {
    use coherence::db::schema::answers;
    use diesel::prelude::*;
    let url = DbUrl::parse(&app.database_url).unwrap();
    let pool = db::connect(&url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    answers::table
        .select((answers::question_id, answers::value))
        .order((answers::question_id, answers::value))
        .load(&mut conn)
        .unwrap()
}

fn issue_fails(app: &TestApp, args: &[&str]) -> String {
    let mut all = vec!["token", "issue", "--survey", "fixture", "--country", "SWE"];
    all.extend_from_slice(args);
    let out = app.cli(&all, None);
    assert!(!out.status.success(), "{args:?} was accepted");
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    stderr
}

async fn token_issue_gives_each_role_and_refuses_bad_sections(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let base = ["--survey", "fixture", "--country", "SWE"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut v = base.to_vec();
        v.extend_from_slice(extra);
        v
    };
    let coordinator = app.issue_token_with(&with(&["--name", "Cora"]));
    let approver = app.issue_token_with(&with(&["--name", "Abe", "--role", "approver"]));
    // Sections are stored once each, in the survey's order, whatever order they were typed.
    let contributor = app.issue_token_with(&with(&[
        "--name",
        "Con",
        "--role",
        "contributor",
        "--section",
        "extra",
        "--section",
        "plans",
        "--section",
        "extra",
    ]));
    assert_eq!(
        stored_links(&app, "SWE"),
        vec![
            ("Cora".into(), LinkRole::Coordinator, "".into()),
            ("Abe".into(), LinkRole::Approver, "".into()),
            ("Con".into(), LinkRole::Contributor, "plans extra".into()),
        ]
    );
    for link in [&coordinator, &approver, &contributor] {
        assert_eq!(app.get(link).await.status, 200);
    }
    // An approver works as a coordinator until sign-off exists: every section, and submit.
    assert_eq!(app.get(&format!("{approver}/s/basics")).await.status, 200);
    let review = app.get(&format!("{approver}/review")).await;
    assert!(review.body.contains("/submit\""), "{}", review.body);
    let list = app.cli(
        &["token", "list", "--survey", "fixture", "--country", "SWE"],
        None,
    );
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.contains("\tcontributor (plans extra)\t"), "{list}");
    assert!(list.contains("Abe\t-\tapprover\t"), "{list}");

    let e = issue_fails(&app, &["--role", "chief"]);
    assert!(
        e.contains("--role 'chief' must be coordinator, contributor or approver"),
        "{e}"
    );
    let e = issue_fails(&app, &["--role", "contributor"]);
    assert!(e.contains("name each with --section ID"), "{e}");
    let e = issue_fails(&app, &["--role", "contributor", "--section", "nowhere"]);
    assert!(
        e.contains("'fixture' has no section 'nowhere' (its sections: basics, plans, extra)"),
        "{e}"
    );
    let e = issue_fails(&app, &["--section", "plans"]);
    assert!(
        e.contains("--section is only for --role contributor"),
        "{e}"
    );
    let e = issue_fails(&app, &["--role", "approver", "--section", "plans"]);
    assert!(
        e.contains("coordinators and approvers answer every section"),
        "{e}"
    );
    assert_eq!(
        stored_links(&app, "SWE").len(),
        3,
        "nothing issued on error"
    );
    app.stop().await;
}

async fn a_contributor_answers_only_its_sections_and_cannot_submit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let coordinator = app.issue_token("fixture", "SWE", "Cora");
    let contributor = app.issue_token_with(&[
        "--survey",
        "fixture",
        "--country",
        "SWE",
        "--name",
        "Con",
        "--role",
        "contributor",
        "--section",
        "plans",
    ]);

    // The overview lists only its section, says who submits, and the coordinator's all.
    let overview = app.get(&contributor).await;
    assert_eq!(overview.status, 200);
    assert!(overview.body.contains(&format!("{contributor}/s/plans")));
    assert!(!overview.body.contains(&format!("{contributor}/s/basics")));
    assert!(overview
        .body
        .contains("The coordinator of your country reviews and submits"));
    let full = app.get(&coordinator).await;
    assert!(full.body.contains(&format!("{coordinator}/s/basics")));
    assert!(!full.body.contains("The coordinator of your country"));

    // Another section is 404, the same bare page as an unknown link, on GET and POST.
    let unknown = app.get(&format!("/r/{}/s/basics", "ab".repeat(24))).await;
    assert_eq!(unknown.status, 404);
    let other = app.get(&format!("{contributor}/s/basics")).await;
    assert_eq!(other.status, 404);
    assert_eq!(other.body, unknown.body);
    let own = app.get(&format!("{contributor}/s/plans")).await;
    assert_eq!(own.status, 200);
    let posted = app
        .post_form_from(
            &own,
            &format!("{contributor}/s/basics"),
            &[("name", "Not mine"), ("active", "yes")],
        )
        .await;
    assert_eq!(posted.status, 404);
    assert_eq!(posted.body, unknown.body);
    assert!(stored_answers(&app).is_empty(), "nothing saved");

    // Its own section saves.
    let saved = app
        .post_form_from(
            &own,
            &format!("{contributor}/s/plans"),
            &[("has_plan", "no")],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(
        stored_answers(&app),
        vec![("has_plan".to_string(), "no".to_string())]
    );

    // Review shows its section only, and no submit button; a submit is refused as unknown.
    let review = app.get(&format!("{contributor}/review")).await;
    assert_eq!(review.status, 200);
    assert!(review.body.contains("Is there a plan?"));
    assert!(!review.body.contains("<h2>Basics</h2>"), "{}", review.body);
    assert!(!review.body.contains("/submit\""), "{}", review.body);
    // The token of a form the link does show (its own section's).
    let csrf = app
        .get(&format!("{contributor}/s/plans"))
        .await
        .hidden("_csrf");
    let refused = app
        .post(&format!("{contributor}/submit"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(refused.status, 404);
    assert_eq!(refused.body, unknown.body);
    // Its printed questionnaire holds its section only.
    let print = app.get(&format!("{contributor}/print?answers=1")).await;
    assert!(print.body.contains("Is there a plan?"));
    assert!(!print.body.contains("Extra note"));

    // The coordinator sees the contributor's answer and submits the whole response.
    let review = app.get(&format!("{coordinator}/review")).await;
    assert!(review.body.contains("/submit\""));
    app.save_section(
        &coordinator,
        "basics",
        &[("name", "MFA"), ("active", "yes")],
    )
    .await;
    let submitted = app.submit(&coordinator).await;
    assert_eq!(submitted.status, 303, "{}", submitted.body);
    let answers = stored_answers(&app);
    assert!(
        answers.contains(&("has_plan".into(), "no".into())),
        "{answers:?}"
    );
    assert!(
        answers.contains(&("name".into(), "MFA".into())),
        "{answers:?}"
    );
    let done = app.get(&contributor).await;
    assert!(done.body.contains("Submitted on "), "{}", done.body);
    app.stop().await;
}

async fn the_country_page_issues_links_of_each_role(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_user(ADMIN.0, ADMIN.1, "admin", &[]);
    assert_eq!(app.login(ADMIN.0, ADMIN.1).await.status, 303);
    let page = app.get("/admin/surveys/fixture/countries/PHL").await;
    assert!(page
        .body
        .contains("name=\"role\" value=\"coordinator\" checked"));
    assert!(page.body.contains("name=\"section\" value=\"plans\""));
    let csrf = page.hidden("_csrf");
    let path = "/admin/surveys/fixture/countries/PHL/links";

    // A contributor with no section: the message next to the form, the choice kept.
    let refused = app
        .post(
            path,
            &[("_csrf", &csrf), ("name", "Rosa"), ("role", "contributor")],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(
        refused.body.contains("tick at least one"),
        "{}",
        refused.body
    );
    assert!(refused
        .body
        .contains("name=\"role\" value=\"contributor\" checked"));
    assert!(refused.body.contains("value=\"Rosa\""));
    let refused = app
        .post(
            path,
            &[("_csrf", &csrf), ("name", "Rosa"), ("role", "chief")],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(refused
        .body
        .contains("Choose coordinator, contributor or approver"));
    assert!(stored_links(&app, "PHL").is_empty());

    // A contributor for two sections: issued, shown with its role and sections.
    let issued = app
        .post(
            path,
            &[
                ("_csrf", &csrf),
                ("name", "Rosa"),
                ("role", "contributor"),
                ("section", "extra"),
                ("section", "plans"),
            ],
        )
        .await;
    assert_eq!(issued.status, 200, "{}", issued.body);
    assert!(
        issued.body.contains("Contributor: Plans, Extra"),
        "{}",
        issued.body
    );
    let link = new_link(&issued);
    assert_eq!(app.get(&format!("{link}/s/plans")).await.status, 200);
    assert_eq!(app.get(&format!("{link}/s/basics")).await.status, 404);

    // Sections ticked and then the role changed to approver are not sent on.
    let issued = app
        .post(
            path,
            &[
                ("_csrf", &csrf),
                ("name", "Ana"),
                ("role", "approver"),
                ("section", "plans"),
            ],
        )
        .await;
    assert_eq!(issued.status, 200, "{}", issued.body);
    assert!(issued.body.contains("<td>Approver</td>"), "{}", issued.body);
    let link = new_link(&issued);
    assert_eq!(app.get(&format!("{link}/s/basics")).await.status, 200);
    assert_eq!(
        stored_links(&app, "PHL"),
        vec![
            ("Rosa".into(), LinkRole::Contributor, "plans extra".into()),
            ("Ana".into(), LinkRole::Approver, "".into()),
        ]
    );
    app.stop().await;
}

/// The path of the link a country page shows once.
fn new_link(page: &crate::helpers::Page) -> String {
    let marker = "id=\"new-link\" readonly value=\"";
    let start = page.body.find(marker).expect("a new link") + marker.len();
    let url = &page.body[start..];
    let url = &url[..url.find('"').unwrap()];
    url[url.find("/r/").unwrap()..].to_string()
}

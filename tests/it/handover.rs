//! Handing sections to colleagues: a coordinator gives colleagues contributor links from the
//! overview (emailed through a real SMTP server, or shown once), contributors save and mark
//! their sections ready, the overview shows who answers what and how far it is, the
//! coordinator revokes a link; contacts CSV roles, and invitations that replace only links of
//! the same person and role. Every test runs on SQLite and PostgreSQL.

use coherence::db::tokens::{self, LinkRole, TokenRow};
use coherence::db::{self, DbUrl};

use crate::helpers::{Backend, Page, SmtpServer, TestApp};
use crate::on_both_backends;

on_both_backends!(
    a_coordinator_hands_sections_to_two_colleagues_by_email,
    without_email_the_link_is_shown_once_and_bad_forms_are_refused,
    contacts_csv_roles_and_invitations_keep_other_links,
    at_most_fifty_colleagues_hold_links_at_once,
);

const ADMIN: (&str, &str) = ("admin@gfmd.example.org", "a long admin passphrase");

/// Every link of a country as stored, oldest first.
fn links_of(app: &TestApp, country: &str) -> Vec<TokenRow> {
    let url = DbUrl::parse(&app.database_url).unwrap();
    let pool = db::connect(&url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    let mut rows = tokens::country_tokens(&mut conn, "fixture", country).unwrap();
    rows.reverse();
    rows
}

fn link_named<'a>(links: &'a [TokenRow], name: &str) -> &'a TokenRow {
    links
        .iter()
        .find(|l| l.holder_name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no link of {name}"))
}

/// Hand sections to a colleague through the colleagues page, in the page's language.
async fn hand_over(
    app: &TestApp,
    coordinator: &str,
    lang: &str,
    name: &str,
    email: &str,
    sections: &[&str],
) -> Page {
    let form = app
        .get(&format!("{coordinator}/colleagues?lang={lang}"))
        .await;
    assert_eq!(form.status, 200, "{}", form.body);
    let csrf = form.hidden("_csrf");
    let page_lang = form.hidden("lang");
    let mut fields = vec![
        ("_csrf", csrf.as_str()),
        ("lang", page_lang.as_str()),
        ("name", name),
        ("email", email),
    ];
    fields.extend(sections.iter().map(|s| ("section", *s)));
    app.post(&format!("{coordinator}/colleagues"), &fields)
        .await
}

/// The CSRF token of a link's forms, from a section page it opens.
async fn csrf_of(app: &TestApp, link: &str, section: &str) -> String {
    let page = app.get(&format!("{link}/s/{section}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.hidden("_csrf")
}

/// The row of a section in the overview's "who answers each section" table.
fn handover_row(overview: &Page, title: &str) -> String {
    let start = overview
        .body
        .find(&format!("<tr><th scope=\"row\">{title}</th>"))
        .unwrap_or_else(|| panic!("no row for {title}: {}", overview.body));
    let end = overview.body[start..].find("</tr>").unwrap() + start;
    overview.body[start..end].to_string()
}

async fn a_coordinator_hands_sections_to_two_colleagues_by_email(backend: Backend) {
    let smtp = SmtpServer::start(&[], 0);
    let app = TestApp::spawn_with_mail(backend, smtp.port).await;
    let coordinator = app.issue_token("fixture", "SWE", "Cora <Lind>");
    let approver = app.issue_token_with(&[
        "--survey",
        "fixture",
        "--country",
        "SWE",
        "--name",
        "Abe",
        "--role",
        "approver",
    ]);

    // Two colleagues, one in French, one in English, each given one section.
    let done = hand_over(
        &app,
        &coordinator,
        "fr",
        "Bo Ek",
        "BO@env.gov.se",
        &["basics"],
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.contains("Le lien a été envoyé à bo@env.gov.se."),
        "{}",
        done.body
    );
    assert!(
        !done.body.contains("readonly value="),
        "the link is not shown when emailed: {}",
        done.body
    );
    let done = hand_over(
        &app,
        &coordinator,
        "en",
        "Di Holm",
        "di@agri.gov.se",
        &["plans"],
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done
        .body
        .contains("The link was emailed to di@agri.gov.se."));

    let mails = smtp.wait_for(2).await;
    let to_bo = mails
        .iter()
        .find(|m| m.to.contains("bo@env.gov.se"))
        .unwrap();
    let to_di = mails
        .iter()
        .find(|m| m.to.contains("di@agri.gov.se"))
        .unwrap();
    // In the coordinator's page language, naming the survey, the country, the sections and
    // the sender (escaped in HTML).
    for expected in [
        "Enquête d'essai",
        "Généralités",
        "Suède",
        "Cora &lt;Lind&gt;",
        "Cora <Lind>",
        "?lang=fr",
    ] {
        assert!(
            to_bo.body.contains(expected),
            "{expected} in {}",
            to_bo.body
        );
    }
    for expected in [
        "Plans",
        "Sweden",
        "Fixture survey",
        "Cora <Lind>",
        "Dear Di Holm",
    ] {
        assert!(
            to_di.body.contains(expected),
            "{expected} in {}",
            to_di.body
        );
    }
    let bo = to_bo.link_path().expect("a link in the email");
    let di = to_di.link_path().expect("a link in the email");

    // The stored links: contributors of SWE with their sections, the email lower-case.
    let links = links_of(&app, "SWE");
    let bo_row = link_named(&links, "Bo Ek");
    assert_eq!(bo_row.role, LinkRole::Contributor);
    assert_eq!(bo_row.sections, "basics");
    assert_eq!(bo_row.holder_email.as_deref(), Some("bo@env.gov.se"));
    assert_eq!(link_named(&links, "Di Holm").sections, "plans");

    // The overview before anything is saved: who has which section, nothing started.
    let overview = app.get(&coordinator).await;
    assert_eq!(overview.status, 200, "{}", overview.body);
    let basics = handover_row(&overview, "Basics");
    assert!(
        basics.contains("Bo Ek") && basics.contains("Not started"),
        "{basics}"
    );
    let plans = handover_row(&overview, "Plans");
    assert!(
        plans.contains("Di Holm") && plans.contains("Not started"),
        "{plans}"
    );
    let extra = handover_row(&overview, "Extra");
    assert!(extra.contains("The coordinator"), "{extra}");
    assert!(overview.body.contains("Bo Ek (bo@env.gov.se): Basics"));

    // Bo sees and saves only Basics, and cannot reach the rest, the colleagues page or submit.
    let bo_overview = app.get(&bo).await;
    assert_eq!(bo_overview.status, 200);
    assert!(
        !bo_overview.body.contains("/s/plans"),
        "{}",
        bo_overview.body
    );
    assert!(
        !bo_overview.body.contains("/colleagues"),
        "{}",
        bo_overview.body
    );
    assert_eq!(app.get(&format!("{bo}/s/plans")).await.status, 404);
    assert_eq!(app.get(&format!("{bo}/colleagues")).await.status, 404);
    let csrf = csrf_of(&app, &bo, "basics").await;
    let refused = app
        .post(
            &format!("{bo}/colleagues"),
            &[
                ("_csrf", &csrf),
                ("name", "X"),
                ("email", "x@gov.se"),
                ("section", "basics"),
            ],
        )
        .await;
    assert_eq!(refused.status, 404);
    assert_eq!(
        app.post(&format!("{bo}/s/plans/ready"), &[("_csrf", &csrf)])
            .await
            .status,
        404
    );
    let saved = app
        .save_section(&bo, "basics", &[("name", "MoE"), ("active", "no")])
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let bo_overview = app.get(&bo).await;
    assert!(handover_row(&bo_overview, "Basics").contains("In progress"));
    let ready = app
        .post(&format!("{bo}/s/basics/ready"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(ready.status, 303, "{}", ready.body);
    assert_eq!(
        ready.location.as_deref(),
        Some(format!("{bo}#handover").as_str())
    );

    // Di saves Plans; the coordinator's overview shows both states.
    let saved = app.save_section(&di, "plans", &[("has_plan", "no")]).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let overview = app.get(&coordinator).await;
    let basics = handover_row(&overview, "Basics");
    assert!(
        basics.contains("Bo Ek") && basics.contains(">Ready<"),
        "{basics}"
    );
    assert!(!basics.contains("/ready"), "no button once ready: {basics}");
    let plans = handover_row(&overview, "Plans");
    assert!(
        plans.contains(">In progress<") && plans.contains("/s/plans/ready"),
        "{plans}"
    );
    // The approver sees who answers what too, but hands nothing out.
    let approver_overview = app.get(&approver).await;
    assert!(handover_row(&approver_overview, "Basics").contains("Bo Ek"));
    assert!(!approver_overview.body.contains("/colleagues"));
    assert_eq!(app.get(&format!("{approver}/colleagues")).await.status, 404);

    // Saving a ready section again makes it in progress again.
    let saved = app
        .save_section(&bo, "basics", &[("name", "MoE again"), ("active", "no")])
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let overview = app.get(&coordinator).await;
    assert!(handover_row(&overview, "Basics").contains(">In progress<"));

    // The coordinator revokes Di's link: Di's link ends, Bo's does not.
    let di_id = link_named(&links_of(&app, "SWE"), "Di Holm").id.clone();
    let csrf = csrf_of(&app, &coordinator, "basics").await;
    let revoke = format!("{coordinator}/colleagues/{di_id}/revoke");
    assert!(overview.body.contains(&format!("action=\"{revoke}\"")));
    // Neither the approver nor a contributor revokes.
    let approver_csrf = csrf_of(&app, &approver, "basics").await;
    let other = format!("{approver}/colleagues/{di_id}/revoke");
    assert_eq!(
        app.post(&other, &[("_csrf", &approver_csrf)]).await.status,
        404
    );
    let revoked = app.post(&revoke, &[("_csrf", &csrf)]).await;
    assert_eq!(revoked.status, 303, "{}", revoked.body);
    assert_eq!(app.get(&di).await.status, 410);
    assert_eq!(app.get(&bo).await.status, 200);
    let overview = app.get(&coordinator).await;
    assert!(!overview.body.contains("Di Holm ("), "{}", overview.body);
    let row = link_named(&links_of(&app, "SWE"), "Di Holm").clone();
    assert_eq!(row.revoked_by.as_deref(), Some("coordinator Cora <Lind>"));

    // Another country's contributor link, or a coordinator's link, is not the coordinator's
    // to revoke: 404, and it stays live.
    let nor = app.issue_token_with(&[
        "--survey",
        "fixture",
        "--country",
        "NOR",
        "--name",
        "Nils",
        "--role",
        "contributor",
        "--section",
        "basics",
    ]);
    let nor_id = link_named(&links_of(&app, "NOR"), "Nils").id.clone();
    let cora_id = link_named(&links_of(&app, "SWE"), "Cora <Lind>").id.clone();
    for id in [&nor_id, &cora_id] {
        let res = app
            .post(
                &format!("{coordinator}/colleagues/{id}/revoke"),
                &[("_csrf", &csrf)],
            )
            .await;
        assert_eq!(res.status, 404, "{id}");
    }
    assert_eq!(app.get(&nor).await.status, 200);
    assert_eq!(app.get(&coordinator).await.status, 200);
    // A contributor still cannot submit.
    let bo_csrf = csrf_of(&app, &bo, "basics").await;
    assert_eq!(
        app.post(&format!("{bo}/submit"), &[("_csrf", &bo_csrf)])
            .await
            .status,
        404
    );
    app.stop().await;
}

async fn without_email_the_link_is_shown_once_and_bad_forms_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let coordinator = app.issue_token("fixture", "SWE", "Cora");
    let before = links_of(&app, "SWE").len();

    // Refused, with the form kept and nothing issued.
    for (name, email, sections, message) in [
        (
            "Bo",
            "bo@env.gov.se",
            &[][..],
            "Choose at least one section",
        ),
        (
            "",
            "bo@env.gov.se",
            &["basics"][..],
            "Enter your colleague&#x27;s name",
        ),
        (
            "Bo",
            "",
            &["basics"][..],
            "Enter your colleague&#x27;s email address",
        ),
        (
            "Bo",
            "not an email",
            &["basics"][..],
            "Enter an email address",
        ),
        (
            "Bo",
            "bo@env.gov.se",
            &["nowhere"][..],
            "Choose at least one section",
        ),
        ("Bo\u{202e}", "bo@env.gov.se", &["basics"][..], "printable"),
    ] {
        let res = hand_over(&app, &coordinator, "en", name, email, sections).await;
        assert_eq!(res.status, 422, "{name} {email} {sections:?}: {}", res.body);
        assert!(res.body.contains(message), "{message} in {}", res.body);
    }
    let long = "x".repeat(301);
    let res = hand_over(
        &app,
        &coordinator,
        "en",
        &long,
        "bo@env.gov.se",
        &["basics"],
    )
    .await;
    assert_eq!(res.status, 422);
    assert!(
        res.body.contains("Use at most 300 characters"),
        "{}",
        res.body
    );
    let res = hand_over(&app, &coordinator, "es", "Bo", "bo@env.gov.se", &[]).await;
    assert!(
        res.body.contains("Elija al menos una sección"),
        "{}",
        res.body
    );
    assert!(
        res.body.contains("value=\"bo@env.gov.se\""),
        "the form is kept"
    );
    assert_eq!(links_of(&app, "SWE").len(), before, "nothing issued");

    // Email off: the link is shown once, and it is a working contributor link.
    let done = hand_over(
        &app,
        &coordinator,
        "en",
        "Bo <Ek>",
        "bo@env.gov.se",
        &["plans", "extra"],
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let marker = "readonly value=\"";
    let start = done.body.find(marker).expect("the link is shown") + marker.len();
    let end = done.body[start..].find('"').unwrap() + start;
    let shown = &done.body[start..end];
    let path = &shown[shown.find("/r/").unwrap()..];
    let again = app.get(&format!("{coordinator}/colleagues")).await;
    assert!(!again.body.contains(path), "shown once only");
    let page = app.get(path).await;
    assert_eq!(page.status, 200);
    assert_eq!(app.get(&format!("{path}/s/basics")).await.status, 404);
    assert_eq!(app.get(&format!("{path}/s/plans")).await.status, 200);
    // Marking a section ready needs something saved in it.
    let csrf = csrf_of(&app, path, "plans").await;
    let early = app
        .post(&format!("{path}/s/plans/ready"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(early.status, 409, "{}", early.body);
    assert!(early
        .body
        .contains("Save the section before marking it ready."));
    // Without the CSRF token nothing is marked.
    let forged = app.post(&format!("{path}/s/plans/ready"), &[]).await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    // The coordinator may mark a section ready too, once saved.
    let saved = app
        .save_section(&coordinator, "basics", &[("name", "MFA"), ("active", "no")])
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let csrf = csrf_of(&app, &coordinator, "basics").await;
    let res = app
        .post(
            &format!("{coordinator}/s/basics/ready"),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(res.status, 303);
    let overview = app.get(&coordinator).await;
    assert!(handover_row(&overview, "Basics").contains(">Ready<"));
    let plans = handover_row(&overview, "Plans");
    assert!(plans.contains("Bo &lt;Ek&gt;"), "{plans}");
    // Every language renders the new pages.
    for lang in ["en", "fr", "es"] {
        let page = app
            .get(&format!("{coordinator}/colleagues?lang={lang}"))
            .await;
        assert_eq!(page.status, 200, "{lang}");
        assert!(page.body.contains(&format!("value=\"{lang}\"")), "{lang}");
        let overview = app.get(&format!("{coordinator}?lang={lang}")).await;
        assert_eq!(overview.status, 200, "{lang}");
        assert!(overview.body.contains("id=\"handover\""), "{lang}");
    }
    app.stop().await;
}

async fn contacts_csv_roles_and_invitations_keep_other_links(backend: Backend) {
    let smtp = SmtpServer::start(&[], 0);
    let app = TestApp::spawn_with_mail(backend, smtp.port).await;
    app.add_user(ADMIN.0, ADMIN.1, "admin", &[]);
    assert_eq!(app.login(ADMIN.0, ADMIN.1).await.status, 303);

    // Bad rows: each reported with its line, nothing imported.
    let bad = "country,name,email,language,office,role,sections\n\
               SWE,Anna,anna@gov.se,en,MFA,,\n\
               SWE,Bo,bo@gov.se,en,MoE,chief,\n\
               SWE,Cy,cy@gov.se,en,MoE,contributor,basics;nowhere\n\
               SWE,Di,di@gov.se,en,MoE,contributor,\n";
    let res = app.upload_contacts("fixture", bad).await;
    assert_eq!(res.status, 422, "{}", res.body);
    for expected in [
        "line 3, role: &#x27;chief&#x27; is not one of coordinator, contributor, approver",
        "line 4, sections: &#x27;nowhere&#x27; is not a section of this survey",
        "line 5, sections: is empty: a contributor answers the sections listed here",
    ] {
        assert!(res.body.contains(expected), "{expected} in {}", res.body);
    }
    let export = app.get("/admin/surveys/fixture/contacts.csv").await;
    assert_eq!(export.body.trim(), "country,name,email,language,office");

    // Links that invitations must leave alone: a colleague's contributor link, and Anna's
    // own contributor link (issued with her email).
    let carl = app.issue_token_with(&[
        "--survey",
        "fixture",
        "--country",
        "SWE",
        "--name",
        "Carl",
        "--email",
        "carl@gov.se",
        "--role",
        "contributor",
        "--section",
        "plans",
    ]);
    let anna_contributor = app.issue_token_with(&[
        "--survey",
        "fixture",
        "--country",
        "SWE",
        "--name",
        "Anna C",
        "--email",
        "anna@gov.se",
        "--role",
        "contributor",
        "--section",
        "extra",
    ]);

    let good = "country,name,email,language,office,role,sections\n\
                SWE,Anna,anna@gov.se,en,MFA,,\n\
                SWE,Bo,bo@gov.se,en,MoE,Contributor,plans; basics\n\
                SWE,Eva,eva@gov.se,fr,PMO,approver,\n";
    let res = app.upload_contacts("fixture", good).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let export = app.get("/admin/surveys/fixture/contacts.csv").await;
    let lines: Vec<&str> = export.body.lines().collect();
    assert_eq!(lines[0], "country,name,email,language,office,role,sections");
    assert!(
        lines.contains(&"SWE,Bo,bo@gov.se,en,MoE,contributor,basics plans"),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"SWE,Anna,anna@gov.se,en,MFA,coordinator,"),
        "{lines:?}"
    );

    let page = app.get("/admin/surveys/fixture").await;
    let csrf = page.hidden("_csrf");
    let invited = app
        .post(
            "/admin/surveys/fixture/invite",
            &[("_csrf", &csrf), ("countries", "SWE")],
        )
        .await;
    assert_eq!(invited.status, 200, "{}", invited.body);
    let mails = smtp.wait_for(3).await;
    let link_to = |email: &str| {
        mails
            .iter()
            .find(|m| m.to.contains(email))
            .and_then(|m| m.link_path())
            .unwrap_or_else(|| panic!("a link to {email}"))
    };
    let (anna, bo, eva) = (
        link_to("anna@gov.se"),
        link_to("bo@gov.se"),
        link_to("eva@gov.se"),
    );
    let live = |name: &str| {
        let links = links_of(&app, "SWE");
        let rows: Vec<_> = links
            .iter()
            .filter(|l| l.holder_name.as_deref() == Some(name) && l.revoked_at.is_none())
            .map(|l| (l.role, l.sections.clone()))
            .collect();
        rows
    };
    assert_eq!(
        live("Bo"),
        vec![(LinkRole::Contributor, "basics plans".to_string())]
    );
    assert_eq!(live("Eva"), vec![(LinkRole::Approver, String::new())]);
    assert_eq!(live("Anna"), vec![(LinkRole::Coordinator, String::new())]);
    // Bo's invitation opens only his sections.
    assert_eq!(app.get(&format!("{bo}/s/plans")).await.status, 200);
    assert_eq!(app.get(&format!("{bo}/s/extra")).await.status, 404);
    assert_eq!(app.get(&eva).await.status, 200);
    // The invitations revoked neither Carl's link nor Anna's contributor link.
    assert_eq!(app.get(&carl).await.status, 200);
    assert_eq!(app.get(&anna_contributor).await.status, 200);

    // A reminder issues new links: each replaces only the same person's link of the same
    // role.
    let page = app.get("/admin/surveys/fixture").await;
    let reminded = app
        .post(
            "/admin/surveys/fixture/remind",
            &[("_csrf", &page.hidden("_csrf"))],
        )
        .await;
    assert_eq!(reminded.status, 200, "{}", reminded.body);
    smtp.wait_for(6).await;
    assert_eq!(
        app.get(&anna).await.status,
        410,
        "Anna's coordinator link replaced"
    );
    assert_eq!(
        app.get(&bo).await.status,
        410,
        "Bo's contributor link replaced"
    );
    assert_eq!(app.get(&anna_contributor).await.status, 200);
    assert_eq!(app.get(&carl).await.status, 200);
    assert_eq!(
        live("Anna C"),
        vec![(LinkRole::Contributor, "extra".to_string())]
    );
    assert_eq!(
        live("Bo"),
        vec![(LinkRole::Contributor, "basics plans".to_string())]
    );
    app.stop().await;
}

async fn at_most_fifty_colleagues_hold_links_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let coordinator = app.issue_token("fixture", "SWE", "Cora");
    let csrf = csrf_of(&app, &coordinator, "basics").await;
    let post = |n: usize| {
        let (name, email) = (format!("Colleague {n}"), format!("c{n}@gov.se"));
        let (app, csrf, coordinator) = (&app, csrf.clone(), coordinator.clone());
        async move {
            let fields = [
                ("_csrf", csrf.as_str()),
                ("lang", "en"),
                ("name", name.as_str()),
                ("email", email.as_str()),
                ("section", "plans"),
            ];
            app.post(&format!("{coordinator}/colleagues"), &fields)
                .await
        }
    };
    for n in 0..50 {
        assert_eq!(post(n).await.status, 200, "colleague {n}");
    }
    let refused = post(50).await;
    assert_eq!(refused.status, 422);
    assert!(
        refused.body.contains("already has 50 colleagues"),
        "{}",
        refused.body
    );
    assert_eq!(links_of(&app, "SWE").len(), 51, "nothing more issued");
    // Revoking one makes room again.
    let first = link_named(&links_of(&app, "SWE"), "Colleague 0").id.clone();
    let revoke = format!("{coordinator}/colleagues/{first}/revoke");
    assert_eq!(app.post(&revoke, &[("_csrf", &csrf)]).await.status, 303);
    assert_eq!(post(51).await.status, 200);
    app.stop().await;
}

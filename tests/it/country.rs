//! The secretariat's page for one country, and the status table's counts and filters. Every
//! test runs on SQLite and PostgreSQL.

use crate::helpers::{Backend, SmtpServer, TestApp};
use crate::on_both_backends;

on_both_backends!(
    the_country_page_reads_the_whole_file,
    issued_links_are_shown_once_and_can_be_revoked,
    country_pages_are_refused_to_others,
    status_table_counts_are_filters,
);

const ADMIN: (&str, &str) = ("admin@gfmd.example.org", "a long admin passphrase");

async fn signed_in_admin(app: &TestApp) {
    app.add_user(ADMIN.0, ADMIN.1, "admin", &[]);
    let res = app.login(ADMIN.0, ADMIN.1).await;
    assert_eq!(res.status, 303, "{}", res.body);
}

async fn the_country_page_reads_the_whole_file(backend: Backend) {
    let smtp = SmtpServer::start(&[], 0);
    let app = TestApp::spawn_with_mail(backend, smtp.port).await;
    signed_in_admin(&app).await;
    app.upload_contacts(
        "fixture",
        "country,name,email,language,office\nSWE,Anna Berg,anna@gov.se,fr,MFA\n",
    )
    .await;
    let page = app.get("/admin/surveys/fixture").await;
    let invited = app
        .post(
            "/admin/surveys/fixture/invite",
            &[("_csrf", &page.hidden("_csrf")), ("countries", "SWE")],
        )
        .await;
    assert_eq!(invited.status, 200, "{}", invited.body);
    smtp.wait_for(1).await;

    // Nothing saved yet: the page says so, and lists the contact and the invitation.
    let empty = app.get("/admin/surveys/fixture/countries/SWE").await;
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert!(empty.body.contains("No answer has been saved yet."));
    assert!(empty.body.contains("Anna Berg"), "{}", empty.body);
    assert!(empty.body.contains("anna@gov.se"));
    assert!(empty.body.contains("Invitation ("), "{}", empty.body);
    // The worker may need a moment to record the delivery.
    let mut delivered = false;
    for _ in 0..50 {
        let page = app.get("/admin/surveys/fixture/countries/SWE").await;
        if page.body.contains(": delivered ") {
            delivered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(delivered, "the invitation's delivery is shown");

    // A focal point answers part of the first section.
    let link = app.issue_token("fixture", "SWE", "Lars <Nilsson>");
    let saved = app
        .save_section(
            &link,
            "basics",
            &[
                ("name", "<b>MFA</b>"),
                ("colour", "blue"),
                ("active", "yes"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let page = app.get("/admin/surveys/fixture/countries/SWE").await;
    assert!(page.body.contains("<h2 id=\"answers\">Answers</h2>"));
    assert!(page.body.contains("Draft, last changed"), "{}", page.body);
    // The answers as a reader sees them, escaped; unanswered questions say so.
    assert!(
        page.body.contains("<dd>&lt;b&gt;MFA&lt;/b&gt;</dd>"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<b>MFA</b>"));
    assert!(page.body.contains("<dt>Colour</dt><dd>Blue</dd>"));
    assert!(page
        .body
        .contains("<dd class=\"unanswered\">Not answered</dd>"));
    // Who saved the section, and when.
    assert!(
        page.body.contains("by Lars &lt;Nilsson&gt;."),
        "{}",
        page.body
    );
    assert!(page.body.contains("<h3>Plans</h3>"));
    assert!(page.body.contains("Not saved yet."));
    // In the page's language.
    let fr = app
        .get("/admin/surveys/fixture/countries/SWE?lang=fr")
        .await;
    assert!(
        fr.body.contains("<dt>Couleur</dt><dd>Bleu</dd>"),
        "{}",
        fr.body
    );
    assert!(fr.body.contains("<h1>Suède</h1>"));
    app.get("/admin/surveys/fixture?lang=en").await;

    // Submitted: the page says when, and offers to reopen.
    let full = app
        .save_section(&link, "basics", &[("name", "MFA"), ("active", "yes")])
        .await;
    assert_eq!(full.status, 303);
    app.save_section(&link, "plans", &[("has_plan", "no")])
        .await;
    let submitted = app.submit(&link).await;
    assert_eq!(submitted.status, 303, "{}", submitted.body);
    let page = app.get("/admin/surveys/fixture/countries/SWE").await;
    assert!(page.body.contains("Submitted "), "{}", page.body);
    assert!(page
        .body
        .contains("/admin/surveys/fixture/countries/SWE/reopen"));
    let reopened = app
        .post(
            "/admin/surveys/fixture/countries/SWE/reopen",
            &[("_csrf", &page.hidden("_csrf"))],
        )
        .await;
    assert_eq!(reopened.status, 200, "{}", reopened.body);
    assert!(reopened
        .body
        .contains("The response of Sweden is open again"));
    assert!(reopened.body.contains("Draft, last changed"));
    // Unknown countries are not found.
    let res = app.get("/admin/surveys/fixture/countries/XXX").await;
    assert_eq!(res.status, 404);
    app.stop().await;
}

async fn issued_links_are_shown_once_and_can_be_revoked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    signed_in_admin(&app).await;
    let page = app.get("/admin/surveys/fixture/countries/PHL").await;
    assert!(page
        .body
        .contains("No link has been issued for this country yet."));
    // A bad email and a date out of range: the message, the values kept, nothing issued.
    let csrf = page.hidden("_csrf");
    let refused = app
        .post(
            "/admin/surveys/fixture/countries/PHL/links",
            &[
                ("_csrf", &csrf),
                ("name", "Maria Santos"),
                ("email", "not an address"),
            ],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("Enter an email address such as"));
    assert!(refused.body.contains("value=\"Maria Santos\""));
    let refused = app
        .post(
            "/admin/surveys/fixture/countries/PHL/links",
            &[
                ("_csrf", &csrf),
                ("name", "Maria"),
                ("expires", "1999-01-01"),
            ],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("from today to 2 years ahead"));
    assert!(refused.body.contains("No link has been issued"));

    // The holder's rules, as for `token issue`: no organisation in a survey answered per
    // country, names of printable text on one line.
    for (field, value, message) in [
        ("unit", "Ministry of Labour", "answered once per country"),
        ("name", "Ann\u{202e}gnirts", "printable text on one line"),
        ("name", "Ann\nBob", "printable text on one line"),
    ] {
        let refused = app
            .post(
                "/admin/surveys/fixture/countries/PHL/links",
                &[("_csrf", &csrf), (field, value)],
            )
            .await;
        assert_eq!(refused.status, 422, "{field}={value:?}");
        assert!(refused.body.contains(message), "{}", refused.body);
    }
    let long = "x".repeat(301);
    let refused = app
        .post(
            "/admin/surveys/fixture/countries/PHL/links",
            &[("_csrf", &csrf), ("name", &long)],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("Use at most 300 characters"));
    // A survey answered per organisation needs the organisation named.
    let refused = app
        .post(
            "/admin/surveys/institutions/countries/PHL/links",
            &[("_csrf", &csrf), ("name", "Maria")],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(
        refused.body.contains("answered per organisation"),
        "{}",
        refused.body
    );
    let issued = app
        .post(
            "/admin/surveys/institutions/countries/PHL/links",
            &[
                ("_csrf", &csrf),
                ("name", "Maria"),
                ("unit", "Central Bank"),
            ],
        )
        .await;
    assert_eq!(issued.status, 200, "{}", issued.body);
    assert!(
        issued.body.contains("<td>Central Bank</td>"),
        "{}",
        issued.body
    );
    // Taiwan is in the reference list but not among the UN Member States the survey asks.
    let twn = app.get("/admin/surveys/fixture/countries/TWN").await;
    assert_eq!(twn.status, 200);
    let refused = app
        .post(
            "/admin/surveys/fixture/countries/TWN/links",
            &[("_csrf", &csrf), ("name", "Someone")],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(
        refused
            .body
            .contains("TWN is not in the population of survey"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("No link has been issued"));
    let issued = app
        .post(
            "/admin/surveys/fixture/countries/PHL/links",
            &[
                ("_csrf", &csrf),
                ("name", "Maria Santos"),
                ("email", "Maria@DFA.gov.ph"),
            ],
        )
        .await;
    assert_eq!(issued.status, 200, "{}", issued.body);
    assert!(issued
        .body
        .contains("A new link was issued for Maria Santos."));
    let marker = "id=\"new-link\" readonly value=\"";
    let start = issued.body.find(marker).expect("the new link is shown") + marker.len();
    let url = &issued.body[start..start + issued.body[start..].find('"').unwrap()];
    let path = url.trim_start_matches(&app.address).to_string();
    assert!(path.starts_with("/r/"), "{url}");
    // The link works, for the Philippines.
    let overview = app.get(&path).await;
    assert_eq!(overview.status, 200);
    assert!(overview.body.contains("Philippines"));
    // Shown once: the page lists the holder, never the address again.
    let page = app.get("/admin/surveys/fixture/countries/PHL").await;
    assert!(
        page.body.contains("Maria Santos &lt;maria@dfa.gov.ph&gt;"),
        "{}",
        page.body
    );
    assert!(!page.body.contains(&path));
    assert!(page.body.contains("First used"));
    // Revoked: the link ends, the page says by whom.
    let marker = "/admin/surveys/fixture/countries/PHL/links/";
    let start = page.body.find(marker).unwrap();
    let action = &page.body[start..start + page.body[start..].find('"').unwrap()];
    let revoked = app.post(action, &[("_csrf", &page.hidden("_csrf"))]).await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert!(revoked
        .body
        .contains("The link of Maria Santos was revoked."));
    assert!(revoked.body.contains(&format!("({})", ADMIN.0)));
    assert_eq!(app.get(&path).await.status, 410);
    // The form sent again (a reload): nothing changes, and the page says so.
    let again = app.post(action, &[("_csrf", &page.hidden("_csrf"))]).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert!(again.body.contains("had already ended; nothing changed"));
    // The page a form answers with links its other languages to the page, not the form.
    assert!(
        again
            .body
            .contains("href=\"/admin/surveys/fixture/countries/PHL?lang&#x3D;fr\""),
        "{}",
        again.body
    );
    // A link of another country cannot be revoked through this one's page.
    let other = app.issue_token("fixture", "SWE", "Anna");
    let swe = app.get("/admin/surveys/fixture/countries/SWE").await;
    let start = swe
        .body
        .find("/admin/surveys/fixture/countries/SWE/links/")
        .unwrap();
    let action = &swe.body[start..start + swe.body[start..].find('"').unwrap()];
    let cross = action.replace("/countries/SWE/", "/countries/PHL/");
    let res = app.post(&cross, &[("_csrf", &swe.hidden("_csrf"))]).await;
    assert_eq!(res.status, 404);
    assert_eq!(app.get(&other).await.status, 200);
    app.stop().await;
}

async fn country_pages_are_refused_to_others(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app.issue_token("fixture", "SWE", "Anna");
    let gets = ["/admin/surveys/fixture/countries/SWE"];
    let posts = [
        "/admin/surveys/fixture/countries/SWE/links",
        "/admin/surveys/fixture/countries/SWE/deadline",
        "/admin/surveys/fixture/countries/SWE/reopen",
    ];
    // Anonymous users and focal points (with their link's CSRF token) are sent to sign in.
    for with_link in [false, true] {
        let csrf = if with_link {
            app.get(&format!("{link}/s/basics")).await.hidden("_csrf")
        } else {
            String::new()
        };
        for path in gets {
            let res = app.get(path).await;
            assert_eq!(res.status, 303, "{path}");
            assert_eq!(res.location.as_deref(), Some("/admin/login"));
        }
        for path in posts {
            let res = app.post(path, &[("_csrf", &csrf), ("name", "x")]).await;
            assert_eq!(res.status, 303, "{path}");
        }
    }
    // The owner of another survey: refused, and nothing issued.
    app.add_user(
        "owner@closed.example",
        "a long owner passphrase",
        "owner",
        &["closed"],
    );
    app.login("owner@closed.example", "a long owner passphrase")
        .await;
    assert_eq!(app.get(gets[0]).await.status, 403);
    let csrf = app.get("/admin").await.hidden("_csrf");
    for path in posts {
        let res = app.post(path, &[("_csrf", &csrf), ("name", "x")]).await;
        assert_eq!(res.status, 403, "{path}");
    }
    // On their own survey an owner reads the response and the links, but neither the
    // contacts and their emails nor the form that issues links (administrators' work, as
    // invitations are), and cannot issue one.
    let own = app.get("/admin/surveys/closed/countries/SWE").await;
    assert_eq!(own.status, 200);
    assert!(own.body.contains("<h2 id=\"answers\">"));
    assert!(own.body.contains("<h2 id=\"links\">"));
    assert!(!own.body.contains("id=\"contacts\""), "{}", own.body);
    assert!(!own.body.contains("/countries/SWE/links\""), "{}", own.body);
    let res = app
        .post(
            "/admin/surveys/closed/countries/SWE/links",
            &[("_csrf", &own.hidden("_csrf")), ("name", "Owner Mint")],
        )
        .await;
    assert_eq!(res.status, 403);
    app.stop().await;
}

async fn status_table_counts_are_filters(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    signed_in_admin(&app).await;
    // Sweden submitted, the Philippines in draft, Morocco opened its link, Kenya has a
    // contact only; nobody was invited by email (the links were issued by hand).
    let swe = app.issue_token("fixture", "SWE", "Anna");
    app.save_section(&swe, "basics", &[("name", "MFA"), ("active", "yes")])
        .await;
    app.save_section(&swe, "plans", &[("has_plan", "no")]).await;
    assert_eq!(app.submit(&swe).await.status, 303);
    let phl = app.issue_token("fixture", "PHL", "Maria");
    app.save_section(&phl, "basics", &[("name", "DFA")]).await;
    let mar = app.issue_token("fixture", "MAR", "Karim");
    app.get(&mar).await;
    app.upload_contacts(
        "fixture",
        "country,name,email,language,office\nKEN,Wanjiru,w@gov.ke,en,MFA\n",
    )
    .await;
    let page = app.get("/admin/surveys/fixture").await;
    assert_eq!(page.status, 200);
    let count = |body: &str, label: &str| -> String {
        let end = body
            .find(&format!("</span> {label}</a>"))
            .unwrap_or_else(|| panic!("{label}"));
        let start = body[..end].rfind('>').unwrap() + 1;
        body[start..end].to_string()
    };
    // Asked: the survey's population, the 193 UN Member States, each with its line.
    assert_eq!(count(&page.body, "Asked"), "193");
    assert_eq!(count(&page.body, "Not invited"), "193");
    assert_eq!(count(&page.body, "Invited"), "0");
    assert_eq!(count(&page.body, "Opened"), "3");
    assert_eq!(count(&page.body, "In draft"), "1");
    assert_eq!(count(&page.body, "Submitted"), "1");
    let rows = |body: &str| body.matches("<tr><th scope=\"row\">").count();
    assert_eq!(rows(&page.body), 193);
    let submitted = app
        .get("/admin/surveys/fixture?sort=country&stage=submitted")
        .await;
    assert_eq!(rows(&submitted.body), 1);
    assert!(submitted.body.contains(">Sweden</a>"));
    assert!(submitted.body.contains("1 of 193 shown."));
    // Asia in draft: the Philippines; Africa (54 Member States): Morocco opened its link.
    let asia = app
        .get("/admin/surveys/fixture?region=142&stage=draft")
        .await;
    assert_eq!(rows(&asia.body), 1, "{}", asia.body);
    assert!(asia.body.contains(">Philippines</a>"));
    let africa = app
        .get("/admin/surveys/fixture?region=002&stage=opened")
        .await;
    assert_eq!(rows(&africa.body), 1);
    assert!(africa.body.contains(">Morocco</a>"));
    assert_eq!(count(&africa.body, "Asked"), "54");
    assert_eq!(count(&africa.body, "Opened"), "1");
    // The language links keep the filters.
    assert!(
        africa.body.contains(
            "href=\"/admin/surveys/fixture?region&#x3D;002&amp;stage&#x3D;opened&amp;lang&#x3D;fr\""
        ),
        "{}",
        africa.body
    );
    // Sorting keeps the filters.
    let sorted = app
        .get("/admin/surveys/fixture?region=002&sort=-country")
        .await;
    assert_eq!(rows(&sorted.body), 54);
    let (k, m) = (
        sorted.body.find(">Kenya</a>").unwrap(),
        sorted.body.find(">Morocco</a>").unwrap(),
    );
    assert!(m < k, "descending by name");
    // (handlebars escapes '=' and '&' in attributes; browsers read them back)
    assert!(sorted
        .body
        .contains("href=\"/admin/surveys/fixture?sort&#x3D;country&amp;region&#x3D;002\""));
    // Unknown filters are ignored rather than failing.
    assert_eq!(
        app.get("/admin/surveys/fixture?stage=zzz&sort=zzz")
            .await
            .status,
        200
    );
    app.stop().await;
}

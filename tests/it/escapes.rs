//! "Not known" and "not applicable" given instead of an answer: through the no-JavaScript form,
//! on the review, print and country pages, in results and in every export. Every test runs on
//! SQLite and PostgreSQL, with the survey in `tests/fixtures/escapes`.

use std::io::Cursor;

use crate::helpers::{fixtures, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    not_known_is_saved_shown_and_submitted,
    results_count_escapes_apart_and_exports_write_codes,
);

async fn spawn(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, fixtures().join("escapes")).await
}

async fn signed_in_admin(app: &TestApp) {
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
}

async fn not_known_is_saved_shown_and_submitted(backend: Backend) {
    let app = spawn(backend).await;
    let link = app.issue_token("escapes", "SWE", "Anna");
    let section = format!("{link}/s/figures");
    let form = app.get(&section).await;
    assert_eq!(form.status, 200, "{}", form.body);
    // Each question that allows them has the radio group in its own fieldset, with a legend
    // naming the question for screen readers, and a labelled reason box; "Answer" is picked.
    assert!(form.body.contains(
        "<fieldset class=\"escape\" id=\"q-staff-escape\"><legend><span class=\"vh\">Staff: </span>Can you answer this question?</legend>"
    ));
    assert!(form.escape_checked("staff", "answer"));
    assert!(form
        .body
        .contains("name=\"staff.escape\" value=\"not_known\""));
    assert!(!form
        .body
        .contains("name=\"staff.escape\" value=\"not_applicable\""));
    assert!(form
        .body
        .contains("<label for=\"q-staff-reason\">Reason (if not known or not applicable)</label>"));
    assert!(form
        .body
        .contains("A reason is required for: Not known, Not applicable."));
    // Turned off on the question: no choice at all.
    assert!(!form.body.contains("name=\"name.escape\""));
    assert!(form
        .body
        .contains("name=\"rating.escape\" value=\"not_known\""));

    // "Not known" for the staff figure (the typed number is ignored), "not applicable" for the
    // budget without the reason it requires: the budget is refused next to its field, the rest
    // is saved, and both choices are shown again.
    let res = app
        .post_form_from(
            &form,
            &section,
            &[
                ("staff", "12"),
                ("staff.escape", "not_known"),
                ("staff.reason", "  The register is not kept  "),
                ("budget.escape", "not_applicable"),
                ("budget.reason", "   "),
                ("name", "Ministry of Labour"),
                ("active.escape", "answer"),
                ("active", "yes"),
            ],
        )
        .await;
    assert_eq!(res.status, 422, "{}", res.body);
    assert_eq!(
        res.field_error("budget").as_deref(),
        Some("Give a short reason for “not known” or “not applicable”.")
    );
    assert!(res.field_error("staff").is_none());
    assert!(res.escape_checked("budget", "not_applicable"));
    assert!(res.escape_checked("staff", "not_known"));
    assert_eq!(
        res.field_value("staff.reason").as_deref(),
        Some("  The register is not kept  ")
    );
    assert_eq!(
        res.field_value("name").as_deref(),
        Some("Ministry of Labour")
    );
    // A code the question does not allow is refused.
    let form = app.get(&section).await;
    assert!(form.escape_checked("staff", "not_known"), "saved");
    assert_eq!(
        form.field_value("staff.reason").as_deref(),
        Some("The register is not kept")
    );
    let res = app
        .post_form_from(
            &form,
            &section,
            &[
                ("staff.escape", "not_known"),
                ("staff.reason", "The register is not kept"),
                ("name", "Ministry of Labour"),
                ("active", "yes"),
                ("name.escape", "not_known"),
                ("budget.escape", "not_applicable"),
                ("budget.reason", "No budget line of its own"),
            ],
        )
        .await;
    assert_eq!(res.status, 422, "{}", res.body);
    assert!(res
        .field_error("name")
        .is_some_and(|e| e.contains("does not accept that")));

    // The review lists the required questions still missing: a required matrix answered
    // "not known" needs no row.
    let res = app
        .save_section(
            &link,
            "figures",
            &[
                ("staff.escape", "not_known"),
                ("staff.reason", "The register is not kept"),
                ("name", "Ministry of Labour"),
                ("active", "yes"),
                ("budget.escape", "not_applicable"),
                ("budget.reason", "No budget line of its own"),
                ("rating.escape", "not_known"),
                ("rating.r1", "s1"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let review = app.get(&format!("{link}/review")).await;
    for shown in [
        "<dd>Not known: The register is not kept</dd>",
        "<dd>Not applicable: No budget line of its own</dd>",
        "<dd>Not known</dd>",
    ] {
        assert!(review.body.contains(shown), "{shown}: {}", review.body);
    }
    assert!(!review.body.contains("error-summary"), "{}", review.body);
    let printed = app.get(&format!("{link}/print?answers=1")).await;
    assert!(printed
        .body
        .contains("<p class=\"print-answer\">Not known: The register is not kept</p>"));
    assert!(printed.body.contains("☒ Not known"));
    let blank = app.get(&format!("{link}/print")).await;
    assert!(blank.body.contains("☐ Not known") && blank.body.contains("☐ Not applicable"));
    let res = app.submit(&link).await;
    assert_eq!(res.status, 303, "submitted: {}", res.body);

    // The secretariat's page for the country reads the same, in French too.
    signed_in_admin(&app).await;
    let page = app.get("/admin/surveys/escapes/countries/SWE").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Not known: The register is not kept"),
        "{}",
        page.body
    );
    let page = app
        .get("/admin/surveys/escapes/countries/SWE?lang=fr")
        .await;
    assert!(
        page.body.contains("Sans objet : No budget line of its own"),
        "{}",
        page.body
    );

    // Returned, the figure is found after all: the difference between the versions reads so.
    let country = app
        .get("/admin/surveys/escapes/countries/SWE?lang=en")
        .await;
    let returned = app
        .post(
            "/admin/surveys/escapes/countries/SWE/return",
            &[("_csrf", country.hidden("_csrf").as_str())],
        )
        .await;
    assert_eq!(returned.status, 200, "{}", returned.body);
    let res = app
        .save_section(
            &link,
            "figures",
            &[
                ("staff.escape", "answer"),
                ("staff", "12"),
                ("name", "Ministry of Labour"),
                ("active", "yes"),
                ("budget.escape", "not_applicable"),
                ("budget.reason", "No budget line of its own"),
                ("rating.escape", "not_known"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(app.submit(&link).await.status, 303);
    let diff = app
        .get("/admin/surveys/escapes/countries/SWE?from=1&to=2")
        .await;
    assert_eq!(
        diff.body.matches("<td class=\"old\">").count(),
        1,
        "{}",
        diff.body
    );
    assert!(
        diff.body.contains(
            "<td class=\"old\">Not known: The register is not kept</td><td class=\"new\">12</td>"
        ),
        "{}",
        diff.body
    );
    app.stop().await;
}

async fn results_count_escapes_apart_and_exports_write_codes(backend: Backend) {
    use calamine::{Data, Reader, Xlsx};
    let app = spawn(backend).await;
    // Sweden and France answer yes and no; Germany says "not applicable", Morocco "not
    // known" (and also for the tools and the figures).
    let answers: [(&str, &[(&str, &str)]); 4] = [
        ("SWE", &[("active", "yes"), ("staff", "10"), ("tools", "a")]),
        ("FRA", &[("active", "no"), ("staff", "4"), ("tools", "b")]),
        (
            "DEU",
            &[
                ("active.escape", "not_applicable"),
                ("staff", "7"),
                ("tools", "a"),
            ],
        ),
        (
            "MAR",
            &[
                ("active.escape", "not_known"),
                ("active.reason", "Being reorganised"),
                ("staff.escape", "not_known"),
                ("staff.reason", "2010"),
                ("tools.escape", "not_known"),
            ],
        ),
    ];
    for (iso3, fields) in answers {
        let link = app.issue_token("escapes", iso3, "Official");
        let mut fields = fields.to_vec();
        fields.extend([("rating.r1", "s1"), ("rating.r2", "s2")]);
        let res = app.save_section(&link, "figures", &fields).await;
        assert_eq!(res.status, 303, "{iso3}: {}", res.body);
        let res = app.submit(&link).await;
        assert_eq!(res.status, 303, "{iso3}: {}", res.body);
    }
    signed_in_admin(&app).await;

    // Counted apart, and out of the percentages: yes and no are half each of two answers.
    let page = app.get("/admin/surveys/escapes/results/q/active").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("4 of ") && page.body.contains(" · 1 not known · 1 not applicable"),
        "{}",
        page.body
    );
    assert!(page.body.contains("are of the 2 answers with a value"));
    assert!(page
        .body
        .contains("<tr><th scope=\"row\">Yes</th><td>1</td><td>50%</td></tr>"));
    assert!(page
        .body
        .contains("<tr><th scope=\"row\">No</th><td>1</td><td>50%</td></tr>"));
    // A multiple choice does not count the escape as an option.
    let page = app.get("/admin/surveys/escapes/results/q/tools").await;
    assert!(!page.body.contains("#not_known"), "{}", page.body);
    assert!(page
        .body
        .contains("<tr><th scope=\"row\">A</th><td>2</td><td>67%</td></tr>"));
    assert!(page.body.contains("1 not known"));
    // Where nobody gave one, no note; figures count them apart, with no percentages to note.
    let page = app.get("/admin/surveys/escapes/results/q/rating").await;
    assert!(!page.body.contains("answers with a value"));
    let page = app.get("/admin/surveys/escapes/results/q/staff").await;
    assert!(page.body.contains("4 of ") && page.body.contains(" · 1 not known"));
    assert!(!page.body.contains("answers with a value"));
    // In French.
    let page = app
        .get("/admin/surveys/escapes/results/q/active?lang=fr")
        .await;
    assert!(page.body.contains("1 « inconnu »"), "{}", page.body);

    // CSV: the code in each answer column, the reason in its own column.
    let csv = app.get("/admin/surveys/escapes/export.csv").await;
    assert_eq!(csv.status, 200);
    let mut reader = csv::Reader::from_reader(csv.body.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("column {name} in {header:?}"))
    };
    let row = |iso3: &str| rows.iter().find(|r| r[0] == iso3).unwrap();
    assert!(
        !header.contains(&"name.reason".to_string()),
        "no escapes, no reason column"
    );
    assert_eq!(row("DEU")[col("active")], "not_applicable");
    assert_eq!(row("DEU")[col("active.reason")], "");
    assert_eq!(row("MAR")[col("active")], "not_known");
    assert_eq!(row("MAR")[col("active.reason")], "Being reorganised");
    assert_eq!(row("MAR")[col("staff")], "not_known");
    assert_eq!(row("MAR")[col("tools.a")], "not_known");
    assert_eq!(row("MAR")[col("tools.b")], "not_known");
    assert_eq!(row("SWE")[col("active")], "yes");
    assert_eq!(row("SWE")[col("staff.reason")], "");
    assert_eq!(row("SWE")[col("tools.a")], "1");
    let codebook = app.get("/admin/surveys/escapes/codebook.csv").await;
    assert!(
        codebook.body.contains(
            "active,active,yes_no,Active,,,\"yes; no; not_known=Not known; not_applicable=Not applicable\""
        ),
        "{}",
        codebook.body
    );
    assert!(codebook
        .body
        .contains("staff.reason,staff,integer,Staff,,Reason for not known / not applicable,"));

    // XLSX: the same cells; a reason is text even when it looks like a number.
    let res = app
        .client
        .get(format!("{}/admin/surveys/escapes/export.xlsx", app.address))
        .send()
        .await
        .unwrap();
    let bytes = res.bytes().await.unwrap();
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes.to_vec())).unwrap();
    let sheet = book.worksheet_range("responses").unwrap();
    let cells: Vec<Vec<Data>> = sheet.rows().map(|r| r.to_vec()).collect();
    let mar = cells
        .iter()
        .find(|r| r[0] == Data::String("MAR".into()))
        .unwrap();
    assert_eq!(mar[col("staff")], Data::String("not_known".into()));
    assert_eq!(mar[col("staff.reason")], Data::String("2010".into()));
    assert_eq!(mar[col("active")], Data::String("not_known".into()));
    let swe = cells
        .iter()
        .find(|r| r[0] == Data::String("SWE".into()))
        .unwrap();
    assert_eq!(swe[col("staff")], Data::Float(10.0));

    // JSON: {"not_known": "reason"}.
    let json: serde_json::Value =
        serde_json::from_str(&app.get("/admin/surveys/escapes/export.json").await.body).unwrap();
    let of = |iso3: &str| {
        json["responses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["iso3"] == iso3)
            .unwrap()
            .clone()
    };
    assert_eq!(
        of("MAR")["answers"]["staff"],
        serde_json::json!({ "not_known": "2010" })
    );
    assert_eq!(
        of("DEU")["answers"]["active"],
        serde_json::json!({ "not_applicable": "" })
    );
    assert_eq!(of("SWE")["answers"]["staff"], 10.0);
    app.stop().await;
}

/// In a real browser without JavaScript: the radio group and reason box pass axe-core and
/// have accessible names, "not known" is picked by a click, a missing reason is refused next
/// to its field with the choices kept, then saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_known_in_a_real_browser_without_javascript() {
    use crate::browser::{
        browser_without_javascript, check_page_without_js, chromedriver, click, fill, go, wait_for,
    };
    let app = spawn(Backend::Sqlite).await;
    let link = app.issue_token("escapes", "SWE", "Anna");
    let driver = chromedriver();
    let c = browser_without_javascript(&driver).await;
    go(&app, &c, &format!("{link}/s/figures")).await;
    wait_for(&c, "Can you answer this question?").await;
    check_page_without_js(&c, "section with not known", "escapes-01-section").await;
    click(&c, "#q-staff-escape-not_known").await;
    fill(&c, "staff.reason", "The register is not kept").await;
    click(&c, "#q-budget-escape-not_applicable").await;
    click(&c, "form button[type=submit]").await;
    let page = wait_for(&c, "There is a problem").await;
    assert!(page.contains("Give a short reason"), "{page}");
    check_page_without_js(&c, "section with a missing reason", "escapes-02-refused").await;
    assert!(c
        .find(fantoccini::Locator::Css("#q-budget-escape-not_applicable"))
        .await
        .unwrap()
        .prop("checked")
        .await
        .unwrap()
        .is_some_and(|v| v == "true"));
    fill(&c, "budget.reason", "No budget line of its own").await;
    click(&c, "form button[type=submit]").await;
    wait_for(&c, "Your answers were saved").await;
    go(&app, &c, &format!("{link}/review")).await;
    let review = wait_for(&c, "Not known: The register is not kept").await;
    assert!(review.contains("Not applicable: No budget line of its own"));
    app.stop().await;
}

//! Results, exports and the status table count each response's counted version: the latest
//! one submitted and not recalled, whatever the country is changing meanwhile; "accepted
//! only" counts the accepted ones. The secretariat's actions (review, return, accept) are
//! made here with the storage functions they use; the country's through its pages.

use chrono::Utc;
use coherence::db::responses::{self, ResponseStatus};
use coherence::db::versions::{self, Mark};
use coherence::db::{self, DbConn, DbUrl};
use coherence::results::aggregate::{self, Filter};

use crate::helpers::{Backend, Page, TestApp};
use crate::on_both_backends;

on_both_backends!(results_and_exports_follow_the_counted_version);

fn conn_for(app: &TestApp) -> db::PooledConn {
    let pool = db::connect(&DbUrl::parse(&app.database_url).unwrap(), 1).unwrap();
    pool.get().unwrap()
}

fn survey(app: &TestApp) -> std::sync::Arc<coherence::survey::Survey> {
    let report = coherence::survey::load_paths(std::slice::from_ref(&app.surveys));
    coherence::survey::Catalog::new(report.surveys)
        .get("fixture")
        .unwrap()
        .clone()
}

fn response_id(conn: &mut DbConn, iso3: &str) -> String {
    responses::find_response(conn, "fixture", iso3, "")
        .unwrap()
        .unwrap()
        .id
}

/// Move a response between states as the secretariat's actions do, marking the version.
fn secretariat(conn: &mut DbConn, iso3: &str, to: ResponseStatus, mark: Option<Mark>) {
    let id = response_id(conn, iso3);
    let row = responses::response_by_id(conn, &id).unwrap().unwrap();
    let now = Utc::now().naive_utc();
    assert!(
        responses::change_status(conn, &id, &[row.status], to, now).unwrap(),
        "{iso3} to {to}"
    );
    if let Some(mark) = mark {
        assert!(versions::mark(conn, &id, row.version_count, mark, now).unwrap());
    }
}

/// The country recalls its latest submission, as `respond::recall` does.
fn recall(conn: &mut DbConn, iso3: &str) {
    let id = response_id(conn, iso3);
    let row = responses::response_by_id(conn, &id).unwrap().unwrap();
    let now = Utc::now().naive_utc();
    assert!(responses::change_status(
        conn,
        &id,
        &[ResponseStatus::Submitted],
        ResponseStatus::Draft,
        now
    )
    .unwrap());
    versions::mark(conn, &id, row.version_count, Mark::Recalled, now).unwrap();
    let history = versions::versions(conn, &id).unwrap();
    responses::set_counted_version(conn, &id, coherence::report::counted_version(&history))
        .unwrap();
}

/// The CSV export as (header, rows), and a cell getter.
struct Csv {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Csv {
    fn parse(page: &Page) -> Csv {
        assert_eq!(page.status, 200, "{}", page.body);
        let mut reader = csv::Reader::from_reader(page.body.as_bytes());
        let header = reader.headers().unwrap().iter().map(String::from).collect();
        let rows = reader
            .records()
            .map(|r| r.unwrap().iter().map(String::from).collect())
            .collect();
        Csv { header, rows }
    }

    fn countries(&self) -> Vec<&str> {
        self.rows.iter().map(|r| r[0].as_str()).collect()
    }

    fn cell(&self, iso3: &str, column: &str) -> &str {
        let col = self
            .header
            .iter()
            .position(|h| h == column)
            .unwrap_or_else(|| panic!("column {column}"));
        let row = self
            .rows
            .iter()
            .find(|r| r[0] == iso3)
            .unwrap_or_else(|| panic!("row {iso3}"));
        &row[col]
    }
}

fn colour_counts(app: &TestApp, conn: &mut DbConn, filter: &Filter) -> Vec<(String, i64)> {
    let survey = survey(app);
    let q = survey.question("colour").unwrap();
    let mut out: Vec<(String, i64)> = aggregate::choice_counts(conn, "fixture", q, filter, None)
        .unwrap()
        .into_iter()
        .map(|(_, v, n)| (v, n))
        .collect();
    out.sort();
    out
}

fn pairs(list: &[(&str, i64)]) -> Vec<(String, i64)> {
    list.iter().map(|(v, n)| (v.to_string(), *n)).collect()
}

/// The number before a count link's label on the survey page.
fn count(body: &str, label: &str) -> String {
    let end = body
        .find(&format!("</span> {label}</a>"))
        .unwrap_or_else(|| panic!("{label}"));
    let start = body[..end].rfind('>').unwrap() + 1;
    body[start..end].to_string()
}

async fn results_and_exports_follow_the_counted_version(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut conn = conn_for(&app);
    let swe = app.issue_token("fixture", "SWE", "Anna");
    let phl = app.issue_token("fixture", "PHL", "Maria");
    let mar = app.issue_token("fixture", "MAR", "Karim");
    let ken = app.issue_token("fixture", "KEN", "Wanjiru");
    for (link, colour, staff) in [
        (&swe, "red", "10"),
        (&phl, "blue", "20"),
        (&mar, "red", "30"),
    ] {
        let res = app
            .save_section(
                link,
                "basics",
                &[
                    ("name", "N"),
                    ("colour", colour),
                    ("active", "yes"),
                    ("staff", staff),
                ],
            )
            .await;
        assert_eq!(res.status, 303, "{}", res.body);
        let res = app.save_section(link, "plans", &[("has_plan", "no")]).await;
        assert_eq!(res.status, 303, "{}", res.body);
        let res = app.submit(link).await;
        assert_eq!(res.status, 303, "{}", res.body);
    }
    app.save_section(&ken, "basics", &[("name", "W"), ("colour", "blue")])
        .await;
    app.add_user(
        "owner@fixture.example",
        "a long owner passphrase",
        "owner",
        &["fixture"],
    );
    app.login("owner@fixture.example", "a long owner passphrase")
        .await;
    let submitted = Filter::default();
    let accepted = Filter {
        accepted_only: true,
        ..Default::default()
    };

    // Morocco recalls its submission: it no longer counts, in results or exports.
    recall(&mut conn, "MAR");
    assert_eq!(
        colour_counts(&app, &mut conn, &submitted),
        pairs(&[("blue", 1), ("red", 1)])
    );
    let csv = Csv::parse(&app.get("/admin/surveys/fixture/export.csv").await);
    assert_eq!(csv.countries(), ["PHL", "SWE"]);
    assert_eq!(
        (
            csv.cell("SWE", "version"),
            csv.cell("SWE", "state"),
            csv.cell("SWE", "status")
        ),
        ("1", "submitted", "submitted")
    );
    let swe_id = response_id(&mut conn, "SWE");
    let v1 = versions::version(&mut conn, &swe_id, 1).unwrap().unwrap();
    assert_eq!(csv.cell("SWE", "digest"), v1.digest);
    assert_eq!(v1.digest.len(), 64);

    // The secretariat reviews Sweden's report and returns it; Sweden changes its answers
    // without resubmitting: results and exports still show version 1.
    secretariat(&mut conn, "SWE", ResponseStatus::UnderReview, None);
    let csv = Csv::parse(&app.get("/admin/surveys/fixture/export.csv").await);
    assert_eq!(csv.cell("SWE", "state"), "under_review");
    secretariat(
        &mut conn,
        "SWE",
        ResponseStatus::Returned,
        Some(Mark::Returned),
    );
    let res = app
        .save_section(
            &swe,
            "basics",
            &[
                ("name", "N"),
                ("colour", "blue"),
                ("active", "yes"),
                ("staff", "50"),
            ],
        )
        .await;
    assert_eq!(
        res.status, 303,
        "a returned report may be changed: {}",
        res.body
    );
    assert_eq!(
        colour_counts(&app, &mut conn, &submitted),
        pairs(&[("blue", 1), ("red", 1)]),
        "the counted version, not the changes being made"
    );
    let csv = Csv::parse(&app.get("/admin/surveys/fixture/export.csv").await);
    assert_eq!(
        (
            csv.cell("SWE", "colour"),
            csv.cell("SWE", "staff"),
            csv.cell("SWE", "version"),
            csv.cell("SWE", "state"),
            csv.cell("SWE", "status")
        ),
        ("red", "10", "1", "returned", "returned")
    );
    // With drafts included, Kenya's draft counts its saved answers and Sweden still its v1.
    let drafts = Csv::parse(&app.get("/admin/surveys/fixture/export.csv?drafts=1").await);
    assert_eq!(drafts.cell("SWE", "colour"), "red");
    assert_eq!(
        (drafts.cell("KEN", "colour"), drafts.cell("KEN", "version")),
        ("blue", "")
    );
    assert_eq!(drafts.cell("KEN", "state"), "draft");
    let with_drafts = Filter {
        include_drafts: true,
        ..Default::default()
    };
    assert_eq!(
        colour_counts(&app, &mut conn, &with_drafts),
        pairs(&[("blue", 2), ("red", 2)]),
        "PHL and KEN blue; SWE (v1) and MAR (its saved draft) red"
    );
    // The responses that answered, counted by the same rules: the counted versions, and with
    // drafts the saved answers of those without one.
    let answered = |conn: &mut DbConn, filter: &Filter| {
        aggregate::asked_and_answered(conn, "fixture", "colour", filter, None).unwrap()["all"].1
    };
    assert_eq!(answered(&mut conn, &submitted), 2, "PHL and SWE (v1)");
    assert_eq!(answered(&mut conn, &with_drafts), 4, "and KEN and MAR");
    assert_eq!(answered(&mut conn, &accepted), 0);
    let page = app.get("/admin/surveys/fixture/results/q/staff").await;
    assert!(
        page.body
            .contains("Count 2, minimum 10, median 15, maximum 20"),
        "{}",
        page.body
    );

    // Resubmitted, version 2 counts, with its own digest.
    assert_eq!(app.submit(&swe).await.status, 303);
    assert_eq!(
        colour_counts(&app, &mut conn, &submitted),
        pairs(&[("blue", 2)])
    );
    let v2 = versions::version(&mut conn, &swe_id, 2).unwrap().unwrap();
    assert_ne!(v1.digest, v2.digest);
    let json: serde_json::Value =
        serde_json::from_str(&app.get("/admin/surveys/fixture/export.json").await.body).unwrap();
    let list = json["responses"].as_array().unwrap();
    let swe_json = list.iter().find(|r| r["iso3"] == "SWE").unwrap();
    assert_eq!(swe_json["version"], 2);
    assert_eq!(swe_json["state"], "submitted");
    assert_eq!(swe_json["digest"], v2.digest.as_str());
    assert_eq!(swe_json["answers"]["colour"], "blue");
    assert_eq!(swe_json["answers"]["staff"], 50.0);
    assert_eq!(list.len(), 2, "Morocco's recalled report is not exported");
    let page = app.get("/admin/surveys/fixture/results/q/staff").await;
    assert!(
        page.body
            .contains("Count 2, minimum 20, median 35, maximum 50"),
        "{}",
        page.body
    );

    // Accepted only: the Philippines, once the secretariat accepts its report.
    assert!(colour_counts(&app, &mut conn, &accepted).is_empty());
    secretariat(&mut conn, "PHL", ResponseStatus::UnderReview, None);
    secretariat(
        &mut conn,
        "PHL",
        ResponseStatus::Accepted,
        Some(Mark::Accepted),
    );
    assert_eq!(
        colour_counts(&app, &mut conn, &accepted),
        pairs(&[("blue", 1)])
    );
    let only = Csv::parse(
        &app.get("/admin/surveys/fixture/export.csv?accepted=1")
            .await,
    );
    assert_eq!(only.countries(), ["PHL"]);
    assert_eq!(
        (only.cell("PHL", "state"), only.cell("PHL", "status")),
        ("accepted", "accepted")
    );
    let page = app
        .get("/admin/surveys/fixture/results/q/staff?accepted=1")
        .await;
    assert!(
        page.body
            .contains("Count 1, minimum 20, median 20, maximum 20"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(
            "<input type=\"checkbox\" id=\"accepted\" name=\"accepted\" value=\"1\" checked>"
        ),
        "the filter form keeps the choice"
    );
    // The dashboard: 193 asked, 2 submitted (Sweden v2, the Philippines), 1 accepted; with
    // "accepted only", 1 counted.
    let dash = app.get("/admin/surveys/fixture/results").await;
    assert!(
        dash.body
            .contains("<td>2</td><td>2</td><td>1</td><td>1%</td>"),
        "{}",
        dash.body
    );
    assert!(
        dash.body
            .contains("/admin/surveys/fixture/results/q/colour\">"),
        "{}",
        dash.body
    );
    let dash = app.get("/admin/surveys/fixture/results?accepted=1").await;
    assert!(
        dash.body
            .contains("<td>2</td><td>1</td><td>1</td><td>1%</td>"),
        "{}",
        dash.body
    );
    assert!(
        dash.body
            .contains("/admin/surveys/fixture/results/q/colour?accepted&#x3D;1\">"),
        "links keep the filter: {}",
        dash.body
    );
    // The CLI's export takes the same filter.
    let out = app.dir.path().join("accepted.csv");
    let cli = app.cli(
        &[
            "export",
            "fixture",
            "--accepted-only",
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        app.get("/admin/surveys/fixture/export.csv?accepted=1")
            .await
            .body
    );
    // The codebook explains the new columns.
    let codebook = app.get("/admin/surveys/fixture/codebook.csv").await;
    assert!(
        codebook.body.contains("\nversion,,integer,") && codebook.body.contains("\nstate,,text,"),
        "{}",
        codebook.body
    );

    // The status table: a count (and a filter) per state. Sweden's v2 awaits review, the
    // Philippines is accepted, Morocco (recalled) and Kenya are drafts; then Kenya goes to its
    // approver and Sweden is reviewed and returned again.
    app.add_user(
        "admin@fixture.example",
        "a long admin passphrase",
        "admin",
        &[],
    );
    app.login("admin@fixture.example", "a long admin passphrase")
        .await;
    let page = app.get("/admin/surveys/fixture").await;
    let counts = |body: &str| {
        [
            "In draft",
            "Awaiting sign-off",
            "Submitted",
            "Under review",
            "Returned",
            "Accepted",
        ]
        .map(|l| count(body, l))
    };
    assert_eq!(counts(&page.body), ["2", "0", "2", "0", "0", "1"]);
    secretariat(&mut conn, "KEN", ResponseStatus::AwaitingSignOff, None);
    secretariat(&mut conn, "SWE", ResponseStatus::UnderReview, None);
    let page = app.get("/admin/surveys/fixture").await;
    assert_eq!(counts(&page.body), ["1", "1", "2", "1", "0", "1"]);
    secretariat(
        &mut conn,
        "SWE",
        ResponseStatus::Returned,
        Some(Mark::Returned),
    );
    let page = app.get("/admin/surveys/fixture").await;
    assert_eq!(counts(&page.body), ["1", "1", "1", "0", "1", "1"]);
    let rows = |body: &str| body.matches("<tr><th scope=\"row\">").count();
    let returned = app.get("/admin/surveys/fixture?stage=returned").await;
    assert_eq!(rows(&returned.body), 1);
    assert!(returned.body.contains(">Sweden</a>"));
    assert!(
        returned.body.contains("<td>Returned</td>"),
        "the stage column"
    );
    let accepted_rows = app.get("/admin/surveys/fixture?stage=accepted").await;
    assert_eq!(rows(&accepted_rows.body), 1);
    assert!(accepted_rows.body.contains(">Philippines</a>"));
    let waiting = app
        .get("/admin/surveys/fixture?stage=awaiting-sign-off")
        .await;
    assert!(waiting.body.contains(">Kenya</a>") && rows(&waiting.body) == 1);
    let status = app.get("/admin/surveys/fixture/status.csv").await;
    let line = |iso3: &str| {
        status
            .body
            .lines()
            .find(|l| l.starts_with(&format!("{iso3},")))
            .unwrap()
            .to_string()
    };
    assert!(line("SWE").ends_with(",returned,2"), "{}", line("SWE"));
    assert!(line("MAR").ends_with(",draft,"), "{}", line("MAR"));
    assert!(line("PHL").ends_with(",accepted,1"), "{}", line("PHL"));
    // Returned, Sweden's version 2 still counts in results.
    assert_eq!(
        colour_counts(&app, &mut conn, &submitted),
        pairs(&[("blue", 2)])
    );
    app.stop().await;
}

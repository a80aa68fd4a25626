//! Results on a small fixture with hand-computed counts, on both backends; the two backends
//! compared on the same data; exports read back; access.

use std::io::Cursor;

use coherence::db;
use coherence::reference::Countries;
use coherence::results::aggregate::{self, Filter, Grouping};
use coherence::results::practices;

use crate::helpers::{fixtures, fresh_database, writable_conn, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    counts_match_hand_computed_values,
    compendium_needs_and_matching,
    exports_read_back_match_the_database,
    results_refuse_anonymous_users_focal_points_and_other_owners,
    charts_tell_twelve_options_apart_name_other_and_wrap_long_labels,
    every_results_page_renders_for_the_shipped_surveys_in_every_language,
    response_rates_count_each_unit_once_whichever_table_names_it,
    the_kept_response_rates_equal_those_computed_after_every_kind_of_write,
    two_transactions_changing_one_unit_at_once_leave_its_kept_rates_right,
    the_compendium_says_what_each_response_says_read_alone,
    the_kept_listings_equal_those_computed_from_the_answers_after_every_kind_of_write,
    counts_with_drafts_equal_those_computed_from_every_answer_that_counts,
);

/// Answer and submit a whole response through the real pages.
async fn answer(app: &TestApp, link: &str, sections: &[(&str, &[(&str, &str)])], submit: bool) {
    for (section, fields) in sections {
        let res = app.save_section(link, section, fields).await;
        assert_eq!(res.status, 303, "{link} {section}: {}", res.body);
    }
    if submit {
        let res = app.submit(link).await;
        assert_eq!(res.status, 303, "submit {link}: {}", res.body);
    }
}

/// Sweden, the Philippines, Morocco submitted; Kenya in draft. The Philippines first said it
/// has a plan (year 2001), then that it has none: the stale year must never count.
async fn fixture_responses(app: &TestApp) {
    let swe = app.issue_token("fixture", "SWE", "Anna");
    let phl = app.issue_token("fixture", "PHL", "Maria");
    let mar = app.issue_token("fixture", "MAR", "Karim");
    let ken = app.issue_token("fixture", "KEN", "Wanjiru");
    answer(
        app,
        &swe,
        &[
            (
                "basics",
                &[
                    ("name", "Anna"),
                    ("colour", "red"),
                    ("tools", "a"),
                    ("tools", "b"),
                    ("active", "yes"),
                    ("staff", "10"),
                    ("since", "2005-01-01"),
                    ("grid.r1", "s1"),
                    ("grid.r2", "s2"),
                ],
            ),
            ("plans", &[("has_plan", "yes")]),
            (
                "plans",
                &[
                    ("has_plan", "yes"),
                    ("plan_year", "2007"),
                    ("plan_text", "A migration and development council"),
                ],
            ),
            ("extra", &[("extra_note", "Sweden's note")]),
        ],
        true,
    )
    .await;
    answer(
        app,
        &phl,
        &[
            (
                "basics",
                &[
                    ("name", "Maria"),
                    ("colour", "blue"),
                    ("tools", "a"),
                    ("active", "yes"),
                    ("staff", "20"),
                    ("since", "2010-06-30"),
                    ("grid.r1", "s1"),
                ],
            ),
            ("plans", &[("has_plan", "yes")]),
            ("plans", &[("has_plan", "yes"), ("plan_year", "2001")]),
            ("plans", &[("has_plan", "no"), ("plan_year", "2001")]),
            ("extra", &[("extra_note", "Philippine note")]),
        ],
        true,
    )
    .await;
    answer(
        app,
        &mar,
        &[
            (
                "basics",
                &[
                    ("name", "Karim"),
                    ("colour", "other"),
                    ("colour.other", "green"),
                    ("tools", "b"),
                    ("tools", "c"),
                    ("active", "no"),
                    ("staff", "30"),
                ],
            ),
            ("plans", &[("has_plan", "yes")]),
            ("plans", &[("has_plan", "yes"), ("plan_year", "2010")]),
        ],
        true,
    )
    .await;
    answer(
        app,
        &ken,
        &[(
            "basics",
            &[("name", "W"), ("colour", "red"), ("staff", "99")],
        )],
        false,
    )
    .await;
}

/// A connection of the test's own, which writes rows the pages cannot reach (see
/// [`writable_conn`]).
fn conn_for(app: &TestApp) -> db::DbConn {
    writable_conn(&app.database_url)
}

fn survey(app: &TestApp) -> std::sync::Arc<coherence::survey::Survey> {
    let report = coherence::survey::load_paths(std::slice::from_ref(&app.surveys));
    let catalog = coherence::survey::Catalog::new(report.surveys);
    catalog.get("fixture").unwrap().clone()
}

fn sorted(mut v: Vec<(String, String, i64)>) -> Vec<(String, String, i64)> {
    v.sort();
    v
}

fn triples(list: &[(&str, &str, i64)]) -> Vec<(String, String, i64)> {
    list.iter()
        .map(|(a, b, n)| (a.to_string(), b.to_string(), *n))
        .collect()
}

async fn counts_match_hand_computed_values(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    fixture_responses(&app).await;
    let survey = survey(&app);
    let mut conn = conn_for(&app);
    let conn = &mut conn;
    let submitted = Filter::default();
    let drafts = Filter {
        include_drafts: true,
        ..Default::default()
    };
    let q = |id: &str| survey.question(id).unwrap().clone();
    // Single choice, with "other".
    let colour = aggregate::choice_counts(conn, "fixture", &q("colour"), &submitted, None).unwrap();
    assert_eq!(
        sorted(colour),
        triples(&[("all", "blue", 1), ("all", "other", 1), ("all", "red", 1)])
    );
    // Drafts included: Kenya's red counts too.
    let colour = aggregate::choice_counts(conn, "fixture", &q("colour"), &drafts, None).unwrap();
    assert!(colour.contains(&("all".into(), "red".into(), 2)));
    // Multiple choice, per option.
    let tools = aggregate::choice_counts(conn, "fixture", &q("tools"), &submitted, None).unwrap();
    assert_eq!(
        sorted(tools),
        triples(&[("all", "a", 2), ("all", "b", 2), ("all", "c", 1)])
    );
    // Yes/no, by region (M49 codes).
    let active = aggregate::choice_counts(
        conn,
        "fixture",
        &q("active"),
        &submitted,
        Some(Grouping::Region),
    )
    .unwrap();
    assert_eq!(
        sorted(active),
        triples(&[("002", "no", 1), ("142", "yes", 1), ("150", "yes", 1)])
    );
    // By development group and by 2008 LDC status.
    let by_dev = aggregate::choice_counts(
        conn,
        "fixture",
        &q("active"),
        &submitted,
        Some(Grouping::Development),
    )
    .unwrap();
    assert_eq!(
        sorted(by_dev),
        triples(&[
            ("developed", "yes", 1),
            ("developing", "no", 1),
            ("developing", "yes", 1)
        ])
    );
    let by_ldc = aggregate::choice_counts(
        conn,
        "fixture",
        &q("active"),
        &submitted,
        Some(Grouping::Ldc),
    )
    .unwrap();
    assert_eq!(
        sorted(by_ldc),
        triples(&[("other", "no", 1), ("other", "yes", 2)])
    );
    // Matrix rows.
    let grid = aggregate::choice_counts(conn, "fixture", &q("grid"), &submitted, None).unwrap();
    assert_eq!(
        sorted(grid),
        triples(&[("all", "r1=s1", 2), ("all", "r2=s2", 1)])
    );
    // Income filter: the Philippines and Morocco are lower-middle income (FY09).
    let lm = Filter {
        income: Some("LM".into()),
        ..Default::default()
    };
    let colour_lm = aggregate::choice_counts(conn, "fixture", &q("colour"), &lm, None).unwrap();
    assert_eq!(
        sorted(colour_lm),
        triples(&[("all", "blue", 1), ("all", "other", 1)])
    );
    // Numbers: count, min, median, max.
    let staff = aggregate::number_stats(conn, "fixture", "staff", &submitted).unwrap();
    assert_eq!(
        (staff.count, staff.min, staff.median, staff.max),
        (3, Some(10.0), Some(20.0), Some(30.0))
    );
    let staff = aggregate::number_stats(conn, "fixture", "staff", &drafts).unwrap();
    assert_eq!(
        (staff.count, staff.median, staff.max),
        (4, Some(25.0), Some(99.0))
    );
    // The stale hidden answer (2001) never counts; only two responses were asked.
    let year = aggregate::number_stats(conn, "fixture", "plan_year", &submitted).unwrap();
    assert_eq!(
        (year.count, year.min, year.max),
        (2, Some(2007.0), Some(2010.0))
    );
    let asked =
        aggregate::asked_and_answered(conn, "fixture", "plan_year", &submitted, None).unwrap();
    assert_eq!(asked.get("all"), Some(&(2, 2)));
    let asked = aggregate::asked_and_answered(conn, "fixture", "notes", &submitted, None).unwrap();
    assert_eq!(
        asked.get("all"),
        Some(&(3, 0)),
        "asked of all three, answered by none"
    );
    // Dates.
    let since = aggregate::date_range(conn, "fixture", "since", &submitted).unwrap();
    assert_eq!(
        since,
        (2, Some("2005-01-01".into()), Some("2010-06-30".into()))
    );
    // Text answers with their country, and "other" texts.
    let names = aggregate::text_answers(conn, "fixture", "name", false, &submitted).unwrap();
    let names: Vec<(&str, &str)> = names
        .iter()
        .map(|t| (t.iso3.as_str(), t.value.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![("MAR", "Karim"), ("PHL", "Maria"), ("SWE", "Anna")]
    );
    let others = aggregate::text_answers(conn, "fixture", "colour", true, &submitted).unwrap();
    assert_eq!(others.len(), 1);
    assert_eq!(
        (others[0].iso3.as_str(), others[0].value.as_str()),
        ("MAR", "green")
    );
    // Response rates over the survey's population (the 193 UN Member States): four countries
    // had links; three submitted, one is drafting.
    let rates = aggregate::response_rates(conn, &survey, &submitted, None).unwrap();
    assert_eq!(rates.len(), 1);
    let r = &rates[0];
    assert_eq!(
        (r.targeted, r.invited, r.opened, r.drafts, r.submitted),
        (193, 0, 4, 1, 3)
    );
    let by_region =
        aggregate::response_rates(conn, &survey, &submitted, Some(Grouping::Region)).unwrap();
    let submitted_by_region: Vec<(&str, i64, i64)> = by_region
        .iter()
        .map(|r| (r.grp.as_str(), r.targeted, r.submitted))
        .collect();
    assert_eq!(
        submitted_by_region,
        vec![
            ("002", 54, 1),
            ("009", 14, 0),
            ("019", 35, 0),
            ("142", 47, 1),
            ("150", 43, 1)
        ]
    );
    app.stop().await;
}

async fn compendium_needs_and_matching(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    fixture_responses(&app).await;
    let survey = survey(&app);
    let countries = Countries::load().unwrap();
    let mut conn = conn_for(&app);
    let filter = Filter::default();
    let list = practices::compendium(&mut conn, &survey, &countries, &filter, "en").unwrap();
    let listed = practices::listings(&mut conn, &survey, &countries, &filter, "en").unwrap();
    assert_eq!(
        listed,
        list.iter().map(|p| p.listing.clone()).collect::<Vec<_>>()
    );
    assert_eq!(list.len(), 1);
    let p = &list[0];
    assert_eq!(p.listing.iso3, "SWE");
    assert_eq!(p.text, "A migration and development council");
    assert_eq!(p.listing.themes, vec!["t1".to_string()]);
    // No "may be cited" answer: Chatham House attribution by sub-region.
    assert!(!p.listing.citable);
    assert_eq!(&*p.listing.attribution, "a government in Northern Europe");
    let needs = practices::ranked_needs(&mut conn, &survey, &filter, "en").unwrap();
    let ranked: Vec<(&str, i64)> = needs
        .iter()
        .map(|n| (n.option.as_str(), n.countries))
        .collect();
    assert_eq!(ranked, vec![("a", 2), ("b", 2), ("c", 1)]);
    assert_eq!(needs[0].level, Some("policy"));
    assert_eq!(needs[0].by_development.get("developing"), Some(&1));
    assert_eq!(needs[0].by_development.get("developed"), Some(&1));
    // Every need in theme t1 is matched with Sweden's practice; Sweden itself gets no match.
    let matches =
        practices::partner_matches(&mut conn, &survey, &countries, &listed, &filter, "en").unwrap();
    let pairs: std::collections::BTreeSet<(String, String)> = matches
        .iter()
        .map(|m| (m.iso3.clone(), m.partners[0].iso3.clone()))
        .collect();
    assert_eq!(
        pairs.into_iter().collect::<Vec<_>>(),
        vec![
            ("MAR".to_string(), "SWE".to_string()),
            ("PHL".to_string(), "SWE".to_string())
        ]
    );
    assert!(matches.iter().all(|m| !m.partners[0].same_region));
    // The pages show the same.
    app.add_user(
        "owner@fixture.example",
        "a long owner passphrase",
        "owner",
        &["fixture"],
    );
    app.login("owner@fixture.example", "a long owner passphrase")
        .await;
    let page = app.get("/admin/surveys/fixture/results/compendium").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("a government in Northern Europe") && !page.body.contains("Sweden (")
    );
    let md = app
        .get("/admin/surveys/fixture/results/compendium.md")
        .await;
    assert!(
        md.body.contains("## Theme one") && md.body.contains("A migration and development council")
    );
    let needs_page = app.get("/admin/surveys/fixture/results/needs").await;
    assert!(
        needs_page
            .body
            .contains("<th scope=\"row\">Philippines</th><td>Theme one</td>"),
        "{}",
        needs_page.body
    );
    let dash = app.get("/admin/surveys/fixture/results").await;
    assert!(dash.body.contains("<svg role=\"img\""), "charts are SVG");
    // Asked: the 193 UN Member States; 3 of them submitted, none accepted yet.
    assert!(
        dash.body
            .contains("<td>193</td><td>0</td><td>4</td><td>1</td><td>3</td><td>0</td><td>2%</td>"),
        "{}",
        dash.body
    );
    // The owner's pages in French and Spanish.
    let fr = app
        .get("/admin/surveys/fixture/results/compendium?lang=fr")
        .await;
    assert!(
        fr.body.contains("Recueil de bonnes pratiques"),
        "{}",
        fr.body
    );
    assert!(
        fr.body
            .contains("un gouvernement de la région Europe septentrionale"),
        "{}",
        fr.body
    );
    // Countries are named in the page's language on the needs and matching page.
    let needs_fr = app
        .get("/admin/surveys/fixture/results/needs?lang=fr")
        .await;
    assert!(needs_fr.body.contains("Suède"), "{}", needs_fr.body);
    assert!(!needs_fr.body.contains("Sweden"), "{}", needs_fr.body);
    let remembered = app.get("/admin/surveys/fixture/results").await;
    assert!(
        remembered.body.contains("Taux de réponse"),
        "the choice is remembered"
    );
    assert!(
        remembered.body.contains("<td>2\u{202f}%</td>") && !remembered.body.contains("<td>2%</td>"),
        "percentages written the French way: {}",
        remembered.body
    );
    let es = app.get("/admin/surveys/fixture/results?lang=es").await;
    assert!(es.body.contains("Tasas de respuesta"));
    let en = app.get("/admin/surveys/fixture/results?lang=en").await;
    assert!(en.body.contains("Response rates"));
    let question = app
        .get("/admin/surveys/fixture/results/q/tools?by=development")
        .await;
    assert!(
        question.body.contains("Developing") && question.body.contains("2 of 2 asked answered"),
        "{}",
        question.body
    );
    // The breakdown as one stacked chart (a bar per group, a segment per option with a count
    // of at least one) and its cross-table: Sweden picked a and b; the Philippines a; Morocco
    // b and c.
    let stacked = &question.body[question
        .body
        .find("Groups compared")
        .expect("stacked chart")..];
    assert!(
        stacked.contains(
            "<tr><th scope=\"row\">Developed</th><td>1</td><td>1 (100%)</td><td>1 (100%)</td><td>0 (0%)</td></tr>"
        ) && stacked.contains(
            "<tr><th scope=\"row\">Developing</th><td>2</td><td>1 (50%)</td><td>1 (50%)</td><td>1 (50%)</td></tr>"
        ),
        "{stacked}"
    );
    let tips: Vec<&str> = stacked
        .match_indices("<title>")
        .map(|(i, _)| &stacked[i + 7..i + 7 + stacked[i + 7..].find('<').unwrap()])
        .collect();
    assert_eq!(
        tips,
        [
            "Developed, A: 1",
            "Developed, B: 1",
            "Developing, A: 1",
            "Developing, B: 1",
            "Developing, C: 1"
        ],
        "one segment per non-zero count"
    );
    let year = app.get("/admin/surveys/fixture/results/q/plan_year").await;
    assert!(year.body.contains("2 of 2 asked answered"));
    assert!(
        year.body
            .contains("Count 2, minimum 2007, median 2008.5, maximum 2010"),
        "{}",
        year.body
    );
    // A page reads its practices' texts after their listings (which may come from the cache):
    // a practice recalled in between is left out, not shown without its text; with drafts
    // included, it is listed and read from the draft's live answers.
    use diesel::RunQueryDsl;
    diesel::sql_query(
        "UPDATE responses SET counted_version = NULL WHERE survey_id = 'fixture' AND country_iso3 = 'SWE'",
    )
    .execute(&mut conn)
    .unwrap();
    assert_eq!(
        practices::practices(
            &mut conn,
            &survey,
            &countries,
            &filter,
            listed.clone(),
            "en"
        )
        .unwrap(),
        []
    );
    let drafts = Filter {
        include_drafts: true,
        ..Default::default()
    };
    let listed = practices::listings(&mut conn, &survey, &countries, &drafts, "en").unwrap();
    assert_eq!(listed.len(), 1);
    // Version 0: the draft's live answers.
    assert_eq!(listed[0].version, 0);
    let read = practices::practices(
        &mut conn,
        &survey,
        &countries,
        &drafts,
        listed.clone(),
        "en",
    )
    .unwrap();
    assert_eq!(
        read.iter().map(|p| p.text.as_str()).collect::<Vec<_>>(),
        ["A migration and development council"]
    );
    // Read in one scan (as the Markdown of a large round is): the draft's live answers too.
    let scanned =
        practices::practices_reading(&mut conn, &survey, &countries, &drafts, listed, "en", 0)
            .unwrap();
    assert_eq!(scanned, read);
    app.stop().await;
}

async fn exports_read_back_match_the_database(backend: Backend) {
    use calamine::{Data, Reader, Xlsx};
    let app = TestApp::spawn(backend).await;
    fixture_responses(&app).await;
    app.add_user(
        "owner@fixture.example",
        "a long owner passphrase",
        "owner",
        &["fixture"],
    );
    app.login("owner@fixture.example", "a long owner passphrase")
        .await;
    let csv = app.get("/admin/surveys/fixture/export.csv").await;
    assert_eq!(csv.status, 200);
    let mut reader = csv::Reader::from_reader(csv.body.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    assert_eq!(rows.len(), 3, "submitted only");
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("column {name}"))
    };
    let row = |iso3: &str| rows.iter().find(|r| r[0] == iso3).unwrap();
    assert_eq!(row("SWE")[col("colour")], "red");
    assert_eq!(row("MAR")[col("colour")], "other");
    assert_eq!(row("MAR")[col("colour.other_text")], "green");
    assert_eq!(
        (
            row("SWE")[col("tools.a")].as_str(),
            row("SWE")[col("tools.c")].as_str()
        ),
        ("1", "0")
    );
    assert_eq!(row("SWE")[col("grid.r2")], "s2");
    assert_eq!(
        row("PHL")[col("plan_year")],
        "",
        "the hidden stale answer is not exported"
    );
    assert_eq!(row("SWE")[col("m49_region")], "150");
    assert_eq!(row("PHL")[col("income_fy09")], "LM");
    // The codebook explains every column.
    let codebook = app.get("/admin/surveys/fixture/codebook.csv").await;
    assert!(
        codebook
            .body
            .contains("tools.a,tools,multiple_choice,Tools,a,A,\"1=selected; 0=not selected\""),
        "{}",
        codebook.body
    );
    assert!(codebook
        .body
        .contains("colour,colour,single_choice,Colour,,,\"red=Red; blue=Blue; other=Other\""));
    // XLSX: the same cells, read back with calamine.
    let res = app
        .client
        .get(format!("{}/admin/surveys/fixture/export.xlsx", app.address))
        .send()
        .await
        .unwrap();
    let bytes = res.bytes().await.unwrap();
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes.to_vec())).unwrap();
    let sheet = book.worksheet_range("responses").unwrap();
    let cells: Vec<Vec<String>> = sheet
        .rows()
        .map(|r| {
            r.iter()
                .map(|c| match c {
                    Data::Empty => String::new(),
                    Data::Float(f) if f.fract() == 0.0 => format!("{}", *f as i64),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect();
    assert_eq!(cells[0], header);
    for r in &rows {
        let x = cells.iter().find(|c| c[0] == r[0]).unwrap();
        let width = r.len().min(x.len());
        assert_eq!(&x[..width], &r[..width], "{}", r[0]);
    }
    assert!(book.worksheet_range("codebook").is_ok());
    // JSON, and the CLI's export gives the same CSV.
    let json: serde_json::Value =
        serde_json::from_str(&app.get("/admin/surveys/fixture/export.json").await.body).unwrap();
    let swe = json["responses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["iso3"] == "SWE")
        .unwrap();
    assert_eq!(
        swe["answers"]["tools"]["selected"],
        serde_json::json!(["a", "b"])
    );
    assert_eq!(swe["answers"]["grid"]["r1"], "s1");
    assert_eq!(swe["answers"]["staff"], 10.0);
    let out = app.dir.path().join("export.csv");
    let cli = app.cli(
        &[
            "export",
            "fixture",
            "--format",
            "csv",
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
    assert_eq!(std::fs::read_to_string(&out).unwrap(), csv.body);
    assert!(app.dir.path().join("export.codebook.csv").exists());
    app.stop().await;
}

async fn results_refuse_anonymous_users_focal_points_and_other_owners(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app.issue_token("fixture", "SWE", "Anna");
    assert_eq!(app.get(&link).await.status, 200);
    let routes = [
        "/admin/surveys/fixture/results",
        "/admin/surveys/fixture/results/q/colour",
        "/admin/surveys/fixture/results/compendium",
        "/admin/surveys/fixture/results/compendium.md",
        "/admin/surveys/fixture/results/needs",
        "/admin/surveys/fixture/export.csv",
        "/admin/surveys/fixture/codebook.csv",
        "/admin/surveys/fixture/export.xlsx",
        "/admin/surveys/fixture/export.json",
    ];
    // Anonymous, holding a focal point's link and cookies.
    for r in routes {
        let res = app.get(r).await;
        assert_eq!(
            (res.status, res.location.as_deref()),
            (303, Some("/admin/login")),
            "{r}"
        );
    }
    app.add_user(
        "owner@closed.example",
        "a long owner passphrase",
        "owner",
        &["closed"],
    );
    app.login("owner@closed.example", "a long owner passphrase")
        .await;
    for r in routes {
        assert_eq!(app.get(r).await.status, 403, "{r}");
    }
    assert_eq!(app.get("/admin/surveys/closed/results").await.status, 200);
    app.stop().await;
}

/// The same seed gives the same responses; every question type gets answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_data_is_reproducible_and_complete() {
    let surveys = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("surveys");
    let mut exports = Vec::new();
    for _ in 0..2 {
        let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
        let url = fresh_database(Backend::Sqlite, dir.path());
        let app = TestApp::start(url, surveys.clone(), dir).await;
        let out = app.cli(
            &[
                "demo-data",
                "coherence-2008",
                "--countries",
                "30",
                "--seed",
                "42",
            ],
            None,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("demo responses for 30 countries"),
            "{stdout}"
        );
        let out = app.cli(
            &["export", "coherence-2008", "--format", "csv", "--drafts"],
            None,
        );
        // Timestamps differ between runs; everything else must not.
        let csv: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                l.split(',')
                    .enumerate()
                    .filter(|(i, _)| *i != 6)
                    .map(|(_, c)| c)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        exports.push(csv);
        app.stop().await;
    }
    assert_eq!(exports[0], exports[1]);
    assert_eq!(exports[0].len(), 31);
    let header: Vec<&str> = exports[0][0].split(',').collect();
    let filled = |col: &str| {
        let i = header.iter().position(|h| *h == col).unwrap();
        exports[0][1..]
            .iter()
            .filter(|r| r.split(',').nth(i).is_some_and(|v| !v.is_empty()))
            .count()
    };
    for col in [
        "lead_ministry",
        "has_migration_policy",
        "bilateral_agreements",
        "reply_date",
        "respondent_email",
        "gp1_description",
    ] {
        assert!(filled(col) > 10, "{col} is answered in the demo data");
    }
}

/// SQLite and PostgreSQL give identical results on the same data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_postgres_agree() {
    let mut dumps = Vec::new();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
        let url = fresh_database(backend, dir.path());
        let app = TestApp::start(url, fixtures().join("surveys"), dir).await;
        fixture_responses(&app).await;
        let survey = survey(&app);
        let countries = Countries::load().unwrap();
        let mut conn = conn_for(&app);
        let mut dump = Vec::new();
        for filter in [
            Filter::default(),
            Filter {
                include_drafts: true,
                ..Default::default()
            },
        ] {
            for g in [
                None,
                Some(Grouping::Region),
                Some(Grouping::Income),
                Some(Grouping::Sids),
            ] {
                dump.push(format!(
                    "{:?}",
                    aggregate::response_rates(&mut conn, &survey, &filter, g).unwrap()
                ));
                for q in survey.questions() {
                    dump.push(format!(
                        "{:?}",
                        sorted(
                            aggregate::choice_counts(&mut conn, "fixture", q, &filter, g).unwrap()
                        )
                    ));
                    dump.push(format!(
                        "{:?}",
                        aggregate::asked_and_answered(&mut conn, "fixture", &q.id, &filter, g)
                            .unwrap()
                    ));
                }
            }
            for q in ["staff", "share", "plan_year"] {
                dump.push(format!(
                    "{:?}",
                    aggregate::number_stats(&mut conn, "fixture", q, &filter).unwrap()
                ));
            }
            let mut list =
                practices::compendium(&mut conn, &survey, &countries, &filter, "en").unwrap();
            let listed: Vec<_> = list.iter().map(|p| p.listing.clone()).collect();
            // Response ids are random, so differ between the two databases.
            for p in &mut list {
                p.listing.response_id.clear();
            }
            dump.push(format!("{list:?}"));
            dump.push(format!(
                "{:?}",
                practices::ranked_needs(&mut conn, &survey, &filter, "en").unwrap()
            ));
            dump.push(format!(
                "{:?}",
                practices::partner_matches(&mut conn, &survey, &countries, &listed, &filter, "en")
                    .unwrap()
            ));
        }
        dumps.push(dump);
        app.stop().await;
    }
    assert_eq!(dumps[0].len(), dumps[1].len());
    for (a, b) in dumps[0].iter().zip(&dumps[1]) {
        assert_eq!(a, b);
    }
}

/// Twelve options, two of them with long labels (one a single long word), and "other".
const WIDE_SURVEY: &str = r#"
id = "wide"
title = { en = "Wide options", fr = "Options nombreuses" }
respondent_unit = "country"
languages = ["en", "fr"]
closes = 2099-12-31

[[sections]]
id = "s"
title = { en = "Bodies", fr = "Organes" }

[[sections.questions]]
id = "bodies"
type = "multiple_choice"
text = { en = "Which bodies take part?", fr = "Quels organes participent ?" }
other = true
options = [
  { code = "o1", label = { en = "Ministry of Foreign Affairs, International Cooperation and Development Partnerships", fr = "Ministère des affaires étrangères, de la coopération internationale et des partenariats pour le développement" } },
  { code = "o2", label = { en = "Interministerialcoordinationcommitteeformigration", fr = "Comitéinterministérieldecoordinationdesmigrations" } },
  { code = "o3", label = { en = "Justice", fr = "Justice" } },
  { code = "o4", label = { en = "Labour", fr = "Travail" } },
  { code = "o5", label = { en = "Interior", fr = "Intérieur" } },
  { code = "o6", label = { en = "Finance", fr = "Finances" } },
  { code = "o7", label = { en = "Planning", fr = "Plan" } },
  { code = "o8", label = { en = "Health", fr = "Santé" } },
  { code = "o9", label = { en = "Education", fr = "Éducation" } },
  { code = "o10", label = { en = "Statistics office", fr = "Office de la statistique" } },
  { code = "o11", label = { en = "Diaspora office", fr = "Office de la diaspora" } },
  { code = "o12", label = { en = "Parliament", fr = "Parlement" } },
]
"#;

/// The lines (`<tspan>`s) of every `<text>` of the charts on a page.
fn chart_lines(page: &str) -> Vec<Vec<&str>> {
    page.split("<text font-size=\"13\">")
        .skip(1)
        .map(|rest| {
            rest[..rest.find("</text>").unwrap()]
                .split("<tspan ")
                .skip(1)
                .map(|t| &t[t.find('>').unwrap() + 1..t.find("</tspan>").unwrap()])
                .collect()
        })
        .collect()
}

/// The text of every `<text>` of the charts, its lines joined with spaces.
fn chart_texts(page: &str) -> Vec<String> {
    chart_lines(page).iter().map(|l| l.join(" ")).collect()
}

/// The lines of the first chart text that starts with `first`.
fn lines_of<'a>(page: &'a str, first: &str) -> Vec<&'a str> {
    chart_lines(page)
        .into_iter()
        .find(|l| l.first().is_some_and(|l| l.starts_with(first)))
        .unwrap_or_else(|| panic!("'{first}' in a chart: {page}"))
}

/// The fills of the stacked chart's legend, in order.
fn legend_fills(page: &str) -> Vec<String> {
    page.split("class=\"legend-key\"")
        .skip(1)
        .map(|rest| {
            let start = rest.find("fill=\"").unwrap() + 6;
            rest[start..start + rest[start..].find('"').unwrap()].to_string()
        })
        .collect()
}

async fn charts_tell_twelve_options_apart_name_other_and_wrap_long_labels(backend: Backend) {
    let surveys = tempfile::tempdir().unwrap();
    std::fs::write(surveys.path().join("wide.toml"), WIDE_SURVEY).unwrap();
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let url = fresh_database(backend, dir.path());
    let app = TestApp::start(url, surveys.path().to_path_buf(), dir).await;
    // Sweden picks every option and "other"; Kenya the first and "other".
    let mut all: Vec<(&str, &str)> = vec![
        ("bodies", "o1"),
        ("bodies", "o2"),
        ("bodies", "o3"),
        ("bodies", "o4"),
        ("bodies", "o5"),
        ("bodies", "o6"),
        ("bodies", "o7"),
        ("bodies", "o8"),
        ("bodies", "o9"),
        ("bodies", "o10"),
        ("bodies", "o11"),
        ("bodies", "o12"),
    ];
    all.extend([("bodies", "other"), ("bodies.other", "A regional forum")]);
    let swe = app.issue_token("wide", "SWE", "Anna");
    answer(&app, &swe, &[("s", &all)], true).await;
    let ken = app.issue_token("wide", "KEN", "Wanjiru");
    let some: &[(&str, &str)] = &[
        ("bodies", "o1"),
        ("bodies", "other"),
        ("bodies.other", "A council"),
    ];
    answer(&app, &ken, &[("s", some)], true).await;
    app.add_user(
        "owner@wide.example",
        "a long owner passphrase",
        "owner",
        &["wide"],
    );
    app.login("owner@wide.example", "a long owner passphrase")
        .await;

    let en = app
        .get("/admin/surveys/wide/results/q/bodies?by=development&lang=en")
        .await;
    assert_eq!(en.status, 200, "{}", en.body);
    let page = &en.body;
    // Thirteen series: twelve colours, each once, then the first again with stripes.
    let fills = legend_fills(page);
    assert_eq!(fills.len(), 13, "{page}");
    let colours: std::collections::BTreeSet<&String> = fills[..12].iter().collect();
    assert_eq!(colours.len(), 12, "a colour used twice: {fills:?}");
    assert!(fills[..12].iter().all(|f| f.starts_with('#')), "{fills:?}");
    assert_eq!(fills[12], "url(#stacked-p12)");
    assert!(
        page.contains("<pattern id=\"stacked-p12\"")
            && page.contains(&format!("fill=\"{}\"></rect><rect width=\"3\"", fills[0])),
        "the striped fill is defined with the first colour: {page}"
    );
    // "Other" as the form names that option, in the legend, the bars and the cross-table.
    assert!(chart_texts(page).iter().any(|t| t == "Other"), "{page}");
    assert!(page.contains("<th scope=\"col\">Other</th>"), "{page}");
    assert!(
        page.contains("<th scope=\"row\">Other</th><td>1</td>"),
        "{page}"
    );
    assert!(!page.contains("Please specify"), "{page}");
    // Long labels are wrapped over lines at spaces, never cut: every chart text is a whole
    // label, and a word longer than a line keeps a line of its own.
    let long =
        "Ministry of Foreign Affairs, International Cooperation and Development Partnerships";
    let wrapped: Vec<Vec<&str>> = chart_lines(page)
        .into_iter()
        .filter(|l| l.join(" ") == long)
        .collect();
    // The legend's entry (lines of up to 52 characters), then a bar in each group's chart
    // (up to 26, the width of the label column).
    assert_eq!(wrapped.len(), 3, "{wrapped:?}");
    assert!(wrapped[0].len() >= 2 && wrapped[0].iter().all(|l| l.chars().count() <= 52));
    for bar in &wrapped[1..] {
        assert!(bar.len() >= 3, "{bar:?}");
        assert!(bar.iter().all(|l| l.chars().count() <= 26), "{bar:?}");
    }
    let texts = chart_texts(page);
    assert!(texts
        .iter()
        .any(|t| t == "Interministerialcoordinationcommitteeformigration"));
    // Labels of the per-group bar charts and of the legend are all whole option labels.
    let labels: Vec<&str> = [long]
        .into_iter()
        .chain([
            "Interministerialcoordinationcommitteeformigration",
            "Justice",
            "Labour",
            "Interior",
            "Finance",
            "Planning",
            "Health",
            "Education",
            "Statistics office",
            "Diaspora office",
            "Parliament",
            "Other",
            "Developed",
            "Developing",
        ])
        .collect();
    for t in &texts {
        assert!(
            labels.contains(&t.as_str()),
            "a cut label: '{t}' in {texts:?}"
        );
    }

    let fr = app
        .get("/admin/surveys/wide/results/q/bodies?by=development&lang=fr")
        .await;
    let page = &fr.body;
    assert!(chart_texts(page).iter().any(|t| t == "Autre"), "{page}");
    assert!(page.contains("<th scope=\"col\">Autre</th>"), "{page}");
    assert!(!page.contains("Veuillez préciser") && !page.contains("Please specify"));
    let long_fr = "Ministère des affaires étrangères, de la coopération internationale et des partenariats pour le développement";
    let lines = lines_of(page, "Ministère des");
    assert_eq!(lines.join(" "), long_fr);
    assert!(lines.len() >= 2, "{lines:?}");
    app.stop().await;
}

/// Every results page of both shipped surveys, with demo answers, in English, French and
/// Spanish, each question with and without a breakdown: the typed views fill their strict
/// templates (a key missing from a view would be a 500).
async fn every_results_page_renders_for_the_shipped_surveys_in_every_language(backend: Backend) {
    let surveys = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("surveys");
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let url = fresh_database(backend, dir.path());
    let app = TestApp::start(url, surveys, dir).await;
    let ids = ["coherence-2008", "focal-points"];
    for id in ids {
        let out = app.cli(&["demo-data", id, "--countries", "25"], None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    app.add_user("admin@example.org", "a long admin passphrase", "admin", &[]);
    app.login("admin@example.org", "a long admin passphrase")
        .await;
    let mut pages = 0;
    for id in ids {
        let survey =
            coherence::survey::load_paths(&[std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join(format!("surveys/{id}.toml"))]);
        let questions: Vec<String> = survey
            .surveys
            .iter()
            .flat_map(|s| s.questions().map(|q| q.id.clone()))
            .collect();
        assert!(!questions.is_empty(), "{id}");
        let base = format!("/admin/surveys/{id}/results");
        for lang in ["en", "fr", "es"] {
            let mut paths = vec![
                format!("{base}?lang={lang}"),
                format!("{base}/compendium?lang={lang}"),
                format!("{base}/needs?lang={lang}&drafts=1"),
            ];
            for q in &questions {
                paths.push(format!("{base}/q/{q}?lang={lang}"));
                paths.push(format!("{base}/q/{q}?lang={lang}&by=region&drafts=1"));
            }
            for path in paths {
                let page = app.get(&path).await;
                assert_eq!(page.status, 200, "{path}: {}", page.body);
                assert!(
                    page.body.contains(&format!("<html lang=\"{lang}\">")),
                    "{path}"
                );
                pages += 1;
            }
        }
    }
    assert!(pages > 200, "{pages} pages");
    app.stop().await;
}

/// Inserts rows as the app keeps them, for response-rate cases the pages cannot reach quickly
/// (a contact that moved country after its invitation, two links to one unit).
fn insert(conn: &mut db::DbConn, statements: &[String]) {
    use diesel::RunQueryDsl;
    for s in statements {
        diesel::sql_query(s.as_str())
            .execute(conn)
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
}

const AT: &str = "'2026-11-01 10:00:00'";

fn contact(survey: &str, id: &str, iso3: &str, office: &str) -> String {
    format!(
        "INSERT INTO contacts (id, survey_id, country_iso3, name, email, language, office, created_at, updated_at) \
         VALUES ('{id}', '{survey}', '{iso3}', 'Contact {id}', '{id}@example.org', 'en', '{office}', {AT}, {AT})"
    )
}

fn token(survey: &str, id: &str, iso3: &str, unit: &str, opened: bool) -> String {
    let first = if opened { AT } else { "NULL" };
    format!(
        "INSERT INTO access_tokens (id, survey_id, country_iso3, token_hash, created_at, first_used_at, unit) \
         VALUES ('{id}', '{survey}', '{iso3}', 'hash-{id}', {AT}, {first}, '{unit}')"
    )
}

/// A response; `counted`: its counted version and status, if any.
fn response(survey: &str, id: &str, iso3: &str, unit: &str, counted: Option<&str>) -> String {
    let (version, status) = match counted {
        Some(status) => ("1", status),
        None => ("NULL", "draft"),
    };
    format!(
        "INSERT INTO responses (id, survey_id, country_iso3, status, survey_version, created_at, updated_at, unit, counted_version, version_count) \
         VALUES ('{id}', '{survey}', '{iso3}', '{status}', '1', {AT}, {AT}, '{unit}', {version}, 1)"
    )
}

fn saved_section(response: &str, token: &str) -> String {
    format!(
        "INSERT INTO section_states (response_id, section_id, version, updated_at, updated_by) \
         VALUES ('{response}', 'profile', 1, {AT}, '{token}')"
    )
}

fn invite(survey: &str, id: &str, iso3: &str, contact: Option<&str>, status: &str) -> String {
    let contact = contact.map_or("NULL".to_string(), |c| format!("'{c}'"));
    format!(
        "INSERT INTO outbox (id, kind, survey_id, country_iso3, contact_id, recipient, subject, body_text, body_html, status, attempts, next_attempt_at, created_at) \
         VALUES ('{id}', 'invite', '{survey}', '{iso3}', {contact}, 'someone@example.org', 'Invitation', '', '', '{status}', 1, {AT}, {AT})"
    )
}

fn rates_of(rows: &[aggregate::RateRow]) -> Vec<(&str, [i64; 6])> {
    rows.iter()
        .map(|r| {
            (
                r.grp.as_str(),
                [
                    r.targeted,
                    r.invited,
                    r.opened,
                    r.drafts,
                    r.submitted,
                    r.accepted,
                ],
            )
        })
        .collect()
}

/// Contacts, invitations, links, responses and a saved section of survey `inst` (organisations)
/// and of the country survey `fixture`, each unit named by a different mix of them.
fn rate_rows(inst: &str) -> Vec<String> {
    vec![
        // PHL A: two contacts, an invitation sent, a link opened, accepted.
        contact(inst, "c1", "PHL", "A"),
        contact(inst, "c2", "PHL", "A"),
        invite(inst, "o1", "PHL", Some("c1"), "sent"),
        invite(inst, "o2", "PHL", Some("c2"), "sent"),
        token(inst, "t1", "PHL", "A", true),
        response(inst, "r1", "PHL", "A", Some("accepted")),
        // PHL B: its invitation not sent yet, its link not opened, a draft with a saved
        // section.
        contact(inst, "c3", "PHL", "B"),
        invite(inst, "o3", "PHL", Some("c3"), "pending"),
        token(inst, "t2", "PHL", "B", false),
        response(inst, "r2", "PHL", "B", None),
        saved_section("r2", "t2"),
        // PHL C: an opened link only.
        token(inst, "t3", "PHL", "C", true),
        // SWE D: a contact invited, nothing else.
        contact(inst, "c4", "SWE", "D"),
        invite(inst, "o4", "SWE", Some("c4"), "sent"),
        // SWE E: a submitted response only.
        response(inst, "r3", "SWE", "E", Some("submitted")),
        // KEN F: a response with nothing saved (neither a draft nor submitted).
        response(inst, "r4", "KEN", "F", None),
        // KEN G: two links to one organisation, one opened.
        token(inst, "t4", "KEN", "G", false),
        token(inst, "t5", "KEN", "G", true),
        // KEN H: a contact whose invitation went out while it was in Brazil: asked in
        // Kenya, not invited there, and Brazil's H is not asked.
        contact(inst, "c5", "KEN", "H"),
        invite(inst, "o5", "BRA", Some("c5"), "sent"),
        // Another survey's rows count for neither.
        contact("fixture", "c6", "BRA", "Z"),
        token("fixture", "t6", "BRA", "", true),
        invite("fixture", "o6", "BRA", None, "sent"),
        response("fixture", "r5", "BRA", "", Some("accepted")),
        // The country survey: a unit other than the country as a whole is not counted.
        token("fixture", "t7", "SWE", "Office", true),
        response("fixture", "r6", "SWE", "Office", Some("accepted")),
    ]
}

/// An organisation is asked once whether a contact, a link or a response names it, and its
/// invitation, opened link, draft and submission count once; a unit of a survey answered per
/// country is the country as a whole. The dashboard shows the same figures.
async fn response_rates_count_each_unit_once_whichever_table_names_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut pooled = conn_for(&app);
    let conn = &mut pooled;
    let inst = "institutions";
    insert(conn, &rate_rows(inst));
    let report = coherence::survey::load_paths(std::slice::from_ref(&app.surveys));
    let catalog = coherence::survey::Catalog::new(report.surveys);
    let institutions = catalog.get(inst).unwrap().clone();
    let fixture = catalog.get("fixture").unwrap().clone();
    let groupings = [None, Some(Grouping::Region), Some(Grouping::Sids)];
    let all = Filter::default();
    let rates = aggregate::response_rates_by(conn, &institutions, &all, &groupings).unwrap();
    assert_eq!(rates_of(&rates[0]), [("all", [8, 2, 3, 1, 2, 1])]);
    assert_eq!(
        rates_of(&rates[1]),
        [
            ("002", [3, 0, 1, 0, 0, 0]),
            ("142", [3, 1, 2, 1, 1, 1]),
            ("150", [2, 1, 0, 0, 1, 0])
        ]
    );
    assert_eq!(rates_of(&rates[2]), [("other", [8, 2, 3, 1, 2, 1])]);
    // One grouping at a time gives the same rows.
    for (g, rows) in groupings.iter().zip(&rates) {
        assert_eq!(
            &aggregate::response_rates(conn, &institutions, &all, *g).unwrap(),
            rows
        );
    }
    let accepted = Filter {
        accepted_only: true,
        ..Default::default()
    };
    let rates = aggregate::response_rates(conn, &institutions, &accepted, None).unwrap();
    assert_eq!(rates_of(&rates), [("all", [8, 2, 3, 1, 1, 1])]);
    let europe = Filter {
        region: Some("150".to_string()),
        ..Default::default()
    };
    let rates =
        aggregate::response_rates(conn, &institutions, &europe, Some(Grouping::Region)).unwrap();
    assert_eq!(rates_of(&rates), [("150", [2, 1, 0, 0, 1, 0])]);
    // A survey answered per country: the 193 Member States asked, Brazil invited, its link
    // opened and its response accepted; Sweden's office counts for nothing.
    let rates = aggregate::response_rates_by(conn, &fixture, &all, &groupings).unwrap();
    assert_eq!(rates_of(&rates[0]), [("all", [193, 1, 1, 0, 1, 1])]);
    assert_eq!(
        rates_of(&rates[1])
            .into_iter()
            .filter(|(_, r)| r[1..] != [0; 5])
            .collect::<Vec<_>>(),
        [("019", [35, 1, 1, 0, 1, 1])]
    );
    let europe =
        aggregate::response_rates(conn, &fixture, &europe, Some(Grouping::Region)).unwrap();
    assert_eq!(rates_of(&europe), [("150", [43, 0, 0, 0, 0, 0])]);
    // The dashboard shows the organisations' figures.
    app.add_user(
        "owner@institutions.example",
        "a long owner passphrase",
        "owner",
        &[inst],
    );
    app.login("owner@institutions.example", "a long owner passphrase")
        .await;
    let page = app.get("/admin/surveys/institutions/results").await;
    assert!(
        page.body
            .contains("<td>8</td><td>2</td><td>3</td><td>1</td><td>2</td><td>1</td><td>25%</td>"),
        "{}",
        page.body
    );
    app.stop().await;
}

#[derive(diesel::QueryableByName)]
struct Line {
    #[diesel(sql_type = diesel::sql_types::Text)]
    line: String,
}

fn lines(conn: &mut db::DbConn, sql: &str) -> Vec<String> {
    use diesel::RunQueryDsl;
    let rows: Vec<Line> = diesel::sql_query(sql)
        .load(conn)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.into_iter().map(|r| r.line).collect()
}

/// The kept response rates, one line per unit: its key and flags.
fn kept_rates(conn: &mut db::DbConn) -> Vec<String> {
    lines(
        conn,
        "SELECT survey_id || ' ' || country_iso3 || ' ' || unit || ' ' || CAST(opened AS TEXT) \
         || CAST(draft AS TEXT) || CAST(submitted AS TEXT) || CAST(accepted AS TEXT) AS line \
         FROM unit_rates ORDER BY 1",
    )
}

/// Where the kept response rates differ from those computed from the tables: a unit kept but
/// not asked, asked but not kept, or kept with other flags than it should have; and a
/// response whose kept `has_saves` is not whether it has a saved section.
fn kept_rates_wrong(conn: &mut db::DbConn) -> Vec<String> {
    lines(
        conn,
        "SELECT 'kept, not asked: ' || k.survey_id || ' ' || k.country_iso3 || ' ' || k.unit AS line \
         FROM unit_rates k WHERE NOT EXISTS (SELECT 1 FROM unit_rates_asked a \
         WHERE a.survey_id = k.survey_id AND a.country_iso3 = k.country_iso3 AND a.unit = k.unit) \
         UNION ALL SELECT 'asked, not kept: ' || a.survey_id || ' ' || a.country_iso3 || ' ' || a.unit \
         FROM unit_rates_asked a WHERE NOT EXISTS (SELECT 1 FROM unit_rates k \
         WHERE a.survey_id = k.survey_id AND a.country_iso3 = k.country_iso3 AND a.unit = k.unit) \
         UNION ALL SELECT 'other flags: ' || k.survey_id || ' ' || k.country_iso3 || ' ' || k.unit \
         FROM unit_rates k JOIN unit_rates_should f ON f.survey_id = k.survey_id \
         AND f.country_iso3 = k.country_iso3 AND f.unit = k.unit WHERE k.opened <> f.opened \
         OR k.draft <> f.draft OR k.submitted <> f.submitted OR k.accepted <> f.accepted \
         UNION ALL SELECT 'has_saves wrong: ' || r.id FROM responses r \
         WHERE r.has_saves <> EXISTS (SELECT 1 FROM section_states s WHERE s.response_id = r.id)",
    )
}

/// A survey of organisations' response rates by region as the dashboard computed them before
/// the database kept them per unit (`rate_parts` at d68e7a5, written out for survey `survey`):
/// the reference the kept rates are checked against.
fn rates_from_the_tables(conn: &mut db::DbConn, survey: &str, accepted_only: bool) -> RegionRates {
    use diesel::RunQueryDsl;
    let s = format!("'{survey}'");
    let counted = if accepted_only {
        " AND r.status = 'accepted'"
    } else {
        ""
    };
    let has = |table: &str, country: &str, unit: &str| {
        let column = if table == "contacts" {
            "office"
        } else {
            "unit"
        };
        format!(
            "EXISTS (SELECT 1 FROM {table} x2 WHERE x2.survey_id = {s} \
             AND x2.country_iso3 = {country} AND x2.{column} = {unit})"
        )
    };
    let sql = format!(
        "SELECT c.region_code AS grp, CAST(SUM(u.targeted) AS BIGINT) AS targeted, \
         CAST(SUM(u.invited) AS BIGINT) AS invited, CAST(SUM(u.opened) AS BIGINT) AS opened, \
         CAST(SUM(u.drafts) AS BIGINT) AS drafts, CAST(SUM(u.submitted) AS BIGINT) AS submitted, \
         CAST(SUM(u.accepted) AS BIGINT) AS accepted FROM (\
         SELECT r.country_iso3 AS country_iso3, COUNT(*) AS targeted, 0 AS invited, 0 AS opened, \
         SUM(CASE WHEN r.counted_version IS NULL AND EXISTS (SELECT 1 FROM section_states ss WHERE ss.response_id = r.id) THEN 1 ELSE 0 END) AS drafts, \
         SUM(CASE WHEN r.counted_version IS NOT NULL{counted} THEN 1 ELSE 0 END) AS submitted, \
         SUM(CASE WHEN r.counted_version IS NOT NULL AND r.status = 'accepted' THEN 1 ELSE 0 END) AS accepted \
         FROM responses r WHERE r.survey_id = {s} GROUP BY r.country_iso3 \
         UNION ALL SELECT t.country_iso3, COUNT(DISTINCT t.unit), 0, 0, 0, 0, 0 FROM access_tokens t \
         WHERE t.survey_id = {s} AND NOT {t_response} GROUP BY t.country_iso3 \
         UNION ALL SELECT t.country_iso3, 0, 0, COUNT(DISTINCT t.unit), 0, 0, 0 FROM access_tokens t \
         WHERE t.survey_id = {s} AND t.first_used_at IS NOT NULL GROUP BY t.country_iso3 \
         UNION ALL SELECT ct.country_iso3, COUNT(DISTINCT ct.office), 0, 0, 0, 0, 0 FROM contacts ct \
         WHERE ct.survey_id = {s} AND NOT {ct_response} AND NOT {ct_token} GROUP BY ct.country_iso3 \
         UNION ALL SELECT o.country_iso3, 0, COUNT(DISTINCT ct.office), 0, 0, 0, 0 FROM outbox o \
         JOIN contacts ct ON ct.id = o.contact_id WHERE o.survey_id = {s} AND o.kind = 'invite' \
         AND o.status = 'sent' AND ({o_token} OR {o_response} OR {o_contact}) GROUP BY o.country_iso3\
         ) u JOIN countries c ON c.iso3 = u.country_iso3 GROUP BY c.region_code ORDER BY 1",
        t_response = has("responses", "t.country_iso3", "t.unit"),
        ct_response = has("responses", "ct.country_iso3", "ct.office"),
        ct_token = has("access_tokens", "ct.country_iso3", "ct.office"),
        o_token = has("access_tokens", "o.country_iso3", "ct.office"),
        o_response = has("responses", "o.country_iso3", "ct.office"),
        o_contact = has("contacts", "o.country_iso3", "ct.office"),
    );
    let rows: Vec<aggregate::RateRow> = diesel::sql_query(&sql).load(conn).unwrap();
    let asked: Vec<aggregate::RateRow> = rows.into_iter().filter(|r| r.targeted > 0).collect();
    rates_of(&asked)
        .into_iter()
        .map(|(g, f)| (g.to_string(), f))
        .collect()
}

/// Response rates by region: the region and its six figures.
type RegionRates = Vec<(String, [i64; 6])>;

/// The dashboard's figures by region, with and without "accepted only", beside the reference.
fn dashboard_and_reference(
    conn: &mut db::DbConn,
    survey: &coherence::survey::Survey,
) -> (Vec<RegionRates>, Vec<RegionRates>) {
    let mut ours = Vec::new();
    let mut reference = Vec::new();
    for accepted_only in [false, true] {
        let filter = Filter {
            accepted_only,
            ..Filter::default()
        };
        let rates =
            aggregate::response_rates(conn, survey, &filter, Some(Grouping::Region)).unwrap();
        ours.push(
            rates_of(&rates)
                .into_iter()
                .map(|(g, f)| (g.to_string(), f))
                .collect(),
        );
        reference.push(rates_from_the_tables(conn, &survey.id, accepted_only));
    }
    (ours, reference)
}

/// The dashboard of a survey of organisations reads the rates the database keeps per unit:
/// after every kind of write to the tables that name a unit (links, contacts, invitations,
/// responses, saved sections: added, changed, moved to another unit or country, removed), the
/// kept rows are those computed from the tables, and the dashboard's figures (with and without
/// "accepted only") are those the statement before them computed from the tables; each write
/// changed the kept rows or the figures.
async fn the_kept_response_rates_equal_those_computed_after_every_kind_of_write(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut pooled = conn_for(&app);
    let conn = &mut pooled;
    let inst = "institutions";
    insert(conn, &rate_rows(inst));
    assert_eq!(kept_rates_wrong(conn), Vec::<String>::new());
    let report = coherence::survey::load_paths(std::slice::from_ref(&app.surveys));
    let catalog = coherence::survey::Catalog::new(report.surveys);
    let institutions = catalog.get(inst).unwrap().clone();
    let steps: &[(&str, &[&str])] = &[
        ("a link opened", &["UPDATE access_tokens SET first_used_at = '2026-11-02 10:00:00' WHERE id = 't2'"]),
        ("a link moved to another organisation", &["UPDATE access_tokens SET unit = 'C2' WHERE id = 't3'"]),
        ("a link moved to another country", &["UPDATE access_tokens SET country_iso3 = 'SWE' WHERE id = 't3'"]),
        ("the opened one of two links removed", &["DELETE FROM access_tokens WHERE id = 't5'"]),
        ("a contact added", &["INSERT INTO contacts (id, survey_id, country_iso3, name, email, language, office, created_at, updated_at) \
            VALUES ('c7', 'institutions', 'SWE', 'Contact c7', 'c7@example.org', 'en', 'I', '2026-11-01 10:00:00', '2026-11-01 10:00:00')"]),
        ("an invited contact moved to another office", &["UPDATE contacts SET office = 'D2' WHERE id = 'c4'"]),
        ("a link where a contact's invitation went out", &["INSERT INTO access_tokens (id, survey_id, country_iso3, token_hash, created_at, unit) \
            VALUES ('t8', 'institutions', 'BRA', 'hash-t8', '2026-11-01 10:00:00', 'H')"]),
        ("that contact moved to another office, its invitation with it", &["UPDATE contacts SET office = 'H2' WHERE id = 'c5'"]),
        ("a link where it went out after the move", &["INSERT INTO access_tokens (id, survey_id, country_iso3, token_hash, created_at, unit) \
            VALUES ('t9', 'institutions', 'BRA', 'hash-t9', '2026-11-01 10:00:00', 'H2')"]),
        ("that contact removed, taking its invitation", &["DELETE FROM contacts WHERE id = 'c5'"]),
        ("an invitation sent", &["UPDATE outbox SET status = 'sent' WHERE id = 'o3'"]),
        ("an invitation recorded as sent", &["INSERT INTO outbox (id, kind, survey_id, country_iso3, contact_id, recipient, subject, body_text, body_html, status, attempts, next_attempt_at, created_at) \
            VALUES ('o7', 'invite', 'institutions', 'SWE', 'c7', 'c7@example.org', 'Invitation', '', '', 'sent', 1, '2026-11-01 10:00:00', '2026-11-01 10:00:00')"]),
        ("a sent invitation removed", &["DELETE FROM outbox WHERE id = 'o4'"]),
        ("an invited contact removed, its link still there", &["DELETE FROM contacts WHERE id = 'c3'"]),
        ("a contact moved to another country", &["UPDATE contacts SET country_iso3 = 'KEN' WHERE id = 'c7'"]),
        ("a response's first section saved", &["INSERT INTO section_states (response_id, section_id, version, updated_at, updated_by) \
            VALUES ('r4', 'profile', 1, '2026-11-01 10:00:00', 't4')"]),
        // Still a draft: the kept rates stay as they were.
        ("a response's second section saved, then its first removed", &[
            "INSERT INTO section_states (response_id, section_id, version, updated_at, updated_by) \
             VALUES ('r4', 'second', 1, '2026-11-01 10:00:00', 't4')",
            "DELETE FROM section_states WHERE response_id = 'r4' AND section_id = 'profile'",
        ]),
        ("a response's last section removed", &["DELETE FROM section_states WHERE response_id = 'r4'"]),
        ("a draft submitted", &["UPDATE responses SET counted_version = 1, status = 'submitted' WHERE id = 'r2'"]),
        ("a submission accepted", &["UPDATE responses SET status = 'accepted' WHERE id = 'r3'"]),
        ("an accepted response returned", &["UPDATE responses SET counted_version = NULL, status = 'returned' WHERE id = 'r1'"]),
        ("a response moved to another organisation", &["UPDATE responses SET unit = 'F2' WHERE id = 'r4'"]),
        ("a response removed", &["DELETE FROM responses WHERE id = 'r3'"]),
        ("a submitted response with a saved section moved to another country", &["UPDATE responses SET country_iso3 = 'SWE' WHERE id = 'r2'"]),
        ("that response removed, its section with it", &["DELETE FROM responses WHERE id = 'r2'"]),
        ("an invitation's country corrected", &["UPDATE outbox SET country_iso3 = 'KEN' WHERE id = 'o7'"]),
        ("sent invitations marked failed", &["UPDATE outbox SET status = 'failed' WHERE id IN ('o1', 'o2')"]),
    ];
    let (ours, mut reference) = dashboard_and_reference(conn, &institutions);
    assert_eq!(ours, reference, "before any change");
    let mut kept = kept_rates(conn);
    for (step, statements) in steps {
        let statements: Vec<String> = statements.iter().map(|s| s.to_string()).collect();
        insert(conn, &statements);
        assert_eq!(kept_rates_wrong(conn), Vec::<String>::new(), "after {step}");
        let (ours, reference_now) = dashboard_and_reference(conn, &institutions);
        assert_eq!(ours, reference_now, "after {step}");
        let before = (kept, reference);
        (kept, reference) = (kept_rates(conn), reference_now);
        if step.starts_with("a response's second section") {
            assert_eq!((&kept, &reference), (&before.0, &before.1), "{step}");
        } else {
            assert_ne!(
                (&kept, &reference),
                (&before.0, &before.1),
                "{step}: nothing changed"
            );
        }
    }
    app.stop().await;
}

/// Two transactions changing one organisation at once: the second waits for the first, so its
/// unit's kept rates count both changes. First a link opened, then the response submitted
/// (each changes only its flags); then a link opened, then a contact added (which computes
/// the unit whole, and must read the opened link once its transaction commits).
async fn two_transactions_changing_one_unit_at_once_leave_its_kept_rates_right(backend: Backend) {
    use diesel::RunQueryDsl;
    let app = TestApp::spawn(backend).await;
    let mut first = conn_for(&app);
    insert(&mut first, &rate_rows("institutions"));
    let begin = match backend {
        Backend::Sqlite => "BEGIN IMMEDIATE",
        Backend::Postgres => "BEGIN",
    };
    let cases = [
        (
            "UPDATE access_tokens SET first_used_at = '2026-11-02 10:00:00' WHERE id = 't2'",
            "UPDATE responses SET counted_version = 1, status = 'submitted' WHERE id = 'r2'",
            "institutions PHL B 1010",
        ),
        (
            "UPDATE access_tokens SET first_used_at = '2026-11-02 10:00:00' WHERE id = 't4'",
            "INSERT INTO contacts (id, survey_id, country_iso3, name, email, language, office, \
             created_at, updated_at) VALUES ('c9', 'institutions', 'KEN', 'Contact c9', \
             'c9@example.org', 'en', 'G', '2026-11-01 10:00:00', '2026-11-01 10:00:00')",
            "institutions KEN G 1000",
        ),
    ];
    for (opened, then, expected) in cases {
        diesel::sql_query(begin).execute(&mut first).unwrap();
        insert(&mut first, &[opened.to_string()]);
        let mut second = conn_for(&app);
        let waiting = std::thread::spawn(move || insert(&mut second, &[then.to_string()]));
        // Long enough for the second transaction to compute the unit's rates, were it not
        // made to wait.
        std::thread::sleep(std::time::Duration::from_millis(500));
        assert!(
            !waiting.is_finished(),
            "{then}: the second transaction did not wait for the first"
        );
        diesel::sql_query("COMMIT").execute(&mut first).unwrap();
        waiting.join().unwrap();
        let conn = &mut first;
        assert_eq!(kept_rates_wrong(conn), Vec::<String>::new(), "{then}");
        let kept = kept_rates(conn);
        assert!(kept.contains(&expected.to_string()), "{then}: {kept:?}");
    }
    app.stop().await;
}

/// SQL adding version 2 of a response, a copy of its version 1's record.
fn second_version(response: &str) -> String {
    format!(
        "INSERT INTO response_versions (response_id, number, survey_version, content, digest, \
         submitted_at, submitted_by, signed_off_by, signed_off_name, signed_off_title, channel, \
         entered_by, recalled_at, returned_at, accepted_at) SELECT response_id, 2, \
         survey_version, content, digest, submitted_at, submitted_by, signed_off_by, \
         signed_off_name, signed_off_title, channel, entered_by, recalled_at, returned_at, \
         accepted_at FROM response_versions WHERE response_id = '{response}' AND number = 1"
    )
}

/// SQL writing `select` (response, version, question, item, value, num) of the response's
/// version-1 answers that match `only`, as new version answers.
fn first_version_answers(response: &str, select: &str, only: &str) -> String {
    format!(
        "INSERT INTO version_answers (response_id, version, question_id, item, value, num, \
         updated_by, updated_at) SELECT {select}, updated_by, updated_at FROM version_answers \
         WHERE response_id = '{response}' AND version = 1 AND {only}"
    )
}

/// An app on the shipped surveys, and their catalog.
async fn on_shipped_surveys(backend: Backend) -> (TestApp, coherence::survey::Catalog) {
    let shipped = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("surveys");
    let app = TestApp::spawn_with(backend, shipped.clone()).await;
    let catalog =
        coherence::survey::Catalog::new(coherence::survey::load_paths(&[shipped]).surveys);
    (app, catalog)
}

/// SQL storing version 2 of `response` (of the shipped survey) and counting it: its version-1
/// answers, but "may it be cited" answered `citable` and the first practice's themes `themes`.
fn second_version_counted(response: &str, citable: bool, themes: &[&str]) -> Vec<String> {
    let copy = |select: &str, only: &str| first_version_answers(response, select, only);
    let practice = "question_id = 'gp1_description'";
    let mut statements = vec![
        second_version(response),
        copy(
            "response_id, 2, question_id, item, value, num",
            "question_id NOT IN ('gp1_themes', 'gp1_cite')",
        ),
        copy(
            &format!(
                "response_id, 2, 'gp1_cite', '', '{}', NULL",
                if citable { "yes" } else { "no" }
            ),
            practice,
        ),
    ];
    for theme in themes {
        statements.push(copy(
            &format!("response_id, 2, 'gp1_themes', '{theme}', '1', NULL"),
            practice,
        ));
    }
    statements.push(format!(
        "UPDATE responses SET counted_version = 2 WHERE id = '{response}'"
    ));
    statements
}

/// The compendium of the shipped survey on demo data (themes picked in a multiple choice,
/// citation, related answers) says of each practice what its response's counted answers say
/// when read one by one, lists every practice once, and is in the compendium's order.
async fn the_compendium_says_what_each_response_says_read_alone(backend: Backend) {
    use coherence::survey::Marker;
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        response_id: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        question_id: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        item: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }
    let (app, catalog) = on_shipped_surveys(backend).await;
    let survey = catalog.get("coherence-2008").unwrap().clone();
    let countries = Countries::load().unwrap();
    let mut conn = conn_for(&app);
    coherence::results::demo::generate(&mut conn, &survey, &countries, 60, 11).unwrap();
    // One practice's response submitted again with other themes and the other answer to "may
    // it be cited": its first version's answers must no longer count.
    let first = practices::listings(&mut conn, &survey, &countries, &Filter::default(), "en")
        .unwrap()
        .into_iter()
        .find(|l| &*l.question == "gp1_description")
        .unwrap();
    let id = &first.response_id;
    for statement in second_version_counted(id, !first.citable, &["remittances", "diaspora"]) {
        diesel::sql_query(&statement).execute(&mut conn).unwrap();
    }
    let list =
        practices::compendium(&mut conn, &survey, &countries, &Filter::default(), "en").unwrap();
    let again = list.iter().find(|p| &p.listing.response_id == id).unwrap();
    assert_ne!(again.listing.citable, first.citable);
    assert_eq!(again.listing.themes, ["diaspora", "remittances"]);
    assert_ne!(again.listing.themes, first.themes);
    // The Markdown download of a large round reads every practice in one scan instead of by
    // response: the same practices.
    let listed: Vec<_> = list.iter().map(|p| p.listing.clone()).collect();
    let scanned = |listed: Vec<practices::Listing>, conn: &mut coherence::db::DbConn| {
        practices::practices_reading(
            conn,
            &survey,
            &countries,
            &Filter::default(),
            listed,
            "en",
            0,
        )
        .unwrap()
    };
    assert_eq!(scanned(listed, &mut conn), list);
    assert_eq!(scanned(vec![first.clone()], &mut conn), []);
    // Read on two connections (the download's texts while its listings are read), the same as
    // on one, whatever the filter; and so is the scan of a filter's responses alone.
    let mut second = conn_for(&app);
    let region = &countries.get(&first.iso3).unwrap().region_code;
    for filter in [
        Filter::default(),
        Filter {
            region: Some(region.clone()),
            ..Default::default()
        },
        Filter {
            include_drafts: true,
            ..Default::default()
        },
        Filter {
            include_drafts: true,
            region: Some(region.clone()),
            ..Default::default()
        },
        Filter {
            accepted_only: true,
            ..Default::default()
        },
    ] {
        let one = practices::compendium(&mut conn, &survey, &countries, &filter, "en").unwrap();
        assert!(
            filter.accepted_only || one.iter().any(|p| p.listing.iso3 == first.iso3),
            "{filter:?}"
        );
        let two = practices::compendium_on_two(
            &mut conn,
            &mut second,
            &survey,
            &countries,
            &filter,
            "en",
        )
        .unwrap();
        assert_eq!(two, one, "{filter:?}");
        let listed: Vec<_> = one.iter().map(|p| p.listing.clone()).collect();
        let scanned =
            practices::practices_reading(&mut conn, &survey, &countries, &filter, listed, "en", 0)
                .unwrap();
        assert_eq!(scanned, one, "{filter:?}");
    }
    // A listing read before the second version counted (a page's listings may come from the
    // cache) is not shown with the second version's answers: its citation differs.
    assert_eq!(
        practices::practices(
            &mut conn,
            &survey,
            &countries,
            &Filter::default(),
            vec![first.clone()],
            "en"
        )
        .unwrap(),
        []
    );
    // Nor is one whose citation changed in place since (drafts included: live answers).
    let named = list
        .iter()
        .find(|p| p.listing.citable && &*p.listing.question == "gp1_description")
        .unwrap()
        .clone();
    diesel::sql_query(format!(
        "UPDATE version_answers SET value = 'no' WHERE response_id = '{}' AND question_id = 'gp1_cite'",
        named.listing.response_id
    ))
    .execute(&mut conn)
    .unwrap();
    assert_eq!(
        practices::practices(
            &mut conn,
            &survey,
            &countries,
            &Filter::default(),
            vec![named.listing.clone()],
            "en"
        )
        .unwrap(),
        []
    );
    diesel::sql_query(format!(
        "UPDATE version_answers SET value = 'yes' WHERE response_id = '{}' AND question_id = 'gp1_cite'",
        named.listing.response_id
    ))
    .execute(&mut conn)
    .unwrap();
    // Every counted answer, read without the compendium's code, by response.
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT a.response_id, a.question_id, a.item, a.value FROM version_answers a \
         JOIN responses r ON r.id = a.response_id AND a.version = r.counted_version \
         WHERE r.survey_id = 'coherence-2008' ORDER BY a.response_id, a.question_id, a.item",
    )
    .load(&mut conn)
    .unwrap();
    let items = |response: &str, question: &str| -> Vec<coherence::survey::answer::Item> {
        rows.iter()
            .filter(|r| r.response_id == response && r.question_id == question)
            .map(|r| coherence::survey::answer::Item {
                item: r.item.clone(),
                value: r.value.clone(),
                num: None,
            })
            .collect()
    };
    let mut expected_count = 0;
    let mut seen_multiple_themes = false;
    let mut seen = (false, false);
    for q in survey.questions() {
        let Some(Marker::GoodPractice {
            themes,
            themes_from,
            cite_question,
            related,
        }) = &q.marker
        else {
            continue;
        };
        let answered: Vec<&Row> = rows
            .iter()
            .filter(|r| r.question_id == q.id && r.item.is_empty())
            .collect();
        expected_count += answered.len();
        let of_q: Vec<&practices::Practice> = list
            .iter()
            .filter(|p| *p.listing.question == *q.id)
            .collect();
        assert_eq!(of_q.len(), answered.len(), "{}: every practice once", q.id);
        for p in &of_q {
            let id = p.listing.response_id.as_str();
            let text = items(id, &q.id);
            assert_eq!(p.text, text[0].value);
            let citable = cite_question
                .as_ref()
                .is_some_and(|c| items(id, c).iter().any(|i| i.value == "yes"));
            assert_eq!(p.listing.citable, citable);
            let country = countries.get(&p.listing.iso3).unwrap();
            let attribution = if citable {
                country.name("en").to_string()
            } else {
                format!("a government in {}", country.subregion("en"))
            };
            assert_eq!(*p.listing.attribution, *attribution);
            let mut expected_themes = themes.clone();
            if let Some(from) = themes_from {
                let picker = survey.question(from).unwrap();
                for it in items(id, from) {
                    let code = if it.item.is_empty() {
                        &it.value
                    } else {
                        &it.item
                    };
                    if let Some(th) = picker
                        .kind
                        .options()
                        .iter()
                        .find(|o| &o.code == code)
                        .and_then(|o| o.theme.clone())
                    {
                        if !expected_themes.contains(&th) {
                            expected_themes.push(th);
                        }
                    }
                }
            }
            seen_multiple_themes |= expected_themes.len() > 1;
            assert_eq!(p.listing.themes, expected_themes, "{id}");
            let name_of = |code: &str| countries.get(code).unwrap().name("en").to_string();
            let expected_related: Vec<(String, String)> = related
                .iter()
                .map(|r| survey.question(r).unwrap())
                .filter(|rq| {
                    let partner = rq.kind == coherence::survey::QuestionKind::Country;
                    if partner && !items(id, &rq.id).is_empty() {
                        if citable {
                            seen.0 = true;
                        } else {
                            seen.1 = true;
                        }
                    }
                    citable || !partner
                })
                .filter_map(|rq| {
                    let its = items(id, &rq.id);
                    (!its.is_empty()).then(|| {
                        (
                            rq.text.get("en").to_string(),
                            coherence::survey::display::display_value(rq, &its, "en", &name_of),
                        )
                    })
                })
                .collect();
            assert_eq!(p.related, expected_related, "{id}");
        }
        // The order: region, sub-region, named first, attribution, then response.
        let keys: Vec<_> = of_q
            .iter()
            .map(|p| {
                (
                    p.listing.region.as_ref(),
                    p.listing.subregion.as_ref(),
                    !p.listing.citable,
                    p.listing.attribution.as_ref(),
                    p.listing.response_id.as_str(),
                )
            })
            .collect();
        assert!(keys.is_sorted(), "{}: {keys:?}", q.id);
    }
    assert_eq!(list.len(), expected_count);
    assert!(list.len() > 20, "{} practices", list.len());
    assert!(seen_multiple_themes, "a practice with several themes");
    assert!(
        seen.0 && seen.1,
        "partner countries of practices named and not named: {seen:?}"
    );
    // A listing of a version that no longer counts is left out even where its citation is
    // the same in the version that counts now: its text is that version's only.
    let other = list
        .iter()
        .find(|p| p.listing.version == 1 && &*p.listing.question == "gp1_description")
        .unwrap()
        .listing
        .clone();
    let oid = &other.response_id;
    for statement in [
        second_version(oid),
        first_version_answers(
            oid,
            "response_id, 2, question_id, item, \
             CASE WHEN question_id = 'gp1_description' THEN 'Rewritten' ELSE value END, num",
            "TRUE",
        ),
        format!("UPDATE responses SET counted_version = 2 WHERE id = '{oid}'"),
    ] {
        diesel::sql_query(&statement).execute(&mut conn).unwrap();
    }
    let read = |conn: &mut db::DbConn, listing: &practices::Listing| {
        practices::practices(
            conn,
            &survey,
            &countries,
            &Filter::default(),
            vec![listing.clone()],
            "en",
        )
        .unwrap()
    };
    assert_eq!(read(&mut conn, &other), []);
    let now = practices::listings(&mut conn, &survey, &countries, &Filter::default(), "en")
        .unwrap()
        .into_iter()
        .find(|l| &l.response_id == oid && &*l.question == "gp1_description")
        .unwrap();
    assert_eq!(now.version, 2);
    assert_eq!(read(&mut conn, &now)[0].text, "Rewritten");
    app.stop().await;
}

/// The compendium's listings the database keeps (`version_practices`, by triggers on the
/// versions' answers; `practice_roles`, written at start) equal those computed from the
/// answers: after real submissions of two shipped surveys whose practice questions share
/// their ids, then after each kind of write the triggers watch, made directly in SQL (a new
/// version counted, an answer changed in place, a theme removed, a question renamed and back,
/// a recall, an acceptance), under every filter that reads them; and they are what is read.
async fn the_kept_listings_equal_those_computed_from_the_answers_after_every_kind_of_write(
    backend: Backend,
) {
    use diesel::RunQueryDsl;
    use practices::ListingsFrom;
    let (app, catalog) = on_shipped_surveys(backend).await;
    let survey = catalog.get("coherence-2008").unwrap().clone();
    let other = catalog.get("coherence-2010").unwrap().clone();
    let countries = Countries::load().unwrap();
    let mut conn = conn_for(&app);
    coherence::results::demo::generate(&mut conn, &survey, &countries, 40, 5).unwrap();
    coherence::results::demo::generate(&mut conn, &other, &countries, 40, 6).unwrap();
    let filters = [
        Filter::default(),
        Filter {
            accepted_only: true,
            ..Filter::default()
        },
        Filter {
            region: Some("142".to_string()),
            ..Filter::default()
        },
        // The counted versions' listings kept, the drafts' computed from their live answers.
        Filter {
            include_drafts: true,
            ..Filter::default()
        },
        Filter {
            include_drafts: true,
            region: Some("142".to_string()),
            ..Filter::default()
        },
    ];
    let same = |conn: &mut coherence::db::DbConn, step: &str| {
        // The download reads each kept listing's text beside it: its version's answer to the
        // practice question, by a query of the test's own.
        assert_eq!(kept_texts_wrong(conn), 0, "{step}");
        for s in [&survey, &other] {
            for f in &filters {
                let mut read =
                    |from| practices::listings_reading(conn, s, &countries, f, "en", from).unwrap();
                let (kept, computed) = (read(ListingsFrom::Kept), read(ListingsFrom::Answers));
                assert_eq!(kept, computed, "{step}: {} {f:?}", s.id);
                if f.include_drafts {
                    // Beside the counted versions' listings, one for each practice a draft
                    // answered (its live answers, version 0), by a query of the test's own.
                    let counted =
                        practices::listings(conn, s, &countries, &f.counted_only(), "en").unwrap();
                    let (of_drafts, of_counted): (Vec<_>, Vec<_>) =
                        kept.iter().partition(|l| l.version == 0);
                    let counted: Vec<&practices::Listing> = counted.iter().collect();
                    assert_eq!(of_counted, counted, "{step}: {} {f:?}", s.id);
                    let listed: std::collections::BTreeSet<(String, String)> = of_drafts
                        .iter()
                        .map(|l| (l.response_id.clone(), l.question.to_string()))
                        .collect();
                    assert_eq!(listed.len(), of_drafts.len(), "{step}: {} {f:?}", s.id);
                    assert_eq!(
                        listed,
                        drafts_practices(conn, s, f.region.as_deref()),
                        "{step}: {} {f:?}",
                        s.id
                    );
                }
            }
        }
    };
    assert!(!drafts_practices(&mut conn, &survey, None).is_empty());
    same(&mut conn, "submitted");
    // The download's compendium with drafts included, the drafts' practices read on a second
    // connection in one statement and merged with the counted versions': the same practices,
    // in the same order, as read on one connection; and so are the page's listings.
    let mut second = conn_for(&app);
    for f in filters.iter().filter(|f| f.include_drafts) {
        for s in [&survey, &other] {
            let one = practices::compendium(&mut conn, s, &countries, f, "en").unwrap();
            let two = practices::compendium_on_two(&mut conn, &mut second, s, &countries, f, "en")
                .unwrap();
            assert!(one.iter().any(|p| p.listing.version == 0), "{} {f:?}", s.id);
            assert!(one.iter().any(|p| p.listing.version > 0), "{} {f:?}", s.id);
            assert_eq!(two, one, "{} {f:?}", s.id);
            // And the page's listings, the drafts' read on the second connection.
            let listed: Vec<_> = one.iter().map(|p| p.listing.clone()).collect();
            let on_two =
                practices::listings_on_two(&mut conn, Some(&mut second), s, &countries, f, "en")
                    .unwrap();
            assert_eq!(on_two, listed, "{} {f:?}", s.id);
        }
    }
    let listed =
        practices::listings(&mut conn, &survey, &countries, &Filter::default(), "en").unwrap();
    assert!(listed.len() > 10, "{}", listed.len());
    let first = listed
        .iter()
        .find(|l| &*l.question == "gp1_description")
        .unwrap()
        .clone();
    let id = first.response_id.as_str();
    let named = listed
        .iter()
        .find(|l| l.citable && l.response_id != id)
        .unwrap()
        .clone();
    let steps: Vec<(&str, Vec<String>)> = vec![
        (
            "a second version counted, with other themes and citation",
            second_version_counted(id, !first.citable, &["diaspora"]),
        ),
        (
            "a practice's text changed in place",
            vec![format!(
                "UPDATE version_answers SET value = 'Changed in place' WHERE response_id = '{id}' \
                 AND question_id = 'gp1_description' AND item = ''"
            )],
        ),
        (
            "a citation changed in place",
            vec![format!(
                "UPDATE version_answers SET value = 'no' WHERE response_id = '{}' \
                 AND question_id = 'gp1_cite'",
                named.response_id
            )],
        ),
        (
            "a theme removed",
            vec![format!(
                "DELETE FROM version_answers WHERE response_id = '{id}' AND version = 2 \
                 AND question_id = 'gp1_themes'"
            )],
        ),
        (
            "the practice question renamed",
            vec![format!(
                "UPDATE version_answers SET question_id = 'gp1_renamed' WHERE response_id = '{}' \
                 AND question_id = 'gp1_description'",
                named.response_id
            )],
        ),
        (
            "and back",
            vec![format!(
                "UPDATE version_answers SET question_id = 'gp1_description' WHERE response_id = '{}' \
                 AND question_id = 'gp1_renamed'",
                named.response_id
            )],
        ),
        (
            "a recall",
            vec![format!(
                "UPDATE responses SET counted_version = NULL WHERE id = '{}'",
                named.response_id
            )],
        ),
        (
            "an acceptance",
            vec![format!(
                "UPDATE responses SET status = 'accepted' WHERE id = '{id}'"
            )],
        ),
    ];
    for (step, statements) in steps {
        for statement in statements {
            diesel::sql_query(&statement).execute(&mut conn).unwrap();
        }
        same(&mut conn, step);
    }
    let accepted = Filter {
        accepted_only: true,
        ..Filter::default()
    };
    let listed = practices::listings(&mut conn, &survey, &countries, &accepted, "en").unwrap();
    assert!(listed.iter().any(|l| l.response_id == id && l.version == 2));
    // The download's practices, read with the kept listings and their texts.
    let download = |conn: &mut coherence::db::DbConn, second: &mut coherence::db::DbConn| {
        let f = &Filter::default();
        let one = practices::compendium(conn, &survey, &countries, f, "en").unwrap();
        let two = practices::compendium_on_two(conn, second, &survey, &countries, f, "en").unwrap();
        assert_eq!(two, one);
        one
    };
    // Each practice with its counted version's text, not another version's of its response
    // (the superseded one written last, then the counted one).
    for (version, text) in [(1, "Superseded text"), (2, "Counted text")] {
        diesel::sql_query(format!(
            "UPDATE version_answers SET value = '{text}' WHERE response_id = '{id}' \
             AND version = {version} AND question_id = 'gp1_description' AND item = ''"
        ))
        .execute(&mut conn)
        .unwrap();
    }
    let kept = download(&mut conn, &mut second);
    assert!(kept.len() > 10, "{}", kept.len());
    let of_id = kept
        .iter()
        .find(|p| p.listing.response_id == id && &*p.listing.question == "gp1_description")
        .unwrap();
    assert_eq!(
        (of_id.listing.version, of_id.text.as_str()),
        (2, "Counted text")
    );
    assert!(kept.iter().all(|p| p.text != "Superseded text"));
    // A listing whose kept text is gone by the time the download reads the texts (its response
    // counted at another version in between): the texts are read from the answers instead.
    diesel::sql_query(format!(
        "DELETE FROM version_practice_texts WHERE response_id = '{id}' AND version = 2"
    ))
    .execute(&mut conn)
    .unwrap();
    assert_eq!(download(&mut conn, &mut second), kept);
    // What is read is what the database keeps: without it, no listing.
    diesel::sql_query("DELETE FROM version_practices")
        .execute(&mut conn)
        .unwrap();
    assert_eq!(
        practices::listings(&mut conn, &survey, &countries, &Filter::default(), "en").unwrap(),
        []
    );
    // Roles written again (a changed definition, or a database the server never started
    // on): every version's listings computed again, and read from the answers until then.
    diesel::sql_query("DELETE FROM practice_roles")
        .execute(&mut conn)
        .unwrap();
    assert!(
        !practices::listings(&mut conn, &survey, &countries, &Filter::default(), "en")
            .unwrap()
            .is_empty()
    );
    // The download too, texts and all, on one connection and on two.
    assert_eq!(download(&mut conn, &mut second), kept);
    assert!(practices::keep_roles(&mut conn, &survey).unwrap());
    assert!(practices::keep_roles(&mut conn, &other).unwrap());
    assert!(!practices::keep_roles(&mut conn, &survey).unwrap());
    same(&mut conn, "roles written again");
    // Migration 34 fills the texts of the listings kept before it; its down.sql leaves
    // migration 26's triggers working (a text changed in between).
    // (The later ones are reverted first, down to 34, and applied again with it.)
    let mut reverted: Vec<String> = Vec::new();
    while reverted.last().map(String::as_str) != Some("20261204000034") {
        reverted.push(coherence::db::revert_last_migration(&mut conn).unwrap());
        assert!(
            reverted.len() <= 10,
            "migration 34 is among the last ten: {reverted:?}"
        );
    }
    assert!(reverted.len() >= 2, "{reverted:?}");
    diesel::sql_query(format!(
        "UPDATE version_answers SET value = 'Changed before migration 34' \
         WHERE response_id = '{id}' AND question_id = 'gp1_description' AND item = ''"
    ))
    .execute(&mut conn)
    .unwrap();
    assert_eq!(
        coherence::db::run_migrations(&mut conn).unwrap().len(),
        reverted.len()
    );
    same(&mut conn, "texts filled by the migration");
    assert!(download(&mut conn, &mut second)
        .iter()
        .any(|p| p.text == "Changed before migration 34"));
    assert_eq!(kept_texts_wrong(&mut conn), 0);
}

/// How many kept listings (`version_practices`) have no kept text (`version_practice_texts`)
/// equal to their version's answer to the practice question, plus how many kept texts are
/// not a kept listing's.
fn kept_texts_wrong(conn: &mut coherence::db::DbConn) -> i64 {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut count =
        |sql: &str| -> i64 { diesel::sql_query(sql).get_result::<Count>(conn).unwrap().n };
    let kept = count("SELECT COUNT(*) AS n FROM version_practices");
    assert!(kept > 0, "no kept listing to compare");
    let same_key = "t.survey_id = l.survey_id AND t.practice_id = l.practice_id \
                    AND t.response_id = l.response_id AND t.version = l.version";
    let without_text = count(&format!(
        "SELECT COUNT(*) AS n FROM version_practices l WHERE NOT EXISTS (SELECT 1 \
         FROM version_practice_texts t JOIN version_answers va ON va.response_id = t.response_id \
         AND va.version = t.version AND va.question_id = t.practice_id AND va.item = '' \
         WHERE {same_key} AND va.value = t.text)"
    ));
    let without_listing = count(&format!(
        "SELECT COUNT(*) AS n FROM version_practice_texts t WHERE NOT EXISTS (SELECT 1 \
         FROM version_practices l WHERE {same_key})"
    ));
    without_text + without_listing
}

/// The (response, practice question) pairs of the drafts' practices: a draft (no counted
/// version, a section saved) of the survey answered a good-practice question (a visible live
/// answer), in the region if one is given.
fn drafts_practices(
    conn: &mut coherence::db::DbConn,
    survey: &coherence::survey::Survey,
    region: Option<&str>,
) -> std::collections::BTreeSet<(String, String)> {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Pair {
        #[diesel(sql_type = diesel::sql_types::Text)]
        response_id: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        question_id: String,
    }
    let questions: Vec<String> = survey
        .questions()
        .filter(|q| {
            matches!(
                q.marker,
                Some(coherence::survey::Marker::GoodPractice { .. })
            )
        })
        .map(|q| format!("'{}'", q.id))
        .collect();
    assert!(!questions.is_empty());
    let region = region
        .map(|r| format!(" AND c.region_code = '{r}'"))
        .unwrap_or_default();
    diesel::sql_query(format!(
        "SELECT a.response_id, a.question_id FROM answers a \
         JOIN responses r ON r.id = a.response_id JOIN countries c ON c.iso3 = r.country_iso3 \
         WHERE r.survey_id = '{}' AND r.counted_version IS NULL AND a.visible = TRUE \
         AND a.item = '' AND a.question_id IN ({}) \
         AND r.id IN (SELECT response_id FROM section_states){region}",
        survey.id,
        questions.join(", ")
    ))
    .load::<Pair>(conn)
    .unwrap()
    .into_iter()
    .map(|p| (p.response_id, p.question_id))
    .collect()
}

/// With drafts included, a question's counts are its tallies (the counted versions) and the
/// drafts' live answers added to them: for every choice question of the shipped survey, by
/// region, they equal the counts computed from every answer that counts (each counted
/// version's, each draft's live ones, one union as the results read them before), and so do
/// the responses asked and answering. Then again after a submitted response is returned and
/// changed (its live answers differ from its counted version, which still counts) and a draft
/// hides a question.
async fn counts_with_drafts_equal_those_computed_from_every_answer_that_counts(backend: Backend) {
    use coherence::survey::QuestionKind;
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        grp: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let (app, catalog) = on_shipped_surveys(backend).await;
    let survey = catalog.get("coherence-2008").unwrap().clone();
    let countries = Countries::load().unwrap();
    let mut conn = conn_for(&app);
    let summary =
        coherence::results::demo::generate(&mut conn, &survey, &countries, 80, 5).unwrap();
    assert!(summary.drafts > 5 && summary.submitted > 5, "{summary:?}");
    let drafts = Filter {
        include_drafts: true,
        ..Default::default()
    };
    // Every answer that counts, with its response and country.
    let counted = "FROM (SELECT va.response_id AS response_id, va.question_id AS question_id, \
         va.item AS item, va.value AS value FROM version_answers va JOIN responses rv \
         ON rv.id = va.response_id AND va.version = rv.counted_version \
         UNION ALL SELECT la.response_id, la.question_id, la.item, la.value FROM answers la \
         JOIN responses rl ON rl.id = la.response_id \
         WHERE rl.counted_version IS NULL AND la.visible = TRUE) a \
         JOIN responses r ON r.id = a.response_id JOIN countries c ON c.iso3 = r.country_iso3 \
         WHERE r.survey_id = 'coherence-2008' AND (r.counted_version IS NOT NULL \
         OR EXISTS (SELECT 1 FROM section_states s WHERE s.response_id = r.id))";
    let compare = |conn: &mut db::DbConn, when: &str| {
        let mut questions = 0;
        for q in survey.questions() {
            let (key, items) = match &q.kind {
                QuestionKind::MultipleChoice { .. } => ("a.item", "a.item NOT LIKE '#%'"),
                QuestionKind::Matrix { .. } => ("a.item || '=' || a.value", "a.item NOT LIKE '#%'"),
                QuestionKind::SingleChoice { .. } | QuestionKind::YesNo => {
                    ("a.value", "a.item = ''")
                }
                _ => continue,
            };
            questions += 1;
            let grouping = Some(Grouping::Region);
            let ours = aggregate::choice_counts(conn, &survey.id, q, &drafts, grouping).unwrap();
            let expected: Vec<Row> = diesel::sql_query(format!(
                "SELECT c.region_code AS grp, {key} AS value, COUNT(*) AS n {counted} \
                 AND a.question_id = '{}' AND {items} GROUP BY c.region_code, {key}",
                q.id
            ))
            .load(conn)
            .unwrap();
            let expected: Vec<(String, String, i64)> = expected
                .into_iter()
                .map(|r| (r.grp, r.value, r.n))
                .collect();
            assert_eq!(sorted(ours), sorted(expected), "{when}: {}", q.id);

            let ours =
                aggregate::asked_and_answered(conn, &survey.id, &q.id, &drafts, grouping).unwrap();
            let answered: Vec<Row> = diesel::sql_query(format!(
                "SELECT c.region_code AS grp, '' AS value, COUNT(DISTINCT a.response_id) AS n \
                 {counted} AND a.question_id = '{}' GROUP BY c.region_code",
                q.id
            ))
            .load(conn)
            .unwrap();
            let asked: Vec<Row> = diesel::sql_query(format!(
                "SELECT c.region_code AS grp, '' AS value, COUNT(*) AS n FROM responses r \
                 JOIN countries c ON c.iso3 = r.country_iso3 WHERE r.survey_id = 'coherence-2008' \
                 AND (r.counted_version IS NOT NULL OR EXISTS (SELECT 1 FROM section_states s \
                 WHERE s.response_id = r.id)) AND NOT EXISTS (SELECT 1 FROM hidden_questions h \
                 WHERE h.response_id = r.id AND h.question_id = '{}') GROUP BY c.region_code",
                q.id
            ))
            .load(conn)
            .unwrap();
            let mut expected: std::collections::BTreeMap<String, (i64, i64)> = Default::default();
            for r in asked {
                expected.entry(r.grp).or_default().0 = r.n;
            }
            for r in answered {
                expected.entry(r.grp).or_default().1 = r.n;
            }
            let ours: std::collections::BTreeMap<String, (i64, i64)> = ours
                .into_iter()
                .filter(|(_, (a, n))| *a > 0 || *n > 0)
                .collect();
            assert_eq!(ours, expected, "{when}: asked and answered, {}", q.id);
        }
        assert!(questions > 10, "{questions} choice questions compared");
    };
    compare(&mut conn, "generated");

    // A submitted response returned and changed: its live answers are not its counted version.
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
    }
    let submitted: Vec<Id> = diesel::sql_query(
        "SELECT id FROM responses WHERE survey_id = 'coherence-2008' \
         AND counted_version IS NOT NULL ORDER BY id LIMIT 1",
    )
    .load(&mut conn)
    .unwrap();
    let changed = &submitted[0].id;
    for statement in [
        format!("UPDATE responses SET status = 'returned' WHERE id = '{changed}'"),
        format!(
            "UPDATE answers SET value = CASE WHEN value = 'yes' THEN 'no' ELSE 'yes' END \
             WHERE response_id = '{changed}' AND item = '' AND value IN ('yes', 'no')"
        ),
        format!("DELETE FROM answers WHERE response_id = '{changed}' AND item <> ''"),
    ] {
        diesel::sql_query(statement).execute(&mut conn).unwrap();
    }
    // A draft whose condition now hides a question it answered.
    let draft: Vec<Id> = diesel::sql_query(
        "SELECT r.id AS id FROM responses r WHERE r.survey_id = 'coherence-2008' \
         AND r.counted_version IS NULL AND EXISTS (SELECT 1 FROM section_states s \
         WHERE s.response_id = r.id) ORDER BY r.id LIMIT 1",
    )
    .load(&mut conn)
    .unwrap();
    let hidden = &draft[0].id;
    diesel::sql_query(format!(
        "UPDATE answers SET visible = FALSE WHERE response_id = '{hidden}' \
         AND question_id IN (SELECT question_id FROM answers WHERE response_id = '{hidden}' \
         ORDER BY question_id LIMIT 3)"
    ))
    .execute(&mut conn)
    .unwrap();
    compare(&mut conn, "after a return and a hidden answer");
    app.stop().await;
}

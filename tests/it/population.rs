//! Who a survey is asked of (`population`): the dashboard's denominators, and the refusals of
//! `token issue`, contacts import and `demo-data` for codes outside it. On both backends.

use std::path::Path;

use coherence::db::{self, DbUrl};
use coherence::reference::Countries;
use coherence::results::aggregate::{self, Filter, Grouping};
use diesel::sql_types::Text;
use diesel::RunQueryDsl;

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    the_dashboard_asks_the_193_member_states_and_rates_regions_over_them,
    token_issue_and_contacts_import_refuse_codes_outside_the_population,
    demo_data_answers_only_from_the_population,
);

const OWNER: &str = "owner@population.example";
const ADMIN: &str = "admin@population.example";
const PASSWORD: &str = "a long owner passphrase";

/// A one-question survey `id` with an optional `population` line.
fn write_survey(dir: &Path, id: &str, extra: &str) {
    std::fs::write(
        dir.join(format!("{id}.toml")),
        format!(
            "id = \"{id}\"\ntitle = \"Asked\"\n{extra}\n[[sections]]\nid = \"s\"\ntitle = \"S\"\n\
             [[sections.questions]]\nid = \"ok\"\ntype = \"yes_no\"\ntext = \"Is it so?\"\n"
        ),
    )
    .unwrap();
}

/// A directory of surveys: `asked` (default population: the UN Member States), `forum` (a
/// list file of three countries) and `orgs` (a survey of organisations).
fn surveys(root: &Path) -> std::path::PathBuf {
    let dir = root.join("surveys");
    std::fs::create_dir_all(&dir).unwrap();
    write_survey(&dir, "asked", "");
    write_survey(&dir, "forum", "population = \"forum.txt\"");
    std::fs::write(
        dir.join("forum.txt"),
        "# Countries taking part in the forum\nSWE  # Sweden\nPHL\nMEX\n",
    )
    .unwrap();
    write_survey(&dir, "orgs", "respondent_unit = \"organisation\"");
    dir
}

fn survey_of(app: &TestApp, id: &str) -> std::sync::Arc<coherence::survey::Survey> {
    let report = coherence::survey::load_paths(std::slice::from_ref(&app.surveys));
    coherence::survey::Catalog::new(report.surveys)
        .get(id)
        .unwrap()
        .clone()
}

fn pool_of(app: &TestApp) -> db::Pool {
    db::connect(&DbUrl::parse(&app.database_url).unwrap(), 1).unwrap()
}

/// Answer the survey's one question for `country` through a personal link, and submit.
async fn submit_answer(app: &TestApp, survey: &str, country: &str, answer: &str) {
    let link = app.issue_token(survey, country, "Focal point");
    let res = app.save_section(&link, "s", &[("ok", answer)]).await;
    assert_eq!(res.status, 303, "{country}: {}", res.body);
    let res = app.submit(&link).await;
    assert_eq!(res.status, 303, "{country}: {}", res.body);
}

async fn the_dashboard_asks_the_193_member_states_and_rates_regions_over_them(backend: Backend) {
    let root = tempfile::tempdir().unwrap();
    let dir = surveys(root.path());
    // First asked of every country, so that Taiwan (not a UN Member State) answers too: the
    // population of a survey may be narrowed after responses came in.
    write_survey(&dir, "asked", "population = \"all\"");
    let app = TestApp::spawn_with(backend, dir.clone()).await;
    let countries = Countries::load().unwrap();
    let members: Vec<String> = coherence::reference::un_member_states().collect();
    // 40 of the 54 African Member States submit "yes", Japan "no", Taiwan "yes".
    let african: Vec<&str> = countries
        .iter()
        .filter(|c| c.region_code == "002" && members.contains(&c.iso3))
        .map(|c| c.iso3.as_str())
        .collect();
    assert_eq!(african.len(), 54);
    for iso3 in &african[..40] {
        submit_answer(&app, "asked", iso3, "yes").await;
    }
    submit_answer(&app, "asked", "JPN", "no").await;
    submit_answer(&app, "asked", "TWN", "yes").await;
    let (database_url, app_dir) = (app.database_url.clone(), app.dir.clone());
    app.stop().await;

    // The survey now asks its default population, the 193 UN Member States.
    write_survey(&dir, "asked", "");
    let app = TestApp::start(database_url, dir, app_dir).await;
    let survey = survey_of(&app, "asked");
    assert_eq!(survey.population.len(), 193);
    let pool = pool_of(&app);
    let mut conn = pool.get().unwrap();
    let conn = &mut *conn;

    // Rates: asked is the population, per region and income group; Taiwan is not counted.
    let all = aggregate::response_rates(conn, &survey, &Filter::default(), None).unwrap();
    assert_eq!((all[0].targeted, all[0].submitted), (193, 41));
    let by_region =
        aggregate::response_rates(conn, &survey, &Filter::default(), Some(Grouping::Region))
            .unwrap();
    let by_region: Vec<(&str, i64, i64)> = by_region
        .iter()
        .map(|r| (r.grp.as_str(), r.targeted, r.submitted))
        .collect();
    assert_eq!(
        by_region,
        [
            ("002", 54, 40),
            ("009", 14, 0),
            ("019", 35, 0),
            ("142", 47, 1),
            ("150", 43, 0)
        ]
    );
    let by_income =
        aggregate::response_rates(conn, &survey, &Filter::default(), Some(Grouping::Income))
            .unwrap();
    assert_eq!(by_income.iter().map(|r| r.targeted).sum::<i64>(), 193);
    assert_eq!(by_income.iter().map(|r| r.submitted).sum::<i64>(), 41);

    // Answers: within the population Taiwan's "yes" does not count; the filter is what
    // keeps it out (it is in the database).
    let question = survey.question("ok").unwrap();
    let within = Filter::default().within(&survey);
    let counts = aggregate::choice_counts(conn, &survey.id, question, &within, None).unwrap();
    let mut counts: Vec<(String, i64)> = counts.into_iter().map(|(_, v, n)| (v, n)).collect();
    counts.sort();
    assert_eq!(counts, [("no".to_string(), 1), ("yes".to_string(), 40)]);
    let everyone =
        aggregate::choice_counts(conn, &survey.id, question, &Filter::default(), None).unwrap();
    assert_eq!(everyone.iter().map(|(_, _, n)| n).sum::<i64>(), 42);
    let asked = aggregate::asked_and_answered(conn, &survey.id, "ok", &within, None).unwrap();
    assert_eq!(asked.get("all"), Some(&(41, 41)));
    assert!(!within.admits("TWN") && within.admits("JPN"));

    // The dashboard: asked, invited, opened, in draft, submitted, accepted, rate.
    app.add_user(OWNER, PASSWORD, "owner", &["asked"]);
    app.login(OWNER, PASSWORD).await;
    let dash = app.get("/admin/surveys/asked/results").await;
    assert_eq!(dash.status, 200);
    for row in [
        "<th scope=\"row\">All countries</th><td>193</td><td>0</td><td>41</td><td>0</td><td>41</td><td>0</td><td>21%</td>",
        "<th scope=\"row\">Africa</th><td>54</td><td>0</td><td>40</td><td>0</td><td>40</td><td>0</td><td>74%</td>",
        "<th scope=\"row\">Asia</th><td>47</td><td>0</td><td>1</td><td>0</td><td>1</td><td>0</td><td>2%</td>",
    ] {
        assert!(dash.body.contains(row), "{row} in {}", dash.body);
    }
    // Exports hold the population only: Japan is there, Taiwan's kept response is not.
    for export in ["export.csv", "export.json"] {
        let page = app.get(&format!("/admin/surveys/asked/{export}")).await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("JPN"), "{export}: {}", page.body);
        assert!(!page.body.contains("TWN"), "{export}: {}", page.body);
    }
    let (ok, stdout, stderr) = run(&app, &["export", "asked", "--format", "csv"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("JPN") && !stdout.contains("TWN"),
        "{stdout}"
    );
    app.stop().await;
}

/// Run the CLI; (success, stdout, stderr).
fn run(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    let out = app.cli(args, None);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn token_issue_and_contacts_import_refuse_codes_outside_the_population(backend: Backend) {
    let root = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_with(backend, surveys(root.path())).await;

    // token issue: one line naming the code, the survey and its population.
    for (survey, country, expected) in [
        (
            "asked",
            "TWN",
            "error: TWN is not in the population of survey 'asked' (the 193 UN Member States)",
        ),
        (
            "asked",
            "vat",
            "error: VAT is not in the population of survey 'asked' (the 193 UN Member States)",
        ),
        (
            "forum",
            "NOR",
            "error: NOR is not in the population of survey 'forum' (the 3 countries of forum.txt)",
        ),
    ] {
        let (ok, stdout, stderr) = run(
            &app,
            &["token", "issue", "--survey", survey, "--country", country],
        );
        assert!(!ok, "{survey} {country}: {stdout}");
        assert_eq!(stderr.trim_end(), expected);
    }
    // Members, listed countries, and any country in a survey of organisations get a link.
    app.issue_token("asked", "SSD", "Focal point");
    app.issue_token("forum", "PHL", "Focal point");
    app.issue_unit_token("orgs", "ABW", "Department of Tourism");
    let (_, listed, _) = run(
        &app,
        &["token", "list", "--survey", "asked", "--country", "TWN"],
    );
    assert!(!listed.contains("/r/"), "no link was stored: {listed}");

    // contacts import (command line): the line and field of each refused code, nothing
    // imported.
    let csv = root.path().join("contacts.csv");
    std::fs::write(
        &csv,
        "country,name,email,language,office\n\
         SWE,Anna,anna@gov.se,en,MFA\n\
         PSE,Rami,rami@gov.example,en,MFA\n\
         twn,Lin,lin@gov.example,en,MOFA\n\
         XKX,Ana,ana@gov.example,en,MFA\n",
    )
    .unwrap();
    let shown = csv.display().to_string();
    let (ok, _, stderr) = run(&app, &["contacts", "import", "asked", &shown]);
    assert!(!ok);
    for expected in [
        format!("{shown}: line 3, country: PSE is not in the population of survey 'asked' (the 193 UN Member States)"),
        format!("{shown}: line 4, country: TWN is not in the population of survey 'asked'"),
        format!("{shown}: line 5, country: 'XKX' is not an ISO 3166-1 alpha-3 country code"),
    ] {
        assert!(stderr.contains(&expected), "{expected} in:\n{stderr}");
    }
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    let (_, exported, _) = run(&app, &["contacts", "export", "asked"]);
    assert!(!exported.contains("anna@gov.se"), "{exported}");
    // The same file is fine for a survey of organisations (every country), but not for the
    // forum, whose list has Sweden only of these.
    let (ok, _, stderr) = run(&app, &["contacts", "import", "orgs", &shown]);
    assert!(!ok, "XKX is still not a country code");
    assert!(!stderr.contains("population"), "{stderr}");
    std::fs::write(
        &csv,
        "country,name,email,language,office\nSWE,Anna,anna@gov.se,en,MFA\nMEX,Luis,luis@gob.mx,es,SRE\nNOR,Ola,ola@gov.no,en,MFA\n",
    )
    .unwrap();
    let (ok, _, stderr) = run(&app, &["contacts", "import", "forum", &shown]);
    assert!(!ok);
    assert!(
        stderr.contains("line 4, country: NOR is not in the population of survey 'forum' (the 3 countries of forum.txt)"),
        "{stderr}"
    );

    // contacts upload (web, by an administrator): the same message on the page, nothing
    // imported.
    app.add_user(ADMIN, PASSWORD, "admin", &[]);
    let res = app.login(ADMIN, PASSWORD).await;
    assert_eq!(res.status, 303, "{}", res.body);
    let res = app
        .upload_contacts(
            "asked",
            "country,name,email,language,office\nSWE,Anna,anna@gov.se,en,MFA\nTWN,Lin,lin@gov.example,en,MOFA\n",
        )
        .await;
    assert_eq!(res.status, 422);
    assert!(
        res.body.contains("line 3, country: TWN is not in the population of survey &#x27;asked&#x27; (the 193 UN Member States)"),
        "{}",
        res.body
    );
    let export = app.get("/admin/surveys/asked/contacts.csv").await;
    assert!(!export.body.contains("anna@gov.se"), "{}", export.body);
    app.stop().await;
}

#[derive(diesel::QueryableByName)]
struct Country {
    #[diesel(sql_type = Text)]
    iso3: String,
}

async fn demo_data_answers_only_from_the_population(backend: Backend) {
    let root = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_with(backend, surveys(root.path())).await;
    let (ok, stdout, stderr) = run(&app, &["demo-data", "asked", "--countries", "190"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("demo responses for 190 countries"),
        "{stdout}"
    );
    let (ok, stdout, stderr) = run(&app, &["demo-data", "forum", "--countries", "10"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("demo responses for 3 countries"),
        "{stdout}"
    );

    let asked = survey_of(&app, "asked");
    let forum = survey_of(&app, "forum");
    let pool = pool_of(&app);
    let mut conn = pool.get().unwrap();
    let answered = |conn: &mut db::PooledConn, survey: &str| -> Vec<String> {
        diesel::sql_query(format!(
            "SELECT DISTINCT country_iso3 AS iso3 FROM responses WHERE survey_id = '{survey}' ORDER BY country_iso3"
        ))
        .load::<Country>(&mut **conn)
        .unwrap()
        .into_iter()
        .map(|c| c.iso3)
        .collect()
    };
    let from_asked = answered(&mut conn, "asked");
    assert_eq!(from_asked.len(), 190);
    assert!(from_asked.iter().all(|c| asked.population.contains(c)));
    assert_eq!(answered(&mut conn, "forum"), ["MEX", "PHL", "SWE"]);
    assert!(forum.population.codes().eq(["MEX", "PHL", "SWE"]));
    // The rates: the 193 asked, and every submitted response among them.
    let submitted: Vec<String> = diesel::sql_query(
        "SELECT country_iso3 AS iso3 FROM responses WHERE survey_id = 'asked' AND status = 'submitted'",
    )
    .load::<Country>(&mut *conn)
    .unwrap()
    .into_iter()
    .map(|c| c.iso3)
    .collect();
    assert!(submitted.len() > 100, "{} submitted", submitted.len());
    let rates = aggregate::response_rates(&mut conn, &asked, &Filter::default(), None).unwrap();
    assert_eq!(rates[0].targeted, 193);
    assert_eq!(rates[0].submitted, submitted.len() as i64);
    app.stop().await;
}

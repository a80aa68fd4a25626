//! A survey answered per organisation (`respondent_unit = "organisation"`): several
//! organisations of one country each keep their own response, and results, exports, the
//! compendium and the status table count and name organisations. On both backends.

use coherence::db::{self, DbUrl};
use coherence::reference::Countries;
use coherence::results::aggregate::{self, Filter, Grouping};
use coherence::results::practices;

use crate::helpers::{Backend, SmtpServer, TestApp};
use crate::on_both_backends;

on_both_backends!(
    organisations_of_one_country_answer_separately,
    contacts_of_a_survey_of_organisations_name_their_office,
    a_large_compendium_is_paged_and_filtered_by_theme,
    writes_of_many_organisations_at_once_in_opposite_orders_all_commit,
);

const OWNER: &str = "owner@institutions.example";
const PASSWORD: &str = "a long owner passphrase";

/// The organisations survey as the app loaded it.
fn institutions(app: &TestApp) -> std::sync::Arc<coherence::survey::Survey> {
    let report = coherence::survey::load_paths(std::slice::from_ref(&app.surveys));
    coherence::survey::Catalog::new(report.surveys)
        .get("institutions")
        .unwrap()
        .clone()
}

/// A connection pool of its own on the app's database.
fn pool_of(app: &TestApp) -> db::Pool {
    db::connect(&DbUrl::parse(&app.database_url).unwrap(), 1).unwrap()
}

async fn submit(app: &TestApp, link: &str) {
    let res = app.submit(link).await;
    assert_eq!(res.status, 303, "submit {link}: {}", res.body);
}

/// Questions conditioned on an answer of the same section appear once it is saved, as in a
/// browser: "practice" is saved with its yes first.
async fn save(app: &TestApp, link: &str, section: &str, fields: &[(&str, &str)]) {
    if section == "practice" {
        let res = app
            .save_section(link, section, &[("has_practice", "yes")])
            .await;
        assert_eq!(res.status, 303, "{link} {section}: {}", res.body);
    }
    let res = app.save_section(link, section, fields).await;
    assert_eq!(res.status, 303, "{link} {section}: {}", res.body);
}

async fn organisations_of_one_country_answer_separately(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // The unit is required by a survey of organisations and refused by a country survey.
    let out = app.cli(
        &[
            "token",
            "issue",
            "--survey",
            "institutions",
            "--country",
            "PHL",
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--unit"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = app.cli(
        &[
            "token",
            "issue",
            "--survey",
            "fixture",
            "--country",
            "PHL",
            "--unit",
            "Ministry",
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("once per country"));

    let labour = app.issue_unit_token("institutions", "PHL", "Ministry of Labour");
    let labour_too = app.issue_unit_token("institutions", "PHL", "Ministry of Labour");
    let bank = app.issue_unit_token("institutions", "PHL", "Central Bank");
    let swe = app.issue_unit_token("institutions", "SWE", "Migration Agency");

    let overview = app.get(&labour).await;
    assert_eq!(overview.status, 200);
    assert!(
        overview.body.contains("Ministry of Labour, Philippines"),
        "the organisation is named"
    );
    save(
        &app,
        &labour,
        "profile",
        &[
            ("kind", "ministry"),
            ("staff", "40"),
            ("areas", "labour"),
            ("areas", "data"),
        ],
    )
    .await;
    // A second official of the same ministry shares its response...
    let shared = app.get(&format!("{labour_too}/s/profile")).await;
    assert_eq!(shared.field_value("staff").as_deref(), Some("40"));
    // ...but another organisation of the same country has its own, empty one.
    let other = app.get(&format!("{bank}/s/profile")).await;
    assert_eq!(other.status, 200);
    assert_eq!(other.field_value("staff").as_deref(), Some(""));
    save(
        &app,
        &labour,
        "practice",
        &[
            ("has_practice", "yes"),
            ("practice_theme", "labour"),
            (
                "practice_text",
                "Pre-departure orientation for every worker",
            ),
            ("practice_cite", "yes"),
            ("needs", "data"),
        ],
    )
    .await;
    submit(&app, &labour).await;
    save(
        &app,
        &bank,
        "profile",
        &[
            ("kind", "other"),
            ("kind.other", "Central bank"),
            ("areas", "remittances"),
        ],
    )
    .await;
    save(
        &app,
        &bank,
        "practice",
        &[
            ("has_practice", "yes"),
            ("practice_theme", "remittances"),
            ("practice_text", "Remittance price comparison website"),
            ("practice_cite", "no"),
            ("needs", "labour"),
        ],
    )
    .await;
    submit(&app, &bank).await;
    save(
        &app,
        &swe,
        "profile",
        &[("kind", "agency"), ("areas", "coordination")],
    )
    .await;

    let survey = institutions(&app);
    let countries = Countries::load().unwrap();
    let pool = pool_of(&app);
    let mut conn = pool.get().unwrap();
    let conn = &mut *conn;
    let submitted = Filter::default();
    // Three organisations were reached; two submitted, one drafts.
    let rates = aggregate::response_rates(conn, &survey, &submitted, None).unwrap();
    let r = &rates[0];
    assert_eq!((r.targeted, r.opened, r.drafts, r.submitted), (3, 3, 1, 2));
    let by_region =
        aggregate::response_rates(conn, &survey, &submitted, Some(Grouping::Region)).unwrap();
    let asia = by_region.iter().find(|r| r.grp == "142").unwrap();
    let europe = by_region.iter().find(|r| r.grp == "150").unwrap();
    assert_eq!((asia.targeted, asia.submitted), (2, 2));
    assert_eq!((europe.targeted, europe.submitted), (1, 0));
    // Each organisation counts once.
    let kind = survey.question("kind").unwrap();
    let mut counts = aggregate::choice_counts(conn, &survey.id, kind, &submitted, None).unwrap();
    counts.sort();
    assert_eq!(
        counts,
        vec![
            ("all".to_string(), "ministry".to_string(), 1),
            ("all".to_string(), "other".to_string(), 1)
        ]
    );
    let with_drafts = Filter {
        include_drafts: true,
        ..Default::default()
    };
    let areas = survey.question("areas").unwrap();
    let asked =
        aggregate::asked_and_answered(conn, &survey.id, &areas.id, &with_drafts, None).unwrap();
    assert_eq!(asked.get("all"), Some(&(3, 3)));
    let others = aggregate::text_answers(conn, &survey.id, "kind", true, &submitted).unwrap();
    assert_eq!(
        (
            others[0].iso3.as_str(),
            others[0].unit.as_str(),
            others[0].value.as_str()
        ),
        ("PHL", "Central Bank", "Central bank")
    );
    // The compendium names a citable organisation, and hides one that may not be cited.
    let list = practices::compendium(conn, &survey, &countries, &submitted, "en").unwrap();
    // Within a sub-region, named practices come first, then anonymous ones: never in country
    // order, which would place an anonymous practice among the named ones of its country.
    let attributions: Vec<&str> = list.iter().map(|p| &*p.listing.attribution).collect();
    assert_eq!(
        attributions,
        [
            "Ministry of Labour, Philippines",
            "a government in South-eastern Asia"
        ]
    );
    let hidden = list.iter().find(|p| !p.listing.citable).unwrap();
    assert_eq!(
        hidden.listing.unit, "",
        "a practice that may not be cited does not name its organisation"
    );
    assert_eq!(hidden.text, "Remittance price comparison website");
    let named = list.iter().find(|p| p.listing.citable).unwrap();
    assert_eq!(
        &*named.listing.attribution,
        "Ministry of Labour, Philippines"
    );
    assert_eq!(named.listing.unit, "Ministry of Labour");
    // The theme comes from a single-choice question (`themes_from`).
    assert_eq!(named.listing.themes, ["labour"]);
    assert_eq!(hidden.listing.themes, ["remittances"]);

    // Over HTTP, as the owner: the question page lists "other" answers with their
    // organisation, and the export has one row per organisation with an organisation column.
    app.add_user(OWNER, PASSWORD, "owner", &["institutions"]);
    app.login(OWNER, PASSWORD).await;
    let page = app.get("/admin/surveys/institutions/results/q/kind").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Central Bank, Philippines"),
        "{}",
        page.body
    );
    let csv = app.get("/admin/surveys/institutions/export.csv").await;
    assert_eq!(csv.status, 200);
    let mut reader = csv::Reader::from_reader(csv.body.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(&header[..3], ["iso3", "country", "organisation"]);
    let staff = header.iter().position(|h| h == "staff").unwrap();
    let mut rows: Vec<(String, String, String)> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), r[2].to_string(), r[staff].to_string())
        })
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        vec![
            ("PHL".into(), "Central Bank".into(), "".into()),
            ("PHL".into(), "Ministry of Labour".into(), "40".into()),
        ]
    );
    let compendium = app
        .get("/admin/surveys/institutions/results/compendium")
        .await;
    assert!(
        compendium.body.contains("Ministry of Labour, Philippines"),
        "{}",
        compendium.body
    );
    assert!(!compendium.body.contains("Central Bank"));

    // The owner reopens one organisation's response; the other organisation of the same
    // country stays submitted.
    let admin = app.get("/admin/surveys/institutions").await;
    assert!(
        admin
            .body
            .contains(">Central Bank, Philippines</a> <span class=\"code\">PHL</span>"),
        "a status row per organisation: {}",
        admin.body
    );
    // Reopening is done from the country's page, which lists each organisation's response.
    let page = app.get("/admin/surveys/institutions/countries/PHL").await;
    assert!(page.body.contains("<h3>Central Bank</h3>"), "{}", page.body);
    let res = app
        .post(
            "/admin/surveys/institutions/countries/PHL/reopen",
            &[("_csrf", &page.hidden("_csrf")), ("unit", "Central Bank")],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(
        res.body.contains("Central Bank, Philippines"),
        "{}",
        res.body
    );
    // Editable again: the save is accepted.
    save(
        &app,
        &bank,
        "profile",
        &[("kind", "agency"), ("areas", "remittances")],
    )
    .await;
    // Reopened, it still counts as the version it submitted until it is submitted again.
    let status = aggregate::response_rates(conn, &survey, &with_drafts, None).unwrap();
    assert_eq!((status[0].submitted, status[0].drafts), (2, 1));
    // Reopening it again is refused: it is a draft now.
    // Reopening is done from the country's page, which lists each organisation's response.
    let page = app.get("/admin/surveys/institutions/countries/PHL").await;
    assert!(page.body.contains("<h3>Central Bank</h3>"), "{}", page.body);
    let res = app
        .post(
            "/admin/surveys/institutions/countries/PHL/reopen",
            &[("_csrf", &page.hidden("_csrf")), ("unit", "Central Bank")],
        )
        .await;
    assert_eq!(res.status, 409);
}

async fn contacts_of_a_survey_of_organisations_name_their_office(backend: Backend) {
    let smtp = SmtpServer::start(&[], 0);
    let app = TestApp::spawn_with_mail(backend, smtp.port).await;
    let dir = tempfile::tempdir().unwrap();
    // In a survey of organisations, the office names the organisation: it may not be empty.
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "country,name,email,language,office\n\
         PHL,Maria Santos,maria@dole.gov.ph,en,Ministry of Labour\n\
         PHL,Jose Cruz,jose@bsp.gov.ph,en,\n",
    )
    .unwrap();
    let out = app.cli(
        &["contacts", "import", "institutions", bad.to_str().unwrap()],
        None,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3, office: is empty"), "{err}");
    let good = dir.path().join("good.csv");
    std::fs::write(
        &good,
        "country,name,email,language,office\n\
         PHL,Maria Santos,maria@dole.gov.ph,en,Ministry of Labour\n\
         PHL,Ana Reyes,ana@dole.gov.ph,en,Ministry of Labour\n\
         PHL,Jose Cruz,jose@bsp.gov.ph,en,Central Bank\n",
    )
    .unwrap();
    let out = app.cli(
        &["contacts", "import", "institutions", good.to_str().unwrap()],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Each contact gets a link to its own organisation's response.
    let out = app.cli(&["invite", "institutions"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mails = smtp.wait_for(3).await;
    let to = |who: &str| {
        mails
            .iter()
            .find(|m| m.to.contains(who))
            .unwrap_or_else(|| panic!("a mail to {who}"))
    };
    // The subject names the organisation (unfolded: long headers wrap).
    let subject = to("maria@")
        .subject
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        subject.contains("Ministry of Labour, Philippines"),
        "{subject}"
    );
    let maria = to("maria@").link_path().expect("a link");
    let ana = to("ana@").link_path().expect("a link");
    let jose = to("jose@").link_path().expect("a link");
    save(
        &app,
        &maria,
        "profile",
        &[("kind", "ministry"), ("staff", "12"), ("areas", "labour")],
    )
    .await;
    // Ana works at the same ministry and sees Maria's draft; José, at the central bank, not.
    let shared = app.get(&format!("{ana}/s/profile")).await;
    assert_eq!(shared.field_value("staff").as_deref(), Some("12"));
    let own = app.get(&format!("{jose}/s/profile")).await;
    assert_eq!(own.field_value("staff").as_deref(), Some(""));
    assert!(app
        .get(&jose)
        .await
        .body
        .contains("Response of Central Bank, Philippines"));
    // José's bank submits; reminders then go to the ministry's two contacts only.
    save(
        &app,
        &jose,
        "profile",
        &[("kind", "agency"), ("areas", "remittances")],
    )
    .await;
    save(&app, &jose, "practice", &[("has_practice", "no")]).await;
    submit(&app, &jose).await;
    let out = app.cli(&["remind", "institutions"], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("2 message(s) queued, 1 contact(s) skipped"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Six in all: the three invitations, José's receipt of the submission (he holds his
    // organisation's coordinator link) and the two reminders. Waiting for five let the check
    // run once with one reminder still on its way (it failed so once in five runs under a
    // parallel load). Read once the outbox is empty, so a duplicate would be counted too.
    let mails = app.mails_when_outbox_empty(&smtp, 6).await;
    let to_jose = mails.iter().filter(|m| m.to.contains("jose@")).count();
    assert_eq!(
        to_jose,
        2,
        "José's invitation and receipt: {:?}",
        mails
            .iter()
            .map(|m| (&m.to, &m.subject))
            .collect::<Vec<_>>()
    );
    let mut reminded: Vec<&str> = mails
        .iter()
        .filter(|m| m.subject.starts_with("Reminder:"))
        .map(|m| m.to.as_str())
        .collect();
    reminded.sort();
    // Every message said if this fails, to tell a duplicate from a late one.
    assert_eq!(
        reminded.len(),
        2,
        "{:?}",
        mails
            .iter()
            .map(|m| (&m.to, &m.subject))
            .collect::<Vec<_>>()
    );
    assert!(reminded[0].contains("ana@dole.gov.ph") && reminded[1].contains("maria@dole.gov.ph"));
    // The status table has a row per organisation, with its contacts.
    app.add_user(OWNER, PASSWORD, "owner", &["institutions"]);
    app.login(OWNER, PASSWORD).await;
    let status = app.get("/admin/surveys/institutions/status.csv").await;
    assert_eq!(status.status, 200);
    let mut reader = csv::Reader::from_reader(status.body.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        &header[..4],
        ["iso3", "country", "organisation", "contacts"]
    );
    let invited = header.iter().position(|h| h == "invited").unwrap();
    let opened = header.iter().position(|h| h == "first_opened").unwrap();
    let rows: Vec<(String, String, String, bool, bool)> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (
                r[0].to_string(),
                r[2].to_string(),
                r[3].to_string(),
                !r[invited].is_empty(),
                !r[opened].is_empty(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("PHL".into(), "Central Bank".into(), "1".into(), true, true),
            (
                "PHL".into(),
                "Ministry of Labour".into(),
                "2".into(),
                true,
                true
            ),
        ]
    );
    // The dashboard counts two organisations reached, invited and opened; one drafts, one
    // submitted.
    let survey = institutions(&app);
    let pool = pool_of(&app);
    let mut conn = pool.get().unwrap();
    let rates = aggregate::response_rates(&mut conn, &survey, &Filter::default(), None).unwrap();
    let r = &rates[0];
    assert_eq!(
        (r.targeted, r.invited, r.opened, r.drafts, r.submitted),
        (2, 2, 2, 1, 1)
    );
}

/// Hundreds of organisations: the compendium page shows 200 practices at a time, can be
/// narrowed to one theme, and the Markdown download keeps every practice.
async fn a_large_compendium_is_paged_and_filtered_by_theme(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let out = app.cli(
        &["demo-data", "institutions", "--units", "500", "--seed", "7"],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("500 organisations"));
    let out = app.cli(&["demo-data", "fixture", "--units", "5"], None);
    assert!(
        !out.status.success(),
        "--units is refused for a country survey"
    );

    let survey = institutions(&app);
    let pool = pool_of(&app);
    let mut conn = pool.get().unwrap();
    let all = practices::compendium(
        &mut conn,
        &survey,
        &Countries::load().unwrap(),
        &Filter::default(),
        "en",
    )
    .unwrap();
    // Each practice has exactly one theme here (a single-choice question gives it).
    assert!(all.len() > 200, "{} practices", all.len());
    assert!(all.iter().all(|p| p.listing.themes.len() == 1));
    let labour = all
        .iter()
        .filter(|p| p.listing.themes[0] == "labour")
        .count();

    app.add_user(OWNER, PASSWORD, "owner", &["institutions"]);
    app.login(OWNER, PASSWORD).await;
    let base = "/admin/surveys/institutions/results/compendium";
    let first = app.get(base).await;
    assert_eq!(first.status, 200);
    assert_eq!(
        first.body.matches("<article class=\"practice\">").count(),
        200
    );
    assert!(
        first
            .body
            .contains(&format!("Practices 1 to 200 of {}", all.len())),
        "{}",
        first.body
    );
    let second = app.get(&format!("{base}?page=2")).await;
    assert!(second.body.contains("Practices 201 to "));
    // The pages read only their own practices' texts: together they show every practice once,
    // theme by theme, each theme's in the compendium's order.
    let mut shown: Vec<String> = Vec::new();
    let mut page = 1;
    loop {
        let res = app.get(&format!("{base}?page={page}")).await;
        shown.extend(
            res.body
                .split("<p class=\"practice-text\">")
                .skip(1)
                .map(|rest| rest.split("</p>").next().unwrap_or_default().to_string()),
        );
        if !res.body.contains("rel=\"next\"") {
            break;
        }
        page += 1;
    }
    let expected: Vec<String> = survey
        .themes
        .iter()
        .flat_map(|th| {
            all.iter()
                .filter(|p| p.listing.themes.contains(&th.id))
                .map(|p| handlebars::html_escape(&p.text))
        })
        .collect();
    assert_eq!(shown.len(), all.len(), "every practice once");
    assert_eq!(shown, expected);
    let one_theme = app.get(&format!("{base}?theme=labour")).await;
    assert!(
        one_theme.body.contains(&format!("of {labour}")),
        "{}",
        one_theme.body
    );
    assert!(one_theme
        .body
        .contains("aria-current=\"page\">Labour migration and skills"));
    let markdown = app.get(&format!("{base}.md")).await;
    assert_eq!(markdown.status, 200);
    assert_eq!(markdown.body.matches("\n### ").count(), all.len());
    // Each heading is the practice's attribution translated whole, then escaped: named ones
    // ("organisation, country") and anonymous ones alike.
    assert!(all.iter().any(|p| p.listing.citable) && all.iter().any(|p| !p.listing.citable));
    let headings: Vec<&str> = markdown
        .body
        .lines()
        .filter(|l| l.starts_with("### "))
        .collect();
    let expected: Vec<String> = survey
        .themes
        .iter()
        .flat_map(|th| all.iter().filter(|p| p.listing.themes.contains(&th.id)))
        .map(|p| {
            let l = &p.listing;
            let whole = coherence::i18n::translate(
                "en",
                "results-attribution",
                &[
                    ("who", l.attribution.to_string()),
                    ("region", l.region.to_string()),
                    ("development", l.development.to_string()),
                ],
            );
            format!("### {}", coherence::text::markdown::inline(&whole))
        })
        .collect();
    assert_eq!(headings, expected);
    // The download of a large round reads on two connections (the drafts' practices apart
    // with drafts included): the same Markdown as on one, whichever way it is read.
    let countries = Countries::load().unwrap();
    let mut second = pool_of(&app).get().unwrap();
    for filter in [
        Filter::default(),
        Filter {
            include_drafts: true,
            ..Filter::default()
        },
    ] {
        let mut download = |two: bool, above: usize| {
            practices::compendium_download_on_two_above(
                &mut conn,
                two.then_some(&mut *second),
                &survey,
                &countries,
                &filter,
                "en",
                above,
            )
            .unwrap()
        };
        let one = download(false, 0);
        assert_eq!(download(true, 0), one, "{filter:?}");
        if filter.include_drafts {
            assert!(
                one.matches("\n### ").count() > all.len(),
                "drafts' practices too"
            );
        } else {
            assert_eq!(one, markdown.body);
        }
    }
}

/// Two transactions that each add or move rows of many organisations of a survey (a campaign
/// issuing links, a contacts import: each row's trigger computes its organisation's kept
/// response rates under a lock on that organisation) run at once, over the same organisations
/// in opposite orders, again and again. Each takes its organisations' locks in one order
/// before writing, so both commit, where taken row by row they met half-way and PostgreSQL
/// refused one as a deadlock. The kept rates then count every organisation. And a transaction
/// over thousands of organisations holds a bounded number of locks.
async fn writes_of_many_organisations_at_once_in_opposite_orders_all_commit(backend: Backend) {
    use coherence::db::contacts::{upsert_all, ContactFields};
    use coherence::db::tokens::{insert_tokens, LinkRole};
    use diesel::RunQueryDsl;
    use std::sync::{Arc, Barrier};

    const UNITS: usize = 150;
    const ROUNDS: usize = 4;
    let app = TestApp::spawn(backend).await;
    let units: Vec<String> = (0..UNITS).map(|i| format!("Office {i:03}")).collect();
    let now = chrono::Utc::now().naive_utc();
    /// A transaction's work, given whether it goes through the organisations in reverse.
    type Job = Arc<dyn Fn(&mut db::DbConn, bool) -> Result<(), String> + Send + Sync>;
    let run_both = |job: Job| {
        let barrier = Arc::new(Barrier::new(2));
        let threads: Vec<_> = [false, true]
            .into_iter()
            .map(|reversed| {
                let (pool, barrier, job) = (pool_of(&app), barrier.clone(), job.clone());
                std::thread::spawn(move || {
                    let mut conn = pool.get().unwrap();
                    barrier.wait();
                    job(&mut conn, reversed)
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap().unwrap();
        }
    };
    for round in 0..ROUNDS {
        let (link_units, round_tag) = (units.clone(), format!("{round}"));
        run_both(Arc::new(move |conn, reversed| {
            let mut order: Vec<&String> = link_units.iter().collect();
            if reversed {
                order.reverse();
            }
            let hashes: Vec<String> = order
                .iter()
                .map(|u| format!("hash-{round_tag}-{reversed}-{u}"))
                .collect();
            let links = coordinator_links("KEN", &order, &hashes, now);
            db::transaction(conn, |conn| insert_tokens(conn, &links).map(drop))
                .map_err(|e| format!("links, reversed {reversed}: {e}"))
        }));
        // Contacts: added in the first round, then moved between offices (each update names
        // the office it leaves and the one it joins).
        let offices = units.clone();
        run_both(Arc::new(move |conn, reversed| {
            let mut order: Vec<usize> = (0..UNITS).collect();
            if reversed {
                order.reverse();
            }
            let emails: Vec<String> = order
                .iter()
                .map(|i| format!("person{i}-{reversed}@example.org"))
                .collect();
            let rows: Vec<ContactFields> = order
                .iter()
                .zip(&emails)
                .map(|(i, email)| ContactFields {
                    country_iso3: "KEN",
                    name: "Contact",
                    email,
                    language: "en",
                    office: &offices[(i + round) % UNITS],
                    role: LinkRole::Coordinator,
                    sections: "",
                })
                .collect();
            upsert_all(conn, "institutions", &rows, now)
                .map(drop)
                .map_err(|e| format!("contacts, reversed {reversed}: {e}"))
        }));
    }
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = pool_of(&app).get().unwrap();
    // One transaction over many more organisations: on PostgreSQL it holds at most 1,024 unit
    // locks, one slot each of the server's shared lock table (100,000 once failed with "out of
    // shared memory").
    const MANY: usize = 3000;
    let many: Vec<String> = (0..MANY).map(|i| format!("Agency {i:05}")).collect();
    let hashes: Vec<String> = many.iter().map(|u| format!("hash-many-{u}")).collect();
    let many_units: Vec<&String> = many.iter().collect();
    let links = coordinator_links("GHA", &many_units, &hashes, now);
    let held = db::transaction(&mut conn, |conn| -> diesel::QueryResult<i64> {
        insert_tokens(conn, &links)?;
        match backend {
            Backend::Postgres => diesel::sql_query(
                "SELECT COUNT(*) AS n FROM pg_locks WHERE locktype = 'advisory' \
                 AND pid = pg_backend_pid()",
            )
            .load::<Count>(conn)
            .map(|rows| rows[0].n),
            Backend::Sqlite => Ok(0),
        }
    })
    .unwrap();
    assert!(held <= 1024, "{held} unit locks held at once");
    if backend == Backend::Postgres {
        assert!(
            held > 900,
            "the organisations spread over the locks: {held}"
        );
    }
    let kept: Vec<Count> = diesel::sql_query(
        "SELECT COUNT(*) AS n FROM unit_rates WHERE survey_id = 'institutions' \
         AND country_iso3 = 'GHA' AND unit LIKE 'Agency %' AND opened = 0",
    )
    .load(&mut *conn)
    .unwrap();
    assert_eq!(kept[0].n, MANY as i64);
    let kept: Vec<Count> = diesel::sql_query(
        "SELECT COUNT(*) AS n FROM unit_rates WHERE survey_id = 'institutions' \
         AND country_iso3 = 'KEN' AND unit LIKE 'Office %'",
    )
    .load(&mut *conn)
    .unwrap();
    assert_eq!(kept[0].n, UNITS as i64);
    let links: Vec<Count> = diesel::sql_query(
        "SELECT COUNT(*) AS n FROM access_tokens WHERE survey_id = 'institutions'",
    )
    .load(&mut *conn)
    .unwrap();
    assert_eq!(links[0].n, (2 * ROUNDS * UNITS + MANY) as i64);
    app.stop().await;
}

/// Coordinator links of the organisations survey, one per unit of `country`, with the given
/// hashes.
fn coordinator_links<'a>(
    country: &'a str,
    units: &[&'a String],
    hashes: &'a [String],
    now: chrono::NaiveDateTime,
) -> Vec<coherence::db::tokens::NewToken<'a>> {
    units
        .iter()
        .zip(hashes)
        .map(|(unit, hash)| coherence::db::tokens::NewToken {
            survey_id: "institutions",
            country_iso3: country,
            unit,
            token_hash: hash,
            holder_name: None,
            holder_email: None,
            now,
            expires_at: None,
            role: coherence::db::tokens::LinkRole::Coordinator,
            sections: &[],
        })
        .collect()
}

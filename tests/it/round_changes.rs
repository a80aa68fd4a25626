//! What changed between two rounds, over HTTP, on a hand-computed fixture
//! (`tests/fixtures/round_changes`): four countries of four regions and income groups answer
//! round one, then round two, which starts from their answers. Sweden changes a choice, Kenya
//! confirms everything, Mexico answers the new question, India clears an answer (and its
//! previous `lead` was an option left behind). Every test runs on SQLite and PostgreSQL.

use coherence::db::{self, carried, responses, DbUrl};

use crate::helpers::{fixtures, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    what_changed_per_country_and_overall_equals_the_hand_count,
    what_changed_pages_are_refused_to_others,
    shipped_rounds_render_in_every_language,
    a_response_opened_before_the_previous_round_was_sent_compares_with_it,
);

const ADMIN: (&str, &str) = ("admin@gfmd.example.org", "a long admin passphrase");
const HOSTILE: &str = "<script>alert(1)</script>";
const FORMULA: &str = "=SUM(A1:A2)";

async fn app(backend: Backend) -> TestApp {
    let app = TestApp::spawn_with(backend, fixtures().join("round_changes")).await;
    app.add_user(ADMIN.0, ADMIN.1, "admin", &[]);
    let res = app.login(ADMIN.0, ADMIN.1).await;
    assert_eq!(res.status, 303, "{}", res.body);
    app
}

/// Save each (section, answers) through `link`, then submit.
async fn answer_and_submit(app: &TestApp, link: &str, sections: &[(&str, &[(&str, &str)])]) {
    for (section, answers) in sections {
        let saved = app.save_section(link, section, answers).await;
        assert_eq!(saved.status, 303, "{section}: {}", saved.body);
    }
    let submitted = app.submit(link).await;
    assert_eq!(submitted.status, 303, "{}", submitted.body);
}

/// Round one: every country answers and submits.
async fn round_one(app: &TestApp) {
    let swe = app.issue_token("rc-one", "SWE", "Anna");
    answer_and_submit(
        app,
        &swe,
        &[
            ("who", &[("lead", "ministry")]),
            ("tools", &[("tools", "law"), ("tools", "plan")]),
            ("plan", &[("plan", "yes")]),
            ("note", &[("note", HOSTILE)]),
        ],
    )
    .await;
    let ken = app.issue_token("rc-one", "KEN", "Wanjiru");
    answer_and_submit(
        app,
        &ken,
        &[
            ("who", &[("lead", "office")]),
            ("tools", &[("tools", "law")]),
            ("plan", &[("plan", "no")]),
            ("note", &[("note", FORMULA)]),
        ],
    )
    .await;
    let mex = app.issue_token("rc-one", "MEX", "Luis");
    answer_and_submit(
        app,
        &mex,
        &[
            ("who", &[("lead", "ministry")]),
            ("tools", &[("tools", "plan")]),
            ("plan", &[("plan", "yes")]),
        ],
    )
    .await;
    let ind = app.issue_token("rc-one", "IND", "Priya");
    answer_and_submit(
        app,
        &ind,
        &[
            ("who", &[("lead", "none")]),
            ("tools", &[("tools", "budget")]),
            ("plan", &[("plan", "yes")]),
        ],
    )
    .await;
}

fn conn(app: &TestApp) -> db::PooledConn {
    let pool = db::connect(&DbUrl::parse(&app.database_url).unwrap(), 1).unwrap();
    pool.get().unwrap()
}

/// A movement line of the overall page: from, to, then the counts (all; Africa, Americas,
/// Asia, Europe; low, lower middle, upper middle, high income).
fn move_line(row: Option<&str>, from: &str, to: &str, counts: [u8; 9]) -> String {
    let cells: String = counts.iter().map(|n| format!("<td>{n}</td>")).collect();
    let class = if from == to { " class=\"same\"" } else { "" };
    match row {
        Some(row) => format!(
            "<tr{class}><th scope=\"row\">{row}</th><td>{from}</td><td>{to}</td>{cells}</tr>"
        ),
        None => format!("<tr{class}><th scope=\"row\">{from}</th><td>{to}</td>{cells}</tr>"),
    }
}

async fn what_changed_per_country_and_overall_equals_the_hand_count(backend: Backend) {
    let app = app(backend).await;
    round_one(&app).await;

    // Round two starts from round one. Kenya confirms every carried answer and submits.
    let ken = app.issue_token("rc-two", "KEN", "Wanjiru");
    let overview = app.get(&ken).await;
    assert_eq!(overview.status, 200, "{}", overview.body);
    {
        let mut c = conn(&app);
        let r = responses::find_response(&mut c, "rc-two", "KEN", "")
            .unwrap()
            .expect("the response exists once the link is opened");
        let now = chrono::Utc::now().naive_utc();
        let all = ["lead_body", "tools", "plan", "note"];
        carried::set_confirmed(&mut c, &r.id, &all, &[], "test", now).unwrap();
    }
    let submitted = app.submit(&ken).await;
    assert_eq!(submitted.status, 303, "{}", submitted.body);
    // Mexico answers the new question; India clears its plan answer.
    let mex = app.issue_token("rc-two", "MEX", "Luis");
    answer_and_submit(&app, &mex, &[("review", &[("review", "yes")])]).await;
    let ind = app.issue_token("rc-two", "IND", "Priya");
    answer_and_submit(&app, &ind, &[("plan", &[])]).await;
    // Sweden changes its lead body, and has not submitted yet.
    let swe = app.issue_token("rc-two", "SWE", "Anna");
    let saved = app
        .save_section(&swe, "who", &[("lead_body", "agency")])
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);

    // The country page links to the comparison.
    let country = app.get("/admin/surveys/rc-two/countries/SWE").await;
    assert!(
        country.body.contains(
            "<a href=\"/admin/surveys/rc-two/countries/SWE/changes\">What changed since Rounds fixture 2008</a>"
        ),
        "{}",
        country.body
    );
    // Per country: the current answers of a draft.
    let page = app.get("/admin/surveys/rc-two/countries/SWE/changes").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let body = &page.body;
    assert!(body.contains("<strong>State:</strong> Draft</p>"), "{body}");
    assert!(
        body.contains("Compared with version 1 of the response to Rounds fixture 2008."),
        "{body}"
    );
    assert!(
        body.contains(
            "<tr class=\"class-changed\"><th scope=\"row\">Lead body <span class=\"hint\">(was lead)</span></th><td>Changed</td><td class=\"old\">Ministry</td><td class=\"new\">Agency</td></tr>"
        ),
        "{body}"
    );
    assert!(
        body.contains(
            "<tr class=\"class-unconfirmed\"><th scope=\"row\">Plan adopted</th><td>Unchanged, not confirmed yet</td><td class=\"old\">Yes</td><td class=\"new\">Yes</td></tr>"
        ),
        "{body}"
    );
    // The hostile answer is text, in both columns.
    assert!(!body.contains(HOSTILE), "{body}");
    assert!(
        body.contains(
            "<td class=\"old\">&lt;script&gt;alert(1)&lt;/script&gt;</td><td class=\"new\">&lt;script&gt;alert(1)&lt;/script&gt;</td>"
        ),
        "{body}"
    );
    // In French: classes and options in the page's language.
    let fr = app
        .get("/admin/surveys/rc-two/countries/SWE/changes?lang=fr")
        .await;
    assert!(
        fr.body.contains(
            "<td>Modifiée</td><td class=\"old\">Ministère</td><td class=\"new\">Agence</td>"
        ),
        "{}",
        fr.body
    );
    app.get("/admin/surveys/rc-two/countries/SWE/changes?lang=en")
        .await;

    // Overall, before Sweden submits: three counted responses.
    let overall = app.get("/admin/surveys/rc-two/results/changes").await;
    assert_eq!(overall.status, 200, "{}", overall.body);
    assert!(
        overall.body.contains("Responses compared: 3."),
        "{}",
        overall.body
    );
    let submitted = app.submit(&swe).await;
    assert_eq!(submitted.status, 303, "{}", submitted.body);

    // India: the left-behind option shows as given, and is not compared; the cleared answer.
    let page = app.get("/admin/surveys/rc-two/countries/IND/changes").await;
    assert!(
        page.body.contains(
            "<tr class=\"class-unanswered\"><th scope=\"row\">Lead body <span class=\"hint\">(was lead)</span></th><td>Not answered in either round</td><td class=\"old\">Nobody</td><td class=\"new\"><span class=\"hint\">No answer</span></td></tr>"
        ),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(
            "<tr class=\"class-cleared\"><th scope=\"row\">Plan adopted</th><td>No longer answered</td><td class=\"old\">Yes</td><td class=\"new\"><span class=\"hint\">No answer</span></td></tr>"
        ),
        "{}",
        page.body
    );
    // Mexico: the new question.
    let page = app.get("/admin/surveys/rc-two/countries/MEX/changes").await;
    assert!(
        page.body.contains(
            "<tr class=\"class-new\"><th scope=\"row\">Reviewed since</th><td>Newly answered</td><td class=\"old\"><span class=\"hint\">No answer</span></td><td class=\"new\">Yes</td></tr>"
        ),
        "{}",
        page.body
    );

    // Kenya's export: every question, confirmed, the formula neutralised.
    let csv = app
        .get("/admin/surveys/rc-two/countries/KEN/changes.csv")
        .await;
    assert_eq!(csv.status, 200, "{}", csv.body);
    assert_eq!(
        csv.headers["content-type"].to_str().unwrap(),
        "text/csv; charset=utf-8"
    );
    let expected = "unit,status,section,question_id,question,from_question_id,class,class_label,previous_answer,current_answer\n\
        ,\"Submitted, not yet under review\",Who,lead_body,Lead body,lead,confirmed,Confirmed unchanged,Agency,Agency\n\
        ,\"Submitted, not yet under review\",Tools,tools,Tools,tools,confirmed,Confirmed unchanged,Law,Law\n\
        ,\"Submitted, not yet under review\",Plan,plan,Plan adopted,plan,confirmed,Confirmed unchanged,No,No\n\
        ,\"Submitted, not yet under review\",Note,note,Note,note,confirmed,Confirmed unchanged,'=SUM(A1:A2),'=SUM(A1:A2)\n\
        ,\"Submitted, not yet under review\",Review,review,Reviewed since,,unanswered,Not answered in either round,,\n";
    assert_eq!(csv.body, expected);
    // Sweden's: the hostile text as it was typed (a CSV is not HTML).
    let csv = app
        .get("/admin/surveys/rc-two/countries/SWE/changes.csv")
        .await;
    assert!(
        csv.body
            .contains(",Who,lead_body,Lead body,lead,changed,Changed,Ministry,Agency\n"),
        "{}",
        csv.body
    );
    assert!(
        csv.body
            .contains(",Note,note,Note,note,unconfirmed,\"Unchanged, not confirmed yet\",<script>alert(1)</script>,<script>alert(1)</script>\n"),
        "{}",
        csv.body
    );
    let xlsx = app
        .get("/admin/surveys/rc-two/countries/SWE/changes.xlsx")
        .await;
    assert_eq!(xlsx.status, 200);
    assert!(xlsx.body.starts_with("PK"), "a workbook is a zip");

    // Overall: the results dashboard links to it.
    let dashboard = app.get("/admin/surveys/rc-two/results").await;
    assert!(
        dashboard
            .body
            .contains("<a href=\"/admin/surveys/rc-two/results/changes\">What changed since Rounds fixture 2008</a>"),
        "{}",
        dashboard.body
    );
    let overall = app.get("/admin/surveys/rc-two/results/changes").await;
    let body = &overall.body;
    assert!(body.contains("Responses compared: 4."), "{body}");
    // Per question: changed, confirmed, unconfirmed, newly answered, no longer answered.
    for (id, text, counts) in [
        ("lead_body", "Lead body", [1, 1, 1, 0, 0]),
        ("tools", "Tools", [0, 1, 3, 0, 0]),
        ("plan", "Plan adopted", [0, 1, 2, 0, 1]),
        ("note", "Note", [0, 1, 1, 0, 0]),
        ("review", "Reviewed since", [0, 0, 0, 1, 0]),
    ] {
        let cells: String = counts.iter().map(|n| format!("<td>{n}</td>")).collect();
        let line = format!("<tr id=\"q-{id}\"><th scope=\"row\">{text}</th>{cells}</tr>");
        assert!(body.contains(&line), "{line} in {body}");
    }
    // The columns: all, then regions, then income groups.
    assert!(
        body.contains(
            "<th scope=\"col\" class=\"group-all\">All countries</th><th scope=\"col\" class=\"group-region\">Africa</th><th scope=\"col\" class=\"group-region\">Americas</th><th scope=\"col\" class=\"group-region\">Asia</th><th scope=\"col\" class=\"group-region\">Europe</th><th scope=\"col\" class=\"group-income\">Low income</th><th scope=\"col\" class=\"group-income\">Lower middle income</th><th scope=\"col\" class=\"group-income\">Upper middle income</th><th scope=\"col\" class=\"group-income\">High income</th>"
        ),
        "{body}"
    );
    for line in [
        move_line(None, "Agency", "Agency", [1, 1, 0, 0, 0, 1, 0, 0, 0]),
        move_line(None, "Ministry", "Agency", [1, 0, 0, 0, 1, 0, 0, 0, 1]),
        move_line(None, "Ministry", "Ministry", [1, 0, 1, 0, 0, 0, 0, 1, 0]),
        move_line(Some("Law"), "Ticked", "Ticked", [2, 1, 0, 0, 1, 1, 0, 0, 1]),
        move_line(
            Some("Plan"),
            "Ticked",
            "Ticked",
            [2, 0, 1, 0, 1, 0, 0, 1, 1],
        ),
        move_line(
            Some("Budget"),
            "Ticked",
            "Ticked",
            [1, 0, 0, 1, 0, 0, 1, 0, 0],
        ),
        move_line(None, "No", "No", [1, 1, 0, 0, 0, 1, 0, 0, 0]),
        move_line(None, "Yes", "No answer", [1, 0, 0, 1, 0, 0, 1, 0, 0]),
        move_line(None, "Yes", "Yes", [2, 0, 1, 0, 1, 0, 0, 1, 1]),
        move_line(None, "No answer", "Yes", [1, 0, 1, 0, 0, 0, 0, 1, 0]),
    ] {
        assert!(body.contains(&line), "{line} in {body}");
    }
    // The same figures in the export, long.
    let csv = app.get("/admin/surveys/rc-two/results/changes.csv").await;
    assert_eq!(csv.status, 200, "{}", csv.body);
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(
        lines[0],
        "question_id,question,figure,row,row_label,from,from_label,to,to_label,grouping,group,group_label,count"
    );
    for line in [
        "lead_body,Lead body,changed,,,,,,,all,,All countries,1",
        "lead_body,Lead body,confirmed,,,,,,,all,,All countries,1",
        "lead_body,Lead body,unconfirmed,,,,,,,all,,All countries,1",
        "lead_body,Lead body,unanswered,,,,,,,all,,All countries,1",
        "lead_body,Lead body,movement,,,ministry,Ministry,agency,Agency,all,,All countries,1",
        "lead_body,Lead body,movement,,,ministry,Ministry,agency,Agency,region,150,Europe,1",
        "lead_body,Lead body,movement,,,ministry,Ministry,agency,Agency,income,H,High income,1",
        "tools,Tools,movement,law,Law,#ticked,Ticked,#ticked,Ticked,income,L,Low income,1",
        "plan,Plan adopted,cleared,,,,,,,all,,All countries,1",
        "plan,Plan adopted,movement,,,yes,Yes,,No answer,region,142,Asia,1",
        "plan,Plan adopted,movement,,,yes,Yes,yes,Yes,all,,All countries,2",
        "review,Reviewed since,new,,,,,,,all,,All countries,1",
        "review,Reviewed since,movement,,,,No answer,yes,Yes,income,UM,Upper middle income,1",
    ] {
        assert!(lines.contains(&line), "{line} in {}", csv.body);
    }
    // No movement line for a group with nobody in it.
    assert!(!lines.iter().any(|l| l
        .starts_with("lead_body,Lead body,movement,,,ministry,Ministry,agency,Agency,region,002")));
    // Filtered to Europe, only Sweden counts (it changed its lead body).
    let europe = app
        .get("/admin/surveys/rc-two/results/changes.csv?region=150")
        .await;
    assert_eq!(europe.status, 200, "{}", europe.body);
    let europe: Vec<&str> = europe.body.lines().collect();
    for line in [
        "lead_body,Lead body,changed,,,,,,,all,,All countries,1",
        "lead_body,Lead body,confirmed,,,,,,,all,,All countries,0",
        "plan,Plan adopted,movement,,,yes,Yes,yes,Yes,all,,All countries,1",
    ] {
        assert!(europe.contains(&line), "{line} in {europe:#?}");
    }

    // The results page of a carried question: the previous round beside this one, options
    // renamed (office -> agency), the one left behind (none) out.
    let q = app.get("/admin/surveys/rc-two/results/q/lead_body").await;
    assert_eq!(q.status, 200, "{}", q.body);
    assert!(
        q.body
            .contains("<th scope=\"col\" class=\"previous-round\">Previous round</th>"),
        "{}",
        q.body
    );
    assert!(
        q.body.contains(
            "<tr><th scope=\"row\">Ministry</th><td>1</td><td>33%</td><td class=\"previous-round\">2 (50%)</td></tr>"
        ),
        "{}",
        q.body
    );
    assert!(
        q.body.contains(
            "<tr><th scope=\"row\">Agency</th><td>2</td><td>67%</td><td class=\"previous-round\">1 (25%)</td></tr>"
        ),
        "{}",
        q.body
    );
    // A new question has no previous round to show.
    let q = app.get("/admin/surveys/rc-two/results/q/review").await;
    assert!(!q.body.contains("previous-round"), "{}", q.body);
    // A first round has nothing to compare.
    let none = app.get("/admin/surveys/rc-one/results/changes").await;
    assert_eq!(none.status, 404);
    let none = app.get("/admin/surveys/rc-one/countries/SWE/changes").await;
    assert_eq!(none.status, 404);
}

async fn what_changed_pages_are_refused_to_others(backend: Backend) {
    let app = app(backend).await;
    round_one(&app).await;
    let swe = app.issue_token("rc-two", "SWE", "Anna");
    let paths = [
        "/admin/surveys/rc-two/countries/SWE/changes",
        "/admin/surveys/rc-two/countries/SWE/changes.csv",
        "/admin/surveys/rc-two/countries/SWE/changes.xlsx",
        "/admin/surveys/rc-two/results/changes",
        "/admin/surveys/rc-two/results/changes.csv",
    ];
    // The administrator sees them.
    for path in paths {
        let page = app.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
    }
    // The owner of the previous round only.
    app.add_user(
        "owner@gfmd.example.org",
        "an owner's passphrase",
        "owner",
        &["rc-one"],
    );
    let owner = app.clone_with_new_client();
    let res = owner
        .login("owner@gfmd.example.org", "an owner's passphrase")
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    // A respondent with a personal link, and someone anonymous.
    let respondent = app.clone_with_new_client();
    let overview = respondent.get(&swe).await;
    assert_eq!(overview.status, 200);
    let anonymous = app.clone_with_new_client();
    for path in paths {
        let page = owner.get(path).await;
        assert_eq!(page.status, 403, "owner of another survey: {path}");
        assert!(!page.body.contains("Lead body"));
        for other in [&respondent, &anonymous] {
            let page = other.get(path).await;
            assert_eq!(page.status, 303, "{path}");
            assert!(
                page.location
                    .as_deref()
                    .is_some_and(|l| l.starts_with("/admin/login")),
                "{path}: {:?}",
                page.location
            );
        }
    }
    // An owner of the second round alone reads its own results, but not the first round's
    // answers through it: no what-changed page, no previous-round column.
    app.add_user(
        "second@gfmd.example.org",
        "a second owner's passphrase",
        "owner",
        &["rc-two"],
    );
    let second = app.clone_with_new_client();
    let res = second
        .login("second@gfmd.example.org", "a second owner's passphrase")
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    for path in paths {
        let page = second.get(path).await;
        assert_eq!(page.status, 403, "owner of the second round only: {path}");
        assert!(!page.body.contains("Lead body"));
    }
    let q = second
        .get("/admin/surveys/rc-two/results/q/lead_body")
        .await;
    assert_eq!(q.status, 200, "{}", q.body);
    assert!(!q.body.contains("previous-round"), "{}", q.body);
    let q = app.get("/admin/surveys/rc-two/results/q/lead_body").await;
    assert!(q.body.contains("previous-round"), "{}", q.body);
}

/// The shipped second round, filled by `demo-data` after the first: every what-changed page
/// and the results pages with the previous-round column render in every language.
async fn shipped_rounds_render_in_every_language(backend: Backend) {
    let surveys = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("surveys");
    let app = TestApp::spawn_with(backend, surveys).await;
    app.add_user(ADMIN.0, ADMIN.1, "admin", &[]);
    for survey in ["coherence-2008", "coherence-2010"] {
        let out = app.cli(&["demo-data", survey, "--countries", "12"], None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    app.login(ADMIN.0, ADMIN.1).await;
    let base = "/admin/surveys/coherence-2010";
    let status = app.get(base).await;
    let marker = format!("href=\"{base}/countries/");
    let countries: std::collections::BTreeSet<String> = status
        .body
        .match_indices(&marker)
        .map(|(i, _)| {
            let start = i + "href=\"".len();
            let end = start + status.body[start..].find('"').unwrap_or(0);
            status.body[start..end].to_string()
        })
        .collect();
    assert!(countries.len() >= 12, "{}", status.body);
    let mut paths: Vec<String> = countries
        .iter()
        .take(4)
        .map(|c| format!("{c}/changes"))
        .collect();
    paths.push(format!("{base}/results/changes"));
    paths.push(format!("{base}/results/changes?region=150"));
    for q in [
        "lead_institution",
        "plan_status",
        "mechanism_legal_basis",
        "mechanism_effectiveness",
    ] {
        paths.push(format!("{base}/results/q/{q}"));
        paths.push(format!("{base}/results/q/{q}?by=income"));
    }
    for lang in ["en", "fr", "es"] {
        for path in &paths {
            let sep = if path.contains('?') { '&' } else { '?' };
            let page = app.get(&format!("{path}{sep}lang={lang}")).await;
            assert_eq!(page.status, 200, "{path} in {lang}: {}", page.body);
            assert!(page.body.contains(&format!("<html lang=\"{lang}\">")));
        }
    }
    let overall = app.get(&format!("{base}/results/changes?lang=en")).await;
    assert!(overall.body.contains("Movement between options"));
    let q = app.get(&format!("{base}/results/q/lead_institution")).await;
    assert!(q.body.contains("class=\"previous-round\""), "{}", q.body);
    for path in [
        format!("{base}/results/changes.csv"),
        format!("{}.csv", paths[0]),
        format!("{}.xlsx", paths[0]),
    ] {
        let res = app.get(&path).await;
        assert_eq!(res.status, 200, "{path}");
    }
    app.stop().await;
}

/// A response to round two opened before the country sent round one starts from nothing; once
/// round one is sent, it is compared with that version all the same.
async fn a_response_opened_before_the_previous_round_was_sent_compares_with_it(backend: Backend) {
    let app = app(backend).await;
    let one = app.issue_token("rc-one", "SWE", "Anna");
    let saved = app.save_section(&one, "who", &[("lead", "office")]).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let two = app.issue_token("rc-two", "SWE", "Anna");
    let overview = app.get(&two).await;
    assert_eq!(overview.status, 200, "{}", overview.body);
    let page = app.get("/admin/surveys/rc-two/countries/SWE/changes").await;
    assert!(
        page.body
            .contains("No response to Rounds fixture 2008 to compare with."),
        "{}",
        page.body
    );
    let submitted = app.submit(&one).await;
    assert_eq!(submitted.status, 303, "{}", submitted.body);
    answer_and_submit(&app, &two, &[("who", &[("lead_body", "ministry")])]).await;
    let page = app.get("/admin/surveys/rc-two/countries/SWE/changes").await;
    assert!(
        page.body
            .contains("Compared with version 1 of the response to Rounds fixture 2008."),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(
            "<td>Changed</td><td class=\"old\">Agency</td><td class=\"new\">Ministry</td>"
        ),
        "{}",
        page.body
    );
    let overall = app.get("/admin/surveys/rc-two/results/changes").await;
    assert!(
        overall.body.contains(
            "<tr id=\"q-lead_body\"><th scope=\"row\">Lead body</th><td>1</td><td>0</td><td>0</td><td>0</td><td>0</td></tr>"
        ),
        "{}",
        overall.body
    );
}

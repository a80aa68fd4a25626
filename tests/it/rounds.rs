//! Rounds over HTTP (issue 13): a second round starts from each country's last accepted (else
//! last submitted) reply to the first, through the carry plan of `tests/fixtures/rounds/`
//! (a renamed question with a renamed option, merged options, a single choice become multiple,
//! a scale point left behind, a question asked afresh, a file question); each carried answer is
//! confirmed "still accurate" or changed before submitting, unless the survey says otherwise;
//! and `demo-data` fills both rounds. Every test runs on SQLite and PostgreSQL.

use std::collections::BTreeMap;

use coherence::db::{self, answers, carried, responses, DbUrl};

use crate::helpers::{fixtures, Backend, Page, TestApp};
use crate::on_both_backends;

on_both_backends!(
    a_second_round_starts_from_the_last_accepted_reply,
    carried_answers_are_confirmed_or_changed_before_submitting,
    the_survey_decides_whether_confirming_is_asked,
    a_contributor_confirms_only_its_sections,
    a_workbook_changes_answers_but_never_confirms,
    demo_data_fills_two_linked_rounds,
    officials_opening_the_round_at_once_prefill_it_once,
);

const ADMIN: (&str, &str) = ("admin@gfmd.example.org", "a long admin passphrase");

const ABOUT: &[(&str, &str)] = &[
    ("ministry", "diaspora_office"),
    ("reply_date", "2024-05-01"),
    ("staff", "12"),
];
const POLICY: &[(&str, &str)] = &[
    ("plan", "no_plan"),
    ("basis", "decree"),
    ("rating.info", "good"),
    ("rating.joint", "dont_know"),
    ("summary", "A committee meets <monthly>"),
];
/// Round two's answers as carried from ABOUT and POLICY (what the section forms hold).
const ABOUT_2: &[(&str, &str)] = &[("lead", "diaspora"), ("staff", "12")];
const POLICY_2: &[(&str, &str)] = &[
    ("plan", "not_integrated"),
    ("basis", "decree"),
    ("rating.info", "good"),
    ("summary", "A committee meets <monthly>"),
];

async fn spawn(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, fixtures().join("rounds")).await
}

fn conn(app: &TestApp) -> db::PooledConn {
    let pool = db::connect(&DbUrl::parse(&app.database_url).unwrap(), 1).unwrap();
    pool.get().unwrap()
}

type Carried = BTreeMap<String, Vec<(String, String)>>;

/// The answers carried into a country's response, as (item, value) pairs by question, and the
/// version of the previous round it started from (None: it started empty).
fn carried_into(app: &TestApp, survey: &str, iso3: &str) -> (Carried, Option<i32>) {
    let mut conn = conn(app);
    let r = responses::find_response(&mut conn, survey, iso3, "")
        .unwrap()
        .expect("a response");
    let from = carried::carried_from(&mut conn, &r.id).unwrap();
    let answers = carried::carried_answers(&mut conn, &r.id)
        .unwrap()
        .into_values()
        .map(|c| {
            let mut items: Vec<(String, String)> =
                c.items.into_iter().map(|i| (i.item, i.value)).collect();
            items.sort();
            (c.question_id, items)
        })
        .collect();
    (answers, from.map(|f| f.from_version))
}

/// Which carried answers of a response are confirmed, by question.
fn confirmed(app: &TestApp, survey: &str, iso3: &str) -> BTreeMap<String, bool> {
    let mut conn = conn(app);
    let r = responses::find_response(&mut conn, survey, iso3, "")
        .unwrap()
        .expect("a response");
    carried::carried_answers(&mut conn, &r.id)
        .unwrap()
        .into_values()
        .map(|c| (c.question_id, c.confirmed_at.is_some()))
        .collect()
}

fn expect(pairs: &[(&str, &[(&str, &str)])]) -> Carried {
    pairs
        .iter()
        .map(|(q, items)| {
            let items = items
                .iter()
                .map(|(i, v)| (i.to_string(), v.to_string()))
                .collect();
            (q.to_string(), items)
        })
        .collect()
}

/// A country answers round one and submits; its link.
async fn answer_round_one(
    app: &TestApp,
    iso3: &str,
    about: &[(&str, &str)],
    policy: &[(&str, &str)],
) -> String {
    let link = app.issue_token("r1", iso3, "Focal point");
    for (section, answers) in [("about", about), ("policy", policy)] {
        let saved = app.save_section(&link, section, answers).await;
        assert_eq!(saved.status, 303, "{iso3} {section}: {}", saved.body);
    }
    let submitted = app.submit(&link).await;
    assert_eq!(submitted.status, 303, "{iso3}: {}", submitted.body);
    link
}

/// Save a section of round two with its answers and the given extra fields (boxes).
async fn save(app: &TestApp, link: &str, section: &str, fields: &[&[(&str, &str)]]) -> Page {
    let all: Vec<(&str, &str)> = fields.concat();
    app.save_section(link, section, &all).await
}

/// The list of carried answers left to confirm on a refused submission's review page.
fn left_to_confirm(page: &Page) -> &str {
    let start = page
        .body
        .find("<ul class=\"unconfirmed\">")
        .unwrap_or_else(|| panic!("no list of answers to confirm: {}", page.body));
    let end = page.body[start..].find("</ul>").expect("list end") + start;
    &page.body[start..end]
}

fn confirm_box(page: &Page, q: &str) -> Option<bool> {
    let at = page.body.find(&format!(
        "id=\"q-{q}-confirm\" name=\"{q}.confirm\" value=\"1\""
    ))?;
    Some(page.body[at..].split('>').next()?.contains("checked"))
}

async fn a_second_round_starts_from_the_last_accepted_reply(backend: Backend) {
    let app = spawn(backend).await;
    app.add_user(ADMIN.0, ADMIN.1, "admin", &[]);
    assert_eq!(app.login(ADMIN.0, ADMIN.1).await.status, 303);
    // Sweden's first reply is accepted, then reopened and submitted again with 13 staff.
    let swe = answer_round_one(&app, "SWE", ABOUT, POLICY).await;
    let country = "/admin/surveys/r1/countries/SWE";
    for (action, fields) in [
        ("review", &[][..]),
        ("accept", &[][..]),
        ("reopen", &[("unit", "")][..]),
    ] {
        let done = app
            .post_with_csrf_of(country, &format!("{country}/{action}"), fields)
            .await;
        assert_eq!(done.status, 200, "{action}: {}", done.body);
    }
    let later: Vec<(&str, &str)> = [&ABOUT[..2], &[("staff", "13")]].concat();
    assert_eq!(app.save_section(&swe, "about", &later).await.status, 303);
    assert_eq!(app.submit(&swe).await.status, 303);
    // Norway submitted once; the Philippines only saved a draft.
    answer_round_one(
        &app,
        "NOR",
        &[("ministry", "mfa"), ("staff", "5")],
        &[
            ("plan", "analysis_only"),
            ("basis", "law"),
            ("rating.info", "fair"),
            ("rating.joint", "good"),
        ],
    )
    .await;
    let phl = app.issue_token("r1", "PHL", "Draft only");
    assert_eq!(
        app.save_section(&phl, "about", &[("ministry", "labour"), ("staff", "3")])
            .await
            .status,
        303
    );

    // Round two: Sweden starts from its accepted version 1, mapped into this round's codes.
    let swe2 = app.issue_token("r2", "SWE", "Anna");
    let about = app.get(&format!("{swe2}/s/about")).await;
    assert_eq!(about.status, 200, "{}", about.body);
    assert!(about.is_checked("lead", "diaspora"), "{}", about.body);
    assert_eq!(about.field_value("staff").as_deref(), Some("12"));
    assert_eq!(about.field_value("reply_date").as_deref(), Some(""));
    let (carried, from) = carried_into(&app, "r2", "SWE");
    assert_eq!(from, Some(1), "the accepted version, not the later one");
    assert_eq!(
        carried,
        expect(&[
            ("lead", &[("", "diaspora")]),
            ("staff", &[("", "12")]),
            ("plan", &[("", "not_integrated")]),
            ("basis", &[("decree", "1")]),
            ("rating", &[("info", "good")]),
            ("summary", &[("", "A committee meets <monthly>")]),
        ])
    );
    let policy = app.get(&format!("{swe2}/s/policy")).await;
    assert!(policy.is_checked("plan", "not_integrated"));
    assert!(policy.is_checked("basis", "decree"), "{}", policy.body);
    assert!(policy.body.contains("name=\"rating.info\" value=\"good\""));
    assert!(!policy.body.contains("value=\"dont_know\""));
    assert!(policy.body.contains("A committee meets &lt;monthly&gt;"));
    // The new question, the file question and the one asked afresh are not marked.
    assert_eq!(confirm_box(&policy, "reviewed"), None);
    assert_eq!(confirm_box(&policy, "evidence"), None);
    assert_eq!(confirm_box(&about, "reply_date"), None);

    // Norway starts from its submitted version; nothing it left blank is carried.
    app.get(&format!("{}/s/about", app.issue_token("r2", "NOR", "Nils")))
        .await;
    let (carried, from) = carried_into(&app, "r2", "NOR");
    assert_eq!(from, Some(1));
    assert_eq!(
        carried,
        expect(&[
            ("lead", &[("", "mfa")]),
            ("staff", &[("", "5")]),
            ("plan", &[("", "analysis")]),
            ("basis", &[("law", "1")]),
            ("rating", &[("info", "fair"), ("joint", "good")]),
        ])
    );

    // The Philippines never submitted: round two starts empty, unmarked.
    let phl2 = app.issue_token("r2", "PHL", "Maria");
    let empty = app.get(&format!("{phl2}/s/about")).await;
    assert_eq!(empty.status, 200);
    assert!(!empty.body.contains("From the previous round"));
    assert!(!empty.is_checked("lead", "labour"));
    assert_eq!(carried_into(&app, "r2", "PHL"), (Carried::new(), None));
}

async fn carried_answers_are_confirmed_or_changed_before_submitting(backend: Backend) {
    let app = spawn(backend).await;
    answer_round_one(&app, "SWE", ABOUT, POLICY).await;
    let link = app.issue_token("r2", "SWE", "Anna");

    // The overview counts what is left to confirm, per section.
    let overview = app.get(&link).await;
    assert_eq!(overview.status, 200, "{}", overview.body);
    assert!(
        overview
            .body
            .contains("Answers carried from the previous round still to confirm: 6."),
        "{}",
        overview.body
    );
    assert!(overview
        .body
        .contains("<strong class=\"tag tag-carried\">2 to confirm</strong>"));
    assert!(overview
        .body
        .contains("<strong class=\"tag tag-carried\">4 to confirm</strong>"));

    // The section marks each carried question, with its box unticked.
    let about = app.get(&format!("{link}/s/about")).await;
    assert_eq!(about.body.matches(">From the previous round<").count(), 2);
    assert_eq!(confirm_box(&about, "lead"), Some(false));
    assert_eq!(confirm_box(&about, "staff"), Some(false));
    assert!(about
        .body
        .contains("<label for=\"q-lead-confirm\">Still accurate"));
    assert!(about.body.contains("still to confirm in this section: 2."));
    assert!(about
        .body
        .contains("id=\"confirm-section\" name=\"_confirm_section\""));
    assert!(!about.body.contains("Changed since the previous round"));

    // Complete, but nothing confirmed: submitting is refused, listing all six.
    let refused = app.submit(&link).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body.contains("must be confirmed"),
        "{}",
        refused.body
    );
    let list = left_to_confirm(&refused);
    assert_eq!(list.matches("<li>").count(), 6, "{list}");
    for (section, q) in [
        ("about", "lead"),
        ("about", "staff"),
        ("policy", "plan"),
        ("policy", "basis"),
        ("policy", "rating"),
        ("policy", "summary"),
    ] {
        let href = format!("{link}/s/{section}#field-{q}\"");
        assert!(list.contains(&href), "{href}: {list}");
    }

    // One box ticked; then the staff figure changed: no box needed for it.
    let saved = save(&app, &link, "about", &[ABOUT_2, &[("lead.confirm", "1")]]).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let about = app.get(&format!("{link}/s/about")).await;
    assert_eq!(confirm_box(&about, "lead"), Some(true));
    assert_eq!(confirm_box(&about, "staff"), Some(false));
    assert!(about.body.contains("still to confirm in this section: 1."));
    let changed = [("lead", "diaspora"), ("staff", "20"), ("lead.confirm", "1")];
    assert_eq!(save(&app, &link, "about", &[&changed]).await.status, 303);
    let about = app.get(&format!("{link}/s/about")).await;
    assert!(about.body.contains("Changed since the previous round"));
    assert!(about
        .body
        .contains("Answer in the previous round: <span class=\"previous\">12</span>"));
    assert!(!about.body.contains("still to confirm in this section"));

    // The policy section confirmed with its one box and no answer changed: still a save.
    let policy = app.get(&format!("{link}/s/policy")).await;
    assert_eq!(policy.hidden("_version"), "0");
    assert!(policy.body.contains("(4 left)"), "{}", policy.body);
    let ticks = [("_confirm_section", "1")];
    let saved = app
        .post_form_from(
            &policy,
            &format!("{link}/s/policy"),
            &[POLICY_2, &ticks].concat(),
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let policy = app.get(&format!("{link}/s/policy")).await;
    assert_eq!(policy.hidden("_version"), "1", "the save was recorded");
    for q in ["plan", "basis", "rating", "summary"] {
        assert_eq!(confirm_box(&policy, q), Some(true), "{q}");
    }

    // Unticking takes the confirmation back: submitting lists that one answer only.
    let unticked = [("lead", "diaspora"), ("staff", "20")];
    assert_eq!(save(&app, &link, "about", &[&unticked]).await.status, 303);
    let refused = app.submit(&link).await;
    assert_eq!(refused.status, 422);
    let list = left_to_confirm(&refused);
    assert_eq!(list.matches("<li>").count(), 1, "{list}");
    assert!(
        list.contains(&format!("{link}/s/about#field-lead\"")),
        "{list}"
    );
    let review = app.get(&format!("{link}/review")).await;
    assert!(review.body.contains("1 to confirm"), "{}", review.body);
    assert!(review.body.contains("Changed since the previous round"));

    assert_eq!(save(&app, &link, "about", &[&changed]).await.status, 303);
    let submitted = app.submit(&link).await;
    assert_eq!(submitted.status, 303, "{}", submitted.body);
    let stored = |app: &TestApp| confirmed(app, "r2", "SWE");
    let expected: BTreeMap<String, bool> = [
        ("lead", true),
        ("staff", false),
        ("plan", true),
        ("basis", true),
        ("rating", true),
        ("summary", true),
    ]
    .into_iter()
    .map(|(q, c)| (q.to_string(), c))
    .collect();
    assert_eq!(stored(&app), expected);

    // A restart keeps the marks, the boxes, the change and the submission.
    let (url, surveys, dir) = (
        app.database_url.clone(),
        app.surveys.clone(),
        app.dir.clone(),
    );
    app.stop().await;
    let app = TestApp::start(url, surveys, dir).await;
    assert_eq!(stored(&app), expected);
    let about = app.get(&format!("{link}/s/about")).await;
    assert_eq!(about.status, 200);
    assert_eq!(confirm_box(&about, "lead"), Some(true));
    assert!(about.body.contains("<span class=\"previous\">12</span>"));
    let overview = app.get(&link).await;
    assert!(overview.body.contains("Submitted"), "{}", overview.body);
    assert!(!overview.body.contains("to confirm"));
}

async fn the_survey_decides_whether_confirming_is_asked(backend: Backend) {
    let app = spawn(backend).await;
    answer_round_one(&app, "SWE", ABOUT, POLICY).await;

    // confirm_carried = false: marked, but submitted at once.
    let optional = app.issue_token("r2-optional", "SWE", "Anna");
    let about = app.get(&format!("{optional}/s/about")).await;
    assert_eq!(confirm_box(&about, "lead"), Some(false));
    assert!(
        about.body.contains("not yet confirmed: 2."),
        "{}",
        about.body
    );
    let overview = app.get(&optional).await;
    assert!(!overview.body.contains("to confirm"), "{}", overview.body);
    let submitted = app.submit(&optional).await;
    assert_eq!(submitted.status, 303, "{}", submitted.body);

    // With national sign-off, sending to the approver waits for the confirmations too.
    let national = app.issue_token("r2-national", "SWE", "Lars");
    app.issue_token_with(&[
        "--survey",
        "r2-national",
        "--country",
        "SWE",
        "--name",
        "Eva",
        "--role",
        "approver",
    ]);
    let refused = send_for_sign_off(&app, &national).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    let list = left_to_confirm(&refused);
    assert!(
        list.contains(&format!("{national}/s/policy#field-summary\"")),
        "{list}"
    );
    let all = [("_confirm_section", "1")];
    for (section, answers) in [("about", ABOUT_2), ("policy", POLICY_2)] {
        let saved = save(&app, &national, section, &[answers, &all]).await;
        assert_eq!(saved.status, 303, "{}", saved.body);
    }
    let sent = send_for_sign_off(&app, &national).await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    assert!(confirmed(&app, "r2-national", "SWE").values().all(|c| *c));
}

async fn send_for_sign_off(app: &TestApp, link: &str) -> Page {
    let review = app.get(&format!("{link}/review")).await;
    let csrf = review.hidden("_csrf");
    app.post(&format!("{link}/send-for-sign-off"), &[("_csrf", &csrf)])
        .await
}

async fn a_contributor_confirms_only_its_sections(backend: Backend) {
    let app = spawn(backend).await;
    answer_round_one(&app, "SWE", ABOUT, POLICY).await;
    let coordinator = app.issue_token("r2", "SWE", "Lars");
    let contributor = app.issue_token_with(&[
        "--survey",
        "r2",
        "--country",
        "SWE",
        "--name",
        "Eva",
        "--role",
        "contributor",
        "--section",
        "about",
    ]);
    // The coordinator opens the section before the contributor saves it.
    let stale = app.get(&format!("{coordinator}/s/about")).await;
    // Its section's boxes, and a box of another section slipped into the form, ignored.
    let boxes = [
        ("lead.confirm", "1"),
        ("staff.confirm", "1"),
        ("plan.confirm", "1"),
    ];
    let saved = save(&app, &contributor, "about", &[ABOUT_2, &boxes]).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let other = app.get(&format!("{contributor}/s/policy")).await;
    assert_eq!(other.status, 404);
    let form = app.get(&format!("{contributor}/s/about")).await;
    let posted = app
        .post_form_from(
            &form,
            &format!("{contributor}/s/policy"),
            &[POLICY_2, &[("_confirm_section", "1")]].concat(),
        )
        .await;
    assert_eq!(posted.status, 404);
    // The coordinator's older form, boxes unticked, does not take the confirmations back.
    let posted = app
        .post_form_from(&stale, &format!("{coordinator}/s/about"), ABOUT_2)
        .await;
    assert_eq!(posted.status, 303, "{}", posted.body);
    let stored = confirmed(&app, "r2", "SWE");
    assert!(stored["lead"]);
    assert!(stored["staff"]);
    for q in ["plan", "basis", "rating", "summary"] {
        assert!(!stored[q], "{q}");
    }
    // The contributor's overview lists its section, nothing left; the coordinator's, the rest.
    let mine = app.get(&contributor).await;
    assert!(!mine.body.contains("to confirm"), "{}", mine.body);
    let all = app.get(&coordinator).await;
    assert!(all
        .body
        .contains("Answers carried from the previous round still to confirm: 4."));
}

/// The cell (A1 name, column D) of a question's answer on a sheet of a downloaded workbook.
fn answer_cell(xlsx: &[u8], sheet: &str, question: &str) -> String {
    use calamine::{Data, Reader};
    let mut book = calamine::Xlsx::new(std::io::Cursor::new(xlsx.to_vec())).unwrap();
    let range = book.worksheet_range(sheet).expect("the sheet");
    let (end, _) = range.end().unwrap();
    (0..=end)
        .find(|r| matches!(range.get_value((*r, 0)), Some(Data::String(q)) if q == question))
        .map(|r| format!("D{}", r + 1))
        .unwrap_or_else(|| panic!("no row {question} on {sheet}"))
}

/// Set a number in a workbook's cell as another program would (openpyxl from the test venv).
fn set_number(xlsx: &[u8], sheet: &str, cell: &str, n: f64) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.xlsx");
    std::fs::write(&path, xlsx).unwrap();
    let script = "import sys, openpyxl\n\
        wb = openpyxl.load_workbook(sys.argv[1])\n\
        wb[sys.argv[2]][sys.argv[3]].value = float(sys.argv[4])\n\
        wb.save(sys.argv[1])\n";
    let python = std::env::var("COHERENCE_TEST_PYTHON").expect("COHERENCE_TEST_PYTHON");
    let out = std::process::Command::new(python)
        .args(["-c", script, path.to_str().unwrap(), sheet, cell])
        .arg(n.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(&path).unwrap()
}

async fn a_workbook_changes_answers_but_never_confirms(backend: Backend) {
    let app = spawn(backend).await;
    answer_round_one(&app, "SWE", ABOUT, POLICY).await;
    let link = app.issue_token("r2", "SWE", "Anna");
    // Confirmed online first.
    let boxes = [("lead.confirm", "1"), ("staff.confirm", "1")];
    assert_eq!(
        save(&app, &link, "about", &[ABOUT_2, &boxes]).await.status,
        303
    );
    let xlsx = app
        .client
        .get(format!("{}{link}/questionnaire.xlsx", app.address))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let cell = answer_cell(&xlsx, "1. About", "staff");
    let filled = set_number(&xlsx, "1. About", &cell, 30.0);
    let overview = app.get(&link).await;
    let form = reqwest::multipart::Form::new()
        .text("_csrf", overview.hidden("_csrf"))
        .part(
            "file",
            reqwest::multipart::Part::bytes(filled)
                .file_name("questionnaire.xlsx")
                .mime_str("application/octet-stream")
                .unwrap(),
        );
    let res = app
        .client
        .post(format!("{}{link}/questionnaire", app.address))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().await.unwrap());
    // The staff figure changed; the confirmations stay as they were.
    let about = app.get(&format!("{link}/s/about")).await;
    assert_eq!(about.field_value("staff").as_deref(), Some("30"));
    assert!(
        about.body.contains("<span class=\"previous\">12</span>"),
        "{}",
        about.body
    );
    let stored = confirmed(&app, "r2", "SWE");
    assert!(stored["lead"] && stored["staff"]);
    assert!(!stored["plan"]);
}

async fn demo_data_fills_two_linked_rounds(backend: Backend) {
    let app = spawn(backend).await;
    let out = app.cli(&["demo-data", "r2", "--countries", "12"], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("r1: demo responses for 12 countries"),
        "{stdout}"
    );
    assert!(
        stdout.contains("r2: demo responses for 12 countries"),
        "{stdout}"
    );

    let mut conn = conn(&app);
    let first = responses::survey_responses(&mut conn, "r1").unwrap();
    let second = responses::survey_responses(&mut conn, "r2").unwrap();
    assert_eq!((first.len(), second.len()), (12, 12));
    let countries = |rs: &[responses::ResponseRow]| {
        let mut c: Vec<String> = rs.iter().map(|r| r.country_iso3.clone()).collect();
        c.sort();
        c
    };
    assert_eq!(countries(&first), countries(&second), "the same countries");
    let submitted_first = first.iter().filter(|r| r.status.is_submitted()).count();
    let from = carried::survey_carried_from(&mut conn, "r2").unwrap();
    assert_eq!(from.len(), submitted_first, "{stdout}");
    assert!(stdout.contains(&format!(
        "{submitted_first} started from the previous round"
    )));

    // Every submitted response of round two confirmed or changed each carried answer.
    let carried = carried::survey_carried_answers(&mut conn, "r2").unwrap();
    let (mut kept, mut changed) = (0, 0);
    for r in second.iter().filter(|r| r.status.is_submitted()) {
        let now = answers::load_answers(&mut conn, &r.id).unwrap();
        for c in carried.get(&r.id).into_iter().flat_map(|m| m.values()) {
            match c.is_unchanged(now.get(&c.question_id)) {
                true => {
                    assert!(c.confirmed_at.is_some(), "{}", c.question_id);
                    kept += 1;
                }
                false => changed += 1,
            }
        }
    }
    assert!(
        kept > 0 && changed > 0,
        "{kept} confirmed, {changed} changed"
    );
}

/// The shipped second round: a country that submitted `coherence-2008` (demo data) opens
/// `coherence-2010` in a browser, sees its carried answers marked and confirms one; axe-core
/// finds nothing on the overview and the section page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_second_round_in_a_real_browser() {
    use crate::browser::{axe, browser, chromedriver, click, wait_for};
    let surveys = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("surveys");
    let app = TestApp::spawn_with(Backend::Sqlite, surveys).await;
    let out = app.cli(&["demo-data", "coherence-2008", "--countries", "3"], None);
    assert!(out.status.success(), "{out:?}");
    let iso3 = responses::survey_responses(&mut conn(&app), "coherence-2008")
        .unwrap()
        .into_iter()
        .find(|r| r.status.is_submitted())
        .expect("a submitted response")
        .country_iso3;
    let link = app.issue_token("coherence-2010", &iso3, "Focal point");
    let driver = chromedriver();
    let c = browser(&driver, true).await;
    c.goto(&format!("{}{link}", app.address)).await.unwrap();
    wait_for(
        &c,
        "Answers carried from the previous round still to confirm",
    )
    .await;
    axe(&c, "overview with carried answers").await;
    c.goto(&format!("{}{link}/s/reply", app.address))
        .await
        .unwrap();
    let page = wait_for(&c, "From the previous round").await;
    assert!(page.contains("id=\"q-lead_institution-confirm\""), "{page}");
    axe(&c, "section with carried answers").await;
    click(&c, "#q-lead_institution-confirm").await;
    click(&c, "form[action$='/s/reply'] button[type='submit']").await;
    wait_for(&c, "Your answers were saved.").await;
    let confirmed = c
        .find(fantoccini::Locator::Css("#q-lead_institution-confirm"))
        .await
        .unwrap()
        .prop("checked")
        .await
        .unwrap();
    assert_eq!(confirmed.as_deref(), Some("true"));
    axe(&c, "section after confirming").await;
    c.close().await.unwrap();
    app.stop().await;
}

/// Several officials of a country open the new round at the same moment: one response, started
/// from the previous round once (one origin, each answer carried once, one audit record).
async fn officials_opening_the_round_at_once_prefill_it_once(backend: Backend) {
    use diesel::prelude::*;
    use diesel::sql_types::BigInt;
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let app = spawn(backend).await;
    for iso3 in ["KEN", "GHA", "SEN"] {
        answer_round_one(&app, iso3, ABOUT, POLICY).await;
        let links: Vec<String> = (0..4)
            .map(|i| app.issue_token("r2", iso3, &format!("Official {i}")))
            .collect();
        let clients: Vec<TestApp> = links.iter().map(|_| app.clone_with_new_client()).collect();
        let pages =
            futures_util::future::join_all(clients.iter().zip(&links).map(|(c, l)| c.get(l))).await;
        for page in &pages {
            assert_eq!(page.status, 200, "{iso3}: {}", page.body);
        }
        let (carried, from) = carried_into(&app, "r2", iso3);
        assert_eq!(from, Some(1), "{iso3}");
        assert_eq!(carried.len(), 6, "{iso3}: {carried:?}");
        let mut conn = conn(&app);
        // The entries recorded so far, chained.
        coherence::audit::seal(&mut conn).unwrap();
        let count = |conn: &mut db::PooledConn, sql: &str| -> i64 {
            diesel::sql_query(sql)
                .bind::<diesel::sql_types::Text, _>(iso3)
                .get_result::<Count>(conn)
                .unwrap()
                .n
        };
        let responses = count(
            &mut conn,
            "SELECT COUNT(*) AS n FROM responses WHERE survey_id = 'r2' AND country_iso3 = $1",
        );
        let carried_rows = count(
            &mut conn,
            "SELECT COUNT(*) AS n FROM carried_answers c JOIN responses r ON r.id = c.response_id \
             WHERE r.survey_id = 'r2' AND r.country_iso3 = $1",
        );
        let audited = count(
            &mut conn,
            "SELECT COUNT(*) AS n FROM audit_log WHERE kind = 'carried' AND country_iso3 = $1",
        );
        assert_eq!((responses, carried_rows, audited), (1, 6, 1), "{iso3}");
    }
}

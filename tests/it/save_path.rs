//! The write of a draft save: one statement however many answers change, what was saved
//! shown back, and the audit chain still whole after many concurrent saves. Every test runs on SQLite and PostgreSQL.

use std::collections::HashSet;
use std::path::PathBuf;

use crate::helpers::{Backend, Page, TestApp};
use crate::on_both_backends;

on_both_backends!(
    a_save_writes_in_a_bounded_number_of_statements,
    every_character_and_number_of_an_answer_is_kept,
    the_audit_chain_verifies_after_concurrent_saves,
    a_save_is_written_only_while_the_response_may_change,
);

/// What a save sends, however many answers change and whether or not stored items go (a
/// choice unticked, an answer cleared): the read of the link with its response, answers and
/// section states, in one statement (as a page view reads them), then the save itself, one
/// statement (the claim of the section, the items dropped, the items inserted or updated and
/// the audit entry, written by the database's trigger; chained later by the sealer, on a
/// connection of its own that is not counted here). No BEGIN and COMMIT: one statement is
/// atomic on its own.
const SAVE_STATEMENTS: u64 = 1 + 1;

fn bench_surveys() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/fixtures")
}

/// Post `answers` from the section's form (opened first), counting the statements of the
/// POST alone through the server's `/metrics`.
async fn save_counting(app: &TestApp, link: &str, answers: &[(&str, &str)]) -> (Page, u64) {
    let path = format!("{link}/s/main");
    let form = app.get(&path).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let before = app.sql_statements().await;
    let page = app.post_form_from(&form, &path, answers).await;
    let after = app.sql_statements().await;
    (page, after - before)
}

fn assert_statements(label: &str, statements: u64) {
    eprintln!("{label}: {statements} statements");
    assert_eq!(
        statements, SAVE_STATEMENTS,
        "{label}: {statements} statements"
    );
}

/// The bench section's 20 answers, every one different for `n` = 0 and `n` = 1.
fn answers(n: usize) -> Vec<(&'static str, String)> {
    let pick = |k: usize| ["a", "b", "c", "d"][(n + k) % 4].to_string();
    vec![
        ("t1", format!("Marker {n}")),
        ("t2", format!("Ministry {n}")),
        ("t3", format!("Unit {n}")),
        ("t4", format!("Focal point {n}")),
        ("t5", format!("City {n}")),
        ("l1", format!("Long answer {n}")),
        ("l2", format!("Second long answer {n}")),
        ("l3", format!("Third long answer {n}")),
        ("s1", pick(0)),
        ("s2", pick(1)),
        ("m1", pick(2)),
        ("m2", pick(3)),
        ("y1", ["yes", "no"][n % 2].to_string()),
        ("y2", ["no", "yes"][n % 2].to_string()),
        ("n1", (10 + n).to_string()),
        ("n2", (20 + n).to_string()),
        ("d1", format!("{n}.5")),
        ("dt", format!("200{n}-10-27")),
        ("c1", ["PHL", "SWE"][n % 2].to_string()),
        ("x1.r1", ["hi", "lo"][n % 2].to_string()),
        ("x1.r2", ["mid", "hi"][n % 2].to_string()),
        ("x1.r3", ["lo", "mid"][n % 2].to_string()),
    ]
}

fn as_form<'a>(a: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    a.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn a_save_writes_in_a_bounded_number_of_statements(backend: Backend) {
    let app = TestApp::spawn_with(backend, bench_surveys()).await;
    let link = app.issue_token("bench", "SWE", "Anna");

    // The first save of the section: 20 answers, nothing stored before.
    let first = answers(0);
    let (page, first_save) = save_counting(&app, &link, &as_form(&first)).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_statements("first save, 20 answers", first_save);

    // One answer changed.
    let mut one = first.clone();
    one[0].1 = "Marker changed".into();
    let (page, one_changed) = save_counting(&app, &link, &as_form(&one)).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_statements("1 changed answer", one_changed);

    // Every answer but the multiple choices changed, each keeping its items: as many
    // statements as for one.
    let mut in_place = answers(1);
    in_place[10].1 = first[10].1.clone();
    in_place[11].1 = first[11].1.clone();
    let (page, in_place_changed) = save_counting(&app, &link, &as_form(&in_place)).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_statements("18 answers changed in place", in_place_changed);

    // The multiple choices too: their old choices are deleted, in the same statement.
    let all = answers(1);
    let (page, all_changed) = save_counting(&app, &link, &as_form(&all)).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_statements("2 choices changed", all_changed);

    // What was saved is what the form shows, the choices no longer ticked included.
    let form = app.get(&format!("{link}/s/main")).await;
    for (q, v) in &all {
        if q.contains('.') || ["s1", "s2", "m1", "m2", "y1", "y2", "c1"].contains(q) {
            continue;
        }
        assert_eq!(form.field_value(q).as_deref(), Some(v.as_str()), "{q}");
    }
    assert!(form.is_checked("s1", &all[8].1));
    assert!(form.is_checked("m1", &all[10].1) && !form.is_checked("m1", &first[10].1));
    assert!(form.is_checked("m2", &all[11].1) && !form.is_checked("m2", &first[11].1));
    assert!(form.is_checked("y1", "no"));

    // Every answer cleared, whatever their number: deleted, nothing inserted.
    let (page, cleared) = save_counting(&app, &link, &[]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_statements("20 answers cleared", cleared);
    let form = app.get(&format!("{link}/s/main")).await;
    assert_eq!(form.field_value("t1").as_deref(), Some(""));
    assert!(!form.is_checked("m1", &all[10].1) && !form.is_checked("y1", "no"));
}

/// The answers travel to the database as JSON, unpacked there: text that JSON escapes
/// (quotes, backslashes, control characters, characters outside the basic plane) and decimals
/// come back exactly as typed. A NUL, which PostgreSQL cannot store, is dropped on both.
async fn every_character_and_number_of_an_answer_is_kept(backend: Backend) {
    let app = TestApp::spawn_with(backend, bench_surveys()).await;
    let link = app.issue_token("bench", "SWE", "Anna");
    let texts = [
        ("t1", r#""Quoted" 'single' \back\slash \u0041 \n"#),
        ("t2", "Tab\there, emoji \u{1F600}, 中文, é, RTL \u{202E}x"),
        ("t3", r#"["x", 1, {"a": null}] </textarea><script>"#),
        ("l1", "Line one\nline two\n\n  indented line"),
    ];
    let mut form: Vec<(&str, &str)> = texts.to_vec();
    form.extend([("t4", "before\0after"), ("d1", "0.1"), ("n1", "999999")]);
    let (page, _) = save_counting(&app, &link, &form).await;
    assert_eq!(page.status, 303, "{}", page.body);
    // A second save (the form posts every field): one more answer, one changed.
    form.retain(|(q, _)| *q != "d1");
    form.extend([("t5", "second save"), ("d1", "12.3456789")]);
    let (page, _) = save_counting(&app, &link, &form).await;
    assert_eq!(page.status, 303, "{}", page.body);

    let pool = coherence::db::connect(&coherence::db::DbUrl::parse(&app.database_url).unwrap(), 1)
        .unwrap();
    let mut conn = pool.get().unwrap();
    let response = coherence::db::answers::survey_answers(&mut conn, "bench").unwrap();
    assert_eq!(response.len(), 1);
    let stored = response.values().next().unwrap();
    let value = |q: &str| {
        let items = stored.get(q).unwrap_or_else(|| panic!("{q} stored"));
        assert_eq!(items.len(), 1, "{q}");
        items[0].clone()
    };
    for (q, text) in texts {
        assert_eq!(value(q).value, text, "{q}");
        assert_eq!(value(q).num, None, "{q}");
    }
    assert_eq!(value("t4").value, "beforeafter");
    assert_eq!(value("t5").value, "second save");
    assert_eq!(value("d1").num, Some(12.3456789));
    assert_eq!(value("n1").num, Some(999999.0));
    assert_eq!(value("n1").value, "999999");
}

/// The save statement's trigger repeats the statuses in which a response may change
/// (`ResponseStatus::is_editable`): in each of those a save is written, its answer, version,
/// hidden questions, survey version and audit entry; in every other status nothing is, neither
/// a section's first save nor a later one. The pages check the status before they save; this is the check that holds when the
/// status changes between that read and the write.
async fn a_save_is_written_only_while_the_response_may_change(backend: Backend) {
    use coherence::db::queries::{write_section, ResponseStatus, SectionWrite, WriteOutcome};
    use coherence::db::schema::{access_tokens, answers, audit_log, audit_pending};
    use coherence::db::schema::{hidden_questions, responses, section_states};
    use coherence::survey::answer::Item;
    use diesel::prelude::*;

    let app = TestApp::spawn_with(backend, bench_surveys()).await;
    let link = app.issue_token("bench", "SWE", "Anna");
    let (page, _) = save_counting(&app, &link, &[("t1", "Draft")]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    // Sets the response's status by hand.
    let mut conn = crate::helpers::writable_conn(&app.database_url);
    let (response_id, survey_version): (String, String) = responses::table
        .select((responses::id, responses::survey_version))
        .first(&mut conn)
        .unwrap();
    let token_id: String = access_tokens::table
        .select(access_tokens::id)
        .first(&mut conn)
        .unwrap();
    let saves = |conn: &mut coherence::db::DbConn| -> i64 {
        let logged: i64 = audit_log::table
            .filter(audit_log::kind.eq("saved"))
            .count()
            .get_result(conn)
            .unwrap();
        let pending: i64 = audit_pending::table
            .filter(audit_pending::kind.eq("saved"))
            .count()
            .get_result(conn)
            .unwrap();
        logged + pending
    };
    let version = |conn: &mut coherence::db::DbConn, section: &str| -> Option<i32> {
        section_states::table
            .filter(section_states::section_id.eq(section))
            .select(section_states::version)
            .first(conn)
            .optional()
            .unwrap()
    };
    let t1 = |conn: &mut coherence::db::DbConn| -> String {
        answers::table
            .filter(answers::question_id.eq("t1"))
            .select(answers::value)
            .first(conn)
            .unwrap()
    };
    let response = |conn: &mut coherence::db::DbConn| -> (String, Vec<String>) {
        let version = responses::table
            .select(responses::survey_version)
            .first(conn)
            .unwrap();
        let hidden = hidden_questions::table
            .select(hidden_questions::question_id)
            .order(hidden_questions::question_id)
            .load(conn)
            .unwrap();
        (version, hidden)
    };
    let state = |conn: &mut coherence::db::DbConn, section: &str| {
        (
            version(conn, section),
            t1(conn),
            saves(conn),
            response(conn),
        )
    };
    let none = HashSet::new();
    let mut editable = 0;
    for (n, status) in ResponseStatus::ALL.iter().enumerate() {
        diesel::update(responses::table)
            .set(responses::status.eq(status.as_str()))
            .execute(&mut conn)
            .unwrap();
        // A later save of the section saved above, and the first save of another.
        for section in ["main", &format!("first-{n}")] {
            let before = state(&mut conn, section);
            // Saved under another version of the survey, with another question hidden.
            let survey_version = format!("{survey_version}+{n}-{section}");
            let hidden = HashSet::from([format!("hidden-{n}-{section}")]);
            let changes = vec![(
                "t1".to_string(),
                vec![Item::scalar(status.to_string(), None)],
            )];
            let stored = |_: &str| -> &[Item] { &[] };
            let outcome = write_section(
                &mut conn,
                &SectionWrite {
                    response_id: &response_id,
                    section_id: section,
                    base_version: before.0.unwrap_or(0),
                    token_id: &token_id,
                    survey_version: &survey_version,
                    stored_survey_version: &before.3 .0,
                    survey_id: "bench",
                    country_iso3: "SWE",
                    changes: &changes,
                    stored: &stored,
                    hidden_before: &none,
                    hidden_after: &hidden,
                    now: chrono::Utc::now().naive_utc(),
                },
            )
            .unwrap();
            let after = state(&mut conn, section);
            if status.is_editable() {
                let version = before.0.unwrap_or(0) + 1;
                assert_eq!(
                    outcome,
                    WriteOutcome::Saved { version },
                    "{status} {section}"
                );
                let response = (survey_version, hidden.into_iter().collect());
                assert_eq!(
                    after,
                    (Some(version), status.to_string(), before.2 + 1, response)
                );
                editable += 1;
            } else {
                assert_eq!(outcome, WriteOutcome::NotEditable, "{status} {section}");
                assert_eq!(after, before, "{status} {section}: nothing written");
            }
        }
    }
    assert_eq!(editable, 4, "draft and returned, each section");
}

async fn the_audit_chain_verifies_after_concurrent_saves(backend: Backend) {
    let app = TestApp::spawn_with(backend, bench_surveys()).await;
    let countries = ["SWE", "PHL", "MEX", "GHA"];
    let links: Vec<String> = countries
        .iter()
        .map(|c| app.issue_token("bench", c, "Official"))
        .collect();
    // Four countries, each with three officials saving the same section at once, five times.
    let mut tasks = Vec::new();
    for link in &links {
        for official in 0..3 {
            let app = app.clone_with_new_client();
            let link = link.clone();
            tasks.push(tokio::spawn(async move {
                let mut saved = 0;
                for round in 0..5 {
                    let mut a = answers(round % 2);
                    a[0].1 = format!("Official {official}, round {round}");
                    let page = app.save_section(&link, "main", &as_form(&a)).await;
                    assert!(
                        page.status == 303 || page.status == 200 || page.status == 409,
                        "{}: {}",
                        page.status,
                        page.body
                    );
                    if page.status == 303 {
                        saved += 1;
                    }
                }
                saved
            }));
        }
    }
    let mut acknowledged = 0;
    for t in tasks {
        acknowledged += t.await.unwrap();
    }
    assert!(acknowledged >= countries.len(), "{acknowledged} saves");

    // Every acknowledged save is in the audit chain, which verifies.
    let out = app.cli(&["audit", "verify"], None);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("audit log verified"), "{stdout}");
    let url = coherence::db::DbUrl::parse(&app.database_url).unwrap();
    let pool = coherence::db::connect(&url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    let entries = coherence::db::audit::entries(&mut conn, Some("bench")).unwrap();
    let saved: Vec<_> = entries.iter().filter(|e| e.kind == "saved").collect();
    assert_eq!(saved.len(), acknowledged, "saved entries");
    let by_country: HashSet<&str> = saved.iter().map(|e| e.country_iso3.as_str()).collect();
    assert_eq!(by_country.len(), countries.len());
    // Each section's versions were acknowledged once each: 1, 2, ... in the chain's order.
    for country in countries {
        let versions: Vec<i64> = saved
            .iter()
            .filter(|e| e.country_iso3 == country)
            .map(|e| {
                serde_json::from_str::<serde_json::Value>(&e.detail).unwrap()["version"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        let expected: Vec<i64> = (1..=versions.len() as i64).collect();
        assert_eq!(versions, expected, "{country}");
    }
}

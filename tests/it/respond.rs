//! The focal point's flow over HTTP, on both backends.

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    overview_shows_country_sections_and_deadline,
    partial_section_is_saved_as_draft,
    invalid_values_are_refused_one_by_one_and_the_rest_kept,
    conditional_questions_follow_earlier_answers,
    stale_save_reports_a_conflict_with_both_values,
    submit_requires_a_complete_response_then_locks_it,
    unknown_links_get_a_bare_404_and_guessing_is_limited,
    closed_survey_accepts_no_changes,
    forms_without_csrf_token_are_refused,
    oversized_bodies_are_refused,
    draft_survives_a_restart,
    every_save_records_the_link_that_made_it,
    two_browsers_on_the_same_link_do_not_overwrite_each_other,
    a_link_reads_and_writes_only_its_own_countrys_response,
    pages_read_beside_concurrent_saves_show_each_link_its_own_answers,
    answers_are_escaped_in_every_page,
    a_twenty_question_page_weighs_under_30_kb,
    the_respondent_picks_english_french_or_spanish,
    the_questionnaire_prints_blank_or_with_answers,
    every_respondent_page_of_the_shipped_surveys_renders_in_every_language,
    a_percentage_question_end_to_end,
);

async fn overview_shows_country_sections_and_deadline(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app.issue_token("fixture", "PHL", "Maria");
    // Every respondent page is a whole document in the service's layout.
    for path in [
        link.clone(),
        format!("{link}/s/basics"),
        format!("{link}/review"),
    ] {
        let page = app.get(&path).await;
        assert!(
            page.body.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"),
            "{path}"
        );
        assert!(page
            .body
            .contains("<link rel=\"stylesheet\" href=\"/static/app.css?v="));
        assert!(page
            .body
            .contains("<a class=\"skip\" href=\"#main\">Skip to main content</a>"));
        assert!(page.body.contains("<title>") && page.body.trim_end().ends_with("</html>"));
    }
    let page = app.get(&link).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Response of Philippines"),
        "{}",
        page.body
    );
    assert!(page
        .body
        .contains("Deadline: 31 December 2099, 23:59 (UTC)"));
    for section in ["Basics", "Plans"] {
        assert!(page.body.contains(section), "section {section} listed");
    }
    // The conditional section is listed as not applicable until its condition holds.
    assert!(page.body.contains("tag-not_applicable"));
    assert_eq!(
        page.headers
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
    assert_eq!(
        page.headers
            .get("referrer-policy")
            .map(|v| v.to_str().unwrap()),
        Some("same-origin")
    );
    app.stop().await;
}

async fn partial_section_is_saved_as_draft(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app.issue_token("fixture", "SWE", "Anna");
    // Required "active" is left out: a draft save does not enforce required answers.
    let res = app
        .save_section(
            &link,
            "basics",
            &[
                ("name", "Anna"),
                ("staff", "12"),
                ("tools", "a"),
                ("tools", "c"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(
        res.location.as_deref(),
        Some(format!("{link}/s/basics?saved=1").as_str())
    );
    let form = app.get(&format!("{link}/s/basics?saved=1")).await;
    assert!(form.body.contains("Your answers were saved."));
    assert_eq!(form.field_value("name").as_deref(), Some("Anna"));
    assert_eq!(form.field_value("staff").as_deref(), Some("12"));
    assert!(form.is_checked("tools", "a") && form.is_checked("tools", "c"));
    assert!(!form.is_checked("tools", "b"));
    let overview = app.get(&link).await;
    assert!(
        overview.body.contains("tag-in_progress"),
        "basics is in progress"
    );
    app.stop().await;
}

async fn invalid_values_are_refused_one_by_one_and_the_rest_kept(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app.issue_token("fixture", "SWE", "Anna");
    // One invalid value per question type, with one valid value to keep.
    let cases: &[(&str, &str, &str)] = &[
        ("name", "far too long a name", "Use at most 10 characters"),
        ("notes", "hey", "Use at least 5 characters"),
        ("colour", "green", "Choose one of the listed options"),
        ("active", "maybe", "Choose yes or no"),
        ("staff", "101", "Enter a number of at most 100"),
        ("share", "abc", "Enter a number, such as 2.5"),
        ("since", "1999-12-31", "Enter a date on or after 2000-01-01"),
        ("partner", "XXX", "Choose a country from the list"),
        ("contact", "not-an-email", "Enter an email address"),
        (
            "site",
            "javascript:alert(1)",
            "Enter a web address starting with http:// or https://",
        ),
        ("grid.r1", "s9", "Choose one of the listed options"),
    ];
    let form = app.get(&format!("{link}/s/basics")).await;
    let mut fields: Vec<(&str, &str)> = cases.iter().map(|(q, v, _)| (*q, *v)).collect();
    fields.push(("tools", "a"));
    let res = app
        .post_form_from(&form, &format!("{link}/s/basics"), &fields)
        .await;
    assert_eq!(res.status, 422, "{}", res.body);
    assert!(res.body.contains("There is a problem"));
    assert!(res
        .body
        .contains("Your other answers in this section were saved."));
    for (question, value, message) in cases {
        let q = question.split('.').next().unwrap();
        let shown = res
            .field_error(q)
            .unwrap_or_else(|| panic!("no error for {q}"));
        assert!(
            shown.starts_with(message),
            "{q}: '{shown}' should start with '{message}'"
        );
        // The summary links to the field.
        assert!(
            res.body.contains(&format!("href=\"#field-{q}\"")),
            "summary links {q}"
        );
        if !question.contains('.') && !["colour", "active", "partner"].contains(&q) {
            // The refused value is shown again for correction (escaped).
            let shown_value = res.field_value(q).unwrap_or_default();
            assert_eq!(shown_value, *value, "{q} shows the typed value again");
        }
    }
    // The valid answer was stored despite the errors.
    let fresh = app.get(&format!("{link}/s/basics")).await;
    assert!(fresh.is_checked("tools", "a"));
    assert_eq!(fresh.field_error("name"), None);

    // More edge cases, each alone: other without text, too many choices, not a whole number,
    // a date that is not a date, a decimal above the maximum.
    for (fields, question, message) in [
        (vec![("colour", "other")], "colour", "Say what “other” is"),
        (
            vec![("tools", "a"), ("tools", "b"), ("tools", "c")],
            "tools",
            "Choose at most 2 options",
        ),
        (vec![("staff", "1.5")], "staff", "Enter a whole number"),
        (
            vec![("since", "31/12/2005")],
            "since",
            "Enter a date as year-month-day",
        ),
        (
            vec![("share", "1.5")],
            "share",
            "Enter a number of at most 1",
        ),
    ] {
        let form = app.get(&format!("{link}/s/basics")).await;
        let res = app
            .post_form_from(&form, &format!("{link}/s/basics"), &fields)
            .await;
        assert_eq!(res.status, 422, "{question}");
        let shown = res
            .field_error(question)
            .unwrap_or_else(|| panic!("no error for {question}"));
        assert!(shown.starts_with(message), "{question}: {shown}");
    }
    // Valid values of every type are accepted.
    let res = app
        .save_section(
            &link,
            "basics",
            &[
                ("name", "Anna"),
                ("notes", "Five or more"),
                ("colour", "other"),
                ("colour.other", "Green"),
                ("tools", "b"),
                ("active", "yes"),
                ("staff", "100"),
                ("share", "0.25"),
                ("since", "2005-06-01"),
                ("partner", "mar"),
                ("contact", "anna@gov.se"),
                ("site", "https://regeringen.se/migration"),
                ("grid.r1", "s1"),
                ("grid.r2", "s2"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let form = app.get(&format!("{link}/s/basics")).await;
    assert!(form
        .body
        .contains("<option value=\"MAR\" selected>Morocco</option>"));
    assert!(form.body.contains("name=\"colour.other\" value=\"Green\""));
    assert!(form
        .body
        .contains("name=\"grid.r2\" value=\"s2\" aria-labelledby=\"q-grid-r2 s-grid-s2\" checked"));
    app.stop().await;
}

async fn conditional_questions_follow_earlier_answers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app.issue_token("fixture", "SWE", "Anna");
    let plans = app.get(&format!("{link}/s/plans")).await;
    assert!(plans.has_field("has_plan"));
    assert!(
        !plans.has_field("plan_year"),
        "hidden until has_plan is yes"
    );
    // Answering yes reveals the follow-up question in the same section.
    let res = app
        .save_section(&link, "plans", &[("has_plan", "yes")])
        .await;
    assert_eq!(
        res.location.as_deref(),
        Some(format!("{link}/s/plans?saved=1&more=1").as_str())
    );
    let plans = app.get(res.location.as_deref().unwrap()).await;
    assert!(plans.body.contains("further questions"));
    assert!(plans.has_field("plan_year"));
    app.save_section(
        &link,
        "plans",
        &[("has_plan", "yes"), ("plan_year", "2007")],
    )
    .await;

    // A section whose condition reads another section's answers.
    assert_eq!(app.get(&format!("{link}/s/extra")).await.status, 404);
    app.save_section(&link, "basics", &[("active", "yes"), ("tools", "a")])
        .await;
    assert_eq!(app.get(&format!("{link}/s/extra")).await.status, 200);

    // Required-ness follows visibility: with has_plan = no, plan_year is not required and its
    // stale answer does not count.
    app.save_section(&link, "plans", &[("has_plan", "no")])
        .await;
    let review = app.get(&format!("{link}/review")).await;
    assert!(
        !review.body.contains("Plan year"),
        "hidden question left out of the review"
    );
    let form = app.get(&format!("{link}/review")).await;
    let res = app.post_form_from_review(&form, &link).await;
    assert_eq!(res.status, 422);
    assert!(res.body.contains("Name"), "name is still missing");
    assert!(
        res.body.contains("Extra note"),
        "the revealed section's required question"
    );
    assert!(!res.body.contains("Plan year"));
    app.stop().await;
}

async fn stale_save_reports_a_conflict_with_both_values(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link_a = app.issue_token("fixture", "SWE", "Anna");
    let link_b = app.issue_token("fixture", "SWE", "Björn");
    // Both officials open the section.
    let form_a = app.get(&format!("{link_a}/s/basics")).await;
    let form_b = app.get(&format!("{link_b}/s/basics")).await;
    let saved = app
        .post_form_from(
            &form_a,
            &format!("{link_a}/s/basics"),
            &[("name", "Anna"), ("staff", "10")],
        )
        .await;
    assert_eq!(saved.status, 303);
    // Björn saves from the older version: nothing of his is written, both values are shown.
    let res = app
        .post_form_from(
            &form_b,
            &format!("{link_b}/s/basics"),
            &[("name", "Björn"), ("staff", "10")],
        )
        .await;
    assert_eq!(res.status, 409, "{}", res.body);
    assert!(res.body.contains("Someone else saved this section"));
    assert!(
        res.body.contains("Anna saved this section"),
        "names who saved"
    );
    assert!(
        res.body.contains("<td>Björn</td><td>Anna</td>"),
        "both values: {}",
        res.body
    );
    assert_eq!(
        res.field_value("name").as_deref(),
        Some("Björn"),
        "the form keeps his value"
    );
    let stored = app.get(&format!("{link_a}/s/basics")).await;
    assert_eq!(
        stored.field_value("name").as_deref(),
        Some("Anna"),
        "not overwritten"
    );
    // Saving again from the conflict page is a deliberate overwrite.
    let res = app
        .post_form_from(
            &res,
            &format!("{link_b}/s/basics"),
            &[("name", "Björn"), ("staff", "10")],
        )
        .await;
    assert_eq!(res.status, 303);
    let stored = app.get(&format!("{link_a}/s/basics")).await;
    assert_eq!(stored.field_value("name").as_deref(), Some("Björn"));
    app.stop().await;
}

async fn submit_requires_a_complete_response_then_locks_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app.issue_token("fixture", "SWE", "Anna");
    app.save_section(&link, "basics", &[("name", "Anna")]).await;
    let review = app.get(&format!("{link}/review")).await;
    let res = app.post_form_from_review(&review, &link).await;
    assert_eq!(res.status, 422);
    assert!(res
        .body
        .contains("These required questions still need an answer"));
    assert!(
        res.body.contains(&format!("{link}/s/basics#field-active")),
        "links to the missing field"
    );
    assert!(res.body.contains(&format!("{link}/s/plans#field-has_plan")));

    app.save_section(&link, "basics", &[("name", "Anna"), ("active", "no")])
        .await;
    app.save_section(&link, "plans", &[("has_plan", "no")])
        .await;
    let review = app.get(&format!("{link}/review")).await;
    assert!(review.body.contains("<dd>Anna</dd>"));
    let res = app.post_form_from_review(&review, &link).await;
    assert_eq!(res.status, 303, "{}", res.body);
    let overview = app.get(&link).await;
    assert!(overview.body.contains("Submitted on "), "{}", overview.body);

    // Read-only afterwards: the form has no save button and a save is refused.
    let form = app.get(&format!("{link}/s/basics")).await;
    assert!(form
        .body
        .contains("has been submitted and can no longer be changed"));
    assert!(!form.body.contains("<button type=\"submit\">"));
    let res = app
        .post_form_from(&form, &format!("{link}/s/basics"), &[("name", "Changed")])
        .await;
    assert_eq!(res.status, 409);
    assert!(
        res.body.contains("Your answers were not saved"),
        "{}",
        res.body
    );
    assert!(
        res.body.contains("value=\"Changed\""),
        "what was typed is kept"
    );
    let again = app.get(&format!("{link}/s/basics")).await;
    assert_eq!(again.field_value("name").as_deref(), Some("Anna"));
    // A second submit is refused too.
    let res = app.post_form_from_review(&review, &link).await;
    assert_eq!(res.status, 409);
    app.stop().await;
}

async fn unknown_links_get_a_bare_404_and_guessing_is_limited(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let real = app.issue_token("fixture", "SWE", "Anna");
    let fake = format!("/r/{}", "ab".repeat(24));
    let page = app.get(&fake).await;
    assert_eq!(page.status, 404);
    assert!(page.body.contains("Page not found"));
    assert!(
        !page.body.contains("Sweden") && !page.body.contains("fixture"),
        "reveals nothing"
    );
    assert_eq!(app.get("/r/short").await.status, 404);
    // A method a page does not serve (a form's action opened as a page), for a link real or
    // not: 405, told as no such page, without looking at the link.
    for link in [&real, &fake] {
        let page = app.get(&format!("{link}/submit")).await;
        assert_eq!(page.status, 405);
        assert!(page.body.contains("Page not found"), "{}", page.body);
    }
    // The page speaks the browser's language.
    let res = app
        .client
        .get(format!("{}/r/short", app.address))
        .header("accept-language", "es-MX,es;q=0.9")
        .send()
        .await
        .unwrap();
    assert!(res.text().await.unwrap().contains("Página no encontrada"));
    // Keep guessing: unknown links from the address are refused for a while (counted in the
    // database, so every node shares the count); a real link still works from there.
    let mut limited = false;
    for _ in 0..30 {
        if app.get(&fake).await.status == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "guessing is rate-limited");
    assert_eq!(
        app.get(&real).await.status,
        200,
        "a valid link is never refused"
    );
    app.stop().await;
}

async fn closed_survey_accepts_no_changes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app.issue_token("closed", "SWE", "Anna");
    let overview = app.get(&link).await;
    assert!(overview
        .body
        .contains("This survey closed on 31 January 2001, 23:59 (UTC)"));
    let form = app.get(&format!("{link}/s/only")).await;
    assert!(form.body.contains("This survey is closed"));
    let res = app
        .post_form_from(&form, &format!("{link}/s/only"), &[("q", "late")])
        .await;
    assert_eq!(res.status, 409);
    assert!(res.body.contains("This survey is closed"), "{}", res.body);
    assert!(res.body.contains("Your answers were not saved"));
    assert_eq!(
        res.field_value("q").as_deref(),
        Some("late"),
        "what was typed is kept"
    );
    let form = app.get(&format!("{link}/s/only")).await;
    assert_eq!(form.field_value("q").as_deref(), Some(""));
    app.stop().await;
}

async fn forms_without_csrf_token_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app.issue_token("fixture", "SWE", "Anna");
    let form = app.get(&format!("{link}/s/basics")).await;
    let version = form.hidden("_version");
    // No token at all.
    let res = app
        .post(
            &format!("{link}/s/basics"),
            &[("_version", &version), ("name", "X")],
        )
        .await;
    assert_eq!(res.status, 403);
    assert!(res.body.contains("The form has expired"));
    // A wrong token.
    let res = app
        .post(
            &format!("{link}/s/basics"),
            &[("_csrf", &"0".repeat(64)), ("name", "X")],
        )
        .await;
    assert_eq!(res.status, 403);
    // A cross-site origin with the right token.
    let csrf = form.hidden("_csrf");
    let res = app
        .client
        .post(format!("{}{link}/s/basics", app.address))
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string([("_csrf", csrf.as_str()), ("name", "X")]).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let review = app.get(&format!("{link}/review")).await;
    assert_eq!(app.post(&format!("{link}/submit"), &[]).await.status, 403);
    assert!(!review.body.contains("<dd>X</dd>"), "nothing was saved");
    let form = app.get(&format!("{link}/s/basics")).await;
    assert_eq!(form.field_value("name").as_deref(), Some(""));
    app.stop().await;
}

async fn oversized_bodies_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app.issue_token("fixture", "SWE", "Anna");
    let form = app.get(&format!("{link}/s/basics")).await;
    let body = format!(
        "_csrf={}&notes={}",
        form.hidden("_csrf"),
        "x".repeat(coherence::web::MAX_FORM_BYTES + 1)
    );
    let res = app.post_raw(&format!("{link}/s/basics"), body).await;
    assert_eq!(res.status, 413);
    assert!(res.body.contains("The form is too large"));
    app.stop().await;
}

async fn draft_survives_a_restart(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app.issue_token("fixture", "SWE", "Anna");
    app.save_section(
        &link,
        "basics",
        &[("name", "Anna"), ("notes", "Kept across restarts")],
    )
    .await;
    let (url, surveys, dir) = (
        app.database_url.clone(),
        app.surveys.clone(),
        app.dir.clone(),
    );
    app.stop().await;
    let app = TestApp::start(url, surveys, dir).await;
    let form = app.get(&format!("{link}/s/basics")).await;
    assert_eq!(form.status, 200);
    assert_eq!(
        form.field_value("notes").as_deref(),
        Some("Kept across restarts")
    );
    app.stop().await;
}

async fn every_save_records_the_link_that_made_it(backend: Backend) {
    use coherence::db::{self, schema, DbUrl};
    use diesel::prelude::*;
    let app = TestApp::spawn(backend).await;
    let link_a = app.issue_token("fixture", "SWE", "Anna");
    let link_b = app.issue_token("fixture", "SWE", "Björn");
    app.save_section(&link_a, "basics", &[("name", "Anna")])
        .await;
    app.save_section(&link_b, "basics", &[("name", "Anna"), ("staff", "3")])
        .await;
    let pool = db::connect(&DbUrl::parse(&app.database_url).unwrap(), 1).unwrap();
    let mut conn = pool.get().unwrap();
    let rows: Vec<(String, String, Option<String>)> = schema::answers::table
        .inner_join(
            schema::access_tokens::table
                .on(schema::access_tokens::id.eq(schema::answers::updated_by)),
        )
        .select((
            schema::answers::question_id,
            schema::answers::value,
            schema::access_tokens::holder_name,
        ))
        .order(schema::answers::question_id)
        .load(&mut conn)
        .unwrap();
    assert_eq!(
        rows,
        vec![
            ("name".into(), "Anna".into(), Some("Anna".into())),
            ("staff".into(), "3".into(), Some("Björn".into())),
        ]
    );
    // Each save is one audit entry, by its link.
    let saves: Vec<String> = coherence::db::audit::entries(&mut conn, Some("fixture"))
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "saved")
        .map(|e| e.actor)
        .collect();
    assert_eq!(saves.len(), 2, "{saves:?}");
    assert_ne!(saves[0], saves[1], "one save by each link");
    app.stop().await;
}

async fn two_browsers_on_the_same_link_do_not_overwrite_each_other(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app.issue_token("fixture", "KEN", "Shared desk");
    // A second browser: its own cookies, the same personal link.
    let other = TestApp {
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .build()
            .unwrap(),
        ..app.clone_handle()
    };
    let form_1 = app.get(&format!("{link}/s/plans")).await;
    let form_2 = other.get(&format!("{link}/s/plans")).await;
    let first = app
        .post_form_from(&form_1, &format!("{link}/s/plans"), &[("has_plan", "yes")])
        .await;
    assert_eq!(first.status, 303);
    let second = other
        .post_form_from(&form_2, &format!("{link}/s/plans"), &[("has_plan", "no")])
        .await;
    assert_eq!(second.status, 409);
    assert!(
        second.body.contains("<td>No</td><td>Yes</td>"),
        "{}",
        second.body
    );
    let stored = app.get(&format!("{link}/s/plans")).await;
    assert!(stored.is_checked("has_plan", "yes"));
    // A save that changes nothing the other made stale is not a conflict.
    let form_3 = other.get(&format!("{link}/s/plans")).await;
    let _ = app
        .save_section(
            &link,
            "plans",
            &[("has_plan", "yes"), ("plan_year", "2001")],
        )
        .await;
    // Its stale form would clear plan_year: a conflict.
    let clearing = other
        .post_form_from(&form_3, &format!("{link}/s/plans"), &[("has_plan", "yes")])
        .await;
    assert_eq!(clearing.status, 409);
    // The same values as stored change nothing, so the stale version does not matter.
    let same = other
        .post_form_from(
            &form_3,
            &format!("{link}/s/plans"),
            &[("has_plan", "yes"), ("plan_year", "2001")],
        )
        .await;
    assert_eq!(same.status, 303, "identical values do not conflict");
    app.stop().await;
}

async fn a_link_reads_and_writes_only_its_own_countrys_response(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let sweden = app.issue_token("fixture", "SWE", "Anna");
    let philippines = app.issue_token("fixture", "PHL", "Maria");
    app.save_section(&sweden, "basics", &[("name", "Swedish")])
        .await;
    app.save_section(&philippines, "basics", &[("name", "Filipino")])
        .await;
    let se = app.get(&format!("{sweden}/s/basics")).await;
    let ph = app.get(&format!("{philippines}/s/basics")).await;
    assert_eq!(se.field_value("name").as_deref(), Some("Swedish"));
    assert_eq!(ph.field_value("name").as_deref(), Some("Filipino"));
    assert!(!app
        .get(&format!("{philippines}/review"))
        .await
        .body
        .contains("Swedish"));
    // Routes carry no country or response id: a link can only ever address its own response,
    // and a link of one survey does not open another survey.
    let closed = app.issue_token("closed", "SWE", "Anna");
    assert!(!app.get(&closed).await.body.contains("Swedish"));
    assert_eq!(app.get(&format!("{closed}/s/basics")).await.status, 404);
    app.stop().await;
}

/// A page of a link used before is read on the server's worker thread when a pooled
/// connection is free at once, and in a blocking task otherwise (saves holding the
/// connections, a first visit): either way each link sees its own country's latest answers.
/// Eight links save five times each while their pages are read again and again, all at once.
async fn pages_read_beside_concurrent_saves_show_each_link_its_own_answers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let countries = ["SWE", "NOR", "FIN", "DNK", "ISL", "EST", "LVA", "LTU"];
    let links: Vec<String> = countries
        .iter()
        .map(|c| app.issue_token("fixture", c, "Anna"))
        .collect();
    // Each link's first visit and save (the response created) before the rest, all at once.
    for (link, country) in links.iter().zip(countries) {
        let name = format!("{country} 0");
        let saved = app
            .save_section(link, "basics", &[("name", name.as_str())])
            .await;
        assert_eq!(saved.status, 303, "{country}: {}", saved.body);
    }
    let saves = links.iter().zip(countries).map(|(link, country)| {
        let app = &app;
        async move {
            for round in 1..5 {
                let name = format!("{country} {round}");
                let saved = app
                    .save_section(link, "basics", &[("name", name.as_str())])
                    .await;
                assert_eq!(saved.status, 303, "{country}: {}", saved.body);
            }
        }
    });
    let reads = links.iter().zip(countries).map(|(link, country)| {
        let app = &app;
        async move {
            for _ in 0..10 {
                let page = app.get(&format!("{link}/s/basics")).await;
                assert_eq!(page.status, 200, "{country}: {}", page.body);
                let name = page.field_value("name").unwrap_or_default();
                assert!(
                    name.starts_with(&format!("{country} ")),
                    "{country}'s page shows {name:?}"
                );
            }
        }
    });
    futures_util::future::join(
        futures_util::future::join_all(saves),
        futures_util::future::join_all(reads),
    )
    .await;
    for (link, country) in links.iter().zip(countries) {
        let page = app.get(&format!("{link}/s/basics")).await;
        assert_eq!(
            page.field_value("name").as_deref(),
            Some(format!("{country} 4").as_str())
        );
    }
    app.stop().await;
}

async fn a_twenty_question_page_weighs_under_30_kb(backend: Backend) {
    let surveys = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/fixtures");
    let app = TestApp::spawn_with(backend, surveys).await;
    let link = app.issue_token("bench", "SWE", "Anna");
    let mut total = 0;
    let mut raw_total = 0;
    for path in [format!("{link}/s/main"), "/static/app.css?v=1".to_string()] {
        let res = app
            .client
            .get(format!("{}{path}", app.address))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap()),
            Some("gzip"),
            "{path}"
        );
        total += res.bytes().await.unwrap().len();
        raw_total += app.get(&path).await.body.len();
    }
    // The page has all 20 questions, a 249-country list among them; no script, no third party.
    assert!(
        total < 30 * 1024,
        "{total} bytes over the wire ({raw_total} uncompressed)"
    );
    let page = app.get(&format!("{link}/s/main")).await.body;
    assert!(!page.contains("<script") && !page.contains("http://") && !page.contains("https://"));
    app.stop().await;
}

async fn the_respondent_picks_english_french_or_spanish(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app.issue_token("fixture", "SWE", "Anna");
    // The browser's language on a first visit.
    let res = app
        .client
        .get(format!("{}{link}", app.address))
        .header("accept-language", "fr-CH, fr;q=0.9, en;q=0.8")
        .send()
        .await
        .unwrap();
    let body = res.text().await.unwrap();
    assert!(body.contains("<html lang=\"fr\">"), "{body}");
    assert!(body.contains("Réponse de Suède") && body.contains("Enquête d&#x27;essai"));
    assert!(
        body.contains("Date limite : 31 décembre 2099 à 23:59 (UTC)"),
        "dates in French"
    );
    // A plain link switches language, and the choice is remembered.
    let page = app.get(&format!("{link}/s/basics?lang=es")).await;
    assert!(page.body.contains("<html lang=\"es\">") && page.body.contains("Generalidades"));
    assert!(page.body.contains("Rojo") && page.body.contains(">Color"));
    assert!(
        page.body.contains(&format!(
            "href=\"{link}/s/basics?lang&#x3D;fr\" lang=\"fr\""
        )),
        "language links"
    );
    let again = app.get(&format!("{link}/s/basics")).await;
    assert!(
        again.body.contains("Generalidades"),
        "remembered in a cookie"
    );
    // Messages in the chosen language; answers stored as codes whatever the language.
    let res = app
        .post_form_from(
            &again,
            &format!("{link}/s/basics"),
            &[("colour", "red"), ("staff", "lots")],
        )
        .await;
    assert_eq!(res.status, 422);
    assert!(
        res.body.contains("Escriba un número entero"),
        "{}",
        res.body
    );
    let english = app.get(&format!("{link}/s/basics?lang=en")).await;
    assert!(english.is_checked("colour", "red"));
    assert!(english.body.contains("Red") && !english.body.contains("Rojo"));
    // A survey that offers English only ignores other languages and shows no switch.
    let closed = app.issue_token("closed", "SWE", "Anna");
    let page = app.get(&format!("{closed}?lang=fr")).await;
    assert!(page.body.contains("<html lang=\"en\">") && !page.body.contains("class=\"languages\""));
    app.stop().await;
}

async fn the_questionnaire_prints_blank_or_with_answers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app.issue_token("fixture", "SWE", "Anna");
    let blank = app.get(&format!("{link}/print")).await;
    assert_eq!(blank.status, 200);
    // Every section and question, conditional ones marked, options as boxes, no form fields.
    for text in [
        "1. Basics",
        "2. Plans",
        "3. Extra",
        "Plan year",
        "Extra note",
        "☐ Red",
        "☐ Blue",
        "Row one",
    ] {
        assert!(
            blank.body.contains(text),
            "{text} in the blank questionnaire"
        );
    }
    assert!(blank
        .body
        .contains("Only if it applies, given earlier answers."));
    assert!(!blank.body.contains("<input") && !blank.body.contains("<form"));
    app.save_section(
        &link,
        "basics",
        &[("name", "Anna"), ("colour", "blue"), ("grid.r1", "s2")],
    )
    .await;
    app.save_section(&link, "plans", &[("has_plan", "no")])
        .await;
    let filled = app.get(&format!("{link}/print?answers=1")).await;
    assert!(filled.body.contains("☒ Blue") && filled.body.contains("☐ Red"));
    assert!(filled.body.contains("<p class=\"print-answer\">Anna</p>"));
    assert!(
        !filled.body.contains("Plan year"),
        "questions not asked are left out"
    );
    let fr = app.get(&format!("{link}/print?lang=fr")).await;
    assert!(fr.body.contains("☐ Rouge"));
    app.stop().await;
}

async fn answers_are_escaped_in_every_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app.issue_token("fixture", "SWE", "Anna");
    let evil = "<b>\"x'&";
    let res = app
        .save_section(
            &link,
            "basics",
            &[("name", evil), ("notes", "<script>alert(1)</script>")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    for page in [format!("{link}/s/basics"), format!("{link}/review")] {
        let body = app.get(&page).await.body;
        assert!(!body.contains("<script>alert"), "{page} escapes answers");
        assert!(!body.contains("<b>\""), "{page} escapes answers");
        assert!(
            body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{page}"
        );
    }
    app.stop().await;
}

/// A rendered page in `lang`, whole (strict templates make a key missing from a view a 500).
fn assert_page(page: &crate::helpers::Page, status: u16, lang: &str, what: &str) {
    assert_eq!(page.status, status, "{what}: {}", page.body);
    assert!(
        page.body
            .starts_with(&format!("<!DOCTYPE html>\n<html lang=\"{lang}\">")),
        "{what} in {lang}"
    );
    assert!(page.body.trim_end().ends_with("</html>"), "{what} whole");
}

/// The sections an overview lists, with whether each applies (its page exists).
fn listed_sections(overview: &str, link: &str) -> Vec<(String, bool)> {
    let marker = format!("<li><a href=\"{link}/s/");
    overview
        .split(&marker)
        .skip(1)
        .map(|rest| {
            let id = rest.split('"').next().unwrap_or_default().to_string();
            let line = rest.split("</li>").next().unwrap_or_default();
            (id, !line.contains("tag-not_applicable"))
        })
        .collect()
}

async fn every_respondent_page_of_the_shipped_surveys_renders_in_every_language(backend: Backend) {
    // The shipped surveys as they are, open whatever today's date.
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("surveys");
    for name in ["coherence-2008.toml", "focal-points.toml"] {
        let text = std::fs::read_to_string(shipped.join(name)).unwrap();
        let open: Vec<String> = text
            .lines()
            .map(|l| match l {
                l if l.starts_with("opens = ") => "opens = 2020-01-01".to_string(),
                l if l.starts_with("closes = ") => "closes = 2099-12-31".to_string(),
                l => l.to_string(),
            })
            .collect();
        std::fs::write(dir.path().join(name), open.join("\n")).unwrap();
    }
    let app = TestApp::spawn_with(backend, dir.path().to_path_buf()).await;
    // (survey, its first section, an email question there, a section only a condition shows)
    let shipped = [
        (
            "coherence-2008",
            "reply",
            "respondent_email",
            Some(("practice1", "gp_more")),
        ),
        ("focal-points", "post", "fp_contact", None),
    ];
    for (survey, first, email, conditional) in shipped {
        // A response with answers of every kind, submitted, from the demo data.
        let out = app.cli(
            &["demo-data", survey, "--countries", "10", "--seed", "5"],
            None,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = app.cli(&["export", survey, "--format", "csv", "--drafts"], None);
        let csv = String::from_utf8(out.stdout).unwrap();
        let demo: Vec<(&str, &str)> = csv
            .lines()
            .skip(1)
            .map(|l| {
                let cells: Vec<&str> = l.split(',').collect();
                (cells[0], cells[5])
            })
            .collect();
        assert!(csv.starts_with("iso3,country,m49_region,income_fy09,development,status,"));
        let submitted = demo
            .iter()
            .find(|(_, status)| *status == "submitted")
            .unwrap()
            .0;
        let answered = app.issue_token(survey, submitted, "Ana");
        // A fresh draft with the conditional section shown.
        let fresh_country = ["SWE", "NOR", "FIN", "DNK", "ISL", "EST", "LVA"]
            .into_iter()
            .find(|c| demo.iter().all(|(d, _)| d != c))
            .unwrap();
        let fresh = app.issue_token(survey, fresh_country, "Ana");
        if let Some((section, question)) = conditional {
            let saved = app
                .save_section(&fresh, section, &[(question, "yes")])
                .await;
            assert_eq!(saved.status, 303, "{}", saved.body);
        }
        for lang in ["en", "fr", "es"] {
            for link in [&answered, &fresh] {
                let overview = app.get(&format!("{link}?lang={lang}")).await;
                assert_page(&overview, 200, lang, "overview");
                let sections = listed_sections(&overview.body, link);
                assert!(sections.len() >= 4, "{survey}: {sections:?}");
                for (id, applies) in sections {
                    assert!(applies || link == &answered, "{survey} {id} shown");
                    let status = if applies { 200 } else { 404 };
                    for query in ["", "?saved=1&more=1"] {
                        let page = app.get(&format!("{link}/s/{id}{query}")).await;
                        assert_page(&page, status, lang, &format!("{survey} section {id}"));
                    }
                }
                for page in ["review", "print", "print?answers=1"] {
                    let shown = app.get(&format!("{link}/{page}")).await;
                    assert_page(&shown, 200, lang, &format!("{survey} {page}"));
                }
            }
            // A submitted response refuses changes with a page that says so.
            let refused = app.save_section(&answered, first, &[]).await;
            assert_page(&refused, 409, lang, "refusal");
            // A value refused, then a conflict between two forms of the same section.
            let page = |p: &str| format!("{fresh}/s/{p}");
            let bad = app
                .save_section(&fresh, first, &[(email, "not an address")])
                .await;
            assert_page(&bad, 422, lang, "refused value");
            assert!(
                bad.field_error(email).is_some() || lang != "en",
                "{}",
                bad.body
            );
            let older = app.get(&page(first)).await;
            let good = format!("{lang}@example.org");
            let saved = app.save_section(&fresh, first, &[(email, &good)]).await;
            assert_eq!(saved.status, 303, "{}", saved.body);
            let conflict = app
                .post_form_from(&older, &page(first), &[(email, "other@example.org")])
                .await;
            assert_page(&conflict, 409, lang, "conflict");
            assert!(conflict.body.contains(&good), "{}", conflict.body);
            // Submitting an incomplete response lists what is missing.
            let incomplete = app.submit(&fresh).await;
            assert_page(&incomplete, 422, lang, "incomplete submission");
            assert!(incomplete.body.contains("class=\"error-summary\""));
        }
    }
    app.stop().await;
}

const SHARES: &str = r#"id = "shares"
title = { en = "Remittances", fr = "Envois de fonds" }
languages = ["en", "fr"]

[[sections]]
id = "money"
title = { en = "Money", fr = "Argent" }

[[sections.questions]]
id = "share"
type = "percentage"
text = { en = "Share sent through formal channels", fr = "Part envoyée par des canaux formels" }
required = true

[[sections.questions]]
id = "detail"
type = "short_text"
text = { en = "Which channels?", fr = "Quels canaux ?" }
show_if = "share > 50"
"#;

/// The type added by following the README's "Adding a question type": checked in the survey
/// file, answered through the form (comma or point, with or without "%"), refused out of range,
/// shown with "%" in the page's language, driving a condition, summarised and exported.
async fn a_percentage_question_end_to_end(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.toml");
    std::fs::write(
        &broken,
        SHARES.replace("required = true", "required = true\nmin = 3"),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_coherence"))
        .arg("check")
        .arg(&broken)
        .output()
        .unwrap();
    let errors =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        errors.contains("broken.toml:14:1")
            && errors.contains("'min' does not apply to a percentage question"),
        "{errors}"
    );
    std::fs::remove_file(&broken).unwrap();
    std::fs::write(dir.path().join("shares.toml"), SHARES).unwrap();
    let app = TestApp::spawn_with(backend, dir.path().to_path_buf()).await;
    let link = app.issue_token("shares", "SWE", "Anna");
    let form = app.get(&format!("{link}/s/money")).await;
    assert!(form.body.contains("inputmode=\"decimal\""), "{}", form.body);
    assert!(form.body.contains("<span>%</span>"));
    assert!(
        !form.has_field("detail"),
        "hidden until the share is over 50"
    );
    for (bad, message) in [("150", "100"), ("-1", "0"), ("a third", "number")] {
        let res = app.save_section(&link, "money", &[("share", bad)]).await;
        assert_eq!(res.status, 422, "{bad}");
        let error = res.field_error("share").unwrap_or_default();
        assert!(error.contains(message), "{bad}: {error}");
        assert_eq!(
            res.field_value("share").as_deref(),
            Some(bad),
            "kept as typed"
        );
    }
    // Typed the French way, on the French page.
    app.get(&format!("{link}?lang=fr")).await;
    let saved = app
        .save_section(&link, "money", &[("share", "12,5 %")])
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let fr = app.get(&format!("{link}/s/money?lang=fr")).await;
    assert_eq!(fr.field_value("share").as_deref(), Some("12,5"));
    let review = app.get(&format!("{link}/review?lang=fr")).await;
    assert!(review.body.contains("12,5\u{202f}%"), "{}", review.body);
    let review = app.get(&format!("{link}/review?lang=en")).await;
    assert!(review.body.contains("12.5%"), "{}", review.body);
    // Over 50: the condition shows the next question.
    assert_eq!(
        app.save_section(&link, "money", &[("share", "60.0%")])
            .await
            .status,
        303
    );
    assert!(app
        .get(&format!("{link}/s/money"))
        .await
        .has_field("detail"));
    assert_eq!(app.submit(&link).await.status, 303);

    app.add_user("admin@example.org", "a long admin passphrase", "admin", &[]);
    app.login("admin@example.org", "a long admin passphrase")
        .await;
    let results = app.get("/admin/surveys/shares/results/q/share").await;
    assert_eq!(results.status, 200, "{}", results.body);
    assert!(
        results
            .body
            .contains("minimum 60%, median 60%, maximum 60%"),
        "{}",
        results.body
    );
    let csv = app.get("/admin/surveys/shares/export.csv").await;
    assert!(
        csv.body
            .lines()
            .any(|l| l.starts_with("SWE,") && l.contains(",60")),
        "{}",
        csv.body
    );
    let codebook = app.get("/admin/surveys/shares/codebook.csv").await;
    assert!(
        codebook.body.contains("number from 0 to 100 (percent)"),
        "{}",
        codebook.body
    );
    let json = app.get("/admin/surveys/shares/export.json").await;
    assert!(json.body.contains("\"share\": 60.0"), "{}", json.body);
    let file = app.get("/admin/surveys/shares/countries/SWE").await;
    assert!(file.body.contains("<dd>60%</dd>"), "{}", file.body);
    app.stop().await;
}

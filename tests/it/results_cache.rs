//! The results pages keep their figures for repeat views, and a change of what counts (a
//! submission, a recall, an acceptance) shows at once. A repeat view is recognised by a change
//! the results read but that no respondent or secretariat makes: the countries' reference data,
//! moved under the server's feet; the node that cached the figures does not show it. After
//! each change that counts, every page equals what a node with an empty cache shows.

use chrono::Utc;
use coherence::db::responses::{self, ResponseStatus};
use coherence::db::versions::{self, Mark};
use coherence::db::{self, DbUrl};
use diesel::RunQueryDsl;

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    repeat_views_are_cached_and_every_counted_change_shows_at_once,
    a_submission_in_progress_holds_back_neither_the_generation_nor_another_submission,
);

const OWNER: (&str, &str) = ("owner@fixture.example", "a long owner passphrase");

/// What a results page shows, without the layout (whose session token differs per node); a
/// download whole.
fn main_of(body: &str) -> String {
    if !body.contains("<html") {
        return body.to_string();
    }
    let start = body.find("<main").unwrap_or_else(|| panic!("{body}"));
    let end = body.find("</main>").unwrap_or_else(|| panic!("{body}"));
    body[start..end].to_string()
}

/// The page as a node with an empty cache shows it: a new node on the same database.
async fn fresh_view(app: &TestApp, path: &str) -> String {
    let node = TestApp::start(
        app.database_url.clone(),
        app.surveys.clone(),
        app.dir.clone(),
    )
    .await;
    node.login(OWNER.0, OWNER.1).await;
    let page = node.get(path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    node.stop().await;
    main_of(&page.body)
}

async fn view(app: &TestApp, path: &str) -> String {
    let page = app.get(path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    main_of(&page.body)
}

const PAGES: [&str; 5] = [
    "/admin/surveys/fixture/results/q/colour?by=region",
    "/admin/surveys/fixture/results/q/colour?by=region&accepted=1",
    "/admin/surveys/fixture/results/compendium",
    "/admin/surveys/fixture/results/compendium.md",
    "/admin/surveys/fixture/results/needs",
];

/// Every page on `app` is what a fresh node shows.
async fn all_current(app: &TestApp, when: &str) {
    for path in PAGES {
        assert_eq!(
            view(app, path).await,
            fresh_view(app, path).await,
            "{when}: {path}"
        );
    }
}

/// A country's draft of the fixture survey with every section answered, ready to submit: its
/// link.
async fn drafted(app: &TestApp, iso3: &str, colour: &str) -> String {
    let link = app.issue_token("fixture", iso3, "Focal point");
    let saved = app
        .save_section(
            &link,
            "basics",
            &[
                ("name", "N"),
                ("colour", colour),
                ("active", "yes"),
                ("staff", "10"),
                ("tools", "b"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    // The year and the text appear once "has a plan" is saved: saved again, as a person
    // fills the questions the first save revealed.
    for _ in 0..2 {
        let saved = app
            .save_section(
                &link,
                "plans",
                &[
                    ("has_plan", "yes"),
                    ("plan_year", "2020"),
                    ("plan_text", "A plan worth citing"),
                ],
            )
            .await;
        assert_eq!(saved.status, 303, "{}", saved.body);
    }
    link
}

async fn repeat_views_are_cached_and_every_counted_change_shows_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Writes the reference data and statuses under the server's feet.
    let mut conn = crate::helpers::writable_conn(&app.database_url);
    let mut links = Vec::new();
    for (iso3, colour) in [("SWE", "red"), ("PHL", "blue"), ("MAR", "red")] {
        links.push(drafted(&app, iso3, colour).await);
    }
    for link in &links[..2] {
        let res = app.submit(link).await;
        assert_eq!(res.status, 303, "{}", res.body);
    }
    app.add_user(OWNER.0, OWNER.1, "owner", &["fixture"]);
    app.login(OWNER.0, OWNER.1).await;
    let first: Vec<String> = {
        let mut out = Vec::new();
        for path in PAGES {
            out.push(view(&app, path).await);
        }
        out
    };

    // Sweden moves to Africa in the stored reference data, under the server's feet (nothing
    // that counts changed): the repeat view on this node is served from its cache. (A node
    // started now would not show the move either: start-up writes the reference data back.)
    diesel::sql_query("UPDATE countries SET region_code = '002' WHERE iso3 = 'SWE'")
        .execute(&mut conn)
        .unwrap();
    let by_region = PAGES[0];
    let repeat = view(&app, by_region).await;
    assert_eq!(repeat, first[0], "a repeat view is served from the cache");
    diesel::sql_query("UPDATE countries SET region_code = '150' WHERE iso3 = 'SWE'")
        .execute(&mut conn)
        .unwrap();

    // Morocco submits: every page shows it at once.
    let res = app.submit(&links[2]).await;
    assert_eq!(res.status, 303, "{}", res.body);
    let after = view(&app, by_region).await;
    assert_ne!(after, first[0]);
    // The Markdown download too (kept whole for repeat downloads) lists Morocco's practice.
    assert_ne!(view(&app, PAGES[3]).await, first[3]);
    all_current(&app, "after a submission").await;

    // The Philippines recall theirs.
    let review = app.get(&format!("{}/review", links[1])).await;
    let recalled = app
        .post(
            &format!("{}/recall", links[1]),
            &[("_csrf", &review.hidden("_csrf"))],
        )
        .await;
    assert_eq!(recalled.status, 303, "{}", recalled.body);
    all_current(&app, "after a recall").await;

    // The secretariat accepts Sweden's report (as its pages do, through the storage
    // functions): the accepted-only figures change at once.
    let accepted_before = view(&app, PAGES[1]).await;
    let id = responses::find_response(&mut conn, "fixture", "SWE", "")
        .unwrap()
        .unwrap()
        .id;
    let row = responses::response_by_id(&mut conn, &id).unwrap().unwrap();
    let now = Utc::now().naive_utc();
    assert!(
        responses::change_status(&mut conn, &id, &[row.status], ResponseStatus::Accepted, now)
            .unwrap()
    );
    assert!(versions::mark(&mut conn, &id, row.version_count, Mark::Accepted, now).unwrap());
    assert_ne!(view(&app, PAGES[1]).await, accepted_before);
    all_current(&app, "after an acceptance").await;
    app.stop().await;
}

/// A submission's change of the results generation shows when it commits, and not before; and
/// while one is in progress (its response marked submitted and its version counted, not yet
/// committed) another country submits on PostgreSQL without waiting for it. The bump once took
/// the survey's generation row at the first of those changes and held it to the end of the
/// transaction: every submission of a survey waited for the one before, 11 ms each under the
/// load benchmark. SQLite writes one transaction at a time whatever the tables: there the other
/// country submits after the first commits.
async fn a_submission_in_progress_holds_back_neither_the_generation_nor_another_submission(
    backend: Backend,
) {
    use coherence::results::cache::generation;
    use std::sync::mpsc;
    use std::time::Duration;

    let app = TestApp::spawn(backend).await;
    let pool = db::connect(&DbUrl::parse(&app.database_url).unwrap(), 2).unwrap();
    let sweden = drafted(&app, "SWE", "red").await;
    let philippines = drafted(&app, "PHL", "blue").await;
    let mut conn = pool.get().unwrap();
    let before = generation(&mut conn, "fixture").unwrap();
    let response = responses::find_response(&mut conn, "fixture", "SWE", "")
        .unwrap()
        .unwrap();
    let token = sweden.strip_prefix("/r/").unwrap();
    let token_id =
        coherence::db::tokens::find_token(&mut conn, &coherence::access::hash_token(token))
            .unwrap()
            .unwrap()
            .id;

    // Sweden's submission, held open between its changes and its commit.
    let (held_tx, held) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let in_progress = {
        let pool = pool.clone();
        std::thread::spawn(move || {
            let mut conn = pool.get().unwrap();
            db::transaction(&mut conn, |conn| -> diesel::QueryResult<()> {
                let now = Utc::now().naive_utc();
                let number = responses::record_submission(
                    conn,
                    &response.id,
                    &[ResponseStatus::Draft],
                    &token_id,
                    now,
                )?
                .expect("a draft to submit");
                responses::set_counted_version(conn, &response.id, Some(number))?;
                held_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                Ok(())
            })
        })
    };
    tokio::task::spawn_blocking(move || held.recv())
        .await
        .unwrap()
        .expect("the submission reached its commit");
    assert_eq!(
        generation(&mut conn, "fixture").unwrap(),
        before,
        "an uncommitted submission changes no generation others read"
    );
    let mut during = before;
    if backend == Backend::Postgres {
        let submitted = tokio::time::timeout(Duration::from_secs(20), app.submit(&philippines))
            .await
            .expect("the Philippines' submission waited for Sweden's to end");
        assert_eq!(submitted.status, 303, "{}", submitted.body);
        during = generation(&mut conn, "fixture").unwrap();
        assert!(
            during > before,
            "the Philippines' submission bumped it: {during}"
        );
    }
    release.send(()).unwrap();
    in_progress.join().unwrap().unwrap();
    let after = generation(&mut conn, "fixture").unwrap();
    assert!(
        after > during,
        "Sweden's commit bumped it: {after} after {during}"
    );
    if backend == Backend::Sqlite {
        let submitted = app.submit(&philippines).await;
        assert_eq!(submitted.status, 303, "{}", submitted.body);
        assert!(generation(&mut conn, "fixture").unwrap() > after);
    }
    for iso3 in ["SWE", "PHL"] {
        let row = responses::find_response(&mut conn, "fixture", iso3, "")
            .unwrap()
            .unwrap();
        assert_eq!(
            (row.status, row.counted_version),
            (ResponseStatus::Submitted, Some(1)),
            "{iso3}"
        );
    }
    app.stop().await;
}

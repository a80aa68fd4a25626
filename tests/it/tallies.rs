//! `answer_tallies`, kept by database triggers, equals at every step the counts computed from
//! scratch over the counted versions: through real submissions, then through every kind of
//! write the triggers watch, made directly in SQL (acceptance, recall, a response moved to
//! another country, hidden questions shown and renamed, a version's answers written in one
//! statement, renamed in place and removed, a new version counted, a response deleted).

use diesel::sql_types::{BigInt, Bool, Text};
use diesel::{QueryableByName, RunQueryDsl};

use coherence::db::DbConn;

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(tallies_equal_the_counted_versions_after_every_kind_of_write);

#[derive(QueryableByName, Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Tally {
    #[diesel(sql_type = Text)]
    survey_id: String,
    #[diesel(sql_type = Text)]
    question_id: String,
    #[diesel(sql_type = Text)]
    item: String,
    #[diesel(sql_type = Text)]
    value: String,
    #[diesel(sql_type = Text)]
    country_iso3: String,
    #[diesel(sql_type = Bool)]
    accepted: bool,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The tallies as stored, without the counts that went back to 0.
fn stored(conn: &mut DbConn) -> Vec<Tally> {
    let mut rows: Vec<Tally> = diesel::sql_query(
        "SELECT survey_id, question_id, item, value, country_iso3, accepted, n \
         FROM answer_tallies WHERE n <> 0",
    )
    .load(conn)
    .unwrap();
    rows.sort();
    rows
}

/// The tallies computed from scratch over the counted versions, as their definition says.
fn from_scratch(conn: &mut DbConn) -> Vec<Tally> {
    let counted = "FROM version_answers va JOIN responses r ON r.id = va.response_id \
                   AND va.version = r.counted_version";
    let mut rows: Vec<Tally> = diesel::sql_query(format!(
        "SELECT r.survey_id AS survey_id, '' AS question_id, '#responses' AS item, '' AS value, \
             r.country_iso3 AS country_iso3, r.status = 'accepted' AS accepted, COUNT(*) AS n \
         FROM responses r WHERE r.counted_version IS NOT NULL \
         GROUP BY r.survey_id, r.country_iso3, r.status = 'accepted' \
         UNION ALL \
         SELECT r.survey_id, va.question_id, va.item, \
             CASE WHEN va.item LIKE '#%' THEN '' ELSE va.value END, \
             r.country_iso3, r.status = 'accepted', COUNT(*) {counted} \
         WHERE va.item LIKE '#%' OR length(va.value) <= 64 \
         GROUP BY r.survey_id, va.question_id, va.item, \
             CASE WHEN va.item LIKE '#%' THEN '' ELSE va.value END, r.country_iso3, r.status = 'accepted' \
         UNION ALL \
         SELECT r.survey_id, va.question_id, '#answered', '', r.country_iso3, r.status = 'accepted', \
             COUNT(DISTINCT va.response_id) {counted} \
         GROUP BY r.survey_id, va.question_id, r.country_iso3, r.status = 'accepted' \
         UNION ALL \
         SELECT r.survey_id, h.question_id, '#hidden', '', r.country_iso3, r.status = 'accepted', COUNT(*) \
         FROM hidden_questions h JOIN responses r ON r.id = h.response_id \
         WHERE r.counted_version IS NOT NULL \
         GROUP BY r.survey_id, h.question_id, r.country_iso3, r.status = 'accepted'"
    ))
    .load(conn)
    .unwrap();
    rows.sort();
    rows
}

fn run(conn: &mut DbConn, statement: &str) {
    diesel::sql_query(statement)
        .execute(conn)
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
}

#[track_caller]
fn check(conn: &mut DbConn, after: &str) {
    let expected = from_scratch(conn);
    assert!(!expected.is_empty(), "after {after}: something counts");
    assert_eq!(stored(conn), expected, "after {after}");
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = Text)]
    id: String,
}

fn response_of(conn: &mut DbConn, iso3: &str) -> String {
    let rows: Vec<Id> = diesel::sql_query(format!(
        "SELECT id FROM responses WHERE survey_id = 'fixture' AND country_iso3 = '{iso3}'"
    ))
    .load(conn)
    .unwrap();
    rows.into_iter().next().expect("a response").id
}

async fn tallies_equal_the_counted_versions_after_every_kind_of_write(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (iso3, colour, submit) in [
        ("SWE", "red", true),
        ("PHL", "blue", true),
        ("MAR", "red", true),
        ("KEN", "blue", false),
    ] {
        let link = app.issue_token("fixture", iso3, "Focal point");
        let basics = [
            ("name", "N"),
            ("colour", colour),
            ("active", "yes"),
            ("staff", "10"),
            ("tools", "b"),
        ];
        let saved = app.save_section(&link, "basics", &basics).await;
        assert_eq!(saved.status, 303, "{}", saved.body);
        let plans = [
            ("has_plan", "yes"),
            ("plan_year", "2020"),
            ("plan_text", "A plan worth citing"),
        ];
        for _ in 0..2 {
            let saved = app.save_section(&link, "plans", &plans).await;
            assert_eq!(saved.status, 303, "{}", saved.body);
        }
        if submit {
            let res = app.submit(&link).await;
            assert_eq!(res.status, 303, "{}", res.body);
        }
    }
    // Writes every kind of change by hand.
    let mut conn = crate::helpers::writable_conn(&app.database_url);
    let conn = &mut conn;
    check(conn, "three submissions and a draft");
    let (swe, phl, mar, ken) = (
        response_of(conn, "SWE"),
        response_of(conn, "PHL"),
        response_of(conn, "MAR"),
        response_of(conn, "KEN"),
    );

    run(
        conn,
        &format!("UPDATE responses SET status = 'accepted' WHERE id = '{swe}'"),
    );
    check(conn, "an acceptance");
    run(
        conn,
        &format!(
            "UPDATE responses SET counted_version = NULL, status = 'draft' WHERE id = '{phl}'"
        ),
    );
    check(conn, "a recall");
    run(
        conn,
        &format!(
            "UPDATE responses SET counted_version = 1, status = 'submitted' WHERE id = '{phl}'"
        ),
    );
    check(conn, "counted again");
    run(
        conn,
        &format!("UPDATE responses SET country_iso3 = 'FRA' WHERE id = '{mar}'"),
    );
    check(conn, "a response moved to another country");
    run(
        conn,
        &format!("UPDATE responses SET status = 'returned' WHERE id = '{swe}'"),
    );
    check(conn, "a return");

    // Hidden questions of a counted response, and of a draft (which counts nothing).
    run(
        conn,
        &format!(
            "INSERT INTO hidden_questions (response_id, question_id) VALUES \
         ('{swe}', 'plan_year'), ('{swe}', 'plan_text'), ('{ken}', 'plan_year')"
        ),
    );
    check(conn, "questions hidden");
    run(conn, &format!(
        "UPDATE hidden_questions SET question_id = 'plan_when' WHERE response_id = '{swe}' AND question_id = 'plan_year'"
    ));
    check(conn, "a hidden question renamed");
    run(conn, &format!("DELETE FROM hidden_questions WHERE response_id = '{swe}' AND question_id = 'plan_text'"));
    check(conn, "a question shown again");

    // A counted version's answers: three items of a new question in one statement (answered
    // once), a value too long to keep, an escape with a long reason.
    let long = "x".repeat(80);
    let row = |response: &str, version: i32, question: &str, item: &str, value: &str| {
        format!(
            "('{response}', {version}, '{question}', '{item}', '{value}', NULL, 'test', '2026-12-01 00:00:00')"
        )
    };
    let insert = |rows: &[String]| {
        format!(
            "INSERT INTO version_answers (response_id, version, question_id, item, value, num, updated_by, updated_at) VALUES {}",
            rows.join(", ")
        )
    };
    run(
        conn,
        &insert(&[
            row(&phl, 1, "areas", "a", "1"),
            row(&phl, 1, "areas", "b", "1"),
            row(&phl, 1, "areas", "c", "1"),
            row(&phl, 1, "note", "", &long),
            row(&phl, 1, "staff_other", "#not_known", &long),
        ]),
    );
    check(conn, "answers written in one statement");
    run(conn, &format!(
        "UPDATE version_answers SET question_id = 'fields' WHERE response_id = '{phl}' AND question_id = 'areas' AND item = 'a'"
    ));
    check(conn, "one item moved to another question");
    run(conn, &format!(
        "UPDATE version_answers SET question_id = 'fields' WHERE response_id = '{phl}' AND question_id = 'areas'"
    ));
    check(conn, "a question renamed in place");
    run(conn, &format!(
        "UPDATE version_answers SET value = 'green' WHERE response_id = '{phl}' AND question_id = 'colour'"
    ));
    check(conn, "a value changed in place");
    run(conn, &format!(
        "DELETE FROM version_answers WHERE response_id = '{phl}' AND question_id = 'fields' AND item <> 'b'"
    ));
    check(conn, "some of a question's items removed");
    run(
        conn,
        &format!(
            "DELETE FROM version_answers WHERE response_id = '{phl}' AND question_id = 'fields'"
        ),
    );
    check(conn, "the question's last item removed");

    // A second version of Morocco's response, written before it counts, then counted.
    run(conn, &format!(
        "INSERT INTO response_versions (response_id, number, survey_version, content, digest, submitted_at, submitted_by, channel) \
         SELECT response_id, 2, survey_version, content, digest, submitted_at, submitted_by, channel \
         FROM response_versions WHERE response_id = '{mar}' AND number = 1"
    ));
    run(
        conn,
        &insert(&[
            row(&mar, 2, "colour", "", "blue"),
            row(&mar, 2, "tools", "a", "1"),
            row(&mar, 2, "tools", "c", "1"),
        ]),
    );
    check(conn, "a new version written, not counted yet");
    run(
        conn,
        &format!("UPDATE responses SET counted_version = 2, version_count = 2 WHERE id = '{mar}'"),
    );
    check(conn, "a new version counted");

    // A counted response deleted, with its hidden questions (by cascade), after its versions.
    run(
        conn,
        &format!("UPDATE responses SET counted_version = 1 WHERE id = '{swe}'"),
    );
    run(
        conn,
        &format!(
            "INSERT INTO hidden_questions (response_id, question_id) VALUES ('{swe}', 'plan_text')"
        ),
    );
    check(conn, "before a deletion");
    run(
        conn,
        &format!("DELETE FROM version_answers WHERE response_id = '{swe}'"),
    );
    check(conn, "a counted version's answers deleted");
    run(conn, &insert(&[row(&swe, 1, "colour", "", "red")]));
    check(conn, "an answer written again");
    run(
        conn,
        &format!("DELETE FROM version_answers WHERE response_id = '{swe}'"),
    );
    run(
        conn,
        &format!("DELETE FROM response_versions WHERE response_id = '{swe}'"),
    );
    run(conn, &format!("DELETE FROM responses WHERE id = '{swe}'"));
    check(conn, "a counted response deleted");
    app.stop().await;
}

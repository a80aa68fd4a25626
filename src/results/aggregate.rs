//! Counting answers in the database: GROUP BY over the answers that count, joined to responses
//! and the country reference data. What counts of a response is its counted version
//! (`responses.counted_version`: the latest one submitted and not recalled), read from
//! `version_answers`, which holds only the answers a condition did not hide; a response being
//! changed after it was returned still counts as the version it sent. "Asked" excludes
//! responses that a condition did not ask (`hidden_questions`).
//!
//! With drafts included, a response without a counted version counts its live visible answers
//! once something is saved in it; a response with one still counts that version (a country
//! changing a returned report is not counted twice, nor by its unsent changes).
//!
//! A question's counts (choices, escapes, asked and answered) are read from `answer_tallies`,
//! which database triggers keep equal to those of the counted versions in the same transaction
//! as every change (see the migration `answer_tallies`): a few hundred rows per question
//! instead of every answer of the survey. With drafts included, the drafts' own live answers
//! are counted and added to them.

use std::collections::BTreeMap;

use diesel::sql_types::{BigInt, Double, Nullable, Text};
use diesel::{QueryableByName, RunQueryDsl};
use serde::Serialize;

use super::sql::Sql;
use crate::db::DbConn;
use crate::survey::answer::OTHER_ITEM;
use crate::survey::{EscapeKind, Population, Question, QuestionKind, Survey};

/// Which responses count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Drafts as well as submitted responses (default: submitted only): the live answers of
    /// responses never submitted (or whose every version was recalled) with something saved.
    pub include_drafts: bool,
    /// Only responses the secretariat accepted (their counted version).
    pub accepted_only: bool,
    /// An M49 region code (002, 019, 142, 150, 009).
    pub region: Option<String>,
    /// A World Bank income group (L, LM, UM, H) of the FY09 classification.
    pub income: Option<String>,
    /// The survey's population, when it is not every country: responses from other countries
    /// never count. Set it with [`Filter::within`].
    pub population: Option<Population>,
}

impl Filter {
    /// The filter as URL query parameters (`drafts=1&accepted=1&region=...`, '' for none): for
    /// links that keep it, and for the record of an export.
    pub fn parameters(&self) -> String {
        let mut parts = Vec::new();
        if self.include_drafts {
            parts.push("drafts=1".to_string());
        }
        if self.accepted_only {
            parts.push("accepted=1".to_string());
        }
        if let Some(r) = &self.region {
            parts.push(format!("region={r}"));
        }
        if let Some(i) = &self.income {
            parts.push(format!("income={i}"));
        }
        parts.join("&")
    }

    /// The same filter, counting only responses from the survey's population.
    pub fn within(mut self, survey: &Survey) -> Filter {
        self.population = (!survey.population.is_everyone()).then(|| survey.population.clone());
        self
    }

    /// Whether the drafts' live answers count as well as the counted versions.
    pub fn with_drafts(&self) -> bool {
        self.include_drafts && !self.accepted_only
    }

    /// The same filter over the counted versions only (drafts left out).
    pub fn counted_only(&self) -> Filter {
        Filter {
            include_drafts: false,
            ..self.clone()
        }
    }

    /// Whether a response from this country counts (for code that loads responses itself,
    /// such as exports).
    pub fn admits(&self, iso3: &str) -> bool {
        self.population.as_ref().is_none_or(|p| p.contains(iso3))
    }
}

/// How countries are grouped in a breakdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Grouping {
    Region,
    Subregion,
    Income,
    Development,
    Ldc,
    Lldc,
    Sids,
}

impl Grouping {
    pub const ALL: [Grouping; 7] = [
        Grouping::Region,
        Grouping::Subregion,
        Grouping::Income,
        Grouping::Development,
        Grouping::Ldc,
        Grouping::Lldc,
        Grouping::Sids,
    ];

    pub fn parse(s: &str) -> Option<Grouping> {
        Grouping::ALL.into_iter().find(|g| g.key() == s)
    }

    pub fn key(self) -> &'static str {
        match self {
            Grouping::Region => "region",
            Grouping::Subregion => "subregion",
            Grouping::Income => "income",
            Grouping::Development => "development",
            Grouping::Ldc => "ldc",
            Grouping::Lldc => "lldc",
            Grouping::Sids => "sids",
        }
    }

    /// The SQL expression over `c` (countries) giving the group's code.
    fn column(self) -> &'static str {
        match self {
            Grouping::Region => "c.region_code",
            Grouping::Subregion => "c.subregion_code",
            Grouping::Income => "c.income_fy09",
            Grouping::Development => "c.development",
            // 2008 membership, matching the survey round.
            Grouping::Ldc => "CASE WHEN c.ldc_2008 THEN 'ldc' ELSE 'other' END",
            Grouping::Lldc => "CASE WHEN c.lldc THEN 'lldc' ELSE 'other' END",
            Grouping::Sids => "CASE WHEN c.sids THEN 'sids' ELSE 'other' END",
        }
    }
}

/// The group column, or a single group "all".
fn group_expr(grouping: Option<Grouping>) -> &'static str {
    grouping.map(Grouping::column).unwrap_or("'all'")
}

/// `GROUP BY` terms: the group column (none for the single group "all", since PostgreSQL
/// refuses a constant there) followed by `rest`.
fn group_by(grouping: Option<Grouping>, rest: &str) -> String {
    match (grouping, rest.is_empty()) {
        (Some(g), true) => format!(" GROUP BY {}", g.column()),
        (Some(g), false) => format!(" GROUP BY {}, {rest}", g.column()),
        (None, true) => String::new(),
        (None, false) => format!(" GROUP BY {rest}"),
    }
}

/// `FROM responses r JOIN countries c ... WHERE r.survey_id = ... AND <filter>`.
pub(super) fn responses_from(sql: &mut Sql, survey_id: &str, filter: &Filter) {
    // `survey_id || ''` keeps SQLite off the survey's index, whose every row then costs a look-up
    // in the table: it scans the covering `responses_counted` instead (three times less work
    // on 100,000 responses of one survey).
    sql.push(
        " FROM responses r JOIN countries c ON c.iso3 = r.country_iso3 WHERE r.survey_id || '' = ",
    )
    .bind(survey_id);
    push_filter(sql, filter);
}

/// `FROM <answers that count> a JOIN responses r JOIN countries c ... WHERE r.survey_id = ...
/// AND <filter>`. `a` has `response_id, question_id, item, value, num`, visible answers only:
/// the counted version's, and with drafts included the live ones of responses without one.
pub(super) fn answers_from(sql: &mut Sql, survey_id: &str, filter: &Filter) {
    if filter.with_drafts() {
        let s = sql.param(survey_id);
        sql.push(&format!(
            " FROM (SELECT va.response_id AS response_id, va.question_id AS question_id, va.item AS item, \
             va.value AS value, va.num AS num FROM version_answers va \
             JOIN responses rv ON rv.id = va.response_id AND va.version = rv.counted_version WHERE rv.survey_id = {s} \
             UNION ALL SELECT la.response_id, la.question_id, la.item, la.value, la.num FROM answers la \
             JOIN responses rl ON rl.id = la.response_id \
             WHERE rl.survey_id = {s} AND rl.counted_version IS NULL AND la.visible = TRUE) a \
             JOIN responses r ON r.id = a.response_id \
             JOIN countries c ON c.iso3 = r.country_iso3 WHERE r.survey_id = {s}"
        ));
    } else {
        // Answers first, then their response: every caller picks answers by question, and
        // SQLite reads them from `version_answers_aggregate` and each response from the
        // covering `responses_counted` only in this order, which its CROSS JOIN keeps (the
        // planner started from the survey's responses, at twice the cost on 100,000).
        // PostgreSQL plans a CROSS JOIN with a WHERE like any inner join.
        sql.push(
            " FROM version_answers a CROSS JOIN responses r JOIN countries c ON c.iso3 = r.country_iso3 \
             WHERE r.id = a.response_id AND a.version = r.counted_version AND r.survey_id = ",
        )
        .bind(survey_id);
    }
    push_filter(sql, filter);
}

/// Whether the counts for `filter` are those of the counted versions only, kept in
/// `answer_tallies`: every filter but drafts included.
fn tallied(filter: &Filter) -> bool {
    !filter.with_drafts()
}

/// `FROM answer_tallies a JOIN countries c ... WHERE a.survey_id = ... AND a.question_id = ...
/// AND <filter>`: the question's tallies (`a.item`, `a.value`, `a.n`) for the responses that
/// count, of the filter's countries. The caller sums `a.n`, and skips sums of 0.
fn tallies_from(sql: &mut Sql, survey_id: &str, question_id: &str, filter: &Filter) {
    sql.push(
        " FROM answer_tallies a JOIN countries c ON c.iso3 = a.country_iso3 WHERE a.survey_id = ",
    )
    .bind(survey_id)
    .push(" AND a.question_id = ")
    .bind(question_id);
    if filter.accepted_only {
        sql.push(" AND a.accepted = TRUE");
    }
    push_country_filter(sql, filter);
}

/// ` AND <a draft that counts>` over `r`: a response without a counted version, in which
/// someone saved something (see [`push_state_filter`]). Written as the partial index
/// `responses_drafts` states it, so that both backends read the drafts from it.
const DRAFT_ONLY: &str = " AND r.counted_version IS NULL AND r.has_saves = TRUE";

/// Where a question's counts of items come from for a filter, as `a` with `a.item`, `a.value`
/// and `a.n`, joined to the countries `c`: its tallies, which hold the counted versions; with
/// drafts included, those and the live answers of the drafts, one row each (n = 1), kept and
/// cut as the tallies keep them. Counting every answer that counts, the counted versions' as
/// well, took 2.2 s a question at 100,000 organisations on SQLite (benches/README.md).
struct QuestionRows {
    drafts: bool,
}

impl QuestionRows {
    fn of(filter: &Filter) -> QuestionRows {
        QuestionRows {
            drafts: !tallied(filter),
        }
    }

    /// The count of a group, as a BIGINT on both backends (PostgreSQL sums BIGINTs into a
    /// NUMERIC).
    fn count(&self) -> &'static str {
        "CAST(SUM(a.n) AS BIGINT)"
    }

    /// `FROM ... WHERE <the question's rows for the filter>`.
    fn push_from(&self, sql: &mut Sql, survey_id: &str, question_id: &str, filter: &Filter) {
        if !self.drafts {
            return tallies_from(sql, survey_id, question_id, filter);
        }
        sql.push(
            " FROM (SELECT t.country_iso3 AS country_iso3, t.item AS item, t.value AS value, \
             t.n AS n FROM answer_tallies t WHERE t.survey_id = ",
        )
        .bind(survey_id)
        .push(" AND t.question_id = ")
        .bind(question_id)
        // From the drafts to their answers to the question: SQLite keeps the order of a CROSS
        // JOIN, and so reads the survey's drafts along `responses_drafts` and looks up each
        // draft's answer along `answers_by_question`. From the answers to the question (its
        // plan for a JOIN), it read every response's answer row for its `visible` and `value`
        // before checking its response (100,000 organisations, 20,000 drafts, measured before
        // `responses_drafts`, when every response was walked: 0.18 s in `sqlite3` against
        // 0.37-0.41 s). PostgreSQL plans a CROSS JOIN like any join.
        .push(
            " UNION ALL SELECT r.country_iso3, la.item, \
             CASE WHEN la.item LIKE '#%' THEN '' ELSE la.value END, 1 \
             FROM responses r CROSS JOIN answers la WHERE r.id = la.response_id \
             AND la.question_id = ",
        )
        .bind(question_id)
        .push(" AND la.visible = TRUE AND (la.item LIKE '#%' OR length(la.value) <= 64) AND r.survey_id = ")
        .bind(survey_id)
        .push(DRAFT_ONLY)
        .push(") a JOIN countries c ON c.iso3 = a.country_iso3 WHERE TRUE");
        push_country_filter(sql, filter);
    }

    /// After the GROUP BY: the groups whose tallies went back to 0 are not counts.
    fn having(&self) -> &'static str {
        " HAVING SUM(a.n) > 0"
    }
}

/// ` AND <which responses count>` over `r` (responses) and `c` (countries).
pub(super) fn push_filter(sql: &mut Sql, filter: &Filter) {
    push_state_filter(sql, filter);
    push_country_filter(sql, filter);
}

/// ` AND <the responses' state that counts>` over `r`.
pub(super) fn push_state_filter(sql: &mut Sql, filter: &Filter) {
    if filter.accepted_only {
        sql.push(" AND r.counted_version IS NOT NULL AND r.status = 'accepted'");
    } else if filter.include_drafts {
        // A draft counts once someone saved something in it (`has_saves`, kept by the
        // database from `section_states`).
        sql.push(" AND (r.counted_version IS NOT NULL OR r.has_saves = TRUE)");
    } else {
        sql.push(" AND r.counted_version IS NOT NULL");
    }
}

/// ` AND <a draft (no counted version, something saved) of the filter's countries>` over `r`
/// (responses) and `c` (countries): the responses whose live answers count with drafts
/// included.
pub(super) fn push_drafts_filter(sql: &mut Sql, filter: &Filter) {
    sql.push(DRAFT_ONLY);
    push_country_filter(sql, filter);
}

/// ` AND <population, region and income group>` over `c` (countries).
fn push_country_filter(sql: &mut Sql, filter: &Filter) {
    if let Some(population) = &filter.population {
        push_population(sql, population);
    }
    if let Some(region) = &filter.region {
        sql.push(" AND c.region_code = ").bind(region.clone());
    }
    if let Some(income) = &filter.income {
        sql.push(" AND c.income_fy09 = ").bind(income.clone());
    }
}

/// ` AND c.iso3 IN (<the population's codes>)`.
fn push_population(sql: &mut Sql, population: &Population) {
    // An empty population (a survey file cannot declare one) asks no one: `IN (NULL)`.
    sql.push(" AND c.iso3 IN ").bind_list(population.codes());
}

#[derive(QueryableByName, Debug)]
struct GroupValueCount {
    #[diesel(sql_type = Text)]
    grp: String,
    #[diesel(sql_type = Text)]
    value: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Counts of one choice, yes/no or matrix question: (group, key, count). The key is the option
/// code (single choice, yes/no, multiple choice) or `row=scale` (matrix).
pub fn choice_counts(
    conn: &mut DbConn,
    survey_id: &str,
    question: &Question,
    filter: &Filter,
    grouping: Option<Grouping>,
) -> diesel::QueryResult<Vec<(String, String, i64)>> {
    let (key, item_filter) = choice_key(question);
    let g = group_expr(grouping);
    let rows_of = QuestionRows::of(filter);
    let mut sql = Sql::new(&format!(
        "SELECT {g} AS grp, {key} AS value, {} AS n",
        rows_of.count()
    ));
    rows_of.push_from(&mut sql, survey_id, &question.id, filter);
    sql.push(&format!(
        " AND {item_filter}{}{}",
        group_by(grouping, key),
        rows_of.having()
    ));
    let rows: Vec<GroupValueCount> = sql.query().load(conn)?;
    Ok(rows.into_iter().map(|r| (r.grp, r.value, r.n)).collect())
}

/// What a choice question's answers are counted by, and which of its rows count.
fn choice_key(question: &Question) -> (&'static str, &'static str) {
    match &question.kind {
        // `#other`, `#not_known` and `#not_applicable` are not options or rows.
        QuestionKind::MultipleChoice { .. } => ("a.item", "a.item NOT LIKE '#%'"),
        QuestionKind::Matrix { .. } => ("a.item || '=' || a.value", "a.item NOT LIKE '#%'"),
        // One code per answer; numbers, dates and texts are not counted as choices.
        QuestionKind::SingleChoice { .. }
        | QuestionKind::YesNo
        | QuestionKind::Country
        | QuestionKind::ShortText { .. }
        | QuestionKind::LongText { .. }
        | QuestionKind::Integer { .. }
        | QuestionKind::Decimal { .. }
        | QuestionKind::Percentage
        | QuestionKind::Date { .. }
        | QuestionKind::Email
        | QuestionKind::Url
        | QuestionKind::File { .. } => ("a.value", "a.item = ''"),
    }
}

#[derive(QueryableByName, Debug)]
struct TwoGroupValueCount {
    #[diesel(sql_type = Text)]
    grp: String,
    #[diesel(sql_type = Text)]
    grp2: String,
    #[diesel(sql_type = Text)]
    value: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The same counts by two groupings at once, in one pass over the answers: (group of the
/// first, group of the second, key, count). Summing over either group gives the other's
/// breakdown.
pub fn choice_counts_by_two(
    conn: &mut DbConn,
    survey_id: &str,
    question: &Question,
    filter: &Filter,
    (first, second): (Grouping, Grouping),
) -> diesel::QueryResult<Vec<(String, String, String, i64)>> {
    let (key, item_filter) = choice_key(question);
    let (a, b) = (first.column(), second.column());
    let rows_of = QuestionRows::of(filter);
    let mut sql = Sql::new(&format!(
        "SELECT {a} AS grp, {b} AS grp2, {key} AS value, {} AS n",
        rows_of.count()
    ));
    rows_of.push_from(&mut sql, survey_id, &question.id, filter);
    sql.push(&format!(
        " AND {item_filter} GROUP BY {a}, {b}, {key}{}",
        rows_of.having()
    ));
    let rows: Vec<TwoGroupValueCount> = sql.query().load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| (r.grp, r.grp2, r.value, r.n))
        .collect())
}

/// A group's responses asked a question and answering it, as [`asked_and_answered`] counts
/// them from the tallies or over the drafts.
#[derive(QueryableByName, Debug)]
struct GroupAskedAnswered {
    #[diesel(sql_type = Text)]
    grp: String,
    #[diesel(sql_type = BigInt)]
    asked: i64,
    #[diesel(sql_type = BigInt)]
    answered: i64,
}

/// Per group: how many responses were asked the question (not hidden by a condition), and how
/// many of them answered it.
pub fn asked_and_answered(
    conn: &mut DbConn,
    survey_id: &str,
    question_id: &str,
    filter: &Filter,
    grouping: Option<Grouping>,
) -> diesel::QueryResult<BTreeMap<String, (i64, i64)>> {
    let mut counts = tallied_asked_and_answered(conn, survey_id, question_id, filter, grouping)?;
    if tallied(filter) {
        return Ok(counts);
    }
    // Drafts included: the drafts' own, added to the counted versions' from the tallies.
    let g = group_expr(grouping);
    let mut sql = Sql::new(&format!(
        "SELECT {g} AS grp, \
         CAST(COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM hidden_questions h WHERE h.response_id = r.id AND h.question_id = "
    ));
    sql.bind(question_id)
        .push(
            ") THEN 0 ELSE 1 END), 0) AS BIGINT) AS asked, \
             CAST(COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM answers la WHERE la.response_id = r.id AND la.question_id = ",
        )
        .bind(question_id)
        .push(
            " AND la.visible = TRUE) THEN 1 ELSE 0 END), 0) AS BIGINT) AS answered \
             FROM responses r JOIN countries c ON c.iso3 = r.country_iso3 WHERE r.survey_id = ",
        )
        .bind(survey_id)
        .push(DRAFT_ONLY);
    push_country_filter(&mut sql, filter);
    sql.push(&group_by(grouping, ""));
    let drafts: Vec<GroupAskedAnswered> = sql.query().load(conn)?;
    for d in drafts {
        if grouping.is_some() && d.asked == 0 && d.answered == 0 {
            continue;
        }
        let (asked, answered) = counts.entry(d.grp).or_default();
        *asked += d.asked;
        *answered += d.answered;
    }
    Ok(counts)
}

/// [`asked_and_answered`] from the tallies: the responses that count less those the question
/// was hidden from, and those that answered it.
fn tallied_asked_and_answered(
    conn: &mut DbConn,
    survey_id: &str,
    question_id: &str,
    filter: &Filter,
    grouping: Option<Grouping>,
) -> diesel::QueryResult<BTreeMap<String, (i64, i64)>> {
    let g = group_expr(grouping);
    let mut sql = Sql::new(&format!(
        "SELECT {g} AS grp, \
         CAST(COALESCE(SUM(CASE WHEN a.item = '#responses' THEN a.n WHEN a.item = '#hidden' THEN -a.n ELSE 0 END), 0) AS BIGINT) AS asked, \
         CAST(COALESCE(SUM(CASE WHEN a.item = '#answered' THEN a.n ELSE 0 END), 0) AS BIGINT) AS answered \
         FROM answer_tallies a JOIN countries c ON c.iso3 = a.country_iso3 WHERE a.survey_id = "
    ));
    sql.bind(survey_id)
        .push(" AND ((a.question_id = '' AND a.item = '#responses') OR (a.question_id = ")
        .bind(question_id)
        .push(" AND a.item IN ('#hidden', '#answered')))");
    if filter.accepted_only {
        sql.push(" AND a.accepted = TRUE");
    }
    push_country_filter(&mut sql, filter);
    sql.push(&group_by(grouping, ""));
    let rows: Vec<GroupAskedAnswered> = sql.query().load(conn)?;
    // As the counts over the responses: one row "all" without a grouping (an aggregate over no
    // rows), and only the groups with someone in them by a grouping.
    Ok(rows
        .into_iter()
        .filter(|r| grouping.is_none() || r.asked > 0 || r.answered > 0)
        .map(|r| (r.grp, (r.asked, r.answered)))
        .collect())
}

/// Per group, how many responses answered "not known" and "not applicable": (group, code,
/// count), the code being `not_known` or `not_applicable`.
pub fn escape_counts(
    conn: &mut DbConn,
    survey_id: &str,
    question_id: &str,
    filter: &Filter,
    grouping: Option<Grouping>,
) -> diesel::QueryResult<Vec<(String, EscapeKind, i64)>> {
    let g = group_expr(grouping);
    let rows_of = QuestionRows::of(filter);
    let mut sql = Sql::new(&format!(
        "SELECT {g} AS grp, a.item AS value, {} AS n",
        rows_of.count()
    ));
    rows_of.push_from(&mut sql, survey_id, question_id, filter);
    sql.push(" AND a.item IN (");
    for (i, kind) in EscapeKind::ALL.into_iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.bind(kind.item());
    }
    sql.push(&format!(
        "){}{}",
        group_by(grouping, "a.item"),
        rows_of.having()
    ));
    let rows: Vec<GroupValueCount> = sql.query().load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|r| Some((r.grp, EscapeKind::of_item(&r.value)?, r.n)))
        .collect())
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NumberStats {
    pub count: i64,
    pub min: Option<f64>,
    pub median: Option<f64>,
    pub max: Option<f64>,
}

#[derive(QueryableByName, Debug)]
struct StatsRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = Nullable<Double>)]
    lo: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    hi: Option<f64>,
}

#[derive(QueryableByName, Debug)]
struct NumRow {
    #[diesel(sql_type = Double)]
    num: f64,
}

/// Count, min, median and max of a number question, all computed by the database.
pub fn number_stats(
    conn: &mut DbConn,
    survey_id: &str,
    question_id: &str,
    filter: &Filter,
) -> diesel::QueryResult<NumberStats> {
    let where_answers = |sql: &mut Sql| {
        answers_from(sql, survey_id, filter);
        sql.push(" AND a.question_id = ")
            .bind(question_id)
            .push(" AND a.item = '' AND a.num IS NOT NULL");
    };
    let mut sql = Sql::new("SELECT COUNT(*) AS n, MIN(a.num) AS lo, MAX(a.num) AS hi");
    where_answers(&mut sql);
    let row: StatsRow = sql.query().get_result(conn)?;
    let median = if row.n == 0 {
        None
    } else {
        // The middle value (or the two middle values) picked out by the database.
        let (offset, take) = if row.n % 2 == 1 {
            ((row.n - 1) / 2, 1)
        } else {
            (row.n / 2 - 1, 2)
        };
        let mut sql = Sql::new("SELECT a.num AS num");
        where_answers(&mut sql);
        sql.push(&format!(" ORDER BY a.num LIMIT {take} OFFSET {offset}"));
        let middle: Vec<NumRow> = sql.query().load(conn)?;
        Some(middle.iter().map(|m| m.num).sum::<f64>() / middle.len().max(1) as f64)
    };
    Ok(NumberStats {
        count: row.n,
        min: row.lo,
        median,
        max: row.hi,
    })
}

#[derive(QueryableByName, Debug)]
struct DateRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = Nullable<Text>)]
    lo: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    hi: Option<String>,
}

/// Count, earliest and latest of a date question (ISO dates sort as text).
pub fn date_range(
    conn: &mut DbConn,
    survey_id: &str,
    question_id: &str,
    filter: &Filter,
) -> diesel::QueryResult<(i64, Option<String>, Option<String>)> {
    let mut sql = Sql::new("SELECT COUNT(*) AS n, MIN(a.value) AS lo, MAX(a.value) AS hi");
    answers_from(&mut sql, survey_id, filter);
    sql.push(" AND a.question_id = ")
        .bind(question_id)
        .push(" AND a.item = ''");
    let row: DateRow = sql.query().get_result(conn)?;
    Ok((row.n, row.lo, row.hi))
}

#[derive(QueryableByName, Debug, Clone, Serialize)]
pub struct TextAnswer {
    #[diesel(sql_type = Text)]
    pub iso3: String,
    /// The organisation, in a survey of organisations ('' otherwise).
    #[diesel(sql_type = Text)]
    pub unit: String,
    #[diesel(sql_type = Text)]
    pub value: String,
}

/// Every answer of a text question (or the "other" texts of a choice), with its country.
#[derive(QueryableByName, Debug)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// How many files the counted responses attached to a file question (its items other than
/// `#`-prefixed ones, one per file).
pub fn file_count(
    conn: &mut DbConn,
    survey_id: &str,
    question_id: &str,
    filter: &Filter,
) -> diesel::QueryResult<i64> {
    let mut sql = Sql::new("SELECT COUNT(*) AS n");
    answers_from(&mut sql, survey_id, filter);
    sql.push(" AND a.question_id = ")
        .bind(question_id)
        .push(" AND a.item NOT LIKE '#%'");
    let rows: Vec<Count> = sql.query().load(conn)?;
    Ok(rows.first().map_or(0, |c| c.n))
}

/// The names of the files attached to a file question, with their country, one per file.
pub fn file_names(
    conn: &mut DbConn,
    survey_id: &str,
    question_id: &str,
    filter: &Filter,
) -> diesel::QueryResult<Vec<TextAnswer>> {
    let mut sql = Sql::new("SELECT c.iso3 AS iso3, r.unit AS unit, a.value AS value");
    answers_from(&mut sql, survey_id, filter);
    sql.push(" AND a.question_id = ")
        .bind(question_id)
        .push(" AND a.item NOT LIKE '#%' ORDER BY c.name_en, r.unit, a.value");
    let rows: Vec<TextAnswer> = sql.query().load(conn)?;
    // The value is `<sha256>/<name>` (see `survey::answer`): the name is what people read.
    let mut rows: Vec<TextAnswer> = rows
        .into_iter()
        .map(|mut r| {
            if let Some((_, name)) = r.value.split_once('/') {
                r.value = name.to_string();
            }
            r
        })
        .collect();
    // Countries stay in the query's order; each one's files by name.
    for group in rows.chunk_by_mut(|a, b| a.iso3 == b.iso3 && a.unit == b.unit) {
        group.sort_by(|a, b| a.value.cmp(&b.value));
    }
    Ok(rows)
}

pub fn text_answers(
    conn: &mut DbConn,
    survey_id: &str,
    question_id: &str,
    other: bool,
    filter: &Filter,
) -> diesel::QueryResult<Vec<TextAnswer>> {
    let mut sql = Sql::new("SELECT c.iso3 AS iso3, r.unit AS unit, a.value AS value");
    answers_from(&mut sql, survey_id, filter);
    sql.push(" AND a.question_id = ")
        .bind(question_id)
        .push(" AND a.item = ")
        .bind(if other { OTHER_ITEM } else { "" })
        .push(" ORDER BY c.name_en, r.unit");
    sql.query().load(conn)
}

#[derive(QueryableByName, Debug, Clone, PartialEq, Serialize)]
pub struct RateRow {
    #[diesel(sql_type = Text)]
    pub grp: String,
    #[diesel(sql_type = BigInt)]
    pub targeted: i64,
    #[diesel(sql_type = BigInt)]
    pub invited: i64,
    #[diesel(sql_type = BigInt)]
    pub opened: i64,
    #[diesel(sql_type = BigInt)]
    pub drafts: i64,
    #[diesel(sql_type = BigInt)]
    pub submitted: i64,
    #[diesel(sql_type = BigInt)]
    pub accepted: i64,
}

/// One country's response-rate counts, with the group it falls in by every [`Grouping`].
#[derive(QueryableByName, Debug)]
struct CountryRates {
    #[diesel(sql_type = Text)]
    region: String,
    #[diesel(sql_type = Text)]
    subregion: String,
    #[diesel(sql_type = Text)]
    income: String,
    #[diesel(sql_type = Text)]
    development: String,
    #[diesel(sql_type = Text)]
    ldc: String,
    #[diesel(sql_type = Text)]
    lldc: String,
    #[diesel(sql_type = Text)]
    sids: String,
    #[diesel(sql_type = BigInt)]
    targeted: i64,
    #[diesel(sql_type = BigInt)]
    invited: i64,
    #[diesel(sql_type = BigInt)]
    opened: i64,
    #[diesel(sql_type = BigInt)]
    drafts: i64,
    #[diesel(sql_type = BigInt)]
    submitted: i64,
    #[diesel(sql_type = BigInt)]
    accepted: i64,
}

impl CountryRates {
    fn group(&self, grouping: Option<Grouping>) -> &str {
        match grouping {
            None => "all",
            Some(Grouping::Region) => &self.region,
            Some(Grouping::Subregion) => &self.subregion,
            Some(Grouping::Income) => &self.income,
            Some(Grouping::Development) => &self.development,
            Some(Grouping::Ldc) => &self.ldc,
            Some(Grouping::Lldc) => &self.lldc,
            Some(Grouping::Sids) => &self.sids,
        }
    }
}

/// Response rates per group: the respondent units asked, how many were invited, opened a link,
/// have a draft in progress (something saved, no version counted), submitted (a version counts:
/// submitted, under review, returned for changes or accepted, and not recalled; with "accepted
/// only", accepted ones only), accepted. In a survey answered per country the units asked are
/// the survey's population (so a rate is over every country asked, answering or not); in a
/// survey of organisations, the organisations the survey went to (from contacts, links or a
/// response), within its population.
pub fn response_rates(
    conn: &mut DbConn,
    survey: &Survey,
    filter: &Filter,
    grouping: Option<Grouping>,
) -> diesel::QueryResult<Vec<RateRow>> {
    Ok(response_rates_by(conn, survey, filter, &[grouping])?
        .pop()
        .unwrap_or_default())
}

/// [`response_rates`] by each of `groupings`, in that order, from one statement: the counts
/// are taken per country, and the countries added up into each grouping's groups here.
pub fn response_rates_by(
    conn: &mut DbConn,
    survey: &Survey,
    filter: &Filter,
    groupings: &[Option<Grouping>],
) -> diesel::QueryResult<Vec<Vec<RateRow>>> {
    let filter = filter.clone().within(survey);
    let mut sql = Sql::new("SELECT ");
    for (g, name) in Grouping::ALL.iter().zip([
        "region",
        "subregion",
        "income",
        "development",
        "ldc",
        "lldc",
        "sids",
    ]) {
        sql.push(&format!("{} AS {name}, ", g.column()));
    }
    sql.push(
        "u.targeted AS targeted, u.invited AS invited, u.opened AS opened, u.drafts AS drafts, \
         u.submitted AS submitted, u.accepted AS accepted FROM (",
    );
    let s = sql.param(survey.id.clone());
    let parts = rate_parts(&s, survey.unit.is_country(), filter.accepted_only);
    sql.push(&parts);
    sql.push(") u JOIN countries c ON c.iso3 = u.country_iso3 WHERE 1 = 1");
    push_country_filter(&mut sql, &filter);
    let countries: Vec<CountryRates> = sql.query().load(conn)?;
    Ok(groupings
        .iter()
        .map(|&grouping| {
            let mut groups: BTreeMap<&str, RateRow> = BTreeMap::new();
            if grouping.is_none() {
                // Without a breakdown, one row even without any country (only zeros).
                groups.insert("all", RateRow::zero("all"));
            }
            for c in &countries {
                let g = c.group(grouping);
                let row = groups.entry(g).or_insert_with(|| RateRow::zero(g));
                row.targeted += c.targeted;
                row.invited += c.invited;
                row.opened += c.opened;
                row.drafts += c.drafts;
                row.submitted += c.submitted;
                row.accepted += c.accepted;
            }
            groups
                .into_values()
                .filter(|r| r.targeted > 0 || grouping.is_none())
                .collect()
        })
        .collect())
}

impl RateRow {
    fn zero(grp: &str) -> RateRow {
        RateRow {
            grp: grp.to_string(),
            targeted: 0,
            invited: 0,
            opened: 0,
            drafts: 0,
            submitted: 0,
            accepted: 0,
        }
    }
}

/// Rows of `country_iso3, targeted, invited, opened, drafts, submitted, accepted` whose sums
/// per country are the country's response rates in survey `s` (a placeholder). Each unit asked
/// counts once: a unit is a country in a survey answered per country, else an organisation
/// (country and unit) with a contact, a link or a response.
///
/// A survey of organisations reads what the database keeps of each unit asked (`unit_rates`,
/// one row per unit with its flags, kept by triggers: migration `000027_unit_rates`); looking
/// each unit's responses, links and contacts up took 0.4 s on SQLite and 0.9 s on PostgreSQL
/// at 100,000 organisations. The invitations are counted here, for the unit of the contact each
/// went to in the country it was sent from, if that unit is asked (it is unless the contact
/// moved since): keeping them would make the mail worker's writes lock units. A survey
/// answered per country asks every country, and counts only the responses and links for the
/// country as a whole: a few hundred rows.
fn rate_parts(s: &str, per_country: bool, accepted_only: bool) -> String {
    let zero = "CAST(0 AS BIGINT)";
    if !per_country {
        let submitted = if accepted_only {
            "accepted"
        } else {
            "submitted"
        };
        return format!(
            "SELECT u.country_iso3 AS country_iso3, COUNT(*) AS targeted, {zero} AS invited, \
             SUM(u.opened) AS opened, SUM(u.draft) AS drafts, SUM(u.{submitted}) AS submitted, \
             SUM(u.accepted) AS accepted FROM unit_rates u WHERE u.survey_id = {s} GROUP BY u.country_iso3 \
             UNION ALL \
             SELECT o.country_iso3, {zero}, COUNT(DISTINCT ct.office), {zero}, {zero}, {zero}, {zero} \
             FROM outbox o JOIN contacts ct ON ct.id = o.contact_id WHERE o.survey_id = {s} \
             AND o.kind = 'invite' AND o.status = 'sent' AND EXISTS (SELECT 1 FROM unit_rates a \
             WHERE a.survey_id = {s} AND a.country_iso3 = o.country_iso3 AND a.unit = ct.office) \
             GROUP BY o.country_iso3"
        );
    }
    let counted = if accepted_only {
        " AND r.status = 'accepted'"
    } else {
        ""
    };
    // A country's response: at most one for the country as a whole.
    let response = format!(
        "SUM(CASE WHEN r.counted_version IS NULL AND r.has_saves = TRUE THEN 1 ELSE 0 END) AS drafts, \
         SUM(CASE WHEN r.counted_version IS NOT NULL{counted} THEN 1 ELSE 0 END) AS submitted, \
         SUM(CASE WHEN r.counted_version IS NOT NULL AND r.status = 'accepted' THEN 1 ELSE 0 END) AS accepted \
         FROM responses r WHERE r.survey_id = {s}"
    );
    // Every country is asked (the population is applied with the other country filters); only
    // responses and links for the country as a whole count.
    format!(
        "SELECT iso3 AS country_iso3, CAST(1 AS BIGINT) AS targeted, {zero} AS invited, {zero} AS opened, \
         {zero} AS drafts, {zero} AS submitted, {zero} AS accepted FROM countries \
         UNION ALL SELECT o.country_iso3, {zero}, CAST(1 AS BIGINT), {zero}, {zero}, {zero}, {zero} FROM outbox o \
         WHERE o.survey_id = {s} AND o.kind = 'invite' AND o.status = 'sent' GROUP BY o.country_iso3 \
         UNION ALL SELECT t.country_iso3, {zero}, {zero}, CAST(1 AS BIGINT), {zero}, {zero}, {zero} FROM access_tokens t \
         WHERE t.survey_id = {s} AND t.unit = '' AND t.first_used_at IS NOT NULL GROUP BY t.country_iso3 \
         UNION ALL SELECT r.country_iso3, {zero}, {zero}, {zero}, {response} AND r.unit = '' GROUP BY r.country_iso3"
    )
}

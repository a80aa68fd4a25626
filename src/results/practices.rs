//! Good practices (the compendium), capacity-building needs (ranked), and partner matching
//! between them: what the questions marked in the survey definition exist for.
//!
//! The compendium is read in two steps: [`listings`] says which practices there are, who
//! reported them, in which themes and in which order, without their texts; [`practices`] reads
//! the texts and related answers of the listings a page shows. At 100,000 organisations the
//! first view orders 48,000 practices and shows 200: reading every text to show 200 of them
//! took over a second. The listings of the counted versions are read from what the database
//! keeps of each version's practices (`version_practices`, by triggers on the versions'
//! answers, for the roles [`keep_roles`] writes when the server starts): one narrow row per
//! practice instead of every answer to the practice, themes and citation questions. The
//! database keeps their texts too, in a table of their own (`version_practice_texts`), for the
//! Markdown download, which shows every practice (see [`KeptTexts`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use diesel::sql_types::{BigInt, Bool, Text};
use diesel::{Queryable, QueryableByName, RunQueryDsl};
use serde::Serialize;

use super::aggregate::{choice_counts_by_two, Filter, Grouping};
use super::sql::Sql;
use crate::db::DbConn;
use crate::i18n::translate;
use crate::reference::Countries;
use crate::survey::answer::{is_value_item, Item};
use crate::survey::display::display_value;
use crate::survey::{Marker, NeedLevel, Question, Survey};

#[derive(QueryableByName, Debug)]
struct AnswerRow {
    #[diesel(sql_type = Text)]
    iso3: String,
    #[diesel(sql_type = Text)]
    question_id: String,
    #[diesel(sql_type = Text)]
    item: String,
    #[diesel(sql_type = Text)]
    value: String,
}

/// The counted answers to the given questions, per response, with the response's country.
fn answers_of(
    conn: &mut DbConn,
    survey_id: &str,
    questions: &[&str],
    filter: &Filter,
) -> diesel::QueryResult<Vec<AnswerRow>> {
    if questions.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new(
        "SELECT c.iso3 AS iso3, a.question_id AS question_id, a.item AS item, a.value AS value",
    );
    super::aggregate::answers_from(&mut sql, survey_id, filter);
    // No ORDER BY: the callers order what they build (sorting every answer row in the
    // database cost more than the query itself on 100,000 responses).
    sql.push(" AND a.question_id IN ");
    sql.bind_list(questions.iter().copied());
    sql.query().load(conn)
}

/// One answer read for a practice's listing: which of the listing's questions it answers, and
/// only what the listing takes from it (the others ''). Narrow on purpose: at 100,000
/// organisations a listing reads 132,000 answers, and allocating each row's six strings cost
/// as much as the query.
#[derive(QueryableByName, Debug)]
struct ListingRow {
    /// The version it is of (0 for a draft's live answers).
    #[diesel(sql_type = BigInt)]
    version: i64,
    #[diesel(sql_type = Text)]
    response_id: String,
    /// A sum of [`ListingRow::PRACTICE`], [`ListingRow::THEMES`] and [`ListingRow::CITED`].
    #[diesel(sql_type = BigInt)]
    part: i64,
    /// The response's country and organisation, on the practice's row.
    #[diesel(sql_type = Text)]
    iso3: String,
    #[diesel(sql_type = Text)]
    unit: String,
    /// The option picked, on a row of the themes question: the item of a multiple choice,
    /// the value of a single choice.
    #[diesel(sql_type = Text)]
    code: String,
}

impl ListingRow {
    /// The practice's text (not read).
    const PRACTICE: i64 = 1;
    /// An answer to the question the practice's themes are picked in.
    const THEMES: i64 = 2;
    /// "Yes" to the question whether it may be cited.
    const CITED: i64 = 4;
}

/// `<response_id>, <part>, <iso3>, <unit>, <code>` of a [`ListingRow`] over answers `a` (and,
/// where `joined`, their response `r` and country `c`).
fn push_listing_columns(
    sql: &mut Sql,
    practice: &str,
    themes_from: Option<&str>,
    cite: Option<&str>,
    joined: bool,
) {
    sql.push("a.response_id AS response_id, CAST((CASE WHEN a.question_id = ")
        .bind(practice)
        .push(" AND a.item = '' THEN 1 ELSE 0 END)");
    if let Some(t) = themes_from {
        sql.push(" + (CASE WHEN a.question_id = ")
            .bind(t)
            .push(" THEN 2 ELSE 0 END)");
    }
    if let Some(c) = cite {
        sql.push(" + (CASE WHEN a.question_id = ")
            .bind(c)
            .push(" AND a.value = 'yes' THEN 4 ELSE 0 END)");
    }
    sql.push(" AS BIGINT) AS part, ");
    if joined {
        sql.push("CASE WHEN a.question_id = ")
            .bind(practice)
            .push(" THEN c.iso3 ELSE '' END AS iso3, CASE WHEN a.question_id = ")
            .bind(practice)
            .push(" THEN r.unit ELSE '' END AS unit, ");
    } else {
        sql.push("'' AS iso3, '' AS unit, ");
    }
    match themes_from {
        Some(t) => {
            sql.push("CASE WHEN a.question_id = ").bind(t).push(
                " THEN (CASE WHEN a.item = '' THEN a.value ELSE a.item END) ELSE '' END AS code",
            );
        }
        None => {
            sql.push("'' AS code");
        }
    }
}

/// The answers a practice question's listings are made of, of the counted versions: the
/// practice's own rows (without its text), its themes and its "may be cited".
/// [`listed_from_answers`] keeps the themes' and citation's rows of each practice's own version.
fn listing_rows(
    conn: &mut DbConn,
    survey_id: &str,
    practice: &str,
    themes_from: Option<&str>,
    cite: Option<&str>,
    filter: &Filter,
) -> diesel::QueryResult<Vec<ListingRow>> {
    let others: Vec<&str> = themes_from.into_iter().chain(cite).collect();
    // Counted versions only: the practice's rows with their response (which the filter is
    // about, and which says the version that counts), then the themes' and citation's rows by
    // question alone, of every version. At 100,000 organisations, joining those 84,000 rows to
    // their responses as well cost as much as the rest of the query.
    let mut sql = Sql::new("SELECT CAST(a.version AS BIGINT) AS version, ");
    push_listing_columns(&mut sql, practice, themes_from, cite, true);
    super::aggregate::answers_from(&mut sql, survey_id, &filter.counted_only());
    sql.push(" AND a.question_id = ").bind(practice);
    let mut rows: Vec<ListingRow> = sql.query().load(conn)?;
    if !others.is_empty() {
        let mut sql = Sql::new("SELECT CAST(a.version AS BIGINT) AS version, ");
        push_listing_columns(&mut sql, practice, themes_from, cite, false);
        sql.push(" FROM version_answers a WHERE a.question_id IN ");
        sql.bind_list(others.iter().copied());
        rows.extend(sql.query().load::<ListingRow>(conn)?);
    }
    Ok(rows)
}

/// One answer read for a practice shown: of which version (0 for a draft's live answers).
/// Read by position (see [`TextColumns`]).
#[derive(Queryable, Debug)]
struct TextRow {
    version: i64,
    response_id: String,
    question_id: String,
    item: String,
    value: String,
}

/// The SQL types of [`TextRow`]'s columns, in [`answers_statement`]'s order.
type TextColumns = (BigInt, Text, Text, Text, Text);

/// Whose answers [`answers_statement`] reads.
#[derive(Clone, Copy)]
enum Responses<'a> {
    /// Every response of the survey in a state the filter counts, whatever its country: the
    /// caller keeps the rows of its listings' responses and drops the others' (all of them
    /// held at once, as the download's practices are).
    All,
    /// These responses (chosen by a filter already: their listings').
    These(&'a [&'a str]),
}

/// The statement that reads the answers to the given questions of the given responses: the
/// counted version's, and with drafts included a draft's visible live answers (the rule of
/// `aggregate::answers_from`, here by response). None when there is nothing to read.
fn answers_statement(
    survey_id: &str,
    responses: Responses,
    questions: &[&str],
    filter: &Filter,
) -> Option<Sql> {
    if matches!(responses, Responses::These(r) if r.is_empty()) || questions.is_empty() {
        return None;
    }
    let mut sql = Sql::new("");
    push_answers(
        &mut sql,
        Part::Counted,
        survey_id,
        responses,
        questions,
        filter,
    );
    if filter.with_drafts() {
        sql.push(" UNION ALL ");
        push_answers(
            &mut sql,
            Part::Drafts,
            survey_id,
            responses,
            questions,
            filter,
        );
    }
    Some(sql)
}

/// Which answers a part of [`answers_statement`] reads.
#[derive(Clone, Copy)]
enum Part {
    /// Those of the counted versions.
    Counted,
    /// A draft's visible live answers (version 0).
    Drafts,
}

/// One part of [`answers_statement`].
fn push_answers(
    sql: &mut Sql,
    part: Part,
    survey_id: &str,
    responses: Responses,
    questions: &[&str],
    filter: &Filter,
) {
    // The answers first, then their response: SQLite keeps the order of a CROSS JOIN, and so
    // reads the answers to each question in one pass along its index. Starting from the
    // survey's responses, it looked up each response's answers to each question in turn, one
    // random page of the index after another (the download at 100,000 organisations: the
    // statement took 1.4-1.8 s in `sqlite3`, most of it reading pages, against 0.3 s).
    // PostgreSQL plans it like any join. The drafts' part likewise (0.47 -> 0.33 s).
    sql.push(match part {
        Part::Counted => {
            "SELECT CAST(a.version AS BIGINT) AS version, r.id AS response_id, \
             a.question_id AS question_id, a.item AS item, a.value AS value \
             FROM version_answers a CROSS JOIN responses r"
        }
        Part::Drafts => {
            "SELECT CAST(0 AS BIGINT), r.id, a.question_id, a.item, a.value \
             FROM answers a CROSS JOIN responses r"
        }
    });
    sql.push(" WHERE r.id = a.response_id AND r.survey_id = ")
        .bind(survey_id);
    sql.push(match part {
        Part::Counted => " AND a.version = r.counted_version",
        Part::Drafts => " AND r.counted_version IS NULL AND a.visible = TRUE",
    });
    match responses {
        Responses::These(these) => {
            sql.push(" AND a.response_id IN ");
            sql.bind_list(these.iter().copied());
        }
        // Responses in the state the filter counts; of every country, though. With
        // `countries` joined for the filter's population, region or income, PostgreSQL
        // misjudged the rows of the answers' join to their responses (2 for 1,144) and
        // checked each against each of the 193 countries of a population (75 ms against 8,
        // as a sub-query too). Other countries' rows match no listing and are dropped.
        Responses::All => super::aggregate::push_state_filter(sql, filter),
    }
    sql.push(" AND a.question_id IN ");
    sql.bind_list(questions.iter().copied());
}

/// Reads `sql`'s answers row by row, not collected (the download's 300,000 rows were a vector
/// of 30 MB, grown by copying, before anything was made of them), and gives each to `each`.
fn read_answers(
    conn: &mut DbConn,
    sql: Option<&Sql>,
    each: &mut dyn FnMut(TextRow),
) -> diesel::QueryResult<()> {
    let Some(sql) = sql else {
        return Ok(());
    };
    for row in sql
        .typed::<TextColumns>()
        .load_iter::<TextRow, diesel::connection::DefaultLoadingMode>(conn)?
    {
        each(row?);
    }
    Ok(())
}

/// A good practice as the compendium lists and orders it: who reported it, where, and in which
/// themes, without its related answers, and without its text unless given it (see
/// [`KeptTexts`]); [`practices`] reads them for the listings shown.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Listing {
    /// The response it is an answer of: where its answers are read from, and the order's last
    /// key.
    #[serde(skip)]
    pub response_id: String,
    /// The version it was listed from, 0 for a draft's live answers (drafts included): its
    /// text is read from that version only.
    #[serde(skip)]
    pub version: i64,
    // The strings many listings have alike are shared, not one allocation each: 48,000
    // listings at 100,000 organisations.
    pub question: Arc<str>,
    pub iso3: String,
    /// The organisation that reported it, in a survey of organisations where the practice may
    /// be cited ('' otherwise).
    pub unit: String,
    /// The country's (or "organisation, country") name where the practice may be cited, else
    /// "a government in <sub-region>".
    pub attribution: Arc<str>,
    pub citable: bool,
    pub region: Arc<str>,
    pub subregion: Arc<str>,
    pub development: Arc<str>,
    pub themes: Vec<String>,
    /// The practice's text, when the listing was given it (the counted versions' kept texts,
    /// for the Markdown download: see [`KeptTexts`]); else [`practices`] reads it.
    #[serde(skip)]
    pub text: Option<String>,
}

/// A practice in full: its listing, its text, and the related answers the definition names.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Practice {
    #[serde(flatten)]
    pub listing: Listing,
    pub text: String,
    /// (question text, answer as displayed) of the related answers the definition names.
    pub related: Vec<(String, String)>,
}

impl AsRef<Listing> for Listing {
    fn as_ref(&self) -> &Listing {
        self
    }
}

impl AsRef<Listing> for Practice {
    fn as_ref(&self) -> &Listing {
        &self.listing
    }
}

/// What a listing takes from its country, worked out once per country (not per practice).
struct Place {
    region: Arc<str>,
    subregion: Arc<str>,
    development: Arc<str>,
    name: Arc<str>,
    /// "a government in <sub-region>".
    anonymous: Arc<str>,
}

/// The places of the countries met so far, and the order of their regions and sub-regions.
struct Places<'a> {
    countries: &'a Countries,
    lang: &'a str,
    by_iso3: HashMap<String, Place>,
}

impl<'a> Places<'a> {
    fn new(countries: &'a Countries, lang: &'a str) -> Places<'a> {
        Places {
            countries,
            lang,
            by_iso3: HashMap::new(),
        }
    }

    fn of(&mut self, iso3: &str) -> &Place {
        if !self.by_iso3.contains_key(iso3) {
            let country = self.countries.get(iso3);
            let lang = self.lang;
            let subregion = country
                .map(|c| c.subregion(lang).to_string())
                .unwrap_or_default();
            let place = Place {
                region: country.map_or("", |c| c.region(lang)).into(),
                development: country.map_or("", |c| c.development.as_str()).into(),
                name: country.map_or(iso3, |c| c.name(lang)).into(),
                anonymous: crate::i18n::translate(
                    lang,
                    "results-anonymous",
                    &[("subregion", subregion.clone())],
                )
                .into(),
                subregion: subregion.into(),
            };
            self.by_iso3.insert(iso3.to_string(), place);
        }
        &self.by_iso3[iso3]
    }

    /// Each country's rank in the order of (region, sub-region) by name: compared as numbers
    /// rather than as two strings per comparison of the sort.
    fn ranks(&self) -> HashMap<&str, usize> {
        let mut pairs: Vec<(&str, &str)> = self
            .by_iso3
            .values()
            .map(|p| (&*p.region, &*p.subregion))
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        self.by_iso3
            .iter()
            .map(|(iso3, p)| {
                let pair = (&*p.region, &*p.subregion);
                (iso3.as_str(), pairs.binary_search(&pair).unwrap_or(0))
            })
            .collect()
    }
}

/// A practice as read for its listing: who reported it, in which version, whether it may be
/// cited, and the codes picked in its themes question.
struct Listed {
    response_id: String,
    version: i64,
    iso3: String,
    unit: String,
    citable: bool,
    codes: Vec<String>,
}

/// The texts the database keeps of a survey's practices (`version_practice_texts`, migration
/// 34: each kept listing's version's answer to its practice question), by response: (version,
/// practice question, text). The Markdown download shows every practice's text, read so in one
/// scan of a table that holds nothing else. From `version_answers`, at 100,000 organisations,
/// PostgreSQL visited 15,000 pages (nearly the whole table: a version's answers lie together,
/// not a question's) for the 84,000 rows of the texts and citations (0.27 s in `psql`); joined
/// to the listings in their statement, the kept texts cost SQLite a look-up per listing (the
/// statement 36 -> 99 ms in `sqlite3`, against 10 ms for this scan). A version's answers do not
/// change once submitted, so a text found for a listing's response, version and question is
/// the one its listing was computed with.
struct KeptTexts(HashMap<String, Vec<(i64, String, String)>>);

impl KeptTexts {
    fn read(conn: &mut DbConn, survey_id: &str) -> diesel::QueryResult<KeptTexts> {
        let mut sql = Sql::new(
            "SELECT response_id, CAST(version AS BIGINT), practice_id, text \
             FROM version_practice_texts WHERE survey_id = ",
        );
        sql.bind(survey_id);
        let mut by_response: HashMap<String, Vec<(i64, String, String)>> = HashMap::new();
        for row in sql
            .typed::<(Text, BigInt, Text, Text)>()
            .load_iter::<(String, i64, String, String), diesel::connection::DefaultLoadingMode>(
            conn,
        )? {
            let (response_id, version, practice, text) = row?;
            by_response
                .entry(response_id)
                .or_default()
                .push((version, practice, text));
        }
        Ok(KeptTexts(by_response))
    }

    /// Gives each listing its version's text, where one is kept (moved, not copied). What is
    /// left (a key and a question's id per listing, and the texts of the responses a filter
    /// left out) is freed on a thread of its own (see [`free_elsewhere`]).
    fn give_to(mut self, listings: &mut [Listing]) {
        for l in listings {
            let Some(texts) = self.0.get_mut(l.response_id.as_str()) else {
                continue;
            };
            let of_listing = texts
                .iter()
                .position(|(version, q, _)| *version == l.version && **q == *l.question);
            if let Some(i) = of_listing {
                l.text = Some(texts.swap_remove(i).2);
            }
        }
        free_elsewhere(self);
    }
}

/// One question's practices of the counted versions, from every answer to it and to its themes
/// and citation questions (without roles kept: see [`listed_kept`]).
fn listed_from_answers(
    conn: &mut DbConn,
    survey_id: &str,
    practice: &str,
    themes_from: Option<&str>,
    cite: Option<&str>,
    filter: &Filter,
) -> diesel::QueryResult<Vec<Listed>> {
    let rows = listing_rows(conn, survey_id, practice, themes_from, cite, filter)?;
    // The practices first (every response that answered the question), then what their
    // other answers say of them.
    // Each practice's place and version.
    let mut at: HashMap<String, (usize, i64)> = HashMap::new();
    let mut listed: Vec<Listed> = Vec::new();
    let mut others: Vec<ListingRow> = Vec::new();
    for r in rows {
        if r.part & ListingRow::PRACTICE == 0 {
            others.push(r);
            continue;
        }
        at.insert(r.response_id.clone(), (listed.len(), r.version));
        let mut practice = Listed {
            response_id: r.response_id,
            version: r.version,
            iso3: r.iso3,
            unit: r.unit,
            citable: false,
            codes: Vec::new(),
        };
        // The practice's own row may also be its themes' or citation's (one question).
        add_to(&mut practice, r.part, r.code);
        listed.push(practice);
    }
    for r in others {
        let Some(&(i, version)) = at.get(&r.response_id) else {
            continue;
        };
        if r.version == version {
            add_to(&mut listed[i], r.part, r.code);
        }
    }
    Ok(listed)
}

/// What a row of its own version says of a practice: that it may be cited, a theme picked.
fn add_to(practice: &mut Listed, part: i64, code: String) {
    if part & ListingRow::CITED != 0 {
        practice.citable = true;
    }
    if part & ListingRow::THEMES != 0 {
        practice.codes.push(code);
    }
}

/// A practice's listing as kept in `version_practices`, with its response's country and unit,
/// read by position (the columns of [`listed_kept`]'s statement, in order).
#[derive(Queryable, Debug)]
struct KeptRow {
    version: i64,
    response_id: String,
    iso3: String,
    unit: String,
    citable: bool,
    theme_codes: String,
}

/// What separates the codes in `version_practices.theme_codes` (no code holds it).
const CODE_SEPARATOR: char = '\u{1f}';

/// One question's practices of the counted versions, from the listings the database keeps
/// (`version_practices`): one narrow row per practice.
fn listed_kept(
    conn: &mut DbConn,
    survey_id: &str,
    practice: &str,
    filter: &Filter,
) -> diesel::QueryResult<Vec<Listed>> {
    // Listings first, then their response: SQLite keeps the order of a CROSS JOIN (it would
    // start from the survey's responses otherwise); PostgreSQL plans it like any join.
    let mut sql = Sql::new(
        "SELECT CAST(l.version AS BIGINT) AS version, l.response_id AS response_id, \
         c.iso3 AS iso3, r.unit AS unit, l.citable AS citable, l.theme_codes AS theme_codes \
         FROM version_practices l CROSS JOIN responses r JOIN countries c ON c.iso3 = r.country_iso3 \
         WHERE r.id = l.response_id AND r.counted_version = l.version AND l.survey_id = ",
    );
    sql.bind(survey_id)
        .push(" AND l.practice_id = ")
        .bind(practice)
        .push(" AND r.survey_id = ")
        .bind(survey_id);
    super::aggregate::push_filter(&mut sql, filter);
    // Row by row into listings, without a vector of the rows first.
    let listed = sql
        .typed::<(BigInt, Text, Text, Text, Bool, Text)>()
        .load_iter::<KeptRow, diesel::connection::DefaultLoadingMode>(conn)?
        .map(|row| {
            row.map(|r| Listed {
                codes: r
                    .theme_codes
                    .split(CODE_SEPARATOR)
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                response_id: r.response_id,
                version: r.version,
                iso3: r.iso3,
                unit: r.unit,
                citable: r.citable,
            })
        })
        .collect();
    listed
}

/// The roles the survey's good-practice questions give to questions, as `practice_roles`
/// keeps them: (practice, role, question), sorted.
fn roles(survey: &Survey) -> Vec<(String, &'static str, String)> {
    let mut out = Vec::new();
    for q in survey.questions() {
        let Some(Marker::GoodPractice {
            themes_from,
            cite_question,
            ..
        }) = &q.marker
        else {
            continue;
        };
        out.push((q.id.clone(), "practice", q.id.clone()));
        if let Some(t) = themes_from {
            out.push((q.id.clone(), "themes", t.clone()));
        }
        if let Some(c) = cite_question {
            out.push((q.id.clone(), "cite", c.clone()));
        }
    }
    out.sort();
    out
}

#[derive(QueryableByName, Debug)]
struct RoleRow {
    #[diesel(sql_type = Text)]
    practice_id: String,
    #[diesel(sql_type = Text)]
    role: String,
    #[diesel(sql_type = Text)]
    question_id: String,
}

/// Whether the database keeps a survey's listings for its current definition: its stored
/// roles are `current` (the survey's [`roles`]).
fn roles_kept(
    conn: &mut DbConn,
    survey_id: &str,
    current: &[(String, &str, String)],
) -> diesel::QueryResult<bool> {
    let mut sql =
        Sql::new("SELECT practice_id, role, question_id FROM practice_roles WHERE survey_id = ");
    sql.bind(survey_id)
        .push(" ORDER BY practice_id, role, question_id");
    let stored: Vec<RoleRow> = sql.query().load(conn)?;
    Ok(stored.len() == current.len()
        && stored
            .iter()
            .zip(current)
            .all(|(s, (p, r, q))| s.practice_id == *p && s.role == *r && s.question_id == *q))
}

/// Write the survey's good-practice roles into `practice_roles` where they changed (or were
/// never written), and compute every version's listings again (`version_practices`), in one
/// transaction: from then on the database's triggers keep them. The server calls it for each
/// survey when it starts; returns whether anything was written.
pub fn keep_roles(conn: &mut DbConn, survey: &Survey) -> diesel::QueryResult<bool> {
    crate::db::transaction(conn, |conn| {
        // A second server starting on the same database waits, then finds them written.
        crate::db::lock_for_startup(conn)?;
        let roles = roles(survey);
        if roles_kept(conn, &survey.id, &roles)? {
            return Ok(false);
        }
        let mut sql = Sql::new("DELETE FROM practice_roles WHERE survey_id = ");
        sql.bind(survey.id.as_str());
        sql.query().execute(conn)?;
        for table in ["version_practices", "version_practice_texts"] {
            let mut sql = Sql::new(&format!("DELETE FROM {table} WHERE survey_id = "));
            sql.bind(survey.id.as_str());
            sql.query().execute(conn)?;
        }
        if roles.is_empty() {
            return Ok(true);
        }
        let mut sql = Sql::new(
            "INSERT INTO practice_roles (survey_id, practice_id, role, question_id) VALUES ",
        );
        for (i, (practice, role, question)) in roles.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" })
                .bind(survey.id.as_str())
                .push(", ")
                .bind(practice.as_str())
                .push(", ")
                .bind(*role)
                .push(", ")
                .bind(question.as_str())
                .push(")");
        }
        sql.query().execute(conn)?;
        // What the triggers compute for one version, for every version of the survey.
        let mut sql = Sql::new(
            "INSERT INTO version_practices \
             (survey_id, practice_id, response_id, version, citable, theme_codes) \
             SELECT survey_id, practice_id, response_id, version, citable, theme_codes \
             FROM version_practices_computed WHERE survey_id = ",
        );
        sql.bind(survey.id.as_str());
        sql.query().execute(conn)?;
        let mut sql = Sql::new(
            "INSERT INTO version_practice_texts \
             (survey_id, practice_id, response_id, version, text) \
             SELECT survey_id, practice_id, response_id, version, text \
             FROM version_practices_computed WHERE survey_id = ",
        );
        sql.bind(survey.id.as_str());
        sql.query().execute(conn)?;
        if let DbConn::Postgres(_) = conn {
            // Statistics now, not at autovacuum's next pass: PostgreSQL plans the first views
            // on a table it believes empty as nested loops (1.0 s instead of 0.3 s at 100,000).
            diesel::sql_query("ANALYZE version_practices, version_practice_texts").execute(conn)?;
        }
        Ok(true)
    })
}

/// Where [`listings_reading`] reads the practices from.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListingsFrom {
    /// The listings the database keeps where it can (counted versions, roles kept), else
    /// the answers.
    Kept,
    /// The answers, always.
    Answers,
}

/// Every answer marked as a good practice, with its themes and attribution, in the
/// compendium's order: question by question in the definition's order, and within each
/// question by region and sub-region, then named before anonymous, then by attribution, then
/// by response (a random id). Never by country, since an anonymous practice listed between two
/// named countries would give its own away; and not by text, which would need every text.
pub fn listings(
    conn: &mut DbConn,
    survey: &Survey,
    countries: &Countries,
    filter: &Filter,
    lang: &str,
) -> diesel::QueryResult<Vec<Listing>> {
    listings_reading(conn, survey, countries, filter, lang, ListingsFrom::Kept)
}

/// [`listings`], with drafts included on two connections when a second is given: the drafts'
/// listings, read from their live answers, on `second` while the counted versions' are read
/// on `conn` (each took about as long as the other at 100,000 organisations with 20,000
/// drafts), merged in the compendium's order.
pub fn listings_on_two(
    conn: &mut DbConn,
    second: Option<&mut DbConn>,
    survey: &Survey,
    countries: &Countries,
    filter: &Filter,
    lang: &str,
) -> diesel::QueryResult<Vec<Listing>> {
    listings_in_parts(
        conn,
        second,
        survey,
        countries,
        filter,
        lang,
        ListingsFrom::Kept,
    )
}

/// [`listings`], read from where `from` says: for the tests, which compare the listings the
/// database keeps with those computed from the answers.
#[doc(hidden)]
pub fn listings_reading(
    conn: &mut DbConn,
    survey: &Survey,
    countries: &Countries,
    filter: &Filter,
    lang: &str,
    from: ListingsFrom,
) -> diesel::QueryResult<Vec<Listing>> {
    listings_in_parts(conn, None, survey, countries, filter, lang, from)
}

/// The counted versions' listings (read from where `from` says) and with drafts included the
/// drafts' (see [`counted_beside_drafts`]).
fn listings_in_parts(
    conn: &mut DbConn,
    second: Option<&mut DbConn>,
    survey: &Survey,
    countries: &Countries,
    filter: &Filter,
    lang: &str,
    from: ListingsFrom,
) -> diesel::QueryResult<Vec<Listing>> {
    // Only responses from the survey's population count, whatever filter the caller built.
    let filter = &filter.clone().within(survey);
    let counted = |conn: &mut DbConn| counted_listings(conn, survey, countries, filter, lang, from);
    if !filter.with_drafts() {
        return counted(conn);
    }
    counted_beside_drafts(conn, second, survey, counted, |conn| {
        let questions = listing_questions(survey);
        let rows = draft_rows(conn, survey, &questions, filter)?;
        in_order(survey, countries, lang, |q, themes_from, cite| {
            Ok(drafts_listed(&rows, &q.id, themes_from, cite))
        })
    })
}

/// The counted versions' listings, in the compendium's order: kept where the database keeps
/// them (and `from` allows), else computed from their answers.
fn counted_listings(
    conn: &mut DbConn,
    survey: &Survey,
    countries: &Countries,
    filter: &Filter,
    lang: &str,
    from: ListingsFrom,
) -> diesel::QueryResult<Vec<Listing>> {
    let counted = &filter.counted_only();
    let kept = from == ListingsFrom::Kept && roles_kept(conn, &survey.id, &roles(survey))?;
    in_order(survey, countries, lang, |q, themes_from, cite| {
        if kept {
            listed_kept(conn, &survey.id, &q.id, counted)
        } else {
            listed_from_answers(conn, &survey.id, &q.id, themes_from, cite, counted)
        }
    })
}

/// Every good-practice question's listings, question by question in the definition's order and
/// each question's in the compendium's order, from its practices as `listed` reads them (given
/// the question, its themes question and its citation question).
fn in_order(
    survey: &Survey,
    countries: &Countries,
    lang: &str,
    mut listed: impl FnMut(&Question, Option<&str>, Option<&str>) -> diesel::QueryResult<Vec<Listed>>,
) -> diesel::QueryResult<Vec<Listing>> {
    let mut places = Places::new(countries, lang);
    let mut out = Vec::new();
    for q in survey.questions() {
        let Some(Marker::GoodPractice {
            themes_from,
            cite_question,
            ..
        }) = &q.marker
        else {
            continue;
        };
        let of_question = listed(q, themes_from.as_deref(), cite_question.as_deref())?;
        let listings = listings_of(survey, q, of_question, &mut places);
        let ranks = places.ranks();
        out.extend(in_compendium_order(listings, &ranks));
    }
    Ok(out)
}

/// The questions a listing is read from: each good-practice question, its themes question and
/// its citation question.
fn listing_questions(survey: &Survey) -> Vec<&str> {
    let mut questions: Vec<&str> = Vec::new();
    for q in survey.questions() {
        if let Some(Marker::GoodPractice {
            themes_from,
            cite_question,
            ..
        }) = &q.marker
        {
            for id in std::iter::once(q.id.as_str())
                .chain(themes_from.as_deref())
                .chain(cite_question.as_deref())
            {
                if !questions.contains(&id) {
                    questions.push(id);
                }
            }
        }
    }
    questions
}

/// The counted versions' practices (`counted`) and the drafts' (`drafts`), merged in the
/// compendium's order: on `second`, in a thread of their own, the drafts' while the counted
/// versions' are read on `conn`; without a second, the drafts' first, then the counted
/// versions'. In that order a draft submitted between the two reads is seen as both, and
/// listed once, as counted (a recall in between, much rarer, leaves it out of this view).
fn counted_beside_drafts<P: AsRef<Listing> + Send>(
    conn: &mut DbConn,
    second: Option<&mut DbConn>,
    survey: &Survey,
    counted: impl FnOnce(&mut DbConn) -> diesel::QueryResult<Vec<P>>,
    drafts: impl FnOnce(&mut DbConn) -> diesel::QueryResult<Vec<P>> + Send,
) -> diesel::QueryResult<Vec<P>> {
    let Some(second) = second else {
        let of_drafts = drafts(conn)?;
        let of_counted = counted(conn)?;
        return Ok(merged_in_compendium_order(survey, of_counted, of_drafts));
    };
    let (of_drafts, of_counted) =
        at_once("compendium drafts", || drafts(second), || counted(conn))?;
    let of_drafts = of_drafts?;
    Ok(merged_in_compendium_order(survey, of_counted?, of_drafts))
}

/// Runs `there` on a thread of its own, named `name`, while `here` runs on this one (each
/// reading on a connection of its own), and returns both results. A panic on the thread is
/// resumed here; only a thread that cannot be started is an error of this function.
fn at_once<A: Send, B>(
    name: &str,
    there: impl FnOnce() -> A + Send,
    here: impl FnOnce() -> B,
) -> diesel::QueryResult<(A, B)> {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn_scoped(scope, there)
            .map_err(|e| diesel::result::Error::QueryBuilderError(Box::new(e)))?;
        let here = here();
        let there = thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        Ok((there, here))
    })
}

/// The listings of a good-practice question `q` (in no order) from what was read of its
/// practices: their themes (the question's own, then those of the options picked), their
/// place, and their attribution.
fn listings_of(
    survey: &Survey,
    q: &Question,
    listed: Vec<Listed>,
    places: &mut Places,
) -> Vec<Listing> {
    let Some(Marker::GoodPractice {
        themes,
        themes_from,
        ..
    }) = &q.marker
    else {
        return Vec::new();
    };
    let picker = themes_from.as_ref().and_then(|f| survey.question(f));
    let options = picker.map(|p| p.kind.options()).unwrap_or(&[]);
    let mut listings: Vec<Listing> = Vec::with_capacity(listed.len());
    let question: Arc<str> = q.id.as_str().into();
    for mut l in listed {
        let mut listing_themes = Vec::with_capacity(themes.len() + l.codes.len());
        listing_themes.extend_from_slice(themes);
        // The theme options the respondent picked, in code order (as the answers' items
        // are ordered).
        l.codes.sort_unstable();
        for code in &l.codes {
            if let Some(theme) = options
                .iter()
                .find(|o| &o.code == code)
                .and_then(|o| o.theme.as_ref())
            {
                if !listing_themes.contains(theme) {
                    listing_themes.push(theme.clone());
                }
            }
        }
        let place = places.of(&l.iso3);
        // Chatham House: named only where the respondent said yes; a practice that may
        // not be cited does not name its organisation either.
        let attribution = if l.citable && l.unit.is_empty() {
            place.name.clone()
        } else if l.citable {
            crate::survey::respondent_name(&l.unit, &place.name).into()
        } else {
            l.unit.clear();
            place.anonymous.clone()
        };
        listings.push(Listing {
            response_id: l.response_id,
            version: l.version,
            question: question.clone(),
            iso3: l.iso3,
            unit: l.unit,
            attribution,
            citable: l.citable,
            region: place.region.clone(),
            subregion: place.subregion.clone(),
            development: place.development.clone(),
            themes: listing_themes,
            text: None,
        });
    }
    listings
}

/// One question's listings in the compendium's order (see [`listings`]). Positions are sorted,
/// not the listings (a few hundred bytes each, moved at every step of the sort).
fn in_compendium_order(listings: Vec<Listing>, ranks: &HashMap<&str, usize>) -> Vec<Listing> {
    let keys: Vec<(usize, bool, &str, &str)> = listings
        .iter()
        .map(|l| {
            (
                ranks.get(l.iso3.as_str()).copied().unwrap_or(0),
                !l.citable,
                // Anonymous ones of a rank (a sub-region) all have its attribution: not
                // compared, byte by byte, at every step of the sort.
                if l.citable { &*l.attribution } else { "" },
                l.response_id.as_str(),
            )
        })
        .collect();
    let mut order: Vec<usize> = (0..listings.len()).collect();
    order.sort_unstable_by(|&a, &b| keys[a].cmp(&keys[b]));
    drop(keys);
    let mut slots: Vec<Option<Listing>> = listings.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|i| slots.get_mut(i).and_then(Option::take))
        .collect()
}

/// The most listings [`practices`] reads by response: one statement binds each response once
/// (twice with drafts included), within SQLite's 32,766 parameters and PostgreSQL's 65,535.
/// More (the Markdown download of a large round) are read in one scan of the survey's
/// answers to the questions they need, which costs less than looking up thousands of
/// responses one by one (the whole download at 100,000 organisations: SQLite 1.3 s against
/// 2.2-3.5 s, PostgreSQL 1.8-2.1 s against 3.1 s).
const READ_BY_RESPONSE: usize = 5_000;

/// The given listings in full (in their order), their texts (unless given them) and related
/// answers read for them alone. A listing whose text is read here is left out when its
/// practice is no longer as it was listed: its response recalled or counted at another version
/// since, or (drafts included) its answer to "may it be cited" changed. So a page never shows
/// one version's text under another's attribution, which could name a government that asked
/// not to be. A listing given its kept text (see [`KeptTexts`]) has its text, attribution and
/// citation from its version, which does not change; only its related answers are read here,
/// of that version: one whose response was recalled or counted at another version since it
/// was listed (a download read as the response changed) is shown as listed, without its
/// related answers.
pub fn practices(
    conn: &mut DbConn,
    survey: &Survey,
    countries: &Countries,
    filter: &Filter,
    listings: Vec<Listing>,
    lang: &str,
) -> diesel::QueryResult<Vec<Practice>> {
    practices_reading(
        conn,
        survey,
        countries,
        filter,
        listings,
        lang,
        READ_BY_RESPONSE,
    )
}

/// [`practices`], reading by response up to `by_response` listings (more in one scan): for
/// the tests, which compare the two reads on small sets.
#[doc(hidden)]
pub fn practices_reading(
    conn: &mut DbConn,
    survey: &Survey,
    countries: &Countries,
    filter: &Filter,
    listings: Vec<Listing>,
    lang: &str,
    by_response: usize,
) -> diesel::QueryResult<Vec<Practice>> {
    let shown = shown_beside(survey);
    // Only the questions of practices listed; their texts and citation only where a listing
    // was not given its text.
    let questions = read_for(
        &shown,
        |q| listings.iter().any(|l| *l.question == *q),
        |q| {
            listings
                .iter()
                .any(|l| *l.question == *q && l.text.is_none())
        },
    );
    practices_from(
        countries,
        &shown,
        listings,
        lang,
        by_response,
        |whose, each| {
            let sql = answers_statement(&survey.id, whose, &questions, filter);
            read_answers(conn, sql.as_ref(), each)
        },
    )
}

/// What each practice question shows beside its text, in the definition's order, looked up
/// once (not per listing).
fn shown_beside(survey: &Survey) -> Vec<(&str, Shown<'_>)> {
    survey
        .questions()
        .filter_map(|q| match &q.marker {
            Some(Marker::GoodPractice {
                related,
                cite_question,
                ..
            }) => Some((
                q.id.as_str(),
                Shown {
                    related: related.iter().filter_map(|r| survey.question(r)).collect(),
                    cite: cite_question.as_deref(),
                },
            )),
            _ => None,
        })
        .collect()
}

/// The questions whose answers are read for the practice questions `listed` says are listed:
/// each one's related questions, and where `texts_missing` says some of its listings were not
/// given their texts, its own (the text) and its citation question's.
fn read_for<'s>(
    shown: &[(&'s str, Shown<'s>)],
    listed: impl Fn(&str) -> bool,
    texts_missing: impl Fn(&str) -> bool,
) -> Vec<&'s str> {
    let mut questions: Vec<&str> = Vec::new();
    for (q, shown) in shown {
        if listed(q) {
            let texts = texts_missing(q).then_some(*q);
            let cite = shown.cite.filter(|_| texts.is_some());
            for q in texts
                .into_iter()
                .chain(shown.related.iter().map(|r| r.id.as_str()))
                .chain(cite)
            {
                if !questions.contains(&q) {
                    questions.push(q);
                }
            }
        }
    }
    questions
}

/// The listings in full, from the answers `read` gives to its callback. `read` is told whose
/// answers to read: the listings' responses (sorted, each once) when there are at most
/// `by_response` of them, else all.
fn practices_from(
    countries: &Countries,
    shown: &[(&str, Shown)],
    mut listings: Vec<Listing>,
    lang: &str,
    by_response: usize,
    read: impl FnOnce(Responses, &mut dyn FnMut(TextRow)) -> diesel::QueryResult<()>,
) -> diesel::QueryResult<Vec<Practice>> {
    let name_of = |code: &str| {
        countries
            .get(code)
            .map(|c| c.name(lang).to_string())
            .unwrap_or_else(|| code.to_string())
    };
    let mut found: Vec<Found> = listings.iter_mut().map(Found::before_reading).collect();
    // Each row is given to the listings of its response in one pass: no grouping or sorting
    // of the rows (300,000 of them at 100,000 organisations), no copy of a text. A response's
    // listings are chained: its last listing, then each one's previous (most have one).
    let mut last_of: HashMap<&str, usize> = HashMap::with_capacity(listings.len());
    let mut previous_of: Vec<Option<usize>> = vec![None; listings.len()];
    for (i, listing) in listings.iter().enumerate() {
        previous_of[i] = last_of.insert(listing.response_id.as_str(), i);
    }
    let responses: Option<Vec<&str>> = (last_of.len() <= by_response).then(|| {
        let mut these: Vec<&str> = last_of.keys().copied().collect();
        these.sort_unstable();
        these
    });
    let shown_of: Vec<Option<&Shown>> = listings
        .iter()
        .map(|l| {
            shown
                .iter()
                .find(|(q, _)| **q == *l.question)
                .map(|(_, s)| s)
        })
        .collect();
    let whose = match &responses {
        Some(these) => Responses::These(these),
        None => Responses::All,
    };
    read(whose, &mut |row| {
        let mut next = last_of.get(row.response_id.as_str()).copied();
        let mut text_of = None;
        while let Some(i) = next {
            next = previous_of[i];
            let listing = &listings[i];
            // The listed version's answers only.
            let Some(shown) = shown_of[i].filter(|_| row.version == listing.version) else {
                continue;
            };
            let found = &mut found[i];
            if !found.read_with_listing {
                if shown.cite == Some(row.question_id.as_str()) && row.value == "yes" {
                    found.cited = true;
                }
                if *row.question_id == *listing.question && row.item.is_empty() {
                    text_of = Some(i);
                }
            }
            for (k, related) in shown.related.iter().enumerate() {
                if related.id == row.question_id {
                    found.related.resize_with(shown.related.len(), Vec::new);
                    found.related[k].push(Item {
                        item: row.item.clone(),
                        value: row.value.clone(),
                        num: None,
                    });
                }
            }
        }
        if let Some(i) = text_of {
            found[i].text = Some(row.value);
        }
    })?;
    drop(responses);
    drop(last_of);
    let mut out = Vec::with_capacity(listings.len());
    for ((listing, found), shown) in listings.into_iter().zip(found).zip(shown_of) {
        let Some(shown) = shown else {
            continue;
        };
        if found.cited != listing.citable {
            continue;
        }
        let Some(text) = found.text else {
            continue;
        };
        let mut related_items = found.related;
        related_items.resize_with(shown.related.len(), Vec::new);
        let related: Vec<(String, String)> = shown
            .related
            .iter()
            .zip(related_items)
            // A practice that may not be cited does not name a partner country either:
            // the pair could identify the government.
            .filter(|(rq, _)| listing.citable || rq.kind != crate::survey::QuestionKind::Country)
            .filter(|(_, items)| !items.is_empty())
            .map(|(rq, mut items)| {
                // In item order, as they are displayed.
                items.sort_unstable_by(|a, b| a.item.cmp(&b.item));
                (
                    rq.text.get(lang).to_string(),
                    display_value(rq, &items, lang, &name_of),
                )
            })
            .collect();
        out.push(Practice {
            listing,
            text,
            related,
        });
    }
    Ok(out)
}

/// What the rows read say of one listing: its text, whether its version says it may be cited,
/// and its related answers (by the position of the related question in [`Shown::related`];
/// empty until one is found).
#[derive(Default)]
struct Found {
    text: Option<String>,
    cited: bool,
    related: Vec<Vec<Item>>,
    /// Its text and citation came with the listing (see [`KeptTexts`]), so they are its
    /// version's: rows add its related answers only.
    read_with_listing: bool,
}

impl Found {
    /// What is known of `listing` before any row is read: its text and citation when it was
    /// given its text (taken from it: the practice holds the text).
    fn before_reading(listing: &mut Listing) -> Found {
        match listing.text.take() {
            Some(text) => Found {
                text: Some(text),
                cited: listing.citable,
                related: Vec::new(),
                read_with_listing: true,
            },
            None => Found::default(),
        }
    }
}

/// What a practice question shows beside its text: its related questions (those the survey
/// defines), and the question that says whether it may be cited.
struct Shown<'s> {
    related: Vec<&'s Question>,
    cite: Option<&'s str>,
}

/// Every good practice in full, in the compendium's order: what the Markdown download holds.
pub fn compendium(
    conn: &mut DbConn,
    survey: &Survey,
    countries: &Countries,
    filter: &Filter,
    lang: &str,
) -> diesel::QueryResult<Vec<Practice>> {
    if filter.with_drafts() {
        return compendium_with_drafts(conn, None, survey, countries, filter, lang);
    }
    let mut listed = listings(conn, survey, countries, filter, lang)?;
    // A listing without a kept text (none are kept for the survey's current roles yet) has it
    // read from the answers.
    KeptTexts::read(conn, &survey.id)?.give_to(&mut listed);
    practices(conn, survey, countries, filter, listed, lang)
}

/// [`compendium`] on two connections: the texts (see [`KeptTexts`]) and the related answers of
/// the filter's responses (without kept listings, every answer to the practice, related and
/// citation questions) are read on `texts_conn` while the listings are read and ordered on
/// `conn` in a thread of their own; the texts and rows are then given to the listings. At
/// 100,000 organisations, when the texts were read from the answers, each step took about as
/// long as the other (the statement 0.3 s in the database, the listings 0.26 s with their
/// statement). The statements see the database at different moments, as [`compendium`]'s do
/// (see [`practices`]). SQLite steps a statement only as its rows are asked for: there they are
/// all read into memory beside the listings (as libpq holds PostgreSQL's), not one by one once
/// the listings are done (the download at 100,000 organisations, texts read from the answers:
/// 267 -> 222 ms, for about 10 MB of rows held until they are given to the listings). With
/// drafts included, see [`compendium_with_drafts`]: `texts_conn` reads the drafts' practices,
/// and the kept texts are read by whichever connection is done first.
pub fn compendium_on_two(
    conn: &mut DbConn,
    texts_conn: &mut DbConn,
    survey: &Survey,
    countries: &Countries,
    filter: &Filter,
    lang: &str,
) -> diesel::QueryResult<Vec<Practice>> {
    if filter.with_drafts() {
        return compendium_with_drafts(conn, Some(texts_conn), survey, countries, filter, lang);
    }
    let shown = shown_beside(survey);
    // Without kept listings (none yet for the survey's current roles), every answer they show
    // is read, as before the texts were kept.
    let kept = roles_kept(conn, &survey.id, &roles(survey))?;
    let from = match kept {
        true => ListingsFrom::Kept,
        false => ListingsFrom::Answers,
    };
    let questions = read_for(&shown, |_| true, |_| !kept);
    let sql = answers_statement(&survey.id, Responses::All, &questions, filter);
    let beside = &mut *texts_conn;
    let (listed, read_beside) = at_once(
        "compendium listings",
        || listings_in_parts(conn, None, survey, countries, filter, lang, from),
        || {
            let texts = match kept {
                true => Some(KeptTexts::read(beside, &survey.id)?),
                false => None,
            };
            let stepped_when_asked = matches!(beside, DbConn::Sqlite(_));
            let rows = sql.as_ref().map(|sql| {
                sql.typed::<TextColumns>()
                    .load_iter::<TextRow, diesel::connection::DefaultLoadingMode>(beside)
                    .map(
                        |rows| -> Box<dyn Iterator<Item = diesel::QueryResult<TextRow>>> {
                            if stepped_when_asked {
                                Box::new(rows.collect::<Vec<_>>().into_iter())
                            } else {
                                Box::new(rows)
                            }
                        },
                    )
            });
            diesel::QueryResult::Ok((texts, rows))
        },
    )?;
    let (texts, rows) = read_beside?;
    let mut listed = listed?;
    if let Some(texts) = texts {
        texts.give_to(&mut listed);
    }
    if kept && listed.iter().any(|l| l.text.is_none()) {
        // A listing without its kept text (the roles written again between the reads, a
        // definition applied meanwhile): `rows` lack the texts; read as on one connection.
        drop(rows);
        return practices(texts_conn, survey, countries, filter, listed, lang);
    }
    practices_from(countries, &shown, listed, lang, 0, |_, each| {
        for row in rows.transpose()?.into_iter().flatten() {
            each(row?);
        }
        Ok(())
    })
}

/// [`compendium`] with drafts included: the counted versions' practices (their listings, their
/// kept texts, then their other answers) on `conn`, and the drafts' (see [`drafts_compendium`])
/// meanwhile on `drafts_conn` if given (the counted versions' kept texts then read by whichever
/// connection is done first with its part), else before them on `conn`, merged in the compendium's order. The drafts' and the counted
/// versions' listings are read at one moment, or the drafts' first: a draft submitted in
/// between is seen as both, and listed once, as counted (see [`counted_beside_drafts`]). At
/// 100,000 organisations with 20,000 drafts, the drafts' listings and their texts each took as
/// long as the counted versions' (their live answers are read one response at a time, the
/// counted versions' along a covering index): read as the counted versions' are, beside them,
/// they came last (the download 0.52 s on SQLite, 0.80 s on PostgreSQL, before the texts were
/// kept; on one connection, read as one list, 1.0 s and 0.93 s).
fn compendium_with_drafts(
    conn: &mut DbConn,
    drafts_conn: Option<&mut DbConn>,
    survey: &Survey,
    countries: &Countries,
    filter: &Filter,
    lang: &str,
) -> diesel::QueryResult<Vec<Practice>> {
    let counted = &filter.counted_only();
    let Some(drafts_conn) = drafts_conn else {
        return counted_beside_drafts(
            conn,
            None,
            survey,
            |conn| compendium(conn, survey, countries, counted, lang),
            |conn| drafts_compendium(conn, survey, countries, filter, lang),
        );
    };
    // The counted versions' kept texts are read by whichever connection is done first with
    // its own part. At 100,000 organisations the drafts' part was the longer on SQLite (their
    // live answers looked up one draft at a time: 0.29-0.43 s, the listings 0.23-0.29 s) and
    // the shorter on PostgreSQL (0.24 s, the listings 0.30 s); the texts take 70-90 ms on
    // either.
    let texts_taken = AtomicBool::new(false);
    let done_first = || !texts_taken.swap(true, Ordering::AcqRel);
    let (beside, listed) = at_once(
        "compendium drafts",
        || -> diesel::QueryResult<(Vec<Practice>, Option<KeptTexts>)> {
            let of_drafts = drafts_compendium(drafts_conn, survey, countries, filter, lang);
            // Taken even when the drafts' part failed: the download fails, and the other side
            // need not read the texts for it.
            let first = done_first();
            let of_drafts = of_drafts?;
            let texts = match first {
                true => Some(KeptTexts::read(drafts_conn, &survey.id)?),
                false => None,
            };
            Ok((of_drafts, texts))
        },
        || -> diesel::QueryResult<Vec<Listing>> {
            let mut listed = listings(conn, survey, countries, counted, lang)?;
            if done_first() {
                KeptTexts::read(conn, &survey.id)?.give_to(&mut listed);
            }
            Ok(listed)
        },
    )?;
    let (of_drafts, texts) = beside?;
    let mut listed = listed?;
    if let Some(texts) = texts {
        texts.give_to(&mut listed);
    }
    let of_counted = practices(conn, survey, countries, counted, listed, lang)?;
    Ok(merged_in_compendium_order(survey, of_counted, of_drafts))
}

/// A draft's visible live answer, with its response's country and organisation.
#[derive(Queryable, Debug)]
struct DraftRow {
    response_id: String,
    iso3: String,
    unit: String,
    question_id: String,
    item: String,
    value: String,
}

/// The drafts' visible live answers to `questions`, of the filter's countries (`filter` is
/// already within the survey's population).
fn draft_rows(
    conn: &mut DbConn,
    survey: &Survey,
    questions: &[&str],
    filter: &Filter,
) -> diesel::QueryResult<Vec<DraftRow>> {
    if questions.is_empty() {
        return Ok(Vec::new());
    }
    // From the drafts to their answers (SQLite keeps the order of a CROSS JOIN; PostgreSQL
    // plans it like any join): SQLite reads the survey's drafts along `responses_drafts` and
    // each draft's answers along `answers_by_question` (100,000 organisations, 20,000 drafts,
    // the listings' three questions, measured before `responses_drafts`, when every response
    // was walked: 0.23 s in `sqlite3`, against 0.47 s starting from the answers to the
    // questions, most of which are the counted responses').
    let mut sql = Sql::new(
        "SELECT r.id, c.iso3, r.unit, a.question_id, a.item, a.value \
         FROM responses r CROSS JOIN answers a JOIN countries c ON c.iso3 = r.country_iso3 \
         WHERE a.response_id = r.id AND r.survey_id = ",
    );
    sql.bind(survey.id.as_str())
        .push(" AND a.visible = TRUE AND a.question_id IN ");
    sql.bind_list(questions.iter().copied());
    super::aggregate::push_drafts_filter(&mut sql, filter);
    sql.typed::<(Text, Text, Text, Text, Text, Text)>()
        .load(conn)
}

/// The drafts' practices in full, in the compendium's order, from one read of their live
/// answers to every question the compendium needs (the practices', their themes', citation and
/// related questions): what [`listings`] and [`practices`] read in two statements each.
fn drafts_compendium(
    conn: &mut DbConn,
    survey: &Survey,
    countries: &Countries,
    filter: &Filter,
    lang: &str,
) -> diesel::QueryResult<Vec<Practice>> {
    let filter = &filter.clone().within(survey);
    let shown = shown_beside(survey);
    let mut questions = read_for(&shown, |_| true, |_| true);
    for q in listing_questions(survey) {
        if !questions.contains(&q) {
            questions.push(q);
        }
    }
    let rows = draft_rows(conn, survey, &questions, filter)?;
    let listings = in_order(survey, countries, lang, |q, themes_from, cite| {
        Ok(drafts_listed(&rows, &q.id, themes_from, cite))
    })?;
    practices_from(countries, &shown, listings, lang, 0, |_, each| {
        for r in rows {
            each(TextRow {
                version: 0,
                response_id: r.response_id,
                question_id: r.question_id,
                item: r.item,
                value: r.value,
            });
        }
        Ok(())
    })
}

/// One question's practices in the drafts' answers `rows`, as [`listed_from_answers`] reads
/// them for the drafts: each draft's answer to the question (its text), the codes picked in
/// its themes question, and whether it said yes to "may it be cited".
fn drafts_listed(
    rows: &[DraftRow],
    practice: &str,
    themes_from: Option<&str>,
    cite: Option<&str>,
) -> Vec<Listed> {
    let mut at: HashMap<&str, usize> = HashMap::new();
    let mut listed = Vec::new();
    for r in rows {
        if r.question_id == practice && r.item.is_empty() {
            at.insert(r.response_id.as_str(), listed.len());
            listed.push(Listed {
                response_id: r.response_id.clone(),
                version: 0,
                iso3: r.iso3.clone(),
                unit: r.unit.clone(),
                citable: false,
                codes: Vec::new(),
            });
        }
    }
    for r in rows {
        let Some(&i) = at.get(r.response_id.as_str()) else {
            continue;
        };
        if Some(r.question_id.as_str()) == themes_from {
            let code = if r.item.is_empty() { &r.value } else { &r.item };
            listed[i].codes.push(code.clone());
        }
        if Some(r.question_id.as_str()) == cite && r.value == "yes" {
            listed[i].citable = true;
        }
    }
    listed
}

/// Two lists of practices (or listings), each in the compendium's order (see [`listings`]), as
/// one: the counted versions' and the drafts'.
fn merged_in_compendium_order<P: AsRef<Listing>>(
    survey: &Survey,
    counted: Vec<P>,
    drafts: Vec<P>,
) -> Vec<P> {
    if drafts.is_empty() {
        return counted;
    }
    let position: HashMap<&str, usize> = survey
        .questions()
        .enumerate()
        .map(|(i, q)| (q.id.as_str(), i))
        .collect();
    // The order's keys, borrowed: a country's rank in [`in_compendium_order`] is its (region,
    // sub-region) pair's, compared here as the pair itself.
    fn key<'p>(
        position: &HashMap<&str, usize>,
        l: &'p Listing,
    ) -> (usize, (&'p str, &'p str), bool, &'p str, &'p str) {
        (
            position.get(&*l.question).copied().unwrap_or(usize::MAX),
            (&*l.region, &*l.subregion),
            !l.citable,
            if l.citable { &*l.attribution } else { "" },
            l.response_id.as_str(),
        )
    }
    // A response is a draft or counted, never both. The two lists are read on two connections
    // at once, at two moments: a draft submitted meanwhile may be in both (kept once, as
    // counted) or, read the other way round, in neither (until the next view).
    let in_counted: HashSet<(&str, &str)> = counted
        .iter()
        .map(|p| (&*p.as_ref().question, p.as_ref().response_id.as_str()))
        .collect();
    let drafts: Vec<P> = drafts
        .into_iter()
        .filter(|p| !in_counted.contains(&(&*p.as_ref().question, p.as_ref().response_id.as_str())))
        .collect();
    drop(in_counted);
    let mut out = Vec::with_capacity(counted.len() + drafts.len());
    let mut counted = counted.into_iter().peekable();
    let mut drafts = drafts.into_iter().peekable();
    loop {
        let counted_first = match (counted.peek(), drafts.peek()) {
            (Some(c), Some(d)) => key(&position, c.as_ref()) <= key(&position, d.as_ref()),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        out.extend(if counted_first {
            counted.next()
        } else {
            drafts.next()
        });
    }
    out
}

/// The compendium's Markdown download: every practice read (on two connections when a second
/// is given, see [`compendium_on_two`]), then written. The practices are freed on a thread of
/// their own, which the download does not wait for: 48,000 of them at 100,000 organisations
/// are about a million allocations, 48 ms to free.
pub fn compendium_download(
    conn: &mut DbConn,
    second: Option<&mut DbConn>,
    survey: &Survey,
    countries: &Countries,
    filter: &Filter,
    lang: &str,
) -> diesel::QueryResult<String> {
    // A second connection pays for a large round only. A small one's answers beside its
    // listings (related answers; the texts too, without kept listings) are read by response
    // once its listings are known, a few look-ups along an index (a survey of 193 countries on
    // PostgreSQL: 12 ms), where the statement run beside the listings reads the answers of
    // every response of the survey.
    compendium_download_on_two_above(
        conn,
        second,
        survey,
        countries,
        filter,
        lang,
        READ_BY_RESPONSE,
    )
}

/// [`compendium_download`], on the second connection when the survey has more than `above`
/// responses: for the tests, which take both ways on one set.
#[doc(hidden)]
pub fn compendium_download_on_two_above(
    conn: &mut DbConn,
    second: Option<&mut DbConn>,
    survey: &Survey,
    countries: &Countries,
    filter: &Filter,
    lang: &str,
    above: usize,
) -> diesel::QueryResult<String> {
    let second = match second {
        Some(second) if crate::db::responses::count_of_survey(conn, &survey.id)? > above as i64 => {
            Some(second)
        }
        _ => None,
    };
    let all = match second {
        Some(second) => compendium_on_two(conn, second, survey, countries, filter, lang),
        None => compendium(conn, survey, countries, filter, lang),
    }?;
    let md = compendium_markdown(survey, &all, lang);
    free_elsewhere(all);
    Ok(md)
}

/// Drops `value` on a thread of its own: at 100,000 organisations the practices read for a
/// download are about a million allocations, 48 ms to free, and the kept texts left over once
/// given to the listings some 150,000 (15-25 ms), which the request need not wait for.
fn free_elsewhere<T: Send + 'static>(value: T) {
    // Without a thread (none could be started), it is freed here, when the closure is.
    let _ = std::thread::Builder::new()
        .name("compendium freed".to_string())
        .spawn(move || drop(value));
}

/// Practices (or their listings) grouped by theme (id, label, practices), in the
/// definition's theme order.
pub fn by_theme<'a, P: AsRef<Listing>>(
    survey: &'a Survey,
    list: &'a [P],
    lang: &str,
) -> Vec<(&'a str, &'a str, Vec<&'a P>)> {
    // One pass over the list, each practice into its themes' groups (not one pass per theme:
    // 20 themes by 48,000 practices at 100,000 organisations).
    let position: HashMap<&str, usize> = survey
        .themes
        .iter()
        .enumerate()
        .map(|(i, th)| (th.id.as_str(), i))
        .collect();
    let mut groups: Vec<Vec<&P>> = vec![Vec::new(); survey.themes.len()];
    for p in list {
        for theme in &p.as_ref().themes {
            if let Some(&i) = position.get(theme.as_str()) {
                groups[i].push(p);
            }
        }
    }
    survey
        .themes
        .iter()
        .zip(groups)
        .filter(|(_, ps)| !ps.is_empty())
        .map(|(th, ps)| (th.id.as_str(), th.label.get(lang), ps))
        .collect()
}

/// Where a named attribution's name goes in its translated pattern: a character of Unicode's
/// private use area, in no translation or country name.
const NAME_PLACE: &str = "\u{e000}";

/// The compendium as Markdown. Every piece of user text (answers, organisation names) is
/// escaped, so an answer cannot add a heading, a link or HTML of its own.
pub fn compendium_markdown(survey: &Survey, list: &[Practice], lang: &str) -> String {
    markdown_on_two_above(survey, list, lang, MARKDOWN_ON_TWO_THREADS)
}

/// [`compendium_markdown`], written on two threads when there are at least `above` practices:
/// for the tests, which write one list both ways.
fn markdown_on_two_above(survey: &Survey, list: &[Practice], lang: &str, above: usize) -> String {
    use crate::text::markdown::push_inline;
    let groups = by_theme(survey, list, lang);
    // A practice is under each of its themes.
    let sizes: Vec<usize> = groups
        .iter()
        .map(|(_, _, ps)| estimated_size(ps.iter().copied()))
        .collect();
    let mut md = String::with_capacity(256 + sizes.iter().sum::<usize>());
    md.push_str("# ");
    push_inline(&mut md, &translate(lang, "results-compendium", &[]));
    md.push_str(": ");
    push_inline(&mut md, survey.title.get(lang));
    md.push_str("\n\n");
    if list.len() < above {
        themes_markdown(&mut md, &groups, lang);
        return md;
    }
    // A large download is written in two halves at once, each on a core: the themes up to
    // about half the estimated size, and the others (at 100,000 organisations, 9 MB written in
    // 65-90 ms on one thread). Each half is whole themes, so joined they are the same text.
    let half = sizes.iter().sum::<usize>() / 2;
    let mut written = 0;
    let split = sizes
        .iter()
        .position(|size| {
            written += size;
            written >= half
        })
        .map_or(groups.len(), |i| i + 1);
    let (first, second) = groups.split_at(split);
    let second_md = std::thread::scope(|scope| {
        let there = std::thread::Builder::new()
            .name("compendium markdown".to_string())
            .spawn_scoped(scope, || {
                let mut md = String::with_capacity(sizes[split..].iter().sum());
                themes_markdown(&mut md, second, lang);
                md
            });
        themes_markdown(&mut md, first, lang);
        match there {
            Ok(there) => there
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            // No thread could be started: the second half here, after the first.
            Err(_) => {
                let mut rest = String::new();
                themes_markdown(&mut rest, second, lang);
                rest
            }
        }
    });
    md.push_str(&second_md);
    md
}

/// How many practices a compendium needs before its Markdown is written on two threads.
const MARKDOWN_ON_TWO_THREADS: usize = 2_000;

/// A first estimate of the Markdown's size (about 150 bytes of heading and related answers a
/// practice, besides its text), so that the 7 MB of a large download is not copied at every
/// doubling.
fn estimated_size<'p>(list: impl Iterator<Item = &'p Practice>) -> usize {
    list.map(|p| p.text.len() + 150 * (1 + p.related.len()))
        .sum()
}

/// The Markdown of these themes' practices, each theme under its heading.
fn themes_markdown(md: &mut String, groups: &[(&str, &str, Vec<&Practice>)], lang: &str) {
    use crate::text::markdown::{push_block, push_inline};
    // An attribution is translated once per sub-region (or region) and development: they
    // repeat, and a translation (its arguments in a map, the pattern resolved) costs as much
    // as escaping a practice's text. An anonymous one is whole then ("a government in
    // <sub-region>"); a named one has the name in its place, put in each time (escaping it
    // alone escapes what escaping the whole would: every change is to one character).
    let mut translated: HashMap<(&str, &str, &str), String> = HashMap::new();
    for (_, label, ps) in groups {
        md.push_str("## ");
        push_inline(md, label);
        md.push_str("\n\n");
        for p in ps {
            let l = &p.listing;
            let who = if l.citable {
                NAME_PLACE
            } else {
                &l.attribution
            };
            let attribution = translated
                .entry((who, &l.region, &l.development))
                .or_insert_with(|| {
                    translate(
                        lang,
                        "results-attribution",
                        &[
                            ("who", who.to_string()),
                            ("region", l.region.to_string()),
                            ("development", l.development.to_string()),
                        ],
                    )
                });
            md.push_str("### ");
            match attribution.split_once(NAME_PLACE) {
                Some((before, after)) if l.citable => {
                    push_inline(md, before);
                    push_inline(md, &l.attribution);
                    push_inline(md, after);
                }
                _ => push_inline(md, attribution),
            }
            md.push_str("\n\n");
            for (k, v) in &p.related {
                md.push_str("- **");
                push_inline(md, k);
                md.push_str("** ");
                push_inline(md, v);
                md.push('\n');
            }
            md.push('\n');
            push_block(md, &p.text);
            md.push_str("\n\n");
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Need {
    pub question: String,
    pub option: String,
    pub label: String,
    pub theme: Option<String>,
    pub level: Option<&'static str>,
    /// Countries reporting the need.
    pub countries: i64,
    pub by_development: BTreeMap<String, i64>,
    pub by_region: BTreeMap<String, i64>,
}

fn level_key(level: Option<NeedLevel>) -> Option<&'static str> {
    level.map(|l| match l {
        NeedLevel::Policy => "policy",
        NeedLevel::Institutional => "institutional",
    })
}

fn need_questions(
    survey: &Survey,
) -> impl Iterator<Item = (&Question, &Vec<String>, Option<NeedLevel>)> {
    survey.questions().filter_map(|q| match &q.marker {
        Some(Marker::CapacityNeed { themes, level, .. }) => Some((q, themes, *level)),
        _ => None,
    })
}

/// Capacity-building needs ranked by how many countries report them, with their breakdowns.
pub fn ranked_needs(
    conn: &mut DbConn,
    survey: &Survey,
    filter: &Filter,
    lang: &str,
) -> diesel::QueryResult<Vec<Need>> {
    // Only responses from the survey's population count, whatever filter the caller built.
    let filter = &filter.clone().within(survey);
    let mut out = Vec::new();
    for (q, themes, level) in need_questions(survey) {
        let both = choice_counts_by_two(
            conn,
            &survey.id,
            q,
            filter,
            (Grouping::Development, Grouping::Region),
        )?;
        for option in q.kind.options() {
            let mut need = Need {
                question: q.id.clone(),
                option: option.code.clone(),
                label: option.label.get(lang).to_string(),
                theme: option.theme.clone().or_else(|| themes.first().cloned()),
                level: level_key(level),
                countries: 0,
                by_development: BTreeMap::new(),
                by_region: BTreeMap::new(),
            };
            for (development, region, key, n) in &both {
                if key == &option.code {
                    need.countries += n;
                    *need.by_development.entry(development.clone()).or_default() += n;
                    *need.by_region.entry(region.clone()).or_default() += n;
                }
            }
            if need.countries > 0 {
                out.push(need);
            }
        }
    }
    out.sort_by(|a, b| b.countries.cmp(&a.countries).then(a.label.cmp(&b.label)));
    Ok(out)
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Match {
    /// The country with the need.
    pub iso3: String,
    pub theme: String,
    pub need: String,
    /// Countries with a good practice in the theme: same region first, then by how many
    /// practices they reported in it.
    pub partners: Vec<Partner>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Partner {
    pub iso3: String,
    pub same_region: bool,
    pub practices: usize,
}

/// For each country's need in a theme, the countries that reported a good practice in it.
pub fn partner_matches(
    conn: &mut DbConn,
    survey: &Survey,
    countries: &Countries,
    practices: &[Listing],
    filter: &Filter,
    lang: &str,
) -> diesel::QueryResult<Vec<Match>> {
    // Only responses from the survey's population count, whatever filter the caller built.
    let filter = &filter.clone().within(survey);
    // theme -> iso3 -> number of practices
    let mut offers: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for p in practices {
        for t in &p.themes {
            *offers
                .entry(t.as_str())
                .or_default()
                .entry(p.iso3.as_str())
                .or_default() += 1;
        }
    }
    let questions: Vec<(&Question, &Vec<String>)> =
        need_questions(survey).map(|(q, t, _)| (q, t)).collect();
    let ids: Vec<&str> = questions.iter().map(|(q, _)| q.id.as_str()).collect();
    let rows = answers_of(conn, &survey.id, &ids, filter)?;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    // `#other` and "not known"/"not applicable" are not needs.
    for r in rows.iter().filter(|r| is_value_item(&r.item)) {
        let Some((q, fixed)) = questions.iter().find(|(q, _)| q.id == r.question_id) else {
            continue;
        };
        let key = if q.kind.options().is_empty() {
            r.value.as_str()
        } else {
            r.item.as_str()
        };
        let option = q.kind.options().iter().find(|o| o.code == key);
        let Some(theme) = option
            .and_then(|o| o.theme.clone())
            .or_else(|| fixed.first().cloned())
        else {
            continue;
        };
        if !seen.insert((r.iso3.clone(), theme.clone(), key.to_string())) {
            continue;
        }
        let region = countries
            .get(&r.iso3)
            .map(|c| c.region_code.as_str())
            .unwrap_or("");
        let mut partners: Vec<Partner> = offers
            .get(theme.as_str())
            .map(|m| {
                m.iter()
                    .filter(|(iso3, _)| **iso3 != r.iso3)
                    .map(|(iso3, n)| Partner {
                        iso3: iso3.to_string(),
                        same_region: countries.get(iso3).is_some_and(|c| c.region_code == region),
                        practices: *n,
                    })
                    .collect()
            })
            .unwrap_or_default();
        partners.sort_by(|a, b| {
            b.same_region
                .cmp(&a.same_region)
                .then(b.practices.cmp(&a.practices))
                .then(a.iso3.cmp(&b.iso3))
        });
        if partners.is_empty() {
            continue;
        }
        out.push(Match {
            iso3: r.iso3.clone(),
            theme,
            need: option
                .map(|o| o.label.get(lang).to_string())
                .unwrap_or_else(|| key.to_string()),
            partners,
        });
    }
    // The answers come unordered: list the countries by name.
    out.sort_by_cached_key(|m| {
        (
            countries
                .get(&m.iso3)
                .map(|c| c.name_en.clone())
                .unwrap_or_else(|| m.iso3.clone()),
            m.theme.clone(),
            m.need.clone(),
        )
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::survey::parse_survey;

    const SURVEY: &str = r#"
id = "m"
title = "Merged"
closes = 2027-01-01
[[themes]]
id = "data"
label = "Data"
[[sections]]
id = "s"
title = "S"
[[sections.questions]]
id = "first"
type = "long_text"
text = "A practice"
marker = "good_practice"
themes = ["data"]
[[sections.questions]]
id = "second"
type = "long_text"
text = "Another practice"
marker = "good_practice"
themes = ["data"]
"#;

    fn listing(
        question: &str,
        region: &str,
        citable: bool,
        who: &str,
        id: &str,
        version: i64,
    ) -> Listing {
        Listing {
            response_id: id.to_string(),
            version,
            question: question.into(),
            iso3: String::new(),
            unit: String::new(),
            attribution: who.into(),
            citable,
            region: region.into(),
            subregion: "".into(),
            development: "".into(),
            themes: Vec::new(),
            text: None,
        }
    }

    /// The counted versions' and the drafts' listings merged in the compendium's order
    /// (question, region, named before anonymous, attribution, response); a response both
    /// lists show (a draft submitted between their two reads) is kept once, as counted.
    #[test]
    fn merged_listings_keep_the_compendiums_order_and_each_response_once() {
        let (survey, d) = parse_survey("m.toml", SURVEY);
        assert!(d.is_empty(), "{d:?}");
        let survey = survey.unwrap();
        let counted = vec![
            listing("first", "Africa", true, "Kenya", "c1", 1),
            listing("first", "Europe", true, "Sweden", "c2", 1),
            listing("first", "Europe", false, "a government", "both", 2),
            listing("second", "Africa", true, "Zambia", "c4", 1),
            listing("second", "Africa", false, "a government", "c3", 1),
        ];
        let drafts = vec![
            listing("first", "Africa", false, "a government", "d1", 0),
            listing("first", "Europe", false, "a government", "both", 0),
            listing("first", "Europe", false, "a government", "d2", 0),
            listing("second", "Africa", true, "Mali", "d3", 0),
            listing("second", "Asia", true, "Nepal", "d4", 0),
        ];
        let merged = merged_in_compendium_order(&survey, counted, drafts);
        let order: Vec<(&str, i64)> = merged
            .iter()
            .map(|l| (l.response_id.as_str(), l.version))
            .collect();
        assert_eq!(
            order,
            [
                ("c1", 1),
                ("d1", 0),
                ("c2", 1),
                ("both", 2),
                ("d2", 0),
                ("d3", 0),
                ("c4", 1),
                ("c3", 1),
                ("d4", 0),
            ]
        );
    }

    /// A large compendium's Markdown, written in two halves on two threads, is the text
    /// written on one: every theme once, in the definition's order, each practice under each
    /// of its themes, the attributions translated and escaped alike.
    #[test]
    fn the_markdown_written_on_two_threads_is_the_same_text() {
        let themed = SURVEY.replace(
            "[[themes]]\nid = \"data\"\nlabel = \"Data\"",
            "[[themes]]\nid = \"data\"\nlabel = \"Data\"\n[[themes]]\nid = \"jobs\"\n\
             label = \"Jobs *and* work\"\n[[themes]]\nid = \"cash\"\nlabel = \"Cash\"",
        );
        let (survey, d) = parse_survey("m.toml", &themed);
        assert!(d.is_empty(), "{d:?}");
        let survey = survey.unwrap();
        let themes = [
            vec!["data"],
            vec!["jobs"],
            vec!["cash", "data"],
            vec!["jobs", "cash"],
        ];
        let list: Vec<Practice> = (0..50)
            .map(|i| {
                let who = ["Kenya", "a government", "Sweden <b>", "Mali"][i % 4];
                let mut listing = listing("first", "Africa", i % 3 == 0, who, &format!("r{i}"), 1);
                listing.themes = themes[i % 4].iter().map(|t| t.to_string()).collect();
                Practice {
                    listing,
                    text: format!(
                        "Practice {i}: *bold* [link](x) # not a heading\n\n{}",
                        "x".repeat(i * 7)
                    ),
                    related: vec![("Since".into(), format!("{}", 2000 + i))],
                }
            })
            .collect();
        let one = markdown_on_two_above(&survey, &list, "en", usize::MAX);
        let two = markdown_on_two_above(&survey, &list, "en", 0);
        assert_eq!(one, two);
        for heading in ["## Data", "## Jobs \\*and\\* work", "## Cash"] {
            assert_eq!(one.matches(heading).count(), 1, "{heading} in:\n{one}");
        }
        // Each practice under each of its themes.
        assert_eq!(one.matches("Practice 2\\:").count(), 2, "{one}");
        assert_eq!(one.matches("Practice 1\\:").count(), 1, "{one}");
        assert!(one.find("## Data").unwrap() < one.find("## Jobs").unwrap());
        assert!(one.find("## Jobs").unwrap() < one.find("## Cash").unwrap());
        // One practice (one half empty) and none.
        assert_eq!(
            markdown_on_two_above(&survey, &list[..1], "en", 0),
            markdown_on_two_above(&survey, &list[..1], "en", usize::MAX)
        );
        assert_eq!(
            markdown_on_two_above(&survey, &[], "en", 0),
            markdown_on_two_above(&survey, &[], "en", usize::MAX)
        );
    }
}

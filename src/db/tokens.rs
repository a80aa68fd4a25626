//! The `access_tokens` table: personal links, stored by the hash of their secret.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamp};

use super::answers as answer_rows;
use super::responses::ResponseRow;
use super::schema::access_tokens;
use super::sections::{self, SectionStateRow};
use super::sql::Kept;
use super::states::text_enum;
use super::{new_id, DbConn};
use crate::survey::answer::Answers;

text_enum! {
    /// What a personal link may do with its country's response.
    pub enum LinkRole("link role") {
        /// Answers every section and submits (every link issued before roles existed).
        Coordinator = "coordinator",
        /// Answers only the sections it was given; cannot submit.
        Contributor = "contributor",
        /// The national authority that signs off; until sign-off exists, as a coordinator.
        Approver = "approver",
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = access_tokens)]
pub struct TokenRow {
    pub id: String,
    pub survey_id: String,
    pub country_iso3: String,
    pub token_hash: String,
    pub holder_name: Option<String>,
    pub holder_email: Option<String>,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    pub first_used_at: Option<NaiveDateTime>,
    /// The organisation answering, or '' where the country is the respondent unit.
    pub unit: String,
    pub expires_at: Option<NaiveDateTime>,
    /// Who revoked the link: an administrator's email, "command line", or "replaced".
    pub revoked_by: Option<String>,
    #[diesel(deserialize_as = String)]
    pub role: LinkRole,
    /// A contributor's section ids, separated by single spaces ('' for other roles).
    pub sections: String,
}

impl TokenRow {
    /// The section ids a contributor was given (none for other roles).
    pub fn section_ids(&self) -> impl Iterator<Item = &str> {
        self.sections.split(' ').filter(|s| !s.is_empty())
    }

    /// Whether the link may open and save this section: a contributor only its own.
    pub fn may_answer(&self, section_id: &str) -> bool {
        match self.role {
            LinkRole::Coordinator | LinkRole::Approver => true,
            LinkRole::Contributor => self.section_ids().any(|s| s == section_id),
        }
    }

    /// Whether the link may review and submit the whole response: not a contributor.
    pub fn may_submit(&self) -> bool {
        self.role != LinkRole::Contributor
    }

    /// Why the link no longer opens its response, if it does not.
    pub fn ended(&self, now: NaiveDateTime) -> Option<crate::access::LinkEnd> {
        if self.revoked_at.is_some() {
            Some(crate::access::LinkEnd::Revoked)
        } else if self.expires_at.is_some_and(|e| e <= now) {
            Some(crate::access::LinkEnd::Expired)
        } else {
            None
        }
    }
}

pub struct NewToken<'a> {
    pub survey_id: &'a str,
    pub country_iso3: &'a str,
    /// The organisation the link answers for ('' for the country itself).
    pub unit: &'a str,
    pub token_hash: &'a str,
    pub holder_name: Option<&'a str>,
    pub holder_email: Option<&'a str>,
    pub now: NaiveDateTime,
    /// When the link stops working, if ever.
    pub expires_at: Option<NaiveDateTime>,
    pub role: LinkRole,
    /// A contributor's section ids (empty for other roles).
    pub sections: &'a [String],
}

pub fn insert_token(conn: &mut DbConn, t: &NewToken) -> QueryResult<String> {
    let ids = insert_tokens(conn, std::slice::from_ref(t))?;
    Ok(ids.into_iter().next().unwrap_or_default())
}

/// Insert several links with one statement per [`TOKEN_ROWS_PER_INSERT`]: their ids, in order.
/// Inside a transaction, the locks of their units are taken first, in one order (see
/// [`super::unit_rates::lock_units`]).
pub fn insert_tokens(conn: &mut DbConn, links: &[NewToken]) -> QueryResult<Vec<String>> {
    super::write_statement(conn, |conn| {
        super::unit_rates::lock_units(
            conn,
            links.iter().map(|t| (t.survey_id, t.country_iso3, t.unit)),
        )?;
        let ids: Vec<String> = links.iter().map(|_| new_id()).collect();
        let sections: Vec<String> = links.iter().map(|t| t.sections.join(" ")).collect();
        let rows: Vec<_> = links
            .iter()
            .zip(&ids)
            .zip(&sections)
            .map(|((t, id), sections)| {
                (
                    access_tokens::id.eq(id),
                    access_tokens::survey_id.eq(t.survey_id),
                    access_tokens::country_iso3.eq(t.country_iso3),
                    access_tokens::unit.eq(t.unit),
                    access_tokens::token_hash.eq(t.token_hash),
                    access_tokens::holder_name.eq(t.holder_name),
                    access_tokens::holder_email.eq(t.holder_email),
                    access_tokens::created_at.eq(t.now),
                    access_tokens::expires_at.eq(t.expires_at),
                    access_tokens::role.eq(t.role.as_str()),
                    access_tokens::sections.eq(sections),
                )
            })
            .collect();
        for chunk in rows.chunks(TOKEN_ROWS_PER_INSERT) {
            super::insert_rows!(conn, access_tokens::table, chunk)?;
        }
        Ok(ids)
    })
}

/// Eleven parameters a row: well inside both backends' limits on bound parameters.
const TOKEN_ROWS_PER_INSERT: usize = 500;

// Look-ups by a unique key load the row without `.first()`: its bound `LIMIT ?` makes SQLite
// re-prepare the statement on every call (measured: 4 us without, 12-20 us with).

/// The link with this hash, revoked or expired ones included (the caller says why they end).
pub fn find_token(conn: &mut DbConn, hash: &str) -> QueryResult<Option<TokenRow>> {
    let rows: Vec<TokenRow> = access_tokens::table
        .filter(access_tokens::token_hash.eq(hash))
        .select(TokenRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().next())
}

/// A link as a respondent page opens it, read in one statement: the link, its response (once
/// a page of the country's links created it) with its answers and section states, the
/// country's extended deadline, and whether the response has review queries (so that a page
/// reads them only when there are some).
#[derive(Debug, Clone)]
pub struct OpenedLink {
    pub token: TokenRow,
    pub response: Option<StoredResponse>,
    /// The later deadline an owner gave the country, if any.
    pub extension: Option<NaiveDateTime>,
    pub has_queries: bool,
}

/// A response as the link's look-up read it.
#[derive(Debug, Clone)]
pub struct StoredResponse {
    pub row: ResponseRow,
    /// Hidden answers included, as [`answer_rows::load_answers`] gives them.
    pub answers: Answers,
    pub sections: Vec<SectionStateRow>,
}

mod json_sql {
    use diesel::sql_types::{Integer, Nullable, Text, Timestamp};
    // Each backend's JSON functions, named for the query builder (which types them; the JSON
    // text comes back as text on both backends). An answer and a section state become a JSON
    // array each; the response's are gathered into one array, ordered in Rust.
    diesel::define_sql_function! {
        #[aggregate]
        fn json_group_array(x: Text) -> Text;
    }
    diesel::define_sql_function! {
        #[aggregate]
        fn json_agg(x: Text) -> Text;
    }
    diesel::define_sql_function! {
        #[sql_name = "json_array"]
        fn answer_sqlite(q: Text, item: Text, value: Text, num: Nullable<diesel::sql_types::Double>) -> Text;
    }
    diesel::define_sql_function! {
        #[sql_name = "json_build_array"]
        fn answer_pg(q: Text, item: Text, value: Text, num: Nullable<diesel::sql_types::Double>) -> Text;
    }
    diesel::define_sql_function! {
        #[sql_name = "json_array"]
        fn state_sqlite(section: Text, version: Integer, at: Timestamp, by: Text, ready_at: Nullable<Timestamp>, ready_by: Nullable<Text>) -> Text;
    }
    diesel::define_sql_function! {
        #[sql_name = "json_build_array"]
        fn state_pg(section: Text, version: Integer, at: Timestamp, by: Text, ready_at: Nullable<Timestamp>, ready_by: Nullable<Text>) -> Text;
    }
}

/// The link with this hash (revoked or expired ones included) with what its pages read next,
/// in one statement: a page view sends no other (the response's answers and section states
/// come as JSON arrays, which on PostgreSQL saves two round trips per page).
pub fn open_token(conn: &mut DbConn, hash: &str) -> QueryResult<Option<OpenedLink>> {
    use super::schema::{answers, deadline_extensions, queries, responses, section_states};
    use json_sql::*;
    type Row = (
        TokenRow,
        Option<ResponseRow>,
        Option<NaiveDateTime>,
        bool,
        Option<String>,
        Option<String>,
    );
    // The same query on each backend, with its own JSON functions; written in each arm, where
    // `as_select` takes that backend (see `db::native!`), and kept prepared by its type.
    macro_rules! query {
        ($c:expr, $agg:ident, $answer:ident, $state:ident) => {{
            let extension = deadline_extensions::table
                .filter(deadline_extensions::survey_id.eq(access_tokens::survey_id))
                .filter(deadline_extensions::country_iso3.eq(access_tokens::country_iso3))
                .select(deadline_extensions::closes_at)
                .single_value();
            let has_queries = diesel::dsl::exists(
                queries::table.filter(queries::response_id.nullable().eq(responses::id.nullable())),
            );
            let answers = answers::table
                .filter(answers::response_id.nullable().eq(responses::id.nullable()))
                .select($agg($answer(
                    answers::question_id,
                    answers::item,
                    answers::value,
                    answers::num,
                )))
                .single_value();
            let states = section_states::table
                .filter(
                    section_states::response_id
                        .nullable()
                        .eq(responses::id.nullable()),
                )
                .select($agg($state(
                    section_states::section_id,
                    section_states::version,
                    section_states::updated_at,
                    section_states::updated_by,
                    section_states::ready_at,
                    section_states::ready_by,
                )))
                .single_value();
            access_tokens::table
                .left_join(
                    responses::table.on(responses::survey_id
                        .eq(access_tokens::survey_id)
                        .and(responses::country_iso3.eq(access_tokens::country_iso3))
                        .and(responses::unit.eq(access_tokens::unit))),
                )
                .filter(access_tokens::token_hash.eq(hash))
                .select((
                    TokenRow::as_select(),
                    Option::<ResponseRow>::as_select(),
                    extension,
                    has_queries,
                    answers,
                    states,
                ))
                .load::<Row>($c)
        }};
    }
    let rows = match conn {
        DbConn::Sqlite(c) => query!(c, json_group_array, answer_sqlite, state_sqlite)?,
        DbConn::Postgres(c) => query!(c, json_agg, answer_pg, state_pg)?,
    };
    let Some((token, response, extension, has_queries, answers, states)) = rows.into_iter().next()
    else {
        return Ok(None);
    };
    let response = match response {
        Some(row) => Some(StoredResponse {
            answers: answer_rows::from_json(answers.as_deref())?,
            sections: sections::from_json(&row.id, states.as_deref())?,
            row,
        }),
        None => None,
    };
    Ok(Some(OpenedLink {
        token,
        response,
        extension,
        has_queries,
    }))
}

diesel::define_sql_function! {
    /// Lower-case text, the same on SQLite and PostgreSQL for ASCII (email addresses).
    fn lower(x: diesel::sql_types::Nullable<diesel::sql_types::Text>) -> diesel::sql_types::Nullable<diesel::sql_types::Text>;
}

/// Which live links to revoke.
pub struct RevokeLinks<'a> {
    pub survey_id: &'a str,
    pub country_iso3: &'a str,
    /// Only this organisation's links (None: every unit of the country).
    pub unit: Option<&'a str>,
    /// Only the links issued to this email address.
    pub holder_email: Option<&'a str>,
    /// Only this link.
    pub id: Option<&'a str>,
}

/// Revoke the matching live links; returns how many were revoked.
pub fn revoke_tokens(
    conn: &mut DbConn,
    which: &RevokeLinks,
    by: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    revoke_matching(conn, which, None, by, now)
}

/// Revoke the matching live links of one role only: a new link replaces the holder's earlier
/// links of its own role, never their links of another role.
pub fn revoke_tokens_of_role(
    conn: &mut DbConn,
    which: &RevokeLinks,
    role: LinkRole,
    by: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    revoke_matching(conn, which, Some(role), by, now)
}

fn revoke_matching(
    conn: &mut DbConn,
    which: &RevokeLinks,
    role: Option<LinkRole>,
    by: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    super::write_statement(conn, |conn| {
        let mut q = diesel::update(access_tokens::table)
            .filter(access_tokens::survey_id.eq(which.survey_id))
            .filter(access_tokens::country_iso3.eq(which.country_iso3))
            .filter(access_tokens::revoked_at.is_null())
            .into_boxed();
        if let Some(u) = which.unit {
            q = q.filter(access_tokens::unit.eq(u));
        }
        if let Some(e) = which.holder_email {
            // Links issued before emails were stored lower-case are matched too.
            q = q.filter(lower(access_tokens::holder_email).eq(e.trim().to_lowercase()));
        }
        if let Some(id) = which.id {
            q = q.filter(access_tokens::id.eq(id));
        }
        if let Some(role) = role {
            q = q.filter(access_tokens::role.eq(role.as_str()));
        }
        q.set((
            access_tokens::revoked_at.eq(now),
            access_tokens::revoked_by.eq(by),
        ))
        .execute(conn)
    })
}

/// A live link as [`revoke_replaced`] matches it against the holders of new ones.
#[derive(Debug, Clone, Queryable)]
struct LiveLink {
    id: String,
    country_iso3: String,
    unit: String,
    holder_email: Option<String>,
    role: String,
}

/// One holder of a new link: the live links it replaces are theirs, of the same role.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Holder<'a> {
    pub country_iso3: &'a str,
    pub unit: &'a str,
    pub email: &'a str,
    pub role: LinkRole,
}

/// Revoke, for every holder, the live links of the holder's role issued to the holder's email
/// address for the same respondent, as [`revoke_tokens_of_role`] does for one: a read of the
/// live links of the holders' countries and one UPDATE per [`REVOKE_IDS_PER_UPDATE`] links,
/// whatever the number of holders. Returns how many were revoked.
pub fn revoke_replaced(
    conn: &mut DbConn,
    survey_id: &str,
    holders: &[Holder],
    by: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    super::write_statement(conn, |conn| {
        if holders.is_empty() {
            return Ok(0);
        }
        let wanted: std::collections::HashSet<(&str, &str, String, &str)> = holders
            .iter()
            .map(|h| {
                (
                    h.country_iso3,
                    h.unit,
                    h.email.trim().to_lowercase(),
                    h.role.as_str(),
                )
            })
            .collect();
        let mut countries: Vec<&str> = holders.iter().map(|h| h.country_iso3).collect();
        countries.sort_unstable();
        countries.dedup();
        let live: Vec<LiveLink> = access_tokens::table
            .filter(access_tokens::survey_id.eq(survey_id))
            .filter(access_tokens::country_iso3.eq_any(&countries))
            .filter(access_tokens::revoked_at.is_null())
            .filter(access_tokens::holder_email.is_not_null())
            .select((
                access_tokens::id,
                access_tokens::country_iso3,
                access_tokens::unit,
                access_tokens::holder_email,
                access_tokens::role,
            ))
            .load(conn)?;
        let replaced: Vec<&str> = live
            .iter()
            .filter(|l| {
                l.holder_email.as_ref().is_some_and(|e| {
                    wanted.contains(&(
                        l.country_iso3.as_str(),
                        l.unit.as_str(),
                        e.to_lowercase(),
                        l.role.as_str(),
                    ))
                })
            })
            .map(|l| l.id.as_str())
            .collect();
        let mut revoked = 0;
        for chunk in replaced.chunks(REVOKE_IDS_PER_UPDATE) {
            revoked += diesel::update(
                access_tokens::table
                    .filter(access_tokens::id.eq_any(chunk))
                    .filter(access_tokens::revoked_at.is_null()),
            )
            .set((
                access_tokens::revoked_at.eq(now),
                access_tokens::revoked_by.eq(by),
            ))
            .execute(conn)?;
        }
        Ok(revoked)
    })
}

/// Ids bound per UPDATE of [`revoke_replaced`].
const REVOKE_IDS_PER_UPDATE: usize = 1000;

/// Every link of a country in a survey, newest first.
pub fn country_tokens(
    conn: &mut DbConn,
    survey_id: &str,
    country_iso3: &str,
) -> QueryResult<Vec<TokenRow>> {
    access_tokens::table
        .filter(access_tokens::survey_id.eq(survey_id))
        .filter(access_tokens::country_iso3.eq(country_iso3))
        .order((access_tokens::created_at.desc(), access_tokens::id))
        .select(TokenRow::as_select())
        .load(conn)
}

/// The live contributor links of one respondent (a country, or an organisation of it), oldest
/// first: who the coordinator handed sections to.
pub fn live_contributors(
    conn: &mut DbConn,
    survey_id: &str,
    country_iso3: &str,
    unit: &str,
    now: NaiveDateTime,
) -> QueryResult<Vec<TokenRow>> {
    access_tokens::table
        .filter(access_tokens::survey_id.eq(survey_id))
        .filter(access_tokens::country_iso3.eq(country_iso3))
        .filter(access_tokens::unit.eq(unit))
        .filter(access_tokens::role.eq(LinkRole::Contributor.as_str()))
        .filter(access_tokens::revoked_at.is_null())
        .filter(
            access_tokens::expires_at
                .is_null()
                .or(access_tokens::expires_at.gt(now)),
        )
        .order((access_tokens::created_at, access_tokens::id))
        .select(TokenRow::as_select())
        .load(conn)
}

pub fn token_names(
    conn: &mut DbConn,
    ids: &[String],
) -> QueryResult<HashMap<String, Option<String>>> {
    let rows: Vec<(String, Option<String>)> = access_tokens::table
        .filter(access_tokens::id.eq_any(ids))
        .select((access_tokens::id, access_tokens::holder_name))
        .load(conn)?;
    Ok(rows.into_iter().collect())
}

diesel::define_sql_function! {
    /// The first of two times that is not null, the same on SQLite and PostgreSQL.
    fn coalesce(
        x: diesel::sql_types::Nullable<diesel::sql_types::Timestamp>,
        y: diesel::sql_types::Nullable<diesel::sql_types::Timestamp>,
    ) -> diesel::sql_types::Nullable<diesel::sql_types::Timestamp>;
}

/// Record a use of the link: its latest, and its first if it had none (one statement).
pub fn touch_token(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<()> {
    // Kept prepared (see `Kept`): the query builder's UPDATEs are prepared at every run.
    super::write_statement(conn, |conn| {
        Kept::<TouchToken>::new("UPDATE access_tokens SET last_used_at = ")
            .bind::<Timestamp, _>(now)
            .sql(", first_used_at = COALESCE(first_used_at, ")
            .bind::<Timestamp, _>(now)
            .sql(") WHERE id = ")
            .bind::<Text, _>(id)
            .execute(conn)
    })?;
    Ok(())
}

super::sql::statement_names! {
    TouchToken;
}

pub fn count_tokens(conn: &mut DbConn) -> QueryResult<i64> {
    access_tokens::table.count().get_result(conn)
}

pub fn find_token_by_id(conn: &mut DbConn, id: &str) -> QueryResult<Option<TokenRow>> {
    let rows: Vec<TokenRow> = access_tokens::table
        .filter(access_tokens::id.eq(id))
        .select(TokenRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().next())
}

/// When each link of a survey was first used: (country, unit, first use), one row per link.
pub fn first_uses(
    conn: &mut DbConn,
    survey_id: &str,
) -> QueryResult<Vec<(String, String, Option<NaiveDateTime>)>> {
    access_tokens::table
        .filter(access_tokens::survey_id.eq(survey_id))
        .select((
            access_tokens::country_iso3,
            access_tokens::unit,
            access_tokens::first_used_at,
        ))
        .load(conn)
}

/// For a link an owner opened to enter a report received outside Coherence: the owner's user
/// id and how the report came (a `report::Channel`). None for the country's own links.
pub fn entry_of(conn: &mut DbConn, token_id: &str) -> QueryResult<Option<(String, String)>> {
    use super::schema::entry_links;
    entry_links::table
        .find(token_id)
        .select((entry_links::entered_by, entry_links::channel))
        .first(conn)
        .optional()
}

/// Mark a link as an owner's, for entering a report received by `channel`.
pub fn record_entry(
    conn: &mut DbConn,
    token_id: &str,
    entered_by: &str,
    channel: &str,
) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        use super::schema::entry_links;
        diesel::insert_into(entry_links::table)
            .values((
                entry_links::token_id.eq(token_id),
                entry_links::entered_by.eq(entered_by),
                entry_links::channel.eq(channel),
            ))
            .execute(conn)?;
        Ok(())
    })
}

//! Every query the program runs, as functions over a connection. Handlers never build queries.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::schema::*;
use super::{new_id, DbConn};
use crate::reference::Countries;
use crate::survey::answer::{Answers, Item};
use crate::survey::Survey;

type QueryResult<T> = Result<T, DieselError>;

/// Bring the countries table in line with the shipped list (update or insert each row).
pub fn sync_countries(conn: &mut DbConn, list: &Countries) -> QueryResult<usize> {
    conn.transaction(|conn| {
        // Two servers starting together on a new database would both insert every country.
        crate::db::lock_for_startup(conn)?;
        let mut inserted = 0;
        for c in list.iter() {
            let values = (
                countries::iso2.eq(&c.iso2),
                countries::m49.eq(&c.m49),
                countries::name_en.eq(&c.name_en),
                countries::name_fr.eq(&c.name_fr),
                countries::name_es.eq(&c.name_es),
                countries::region_code.eq(&c.region_code),
                countries::subregion_code.eq(&c.subregion_code),
                countries::intermediate_code.eq(&c.intermediate_code),
                countries::development.eq(&c.development),
                countries::ldc.eq(c.ldc == 1),
                countries::ldc_2008.eq(c.ldc_2008 == 1),
                countries::lldc.eq(c.lldc == 1),
                countries::sids.eq(c.sids == 1),
                countries::income_fy09.eq(&c.income_fy09),
                countries::income_fy23.eq(&c.income_fy23),
            );
            let updated = diesel::update(countries::table.find(&c.iso3))
                .set(values)
                .execute(conn)?;
            if updated == 0 {
                diesel::insert_into(countries::table)
                    .values((countries::iso3.eq(&c.iso3), values))
                    .execute(conn)?;
                inserted += 1;
            }
        }
        Ok(inserted)
    })
}

/// Remember a survey file's version (content hash) and text, once.
pub fn record_survey_version(
    conn: &mut DbConn,
    survey: &Survey,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let exists: i64 = survey_versions::table
        .filter(survey_versions::survey_id.eq(&survey.id))
        .filter(survey_versions::version.eq(&survey.version))
        .count()
        .get_result(conn)?;
    if exists == 0 {
        let inserted = diesel::insert_into(survey_versions::table)
            .values((
                survey_versions::survey_id.eq(&survey.id),
                survey_versions::version.eq(&survey.version),
                survey_versions::title.eq(survey.title.get("en")),
                survey_versions::source.eq(&survey.source),
                survey_versions::loaded_at.eq(now),
            ))
            .execute(conn);
        // Two instances starting together may both insert: the first one wins.
        match inserted {
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {}
            other => {
                other?;
            }
        }
    }
    Ok(())
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
}

impl TokenRow {
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
}

pub fn insert_token(conn: &mut DbConn, t: &NewToken) -> QueryResult<String> {
    let id = new_id();
    diesel::insert_into(access_tokens::table)
        .values((
            access_tokens::id.eq(&id),
            access_tokens::survey_id.eq(t.survey_id),
            access_tokens::country_iso3.eq(t.country_iso3),
            access_tokens::unit.eq(t.unit),
            access_tokens::token_hash.eq(t.token_hash),
            access_tokens::holder_name.eq(t.holder_name),
            access_tokens::holder_email.eq(t.holder_email),
            access_tokens::created_at.eq(t.now),
            access_tokens::expires_at.eq(t.expires_at),
        ))
        .execute(conn)?;
    Ok(id)
}

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
    q.set((
        access_tokens::revoked_at.eq(now),
        access_tokens::revoked_by.eq(by),
    ))
    .execute(conn)
}

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

pub fn touch_token(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(access_tokens::table.find(id))
        .set(access_tokens::last_used_at.eq(now))
        .execute(conn)?;
    diesel::update(
        access_tokens::table
            .find(id)
            .filter(access_tokens::first_used_at.is_null()),
    )
    .set(access_tokens::first_used_at.eq(now))
    .execute(conn)?;
    Ok(())
}

pub fn count_tokens(conn: &mut DbConn) -> QueryResult<i64> {
    access_tokens::table.count().get_result(conn)
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = responses)]
pub struct ResponseRow {
    pub id: String,
    pub survey_id: String,
    pub country_iso3: String,
    pub status: String,
    pub survey_version: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub submitted_at: Option<NaiveDateTime>,
    pub submitted_by: Option<String>,
    pub unit: String,
}

pub const STATUS_DRAFT: &str = "draft";
pub const STATUS_SUBMITTED: &str = "submitted";

pub fn find_response(
    conn: &mut DbConn,
    survey_id: &str,
    iso3: &str,
    unit: &str,
) -> QueryResult<Option<ResponseRow>> {
    let rows: Vec<ResponseRow> = responses::table
        .filter(responses::survey_id.eq(survey_id))
        .filter(responses::country_iso3.eq(iso3))
        .filter(responses::unit.eq(unit))
        .select(ResponseRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().next())
}

/// The response of a country (or of one of its organisations), created as an empty draft on
/// first use.
pub fn get_or_create_response(
    conn: &mut DbConn,
    survey: &Survey,
    iso3: &str,
    unit: &str,
    now: NaiveDateTime,
) -> QueryResult<ResponseRow> {
    if let Some(r) = find_response(conn, &survey.id, iso3, unit)? {
        return Ok(r);
    }
    let id = new_id();
    // What an empty response is not asked (conditions on answers it does not have yet).
    let empty = crate::survey::answer::Visibility::evaluate(survey, &Answers::new());
    let hidden: std::collections::HashSet<String> = survey
        .questions()
        .filter(|q| !empty.question(&q.id))
        .map(|q| q.id.clone())
        .collect();
    let inserted = conn.transaction::<_, DieselError, _>(|conn| {
        diesel::insert_into(responses::table)
            .values((
                responses::id.eq(&id),
                responses::survey_id.eq(&survey.id),
                responses::country_iso3.eq(iso3),
                responses::unit.eq(unit),
                responses::status.eq(STATUS_DRAFT),
                responses::survey_version.eq(&survey.version),
                responses::created_at.eq(now),
                responses::updated_at.eq(now),
            ))
            .execute(conn)?;
        sync_hidden(conn, &id, &hidden)
    });
    match inserted {
        // Another official of the same country created it at the same moment.
        Ok(_) | Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {}
        Err(e) => return Err(e),
    }
    find_response(conn, &survey.id, iso3, unit)?.ok_or(DieselError::NotFound)
}

pub fn load_answers(conn: &mut DbConn, response_id: &str) -> QueryResult<Answers> {
    let rows: Vec<(String, String, String, Option<f64>)> = answers::table
        .filter(answers::response_id.eq(response_id))
        .order((answers::question_id, answers::item))
        .select((
            answers::question_id,
            answers::item,
            answers::value,
            answers::num,
        ))
        .load(conn)?;
    let mut out = Answers::new();
    for (q, item, value, num) in rows {
        out.entry(q).or_default().push(Item { item, value, num });
    }
    Ok(out)
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = section_states)]
pub struct SectionStateRow {
    pub response_id: String,
    pub section_id: String,
    pub version: i32,
    pub updated_at: NaiveDateTime,
    pub updated_by: String,
}

pub fn section_states(conn: &mut DbConn, response_id: &str) -> QueryResult<Vec<SectionStateRow>> {
    section_states::table
        .filter(section_states::response_id.eq(response_id))
        .select(SectionStateRow::as_select())
        .load(conn)
}

pub struct SectionWrite<'a> {
    pub response_id: &'a str,
    pub section_id: &'a str,
    pub base_version: i32,
    pub token_id: &'a str,
    pub survey_version: &'a str,
    /// Questions whose answer changes, with their new items (empty: the answer is removed).
    pub changes: &'a [(String, Vec<Item>)],
    /// Every question hidden by a condition once the changes are applied.
    pub hidden_after: &'a std::collections::HashSet<String>,
    pub now: NaiveDateTime,
}

#[derive(Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    Saved {
        version: i32,
    },
    /// Someone saved the section after `base_version`: nothing was written.
    Stale,
}

/// Write a section's changed answers if, and only if, the section is still at `base_version`.
pub fn write_section(conn: &mut DbConn, w: &SectionWrite) -> QueryResult<WriteOutcome> {
    let result = conn.transaction::<_, DieselError, _>(|conn| {
        // The version bump comes first: it is the lock (a write first also lets SQLite's
        // busy_timeout queue concurrent writers instead of failing a lock upgrade).
        let new_version = w.base_version + 1;
        let claimed = if w.base_version == 0 {
            diesel::insert_into(section_states::table)
                .values((
                    section_states::response_id.eq(w.response_id),
                    section_states::section_id.eq(w.section_id),
                    section_states::version.eq(new_version),
                    section_states::updated_at.eq(w.now),
                    section_states::updated_by.eq(w.token_id),
                ))
                .execute(conn)?
        } else {
            diesel::update(
                section_states::table
                    .filter(section_states::response_id.eq(w.response_id))
                    .filter(section_states::section_id.eq(w.section_id))
                    .filter(section_states::version.eq(w.base_version)),
            )
            .set((
                section_states::version.eq(new_version),
                section_states::updated_at.eq(w.now),
                section_states::updated_by.eq(w.token_id),
            ))
            .execute(conn)?
        };
        if claimed == 0 {
            return Err(DieselError::RollbackTransaction);
        }
        for (question, items) in w.changes {
            diesel::delete(
                answers::table
                    .filter(answers::response_id.eq(w.response_id))
                    .filter(answers::question_id.eq(question)),
            )
            .execute(conn)?;
            for it in items {
                diesel::insert_into(answers::table)
                    .values((
                        answers::response_id.eq(w.response_id),
                        answers::question_id.eq(question),
                        answers::item.eq(&it.item),
                        answers::value.eq(&it.value),
                        answers::num.eq(it.num),
                        answers::section_id.eq(w.section_id),
                        answers::updated_at.eq(w.now),
                        answers::updated_by.eq(w.token_id),
                        answers::visible.eq(!w.hidden_after.contains(question)),
                    ))
                    .execute(conn)?;
            }
        }
        sync_hidden(conn, w.response_id, w.hidden_after)?;
        diesel::update(responses::table.find(w.response_id))
            .set((
                responses::updated_at.eq(w.now),
                responses::survey_version.eq(w.survey_version),
            ))
            .execute(conn)?;
        diesel::insert_into(save_log::table)
            .values((
                save_log::id.eq(new_id()),
                save_log::response_id.eq(w.response_id),
                save_log::section_id.eq(w.section_id),
                save_log::token_id.eq(w.token_id),
                save_log::version.eq(new_version),
                save_log::changed_questions.eq(w.changes.len() as i32),
                save_log::saved_at.eq(w.now),
            ))
            .execute(conn)?;
        Ok(new_version)
    });
    match result {
        Ok(version) => Ok(WriteOutcome::Saved { version }),
        Err(DieselError::RollbackTransaction)
        | Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            Ok(WriteOutcome::Stale)
        }
        Err(e) => Err(e),
    }
}

/// Bring hidden_questions and answers.visible in line with `hidden` (only what changed).
fn sync_hidden(
    conn: &mut DbConn,
    response_id: &str,
    hidden: &std::collections::HashSet<String>,
) -> QueryResult<()> {
    let stored: std::collections::HashSet<String> = hidden_questions::table
        .filter(hidden_questions::response_id.eq(response_id))
        .select(hidden_questions::question_id)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    for q in hidden.difference(&stored) {
        diesel::insert_into(hidden_questions::table)
            .values((
                hidden_questions::response_id.eq(response_id),
                hidden_questions::question_id.eq(q),
            ))
            .execute(conn)?;
        set_visible(conn, response_id, q, false)?;
    }
    for q in stored.difference(hidden) {
        diesel::delete(
            hidden_questions::table
                .filter(hidden_questions::response_id.eq(response_id))
                .filter(hidden_questions::question_id.eq(q)),
        )
        .execute(conn)?;
        set_visible(conn, response_id, q, true)?;
    }
    Ok(())
}

fn set_visible(
    conn: &mut DbConn,
    response_id: &str,
    question: &str,
    visible: bool,
) -> QueryResult<()> {
    diesel::update(
        answers::table
            .filter(answers::response_id.eq(response_id))
            .filter(answers::question_id.eq(question)),
    )
    .set(answers::visible.eq(visible))
    .execute(conn)?;
    Ok(())
}

/// Mark a draft submitted; false when it was not a draft any more.
pub fn submit_response(
    conn: &mut DbConn,
    response_id: &str,
    token_id: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let n = diesel::update(
        responses::table
            .filter(responses::id.eq(response_id))
            .filter(responses::status.eq(STATUS_DRAFT)),
    )
    .set((
        responses::status.eq(STATUS_SUBMITTED),
        responses::submitted_at.eq(now),
        responses::submitted_by.eq(token_id),
        responses::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn ping(conn: &mut DbConn) -> QueryResult<()> {
    diesel::sql_query("SELECT 1").execute(conn).map(|_| ())
}

/// A country's extended deadline, if an owner set one.
pub fn deadline_extension(
    conn: &mut DbConn,
    survey_id: &str,
    iso3: &str,
) -> QueryResult<Option<NaiveDateTime>> {
    let rows: Vec<NaiveDateTime> = deadline_extensions::table
        .filter(deadline_extensions::survey_id.eq(survey_id))
        .filter(deadline_extensions::country_iso3.eq(iso3))
        .select(deadline_extensions::closes_at)
        .load(conn)?;
    Ok(rows.into_iter().next())
}

pub fn find_token_by_id(conn: &mut DbConn, id: &str) -> QueryResult<Option<TokenRow>> {
    let rows: Vec<TokenRow> = access_tokens::table
        .filter(access_tokens::id.eq(id))
        .select(TokenRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().next())
}

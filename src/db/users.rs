//! The `users` table (administrators and survey owners) and `survey_owners` (which surveys an
//! owner may see).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{survey_owners, users};
use super::states::text_enum;
use super::DbConn;

text_enum! {
    /// What an account may do.
    pub enum Role("role") {
        /// Everything, on every survey.
        Admin = "admin",
        /// The results and the round of the surveys it owns.
        Owner = "owner",
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub email: String,
    #[diesel(deserialize_as = String)]
    pub role: Role,
    pub password_hash: Option<String>,
    pub setup_token_hash: Option<String>,
    pub setup_expires_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub last_login_at: Option<NaiveDateTime>,
}

pub struct NewUser<'a> {
    pub id: &'a str,
    pub email: &'a str,
    pub role: Role,
    pub password_hash: Option<&'a str>,
    pub setup_token_hash: Option<&'a str>,
    pub setup_expires_at: Option<NaiveDateTime>,
    pub now: NaiveDateTime,
}

/// Create an account owning `surveys`, in one transaction.
pub fn insert_user(conn: &mut DbConn, u: &NewUser, surveys: &[String]) -> QueryResult<()> {
    super::transaction(conn, |conn| {
        diesel::insert_into(users::table)
            .values((
                users::id.eq(u.id),
                users::email.eq(u.email),
                users::role.eq(u.role.as_str()),
                users::password_hash.eq(u.password_hash),
                users::setup_token_hash.eq(u.setup_token_hash),
                users::setup_expires_at.eq(u.setup_expires_at),
                users::created_at.eq(u.now),
            ))
            .execute(conn)?;
        for s in surveys {
            diesel::insert_into(survey_owners::table)
                .values((
                    survey_owners::survey_id.eq(s),
                    survey_owners::user_id.eq(u.id),
                ))
                .execute(conn)?;
        }
        Ok(())
    })
}

pub fn find_user(conn: &mut DbConn, id: &str) -> QueryResult<Option<User>> {
    let rows: Vec<User> = users::table
        .filter(users::id.eq(id))
        .select(User::as_select())
        .load(conn)?;
    Ok(rows.into_iter().next())
}

/// The account with this (lower-case) email.
pub fn find_by_email(conn: &mut DbConn, email: &str) -> QueryResult<Option<User>> {
    let rows: Vec<User> = users::table
        .filter(users::email.eq(email))
        .select(User::as_select())
        .load(conn)?;
    Ok(rows.into_iter().next())
}

/// The account whose setup link has this hash, expired or not.
pub fn find_by_setup_hash(conn: &mut DbConn, hash: &str) -> QueryResult<Option<User>> {
    let rows: Vec<User> = users::table
        .filter(users::setup_token_hash.eq(hash))
        .select(User::as_select())
        .load(conn)?;
    Ok(rows.into_iter().next())
}

/// Store a password hash and spend the setup link.
pub fn set_password_hash(conn: &mut DbConn, user_id: &str, hash: &str) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::update(users::table.find(user_id))
            .set((
                users::password_hash.eq(Some(hash)),
                users::setup_token_hash.eq(None::<String>),
                users::setup_expires_at.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?;
        Ok(())
    })
}

pub fn set_last_login(conn: &mut DbConn, user_id: &str, now: NaiveDateTime) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::update(users::table.find(user_id))
            .set(users::last_login_at.eq(now))
            .execute(conn)?;
        Ok(())
    })
}

/// Whether the account owns the survey.
pub fn owns_survey(conn: &mut DbConn, user_id: &str, survey_id: &str) -> QueryResult<bool> {
    let n: i64 = survey_owners::table
        .filter(survey_owners::user_id.eq(user_id))
        .filter(survey_owners::survey_id.eq(survey_id))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

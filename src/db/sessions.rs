//! The `sessions` table (signed-in browsers, by the hash of their cookie) and
//! `trusted_devices` (browsers that signed in to an account before).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{sessions, trusted_devices, users};
use super::users::User;
use super::DbConn;

pub fn insert_session(
    conn: &mut DbConn,
    id_hash: &str,
    user_id: &str,
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::insert_into(sessions::table)
            .values((
                sessions::id_hash.eq(id_hash),
                sessions::user_id.eq(user_id),
                sessions::created_at.eq(now),
                sessions::expires_at.eq(expires_at),
            ))
            .execute(conn)?;
        Ok(())
    })
}

/// Forget every session that expired before `now`.
pub fn delete_expired(conn: &mut DbConn, now: NaiveDateTime) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::delete(sessions::table.filter(sessions::expires_at.lt(now))).execute(conn)?;
        Ok(())
    })
}

/// End every session of an account.
pub fn delete_user_sessions(conn: &mut DbConn, user_id: &str) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)?;
        Ok(())
    })
}

pub fn delete_session(conn: &mut DbConn, id_hash: &str) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::delete(sessions::table.filter(sessions::id_hash.eq(id_hash))).execute(conn)?;
        Ok(())
    })
}

/// The account of a session that has not expired.
pub fn session_user(
    conn: &mut DbConn,
    id_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<User>> {
    let rows: Vec<User> = sessions::table
        .inner_join(users::table.on(users::id.eq(sessions::user_id)))
        .filter(sessions::id_hash.eq(id_hash))
        .filter(sessions::expires_at.gt(now))
        .select(User::as_select())
        .load(conn)?;
    Ok(rows.into_iter().next())
}

/// The account a device cookie (by its hash) belongs to.
pub fn device_owner(conn: &mut DbConn, token_hash: &str) -> QueryResult<Option<String>> {
    let rows: Vec<String> = trusted_devices::table
        .filter(trusted_devices::token_hash.eq(token_hash))
        .select(trusted_devices::user_id)
        .load(conn)?;
    Ok(rows.into_iter().next())
}

/// Note the device's use, if it is this account's; false otherwise.
pub fn touch_device(
    conn: &mut DbConn,
    token_hash: &str,
    user_id: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    super::write_statement(conn, |conn| {
        let updated = diesel::update(
            trusted_devices::table
                .find(token_hash)
                .filter(trusted_devices::user_id.eq(user_id)),
        )
        .set(trusted_devices::last_used_at.eq(now))
        .execute(conn)?;
        Ok(updated == 1)
    })
}

pub fn insert_device(
    conn: &mut DbConn,
    token_hash: &str,
    user_id: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::insert_into(trusted_devices::table)
            .values((
                trusted_devices::token_hash.eq(token_hash),
                trusted_devices::user_id.eq(user_id),
                trusted_devices::created_at.eq(now),
                trusted_devices::last_used_at.eq(now),
            ))
            .execute(conn)?;
        Ok(())
    })
}

/// Forget the devices not used since `before`.
pub fn delete_devices_unused_since(conn: &mut DbConn, before: NaiveDateTime) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::delete(trusted_devices::table.filter(trusted_devices::last_used_at.lt(before)))
            .execute(conn)?;
        Ok(())
    })
}

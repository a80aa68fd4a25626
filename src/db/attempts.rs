//! The `attempt_counters` table: fixed-window counters shared by every node on the database.
//!
//! Counting is atomic on both backends without a transaction: an `UPDATE ... SET count =
//! count + 1 ... RETURNING count` takes the row's lock, and a missing row is inserted, with a
//! unique violation (another node inserted it first) sending us back to the update.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::schema::attempt_counters::dsl::*;
use super::DbConn;

/// Counters older than this are deleted when new ones are made (longer than every window).
const KEEP: Duration = Duration::hours(2);

/// Count one attempt on `counter`, in a window of `window` that starts at its first attempt;
/// returns the attempts counted in the current window, this one included.
pub fn hit(
    conn: &mut DbConn,
    counter: &str,
    window: Duration,
    now: NaiveDateTime,
) -> QueryResult<i32> {
    // Its statements in the write turn, on the pool's writer (see `db::write_statement`).
    super::write_statement(conn, |conn| hit_now(conn, counter, window, now))
}

fn hit_now(
    conn: &mut DbConn,
    counter: &str,
    window: Duration,
    now: NaiveDateTime,
) -> QueryResult<i32> {
    // A window that has passed starts again from nothing.
    diesel::update(
        attempt_counters
            .find(counter)
            .filter(window_start.le(now - window)),
    )
    .set((count.eq(0), window_start.eq(now)))
    .execute(conn)?;
    for _ in 0..3 {
        let counted: Vec<i32> = diesel::update(attempt_counters.find(counter))
            .set(count.eq(count + 1))
            .returning(count)
            .get_results(conn)?;
        if let Some(n) = counted.first() {
            return Ok(*n);
        }
        let inserted = diesel::insert_into(attempt_counters)
            .values((key.eq(counter), window_start.eq(now), count.eq(1)))
            .execute(conn);
        match inserted {
            Ok(_) => {
                diesel::delete(attempt_counters.filter(window_start.lt(now - KEEP)))
                    .execute(conn)?;
                return Ok(1);
            }
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => continue,
            Err(e) => return Err(e),
        }
    }
    // Lost every race: treat as over any limit rather than not counting.
    Ok(i32::MAX)
}

/// Give back one attempt (a sign-in that succeeded is not a failure).
pub fn refund(conn: &mut DbConn, counter: &str) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::update(attempt_counters.find(counter).filter(count.gt(0)))
            .set(count.eq(count - 1))
            .execute(conn)
    })?;
    Ok(())
}

/// Forget a counter (an account whose owner just signed in).
pub fn clear(conn: &mut DbConn, counter: &str) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::delete(attempt_counters.find(counter)).execute(conn)
    })?;
    Ok(())
}

//! The kept response rates of a survey's units (`unit_rates`: one row per unit asked, kept by
//! triggers, migrations 27, 30 and 32). On PostgreSQL a trigger computes a unit's row under a
//! lock on the unit (one of 1,024 per survey, so that a transaction over 100,000 units does not
//! fill the server's lock table), taken as its row is written; a transaction writing rows of
//! many units takes their locks first, in one order ([`lock_units`]).

use diesel::prelude::*;
use diesel::sql_types::{Array, Text};

use super::DbConn;

/// A unit: survey, country, and organisation ('' for the country itself).
pub type Unit<'a> = (&'a str, &'a str, &'a str);

/// PostgreSQL: take the locks of `units`, each once and in the order every transaction takes
/// them, to hold until the transaction ends. Called inside a transaction before it writes rows
/// naming several units: their triggers would otherwise take the locks in the order of the
/// rows, and two such transactions over the same units in different orders (a campaign
/// issuing links and a contacts import) deadlocked. One statement; none for a single unit,
/// whose one lock cannot be taken out of order, nor on SQLite, whose writes run one
/// transaction at a time.
pub fn lock_units<'a>(
    conn: &mut DbConn,
    units: impl IntoIterator<Item = Unit<'a>>,
) -> QueryResult<()> {
    let DbConn::Postgres(c) = conn else {
        return Ok(());
    };
    let mut units: Vec<Unit> = units.into_iter().collect();
    units.sort_unstable();
    units.dedup();
    if units.len() < 2 {
        return Ok(());
    }
    let surveys: Vec<&str> = units.iter().map(|u| u.0).collect();
    let countries: Vec<&str> = units.iter().map(|u| u.1).collect();
    let organisations: Vec<&str> = units.iter().map(|u| u.2).collect();
    diesel::sql_query("SELECT unit_rates_lock($1, $2, $3)")
        .bind::<Array<Text>, _>(surveys)
        .bind::<Array<Text>, _>(countries)
        .bind::<Array<Text>, _>(organisations)
        .execute(c)
        .map(drop)
}

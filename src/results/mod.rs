//! Results for survey owners: aggregates in SQL, the good-practice compendium, ranked
//! capacity-building needs, partner matching, exports.

pub mod aggregate;
pub mod bundle;
pub mod demo;
pub mod export;
pub mod practices;
pub mod sql;

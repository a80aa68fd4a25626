//! Results for survey owners: aggregates in SQL, the good-practice compendium, ranked
//! capacity-building needs, partner matching, exports, what changed between rounds.

pub mod aggregate;
pub mod bundle;
pub mod cache;
pub mod changes;
pub mod demo;
pub mod export;
pub mod practices;
pub mod sql;

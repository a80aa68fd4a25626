//! The one integration-test binary: every test starts the real server on a free port and
//! drives it over HTTP, on SQLite and on PostgreSQL.

mod admin;
mod browser;
mod check;
mod country;
mod faults;
mod helpers;
mod nodes;
mod population;
mod respond;
mod results;
mod roles;
mod security;
mod storage;
mod units;
mod versions_results;
mod views;

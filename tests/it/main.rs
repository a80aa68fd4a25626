//! The one integration-test binary: every test starts the real server on a free port and
//! drives it over HTTP, on SQLite and on PostgreSQL.

mod admin;
mod attack_cycle;
mod attack_evidence;
mod audit;
mod browser;
mod check;
mod country;
mod cycle;
mod definition_changes;
mod escapes;
mod faults;
mod files;
mod handover;
mod helpers;
mod nodes;
mod outbox_speed;
mod population;
mod questionnaire;
mod respond;
mod results;
mod results_cache;
mod roles;
mod round_changes;
mod rounds;
mod save_path;
mod secretariat;
mod security;
mod statements;
mod storage;
mod tallies;
mod units;
mod versions_results;
mod views;
mod zip_stream;

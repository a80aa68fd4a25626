//! Coherence: a survey platform for intergovernmental policy questionnaires.

// No panic may reach a user: errors are values outside tests.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod access;
pub mod accounts;
pub mod audit;
pub mod campaign;
pub mod cli;
pub mod config;
pub mod contacts;
pub mod db;
pub mod error;
pub mod files;
pub mod handover;
pub mod i18n;
pub mod mail;
pub mod questionnaire;
pub mod reference;
pub mod report;
pub mod respond;
pub mod results;
pub mod review;
pub mod startup;
pub mod survey;
pub mod text;
pub mod web;

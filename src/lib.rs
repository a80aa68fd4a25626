//! Coherence: a survey platform for intergovernmental policy questionnaires.

pub mod access;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod reference;
pub mod respond;
pub mod startup;
pub mod survey;
pub mod web;

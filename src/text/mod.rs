//! Text leaving the program in formats other than HTML: CSV cells a spreadsheet opens, and
//! Markdown a secretariat pastes into a report. HTML goes through handlebars' escaping.

pub mod csv;
pub mod markdown;

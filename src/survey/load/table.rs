//! Reading one TOML table of a survey file: typed values with their spans, unknown keys and
//! wrong types reported where they are.

use std::ops::Range;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::Cx;

pub(super) type Value<'i> = Spanned<DeValue<'i>>;

/// Reads the keys of one table, remembering which are allowed, and reports the rest.
pub(super) struct Table<'a, 'i> {
    table: &'a DeTable<'i>,
    pub(super) span: Range<usize>,
    pub(super) what: String,
    allowed: &'static [&'static str],
}

impl<'a, 'i> Table<'a, 'i> {
    /// `what` names the table in messages; a table with a string `id` is named by it
    /// ("section 's'") instead of "a section".
    pub(super) fn new(
        cx: &mut Cx,
        value: &'a Value<'i>,
        what: String,
        allowed: &'static [&'static str],
    ) -> Option<Self> {
        match value.get_ref() {
            DeValue::Table(table) => {
                let id = table
                    .iter()
                    .find(|(k, _)| k.get_ref() == "id")
                    .and_then(|(_, v)| v.get_ref().as_str());
                let what = match (what.strip_prefix("a "), id) {
                    (Some(kind), Some(id)) => format!("{kind} '{id}'"),
                    _ => what,
                };
                let t = Table {
                    table,
                    span: value.span(),
                    what,
                    allowed,
                };
                t.report_unknown(cx);
                Some(t)
            }
            other => {
                cx.error(
                    value.span(),
                    format!("{what} must be a table, found {}", other.type_str()),
                );
                None
            }
        }
    }

    pub(super) fn report_unknown(&self, cx: &mut Cx) {
        for (key, _) in self.table.iter() {
            if !self.allowed.contains(&key.get_ref().as_ref()) {
                cx.error(
                    key.span(),
                    format!(
                        "unknown key '{}' in {} (allowed: {})",
                        key.get_ref(),
                        self.what,
                        self.allowed.join(", ")
                    ),
                );
            }
        }
    }

    pub(super) fn get(&self, key: &str) -> Option<&'a Value<'i>> {
        self.table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(_, v)| v)
    }

    pub(super) fn key_span(&self, key: &str) -> Range<usize> {
        self.table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(k, _)| k.span())
            .unwrap_or_else(|| self.span.clone())
    }

    pub(super) fn missing(&self, cx: &mut Cx, key: &str) {
        cx.error(
            self.span.start..self.span.start,
            format!("missing required key '{key}' in {}", self.what),
        );
    }

    pub(super) fn wrong_type(&self, cx: &mut Cx, key: &str, expected: &str, found: &Value) {
        cx.error(
            found.span(),
            format!(
                "'{key}' in {} must be {expected}, found {}",
                self.what,
                found.get_ref().type_str()
            ),
        );
    }

    pub(super) fn string(&self, cx: &mut Cx, key: &str) -> Option<Spanned<String>> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(Spanned::new(v.span(), s.to_string())),
            _ => {
                self.wrong_type(cx, key, "a string", v);
                None
            }
        }
    }

    pub(super) fn required_string(&self, cx: &mut Cx, key: &str) -> Option<Spanned<String>> {
        if self.get(key).is_none() {
            self.missing(cx, key);
            return None;
        }
        self.string(cx, key)
    }

    pub(super) fn bool(&self, cx: &mut Cx, key: &str) -> Option<bool> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(cx, key, "true or false", v);
                None
            }
        }
    }

    pub(super) fn integer(&self, cx: &mut Cx, key: &str) -> Option<i64> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(n),
                Err(_) => {
                    cx.error(v.span(), format!("'{key}' is out of range"));
                    None
                }
            },
            _ => {
                self.wrong_type(cx, key, "an integer", v);
                None
            }
        }
    }

    pub(super) fn count(&self, cx: &mut Cx, key: &str) -> Option<usize> {
        let n = self.integer(cx, key)?;
        match usize::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                cx.error(self.key_span(key), format!("'{key}' must not be negative"));
                None
            }
        }
    }

    pub(super) fn number(&self, cx: &mut Cx, key: &str) -> Option<f64> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .map(|n| n as f64),
            DeValue::Float(f) => f.as_str().replace('_', "").parse().ok(),
            _ => {
                self.wrong_type(cx, key, "a number", v);
                None
            }
        }
    }

    pub(super) fn date(&self, cx: &mut Cx, key: &str) -> Option<NaiveDate> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::Datetime(dt) if dt.time.is_none() => dt
                .date
                .and_then(|d| NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into())),
            _ => {
                self.wrong_type(cx, key, "a date such as 2008-09-30", v);
                None
            }
        }
    }

    /// A date (the whole day, UTC) or an offset date-time.
    pub(super) fn instant(
        &self,
        cx: &mut Cx,
        key: &str,
        end_of_day: bool,
    ) -> Option<DateTime<Utc>> {
        let v = self.get(key)?;
        let parsed = match v.get_ref() {
            DeValue::Datetime(dt) => match (dt.date, dt.time, dt.offset) {
                (Some(d), None, None) => {
                    NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into()).and_then(
                        |date| {
                            let t = if end_of_day {
                                date.and_hms_opt(23, 59, 59)
                            } else {
                                date.and_hms_opt(0, 0, 0)
                            };
                            t.map(|t| Utc.from_utc_datetime(&t))
                        },
                    )
                }
                (Some(_), Some(_), Some(_)) => DateTime::parse_from_rfc3339(&dt.to_string())
                    .ok()
                    .map(|d| d.with_timezone(&Utc)),
                _ => None,
            },
            _ => None,
        };
        if parsed.is_none() {
            self.wrong_type(
                cx,
                key,
                "a date (2008-09-30) or a date-time with offset (2008-09-30T17:00:00+02:00)",
                v,
            );
        }
        parsed
    }

    pub(super) fn string_list(&self, cx: &mut Cx, key: &str) -> Vec<Spanned<String>> {
        let Some(v) = self.get(key) else {
            return Vec::new();
        };
        match v.get_ref() {
            DeValue::Array(items) => items
                .iter()
                .filter_map(|item| match item.get_ref() {
                    DeValue::String(s) => Some(Spanned::new(item.span(), s.to_string())),
                    other => {
                        cx.error(
                            item.span(),
                            format!(
                                "'{key}' in {} must list strings, found {}",
                                self.what,
                                other.type_str()
                            ),
                        );
                        None
                    }
                })
                .collect(),
            _ => {
                self.wrong_type(cx, key, "a list of strings", v);
                Vec::new()
            }
        }
    }

    pub(super) fn items(&self, cx: &mut Cx, key: &str) -> &'a [Value<'i>] {
        let Some(v) = self.get(key) else {
            return &[];
        };
        match v.get_ref() {
            DeValue::Array(items) => items.as_ref(),
            _ => {
                self.wrong_type(cx, key, "a list", v);
                &[]
            }
        }
    }
}

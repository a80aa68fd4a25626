//! Aggregates kept for repeat views of the results pages. An entry is valid while its
//! survey's generation (`results_generations`, bumped by database triggers in the same
//! transaction as any change of what the results count: see the migration
//! `results_generations`) is the one it was computed at, so every node sharing the database
//! stops serving an entry as soon as a change commits. Each view reads the generation first
//! (one primary-key look-up) and computes after it: an entry may hold newer figures than its
//! generation says, never older ones.
//!
//! Results with drafts included are not cached (drafts change on every save, and bump no
//! generation). The cache is bounded by an estimate of the bytes it holds; the least recently
//! used entries go first.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use diesel::sql_types::{BigInt, Text};
use diesel::{OptionalExtension, QueryableByName, RunQueryDsl};

use super::sql::Sql;
use crate::db::DbConn;

/// What the cache may hold at most, by the entries' own estimate of their size.
pub const DEFAULT_BUDGET: usize = 64 << 20;

#[derive(QueryableByName)]
struct GenerationRow {
    #[diesel(sql_type = BigInt)]
    generation: i64,
}

/// The survey's results generation (0 before anything counted changed).
pub fn generation(conn: &mut DbConn, survey_id: &str) -> diesel::QueryResult<i64> {
    let mut sql = Sql::new("SELECT generation FROM results_generations WHERE survey_id = ");
    sql.bind(survey_id);
    let row: Option<GenerationRow> = sql.query().get_result(conn).optional()?;
    Ok(row.map_or(0, |r| r.generation))
}

/// The generations an entry depends on: its survey's, and the previous round's where the
/// page shows it.
pub fn generations(conn: &mut DbConn, survey_ids: &[&str]) -> diesel::QueryResult<Vec<i64>> {
    if survey_ids.len() == 1 {
        return Ok(vec![generation(conn, survey_ids[0])?]);
    }
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        survey_id: String,
        #[diesel(sql_type = BigInt)]
        generation: i64,
    }
    let mut sql =
        Sql::new("SELECT survey_id, generation FROM results_generations WHERE survey_id IN ");
    sql.bind_list(survey_ids.iter().copied());
    let rows: Vec<Row> = sql.query().load(conn)?;
    Ok(survey_ids
        .iter()
        .map(|id| {
            rows.iter()
                .find(|r| r.survey_id == *id)
                .map_or(0, |r| r.generation)
        })
        .collect())
}

/// A rough size in bytes of what an entry holds, for the cache's budget.
pub trait Weight {
    fn weight(&self) -> usize;
}

impl Weight for String {
    fn weight(&self) -> usize {
        std::mem::size_of::<String>() + self.len()
    }
}

impl Weight for Arc<str> {
    fn weight(&self) -> usize {
        std::mem::size_of::<Arc<str>>() + self.len()
    }
}

impl Weight for i64 {
    fn weight(&self) -> usize {
        8
    }
}

impl<T: Weight> Weight for Vec<T> {
    fn weight(&self) -> usize {
        std::mem::size_of::<Vec<T>>() + self.iter().map(Weight::weight).sum::<usize>()
    }
}

impl<T: Weight> Weight for Option<T> {
    fn weight(&self) -> usize {
        self.as_ref().map_or(8, Weight::weight)
    }
}

impl<A: Weight, B: Weight> Weight for (A, B) {
    fn weight(&self) -> usize {
        self.0.weight() + self.1.weight()
    }
}

impl<A: Weight, B: Weight, C: Weight> Weight for (A, B, C) {
    fn weight(&self) -> usize {
        self.0.weight() + self.1.weight() + self.2.weight()
    }
}

impl<K: Weight, V: Weight> Weight for std::collections::BTreeMap<K, V> {
    fn weight(&self) -> usize {
        24 + self
            .iter()
            .map(|(k, v)| 16 + k.weight() + v.weight())
            .sum::<usize>()
    }
}

impl Weight for bool {
    fn weight(&self) -> usize {
        1
    }
}

impl Weight for usize {
    fn weight(&self) -> usize {
        8
    }
}

impl Weight for f64 {
    fn weight(&self) -> usize {
        8
    }
}

impl Weight for &'static str {
    fn weight(&self) -> usize {
        16
    }
}

impl Weight for crate::survey::EscapeKind {
    fn weight(&self) -> usize {
        1
    }
}

impl Weight for super::aggregate::TextAnswer {
    fn weight(&self) -> usize {
        self.iso3.weight() + self.unit.weight() + self.value.weight()
    }
}

impl Weight for super::aggregate::NumberStats {
    fn weight(&self) -> usize {
        40
    }
}

impl Weight for super::practices::Listing {
    fn weight(&self) -> usize {
        self.response_id.weight()
            + self.question.weight()
            + self.iso3.weight()
            + self.unit.weight()
            + self.attribution.weight()
            + self.region.weight()
            + self.subregion.weight()
            + self.development.weight()
            + self.themes.weight()
            + self.text.weight()
            + 8
    }
}

impl Weight for super::practices::Need {
    fn weight(&self) -> usize {
        self.question.weight()
            + self.option.weight()
            + self.label.weight()
            + self.theme.weight()
            + 24
            + self.by_development.weight()
            + self.by_region.weight()
    }
}

impl Weight for super::practices::Partner {
    fn weight(&self) -> usize {
        self.iso3.weight() + 16
    }
}

impl Weight for super::practices::Match {
    fn weight(&self) -> usize {
        self.iso3.weight() + self.theme.weight() + self.need.weight() + self.partners.weight()
    }
}

struct Entry {
    generations: Vec<i64>,
    value: Arc<dyn Any + Send + Sync>,
    weight: usize,
    used: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    weight: usize,
    clock: u64,
    hits: u64,
    misses: u64,
}

/// The cache of one node (kept in the application state).
pub struct ResultsCache {
    budget: usize,
    inner: Mutex<Inner>,
}

impl Default for ResultsCache {
    fn default() -> Self {
        ResultsCache::new(DEFAULT_BUDGET)
    }
}

impl ResultsCache {
    pub fn new(budget: usize) -> ResultsCache {
        ResultsCache {
            budget,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The value under `key` computed at `generations`, or `compute`'s (kept if it fits).
    pub fn get_or_compute<T, E>(
        &self,
        key: &str,
        generations: Vec<i64>,
        compute: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<T>, E>
    where
        T: Weight + Send + Sync + 'static,
    {
        if let Some(hit) = self.get::<T>(key, &generations) {
            return Ok(hit);
        }
        let value = Arc::new(compute()?);
        self.put(key, generations, value.clone());
        Ok(value)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves nothing half-done worth refusing.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get<T: Send + Sync + 'static>(&self, key: &str, generations: &[i64]) -> Option<Arc<T>> {
        let mut inner = self.lock();
        inner.clock += 1;
        let clock = inner.clock;
        let found = match inner.entries.get_mut(key) {
            Some(e) if e.generations == generations => {
                e.used = clock;
                e.value.clone().downcast::<T>().ok()
            }
            _ => None,
        };
        match found {
            Some(v) => {
                inner.hits += 1;
                Some(v)
            }
            None => {
                inner.misses += 1;
                None
            }
        }
    }

    fn put<T: Weight + Send + Sync + 'static>(
        &self,
        key: &str,
        generations: Vec<i64>,
        value: Arc<T>,
    ) {
        let weight = value.weight() + key.len() + 64;
        let mut inner = self.lock();
        if let Some(old) = inner.entries.remove(key) {
            inner.weight -= old.weight;
        }
        if weight > self.budget {
            return;
        }
        // Least recently used first, until the new entry fits.
        while inner.weight + weight > self.budget {
            let Some(oldest) = inner
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = inner.entries.remove(&oldest) {
                inner.weight -= e.weight;
            }
        }
        inner.clock += 1;
        let used = inner.clock;
        inner.weight += weight;
        inner.entries.insert(
            key.to_string(),
            Entry {
                generations,
                value,
                weight,
                used,
            },
        );
    }

    /// (hits, misses) since the start, and the bytes held.
    pub fn stats(&self) -> (u64, u64, usize) {
        let inner = self.lock();
        (inner.hits, inner.misses, inner.weight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_kept_for_its_generation_and_the_least_recent_goes_first() {
        let cache = ResultsCache::new(400);
        let mut computed = 0;
        let mut get = |key: &str, generation: i64| {
            cache
                .get_or_compute(key, vec![generation], || {
                    computed += 1;
                    Ok::<_, ()>(format!("{key}{generation}"))
                })
                .unwrap()
        };
        assert_eq!(*get("a", 1), "a1");
        assert_eq!(*get("a", 1), "a1");
        assert_eq!(*get("a", 2), "a2");
        let _ = get("b", 1);
        let _ = get("c", 1);
        let _ = get("d", 1);
        assert_eq!(computed, 5);
        let (hits, misses, weight) = cache.stats();
        assert_eq!((hits, misses), (1, 5));
        assert!(weight <= 400, "{weight}");
    }
}

//! Survey definitions: the model, loading and checking files, conditions, answer values.

pub mod answer;
pub mod changes;
pub mod condition;
pub mod display;
pub mod load;
pub mod model;
pub mod population;
pub mod rounds;

pub use load::{load_paths, parse_survey, Diagnostic, LoadReport, Severity};
pub use model::*;
pub use population::{Population, PopulationKind};

use std::collections::BTreeMap;
use std::sync::Arc;

/// The loaded surveys, by id. Built once at start; shared read-only.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    surveys: BTreeMap<String, Arc<Survey>>,
}

impl Catalog {
    pub fn new(surveys: Vec<Survey>) -> Catalog {
        Catalog {
            surveys: surveys
                .into_iter()
                .map(|s| (s.id.clone(), Arc::new(s)))
                .collect(),
        }
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Survey>> {
        self.surveys.get(id)
    }

    /// The survey `survey` follows, with how its answers carry (None for a first round).
    pub fn previous_round<'a>(
        &'a self,
        survey: &'a Survey,
    ) -> Option<(&'a Arc<Survey>, &'a PreviousRound)> {
        let round = survey.previous.as_ref()?;
        Some((self.surveys.get(&round.survey)?, round))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Survey>> {
        self.surveys.values()
    }
}

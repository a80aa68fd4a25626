//! The country reference list shipped with Coherence (`data/countries.csv`, see data/README.md).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::survey::answer::CountryCodes;
use crate::survey::population::parse_list;

const COUNTRIES_CSV: &str = include_str!("../data/countries.csv");
/// The 193 UN Member States, in the population list format (see data/README.md).
const UN_MEMBER_STATES: &str = include_str!("../data/un-member-states.txt");

/// Every ISO alpha-3 code of the reference list, read from its first column only (cheap enough
/// for every survey file loaded; equal to the codes of [`Countries::load`]).
pub fn reference_codes() -> impl Iterator<Item = &'static str> {
    COUNTRIES_CSV
        .lines()
        .skip(1)
        .filter_map(|line| line.split(',').next())
        .filter(|code| !code.is_empty())
}

/// The codes of the 193 UN Member States.
pub fn un_member_states() -> impl Iterator<Item = String> {
    parse_list(UN_MEMBER_STATES)
        .into_iter()
        .filter_map(|listed| listed.code.ok())
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Country {
    pub iso3: String,
    pub iso2: String,
    pub m49: String,
    pub name_en: String,
    pub name_fr: String,
    pub name_es: String,
    pub region_code: String,
    pub region_en: String,
    pub region_fr: String,
    pub region_es: String,
    pub subregion_code: String,
    pub subregion_en: String,
    pub subregion_fr: String,
    pub subregion_es: String,
    pub intermediate_code: String,
    pub intermediate_en: String,
    pub intermediate_fr: String,
    pub intermediate_es: String,
    /// "developed" or "developing" (empty where the source gives none).
    pub development: String,
    pub ldc: u8,
    pub ldc_2008: u8,
    pub lldc: u8,
    pub sids: u8,
    /// World Bank income group in force during 2008 (FY09): L, LM, UM, H.
    pub income_fy09: String,
    pub income_fy23: String,
}

impl Country {
    pub fn region(&self, lang: &str) -> &str {
        match lang {
            "fr" => &self.region_fr,
            "es" => &self.region_es,
            _ => &self.region_en,
        }
    }

    /// The intermediate region where there is one (e.g. Eastern Africa), else the sub-region.
    pub fn subregion(&self, lang: &str) -> &str {
        let (inter, sub) = match lang {
            "fr" => (&self.intermediate_fr, &self.subregion_fr),
            "es" => (&self.intermediate_es, &self.subregion_es),
            _ => (&self.intermediate_en, &self.subregion_en),
        };
        if self.intermediate_code.is_empty() {
            sub
        } else {
            inter
        }
    }

    pub fn name(&self, lang: &str) -> &str {
        match lang {
            "fr" => &self.name_fr,
            "es" => &self.name_es,
            _ => &self.name_en,
        }
    }
}

/// Every country and area, by ISO alpha-3 code.
#[derive(Debug, Clone)]
pub struct Countries {
    by_iso3: BTreeMap<String, Country>,
}

#[derive(Debug, thiserror::Error)]
#[error("the shipped country list is malformed: {0}")]
pub struct ReferenceError(#[from] csv::Error);

impl Countries {
    pub fn load() -> Result<Countries, ReferenceError> {
        let mut reader = csv::Reader::from_reader(COUNTRIES_CSV.as_bytes());
        let mut by_iso3 = BTreeMap::new();
        for row in reader.deserialize() {
            let c: Country = row?;
            by_iso3.insert(c.iso3.clone(), c);
        }
        Ok(Countries { by_iso3 })
    }

    pub fn get(&self, iso3: &str) -> Option<&Country> {
        self.by_iso3.get(iso3)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Country> {
        self.by_iso3.values()
    }

    /// Countries sorted by their name in `lang`, for pick lists.
    pub fn sorted_by_name(&self, lang: &str) -> Vec<&Country> {
        let mut all: Vec<&Country> = self.by_iso3.values().collect();
        all.sort_by(|a, b| a.name(lang).cmp(b.name(lang)));
        all
    }
}

impl CountryCodes for Countries {
    fn is_country(&self, iso3: &str) -> bool {
        self.by_iso3.contains_key(iso3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_list_has_the_un_groups() {
        let c = Countries::load().unwrap();
        assert!(c.iter().count() > 240);
        assert_eq!(c.iter().filter(|c| c.ldc_2008 == 1).count(), 49);
        assert_eq!(c.iter().filter(|c| c.ldc == 1).count(), 45);
        let swe = c.get("SWE").unwrap();
        assert_eq!(
            (swe.region_code.as_str(), swe.income_fy09.as_str()),
            ("150", "H")
        );
        assert_eq!(
            c.get("BOL").unwrap().name_fr,
            "Bolivie (État plurinational de)"
        );
    }

    #[test]
    fn the_193_member_states_are_in_the_reference_list() {
        let c = Countries::load().unwrap();
        let listed = parse_list(UN_MEMBER_STATES);
        assert!(listed.iter().all(|l| l.code.is_ok()), "{listed:?}");
        let members: Vec<String> = un_member_states().collect();
        assert_eq!(members.len(), 193);
        assert!(members.iter().all(|m| c.get(m).is_some()));
        // Observer States and areas are not members; South Sudan (2011) is.
        for outside in ["VAT", "PSE", "TWN", "COK", "NIU", "HKG", "ABW"] {
            assert!(!members.iter().any(|m| m == outside), "{outside}");
        }
        assert!(members.iter().any(|m| m == "SSD"));
        // Members per region: Africa 54, Americas 35, Asia 47, Europe 43 (without the Holy
        // See), Oceania 14.
        let per_region = |code: &str| {
            members
                .iter()
                .filter(|m| c.get(m).is_some_and(|c| c.region_code == code))
                .count()
        };
        assert_eq!(
            ["002", "019", "142", "150", "009"].map(per_region),
            [54, 35, 47, 43, 14]
        );
    }

    #[test]
    fn reference_codes_are_the_loaded_codes() {
        let c = Countries::load().unwrap();
        let loaded: Vec<&str> = c.iter().map(|c| c.iso3.as_str()).collect();
        let mut cheap: Vec<&str> = reference_codes().collect();
        cheap.sort();
        assert_eq!(cheap, loaded);
    }
}

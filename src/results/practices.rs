//! Good practices (the compendium), capacity-building needs (ranked), and partner matching
//! between them: what the questions marked in the survey definition exist for.

use std::collections::{BTreeMap, HashMap, HashSet};

use diesel::sql_types::Text;
use diesel::{QueryableByName, RunQueryDsl};
use serde::Serialize;

use super::aggregate::{choice_counts_by_two, Filter, Grouping};
use super::sql::Sql;
use crate::db::DbConn;
use crate::reference::Countries;
use crate::survey::answer::{is_value_item, Item};
use crate::survey::display::display_value;
use crate::survey::{Marker, NeedLevel, Question, Survey};

#[derive(QueryableByName, Debug)]
struct AnswerRow {
    #[diesel(sql_type = Text)]
    response_id: String,
    #[diesel(sql_type = Text)]
    iso3: String,
    #[diesel(sql_type = Text)]
    unit: String,
    #[diesel(sql_type = Text)]
    question_id: String,
    #[diesel(sql_type = Text)]
    item: String,
    #[diesel(sql_type = Text)]
    value: String,
}

/// The counted answers to the given questions, per response, with the response's country.
fn answers_of(
    conn: &mut DbConn,
    survey_id: &str,
    questions: &[&str],
    filter: &Filter,
) -> diesel::QueryResult<Vec<AnswerRow>> {
    if questions.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new(
        "SELECT r.id AS response_id, c.iso3 AS iso3, r.unit AS unit, a.question_id AS question_id, a.item AS item, a.value AS value",
    );
    super::aggregate::answers_from(&mut sql, survey_id, filter);
    sql.push(" AND a.question_id IN (");
    for (i, q) in questions.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.bind(*q);
    }
    // No ORDER BY: the callers order what they build (sorting every answer row in the
    // database cost more than the query itself on 100,000 responses).
    sql.push(")");
    sql.query().load(conn)
}

/// One response's answers to the questions asked for, with its country and unit.
struct ResponseAnswers {
    iso3: String,
    unit: String,
    /// (question, its items in item order), a handful of questions: found by a linear search.
    questions: Vec<(String, Vec<Item>)>,
}

impl ResponseAnswers {
    fn get(&self, question: &str) -> Option<&Vec<Item>> {
        self.questions
            .iter()
            .find(|(q, _)| q == question)
            .map(|(_, items)| items)
    }

    /// Where one item of a question is: (question's place, item's place).
    fn position(&self, question: &str, item: &str) -> Option<(usize, usize)> {
        let at = self.questions.iter().position(|(q, _)| q == question)?;
        let item_at = self.questions[at].1.iter().position(|i| i.item == item)?;
        Some((at, item_at))
    }

    /// The value at a [`position`](Self::position), moved out (left empty).
    fn take_value(&mut self, (at, item_at): (usize, usize)) -> String {
        self.questions
            .get_mut(at)
            .and_then(|(_, items)| items.get_mut(item_at))
            .map(|i| std::mem::take(&mut i.value))
            .unwrap_or_default()
    }
}

/// The rows grouped per response, in response id order. Sorted once as a whole rather than
/// inserted into a map per response: on 100,000 responses a map of maps took a third of the
/// compendium's time.
fn group(mut rows: Vec<AnswerRow>) -> Vec<ResponseAnswers> {
    rows.sort_unstable_by(|a, b| {
        (&a.response_id, &a.question_id, &a.item).cmp(&(&b.response_id, &b.question_id, &b.item))
    });
    let mut out: Vec<ResponseAnswers> = Vec::new();
    let mut last_response: Option<String> = None;
    for r in rows {
        if last_response.as_deref() != Some(r.response_id.as_str()) {
            out.push(ResponseAnswers {
                iso3: r.iso3,
                unit: r.unit,
                questions: Vec::new(),
            });
            last_response = Some(r.response_id);
        }
        let Some(answers) = out.last_mut() else {
            continue;
        };
        let item = Item {
            item: r.item,
            value: r.value,
            num: None,
        };
        match answers.questions.last_mut() {
            Some((q, items)) if *q == r.question_id => items.push(item),
            _ => answers.questions.push((r.question_id, vec![item])),
        }
    }
    out
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Practice {
    pub question: String,
    pub iso3: String,
    /// The organisation that reported it, in a survey of organisations ('' otherwise).
    pub unit: String,
    /// The country's (or "organisation, country") name where the practice may be cited, else
    /// "a government in <sub-region>".
    pub attribution: String,
    pub citable: bool,
    pub region: String,
    pub subregion: String,
    pub development: String,
    pub themes: Vec<String>,
    pub text: String,
    /// (question text, answer as displayed) of the related answers the definition names.
    pub related: Vec<(String, String)>,
}

/// Every answer marked as a good practice, with its themes, attribution and related answers.
pub fn compendium(
    conn: &mut DbConn,
    survey: &Survey,
    countries: &Countries,
    filter: &Filter,
    lang: &str,
) -> diesel::QueryResult<Vec<Practice>> {
    // Only responses from the survey's population count, whatever filter the caller built.
    let filter = &filter.clone().within(survey);
    let mut out = Vec::new();
    // "a government in <sub-region>", formatted once per sub-region.
    let mut anonymous: HashMap<String, String> = HashMap::new();
    for q in survey.questions() {
        let Some(Marker::GoodPractice {
            themes,
            themes_from,
            cite_question,
            related,
        }) = &q.marker
        else {
            continue;
        };
        let mut wanted: Vec<&str> = vec![q.id.as_str()];
        wanted.extend(themes_from.as_deref());
        wanted.extend(cite_question.as_deref());
        wanted.extend(related.iter().map(String::as_str));
        let by_response = group(answers_of(conn, &survey.id, &wanted, filter)?);
        let mut practices: Vec<Practice> = Vec::new();
        for mut answers in by_response {
            // Where the practice's text is: taken out of the answers (not copied) once the
            // rest of them has been read.
            let Some(text_at) = answers.position(&q.id, "") else {
                continue;
            };
            let (iso3, unit) = (&answers.iso3, &answers.unit);
            let country = countries.get(iso3);
            let mut practice_themes: Vec<String> = themes.clone();
            if let (Some(from), Some(picker)) = (
                themes_from,
                themes_from.as_ref().and_then(|f| survey.question(f)),
            ) {
                for it in answers.get(from).map(Vec::as_slice).unwrap_or(&[]) {
                    // A multiple choice stores the option as the item, a single choice as
                    // the value.
                    let code = if it.item.is_empty() {
                        &it.value
                    } else {
                        &it.item
                    };
                    if let Some(theme) = picker
                        .kind
                        .options()
                        .iter()
                        .find(|o| &o.code == code)
                        .and_then(|o| o.theme.clone())
                    {
                        if !practice_themes.contains(&theme) {
                            practice_themes.push(theme);
                        }
                    }
                }
            }
            // Chatham House: named only where the respondent said yes.
            let citable = cite_question
                .as_ref()
                .and_then(|c| answers.get(c))
                .is_some_and(|items| items.iter().any(|i| i.value == "yes"));
            let subregion = country
                .map(|c| c.subregion(lang).to_string())
                .unwrap_or_default();
            let attribution = if citable {
                let name = country
                    .map(|c| c.name(lang).to_string())
                    .unwrap_or_else(|| iso3.clone());
                crate::survey::respondent_name(unit, &name)
            } else {
                match anonymous.get(&subregion) {
                    Some(known) => known.clone(),
                    None => {
                        let text = crate::i18n::translate(
                            lang,
                            "results-anonymous",
                            &[("subregion", subregion.clone())],
                        );
                        anonymous.insert(subregion.clone(), text.clone());
                        text
                    }
                }
            };
            let name_of = |code: &str| {
                countries
                    .get(code)
                    .map(|c| c.name(lang).to_string())
                    .unwrap_or_else(|| code.to_string())
            };
            let related_view: Vec<(String, String)> = related
                .iter()
                .filter_map(|r| survey.question(r))
                // A practice that may not be cited does not name a partner country either: the
                // pair could identify the government.
                .filter(|rq| citable || rq.kind != crate::survey::QuestionKind::Country)
                .filter_map(|rq| {
                    let items = answers.get(&rq.id)?;
                    Some((
                        rq.text.get(lang).to_string(),
                        display_value(rq, items, lang, &name_of),
                    ))
                })
                .collect();
            let region = country
                .map(|c| c.region(lang).to_string())
                .unwrap_or_default();
            let development = country.map(|c| c.development.clone()).unwrap_or_default();
            let unit = if citable {
                std::mem::take(&mut answers.unit)
            } else {
                String::new()
            };
            practices.push(Practice {
                question: q.id.clone(),
                iso3: std::mem::take(&mut answers.iso3),
                unit,
                attribution,
                citable,
                region,
                subregion,
                development,
                themes: practice_themes,
                text: answers.take_value(text_at),
                related: related_view,
            });
        }
        // Question by question, in the definition's order (the loop's), so that each
        // question's practices alone are sorted.
        out.extend(in_compendium_order(practices));
    }
    Ok(out)
}

/// One question's practices by region and sub-region, then attribution and text: never by
/// country, since an anonymous practice listed between two named countries would give its own
/// away. Positions are sorted, not the practices (a few hundred bytes each, moved at every
/// step of the sort), and the keys compared by reference (cloning each, the text up to 2,000
/// characters, took as long as the rest of the sort on 48,000 practices).
fn in_compendium_order(practices: Vec<Practice>) -> Vec<Practice> {
    fn key(p: &Practice) -> (&str, &str, bool, &str, &str) {
        (&p.region, &p.subregion, !p.citable, &p.attribution, &p.text)
    }
    let mut order: Vec<usize> = (0..practices.len()).collect();
    order.sort_by(|&a, &b| key(&practices[a]).cmp(&key(&practices[b])));
    let mut slots: Vec<Option<Practice>> = practices.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|i| slots.get_mut(i).and_then(Option::take))
        .collect()
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Need {
    pub question: String,
    pub option: String,
    pub label: String,
    pub theme: Option<String>,
    pub level: Option<&'static str>,
    /// Countries reporting the need.
    pub countries: i64,
    pub by_development: BTreeMap<String, i64>,
    pub by_region: BTreeMap<String, i64>,
}

fn level_key(level: Option<NeedLevel>) -> Option<&'static str> {
    level.map(|l| match l {
        NeedLevel::Policy => "policy",
        NeedLevel::Institutional => "institutional",
    })
}

fn need_questions(
    survey: &Survey,
) -> impl Iterator<Item = (&Question, &Vec<String>, Option<NeedLevel>)> {
    survey.questions().filter_map(|q| match &q.marker {
        Some(Marker::CapacityNeed { themes, level, .. }) => Some((q, themes, *level)),
        _ => None,
    })
}

/// Capacity-building needs ranked by how many countries report them, with their breakdowns.
pub fn ranked_needs(
    conn: &mut DbConn,
    survey: &Survey,
    filter: &Filter,
    lang: &str,
) -> diesel::QueryResult<Vec<Need>> {
    // Only responses from the survey's population count, whatever filter the caller built.
    let filter = &filter.clone().within(survey);
    let mut out = Vec::new();
    for (q, themes, level) in need_questions(survey) {
        let both = choice_counts_by_two(
            conn,
            &survey.id,
            q,
            filter,
            (Grouping::Development, Grouping::Region),
        )?;
        for option in q.kind.options() {
            let mut need = Need {
                question: q.id.clone(),
                option: option.code.clone(),
                label: option.label.get(lang).to_string(),
                theme: option.theme.clone().or_else(|| themes.first().cloned()),
                level: level_key(level),
                countries: 0,
                by_development: BTreeMap::new(),
                by_region: BTreeMap::new(),
            };
            for (development, region, key, n) in &both {
                if key == &option.code {
                    need.countries += n;
                    *need.by_development.entry(development.clone()).or_default() += n;
                    *need.by_region.entry(region.clone()).or_default() += n;
                }
            }
            if need.countries > 0 {
                out.push(need);
            }
        }
    }
    out.sort_by(|a, b| b.countries.cmp(&a.countries).then(a.label.cmp(&b.label)));
    Ok(out)
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Match {
    /// The country with the need.
    pub iso3: String,
    pub theme: String,
    pub need: String,
    /// Countries with a good practice in the theme: same region first, then by how many
    /// practices they reported in it.
    pub partners: Vec<Partner>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Partner {
    pub iso3: String,
    pub same_region: bool,
    pub practices: usize,
}

/// For each country's need in a theme, the countries that reported a good practice in it.
pub fn partner_matches(
    conn: &mut DbConn,
    survey: &Survey,
    countries: &Countries,
    practices: &[Practice],
    filter: &Filter,
    lang: &str,
) -> diesel::QueryResult<Vec<Match>> {
    // Only responses from the survey's population count, whatever filter the caller built.
    let filter = &filter.clone().within(survey);
    // theme -> iso3 -> number of practices
    let mut offers: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for p in practices {
        for t in &p.themes {
            *offers
                .entry(t.as_str())
                .or_default()
                .entry(p.iso3.as_str())
                .or_default() += 1;
        }
    }
    let questions: Vec<(&Question, &Vec<String>)> =
        need_questions(survey).map(|(q, t, _)| (q, t)).collect();
    let ids: Vec<&str> = questions.iter().map(|(q, _)| q.id.as_str()).collect();
    let rows = answers_of(conn, &survey.id, &ids, filter)?;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    // `#other` and "not known"/"not applicable" are not needs.
    for r in rows.iter().filter(|r| is_value_item(&r.item)) {
        let Some((q, fixed)) = questions.iter().find(|(q, _)| q.id == r.question_id) else {
            continue;
        };
        let key = if q.kind.options().is_empty() {
            r.value.as_str()
        } else {
            r.item.as_str()
        };
        let option = q.kind.options().iter().find(|o| o.code == key);
        let Some(theme) = option
            .and_then(|o| o.theme.clone())
            .or_else(|| fixed.first().cloned())
        else {
            continue;
        };
        if !seen.insert((r.iso3.clone(), theme.clone(), key.to_string())) {
            continue;
        }
        let region = countries
            .get(&r.iso3)
            .map(|c| c.region_code.as_str())
            .unwrap_or("");
        let mut partners: Vec<Partner> = offers
            .get(theme.as_str())
            .map(|m| {
                m.iter()
                    .filter(|(iso3, _)| **iso3 != r.iso3)
                    .map(|(iso3, n)| Partner {
                        iso3: iso3.to_string(),
                        same_region: countries.get(iso3).is_some_and(|c| c.region_code == region),
                        practices: *n,
                    })
                    .collect()
            })
            .unwrap_or_default();
        partners.sort_by(|a, b| {
            b.same_region
                .cmp(&a.same_region)
                .then(b.practices.cmp(&a.practices))
                .then(a.iso3.cmp(&b.iso3))
        });
        if partners.is_empty() {
            continue;
        }
        out.push(Match {
            iso3: r.iso3.clone(),
            theme,
            need: option
                .map(|o| o.label.get(lang).to_string())
                .unwrap_or_else(|| key.to_string()),
            partners,
        });
    }
    // The answers come unordered: list the countries by name.
    out.sort_by_cached_key(|m| {
        (
            countries
                .get(&m.iso3)
                .map(|c| c.name_en.clone())
                .unwrap_or_else(|| m.iso3.clone()),
            m.theme.clone(),
            m.need.clone(),
        )
    });
    Ok(out)
}

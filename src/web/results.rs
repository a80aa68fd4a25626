//! Results pages for survey owners and administrators: dashboard, one question, compendium,
//! needs and matching, exports. The numbers come from `crate::results`; this file only shapes
//! them for the templates (tables, and SVG bar charts beside them).

use std::collections::BTreeMap;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value as Json};

use super::admin::{csv_response, no_store, page, survey_user, with_conn};
use super::render::translate;
use super::AppState;
use crate::error::AppError;
use crate::reference::Countries;
use crate::results::aggregate::{self, Filter, Grouping};
use crate::results::{export, practices};
use crate::survey::{QuestionKind, Survey, OTHER_CODE};

fn t(id: &str, args: &[(&str, String)]) -> String {
    translate(super::page_language(), id, args)
}

#[derive(serde::Deserialize, Default)]
pub struct ResultsQuery {
    drafts: Option<String>,
    region: Option<String>,
    income: Option<String>,
    by: Option<String>,
    /// Compendium page: one theme only, and which page of practices.
    theme: Option<String>,
    page: Option<usize>,
}

impl ResultsQuery {
    /// The filter the query asks for, within the survey's population.
    fn filter(&self, countries: &Countries, survey: &Survey) -> Filter {
        let region = self
            .region
            .clone()
            .filter(|r| countries.iter().any(|c| &c.region_code == r));
        let income = self
            .income
            .clone()
            .filter(|i| ["L", "LM", "UM", "H"].contains(&i.as_str()));
        Filter {
            include_drafts: self.drafts.as_deref() == Some("1"),
            region,
            income,
            population: None,
        }
        .within(survey)
    }

    /// The same filters as a query string, for links between results pages.
    fn query_string(&self, filter: &Filter) -> String {
        let mut parts = Vec::new();
        if filter.include_drafts {
            parts.push("drafts=1".to_string());
        }
        if let Some(r) = &filter.region {
            parts.push(format!("region={r}"));
        }
        if let Some(i) = &filter.income {
            parts.push(format!("income={i}"));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

fn group_label(countries: &Countries, grouping: Option<Grouping>, code: &str) -> String {
    let find =
        |f: &dyn Fn(&crate::reference::Country) -> Option<String>| countries.iter().find_map(f);
    match grouping {
        None => t("results-all", &[]),
        Some(Grouping::Region) => {
            find(&|c| (c.region_code == code).then(|| c.region(super::page_language()).to_string()))
                .unwrap_or_else(|| code.into())
        }
        Some(Grouping::Subregion) => find(&|c| {
            (c.subregion_code == code).then(|| c.subregion(super::page_language()).to_string())
        })
        .unwrap_or_else(|| code.into()),
        Some(Grouping::Income) if code.is_empty() => t("results-unclassified", &[]),
        Some(Grouping::Income) => t(&format!("results-income-{code}"), &[]),
        Some(Grouping::Development) => match code {
            "developed" => t("results-developed", &[]),
            "developing" => t("results-developing", &[]),
            _ => t("results-unclassified", &[]),
        },
        Some(Grouping::Ldc | Grouping::Lldc | Grouping::Sids) if code == "other" => {
            t("results-other-countries", &[])
        }
        Some(Grouping::Ldc) => t("results-ldc", &[]),
        Some(Grouping::Lldc) => t("results-lldc", &[]),
        Some(Grouping::Sids) => t("results-sids", &[]),
    }
}

fn grouping_label(g: Grouping) -> String {
    t(&format!("results-group-{}", g.key()), &[])
}

/// A horizontal bar chart: (label, value, shown value).
fn chart(title: String, bars: &[(String, f64, String)]) -> Json {
    let max = bars.iter().map(|b| b.1).fold(0.0_f64, f64::max).max(1e-9);
    let list: Vec<Json> = bars
        .iter()
        .enumerate()
        .map(|(i, (label, v, shown))| {
            let y = 4 + i * 24;
            let width = (v / max * 340.0).round();
            json!({"label": label, "y": y, "text_y": y + 14, "width": width, "value_x": 226.0 + width, "value": shown})
        })
        .collect();
    json!({"title": title, "height": 8 + bars.len() * 24, "bars": list})
}

/// Colours told apart by colour-blind readers too (Okabe and Ito); the legend and the data
/// table carry the same information in words.
const PALETTE: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
];

/// A stacked horizontal bar chart of a breakdown: one bar per group, one segment per option,
/// each segment's length its count (so bars compare group sizes too), with a legend.
/// `groups`: (label, counts in the order of `series`).
fn stacked_chart(title: String, series: &[String], groups: &[(&str, &[i64])]) -> Json {
    let max = groups
        .iter()
        .map(|(_, counts)| counts.iter().sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let bars: Vec<Json> = groups
        .iter()
        .enumerate()
        .map(|(i, (label, counts))| {
            let y = 4 + i * 24;
            let mut x = 220.0;
            let segments: Vec<Json> = counts
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(s, n)| {
                    let width = (*n as f64 / max * 340.0).round().max(1.0);
                    let seg = json!({"x": x, "y": y, "width": width, "fill": PALETTE[s % PALETTE.len()],
                        "tip": format!("{label}, {}: {n}", series[s])});
                    x += width;
                    seg
                })
                .collect();
            let total: i64 = counts.iter().sum();
            json!({"label": label, "text_y": y + 14, "segments": segments, "total_x": x + 6.0, "total": total})
        })
        .collect();
    let legend_top = 12 + groups.len() * 24;
    let legend: Vec<Json> = series
        .iter()
        .enumerate()
        .map(|(s, label)| {
            let y = legend_top + s * 20;
            json!({"y": y, "text_y": y + 12, "fill": PALETTE[s % PALETTE.len()], "label": label})
        })
        .collect();
    json!({"title": title, "height": legend_top + series.len() * 20 + 4, "bars": bars, "legend": legend})
}

fn percent(part: i64, whole: i64) -> String {
    if whole == 0 {
        "–".into()
    } else {
        let n = part as f64 * 100.0 / whole as f64;
        // French and Spanish put a (narrow no-break) space before the sign.
        match super::page_language() {
            "fr" | "es" => format!("{n:.0}\u{202f}%"),
            _ => format!("{n:.0}%"),
        }
    }
}

fn filter_options(
    countries: &Countries,
    filter: &Filter,
    by: Option<Grouping>,
    with_by: bool,
) -> Json {
    let mut regions: BTreeMap<String, String> = BTreeMap::new();
    for c in countries.iter() {
        regions.insert(
            c.region_code.clone(),
            c.region(super::page_language()).to_string(),
        );
    }
    let regions: Vec<Json> = regions
        .into_iter()
        .map(|(code, label)| json!({"selected": filter.region.as_deref() == Some(code.as_str()), "code": code, "label": label}))
        .collect();
    let incomes: Vec<Json> = ["L", "LM", "UM", "H"]
        .iter()
        .map(|c| json!({"code": c, "label": t(&format!("results-income-{c}"), &[]), "selected": filter.income.as_deref() == Some(*c)}))
        .collect();
    let by_options: Vec<Json> = if with_by {
        Grouping::ALL
            .iter()
            .map(|g| json!({"key": g.key(), "label": grouping_label(*g), "selected": by == Some(*g)}))
            .collect()
    } else {
        Vec::new()
    };
    json!({"regions": regions, "incomes": incomes, "by_options": by_options, "drafts": filter.include_drafts})
}

fn merge(mut a: Json, b: Json) -> Json {
    if let (Json::Object(a), Json::Object(b)) = (&mut a, b) {
        a.extend(b);
    }
    a
}

pub async fn dashboard(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ResultsQuery>,
) -> Result<HttpResponse, AppError> {
    let (_, survey) = survey_user(&state, &req, &path).await?;
    let filter = query.filter(&state.countries, &survey);
    let (s, f) = (survey.clone(), filter.clone());
    let groupings = [
        None,
        Some(Grouping::Region),
        Some(Grouping::Income),
        Some(Grouping::Development),
    ];
    let tables = with_conn(&state, move |conn| {
        let mut out = Vec::new();
        for g in groupings {
            out.push((g, aggregate::response_rates(conn, &s, &f, g)?));
        }
        Ok(out)
    })
    .await?;
    let rate_tables: Vec<Json> = tables
        .into_iter()
        .map(|(g, rows)| {
            let heading = g.map(grouping_label).unwrap_or_else(|| t("results-all", &[]));
            let bars: Vec<(String, f64, String)> = rows
                .iter()
                .map(|r| {
                    let rate = if r.targeted == 0 { 0.0 } else { r.submitted as f64 * 100.0 / r.targeted as f64 };
                    (group_label(&state.countries, g, &r.grp), rate, percent(r.submitted, r.targeted))
                })
                .collect();
            let rows: Vec<Json> = rows
                .iter()
                .map(|r| {
                    json!({
                        "label": group_label(&state.countries, g, &r.grp),
                        "targeted": r.targeted, "invited": r.invited, "opened": r.opened,
                        "drafts": r.drafts, "submitted": r.submitted, "rate": percent(r.submitted, r.targeted),
                    })
                })
                .collect();
            json!({
                "key": g.map(|g| g.key()).unwrap_or("all"),
                "heading": heading,
                "chart": chart(format!("{}: {}", t("results-rate", &[]), heading), &bars),
                "rows": rows,
            })
        })
        .collect();
    let questions: Vec<Json> = survey
        .questions()
        .map(|q| json!({"id": q.id, "text": q.text.get(super::page_language())}))
        .collect();
    let data = merge(
        json!({
            "id": survey.id, "title": survey.title.get(super::page_language()), "page_title": t("results-title", &[]),
            "rate_tables": rate_tables, "questions": questions, "query": query.query_string(&filter),
        }),
        filter_options(&state.countries, &filter, None, false),
    );
    page(&state, &req, "results/dashboard", data, StatusCode::OK)
}

pub async fn question(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: web::Query<ResultsQuery>,
) -> Result<HttpResponse, AppError> {
    let (survey_id, question_id) = path.into_inner();
    let (_, survey) = survey_user(&state, &req, &survey_id).await?;
    let q = survey
        .question(&question_id)
        .cloned()
        .ok_or(AppError::NotFound)?;
    let filter = query.filter(&state.countries, &survey);
    let by = query.by.as_deref().and_then(Grouping::parse);
    let (s, f, qq) = (survey.id.clone(), filter.clone(), q.clone());
    let (asked, counts, stats, dates, texts, others) = with_conn(&state, move |conn| {
        let asked = aggregate::asked_and_answered(conn, &s, &qq.id, &f, by)?;
        let counts = match qq.kind {
            QuestionKind::SingleChoice { .. }
            | QuestionKind::MultipleChoice { .. }
            | QuestionKind::YesNo
            | QuestionKind::Matrix { .. }
            | QuestionKind::Country => aggregate::choice_counts(conn, &s, &qq, &f, by)?,
            _ => Vec::new(),
        };
        let stats = match qq.kind {
            QuestionKind::Integer { .. } | QuestionKind::Decimal { .. } => {
                Some(aggregate::number_stats(conn, &s, &qq.id, &f)?)
            }
            _ => None,
        };
        let dates = match qq.kind {
            QuestionKind::Date { .. } => Some(aggregate::date_range(conn, &s, &qq.id, &f)?),
            _ => None,
        };
        let texts = match qq.kind {
            QuestionKind::ShortText { .. }
            | QuestionKind::LongText { .. }
            | QuestionKind::Email
            | QuestionKind::Url => aggregate::text_answers(conn, &s, &qq.id, false, &f)?,
            _ => Vec::new(),
        };
        let others = if qq.kind.has_other() {
            aggregate::text_answers(conn, &s, &qq.id, true, &f)?
        } else {
            Vec::new()
        };
        Ok((asked, counts, stats, dates, texts, others))
    })
    .await?;
    let label_of = |key: &str| -> String {
        match &q.kind {
            QuestionKind::YesNo => t(key, &[]),
            QuestionKind::Country => state
                .countries
                .get(key)
                .map(|c| c.name_en.clone())
                .unwrap_or_else(|| key.into()),
            QuestionKind::Matrix { rows, scale } => {
                let (r, s) = key.split_once('=').unwrap_or((key, ""));
                let rl = rows
                    .iter()
                    .find(|x| x.code == r)
                    .map(|x| x.label.get(super::page_language()).to_string())
                    .unwrap_or_else(|| r.into());
                let sl = scale
                    .iter()
                    .find(|x| x.code == s)
                    .map(|x| x.label.get(super::page_language()).to_string())
                    .unwrap_or_else(|| s.into());
                format!("{rl}: {sl}")
            }
            _ if key == OTHER_CODE => t("other-specify", &[]),
            _ => q
                .kind
                .options()
                .iter()
                .find(|o| o.code == key)
                .map(|o| o.label.get(super::page_language()).to_string())
                .unwrap_or_else(|| key.into()),
        }
    };
    // The order options are listed in the definition; answers outside it after.
    let order: Vec<String> = match &q.kind {
        QuestionKind::YesNo => vec!["yes".into(), "no".into()],
        QuestionKind::Matrix { rows, scale } => rows
            .iter()
            .flat_map(|r| scale.iter().map(move |s| format!("{}={}", r.code, s.code)))
            .collect(),
        _ => q
            .kind
            .options()
            .iter()
            .map(|o| o.code.clone())
            .chain(std::iter::once(OTHER_CODE.to_string()))
            .collect(),
    };
    let position = |key: &str| order.iter().position(|o| o == key).unwrap_or(usize::MAX);
    let groups: Vec<Json> = asked
        .iter()
        .map(|(grp, (asked, answered))| {
            let mut here: Vec<(String, i64)> = counts.iter().filter(|(g, _, _)| g == grp).map(|(_, k, n)| (k.clone(), *n)).collect();
            here.sort_by_key(|(k, n)| (position(k), -n));
            let rows: Vec<Json> = here
                .iter()
                .map(|(k, n)| json!({"label": label_of(k), "count": n, "percent": percent(*n, *answered)}))
                .collect();
            let label = group_label(&state.countries, by, grp);
            let bars: Vec<(String, f64, String)> = here.iter().map(|(k, n)| (label_of(k), *n as f64, n.to_string())).collect();
            json!({
                "key": format!("g{}", grp.replace(|c: char| !c.is_ascii_alphanumeric(), "")),
                "label": label, "asked": asked, "answered": answered, "counts": rows,
                "chart": (!bars.is_empty()).then(|| chart(format!("{}: {}", q.text.get(super::page_language()), label), &bars)),
            })
        })
        .collect();
    // A breakdown of a choice question: every group in one stacked chart, with the same
    // figures in a cross-table (a matrix has a chart per group instead: its row and scale
    // pairs do not stack into one meaningful bar).
    let breakdown = match (&q.kind, by) {
        (QuestionKind::Matrix { .. }, _) | (_, None) => None,
        _ if counts.is_empty() => None,
        (_, Some(g)) => {
            // Every option answered in some group, in the definition's order.
            let mut keys: Vec<&String> = counts.iter().map(|(_, key, _)| key).collect();
            keys.sort_by(|a, b| position(a).cmp(&position(b)).then(a.cmp(b)));
            keys.dedup();
            let series: Vec<String> = keys.iter().map(|k| label_of(k)).collect();
            let per_group: Vec<(String, Vec<i64>, i64)> = asked
                .iter()
                .map(|(grp, (_, answered))| {
                    let counts_here: Vec<i64> = keys
                        .iter()
                        .map(|k| {
                            counts
                                .iter()
                                .filter(|(g2, key, _)| g2 == grp && key == *k)
                                .map(|(_, _, n)| *n)
                                .sum()
                        })
                        .collect();
                    (
                        group_label(&state.countries, by, grp),
                        counts_here,
                        *answered,
                    )
                })
                .collect();
            let chart_groups: Vec<(&str, &[i64])> = per_group
                .iter()
                .map(|(label, counts_here, _)| (label.as_str(), counts_here.as_slice()))
                .collect();
            let rows: Vec<Json> = per_group
                .iter()
                .map(|(label, counts_here, answered)| {
                    let cells: Vec<String> = counts_here
                        .iter()
                        .map(|n| format!("{n} ({})", percent(*n, *answered)))
                        .collect();
                    json!({"label": label, "answered": answered, "cells": cells})
                })
                .collect();
            Some(json!({
                "key": "stacked",
                "grouping": grouping_label(g),
                "series": series,
                "rows": rows,
                "chart": stacked_chart(
                    format!("{}: {}", q.text.get(super::page_language()), grouping_label(g)),
                    &series,
                    &chart_groups,
                ),
            }))
        }
    };
    let fmt = |n: Option<f64>| n.map(|n| format!("{n}")).unwrap_or_else(|| "–".into());
    let stats = stats
        .map(|s| {
            t(
                "results-stats",
                &[
                    ("count", s.count.to_string()),
                    ("min", fmt(s.min)),
                    ("median", fmt(s.median)),
                    ("max", fmt(s.max)),
                ],
            )
        })
        .or_else(|| {
            dates.map(|(n, lo, hi)| {
                t(
                    "results-dates",
                    &[
                        ("count", n.to_string()),
                        ("min", lo.unwrap_or_default()),
                        ("max", hi.unwrap_or_default()),
                    ],
                )
            })
        });
    let named = |list: Vec<aggregate::TextAnswer>| -> Vec<Json> {
        list.into_iter()
            .map(|a| {
                let country = state
                    .countries
                    .get(&a.iso3)
                    .map(|c| c.name(super::page_language()).to_string())
                    .unwrap_or(a.iso3);
                let who = crate::survey::respondent_name(&a.unit, &country);
                json!({"country": who, "value": a.value})
            })
            .collect()
    };
    let data = merge(
        json!({
            "id": survey.id, "title": survey.title.get(super::page_language()), "page_title": q.text.get(super::page_language()),
            "question_text": q.text.get(super::page_language()), "groups": groups, "stats": stats,
            "breakdown": breakdown,
            "texts": named(texts), "other_texts": named(others), "query": query.query_string(&filter),
        }),
        filter_options(&state.countries, &filter, by, true),
    );
    page(&state, &req, "results/question", data, StatusCode::OK)
}

async fn load_compendium(
    state: &web::Data<AppState>,
    survey: &std::sync::Arc<Survey>,
    filter: &Filter,
) -> Result<Vec<practices::Practice>, AppError> {
    let (app, s, f) = (state.clone(), survey.clone(), filter.clone());
    // The language is read here: the blocking task runs outside the request's scope.
    let lang = super::page_language();
    with_conn(state, move |conn| {
        Ok(practices::compendium(conn, &s, &app.countries, &f, lang)?)
    })
    .await
}

/// Practices on one page of the compendium.
const COMPENDIUM_PAGE: usize = 200;

/// Practices grouped by theme (id, label, practices), in the definition's theme order.
fn by_theme<'a>(
    survey: &'a Survey,
    list: &'a [practices::Practice],
) -> Vec<(&'a str, &'a str, Vec<&'a practices::Practice>)> {
    survey
        .themes
        .iter()
        .map(|th| {
            (
                th.id.as_str(),
                th.label.get(super::page_language()),
                list.iter()
                    .filter(|p| p.themes.contains(&th.id))
                    .collect::<Vec<_>>(),
            )
        })
        .filter(|(_, _, ps)| !ps.is_empty())
        .collect()
}

pub async fn compendium(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ResultsQuery>,
) -> Result<HttpResponse, AppError> {
    let (_, survey) = survey_user(&state, &req, &path).await?;
    let filter = query.filter(&state.countries, &survey);
    let list = load_compendium(&state, &survey, &filter).await?;
    let grouped = by_theme(&survey, &list);
    let base = query.query_string(&filter);
    let link = |theme: Option<&str>, page: usize| {
        let mut q = base.clone();
        let mut add = |part: String| {
            q.push(if q.is_empty() { '?' } else { '&' });
            q.push_str(&part);
        };
        if let Some(th) = theme {
            add(format!("theme={th}"));
        }
        if page > 1 {
            add(format!("page={page}"));
        }
        format!("/admin/surveys/{}/results/compendium{q}", survey.id)
    };
    let chosen = query
        .theme
        .as_deref()
        .filter(|th| survey.themes.iter().any(|x| x.id == *th));
    let theme_links: Vec<Json> = grouped
        .iter()
        .map(|(id, label, ps)| {
            json!({"label": label, "count": ps.len(), "href": link(Some(id), 1), "current": chosen == Some(*id)})
        })
        .collect();
    // A large round (thousands of organisations) would make one page of megabytes: the page
    // shows COMPENDIUM_PAGE practices at a time; the Markdown download has them all.
    let shown: Vec<(&str, &practices::Practice)> = grouped
        .iter()
        .filter(|(id, _, _)| chosen.is_none_or(|c| c == *id))
        .flat_map(|(_, label, ps)| ps.iter().map(move |p| (*label, *p)))
        .collect();
    let pages = shown.len().div_ceil(COMPENDIUM_PAGE).max(1);
    let current = query.page.unwrap_or(1).clamp(1, pages);
    let start = (current - 1) * COMPENDIUM_PAGE;
    let window = &shown[start.min(shown.len())..(start + COMPENDIUM_PAGE).min(shown.len())];
    let mut themes: Vec<Json> = Vec::new();
    for (label, p) in window {
        match themes.last_mut() {
            Some(last) if last["label"] == *label => {
                if let Some(list) = last["practices"].as_array_mut() {
                    list.push(json!(p));
                }
            }
            _ => themes.push(json!({"label": label, "practices": [p]})),
        }
    }
    let data = json!({
        "id": survey.id, "title": survey.title.get(super::page_language()), "page_title": t("results-compendium", &[]),
        "themes": themes, "query": base, "theme_links": theme_links,
        "all_href": link(None, 1), "all_current": chosen.is_none(),
        "showing": (!shown.is_empty()).then(|| t("results-showing", &[
            ("from", (start + 1).to_string()),
            ("to", (start + window.len()).to_string()),
            ("total", shown.len().to_string()),
        ])),
        "previous": (current > 1).then(|| link(chosen, current - 1)),
        "next": (current < pages).then(|| link(chosen, current + 1)),
    });
    page(&state, &req, "results/compendium", data, StatusCode::OK)
}

pub async fn compendium_markdown(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ResultsQuery>,
) -> Result<HttpResponse, AppError> {
    let (_, survey) = survey_user(&state, &req, &path).await?;
    let filter = query.filter(&state.countries, &survey);
    let list = load_compendium(&state, &survey, &filter).await?;
    let md = compendium_markdown_text(&survey, &list);
    Ok(no_store(
        HttpResponse::Ok()
            .content_type("text/markdown; charset=utf-8")
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}-compendium.md\"", survey.id),
            ))
            .body(md),
    ))
}

/// The compendium as Markdown. Every piece of user text (answers, organisation names) is
/// escaped, so an answer cannot add a heading, a link or HTML of its own.
fn compendium_markdown_text(survey: &Survey, list: &[practices::Practice]) -> String {
    use crate::text::markdown;
    let mut md = format!(
        "# {}: {}\n\n",
        markdown::inline(&t("results-compendium", &[])),
        markdown::inline(survey.title.get(super::page_language()))
    );
    for (_, label, ps) in by_theme(survey, list) {
        md.push_str(&format!("## {}\n\n", markdown::inline(label)));
        for p in ps {
            let attribution = t(
                "results-attribution",
                &[
                    ("who", p.attribution.clone()),
                    ("region", p.region.clone()),
                    ("development", p.development.clone()),
                ],
            );
            md.push_str(&format!("### {}\n\n", markdown::inline(&attribution)));
            for (k, v) in &p.related {
                md.push_str(&format!(
                    "- **{}** {}\n",
                    markdown::inline(k),
                    markdown::inline(v)
                ));
            }
            md.push_str(&format!("\n{}\n\n", markdown::block(&p.text)));
        }
    }
    md
}

pub async fn needs(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ResultsQuery>,
) -> Result<HttpResponse, AppError> {
    let (_, survey) = survey_user(&state, &req, &path).await?;
    let filter = query.filter(&state.countries, &survey);
    let (app, s, f) = (state.clone(), survey.clone(), filter.clone());
    let lang = super::page_language();
    let (needs, matches) = with_conn(&state, move |conn| {
        let needs = practices::ranked_needs(conn, &s, &f, lang)?;
        let list = practices::compendium(conn, &s, &app.countries, &f, lang)?;
        let matches = practices::partner_matches(conn, &s, &app.countries, &list, &f, lang)?;
        Ok((needs, matches))
    })
    .await?;
    let theme_label = |id: &Option<String>| {
        id.as_ref()
            .and_then(|id| survey.themes.iter().find(|th| &th.id == id))
            .map(|th| th.label.get(super::page_language()).to_string())
            .unwrap_or_default()
    };
    let name = |iso3: &str| {
        state
            .countries
            .get(iso3)
            .map(|c| c.name_en.clone())
            .unwrap_or_else(|| iso3.into())
    };
    let bars: Vec<(String, f64, String)> = needs
        .iter()
        .take(15)
        .map(|n| (n.label.clone(), n.countries as f64, n.countries.to_string()))
        .collect();
    let rows: Vec<Json> = needs
        .iter()
        .map(|n| {
            let dev: Vec<String> = n.by_development.iter().map(|(k, v)| format!("{}: {v}", group_label(&state.countries, Some(Grouping::Development), k))).collect();
            let reg: Vec<String> = n.by_region.iter().map(|(k, v)| format!("{}: {v}", group_label(&state.countries, Some(Grouping::Region), k))).collect();
            json!({"label": n.label, "theme": theme_label(&n.theme), "level": n.level, "countries": n.countries, "development": dev.join("; "), "regions": reg.join("; ")})
        })
        .collect();
    let matches: Vec<Json> = matches
        .iter()
        .map(|m| {
            let partners: Vec<String> = m.partners.iter().take(5).map(|p| name(&p.iso3)).collect();
            json!({"country": name(&m.iso3), "theme": theme_label(&Some(m.theme.clone())), "need": m.need, "partners": partners.join(", ")})
        })
        .collect();
    let data = merge(
        json!({
            "id": survey.id, "title": survey.title.get(super::page_language()), "page_title": t("results-needs", &[]),
            "needs": rows, "matches": matches, "query": query.query_string(&filter), "key": "needs",
            "chart": (!bars.is_empty()).then(|| chart(t("results-needs", &[]), &bars)),
        }),
        filter_options(&state.countries, &filter, None, false),
    );
    page(&state, &req, "results/needs", data, StatusCode::OK)
}

#[derive(Clone, Copy)]
pub enum Format {
    Csv,
    Codebook,
    Xlsx,
    Json,
}

async fn export_as(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ResultsQuery>,
    format: Format,
) -> Result<HttpResponse, AppError> {
    let (_, survey) = survey_user(&state, &req, &path).await?;
    let filter = query.filter(&state.countries, &survey);
    let s = survey.clone();
    let fail = |e: export::ExportError| AppError::Blocking(e.to_string());
    let bytes = with_conn(&state, move |conn| {
        Ok(match format {
            Format::Codebook => export::codebook_csv(&s).map_err(fail)?.into_bytes(),
            _ => {
                let rows = export::load(conn, &s, &filter).map_err(fail)?;
                match format {
                    Format::Xlsx => export::to_xlsx(&s, &rows).map_err(fail)?,
                    Format::Json => export::to_json(&s, &rows).map_err(fail)?.into_bytes(),
                    _ => export::to_csv(&s, &rows).map_err(fail)?.into_bytes(),
                }
            }
        })
    })
    .await?;
    let id = &survey.id;
    Ok(match format {
        Format::Csv => csv_response(
            String::from_utf8_lossy(&bytes).into_owned(),
            &format!("{id}-responses.csv"),
        ),
        Format::Codebook => csv_response(
            String::from_utf8_lossy(&bytes).into_owned(),
            &format!("{id}-codebook.csv"),
        ),
        Format::Xlsx => no_store(
            HttpResponse::Ok()
                .content_type("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
                .insert_header((
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{id}-responses.xlsx\""),
                ))
                .body(bytes),
        ),
        Format::Json => no_store(
            HttpResponse::Ok()
                .content_type("application/json")
                .insert_header((
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{id}-responses.json\""),
                ))
                .body(bytes),
        ),
    })
}

pub async fn export_csv(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ResultsQuery>,
) -> Result<HttpResponse, AppError> {
    export_as(state, req, path, query, Format::Csv).await
}

pub async fn export_codebook(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ResultsQuery>,
) -> Result<HttpResponse, AppError> {
    export_as(state, req, path, query, Format::Codebook).await
}

pub async fn export_xlsx(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ResultsQuery>,
) -> Result<HttpResponse, AppError> {
    export_as(state, req, path, query, Format::Xlsx).await
}

pub async fn export_json(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ResultsQuery>,
) -> Result<HttpResponse, AppError> {
    export_as(state, req, path, query, Format::Json).await
}

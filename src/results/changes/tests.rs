use std::sync::Arc;

use super::*;
use crate::survey::parse_survey;

const ONE: &str = r#"
id = "r1"
title = "Round one"
closes = 2027-01-01
[[sections]]
id = "s"
title = "S"
[[sections.questions]]
id = "unit"
type = "single_choice"
text = "Where?"
options = [{ code = "pm", label = "PM" }, { code = "mfa", label = "MFA" }, { code = "none", label = "None" }]
[[sections.questions]]
id = "tools"
type = "multiple_choice"
text = "Tools"
options = [{ code = "a", label = "A" }, { code = "b", label = "B" }]
[[sections.questions]]
id = "plan"
type = "yes_no"
text = "Plan?"
[[sections.questions]]
id = "name"
type = "short_text"
text = "Name"
[[sections.questions]]
id = "when"
type = "date"
text = "When"
"#;

const TWO: &str = r#"
id = "r2"
title = "Round two"
closes = 2028-01-01
previous = "r1"
not_carried = ["when"]
[[carry]]
from = "unit"
to = "units"
options = { pm = "head", none = "" }
[[sections]]
id = "s"
title = "S"
[[sections.questions]]
id = "units"
type = "single_choice"
text = "Where?"
options = [{ code = "head", label = "Head" }, { code = "mfa", label = "MFA" }]
[[sections.questions]]
id = "tools"
type = "multiple_choice"
text = "Tools"
options = [{ code = "a", label = "A" }, { code = "b", label = "B" }]
[[sections.questions]]
id = "plan"
type = "yes_no"
text = "Plan?"
[[sections.questions]]
id = "plan_year"
type = "integer"
text = "Since?"
show_if = "plan == 'yes'"
[[sections.questions]]
id = "name"
type = "short_text"
text = "Name"
[[sections.questions]]
id = "when"
type = "date"
text = "When"
[[sections.questions]]
id = "fresh"
type = "yes_no"
text = "New?"
"#;

fn rounds() -> (Survey, Arc<Survey>) {
    let (one, d) = parse_survey("r1.toml", ONE);
    assert!(d.is_empty(), "{d:?}");
    let (two, d) = parse_survey("r2.toml", TWO);
    assert!(d.is_empty(), "{d:?}");
    let (one, mut two) = (Arc::new(one.unwrap()), two.unwrap());
    let (plan, problems) = crate::survey::rounds::plan(&one, &two);
    assert!(problems.is_empty(), "{problems:?}");
    let round = two.previous.as_mut().unwrap();
    round.plan = plan;
    round.definition = Some(one.clone());
    (two, one)
}

fn scalar(v: &str) -> Vec<Item> {
    vec![Item::scalar(v.into(), None)]
}

fn ticked(codes: &[&str]) -> Vec<Item> {
    codes
        .iter()
        .map(|c| Item {
            item: c.to_string(),
            value: "1".into(),
            num: None,
        })
        .collect()
}

fn answers(pairs: &[(&str, Vec<Item>)]) -> Answers {
    pairs
        .iter()
        .map(|(q, i)| (q.to_string(), i.clone()))
        .collect()
}

struct All;
impl CountryCodes for All {
    fn is_country(&self, _: &str) -> bool {
        true
    }
}

fn classes(c: &[Compared]) -> Vec<(&str, Class)> {
    c.iter().map(|c| (c.question.as_str(), c.class)).collect()
}

#[test]
fn every_question_is_classed_against_the_carried_answer() {
    let (two, _) = rounds();
    let r = Rounds::of(&two).unwrap();
    let before = answers(&[
        ("unit", scalar("pm")),
        ("tools", ticked(&["a"])),
        ("plan", scalar("yes")),
        ("name", scalar("MFA desk")),
        ("when", scalar("2008-05-01")),
    ]);
    let now = answers(&[
        ("units", scalar("head")),
        ("tools", ticked(&["a", "b"])),
        ("plan", scalar("no")),
        // Hidden by its condition (plan is no now): not answered.
        ("plan_year", vec![Item::scalar("2005".into(), Some(2005.0))]),
        ("when", scalar("2010-05-01")),
        ("fresh", scalar("yes")),
    ]);
    let out = compare(r, &now, Some(&before), &|q| q == "units", &All);
    assert_eq!(
        classes(&out),
        [
            ("units", Class::ConfirmedUnchanged),
            ("tools", Class::Changed),
            ("plan", Class::Changed),
            ("plan_year", Class::NotAnswered),
            ("name", Class::NoLongerAnswered),
            ("when", Class::NotCarried),
            ("fresh", Class::NewlyAnswered),
        ]
    );
    assert_eq!(out[0].from_question.as_deref(), Some("unit"));
    assert_eq!(out[0].old, Some(scalar("head")));
    assert_eq!(out[5].old_as_given, Some(scalar("2008-05-01")));
    // Not confirmed: unchanged, still to confirm.
    let out = compare(r, &now, Some(&before), &|_| false, &All);
    assert_eq!(out[0].class, Class::Unchanged);
    // An option left behind carries nothing: a new answer counts as newly answered, and the
    // answer as given is kept to show.
    let before = answers(&[("unit", scalar("none"))]);
    let out = compare(r, &now, Some(&before), &|_| false, &All);
    assert_eq!(out[0].class, Class::NewlyAnswered);
    assert_eq!(out[0].old_as_given, Some(scalar("none")));
    // No previous response at all.
    let out = compare(r, &answers(&[]), None, &|_| false, &All);
    assert!(out
        .iter()
        .all(|c| matches!(c.class, Class::NotAnswered | Class::NotCarried)));
}

#[test]
fn movements_are_per_option_and_per_row() {
    let (two, _) = rounds();
    let units = two.question("units").unwrap();
    assert_eq!(
        moves(units, Some(&scalar("head")), Some(&scalar("mfa"))),
        [("".into(), "head".into(), "mfa".into())]
    );
    assert_eq!(
        moves(units, None, Some(&scalar("mfa"))),
        [("".into(), "".into(), "mfa".into())]
    );
    assert!(moves(units, None, None).is_empty());
    let tools = two.question("tools").unwrap();
    assert_eq!(
        moves(tools, Some(&ticked(&["a"])), Some(&ticked(&["b"]))),
        [
            ("a".into(), TICKED.into(), "".into()),
            ("b".into(), "".into(), TICKED.into())
        ]
    );
    let not_known = vec![Item {
        item: "#not_known".into(),
        value: String::new(),
        num: None,
    }];
    assert_eq!(
        moves(units, Some(&not_known), Some(&scalar("mfa"))),
        [("".into(), "#not_known".into(), "mfa".into())]
    );
    assert!(moves(two.question("name").unwrap(), None, Some(&scalar("x"))).is_empty());
}

#[test]
fn overall_counts_classes_and_movement_by_region_and_income() {
    let (two, _) = rounds();
    let r = Rounds::of(&two).unwrap();
    let countries = Countries::load().unwrap();
    let response =
        |iso3: &str, before: Option<Answers>, now: Answers, confirmed: &[&str]| Counted {
            iso3: iso3.into(),
            current: now,
            previous: before,
            confirmed: confirmed.iter().map(|s| s.to_string()).collect(),
        };
    let list = [
        // Sweden (Europe, high income): PM -> MFA.
        response(
            "SWE",
            Some(answers(&[("unit", scalar("pm"))])),
            answers(&[("units", scalar("mfa"))]),
            &[],
        ),
        // Kenya (Africa, low income): MFA confirmed.
        response(
            "KEN",
            Some(answers(&[("unit", scalar("mfa"))])),
            answers(&[("units", scalar("mfa"))]),
            &["units"],
        ),
        // Mexico (Americas, upper middle income): nothing before.
        response("MEX", None, answers(&[("units", scalar("head"))]), &[]),
    ];
    let o = overall(r, &list, &countries);
    assert_eq!(o.responses, 3);
    let units = &o.questions[0];
    assert_eq!(units.count(Class::Changed), 1);
    assert_eq!(units.count(Class::ConfirmedUnchanged), 1);
    assert_eq!(units.count(Class::NewlyAnswered), 1);
    let moved: Vec<(&str, &str, usize)> = units
        .moves
        .iter()
        .map(|((_, f, t), n)| (f.as_str(), t.as_str(), n.all))
        .collect();
    assert_eq!(
        moved,
        [("head", "mfa", 1), ("mfa", "mfa", 1), ("", "head", 1)]
    );
    let head_mfa = &units.moves[0].1;
    assert_eq!(head_mfa.by_region.get("150"), Some(&1));
    assert_eq!(head_mfa.by_income.get("H"), Some(&1));
    assert_eq!(o.regions.len(), 3);
    // The new question: nobody answered it.
    assert_eq!(o.questions[6].count(Class::NotAnswered), 3);
}

#[test]
fn a_matrix_moves_row_by_row_and_a_non_answer_is_a_state() {
    let (s, d) = parse_survey(
        "m.toml",
        r#"
id = "m"
title = "M"
closes = 2027-01-01
[[sections]]
id = "s"
title = "S"
[[sections.questions]]
id = "grid"
type = "matrix"
text = "Grid"
rows = [{ code = "r1", label = "One" }, { code = "r2", label = "Two" }]
scale = [{ code = "lo", label = "Low" }, { code = "hi", label = "High" }]
not_known = {}
"#,
    );
    assert!(d.is_empty(), "{d:?}");
    let s = s.unwrap();
    let grid = s.question("grid").unwrap();
    let cells = |pairs: &[(&str, &str)]| -> Vec<Item> {
        pairs
            .iter()
            .map(|(r, v)| Item {
                item: r.to_string(),
                value: v.to_string(),
                num: None,
            })
            .collect()
    };
    assert_eq!(
        moves(
            grid,
            Some(&cells(&[("r1", "lo"), ("r2", "hi")])),
            Some(&cells(&[("r1", "hi")]))
        ),
        [
            ("r1".into(), "lo".into(), "hi".into()),
            ("r2".into(), "hi".into(), "".into())
        ]
    );
    assert_eq!(
        moves(
            grid,
            Some(&cells(&[("#not_known", "")])),
            Some(&cells(&[("r2", "lo")]))
        ),
        [
            ("".into(), "#not_known".into(), "".into()),
            ("r2".into(), "".into(), "lo".into())
        ]
    );
}

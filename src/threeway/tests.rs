use super::*;
use crate::fields::{self, CUSTOMER_BILLING};
use serde_json::json;

fn field(name: &str) -> &'static Field {
    fields::lookup(CUSTOMER_BILLING, name).unwrap()
}

fn cell<'a>(name: &str, text: &'a str) -> Cell<'a> {
    Cell { field: field(name), text }
}

fn set(name: &str, value: &str) -> Change {
    Change { field: field(name), edit: Edit::Set(value.to_string()) }
}

fn clear(name: &str) -> Change {
    Change { field: field(name), edit: Edit::Clear }
}

/// The snapshot an export read.
fn snapshot() -> Value {
    json!({
        "id": "c1",
        "firstName": "Ana",
        "lastName": "Lind",
        "email": "ana@contoso.com",
        "culture": "en-US",
        "defaultAddress": {
            "country": "NO",
            "city": "Oslo",
            "postalCode": "0150",
            "addressLine1": "Karl Johans gate 1",
            "addressLine2": null,
            "phoneNumber": "0612345678",
            "district": "Sentrum"
        },
        "attributes": {"etag": "snap-1", "objectType": "CustomerBillingProfile"}
    })
}

fn plan(cells: &[Cell<'_>]) -> Planned {
    plan_row(7, &snapshot(), cells, ExcelChanges::Refuse)
}

fn one_problem(planned: &Planned) -> &Problem {
    assert!(planned.changes.is_empty(), "{planned:?}");
    assert_eq!(planned.problems.len(), 1, "{planned:?}");
    &planned.problems[0]
}

#[test]
fn cells_equal_to_the_export_are_no_change_and_cost_nothing() {
    let planned = plan(&[
        cell("firstName", " Ana "),
        cell("email", "ana@contoso.com"),
        cell("culture", "EN-us"),
        cell("defaultAddress.country", "no"),
        cell("defaultAddress.postalCode", "0150"),
        cell("defaultAddress.addressLine2", ""),
        cell("defaultAddress.addressLine3", " "),
        cell("defaultAddress.region", "<clear>"),
    ]);
    assert_eq!(planned, Planned::default(), "equal as the rule writes it; null, absent and empty are one");
}

#[test]
fn a_cell_in_excels_text_formula_is_read_as_its_text() {
    let planned =
        plan(&[cell("defaultAddress.postalCode", "=\"0150\""), cell("defaultAddress.city", "=\"\"\"Oslo\"\"\"")]);
    assert_eq!(planned.changes, [set("defaultAddress.city", "\"Oslo\"")]);
    assert!(planned.problems.is_empty());
}

#[test]
fn a_changed_cell_is_a_set_as_its_rule_writes_it() {
    let planned = plan(&[cell("defaultAddress.city", "Bergen "), cell("defaultAddress.country", "se")]);
    assert_eq!(planned.changes, [set("defaultAddress.city", "Bergen"), set("defaultAddress.country", "SE")]);
    assert!(planned.problems.is_empty());
}

#[test]
fn a_changed_cell_still_passes_its_fields_rule() {
    let planned = plan(&[cell("email", "ana.contoso.com"), cell("defaultAddress.city", "Oslo")]);
    let problem = one_problem(&planned);
    assert_eq!(problem.line, 7);
    assert_eq!(problem.column.as_deref(), Some("email"));
    assert_eq!(problem.value.as_deref(), Some("ana.contoso.com"));
    assert_eq!(problem.message, "not an email address: no @");
}

#[test]
fn a_cell_left_as_exported_is_not_checked_against_its_rule() {
    let mut exported = snapshot();
    exported["email"] = json!("legacy address");
    let planned = plan_row(7, &exported, &[cell("email", "legacy address")], ExcelChanges::Refuse);
    assert_eq!(planned, Planned::default());
}

#[test]
fn an_emptied_cell_clears_the_field() {
    let planned = plan(&[cell("defaultAddress.city", ""), cell("defaultAddress.phoneNumber", "<clear>")]);
    assert_eq!(planned.changes, [clear("defaultAddress.city"), clear("defaultAddress.phoneNumber")]);
    assert!(planned.problems.is_empty());
}

#[test]
fn an_emptied_required_field_is_a_problem_naming_the_exported_value() {
    let problem = one_problem(&plan(&[cell("firstName", "  ")])).clone();
    assert_eq!(problem.column.as_deref(), Some("firstName"));
    assert_eq!(problem.value, None);
    assert_eq!(
        problem.to_string(),
        "line 7, column firstName: the cell was emptied (the export holds \"Ana\"), but firstName cannot be \
         cleared: Partner Center requires a value"
    );
    let problem = one_problem(&plan(&[cell("email", "<clear>")])).clone();
    assert_eq!(problem.value.as_deref(), Some("<clear>"));
}

#[test]
fn a_boolean_or_number_in_the_export_is_compared_as_the_text_a_person_sees() {
    let exported = json!({"firstName": true, "lastName": 42});
    let cells = [cell("firstName", "TRUE"), cell("lastName", "42")];
    assert_eq!(plan_row(2, &exported, &cells, ExcelChanges::Refuse), Planned::default());
}

/// The values Excel really mangles, as the issue lists them: (column, export's value, the value Excel saves).
const MANGLED: &[(&str, &str, &str, Damage)] = &[
    ("defaultAddress.postalCode", "02134", "2134", Damage::LeadingZeros),
    ("defaultAddress.phoneNumber", "0049 30 1234", "49 30 1234", Damage::LeadingZeros),
    ("defaultAddress.phoneNumber", "0049 30 1234", "49301234", Damage::LeadingZeros),
    ("defaultAddress.phoneNumber", "0612345678", "612345678", Damage::LeadingZeros),
    ("defaultAddress.phoneNumber", "4255550100", "4.26E+09", Damage::Scientific),
    ("defaultAddress.phoneNumber", "4255550100", "4.25555E+09", Damage::Scientific),
    ("defaultAddress.phoneNumber", "123456789012", "1.23457E+11", Damage::Scientific),
    ("defaultAddress.phoneNumber", "123456789012", "1,23457E+11", Damage::Scientific),
    ("defaultAddress.phoneNumber", "+491701234567", "4.91701E+11", Damage::Scientific),
    ("defaultAddress.phoneNumber", "9999999", "1E+07", Damage::Scientific),
    ("defaultAddress.addressLine2", "12345678901234567890", "12345678901234500000", Damage::Precision),
    ("defaultAddress.postalCode", "03-04", "2026-03-04", Damage::Date),
    ("defaultAddress.postalCode", "03-04", "3/4/2026", Damage::Date),
    ("defaultAddress.postalCode", "03-04", "04.03.2026", Damage::Date),
    ("defaultAddress.postalCode", "03-04", "4-Mar", Damage::Date),
    ("defaultAddress.postalCode", "03-04", "Mar-04", Damage::Date),
    ("defaultAddress.addressLine2", "1/2", "2-Jan", Damage::Date),
    ("defaultAddress.addressLine2", "Mar 04", "2004-03-01", Damage::Date),
    ("defaultAddress.addressLine2", "1-2-3", "1/2/2003", Damage::Date),
    ("defaultAddress.addressLine2", "1.50", "1.5", Damage::TrailingZeros),
    ("defaultAddress.addressLine2", "2,0", "2", Damage::TrailingZeros),
    ("defaultAddress.addressLine2", "true", "TRUE", Damage::UpperCaseBoolean),
    ("defaultAddress.addressLine2", "False", "FALSE", Damage::UpperCaseBoolean),
    ("defaultAddress.phoneNumber", "+4930123456", "4930123456", Damage::LeadingPlus),
    ("defaultAddress.phoneNumber", "+1-425-555-0100", "-1079", Damage::Formula),
    ("defaultAddress.phoneNumber", "+1 425 555 0100", "#NULL!", Damage::Formula),
    ("defaultAddress.phoneNumber", "=0612345678", "612345678", Damage::Formula),
];

#[test]
fn each_shape_of_excels_damage_is_named() {
    for (_, base, ours, damage) in MANGLED {
        assert_eq!(excel_damage(base, ours), Some(*damage), "{base} → {ours}");
    }
}

#[test]
fn excel_damage_is_refused_with_the_reason_and_the_exported_value() {
    for (column, base, ours, damage) in MANGLED {
        let mut exported = snapshot();
        let path = field(column).path;
        exported[path[0]][path[1]] = json!(base);
        let planned = plan_row(3, &exported, &[cell(column, ours)], ExcelChanges::Refuse);
        let problem = one_problem(&planned);
        assert_eq!((problem.column.as_deref(), problem.value.as_deref()), (Some(*column), Some(*ours)));
        let expected = format!(
            "{damage}, the export holds \"{base}\": put that back, or use --accept-excel-changes if the change is meant"
        );
        assert_eq!(problem.message, expected);
    }
}

#[test]
fn accepted_excel_changes_are_changes_still_held_to_their_rule() {
    let planned = plan_row(3, &snapshot(), &[cell("defaultAddress.postalCode", "150")], ExcelChanges::Accept);
    assert_eq!(planned.changes, [set("defaultAddress.postalCode", "150")]);
    let planned = plan_row(3, &snapshot(), &[cell("defaultAddress.postalCode", "150")], ExcelChanges::Refuse);
    assert_eq!(one_problem(&planned).message.split(',').next(), Some("looks like Excel dropped the leading zeros"));
    let mut exported = snapshot();
    exported["defaultAddress"]["state"] = json!("3-4");
    let planned = plan_row(3, &exported, &[cell("defaultAddress.state", "2026-03-04")], ExcelChanges::Accept);
    assert_eq!(one_problem(&planned).message, "10 characters, more than the 3 allowed");
}

#[test]
fn real_edits_that_merely_look_similar_are_not_damage() {
    let edits = [
        ("02134", "02135"),
        ("02134", "2135"),
        ("02134", "002134"),
        ("0612345678", "0687654321"),
        ("0612345678", "+31 6 1234 5678"),
        ("0612345678", "612345679"),
        ("4255550100", "4255550101"),
        ("4255550100", "4.26E+08"),
        ("4255550100", "4.27E+09"),
        ("123456789012", "1.23456E+11"),
        ("12345678901234567890", "12345678901234567000"),
        ("12345678901234567890", "1234567890123450000"),
        ("03-04", "2026-03-05"),
        ("03-04", "4-Apr"),
        ("03-04", "04-03"),
        ("0304", "2026-03-04"),
        ("20260304", "2026-03-04"),
        ("12-345", "Dec-45"),
        ("Unit 3-4", "2026-03-04"),
        ("1.50", "1.55"),
        ("1.5", "1"),
        ("true", "FALSE"),
        ("yes", "YES"),
        ("Oslo", "OSLO"),
        ("Oslo", "0slo"),
        ("A0150", "A150"),
        ("+4930123456", "+4930123457"),
        ("+4930123456", "4930123457"),
        ("+1-425-555-0100", "+1-425-555-0101"),
        ("+1-425-555-0100", "-1080"),
        ("1-425-555-0100", "-1079"),
        ("-5", "5"),
    ];
    for (base, ours) in edits {
        assert_eq!(excel_damage(base, ours), None, "{base} → {ours}");
    }
}

#[test]
fn theirs_equal_to_the_export_takes_ours_and_keeps_every_other_field_as_it_is_now() {
    let mut theirs = snapshot();
    theirs["email"] = json!("ana@fabrikam.com");
    theirs["defaultAddress"]["district"] = json!("Frogner");
    theirs["attributes"]["etag"] = json!("now-2");
    let changes = [set("defaultAddress.city", "Bergen")];
    let Resolved::Merged(Merged::Changed { profile, changes: written }) =
        resolve(theirs.clone(), &snapshot(), &changes).unwrap()
    else {
        panic!("expected a write")
    };
    assert_eq!(profile["defaultAddress"]["city"], "Bergen");
    assert_eq!(profile["email"], "ana@fabrikam.com", "someone else's change to another field is kept");
    assert_eq!(profile["defaultAddress"]["district"], "Frogner");
    assert_eq!(profile["attributes"]["etag"], "now-2");
    assert_eq!(written[0].before, Some(json!("Oslo")));
}

#[test]
fn theirs_already_ours_is_nothing_to_do_for_that_field() {
    let mut theirs = snapshot();
    theirs["defaultAddress"]["city"] = json!("Bergen");
    let resolved = resolve(theirs.clone(), &snapshot(), &[set("defaultAddress.city", "Bergen")]).unwrap();
    assert_eq!(resolved, Resolved::Merged(Merged::Unchanged));
    theirs["defaultAddress"]["country"] = json!("se");
    let changes = [set("defaultAddress.city", "Bergen"), set("defaultAddress.country", "SE")];
    assert_eq!(resolve(theirs.clone(), &snapshot(), &changes).unwrap(), Resolved::Merged(Merged::Unchanged));
    theirs["defaultAddress"]["phoneNumber"] = json!("");
    let changes = [clear("defaultAddress.phoneNumber"), set("firstName", "Anna")];
    let Resolved::Merged(Merged::Changed { changes: written, .. }) =
        resolve(theirs.clone(), &snapshot(), &changes).unwrap()
    else {
        panic!("expected a write")
    };
    assert_eq!(written.iter().map(|change| change.field).collect::<Vec<_>>(), ["firstName"]);
}

#[test]
fn a_field_someone_else_changed_to_another_value_is_a_conflict_and_the_whole_row_is_not_written() {
    let mut theirs = snapshot();
    theirs["defaultAddress"]["city"] = json!("Bergen");
    let changes = [set("firstName", "Anna"), set("defaultAddress.city", "Trondheim")];
    let resolved = resolve(theirs.clone(), &snapshot(), &changes).unwrap();
    let expected = Conflict {
        field: "defaultAddress.city",
        base: Some(json!("Oslo")),
        theirs: Some(json!("Bergen")),
        ours: Some(json!("Trondheim")),
    };
    assert_eq!(resolved, Resolved::Conflict(vec![expected.clone()]));
    assert_eq!(expected.to_string(), "defaultAddress.city: base \"Oslo\", theirs \"Bergen\", ours \"Trondheim\"");
}

#[test]
fn every_conflict_of_a_row_is_named_with_empty_values_said_so() {
    let mut theirs = snapshot();
    theirs["defaultAddress"]["city"] = json!("Bergen");
    theirs["defaultAddress"]["addressLine2"] = json!("Floor 2");
    theirs["lastName"] = json!("Berg");
    let changes = [clear("defaultAddress.city"), set("defaultAddress.addressLine2", "Floor 3"), set("lastName", "Li")];
    let Resolved::Conflict(conflicts) = resolve(theirs.clone(), &snapshot(), &changes).unwrap() else {
        panic!("expected conflicts")
    };
    assert_eq!(
        describe(&conflicts),
        "changed since the export by someone else, row not written: \
         defaultAddress.city: base \"Oslo\", theirs \"Bergen\", ours empty; \
         defaultAddress.addressLine2: base empty, theirs \"Floor 2\", ours \"Floor 3\"; \
         lastName: base \"Lind\", theirs \"Berg\", ours \"Li\""
    );
}

#[test]
fn an_empty_field_the_service_answers_as_absent_or_null_is_not_someone_elses_change() {
    let mut theirs = snapshot();
    theirs["defaultAddress"].as_object_mut().unwrap().remove("addressLine2");
    let changes = [set("defaultAddress.addressLine2", "Floor 3")];
    assert!(matches!(
        resolve(theirs.clone(), &snapshot(), &changes).unwrap(),
        Resolved::Merged(Merged::Changed { .. })
    ));
    theirs["defaultAddress"]["addressLine2"] = json!("");
    assert!(matches!(
        resolve(theirs.clone(), &snapshot(), &changes).unwrap(),
        Resolved::Merged(Merged::Changed { .. })
    ));
}

#[test]
fn the_first_write_merges_ours_onto_the_snapshot_itself() {
    let planned = plan(&[
        cell("defaultAddress.city", "Bergen"),
        cell("firstName", "Ana"),
        cell("defaultAddress.phoneNumber", ""),
    ]);
    assert!(planned.problems.is_empty(), "{planned:?}");
    let resolved = resolve(snapshot(), &snapshot(), &planned.changes).unwrap();
    assert_eq!(resolved, Resolved::Merged(merge::merge(snapshot(), &planned.changes).unwrap()));
    let Resolved::Merged(Merged::Changed { profile, .. }) = resolved else { panic!("expected a write") };
    assert_eq!(merge::etag(&profile), Some("snap-1"), "written with the snapshot's etag");
}

#[test]
fn a_profile_that_is_not_an_object_is_the_merges_error() {
    let theirs = json!([1, 2]);
    assert_eq!(resolve(theirs.clone(), &snapshot(), &[set("firstName", "Anna")]), Err(MergeError::NotAnObject));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    const MONTH_NAMES: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

    /// Excel's General format of a number of `digits` digits, with a mantissa of `shown` significant digits, as a
    /// decimal `point`; built on the standard library's float formatting, not on the module's own rounding.
    fn excel_scientific(digits: &str, shown: usize, point: char) -> String {
        let number: f64 = digits.parse().unwrap();
        let formatted = format!("{:.*e}", shown - 1, number);
        let (mantissa, exponent) = formatted.split_once('e').unwrap();
        let mantissa =
            if mantissa.contains('.') { mantissa.trim_end_matches('0').trim_end_matches('.') } else { mantissa };
        format!("{}E+{:02}", mantissa.replace('.', &point.to_string()), exponent.parse::<u32>().unwrap())
    }

    /// A base Excel reads as month and day, and each way it writes the date back (this year: 2026).
    fn excel_dates(month: u32, day: u32) -> Vec<String> {
        let name = MONTH_NAMES[month as usize - 1];
        vec![
            format!("2026-{month:02}-{day:02}"),
            format!("{month}/{day}/2026"),
            format!("{day:02}.{month:02}.2026"),
            format!("{day}-{name}"),
            format!("{day}-{name}-26"),
            format!("{name}-{day:02}"),
        ]
    }

    /// Text a field of the catalog may hold, in the shapes exports carry: words, digits with leading zeros,
    /// phone numbers, dates, decimals.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Za-z][A-Za-z ]{0,12}",
            "0[0-9]{2,9}",
            "\\+?[0-9]{2,4} [0-9]{2,4} [0-9]{2,6}",
            "[0-9]{1,2}-[0-9]{1,2}",
            "[0-9]{1,3}\\.[0-9]{1,3}",
            "(true|false|TRUE|False)",
        ]
    }

    proptest! {
        #[test]
        fn the_same_value_is_never_damage(base in value()) {
            prop_assert_eq!(excel_damage(&base, &base), None);
        }

        #[test]
        fn an_export_saved_unedited_plans_no_change_and_no_problem(
            values in proptest::collection::vec(proptest::option::of(value()), CUSTOMER_BILLING.len()),
        ) {
            let mut exported = json!({"id": "c1", "defaultAddress": {}});
            let mut cells = Vec::new();
            for (field, value) in CUSTOMER_BILLING.iter().zip(&values) {
                let Some(value) = value else {
                    cells.push(Cell { field, text: "" });
                    continue;
                };
                match field.path {
                    [key] => exported[key] = json!(value),
                    [parent, key] => exported[parent][key] = json!(value),
                    _ => unreachable!("the catalog's paths are one or two keys deep"),
                }
                cells.push(Cell { field, text: value });
            }
            prop_assert_eq!(plan_row(2, &exported, &cells, ExcelChanges::Refuse), Planned::default());
        }

        #[test]
        fn dropped_leading_zeros_are_flagged(zeros in 1usize..4, rest in "[1-9][0-9]{0,10}") {
            let base = format!("{}{rest}", "0".repeat(zeros));
            let saved = rest.parse::<u64>().unwrap().to_string();
            prop_assert_eq!(excel_damage(&base, &saved), Some(Damage::LeadingZeros));
        }

        #[test]
        fn scientific_notation_is_flagged(digits in "[1-9][0-9]{10,14}", shown in 1usize..=6, comma in any::<bool>()) {
            let saved = excel_scientific(&digits, shown, if comma { ',' } else { '.' });
            prop_assert_eq!(excel_damage(&digits, &saved), Some(Damage::Scientific), "{}", saved);
        }

        #[test]
        fn digits_past_the_fifteenth_turned_to_zeros_are_flagged(digits in "[1-9][0-9]{15,21}") {
            let saved = format!("{}{}", &digits[..15], "0".repeat(digits.len() - 15));
            prop_assume!(saved != digits);
            prop_assert_eq!(excel_damage(&digits, &saved), Some(Damage::Precision));
        }

        #[test]
        fn a_value_turned_into_a_date_is_flagged(month in 1u32..=12, day in 1u32..=28, padded in any::<bool>()) {
            let base = if padded { format!("{month:02}-{day:02}") } else { format!("{month}/{day}") };
            for saved in excel_dates(month, day) {
                prop_assert_eq!(excel_damage(&base, &saved), Some(Damage::Date), "{} → {}", base, saved);
            }
        }

        #[test]
        fn dropped_trailing_zeros_are_flagged(whole in 0u32..1000, fraction in "[0-9]{0,3}[1-9]", zeros in 1usize..4) {
            let base = format!("{whole}.{fraction}{}", "0".repeat(zeros));
            prop_assert_eq!(excel_damage(&base, &format!("{whole}.{fraction}")), Some(Damage::TrailingZeros));
        }

        #[test]
        fn upper_cased_booleans_are_flagged(word in "(true|false)", upper in proptest::collection::vec(any::<bool>(), 5)) {
            let base: String = word
                .chars()
                .zip(upper)
                .map(|(letter, upper)| if upper { letter.to_ascii_uppercase() } else { letter })
                .collect();
            prop_assume!(base != base.to_ascii_uppercase());
            prop_assert_eq!(excel_damage(&base, &base.to_ascii_uppercase()), Some(Damage::UpperCaseBoolean));
        }

        #[test]
        fn a_dropped_plus_is_flagged(digits in "[1-9][0-9]{5,11}") {
            prop_assert_eq!(excel_damage(&format!("+{digits}"), &digits), Some(Damage::LeadingPlus));
        }

        #[test]
        fn a_phone_number_computed_as_a_formula_is_flagged(
            first in 1u32..1000,
            terms in proptest::collection::vec((any::<bool>(), "[0-9]{1,4}"), 1..4),
        ) {
            let mut base = format!("+{first}");
            let mut sum = i64::from(first);
            for (plus, term) in &terms {
                base.push(if *plus { '+' } else { '-' });
                base.push_str(term);
                let value: i64 = term.parse().unwrap();
                sum += if *plus { value } else { -value };
            }
            prop_assert_eq!(excel_damage(&base, &sum.to_string()), Some(Damage::Formula), "{}", base);
        }

        #[test]
        fn one_digit_typed_differently_is_never_damage(base in "0?[0-9]{4,12}", at in any::<prop::sample::Index>(), digit in 0u8..10) {
            let mut edited = base.clone().into_bytes();
            let at = at.index(edited.len());
            edited[at] = b'0' + digit;
            let edited = String::from_utf8(edited).unwrap();
            prop_assume!(edited != base);
            prop_assert_eq!(excel_damage(&base, &edited), None);
        }

        #[test]
        fn others_changes_to_fields_the_row_does_not_change_are_kept_and_conflicts_caught(
            theirs_values in proptest::collection::vec(proptest::option::of("[a-z]{1,6}"), CUSTOMER_BILLING.len()),
            ours_values in proptest::collection::vec(proptest::option::of("[a-z]{1,6}"), CUSTOMER_BILLING.len()),
        ) {
            let base = snapshot();
            let mut theirs = snapshot();
            let mut changes = Vec::new();
            for (index, field) in CUSTOMER_BILLING.iter().enumerate() {
                if let Some(value) = &theirs_values[index] {
                    match field.path {
                        [key] => theirs[key] = json!(value),
                        [parent, key] => theirs[parent][key] = json!(value),
                        _ => unreachable!("the catalog's paths are one or two keys deep"),
                    }
                }
                if let Some(value) = &ours_values[index] {
                    changes.push(Change { field, edit: Edit::Set(value.clone()) });
                }
            }
            let changed_by_others = |change: &Change| {
                let now = merge::slot_at(&theirs, change.field.path);
                now != merge::slot_at(&base, change.field.path) && now != asked(&change.edit)
            };
            match resolve(theirs.clone(), &base, &changes).unwrap() {
                Resolved::Conflict(conflicts) => {
                    let expected: Vec<&str> =
                        changes.iter().filter(|change| changed_by_others(change)).map(|change| change.field.name).collect();
                    let named: Vec<&str> = conflicts.iter().map(|conflict| conflict.field).collect();
                    prop_assert_eq!(named, expected);
                }
                Resolved::Merged(merged) => {
                    prop_assert!(!changes.iter().any(changed_by_others));
                    let written = match merged {
                        Merged::Changed { profile, .. } => profile,
                        Merged::Unchanged => theirs.clone(),
                    };
                    for field in CUSTOMER_BILLING {
                        let ours = changes.iter().find(|change| change.field.name == field.name);
                        let expected = match ours {
                            Some(change) => asked(&change.edit),
                            None => merge::slot_at(&theirs, field.path),
                        };
                        prop_assert_eq!(merge::slot_at(&written, field.path), expected, "{}", field.name);
                    }
                    prop_assert_eq!(&written["defaultAddress"]["district"], &theirs["defaultAddress"]["district"]);
                }
            }
        }
    }
}

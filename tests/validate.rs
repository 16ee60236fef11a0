//! `pcbulk validate`, run as the real binary on the bundled samples and on files made here.

mod common;

use common::{WorkDir, pcbulk, report_rows, sample, stderr, stdout};

const ID: &str = "0b7b8b4c-1d2e-4f5a-9b6c-7d8e9f0a1b2c";

#[test]
fn the_bundled_updates_validate_clean() {
    let path = sample("billing-updates.csv");
    let output = pcbulk(&["validate", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}{}", stdout(&output), stderr(&output));
    assert_eq!(stdout(&output), "");
    assert!(stderr(&output).contains("25 rows, 25 valid, 0 invalid"), "{}", stderr(&output));
}

#[test]
fn every_bad_row_is_named_on_its_own_line_and_no_good_row_is() {
    let work = WorkDir::new();
    let report = work.path("bad.report.csv");
    let path = sample("bad-rows.csv");
    let output = pcbulk(&["validate", path.to_str().unwrap(), "--report", report.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let printed = stdout(&output);
    let flagged: Vec<u64> = printed
        .lines()
        .filter(|line| !line.starts_with("warning: "))
        .map(|line| line.trim_start_matches("line ").split([',', ':']).next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(flagged, (3..=16).collect::<Vec<u64>>(), "{printed}");
    assert!(printed.contains("warning: line 17, column defaultAddress.region"), "{printed}");
    let rows = report_rows(&work.read("bad.report.csv"));
    assert_eq!(rows.len(), 17);
    for (line, status, error) in rows {
        let expected = if [2, 17, 18].contains(&line) { "valid" } else { "invalid" };
        assert_eq!(status, expected, "line {line}: {error}");
        assert_eq!(error.is_empty(), expected == "valid", "line {line}");
    }
}

#[test]
fn a_bad_header_stops_with_exit_1_and_names_the_column() {
    let work = WorkDir::new();
    let path = work.write("typo.csv", format!("customer_id,defaultAddress.cty\n{ID},Paris\n"));
    let output = pcbulk(&["validate", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(text.contains("unknown column \"defaultAddress.cty\": did you mean defaultAddress.city?"), "{text}");
}

#[test]
fn a_missing_file_is_exit_1() {
    let output = pcbulk(&["validate", "/nonexistent/updates.csv"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("cannot read /nonexistent/updates.csv"), "{}", stderr(&output));
}

#[test]
fn semicolons_with_the_delimiter_option() {
    let work = WorkDir::new();
    let path = work
        .write("eu.csv", format!("\u{feff}customer_id;companyName;defaultAddress.city\r\n{ID};Contoso, Ltd;Köln\r\n"));
    let output = pcbulk(&["validate", path.to_str().unwrap(), "--delimiter", ";"]);
    assert_eq!(output.status.code(), Some(0), "{}{}", stdout(&output), stderr(&output));
    let output = pcbulk(&["validate", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "a comma read of a semicolon file has an unknown column");
}

mod properties {
    use pcbulk::input::InputConfig;
    use pcbulk::validate::{self, ValidateConfig};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn no_file_makes_validate_panic(
            header in prop_oneof![Just("customer_id,email,defaultAddress.country\n".to_string()), "[ -~]{0,40}\n"],
            body in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("random.csv");
            let mut bytes = header.into_bytes();
            bytes.extend(body);
            std::fs::write(&path, bytes).unwrap();
            let config = ValidateConfig { csv: path, report: Some(dir.path().join("r.csv")), input: InputConfig::default() };
            let mut out = Vec::new();
            match validate::run(&config, &mut out) {
                Ok(summary) => prop_assert_eq!(summary.rows, summary.valid + summary.invalid),
                Err(error) => prop_assert!(!error.to_string().is_empty()),
            }
        }
    }
}

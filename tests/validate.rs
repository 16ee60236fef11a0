//! `pcbulk validate`, run as the real binary on the bundled samples and on files made here.

use crate::common;

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

/// Issue 19: a spreadsheet's usual mistakes get the fix, once for the file.
#[test]
fn a_file_saved_the_wrong_way_is_told_the_fix_once() {
    let work = WorkDir::new();
    let semicolons = work.write("eu.csv", format!("customer_id;companyName\n{ID};Contoso\n"));
    let output = pcbulk(&["validate", semicolons.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("looks `;`-separated") && stderr(&output).contains("--delimiter ';'"),
        "{}",
        stderr(&output)
    );
    let tabs = work.write("tabs.csv", format!("customer_id\tcompanyName\n{ID}\tContoso\n"));
    let output = pcbulk(&["validate", tabs.to_str().unwrap()]);
    assert!(stderr(&output).contains("--delimiter tab"), "{}", stderr(&output));
    let output = pcbulk(&["validate", tabs.to_str().unwrap(), "--delimiter", "tab"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let output = pcbulk(&["validate", tabs.to_str().unwrap(), "--delimiter", "|"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains(", or ; or tab"), "{}", stderr(&output));
    // UTF-16, as Excel's "Unicode Text" writes it, and Windows-1252, as "CSV (Comma delimited)" does.
    let text = format!("customer_id,companyName\n{ID},Müller\n");
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    let wide = work.write("wide.csv", utf16);
    let latin = work.write("latin.csv", text.replace('ü', "\u{0}").replace('\u{0}', "").into_bytes());
    let mut latin_bytes = std::fs::read(&latin).unwrap();
    let at = latin_bytes.iter().position(|&byte| byte == b'M').unwrap() + 1;
    latin_bytes.insert(at, 0xFC);
    std::fs::write(&latin, latin_bytes).unwrap();
    for (file, encoding, exit) in [(&wide, "UTF-16", 1), (&latin, "Windows-1252", 2)] {
        let output = pcbulk(&["validate", file.to_str().unwrap()]);
        let words = stderr(&output);
        assert_eq!(output.status.code(), Some(exit), "{words}");
        assert!(words.contains(encoding) && words.contains("CSV UTF-8"), "{words}");
        assert_eq!(words.matches("not UTF-8").count(), 1, "once for the file: {words}");
    }
    let output = pcbulk(&["validate", "/nonexistent/updates.csv"]);
    assert_eq!(stderr(&output).matches("os error 2").count(), 1, "the OS error once: {}", stderr(&output));
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
            let config = ValidateConfig {
                csv: path,
                report: Some(dir.path().join("r.csv")),
                input: InputConfig::default(),
                base: None,
                excel: pcbulk::threeway::ExcelChanges::Refuse,
            };
            let mut out = Vec::new();
            match validate::run(&config, &mut out) {
                Ok(summary) => prop_assert_eq!(summary.rows, summary.valid + summary.invalid),
                Err(error) => prop_assert!(!error.to_string().is_empty()),
            }
        }
    }
}

/// Hostile files of many kinds, through the real binary: each ends with exit 0, 1 or 2, never a panic, and an exit 1
/// always says why.
#[test]
fn hostile_files_end_in_a_clear_exit() {
    let work = WorkDir::new();
    let header = "customer_id,email,companyName,defaultAddress.country\n";
    let mut files: Vec<Vec<u8>> = vec![
        b"\xff\xfec\x00u\x00s\x00t\x00".to_vec(), // UTF-16 with its BOM
        [format!("{header}{ID},caf").as_bytes(), b"\xe9@x.com,Caf\xe9,FR\n"].concat(), // Latin-1 é
        format!("{header}{ID},\"unterminated,x,y\n").into_bytes(),
        format!("{header}{ID},a\"b@c.com,\"x\"y\",US\n").into_bytes(),
        format!("{header}\0\0\0\n{ID},\0,\0,\0\n").into_bytes(),
        format!("{header}{ID},,{},US\n", "x".repeat(1_000_000)).into_bytes(),
        b"\n\n\n".to_vec(),
        b"\xef\xbb\xbf".to_vec(),
        b"customer_id\r".to_vec(),
        format!("{header}{}", ",,,\n".repeat(1000)).into_bytes(),
    ];
    let mut state: u64 = 0x5eed;
    for size in [1usize, 7, 64, 300, 4096] {
        for _ in 0..12 {
            let mut bytes = header.as_bytes().to_vec();
            for _ in 0..size {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let pick = (state >> 33) as usize;
                let alphabet: &[u8] = b",;\"\r\n \t<clear>@.-=+0123456789abcdefABCDEF\xc3\xa9\xff\xfe\x00";
                bytes.push(alphabet[pick % alphabet.len()]);
            }
            files.push(bytes);
        }
    }
    for (index, bytes) in files.iter().enumerate() {
        let path = work.write(&format!("hostile-{index}.csv"), bytes);
        let output = pcbulk(&["validate", path.to_str().unwrap()]);
        let code = output.status.code();
        assert!(matches!(code, Some(0..=2)), "file {index}: exit {code:?}: {}", stderr(&output));
        assert!(!stderr(&output).contains("panicked"), "file {index}: {}", stderr(&output));
        if code == Some(1) {
            assert!(stderr(&output).starts_with("error: "), "file {index}: {}", stderr(&output));
        }
    }
}

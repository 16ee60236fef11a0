//! Issue 21: Excel natively. A workbook (`.xlsx`) of changes is read by `validate` and `apply` with the same rules
//! as a CSV and Excel's row numbers; every table pcbulk writes is a workbook when its path ends in `.xlsx`; every CSV
//! it writes starts with a byte-order mark and takes the input's delimiter. The round trip through a real
//! spreadsheet engine is `office.rs`.

use crate::common;

use calamine::{Data, Reader as _, Xlsx};
use common::rig::{self, Rig, count, customer};
use common::{WorkDir, pcbulk, stderr, stdout};
use pcbulk::engine::Mode;
use pcbulk::job::{self, JobError};
use pcbulk::progress::Silent;
use pcbulk::sandbox::Faults;
use pcbulk::state::RowStatus;
use rust_xlsxwriter::Workbook;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

const ID: &str = "0b7b8b4c-1d2e-4f5a-9b6c-7d8e9f0a1b2c";

/// A cell as a person types it into Excel: a number when it looks like one, else text.
enum Cell<'a> {
    Text(&'a str),
    Number(f64),
}

/// Writes a workbook with one sheet per `(name, rows)`, the way a person's Excel would store the cells.
fn write_workbook(path: &Path, sheets: &[(&str, Vec<Vec<Cell>>)]) {
    let mut workbook = Workbook::new();
    for (name, rows) in sheets {
        let sheet = workbook.add_worksheet();
        sheet.set_name(*name).unwrap();
        for (row, cells) in rows.iter().enumerate() {
            for (column, cell) in cells.iter().enumerate() {
                let (row, column) = (row as u32, column as u16);
                match cell {
                    Cell::Text("") => {}
                    Cell::Text(text) => sheet.write_string(row, column, *text).map(|_| ()).unwrap(),
                    Cell::Number(number) => sheet.write_number(row, column, *number).map(|_| ()).unwrap(),
                }
            }
        }
    }
    workbook.save(path).unwrap();
}

/// A workbook's first sheet as text, each cell as calamine reads it.
pub fn sheet_rows(path: &Path) -> Vec<Vec<Data>> {
    let mut book: Xlsx<_> = calamine::open_workbook(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let range = book.worksheet_range_at(0).expect("a sheet").unwrap();
    range.rows().map(<[Data]>::to_vec).collect()
}

/// The `(line, status)` of each row of a report workbook.
fn report_statuses(path: &Path) -> Vec<(f64, String)> {
    let rows = sheet_rows(path);
    let header: Vec<String> = rows[0].iter().map(ToString::to_string).collect();
    let (line, status) = (header.iter().position(|name| name == "line"), header.iter().position(|n| n == "status"));
    let (line, status) = (line.expect("a line column"), status.expect("a status column"));
    let number = |cell: &Data| match cell {
        Data::Float(number) => *number,
        Data::Int(number) => *number as f64,
        other => panic!("the line is a number cell: {other:?}"),
    };
    rows[1..].iter().map(|row| (number(&row[line]), row[status].to_string())).collect()
}

use Cell::{Number, Text};

#[test]
fn a_workbook_of_changes_is_validated_with_excel_row_numbers() {
    let work = WorkDir::new();
    let path = work.path("changes.xlsx");
    let other = "1b7b8b4c-1d2e-4f5a-9b6c-7d8e9f0a1b2c";
    let third = "2b7b8b4c-1d2e-4f5a-9b6c-7d8e9f0a1b2c";
    let rows = vec![
        vec![Text("customer_id"), Text("email"), Text("defaultAddress.postalCode"), Text("")],
        vec![Text(ID), Text("a@contoso.com"), Number(2134.0)],
        vec![Text(other), Text("not an address"), Text("02134")],
        vec![],
        vec![Text(ID), Text("b@contoso.com"), Text("")],
        vec![Text(third), Text(""), Text(""), Text("under no header")],
    ];
    write_workbook(&path, &[("Changes", rows)]);
    let report = work.path("checked.xlsx");
    let output = pcbulk(&["validate", path.to_str().unwrap(), "--report", report.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "{}{}", stdout(&output), stderr(&output));
    let printed = stdout(&output);
    assert!(printed.contains("line 3, column email: value \"not an address\""), "{printed}");
    assert!(printed.contains("line 5, column customer_id"), "{printed}");
    assert!(printed.contains("the same customer as line 2"), "the blank row 4 is skipped, not renumbered: {printed}");
    assert!(printed.contains("line 6, column (no name): value \"under no header\""), "{printed}");
    assert!(!printed.contains("line 2,"), "the postal code typed as a number is the text 2134: {printed}");
    let statuses = report_statuses(&report);
    let expected = [(2.0, "valid"), (3.0, "invalid"), (5.0, "invalid"), (6.0, "invalid")];
    assert_eq!(statuses, expected.map(|(line, status)| (line, status.to_string())));
}

#[test]
fn a_workbook_is_read_from_its_first_sheet_or_the_sheet_named() {
    let work = WorkDir::new();
    let path = work.path("two.xlsx");
    let notes = vec![vec![Text("read me first")]];
    let changes = vec![vec![Text("customer_id"), Text("companyName")], vec![Text(ID), Text("Müller GmbH")]];
    write_workbook(&path, &[("Notes", notes), ("Changes", changes)]);
    let file = path.to_str().unwrap();
    let first = pcbulk(&["validate", file]);
    assert_eq!(first.status.code(), Some(1), "the first sheet is read: {}", stderr(&first));
    assert!(stderr(&first).contains("unknown column \"read me first\""), "{}", stderr(&first));
    let named = pcbulk(&["validate", file, "--sheet", "changes"]);
    assert_eq!(named.status.code(), Some(0), "a sheet is named as in Excel, in any case: {}", stderr(&named));
    assert!(stderr(&named).contains("1 row, 1 valid"), "{}", stderr(&named));
    let missing = pcbulk(&["validate", file, "--sheet", "Sheet9"]);
    assert_eq!(missing.status.code(), Some(1));
    let words = stderr(&missing);
    assert!(words.contains(&format!("{file} has no sheet named \"Sheet9\": its sheets are Notes, Changes")), "{words}");
}

#[test]
fn a_file_that_is_not_a_readable_workbook_is_named_with_the_fix() {
    let work = WorkDir::new();
    let cases = [
        ("text.xlsx", format!("customer_id,companyName\n{ID},Contoso\n").into_bytes(), "not a zip archive"),
        ("broken.xlsx", b"PK\x03\x04 and then nothing a zip holds".to_vec(), "not an Excel workbook"),
        (
            "locked.xlsx",
            [&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1][..], &[0; 504]].concat(),
            "is encrypted (a workbook with a password to open it, or an old .xls)",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = work.write(name, bytes);
        let output = pcbulk(&["validate", path.to_str().unwrap()]);
        let words = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{name}: {words}");
        assert!(words.contains(path.to_str().unwrap()) && words.contains(expected), "{name}: {words}");
    }
    let csv = work.write("plain.csv", format!("customer_id,companyName\n{ID},Contoso\n"));
    let output = pcbulk(&["validate", csv.to_str().unwrap(), "--sheet", "Changes"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("is a CSV, which has no sheets"), "{}", stderr(&output));
}

#[test]
fn every_csv_written_starts_with_a_byte_order_mark_and_takes_the_delimiter_of_its_input() {
    let work = WorkDir::new();
    let path = work.write("eu.csv", format!("customer_id;companyName\n{ID};\"Köln, Süd\"\n"));
    let report = work.path("eu.report.csv");
    let args = ["validate", path.to_str().unwrap(), "--delimiter", ";", "--report", report.to_str().unwrap()];
    let output = pcbulk(&args);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = work.read("eu.report.csv");
    assert!(text.starts_with("\u{feff}line;customer_id;status;"), "{text}");
    let mut reader = csv::ReaderBuilder::new().delimiter(b';').from_reader(&text.as_bytes()[3..]);
    let record = reader.records().next().unwrap().unwrap();
    assert_eq!((&record[0], &record[2]), ("2", "valid"));
}

/// `updates.xlsx` moving customer `i` to `City i` with the postal code `0213i` typed as text, as pcbulk's own
/// workbook stores it.
fn updates_workbook(rig: &Rig, name: &str, rows: usize) -> PathBuf {
    let mut sheet = vec![vec![Text("customer_id"), Text("defaultAddress.city"), Text("defaultAddress.postalCode")]];
    let ids: Vec<String> = (0..rows).map(customer).collect();
    let cities: Vec<String> = (0..rows).map(|index| format!("City {index}")).collect();
    let codes: Vec<String> = (0..rows).map(|index| format!("0213{index}")).collect();
    for index in 0..rows {
        sheet.push(vec![Text(&ids[index]), Text(&cities[index]), Text(&codes[index])]);
    }
    let path = rig.work.path(name);
    write_workbook(&path, &[("Sheet1", sheet)]);
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_reads_a_workbook_writes_its_report_as_one_and_pins_its_bytes() {
    let rig = Rig::start(4, Faults::default(), 1, "").await;
    let workbook = updates_workbook(&rig, "updates.xlsx", 4);
    let (state, report) = (rig.work.path("updates.xlsx.pcbulk.db"), rig.work.path("updates.xlsx.report.xlsx"));
    let config = rig::apply_config(workbook.clone(), state, report, rig.api(500));
    let outcome = rig::apply(&config).await;
    assert_eq!(count(&outcome, RowStatus::Updated), 4, "{:?}", outcome.counts);
    for index in 0..4 {
        let profile = rig.sandbox.customer(&customer(index)).unwrap();
        assert_eq!(profile["defaultAddress"]["postalCode"], format!("0213{index}"), "every digit is applied");
        assert_eq!(profile["defaultAddress"]["city"], format!("City {index}"));
    }
    let statuses = report_statuses(&config.report);
    assert_eq!(statuses, (2..=5).map(|line| (line as f64, "updated".to_string())).collect::<Vec<_>>());

    // The same workbook again: the same job, nothing sent.
    let before = rig.sandbox.counters().total_puts_succeeded();
    let again = rig::apply(&config).await;
    assert_eq!(count(&again, RowStatus::Updated), 4);
    assert_eq!(rig.sandbox.counters().total_puts_succeeded(), before);

    // The workbook saved with one change: its bytes differ, the resume is refused naming the row.
    let mut sheet = vec![vec![Text("customer_id"), Text("defaultAddress.city")]];
    let ids: Vec<String> = (0..4).map(customer).collect();
    for (index, id) in ids.iter().enumerate() {
        sheet.push(vec![Text(id), Text(if index == 2 { "Elsewhere" } else { "City" })]);
    }
    write_workbook(&workbook, &[("Sheet1", sheet)]);
    let refused = job::apply(&config, Arc::new(Silent), CancellationToken::new()).await.unwrap_err();
    assert!(matches!(refused, JobError::InputChanged { .. }), "{refused}");
    assert!(refused.to_string().contains("line 4 (customer"), "{refused}");
}

#[test]
fn a_rehearsal_of_a_workbook_seeds_its_customers_and_reports_in_a_workbook_and_again_in_any_format() {
    let work = WorkDir::new();
    let path = work.path("moves.xlsx");
    let rows = vec![vec![Text("customer_id"), Text("companyName")], vec![Text(ID), Text("Contoso")]];
    write_workbook(&path, &[("Sheet1", rows)]);
    let output = pcbulk(&["apply", path.to_str().unwrap(), "--sandbox"]);
    assert_eq!(output.status.code(), Some(0), "the sandbox is seeded from the workbook: {}", stderr(&output));
    let report = work.path("moves.xlsx.sandbox.report.xlsx");
    assert_eq!(report_statuses(&report), [(2.0, "updated".to_string())]);
    let state = work.path("moves.xlsx.sandbox.pcbulk.db");
    for (name, delimiter) in [("again.csv", ";"), ("again.xlsx", ",")] {
        let out = work.path(name);
        let args =
            ["report", "--state", state.to_str().unwrap(), "--out", out.to_str().unwrap(), "--delimiter", delimiter];
        let output = pcbulk(&args);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    }
    assert!(work.read("again.csv").starts_with("\u{feff}line;customer_id;status"));
    assert_eq!(report_statuses(&work.path("again.xlsx")), [(2.0, "updated".to_string())]);
}

/// A rollback of a workbook's job writes its report as a workbook beside it; `--delimiter` shapes a CSV one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_of_a_workbook_job_reports_in_a_workbook() {
    let rig = Rig::start(3, Faults::default(), 2, "").await;
    let workbook = updates_workbook(&rig, "updates.xlsx", 3);
    let state = rig.work.path("updates.xlsx.pcbulk.db");
    let config = rig::apply_config(workbook.clone(), state.clone(), rig.work.path("r.xlsx"), rig.api(500));
    let outcome = rig::apply(&config).await;
    assert_eq!(count(&outcome, RowStatus::Updated), 3, "{:?}", outcome.counts);
    let rollback = pcbulk::job::rollback::RollbackConfig {
        state,
        report: None,
        mode: Mode::Apply,
        restart: false,
        retry_failed: false,
        api: rig.api(500),
        grace: std::time::Duration::from_secs(30),
        delimiter: b';',
    };
    let outcome = pcbulk::job::rollback::rollback(&rollback, Arc::new(Silent), CancellationToken::new()).await.unwrap();
    assert_eq!(outcome.report, rig.work.path("updates.xlsx.rollback.report.xlsx"));
    let statuses = report_statuses(&outcome.report);
    assert_eq!(statuses, (2..=4).map(|line| (line as f64, "restored".to_string())).collect::<Vec<_>>());
}

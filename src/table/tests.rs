//! The table's unit tests: the CSV as bytes, the workbook read back by calamine and looked at as XML.

use super::*;
use calamine::{Data, Reader, Xlsx};

fn columns() -> Vec<Column> {
    vec![
        Column::new("line", Kind::Number),
        Column::new("status", Kind::Status),
        Column::new("defaultAddress.postalCode", Kind::Text),
        Column::new("#domain", Kind::of_header("#domain")),
    ]
}

#[test]
fn formulas_are_defused() {
    assert_eq!(formula_safe("=1+1"), "'=1+1");
    assert_eq!(formula_safe("+49 30 1234"), "'+49 30 1234");
    assert_eq!(formula_safe("-x"), "'-x");
    assert_eq!(formula_safe("@SUM(A1)"), "'@SUM(A1)");
    assert_eq!(formula_safe("Contoso"), "Contoso");
    assert_eq!(formula_safe(""), "");
}

#[test]
fn a_csv_starts_with_a_byte_order_mark_and_uses_the_delimiter_given() {
    let style = Style { delimiter: b';', formula_safe: true };
    let mut sink = CsvSink::new(Vec::new(), &columns(), style).unwrap();
    sink.write_row(&["2", "updated", "02134", "=contoso.com; or not"]).unwrap();
    let bytes = sink.into_inner().unwrap();
    let expected = "\u{feff}line;status;defaultAddress.postalCode;#domain\n2;updated;02134;\"'=contoso.com; or not\"\n";
    assert_eq!(String::from_utf8(bytes).unwrap(), expected);
}

#[test]
fn a_csv_of_values_keeps_them_as_they_are_when_asked() {
    let style = Style { delimiter: b',', formula_safe: false };
    let mut sink = CsvSink::new(Vec::new(), &columns(), style).unwrap();
    sink.write_row(&["2", "", "+49 30 1234", ""]).unwrap();
    let text = String::from_utf8(sink.into_inner().unwrap()).unwrap();
    assert!(text.ends_with("\n2,,+49 30 1234,\n"), "{text}");
}

#[test]
fn the_format_follows_the_extension() {
    assert_eq!(Format::of(Path::new("out/report.xlsx")), Format::Xlsx);
    assert_eq!(Format::of(Path::new("REPORT.XLSX")), Format::Xlsx);
    assert_eq!(Format::of(Path::new("report.csv")), Format::Csv);
    assert_eq!(Format::of(Path::new("report")), Format::Csv);
    assert_eq!(Format::of(Path::new("report.xlsx.csv")), Format::Csv);
}

/// Writes a workbook of `rows` under [`columns`], returns its path (in `dir`).
fn workbook(dir: &Path, rows: &[[&str; 4]]) -> PathBuf {
    let path = dir.join("table.xlsx");
    let mut table = TableFile::create(&path, &columns(), Style::default()).unwrap();
    for row in rows {
        table.write(row).unwrap();
    }
    assert!(!path.exists(), "the table appears only when whole");
    table.commit().unwrap();
    path
}

fn sheet_xml(path: &Path) -> String {
    let mut archive = zip::ZipArchive::new(fs::File::open(path).unwrap()).unwrap();
    let mut entry = archive.by_name("xl/worksheets/sheet1.xml").unwrap();
    let mut xml = String::new();
    io::Read::read_to_string(&mut entry, &mut xml).unwrap();
    xml
}

#[test]
fn a_workbook_keeps_text_as_text_and_numbers_as_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let rows = [
        ["2", "updated", "02134", "contoso.com"],
        ["3", "failed", "4255551234", "=1+1"],
        ["0012", "pending", "Müller \"M\"\nzweite Zeile", ""],
    ];
    let path = workbook(dir.path(), &rows);
    let mut book: Xlsx<_> = calamine::open_workbook(&path).unwrap();
    let range = book.worksheet_range_at(0).unwrap().unwrap();
    let cell = |row: usize, column: usize| range.get((row, column)).cloned().unwrap_or(Data::Empty);
    assert_eq!(cell(0, 0), Data::String("line".into()));
    assert_eq!(cell(0, 3), Data::String("#domain".into()));
    assert!(matches!(cell(1, 0), Data::Float(2.0) | Data::Int(2)), "{:?}", cell(1, 0));
    assert_eq!(cell(1, 2), Data::String("02134".into()));
    assert_eq!(cell(2, 2), Data::String("4255551234".into()));
    assert_eq!(cell(2, 3), Data::String("=1+1".into()), "a text cell is never a formula, and is not changed");
    assert_eq!(cell(3, 0), Data::String("0012".into()), "a number with a leading zero stays text");
    assert_eq!(cell(3, 2), Data::String("Müller \"M\"\nzweite Zeile".into()));
    assert_eq!(cell(3, 3), Data::Empty);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let left: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|entry| entry.unwrap().file_name()).collect();
    assert_eq!(left, ["table.xlsx"], "no temporary file is left beside the table");
}

#[test]
fn a_workbook_has_its_header_frozen_filtered_and_its_columns_sized_and_coloured() {
    let dir = tempfile::tempdir().unwrap();
    let long = "x".repeat(200);
    let path = workbook(dir.path(), &[["2", "updated", &long, "a"], ["3", "failed", "1", "b"]]);
    let xml = sheet_xml(&path);
    assert!(xml.contains(r#"<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>"#), "{xml}");
    assert!(xml.contains(r#"<autoFilter ref="A1:D3"/>"#), "{xml}");
    // The postal code column is as wide as the widest allowed, the line column as its header and button.
    assert!(xml.contains(r#"<col min="3" max="3" width="62.7109375""#), "{xml}");
    assert!(xml.contains(r#"<col min="1" max="1" width="9.7109375""#), "{xml}");
    let mut archive = zip::ZipArchive::new(fs::File::open(&path).unwrap()).unwrap();
    let mut styles = String::new();
    io::Read::read_to_string(&mut archive.by_name("xl/styles.xml").unwrap(), &mut styles).unwrap();
    for colour in ["FFC6EFCE", "FFFFC7CE", "FFE7E6E6"] {
        assert!(styles.contains(colour), "the status and note colours are in the workbook: {colour} in {styles}");
    }
    assert!(styles.contains(r#"formatCode="@""#) || styles.contains(r#"numFmtId="49""#), "text format: {styles}");
}

#[test]
fn a_value_longer_than_a_cell_holds_is_cut_and_says_so() {
    let long = "é".repeat(MAX_CELL_CHARS + 10);
    let cut_value = xlsx::cut(&long);
    assert_eq!(cut_value.chars().count(), MAX_CELL_CHARS);
    assert!(cut_value.ends_with("characters; the CSV report holds all)"), "{}", &cut_value[cut_value.len() - 80..]);
}

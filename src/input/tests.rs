use super::*;

const ID_A: &str = "0b7b8b4c-1d2e-4f5a-9b6c-7d8e9f0a1b2c";
const ID_B: &str = "1c8c9c5d-2e3f-4a6b-8c7d-8e9fa0b1c2d3";

fn read(text: &str) -> Result<Vec<Record>, FileError> {
    read_with(text.as_bytes(), InputConfig::default())
}

fn read_with(bytes: &[u8], config: InputConfig) -> Result<Vec<Record>, FileError> {
    Reader::new(bytes, config)?.collect()
}

fn problems(record: &Record) -> Vec<String> {
    match &record.validity {
        Validity::Valid(_) => Vec::new(),
        Validity::Invalid(problems) => problems.iter().map(ToString::to_string).collect(),
    }
}

fn valid(record: &Record) -> &ChangeRow {
    match &record.validity {
        Validity::Valid(row) => row,
        Validity::Invalid(problems) => panic!("line {} is invalid: {problems:?}", record.line),
    }
}

#[test]
fn a_valid_row_becomes_typed_changes() {
    let records = read(&format!("customer_id,email,defaultAddress.city\n{ID_A}, ap@contoso.com ,<clear>\n")).unwrap();
    let row = valid(&records[0]);
    assert_eq!(row.line, 2);
    assert_eq!(row.customer_id.to_string(), ID_A);
    assert_eq!(row.changes.len(), 2);
    assert_eq!(row.changes[0].edit, Edit::Set("ap@contoso.com".into()));
    assert_eq!(row.changes[1].field.name, "defaultAddress.city");
    assert_eq!(row.changes[1].edit, Edit::Clear);
}

#[test]
fn empty_cells_leave_fields_alone() {
    let records = read(&format!("customer_id,email,companyName\n{ID_A},,Fabrikam\n")).unwrap();
    let row = valid(&records[0]);
    assert_eq!(row.changes.len(), 1);
    assert_eq!(row.changes[0].field.name, "companyName");
}

#[test]
fn customer_ids_compare_without_regard_to_case() {
    let upper = ID_A.to_ascii_uppercase();
    let records = read(&format!("customer_id,email\n{ID_A},a@b.com\n{upper},c@d.com\n")).unwrap();
    assert!(problems(&records[1])[0].contains("the same customer as line 2"), "{:?}", problems(&records[1]));
    assert_eq!(valid(&records[0]).customer_id, CustomerId::parse(&upper).unwrap());
}

#[test]
fn aliases_of_the_customer_column_and_header_case() {
    for header in ["customerId", "CUSTOMER-TENANT-ID", "Customer_Id"] {
        let records = read(&format!("{header},EMAIL\n{ID_A},a@b.com\n")).unwrap();
        valid(&records[0]);
    }
}

#[test]
fn a_bom_and_semicolons_are_read() {
    let text = format!("\u{feff}customer_id;companyName\n{ID_A};Contoso, Ltd\n");
    let records = read_with(text.as_bytes(), InputConfig { delimiter: b';', sheet: None }).unwrap();
    assert_eq!(valid(&records[0]).changes[0].edit, Edit::Set("Contoso, Ltd".into()));
}

#[test]
fn an_unknown_column_is_named_with_a_suggestion() {
    let error = read(&format!("customer_id,defaultAddress.cty\n{ID_A},Paris\n")).unwrap_err();
    let text = error.to_string();
    assert!(text.contains("unknown column \"defaultAddress.cty\""), "{text}");
    assert!(text.contains("did you mean defaultAddress.city?"), "{text}");
}

#[test]
fn header_problems_are_all_named() {
    let text = read("email,email,colour\n").unwrap_err().to_string();
    assert!(text.contains("column 2 (email) repeats column 1"), "{text}");
    assert!(text.contains("unknown column \"colour\""), "{text}");
    assert!(text.contains("no column names the customer"), "{text}");
    assert!(matches!(read(""), Err(FileError::Empty)));
    assert!(read("customer_id\n").unwrap_err().to_string().contains("no column names a field"));
}

#[test]
fn each_kind_of_bad_row_is_named_on_its_line() {
    let text = format!(
        "customer_id,email,culture,language,defaultAddress.country,defaultAddress.state,defaultAddress.addressLine1\n\
         not-a-guid,a@b.com,,,,,\n\
         {ID_A},a@,,,,,\n\
         {ID_B},,english,,,,\n\
         {ID_B},,,,,,\n\
         6a0e3f1c-9d2b-4c7e-8f5a-1b2c3d4e5f60,,,en-US,UK,,\n\
         7a0e3f1c-9d2b-4c7e-8f5a-1b2c3d4e5f60,,,,,Texas,\n\
         8a0e3f1c-9d2b-4c7e-8f5a-1b2c3d4e5f60,,,,,,{}\n\
         9a0e3f1c-9d2b-4c7e-8f5a-1b2c3d4e5f60,a@b.com\n\
         aa0e3f1c-9d2b-4c7e-8f5a-1b2c3d4e5f60,,,,,,\n",
        "x".repeat(201)
    );
    let records = read(&text).unwrap();
    let first = |index: usize| problems(&records[index]).join(" | ");
    assert!(first(0).starts_with("line 2, column customer_id: value \"not-a-guid\": not a GUID"), "{}", first(0));
    assert!(first(1).starts_with("line 3, column email: value \"a@\": not an email address"), "{}", first(1));
    assert!(first(2).starts_with("line 4, column culture: value \"english\": not a culture"), "{}", first(2));
    assert!(first(3).contains("line 5, column customer_id"), "{}", first(3));
    assert!(first(3).contains("same customer as line 4"), "{}", first(3));
    assert!(first(4).contains("column language: value \"en-US\""), "{}", first(4));
    assert!(
        first(4)
            .contains("column defaultAddress.country: value \"UK\": not an ISO 3166-1 alpha-2 country code: use GB"),
        "{}",
        first(4)
    );
    assert!(
        first(5).contains("line 7, column defaultAddress.state: value \"Texas\": 5 characters, more than the 3"),
        "{}",
        first(5)
    );
    assert!(first(6).contains("line 8, column defaultAddress.addressLine1: value \"xxx"), "{}", first(6));
    assert!(first(6).contains("201 characters, more than the 200 allowed"), "{}", first(6));
    assert_eq!(first(7), "line 9: 2 cells where the header has 7");
    assert_eq!(first(8), "line 10: every field cell is empty: the row changes nothing");
}

#[test]
fn a_cell_that_is_not_utf8_is_named() {
    let mut bytes = format!("customer_id,companyName\n{ID_A},Caf").into_bytes();
    bytes.extend_from_slice(b"\xe9 Paris\n");
    let records = read_with(&bytes, InputConfig::default()).unwrap();
    let text = problems(&records[0]).join("");
    assert!(text.starts_with("line 2, column companyName: value \"Caf\\xE9 Paris\": not valid UTF-8"), "{text}");
}

#[test]
fn quoted_cells_keep_commas_quotes_and_newlines_and_lines_count_from_the_record_start() {
    let text = format!(
        "customer_id,defaultAddress.addressLine1,companyName\r\n\
         {ID_A},\"1 Main St, Suite \"\"B\"\"\",\"Two\nLines\"\r\n\
         {ID_B},x,not-an@\r\n"
    );
    let records = read(&text).unwrap();
    let row = valid(&records[0]);
    assert_eq!(row.changes[0].edit, Edit::Set("1 Main St, Suite \"B\"".into()));
    assert_eq!(row.changes[1].edit, Edit::Set("Two\nLines".into()));
    assert_eq!(records[1].line, 4);
}

#[test]
fn a_control_character_in_a_cell_is_refused() {
    let records = read(&format!("customer_id,companyName\n{ID_A},\"Bell\u{7}\"\n")).unwrap();
    assert!(problems(&records[0])[0].contains("control character U+0007"), "{:?}", problems(&records[0]));
}

#[test]
fn blank_records_are_skipped_and_trailing_unnamed_columns_allowed() {
    let records = read(&format!("customer_id,email,,\n{ID_A},a@b.com,,\n,,,\n\n{ID_B},c@d.com,,x\n")).unwrap();
    assert_eq!(records.len(), 2);
    valid(&records[0]);
    assert!(problems(&records[1])[0].contains("a value under a column with no name"));
}

#[test]
fn clear_is_refused_on_a_required_field() {
    let records = read(&format!("customer_id,defaultAddress.addressLine1\n{ID_A},<CLEAR>\n")).unwrap();
    assert!(problems(&records[0])[0].contains("cannot be cleared"), "{:?}", problems(&records[0]));
}

#[test]
fn a_region_on_a_us_address_is_a_warning_not_an_error() {
    let records = read(&format!("customer_id,defaultAddress.country,defaultAddress.region\n{ID_A},us,West\n")).unwrap();
    valid(&records[0]);
    assert_eq!(records[0].warnings.len(), 1);
    assert!(records[0].warnings[0].to_string().contains("27002"));
}

#[test]
fn customer_id_parsing_is_strict() {
    assert!(CustomerId::parse(ID_A).is_some());
    assert!(CustomerId::parse(&ID_A.replace('-', "")).is_none());
    assert!(CustomerId::parse(&format!("{{{ID_A}}}")).is_none());
    assert!(CustomerId::parse("0b7b8b4c-1d2e-4f5a-9b6c-7d8e9f0a1b2g").is_none());
    assert!(CustomerId::parse("0b7b8b4c-1d2e-4f5a-9b6c_7d8e9f0a1b2c").is_none());
    assert_eq!(CustomerId::parse(&ID_A.to_uppercase()).unwrap().to_string(), ID_A);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn no_bytes_make_the_reader_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(reader) = Reader::new(&bytes[..], InputConfig::default()) {
                for record in reader {
                    let _ = record.map(|record| problems(&record));
                }
            }
        }

        #[test]
        fn no_cells_after_a_good_header_make_it_panic(
            cells in proptest::collection::vec("[a-zA-Z0-9@.,;\"<>\\-\n\r \u{202e}\u{301}]{0,12}", 0..40)
        ) {
            let mut text = String::from("customer_id,email,culture,defaultAddress.country,defaultAddress.state\n");
            for chunk in cells.chunks(5) {
                text.push_str(&chunk.join(","));
                text.push('\n');
            }
            for record in Reader::new(text.as_bytes(), InputConfig::default()).unwrap() {
                let record = record.unwrap();
                prop_assert!(record.line >= 2);
            }
        }
    }
}

#[test]
fn lines_are_exact_across_crlf_blank_lines_and_multi_line_cells() {
    let ids: Vec<String> = (1..=4).map(|n| format!("{n}a0e3f1c-9d2b-4c7e-8f5a-1b2c3d4e5f60")).collect();
    let text = format!(
        "customer_id,companyName\r\n{},\"x\ny\"\r\n\r\n{},c\n\n{},\"1\n2\n3\"\n,\n{},f\n",
        ids[0], ids[1], ids[2], ids[3]
    );
    let lines: Vec<u64> = read(&text).unwrap().iter().map(|record| record.line).collect();
    assert_eq!(lines, [2, 5, 7, 11]);
}

#[test]
fn right_to_left_and_combining_characters_are_values_like_any_other() {
    let hebrew = "\u{5d7}\u{5d1}\u{5e8}\u{5d4} \u{5d1}\u{5e2}\"\u{5de}";
    let combining = "Cafe\u{301} Zu\u{308}rich";
    let text = format!(
        "customer_id,companyName,defaultAddress.city\n{ID_A},\"{}\",{combining}\n",
        hebrew.replace('"', "\"\"")
    );
    let row = valid(&read(&text).unwrap()[0]).clone();
    assert_eq!(row.changes[0].edit, Edit::Set(hebrew.to_string()));
    assert_eq!(row.changes[1].edit, Edit::Set(combining.to_string()));
}

#[test]
fn a_very_long_cell_is_refused_with_its_length_and_a_short_quote() {
    let long = "x".repeat(100_000);
    let records = read(&format!("customer_id,defaultAddress.city\n{ID_A},{long}\n")).unwrap();
    let text = problems(&records[0]).join("");
    assert!(text.contains("100000 characters, more than the 256 allowed"), "{}", &text[..200.min(text.len())]);
    assert!(text.len() < 300, "the message quotes the value short");
}

#[test]
fn without_the_duplicate_check_a_repeated_customer_is_read_like_any_other() {
    let text = format!("customer_id,email\n{ID_A},a@contoso.com\n{ID_A},b@contoso.com\n");
    let records: Vec<Record> = Reader::new(text.as_bytes(), InputConfig::default())
        .unwrap()
        .without_duplicate_check()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(valid(&records[1]).line, 3);
    assert_eq!(valid(&records[1]).customer_id.to_string(), ID_A);
}

#[test]
fn note_columns_are_never_read_as_changes() {
    let text =
        format!("#export,customer_id,#domain,email,# my comment\nab12cd34,{ID_A},=cmd,ap@contoso.com,call back\n");
    let records = read(&text).unwrap();
    let row = valid(&records[0]);
    assert_eq!(row.changes.len(), 1);
    assert_eq!(row.changes[0].field.name, "email");
}

#[test]
fn a_file_of_nothing_but_notes_names_no_field() {
    let error = read(&format!("customer_id,#domain\n{ID_A},contoso.com\n")).unwrap_err();
    assert!(error.to_string().contains("no column names a field"), "{error}");
}

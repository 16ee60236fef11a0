//! A message's shape: what stays of an error message once the values inside it are taken out, so "Customer 1a2b…
//! was not found" for 25 customers is one group of 25 in the top errors, not 25 groups of one. It is also what leaves
//! the machine in a notification: a cell's value (an e-mail address, a postal code) never does.
//!
//! Pure: text in, text out.

use regex::Regex;
use std::sync::LazyLock;

/// Quoted values: `"…"` and `'…'` (a cell's value as the checks quote it).
static QUOTED: LazyLock<Regex> = LazyLock::new(|| {
    // A constant pattern: it compiles (the unit tests hold it).
    Regex::new(r#""[^"]*"|'[^'\s][^']*'"#).expect("a valid pattern")
});

/// E-mail addresses.
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    // A constant pattern: it compiles (the unit tests hold it).
    Regex::new(r"[^\s@<>()]+@[^\s@<>()]+").expect("a valid pattern")
});

/// Words that may hold a value: letters, digits, `-`, `_`, `.`.
static WORD: LazyLock<Regex> = LazyLock::new(|| {
    // A constant pattern: it compiles (the unit tests hold it).
    Regex::new(r"[A-Za-z0-9][A-Za-z0-9_.-]*").expect("a valid pattern")
});

/// The message with its values replaced: quoted values by `"…"`, e-mail addresses by `<email>`, numbers (`404`,
/// `2.5`, `555-0100`) by `<n>`, and ids (a word of 8 characters or more holding 3 digits or more: GUIDs, request
/// ids, hex) by `<id>`. Words without a digit, short ones such as `iso2`, and names such as `addressLine1` stay.
pub fn shape(message: &str) -> String {
    let quoted = QUOTED.replace_all(message, |found: &regex::Captures| {
        if found[0].starts_with('\'') { "'…'" } else { "\"…\"" }.to_string()
    });
    let mailed = EMAIL.replace_all(&quoted, "<email>");
    WORD.replace_all(&mailed, |found: &regex::Captures| word_shape(&found[0])).into_owned()
}

/// A word's shape; a sentence's full stop after it stays.
fn word_shape(word: &str) -> String {
    let core = word.trim_end_matches('.');
    let stop = &word[core.len()..];
    let shaped = if !core.chars().any(|c| c.is_ascii_digit()) {
        core
    } else if core.chars().all(|c| c.is_ascii_digit() || c == '.' || c == '-') {
        "<n>"
    } else if core.len() >= 8 && core.chars().filter(char::is_ascii_digit).count() >= 3 {
        "<id>"
    } else {
        core
    };
    format!("{shaped}{stop}")
}

#[cfg(test)]
mod tests {
    use super::shape;

    #[test]
    fn ids_and_numbers_inside_a_message_make_no_new_shape() {
        let one = shape("Customer 6513270e-269e-4d37-b2a7-4de452e6b438 was not found");
        let two = shape("Customer d23f0824-128b-4f33-8c5c-7fd0a6a3a450 was not found");
        assert_eq!(one, "Customer <id> was not found");
        assert_eq!(one, two);
        assert_eq!(shape("retry after 30 seconds (attempt 2.5)"), "retry after <n> seconds (attempt <n>)");
        assert_eq!(shape("request 0a1b2c3d4e5f failed"), "request <id> failed");
    }

    #[test]
    fn quoted_values_and_addresses_leave_no_trace() {
        assert_eq!(
            shape(r#"column email: value "jane@contoso.com": not an email address"#),
            r#"column email: value "…": not an email address"#
        );
        assert_eq!(shape("mail to jane.doe@contoso.com bounced"), "mail to <email> bounced");
        assert_eq!(shape("phone '+1 425 555 0100' refused"), "phone '…' refused");
        assert_eq!(shape("call 555-0100 now"), "call <n> now");
    }

    #[test]
    fn words_without_values_stay_as_they_are() {
        assert_eq!(shape("service unavailable"), "service unavailable");
        assert_eq!(shape("the iso2 code of US's format"), "the iso2 code of US's format");
        assert_eq!(
            shape("column defaultAddress.addressLine1: too long"),
            "column defaultAddress.addressLine1: too long"
        );
        assert_eq!(shape(""), "");
        assert_eq!(shape("Customer 42 was not found."), "Customer <n> was not found.");
    }
}

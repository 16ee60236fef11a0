//! `--set PATH=VALUE`: parsed and checked against the kind's catalog before any network call.
//!
//! Pure. The same cell rules as the CSV: PATH matched without regard to case, VALUE trimmed, `<clear>` empties the
//! field. Every error names the argument and the value as given.

use super::catalog::{catalog, owned_in, service_owned};
use crate::fields::{self, CLEAR, Field};
use crate::input::{Change, Edit, quote};
use crate::wire::PartnerProfileKind;

/// Why the `--set` arguments were refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AssignmentError {
    #[error("--set {}: {message}", quote(.argument))]
    Invalid {
        /// The argument as given.
        argument: String,
        message: String,
    },
    #[error("nothing to set: give at least one --set PATH=VALUE")]
    Nothing,
}

/// Parses every `--set` argument of a kind into the changes to merge, in the order given.
///
/// All arguments are checked; the first error is returned (each names its argument).
pub fn parse_assignments(kind: PartnerProfileKind, arguments: &[String]) -> Result<Vec<Change>, AssignmentError> {
    let mut changes: Vec<Change> = Vec::with_capacity(arguments.len());
    for argument in arguments {
        let change = parse_assignment(kind, argument)?;
        if changes.iter().any(|earlier| std::ptr::eq(earlier.field, change.field)) {
            let message = format!("{} is set twice: give each field once", change.field.name);
            return Err(AssignmentError::Invalid { argument: argument.clone(), message });
        }
        changes.push(change);
    }
    if changes.is_empty() {
        return Err(AssignmentError::Nothing);
    }
    Ok(changes)
}

/// Parses one `PATH=VALUE`.
pub fn parse_assignment(kind: PartnerProfileKind, argument: &str) -> Result<Change, AssignmentError> {
    let refuse = |message: String| AssignmentError::Invalid { argument: argument.to_string(), message };
    let Some((path, value)) = argument.split_once('=') else {
        return Err(refuse("expected PATH=VALUE, like telephone=4255550100".to_string()));
    };
    let field = find_field(kind, path.trim()).map_err(refuse)?;
    let value = value.trim();
    if value.is_empty() {
        return Err(refuse(format!("no value for {}: to empty the field, give {CLEAR}", field.name)));
    }
    if value == CLEAR {
        field.check_clear().map_err(|error| refuse(error.to_string()))?;
        return Ok(Change { field, edit: Edit::Clear });
    }
    let written = field.check(value).map_err(|error| refuse(error.to_string()))?;
    Ok(Change { field, edit: Edit::Set(written) })
}

/// The field a path names in a kind's catalog, or why there is none.
fn find_field(kind: PartnerProfileKind, path: &str) -> Result<&'static Field, String> {
    if path.is_empty() {
        return Err("no path before =".to_string());
    }
    if service_owned(path) {
        return Err(format!("{path} is owned by Partner Center: cannot be set"));
    }
    if let Some(reason) = owned_in(kind, path) {
        return Err(format!("{path} of the {} profile is owned by Partner Center: {reason}", kind.name()));
    }
    let fields = catalog(kind);
    if let Some(field) = fields::lookup(fields, path) {
        return Ok(field);
    }
    let mut message = format!("no field {path} in the {} profile", kind.name());
    // `suggest` also knows the CSV's customer id columns: only a name of this catalog is worth offering.
    if let Some(near) = fields::suggest(fields, path).filter(|near| fields::lookup(fields, near).is_some()) {
        message.push_str(&format!(": did you mean {near}?"));
    } else {
        let known: Vec<&str> = fields.iter().map(|field| field.name).collect();
        message.push_str(&format!(": known fields are {}", known.join(", ")));
    }
    Err(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    fn error(kind: PartnerProfileKind, argument: &str) -> String {
        parse_assignments(kind, &args(&[argument])).unwrap_err().to_string()
    }

    #[test]
    fn paths_match_without_case_and_values_are_trimmed_and_normalised() {
        let changes =
            parse_assignments(PartnerProfileKind::Billing, &args(&["ADDRESS.COUNTRY= de ", "taxId=<clear>"])).unwrap();
        assert_eq!(changes[0].field.name, "address.country");
        assert_eq!(changes[0].edit, Edit::Set("DE".into()));
        assert_eq!(changes[1].field.name, "taxId");
        assert_eq!(changes[1].edit, Edit::Clear);
        let value_with_equals =
            parse_assignment(PartnerProfileKind::Support, "website=https://x.example/?a=b").unwrap();
        assert_eq!(value_with_equals.edit, Edit::Set("https://x.example/?a=b".into()));
    }

    #[test]
    fn errors_name_the_argument_and_the_value() {
        let message = error(PartnerProfileKind::Billing, "address.country=UK");
        assert_eq!(
            message,
            "--set address.country=UK: not an ISO 3166-1 alpha-2 country code: use GB for the United Kingdom"
        );
        assert!(error(PartnerProfileKind::Support, "telephone=call me").contains("not a telephone number"));
        assert!(error(PartnerProfileKind::Support, "email=").contains("to empty the field, give <clear>"));
        assert!(error(PartnerProfileKind::Support, "email").contains("expected PATH=VALUE"));
        assert!(error(PartnerProfileKind::Billing, "companyName=<clear>").contains("cannot be cleared"));
    }

    #[test]
    fn service_owned_fields_are_refused_by_name() {
        for (kind, argument) in [
            (PartnerProfileKind::LegalBusiness, "vettingStatus=authorized"),
            (PartnerProfileKind::Organization, "tenantid=00000000-0000-0000-0000-000000000000"),
            (PartnerProfileKind::Organization, "id=x"),
            (PartnerProfileKind::Billing, "attributes.etag=1"),
            (PartnerProfileKind::Support, "links.self.uri=/x"),
        ] {
            let message = error(kind, argument);
            assert!(message.contains("owned by Partner Center: cannot be set"), "{message}");
        }
    }

    #[test]
    fn unknown_paths_get_the_nearest_known_one() {
        let message = error(PartnerProfileKind::Billing, "adress.city=Redmond");
        assert!(
            message.ends_with("no field adress.city in the billing profile: did you mean address.city?"),
            "{message}"
        );
        let message = error(PartnerProfileKind::Support, "customerid=1");
        assert!(message.contains("known fields are email, telephone, website"), "{message}");
        assert!(error(PartnerProfileKind::Support, "address.city=x").contains("no field address.city"));
    }

    #[test]
    fn a_field_set_twice_or_nothing_set_is_refused() {
        let twice = parse_assignments(PartnerProfileKind::Support, &args(&["email=a@b.example", "EMAIL=c@d.example"]));
        assert!(twice.unwrap_err().to_string().contains("email is set twice"));
        assert!(parse_assignments(PartnerProfileKind::Support, &[]).is_err());
    }
}

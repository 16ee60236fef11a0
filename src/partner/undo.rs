//! `pcbulk partner undo KIND`: puts back the before-values of the last change recorded in the audit trail for that
//! profile, where the fields still hold what the change wrote; a field someone changed since leaves the profile as
//! found. The undo is written like a `set` (through `crate::write`: read, check, merge, If-Match, audit), so it can
//! be undone in turn.

use super::catalog::catalog;
use super::update::{self, Ended, SetMode, SetOutcome, Trail};
use crate::client::Client;
use crate::merge::FieldChange;
use crate::state::StateFile;
use crate::state::audit::{PartnerOutcome, partner_changes};
use crate::wire::PartnerProfileKind;
use std::io::Write;

#[derive(Debug, thiserror::Error)]
pub enum UndoError {
    #[error("the audit trail holds no change of the {kind} profile made against {base_url} to undo")]
    Nothing { kind: &'static str, base_url: String },
    #[error(
        "change {id} of the {kind} profile is unsettled ({outcome}: its put may or may not have landed); nothing was \
         sent: run the same `pcbulk partner set` again to settle it (it reads the profile and records what it finds)"
    )]
    Unsettled { kind: &'static str, id: i64, outcome: &'static str },
    #[error("the {kind} profile was changed since change {id}: {message}; nothing was sent")]
    Conflict { kind: &'static str, id: i64, message: String },
}

/// What the last recorded change of `kind` wrote, as field changes, with its id. Refused while the newest PUT may or
/// may not have landed: undoing the change before it would skip it.
pub fn last_change(
    state: &StateFile,
    kind: PartnerProfileKind,
    base_url: &str,
) -> anyhow::Result<(i64, Vec<FieldChange>)> {
    let changes = partner_changes(state, kind)?;
    let last = changes
        .into_iter()
        .rev()
        .filter(|change| change.base_url == base_url)
        .find(|change| {
            change.outcome.is_some_and(|outcome| outcome == PartnerOutcome::Updated || outcome.is_unsettled())
        })
        .ok_or_else(|| UndoError::Nothing { kind: kind.name(), base_url: base_url.to_string() })?;
    if let Some(outcome) = last.outcome.filter(|outcome| outcome.is_unsettled()) {
        return Err(UndoError::Unsettled { kind: kind.name(), id: last.id, outcome: outcome.name() }.into());
    }
    Ok((last.id, crate::state::decode_changes(catalog(kind), &last.before, &last.after)))
}

/// Undoes the change `id`, which wrote `written`: puts back its before-values through `update::restore` (read,
/// check, merge, diff, PUT), or says it is already undone, or refuses when a field was changed since.
pub async fn undo(
    client: &Client,
    kind: PartnerProfileKind,
    (id, written): (i64, Vec<FieldChange>),
    mode: SetMode,
    trail: Option<&Trail<'_>>,
    notes: &mut dyn Write,
) -> anyhow::Result<SetOutcome> {
    match update::restore(client, kind, (id, &written), mode, trail, notes).await? {
        Ended::Written(outcome) => Ok(outcome),
        Ended::InPlace => {
            let _ = writeln!(notes, "{} profile: change {id} is already undone", kind.name());
            Ok(SetOutcome::Unchanged)
        }
        Ended::Conflict(message) => Err(UndoError::Conflict { kind: kind.name(), id, message }.into()),
    }
}

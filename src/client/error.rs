//! The errors of an API call, each knowing what the engine should do with it.
//!
//! Never holds a token, a request body or a header value: only statuses, the service's code and description,
//! safe excerpts, and the call's ids.

use super::classify::describe;
use crate::auth::AuthError;
use crate::wire::ErrorCode;
use uuid::Uuid;

/// The ids a call sent: quote them in a support ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallIds {
    /// `MS-RequestId`: the same across retries of one call after a transient failure, new after any other answer.
    pub request_id: Uuid,
    /// `MS-CorrelationId`: fresh per call, the same across its attempts.
    pub correlation_id: Uuid,
}

impl CallIds {
    pub(crate) fn fresh() -> CallIds {
        CallIds { request_id: Uuid::new_v4(), correlation_id: Uuid::new_v4() }
    }
}

/// What the engine does with a failed call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The service refused the request (400, 403, 404, ...): the row fails, no retry.
    Refused,
    /// The profile changed since it was read (409, 412, 400 with code 2055): read again, merge again, put again.
    Stale,
    /// A PUT whose outcome is unknown (it may have landed): settle it by reading again, never by resending.
    OutcomeUnknown,
    /// Transient failures through every attempt (or endless 429s): the row fails for now; a later run may succeed.
    Transient,
    /// The job cannot go on: credentials refused or revoked, a second 401.
    Fatal,
    /// The job was stopped (Ctrl-C) before this request went out, or while a read was on the wire: the row is left
    /// as it was, for the next run.
    Stopped,
}

/// A call that did not succeed. Each carries the ids of its last attempt and the attempts used (429s not counted).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("http {status}: {}", describe(.code.as_ref(), .description))]
    Refused { status: u16, code: Option<ErrorCode>, description: String, ids: CallIds, attempts: u32 },
    #[error("the profile changed since it was read (http {status}): {}", describe(.code.as_ref(), .description))]
    Stale { status: u16, code: Option<ErrorCode>, description: String, ids: CallIds, attempts: u32 },
    /// Only from a PUT: a timeout, a dropped connection, a 408 or a 5xx after the request went out.
    #[error("the put may or may not have landed ({detail}): read the profile again to settle it")]
    OutcomeUnknown { status: Option<u16>, detail: String, ids: CallIds, attempts: u32 },
    #[error("gave up after {attempts} attempts: {detail}")]
    Exhausted { status: Option<u16>, detail: String, ids: CallIds, attempts: u32 },
    #[error("still throttled (429) after {throttles} waits")]
    Throttled { throttles: u32, ids: CallIds, attempts: u32 },
    /// `detail`: the service's words (a safe excerpt).
    #[error("{}", unauthorized_words(.detail))]
    Unauthorized { detail: String, ids: CallIds, attempts: u32 },
    /// No token could be had (`ids` were not sent when `attempts` is 0).
    #[error("no access token: {source}")]
    Auth { source: AuthError, ids: CallIds, attempts: u32 },
    #[error("http {status} with a body that is not json: {excerpt}")]
    Malformed { status: u16, excerpt: String, ids: CallIds, attempts: u32 },
    /// A run that has never had an answer from the service gave up on it ([`crate::outage`]).
    #[error("{detail}")]
    NoService { detail: String, ids: CallIds, attempts: u32 },
    /// This machine could not make the request (out of file descriptors): nothing was sent.
    #[error("{detail}")]
    Local { detail: String, ids: CallIds, attempts: u32 },
    /// The request could not be formed (a path or an etag that cannot go on the wire); nothing was sent.
    #[error("cannot send the request: {detail}")]
    Invalid { detail: String, ids: CallIds },
    /// The job stopped: this request was not sent (or, a read, was abandoned on the wire).
    #[error("the job stopped before the request went out")]
    Stopped { ids: CallIds, attempts: u32 },
}

/// What a second 401 means, in words. From 1 April 2026 Partner Center refuses App+User calls whose token was
/// signed in without multifactor authentication (learn.microsoft.com/partner-center/developer/
/// partner-center-authentication, "Important"); the status and body of that refusal are not documented
/// (unverified): a 401 whose words name MFA is read as that.
fn unauthorized_words(detail: &str) -> String {
    let lower = detail.to_ascii_lowercase();
    let about_mfa = ["mfa", "multifactor", "multi-factor"].iter().any(|word| lower.contains(word));
    let said = if detail.is_empty() { String::new() } else { format!(" (the service said: {detail})") };
    match about_mfa {
        true => format!(
            "unauthorized (401): Partner Center requires multifactor authentication for App+User calls: have the \
             partner admin sign in again with MFA and use the refresh token of that sign-in{said}"
        ),
        false => format!(
            "unauthorized (401) again after renewing the token: the credentials lack access or were revoked{said}"
        ),
    }
}

impl CallError {
    pub fn class(&self) -> ErrorClass {
        match self {
            CallError::Refused { .. } | CallError::Malformed { .. } | CallError::Invalid { .. } => ErrorClass::Refused,
            CallError::Stale { .. } => ErrorClass::Stale,
            CallError::OutcomeUnknown { .. } => ErrorClass::OutcomeUnknown,
            CallError::Exhausted { .. } | CallError::Throttled { .. } => ErrorClass::Transient,
            CallError::Unauthorized { .. } | CallError::NoService { .. } | CallError::Local { .. } => ErrorClass::Fatal,
            CallError::Auth { source, .. } if source.is_fatal() => ErrorClass::Fatal,
            CallError::Auth { .. } => ErrorClass::Transient,
            CallError::Stopped { .. } => ErrorClass::Stopped,
        }
    }

    /// True when the same call may succeed later (transient failures, throttling, a token endpoint that was down).
    pub fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Transient
    }

    /// True when the job must stop (exit 1): credentials refused, revoked or not renewable.
    pub fn is_fatal(&self) -> bool {
        self.class() == ErrorClass::Fatal
    }

    /// True when the job stopped before this call could end: the row is left for the next run.
    pub fn is_stopped(&self) -> bool {
        self.class() == ErrorClass::Stopped
    }

    /// The ids of the last attempt.
    pub fn ids(&self) -> CallIds {
        match self {
            CallError::Refused { ids, .. }
            | CallError::Stale { ids, .. }
            | CallError::OutcomeUnknown { ids, .. }
            | CallError::Exhausted { ids, .. }
            | CallError::Throttled { ids, .. }
            | CallError::Unauthorized { ids, .. }
            | CallError::Auth { ids, .. }
            | CallError::Malformed { ids, .. }
            | CallError::NoService { ids, .. }
            | CallError::Local { ids, .. }
            | CallError::Stopped { ids, .. }
            | CallError::Invalid { ids, .. } => *ids,
        }
    }

    /// The HTTP status of the last answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::Refused { status, .. }
            | CallError::Stale { status, .. }
            | CallError::Malformed { status, .. } => Some(*status),
            CallError::OutcomeUnknown { status, .. } | CallError::Exhausted { status, .. } => *status,
            CallError::Throttled { .. } => Some(429),
            CallError::Unauthorized { .. } => Some(401),
            CallError::Auth { .. }
            | CallError::Invalid { .. }
            | CallError::NoService { .. }
            | CallError::Local { .. }
            | CallError::Stopped { .. } => None,
        }
    }

    /// Requests of this call that counted as attempts (429s do not).
    pub fn attempts(&self) -> u32 {
        match self {
            CallError::Refused { attempts, .. }
            | CallError::Stale { attempts, .. }
            | CallError::OutcomeUnknown { attempts, .. }
            | CallError::Exhausted { attempts, .. }
            | CallError::Throttled { attempts, .. }
            | CallError::Unauthorized { attempts, .. }
            | CallError::Auth { attempts, .. }
            | CallError::Malformed { attempts, .. }
            | CallError::NoService { attempts, .. }
            | CallError::Local { attempts, .. }
            | CallError::Stopped { attempts, .. } => *attempts,
            CallError::Invalid { .. } => 0,
        }
    }

    /// The service's error code, when it sent one.
    pub fn code(&self) -> Option<&ErrorCode> {
        match self {
            CallError::Refused { code, .. } | CallError::Stale { code, .. } => code.as_ref(),
            _ => None,
        }
    }
}

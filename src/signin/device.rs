//! The device authorization grant (RFC 8628; learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code):
//! ask `/devicecode` for a code, tell the user where to enter it, and poll `/token` at the service's interval until
//! the user approves, declines, or the code expires. `authorization_pending` polls on, `slow_down` adds 5 seconds to
//! the interval for good, `expired_token` and `access_denied` end the sign-in with their own message.

use super::{Answer, LoginConfig, SignInError, http_client, post_form};
use crate::wire::{DeviceCodeResponse, SignInTokenResponse, sign_in, token_form};
use std::io::Write;
use std::time::Duration;
use tokio::time::Instant;

/// The interval when the service names none (RFC 8628 section 3.2).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// What `slow_down` adds to the interval (RFC 8628 section 3.5).
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// What to do after one poll that did not give a token.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Poll {
    /// Poll again after this interval.
    Again(Duration),
    /// The sign-in is over without a token.
    Stop(StopReason),
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StopReason {
    Expired,
    Denied,
    Refused { error: String, description: String },
}

/// The next step after the service refused a poll with `error`.
pub(crate) fn next_poll(error: &str, description: &str, interval: Duration) -> Poll {
    match error {
        sign_in::AUTHORIZATION_PENDING => Poll::Again(interval),
        sign_in::SLOW_DOWN => Poll::Again(interval + SLOW_DOWN_STEP),
        sign_in::EXPIRED_TOKEN => Poll::Stop(StopReason::Expired),
        sign_in::ACCESS_DENIED | "authorization_declined" => Poll::Stop(StopReason::Denied),
        _ => Poll::Stop(StopReason::Refused { error: error.to_string(), description: description.to_string() }),
    }
}

/// Signs in with a device code; the instructions go to `out`.
pub async fn sign_in(config: &LoginConfig, out: &mut dyn Write) -> Result<SignInTokenResponse, SignInError> {
    let http = http_client()?;
    let command = config.login_command();
    let url = format!("{}{}", config.authority.trim_end_matches('/'), sign_in::device_code_path(config.tenant.trim()));
    let scope = config.scope();
    let form = [(token_form::CLIENT_ID, config.client_id.as_str()), (sign_in::SCOPE, scope.as_str())];
    let device = match post_form::<DeviceCodeResponse>(&http, &url, &form).await? {
        Answer::Granted(device) => device,
        Answer::Refused { error, description } => return Err(SignInError::Refused { error, description, command }),
    };
    let instructions = format!(
        "to sign in, open {} and enter the code {} (it expires in {} minutes)",
        device.verification_uri,
        device.user_code,
        device.expires_in.0.div_ceil(60)
    );
    // Best effort: the instructions are also the only way to finish, so a failed write will show as a timeout.
    let _ = writeln!(out, "{instructions}");
    let _ = out.flush();
    poll(config, &http, &device, command).await
}

async fn poll(
    config: &LoginConfig,
    http: &reqwest::Client,
    device: &DeviceCodeResponse,
    command: String,
) -> Result<SignInTokenResponse, SignInError> {
    let token_url = config.token_url();
    let deadline = Instant::now() + Duration::from_secs(device.expires_in.0);
    let mut interval = device.interval.map(|seconds| Duration::from_secs(seconds.0)).unwrap_or(DEFAULT_INTERVAL);
    let form = [
        (token_form::GRANT_TYPE, sign_in::GRANT_DEVICE_CODE),
        (token_form::CLIENT_ID, config.client_id.as_str()),
        (sign_in::DEVICE_CODE, device.device_code.as_str()),
    ];
    loop {
        tokio::time::sleep(interval).await;
        if Instant::now() >= deadline {
            return Err(SignInError::DeviceCodeExpired { command });
        }
        let (error, description) = match post_form::<SignInTokenResponse>(http, &token_url, &form).await {
            Ok(Answer::Granted(answer)) => return Ok(answer),
            Ok(Answer::Refused { error, description }) => (error, description),
            Err(SignInError::Unavailable(reason)) => {
                tracing::warn!(%reason, "the token endpoint failed while waiting for the device sign-in; polling on");
                continue;
            }
            Err(other) => return Err(other),
        };
        match next_poll(&error, &description, interval) {
            Poll::Again(next) => {
                if next > interval {
                    tracing::info!(interval_secs = next.as_secs(), "the service asked to slow down (slow_down)");
                }
                interval = next;
            }
            Poll::Stop(StopReason::Expired) => return Err(SignInError::DeviceCodeExpired { command }),
            Poll::Stop(StopReason::Denied) => return Err(SignInError::DeviceCodeDenied { command }),
            Poll::Stop(StopReason::Refused { error, description }) => {
                return Err(SignInError::Refused { error, description, command });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_poll_answer_is_handled_by_name() {
        let five = Duration::from_secs(5);
        assert_eq!(next_poll("authorization_pending", "", five), Poll::Again(five));
        assert_eq!(next_poll("slow_down", "", five), Poll::Again(Duration::from_secs(10)));
        assert_eq!(next_poll("expired_token", "", five), Poll::Stop(StopReason::Expired));
        assert_eq!(next_poll("access_denied", "", five), Poll::Stop(StopReason::Denied));
        assert!(matches!(next_poll("invalid_client", "AADSTS700016", five), Poll::Stop(StopReason::Refused { .. })));
    }
}

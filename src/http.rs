//! What every HTTP caller of pcbulk shares (the API client, the token endpoint, the sign-in flows): the base-URL
//! policy (https, or http on loopback only), a transport failure in words, and safe excerpts of odd bodies. A leaf:
//! it knows URLs and reqwest's errors, nothing of the API, tokens or rows.

use url::Url;

/// The most characters of a non-JSON body kept in an error.
const EXCERPT_MAX: usize = 200;

/// A base URL (or authority) that pcbulk will not talk to.
#[derive(Debug, thiserror::Error)]
#[error("base url {url:?}: {reason}")]
pub struct BaseUrlError {
    pub url: String,
    pub reason: String,
}

/// Checks an API root (or a token authority): `https://` anywhere; `http://` only on a loopback host
/// (`127.0.0.0/8`, `[::1]`, `localhost`); no user name or password in it; no query or fragment.
pub fn validate_base_url(raw: &str) -> Result<Url, BaseUrlError> {
    let refuse = |reason: &str| BaseUrlError { url: raw.to_string(), reason: reason.to_string() };
    let url = Url::parse(raw.trim()).map_err(|error| refuse(&format!("not a url ({error})")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("must not carry a user name or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(refuse("must not carry a query or a fragment"));
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(address)) => address.is_loopback(),
        Some(url::Host::Ipv6(address)) => address.is_loopback(),
        None => return Err(refuse("has no host")),
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        "http" => {
            Err(refuse("http:// is allowed only for a loopback host (127.0.0.1, [::1], localhost): use https://"))
        }
        _ => Err(refuse("the scheme must be https")),
    }
}

/// What went wrong on the wire, in words (no URL, no header, no body).
pub(crate) fn describe_transport(error: &reqwest::Error) -> String {
    let connect;
    let kind = if error.is_connect() {
        // Named as such, with the host and port: "cannot connect to 127.0.0.1:9: connection refused".
        let place = error.url().map(|url| {
            let host = url.host_str().unwrap_or("?");
            url.port_or_known_default().map_or_else(|| host.to_string(), |port| format!("{host}:{port}"))
        });
        connect = format!("cannot connect to {}", place.as_deref().unwrap_or("the server"));
        connect.as_str()
    } else if error.is_timeout() {
        "timed out"
    } else if error.is_body() || error.is_decode() {
        "connection dropped while reading the answer"
    } else if error.is_request() {
        "connection dropped before an answer"
    } else {
        "transport error"
    };
    let mut innermost = std::error::Error::source(error);
    while let Some(deeper) = innermost.and_then(std::error::Error::source) {
        innermost = Some(deeper);
    }
    match innermost {
        Some(cause) => format!("{kind}: {}", lowercase_first(&excerpt(cause.to_string().as_bytes()))),
        None => kind.to_string(),
    }
}

/// "Connection refused (os error 111)" → "connection refused (os error 111)": errors read lowercase.
fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A short, printable excerpt of a body that is not the JSON expected (a proxy's HTML page, say).
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let shown = squeeze(&text, EXCERPT_MAX);
    if shown.is_empty() { "(empty body)".to_string() } else { shown }
}

/// Control characters and runs of white space become one space; cut at `max` characters, with an ellipsis.
pub(crate) fn squeeze(text: &str, max: usize) -> String {
    let words: Vec<&str> =
        text.split(|c: char| c.is_whitespace() || c.is_control()).filter(|w| !w.is_empty()).collect();
    let joined = words.join(" ");
    if joined.chars().count() <= max {
        return joined;
    }
    let mut cut: String = joined.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

/// Whether a request failed because this process may open no more files (EMFILE) or the system no more (ENFILE).
pub(crate) fn out_of_descriptors(error: &reqwest::Error) -> bool {
    const EMFILE: i32 = 24;
    const ENFILE: i32 = 23;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(current) = cause {
        if let Some(io) = current.downcast_ref::<std::io::Error>()
            && matches!(io.raw_os_error(), Some(EMFILE | ENFILE))
        {
            return true;
        }
        cause = current.source();
    }
    false
}

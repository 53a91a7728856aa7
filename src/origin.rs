//! Origins (`scheme://host[:port]`) and rewriting them, so that URLs in recorded answers lead
//! clients back through the proxy instead of to the upstream.

use std::borrow::Cow;

use http::uri::{Authority, Scheme};
use http::Uri;

/// A normalized origin: lower-case scheme and host, no default port, no trailing slash. An
/// origin that is searched for (the upstream's, in every header value and body that passes
/// through) prepares its substring searcher once, on first use; one that is only written (the
/// client's, made for each request) never pays for it.
#[derive(Clone, Debug)]
pub struct Origin {
    text: String,
    finder: std::sync::OnceLock<memchr::memmem::Finder<'static>>,
}

impl PartialEq for Origin {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Origin {}

impl Origin {
    pub fn new(scheme: &Scheme, authority: &Authority) -> Self {
        let scheme = scheme.as_str();
        let host = authority.host();
        let mut text = String::with_capacity(scheme.len() + 3 + authority.as_str().len());
        text.push_str(scheme);
        text.push_str("://");
        text.push_str(host);
        text.make_ascii_lowercase();
        let default_port = match text.split_once(':').map(|(scheme, _)| scheme) {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        };
        if let Some(port) = authority
            .port_u16()
            .filter(|port| Some(*port) != default_port)
        {
            text.push(':');
            text.push_str(itoa::Buffer::new().format(port));
        }
        Self {
            text,
            finder: std::sync::OnceLock::new(),
        }
    }

    /// The origin of an absolute URI, if it has a scheme and a host.
    pub fn of_uri(uri: &Uri) -> Option<Self> {
        Some(Self::new(uri.scheme()?, uri.authority()?))
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `haystack` with this origin replaced by `to` wherever it ends (see [`replace_origin`]);
    /// `None` when it does not occur.
    pub fn replace_in_bytes(&self, haystack: &[u8], to: &str) -> Option<Vec<u8>> {
        // Most header values are shorter than an origin, or have no `:` (every origin has
        // `://`): no search needed. Each captured answer asks this of every header value.
        if haystack.len() < self.text.len() || memchr::memchr(b':', haystack).is_none() {
            return None;
        }
        replace_found(
            haystack,
            self.text.len(),
            self.finder
                .get_or_init(|| memchr::memmem::Finder::new(self.text.as_bytes()).into_owned())
                .find_iter(haystack),
            to,
        )
    }

    /// As [`Origin::replace_in_bytes`], on text.
    pub fn replace_in<'a>(&self, text: &'a str, to: &str) -> Cow<'a, str> {
        match self.replace_in_bytes(text.as_bytes(), to) {
            Some(bytes) => Cow::Owned(String::from_utf8(bytes).unwrap_or_else(|_| text.to_owned())),
            None => Cow::Borrowed(text),
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Replaces every occurrence of the origin `from` in `text` by `to`, but only where the origin
/// ends (`https://ghes.example.com` is not rewritten inside `https://ghes.example.com.evil`, nor
/// `http://h:80` inside `http://h:8080`).
pub fn replace_origin<'a>(text: &'a str, from: &str, to: &str) -> Cow<'a, str> {
    match replace_origin_bytes(text.as_bytes(), from, to) {
        // Replacing a whole UTF-8 string by another at char boundaries keeps it UTF-8.
        Some(bytes) => Cow::Owned(String::from_utf8(bytes).unwrap_or_else(|_| text.to_owned())),
        None => Cow::Borrowed(text),
    }
}

/// As [`replace_origin`], on bytes; `None` when nothing was replaced.
pub fn replace_origin_bytes(haystack: &[u8], from: &str, to: &str) -> Option<Vec<u8>> {
    if from.is_empty() {
        return None;
    }
    replace_found(
        haystack,
        from.len(),
        memchr::memmem::find_iter(haystack, from.as_bytes()),
        to,
    )
}

/// Replaces the matches at `found` (each `len` bytes long) that end an origin.
fn replace_found(
    haystack: &[u8],
    len: usize,
    found: impl Iterator<Item = usize>,
    to: &str,
) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    for start in found {
        let end = start + len;
        if start < copied || !ends_origin(haystack.get(end).copied()) {
            continue;
        }
        let buf = out.get_or_insert_with(|| Vec::with_capacity(haystack.len()));
        buf.extend_from_slice(&haystack[copied..start]);
        buf.extend_from_slice(to.as_bytes());
        copied = end;
    }
    out.map(|mut buf| {
        buf.extend_from_slice(&haystack[copied..]);
        buf
    })
}

fn ends_origin(next: Option<u8>) -> bool {
    !matches!(next, Some(b) if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_' | b'@'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_drops_default_port_and_lowercases() {
        let uri: Uri = "HTTPS://GHES.Example.com:443/api/v3".parse().unwrap();
        assert_eq!(
            Origin::of_uri(&uri).unwrap().as_str(),
            "https://ghes.example.com"
        );
        let uri: Uri = "http://127.0.0.1:8080".parse().unwrap();
        assert_eq!(
            Origin::of_uri(&uri).unwrap().as_str(),
            "http://127.0.0.1:8080"
        );
    }

    #[test]
    fn replaces_only_whole_origins() {
        let text = r#"{"url":"http://h:80/a","x":"http://h:8080/b","y":"http://h:80","z":"http://h:80.evil/"}"#;
        assert_eq!(
            replace_origin(text, "http://h:80", "{{origin}}"),
            r#"{"url":"{{origin}}/a","x":"http://h:8080/b","y":"{{origin}}","z":"http://h:80.evil/"}"#
        );
        assert!(matches!(
            replace_origin("nothing here", "http://h", "x"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn link_headers_are_rewritten() {
        let link = r#"<https://ghes.example.com/api/v3/authorizations?page=2>; rel="next", <https://ghes.example.com/api/v3/authorizations?page=3>; rel="last""#;
        let out = replace_origin(link, "https://ghes.example.com", "http://127.0.0.1:9");
        assert_eq!(out.matches("http://127.0.0.1:9/api/v3/").count(), 2);
    }
}

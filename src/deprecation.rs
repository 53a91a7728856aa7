//! Deprecation headers for the OAuth Authorizations API: `Deprecation` (RFC 9745, an
//! `@epoch` structured date), `Sunset` (RFC 8594, an HTTP-date) and a `Link` with
//! `rel="deprecation"`, appended to any pagination `Link` with a comma, never replacing it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{HeaderMap, HeaderName, HeaderValue, LINK};

/// 2020-02-14T00:00:00Z: GitHub deprecated the API.
pub const DEFAULT_DEPRECATION: u64 = 1_581_638_400;
/// 2020-11-13T16:00:00Z: GitHub removed it from github.com.
pub const DEFAULT_SUNSET: u64 = 1_605_283_200;
/// GitHub's announcement.
pub const DEFAULT_LINK: &str =
    "https://developer.github.com/changes/2020-02-14-deprecating-oauth-auth-endpoint/";

const DEPRECATION: HeaderName = HeaderName::from_static("deprecation");
const SUNSET: HeaderName = HeaderName::from_static("sunset");

/// The three headers, formatted once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeprecationHeaders {
    deprecation: String,
    sunset: String,
    /// One link-value: `<url>; rel="deprecation"; type="text/html"`.
    link: String,
    /// The three as header values, for replay to share among its answers.
    values: Option<[HeaderValue; 3]>,
}

/// Why the dates cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DeprecationError {
    #[error("{flag} {value:?} is not an RFC 3339 date (e.g. {flag} 2020-02-14T00:00:00Z, or 2020-02-14)")]
    Date { flag: &'static str, value: String },
    #[error("--sunset-date {sunset} is earlier than --deprecation-date {deprecation} (RFC 9745 §4 forbids it)")]
    SunsetFirst { deprecation: String, sunset: String },
    #[error("--deprecation-link {0:?} is not an absolute http(s) URL")]
    Link(String),
}

impl Default for DeprecationHeaders {
    fn default() -> Self {
        Self::new(DEFAULT_DEPRECATION, DEFAULT_SUNSET, DEFAULT_LINK)
    }
}

impl DeprecationHeaders {
    /// From Unix times and the documentation URL.
    pub fn new(deprecation: u64, sunset: u64, link: &str) -> Self {
        let deprecation = format!("@{deprecation}");
        let sunset = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(sunset));
        let link = format!("<{link}>; rel=\"deprecation\"; type=\"text/html\"");
        let value = |text: &str| HeaderValue::from_str(text).ok();
        let values = value(&deprecation)
            .zip(value(&sunset))
            .zip(value(&link))
            .map(|((deprecation, sunset), link)| [deprecation, sunset, link]);
        Self {
            deprecation,
            sunset,
            link,
            values,
        }
    }

    /// `name: value` as a header, when it is one of these as [`Self::apply_to_list`] adds it:
    /// one name and value that every replayed answer shares, instead of a copy each.
    pub fn shared(&self, name: &str, value: &str) -> Option<(HeaderName, HeaderValue)> {
        let [deprecation, sunset, link] = self.values.as_ref()?;
        if name.eq_ignore_ascii_case("deprecation") && value == self.deprecation {
            Some((DEPRECATION, deprecation.clone()))
        } else if name.eq_ignore_ascii_case("sunset") && value == self.sunset {
            Some((SUNSET, sunset.clone()))
        } else if name.eq_ignore_ascii_case("link") && value == self.link {
            Some((LINK, link.clone()))
        } else {
            None
        }
    }

    /// From the command line's RFC 3339 dates (a bare date means midnight UTC).
    ///
    /// # Errors
    /// A [`DeprecationError`] saying which flag is wrong.
    pub fn from_flags(
        deprecation: Option<&str>,
        sunset: Option<&str>,
        link: Option<&str>,
    ) -> Result<Self, DeprecationError> {
        let deprecation_at = match deprecation {
            Some(value) => parse_date("--deprecation-date", value)?,
            None => DEFAULT_DEPRECATION,
        };
        let sunset_at = match sunset {
            Some(value) => parse_date("--sunset-date", value)?,
            None => DEFAULT_SUNSET,
        };
        if sunset_at < deprecation_at {
            return Err(DeprecationError::SunsetFirst {
                deprecation: deprecation.unwrap_or("2020-02-14").to_owned(),
                sunset: sunset.unwrap_or("2020-11-13T16:00:00Z").to_owned(),
            });
        }
        let link = link.unwrap_or(DEFAULT_LINK);
        let absolute = link.parse::<http::Uri>().is_ok_and(|uri| {
            matches!(uri.scheme_str(), Some("http" | "https")) && uri.authority().is_some()
        });
        if !absolute || link.contains(['<', '>', '"']) {
            return Err(DeprecationError::Link(link.to_owned()));
        }
        Ok(Self::new(deprecation_at, sunset_at, link))
    }

    /// Adds the headers to a recorded header list, keeping any the recording already has.
    pub fn apply_to_list(&self, headers: &mut Vec<(String, String)>) {
        let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
        let (has_deprecation, has_sunset) = (has("deprecation"), has("sunset"));
        let links_deprecation = headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("link") && v.contains("rel=\"deprecation\""));
        if !links_deprecation {
            match headers
                .iter_mut()
                .rev()
                .find(|(n, _)| n.eq_ignore_ascii_case("link"))
            {
                Some((_, value)) => *value = format!("{value}, {}", self.link),
                None => headers.push(("link".to_owned(), self.link.clone())),
            }
        }
        if !has_deprecation {
            headers.push(("deprecation".to_owned(), self.deprecation.clone()));
        }
        if !has_sunset {
            headers.push(("sunset".to_owned(), self.sunset.clone()));
        }
    }

    /// Adds the headers to a live answer, keeping any the upstream sent.
    pub fn apply_to_map(&self, headers: &mut HeaderMap) {
        let mut list: Vec<(String, String)> = headers
            .iter()
            .filter(|(name, _)| [LINK, DEPRECATION, SUNSET].contains(name))
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        self.apply_to_list(&mut list);
        for name in [LINK, DEPRECATION, SUNSET] {
            headers.remove(&name);
        }
        for (name, value) in list {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                headers.append(name, value);
            }
        }
    }
}

fn parse_date(flag: &'static str, value: &str) -> Result<u64, DeprecationError> {
    let err = || DeprecationError::Date {
        flag,
        value: value.to_owned(),
    };
    let text = value.trim();
    let full = if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text.to_owned()
    };
    let time: SystemTime = humantime::parse_rfc3339_weak(&full)
        .or_else(|_| humantime::parse_rfc3339(&full))
        .map_err(|_| err())?;
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| err())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_added_headers_are_shared_and_nothing_else_is() {
        let added = DeprecationHeaders::default();
        let mut list = vec![("content-type".to_owned(), "application/json".to_owned())];
        added.apply_to_list(&mut list);
        let shared: Vec<_> = list
            .iter()
            .map(|(name, value)| added.shared(name, value))
            .collect();
        assert!(shared[0].is_none());
        for ((name, value), shared) in list.iter().zip(&shared).skip(1) {
            let (shared_name, shared_value) = shared.as_ref().expect("an added header");
            assert_eq!(
                (shared_name.as_str(), shared_value.to_str().unwrap()),
                (name.as_str(), value.as_str())
            );
            // The same bytes every time, not a copy.
            let again = added.shared(name, value).unwrap().1;
            assert_eq!(again.as_bytes().as_ptr(), shared_value.as_bytes().as_ptr());
        }
        // A deprecation link appended to a pagination link is that answer's own.
        let mut paged = vec![(
            "link".to_owned(),
            "<https://x/?page=2>; rel=\"next\"".to_owned(),
        )];
        added.apply_to_list(&mut paged);
        assert!(added.shared("link", &paged[0].1).is_none());
        assert!(added.shared("deprecation", "@1").is_none());
    }

    #[test]
    fn defaults_are_the_documented_values() {
        let mut headers = vec![];
        DeprecationHeaders::default().apply_to_list(&mut headers);
        assert_eq!(
            headers,
            vec![
                ("link".to_owned(), "<https://developer.github.com/changes/2020-02-14-deprecating-oauth-auth-endpoint/>; rel=\"deprecation\"; type=\"text/html\"".to_owned()),
                ("deprecation".to_owned(), "@1581638400".to_owned()),
                ("sunset".to_owned(), "Fri, 13 Nov 2020 16:00:00 GMT".to_owned()),
            ]
        );
    }

    #[test]
    fn pagination_link_is_extended_and_recorded_headers_are_kept() {
        let mut headers = vec![
            (
                "link".to_owned(),
                "<{{origin}}/a?page=2>; rel=\"next\"".to_owned(),
            ),
            (
                "sunset".to_owned(),
                "Sat, 01 Jan 2000 00:00:00 GMT".to_owned(),
            ),
        ];
        DeprecationHeaders::default().apply_to_list(&mut headers);
        assert!(headers[0]
            .1
            .starts_with("<{{origin}}/a?page=2>; rel=\"next\", <https://developer.github.com/"));
        assert_eq!(headers[1].1, "Sat, 01 Jan 2000 00:00:00 GMT");
        assert_eq!(headers.len(), 3);
    }

    #[test]
    fn flags_are_parsed_and_checked() {
        let custom = DeprecationHeaders::from_flags(
            Some("2024-01-01"),
            Some("2025-06-30T12:00:00Z"),
            Some("https://wiki.example.com/oauth"),
        )
        .unwrap();
        assert_eq!(custom.deprecation, "@1704067200");
        assert_eq!(custom.sunset, "Mon, 30 Jun 2025 12:00:00 GMT");
        let err = DeprecationHeaders::from_flags(Some("2024-01-01"), Some("2023-01-01"), None)
            .unwrap_err();
        assert!(
            err.to_string().contains("earlier than --deprecation-date"),
            "{err}"
        );
        let err = DeprecationHeaders::from_flags(Some("yesterday"), None, None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("--deprecation-date \"yesterday\" is not an RFC 3339 date"),
            "{err}"
        );
        assert!(DeprecationHeaders::from_flags(None, None, Some("not a url")).is_err());
    }

    #[test]
    fn live_headers_get_the_same_treatment() {
        let mut headers = HeaderMap::new();
        headers.insert(
            LINK,
            HeaderValue::from_static("<https://x/a?page=2>; rel=\"next\""),
        );
        DeprecationHeaders::default().apply_to_map(&mut headers);
        assert_eq!(headers.get_all(LINK).iter().count(), 1);
        assert!(headers
            .get(LINK)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("rel=\"next\", <https://developer"));
        assert_eq!(headers.get("deprecation").unwrap(), "@1581638400");
    }
}

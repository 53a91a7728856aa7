//! The 10 operations of the OAuth Authorizations API, named as in GitHub's OpenAPI description
//! (`oauth-authorizations/...`), from a request's method and path.

use crate::scope::api_path;

/// The methods the API's operations use.
const METHODS: [&str; 5] = ["GET", "POST", "PATCH", "PUT", "DELETE"];

/// The operation id of a request, e.g. `oauth-authorizations/update-authorization`, or `None`
/// outside the deprecated API. `POST /authorizations/{id}` is GHES's alias of the update.
pub fn operation(method: &str, path: &str) -> Option<&'static str> {
    let path = api_path(path);
    // Byte by byte: this runs for every request, and `str::split`'s searchers cost more than
    // the whole of it on a path this short.
    let path = path
        .as_bytes()
        .iter()
        .position(|&byte| byte == b'?')
        .map_or(path, |query| &path[..query])
        .trim_end_matches('/')
        .trim_start_matches('/');
    // At most four segments matter; a longer path is no operation (and allocates nothing).
    let mut segments = [""; 4];
    let mut count = 0;
    let mut start = 0;
    for (at, &byte) in path.as_bytes().iter().enumerate() {
        if byte == b'/' {
            *segments.get_mut(count)? = &path[start..at];
            count += 1;
            start = at + 1;
        }
    }
    *segments.get_mut(count)? = &path[start..];
    count += 1;
    // Exact first: clients send methods in upper case, and the comparison ignoring case costs
    // more.
    let method = METHODS
        .into_iter()
        .find(|known| *known == method)
        .or_else(|| {
            METHODS
                .into_iter()
                .find(|known| method.eq_ignore_ascii_case(known))
        })?;
    let name = match (method, &segments[..count]) {
        ("GET", ["authorizations"]) => "oauth-authorizations/list-authorizations",
        ("POST", ["authorizations"]) => "oauth-authorizations/create-authorization",
        ("GET", ["authorizations", _]) => "oauth-authorizations/get-authorization",
        ("PATCH" | "POST", ["authorizations", _]) => "oauth-authorizations/update-authorization",
        ("DELETE", ["authorizations", _]) => "oauth-authorizations/delete-authorization",
        ("PUT", ["authorizations", "clients", _]) => {
            "oauth-authorizations/get-or-create-authorization-for-app"
        }
        ("PUT", ["authorizations", "clients", _, _]) => {
            "oauth-authorizations/get-or-create-authorization-for-app-and-fingerprint"
        }
        ("GET", ["applications", "grants"]) => "oauth-authorizations/list-grants",
        ("GET", ["applications", "grants", _]) => "oauth-authorizations/get-grant",
        ("DELETE", ["applications", "grants", _]) => "oauth-authorizations/delete-grant",
        _ => return None,
    };
    Some(name)
}

/// The OAuth app `client_id` named in the path (`/authorizations/clients/{client_id}…`).
pub fn path_client_id(path: &str) -> Option<&str> {
    let path = api_path(path);
    let rest = path.strip_prefix("/authorizations/clients/")?;
    rest.split('/').next().filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_template_maps_to_its_operation() {
        let cases = [
            ("GET", "/api/v3/authorizations", "list-authorizations"),
            ("POST", "/authorizations", "create-authorization"),
            ("GET", "/authorizations/12", "get-authorization"),
            ("PATCH", "/api/v3/authorizations/12", "update-authorization"),
            ("POST", "/authorizations/12", "update-authorization"),
            ("DELETE", "/authorizations/12", "delete-authorization"),
            (
                "PUT",
                "/authorizations/clients/abc",
                "get-or-create-authorization-for-app",
            ),
            (
                "PUT",
                "/authorizations/clients/abc/fp",
                "get-or-create-authorization-for-app-and-fingerprint",
            ),
            ("GET", "/applications/grants", "list-grants"),
            ("GET", "/applications/grants/3", "get-grant"),
            ("DELETE", "/api/v3/applications/grants/3", "delete-grant"),
        ];
        for (method, path, id) in cases {
            assert_eq!(
                operation(method, path).unwrap(),
                format!("oauth-authorizations/{id}")
            );
        }
        assert_eq!(
            operation("GET", "/api/v3/authorizations/?page=2"),
            Some("oauth-authorizations/list-authorizations"),
            "a trailing slash and a query change nothing"
        );
        assert_eq!(operation("PUT", "/authorizations/clients/a/b/c"), None);
        assert_eq!(
            operation("get", "/applications/grants/3"),
            Some("oauth-authorizations/get-grant"),
            "methods in any case"
        );
        assert_eq!(operation("PUT", "/authorizations/1"), None);
        assert_eq!(operation("GET", "/applications/grants/3/x"), None);
        assert_eq!(operation("GET", "/applications"), None);
        assert_eq!(operation("GET", "/authorizations//1"), None);
        assert_eq!(operation("GET", ""), None);
        assert_eq!(operation("GET", "/api/v3/user"), None);
        assert_eq!(operation("PUT", "/authorizations"), None);
        assert_eq!(
            path_client_id("/api/v3/authorizations/clients/abc/fp"),
            Some("abc")
        );
        assert_eq!(path_client_id("/authorizations/1"), None);
    }
}

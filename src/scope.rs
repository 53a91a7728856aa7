//! Which requests ghes-vcr records: the deprecated OAuth Authorizations families, plus any
//! path prefixes the user adds with `--include`.

/// The path prefix GHES serves its REST API under.
pub const API_PREFIX: &str = "/api/v3";

/// The deprecated families, as paths after the optional [`API_PREFIX`].
pub const DEPRECATED_FAMILIES: [&str; 2] = ["/authorizations", "/applications/grants"];

/// The path with a leading `/api/v3` removed (`/api/v3` alone becomes `/`).
pub fn api_path(path: &str) -> &str {
    match path.strip_prefix(API_PREFIX) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    }
}

/// Whether `path` is `prefix` or lies below it (`/authorizations` covers
/// `/authorizations/1` but not `/authorizationsx`).
pub fn is_under(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    let prefix = prefix.trim_end_matches('/');
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// Whether `path` belongs to the deprecated OAuth Authorizations API.
pub fn is_deprecated_family(path: &str) -> bool {
    let path = api_path(path);
    DEPRECATED_FAMILIES
        .iter()
        .any(|family| is_under(path, family))
}

/// The set of paths that record mode stores.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// Extra prefixes from `--include`, written without `/api/v3`.
    includes: Vec<String>,
}

impl Scope {
    /// `includes` may be written with or without `/api/v3`; `/` means everything.
    pub fn new(includes: &[String]) -> Self {
        let includes = includes
            .iter()
            .map(|prefix| api_path(prefix).to_owned())
            .collect();
        Self { includes }
    }

    pub fn is_in_scope(&self, path: &str) -> bool {
        is_deprecated_family(path) || {
            let path = api_path(path);
            self.includes.iter().any(|prefix| is_under(path, prefix))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_with_and_without_api_prefix() {
        let scope = Scope::default();
        for path in [
            "/authorizations",
            "/api/v3/authorizations",
            "/api/v3/authorizations/12",
            "/authorizations/clients/abc/fp",
            "/api/v3/applications/grants",
            "/applications/grants/3",
        ] {
            assert!(scope.is_in_scope(path), "{path}");
        }
        for path in [
            "/authorizationsx",
            "/api/v3/user",
            "/applications/abc/token",
            "/api/v3",
            "/api/v30/authorizations",
        ] {
            assert!(!scope.is_in_scope(path), "{path}");
        }
    }

    #[test]
    fn includes_add_prefixes_and_slash_means_everything() {
        let scope = Scope::new(&["/user".into(), "/api/v3/meta".into()]);
        assert!(scope.is_in_scope("/api/v3/user"));
        assert!(scope.is_in_scope("/user/keys"));
        assert!(scope.is_in_scope("/api/v3/meta"));
        assert!(!scope.is_in_scope("/users/octocat"));
        assert!(Scope::new(&["/".into()]).is_in_scope("/anything/at/all"));
    }
}

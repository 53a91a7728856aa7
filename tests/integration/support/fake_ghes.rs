//! A fake GitHub Enterprise Server (3.0.25) upstream for the integration tests.
//!
//! It serves the 10 deprecated OAuth Authorizations operations under `/api/v3` (plus `GET /user`
//! and `GET /meta`) over HTTP/1.1 and h2c on `127.0.0.1:0`, with per-user state, Basic auth,
//! two-factor (OTP) challenges, pagination, conditional GETs and gzip, as described in
//! `shared/GHES-API.md`. Everything is deterministic: ids count up from 1, tokens come from a
//! seeded PRNG, and the clock starts at 2026-01-15T10:00:00Z and moves 1 second per request, so the
//! same request sequence always gives byte-identical responses (dates included).
//!
//! ```ignore
//! let ghes = FakeGhes::builder().user("octocat", "hunter2").start().await;
//! // ... point the proxy at ghes.origin() ...
//! assert_eq!(ghes.hits(), 0);
//! ghes.stop().await;
//! ```
//!
//! Seed data: every user starts with one personal access token authorization (note and app name
//! "My personal access token", `client_id` 00000000000000000000) and one grant for the OAuth app
//! `abcde12345fghij67890` ("my github app"), so list calls return non-empty lists. With users
//! added in order A, B: A's token is authorization 1 and A's grant is grant 1; B's are 2 and 2.
//! New objects take the next ids. The seeded tokens are minted first, so they are the first
//! entries of [`FakeGhes::tokens_issued`].
#![allow(dead_code)]

use std::any::Any;
use std::convert::Infallible;
use std::fmt;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use base64::Engine as _;
use bytes::Bytes;
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// 2026-01-15T10:00:00Z, the default start of the fake clock.
pub const DEFAULT_START_TIME: u64 = 1_768_471_200;
/// What `X-GitHub-Enterprise-Version` and `/meta` report.
pub const ENTERPRISE_VERSION: &str = "3.0.25";
/// The `app.client_id` of personal access tokens.
pub const PAT_CLIENT_ID: &str = "00000000000000000000";
/// The OAuth app every user has a seeded grant for.
pub const SEEDED_APP_CLIENT_ID: &str = "abcde12345fghij67890";
/// Note (and app name) of each user's seeded personal access token.
pub const SEEDED_PAT_NOTE: &str = "My personal access token";
/// Scopes of each user's seeded personal access token.
pub const SEEDED_PAT_SCOPES: [&str; 2] = ["repo", "user"];
/// The rate limit every response reports (when rate-limit headers are on).
pub const RATE_LIMIT: u64 = 5000;

const SEEDED_APP_NAME: &str = "my github app";
const SEEDED_APP_URL: &str = "http://my-github-app.com";
const OTHER_APP_URL: &str = "https://example.com/app";
const PAT_APP_URL: &str =
    "https://docs.github.com/enterprise/rest/reference/enterprise-admin#list-personal-access-tokens";

const DOCS_REST: &str = "https://docs.github.com/enterprise-server@3.0/rest";
const DOCS_OAUTH: &str =
    "https://docs.github.com/enterprise-server@3.0/rest/reference/oauth-authorizations";
const DOCS_OTP: &str = "https://docs.github.com/enterprise-server@3.0/rest/overview/other-authentication-methods#working-with-two-factor-authentication";
const DOCS_USER: &str =
    "https://docs.github.com/enterprise-server@3.0/rest/reference/users#get-the-authenticated-user";
const DOCS_META: &str =
    "https://docs.github.com/enterprise-server@3.0/rest/reference/meta#get-github-enterprise-server-meta-information";

const EXPOSE_HEADERS: &str = "ETag, Link, Location, Retry-After, X-GitHub-OTP, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Used, X-RateLimit-Resource, X-RateLimit-Reset, X-OAuth-Scopes, X-Accepted-OAuth-Scopes, X-Poll-Interval, X-GitHub-Media-Type, Deprecation, Sunset";
const VARY_1: &str = "Accept, Authorization, Cookie, X-GitHub-OTP";
const VARY_2: &str = "Accept-Encoding, Accept, X-Requested-With";
const CACHE_CONTROL: &str = "private, max-age=60, s-maxage=60";
const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";
const NOT_FOUND_HTML: &str = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Page not found \u{b7} GitHub Enterprise</title></head><body><h1>404</h1><p>This is not the web page you are looking for.</p></body></html>\n";

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/// Configures a [`FakeGhes`]; start it with [`FakeGhesBuilder::start`].
#[derive(Clone)]
pub struct FakeGhesBuilder {
    users: Vec<UserSpec>,
    token_seed: u64,
    rate_limit_headers: bool,
    start_time: u64,
    public_origin: Option<String>,
}

#[derive(Clone)]
struct UserSpec {
    login: String,
    password: String,
    otp_code: Option<String>,
}

impl FakeGhesBuilder {
    /// A user who authenticates with Basic `login:password`.
    pub fn user(mut self, login: &str, password: &str) -> Self {
        self.users.push(UserSpec {
            login: login.to_owned(),
            password: password.to_owned(),
            otp_code: None,
        });
        self
    }

    /// A user with two-factor auth (app): every Basic-auth call without the right `X-GitHub-OTP`
    /// header gets 401 + `X-GitHub-OTP: required; app`.
    pub fn user_with_otp(mut self, login: &str, password: &str, otp_code: &str) -> Self {
        self.users.push(UserSpec {
            login: login.to_owned(),
            password: password.to_owned(),
            otp_code: Some(otp_code.to_owned()),
        });
        self
    }

    /// Seed for the token generator (default 1). Same seed → same token sequence.
    pub fn token_seed(mut self, seed: u64) -> Self {
        self.token_seed = seed;
        self
    }

    /// Whether responses carry `X-RateLimit-*` headers (default true).
    pub fn rate_limit_headers(mut self, on: bool) -> Self {
        self.rate_limit_headers = on;
        self
    }

    /// Where the fake clock starts, in Unix seconds (default [`DEFAULT_START_TIME`]). The first
    /// request is stamped with this time, the next one with a second later, and so on. Seeded
    /// objects were created one day before.
    pub fn start_time(mut self, unix_secs: u64) -> Self {
        self.start_time = unix_secs;
        self
    }

    /// The origin written into body `url` fields, `Location` and `Link` (default: the real
    /// [`FakeGhes::origin`]), like a GHES whose configured hostname differs from the address you
    /// connect to. With a fixed value, responses do not depend on the port, so two servers
    /// answer byte for byte alike.
    pub fn public_origin(mut self, origin: &str) -> Self {
        self.public_origin = Some(origin.trim_end_matches('/').to_owned());
        self
    }

    /// Binds `127.0.0.1:0` and starts serving. The port accepts connections once this returns.
    pub async fn start(self) -> FakeGhes {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake GHES: cannot bind 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("fake GHES: listener has no local address");
        let origin = format!("http://{addr}");
        let public_origin = self.public_origin.clone().unwrap_or_else(|| origin.clone());
        let state = Arc::new(Mutex::new(State::new(self, public_origin.clone())));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let server = tokio::spawn(serve(listener, Arc::clone(&state), shutdown_rx));
        FakeGhes {
            addr,
            origin,
            public_origin,
            state,
            shutdown,
            server: Some(server),
        }
    }
}

/// A running fake GHES. Dropping it without [`FakeGhes::stop`] signals the server to shut down
/// but does not wait for it.
pub struct FakeGhes {
    addr: SocketAddr,
    origin: String,
    public_origin: String,
    state: Arc<Mutex<State>>,
    shutdown: watch::Sender<bool>,
    server: Option<JoinHandle<Option<Box<dyn Any + Send>>>>,
}

/// One request as the fake received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    /// The raw query string without `?`; empty when there is none.
    pub query: String,
    pub version: http::Version,
    /// In arrival order, names lower-case.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl SeenRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn body_json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

impl FakeGhes {
    pub fn builder() -> FakeGhesBuilder {
        FakeGhesBuilder {
            users: Vec::new(),
            token_seed: 1,
            rate_limit_headers: true,
            start_time: DEFAULT_START_TIME,
            public_origin: None,
        }
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn origin(&self) -> String {
        self.origin.clone()
    }

    /// The origin in body `url` fields, `Location` and `Link`: [`FakeGhesBuilder::public_origin`]
    /// if set, else [`FakeGhes::origin`].
    pub fn public_origin(&self) -> String {
        self.public_origin.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests received so far, on any path.
    pub fn hits(&self) -> usize {
        self.lock().seen.len()
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.lock().seen.clone()
    }

    /// Every full token minted so far (seeded ones first), including tokens of authorizations
    /// deleted since. For secret-leak checks.
    pub fn tokens_issued(&self) -> Vec<String> {
        self.lock().tokens.clone()
    }

    /// Stops accepting, closes every open connection (idle keep-alive ones and in-flight ones
    /// alike) and waits until all of them are gone. Once this returns, connecting to
    /// [`FakeGhes::addr`] is refused. Re-raises a panic from the server, if any.
    pub async fn stop(mut self) {
        self.shutdown.send_replace(true);
        let Some(server) = self.server.take() else {
            return;
        };
        match server.await {
            Ok(None) => {}
            Ok(Some(panic)) => std::panic::resume_unwind(panic),
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(_) => {}
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

impl Drop for FakeGhes {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

impl fmt::Debug for FakeGhes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeGhes")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// Lower-case hex SHA-256, as GHES computes `hashed_token`.
/// The hash behind an `ETag`: the body's SHA-256 as if `origin` were a fixed host name, as on a
/// real GHES whose host name never changes (the fake's port changes every run).
pub fn entity_hash(body: &[u8], origin: &str) -> String {
    let text = String::from_utf8_lossy(body).replace(origin, "https://ghes.example.com");
    sha256_hex(text.as_bytes())
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Whether `token` is `ghp_` + 30 base62 characters + their 6-character base62 CRC32, the check
/// secret scanners run (Samsung/CredSweeper `value_github_check.py`).
pub fn token_checksum_ok(token: &str) -> bool {
    let Some(rest) = token.strip_prefix("ghp_") else {
        return false;
    };
    if rest.len() != 36 || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (random, checksum) = rest.split_at(30);
    base62_crc32(random) == checksum
}

/// IMF-fixdate, e.g. `Thu, 15 Jan 2026 10:00:00 GMT`.
pub fn http_date(unix_secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_secs / 86_400;
    let (y, m, d) = civil_from_days(days);
    let secs = unix_secs % 86_400;
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// RFC 3339 in UTC with a `Z`, e.g. `2026-01-15T10:00:00Z`, as GitHub writes JSON dates.
pub fn rfc3339(unix_secs: u64) -> String {
    let (y, m, d) = civil_from_days(unix_secs / 86_400);
    let secs = unix_secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Parses an IMF-fixdate (the only form GitHub sends) back to Unix seconds.
pub fn parse_http_date(s: &str) -> Option<u64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = s.split_ascii_whitespace().collect();
    let [_weekday, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let d: u64 = day.parse().ok()?;
    let m = MONTHS.iter().position(|name| name == month)? as u64 + 1;
    let y: u64 = year.parse().ok()?;
    let hms: Vec<u64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, min, sec] = hms.as_slice() else {
        return None;
    };
    if y < 1970 || !(1..=31).contains(&d) || *h > 23 || *min > 59 || *sec > 60 {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400 + h * 3600 + min * 60 + sec)
}

// ---------------------------------------------------------------------------------------------
// Server loop
// ---------------------------------------------------------------------------------------------

type Panic = Box<dyn Any + Send>;

async fn serve(
    listener: TcpListener,
    state: Arc<Mutex<State>>,
    mut shutdown: watch::Receiver<bool>,
) -> Option<Panic> {
    let mut connections = JoinSet::new();
    let mut panic = None;
    let for_connections = shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => {
                // Accept errors (e.g. EMFILE) are per connection; keep serving.
                let Ok((stream, _peer)) = accepted else { continue };
                connections.spawn(serve_connection(stream, Arc::clone(&state), for_connections.clone()));
            }
            Some(joined) = connections.join_next(), if !connections.is_empty() => {
                keep_first_panic(&mut panic, joined);
            }
        }
    }
    // Refuse new connections before the open ones go away.
    drop(listener);
    // Every connection task watches the same signal and drops its socket.
    while let Some(joined) = connections.join_next().await {
        keep_first_panic(&mut panic, joined);
    }
    panic
}

fn keep_first_panic(panic: &mut Option<Panic>, joined: Result<(), tokio::task::JoinError>) {
    if let Err(err) = joined {
        if err.is_panic() && panic.is_none() {
            *panic = Some(err.into_panic());
        }
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    state: Arc<Mutex<State>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let service = service_fn(move |req: Request<Incoming>| {
        let state = Arc::clone(&state);
        async move { Ok::<_, Infallible>(handle(&state, req).await) }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        // Client hung up or protocol error: nothing to report.
        _ = connection => {}
        // Dropping the connection closes the socket, keep-alive or not.
        _ = shutdown.wait_for(|stop| *stop) => {}
    }
}

async fn handle(state: &Mutex<State>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    // A body that fails half-way means the client went away; answer what arrived.
    let body = body
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    let seen = SeenRequest {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        version: parts.version,
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    lock(state).respond(&parts.method, &parts.headers, seen)
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panicking test must not make every later call panic too.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

struct User {
    id: u64,
    login: String,
    password: String,
    otp_code: Option<String>,
}

struct Authorization {
    id: u64,
    user: usize,
    client_id: String,
    token: String,
    scopes: Vec<String>,
    note: Option<String>,
    note_url: Option<String>,
    fingerprint: Option<String>,
    created_at: u64,
    updated_at: u64,
}

impl Authorization {
    fn is_personal(&self) -> bool {
        self.client_id == PAT_CLIENT_ID
    }
}

struct Grant {
    id: u64,
    user: usize,
    client_id: String,
    scopes: Vec<String>,
    created_at: u64,
    updated_at: u64,
}

/// splitmix64: small, well mixed, and the same everywhere.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

struct State {
    origin: String,
    users: Vec<User>,
    authorizations: Vec<Authorization>,
    grants: Vec<Grant>,
    next_authorization_id: u64,
    next_grant_id: u64,
    rng: SplitMix64,
    tokens: Vec<String>,
    seen: Vec<SeenRequest>,
    start_time: u64,
    rate_limit_headers: bool,
    rate_limit_used: u64,
    rate_limit_reset: u64,
}

/// Which operation a request addresses.
#[derive(Clone, Debug)]
enum Route {
    Meta,
    User,
    ListAuthorizations,
    CreateAuthorization,
    GetOrCreate {
        client_id: String,
        fingerprint: Option<String>,
    },
    GetAuthorization(u64),
    UpdateAuthorization(u64),
    DeleteAuthorization(u64),
    ListGrants,
    GetGrant(u64),
    DeleteGrant(u64),
}

impl Route {
    fn parse(method: &Method, api_path: &str) -> Option<Route> {
        let segments: Vec<&str> = api_path.strip_prefix('/')?.split('/').collect();
        let get = *method == Method::GET || *method == Method::HEAD;
        let id = |s: &str| -> Option<u64> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        let route = match segments.as_slice() {
            ["meta"] if get => Route::Meta,
            ["user"] if get => Route::User,
            ["authorizations"] if get => Route::ListAuthorizations,
            ["authorizations"] if *method == Method::POST => Route::CreateAuthorization,
            ["authorizations", "clients", client_id] if *method == Method::PUT => {
                Route::GetOrCreate {
                    client_id: percent_decode(client_id),
                    fingerprint: None,
                }
            }
            ["authorizations", "clients", client_id, fingerprint] if *method == Method::PUT => {
                Route::GetOrCreate {
                    client_id: percent_decode(client_id),
                    fingerprint: Some(percent_decode(fingerprint)),
                }
            }
            ["authorizations", raw] => {
                let id = id(raw)?;
                match *method {
                    _ if get => Route::GetAuthorization(id),
                    // The v3 overview: resources also accept POST in place of PATCH (github3.py).
                    Method::PATCH | Method::POST => Route::UpdateAuthorization(id),
                    Method::DELETE => Route::DeleteAuthorization(id),
                    _ => return None,
                }
            }
            ["applications", "grants"] if get => Route::ListGrants,
            ["applications", "grants", raw] => {
                let id = id(raw)?;
                match *method {
                    _ if get => Route::GetGrant(id),
                    Method::DELETE => Route::DeleteGrant(id),
                    _ => return None,
                }
            }
            _ => return None,
        };
        Some(route)
    }

    fn doc(&self) -> &'static str {
        match self {
            Route::Meta => DOCS_META,
            Route::User => DOCS_USER,
            Route::ListAuthorizations => {
                "https://docs.github.com/enterprise-server@3.0/rest/reference/oauth-authorizations#list-your-authorizations"
            }
            Route::CreateAuthorization => {
                "https://docs.github.com/enterprise-server@3.0/rest/reference/oauth-authorizations#create-a-new-authorization"
            }
            Route::GetOrCreate {
                fingerprint: None, ..
            } => {
                "https://docs.github.com/enterprise-server@3.0/rest/reference/oauth-authorizations#get-or-create-an-authorization-for-a-specific-app"
            }
            Route::GetOrCreate {
                fingerprint: Some(_),
                ..
            } => {
                "https://docs.github.com/enterprise-server@3.0/rest/reference/oauth-authorizations#get-or-create-an-authorization-for-a-specific-app-and-fingerprint"
            }
            Route::GetAuthorization(_) => {
                "https://docs.github.com/enterprise-server@3.0/rest/reference/oauth-authorizations#get-a-single-authorization"
            }
            Route::UpdateAuthorization(_) => {
                "https://docs.github.com/enterprise-server@3.0/rest/reference/oauth-authorizations#update-an-existing-authorization"
            }
            Route::DeleteAuthorization(_) => {
                "https://docs.github.com/enterprise-server@3.0/rest/reference/oauth-authorizations#delete-an-authorization"
            }
            Route::ListGrants => {
                "https://docs.github.com/enterprise-server@3.0/rest/reference/oauth-authorizations#list-your-grants"
            }
            Route::GetGrant(_) => {
                "https://docs.github.com/enterprise-server@3.0/rest/reference/oauth-authorizations#get-a-single-grant"
            }
            Route::DeleteGrant(_) => {
                "https://docs.github.com/enterprise-server@3.0/rest/reference/oauth-authorizations#delete-a-grant"
            }
        }
    }

    fn is_oauth_authorizations(&self) -> bool {
        !matches!(self, Route::Meta | Route::User)
    }
}

/// An answer before the common headers are added.
struct Reply {
    status: StatusCode,
    body: Option<Box<Value>>,
    /// Single-object GETs: `updated_at`, sent as `Last-Modified`.
    last_modified: Option<u64>,
    location: Option<String>,
    link: Option<String>,
    /// Extra headers such as `X-GitHub-OTP` or `X-OAuth-Scopes`.
    extra: Vec<(&'static str, String)>,
}

impl Reply {
    fn json(status: StatusCode, body: Value) -> Reply {
        Reply {
            status,
            body: Some(Box::new(body)),
            last_modified: None,
            location: None,
            link: None,
            extra: Vec::new(),
        }
    }

    fn no_content() -> Reply {
        Reply {
            status: StatusCode::NO_CONTENT,
            body: None,
            last_modified: None,
            location: None,
            link: None,
            extra: Vec::new(),
        }
    }

    fn error(status: StatusCode, message: &str, doc: &str) -> Reply {
        Reply::json(
            status,
            json!({"message": message, "documentation_url": doc}),
        )
    }

    fn not_found(doc: &str) -> Reply {
        Reply::error(StatusCode::NOT_FOUND, "Not Found", doc)
    }

    fn validation(doc: &str, errors: Vec<Value>) -> Reply {
        Reply::json(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"message": "Validation Failed", "errors": errors, "documentation_url": doc}),
        )
    }

    fn invalid_field(doc: &str, field: &str) -> Reply {
        Reply::validation(
            doc,
            vec![json!({"resource": "OauthAccess", "code": "invalid", "field": field})],
        )
    }
}

/// Who made the request.
struct Caller {
    user: usize,
    /// `Some` when authenticated by token (only `GET /user` allows it): the token's scopes.
    token_scopes: Option<Vec<String>>,
}

enum Credentials {
    Missing,
    Basic { login: String, password: String },
    Token(String),
    Unsupported,
}

impl Credentials {
    fn from_headers(headers: &HeaderMap) -> Credentials {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Credentials::Missing;
        };
        let Ok(value) = value.to_str() else {
            return Credentials::Unsupported;
        };
        let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok());
            match decoded.as_deref().and_then(|s| s.split_once(':')) {
                Some((login, password)) => Credentials::Basic {
                    login: login.to_owned(),
                    password: password.to_owned(),
                },
                None => Credentials::Unsupported,
            }
        } else if scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer") {
            Credentials::Token(rest.to_owned())
        } else {
            Credentials::Unsupported
        }
    }
}

impl State {
    fn new(builder: FakeGhesBuilder, origin: String) -> State {
        let mut state = State {
            origin,
            users: Vec::new(),
            authorizations: Vec::new(),
            grants: Vec::new(),
            next_authorization_id: 1,
            next_grant_id: 1,
            rng: SplitMix64(builder.token_seed),
            tokens: Vec::new(),
            seen: Vec::new(),
            start_time: builder.start_time,
            rate_limit_headers: builder.rate_limit_headers,
            rate_limit_used: 0,
            rate_limit_reset: builder.start_time + 3600,
        };
        let seeded_at = builder.start_time.saturating_sub(86_400);
        for (index, spec) in builder.users.into_iter().enumerate() {
            state.users.push(User {
                id: index as u64 + 1,
                login: spec.login,
                password: spec.password,
                otp_code: spec.otp_code,
            });
            let token = state.mint_token();
            let id = state.next_authorization_id;
            state.next_authorization_id += 1;
            state.authorizations.push(Authorization {
                id,
                user: index,
                client_id: PAT_CLIENT_ID.to_owned(),
                token,
                scopes: SEEDED_PAT_SCOPES.iter().map(|s| s.to_string()).collect(),
                note: Some(SEEDED_PAT_NOTE.to_owned()),
                note_url: None,
                fingerprint: None,
                created_at: seeded_at,
                updated_at: seeded_at,
            });
            let grant_id = state.next_grant_id;
            state.next_grant_id += 1;
            state.grants.push(Grant {
                id: grant_id,
                user: index,
                client_id: SEEDED_APP_CLIENT_ID.to_owned(),
                scopes: vec!["public_repo".to_owned()],
                created_at: seeded_at,
                updated_at: seeded_at,
            });
        }
        state
    }

    fn mint_token(&mut self) -> String {
        let random: String = (0..30)
            .map(|_| BASE62[(self.rng.next_u64() % 62) as usize] as char)
            .collect();
        let token = format!("ghp_{random}{}", base62_crc32(&random));
        self.tokens.push(token.clone());
        token
    }

    /// Records the request, advances the clock and answers it.
    fn respond(
        &mut self,
        method: &Method,
        headers: &HeaderMap,
        seen: SeenRequest,
    ) -> Response<Full<Bytes>> {
        let sequence = self.seen.len() as u64;
        let now = self.start_time + sequence;
        let path = seen.path.clone();
        let query = seen.query.clone();
        let body = seen.body.clone();
        self.seen.push(seen);
        let request_id = request_id(sequence, now);

        let api_path = match path.strip_prefix("/api/v3") {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
            // GHES serves its web UI outside /api/v3.
            _ => return html_not_found(now, &request_id),
        };
        if now >= self.rate_limit_reset {
            self.rate_limit_used = 0;
            self.rate_limit_reset = now + 3600;
        }
        let reply = match Route::parse(method, api_path) {
            None => Reply::not_found(DOCS_REST),
            Some(route) => self.dispatch(&route, headers, &query, &body, now),
        };
        self.finish(reply, method, headers, now, &request_id)
    }

    fn dispatch(
        &mut self,
        route: &Route,
        headers: &HeaderMap,
        query: &str,
        body: &[u8],
        now: u64,
    ) -> Reply {
        if let Route::Meta = route {
            return Reply::json(
                StatusCode::OK,
                json!({"verifiable_password_authentication": true, "installed_version": ENTERPRISE_VERSION}),
            );
        }
        let caller = match self.authenticate(route, headers) {
            Ok(caller) => caller,
            Err(reply) => return reply,
        };
        let user = caller.user;
        let doc = route.doc();
        let result = match route {
            Route::Meta => unreachable!("answered above"),
            Route::User => {
                let mut reply = Reply::json(StatusCode::OK, self.render_user(user));
                if let Some(scopes) = caller.token_scopes {
                    reply.extra.push(("x-oauth-scopes", scopes.join(", ")));
                    reply.extra.push(("x-accepted-oauth-scopes", String::new()));
                }
                Ok(reply)
            }
            Route::ListAuthorizations => Ok(self.list_authorizations(user, query)),
            Route::CreateAuthorization => self.create_authorization(user, body, now, doc),
            Route::GetOrCreate {
                client_id,
                fingerprint,
            } => self.get_or_create(user, client_id, fingerprint.as_deref(), body, now, doc),
            Route::GetAuthorization(id) => self.get_authorization(user, *id, doc),
            Route::UpdateAuthorization(id) => self.update_authorization(user, *id, body, now, doc),
            Route::DeleteAuthorization(id) => self.delete_authorization(user, *id, doc),
            Route::ListGrants => Ok(self.list_grants(user, query)),
            Route::GetGrant(id) => self.get_grant(user, *id, doc),
            Route::DeleteGrant(id) => self.delete_grant(user, *id, doc),
        };
        result.unwrap_or_else(|reply| reply)
    }

    // -- auth ------------------------------------------------------------------------------

    fn authenticate(&self, route: &Route, headers: &HeaderMap) -> Result<Caller, Reply> {
        let bad_credentials =
            || Reply::error(StatusCode::UNAUTHORIZED, "Bad credentials", DOCS_REST);
        let basic_only = || {
            Reply::error(
                StatusCode::FORBIDDEN,
                "This API can only be accessed with username and password Basic Auth",
                DOCS_OAUTH,
            )
        };
        match Credentials::from_headers(headers) {
            Credentials::Missing => {
                let doc = if route.is_oauth_authorizations() {
                    DOCS_OAUTH
                } else {
                    route.doc()
                };
                Err(Reply::error(
                    StatusCode::UNAUTHORIZED,
                    "Requires authentication",
                    doc,
                ))
            }
            Credentials::Unsupported => Err(bad_credentials()),
            Credentials::Token(token) => {
                if route.is_oauth_authorizations() {
                    return Err(basic_only());
                }
                match self.authorizations.iter().find(|a| a.token == token) {
                    Some(a) => Ok(Caller {
                        user: a.user,
                        token_scopes: Some(a.scopes.clone()),
                    }),
                    None => Err(bad_credentials()),
                }
            }
            Credentials::Basic { login, password } => {
                let Some(user) = self.users.iter().position(|u| u.login == login) else {
                    return Err(bad_credentials());
                };
                if self.users[user].password != password {
                    // A token in place of the password (hub's "Personal access token used
                    // instead of password").
                    let token = self
                        .authorizations
                        .iter()
                        .find(|a| a.user == user && a.token == password);
                    return match token {
                        Some(_) if route.is_oauth_authorizations() => Err(basic_only()),
                        Some(a) => Ok(Caller {
                            user,
                            token_scopes: Some(a.scopes.clone()),
                        }),
                        None => Err(bad_credentials()),
                    };
                }
                if let Some(code) = &self.users[user].otp_code {
                    let given = headers
                        .get("x-github-otp")
                        .and_then(|v| v.to_str().ok())
                        .map(str::trim);
                    if given != Some(code.as_str()) {
                        let mut reply = Reply::error(
                            StatusCode::UNAUTHORIZED,
                            "Must specify two-factor authentication OTP code.",
                            DOCS_OTP,
                        );
                        reply
                            .extra
                            .push(("x-github-otp", "required; app".to_owned()));
                        return Err(reply);
                    }
                }
                Ok(Caller {
                    user,
                    token_scopes: None,
                })
            }
        }
    }

    // -- authorizations ----------------------------------------------------------------------

    fn list_authorizations(&self, user: usize, query: &str) -> Reply {
        let params = Pagination::from_query(query);
        let items: Vec<&Authorization> = self
            .authorizations
            .iter()
            .filter(|a| a.user == user)
            .filter(|a| params.client_id.as_deref().is_none_or(|c| a.client_id == c))
            .collect();
        let (page, link) = params.page(&items, &self.origin, "/api/v3/authorizations");
        let body = page
            .iter()
            .map(|a| self.render_authorization(a, false))
            .collect();
        let mut reply = Reply::json(StatusCode::OK, Value::Array(body));
        reply.link = link;
        reply
    }

    fn create_authorization(
        &mut self,
        user: usize,
        body: &[u8],
        now: u64,
        doc: &str,
    ) -> Result<Reply, Reply> {
        let fields = parse_object(body, doc)?;
        let scopes = scopes_field(&fields, "scopes", doc)?;
        let note = string_field(&fields, "note", doc)?;
        let note_url = string_field(&fields, "note_url", doc)?;
        let client_id = string_field(&fields, "client_id", doc)?;
        let client_secret = string_field(&fields, "client_secret", doc)?;
        let fingerprint = string_field(&fields, "fingerprint", doc)?;
        if client_id.as_ref().is_some_and(|c| c.len() > 20) {
            return Err(Reply::invalid_field(doc, "client_id"));
        }
        if client_secret.as_ref().is_some_and(|c| c.len() > 40) {
            return Err(Reply::invalid_field(doc, "client_secret"));
        }
        let client_id = match client_id {
            Some(client_id) => {
                if client_secret.is_none() {
                    return Err(missing_client_secret(doc));
                }
                client_id
            }
            None => {
                // "personal access tokens must have a unique note" (GHES 2.18 docs).
                if note.as_deref().is_none_or(str::is_empty) {
                    return Err(Reply::validation(
                        doc,
                        vec![
                            json!({"resource": "OauthAccess", "code": "missing_field", "field": "description"}),
                        ],
                    ));
                }
                PAT_CLIENT_ID.to_owned()
            }
        };
        if client_id == PAT_CLIENT_ID && self.note_taken(user, note.as_deref(), None) {
            return Err(duplicate_note(doc));
        }
        let index = self.insert_authorization(
            user,
            client_id,
            scopes.unwrap_or_default(),
            note,
            note_url,
            fingerprint,
            now,
        );
        Ok(self.created(index))
    }

    fn get_or_create(
        &mut self,
        user: usize,
        client_id: &str,
        path_fingerprint: Option<&str>,
        body: &[u8],
        now: u64,
        doc: &str,
    ) -> Result<Reply, Reply> {
        if client_id.is_empty() || client_id.len() > 20 {
            return Err(Reply::not_found(doc));
        }
        let fields = parse_object(body, doc)?;
        let scopes = scopes_field(&fields, "scopes", doc)?;
        let note = string_field(&fields, "note", doc)?;
        let note_url = string_field(&fields, "note_url", doc)?;
        let client_secret = string_field(&fields, "client_secret", doc)?;
        let body_fingerprint = string_field(&fields, "fingerprint", doc)?;
        match client_secret {
            None => return Err(missing_client_secret(doc)),
            Some(secret) if secret.len() > 40 => {
                return Err(Reply::invalid_field(doc, "client_secret"))
            }
            Some(_) => {}
        }
        let fingerprint = match path_fingerprint {
            Some(fp) => Some(fp.to_owned()),
            None => body_fingerprint,
        };
        let existing = self
            .authorizations
            .iter()
            .find(|a| a.user == user && a.client_id == client_id && a.fingerprint == fingerprint);
        if let Some(existing) = existing {
            let mut reply = Reply::json(StatusCode::OK, self.render_authorization(existing, false));
            reply.location = Some(self.authorization_url(existing.id));
            return Ok(reply);
        }
        let index = self.insert_authorization(
            user,
            client_id.to_owned(),
            scopes.unwrap_or_default(),
            note,
            note_url,
            fingerprint,
            now,
        );
        Ok(self.created(index))
    }

    fn get_authorization(&self, user: usize, id: u64, doc: &str) -> Result<Reply, Reply> {
        let a = self.find_authorization(user, id, doc)?;
        let mut reply = Reply::json(StatusCode::OK, self.render_authorization(a, false));
        reply.last_modified = Some(a.updated_at);
        Ok(reply)
    }

    fn update_authorization(
        &mut self,
        user: usize,
        id: u64,
        body: &[u8],
        now: u64,
        doc: &str,
    ) -> Result<Reply, Reply> {
        let index = self.find_authorization_index(user, id, doc)?;
        let fields = parse_object(body, doc)?;
        let scopes = scopes_field(&fields, "scopes", doc)?;
        let add_scopes = scopes_field(&fields, "add_scopes", doc)?;
        let remove_scopes = scopes_field(&fields, "remove_scopes", doc)?;
        let note = string_field(&fields, "note", doc)?;
        let note_url = string_field(&fields, "note_url", doc)?;
        let fingerprint = string_field(&fields, "fingerprint", doc)?;
        let scope_edits = [&scopes, &add_scopes, &remove_scopes]
            .iter()
            .filter(|s| s.is_some())
            .count();
        if scope_edits > 1 {
            return Err(Reply::validation(
                doc,
                vec![json!({
                    "resource": "OauthAccess",
                    "code": "custom",
                    "field": "scopes",
                    "message": "Only one of scopes, add_scopes, or remove_scopes may be specified."
                })],
            ));
        }
        if self.authorizations[index].is_personal()
            && note.is_some()
            && self.note_taken(user, note.as_deref(), Some(id))
        {
            return Err(duplicate_note(doc));
        }

        let a = &mut self.authorizations[index];
        let before = (
            a.scopes.clone(),
            a.note.clone(),
            a.note_url.clone(),
            a.fingerprint.clone(),
        );
        if let Some(scopes) = scopes {
            a.scopes = dedup(scopes);
        }
        if let Some(add) = add_scopes {
            for scope in add {
                if !a.scopes.contains(&scope) {
                    a.scopes.push(scope);
                }
            }
        }
        if let Some(remove) = remove_scopes {
            a.scopes.retain(|s| !remove.contains(s));
        }
        if note.is_some() {
            a.note = note;
        }
        if note_url.is_some() {
            a.note_url = note_url;
        }
        if fingerprint.is_some() {
            a.fingerprint = fingerprint;
        }
        let after = (
            a.scopes.clone(),
            a.note.clone(),
            a.note_url.clone(),
            a.fingerprint.clone(),
        );
        if before != after {
            a.updated_at = now;
            let (client_id, scopes) = (a.client_id.clone(), a.scopes.clone());
            if client_id != PAT_CLIENT_ID {
                self.widen_grant(user, &client_id, &scopes, now);
            }
        }
        let a = &self.authorizations[index];
        Ok(Reply::json(
            StatusCode::OK,
            self.render_authorization(a, false),
        ))
    }

    fn delete_authorization(&mut self, user: usize, id: u64, doc: &str) -> Result<Reply, Reply> {
        let index = self.find_authorization_index(user, id, doc)?;
        self.authorizations.remove(index);
        Ok(Reply::no_content())
    }

    fn find_authorization(&self, user: usize, id: u64, doc: &str) -> Result<&Authorization, Reply> {
        let index = self.find_authorization_index(user, id, doc)?;
        Ok(&self.authorizations[index])
    }

    fn find_authorization_index(&self, user: usize, id: u64, doc: &str) -> Result<usize, Reply> {
        self.authorizations
            .iter()
            .position(|a| a.id == id && a.user == user)
            .ok_or_else(|| Reply::not_found(doc))
    }

    fn note_taken(&self, user: usize, note: Option<&str>, except: Option<u64>) -> bool {
        let Some(note) = note else { return false };
        self.authorizations.iter().any(|a| {
            a.user == user
                && a.is_personal()
                && Some(a.id) != except
                && a.note.as_deref() == Some(note)
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn insert_authorization(
        &mut self,
        user: usize,
        client_id: String,
        scopes: Vec<String>,
        note: Option<String>,
        note_url: Option<String>,
        fingerprint: Option<String>,
        now: u64,
    ) -> usize {
        let token = self.mint_token();
        let id = self.next_authorization_id;
        self.next_authorization_id += 1;
        let scopes = dedup(scopes);
        if client_id != PAT_CLIENT_ID {
            self.widen_grant(user, &client_id, &scopes, now);
        }
        self.authorizations.push(Authorization {
            id,
            user,
            client_id,
            token,
            scopes,
            note,
            note_url,
            fingerprint,
            created_at: now,
            updated_at: now,
        });
        self.authorizations.len() - 1
    }

    /// Creates the user's grant for the app, or adds `scopes` to it.
    fn widen_grant(&mut self, user: usize, client_id: &str, scopes: &[String], now: u64) {
        match self
            .grants
            .iter_mut()
            .find(|g| g.user == user && g.client_id == client_id)
        {
            Some(grant) => {
                let mut changed = false;
                for scope in scopes {
                    if !grant.scopes.contains(scope) {
                        grant.scopes.push(scope.clone());
                        changed = true;
                    }
                }
                if changed {
                    grant.updated_at = now;
                }
            }
            None => {
                let id = self.next_grant_id;
                self.next_grant_id += 1;
                self.grants.push(Grant {
                    id,
                    user,
                    client_id: client_id.to_owned(),
                    scopes: scopes.to_vec(),
                    created_at: now,
                    updated_at: now,
                });
            }
        }
    }

    fn created(&self, index: usize) -> Reply {
        let a = &self.authorizations[index];
        let mut reply = Reply::json(StatusCode::CREATED, self.render_authorization(a, true));
        reply.location = Some(self.authorization_url(a.id));
        reply
    }

    // -- grants ------------------------------------------------------------------------------

    fn list_grants(&self, user: usize, query: &str) -> Reply {
        let params = Pagination::from_query(query);
        let items: Vec<&Grant> = self
            .grants
            .iter()
            .filter(|g| g.user == user)
            .filter(|g| params.client_id.as_deref().is_none_or(|c| g.client_id == c))
            .collect();
        let (page, link) = params.page(&items, &self.origin, "/api/v3/applications/grants");
        let body = page.iter().map(|g| self.render_grant(g)).collect();
        let mut reply = Reply::json(StatusCode::OK, Value::Array(body));
        reply.link = link;
        reply
    }

    fn get_grant(&self, user: usize, id: u64, doc: &str) -> Result<Reply, Reply> {
        let grant = self
            .grants
            .iter()
            .find(|g| g.id == id && g.user == user)
            .ok_or_else(|| Reply::not_found(doc))?;
        let mut reply = Reply::json(StatusCode::OK, self.render_grant(grant));
        reply.last_modified = Some(grant.updated_at);
        Ok(reply)
    }

    fn delete_grant(&mut self, user: usize, id: u64, doc: &str) -> Result<Reply, Reply> {
        let index = self
            .grants
            .iter()
            .position(|g| g.id == id && g.user == user)
            .ok_or_else(|| Reply::not_found(doc))?;
        let grant = self.grants.remove(index);
        // Revoking a grant revokes every token of that app for the user.
        self.authorizations
            .retain(|a| !(a.user == user && a.client_id == grant.client_id));
        Ok(Reply::no_content())
    }

    // -- rendering ---------------------------------------------------------------------------

    fn authorization_url(&self, id: u64) -> String {
        format!("{}/api/v3/authorizations/{id}", self.origin)
    }

    fn render_app(&self, client_id: &str, note: Option<&str>) -> Value {
        let (name, url) = if client_id == PAT_CLIENT_ID {
            (note.unwrap_or("").to_owned(), PAT_APP_URL.to_owned())
        } else if client_id == SEEDED_APP_CLIENT_ID {
            (SEEDED_APP_NAME.to_owned(), SEEDED_APP_URL.to_owned())
        } else {
            (format!("App {client_id}"), OTHER_APP_URL.to_owned())
        };
        json!({"client_id": client_id, "name": name, "url": url})
    }

    fn render_authorization(&self, a: &Authorization, reveal_token: bool) -> Value {
        let last_eight = &a.token[a.token.len().saturating_sub(8)..];
        json!({
            "id": a.id,
            "url": self.authorization_url(a.id),
            "app": self.render_app(&a.client_id, a.note.as_deref()),
            "token": if reveal_token { a.token.as_str() } else { "" },
            "hashed_token": sha256_hex(a.token.as_bytes()),
            "token_last_eight": last_eight,
            "note": a.note,
            "note_url": a.note_url,
            "created_at": rfc3339(a.created_at),
            "updated_at": rfc3339(a.updated_at),
            "scopes": a.scopes,
            "fingerprint": a.fingerprint,
            "user": self.render_user(a.user),
        })
    }

    fn render_grant(&self, g: &Grant) -> Value {
        json!({
            "id": g.id,
            "url": format!("{}/api/v3/applications/grants/{}", self.origin, g.id),
            "app": self.render_app(&g.client_id, None),
            "created_at": rfc3339(g.created_at),
            "updated_at": rfc3339(g.updated_at),
            "scopes": g.scopes,
        })
    }

    /// The `simple-user` schema, fields in spec order, URLs as GHES builds them.
    fn render_user(&self, user: usize) -> Value {
        let u = &self.users[user];
        let api = format!("{}/api/v3/users/{}", self.origin, u.login);
        json!({
            "login": u.login,
            "id": u.id,
            "node_id": base64::engine::general_purpose::STANDARD.encode(format!("04:User{}", u.id)),
            "avatar_url": format!("{}/avatars/u/{}?", self.origin, u.id),
            "gravatar_id": "",
            "url": api,
            "html_url": format!("{}/{}", self.origin, u.login),
            "followers_url": format!("{api}/followers"),
            "following_url": format!("{api}/following{{/other_user}}"),
            "gists_url": format!("{api}/gists{{/gist_id}}"),
            "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
            "subscriptions_url": format!("{api}/subscriptions"),
            "organizations_url": format!("{api}/orgs"),
            "repos_url": format!("{api}/repos"),
            "events_url": format!("{api}/events{{/privacy}}"),
            "received_events_url": format!("{api}/received_events"),
            "type": "User",
            "site_admin": false,
        })
    }

    // -- the wire ----------------------------------------------------------------------------

    /// Adds GitHub's headers, answers conditional GETs with 304 and gzips when asked.
    fn finish(
        &mut self,
        reply: Reply,
        method: &Method,
        request: &HeaderMap,
        now: u64,
        request_id: &str,
    ) -> Response<Full<Bytes>> {
        let body = reply
            .body
            .as_ref()
            .map(|v| serde_json::to_vec(v).expect("JSON values always serialize"));
        // A real GHES keeps one host name, so its tags are stable; the fake's port changes every
        // run, so the tag is computed as if the origin were a fixed host name.
        let tag = |b: &[u8]| entity_hash(b, &self.origin);
        let etag = match (reply.status, &body) {
            (StatusCode::OK, Some(b)) => Some(format!("W/\"{}\"", tag(b))),
            (StatusCode::CREATED, Some(b)) => Some(format!("\"{}\"", tag(b))),
            _ => None,
        };
        let is_get = *method == Method::GET || *method == Method::HEAD;
        let not_modified = is_get
            && reply.status == StatusCode::OK
            && is_not_modified(request, etag.as_deref(), reply.last_modified);
        // Conditional requests answered with 304 do not count against the rate limit.
        if !not_modified {
            self.rate_limit_used += 1;
        }

        let mut headers = HeaderMap::new();
        let mut put = |name: &'static str, value: &str| {
            let value = HeaderValue::from_str(value)
                .unwrap_or_else(|_| HeaderValue::from_static("invalid"));
            headers.append(HeaderName::from_static(name), value);
        };
        put("server", "GitHub.com");
        put("date", &http_date(now));
        if not_modified {
            put("cache-control", CACHE_CONTROL);
            put("vary", VARY_1);
            put("vary", VARY_2);
            if let Some(etag) = &etag {
                put("etag", etag);
            }
            if let Some(at) = reply.last_modified {
                put("last-modified", &http_date(at));
            }
            self.rate_limit_headers_into(&mut put);
            put("x-github-request-id", request_id);
            return build_response(StatusCode::NOT_MODIFIED, headers, Bytes::new());
        }
        if body.is_some() {
            put("content-type", JSON_CONTENT_TYPE);
        }
        put("cache-control", CACHE_CONTROL);
        put("vary", VARY_1);
        if let Some(etag) = &etag {
            put("etag", etag);
        }
        if let Some(at) = reply.last_modified {
            put("last-modified", &http_date(at));
        }
        if let Some(location) = &reply.location {
            put("location", location);
        }
        if let Some(link) = &reply.link {
            put("link", link);
        }
        for (name, value) in &reply.extra {
            put(name, value);
        }
        put("x-github-media-type", &media_type(request));
        put("x-github-enterprise-version", ENTERPRISE_VERSION);
        self.rate_limit_headers_into(&mut put);
        put("access-control-expose-headers", EXPOSE_HEADERS);
        put("access-control-allow-origin", "*");
        put("x-frame-options", "deny");
        put("x-content-type-options", "nosniff");
        put("x-xss-protection", "0");
        put(
            "referrer-policy",
            "origin-when-cross-origin, strict-origin-when-cross-origin",
        );
        put("content-security-policy", "default-src 'none'");
        put("vary", VARY_2);
        let body = match body {
            Some(body) if accepts_gzip(request) => {
                put("content-encoding", "gzip");
                gzip(&body)
            }
            Some(body) => body,
            None => Vec::new(),
        };
        put("x-github-request-id", request_id);
        build_response(reply.status, headers, Bytes::from(body))
    }

    fn rate_limit_headers_into(&self, put: &mut impl FnMut(&'static str, &str)) {
        if !self.rate_limit_headers {
            return;
        }
        let used = self.rate_limit_used.min(RATE_LIMIT);
        put("x-ratelimit-limit", &RATE_LIMIT.to_string());
        put("x-ratelimit-remaining", &(RATE_LIMIT - used).to_string());
        put("x-ratelimit-reset", &self.rate_limit_reset.to_string());
        put("x-ratelimit-used", &used.to_string());
        put("x-ratelimit-resource", "core");
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// `per_page`, `page` and `client_id` from a list request.
struct Pagination {
    page: usize,
    per_page: usize,
    client_id: Option<String>,
    /// `client_id` and `per_page` exactly as the request spelled them, in its order; the links
    /// keep them.
    kept: Vec<String>,
}

impl Pagination {
    fn from_query(query: &str) -> Pagination {
        let mut params = Pagination {
            page: 1,
            per_page: 30,
            client_id: None,
            kept: Vec::new(),
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "page" => params.page = value.parse().ok().filter(|p| *p > 0).unwrap_or(1),
                "per_page" => {
                    params.per_page = value
                        .parse()
                        .ok()
                        .filter(|p| *p > 0)
                        .map_or(30, |p: usize| p.min(100));
                    params.kept.push(pair.to_owned());
                }
                "client_id" => {
                    params.client_id = Some(percent_decode(value));
                    params.kept.push(pair.to_owned());
                }
                _ => {}
            }
        }
        params
    }

    /// The requested page of `items` and the `Link` header for it (none when all fits on one).
    fn page<'a, T>(&self, items: &'a [T], origin: &str, path: &str) -> (&'a [T], Option<String>) {
        let start = (self.page - 1)
            .saturating_mul(self.per_page)
            .min(items.len());
        let end = start.saturating_add(self.per_page).min(items.len());
        let last = items.len().div_ceil(self.per_page).max(1);
        if last == 1 && self.page == 1 {
            return (&items[start..end], None);
        }
        let url = |page: usize| {
            let mut query = self.kept.clone();
            query.push(format!("page={page}"));
            format!("<{origin}{path}?{}>", query.join("&"))
        };
        let mut links = Vec::new();
        if self.page > 1 {
            links.push(format!("{}; rel=\"prev\"", url(self.page - 1)));
        }
        if self.page < last {
            links.push(format!("{}; rel=\"next\"", url(self.page + 1)));
            links.push(format!("{}; rel=\"last\"", url(last)));
        }
        if self.page > 1 {
            links.push(format!("{}; rel=\"first\"", url(1)));
        }
        (&items[start..end], Some(links.join(", ")))
    }
}

fn parse_object(body: &[u8], doc: &str) -> Result<Map<String, Value>, Reply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Reply::error(
            StatusCode::BAD_REQUEST,
            "Body should be a JSON object",
            doc,
        )),
        Err(_) => Err(Reply::error(
            StatusCode::BAD_REQUEST,
            "Problems parsing JSON",
            doc,
        )),
    }
}

fn string_field(
    fields: &Map<String, Value>,
    key: &str,
    doc: &str,
) -> Result<Option<String>, Reply> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Reply::invalid_field(doc, key)),
    }
}

fn scopes_field(
    fields: &Map<String, Value>,
    key: &str,
    doc: &str,
) -> Result<Option<Vec<String>>, Reply> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| Reply::invalid_field(doc, key)),
        Some(_) => Err(Reply::invalid_field(doc, key)),
    }
}

fn missing_client_secret(doc: &str) -> Reply {
    Reply::validation(
        doc,
        vec![json!({"resource": "OauthAccess", "field": "client_secret", "code": "missing_field"})],
    )
}

fn duplicate_note(doc: &str) -> Reply {
    Reply::validation(
        doc,
        vec![json!({"resource": "OauthAccess", "code": "already_exists", "field": "description"})],
    )
}

fn dedup(items: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

fn is_not_modified(request: &HeaderMap, etag: Option<&str>, last_modified: Option<u64>) -> bool {
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    let if_none_match: Vec<String> = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(opaque)
        .collect();
    if !if_none_match.is_empty() {
        // If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2); weak comparison.
        let Some(etag) = etag else { return false };
        let ours = opaque(etag);
        return if_none_match.iter().any(|tag| *tag == ours || tag == "*");
    }
    let since = request
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date);
    matches!((since, last_modified), (Some(since), Some(modified)) if modified <= since)
}

fn accepts_gzip(request: &HeaderMap) -> bool {
    request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(1.0, |q| q.trim().parse::<f32>().unwrap_or(0.0));
            coding.eq_ignore_ascii_case("gzip") && q > 0.0
        })
}

/// `X-GitHub-Media-Type` for the request's `Accept`, as GitHub reports it.
fn media_type(request: &HeaderMap) -> String {
    let accept = request
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let requested = accept
        .split(',')
        .find_map(|item| item.trim().strip_prefix("application/vnd.github."))
        .map(|rest| rest.split(['+', ';']).next().unwrap_or("").trim());
    match requested {
        None | Some("") | Some("v3") => "github.v3; format=json".to_owned(),
        Some(rest) => {
            let param = rest.strip_prefix("v3.").unwrap_or(rest);
            format!("github.v3; param={param}; format=json")
        }
    }
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(body)
        .expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

fn build_response(status: StatusCode, headers: HeaderMap, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

fn html_not_found(now: u64, request_id: &str) -> Response<Full<Bytes>> {
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.append(HeaderName::from_static(name), value);
        }
    };
    put("server", "GitHub.com");
    put("date", &http_date(now));
    put("content-type", "text/html; charset=utf-8");
    put("cache-control", "no-cache");
    put("x-frame-options", "deny");
    put("x-content-type-options", "nosniff");
    put("x-github-request-id", request_id);
    build_response(
        StatusCode::NOT_FOUND,
        headers,
        Bytes::from_static(NOT_FOUND_HTML.as_bytes()),
    )
}

/// Five colon-separated upper-hex groups like `FD89:2360:D4F037:1E86CF4:5BB12844`; the last one
/// is the (fake) time, as in GitHub's ids.
fn request_id(sequence: u64, now: u64) -> String {
    let mut rng = SplitMix64(sequence ^ 0x6768_6573_2D76_6372);
    let a = rng.next_u64();
    let b = rng.next_u64();
    format!(
        "{:04X}:{:04X}:{:06X}:{:07X}:{:08X}",
        a & 0xFFFF,
        (a >> 16) & 0xFFFF,
        (a >> 32) & 0xFF_FFFF,
        b & 0xFFF_FFFF,
        now & 0xFFFF_FFFF
    )
}

fn base62_crc32(data: &str) -> String {
    let mut n = crc32fast::hash(data.as_bytes());
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|&b| b as char).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex_pair = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex_pair) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Howard Hinnant's `civil_from_days` for days since 1970-01-01 (non-negative only).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// The inverse of [`civil_from_days`], for years from 1970.
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Every handle is shareable across tasks and threads.
fn _assert_send_sync() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<FakeGhes>();
    is_send_sync::<FakeGhesBuilder>();
    is_send_sync::<SeenRequest>();
}

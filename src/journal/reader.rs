//! Reading a journal from the command line: straight from its directory, or, when a running
//! proxy holds it (sled allows one process per database), through that proxy's
//! `/__ghes-vcr/journal` endpoint, whose origin the proxy writes to `DIR/admin-url`.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::store::{self, Filter, ADMIN_FILE};
use super::JournalEntry;

/// Why the journal cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    #[error("there is no journal at {} (ghes-vcr creates it when it first journals; name another with --journal DIR)", .0.display())]
    Missing(PathBuf),
    #[error(
        "the journal {} is held by a running ghes-vcr whose admin address is unknown; pass it with --admin http://HOST:PORT",
        dir.display()
    )]
    Busy {
        dir: PathBuf,
        #[source]
        source: store::JournalError,
    },
    #[error(transparent)]
    Journal(#[from] store::JournalError),
    #[error("cannot read the journal through {admin}")]
    Remote {
        admin: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Where entries come from.
pub enum Source {
    /// The database itself.
    Local { db: sled::Db, dir: PathBuf },
    /// A running proxy's admin origin, e.g. `http://127.0.0.1:8080`.
    Remote { admin: String },
}

impl Source {
    /// Opens `dir`, or goes through `admin` (given, or read from `DIR/admin-url` when the
    /// database is held by a running proxy).
    ///
    /// # Errors
    /// [`ReaderError::Missing`], [`ReaderError::Busy`].
    pub fn open(dir: &Path, admin: Option<&str>) -> Result<Self, ReaderError> {
        if let Some(admin) = admin {
            return Ok(Source::Remote {
                admin: admin.trim_end_matches('/').to_owned(),
            });
        }
        if !dir.join("conf").exists() && !dir.join("db").exists() {
            return Err(ReaderError::Missing(dir.to_owned()));
        }
        match store::open_db(dir) {
            Ok(db) => Ok(Source::Local {
                db,
                dir: dir.to_owned(),
            }),
            Err(source) => match std::fs::read_to_string(dir.join(ADMIN_FILE)) {
                Ok(admin) if !admin.trim().is_empty() => Ok(Source::Remote {
                    admin: admin.trim().trim_end_matches('/').to_owned(),
                }),
                _ => Err(ReaderError::Busy {
                    dir: dir.to_owned(),
                    source,
                }),
            },
        }
    }

    /// Entries in the filter's range, oldest first.
    ///
    /// # Errors
    /// Reading failed.
    pub async fn entries(&self, filter: Filter) -> Result<Vec<JournalEntry>, ReaderError> {
        match self {
            Source::Local { db, dir } => {
                let (db, dir) = (db.clone(), dir.clone());
                tokio::task::spawn_blocking(move || store::query(&db, &dir, &filter))
                    .await
                    .map_err(|err| ReaderError::Remote {
                        admin: "the local journal".into(),
                        source: Box::new(err),
                    })?
                    .map_err(ReaderError::from)
            }
            Source::Remote { admin } => fetch(admin, &filter).await,
        }
    }
}

async fn fetch(admin: &str, filter: &Filter) -> Result<Vec<JournalEntry>, ReaderError> {
    let remote = |source: Box<dyn std::error::Error + Send + Sync>| ReaderError::Remote {
        admin: admin.to_owned(),
        source,
    };
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in [
        ("since", filter.since),
        ("until", filter.until),
        ("after", filter.after),
    ] {
        if let Some(value) = value {
            query.append_pair(key, &value.to_string());
        }
    }
    if let Some(limit) = filter.limit {
        query.append_pair("limit", &limit.to_string());
    }
    let uri: http::Uri = format!("{admin}/__ghes-vcr/journal?{}", query.finish())
        .parse()
        .map_err(|err| remote(Box::new(err)))?;
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = client.get(uri).await.map_err(|err| remote(Box::new(err)))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|err| remote(Box::new(err)))?
        .to_bytes();
    if !status.is_success() {
        let message = format!("{status}: {}", String::from_utf8_lossy(&body));
        return Err(remote(message.into()));
    }
    serde_json::from_slice(&body).map_err(|err| remote(Box::new(err)))
}

//! Clients that keep creating authorizations through a proxy until it stops answering, for
//! the tests that kill or stop a proxy under load.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{basic, client};

pub struct Creators {
    answered: Arc<AtomicUsize>,
    progress: watch::Receiver<usize>,
    workers: Vec<JoinHandle<()>>,
}

impl Creators {
    /// `clients` loops, each POSTing `/api/v3/authorizations` with a unique note and counting
    /// every 201; a loop ends at the first failure.
    pub fn start(url: &str, password: &str, clients: usize) -> Self {
        let answered = Arc::new(AtomicUsize::new(0));
        let (progress_tx, progress) = watch::channel(0usize);
        let progress_tx = Arc::new(progress_tx);
        let workers = (0..clients)
            .map(|worker| {
                let (url, password) = (url.to_owned(), password.to_owned());
                let (answered, progress_tx) = (Arc::clone(&answered), Arc::clone(&progress_tx));
                tokio::spawn(async move {
                    let client = client();
                    for n in 0.. {
                        let sent = client
                            .post(format!("{url}/api/v3/authorizations"))
                            .header("authorization", basic("octocat", &password))
                            .json(&json!({"note": format!("worker {worker} call {n}")}))
                            .send()
                            .await;
                        match sent {
                            Ok(response) if response.status() == 201 => {
                                progress_tx
                                    .send_replace(answered.fetch_add(1, Ordering::SeqCst) + 1);
                            }
                            _ => return,
                        }
                    }
                })
            })
            .collect();
        Self {
            answered,
            progress,
            workers,
        }
    }

    /// Waits until `count` creations were answered.
    pub async fn wait_for(&mut self, count: usize) {
        self.progress
            .wait_for(|n| *n >= count)
            .await
            .expect("the clients are running");
    }

    pub fn answered(&self) -> usize {
        self.answered.load(Ordering::SeqCst)
    }

    /// Waits for every loop to end (the proxy must have stopped answering).
    pub async fn join(self) -> usize {
        for worker in self.workers {
            worker.await.expect("a client panicked");
        }
        self.answered.load(Ordering::SeqCst)
    }
}

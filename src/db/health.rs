//! Whether the database answers, checked on a thread of its own.
//!
//! `/healthz` is polled by load balancers and monitors to see a database outage while it
//! lasts. Checked on a worker's blocking threads, the check queued behind the requests already
//! there; in an outage each of those waits the pool's full 5 s for a connection, so the check
//! answered 6 to 10 s late, and a 7 s PostgreSQL outage under load could pass without a single
//! poll seeing it (the PostgreSQL restart fault test, `tests/it/faults.rs`). Here the check
//! waits for nothing but the database. Asks that come while a check runs are answered together
//! by the next check, which starts after them: a flood of polls costs one check at a time, and
//! no answer is older than the ask.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::{ping, DbError, Pool};

/// The checking thread's handle: asks for a check and waits for its answer.
pub struct HealthCheck {
    asks: Arc<Asks>,
    answers: tokio::sync::watch::Receiver<Answer>,
}

/// What the thread and the askers share.
#[derive(Default)]
struct Asks {
    state: Mutex<AskState>,
    wake: Condvar,
}

#[derive(Default)]
struct AskState {
    /// Someone asked since the last check began.
    wanted: bool,
    /// Checks begun so far.
    begun: u64,
    /// The handle is gone: the thread ends.
    stopping: bool,
}

/// The last check's number (counted from 1) and whether the database answered it.
type Answer = (u64, bool);

impl HealthCheck {
    /// Starts the checking thread. Each check waits at most `patience` for one of the pool's
    /// connections, then sends `SELECT 1`.
    pub fn start(pool: Pool, patience: Duration) -> HealthCheck {
        let asks = Arc::new(Asks::default());
        let (publish, answers) = tokio::sync::watch::channel((0, false));
        let shared = asks.clone();
        let spawned = std::thread::Builder::new()
            .name("health".into())
            .spawn(move || {
                while let Some(number) = shared.next_check() {
                    let answered = pool
                        .get_then(patience, |conn| ping(conn).map_err(DbError::from))
                        .is_ok();
                    if publish.send((number, answered)).is_err() {
                        return;
                    }
                }
            });
        if let Err(e) = spawned {
            // Every check then says the database does not answer: the service is in trouble.
            tracing::error!(error = %e, "cannot start the health check's thread");
        }
        HealthCheck { asks, answers }
    }

    /// Whether the database answers a check that begins after this call, waiting at most
    /// `within` for it (false after that).
    pub async fn database_answers(&self, within: Duration) -> bool {
        let mut answers = self.answers.clone();
        let after = {
            let Ok(mut state) = self.asks.state.lock() else {
                return false;
            };
            state.wanted = true;
            self.asks.wake.notify_one();
            state.begun
        };
        let answer = answers.wait_for(|(number, _)| *number > after);
        let answered = match tokio::time::timeout(within, answer).await {
            Ok(Ok(answer)) => answer.1,
            _ => false,
        };
        answered
    }
}

impl Asks {
    /// Waits until someone asks, then numbers the check about to begin; None once stopping.
    fn next_check(&self) -> Option<u64> {
        let state = self.state.lock().ok()?;
        let mut state = self
            .wake
            .wait_while(state, |s| !s.wanted && !s.stopping)
            .ok()?;
        if state.stopping {
            return None;
        }
        state.wanted = false;
        state.begun += 1;
        Some(state.begun)
    }
}

impl Drop for HealthCheck {
    fn drop(&mut self) {
        if let Ok(mut state) = self.asks.state.lock() {
            state.stopping = true;
        }
        self.asks.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::tests::scratch_database;
    use std::time::Instant;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap()
    }

    /// Fifty polls that come while a check runs (here: waits for the pool's only connection)
    /// are answered by the check after it, not by fifty: each check is one `SELECT 1` on a
    /// pooled connection, which the pool's statement counter sees.
    #[test]
    fn asks_during_a_check_share_the_next_one() {
        let (_dir, pool) = scratch_database(1);
        let health = Arc::new(HealthCheck::start(pool.clone(), Duration::from_secs(5)));
        let held = pool.get().unwrap();
        let before = pool.stats().statements();
        let answers = runtime().block_on(async {
            let asks: Vec<_> = (0..50)
                .map(|_| {
                    let health = health.clone();
                    tokio::spawn(
                        async move { health.database_answers(Duration::from_secs(5)).await },
                    )
                })
                .collect();
            tokio::time::sleep(Duration::from_millis(300)).await;
            drop(held);
            futures_util::future::join_all(asks).await
        });
        assert!(answers.iter().all(|a| matches!(a, Ok(true))), "{answers:?}");
        let checks = pool.stats().statements() - before;
        assert!((1..=2).contains(&checks), "{checks} checks for 50 asks");
    }

    /// With every connection of the pool taken, the check says no after its patience, and the
    /// ask does not wait past its own bound whatever the check does; once a connection is free
    /// again, the next ask says yes.
    #[test]
    fn a_database_that_gives_no_connection_is_reported_within_the_bound() {
        let (_dir, pool) = scratch_database(1);
        let health = HealthCheck::start(pool.clone(), Duration::from_millis(300));
        let rt = runtime();
        let held = pool.get().unwrap();

        let started = Instant::now();
        assert!(!rt.block_on(health.database_answers(Duration::from_secs(5))));
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(3),
            "the check waited its patience: {took:?}"
        );

        let slow = HealthCheck::start(pool.clone(), Duration::from_secs(30));
        let started = Instant::now();
        assert!(!rt.block_on(slow.database_answers(Duration::from_millis(200))));
        assert!(started.elapsed() < Duration::from_secs(2));

        drop(held);
        assert!(rt.block_on(health.database_answers(Duration::from_secs(5))));
    }
}

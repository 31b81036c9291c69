//! The producer's blocking transaction calls (init, send offsets, commit, abort), made on a
//! thread of their own and each waited for at most a bound. librdkafka does not always
//! honour a call's timeout: after a transaction coordinator restarted, a
//! `send_offsets_to_transaction` was seen waiting forever inside librdkafka (an internal
//! request that is never answered nor timed out). A call that does not return in time
//! leaves its thread and its producer behind; the caller replaces both.
//!
//! A call can also be started and looked at later (`submit`), so the job keeps reading and
//! aggregating while a transaction commits.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::producer::BaseProducer;

type Job<C> = Box<dyn FnOnce(&BaseProducer<C>) + Send>;

/// A producer and the thread that makes its transaction calls.
pub struct Txn<C: rdkafka::producer::ProducerContext + 'static> {
    producer: Arc<BaseProducer<C>>,
    jobs: mpsc::Sender<Job<C>>,
}

/// A call did not return within its bound.
#[derive(Debug)]
pub struct Stuck;

impl<C: rdkafka::producer::ProducerContext + 'static> Txn<C> {
    pub fn new(producer: BaseProducer<C>) -> anyhow::Result<Self> {
        let producer = Arc::new(producer);
        let (jobs, queue) = mpsc::channel::<Job<C>>();
        let worker = Arc::clone(&producer);
        std::thread::Builder::new()
            .name("transactions".to_string())
            .spawn(move || {
                // Ends when the sender is dropped; the last reference to a producer left
                // behind is dropped here, on this thread.
                for job in queue {
                    job(&worker);
                }
            })
            .context("starting the thread for transaction calls")?;
        Ok(Txn { producer, jobs })
    }

    /// The producer, for the calls that never block (send, poll, begin a transaction).
    pub fn producer(&self) -> &BaseProducer<C> {
        &self.producer
    }

    /// Runs `f` on the transaction thread and waits for its answer at most `limit`.
    pub fn call<T: Send + 'static>(
        &self,
        limit: Duration,
        f: impl FnOnce(&BaseProducer<C>) -> T + Send + 'static,
    ) -> Result<T, Stuck> {
        self.submit(limit, f).wait()
    }

    /// Starts `f` on the transaction thread; its answer is due within `limit`.
    pub fn submit<T: Send + 'static>(
        &self,
        limit: Duration,
        f: impl FnOnce(&BaseProducer<C>) -> T + Send + 'static,
    ) -> Reply<T> {
        let (answer, answered) = mpsc::sync_channel(1);
        let job: Job<C> = Box::new(move |producer| {
            let _ = answer.send(f(producer));
        });
        // A thread that is gone answers nothing: the reply then reads as stuck at once.
        let _ = self.jobs.send(job);
        Reply {
            answered,
            due: Instant::now() + limit,
        }
    }
}

/// The answer of a call started with `submit`.
pub struct Reply<T> {
    answered: mpsc::Receiver<T>,
    due: Instant,
}

impl<T> Reply<T> {
    /// The answer if it is there, `Err(Stuck)` once it is overdue, `None` meanwhile.
    pub fn try_take(&self) -> Option<Result<T, Stuck>> {
        match self.answered.try_recv() {
            Ok(answer) => Some(Ok(answer)),
            Err(mpsc::TryRecvError::Disconnected) => Some(Err(Stuck)),
            Err(mpsc::TryRecvError::Empty) if Instant::now() >= self.due => Some(Err(Stuck)),
            Err(mpsc::TryRecvError::Empty) => None,
        }
    }

    /// Waits for the answer until it is due.
    pub fn wait(self) -> Result<T, Stuck> {
        let left = self.due.saturating_duration_since(Instant::now());
        self.answered.recv_timeout(left).map_err(|_| Stuck)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::config::ClientConfig;
    use rdkafka::producer::DefaultProducerContext;

    fn txn() -> Txn<DefaultProducerContext> {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:1")
            .create()
            .unwrap();
        Txn::new(producer).unwrap()
    }

    #[test]
    fn a_call_that_returns_gives_its_answer() {
        let t = txn();
        assert_eq!(t.call(Duration::from_secs(5), |_| 42).unwrap(), 42);
    }

    #[test]
    fn a_call_that_does_not_return_in_time_is_given_up() {
        let t = txn();
        let started = std::time::Instant::now();
        let stuck = t.call(Duration::from_millis(200), |_| {
            std::thread::sleep(Duration::from_secs(2));
        });
        assert!(stuck.is_err());
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_submitted_call_is_looked_at_without_waiting() {
        let t = txn();
        let reply = t.submit(Duration::from_secs(5), |_| {
            std::thread::sleep(Duration::from_millis(300));
            7
        });
        assert!(reply.try_take().is_none(), "no answer yet, and no wait");
        assert_eq!(reply.wait().unwrap(), 7);
        let overdue = t.submit(Duration::from_millis(50), |_| {
            std::thread::sleep(Duration::from_millis(500));
        });
        std::thread::sleep(Duration::from_millis(100));
        assert!(matches!(overdue.try_take(), Some(Err(Stuck))));
    }
}

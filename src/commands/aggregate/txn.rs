//! The producer's blocking transaction calls (init, send offsets, commit, abort), made on a
//! thread of their own and each waited for at most a bound. librdkafka does not always
//! honour a call's timeout: after a transaction coordinator restarted, a
//! `send_offsets_to_transaction` was seen waiting forever inside librdkafka (an internal
//! request that is never answered nor timed out). A call that does not return in time
//! leaves its thread and its producer behind; the caller replaces both.
//!
//! A call is started (`submit`) and looked at later, so the job keeps reading and
//! aggregating while a transaction commits, or waited for until its answer is due or a
//! stop no longer waits for it.

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

    /// Waits for the answer until it is due, or until `give_up` says to wait no more
    /// (`Ok(None)`; the call goes on, unheard).
    pub fn wait_unless(self, give_up: impl Fn() -> bool) -> Result<Option<T>, Stuck> {
        loop {
            if let Some(answer) = self.try_take() {
                return answer.map(Some);
            }
            if give_up() {
                return Ok(None);
            }
            let left = self.due.saturating_duration_since(Instant::now());
            if let Ok(answer) = self.answered.recv_timeout(left.min(LOOK_AGAIN)) {
                return Ok(Some(answer));
            }
        }
    }
}

/// How often `wait_unless` asks whether to give up.
const LOOK_AGAIN: Duration = Duration::from_millis(10);

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
        let answer = t
            .submit(Duration::from_secs(5), |_| 42)
            .wait_unless(|| false);
        assert_eq!(answer.unwrap(), Some(42));
    }

    #[test]
    fn a_call_that_does_not_return_in_time_is_given_up() {
        let t = txn();
        let started = std::time::Instant::now();
        let stuck = t
            .submit(Duration::from_millis(200), |_| {
                std::thread::sleep(Duration::from_secs(2));
            })
            .wait_unless(|| false);
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
        assert_eq!(reply.wait_unless(|| false).unwrap(), Some(7));
        let overdue = t.submit(Duration::from_millis(50), |_| {
            std::thread::sleep(Duration::from_millis(500));
        });
        std::thread::sleep(Duration::from_millis(100));
        assert!(matches!(overdue.try_take(), Some(Err(Stuck))));
    }

    #[test]
    fn a_wait_can_be_given_up_before_the_answer_is_due() {
        let t = txn();
        let started = std::time::Instant::now();
        let reply = t.submit(Duration::from_secs(5), |_| {
            std::thread::sleep(Duration::from_secs(2));
        });
        let given_up = reply.wait_unless(|| started.elapsed() >= Duration::from_millis(100));
        assert!(matches!(given_up, Ok(None)));
        assert!(started.elapsed() < Duration::from_secs(1));
        let answered = txn()
            .submit(Duration::from_secs(5), |_| 3)
            .wait_unless(|| false);
        assert!(matches!(answered, Ok(Some(3))));
    }
}

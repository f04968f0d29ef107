//! Steps that finish once begun, whoever stops waiting for them.
//!
//! A few steps must not stop half-way, and cannot be taken back once under way: a backup's PIT
//! commit (a store write that, once sent, may land whatever its caller does) and a restore's
//! swap of a table in its catalog (the old table dropped, then the new one registered or the
//! old one put back). A run stopped by a signal drops its work; a job cancelled in `bcn serve`
//! is dropped too. So each such step runs in a task of its own ([`to_the_end`]): dropped, its
//! caller no longer waits, but the step still ends in one of its whole outcomes. A stopped
//! command waits for them ([`settle`]) before its process ends, and says what they did, so
//! that its message ("nothing was committed after the signal", or what was) is true.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;

/// The steps in flight: a command waits for them before it exits.
static STEPS: LazyLock<TaskTracker> = LazyLock::new(TaskTracker::new);

/// What steps did after their callers were gone (each said once, by [`settle`]).
static LANDED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The steps in flight, by number, with what each does once done.
static RUNNING: Mutex<BTreeMap<u64, String>> = Mutex::new(BTreeMap::new());

static NEXT: AtomicU64 = AtomicU64::new(0);

fn landed(what: String) {
    LANDED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(what);
}

/// Runs `step` to its end in a task of its own and returns its outcome. When the caller is
/// dropped first, the step goes on; if it succeeds, `done` (what it did, "PIT … was
/// committed") is said by [`settle`].
///
/// # Panics
///
/// When `step` panics, or its task is cancelled (the runtime shutting down under it).
pub(crate) async fn to_the_end<T, E>(
    done: String,
    step: impl Future<Output = Result<T, E>> + Send + 'static,
) -> Result<T, E>
where
    T: Send + 'static,
    E: Send + 'static,
{
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    RUNNING
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id, done.clone());
    let (sender, receiver) = oneshot::channel::<Result<T, E>>();
    let what = done.clone();
    let mut task = STEPS.spawn(async move {
        let result = step.await;
        RUNNING
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        // The caller is gone (it closed the channel first): say what was done.
        if let Err(Ok(_)) = sender.send(result) {
            landed(what);
        }
    });
    let mut waiting = Waiting {
        receiver: Some(receiver),
        done,
    };
    let outcome = match waiting.receiver.as_mut() {
        Some(receiver) => receiver.await,
        None => unreachable!("the receiver is taken only here and on drop"),
    };
    waiting.receiver = None;
    match outcome {
        Ok(result) => result,
        Err(_) => match (&mut task).await {
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            _ => panic!("a step that finishes once begun ended without its outcome"),
        },
    }
}

/// The caller's end of a step: dropped before the outcome was read (a signal, a cancelled
/// job), it closes the channel, and a success that had already arrived is said by [`settle`];
/// one that arrives later is said by the step's task. Exactly one of the two.
struct Waiting<T, E> {
    receiver: Option<oneshot::Receiver<Result<T, E>>>,
    done: String,
}

impl<T, E> Drop for Waiting<T, E> {
    fn drop(&mut self) {
        if let Some(mut receiver) = self.receiver.take() {
            receiver.close();
            if let Ok(Ok(_)) = receiver.try_recv() {
                landed(std::mem::take(&mut self.done));
            }
        }
    }
}

/// What the steps whose callers were gone did, once [`settle`] waited for them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Settled {
    /// What they did ("PIT … was committed to …").
    pub landed: Vec<String>,
    /// Those still running when the time was up: what each does once done.
    pub unfinished: Vec<String>,
}

/// Waits, at most `limit`, for the steps in flight to end (a command stopped by a signal calls
/// it before its process ends), and takes what those whose callers were gone did.
pub async fn settle(limit: Duration) -> Settled {
    STEPS.close();
    let _ = tokio::time::timeout(limit, STEPS.wait()).await;
    STEPS.reopen();
    Settled {
        landed: std::mem::take(&mut *LANDED.lock().unwrap_or_else(PoisonError::into_inner)),
        unfinished: RUNNING
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The steps of these tests, told apart from other tests' by their names.
    fn ours(settled: &Settled, tag: &str) -> Vec<String> {
        settled
            .landed
            .iter()
            .filter(|s| s.contains(tag))
            .cloned()
            .collect()
    }

    #[tokio::test]
    async fn a_step_whose_caller_is_dropped_still_ends_and_says_what_it_did() {
        let (tx, rx) = oneshot::channel::<()>();
        let step = async move {
            let _ = rx.await;
            Ok::<_, String>(7)
        };
        // The caller gives up before the step can end (a signal dropping the run).
        let caller = to_the_end("dropped-step committed".into(), step);
        let gave_up = tokio::time::timeout(Duration::from_millis(50), caller).await;
        assert!(gave_up.is_err(), "the step cannot end before it is let go");
        tx.send(()).unwrap();
        let settled = settle(Duration::from_secs(5)).await;
        assert_eq!(ours(&settled, "dropped-step"), ["dropped-step committed"]);
        assert!(
            !settled
                .unfinished
                .iter()
                .any(|s| s.contains("dropped-step"))
        );
    }

    #[tokio::test]
    async fn a_step_that_ended_before_its_dropped_caller_read_it_is_said_once() {
        use std::task::Poll;
        let mut caller = Box::pin(to_the_end("unread-step committed".into(), async {
            Ok::<_, String>(())
        }));
        // Polled once: the step's task is spawned and the caller waits for it.
        assert!(matches!(futures::poll!(caller.as_mut()), Poll::Pending));
        // The step runs and sends its outcome (this runtime has one thread: the caller is
        // not polled meanwhile); then the caller is dropped without reading it.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        drop(caller);
        let settled = settle(Duration::from_secs(5)).await;
        assert_eq!(ours(&settled, "unread-step"), ["unread-step committed"]);
    }

    #[tokio::test]
    async fn a_failed_step_or_one_waited_for_is_not_said_by_settle() {
        assert_eq!(
            to_the_end("waited-step done".into(), async { Ok::<_, String>(1) }).await,
            Ok(1)
        );
        let failing = to_the_end("failed-step done".into(), async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Err::<(), _>("refused".to_owned())
        });
        assert!(
            tokio::time::timeout(Duration::from_millis(10), failing)
                .await
                .is_err()
        );
        let settled = settle(Duration::from_secs(5)).await;
        assert!(ours(&settled, "waited-step").is_empty(), "{settled:?}");
        assert!(ours(&settled, "failed-step").is_empty(), "{settled:?}");
    }

    #[tokio::test]
    async fn a_step_still_running_when_the_time_is_up_is_named() {
        let never = to_the_end("stuck-step done".into(), async {
            std::future::pending::<Result<(), ()>>().await
        });
        assert!(
            tokio::time::timeout(Duration::from_millis(10), never)
                .await
                .is_err()
        );
        let settled = settle(Duration::from_millis(50)).await;
        assert!(
            settled.unfinished.iter().any(|s| s == "stuck-step done"),
            "{settled:?}"
        );
    }
}

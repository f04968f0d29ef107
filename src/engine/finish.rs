//! Steps that finish once begun, whoever stops waiting for them.
//!
//! A few steps must not stop half-way, and cannot be taken back once under way: a backup's PIT
//! commit (a store write that, once sent, may land whatever its caller does) and a restore's
//! swap of a table in its catalog (the old table dropped, then the new one registered or the
//! old one put back). A run stopped by a signal drops its work; a job cancelled in `bcn serve`
//! is dropped too. So each such step runs in a task of its own (`to_the_end`): dropped, its
//! caller no longer waits, but the step still ends in one of its whole outcomes. A stopped
//! command waits for them ([`settle`]) before its process ends, and an `apply` entry or a
//! `bcn serve` job for its own ([`scoped`], [`settle_scope`]), and says what they did, so
//! that its message ("nothing was committed after the signal", or what was) is true. Scopes
//! nest (a `bcn serve` job runs `apply`, whose entries have scopes of their own): a step
//! belongs to every scope around it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;

tokio::task_local! {
    /// The runs whose steps these are (an `apply` entry, a `bcn serve` job), if one said so.
    static SCOPE: Arc<Within>;
}

/// A run whose steps are waited for together ([`scoped`], [`settle_scope`]), and what they
/// completed.
#[derive(Clone, Debug)]
pub struct Scope {
    id: u64,
    /// What its steps did, whether their callers waited or not (each step once).
    completed: Arc<Mutex<Vec<String>>>,
}

/// A scope and the scopes around it.
struct Within {
    scope: Scope,
    outer: Option<Arc<Within>>,
}

impl Within {
    fn scopes(&self) -> impl Iterator<Item = &Scope> {
        std::iter::successors(Some(self), |w| w.outer.as_deref()).map(|w| &w.scope)
    }

    fn contains(&self, id: u64) -> bool {
        self.scopes().any(|s| s.id == id)
    }

    fn completed(&self, done: &str) {
        for scope in self.scopes() {
            scope
                .completed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(done.to_owned());
        }
    }
}

/// A step in flight.
struct Running {
    /// What it did once done ("PIT … was committed to …").
    done: String,
    within: Option<Arc<Within>>,
}

/// The steps in flight, by number.
static RUNNING: Mutex<BTreeMap<u64, Running>> = Mutex::new(BTreeMap::new());

/// What steps did after their callers were gone, with their scopes (each said once).
static LANDED: Mutex<Vec<(Option<Arc<Within>>, String)>> = Mutex::new(Vec::new());

static NEXT: AtomicU64 = AtomicU64::new(0);

/// How long a stopped run waits for its steps under way to end.
pub const LIMIT: Duration = Duration::from_secs(30);

fn landed(within: Option<Arc<Within>>, done: String) {
    LANDED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((within, done));
}

/// A new scope, for [`scoped`].
pub fn new_scope() -> Scope {
    Scope {
        id: NEXT.fetch_add(1, Ordering::Relaxed),
        completed: Arc::default(),
    }
}

/// Runs `work` with its steps in `scope` (and in the scopes around it where it runs):
/// [`settle_scope`] then waits for those alone.
pub fn scoped<F: Future>(scope: &Scope, work: F) -> impl Future<Output = F::Output> + use<F> {
    let scope = scope.clone();
    async move {
        // The scopes around are those where it is first polled, not where it was made.
        let within = Within {
            scope,
            outer: SCOPE.try_with(Arc::clone).ok(),
        };
        SCOPE.scope(Arc::new(within), work).await
    }
}

/// Removes its step from [`RUNNING`] however the step's task ends (a panic, a runtime
/// shutting down under it).
struct Ended(u64);

impl Drop for Ended {
    fn drop(&mut self) {
        RUNNING
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.0);
    }
}

/// Runs `step` to its end in a task of its own and returns its outcome. When the caller is
/// dropped first, the step goes on; if it succeeds, `done` (what it did, "PIT … was
/// committed to …") is said by [`settle`] or [`settle_scope`].
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
    let within = SCOPE.try_with(Arc::clone).ok();
    RUNNING
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(
            id,
            Running {
                done: done.clone(),
                within: within.clone(),
            },
        );
    let (sender, receiver) = oneshot::channel::<Result<T, E>>();
    let (what, its) = (done.clone(), within.clone());
    let mut task = tokio::spawn(async move {
        let _ended = Ended(id);
        let result = step.await;
        if let (Ok(_), Some(within)) = (&result, &its) {
            within.completed(&what);
        }
        // The caller is gone (it closed the channel first): say what was done, before the
        // step stops counting as running.
        if let Err(Ok(_)) = sender.send(result) {
            landed(its, what);
        }
    });
    let mut waiting = Waiting {
        receiver: Some(receiver),
        within,
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
/// job), it closes the channel, and a success that had already arrived is said; one that
/// arrives later is said by the step's task. Exactly one of the two.
struct Waiting<T, E> {
    receiver: Option<oneshot::Receiver<Result<T, E>>>,
    within: Option<Arc<Within>>,
    done: String,
}

impl<T, E> Drop for Waiting<T, E> {
    fn drop(&mut self) {
        if let Some(mut receiver) = self.receiver.take() {
            receiver.close();
            if let Ok(Ok(_)) = receiver.try_recv() {
                landed(self.within.take(), std::mem::take(&mut self.done));
            }
        }
    }
}

/// Holds `key` (a catalog and a table) until dropped: steps on one thing wait for each other.
pub(crate) async fn one_at_a_time(key: String) -> tokio::sync::OwnedMutexGuard<()> {
    static HELD: LazyLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> =
        LazyLock::new(Mutex::default);
    let lock = HELD
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(key)
        .or_default()
        .clone();
    lock.lock_owned().await
}

/// What the steps whose callers were gone did, once waited for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Settled {
    /// What they did ("PIT … was committed to …").
    pub landed: Vec<String>,
    /// Those still running when the time was up: what each does once done.
    pub unfinished: Vec<String>,
    /// For [`settle_scope`]: what every step of the scope did, before the run stopped or as
    /// it stopped (`landed` is among them).
    pub completed: Vec<String>,
}

impl Settled {
    /// What it says after "stopped by SIGTERM; " or "cancelled; ": what was committed or
    /// registered as the run stopped, else that nothing was.
    pub fn said(&self) -> String {
        let mut said = if self.landed.is_empty() {
            "nothing was committed or registered after that (a backup commits its PIT last, a restore registers each table last)".to_owned()
        } else {
            format!(
                "{} as it stopped (complete: every file was durable before){}",
                self.landed.join(", "),
                if self.unfinished.is_empty() {
                    ", and nothing else after that"
                } else {
                    ""
                }
            )
        };
        if !self.unfinished.is_empty() {
            said.push_str(
                "; still under way when bcn stopped waiting, and not known to have happened: ",
            );
            said.push_str(&self.unfinished.join(", "));
            said.push_str(" (look before the next run)");
        }
        said
    }
}

/// Waits, at most `limit`, for every step in flight to end (a command stopped by a signal
/// calls it before its process ends), and takes what those whose callers were gone did.
pub async fn settle(limit: Duration) -> Settled {
    settle_where(limit, |_| true).await
}

/// [`settle`] for the steps of `scope` alone (a cancelled `apply` entry or `bcn serve` job),
/// with what all its steps completed (taken: said once).
pub async fn settle_scope(scope: &Scope, limit: Duration) -> Settled {
    let mut settled = settle_where(limit, |w| w.is_some_and(|w| w.contains(scope.id))).await;
    settled.completed = std::mem::take(
        &mut *scope
            .completed
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    );
    settled
}

async fn settle_where(limit: Duration, ours: impl Fn(Option<&Within>) -> bool) -> Settled {
    let deadline = tokio::time::Instant::now() + limit;
    let running = || {
        RUNNING
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|r| ours(r.within.as_deref()))
            .map(|r| r.done.clone())
            .collect::<Vec<_>>()
    };
    while !running().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut all = LANDED.lock().unwrap_or_else(PoisonError::into_inner);
    let (mine, others): (Vec<_>, Vec<_>) = all.drain(..).partition(|(w, _)| ours(w.as_deref()));
    *all = others;
    drop(all);
    Settled {
        landed: mine.into_iter().map(|(_, done)| done).collect(),
        unfinished: running(),
        completed: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_step_whose_caller_is_dropped_still_ends_and_says_what_it_did() {
        let scope = new_scope();
        let (tx, rx) = oneshot::channel::<()>();
        let step = async move {
            let _ = rx.await;
            Ok::<_, String>(7)
        };
        // The caller gives up before the step can end (a signal dropping the run).
        let caller = scoped(&scope, to_the_end("PIT p was committed".into(), step));
        let gave_up = tokio::time::timeout(Duration::from_millis(50), caller).await;
        assert!(gave_up.is_err(), "the step cannot end before it is let go");
        let settled = settle_scope(&scope, Duration::from_millis(20)).await;
        assert_eq!(settled.unfinished, ["PIT p was committed"]);
        assert!(settled.said().contains("not known to have happened: PIT p"));
        tx.send(()).unwrap();
        let settled = settle_scope(&scope, Duration::from_secs(5)).await;
        assert_eq!(settled.landed, ["PIT p was committed"]);
        assert!(settled.unfinished.is_empty(), "{settled:?}");
        assert!(
            settled
                .said()
                .starts_with("PIT p was committed as it stopped")
        );
        // Said once.
        assert_eq!(
            settle_scope(&scope, Duration::ZERO).await,
            Settled::default()
        );
    }

    #[tokio::test]
    async fn a_step_that_ended_before_its_dropped_caller_read_it_is_said_once() {
        use std::task::Poll;
        let scope = new_scope();
        let mut caller = Box::pin(scoped(
            &scope,
            to_the_end("table t was registered".into(), async {
                Ok::<_, String>(())
            }),
        ));
        // Polled once: the step's task is spawned and the caller waits for it.
        assert!(matches!(futures::poll!(caller.as_mut()), Poll::Pending));
        // The step runs and sends its outcome (this runtime has one thread: the caller is
        // not polled meanwhile); then the caller is dropped without reading it.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        drop(caller);
        let settled = settle_scope(&scope, Duration::from_secs(5)).await;
        assert_eq!(settled.landed, ["table t was registered"]);
    }

    #[tokio::test]
    async fn a_failed_step_or_one_waited_for_is_not_said() {
        let scope = new_scope();
        let waited = scoped(
            &scope,
            to_the_end("waited".into(), async { Ok::<_, String>(1) }),
        );
        assert_eq!(waited.await, Ok(1));
        let failing = scoped(
            &scope,
            to_the_end("failed".into(), async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Err::<(), _>("refused".to_owned())
            }),
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(10), failing)
                .await
                .is_err()
        );
        let settled = settle_scope(&scope, Duration::from_secs(5)).await;
        assert_eq!(
            settled,
            Settled {
                completed: vec!["waited".to_owned()],
                ..Settled::default()
            }
        );
        assert!(settled.said().starts_with("nothing was committed"));
    }

    #[tokio::test]
    async fn steps_of_other_scopes_are_neither_waited_for_nor_taken() {
        let (mine, other) = (new_scope(), new_scope());
        let stuck = scoped(
            &other,
            to_the_end("other done".into(), async {
                std::future::pending::<Result<(), ()>>().await
            }),
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(10), stuck)
                .await
                .is_err()
        );
        let started = std::time::Instant::now();
        assert_eq!(
            settle_scope(&mine, Duration::from_secs(5)).await,
            Settled::default()
        );
        assert!(started.elapsed() < Duration::from_secs(1));
        let settled = settle(Duration::from_millis(20)).await;
        assert!(settled.unfinished.iter().any(|s| s == "other done"));
    }

    #[tokio::test]
    async fn a_panicking_step_panics_its_caller_and_is_no_longer_running() {
        let scope = new_scope();
        let caller = tokio::spawn(scoped(
            &scope,
            to_the_end("never".into(), async {
                let fail = std::hint::black_box(true);
                assert!(!fail, "the step failed");
                Ok::<(), ()>(())
            }),
        ));
        assert!(caller.await.unwrap_err().is_panic());
        assert_eq!(
            settle_scope(&scope, Duration::from_secs(1)).await,
            Settled::default()
        );
    }

    #[tokio::test]
    async fn a_step_in_a_scope_within_a_scope_belongs_to_both() {
        let (job, entry) = (new_scope(), new_scope());
        // A job runs an entry with its own scope; the entry's step ends before the job is
        // cancelled, a second one after.
        let first = scoped(
            &job,
            scoped(
                &entry,
                to_the_end("PIT a was committed".into(), async { Ok::<_, ()>(()) }),
            ),
        );
        assert_eq!(first.await, Ok(()));
        let (tx, rx) = oneshot::channel::<()>();
        let second = scoped(
            &job,
            scoped(
                &entry,
                to_the_end("PIT b was committed".into(), async move {
                    let _ = rx.await;
                    Ok::<_, ()>(())
                }),
            ),
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(50), second)
                .await
                .is_err()
        );
        tx.send(()).unwrap();
        let settled = settle_scope(&job, Duration::from_secs(5)).await;
        assert_eq!(settled.landed, ["PIT b was committed"]);
        assert_eq!(
            settled.completed,
            ["PIT a was committed", "PIT b was committed"]
        );
        assert!(settled.unfinished.is_empty(), "{settled:?}");
        // The entry's scope has what it completed too; what landed was said once.
        let settled = settle_scope(&entry, Duration::ZERO).await;
        assert!(settled.landed.is_empty(), "{settled:?}");
        assert_eq!(settled.completed.len(), 2);
    }
}

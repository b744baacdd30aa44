//! Cancellation at every await point.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Runs `make()`'s future once to completion to learn how many times it
/// yields (returns `Pending`), then, for every `k` from 0 to that count,
/// runs a fresh one, drops it right after its `k`-th yield (for `k = 0`,
/// before its first poll), and awaits `check(k)` so the test can assert its
/// invariants after each cancellation. Returns the number of yields of the
/// first run.
///
/// Run it on a runtime with a paused clock so timers inside the future
/// resolve instantly and the yield count is the same from run to run. A
/// fresh future that finishes before its `k`-th yield is simply run to the
/// end.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use dbfault::testing::cancel_at_every_await;
///
/// let yields = cancel_at_every_await(
///     || async {
///         tokio::task::yield_now().await;
///         tokio::time::sleep(std::time::Duration::from_secs(1)).await;
///     },
///     |k| async move { assert!(k <= 2) },
/// )
/// .await;
/// assert_eq!(yields, 2);
/// # }
/// ```
pub async fn cancel_at_every_await<F, Fut, C, CFut>(mut make: F, mut check: C) -> usize
where
    F: FnMut() -> Fut,
    Fut: Future,
    C: FnMut(usize) -> CFut,
    CFut: Future<Output = ()>,
{
    let yields = Limited::new(make(), None).await.1;
    drop(make());
    check(0).await;
    for k in 1..=yields {
        let (output, _) = Limited::new(make(), Some(k)).await;
        drop(output);
        check(k).await;
    }
    yields
}

/// Polls `fut`, counting the times it returns `Pending`; gives up (dropping
/// it) at the `limit`-th.
struct Limited<F: Future> {
    fut: Option<Pin<Box<F>>>,
    pendings: usize,
    limit: Option<usize>,
}

impl<F: Future> Limited<F> {
    fn new(fut: F, limit: Option<usize>) -> Self {
        Limited {
            fut: Some(Box::pin(fut)),
            pendings: 0,
            limit,
        }
    }
}

impl<F: Future> Future for Limited<F> {
    type Output = (Option<F::Output>, usize);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // `Limited` is Unpin: the future is boxed.
        let this = self.get_mut();
        let Some(fut) = this.fut.as_mut() else {
            return Poll::Ready((None, this.pendings));
        };
        match fut.as_mut().poll(cx) {
            Poll::Ready(v) => {
                this.fut = None;
                Poll::Ready((Some(v), this.pendings))
            }
            Poll::Pending => {
                this.pendings += 1;
                if this.limit == Some(this.pendings) {
                    // Dropped here, at its k-th await point.
                    this.fut = None;
                    return Poll::Ready((None, this.pendings));
                }
                Poll::Pending
            }
        }
    }
}

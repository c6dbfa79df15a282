//! Catching panics in futures, so one failing request or message never takes the
//! isolate down. With `panic=unwind` (what `edgeway build` builds) the unwinding
//! stops here; other futures in flight are not disturbed.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Resolves to the future's output, or to the panic message if polling it panicked.
pub(crate) fn catch_panic_future<F: Future + Unpin>(future: F) -> CatchPanic<F> {
    CatchPanic(Some(future))
}

/// See [`catch_panic_future`].
pub(crate) struct CatchPanic<F>(Option<F>);

impl<F: Future + Unpin> Future for CatchPanic<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(future) = self.0.as_mut() else {
            return Poll::Pending;
        };
        match catch_unwind(AssertUnwindSafe(|| Pin::new(future).poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => {
                // Drop the poisoned future now so nothing polls it again.
                self.0 = None;
                let message = payload
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("a panic with a non-string payload");
                Poll::Ready(Err(format!("handler panicked: {message}")))
            }
        }
    }
}

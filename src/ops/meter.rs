//! Counting the billable operations of the invocation being served.
//!
//! Isolates serve many invocations at once, interleaved at every `await`, so
//! "the current invocation" is whichever one is being polled: a
//! [`Metered`] future puts its counters in place for each poll and takes them
//! out after, as `tracing` does with spans. A binding call starts inside a
//! poll, so it is counted against the invocation that made it.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::usage::Operations;

/// A billable operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    KvRead,
    KvWrite,
    KvDelete,
    KvList,
    /// A queue message of this many bytes sent.
    QueueSend(usize),
    Subrequest,
    #[cfg(feature = "aws")]
    LambdaInvocation,
}

/// What one invocation has made so far.
#[derive(Default)]
pub(crate) struct Counter {
    pub(crate) operations: RefCell<Operations>,
    /// Set by [`exclude`]: the invocation is not recorded.
    pub(crate) excluded: Cell<bool>,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Counter>>> = const { RefCell::new(None) };
}

/// Leaves the invocation being polled out of the tally.
pub(crate) fn exclude() {
    CURRENT.with(|current| {
        if let Some(counter) = &*current.borrow() {
            counter.excluded.set(true);
        }
    });
}

/// Counts `op` against the invocation being polled, if one is metered.
pub(crate) fn count(op: Op) {
    CURRENT.with(|current| {
        if let Some(counter) = &*current.borrow() {
            let mut ops = counter.operations.borrow_mut();
            match op {
                Op::KvRead => ops.kv_reads += 1,
                Op::KvWrite => ops.kv_writes += 1,
                Op::KvDelete => ops.kv_deletes += 1,
                Op::KvList => ops.kv_lists += 1,
                // Queues bills each 64 KB written, read and deleted (a message
                // is at least 64 KB): its consumer's read and delete are
                // counted here too, against the sender.
                Op::QueueSend(bytes) => {
                    ops.queue_operations += 3 * bytes.div_ceil(64 * 1024).max(1) as u64
                }
                Op::Subrequest => ops.subrequests += 1,
                #[cfg(feature = "aws")]
                Op::LambdaInvocation => ops.lambda_invocations += 1,
            }
        }
    });
}

/// `inner`, with the operations made while it is polled counted into
/// `counter`.
pub(crate) struct Metered<F> {
    inner: Pin<Box<F>>,
    counter: Rc<Counter>,
}

impl<F: Future> Metered<F> {
    pub(crate) fn new(inner: F, counter: Rc<Counter>) -> Self {
        Self {
            inner: Box::pin(inner),
            counter,
        }
    }
}

impl<F: Future> Future for Metered<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let outer = CURRENT.with(|current| current.replace(Some(this.counter.clone())));
        let polled = this.inner.as_mut().poll(cx);
        CURRENT.with(|current| *current.borrow_mut() = outer);
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use std::cell::Cell;
    use std::task::Waker;

    /// Counts `op`, then yields once before counting it again.
    async fn twice(op: Op) {
        count(op);
        let yielded = Cell::new(false);
        std::future::poll_fn(|cx| {
            if yielded.replace(true) {
                Poll::Ready(())
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
        .await;
        count(op);
    }

    #[test]
    fn interleaved_invocations_count_their_own_operations() {
        let a = Rc::new(Counter::default());
        let b = Rc::new(Counter::default());
        let mut first = Box::pin(Metered::new(twice(Op::KvRead), a.clone()));
        let mut second = Box::pin(Metered::new(twice(Op::QueueSend(200 * 1024)), b.clone()));
        let mut cx = Context::from_waker(Waker::noop());
        // Interleaved as an isolate does: each runs up to its await in turn.
        assert!(first.as_mut().poll(&mut cx).is_pending());
        assert!(second.as_mut().poll(&mut cx).is_pending());
        assert!(first.as_mut().poll(&mut cx).is_ready());
        assert!(second.as_mut().poll(&mut cx).is_ready());
        let (a, b) = (a.operations.borrow(), b.operations.borrow());
        assert_eq!(a.kv_reads, 2);
        assert_eq!(a.queue_operations, 0);
        // 200 KB is four 64 KB units, each written, read and deleted, twice.
        assert_eq!(b.queue_operations, 24);
        assert_eq!(b.kv_reads, 0);
        // Outside a metered poll nothing is counted, and nothing fails.
        count(Op::KvWrite);
        exclude();
        assert_eq!(a.kv_writes + b.kv_writes, 0);
    }

    #[test]
    fn an_invocation_can_leave_itself_out() {
        let counter = Rc::new(Counter::default());
        let mut run = Box::pin(Metered::new(async { exclude() }, counter.clone()));
        assert!(run
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_ready());
        assert!(counter.excluded.get());
    }
}

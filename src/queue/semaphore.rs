//! A single-threaded async semaphore: the per-kind limits of a consumer. Workers
//! run one thread per isolate, so `Cell` and `RefCell` are enough.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

/// At most `permits` holders at once; the others wait in arrival order.
pub(crate) struct Semaphore {
    free: Cell<usize>,
    waiting: RefCell<VecDeque<Waker>>,
}

/// A held permit; dropping it lets the next waiter in.
pub(crate) struct Permit(Rc<Semaphore>);

impl Semaphore {
    pub(crate) fn new(permits: usize) -> Rc<Self> {
        Rc::new(Self {
            free: Cell::new(permits.max(1)),
            waiting: RefCell::new(VecDeque::new()),
        })
    }

    /// Waits for a permit.
    pub(crate) async fn acquire(self: &Rc<Self>) -> Permit {
        poll_fn(|cx| {
            let free = self.free.get();
            if free > 0 {
                self.free.set(free - 1);
                Poll::Ready(Permit(self.clone()))
            } else {
                self.waiting.borrow_mut().push_back(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.free.set(self.0.free.get() + 1);
        // A woken waiter polls again and takes the permit if it is still free; a
        // waker whose task went away just wakes nothing.
        if let Some(next) = self.0.waiting.borrow_mut().pop_front() {
            next.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream::{self, StreamExt};
    use std::future::Future;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn never_more_holders_than_permits() {
        let semaphore = Semaphore::new(2);
        let inside = Rc::new(Cell::new(0));
        let peak = Rc::new(Cell::new(0));
        let run = stream::iter(0..10).for_each_concurrent(10, |_| {
            let (semaphore, inside, peak) = (semaphore.clone(), inside.clone(), peak.clone());
            async move {
                let _permit = semaphore.acquire().await;
                inside.set(inside.get() + 1);
                peak.set(peak.get().max(inside.get()));
                // Yield once, so the others get to try while this one holds.
                let mut yielded = false;
                poll_fn(|cx| {
                    if yielded {
                        Poll::Ready(())
                    } else {
                        yielded = true;
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                })
                .await;
                inside.set(inside.get() - 1);
            }
        });
        // Drive it by polling again and again (every holder yields once).
        let mut run = std::pin::pin!(run);
        let mut cx = std::task::Context::from_waker(Waker::noop());
        let mut polls = 0;
        while run.as_mut().poll(&mut cx).is_pending() {
            polls += 1;
            assert!(polls < 1000, "the semaphore never let everyone through");
        }
        assert_eq!(peak.get(), 2);
        assert_eq!(semaphore.free.get(), 2);
    }
}

//! Poll a future once before deciding whether it needs an executor.
//!
//! Most handlers never await, so the wasm entry polls the service future once and,
//! when it is ready, returns the `Response` without creating a JS promise. The
//! catch: a future that stays pending has captured the waker of that first poll,
//! and some futures (e.g. `worker::Delay`) never replace it. So the first poll uses
//! a forwarding waker: until an executor takes over it only records the wake-up,
//! and afterwards it forwards to the executor's waker. No wake-up is ever lost.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// The result of the first poll.
pub(crate) enum FirstPoll<F: Future> {
    /// Done without awaiting anything.
    Ready(F::Output),
    /// Needs an executor; drive the [`Resume`] to completion.
    Pending(Resume<F>),
}

/// Polls `future` once with a forwarding waker.
pub(crate) fn poll_once<F: Future + Unpin>(mut future: F) -> FirstPoll<F> {
    let forward = Arc::new(Forward::default());
    let waker = Waker::from(forward.clone());
    match Pin::new(&mut future).poll(&mut Context::from_waker(&waker)) {
        Poll::Ready(output) => FirstPoll::Ready(output),
        Poll::Pending => FirstPoll::Pending(Resume { future, forward }),
    }
}

/// A future that was polled once; polling it registers the executor's waker with
/// the forwarding waker the inner future may still hold.
pub(crate) struct Resume<F> {
    future: F,
    forward: Arc<Forward>,
}

impl<F: Future + Unpin> Future for Resume<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.forward.set_target(cx.waker());
        Pin::new(&mut self.future).poll(cx)
    }
}

#[derive(Default)]
struct Forward {
    target: Mutex<Option<Waker>>,
    woken_early: AtomicBool,
}

impl Forward {
    fn set_target(&self, waker: &Waker) {
        let mut target = self.target.lock().unwrap_or_else(|e| e.into_inner());
        if !target.as_ref().is_some_and(|t| t.will_wake(waker)) {
            *target = Some(waker.clone());
        }
        drop(target);
        // A wake-up before the hand-over: the executor polls right away anyway,
        // but pass it on so that nothing depends on that.
        if self.woken_early.swap(false, Ordering::AcqRel) {
            waker.wake_by_ref();
        }
    }
}

impl Wake for Forward {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let target = self.target.lock().unwrap_or_else(|e| e.into_inner());
        let waker = target.clone();
        if waker.is_none() {
            self.woken_early.store(true, Ordering::Release);
        }
        // Woken outside the lock: an executor that polled inside `wake` would
        // take the lock again to register its waker (`drive`'s only queues).
        drop(target);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::sync::atomic::AtomicUsize;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Like `worker::Delay`: keeps the waker of its first poll and never updates it.
    struct FirstWakerOnly {
        waker: Rc<RefCell<Option<Waker>>>,
        fired: Rc<RefCell<bool>>,
    }

    impl Future for FirstWakerOnly {
        type Output = &'static str;
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<&'static str> {
            if *self.fired.borrow() {
                return Poll::Ready("done");
            }
            self.waker
                .borrow_mut()
                .get_or_insert_with(|| cx.waker().clone());
            Poll::Pending
        }
    }

    #[derive(Default)]
    struct CountingWaker(AtomicUsize);
    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn ready_futures_finish_on_the_first_poll() {
        match poll_once(Box::pin(async { 7 })) {
            FirstPoll::Ready(v) => assert_eq!(v, 7),
            FirstPoll::Pending(_) => panic!("should be ready"),
        }
    }

    #[test]
    fn a_wake_captured_by_the_first_poll_reaches_the_executor() {
        let waker_slot = Rc::new(RefCell::new(None::<Waker>));
        let fired = Rc::new(RefCell::new(false));
        let future = Box::pin(FirstWakerOnly {
            waker: waker_slot.clone(),
            fired: fired.clone(),
        });
        let FirstPoll::Pending(mut resume) = poll_once(future) else {
            panic!("should be pending");
        };
        // The executor takes over and polls with its own waker.
        let executor = Arc::new(CountingWaker::default());
        let executor_waker = Waker::from(executor.clone());
        let mut cx = Context::from_waker(&executor_waker);
        assert!(Pin::new(&mut resume).poll(&mut cx).is_pending());
        // The timer fires and wakes the waker it captured on the first poll...
        *fired.borrow_mut() = true;
        waker_slot.borrow().as_ref().unwrap().wake_by_ref();
        // ...which must reach the executor, or the request would hang.
        assert_eq!(executor.0.load(Ordering::SeqCst), 1);
        assert_eq!(Pin::new(&mut resume).poll(&mut cx), Poll::Ready("done"));
    }

    #[test]
    fn an_early_wake_is_passed_on_at_hand_over() {
        let waker_slot = Rc::new(RefCell::new(None::<Waker>));
        let fired = Rc::new(RefCell::new(false));
        let FirstPoll::Pending(mut resume) = poll_once(Box::pin(FirstWakerOnly {
            waker: waker_slot.clone(),
            fired: fired.clone(),
        })) else {
            panic!("should be pending");
        };
        waker_slot.borrow().as_ref().unwrap().wake_by_ref();
        let executor = Arc::new(CountingWaker::default());
        let executor_waker = Waker::from(executor.clone());
        let _ = Pin::new(&mut resume).poll(&mut Context::from_waker(&executor_waker));
        assert_eq!(executor.0.load(Ordering::SeqCst), 1);
    }
}

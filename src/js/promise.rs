//! JS promises and Rust futures, both ways, for less than wasm-bindgen-futures
//! costs per request.
//!
//! - Awaiting a promise ([`settled`]): `JsFuture` makes two wasm-bindgen
//!   closures for every promise it awaits (two JS functions, each registered
//!   with a `FinalizationRegistry` and unregistered when dropped). Here one
//!   closure per isolate settles every promise: the JS side hands it the number
//!   of the slot the waiting future watches, and the result.
//! - Answering with a promise ([`drive`]): `future_to_promise` makes a JS
//!   closure for the `Promise` executor, and every wake-up queues a microtask
//!   before the future is polled again. Here a future woken by a promise this
//!   module settles is polled at once, inside that promise's callback, where no
//!   other Rust code is running. Any other wake-up still goes through a
//!   microtask, so no future is ever polled inside another's poll.
//!
//! Workload (e), a JSON body read with one await: BENCHMARKS.md.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
let settle;
export function set_settle(f) {
  settle = f;
}
export function settle_into(promise, slot) {
  promise.then(
    (value) => settle(slot, value, true),
    (error) => settle(slot, error, false),
  );
}
const tasks = new Map();
export function task_promise(task) {
  const deferred = Promise.withResolvers();
  tasks.set(task, deferred);
  return deferred.promise;
}
export function task_done(task, ok, value) {
  const deferred = tasks.get(task);
  tasks.delete(task);
  if (ok) deferred.resolve(value);
  else deferred.reject(value);
}
"#)]
extern "C" {
    fn set_settle(settle: &Closure<dyn FnMut(u32, JsValue, bool)>);
    fn settle_into(promise: &js_sys::Promise, slot: u32);
    fn task_promise(task: u32) -> js_sys::Promise;
    fn task_done(task: u32, ok: bool, value: JsValue);
}

/// One awaited promise: who waits, and the result once it settles.
#[derive(Default)]
struct Slot {
    waker: Option<Waker>,
    result: Option<Result<JsValue, JsValue>>,
    /// The future was dropped first: free the slot when the promise settles.
    abandoned: bool,
}

#[derive(Default)]
struct Slots {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

impl Slots {
    fn take(&mut self) -> u32 {
        match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(Slot::default());
                (self.slots.len() - 1) as u32
            }
        }
    }

    fn release(&mut self, slot: u32) {
        self.slots[slot as usize] = Slot::default();
        self.free.push(slot);
    }
}

thread_local! {
    /// `settle` is waking a future: the stack below is a promise callback.
    static IN_SETTLE: Cell<bool> = const { Cell::new(false) };
    /// A task of `drive` is being polled.
    static POLLING: Cell<bool> = const { Cell::new(false) };
    static NEXT_TASK: Cell<u32> = const { Cell::new(0) };
    static SLOTS: RefCell<Slots> = RefCell::default();
    static SETTLE: Closure<dyn FnMut(u32, JsValue, bool)> = {
        let settle = Closure::new(settle);
        set_settle(&settle);
        settle
    };
}

fn settle(slot: u32, value: JsValue, ok: bool) {
    let waker = SLOTS.with(|slots| {
        let mut slots = slots.borrow_mut();
        let entry = &mut slots.slots[slot as usize];
        if entry.abandoned {
            slots.release(slot);
            return None;
        }
        entry.result = Some(if ok { Ok(value) } else { Err(value) });
        entry.waker.take()
    });
    // Woken outside the borrow: a task of `drive` polls at once.
    if let Some(waker) = waker {
        IN_SETTLE.set(true);
        waker.wake();
        IN_SETTLE.set(false);
    }
}

/// The future of a JS promise: its value, or what it was rejected with.
pub(crate) struct Settled {
    slot: u32,
    done: bool,
}

/// Awaits `promise`.
pub(crate) fn settled(promise: &js_sys::Promise) -> Settled {
    SETTLE.with(|_| ());
    let slot = SLOTS.with(|slots| slots.borrow_mut().take());
    settle_into(promise, slot);
    Settled { slot, done: false }
}

impl Future for Settled {
    type Output = Result<JsValue, JsValue>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let slot = self.slot;
        let result = SLOTS.with(|slots| {
            let mut slots = slots.borrow_mut();
            let entry = &mut slots.slots[slot as usize];
            match entry.result.take() {
                Some(result) => {
                    slots.release(slot);
                    Some(result)
                }
                None => {
                    match &entry.waker {
                        Some(waker) if waker.will_wake(cx.waker()) => {}
                        _ => entry.waker = Some(cx.waker().clone()),
                    }
                    None
                }
            }
        });
        match result {
            Some(result) => {
                self.done = true;
                Poll::Ready(result)
            }
            None => Poll::Pending,
        }
    }
}

impl Drop for Settled {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        SLOTS.with(|slots| {
            let mut slots = slots.borrow_mut();
            if slots.slots[self.slot as usize].result.is_some() {
                slots.release(self.slot);
            } else {
                slots.slots[self.slot as usize].abandoned = true;
            }
        });
    }
}

/// Runs `future` to completion, answering with a JS promise of its output. A
/// panic that escapes it rejects the promise.
pub(crate) fn drive(future: impl Future<Output = JsValue> + 'static) -> js_sys::Promise {
    let id = NEXT_TASK.with(|next| {
        let id = next.get();
        next.set(id.wrapping_add(1));
        id
    });
    let promise = task_promise(id);
    let task = Rc::new(Task {
        id,
        future: RefCell::new(Some(Box::pin(future))),
        state: Cell::new(State::Idle),
    });
    task.run();
    promise
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Idle,
    Polling,
    /// Woken while being polled: poll again before going idle.
    Woken,
    Done,
}

struct Task {
    id: u32,
    future: RefCell<Option<Pin<Box<dyn Future<Output = JsValue>>>>>,
    state: Cell<State>,
}

impl Task {
    fn wake(self: &Rc<Self>) {
        match self.state.get() {
            State::Polling => self.state.set(State::Woken),
            State::Woken | State::Done => {}
            State::Idle if IN_SETTLE.get() && !POLLING.get() => self.run(),
            State::Idle => {
                let task = self.clone();
                wasm_bindgen_futures::spawn_local(async move { task.run() });
            }
        }
    }

    fn run(self: &Rc<Self>) {
        if self.state.get() != State::Idle {
            return;
        }
        let waker = waker(self);
        let mut cx = Context::from_waker(&waker);
        let outer = POLLING.replace(true);
        loop {
            self.state.set(State::Polling);
            let mut slot = self.future.borrow_mut();
            let Some(future) = slot.as_mut() else { break };
            let polled = catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx)));
            let done = match polled {
                Ok(Poll::Pending) => None,
                Ok(Poll::Ready(value)) => Some((true, value)),
                Err(_) => Some((
                    false,
                    js_sys::Error::new("the request's future panicked").into(),
                )),
            };
            if let Some((ok, value)) = done {
                *slot = None;
                drop(slot);
                self.state.set(State::Done);
                POLLING.set(outer);
                task_done(self.id, ok, value);
                return;
            }
            drop(slot);
            if self.state.get() == State::Polling {
                self.state.set(State::Idle);
                break;
            }
        }
        POLLING.set(outer);
    }
}

/// A `Waker` over the task's `Rc`: wasm has one thread, so nothing is shared
/// across threads despite `Waker`'s `Send`.
fn waker(task: &Rc<Task>) -> Waker {
    unsafe fn clone(data: *const ()) -> RawWaker {
        Rc::increment_strong_count(data as *const Task);
        RawWaker::new(data, &VTABLE)
    }
    unsafe fn wake(data: *const ()) {
        Rc::from_raw(data as *const Task).wake();
    }
    unsafe fn wake_by_ref(data: *const ()) {
        ManuallyDrop::new(Rc::from_raw(data as *const Task)).wake();
    }
    unsafe fn drop_waker(data: *const ()) {
        drop(Rc::from_raw(data as *const Task));
    }
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);
    let data = Rc::into_raw(task.clone()) as *const ();
    // SAFETY: the vtable keeps `Rc`'s count: each clone adds one, each waker
    // woken by value or dropped gives one back.
    unsafe { Waker::from_raw(RawWaker::new(data, &VTABLE)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use js_sys::Promise;
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// A promise and the function that resolves it.
    fn deferred() -> (Promise, js_sys::Function) {
        let mut resolve = None;
        let promise = Promise::new(&mut |res, _| resolve = Some(res));
        (promise, resolve.unwrap())
    }

    fn is_free(slot: u32) -> bool {
        SLOTS.with(|slots| slots.borrow().free.contains(&slot))
    }

    #[test]
    async fn a_settled_promise_gives_its_value_or_its_error() {
        let value = settled(&Promise::resolve(&JsValue::from(42)))
            .await
            .unwrap();
        assert_eq!(value.as_f64(), Some(42.0));
        let error = settled(&Promise::reject(&JsValue::from("no")))
            .await
            .unwrap_err();
        assert_eq!(error.as_string().as_deref(), Some("no"));
    }

    #[test]
    async fn a_future_dropped_before_its_promise_settles_frees_its_slot_later() {
        let (promise, resolve) = deferred();
        let pending = settled(&promise);
        let slot = pending.slot;
        drop(pending);
        assert!(!is_free(slot), "freed while JS may still settle it");
        resolve.call1(&JsValue::NULL, &1.into()).unwrap();
        // Let the promise's callback run.
        settled(&Promise::resolve(&JsValue::NULL)).await.unwrap();
        assert!(is_free(slot));
    }

    #[test]
    async fn a_driven_future_answers_with_its_output_after_its_awaits() {
        let (first, resolve_first) = deferred();
        let (second, resolve_second) = deferred();
        let answer = drive(async move {
            let a = settled(&first).await.unwrap().as_f64().unwrap();
            let b = settled(&second).await.unwrap().as_f64().unwrap();
            JsValue::from(a + b)
        });
        resolve_first.call1(&JsValue::NULL, &2.into()).unwrap();
        resolve_second.call1(&JsValue::NULL, &3.into()).unwrap();
        assert_eq!(settled(&answer).await.unwrap().as_f64(), Some(5.0));
    }

    /// Pending once, waking itself while it is polled.
    struct YieldOnce(bool);

    impl Future for YieldOnce {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    #[test]
    async fn a_future_woken_while_polled_or_from_outside_a_settle_still_finishes() {
        let answer = drive(async {
            YieldOnce(false).await;
            // Woken by wasm-bindgen-futures' own closures: through a microtask.
            wasm_bindgen_futures::JsFuture::from(Promise::resolve(&JsValue::from(7)))
                .await
                .unwrap()
        });
        assert_eq!(settled(&answer).await.unwrap().as_f64(), Some(7.0));
    }
}

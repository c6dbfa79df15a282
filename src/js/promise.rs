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
//!   other Rust code is running. Any other wake-up (a `JsFuture` in the
//!   `worker` crate, one future waking another, a waker wrapped by another
//!   future) queues the task for the next microtask, as wasm-bindgen-futures
//!   does, so no future is ever polled inside another's poll or `wake`.
//!
//! Every entry drives its future here: requests (to the worker and to its
//! Durable Objects), queue batches, scheduled events, alarms, workflow runs and
//! step attempts, and every promise edgeway awaits goes through [`settled`]
//! (`outbound::awaited` for the bindings, which also type-check natively).
//! wasm-bindgen-futures stays for the `worker` crate's own futures.
//!
//! Workload (e), a JSON body read with one await: BENCHMARKS.md.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
let settle;
export function schedule(run) {
  queueMicrotask(run);
}
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
  return new Promise((resolve, reject) => tasks.set(task, { resolve, reject }));
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
    fn schedule(run: &Closure<dyn FnMut()>);
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

    /// Frees `slot`, returning what it held, for the caller to drop once the
    /// borrow of the slots has ended (a waker dropped may be a task's last
    /// reference, and dropping the task's future may drop a `Settled`).
    #[must_use]
    fn release(&mut self, slot: u32) -> Slot {
        self.free.push(slot);
        std::mem::take(&mut self.slots[slot as usize])
    }
}

thread_local! {
    /// A task of `drive` is being polled.
    static POLLING: Cell<bool> = const { Cell::new(false) };
    static NEXT_TASK: Cell<u32> = const { Cell::new(0) };
    /// Tasks woken other than by `settle`, polled in the next microtask.
    static QUEUE: RefCell<VecDeque<Rc<Task>>> = const { RefCell::new(VecDeque::new()) };
    static SCHEDULED: Cell<bool> = const { Cell::new(false) };
    static RUN_QUEUE: Closure<dyn FnMut()> = Closure::new(run_queue);
    static SLOTS: RefCell<Slots> = RefCell::default();
    static SETTLE: Closure<dyn FnMut(u32, JsValue, bool)> = {
        let settle = Closure::new(settle);
        set_settle(&settle);
        settle
    };
}

fn settle(slot: u32, value: JsValue, ok: bool) {
    let (waker, released) = SLOTS.with(|slots| {
        let mut slots = slots.borrow_mut();
        if slots.slots[slot as usize].abandoned {
            return (None, Some(slots.release(slot)));
        }
        let entry = &mut slots.slots[slot as usize];
        entry.result = Some(if ok { Ok(value) } else { Err(value) });
        (entry.waker.take(), None)
    });
    drop(released);
    let Some(waker) = waker else { return };
    // A task of `drive` is polled here and now: this is a promise callback, so
    // no Rust code is running below. Any other waker is only woken: polling
    // inside someone else's `wake` could re-enter what it holds.
    match own_task(&waker) {
        Some(task) if !POLLING.get() => task.run(),
        _ => waker.wake(),
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
        // Polled again after `Ready`: its slot may be another future's by now.
        if self.done {
            return Poll::Pending;
        }
        let slot = self.slot;
        let (result, released, replaced) = SLOTS.with(|slots| {
            let mut slots = slots.borrow_mut();
            let entry = &mut slots.slots[slot as usize];
            match entry.result.take() {
                Some(result) => (Some(result), Some(slots.release(slot)), None),
                None => match &entry.waker {
                    Some(waker) if waker.will_wake(cx.waker()) => (None, None, None),
                    _ => (None, None, entry.waker.replace(cx.waker().clone())),
                },
            }
        });
        drop((released, replaced));
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
        let released = SLOTS.with(|slots| {
            let mut slots = slots.borrow_mut();
            let entry = &mut slots.slots[self.slot as usize];
            if entry.result.is_some() {
                slots.release(self.slot)
            } else {
                // JS will still settle it: keep the slot until then, but not
                // the waker, which would keep its task alive.
                entry.abandoned = true;
                Slot {
                    waker: entry.waker.take(),
                    ..Slot::default()
                }
            }
        });
        drop(released);
    }
}

fn run_queue() {
    #[cfg(test)]
    tests::QUEUE_RUNS.with(|runs| runs.set(runs.get() + 1));
    SCHEDULED.set(false);
    while let Some(task) = QUEUE.with(|queue| queue.borrow_mut().pop_front()) {
        // A task run by `settle` since it was queued is not polled again.
        if task.state.get() == State::Queued {
            task.run();
        }
    }
}

/// Runs `future` to completion, answering with a JS promise that resolves to its
/// `Ok` value or rejects with its `Err` value. A panic that escapes it rejects
/// the promise. Called from JS (an entry, a callback), it is polled at once;
/// called while a task is being polled, at the next microtask.
pub(crate) fn drive(
    future: impl Future<Output = Result<JsValue, JsValue>> + 'static,
) -> js_sys::Promise {
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
    if POLLING.get() {
        task.wake();
    } else {
        task.run();
    }
    promise
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Idle,
    /// Waiting in the queue for the next microtask.
    Queued,
    Polling,
    /// Woken while being polled: poll again before going idle.
    Woken,
    Done,
}

/// What a task drives: settles its JS promise with `Ok` or `Err`.
type TaskFuture = Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>>;

struct Task {
    id: u32,
    future: RefCell<Option<TaskFuture>>,
    state: Cell<State>,
}

impl Task {
    fn wake(self: &Rc<Self>) {
        match self.state.get() {
            State::Polling => self.state.set(State::Woken),
            State::Woken | State::Done | State::Queued => {}
            State::Idle => {
                self.state.set(State::Queued);
                QUEUE.with(|queue| queue.borrow_mut().push_back(self.clone()));
                if !SCHEDULED.replace(true) {
                    RUN_QUEUE.with(schedule);
                }
            }
        }
    }

    fn run(self: &Rc<Self>) {
        if !matches!(self.state.get(), State::Idle | State::Queued) {
            return;
        }
        /// Puts `POLLING` back however `run` ends.
        struct Restore(bool);
        impl Drop for Restore {
            fn drop(&mut self) {
                POLLING.set(self.0);
            }
        }
        let waker = waker(self);
        let mut cx = Context::from_waker(&waker);
        let _restore = Restore(POLLING.replace(true));
        loop {
            self.state.set(State::Polling);
            let mut slot = self.future.borrow_mut();
            let Some(future) = slot.as_mut() else { break };
            let polled = catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx)));
            let done = match polled {
                Ok(Poll::Pending) => None,
                Ok(Poll::Ready(Ok(value))) => Some((true, value)),
                Ok(Poll::Ready(Err(error))) => Some((false, error)),
                Err(payload) => Some((false, js_sys::Error::new(&panicked(&*payload)).into())),
            };
            if let Some((ok, value)) = done {
                self.state.set(State::Done);
                // A panic in a destructor must not leave the request unanswered.
                let _ = catch_unwind(AssertUnwindSafe(|| *slot = None));
                drop(slot);
                task_done(self.id, ok, value);
                return;
            }
            drop(slot);
            if self.state.get() == State::Polling {
                self.state.set(State::Idle);
                break;
            }
        }
    }
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

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

/// The task behind `waker`, if it is one of `drive`'s.
fn own_task(waker: &Waker) -> Option<Rc<Task>> {
    if !std::ptr::eq(waker.vtable(), &VTABLE) {
        return None;
    }
    let data = waker.data() as *const Task;
    // SAFETY: a waker with this vtable was made by `waker` or `clone` over an
    // `Rc<Task>` it still holds a count of; this adds one for the new `Rc`.
    unsafe {
        Rc::increment_strong_count(data);
        Some(Rc::from_raw(data))
    }
}

/// What a panic says, as the rejection's message: a workflow instance or a step
/// fails with it, and the runtime logs it. (`panic.rs` reads payloads the same
/// way; the glue is a leaf that imports nothing of the crate: tests/layering.rs.)
fn panicked(payload: &(dyn std::any::Any + Send)) -> String {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic with a non-string payload");
    format!("panicked: {message}")
}

/// A `Waker` over the task's `Rc`: wasm has one thread, so nothing is shared
/// across threads despite `Waker`'s `Send`.
fn waker(task: &Rc<Task>) -> Waker {
    let data = Rc::into_raw(task.clone()) as *const ();
    // SAFETY: the vtable keeps `Rc`'s count: each clone adds one, each waker
    // woken by value or dropped gives one back.
    unsafe { Waker::from_raw(RawWaker::new(data, &VTABLE)) }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use js_sys::Promise;
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// A promise and the function that resolves it.
    fn deferred() -> (Promise, js_sys::Function) {
        let mut resolve = None;
        let promise = Promise::new(&mut |res, _| resolve = Some(res));
        (promise, resolve.unwrap())
    }

    #[wasm_bindgen(inline_js = r#"
    export function timer(ms) {
      let id;
      const fired = new Promise((resolve) => (id = setTimeout(resolve, ms)));
      return [fired, id];
    }
    "#)]
    extern "C" {
        fn timer(ms: u32) -> js_sys::Array;
    }

    /// `future`'s output, or a failed test after 2 s. Without the bound, a
    /// future that never wakes would leave Node's event loop empty, and the
    /// runner would stop there, reporting no failure.
    pub(in crate::js) async fn bounded<T>(future: impl Future<Output = T>) -> T {
        let timer = timer(2000);
        let mut fired = wasm_bindgen_futures::JsFuture::from(Promise::from(timer.get(0)));
        let mut future = std::pin::pin!(future);
        let output = std::future::poll_fn(|cx| {
            if let Poll::Ready(output) = future.as_mut().poll(cx) {
                return Poll::Ready(output);
            }
            if Pin::new(&mut fired).poll(cx).is_ready() {
                panic!("the future did not finish within 2 s");
            }
            Poll::Pending
        })
        .await;
        let clear = js_sys::Reflect::get(&js_sys::global(), &"clearTimeout".into()).unwrap();
        let _ = js_sys::Function::from(clear).call1(&JsValue::NULL, &timer.get(1));
        output
    }

    thread_local! {
        /// How many times the queue has run, to tell a task polled in its
        /// promise's callback from one polled a microtask later.
        pub(super) static QUEUE_RUNS: Cell<u32> = const { Cell::new(0) };
    }

    fn is_free(slot: u32) -> bool {
        SLOTS.with(|slots| slots.borrow().free.contains(&slot))
    }

    #[test]
    async fn a_settled_promise_gives_its_value_or_its_error() {
        let value = bounded(settled(&Promise::resolve(&JsValue::from(42))))
            .await
            .unwrap();
        assert_eq!(value.as_f64(), Some(42.0));
        let error = bounded(settled(&Promise::reject(&JsValue::from("no"))))
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
        bounded(settled(&Promise::resolve(&JsValue::NULL)))
            .await
            .unwrap();
        assert!(is_free(slot));
    }

    #[test]
    async fn a_driven_future_answers_with_its_output_after_its_awaits() {
        let (first, resolve_first) = deferred();
        let (second, resolve_second) = deferred();
        let answer = drive(async move {
            let a = settled(&first).await?.as_f64().unwrap();
            let b = settled(&second).await?.as_f64().unwrap();
            Ok(JsValue::from(a + b))
        });
        resolve_first.call1(&JsValue::NULL, &2.into()).unwrap();
        resolve_second.call1(&JsValue::NULL, &3.into()).unwrap();
        assert_eq!(bounded(settled(&answer)).await.unwrap().as_f64(), Some(5.0));
    }

    #[test]
    async fn a_task_woken_by_its_own_promise_is_polled_in_that_callback() {
        let (promise, resolve) = deferred();
        let answer = drive(async move { settled(&promise).await });
        let runs = QUEUE_RUNS.with(Cell::get);
        resolve.call1(&JsValue::NULL, &9.into()).unwrap();
        assert_eq!(bounded(settled(&answer)).await.unwrap().as_f64(), Some(9.0));
        assert_eq!(QUEUE_RUNS.with(Cell::get), runs, "went through the queue");
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
            wasm_bindgen_futures::JsFuture::from(Promise::resolve(&JsValue::from(7))).await
        });
        assert_eq!(bounded(settled(&answer)).await.unwrap().as_f64(), Some(7.0));
    }
}

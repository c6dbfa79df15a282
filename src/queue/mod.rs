//! Cloudflare Queues: a producer that respects every limit and splits batches, and
//! a consumer framework with typed dispatch, per-message ack/retry, backoff with
//! jitter, a dead-letter queue with reasons, bounded concurrency and idempotency.
//!
//! Messages travel as [`Envelope`]s (`{kind, id, body}`) encoded as JSON text, so
//! their size is known exactly before sending and decoding is plain serde.

mod backoff;
mod consumer;
mod envelope;
pub mod limits;
mod semaphore;

pub use backoff::Backoff;
pub use consumer::{Consumer, DeadLetter, Failure, Message, DEAD_LETTER_KIND};
pub use envelope::Envelope;

use std::marker::PhantomData;

use js_sys::{Array, Object, Promise, Reflect};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::error::Error;

#[wasm_bindgen]
extern "C" {
    /// The JS `Queue` binding (`env.MY_QUEUE`), mirrored as is.
    #[wasm_bindgen(js_name = Queue)]
    #[derive(Clone)]
    pub type JsQueue;

    #[wasm_bindgen(method, catch)]
    fn send(this: &JsQueue, body: &JsValue, options: &JsValue) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch, js_name = sendBatch)]
    fn send_batch(this: &JsQueue, messages: &Array, options: &JsValue) -> Result<Promise, JsValue>;
}

/// Options for one send.
#[derive(Clone, Copy, Debug, Default)]
pub struct SendOptions {
    /// Deliver after this many seconds (at most 43 200).
    pub delay_seconds: Option<u32>,
}

/// A failed [`Producer::send_batch`]: which chunk failed and which messages it held.
/// Chunks before it were sent; chunks after it were not attempted.
#[derive(Debug)]
pub struct BatchError {
    /// The index of the chunk that failed.
    pub chunk: usize,
    /// The indexes (into the input) of the messages in that chunk.
    pub messages: std::ops::Range<usize>,
    /// The indexes of messages that were not sent (the failed chunk and after it).
    pub unsent: std::ops::Range<usize>,
    /// Why.
    pub error: Error,
}

impl From<BatchError> for Error {
    fn from(err: BatchError) -> Self {
        let detail = format!(
            "sendBatch chunk {} (messages {}..{}) failed: {}; messages {}..{} were not sent",
            err.chunk,
            err.messages.start,
            err.messages.end,
            err.error.detail(),
            err.unsent.start,
            err.unsent.end
        );
        // Same kind and status as the cause (a 413 stays a payload-too-large problem).
        err.error
            .with_detail(detail)
            .with_member("failed_chunk", err.chunk.to_string())
    }
}

/// Sends `T`s to a queue as JSON text.
///
/// ```ignore
/// let producer: Producer<Envelope> = Producer::from_env(&env, "JOBS")?;
/// producer.send(&Envelope::new("thumbnail", &job)?).await?;
/// ```
pub struct Producer<T> {
    queue: JsQueue,
    binding: String,
    _message: PhantomData<fn(&T)>,
}

impl<T> Clone for Producer<T> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
            binding: self.binding.clone(),
            _message: PhantomData,
        }
    }
}

impl<T: Serialize> Producer<T> {
    /// The queue bound as `binding` in `env`.
    pub fn from_env(env: &worker::Env, binding: &str) -> Result<Self, Error> {
        let value = Reflect::get(env, &JsValue::from_str(binding)).unwrap_or(JsValue::UNDEFINED);
        if value.is_undefined() || value.is_null() {
            return Err(Error::internal(format!("no queue binding {binding:?}")));
        }
        Ok(Self {
            queue: value.unchecked_into(),
            binding: binding.to_owned(),
            _message: PhantomData,
        })
    }

    /// The queue bound as `binding`, for the request's worker.
    pub fn from_request(req: &crate::Request, binding: &str) -> Result<Self, Error> {
        Self::from_env(&req.env()?, binding)
    }

    fn encode(message: &T) -> Result<String, Error> {
        serde_json::to_string(message)
            .map_err(|e| Error::internal(format!("could not serialize a queue message: {e}")))
    }

    /// Sends one message. Over 128 KB is a 413 before anything is sent.
    pub async fn send(&self, message: &T) -> Result<(), Error> {
        self.send_with(message, SendOptions::default()).await
    }

    /// Sends one message with options.
    pub async fn send_with(&self, message: &T, options: SendOptions) -> Result<(), Error> {
        let text = Self::encode(message)?;
        limits::check_message(None, text.len())?;
        if let Some(delay) = options.delay_seconds {
            limits::check_delay(delay)?;
        }
        #[cfg(feature = "ops")]
        crate::ops::count(crate::ops::Op::QueueSend(text.len()));
        let promise = self
            .queue
            .send(
                &JsValue::from_str(&text),
                &send_options(options.delay_seconds),
            )
            .map_err(|e| self.js_error("send", e))?;
        crate::outbound::awaited(promise)
            .await
            .map_err(|e| self.js_error("send", e))?;
        Ok(())
    }

    /// Sends any number of messages, in as few `sendBatch` calls as the limits
    /// allow (at most 100 messages and 256 KB each). Returns the number of calls.
    /// Every message is checked before the first call, so an oversized one sends
    /// nothing at all.
    pub async fn send_batch<'a, I>(
        &self,
        messages: I,
        options: SendOptions,
    ) -> Result<usize, BatchError>
    where
        I: IntoIterator<Item = &'a T>,
        T: 'a,
    {
        let texts = messages
            .into_iter()
            .map(Self::encode)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| BatchError {
                chunk: 0,
                messages: 0..0,
                unsent: 0..0,
                error,
            })?;
        let whole = 0..texts.len();
        let check = |error| BatchError {
            chunk: 0,
            messages: whole.clone(),
            unsent: whole.clone(),
            error,
        };
        for (i, text) in texts.iter().enumerate() {
            limits::check_message(Some(i), text.len()).map_err(check)?;
        }
        if let Some(delay) = options.delay_seconds {
            limits::check_delay(delay).map_err(check)?;
        }
        let sizes: Vec<usize> = texts.iter().map(String::len).collect();
        let chunks = limits::plan_chunks(&sizes);
        for (index, range) in chunks.iter().enumerate() {
            let batch = Array::new();
            for text in &texts[range.clone()] {
                #[cfg(feature = "ops")]
                crate::ops::count(crate::ops::Op::QueueSend(text.len()));
                let entry = Object::new();
                let _ = Reflect::set(&entry, &"body".into(), &JsValue::from_str(text));
                let _ = Reflect::set(&entry, &"contentType".into(), &"text".into());
                batch.push(&entry);
            }
            let sent = match self
                .queue
                .send_batch(&batch, &send_options(options.delay_seconds))
            {
                Ok(promise) => crate::outbound::awaited(promise).await.map(drop),
                Err(e) => Err(e),
            };
            if let Err(e) = sent {
                return Err(BatchError {
                    chunk: index,
                    messages: range.clone(),
                    unsent: range.start..texts.len(),
                    error: self.js_error("sendBatch", e),
                });
            }
        }
        Ok(chunks.len())
    }

    fn js_error(&self, op: &str, err: JsValue) -> Error {
        Error::internal(format!(
            "queue {:?}: {op} failed: {}",
            self.binding,
            crate::platform::js_error_message(&err)
        ))
    }
}

fn send_options(delay_seconds: Option<u32>) -> JsValue {
    let options = Object::new();
    let _ = Reflect::set(&options, &"contentType".into(), &"text".into());
    if let Some(delay) = delay_seconds {
        let _ = Reflect::set(&options, &"delaySeconds".into(), &JsValue::from(delay));
    }
    options.into()
}

//! Handlers: `async fn`s whose arguments are extractors and whose return is [`IntoResponse`].

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use crate::extract::{FromRequest, FromRequestParts};
use crate::request::Request;
use crate::response::{IntoResponse, Response};

/// A boxed, single-threaded future. Workers run one isolate per thread, so nothing
/// here needs `Send`.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// A type-erased handler, possibly wrapped in middleware.
pub(crate) type Endpoint = Rc<dyn Fn(Request) -> BoxFuture<Response>>;

/// Implemented for every `async fn` (or closure returning a future) whose arguments
/// all implement [`FromRequestParts`], except the last, which may instead implement
/// [`FromRequest`] and consume the body. Up to eight arguments.
///
/// `T` is a marker that lets one function type implement the trait for exactly one
/// argument list; you never name it.
pub trait Handler<T>: Clone + 'static {
    /// Runs the handler on `req`.
    fn call(&self, req: Request) -> BoxFuture<Response>;
}

pub(crate) fn into_endpoint<H: Handler<T>, T>(handler: H) -> Endpoint {
    Rc::new(move |req| handler.call(req))
}

impl<F, Fut, R> Handler<()> for F
where
    F: Fn() -> Fut + Clone + 'static,
    Fut: Future<Output = R> + 'static,
    R: IntoResponse,
{
    fn call(&self, _req: Request) -> BoxFuture<Response> {
        let fut = self();
        Box::pin(async move { fut.await.into_response() })
    }
}

macro_rules! impl_handler {
    ($($part:ident),*; $last:ident) => {
        #[allow(non_snake_case, unused_mut)]
        impl<F, Fut, R, M, $($part,)* $last> Handler<(M, $($part,)* $last,)> for F
        where
            F: Fn($($part,)* $last) -> Fut + Clone + 'static,
            Fut: Future<Output = R> + 'static,
            R: IntoResponse,
            $($part: FromRequestParts + 'static,)*
            $last: FromRequest<M> + 'static,
        {
            fn call(&self, mut req: Request) -> BoxFuture<Response> {
                let handler = self.clone();
                Box::pin(async move {
                    $(
                        let $part = match $part::from_request_parts(&mut req) {
                            Ok(value) => value,
                            Err(err) => return err.into_response(),
                        };
                    )*
                    let $last = match $last::from_request(req).await {
                        Ok(value) => value,
                        Err(err) => return err.into_response(),
                    };
                    handler($($part,)* $last).await.into_response()
                })
            }
        }
    };
}

impl_handler!(; T1);
impl_handler!(T1; T2);
impl_handler!(T1, T2; T3);
impl_handler!(T1, T2, T3; T4);
impl_handler!(T1, T2, T3, T4; T5);
impl_handler!(T1, T2, T3, T4, T5; T6);
impl_handler!(T1, T2, T3, T4, T5, T6; T7);
impl_handler!(T1, T2, T3, T4, T5, T6, T7; T8);

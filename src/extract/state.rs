//! `State<T>`: app state registered once with `App::state`.

use crate::error::{Error, ErrorKind};
use crate::extract::FromRequestParts;
use crate::request::Request;

/// App state registered with [`App::state`](crate::App::state), cloned per request.
///
/// State lives for the isolate; put shared data behind `Rc` so the clone is cheap.
///
/// ```
/// use std::rc::Rc;
/// use edgeway::{App, State};
///
/// struct Config { greeting: String }
///
/// async fn greet(State(config): State<Rc<Config>>) -> String {
///     config.greeting.clone()
/// }
///
/// let app = App::new()
///     .state(Rc::new(Config { greeting: "hi".into() }))
///     .get("/", greet);
/// # app.build().unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct State<T>(pub T);

impl<T: Clone + 'static> FromRequestParts for State<T> {
    fn from_request_parts(req: &mut Request) -> Result<Self, Error> {
        req.state::<T>().cloned().map(State).ok_or_else(|| {
            Error::new(
                ErrorKind::MissingState,
                format!(
                    "State<{}> was requested but never registered with App::state",
                    std::any::type_name::<T>()
                ),
            )
        })
    }
}

//! Path parameters: where the router found each one in the matched path (byte
//! spans, no copies), and the named, percent-decoding view handlers read.

use std::borrow::Cow;
use std::rc::Rc;

use crate::error::Error;

/// Where the router found each path parameter: byte ranges into the matched path,
/// so a lookup copies no strings. Routes rarely have more than four parameters,
/// which fit inline without a heap allocation.
#[derive(Clone, Debug, Default)]
pub(crate) struct ParamSpans {
    inline: [(u32, u32); 4],
    len: u8,
    spill: Vec<(u32, u32)>,
}

impl ParamSpans {
    pub(crate) fn push(&mut self, start: usize, end: usize) {
        let span = (start as u32, end as u32);
        match self.inline.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = span;
                self.len += 1;
            }
            None => self.spill.push(span),
        }
    }

    fn iter(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.inline[..usize::from(self.len)]
            .iter()
            .chain(&self.spill)
            .copied()
    }

    fn count(&self) -> usize {
        usize::from(self.len) + self.spill.len()
    }

    /// A view that names the spans and resolves them against `path`, the path
    /// that was matched.
    pub(crate) fn view<'a>(&'a self, names: &'a [Rc<str>], path: &'a str) -> Params<'a> {
        Params {
            names,
            spans: self,
            path,
        }
    }
}

/// The path parameters of a matched route, in route order. Values are borrowed
/// from the request path, still percent-encoded; [`get`](Params::get) decodes.
#[derive(Clone, Copy, Debug)]
pub struct Params<'a> {
    names: &'a [Rc<str>],
    spans: &'a ParamSpans,
    path: &'a str,
}

impl<'a> Params<'a> {
    /// The percent-decoded value of `name`; `None` when absent, an error when the
    /// decoded bytes are not UTF-8.
    pub fn get(&self, name: &str) -> Option<Result<Cow<'a, str>, Error>> {
        self.iter()
            .find(|(key, _)| *key == name)
            .map(|(key, raw)| decode_param(key, raw))
    }

    /// `(name, raw value)` pairs in route order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.names.iter().map(|name| &**name).zip(self.spans())
    }

    /// The raw values in route order.
    pub(crate) fn spans(&self) -> impl Iterator<Item = &'a str> + 'a {
        let path = self.path;
        self.spans
            .iter()
            .map(move |(start, end)| path.get(start as usize..end as usize).unwrap_or(""))
    }

    /// The number of parameters.
    pub fn len(&self) -> usize {
        self.spans.count()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub(crate) fn decode_param<'a>(name: &str, raw: &'a str) -> Result<Cow<'a, str>, Error> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| {
            Error::new(
                crate::ErrorKind::InvalidPathParam,
                format!("path parameter `{name}` is not valid UTF-8 once percent-decoded"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn spans(path: &str, values: &[&str]) -> ParamSpans {
        let mut spans = ParamSpans::default();
        for value in values {
            let start = path.find(value).unwrap();
            spans.push(start, start + value.len());
        }
        spans
    }

    fn names(names: &[&str]) -> Vec<Rc<str>> {
        names.iter().map(|n| Rc::from(*n)).collect()
    }

    #[test]
    fn params_are_percent_decoded_on_read() {
        let path = "/u/hello%20w%C3%B6rld/%FF";
        let spans = spans(path, &["hello%20w%C3%B6rld", "%FF"]);
        let names = names(&["name", "bad"]);
        let params = spans.view(&names, path);
        assert_eq!(params.get("name").unwrap().unwrap(), "hello wörld");
        assert!(params.get("bad").unwrap().is_err());
        assert!(params.get("other").is_none());
        assert_eq!(params.len(), 2);
    }

    #[test]
    fn more_params_than_fit_inline_spill_in_order() {
        let path = "/a/b/c/d/e/f";
        let spans = spans(path, &["a", "b", "c", "d", "e", "f"]);
        let names = names(&["1", "2", "3", "4", "5", "6"]);
        let got: Vec<_> = spans.view(&names, path).iter().map(|(_, v)| v).collect();
        assert_eq!(got, ["a", "b", "c", "d", "e", "f"]);
        assert_eq!(spans.view(&names, path).len(), 6);
    }
}

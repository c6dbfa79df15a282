//! `Path<T>`: path parameters through a small serde deserializer of their own,
//! so errors name the parameter and the expected type.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;

use crate::error::{Error, ErrorKind};
use crate::extract::FromRequestParts;
use crate::params::decode_param;
use crate::request::Request;

/// Path parameters, percent-decoded and deserialized with serde.
///
/// `T` can be a single value (routes with one parameter), a tuple (in route order),
/// or a struct / map (by parameter name). A value that does not parse is a 400 that
/// names the parameter and the expected type.
///
/// ```
/// # use serde::Deserialize;
/// # use edgeway::Path;
/// async fn one(Path(id): Path<u32>) -> String { id.to_string() }
///
/// async fn pair(Path((user, post)): Path<(String, u64)>) -> String { format!("{user}/{post}") }
///
/// #[derive(Deserialize)]
/// struct Ids { user: String, post: u64 }
/// async fn named(Path(ids): Path<Ids>) -> String { format!("{}/{}", ids.user, ids.post) }
/// ```
#[derive(Clone, Debug)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned> FromRequestParts for Path<T> {
    fn from_request_parts(req: &mut Request) -> Result<Self, Error> {
        let params = req
            .params()
            .iter()
            .map(|(name, raw)| Ok((name, decode_param(name, raw)?)))
            .collect::<Result<Vec<_>, Error>>()?;
        T::deserialize(ParamsDeserializer { params: &params })
            .map(Path)
            .map_err(|err| Error::new(ErrorKind::InvalidPathParam, err.0))
    }
}

/// Deserialization failure; its message is the problem detail.
#[derive(Debug)]
pub(crate) struct PathError(String);

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PathError {}

impl de::Error for PathError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(format!("invalid path parameters: {msg}"))
    }
}

type Decoded<'a> = [(&'a str, Cow<'a, str>)];

struct ParamsDeserializer<'p, 'a> {
    params: &'p Decoded<'a>,
}

impl ParamsDeserializer<'_, '_> {
    fn single(&self) -> Result<ValueDeserializer<'_>, PathError> {
        match self.params {
            [(name, value)] => Ok(ValueDeserializer { name, value }),
            other => Err(PathError(format!(
                "the handler expects 1 path parameter, but the route has {}",
                other.len()
            ))),
        }
    }
}

macro_rules! forward_single {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
                self.single()?.$method(visitor)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for ParamsDeserializer<'_, '_> {
    type Error = PathError;

    forward_single! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_identifier deserialize_ignored_any deserialize_unit
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
        visitor.visit_some(self)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, PathError> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, PathError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
        visitor.visit_seq(Seq {
            params: self.params.iter(),
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, PathError> {
        if len != self.params.len() {
            return Err(PathError(format!(
                "the handler expects {len} path parameters, but the route has {}",
                self.params.len()
            )));
        }
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, PathError> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
        visitor.visit_map(Map {
            params: self.params.iter(),
            value: None,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, PathError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, PathError> {
        self.single()?.deserialize_enum(name, variants, visitor)
    }
}

struct Seq<'p, 'a> {
    params: std::slice::Iter<'p, (&'a str, Cow<'a, str>)>,
}

impl<'de> de::SeqAccess<'de> for Seq<'_, '_> {
    type Error = PathError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, PathError> {
        match self.params.next() {
            Some((name, value)) => seed
                .deserialize(ValueDeserializer { name, value })
                .map(Some),
            None => Ok(None),
        }
    }
}

struct Map<'p, 'a> {
    params: std::slice::Iter<'p, (&'a str, Cow<'a, str>)>,
    value: Option<&'p (&'a str, Cow<'a, str>)>,
}

impl<'de> de::MapAccess<'de> for Map<'_, '_> {
    type Error = PathError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, PathError> {
        match self.params.next() {
            Some(entry) => {
                self.value = Some(entry);
                seed.deserialize(entry.0.into_deserializer()).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, PathError> {
        let (name, value) = self
            .value
            .take()
            .expect("next_value_seed after next_key_seed");
        seed.deserialize(ValueDeserializer { name, value })
    }
}

/// One parameter's value; parses scalars itself so errors can name the parameter.
struct ValueDeserializer<'a> {
    name: &'a str,
    value: &'a str,
}

macro_rules! parse_scalar {
    ($($method:ident => $visit:ident : $ty:ty, $what:literal;)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
                match self.value.parse::<$ty>() {
                    Ok(parsed) => visitor.$visit(parsed),
                    Err(_) => Err(PathError(format!(
                        "path parameter `{}` must be {} ({}), got {:?}",
                        self.name, $what, stringify!($ty), self.value
                    ))),
                }
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for ValueDeserializer<'_> {
    type Error = PathError;

    parse_scalar! {
        deserialize_bool => visit_bool: bool, "a boolean";
        deserialize_i8 => visit_i8: i8, "an integer";
        deserialize_i16 => visit_i16: i16, "an integer";
        deserialize_i32 => visit_i32: i32, "an integer";
        deserialize_i64 => visit_i64: i64, "an integer";
        deserialize_i128 => visit_i128: i128, "an integer";
        deserialize_u8 => visit_u8: u8, "a non-negative integer";
        deserialize_u16 => visit_u16: u16, "a non-negative integer";
        deserialize_u32 => visit_u32: u32, "a non-negative integer";
        deserialize_u64 => visit_u64: u64, "a non-negative integer";
        deserialize_u128 => visit_u128: u128, "a non-negative integer";
        deserialize_f32 => visit_f32: f32, "a number";
        deserialize_f64 => visit_f64: f64, "a number";
        deserialize_char => visit_char: char, "a single character";
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
        visitor.visit_str(self.value)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, PathError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, PathError> {
        if !variants.contains(&self.value) {
            return Err(PathError(format!(
                "path parameter `{}` must be one of {variants:?}, got {:?}",
                self.name, self.value
            )));
        }
        visitor.visit_enum(self.value.into_deserializer())
    }

    forward_to_deserialize_any! {
        str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Method, RouteMeta};
    use serde::Deserialize;
    use std::rc::Rc;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// A request whose path is the values joined by `/`, as the router would leave
    /// it after matching a pattern with one parameter per value.
    fn extract<T: DeserializeOwned>(params: &[(&str, &str)]) -> Result<T, Error> {
        let path: String = params.iter().map(|(_, v)| format!("/{v}")).collect();
        let mut req = Request::new(Method::Get, path);
        let mut at = 0;
        for (_, value) in params {
            at += 1;
            req.params.push(at, at + value.len());
            at += value.len();
        }
        req.route = Some(Rc::new(RouteMeta {
            pattern: "/test".into(),
            feature: None,
            param_names: params.iter().map(|(k, _)| Rc::from(*k)).collect(),
        }));
        Path::<T>::from_request_parts(&mut req).map(|Path(v)| v)
    }

    #[test]
    fn single_values() {
        assert_eq!(extract::<u32>(&[("id", "42")]).unwrap(), 42);
        assert_eq!(
            extract::<String>(&[("name", "a%2Fb%20c")]).unwrap(),
            "a/b c"
        );
        assert_eq!(extract::<Option<i8>>(&[("n", "-3")]).unwrap(), Some(-3));
    }

    #[test]
    fn a_bad_value_names_the_param_and_type() {
        let err = extract::<u32>(&[("id", "abc")]).unwrap_err();
        assert_eq!(err.status().as_u16(), 400);
        assert_eq!(err.kind(), ErrorKind::InvalidPathParam);
        assert!(err.detail().contains("`id`"), "{}", err.detail());
        assert!(err.detail().contains("u32"), "{}", err.detail());
        let err = extract::<u8>(&[("n", "256")]).unwrap_err();
        assert!(err.detail().contains("`n`"), "{}", err.detail());
    }

    #[test]
    fn tuples_in_route_order() {
        let (user, post): (String, u64) = extract(&[("user", "ann"), ("post", "9")]).unwrap();
        assert_eq!((user.as_str(), post), ("ann", 9));
        let err = extract::<(String, u64, u8)>(&[("user", "ann"), ("post", "9")]).unwrap_err();
        assert!(err.detail().contains("expects 3"), "{}", err.detail());
    }

    #[test]
    fn structs_by_name() {
        #[derive(Deserialize, Debug)]
        struct Ids {
            post: u64,
            user: String,
        }
        let ids: Ids = extract(&[("user", "ann"), ("post", "9")]).unwrap();
        assert_eq!((ids.user.as_str(), ids.post), ("ann", 9));
        let err = extract::<Ids>(&[("user", "ann"), ("post", "x")]).unwrap_err();
        assert!(err.detail().contains("`post`"), "{}", err.detail());
    }

    #[test]
    fn enums_by_variant_name() {
        #[derive(Deserialize, Debug, PartialEq)]
        #[serde(rename_all = "lowercase")]
        enum Kind {
            Queue,
            Webhook,
        }
        assert_eq!(
            extract::<Kind>(&[("kind", "webhook")]).unwrap(),
            Kind::Webhook
        );
        let err = extract::<Kind>(&[("kind", "lambda")]).unwrap_err();
        assert!(err.detail().contains("one of"), "{}", err.detail());
    }

    #[test]
    fn invalid_utf8_after_decoding_is_a_400() {
        let err = extract::<String>(&[("name", "%C3%28")]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidPathParam);
    }

    #[test]
    fn arity_mismatch_for_single_value() {
        let err = extract::<u32>(&[("a", "1"), ("b", "2")]).unwrap_err();
        assert!(err.detail().contains("expects 1"), "{}", err.detail());
    }
}

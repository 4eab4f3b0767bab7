//! Typed attribute values.
//!
//! Arguments, `fields(...)`, return values and [`record`](crate::record) all follow one rule: integers
//! become OTel ints, floats doubles, `bool` bools, string types strings (also through references and smart
//! pointers), and anything else its `Debug` text when it has one. The macro reaches the `Debug` fallback
//! through autoref specialisation (see [`crate::__private`]), so a type without `Debug` is simply not
//! recorded instead of failing to compile.

use opentelemetry::{StringValue, Value};
use std::borrow::Cow;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

/// A value that has a natural OpenTelemetry type.
///
/// Implemented for the integer and float types, `bool`, `char`, `str`, `String`, `Cow<str>`, `Option` of
/// any of them (`None` records nothing), and references and smart pointers to any of them. Wrap other
/// types in [`debug`] to record their `Debug` text.
///
/// ```
/// use kotaemon_trace::TypedValue;
/// use opentelemetry::Value;
///
/// assert_eq!(42_u16.to_value(), Some(Value::I64(42)));
/// assert_eq!("vector".to_value(), Some(Value::from("vector")));
/// assert_eq!(None::<i64>.to_value(), None);
/// ```
pub trait TypedValue {
    /// The OpenTelemetry value, or `None` when there is nothing to record.
    fn to_value(&self) -> Option<Value>;
}

macro_rules! small_ints {
    ($($t:ty),*) => {$(
        impl TypedValue for $t {
            #[inline]
            fn to_value(&self) -> Option<Value> { Some(Value::I64(i64::from(*self))) }
        }
    )*};
}
small_ints!(i8, i16, i32, i64, u8, u16, u32);

// Wider integers stay ints while they fit; beyond i64 the exact decimal text beats a wrapped number.
macro_rules! wide_ints {
    ($($t:ty),*) => {$(
        impl TypedValue for $t {
            #[inline]
            fn to_value(&self) -> Option<Value> {
                Some(match i64::try_from(*self) {
                    Ok(v) => Value::I64(v),
                    Err(_) => Value::String(self.to_string().into()),
                })
            }
        }
    )*};
}
wide_ints!(u64, usize, isize, i128, u128);

impl TypedValue for f64 {
    #[inline]
    fn to_value(&self) -> Option<Value> {
        Some(Value::F64(*self))
    }
}

impl TypedValue for f32 {
    #[inline]
    fn to_value(&self) -> Option<Value> {
        Some(Value::F64(f64::from(*self)))
    }
}

impl TypedValue for bool {
    #[inline]
    fn to_value(&self) -> Option<Value> {
        Some(Value::Bool(*self))
    }
}

impl TypedValue for char {
    fn to_value(&self) -> Option<Value> {
        Some(Value::String(self.to_string().into()))
    }
}

impl TypedValue for str {
    #[inline]
    fn to_value(&self) -> Option<Value> {
        Some(Value::String(StringValue::from(self.to_owned())))
    }
}

impl TypedValue for String {
    #[inline]
    fn to_value(&self) -> Option<Value> {
        self.as_str().to_value()
    }
}

impl TypedValue for Cow<'_, str> {
    #[inline]
    fn to_value(&self) -> Option<Value> {
        self.as_ref().to_value()
    }
}

impl<T: TypedValue> TypedValue for Option<T> {
    #[inline]
    fn to_value(&self) -> Option<Value> {
        self.as_ref().and_then(TypedValue::to_value)
    }
}

macro_rules! through_pointer {
    ($($p:ty),*) => {$(
        impl<T: TypedValue + ?Sized> TypedValue for $p {
            #[inline]
            fn to_value(&self) -> Option<Value> { (**self).to_value() }
        }
    )*};
}
through_pointer!(&T, &mut T, Box<T>, Rc<T>, Arc<T>);

/// Records a value by its `Debug` text; the escape hatch of [`record`](crate::record) for types that are
/// not [`TypedValue`].
///
/// ```
/// use kotaemon_trace::{debug, TypedValue};
///
/// #[derive(Debug)]
/// enum Intent { OrderStatus }
/// assert_eq!(debug(&Intent::OrderStatus).to_value().unwrap().as_str(), "OrderStatus");
/// ```
pub fn debug<T: fmt::Debug + ?Sized>(value: &T) -> DebugValue<'_, T> {
    DebugValue(value)
}

/// See [`debug`].
pub struct DebugValue<'a, T: ?Sized>(&'a T);

impl<T: fmt::Debug + ?Sized> TypedValue for DebugValue<'_, T> {
    fn to_value(&self) -> Option<Value> {
        Some(Value::String(format!("{:?}", self.0).into()))
    }
}

/// Autoref specialisation used by the macro: `(&&&Probe(&x)).__kt_value()` picks the most specific impl
/// that applies: typed, else `Debug`, else nothing.
#[doc(hidden)]
pub struct Probe<'a, T: ?Sized>(pub &'a T);

#[doc(hidden)]
pub trait ViaTyped {
    fn __kt_value(&self) -> Option<Value>;
}

impl<T: TypedValue + ?Sized> ViaTyped for &&Probe<'_, T> {
    #[inline]
    fn __kt_value(&self) -> Option<Value> {
        self.0.to_value()
    }
}

#[doc(hidden)]
pub trait ViaDebug {
    fn __kt_value(&self) -> Option<Value>;
}

impl<T: fmt::Debug + ?Sized> ViaDebug for &Probe<'_, T> {
    fn __kt_value(&self) -> Option<Value> {
        Some(Value::String(format!("{:?}", self.0).into()))
    }
}

#[doc(hidden)]
pub trait ViaNothing {
    fn __kt_value(&self) -> Option<Value>;
}

impl<T: ?Sized> ViaNothing for Probe<'_, T> {
    #[inline]
    fn __kt_value(&self) -> Option<Value> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! probe {
        ($e:expr) => {{
            #[allow(unused_imports)]
            use super::{ViaDebug as _, ViaNothing as _, ViaTyped as _};
            (&&&Probe(&$e)).__kt_value()
        }};
    }

    #[derive(Debug)]
    struct Doc {
        #[allow(dead_code)] // read through `Debug` only
        id: u32,
    }
    struct Opaque;

    #[test]
    fn typed_values_keep_their_type() {
        assert_eq!(probe!(7_i32), Some(Value::I64(7)));
        assert_eq!(probe!(7_usize), Some(Value::I64(7)));
        assert_eq!(probe!(u64::MAX), Some(Value::from(u64::MAX.to_string())));
        assert_eq!(probe!(0.5_f32), Some(Value::F64(0.5)));
        assert_eq!(probe!(true), Some(Value::Bool(true)));
        assert_eq!(probe!("q"), Some(Value::from("q")));
        assert_eq!(probe!(&&"q"), Some(Value::from("q")));
        assert_eq!(probe!(String::from("s")), Some(Value::from("s")));
        assert_eq!(probe!(Cow::Borrowed("c")), Some(Value::from("c")));
        assert_eq!(probe!(Arc::new(3_u8)), Some(Value::I64(3)));
        assert_eq!(probe!(Some(2_i64)), Some(Value::I64(2)));
        assert_eq!(probe!(None::<i64>), None);
    }

    #[test]
    fn other_types_fall_back_to_debug_then_nothing() {
        assert_eq!(probe!(Doc { id: 3 }), Some(Value::from("Doc { id: 3 }")));
        assert_eq!(probe!(vec![1, 2]), Some(Value::from("[1, 2]")));
        assert_eq!(probe!(Opaque), None);
    }

    fn generic_without_debug<T>(t: T) -> Option<Value> {
        probe!(t)
    }

    fn generic_with_debug<T: fmt::Debug>(t: T) -> Option<Value> {
        probe!(t)
    }

    #[test]
    fn generics_use_only_what_their_bounds_promise() {
        assert_eq!(generic_without_debug(Doc { id: 1 }), None);
        assert_eq!(generic_with_debug(Doc { id: 1 }), Some(Value::from("Doc { id: 1 }")));
        // Through a `Debug` bound even an int is recorded as its text: the bound is all the macro sees.
        assert_eq!(generic_with_debug(5), Some(Value::from("5")));
    }
}

//! Borrowed rows: a result's columns read in place, typed, without building
//! an owned [`Row`].
//!
//! [`Connection::query_row_map`](crate::Connection::query_row_map) hands its
//! callback a [`RowRef`]: a view of the row the driver holds, valid for the
//! length of the call. [`RowRef::get`] converts one column with
//! [`FromValue`]; text and bytes can be borrowed (`&str`, `&[u8]`) or
//! copied (`String`, `Vec<u8>`).

use std::fmt;

use crate::{ColumnIndex, Error, ErrorClass, Result, Row, Value};

/// The code of an error converting a column's value to the type asked for.
const TYPE_CODE: &str = "DBFAULT_TYPE";

/// The code of an error asking for a column the row does not have.
const COLUMN_CODE: &str = "DBFAULT_COLUMN";

/// The code of an error of a driver that broke `query_row_with`'s contract.
const DRIVER_CODE: &str = "DBFAULT_DRIVER";

/// One column's value, borrowed from the row that holds it: a [`Value`]
/// that does not own its text or bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    /// SQL NULL.
    Null,
    /// A 64-bit signed integer.
    Integer(i64),
    /// A 64-bit float.
    Real(f64),
    /// UTF-8 text.
    Text(&'a str),
    /// Bytes.
    Blob(&'a [u8]),
}

impl ValueRef<'_> {
    /// The owned value, copying text and bytes.
    pub fn to_value(self) -> Value {
        match self {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Real(r) => Value::Real(r),
            ValueRef::Text(s) => Value::Text(s.to_owned()),
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        }
    }

    /// The storage class, as error messages name it: `NULL`, `integer`,
    /// `real`, `text` or `blob`.
    pub fn type_name(self) -> &'static str {
        match self {
            ValueRef::Null => "NULL",
            ValueRef::Integer(_) => "integer",
            ValueRef::Real(_) => "real",
            ValueRef::Text(_) => "text",
            ValueRef::Blob(_) => "blob",
        }
    }
}

impl<'a> From<&'a Value> for ValueRef<'a> {
    fn from(value: &'a Value) -> Self {
        match value {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(r) => ValueRef::Real(*r),
            Value::Text(s) => ValueRef::Text(s),
            Value::Blob(b) => ValueRef::Blob(b),
        }
    }
}

impl From<ValueRef<'_>> for Value {
    fn from(value: ValueRef<'_>) -> Self {
        value.to_value()
    }
}

/// Where a [`RowRef`] reads its columns: an owned [`Row`], or a row a
/// driver holds in place (SQLite's current statement row).
///
/// A driver implements it to give
/// [`query_row_map`](crate::Connection::query_row_map) a fast path that
/// copies nothing the callback does not ask for.
pub trait RowSource {
    /// How many columns the row has. Must not block.
    fn column_count(&self) -> usize;

    /// The name of column `index`, or `None` when out of range. Must not
    /// block.
    fn column_name(&self, index: usize) -> Option<&str>;

    /// The value of column `index`; `index` is below
    /// [`column_count`](RowSource::column_count). Must not block.
    ///
    /// # Errors
    ///
    /// When the driver cannot read the value as one of [`ValueRef`]'s
    /// classes (SQLite text that is not UTF-8).
    fn value(&self, index: usize) -> Result<ValueRef<'_>>;
}

impl RowSource for Row {
    fn column_count(&self) -> usize {
        self.len()
    }

    fn column_name(&self, index: usize) -> Option<&str> {
        self.columns().get(index).map(String::as_str)
    }

    fn value(&self, index: usize) -> Result<ValueRef<'_>> {
        self.values()
            .get(index)
            .map(ValueRef::from)
            .ok_or_else(|| no_column(format_args!("{index}"), self.len()))
    }
}

/// One result row, borrowed for the length of a
/// [`query_row_map`](crate::Connection::query_row_map) callback: columns
/// by position or name, converted to the type asked for.
///
/// ```
/// use std::sync::Arc;
/// use dbfault::{Row, RowRef, Value};
///
/// let row = Row::new(
///     Arc::from(vec!["id".to_owned(), "owner".to_owned(), "note".to_owned()]),
///     vec![Value::Integer(7), Value::from("ann"), Value::Null],
/// );
/// let row = RowRef::from(&row);
/// assert_eq!(row.get::<i64>(0).unwrap(), 7);
/// assert_eq!(row.get::<&str>("owner").unwrap(), "ann");
/// assert_eq!(row.get::<Option<String>>("note").unwrap(), None);
///
/// let err = row.get::<i64>("owner").unwrap_err();
/// assert_eq!(err.code(), Some("DBFAULT_TYPE"));
/// assert_eq!(err.message(), "column 1 (owner): expected integer, found text");
/// ```
#[derive(Clone, Copy)]
pub struct RowRef<'a> {
    source: &'a dyn RowSource,
    /// The source's column count, asked once.
    len: usize,
}

impl<'a> RowRef<'a> {
    /// A view of `source`.
    pub fn new(source: &'a dyn RowSource) -> Self {
        RowRef {
            source,
            len: source.column_count(),
        }
    }

    /// How many columns.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the row has no column.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name of column `index`, if the row has that column.
    pub fn column_name(&self, index: usize) -> Option<&'a str> {
        self.source.column_name(index)
    }

    /// The value of a column, picked by position (`usize`) or name
    /// (`&str`), borrowed from the row.
    ///
    /// # Errors
    ///
    /// Code `DBFAULT_COLUMN` (class [`Statement`](ErrorClass::Statement))
    /// when the row has no such column; the driver's error when it cannot
    /// read the value.
    #[inline]
    pub fn get_ref(&self, index: impl ColumnIndex) -> Result<ValueRef<'a>> {
        self.get(index)
    }

    /// The value of a column, picked by position (`usize`) or name
    /// (`&str`), converted to `T`.
    ///
    /// # Errors
    ///
    /// As [`get_ref`](RowRef::get_ref); and code `DBFAULT_TYPE` (class
    /// [`Statement`](ErrorClass::Statement)) when the value does not
    /// convert to `T`. The message names the column.
    #[inline(always)]
    pub fn get<T: FromValue<'a>>(&self, index: impl ColumnIndex) -> Result<T> {
        let at = self.position(&index)?;
        match self.source.value(at).and_then(T::from_value) {
            Ok(value) => Ok(value),
            Err(err) => Err(self.in_column(err, at)),
        }
    }

    /// An owned copy of the row.
    ///
    /// # Errors
    ///
    /// The driver's error when it cannot read a value.
    pub fn to_row(&self) -> Result<Row> {
        let count = self.len();
        let names = (0..count)
            .map(|i| self.source.column_name(i).unwrap_or_default().to_owned())
            .collect();
        let values = (0..count).map(|i| self.get::<Value>(i)).collect::<Result<_>>()?;
        Ok(Row::new(names, values))
    }

    #[cold]
    fn in_column(&self, err: Error, at: usize) -> Error {
        in_column(err, at, self.source.column_name(at))
    }

    #[inline(always)]
    fn position(&self, index: &impl ColumnIndex) -> Result<usize> {
        match index.find(self) {
            Some(at) => Ok(at),
            None => Err(no_column(index.describe(), self.len)),
        }
    }
}

impl<'a> From<&'a Row> for RowRef<'a> {
    fn from(row: &'a Row) -> Self {
        RowRef::new(row)
    }
}

impl fmt::Debug for RowRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for i in 0..self.len() {
            let name = self.source.column_name(i).unwrap_or_default();
            match self.source.value(i) {
                Ok(value) => map.entry(&name, &value),
                Err(err) => map.entry(&name, &err),
            };
        }
        map.finish()
    }
}

/// `query_row_map` over a `query_row_with` call (`query`): `f` runs inside
/// it, and its result is set aside, so that the layers `query` passes
/// through see only the driver's errors, never `f`'s. A driver that says
/// there was a row without lending it, or lends one while saying there was
/// none, breaks `query_row_with`'s contract: that is an error (code
/// `DBFAULT_DRIVER`), never taken for "no row".
#[inline(always)]
pub(crate) fn set_aside<T>(
    f: impl FnOnce(RowRef<'_>) -> Result<T>,
    query: impl FnOnce(&mut dyn FnMut(RowRef<'_>)) -> Result<bool>,
) -> Result<Option<T>> {
    let mut aside = SetAside::new(f);
    let found = query(&mut |row| aside.lend(row))?;
    aside.finish(found)
}

/// [`set_aside`] in two steps, for a `query_row_with` call that awaits:
/// [`lend`](SetAside::lend) is the callback, [`finish`](SetAside::finish)
/// takes what the call answered.
#[derive(Debug)]
pub(crate) struct SetAside<F, T> {
    f: Option<F>,
    mapped: Option<Result<T>>,
}

impl<F: FnOnce(RowRef<'_>) -> Result<T>, T> SetAside<F, T> {
    /// `f`, not called yet.
    #[inline(always)]
    pub(crate) fn new(f: F) -> Self {
        SetAside {
            f: Some(f),
            mapped: None,
        }
    }

    /// The callback: `f` on the first row lent, its result set aside.
    #[inline(always)]
    pub(crate) fn lend(&mut self, row: RowRef<'_>) {
        if let Some(f) = self.f.take() {
            self.mapped = Some(f(row));
        }
    }

    /// What `query_row_map` returns once the call said whether there was a
    /// row.
    #[inline(always)]
    pub(crate) fn finish(self, found: bool) -> Result<Option<T>> {
        match (found, self.mapped) {
            (true, Some(result)) => result.map(Some),
            (false, None) => Ok(None),
            (found, _) => Err(broken_contract(found)),
        }
    }
}

#[cold]
fn broken_contract(found: bool) -> Error {
    let what = if found {
        "reported a row but never lent it to the callback"
    } else {
        "lent a row to the callback but reported none"
    };
    Error::driver(DRIVER_CODE, format!("the driver's query_row_with {what}")).with_class(ErrorClass::Other)
}

/// `err`, about column `at` (named `name`), saying so.
#[cold]
pub(crate) fn in_column(err: Error, at: usize, name: Option<&str>) -> Error {
    match name {
        Some(name) => err.context(format_args!("column {at} ({name})")),
        None => err.context(format_args!("column {at}")),
    }
}

#[cold]
fn no_column(index: impl fmt::Display, count: usize) -> Error {
    Error::driver(
        COLUMN_CODE,
        format!("no column {index} in a row of {count} columns"),
    )
    .with_class(ErrorClass::Statement)
}

/// A value that does not convert: what was expected, what was found.
#[cold]
fn mismatch(expected: &str, found: ValueRef<'_>) -> Error {
    Error::conversion(format!("expected {expected}, found {}", found.type_name()))
}

/// A type a column's value converts to, for [`RowRef::get`].
///
/// Integers convert to every integer type they fit in (and to `bool`: 0 is
/// false, anything else true) and to `f64` when it holds them exactly; NULL
/// only to `Option<T>` (as `None`) and [`Value`]. Text and blobs convert to
/// their owned or borrowed forms; `'a` is how long the row lends them.
pub trait FromValue<'a>: Sized {
    /// Converts `value`.
    ///
    /// # Errors
    ///
    /// An error made with [`Error::conversion`] when `value` has no
    /// conversion to `Self`.
    fn from_value(value: ValueRef<'a>) -> Result<Self>;
}

impl<'a> FromValue<'a> for ValueRef<'a> {
    #[inline]
    fn from_value(value: ValueRef<'a>) -> Result<Self> {
        Ok(value)
    }
}

impl FromValue<'_> for Value {
    #[inline]
    fn from_value(value: ValueRef<'_>) -> Result<Self> {
        Ok(value.to_value())
    }
}

impl<'a, T: FromValue<'a>> FromValue<'a> for Option<T> {
    #[inline]
    fn from_value(value: ValueRef<'a>) -> Result<Self> {
        match value {
            ValueRef::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

impl FromValue<'_> for i64 {
    #[inline]
    fn from_value(value: ValueRef<'_>) -> Result<Self> {
        match value {
            ValueRef::Integer(i) => Ok(i),
            other => Err(mismatch("integer", other)),
        }
    }
}

macro_rules! from_integer {
    ($($t:ty),*) => {$(
        impl FromValue<'_> for $t {
            fn from_value(value: ValueRef<'_>) -> Result<Self> {
                let i = i64::from_value(value)?;
                <$t>::try_from(i).map_err(|_| out_of_range(i, stringify!($t)))
            }
        }
    )*};
}
#[cold]
fn out_of_range(i: i64, ty: &str) -> Error {
    Error::conversion(format!("integer {i} is out of range for {ty}"))
}

from_integer!(i8, i16, i32, u8, u16, u32, u64, usize, isize);

impl FromValue<'_> for bool {
    #[inline]
    fn from_value(value: ValueRef<'_>) -> Result<Self> {
        match value {
            ValueRef::Integer(i) => Ok(i != 0),
            other => Err(mismatch("integer (as bool)", other)),
        }
    }
}

impl FromValue<'_> for f64 {
    /// A real, or an integer that an `f64` holds exactly (every one up to
    /// 2^53 in magnitude); a larger one would be rounded, so it is an
    /// error.
    #[inline]
    fn from_value(value: ValueRef<'_>) -> Result<Self> {
        match value {
            ValueRef::Real(r) => Ok(r),
            ValueRef::Integer(i) => {
                let r = i as f64;
                if r as i128 == i128::from(i) {
                    Ok(r)
                } else {
                    Err(Error::conversion(format!("integer {i} has no exact f64")))
                }
            }
            other => Err(mismatch("real", other)),
        }
    }
}

impl<'a> FromValue<'a> for &'a str {
    #[inline]
    fn from_value(value: ValueRef<'a>) -> Result<Self> {
        match value {
            ValueRef::Text(s) => Ok(s),
            other => Err(mismatch("text", other)),
        }
    }
}

impl FromValue<'_> for String {
    #[inline]
    fn from_value(value: ValueRef<'_>) -> Result<Self> {
        <&str>::from_value(value).map(str::to_owned)
    }
}

impl<'a> FromValue<'a> for &'a [u8] {
    #[inline]
    fn from_value(value: ValueRef<'a>) -> Result<Self> {
        match value {
            ValueRef::Blob(b) => Ok(b),
            other => Err(mismatch("blob", other)),
        }
    }
}

impl FromValue<'_> for Vec<u8> {
    #[inline]
    fn from_value(value: ValueRef<'_>) -> Result<Self> {
        <&[u8]>::from_value(value).map(<[u8]>::to_vec)
    }
}

impl Error {
    /// A column's value that does not convert to the type asked for: code
    /// `DBFAULT_TYPE`, class [`Statement`](ErrorClass::Statement) (the
    /// query and the code reading it disagree). For [`FromValue`]
    /// implementations.
    pub fn conversion(message: impl Into<String>) -> Self {
        Error::driver(TYPE_CODE, message).with_class(ErrorClass::Statement)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::ErrorKind;

    fn row() -> Row {
        let names: Arc<[String]> = ["i", "r", "t", "b", "n", "big"].map(str::to_owned).into();
        Row::new(
            names,
            vec![
                Value::Integer(-3),
                Value::Real(1.5),
                Value::from("ann"),
                Value::Blob(vec![0, 255]),
                Value::Null,
                Value::Integer(300),
            ],
        )
    }

    #[test]
    fn every_class_converts_to_its_owned_and_borrowed_forms() {
        let row = row();
        let r = RowRef::from(&row);
        assert_eq!(r.get::<i64>("i").unwrap(), -3);
        assert_eq!(r.get::<i32>(0).unwrap(), -3);
        assert!(r.get::<bool>(0).unwrap());
        assert_eq!(r.get::<f64>("r").unwrap(), 1.5);
        assert_eq!(r.get::<f64>("i").unwrap(), -3.0);
        assert_eq!(r.get::<&str>("t").unwrap(), "ann");
        assert_eq!(r.get::<String>(2).unwrap(), "ann");
        assert_eq!(r.get::<&[u8]>("b").unwrap(), &[0, 255]);
        assert_eq!(r.get::<Vec<u8>>(3).unwrap(), vec![0, 255]);
        assert_eq!(r.get::<Option<i64>>("n").unwrap(), None);
        assert_eq!(r.get::<Option<i64>>("i").unwrap(), Some(-3));
        assert_eq!(r.get::<Value>("n").unwrap(), Value::Null);
        assert_eq!(r.get::<ValueRef<'_>>("t").unwrap(), ValueRef::Text("ann"));
        assert_eq!(r.get::<u16>("big").unwrap(), 300);
    }

    #[test]
    fn a_value_that_does_not_convert_is_a_statement_error_naming_the_column() {
        let row = row();
        let r = RowRef::from(&row);
        let cases: [(Error, &str); 6] = [
            (
                r.get::<i64>("t").unwrap_err(),
                "column 2 (t): expected integer, found text",
            ),
            (
                r.get::<String>(0).unwrap_err(),
                "column 0 (i): expected text, found integer",
            ),
            (
                r.get::<i64>("n").unwrap_err(),
                "column 4 (n): expected integer, found NULL",
            ),
            (
                r.get::<u8>("big").unwrap_err(),
                "column 5 (big): integer 300 is out of range for u8",
            ),
            (
                r.get::<u32>("i").unwrap_err(),
                "column 0 (i): integer -3 is out of range for u32",
            ),
            (
                r.get::<Vec<u8>>("t").unwrap_err(),
                "column 2 (t): expected blob, found text",
            ),
        ];
        for (err, message) in cases {
            assert_eq!(err.kind(), ErrorKind::Driver);
            assert_eq!(err.code(), Some("DBFAULT_TYPE"));
            assert_eq!(err.class(), ErrorClass::Statement);
            assert_eq!(err.message(), message);
        }
    }

    #[test]
    fn an_integer_converts_to_f64_only_when_exact() {
        let exact = [0, 1 << 53, -(1 << 53), (1 << 60) + (1 << 8), i64::MIN];
        for i in exact {
            assert_eq!(
                f64::from_value(ValueRef::Integer(i)).unwrap() as i128,
                i128::from(i)
            );
        }
        for i in [(1 << 53) + 1, i64::MAX, -(1 << 53) - 1] {
            let err = f64::from_value(ValueRef::Integer(i)).unwrap_err();
            assert_eq!(err.code(), Some("DBFAULT_TYPE"));
            assert_eq!(err.message(), format!("integer {i} has no exact f64"));
        }
    }

    #[test]
    fn a_missing_column_is_an_error_by_position_and_by_name() {
        let row = row();
        let r = RowRef::from(&row);
        let by_position = r.get::<i64>(6).unwrap_err();
        assert_eq!(by_position.code(), Some("DBFAULT_COLUMN"));
        assert_eq!(by_position.message(), "no column 6 in a row of 6 columns");
        let by_name = r.get_ref("missing").unwrap_err();
        assert_eq!(by_name.class(), ErrorClass::Statement);
        assert_eq!(by_name.message(), "no column \"missing\" in a row of 6 columns");
    }

    #[test]
    fn to_row_copies_names_and_values() {
        let row = row();
        assert_eq!(RowRef::from(&row).to_row().unwrap(), row);
        assert_eq!(RowRef::from(&row).len(), 6);
        assert_eq!(RowRef::from(&row).column_name(5), Some("big"));
        assert_eq!(RowRef::from(&row).column_name(6), None);
    }

    #[test]
    fn debug_shows_names_and_values() {
        let row = Row::new(Arc::from(vec!["id".to_owned()]), vec![Value::Integer(1)]);
        assert_eq!(format!("{:?}", RowRef::from(&row)), r#"{"id": Integer(1)}"#);
    }
}

//! Values, rows and connection ids: the data every driver speaks.

use std::fmt;
use std::sync::Arc;

/// A stable identifier of one driver connection, unique within its driver
/// (or mock server) for the life of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// One SQL value, SQLite's storage classes.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A 64-bit signed integer.
    Integer(i64),
    /// A 64-bit float.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

impl Value {
    /// The integer, if this is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The float, if this is one (integers convert).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Real(r) => Some(*r),
            Value::Integer(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// The text, if this is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, if this is a blob.
    pub fn as_blob(&self) -> Option<&[u8]> {
        match self {
            Value::Blob(b) => Some(b),
            _ => None,
        }
    }

    /// Whether this is NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Integer(i) => write!(f, "{i}"),
            Value::Real(r) => write!(f, "{r}"),
            Value::Text(s) => write!(f, "'{}'", s.replace('\'', "''")),
            Value::Blob(b) => {
                f.write_str("x'")?;
                for byte in b {
                    write!(f, "{byte:02x}")?;
                }
                f.write_str("'")
            }
        }
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::Integer(i64::from(v))
            }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32, bool);

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// One result row: values addressable by index or by column name.
///
/// Rows of one result share their column names.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    /// A row with these column names and values (same length).
    ///
    /// # Panics
    ///
    /// Panics if `columns` and `values` differ in length: that is a bug in
    /// the driver building the row.
    pub fn new(columns: Arc<[String]>, values: Vec<Value>) -> Self {
        assert_eq!(columns.len(), values.len(), "a row needs one value per column");
        Row { columns, values }
    }

    /// The value at `index`: a position (`usize`) or a column name (`&str`).
    pub fn get<I: ColumnIndex>(&self, index: I) -> Option<&Value> {
        index.position(&self.columns).and_then(|i| self.values.get(i))
    }

    /// The column names.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The values, in column order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// Consumes the row, returning its values.
    pub fn into_values(self) -> Vec<Value> {
        self.values
    }

    /// How many columns.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the row has no column.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Something that picks a column of a [`Row`] or a
/// [`RowRef`](crate::RowRef): a position or a name.
pub trait ColumnIndex: sealed::Sealed {
    /// The position this index designates among `columns`, if any.
    fn position(&self, columns: &[String]) -> Option<usize>;
}

impl ColumnIndex for usize {
    fn position(&self, columns: &[String]) -> Option<usize> {
        (*self < columns.len()).then_some(*self)
    }
}

impl ColumnIndex for &str {
    fn position(&self, columns: &[String]) -> Option<usize> {
        columns.iter().position(|c| c == self)
    }
}

pub(crate) mod sealed {
    use crate::RowRef;

    /// What [`ColumnIndex`](super::ColumnIndex) needs inside the crate.
    pub trait Sealed {
        /// The position this index designates in `row`, if any.
        fn find(&self, row: &RowRef<'_>) -> Option<usize>;

        /// The index as an error message names it.
        fn describe(&self) -> String;
    }

    impl Sealed for usize {
        #[inline]
        fn find(&self, row: &RowRef<'_>) -> Option<usize> {
            (*self < row.len()).then_some(*self)
        }

        fn describe(&self) -> String {
            self.to_string()
        }
    }

    impl Sealed for &str {
        fn find(&self, row: &RowRef<'_>) -> Option<usize> {
            (0..row.len()).find(|&i| row.column_name(i) == Some(*self))
        }

        fn describe(&self) -> String {
            format!("{self:?}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_by_index_and_name() {
        let cols: Arc<[String]> = vec!["id".to_owned(), "name".to_owned()].into();
        let row = Row::new(cols, vec![Value::Integer(1), Value::from("ann")]);
        assert_eq!(row.get(0), Some(&Value::Integer(1)));
        assert_eq!(row.get("name").and_then(Value::as_str), Some("ann"));
        assert_eq!(row.get("missing"), None);
        assert_eq!(row.get(2), None);
    }

    #[test]
    fn value_display_quotes_text_and_hexes_blobs() {
        assert_eq!(Value::from("it's").to_string(), "'it''s'");
        assert_eq!(Value::Blob(vec![0, 255]).to_string(), "x'00ff'");
        assert_eq!(Value::from(None::<i64>).to_string(), "NULL");
    }
}

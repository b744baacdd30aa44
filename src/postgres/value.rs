//! Values both ways: this crate's [`Value`] bound as a parameter of the
//! type PostgreSQL inferred for it, and a column of the types this crate
//! maps read back as a [`Value`]. One mapping for the sync and the async
//! driver.
//!
//! | PostgreSQL type | [`Value`] read | [`Value`]s a parameter of that type takes |
//! | --- | --- | --- |
//! | any, SQL NULL | `Null` | `Null` |
//! | `smallint`, `integer`, `bigint`, `oid` | `Integer` | `Integer` (in range) |
//! | `real`, `double precision` | `Real` | `Real`, `Integer` |
//! | `boolean` | `Integer` 0 or 1 | `Integer` 0 or 1 |
//! | `text`, `varchar`, `char(n)`, `name`, `citext`, unknown | `Text` | `Text` |
//! | `bytea` | `Blob` | `Blob` |
//! | any other (`numeric`, `timestamptz`, `uuid`, `json`, arrays, ...) | an error | an error |
//!
//! Every failure is an error of code `DBFAULT_TYPE` (class
//! [`Statement`](crate::ErrorClass::Statement)) that names the parameter
//! or the column and both types, never a panic. A type without a mapping
//! is read as text by casting it in SQL (`created::text`) or written
//! through one (`$1::numeric` takes a `Text`).

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

use crate::{Error, Result, Row, Value};

use super::error::TYPE_CODE;

/// A parameter: one [`Value`], bound as the type the server inferred, and
/// its number (`$1` is 1), which an error names.
#[derive(Debug)]
pub(super) struct Param<'a> {
    n: usize,
    value: &'a Value,
}

/// Why a [`Value`] cannot be bound, or a column cannot be read: the
/// source of the driver's error, which [`from_pg`](super::error::from_pg)
/// turns into a `DBFAULT_TYPE` error with this message.
#[derive(Debug)]
pub(super) struct Mismatch(pub(super) String);

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Mismatch {}

type BoxError = Box<dyn StdError + Sync + Send>;

/// The storage class of a value, as messages name it.
fn value_type(value: &Value) -> &'static str {
    crate::ValueRef::from(value).type_name()
}

fn mismatch(why: String) -> BoxError {
    Box::new(Mismatch(why))
}

fn out_of_range(value: &Value, ty: &Type) -> BoxError {
    mismatch(format!("{value} is out of the range of PostgreSQL type {ty}"))
}

impl Param<'_> {
    fn encode(&self, ty: &Type, out: &mut bytes::BytesMut) -> std::result::Result<IsNull, BoxError> {
        let value = self.value;
        match (value, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Integer(i), &Type::INT2) => i16::try_from(*i)
                .map_err(|_| out_of_range(value, ty))?
                .to_sql(ty, out),
            (Value::Integer(i), &Type::INT4) => i32::try_from(*i)
                .map_err(|_| out_of_range(value, ty))?
                .to_sql(ty, out),
            (Value::Integer(i), &Type::INT8) => i.to_sql(ty, out),
            (Value::Integer(i), &Type::OID) => u32::try_from(*i)
                .map_err(|_| out_of_range(value, ty))?
                .to_sql(ty, out),
            (Value::Integer(i @ (0 | 1)), &Type::BOOL) => (*i == 1).to_sql(ty, out),
            (Value::Integer(_), &Type::BOOL) => Err(mismatch(format!(
                "{value} is not a boolean: give 0 or 1 for a parameter of type {ty}"
            ))),
            // As SQL converts them: exactly when the float can hold it.
            (Value::Integer(i), &Type::FLOAT8) => (*i as f64).to_sql(ty, out),
            (Value::Integer(i), &Type::FLOAT4) => (*i as f32).to_sql(ty, out),
            (Value::Real(r), &Type::FLOAT8) => r.to_sql(ty, out),
            (Value::Real(r), &Type::FLOAT4) => (*r as f32).to_sql(ty, out),
            (Value::Text(s), _) if <&str as ToSql>::accepts(ty) => s.as_str().to_sql(ty, out),
            (Value::Blob(b), &Type::BYTEA) => b.as_slice().to_sql(ty, out),
            _ => Err(mismatch(format!(
                "cannot bind {} {value} to a parameter of PostgreSQL type {ty}{}",
                value_type(value),
                cast_hint(value)
            ))),
        }
    }
}

impl ToSql for Param<'_> {
    /// The value as `ty`, or an error naming the parameter (`$2`), the
    /// value and the type.
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> std::result::Result<IsNull, BoxError> {
        self.encode(ty, out)
            .map_err(|why| mismatch(format!("parameter ${}: {why}", self.n)))
    }

    /// Every type: [`to_sql`](ToSql::to_sql) answers a value that does not
    /// fit with an error naming both types.
    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// How to bind a value to a type without a mapping: through a cast.
fn cast_hint(value: &Value) -> &'static str {
    match value {
        Value::Text(_) => "; write the parameter with a cast from text, such as `$1::text::numeric`",
        _ => "",
    }
}

/// One column's value as read from a row: decoded by its type.
pub(super) struct Cell(pub(super) Value);

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> std::result::Result<Cell, BoxError> {
        let value = match *ty {
            Type::BOOL => Value::Integer(i64::from(bool::from_sql(ty, raw)?)),
            Type::INT2 => Value::Integer(i64::from(i16::from_sql(ty, raw)?)),
            Type::INT4 => Value::Integer(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT8 => Value::Integer(i64::from_sql(ty, raw)?),
            Type::OID => Value::Integer(i64::from(u32::from_sql(ty, raw)?)),
            Type::FLOAT4 => Value::Real(f64::from(f32::from_sql(ty, raw)?)),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::BYTEA => Value::Blob(<&[u8]>::from_sql(ty, raw)?.to_vec()),
            _ if <&str as FromSql>::accepts(ty) => Value::Text(<&str>::from_sql(ty, raw)?.to_owned()),
            _ => {
                return Err(mismatch(format!(
                    "PostgreSQL type {ty} has no dbfault value; cast the column in SQL (`::text`, `::float8`, `::bigint`)"
                )));
            }
        };
        Ok(Cell(value))
    }

    fn from_sql_null(_ty: &Type) -> std::result::Result<Cell, BoxError> {
        Ok(Cell(Value::Null))
    }

    /// Every type: [`from_sql`](FromSql::from_sql) answers a type without
    /// a mapping with an error naming it.
    fn accepts(_ty: &Type) -> bool {
        true
    }
}

/// The parameters, as the driver takes them.
pub(super) fn params(values: &[Value]) -> Vec<Param<'_>> {
    values
        .iter()
        .enumerate()
        .map(|(i, value)| Param { n: i + 1, value })
        .collect()
}

/// The parameters as the client's slice of trait objects.
pub(super) fn refs<'a>(params: &'a [Param<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

/// Checks that `given` parameters are what the statement takes.
pub(super) fn check_count(statement: &tokio_postgres::Statement, given: usize) -> Result<()> {
    let takes = statement.params().len();
    if takes == given {
        return Ok(());
    }
    Err(Error::driver(
        "DBFAULT_PARAMETER",
        format!("the statement takes {takes} parameters ($1 to ${takes}), {given} given"),
    )
    .classified_by(&super::PgDialect))
}

/// The column names of a statement's result, shared by its rows.
pub(super) fn column_names(statement: &tokio_postgres::Statement) -> Arc<[String]> {
    statement.columns().iter().map(|c| c.name().to_owned()).collect()
}

/// The rows of a result as this crate's rows, sharing `names`.
///
/// # Errors
///
/// A column of a type without a mapping: `DBFAULT_TYPE`, naming the
/// column and its type.
pub(super) fn to_rows(rows: &[tokio_postgres::Row], names: &Arc<[String]>) -> Result<Vec<Row>> {
    rows.iter().map(|row| to_row(row, names)).collect()
}

fn to_row(row: &tokio_postgres::Row, names: &Arc<[String]>) -> Result<Row> {
    let mut values = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let cell: Cell = row.try_get(i).map_err(|e| {
            let why = e.source().map_or_else(|| e.to_string(), ToString::to_string);
            Error::driver(TYPE_CODE, format!("column {i} ({name}): {why}"))
                .with_source(e)
                .classified_by(&super::PgDialect)
        })?;
        values.push(cell.0);
    }
    Ok(Row::new(Arc::clone(names), values))
}

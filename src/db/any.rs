//! `any_of(column, ids)`: `column` is one of `ids`, as one bind whatever the number of ids.
//!
//! Diesel's `eq_any` writes one placeholder per value on SQLite (`IN (?, ?, …)`), so every
//! list length is a new SQL text that SQLite parses and plans again, and diesel never keeps
//! it prepared. `any_of` binds the list once: `= ANY($1)` with an array on PostgreSQL,
//! `IN (SELECT value FROM json_each(?))` with a JSON array on SQLite. Its SQL text is the same
//! for every list, so the statement is prepared once per connection. Use it where a query runs
//! for each batch (the write path); `eq_any` is fine elsewhere.

use diesel::expression::{AppearsOnTable, Expression, SelectableExpression, ValidGrouping};
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{Array, Bool, SingleValue, SqlType, Text};
use diesel::sqlite::Sqlite;
use diesel::QueryResult;
use serde::Serialize;
use std::sync::OnceLock;

/// See the module.
pub fn any_of<C, T>(column: C, ids: &[T]) -> AnyOf<'_, C, T> {
    AnyOf {
        column,
        ids,
        json: OnceLock::new(),
    }
}

#[derive(Debug)]
pub struct AnyOf<'a, C, T> {
    column: C,
    ids: &'a [T],
    /// The ids as a JSON array, made when the query is built for SQLite.
    json: OnceLock<String>,
}

impl<C: QueryId, T> QueryId for AnyOf<'_, C, T> {
    type QueryId = AnyOf<'static, C::QueryId, ()>;
    const HAS_STATIC_QUERY_ID: bool = C::HAS_STATIC_QUERY_ID;
}

impl<C: Expression, T> Expression for AnyOf<'_, C, T> {
    type SqlType = Bool;
}

impl<C: ValidGrouping<()>, T> ValidGrouping<()> for AnyOf<'_, C, T> {
    type IsAggregate = C::IsAggregate;
}

impl<C, T, QS> AppearsOnTable<QS> for AnyOf<'_, C, T>
where
    C: AppearsOnTable<QS>,
    Self: Expression,
{
}

impl<C, T, QS> SelectableExpression<QS> for AnyOf<'_, C, T>
where
    C: SelectableExpression<QS>,
    Self: AppearsOnTable<QS>,
{
}

impl<C, T> QueryFragment<Pg> for AnyOf<'_, C, T>
where
    C: Expression + QueryFragment<Pg>,
    C::SqlType: SqlType + SingleValue,
    Pg: diesel::sql_types::HasSqlType<C::SqlType>,
    [T]: ToSql<Array<C::SqlType>, Pg>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.column.walk_ast(out.reborrow())?;
        out.push_sql(" = ANY(");
        out.push_bind_param::<Array<C::SqlType>, [T]>(self.ids)?;
        out.push_sql(")");
        Ok(())
    }
}

impl<C, T> QueryFragment<Sqlite> for AnyOf<'_, C, T>
where
    C: QueryFragment<Sqlite>,
    T: Serialize,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        let json = self.json.get_or_init(|| {
            serde_json::to_string(self.ids).expect("ids serialize to a JSON array")
        });
        self.column.walk_ast(out.reborrow())?;
        out.push_sql(" IN (SELECT value FROM json_each(");
        out.push_bind_param::<Text, String>(json)?;
        out.push_sql("))");
        Ok(())
    }
}

//! `prepared_update(table, filter, changeset)`: an `UPDATE … SET … WHERE …` that stays
//! prepared.
//!
//! Diesel keeps a statement prepared (per connection) only when it knows its SQL text cannot
//! vary between calls. It never assumes that of `diesel::update` (a changeset may leave out
//! `None` fields), so SQLite parses and plans every update again, which is most of the cost
//! of a one-row update. This statement is kept in diesel's cache under its SQL text, which is
//! correct whatever the text. Use it for changesets of fixed shape (no field left out when
//! `None`), or the cache grows with each variant.
//!
//! `prepared_row_update` updates from a whole row of a type that promises a fixed shape
//! (`FixedShape`): the statement is then found in the cache by its type, without its SQL text
//! being written out again at every call.

use diesel::backend::Backend;
use diesel::expression::{AppearsOnTable, Expression};
use diesel::query_builder::{AsChangeset, AstPass, QueryFragment, QueryId};
use diesel::query_source::Table;
use diesel::sql_types::Bool;
use diesel::{QueryResult, RunQueryDsl};
use std::marker::PhantomData;

/// A row type whose changeset sets the same columns whatever its values
/// (`treat_none_as_null = true`): one SQL text per table and filter.
pub trait FixedShape: 'static {}

/// `UPDATE table SET changeset WHERE filter`, kept prepared (under its SQL text).
pub fn prepared_update<T, W, V>(
    table: T,
    filter: W,
    changeset: V,
) -> PreparedUpdate<T, W, V::Changeset, ()>
where
    T: Table,
    W: Expression<SqlType = Bool> + AppearsOnTable<T>,
    V: AsChangeset<Target = T>,
{
    PreparedUpdate {
        from: table.from_clause(),
        filter,
        values: changeset.as_changeset(),
        shape: PhantomData,
    }
}

/// `UPDATE table SET <every updatable column of row> WHERE filter`, kept prepared under its
/// type.
pub fn prepared_row_update<'a, T, W, R>(
    table: T,
    filter: W,
    row: &'a R,
) -> PreparedUpdate<T, W, <&'a R as AsChangeset>::Changeset, R>
where
    T: Table,
    W: Expression<SqlType = Bool> + AppearsOnTable<T>,
    R: FixedShape,
    &'a R: AsChangeset<Target = T>,
{
    PreparedUpdate {
        from: table.from_clause(),
        filter,
        values: row.as_changeset(),
        shape: PhantomData,
    }
}

/// The update; `S` is the row type of a `prepared_row_update`, `()` otherwise.
#[derive(Debug, Clone)]
pub struct PreparedUpdate<T: Table, W, V, S> {
    /// The table's FROM clause (its quoted name).
    from: T::FromClause,
    filter: W,
    values: V,
    shape: PhantomData<(T, S)>,
}

impl<T, W, V> QueryId for PreparedUpdate<T, W, V, ()>
where
    T: Table,
{
    type QueryId = ();
    // Not a static id: the cache key is the SQL text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<T, W, V, R> QueryId for PreparedUpdate<T, W, V, R>
where
    T: Table + 'static,
    W: QueryId,
    R: FixedShape,
{
    type QueryId = (T, W::QueryId, R);
    // The table, the filter's type and the row type fix the SQL text.
    const HAS_STATIC_QUERY_ID: bool = W::HAS_STATIC_QUERY_ID;
}

impl<T, W, V, S, DB> QueryFragment<DB> for PreparedUpdate<T, W, V, S>
where
    DB: Backend,
    T: Table,
    T::FromClause: QueryFragment<DB>,
    W: QueryFragment<DB>,
    V: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("UPDATE ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(" SET ");
        self.values.walk_ast(out.reborrow())?;
        out.push_sql(" WHERE ");
        self.filter.walk_ast(out.reborrow())
    }
}

impl<T: Table, W, V, S, C> RunQueryDsl<C> for PreparedUpdate<T, W, V, S> {}

/// A boolean condition of fixed SQL text, such as `conflicts.status = 'open'`. Unlike
/// `diesel::dsl::sql`, it leaves the statement cacheable (the text cannot vary). Use it to
/// compare with a constant where SQLite must see the constant itself: to use a partial index
/// whose `WHERE` names it, SQLite plans from a bound value and then prepares the statement
/// again at every new binding.
#[derive(Debug, Clone, Copy)]
pub struct Condition(pub &'static str);

impl Expression for Condition {
    type SqlType = Bool;
}

impl<QS> AppearsOnTable<QS> for Condition {}

impl<QS> diesel::expression::SelectableExpression<QS> for Condition {}

impl<GB> diesel::expression::ValidGrouping<GB> for Condition {
    type IsAggregate = diesel::expression::is_aggregate::Never;
}

impl QueryId for Condition {
    type QueryId = ();
    // Not a static id: the cache key is the SQL text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB: Backend> QueryFragment<DB> for Condition {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql(self.0);
        Ok(())
    }
}

/// A raw query of fixed SQL text, with at most one bound value between its two parts, that
/// stays prepared: `diesel::sql_query` is parsed and planned at every call, which for a
/// query on a system view (PostgreSQL's `pg_stat_activity`) costs more than running it.
/// Load it into a `QueryableByName` row, as `sql_query`.
pub struct FixedQuery<ST, T> {
    sql: &'static str,
    bind: Option<(T, &'static str)>,
    _st: std::marker::PhantomData<ST>,
}

/// `sql` alone.
pub fn fixed_query(sql: &'static str) -> FixedQuery<diesel::sql_types::Integer, i32> {
    FixedQuery {
        sql,
        bind: None,
        _st: std::marker::PhantomData,
    }
}

/// `before`, the value bound as `$1`, then `after`.
pub fn fixed_query_with<ST, T>(
    before: &'static str,
    bind: T,
    after: &'static str,
) -> FixedQuery<ST, T> {
    FixedQuery {
        sql: before,
        bind: Some((bind, after)),
        _st: std::marker::PhantomData,
    }
}

impl<ST, T> QueryId for FixedQuery<ST, T> {
    type QueryId = ();
    // Not a static id: the cache key is the SQL text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<ST, T, DB> QueryFragment<DB> for FixedQuery<ST, T>
where
    DB: Backend + diesel::sql_types::HasSqlType<ST>,
    T: diesel::serialize::ToSql<ST, DB>,
    ST: diesel::sql_types::SqlType,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql(self.sql);
        if let Some((bind, after)) = &self.bind {
            out.push_bind_param::<ST, T>(bind)?;
            out.push_sql(after);
        }
        Ok(())
    }
}

impl<ST, T> diesel::query_builder::Query for FixedQuery<ST, T> {
    type SqlType = diesel::sql_types::Untyped;
}

impl<ST, T, C> RunQueryDsl<C> for FixedQuery<ST, T> {}

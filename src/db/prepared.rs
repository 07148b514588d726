//! `prepared_update(table, filter, changeset)`: an `UPDATE … SET … WHERE …` that stays
//! prepared.
//!
//! Diesel keeps a statement prepared (per connection) only when it knows its SQL text cannot
//! vary between calls. It never assumes that of `diesel::update` (a changeset may leave out
//! `None` fields), so SQLite parses and plans every update again, which is most of the cost
//! of a one-row update. This statement is kept in diesel's cache under its SQL text, which is
//! correct whatever the text. Use it for changesets of fixed shape (no field left out when
//! `None`), or the cache grows with each variant.

use diesel::backend::Backend;
use diesel::expression::{AppearsOnTable, Expression};
use diesel::query_builder::{AsChangeset, AstPass, QueryFragment, QueryId};
use diesel::query_source::Table;
use diesel::sql_types::Bool;
use diesel::{QueryResult, RunQueryDsl};

/// `UPDATE table SET changeset WHERE filter`, kept prepared.
pub fn prepared_update<T, W, V>(
    table: T,
    filter: W,
    changeset: V,
) -> PreparedUpdate<T::FromClause, W, V::Changeset>
where
    T: Table,
    W: Expression<SqlType = Bool> + AppearsOnTable<T>,
    V: AsChangeset<Target = T>,
{
    PreparedUpdate {
        table: table.from_clause(),
        filter,
        values: changeset.as_changeset(),
    }
}

#[derive(Debug, Clone)]
pub struct PreparedUpdate<T, W, V> {
    /// The table's FROM clause (its quoted name).
    table: T,
    filter: W,
    values: V,
}

impl<T, W, V> QueryId for PreparedUpdate<T, W, V> {
    type QueryId = ();
    // Not a static id: the cache key is the SQL text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<T, W, V, DB> QueryFragment<DB> for PreparedUpdate<T, W, V>
where
    DB: Backend,
    T: QueryFragment<DB>,
    W: QueryFragment<DB>,
    V: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("UPDATE ");
        self.table.walk_ast(out.reborrow())?;
        out.push_sql(" SET ");
        self.values.walk_ast(out.reborrow())?;
        out.push_sql(" WHERE ");
        self.filter.walk_ast(out.reborrow())
    }
}

impl<T, W, V, C> RunQueryDsl<C> for PreparedUpdate<T, W, V> {}

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

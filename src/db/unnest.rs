//! Many rows inserted on PostgreSQL by one statement whose text does not depend on their
//! number: `INSERT INTO t (a, b) SELECT a, b FROM unnest($1, $2) …`, one array a column.
//!
//! A multi-row `VALUES` (diesel's insert of a `Vec`) is a new text for every number of rows:
//! diesel does not keep it prepared, and PostgreSQL parses and plans it again at every call,
//! which for a batch of a few rows costs more than writing them. This one is prepared once
//! per connection. The rows go in the arrays' order (`WITH ORDINALITY … ORDER BY`), so
//! serial ids follow it.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{Array, HasSqlType};
use diesel::{Column, Expression, QueryResult, RunQueryDsl};

/// One column's values, bound as one array.
trait Bound {
    fn bind<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()>;
}

struct Values<ST, T> {
    values: Vec<T>,
    _st: std::marker::PhantomData<ST>,
}

impl<ST: 'static, T> Bound for Values<ST, T>
where
    Pg: HasSqlType<ST>,
    Vec<T>: ToSql<Array<ST>, Pg>,
{
    fn bind<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_bind_param::<Array<ST>, Vec<T>>(&self.values)
    }
}

/// See the module. Built with `into`, `column` for each column, then, for an upsert,
/// `on_conflict`, or `on_conflict_do_nothing`.
pub struct Unnest<'a> {
    table: &'static str,
    columns: Vec<(&'static str, Box<dyn Bound + 'a>)>,
    /// The conflict target, and the inserted columns a conflicting row keeps as they are.
    conflict: Option<(&'a [&'static str], &'a [&'static str])>,
    /// A row that conflicts with a stored one is left out.
    ignore: bool,
}

/// An insert into `table` (its SQL name).
pub fn into<'a>(table: &'static str) -> Unnest<'a> {
    Unnest {
        table,
        columns: Vec::new(),
        conflict: None,
        ignore: false,
    }
}

impl<'a> Unnest<'a> {
    /// The values of column `_c`, one a row.
    pub fn column<C, T>(mut self, _c: C, values: Vec<T>) -> Self
    where
        C: Column + Expression,
        Pg: HasSqlType<C::SqlType>,
        Vec<T>: ToSql<Array<C::SqlType>, Pg>,
        T: 'a,
        C::SqlType: 'static,
    {
        let values = Values::<C::SqlType, T> {
            values,
            _st: std::marker::PhantomData,
        };
        self.columns.push((C::NAME, Box::new(values)));
        self
    }

    /// An upsert: a row that conflicts on the columns `key` (by their `Column::NAME`) is
    /// overwritten with the new values of every inserted column but those of `key` and
    /// `keep`.
    pub fn on_conflict(mut self, key: &'a [&'static str], keep: &'a [&'static str]) -> Self {
        self.conflict = Some((key, keep));
        self
    }

    /// A row that conflicts with a stored one on any unique index is left out.
    pub fn on_conflict_do_nothing(mut self) -> Self {
        self.ignore = true;
        self
    }

    /// Runs the insert; answers the rows written.
    pub fn execute(self, c: &mut diesel::PgConnection) -> QueryResult<usize> {
        RunQueryDsl::execute(self, c)
    }
}

impl QueryId for Unnest<'_> {
    type QueryId = ();
    // Not a static id: diesel keeps the statement by its SQL text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl QueryFragment<Pg> for Unnest<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let names: Vec<String> = self
            .columns
            .iter()
            .map(|(n, _)| format!("\"{n}\""))
            .collect();
        let names = names.join(", ");
        out.push_sql(&format!(
            "INSERT INTO \"{}\" ({names}) SELECT {names} FROM unnest(",
            self.table
        ));
        for (i, (_, values)) in self.columns.iter().enumerate() {
            if i > 0 {
                out.push_sql(", ");
            }
            values.bind(&mut out)?;
        }
        out.push_sql(&format!(
            ") WITH ORDINALITY AS r({names}, unnest_row) ORDER BY unnest_row"
        ));
        if let Some((key, keep)) = self.conflict {
            let set: Vec<String> = self
                .columns
                .iter()
                .map(|(n, _)| *n)
                .filter(|n| !key.contains(n) && !keep.contains(n))
                .map(|n| format!("\"{n}\" = excluded.\"{n}\""))
                .collect();
            let key: Vec<String> = key.iter().map(|n| format!("\"{n}\"")).collect();
            out.push_sql(&format!(
                " ON CONFLICT ({}) DO UPDATE SET {}",
                key.join(", "),
                set.join(", ")
            ));
        } else if self.ignore {
            out.push_sql(" ON CONFLICT DO NOTHING");
        }
        Ok(())
    }
}

impl RunQueryDsl<diesel::PgConnection> for Unnest<'_> {}

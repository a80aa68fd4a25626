//! Portable SQL text for aggregation. Placeholders are `$1`, `$2`...: PostgreSQL's own syntax,
//! and in SQLite named parameters numbered in order of first appearance, so one text serves
//! both backends (a placeholder may be repeated). Every value is bound as text.

use std::borrow::Cow;
use std::marker::PhantomData;

use diesel::query_builder::{AstPass, BoxedSqlQuery, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Text, Untyped};
use diesel::QueryResult;

use crate::db::DbConn;

pub type Backend = <DbConn as diesel::Connection>::Backend;

/// A statement of fixed text, written as SQL fragments and bound values, that each connection
/// prepares once and keeps in diesel's statement cache, where it is found by its name `Id` (a
/// type: see [`statement_names!`]) rather than by comparing its text. `sql_query` and every
/// UPDATE the query builder writes are prepared again at each execution, which on a save cost
/// more than running them: this is for statements on the hot path. (The MultiConnection still
/// joins the fragments into text as it passes the statement on, see `db::native!`: for a few
/// fixed fragments that is cheap, unlike the query builder's quoting of every identifier.)
///
/// One name, one text per backend: the cache would run a statement prepared for another text.
pub struct Kept<'f, Id> {
    parts: Vec<Part<'f>>,
    id: PhantomData<Id>,
}

/// A statement's name in the statement cache (see [`Kept`]).
pub trait StatementName: 'static {}

/// Declares [`Kept`] statements' names: one uninhabited type each.
macro_rules! statement_names {
    ($($(#[$doc:meta])* $name:ident;)*) => {
        $(
            $(#[$doc])*
            pub(crate) enum $name {}
            impl $crate::db::sql::StatementName for $name {}
        )*
    };
}
pub(crate) use statement_names;

enum Part<'f> {
    Sql(Cow<'static, str>),
    Bind(Box<dyn QueryFragment<Backend> + Send + 'f>),
}

struct Bound<ST, U> {
    value: U,
    sql_type: PhantomData<ST>,
}

impl<ST, U> QueryFragment<Backend> for Bound<ST, U>
where
    Backend: HasSqlType<ST>,
    U: ToSql<ST, Backend>,
{
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, Backend>) -> QueryResult<()> {
        pass.push_bind_param::<ST, U>(&self.value)
    }
}

impl<'f, Id: StatementName> Kept<'f, Id> {
    pub fn new(sql: impl Into<Cow<'static, str>>) -> Kept<'f, Id> {
        Kept {
            parts: vec![Part::Sql(sql.into())],
            id: PhantomData,
        }
    }

    /// More text.
    pub fn sql(mut self, sql: impl Into<Cow<'static, str>>) -> Self {
        self.parts.push(Part::Sql(sql.into()));
        self
    }

    /// A bound value, at its placeholder (`?` or `$n`, written by the backend).
    pub fn bind<ST, U>(mut self, value: U) -> Self
    where
        Backend: HasSqlType<ST>,
        U: ToSql<ST, Backend> + Send + 'f,
        ST: Send + 'f,
    {
        self.parts.push(Part::Bind(Box::new(Bound {
            value,
            sql_type: PhantomData,
        })));
        self
    }

    /// `(SELECT <element> ...)`: the texts of a JSON array (see [`json`]) bound as one value,
    /// for `IN`. The statement's text stays the same whatever the number of elements, as a
    /// kept statement's must (a bound list would need one text per length).
    pub fn bind_json_elements(self, conn: &DbConn, array: String) -> Self {
        let (open, close) = match conn {
            DbConn::Sqlite(_) => ("(SELECT value FROM json_each(", "))"),
            DbConn::Postgres(_) => ("(SELECT json_array_elements_text(", "::json))"),
        };
        self.sql(open).bind::<Text, _>(array).sql(close)
    }
}

/// A value as JSON text, to be bound as one parameter.
pub fn json(value: &impl serde::Serialize) -> QueryResult<String> {
    serde_json::to_string(value).map_err(|e| diesel::result::Error::SerializationError(e.into()))
}

impl<Id> QueryFragment<Backend> for Kept<'_, Id> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Backend>) -> QueryResult<()> {
        for part in &self.parts {
            match part {
                Part::Sql(sql) => out.push_sql(sql),
                Part::Bind(b) => b.walk_ast(out.reborrow())?,
            }
        }
        Ok(())
    }
}

impl<Id: StatementName> QueryId for Kept<'_, Id> {
    type QueryId = Id;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<Id: StatementName> Query for Kept<'_, Id> {
    type SqlType = Untyped;
}

impl<Id: StatementName> diesel::RunQueryDsl<DbConn> for Kept<'_, Id> {}

#[derive(Default)]
pub struct Sql {
    text: String,
    binds: Vec<String>,
}

impl Sql {
    pub fn new(text: &str) -> Sql {
        Sql {
            text: text.to_string(),
            binds: Vec::new(),
        }
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Add a bound value and its placeholder.
    pub fn bind(&mut self, value: impl Into<String>) -> &mut Self {
        self.binds.push(value.into());
        let n = self.binds.len();
        self.text.push_str(&format!("${n}"));
        self
    }

    /// `(<a>, <b>, ...)` with each value bound, for `IN`; `(NULL)`, which matches nothing,
    /// for no values (`IN ()` is not SQL).
    pub fn bind_list<V: Into<String>>(&mut self, values: impl IntoIterator<Item = V>) -> &mut Self {
        self.text.push('(');
        let mut empty = true;
        for v in values {
            if !empty {
                self.text.push_str(", ");
            }
            self.bind(v);
            empty = false;
        }
        if empty {
            self.text.push_str("NULL");
        }
        self.text.push(')');
        self
    }

    /// Bind a value once, to be referred to by the returned placeholder several times.
    pub fn param(&mut self, value: impl Into<String>) -> String {
        self.binds.push(value.into());
        format!("${}", self.binds.len())
    }

    pub fn query(&self) -> BoxedSqlQuery<'_, Backend, diesel::query_builder::SqlQuery> {
        let mut q = diesel::sql_query(self.text.clone()).into_boxed::<Backend>();
        for b in &self.binds {
            q = q.bind::<Text, _>(b.clone());
        }
        q
    }

    /// The statement as one whose rows are of the SQL types `ST` (a tuple, in the order of
    /// the columns), read by position into a `Queryable` type.
    pub fn typed<ST>(&self) -> Typed<'_, ST> {
        Typed {
            query: self.query(),
            row: PhantomData,
        }
    }
}

/// A statement whose rows are read by position (`Queryable`), not looked up by column name
/// (`QueryableByName`, which compares the wanted name with each column's in turn: 15 name
/// comparisons a row for five columns, 4.5 million for the 300,000 rows of the Markdown
/// download's answers). For statements of many rows.
pub struct Typed<'q, ST> {
    query: BoxedSqlQuery<'q, Backend, diesel::query_builder::SqlQuery>,
    row: PhantomData<ST>,
}

impl<ST> QueryFragment<Backend> for Typed<'_, ST> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Backend>) -> QueryResult<()> {
        self.query.walk_ast(pass)
    }
}

impl<ST> QueryId for Typed<'_, ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<ST> Query for Typed<'_, ST> {
    type SqlType = ST;
}

impl<ST> diesel::RunQueryDsl<DbConn> for Typed<'_, ST> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{connect, DbUrl};
    use diesel::sql_types::BigInt;
    use diesel::RunQueryDsl;

    #[derive(diesel::QueryableByName, Debug, PartialEq)]
    struct Row {
        #[diesel(sql_type = Text)]
        grp: String,
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    fn check(url: &str) {
        let pool = connect(&DbUrl::parse(url).unwrap(), 1).unwrap();
        let mut conn = pool.get().unwrap();
        crate::db::countries::sync_countries(
            &mut conn,
            &crate::reference::Countries::load().unwrap(),
        )
        .unwrap();
        let mut sql = Sql::new("SELECT region_code AS grp, COUNT(*) AS n FROM countries WHERE ");
        let p = sql.param("150");
        sql.push(&format!(
            "(region_code = {p} OR subregion_code = {p}) AND iso3 <> "
        ))
        .bind("SWE")
        .push(" GROUP BY region_code");
        let rows: Vec<Row> = sql.query().load(&mut conn).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].grp, "150");
        assert!(rows[0].n > 40);
    }

    #[test]
    fn placeholders_work_on_sqlite_and_postgres() {
        let dir = tempfile_dir();
        check(&dir.join("s.db").display().to_string());
        if let Ok(pg) = std::env::var("COHERENCE_TEST_PG") {
            use diesel::Connection;
            let name = format!("coherence_unit_{}", crate::db::new_id());
            let mut admin = diesel::PgConnection::establish(&format!("{pg}/postgres")).unwrap();
            diesel::sql_query(format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .unwrap();
            check(&format!("{pg}/{name}"));
        }
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("coherence-unit-{}", crate::db::new_id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}

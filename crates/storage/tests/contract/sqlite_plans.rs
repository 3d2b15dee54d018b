//! SQLite only: the plan SQLite makes for a statement a repository call really ran, by `EXPLAIN
//! QUERY PLAN`. SQLite keeps no statistics of index reads, but its plan says which index a
//! statement walks and whether it sorts what it read: a listing that walks an index in its own
//! order reads one page, one that sorts reads everything its filter matches first.
//!
//! The statements are recorded through diesel's default instrumentation, which every connection
//! established after [`StatementLog::watch`] takes on; only the watched database's are kept.

use std::collections::HashMap;
use std::sync::{Mutex, Once};

use baton_storage::testing::TestDatabase;
use diesel::connection::{Instrumentation, InstrumentationEvent, set_default_instrumentation};
use diesel::sql_types::Text;
use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};

/// The statements run on each watched database so far, by its file path.
static STATEMENTS: Mutex<Option<HashMap<String, Vec<String>>>> = Mutex::new(None);
static INSTALL: Once = Once::new();

/// Records the statements of a connection once it turns out to be to a watched database.
fn recorder() -> Option<Box<dyn Instrumentation>> {
    let mut watched: Option<String> = None;
    Some(Box::new(
        move |event: InstrumentationEvent<'_>| match event {
            InstrumentationEvent::StartEstablishConnection { url, .. } => {
                let log = STATEMENTS.lock().unwrap();
                watched = log
                    .as_ref()
                    .filter(|log| log.contains_key(url))
                    .map(|_| url.to_owned());
            }
            InstrumentationEvent::StartQuery { query, .. } => {
                if let Some(path) = &watched {
                    // The display is the SQL, then ` -- binds: [...]`: the plan needs only the SQL.
                    let text = query.to_string();
                    let sql = text.split(" -- binds: ").next().unwrap_or(&text).to_owned();
                    if let Some(log) = STATEMENTS.lock().unwrap().as_mut() {
                        log.entry(path.clone()).or_default().push(sql);
                    }
                }
            }
            _ => {}
        },
    ))
}

/// The statements of one SQLite test database.
pub struct StatementLog {
    path: String,
}

impl StatementLog {
    /// Starts recording `database`'s statements: call it before `database.connect()`, as only
    /// connections established afterwards are recorded.
    pub fn watch(database: &TestDatabase) -> StatementLog {
        INSTALL.call_once(|| set_default_instrumentation(recorder).unwrap());
        let path = database
            .url()
            .strip_prefix("sqlite://")
            .expect("a SQLite test database")
            .to_owned();
        STATEMENTS
            .lock()
            .unwrap()
            .get_or_insert_with(HashMap::new)
            .insert(path.clone(), Vec::new());
        StatementLog { path }
    }

    /// The plan of the last SELECT run on the database, one line of `EXPLAIN QUERY PLAN` each.
    pub fn plan_of_last_select(&self) -> Vec<String> {
        let sql = STATEMENTS
            .lock()
            .unwrap()
            .as_ref()
            .and_then(|log| log.get(&self.path))
            .and_then(|statements| {
                statements
                    .iter()
                    .rev()
                    .find(|sql| sql.trim_start().starts_with("SELECT"))
                    .cloned()
            })
            .expect("a SELECT was run on the watched database");
        explain(&self.path, &sql)
    }
}

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text)]
    detail: String,
}

/// `EXPLAIN QUERY PLAN` of `sql` on the database at `path`. Its parameters stay unbound: SQLite
/// plans a statement before it binds values, so the plan is the one the repository's run got.
pub fn explain(path: &str, sql: &str) -> Vec<String> {
    let mut conn = SqliteConnection::establish(path).unwrap();
    diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
        .load::<PlanLine>(&mut conn)
        .unwrap()
        .into_iter()
        .map(|line| line.detail)
        .collect()
}

/// Asserts that `plan` walks `index` and sorts nothing: the statement reads its rows in the
/// index's order and stops at its limit.
pub fn assert_walks_in_order(plan: &[String], index: &str) {
    assert!(
        plan.iter().any(|line| {
            line.ends_with(&format!("USING INDEX {index}"))
                || line.contains(&format!("USING INDEX {index} ("))
                || line.contains(&format!("USING COVERING INDEX {index}"))
        }),
        "the plan walks {index}: {plan:#?}"
    );
    assert!(
        !plan.iter().any(|line| line.contains("TEMP B-TREE")),
        "the plan sorts nothing: {plan:#?}"
    );
}

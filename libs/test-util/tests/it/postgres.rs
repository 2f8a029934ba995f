//! The throwaway PostgreSQL cluster: SQL through sqlx, restarts, crashes, side-by-side
//! clusters, and cleanup.

use bulwark_test_util::postgres::TestPostgres;
use sqlx::{Connection, PgConnection};

async fn connect(pg: &TestPostgres, database: &str) -> PgConnection {
    PgConnection::connect(&pg.url(database)).await.unwrap()
}

async fn names(connection: &mut PgConnection) -> Vec<String> {
    sqlx::query_scalar("SELECT name FROM audit_log ORDER BY id")
        .fetch_all(connection)
        .await
        .unwrap()
}

#[tokio::test]
async fn postgres_keeps_rows_across_a_restart_and_cleans_up_on_drop() {
    let pg = TestPostgres::start().unwrap();
    let dir = pg.socket_dir().to_owned();
    pg.create_database("archiver_test").unwrap();
    let mut connection = connect(&pg, "archiver_test").await;
    sqlx::query("CREATE TABLE audit_log (id bigint PRIMARY KEY, name text NOT NULL)")
        .execute(&mut connection)
        .await
        .unwrap();
    sqlx::query("INSERT INTO audit_log VALUES (1, 'created'), (2, 'deleted')")
        .execute(&mut connection)
        .await
        .unwrap();
    assert_eq!(names(&mut connection).await, ["created", "deleted"]);

    pg.restart().unwrap();

    // The restart closed the old connection; a new one sees the committed rows.
    assert!(
        sqlx::query("SELECT 1")
            .execute(&mut connection)
            .await
            .is_err()
    );
    let mut connection = connect(&pg, "archiver_test").await;
    assert_eq!(names(&mut connection).await, ["created", "deleted"]);
    drop(connection);

    assert!(dir.join(".s.PGSQL.5432").exists());
    drop(pg);
    assert!(!dir.exists(), "{} is left behind", dir.display());
}

#[tokio::test]
async fn postgres_recovers_committed_rows_after_a_crash() {
    let pg = TestPostgres::start().unwrap();
    let mut connection = connect(&pg, "postgres").await;
    sqlx::query("CREATE TABLE audit_log (id bigint PRIMARY KEY, name text NOT NULL)")
        .execute(&mut connection)
        .await
        .unwrap();
    sqlx::query("INSERT INTO audit_log VALUES (1, 'kept')")
        .execute(&mut connection)
        .await
        .unwrap();

    pg.stop_server().unwrap();
    let refused = PgConnection::connect(&pg.url("postgres")).await;
    pg.start_server().unwrap();

    assert!(refused.is_err(), "connected to a stopped server");
    let mut connection = connect(&pg, "postgres").await;
    assert_eq!(names(&mut connection).await, ["kept"]);
}

#[tokio::test]
async fn postgres_clusters_run_side_by_side() {
    let first = TestPostgres::start().unwrap();
    let second = TestPostgres::start().unwrap();
    first.create_database("only_in_first").unwrap();

    let mut connection = connect(&second, "postgres").await;
    let databases: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database")
        .fetch_all(&mut connection)
        .await
        .unwrap();

    assert_ne!(first.socket_dir(), second.socket_dir());
    assert!(
        !databases.contains(&"only_in_first".to_owned()),
        "{databases:?}"
    );
    connect(&first, "only_in_first").await;
}

#[test]
fn postgres_stop_reports_success_and_removes_the_directory() {
    let pg = TestPostgres::start().unwrap();
    let dir = pg.socket_dir().to_owned();
    let log = pg.log_file();
    assert!(log.is_file());

    pg.stop().unwrap();

    assert!(!dir.exists(), "{} is left behind", dir.display());
}

#[test]
fn postgres_create_database_reports_failures() {
    let pg = TestPostgres::start().unwrap();
    pg.create_database("twice").unwrap();

    let error = pg.create_database("twice").unwrap_err().to_string();

    assert!(error.starts_with("createdb failed"), "{error}");
    assert!(
        error.contains(r#"database "twice" already exists"#),
        "{error}"
    );
}

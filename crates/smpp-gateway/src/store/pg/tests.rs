//! `PgStore` against a real server, each test on a database of its own.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::migrations::MIGRATIONS;
use super::*;

/// The server tests use: `SMPP_TEST_DATABASE_URL`, or the local one.
fn server_url() -> String {
    std::env::var("SMPP_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// `url` naming the database `name` instead.
fn with_database(url: &str, name: &str) -> String {
    let Some(scheme) = url.find("://") else {
        return format!("{url} dbname={name}");
    };
    let (main, query) = url.split_at(url.find('?').unwrap_or(url.len()));
    let authority_end = main[scheme + 3..]
        .find('/')
        .map_or(main.len(), |i| scheme + 3 + i);
    format!("{}/{name}{query}", &main[..authority_end])
}

/// A database of its own for one test, dropped at the end (after a
/// panic too), so that runs never see each other's data.
pub(crate) struct TestDatabase {
    pub(crate) url: String,
    name: String,
}

impl TestDatabase {
    pub(crate) async fn new() -> TestDatabase {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "t_{}_{}_unit",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let admin = connect_client(&parse_url(&server_url()).unwrap())
            .await
            .expect("a PostgreSQL server for the tests (SMPP_TEST_DATABASE_URL)");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        TestDatabase {
            url: with_database(&server_url(), &name),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Its own thread and runtime: drop may run inside a runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let admin = connect_client(&parse_url(&server_url()).ok()?).await.ok()?;
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

#[test]
fn urls_name_the_test_database() {
    assert_eq!(
        with_database("postgres://u@h:5432/test", "t_1"),
        "postgres://u@h:5432/t_1"
    );
    assert_eq!(
        with_database("postgres://u@h/test?sslmode=disable", "t_1"),
        "postgres://u@h/t_1?sslmode=disable"
    );
    assert_eq!(with_database("postgres://u@h", "t_1"), "postgres://u@h/t_1");
    assert_eq!(
        with_database("host=h user=u", "t_1"),
        "host=h user=u dbname=t_1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_store_passes_the_script_and_survives_a_reopen() {
    let db = TestDatabase::new().await;
    {
        let store = PgStore::connect(&db.url).await.unwrap();
        crate::store::tests::exercise(&store).await;
        store.close().await.unwrap();
        assert!(matches!(store.message(8).await, Err(StoreError::Closed)));
        assert!(matches!(
            store.write(Vec::new()).await,
            Err(StoreError::Closed)
        ));
    }
    let store = PgStore::connect(&db.url).await.unwrap();
    assert_eq!(store.lookup("a", "abc").await.unwrap(), None, "deleted");
    assert_eq!(store.message(8).await.unwrap().map(|m| m.id), Some(8));
    assert_eq!(store.finished_before(5_000, 10).await.unwrap().len(), 1);
    assert_eq!(store.max_message_id().await.unwrap(), 8);
    assert_eq!(store.max_seq().await.unwrap(), 4);
    assert_eq!(store.quotas().await.unwrap()[0].1.balance, Some(945_000));
    store
        .write(vec![Op::Charge {
            account: "esme".into(),
            balance: 45_000,
            sms: 0,
        }])
        .await
        .unwrap();
    assert_eq!(store.quotas().await.unwrap()[0].1.balance, Some(900_000));
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_from_two_stores_on_one_database_all_count() {
    let db = TestDatabase::new().await;
    let a = Arc::new(PgStore::connect(&db.url).await.unwrap());
    let b = Arc::new(PgStore::connect(&db.url).await.unwrap());
    a.write(vec![Op::SetQuota {
        account: "esme".into(),
        quota: Quota {
            balance: Some(1_000),
            sms: Some(100),
        },
    }])
    .await
    .unwrap();
    // Many small batches at once: the writers group them, and every
    // charge counts whichever store and group it went through.
    let mut tasks = Vec::new();
    for i in 0..200_u64 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let ops = vec![
                Op::PutAccount(StoredAccount {
                    system_id: format!("acc{i}"),
                    password: "pw".into(),
                    allow: Vec::new(),
                    certificate_name: None,
                }),
                Op::Charge {
                    account: "esme".into(),
                    balance: 3,
                    sms: 1,
                },
                Op::Charge {
                    account: "unlimited".into(),
                    balance: 3,
                    sms: 1,
                },
                Op::PutSetting {
                    key: "shared".into(),
                    value: i.to_string(),
                },
            ];
            match store.write(ops).await {
                Ok(()) => true,
                // The SMS count ran out: the whole batch was refused.
                Err(StoreError::Exhausted { sms: true }) => false,
                Err(e) => panic!("{e}"),
            }
        }));
    }
    let mut written = 0;
    for task in tasks {
        written += usize::from(task.await.unwrap());
    }
    // Exactly what the SMS count held, whichever store and group.
    assert_eq!(written, 100);
    let quotas = b.quotas().await.unwrap();
    assert_eq!(
        quotas,
        [
            (
                "esme".to_owned(),
                Quota {
                    balance: Some(700),
                    sms: Some(0)
                }
            ),
            ("unlimited".to_owned(), Quota::default())
        ]
    );
    assert_eq!(a.accounts().await.unwrap().len(), 100);
    assert_eq!(a.settings().await.unwrap().len(), 1);
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_waiting_together_commit_as_one_group() {
    let db = TestDatabase::new().await;
    let store = Arc::new(PgStore::connect(&db.url).await.unwrap());
    let charge = || Op::Charge {
        account: "esme".into(),
        balance: 1,
        sms: 0,
    };
    store.write(vec![charge()]).await.unwrap();
    let before = store.groups_committed();
    // Another session holds the quota row: the writer's next group waits
    // for it, and every batch sent meanwhile queues behind it.
    let admin = connect_client(&parse_url(&db.url).unwrap()).await.unwrap();
    admin
        .batch_execute("BEGIN; SELECT * FROM quotas WHERE account = 'esme' FOR UPDATE")
        .await
        .unwrap();
    let blocked = tokio::spawn({
        let store = store.clone();
        async move { store.write(vec![charge()]).await }
    });
    // The writer waits for the lock (its group taken) before the others come.
    let watcher = connect_client(&parse_url(&db.url).unwrap()).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let waits: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waits > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the writer never waited"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let waiting: Vec<_> = (0..50)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write(vec![Op::PutSetting {
                        key: format!("k{n}"),
                        value: "v".into(),
                    }])
                    .await
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while store.queued() < 50 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} queued",
            store.queued()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    admin.batch_execute("COMMIT").await.unwrap();
    blocked.await.unwrap().unwrap();
    for w in waiting {
        w.await.unwrap().unwrap();
    }
    assert_eq!(
        store.groups_committed() - before,
        2,
        "the blocked group, then the 50 waiting as one"
    );
    assert_eq!(store.settings().await.unwrap().len(), 50);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_even_when_nodes_start_together() {
    let db = TestDatabase::new().await;
    let migrators: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url.clone();
            tokio::spawn(async move { PgStore::migrate(&url).await.unwrap() })
        })
        .collect();
    let mut applied = Vec::new();
    for m in migrators {
        applied.push(m.await.unwrap());
    }
    applied.sort();
    let all: Vec<i64> = MIGRATIONS.iter().map(|m| m.0).collect();
    assert_eq!(applied, [vec![], vec![], vec![], all], "one of them did it");
    assert!(PgStore::migrate(&db.url).await.unwrap().is_empty());
    let client = connect_client(&parse_url(&db.url).unwrap()).await.unwrap();
    let count: i64 = client
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, i64::try_from(MIGRATIONS.len()).unwrap());
    // A schema newer than this binary knows is refused.
    client
        .batch_execute("INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')")
        .await
        .unwrap();
    let refused = PgStore::connect(&db.url).await.unwrap_err();
    assert!(refused.to_string().contains("upgrade"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_lost_are_made_again() {
    let db = TestDatabase::new().await;
    let store = PgStore::connect(&db.url).await.unwrap();
    let setting = |n: u32| Op::PutSetting {
        key: format!("k{n}"),
        value: "v".into(),
    };
    store.write(vec![setting(0)]).await.unwrap();
    assert_eq!(store.settings().await.unwrap().len(), 1);
    // The server ends every connection of the store (as a restart would).
    let admin = connect_client(&parse_url(&server_url()).unwrap())
        .await
        .unwrap();
    let ended: i64 = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1",
            &[&db.name],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(ended, 2, "the writer's and the reader's");
    // A call may fail while the loss is noticed; then they work again,
    // and what was answered Ok is there.
    let mut written = vec![0];
    for n in 1..=5 {
        if store.write(vec![setting(n)]).await.is_ok() {
            written.push(n);
        }
    }
    assert!(written.len() >= 4, "written again: {written:?}");
    let mut settings = None;
    for _ in 0..3 {
        settings = store.settings().await.ok();
        if settings.is_some() {
            break;
        }
    }
    let keys: Vec<String> = settings.unwrap().into_iter().map(|(k, _)| k).collect();
    for n in written {
        assert!(keys.contains(&format!("k{n}")), "{keys:?}");
    }
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://gw@127.0.0.1:{port}/smpp");
    let e = PgStore::connect(&url).await.unwrap_err().to_string();
    assert!(
        e.contains(&format!(
            "cannot connect to PostgreSQL at gw@127.0.0.1:{port}/smpp"
        )),
        "{e}"
    );
    let e = PgStore::connect("postgres://[nope").await.unwrap_err();
    assert!(e.to_string().contains("bad PostgreSQL URL"), "{e}");
}

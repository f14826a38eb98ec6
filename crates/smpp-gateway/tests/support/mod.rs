//! What the gateway's test files share: upstream simulators, a config
//! builder, waiting helpers.
#![allow(dead_code, unused_macros, unused_imports)] // each test file uses its own part

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::routing::any;
use smpp_gateway::{GatewayConfig, RunningGateway, StoreConfig};
use smpp_proto::message::receipt::MessageState;
use smpp_proto::pdu::{CommandId, CommandStatus};
use smpp_server::{Observer, RequestEvent, RunningServer, ServeConfig};

pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// Runs a test body (`async fn NAME(store: StoreConfig)`) once per store
/// named: tests `NAME::memory`, `NAME::fjall`, `NAME::postgres`.
macro_rules! store_tests {
    ($body:ident: $($kind:ident),+ $(,)?) => {
        mod $body {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $kind() {
                    let store = crate::support::TestStore::$kind().await;
                    super::$body(store.config()).await;
                }
            )+
        }
    };
}
pub(crate) use store_tests;

/// The server PostgreSQL tests use: `SMPP_TEST_DATABASE_URL`, or the
/// local one (`cargo xtask ci` starts it when it is not running).
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

async fn admin() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&server_url(), tokio_postgres::NoTls)
        .await
        .expect("a PostgreSQL server for the tests (SMPP_TEST_DATABASE_URL)");
    tokio::spawn(connection);
    client
}

/// A database of its own for one test, dropped at the end (after a panic
/// too), so that runs never see each other's data.
pub(crate) struct TestDatabase {
    pub(crate) url: String,
    name: String,
}

impl TestDatabase {
    /// Takes the database away from its clients (`down`: their connections
    /// ended and new ones refused, as while the server restarts) or gives
    /// it back; the server's other databases are untouched.
    pub(crate) async fn outage(&self, down: bool) {
        let admin = admin().await;
        admin
            .batch_execute(&format!(
                "ALTER DATABASE {} ALLOW_CONNECTIONS {}",
                self.name, !down
            ))
            .await
            .unwrap();
        if down {
            admin
                .execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = $1 AND pid <> pg_backend_pid()",
                    &[&self.name],
                )
                .await
                .unwrap();
        }
    }

    pub(crate) async fn new() -> TestDatabase {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "t_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let admin = admin().await;
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
        // Its own thread and runtime: drop runs inside the test's runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                admin()
                    .await
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

/// A store for one test, removed at its end.
pub(crate) enum TestStore {
    Memory,
    Fjall(tempfile::TempDir),
    Postgres(TestDatabase),
}

impl TestStore {
    pub(crate) async fn memory() -> TestStore {
        TestStore::Memory
    }

    pub(crate) async fn fjall() -> TestStore {
        TestStore::Fjall(tempfile::tempdir().unwrap())
    }

    pub(crate) async fn postgres() -> TestStore {
        TestStore::Postgres(TestDatabase::new().await)
    }

    pub(crate) fn config(&self) -> StoreConfig {
        match self {
            TestStore::Memory => StoreConfig::Memory,
            TestStore::Fjall(dir) => StoreConfig::Path(dir.path().to_owned()),
            TestStore::Postgres(db) => StoreConfig::Postgres(db.url.clone()),
        }
    }
}

/// Counts the `submit_sm`s an upstream accepted.
#[derive(Debug, Default)]
pub(crate) struct Submits(pub AtomicUsize);

impl Observer for Submits {
    fn request(&self, event: &RequestEvent<'_>) {
        if event.command == CommandId::SUBMIT_SM && event.status == CommandStatus::OK {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

pub(crate) struct Upstream {
    pub(crate) server: RunningServer,
    pub(crate) submits: Arc<Submits>,
}

impl Upstream {
    pub(crate) fn count(&self) -> usize {
        self.submits.0.load(Ordering::Relaxed)
    }
}

/// An `smpp serve` simulator (memory store, account smppclient1/password)
/// whose receipts all say `state`, after `delay`.
pub(crate) async fn upstream(state: MessageState, delay: Duration, listen: &str) -> Upstream {
    let mut config = ServeConfig::for_tests();
    config.listen = listen.into();
    config.outcomes = vec![(state, 1)];
    config.dlr_delay = delay;
    let submits = Arc::new(Submits::default());
    let server = smpp_server::start_with(config, submits.clone())
        .await
        .unwrap();
    Upstream { server, submits }
}

/// A port nothing listens on (taken, then let go).
pub(crate) fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

pub(crate) fn config(
    store: StoreConfig,
    upstreams: &[(&str, SocketAddr)],
    routes: &[&str],
) -> GatewayConfig {
    let mut config = GatewayConfig {
        listen: "127.0.0.1:0".into(),
        store,
        ..GatewayConfig::default()
    };
    config.accounts = vec!["esme:secret".parse().unwrap()];
    config.upstreams = upstreams
        .iter()
        .map(|(name, addr)| {
            format!("{name}=smppclient1:password@{addr}")
                .parse()
                .unwrap()
        })
        .collect();
    config.routes = routes.iter().map(|r| r.parse().unwrap()).collect();
    config
}

pub(crate) async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) async fn wait_bound(gateway: &RunningGateway, name: &str) {
    wait_for(&format!("upstream {name} bound"), || {
        gateway.upstream_binds(name).unwrap_or(0) > 0
    })
    .await;
}

/// Serves `router` on 127.0.0.1:0 (with the client's address); its base URL.
pub(crate) async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}")
}

/// A webhook receiver: records each call (query or body), answers 500 to
/// the first `fail_first` calls, then 200 `ACK/Jasmin`.
#[derive(Clone, Default)]
pub(crate) struct Receiver {
    pub(crate) calls: Arc<Mutex<Vec<String>>>,
    pub(crate) seen: Arc<AtomicUsize>,
    pub(crate) fail_first: usize,
}

impl Receiver {
    pub(crate) async fn start(fail_first: usize) -> (Receiver, String) {
        let receiver = Receiver {
            fail_first,
            ..Receiver::default()
        };
        let router = axum::Router::new()
            .route("/{*path}", any(receive))
            .with_state(receiver.clone());
        let base = serve(router).await;
        (receiver, format!("{base}/hook"))
    }

    pub(crate) fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

pub(crate) async fn receive(
    State(r): State<Receiver>,
    uri: Uri,
    body: String,
) -> (StatusCode, &'static str) {
    if r.seen.fetch_add(1, Ordering::SeqCst) < r.fail_first {
        return (StatusCode::INTERNAL_SERVER_ERROR, "not now");
    }
    let call = format!("{}{}", uri.query().unwrap_or_default(), body);
    r.calls.lock().unwrap().push(call);
    (StatusCode::OK, "ACK/Jasmin")
}

pub(crate) async fn wait_calls(receiver: &Receiver, n: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let calls = receiver.calls();
        if calls.len() >= n {
            return calls;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} calls of {n}",
            calls.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

//! The gateway's HTTP API over the wire: Jasmin's `/send`, `/balance`,
//! `/rate` and receipt callbacks, the JSON v1 API (messages, batches,
//! balance), the admin balance and `/metrics`; upstreams are in-process
//! `smpp serve` simulators; webhook receivers are small HTTP servers here.
//! Everything on 127.0.0.1, port 0.

use std::sync::atomic::Ordering;
use std::time::Duration;

use smpp_gateway::http::HttpOptions;
use smpp_gateway::{start, GatewayConfig, RunningGateway, StoreConfig};
use smpp_proto::message::receipt::MessageState;

mod support;
use support::*;

async fn gateway(config: GatewayConfig, options: HttpOptions) -> (RunningGateway, String) {
    let gateway = start(config).await.unwrap();
    let base = serve(gateway.http_router(options)).await;
    (gateway, base)
}

fn fields(text: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(text.as_bytes())
        .into_owned()
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jasmin_send_balance_rate_and_receipt_callbacks() {
    let up = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    let mut config = config(
        StoreConfig::Memory,
        &[("a", up.server.smpp_addr())],
        &["33=a,rate=0.05"],
    );
    config.balances = vec!["esme=1.00".parse().unwrap()];
    let (gw, base) = gateway(config, HttpOptions::default()).await;
    wait_bound(&gw, "a").await;
    let (receiver, hook) = Receiver::start(0).await;
    let http = reqwest::Client::new();

    // Jasmin's documented send, with a level-3 receipt (example_send_dlr2.py).
    let response = http
        .get(format!("{base}/send"))
        .query(&[
            ("username", "esme"),
            ("password", "secret"),
            ("to", "33612345678"),
            ("content", "Hello world !"),
            ("dlr", "yes"),
            ("dlr-url", hook.as_str()),
            ("dlr-level", "3"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    let id = body
        .strip_prefix("Success \"")
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    let calls = wait_calls(&receiver, 2).await;
    let level1 = fields(&calls[0]);
    assert_eq!(field(&level1, "id"), Some(id.as_str()));
    assert_eq!(field(&level1, "message_status"), Some("ESME_ROK"));
    assert_eq!(field(&level1, "level"), Some("3"));
    let level2 = fields(&calls[1]);
    assert_eq!(field(&level2, "id"), Some(id.as_str()));
    assert_eq!(field(&level2, "message_status"), Some("DELIVRD"));
    assert_eq!(field(&level2, "dlvrd"), Some("001"));
    assert!(!field(&level2, "id_smsc").unwrap().is_empty());
    assert_eq!(field(&level2, "subdate").map(str::len), Some(10));
    assert_eq!(field(&level2, "text"), Some("Hello world !"));

    // POST works the same (form body).
    let response = http
        .post(format!("{base}/send"))
        .form(&[
            ("username", "esme"),
            ("password", "secret"),
            ("to", "33612345679"),
            ("content", "again"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Two messages at 0.05 from 1.00.
    let balance: serde_json::Value = http
        .get(format!("{base}/balance?username=esme&password=secret"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        balance,
        serde_json::json!({"balance": 0.9, "sms_count": "ND"})
    );
    let rate: serde_json::Value = http
        .get(format!(
            "{base}/rate?username=esme&password=secret&to=33612345678"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        rate,
        serde_json::json!({"unit_rate": 0.05, "submit_sm_count": 1})
    );

    // Jasmin's errors, with its codes and words.
    for (query, status, text) in [
        (
            "username=esme&password=wrong&to=336&content=x",
            403,
            "Error \"Authentication failure for username:esme\"",
        ),
        (
            "username=esme&password=secret&to=336&content=x&colour=red",
            400,
            "Error \"Argument colour is unknown.\"",
        ),
        (
            "username=esme&password=secret&content=x",
            400,
            "Error \"Mandatory argument to is not found.\"",
        ),
        (
            "username=esme&password=secret&to=44123&content=x",
            412,
            "Error \"No route found\"",
        ),
    ] {
        let response = http
            .get(format!("{base}/send?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{query}");
        assert_eq!(response.text().await.unwrap(), text, "{query}");
    }
    gw.shutdown().await.unwrap();
    up.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_api_sends_shows_the_history_and_retries_webhooks() {
    let up = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    let mut config = config(StoreConfig::Memory, &[("a", up.server.smpp_addr())], &[]);
    config.accounts.push("other:pw".parse().unwrap());
    let (gw, base) = gateway(config, HttpOptions::default()).await;
    wait_bound(&gw, "a").await;
    // The receiver refuses the first two calls: the receipt comes on the third.
    let (receiver, hook) = Receiver::start(2).await;
    let http = reqwest::Client::new();
    let unauthenticated = http
        .post(format!("{base}/api/v1/messages"))
        .json(&serde_json::json!({"to": "336", "text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);

    let text = "a long message ".repeat(20); // 280 characters: 2 parts
    let sent: serde_json::Value = http
        .post(format!("{base}/api/v1/messages"))
        .basic_auth("esme", Some("secret"))
        .json(&serde_json::json!({
            "from": "Acme", "to": "33612345678", "text": text,
            "receipt": true, "webhook": hook,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<String> = sent["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2, "{sent}");
    let calls = wait_calls(&receiver, 2).await;
    assert!(
        receiver.seen.load(Ordering::SeqCst) >= 4,
        "two refusals, then two receipts"
    );
    for id in &ids {
        assert!(
            calls.iter().any(|c| {
                let v: serde_json::Value = serde_json::from_str(c).unwrap();
                v["id"] == id.as_str() && v["state"] == "DELIVRD"
            }),
            "{calls:?}"
        );
    }
    let shown: serde_json::Value = http
        .get(format!("{base}/api/v1/messages/{}", ids[0]))
        .basic_auth("esme", Some("secret"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["state"], "DELIVRD");
    let states: Vec<&str> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["ACCEPTED", "FORWARDED", "DELIVRD"]);
    assert_eq!(shown["upstream"], "a");
    // Another account does not see it.
    let hidden = http
        .get(format!("{base}/api/v1/messages/{}", ids[0]))
        .basic_auth("other", Some("pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(hidden.status(), 404);
    gw.shutdown().await.unwrap();
    up.server.shutdown().await.unwrap();
}

store_tests!(a_batch_of_1000_recipients_reports_each_one_s_state: fjall, postgres);

async fn a_batch_of_1000_recipients_reports_each_one_s_state(store: StoreConfig) {
    let up = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    let config = config(store, &[("a", up.server.smpp_addr())], &[]);
    let (gw, base) = gateway(config, HttpOptions::default()).await;
    wait_bound(&gw, "a").await;
    let http = reqwest::Client::new();
    let to: Vec<String> = (0..1000).map(|i| format!("3361000{i:04}")).collect();
    let made: serde_json::Value = http
        .post(format!("{base}/api/v1/batches"))
        .basic_auth("esme", Some("secret"))
        .json(&serde_json::json!({"from": "Acme", "to": to, "text": "Sale!", "receipt": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(made["accepted"], 1000, "{made}");
    let batch = made["batch"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let report = loop {
        let report: serde_json::Value = http
            .get(format!("{base}/api/v1/batches/{batch}"))
            .basic_auth("esme", Some("secret"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if report["final"] == 1000 {
            break report;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            report["states"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(report["states"], serde_json::json!({"DELIVRD": 1000}));
    let rows = report["report"].as_array().unwrap();
    assert_eq!(rows.len(), 1000);
    assert_eq!(rows[7]["to"], to[7].as_str());
    assert_eq!(rows[7]["parts"][0]["state"], "DELIVRD");
    assert_eq!(up.count(), 1000);
    gw.shutdown().await.unwrap();
    up.server.shutdown().await.unwrap();
}

store_tests!(the_admin_api_changes_balances_behind_its_token_and_they_survive_a_restart: fjall, postgres);

async fn the_admin_api_changes_balances_behind_its_token_and_they_survive_a_restart(
    store: StoreConfig,
) {
    let up = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    let mut config = config(store, &[("a", up.server.smpp_addr())], &["*=a,rate=0.5"]);
    config.balances = vec!["esme=1".parse().unwrap()];
    let options = || HttpOptions {
        admin_token: Some(smpp_server::credentials::Secret::new("s3cret-token").unwrap()),
        ..HttpOptions::default()
    };
    let (gw, base) = gateway(config.clone(), options()).await;
    let http = reqwest::Client::new();
    let url = format!("{base}/api/v1/admin/accounts/esme/balance");
    let refused = http
        .post(&url)
        .json(&serde_json::json!({"add": "2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let changed: serde_json::Value = http
        .post(&url)
        .bearer_auth("s3cret-token")
        .json(&serde_json::json!({"add": "2.25", "set_sms": 10}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(changed, serde_json::json!({"balance": "3.25", "sms": 10}));
    // The metrics are behind the same token.
    assert_eq!(
        http.get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let metrics = http
        .get(format!("{base}/metrics"))
        .bearer_auth("s3cret-token")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("smpp_gateway_upstream_binds{connector=\"a\"}"),
        "{metrics}"
    );
    gw.shutdown().await.unwrap();

    let (gw, base) = gateway(config, options()).await;
    let shown: serde_json::Value = http
        .get(format!("{base}/api/v1/balance"))
        .basic_auth("esme", Some("secret"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown, serde_json::json!({"balance": "3.25", "sms": 10}));
    gw.shutdown().await.unwrap();
    up.server.shutdown().await.unwrap();
}

/// Every route of `docs/gateway-openapi.json` is served (never the "no
/// such endpoint" fallback), and every served route is in the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_file_describes_the_routes_served() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/gateway-openapi.json"
    ))
    .unwrap();
    let spec: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut documented = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    documented.sort();
    let mut served: Vec<(String, String)> = smpp_gateway::http::ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    served.sort();
    assert_eq!(documented, served);

    let up = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    let config = config(StoreConfig::Memory, &[("a", up.server.smpp_addr())], &[]);
    let (gw, base) = gateway(config, HttpOptions::default()).await;
    let http = reqwest::Client::new();
    for (method, path) in &served {
        let url = format!("{base}{}", path.replace("{id}", "esme"));
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = http.request(method.clone(), &url).send().await.unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("no such endpoint") && status != 405,
            "{method} {path}: {status} {body}"
        );
    }
    let unknown = http.get(format!("{base}/nope")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    gw.shutdown().await.unwrap();
    up.server.shutdown().await.unwrap();
}

store_tests!(accounts_made_through_the_admin_api_bind_at_once_and_survive_a_restart: fjall, postgres);

async fn accounts_made_through_the_admin_api_bind_at_once_and_survive_a_restart(
    store: StoreConfig,
) {
    use smpp_proto::pdu::{Bind, CommandStatus};
    use smpp_proto::session::{BindKind, SessionConfig};
    let up = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    let config = config(store, &[("a", up.server.smpp_addr())], &[]);
    let (gw, base) = gateway(config.clone(), HttpOptions::default()).await;
    let http = reqwest::Client::new();
    let bind = |gw: &RunningGateway| {
        let addr = gw.smpp_addr();
        async move {
            let bind = Bind {
                system_id: "shop".into(),
                password: "n3w-pass".into(),
                interface_version: 0x34,
                ..Default::default()
            };
            smpp_tokio::Client::connect(addr, BindKind::Transceiver, bind, SessionConfig::default())
                .await
        }
    };
    assert!(matches!(
        bind(&gw).await,
        Err(smpp_tokio::Error::Status(CommandStatus::INVALID_SYSTEM_ID))
    ));
    let made = http
        .put(format!("{base}/api/v1/admin/accounts/shop"))
        .json(&serde_json::json!({"password": "n3w-pass", "allow": ["127.0.0.0/8"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    let (client, _inbound) = bind(&gw).await.expect("binds without a restart");
    let listed: serde_json::Value = http
        .get(format!("{base}/api/v1/admin/accounts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let shop = listed["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["system_id"] == "shop")
        .unwrap()
        .clone();
    assert_eq!(shop["password_hashed"], true, "stored as a hash");
    assert_eq!(shop["binds"], 1);
    drop(client);
    gw.shutdown().await.unwrap();

    // After a restart (the configuration does not name it) it is still there.
    let (gw, base) = gateway(config.clone(), HttpOptions::default()).await;
    let (client, _inbound) = bind(&gw).await.expect("kept across a restart");
    // Removed: its bind is closed and it cannot bind again.
    let removed = http
        .delete(format!("{base}/api/v1/admin/accounts/shop"))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    tokio::time::timeout(WAIT, client.closed())
        .await
        .expect("its bind closed");
    assert!(matches!(
        bind(&gw).await,
        Err(smpp_tokio::Error::Status(CommandStatus::INVALID_SYSTEM_ID))
    ));
    gw.shutdown().await.unwrap();
    up.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipt_urls_are_limited_to_the_hosts_allowed() {
    let options = HttpOptions {
        webhook_hosts: vec!["hooks.example".into()],
        ..HttpOptions::default()
    };
    for (url, ok) in [
        ("https://hooks.example/dlr", true),
        ("http://HOOKS.example:8080/x?y=1", true),
        ("http://user@hooks.example/", true),
        ("http://127.0.0.1:1401/api/v1/admin/accounts", false),
        ("http://hooks.example.evil/", false),
        ("http://[::1]/", false),
        ("ftp://hooks.example/", false),
    ] {
        assert_eq!(options.webhook_allowed(url), ok, "{url}");
    }
    assert!(HttpOptions::default().webhook_allowed("http://anything/"));

    let up = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    let config = config(StoreConfig::Memory, &[("a", up.server.smpp_addr())], &[]);
    let (gw, base) = gateway(config, options).await;
    let http = reqwest::Client::new();
    let response = http
        .get(format!("{base}/send"))
        .query(&[
            ("username", "esme"),
            ("password", "secret"),
            ("to", "33612345678"),
            ("content", "x"),
            ("dlr", "yes"),
            ("dlr-url", "http://127.0.0.1:1401/internal"),
            ("dlr-level", "2"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.text().await.unwrap(),
        "Error \"Argument dlr-url has an invalid value: http://127.0.0.1:1401/internal.\""
    );
    let refused = http
        .post(format!("{base}/api/v1/messages"))
        .basic_auth("esme", Some("secret"))
        .json(&serde_json::json!({"to": "336", "text": "x", "receipt": true, "webhook": "http://10.0.0.1/"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    gw.shutdown().await.unwrap();
    up.server.shutdown().await.unwrap();
}

/// Sends one message through the JSON API; its HTTP status.
async fn send_to(http: &reqwest::Client, base: &str, to: &str) -> u16 {
    http.post(format!("{base}/api/v1/messages"))
        .basic_auth("esme", Some("secret"))
        .json(&serde_json::json!({"from": "Acme", "to": to, "text": "hi"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn admin_json(request: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

/// The admin API takes a connector's queue limit and bind kind, and
/// refuses a connector that would bind back to the gateway itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_sets_queue_and_bind_and_refuses_a_connector_to_itself() {
    let up = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    let config = config(StoreConfig::Memory, &[("a", up.server.smpp_addr())], &[]);
    let (gw, base) = gateway(config, HttpOptions::default()).await;
    let http = reqwest::Client::new();
    let (status, made) = admin_json(http.put(format!("{base}/api/v1/admin/connectors/b")).json(
        &serde_json::json!({
            "system_id": "smppclient1", "password": "password",
            "address": up.server.smpp_addr().to_string(), "queue": 10, "bind": "tx+rx",
        }),
    ))
    .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(
        (made["queue"].as_u64(), made["bind"].as_str()),
        (Some(10), Some("tx+rx"))
    );
    wait_for("a transmitter and a receiver", || {
        gw.upstream_binds("b") == Some(2)
    })
    .await;

    let (status, refused) = admin_json(
        http.put(format!("{base}/api/v1/admin/connectors/me"))
            .json(&serde_json::json!({
                "system_id": "esme", "password": "secret",
                "address": gw.smpp_addr().to_string(),
            })),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap_or_default()
            .contains("points at this gateway itself"),
        "{refused}"
    );
    assert_eq!(gw.upstream_binds("me"), None);
    gw.shutdown().await.unwrap();
    up.server.shutdown().await.unwrap();
}

store_tests!(connectors_and_routes_made_through_the_admin_api_work_at_once_and_survive_a_restart: fjall, postgres);

async fn connectors_and_routes_made_through_the_admin_api_work_at_once_and_survive_a_restart(
    store: StoreConfig,
) {
    let up1 = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    let up2 = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    // Configured: connector a only, no route (the default route over a).
    let config = config(store, &[("a", up1.server.smpp_addr())], &[]);
    let (gw, base) = gateway(config.clone(), HttpOptions::default()).await;
    wait_bound(&gw, "a").await;
    let http = reqwest::Client::new();
    assert_eq!(send_to(&http, &base, "447012345678").await, 200);
    wait_for("the message at a", || up1.count() == 1).await;

    // A second connector, then routes sending 4470 to it: at once.
    let (status, made) = admin_json(http.put(format!("{base}/api/v1/admin/connectors/b")).json(
        &serde_json::json!({
            "system_id": "smppclient1", "password": "password",
            "address": up2.server.smpp_addr().to_string(), "binds": 2, "window": 32,
        }),
    ))
    .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["binds"], 2);
    wait_bound(&gw, "b").await;
    let (status, routes) = admin_json(
        http.put(format!("{base}/api/v1/admin/routes"))
            .json(&serde_json::json!({"routes": ["4470=b,a", "*=a"]})),
    )
    .await;
    assert_eq!(status, 200, "{routes}");
    assert_eq!(routes["routes"][0]["route"], "4470=b,a");
    assert_eq!(send_to(&http, &base, "447012345678").await, 200);
    wait_for("the message at b", || up2.count() == 1).await;
    assert_eq!(send_to(&http, &base, "33612345678").await, 200);
    wait_for("the other message at a", || up1.count() == 2).await;

    // Refused changes change nothing: a route to an unknown connector, a
    // connector a route still names, a bad body.
    let (status, refused) = admin_json(
        http.post(format!("{base}/api/v1/admin/routes"))
            .json(&serde_json::json!({"route": "49=nowhere"})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        refused["error"]
            .as_str()
            .unwrap_or_default()
            .contains("unknown connector"),
        "{refused}"
    );
    let (status, _) = admin_json(http.delete(format!("{base}/api/v1/admin/connectors/b"))).await;
    assert_eq!(status, 409);
    let (status, _) = admin_json(
        http.put(format!("{base}/api/v1/admin/connectors/c"))
            .json(&serde_json::json!({"system_id": "x", "password": "y", "address": "nowhere"})),
    )
    .await;
    assert_eq!(status, 400);
    // One more route, by position: 336 to b first.
    let (status, routes) = admin_json(
        http.post(format!("{base}/api/v1/admin/routes"))
            .json(&serde_json::json!({"route": "336=b", "position": 0})),
    )
    .await;
    assert_eq!(status, 201, "{routes}");
    assert_eq!(routes["routes"].as_array().unwrap().len(), 3);
    gw.shutdown().await.unwrap();

    // Restarted with the same configuration (which names neither b nor a
    // route): what the admin API made is still there, and in force.
    let (gw, base) = gateway(config.clone(), HttpOptions::default()).await;
    wait_bound(&gw, "b").await;
    let (_, listed) = admin_json(http.get(format!("{base}/api/v1/admin/connectors"))).await;
    let names: Vec<&str> = listed["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert!(
        listed.to_string().find("password").is_none(),
        "no password shown"
    );
    let (_, routes) = admin_json(http.get(format!("{base}/api/v1/admin/routes"))).await;
    let routes: Vec<&str> = routes["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["route"].as_str().unwrap())
        .collect();
    assert_eq!(routes, ["336=b", "4470=b,a", "*=a"]);
    assert_eq!(send_to(&http, &base, "33612345678").await, 200);
    wait_for("the 336 message at b", || up2.count() == 2).await;

    // Routes away from b, then b removed: its binds close.
    let (status, _) = admin_json(http.delete(format!("{base}/api/v1/admin/routes/0"))).await;
    assert_eq!(status, 200);
    let (status, _) = admin_json(
        http.put(format!("{base}/api/v1/admin/routes"))
            .json(&serde_json::json!({"routes": []})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = admin_json(http.delete(format!("{base}/api/v1/admin/connectors/b"))).await;
    assert_eq!(status, 204);
    assert_eq!(gw.upstream_binds("b"), None);
    // The default route again: everything to a.
    assert_eq!(send_to(&http, &base, "447012345678").await, 200);
    wait_for("the last message at a", || up1.count() == 3).await;
    gw.shutdown().await.unwrap();
    up1.server.shutdown().await.unwrap();
    up2.server.shutdown().await.unwrap();
}

async fn page(
    http: &reqwest::Client,
    request: reqwest::RequestBuilder,
) -> (u16, Option<String>, String) {
    let _ = http;
    let response = request.header("accept", "text/html").send().await.unwrap();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, location, response.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_signs_in_with_the_admin_token_and_changes_connectors_routes_and_balances() {
    let up = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    // b's own SMSC (its receipts come back on b's binds).
    let up_b = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    let mut config = config(StoreConfig::Memory, &[("a", up.server.smpp_addr())], &[]);
    config.balances = vec!["esme=5".parse().unwrap()];
    let options = HttpOptions {
        admin_token: Some(smpp_server::credentials::Secret::new("dash-t0ken").unwrap()),
        ..HttpOptions::default()
    };
    let (gw, base) = gateway(config, options).await;
    wait_bound(&gw, "a").await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // Not signed in: a browser goes to the form, a script gets 401.
    let (status, location, _) = page(&http, http.get(format!("{base}/connectors"))).await;
    assert_eq!((status, location.as_deref()), (303, Some("/login")));
    let api = http.get(format!("{base}/routes")).send().await.unwrap();
    assert_eq!(api.status(), 401);
    let (status, _, body) = page(
        &http,
        http.post(format!("{base}/login"))
            .form(&[("token", "wrong")]),
    )
    .await;
    assert_eq!(status, 401);
    assert!(body.contains("Wrong token"));
    let signed = http
        .post(format!("{base}/login"))
        .form(&[("token", "dash-t0ken")])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303);
    let cookie = signed.headers()["set-cookie"].to_str().unwrap().to_owned();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let get = |path: &str| {
        http.get(format!("{base}{path}"))
            .header("cookie", cookie.clone())
    };
    let post = |path: &str| {
        http.post(format!("{base}{path}"))
            .header("cookie", cookie.clone())
    };

    let (status, _, body) = page(&http, get("/")).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("Customer binds") && body.contains("<svg"),
        "{body}"
    );
    let (_, _, body) = page(&http, get("/connectors")).await;
    assert!(body.contains("data-connector=\"a\""), "{body}");

    // A connector from the form: stored and started.
    let (status, location, _) = page(
        &http,
        post("/connectors").form(&[
            ("name", "b"),
            ("address", &up_b.server.smpp_addr().to_string()),
            ("system_id", "smppclient1"),
            ("password", "password"),
            ("binds", "1"),
            ("window", "8"),
            ("tps", ""),
            ("ids", "text"),
            ("source", ""),
        ]),
    )
    .await;
    assert_eq!(status, 303);
    assert!(location.unwrap().contains("ok="));
    wait_bound(&gw, "b").await;
    // A bad one: refused with the reason.
    let (_, location, _) = page(
        &http,
        post("/connectors").form(&[
            ("name", "c"),
            ("address", "no-port"),
            ("system_id", "x"),
            ("password", "y"),
        ]),
    )
    .await;
    assert!(location.unwrap().contains("error="));

    // A route from the form goes before the default, which stays.
    let (status, _, _) = page(
        &http,
        post("/routes").form(&[("route", "4470=b"), ("position", "")]),
    )
    .await;
    assert_eq!(status, 303);
    let (_, _, body) = page(&http, get("/routes")).await;
    let first = body.find("data-route=\"4470=b\"").expect("the new route");
    let default = body.find("data-route=\"*=a,b\"").expect("the default kept");
    assert!(first < default, "{body}");
    // Removing b is refused while the route names it.
    let (_, location, _) = page(&http, post("/connectors/b/delete")).await;
    assert!(location.unwrap().contains("error="));

    // A message, then its timeline and the route's count.
    let sent: serde_json::Value = http
        .post(format!("{base}/api/v1/messages"))
        .basic_auth("esme", Some("secret"))
        .json(&serde_json::json!({"from": "Acme", "to": "447012345678", "text": "hi", "receipt": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = sent["ids"][0].as_str().unwrap().to_owned();
    wait_for("the message at b's upstream", || up_b.count() == 1).await;
    let mut body = String::new();
    for _ in 0..100 {
        body = page(&http, get(&format!("/messages?id={id}"))).await.2;
        if body.contains("data-event=\"DELIVRD\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        body.contains("data-event=\"FORWARDED\"") && body.contains("data-event=\"DELIVRD\""),
        "{body}"
    );
    assert!(
        body.contains(" to b as "),
        "forwarded through the new route: {body}"
    );
    // The message's page stays live: its timeline comes again over its stream.
    let stream = format!("/ui/events/message?id={id}");
    assert!(body.contains(&format!("data-live=\"{stream}\"")), "{body}");
    let mut events = get(&stream).send().await.unwrap();
    assert_eq!(events.status().as_u16(), 200);
    let mut seen = String::new();
    while !seen.contains("data-event=") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), events.chunk())
            .await
            .expect("the message's fragment in time")
            .unwrap()
            .expect("the stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        seen.contains("\"message\"") && seen.contains("DELIVRD"),
        "{seen}"
    );
    let (status, _, _) = page(&http, get("/ui/events/message")).await;
    assert_eq!(status, 400);
    let (_, _, body) = page(&http, get("/routes")).await;
    assert!(
        body.contains("<td class=\"num\">1</td>"),
        "the route's count: {body}"
    );
    // The search finds it by part of its address and its account.
    let (_, _, body) = page(
        &http,
        get("/messages?address=4470123&account=esme&state=DELIVRD&within=60"),
    )
    .await;
    assert_eq!(body.matches("<tr data-message=").count(), 1, "{body}");
    let (_, _, body) = page(
        &http,
        get("/messages?address=4470123&account=other&state=&within="),
    )
    .await;
    assert!(body.contains("No recent message matches"), "{body}");

    // The balance: shown, added to from the form.
    let (_, location, _) = page(
        &http,
        post("/accounts/esme/balance").form(&[("add", "2.50")]),
    )
    .await;
    assert!(location.unwrap().contains("ok="));
    let (_, _, body) = page(&http, get("/accounts")).await;
    assert!(body.contains("data-balance>7.5<"), "{body}");
    assert!(body.contains("Limits per account: binds none"), "{body}");
    // An account from the form binds at once.
    let (_, location, _) = page(
        &http,
        post("/accounts").form(&[
            ("system_id", "shop"),
            ("password", "pw-shop"),
            ("allow", "127.0.0.0/8"),
        ]),
    )
    .await;
    assert!(location.unwrap().contains("ok="));
    let (_, _, body) = page(&http, get("/accounts")).await;
    assert!(body.contains("data-account=\"shop\""), "{body}");
    let shop = smpp_proto::pdu::Bind {
        system_id: "shop".into(),
        password: "pw-shop".into(),
        interface_version: 0x34,
        ..Default::default()
    };
    smpp_tokio::Client::connect(
        gw.smpp_addr(),
        smpp_proto::session::BindKind::Transmitter,
        shop,
        smpp_proto::session::SessionConfig::default(),
    )
    .await
    .expect("the new account binds");
    let (_, _, body) = page(&http, get("/connectors")).await;
    assert!(body.contains("Forwarded /s"), "{body}");
    gw.shutdown().await.unwrap();
    up.server.shutdown().await.unwrap();
    up_b.server.shutdown().await.unwrap();
}

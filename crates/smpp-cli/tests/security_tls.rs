//! The network-facing security controls of `smpp serve`, over the wire
//! against the real binary: the PROXY protocol (plain and TLS), HTTPS,
//! mutual TLS and accounts bound to client certificates.

mod security_support;

use std::process::Command;

use security_support::*;
use smpp_proto::pdu::{Bind, CommandStatus};
use smpp_proto::session::{BindKind, SessionConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

/// `--proxy-protocol 127.0.0.1/32`: from that trusted source, a v1 or v2
/// header carrying 192.0.2.7 makes the allow-list (192.0.2.7 only) accept
/// the bind; without the header the connection is closed; a carried address
/// outside the allow-list is refused. From an untrusted source (127.0.0.2)
/// the octets are SMPP: a header is rejected, a plain bind is judged by
/// 127.0.0.2 itself.
#[tokio::test]
async fn proxy_protocol_carries_the_client_address_from_trusted_sources() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--memory",
            "--account",
            "esme:pw@192.0.2.7",
            "--proxy-protocol",
            "127.0.0.1/32",
        ],
        dir.path(),
    );
    let smpp = serve.smpp();
    let v1 = bind_status(
        "127.0.0.1",
        smpp,
        &proxy_v1("192.0.2.7", 40000),
        "esme",
        "pw",
    )
    .await;
    assert_eq!(v1, Some(CommandStatus::OK), "v1");
    let v2 = bind_status(
        "127.0.0.1",
        smpp,
        &proxy_v2([192, 0, 2, 7], 40001),
        "esme",
        "pw",
    )
    .await;
    assert_eq!(v2, Some(CommandStatus::OK), "v2");
    let other = bind_status(
        "127.0.0.1",
        smpp,
        &proxy_v1("192.0.2.8", 40002),
        "esme",
        "pw",
    )
    .await;
    assert_eq!(
        other,
        Some(CommandStatus::BIND_FAILED),
        "carried address not allowed"
    );

    // Trusted source, no header: closed, no bind answer.
    let mut tcp = connect_from("127.0.0.1", smpp).await;
    tcp.write_all(&bind_pdu("esme", "pw")).await.unwrap();
    assert_eq!(read_pdu(&mut tcp).await, None, "closed without a header");
    // Trusted source, malformed header: closed.
    let mut tcp = connect_from("127.0.0.1", smpp).await;
    let mut bad = b"PROXY TCP4 192.0.2.7 nonsense\r\n".to_vec();
    bad.extend(bind_pdu("esme", "pw"));
    tcp.write_all(&bad).await.unwrap();
    assert_eq!(read_pdu(&mut tcp).await, None, "closed on a bad header");

    // Untrusted source: a header is not SMPP, never a bind.
    let mut tcp = connect_from("127.0.0.2", smpp).await;
    let mut out = proxy_v1("192.0.2.7", 40003);
    out.extend(bind_pdu("esme", "pw"));
    let _ = tcp.write_all(&out).await;
    if let Some((id, status, _)) = read_pdu(&mut tcp).await {
        assert!(
            id != 0x8000_0002 || status != 0,
            "an untrusted header bound: {id:#x} {status:#x}"
        );
    }
    let mut tcp = connect_from("127.0.0.2", smpp).await;
    let mut out = proxy_v2([192, 0, 2, 7], 40004);
    out.extend(bind_pdu("esme", "pw"));
    let _ = tcp.write_all(&out).await;
    if let Some((id, status, _)) = read_pdu(&mut tcp).await {
        assert!(id != 0x8000_0002 || status != 0, "{id:#x} {status:#x}");
    }
    // ... and its plain bind is judged by its own address.
    let direct = bind_status("127.0.0.2", smpp, b"", "esme", "pw").await;
    assert_eq!(direct, Some(CommandStatus::BIND_FAILED));
}

/// `--http-tls`: the HTTP API over TLS with the SMPP TLS certificate (and
/// still the token); plain HTTP on that port gets no answer.
#[tokio::test]
async fn http_over_tls_with_the_token() {
    use smpp_tokio::rustls::pki_types::ServerName;
    let dir = tempfile::tempdir().unwrap();
    let (made, cert, key) = server_cert(dir.path());
    let serve = Serve::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--memory",
            "--tls-listen",
            "127.0.0.1:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--http",
            "127.0.0.1:0",
            "--http-tls",
            "--http-token",
            "t0ken",
        ],
        dir.path(),
    );
    let http = serve.addr("HTTP");
    let connector = smpp_tokio::tokio_rustls::TlsConnector::from(client_tls(&made.cert, None));
    // A bind over TLS: the dashboard's sessions page says so.
    let bind = Bind {
        system_id: "smppclient1".into(),
        password: "password".into(),
        ..Default::default()
    };
    let _client = timeout(
        WAIT,
        smpp_tokio::Client::connect_tls(
            serve.addr("TLS"),
            ServerName::try_from("localhost").unwrap(),
            client_tls(&made.cert, None),
            BindKind::Transmitter,
            bind,
            SessionConfig::default(),
        ),
    )
    .await
    .expect("bound in time")
    .expect("bound over TLS");
    for (path, token, expected) in [
        ("/metrics", None, 401),
        ("/metrics", Some("t0ken"), 200),
        ("/sessions", Some("t0ken"), 200),
    ] {
        let tcp = tokio::net::TcpStream::connect(http).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = timeout(WAIT, connector.connect(name, tcp))
            .await
            .unwrap()
            .expect("TLS handshake");
        let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n");
        tls.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        let _ = timeout(WAIT, tls.read_to_end(&mut response)).await.unwrap();
        let text = String::from_utf8_lossy(&response);
        assert!(
            text.starts_with(&format!("HTTP/1.1 {expected}")),
            "{token:?}: {text}"
        );
        if path == "/sessions" {
            assert!(text.contains("<td>transmitter</td>"), "{text}");
            assert!(
                text.contains("<td>yes</td>"),
                "the bind is over TLS: {text}"
            );
        }
    }
    // Plain HTTP to the HTTPS port: no HTTP answer.
    let mut tcp = tokio::net::TcpStream::connect(http).await.unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t0ken\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    let _ = timeout(WAIT, tcp.read_to_end(&mut response)).await.unwrap();
    assert!(!String::from_utf8_lossy(&response).contains("HTTP/1.1 200"));
}

/// `--tls-client-ca`: a client without a certificate, or with one from
/// another CA, cannot bind over TLS; one with a certificate from the CA can.
#[tokio::test]
async fn mutual_tls_refuses_a_client_without_a_certificate() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use smpp_proto::session::{BindKind, SessionConfig};
    use smpp_tokio::rustls::pki_types::ServerName;
    let dir = tempfile::tempdir().unwrap();
    let (made, cert, key) = server_cert(dir.path());
    let make_ca = || {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        (Issuer::new(params, key), cert)
    };
    let (ca, ca_cert) = make_ca();
    let (other_ca, _) = make_ca();
    let ca_path = dir.path().join("clients.pem");
    std::fs::write(&ca_path, ca_cert.pem()).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client_params = CertificateParams::new(vec!["esme.example".to_owned()]).unwrap();
    let client_cert = client_params.signed_by(&client_key, &ca).unwrap();
    let stranger_cert = client_params.signed_by(&client_key, &other_ca).unwrap();

    let serve = Serve::spawn(
        &[
            "--memory",
            "--tls-only",
            "--tls-listen",
            "127.0.0.1:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--tls-client-ca",
            ca_path.to_str().unwrap(),
        ],
        dir.path(),
    );
    let bind = |tls| {
        let addr = serve.addr("TLS");
        async move {
            let bind = Bind {
                system_id: "smppclient1".into(),
                password: "password".into(),
                ..Default::default()
            };
            timeout(
                WAIT,
                smpp_tokio::Client::connect_tls(
                    addr,
                    ServerName::try_from("localhost").unwrap(),
                    tls,
                    BindKind::Transmitter,
                    bind,
                    SessionConfig::default(),
                ),
            )
            .await
            .expect("an outcome in time")
        }
    };
    let none = bind(client_tls(&made.cert, None)).await;
    assert!(
        none.is_err(),
        "no client certificate: {:?}",
        none.map(|_| ())
    );
    let stranger = bind(client_tls(&made.cert, Some((&stranger_cert, &client_key)))).await;
    assert!(stranger.is_err(), "another CA: {:?}", stranger.map(|_| ()));
    let (client, _inbound) = bind(client_tls(&made.cert, Some((&client_cert, &client_key))))
        .await
        .expect("a certificate from the CA binds");
    client.unbind().await.unwrap();
}

/// The PROXY header on the TLS listener comes before the handshake; the
/// lockout counts the carried address, not the balancer's: after 11 wrong
/// binds "from" 192.0.2.7 that address is locked out, 192.0.2.8 through the
/// same balancer still binds.
#[tokio::test]
async fn proxy_protocol_on_tls_and_the_lockout_see_the_carried_address() {
    use smpp_tokio::rustls::pki_types::ServerName;
    let dir = tempfile::tempdir().unwrap();
    let (made, cert, key) = server_cert(dir.path());
    let serve = Serve::spawn(
        &[
            "--memory",
            "--tls-only",
            "--tls-listen",
            "127.0.0.1:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--account",
            "esme:pw",
            "--proxy-protocol",
            "127.0.0.1",
        ],
        dir.path(),
    );
    let tls_addr = serve.addr("TLS");
    let connector = smpp_tokio::tokio_rustls::TlsConnector::from(client_tls(&made.cert, None));
    let bind_over_tls = |client: &'static str, password: &'static str| {
        let connector = connector.clone();
        async move {
            let mut tcp = tokio::net::TcpStream::connect(tls_addr).await.unwrap();
            tcp.write_all(&proxy_v1(client, 40000)).await.unwrap();
            let name = ServerName::try_from("localhost").unwrap();
            let mut tls = timeout(WAIT, connector.connect(name, tcp))
                .await
                .unwrap()
                .expect("TLS handshake after the PROXY header");
            tls.write_all(&bind_pdu("esme", password)).await.unwrap();
            let mut header = [0u8; 16];
            timeout(WAIT, tls.read_exact(&mut header))
                .await
                .unwrap()
                .unwrap();
            CommandStatus(u32::from_be_bytes(header[8..12].try_into().unwrap()))
        }
    };
    assert_eq!(bind_over_tls("192.0.2.7", "pw").await, CommandStatus::OK);
    for _ in 0..11 {
        assert_eq!(
            bind_over_tls("192.0.2.7", "bad").await,
            CommandStatus::INVALID_PASSWORD
        );
    }
    assert_eq!(
        bind_over_tls("192.0.2.7", "pw").await,
        CommandStatus::BIND_FAILED,
        "the carried address is locked out"
    );
    assert_eq!(
        bind_over_tls("192.0.2.8", "pw").await,
        CommandStatus::OK,
        "not the balancer"
    );
    // Without the header, the trusted balancer's TLS connection is closed.
    let tcp = tokio::net::TcpStream::connect(tls_addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let handshake = timeout(WAIT, connector.connect(name, tcp)).await.unwrap();
    assert!(handshake.is_err(), "a TLS ClientHello is no PROXY header");
}

/// An account's `certificate_name` (config file, mutual TLS): it binds only
/// over a connection whose client certificate is valid for that name; a
/// certificate from the same CA for another name gets ESME_RBINDFAIL (and
/// may still bind as an account without one). Without mutual TLS such an
/// account refuses to start.
#[tokio::test]
async fn a_certificate_name_binds_an_account_to_its_client_certificate() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use smpp_proto::session::{BindKind, SessionConfig};
    use smpp_tokio::rustls::pki_types::ServerName;
    let dir = tempfile::tempdir().unwrap();
    let (made, cert, key) = server_cert(dir.path());
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca = Issuer::new(ca_params, ca_key);
    let ca_path = dir.path().join("clients.pem");
    std::fs::write(&ca_path, ca_cert.pem()).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let for_name = |name: &str| {
        CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .signed_by(&client_key, &ca)
            .unwrap()
    };
    let (esme_cert, other_cert) = (for_name("esme.example"), for_name("other.example"));
    let config = dir.path().join("serve.toml");
    let toml = "[[account]]\nsystem_id = \"bound\"\npassword = \"pw\"\n\
                certificate_name = \"esme.example\"\n\
                [[account]]\nsystem_id = \"free\"\npassword = \"pw\"\n";
    std::fs::write(&config, toml).unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_smpp"))
        .args(["serve", "--listen", "127.0.0.1:0", "--memory", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("certificate_name"),
        "{refused:?}"
    );

    let serve = Serve::spawn(
        &[
            "--memory",
            "--config",
            config.to_str().unwrap(),
            "--tls-only",
            "--tls-listen",
            "127.0.0.1:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--tls-client-ca",
            ca_path.to_str().unwrap(),
        ],
        dir.path(),
    );
    let addr = serve.addr("TLS");
    let bind = |client_cert: &rcgen::Certificate, system_id: &str| {
        let tls = client_tls(&made.cert, Some((client_cert, &client_key)));
        let bind = Bind {
            system_id: system_id.to_owned().into(),
            password: "pw".into(),
            ..Default::default()
        };
        async move {
            let connect = smpp_tokio::Client::connect_tls(
                addr,
                ServerName::try_from("localhost").unwrap(),
                tls,
                BindKind::Transmitter,
                bind,
                SessionConfig::default(),
            );
            match timeout(WAIT, connect).await.expect("an outcome in time") {
                Ok((client, _inbound)) => {
                    client.unbind().await.unwrap();
                    CommandStatus::OK
                }
                Err(smpp_tokio::Error::Status(status)) => status,
                Err(e) => panic!("{e}"),
            }
        }
    };
    assert_eq!(bind(&esme_cert, "bound").await, CommandStatus::OK);
    assert_eq!(bind(&other_cert, "bound").await, CommandStatus::BIND_FAILED);
    assert_eq!(bind(&other_cert, "free").await, CommandStatus::OK);
}

/// The TLS options refuse to start when what they need is missing.
#[test]
fn tls_options_without_a_tls_listener_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--http", "127.0.0.1:0", "--http-tls"][..],
        &["--tls-client-ca", "ca.pem"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_smpp"))
            .args(["serve", "--listen", "127.0.0.1:0", "--memory"])
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--tls-listen"), "{args:?}: {stderr}");
    }
}

//! The Rust peers' checks as ordinary tests, so `cargo test` runs them too
//! (`cargo xtask interop` runs the same code as programs, plus the Python
//! peers and the `smpp` command): the smpp34 and rusmppc clients against the
//! stand-in SMSC (`interop-smsc`, on `smpp_tokio::Server`), and our tokio
//! `Client` against the smpp34 crate's server.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use smpp_interop::checks::Checks;
use smpp_interop::{rusmppc_client, smpp34_client, smpp34_smsc, tokio_client};

/// The stand-in SMSC process, killed on drop.
struct StandIn {
    child: Child,
    addr: String,
}

impl StandIn {
    fn start() -> StandIn {
        let mut child = Command::new(env!("CARGO_BIN_EXE_interop-smsc"))
            .args(["--listen", "127.0.0.1:0", "--dlr-delay", "50ms"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("interop-smsc starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = lines
            .next()
            .expect("interop-smsc prints a line")
            .expect("utf-8 line");
        let addr = first
            .strip_prefix("SMPP listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_owned();
        // Keep draining its stdout so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        StandIn { child, addr }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smpp34_client_against_our_smsc() {
    let smsc = StandIn::start();
    let (host, port) = smsc.addr.rsplit_once(':').expect("host:port");
    let mut checks = Checks::new(smpp34_client::PEER);
    smpp34_client::run(host, port.parse().expect("port"), &mut checks).await;
    assert!(checks.all_passed(), "see the FAIL lines above");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rusmppc_client_against_our_smsc() {
    let smsc = StandIn::start();
    let mut checks = Checks::new(rusmppc_client::PEER);
    rusmppc_client::run(&smsc.addr, &mut checks).await;
    assert!(checks.all_passed(), "see the FAIL lines above");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_against_smpp34_server() {
    let (_server, addr) = smpp34_smsc::start().await.expect("smpp34 server starts");
    let mut checks = Checks::new(tokio_client::PEER);
    tokio_client::run(&addr.to_string(), &mut checks).await;
    assert!(checks.all_passed(), "see the FAIL lines above");
}

/// The defect the disabled interface-version check works around: with the
/// check on, rusmppc 0.4.0 refuses to bind as SMPP 3.4. When a release
/// allows it, this fails and the workaround can go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rusmppc_refuses_to_bind_as_3_4_with_its_version_check_on() {
    use std::str::FromStr;

    use rusmpp::pdus::BindTransceiver;
    use rusmpp::types::COctetString;
    use rusmpp::values::InterfaceVersion;

    let smsc = StandIn::start();
    let (client, _events) = rusmppc::ConnectionBuilder::new()
        .enable_interface_version_check()
        .no_enquire_link_interval()
        .connect(format!("smpp://{}", smsc.addr))
        .await
        .expect("connects");
    let bound = client
        .bind_transceiver(
            BindTransceiver::builder()
                .system_id(COctetString::from_str(smpp_interop::SYSTEM_ID).expect("id"))
                .password(COctetString::from_str(smpp_interop::PASSWORD).expect("password"))
                .interface_version(InterfaceVersion::Smpp3_4)
                .build(),
        )
        .await;
    assert!(
        bound.is_err(),
        "rusmppc now binds as 3.4 with its check on: drop the workaround"
    );
}

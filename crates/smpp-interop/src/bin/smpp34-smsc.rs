//! An SMSC on the smpp34 crate's server (see `smpp_interop::smpp34_smsc`):
//! prints `SMPP listening on <addr>` when ready and runs until killed.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (_server, addr) = smpp_interop::smpp34_smsc::start().await?;
    println!("SMPP listening on {addr}");
    println!(
        "account: {} / {}",
        smpp_interop::SYSTEM_ID,
        smpp_interop::PASSWORD
    );
    std::future::pending::<()>().await;
    Ok(())
}

//! A USSD menu through a real `smpp serve`: an application (an ESME bound for the
//! service code 123) answers `*123#` with a two-level menu, and a simulated phone (an
//! ESME bound for its MSISDN, playing the MC's side with `UssdPhone`) walks through it.
//! Every turn must arrive as sent, in order, in one session (exit code 1 otherwise).
//!
//! `cargo build -p smpp-cli && cargo run -p smpp-examples --example ussd_menu`

use smpp_examples::{check, Receiver, Result, SmppServe};
use smpp_proto::message::ussd::{UssdMessage, UssdPhone, UssdScreen, UssdServiceDialog};
use smpp_proto::message::ShortMessage;
use smpp_proto::session::BindKind;
use smpp_tokio::Client;

const SERVICE: &str = "123";
const MSISDN: &str = "447700900460";

/// The next USSD message on a bind.
async fn next_ussd(rx: &mut Receiver) -> Result<UssdMessage> {
    let request = rx.next_request().await?;
    Ok(UssdMessage::from_body(request.body()).ok_or("not a USSD message")?)
}

async fn send(client: &Client, m: &UssdMessage) -> Result {
    let message: ShortMessage = m.to_short_message();
    client.submit_message(&message).await?;
    Ok(())
}

/// The application: the menu's logic, one dialog.
async fn application(client: Client, mut rx: Receiver) -> Result<Vec<String>> {
    let (mut dialog, dialled) = UssdServiceDialog::accept(&next_ussd(&mut rx).await?)?;
    let mut heard = vec![dialled];
    send(&client, &dialog.prompt("1 Balance\n2 Top-up")?).await?;
    let choice = dialog.handle(&next_ussd(&mut rx).await?)?;
    heard.push(choice.clone());
    let last = match choice.as_str() {
        "1" => "Balance: 5.00 EUR".to_owned(),
        "2" => {
            send(&client, &dialog.prompt("Amount?")?).await?;
            let amount = dialog.handle(&next_ussd(&mut rx).await?)?;
            heard.push(amount.clone());
            format!("Topped up {amount} EUR")
        }
        _ => "Unknown choice".to_owned(),
    };
    send(&client, &dialog.end(&last)?).await?;
    client.unbind().await?;
    Ok(heard)
}

#[tokio::main]
async fn main() -> Result {
    let serve = SmppServe::start(&[])?;
    let (app_client, app_inbound) = serve.bind(BindKind::Transceiver, SERVICE, 0x34).await?;
    let app = tokio::spawn(application(app_client, Receiver::new(app_inbound)));
    let (phone_client, phone_inbound) = serve.bind(BindKind::Transceiver, MSISDN, 0x34).await?;
    let mut rx = Receiver::new(phone_inbound);

    let (mut phone, dial) = UssdPhone::dial(MSISDN, SERVICE, 17, "*123#")?;
    send(&phone_client, &dial).await?;
    let mut screens = Vec::new();
    let answers = ["2", "10"];
    let mut next_answer = answers.iter();
    while !phone.is_ended() {
        let screen = phone.handle(&next_ussd(&mut rx).await?)?;
        println!("phone shows: {screen:?}");
        screens.push(screen.clone());
        if let UssdScreen::Prompt(_) = screen {
            let answer = next_answer.next().ok_or("more prompts than answers")?;
            send(&phone_client, &phone.answer(answer)?).await?;
        }
    }
    let heard = app.await??;
    check(
        "screens",
        screens,
        vec![
            UssdScreen::Prompt("1 Balance\n2 Top-up".into()),
            UssdScreen::Prompt("Amount?".into()),
            UssdScreen::Final("Topped up 10 EUR".into()),
        ],
    )?;
    check(
        "what the application heard",
        heard,
        vec!["*123#".into(), "2".into(), "10".into()],
    )?;
    phone_client.unbind().await?;
    println!("ussd_menu: OK");
    Ok(())
}

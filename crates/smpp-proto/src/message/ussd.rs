//! USSD: the `ussd_service_op` TLV (0x0501), `its_session_info` (0x1383), and typed
//! dialogs for both ends: [`UssdServiceDialog`] for the application answering a menu
//! (an ESME behind a service code) and [`UssdPhone`] for the other end (an MC, or a
//! test simulating a phone walking through the menu).
//!
//! A network-initiated menu dialog (3GPP TS 24.090, as SMPP carries it):
//!
//! ```text
//! phone                       application
//!   PSSR indication "*123#" ->            (ussd_service_op 1)
//!   <- USSR request "1 Balance 2 Top-up"  (2: shows a menu, wants an answer)
//!   USSR confirm "1"       ->             (18: the user's answer)
//!   <- PSSR response "Balance: 5 EUR"     (17: the last screen; end of session)
//! ```
//!
//! ```
//! use smpp_proto::message::ussd::{UssdPhone, UssdScreen, UssdServiceDialog};
//!
//! let (mut phone, dial) = UssdPhone::dial("447700900123", "123", 1, "*123#")?;
//! let (mut app, request) = UssdServiceDialog::accept(&dial)?;
//! assert_eq!(request, "*123#");
//! let menu = app.prompt("1 Balance\n2 Top-up")?;
//! assert_eq!(phone.handle(&menu)?, UssdScreen::Prompt("1 Balance\n2 Top-up".into()));
//! let answer = phone.answer("1")?;
//! assert_eq!(app.handle(&answer)?, "1");
//! let last = app.end("Balance: 5 EUR")?;
//! assert_eq!(phone.handle(&last)?, UssdScreen::Final("Balance: 5 EUR".into()));
//! assert!(phone.is_ended() && app.is_ended());
//! # Ok::<(), smpp_proto::message::ussd::UssdError>(())
//! ```

use super::coding::{decode_text, DataCoding, DecodeOptions};
use super::short_message::ShortMessage;
use crate::pdu::{Body, ItsSessionInfo, TlvTag, Tlvs};

/// Values of the `ussd_service_op` TLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UssdServiceOp {
    /// 0: PSSD indication.
    PssdIndication,
    /// 1: PSSR indication.
    PssrIndication,
    /// 2: USSR request.
    UssrRequest,
    /// 3: USSN request.
    UssnRequest,
    /// 16: PSSD response.
    PssdResponse,
    /// 17: PSSR response.
    PssrResponse,
    /// 18: USSR confirm.
    UssrConfirm,
    /// 19: USSN confirm.
    UssnConfirm,
    /// 4–15 and 20–31: reserved.
    Reserved(u8),
    /// 32–255: vendor specific.
    Vendor(u8),
}

impl UssdServiceOp {
    /// Maps the TLV octet (total: every value has a variant).
    pub const fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::PssdIndication,
            1 => Self::PssrIndication,
            2 => Self::UssrRequest,
            3 => Self::UssnRequest,
            16 => Self::PssdResponse,
            17 => Self::PssrResponse,
            18 => Self::UssrConfirm,
            19 => Self::UssnConfirm,
            32..=255 => Self::Vendor(v),
            _ => Self::Reserved(v),
        }
    }

    /// The TLV octet.
    pub const fn to_u8(self) -> u8 {
        match self {
            Self::PssdIndication => 0,
            Self::PssrIndication => 1,
            Self::UssrRequest => 2,
            Self::UssnRequest => 3,
            Self::PssdResponse => 16,
            Self::PssrResponse => 17,
            Self::UssrConfirm => 18,
            Self::UssnConfirm => 19,
            Self::Reserved(v) | Self::Vendor(v) => v,
        }
    }

    /// Whether this is a network-initiated request/indication (0–3) rather than a
    /// response/confirmation (16–19).
    pub const fn is_request(self) -> bool {
        matches!(self.to_u8(), 0..=3)
    }
}

impl From<u8> for UssdServiceOp {
    fn from(v: u8) -> Self {
        Self::from_u8(v)
    }
}

impl From<UssdServiceOp> for u8 {
    fn from(v: UssdServiceOp) -> Self {
        v.to_u8()
    }
}

impl ItsSessionInfo {
    /// The 2-octet TLV value: session number, then sequence number (7 bits) and the
    /// end-of-session flag (bit 0).
    pub fn to_bytes(self) -> [u8; 2] {
        [
            self.session_number,
            (self.sequence_number & 0x7F) << 1 | u8::from(self.end_of_session),
        ]
    }

    /// Writes it into a PDU's TLVs (replacing any earlier one).
    pub fn set_in(self, tlvs: &mut Tlvs) {
        tlvs.set(TlvTag::ITS_SESSION_INFO, &self.to_bytes())
            .expect("2 octets fit");
    }
}

/// One USSD message as either end sees it: the operation, the session and the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UssdMessage {
    /// `ussd_service_op`.
    pub op: UssdServiceOp,
    /// `its_session_info`, when present.
    pub session: Option<ItsSessionInfo>,
    /// The subscriber's number (the source of what the phone sends, the destination of
    /// what the application sends).
    pub msisdn: String,
    /// The service code or short number the dialog is with.
    pub service: String,
    /// The text shown or typed.
    pub text: String,
}

impl UssdMessage {
    /// Reads a USSD message from a received `deliver_sm`, `submit_sm` or `data_sm`:
    /// `None` without a `ussd_service_op` TLV (or for other operations). Which address
    /// is the subscriber follows from the operation: requests and responses sent by the
    /// application (2, 3, 16, 17) go to the subscriber, the others come from it.
    pub fn from_body(body: &Body) -> Option<UssdMessage> {
        let (source, destination, data_coding, user_data, tlvs) = match body {
            Body::SubmitSm(sm) | Body::DeliverSm(sm) => (
                &sm.source_addr,
                &sm.destination_addr,
                sm.data_coding,
                sm.payload(),
                &sm.tlvs,
            ),
            Body::DataSm(sm) => (
                &sm.source_addr,
                &sm.destination_addr,
                sm.data_coding,
                sm.tlvs.message_payload().unwrap_or_default(),
                &sm.tlvs,
            ),
            _ => return None,
        };
        let op = UssdServiceOp::from_u8(tlvs.ussd_service_op()?);
        let text = decode_text(
            DataCoding(data_coding),
            user_data,
            &DecodeOptions::default(),
        )
        .unwrap_or_else(|_| String::from_utf8_lossy(user_data).into_owned());
        let (msisdn, service) = if op.from_application() {
            (destination, source)
        } else {
            (source, destination)
        };
        Some(UssdMessage {
            op,
            session: tlvs.its_session_info(),
            msisdn: msisdn.to_string_lossy().into_owned(),
            service: service.to_string_lossy().into_owned(),
            text,
        })
    }

    /// The message as a [`ShortMessage`] (service type `USSD`, the text in the cheapest
    /// coding, `ussd_service_op` and `its_session_info` TLVs), addressed from the sender
    /// to the receiver of `op`.
    pub fn to_short_message(&self) -> ShortMessage {
        let (from, to) = if self.op.from_application() {
            (&self.service, &self.msisdn)
        } else {
            (&self.msisdn, &self.service)
        };
        let mut m = ShortMessage::text(self.text.clone())
            .from(from.as_str())
            .to(to.as_str())
            .service_type("USSD");
        // Both TLVs have fixed lengths that always fit.
        m = m
            .tlv(TlvTag::USSD_SERVICE_OP, &[self.op.to_u8()])
            .expect("1 octet fits");
        if let Some(session) = self.session {
            m = m
                .tlv(TlvTag::ITS_SESSION_INFO, &session.to_bytes())
                .expect("2 octets fit");
        }
        m
    }
}

impl UssdServiceOp {
    /// Whether the application (the ESME) sends this operation: USSR and USSN requests
    /// and the PSSD/PSSR responses; the phone side sends indications and confirms.
    pub const fn from_application(self) -> bool {
        matches!(
            self,
            Self::UssrRequest | Self::UssnRequest | Self::PssdResponse | Self::PssrResponse
        )
    }

    /// The operation's name as the SMPP specification writes it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::PssdIndication => "PSSD indication",
            Self::PssrIndication => "PSSR indication",
            Self::UssrRequest => "USSR request",
            Self::UssnRequest => "USSN request",
            Self::PssdResponse => "PSSD response",
            Self::PssrResponse => "PSSR response",
            Self::UssrConfirm => "USSR confirm",
            Self::UssnConfirm => "USSN confirm",
            Self::Reserved(_) => "reserved",
            Self::Vendor(_) => "vendor specific",
        }
    }
}

/// What went wrong in a dialog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UssdError {
    /// The message belongs to another dialog (another subscriber, service or session).
    #[error("message for another USSD dialog")]
    OtherDialog,
    /// The operation is not one this end accepts now.
    #[error("unexpected {op} in state {state}")]
    Unexpected {
        /// The operation received (its name).
        op: &'static str,
        /// The dialog's state.
        state: &'static str,
    },
    /// A command that the dialog's state does not allow (answering before a prompt,
    /// anything after the end).
    #[error("cannot {0} now")]
    WrongState(&'static str),
}

/// Where a dialog stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    /// The phone waits for the application.
    Application,
    /// The application waits for the phone (the user).
    Phone,
    /// The dialog is over.
    Ended,
}

impl Turn {
    const fn name(self) -> &'static str {
        match self {
            Turn::Application => "waiting for the application",
            Turn::Phone => "waiting for the subscriber",
            Turn::Ended => "ended",
        }
    }
}

/// The state both ends share: addresses, session number, next sequence number.
#[derive(Debug, Clone)]
struct DialogCore {
    msisdn: String,
    service: String,
    session_number: u8,
    sequence: u8,
    turn: Turn,
}

impl DialogCore {
    fn message(&mut self, op: UssdServiceOp, text: &str, end: bool) -> UssdMessage {
        let session = ItsSessionInfo {
            session_number: self.session_number,
            sequence_number: self.sequence,
            end_of_session: end,
        };
        self.sequence = (self.sequence + 1) & 0x7F;
        UssdMessage {
            op,
            session: Some(session),
            msisdn: self.msisdn.clone(),
            service: self.service.clone(),
            text: text.to_owned(),
        }
    }

    /// Checks a received message belongs here; a peer without `its_session_info` is
    /// matched by addresses alone.
    fn check(&mut self, m: &UssdMessage) -> Result<(), UssdError> {
        if m.msisdn != self.msisdn || m.service != self.service {
            return Err(UssdError::OtherDialog);
        }
        if let Some(s) = m.session {
            if s.session_number != self.session_number {
                return Err(UssdError::OtherDialog);
            }
            self.sequence = (s.sequence_number + 1) & 0x7F;
        }
        Ok(())
    }

    fn unexpected(&self, m: &UssdMessage) -> UssdError {
        UssdError::Unexpected {
            op: m.op.name(),
            state: self.turn.name(),
        }
    }
}

/// The application end of a USSD menu dialog: accepts the phone's PSSR indication,
/// shows screens that want an answer ([`prompt`](Self::prompt): USSR request), reads
/// the answers ([`handle`](Self::handle): USSR confirm) and closes with a last screen
/// ([`end`](Self::end): PSSR response). Plain data in, plain data out: send the
/// messages with [`UssdMessage::to_short_message`], read them with
/// [`UssdMessage::from_body`].
#[derive(Debug, Clone)]
pub struct UssdServiceDialog {
    core: DialogCore,
}

impl UssdServiceDialog {
    /// Opens the dialog a PSSR indication (or PSSD indication) starts; returns it and
    /// the string the subscriber dialled.
    pub fn accept(indication: &UssdMessage) -> Result<(Self, String), UssdError> {
        if !matches!(
            indication.op,
            UssdServiceOp::PssrIndication | UssdServiceOp::PssdIndication
        ) {
            return Err(UssdError::Unexpected {
                op: indication.op.name(),
                state: "no dialog",
            });
        }
        let session = indication.session.unwrap_or(ItsSessionInfo {
            session_number: 0,
            sequence_number: 0,
            end_of_session: false,
        });
        let dialog = UssdServiceDialog {
            core: DialogCore {
                msisdn: indication.msisdn.clone(),
                service: indication.service.clone(),
                session_number: session.session_number,
                sequence: (session.sequence_number + 1) & 0x7F,
                turn: Turn::Application,
            },
        };
        Ok((dialog, indication.text.clone()))
    }

    /// The subscriber this dialog is with.
    pub fn msisdn(&self) -> &str {
        &self.core.msisdn
    }

    /// Whether the dialog is over.
    pub fn is_ended(&self) -> bool {
        self.core.turn == Turn::Ended
    }

    /// A screen that wants an answer (USSR request).
    pub fn prompt(&mut self, text: &str) -> Result<UssdMessage, UssdError> {
        if self.core.turn != Turn::Application {
            return Err(UssdError::WrongState("prompt"));
        }
        self.core.turn = Turn::Phone;
        Ok(self.core.message(UssdServiceOp::UssrRequest, text, false))
    }

    /// The last screen (PSSR response, end of session); the dialog is over.
    pub fn end(&mut self, text: &str) -> Result<UssdMessage, UssdError> {
        if self.core.turn != Turn::Application {
            return Err(UssdError::WrongState("end"));
        }
        self.core.turn = Turn::Ended;
        Ok(self.core.message(UssdServiceOp::PssrResponse, text, true))
    }

    /// Reads the subscriber's answer to the last prompt (USSR confirm). A confirm with
    /// the end-of-session flag (the user cancelled) ends the dialog and is an answer too.
    pub fn handle(&mut self, m: &UssdMessage) -> Result<String, UssdError> {
        self.core.check(m)?;
        if self.core.turn != Turn::Phone || m.op != UssdServiceOp::UssrConfirm {
            return Err(self.core.unexpected(m));
        }
        self.core.turn = if m.session.is_some_and(|s| s.end_of_session) {
            Turn::Ended
        } else {
            Turn::Application
        };
        Ok(m.text.clone())
    }
}

/// What the phone shows after a message from the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UssdScreen {
    /// A screen that wants an answer ([`UssdPhone::answer`]).
    Prompt(String),
    /// The last screen; the dialog is over.
    Final(String),
}

/// The phone end of a USSD menu dialog, as an MC (or a test) plays it: dials a code
/// ([`dial`](Self::dial): PSSR indication), shows what comes back
/// ([`handle`](Self::handle)) and answers prompts ([`answer`](Self::answer): USSR
/// confirm).
#[derive(Debug, Clone)]
pub struct UssdPhone {
    core: DialogCore,
}

impl UssdPhone {
    /// Starts a dialog from `msisdn` with the application at `service` by dialling
    /// `request` (e.g. `*123#`), session number `session_number`.
    pub fn dial(
        msisdn: &str,
        service: &str,
        session_number: u8,
        request: &str,
    ) -> Result<(Self, UssdMessage), UssdError> {
        let mut core = DialogCore {
            msisdn: msisdn.to_owned(),
            service: service.to_owned(),
            session_number,
            sequence: 0,
            turn: Turn::Application,
        };
        let m = core.message(UssdServiceOp::PssrIndication, request, false);
        Ok((UssdPhone { core }, m))
    }

    /// Whether the dialog is over.
    pub fn is_ended(&self) -> bool {
        self.core.turn == Turn::Ended
    }

    /// Shows a message from the application: a USSR request is a prompt, a PSSR (or
    /// PSSD) response the final screen.
    pub fn handle(&mut self, m: &UssdMessage) -> Result<UssdScreen, UssdError> {
        self.core.check(m)?;
        if self.core.turn != Turn::Application {
            return Err(self.core.unexpected(m));
        }
        match m.op {
            UssdServiceOp::UssrRequest if !m.session.is_some_and(|s| s.end_of_session) => {
                self.core.turn = Turn::Phone;
                Ok(UssdScreen::Prompt(m.text.clone()))
            }
            UssdServiceOp::UssrRequest
            | UssdServiceOp::PssrResponse
            | UssdServiceOp::PssdResponse => {
                self.core.turn = Turn::Ended;
                Ok(UssdScreen::Final(m.text.clone()))
            }
            _ => Err(self.core.unexpected(m)),
        }
    }

    /// The user's answer to the prompt on screen (USSR confirm).
    pub fn answer(&mut self, text: &str) -> Result<UssdMessage, UssdError> {
        if self.core.turn != Turn::Phone {
            return Err(UssdError::WrongState("answer"));
        }
        self.core.turn = Turn::Application;
        Ok(self.core.message(UssdServiceOp::UssrConfirm, text, false))
    }

    /// The user cancels at a prompt: a USSR confirm with the end-of-session flag; the
    /// dialog is over.
    pub fn cancel(&mut self) -> Result<UssdMessage, UssdError> {
        if self.core.turn != Turn::Phone {
            return Err(UssdError::WrongState("cancel"));
        }
        self.core.turn = Turn::Ended;
        Ok(self.core.message(UssdServiceOp::UssrConfirm, "", true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::ReferenceCounter;

    /// Carries a message the way an MC would: built into a submit_sm, read back as a
    /// deliver_sm with the same fields.
    fn over_the_wire(m: &UssdMessage) -> UssdMessage {
        let parts = m
            .to_short_message()
            .build(&mut ReferenceCounter::new(1))
            .unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].service_type, "USSD");
        UssdMessage::from_body(&Body::DeliverSm(Box::new(parts[0].clone()))).unwrap()
    }

    #[test]
    fn a_two_level_menu_walks_through_over_pdus() {
        let (mut phone, dial) = UssdPhone::dial("447700900123", "123", 9, "*123#").unwrap();
        let dial = over_the_wire(&dial);
        assert_eq!(dial.op, UssdServiceOp::PssrIndication);
        let (mut app, request) = UssdServiceDialog::accept(&dial).unwrap();
        assert_eq!((request.as_str(), app.msisdn()), ("*123#", "447700900123"));
        let menu = over_the_wire(
            &app.prompt(
                "1 Balance
2 Top-up",
            )
            .unwrap(),
        );
        assert_eq!(
            menu.session,
            Some(ItsSessionInfo {
                session_number: 9,
                sequence_number: 1,
                end_of_session: false
            })
        );
        assert!(
            matches!(phone.handle(&menu).unwrap(), UssdScreen::Prompt(t) if t.contains("Top-up"))
        );
        assert_eq!(
            app.handle(&over_the_wire(&phone.answer("2").unwrap()))
                .unwrap(),
            "2"
        );
        let amount = over_the_wire(&app.prompt("Amount?").unwrap());
        assert_eq!(
            phone.handle(&amount).unwrap(),
            UssdScreen::Prompt("Amount?".into())
        );
        assert_eq!(
            app.handle(&over_the_wire(&phone.answer("10").unwrap()))
                .unwrap(),
            "10"
        );
        let last = over_the_wire(&app.end("Topped up 10 EUR").unwrap());
        assert_eq!(last.op, UssdServiceOp::PssrResponse);
        assert!(last.session.unwrap().end_of_session);
        assert_eq!(last.session.unwrap().sequence_number, 5);
        assert_eq!(
            phone.handle(&last).unwrap(),
            UssdScreen::Final("Topped up 10 EUR".into())
        );
        assert!(app.is_ended() && phone.is_ended());
        assert_eq!(app.prompt("again"), Err(UssdError::WrongState("prompt")));
        assert_eq!(phone.answer("x"), Err(UssdError::WrongState("answer")));
    }

    #[test]
    fn out_of_turn_and_foreign_messages_are_refused() {
        let (mut phone, dial) = UssdPhone::dial("447700900123", "123", 1, "*123#").unwrap();
        let (mut app, _) = UssdServiceDialog::accept(&dial).unwrap();
        // The phone has nothing to answer yet.
        assert_eq!(phone.answer("1"), Err(UssdError::WrongState("answer")));
        let prompt = app.prompt("Menu").unwrap();
        // Another subscriber's or another session's message is not this dialog's.
        let (_, other) = UssdPhone::dial("447700900999", "123", 1, "1").unwrap();
        let other_confirm = UssdMessage {
            op: UssdServiceOp::UssrConfirm,
            ..other
        };
        assert_eq!(app.handle(&other_confirm), Err(UssdError::OtherDialog));
        let mut wrong_session = prompt.clone();
        wrong_session.session.as_mut().unwrap().session_number = 2;
        assert_eq!(phone.handle(&wrong_session), Err(UssdError::OtherDialog));
        // An indication is not an answer.
        assert!(matches!(
            app.handle(&dial),
            Err(UssdError::Unexpected { .. })
        ));
        phone.handle(&prompt).unwrap();
        let cancel = phone.cancel().unwrap();
        assert_eq!(app.handle(&cancel).unwrap(), "");
        assert!(app.is_ended() && phone.is_ended());
        assert!(UssdServiceDialog::accept(&prompt).is_err());
    }

    #[test]
    fn messages_without_the_tlv_are_not_ussd() {
        let plain = ShortMessage::text("hi")
            .to("123")
            .build(&mut ReferenceCounter::new(1))
            .unwrap();
        assert!(UssdMessage::from_body(&Body::DeliverSm(Box::new(plain[0].clone()))).is_none());
        assert_eq!(
            ItsSessionInfo {
                session_number: 7,
                sequence_number: 127,
                end_of_session: true
            }
            .to_bytes(),
            [7, 0xFF]
        );
    }
}

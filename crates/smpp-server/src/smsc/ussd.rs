//! The scripted USSD menu at work: a PSSR indication (submit_sm or data_sm
//! carrying `ussd_service_op`) dialling a configured code opens a dialog,
//! each USSR confirm chooses an option, and the screens go back to the
//! submitting account's receiver as `deliver_sm` (USSR request for a menu,
//! PSSR response with the end-of-session flag for the last screen), with
//! `its_session_info` carried through by the typed dialog of smpp-proto.

use std::collections::HashMap;
use std::sync::Mutex;

use smpp_proto::message::ussd::{UssdMessage, UssdServiceDialog, UssdServiceOp};
use smpp_proto::pdu::{Body, CommandStatus, SubmitSm};

use super::{lock, Smsc};
use crate::clock::Clock;
use crate::ussd_menu::Screen;

/// Dialogs open at once at most (the oldest goes when one more opens).
const MAX_DIALOGS: usize = 10_000;
/// A dialog without an answer for this long is forgotten.
const IDLE_MS: u64 = 10 * 60 * 1000;

/// Subscriber, service number, session number.
type DialogKey = (String, String, u8);

/// One open dialog: where the subscriber is in which service's tree.
#[derive(Debug)]
struct Dialog {
    app: UssdServiceDialog,
    service: usize,
    path: Vec<usize>,
    touched_ms: u64,
}

/// The open dialogs of the menu.
#[derive(Debug, Default)]
pub(crate) struct UssdDialogs {
    open: Mutex<HashMap<DialogKey, Dialog>>,
}

impl UssdDialogs {
    fn keep(&self, key: DialogKey, dialog: Dialog) {
        let mut open = lock(&self.open);
        let now = dialog.touched_ms;
        open.retain(|_, d| now.saturating_sub(d.touched_ms) < IDLE_MS);
        if open.len() >= MAX_DIALOGS && !open.contains_key(&key) {
            if let Some(oldest) = open
                .iter()
                .min_by_key(|(_, d)| d.touched_ms)
                .map(|(k, _)| k.clone())
            {
                open.remove(&oldest);
            }
        }
        open.insert(key, dialog);
    }

    fn take(&self, key: &DialogKey) -> Option<Dialog> {
        lock(&self.open).remove(key)
    }
}

fn key(m: &UssdMessage) -> DialogKey {
    (
        m.msisdn.clone(),
        m.service.clone(),
        m.session.map_or(0, |s| s.session_number),
    )
}

impl<C: Clock> Smsc<C> {
    /// Answers a submission that is part of a menu dialog: `None` when it
    /// is not (no menu, no `ussd_service_op`, a code the menu does not
    /// serve, a confirm of no open dialog): it then goes the usual way.
    /// Otherwise the message id of the accepted submission, and the next
    /// screen is on its way to `account`'s receiver.
    pub(super) async fn ussd_submit(
        &self,
        account: &str,
        sm: &SubmitSm,
    ) -> Option<Result<u64, CommandStatus>> {
        let menu = self.config.ussd_menu.clone()?;
        sm.tlvs.ussd_service_op()?;
        let m = UssdMessage::from_body(&Body::SubmitSm(Box::new(sm.clone())))?;
        let now = self.clock.now_ms();
        let (reply, dialog) = match m.op {
            UssdServiceOp::PssrIndication => {
                let service = menu.service(&m.text, &m.service)?;
                let index = menu
                    .services
                    .iter()
                    .position(|s| std::ptr::eq(s, service))?;
                let (mut app, _dialled) = UssdServiceDialog::accept(&m).ok()?;
                let reply = match service.screen(&[])? {
                    Screen::Menu(text) => app.prompt(&text),
                    Screen::Final(text) => app.end(&text),
                }
                .ok()?;
                let dialog = Dialog {
                    app,
                    service: index,
                    path: Vec::new(),
                    touched_ms: now,
                };
                (Some(reply), dialog)
            }
            UssdServiceOp::UssrConfirm => {
                let mut dialog = self.ussd.take(&key(&m))?;
                let service = menu.services.get(dialog.service)?;
                let Ok(answer) = dialog.app.handle(&m) else {
                    // Not the answer this dialog waits for: it stays as it was.
                    self.ussd.keep(key(&m), dialog);
                    return Some(Err(CommandStatus::SYSTEM_ERROR));
                };
                dialog.touched_ms = now;
                let reply = if dialog.app.is_ended() {
                    // The subscriber cancelled: nothing more to show.
                    None
                } else {
                    match service.choose(&mut dialog.path, &answer) {
                        Some(Screen::Menu(text)) => dialog.app.prompt(&text).ok(),
                        Some(Screen::Final(text)) => dialog.app.end(&text).ok(),
                        None => dialog.app.end("").ok(),
                    }
                };
                (reply, dialog)
            }
            _ => return None,
        };
        if !dialog.app.is_ended() {
            self.ussd.keep(key(&m), dialog);
        }
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(reply) = reply {
            let mut refs =
                smpp_proto::message::concat::ReferenceCounter::new((self.random() & 0xFFFF) as u16);
            let parts = match reply.to_short_message().build(&mut refs) {
                Ok(parts) => parts,
                Err(_) => return Some(Err(CommandStatus::SYSTEM_ERROR)),
            };
            if let Err(status) = self.inject_parts_to(parts, Some(account.to_owned())).await {
                return Some(Err(status));
            }
        }
        Some(Ok(id))
    }
}

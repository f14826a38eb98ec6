use std::collections::VecDeque;
use std::sync::Arc;

use super::*;
use smpp_proto::endpoint::{bind_answer, Endpoint, Output};
use smpp_proto::pdu::{Bind, SequenceNumber, SubmitSm, SubmitSmResp};
use smpp_proto::session::BindKind;

/// Bytes to hand out (`Pending` when none; the end of the stream when
/// `eof`), and what was written.
#[derive(Default)]
struct Pipe {
    inbox: Vec<u8>,
    eof: bool,
    written: Vec<u8>,
    /// Calls of `poll_write`.
    writes: usize,
}

impl Transport for Pipe {
    fn poll_read(&mut self, _: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if self.inbox.is_empty() {
            return if self.eof {
                Poll::Ready(Ok(0))
            } else {
                Poll::Pending
            };
        }
        let n = buf.len().min(self.inbox.len());
        buf[..n].copy_from_slice(&self.inbox[..n]);
        self.inbox.drain(..n);
        Poll::Ready(Ok(n))
    }

    fn poll_write(&mut self, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.writes += 1;
        self.written.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A clock the test moves, a timer that fires once the clock passes it,
/// queues for channels.
struct Fake {
    now: Instant,
    timer: Option<Instant>,
    commands: VecDeque<Command<u32, u32, ()>>,
    requests: VecDeque<(Body, u32)>,
    done: Vec<(u32, bool)>,
    delivered: Vec<Incoming>,
    closed: Vec<CloseReason>,
    /// Answers `submit_sm` at once (`answer_now`).
    quick: bool,
    /// Quick answers given since the last `routed` (what a real host holds
    /// the connection's handle for), and the most seen at a round's end.
    held: usize,
    held_at_routed: usize,
    /// With `quick`: data_sm requests taken to be answered later, and how
    /// many of them are ready (released by the test), with the waker to wake.
    later: VecDeque<SequenceNumber>,
    ready: usize,
    waker: Option<std::task::Waker>,
}

impl Fake {
    /// Makes `n` of the answers taken for later ready.
    fn release(&mut self, n: usize) {
        self.ready += n;
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

impl Fake {
    fn new(now: Instant, quick: bool) -> Fake {
        Fake {
            now,
            timer: None,
            commands: VecDeque::new(),
            requests: VecDeque::new(),
            done: Vec::new(),
            delivered: Vec::new(),
            closed: Vec::new(),
            quick,
            held: 0,
            held_at_routed: 0,
            later: VecDeque::new(),
            ready: 0,
            waker: None,
        }
    }
}

impl Host for Fake {
    type Reply = u32;
    type Sent = u32;
    type Stats = ();

    fn now(&self) -> Instant {
        self.now
    }
    fn reset_timer(&mut self, at: Instant) {
        self.timer = Some(at);
    }
    fn poll_timer(&mut self, _: &mut Context<'_>) -> Poll<()> {
        match self.timer {
            Some(at) if at <= self.now => {
                self.timer = None;
                Poll::Ready(())
            }
            _ => Poll::Pending,
        }
    }
    fn poll_command(&mut self, _: &mut Context<'_>) -> Poll<Option<Command<u32, u32, ()>>> {
        self.commands
            .pop_front()
            .map_or(Poll::Pending, |c| Poll::Ready(Some(c)))
    }
    fn poll_request(&mut self, _: &mut Context<'_>) -> Poll<Option<(Body, u32)>> {
        match self.requests.pop_front() {
            Some(r) => Poll::Ready(Some(r)),
            // Like a channel closed by `closed()`: drained, then ended.
            None if !self.closed.is_empty() => Poll::Ready(None),
            None => Poll::Pending,
        }
    }
    fn done(&mut self, reply: u32, result: Result<Pdu, Failure>) {
        self.done.push((reply, result.is_ok()));
    }
    fn immediate(&mut self, _: Immediate<u32, ()>) {}
    fn deliver(&mut self, item: Incoming) -> Result<(), Incoming> {
        self.delivered.push(item);
        Ok(())
    }
    fn answer_now(&mut self, pdu: &Pdu, _: Instant) -> Option<Answered> {
        if self.quick && matches!(pdu.body, Body::DataSm(_)) {
            self.later.push_back(pdu.sequence_number);
            return Some(Answered::Later);
        }
        if !self.quick || !matches!(pdu.body, Body::SubmitSm(_)) {
            return None;
        }
        self.held += 1;
        let resp = SubmitSmResp {
            message_id: "quick".into(),
            ..Default::default()
        };
        Some(Answered::Now(CommandStatus::OK, Body::SubmitSmResp(resp)))
    }
    fn poll_answer(&mut self, cx: &mut Context<'_>) -> Poll<Response> {
        if self.ready > 0 {
            if let Some(seq) = self.later.pop_front() {
                self.ready -= 1;
                let body = Body::DataSmResp(Default::default());
                return Poll::Ready((seq, CommandStatus::OK, body));
            }
        }
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }
    fn routed(&mut self) {
        self.held_at_routed = self.held_at_routed.max(self.held);
        self.held = 0;
    }
    fn closed(&mut self, reason: CloseReason) {
        self.closed.push(reason);
    }
}

/// Polls once: the result, and whether the driver woke itself (a
/// yield, or a requeue with work left).
fn poll_once(driver: &mut Driver<Pipe, Fake>) -> (Poll<()>, bool) {
    use std::sync::atomic::{AtomicBool, Ordering};
    struct Flag(AtomicBool);
    impl std::task::Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let waker = std::task::Waker::from(flag.clone());
    let poll = driver.poll_drive(&mut Context::from_waker(&waker));
    (poll, flag.0.load(Ordering::Relaxed))
}

/// Polls until `Pending` without a self-wake (waiting for I/O) or
/// `Ready` (done); a self-wake is followed at once.
fn settle(driver: &mut Driver<Pipe, Fake>) -> Poll<()> {
    for _ in 0..200 {
        match poll_once(driver) {
            (Poll::Pending, true) => continue,
            (other, _) => return other,
        }
    }
    panic!("the driver keeps requeueing itself");
}

/// What `esme` has to send, into the driver's input; returns its length.
fn to_driver(esme: &mut Endpoint<u32>, now: Instant, driver: &mut Driver<Pipe, Fake>) -> usize {
    let mut out = Vec::new();
    while esme.poll_transmit(now, &mut out).is_some() {}
    driver.io_mut().inbox.extend_from_slice(&out);
    out.len()
}

/// What the driver wrote, into `esme`; returns the requests it ended
/// with a response.
fn from_driver(
    esme: &mut Endpoint<u32>,
    now: Instant,
    driver: &mut Driver<Pipe, Fake>,
) -> Vec<(u32, Pdu)> {
    let written = std::mem::take(&mut driver.io_mut().written);
    assert_eq!(esme.handle_input(now, &written), written.len());
    let mut done = Vec::new();
    while let Some(out) = esme.poll_output() {
        if let Output::Done(token, Ok(pdu)) = out {
            done.push((token, pdu));
        }
    }
    done
}

/// `esme` binds (token 0) to the MC `driver`, whose application
/// accepts by command.
fn bind_to(esme: &mut Endpoint<u32>, now: Instant, driver: &mut Driver<Pipe, Fake>) {
    esme.bind(now, BindKind::Transceiver, Bind::default(), 0);
    to_driver(esme, now, driver);
    assert_eq!(settle(driver), Poll::Pending);
    assert!(from_driver(esme, now, driver).is_empty());
    let Some(Incoming::Bind { seq, kind, bind }) = driver.runtime_mut().delivered.pop() else {
        panic!("the bind was not delivered");
    };
    let (status, body) = bind_answer(kind, Ok(()), "SMSC", bind.interface_version);
    let respond = Command::Respond { seq, status, body };
    driver.runtime_mut().commands.push_back(respond);
    assert_eq!(settle(driver), Poll::Pending);
    let done = from_driver(esme, now, driver);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].1.command_status, CommandStatus::OK);
}

/// The MC's side: takes the driver's output, answers binds and submits.
fn answer(mc: &mut Endpoint<u32>, now: Instant, driver: &mut Driver<Pipe, Fake>) {
    let written = std::mem::take(&mut driver.io_mut().written);
    assert_eq!(mc.handle_input(now, &written), written.len());
    while let Some(out) = mc.poll_output() {
        if let Output::Incoming(Incoming::Bind { seq, kind, bind }) = out {
            let (status, body) = bind_answer(kind, Ok(()), "SMSC", bind.interface_version);
            mc.respond(now, seq, status, body).unwrap();
        } else if let Output::Incoming(Incoming::Request(pdu)) = out {
            let body = Body::SubmitSmResp(SubmitSmResp::default());
            mc.respond(now, pdu.sequence_number, CommandStatus::OK, body)
                .unwrap();
        }
    }
    let mut out = Vec::new();
    while mc.poll_transmit(now, &mut out).is_some() {}
    driver.io_mut().inbox.extend_from_slice(&out);
}

#[test]
fn binds_pulls_requests_by_window_and_fails_the_rest_at_the_end() {
    #[allow(clippy::disallowed_methods)] // a test epoch; only differences matter
    let now = Instant::now();
    let config = Arc::new(SessionConfig::default().with_max_in_flight(2));
    let rt = Fake::new(now, false);
    let mut driver = Driver::new(Pipe::default(), rt, Role::Esme, config.clone());
    let mut mc: Endpoint<u32> = Endpoint::new(Role::Mc, config, now);
    let bind = Bind::default();
    let reply = 0;
    let kind = BindKind::Transceiver;
    let rt = driver.runtime_mut();
    rt.commands.push_back(Command::Bind { kind, bind, reply });
    assert_eq!(settle(&mut driver), Poll::Pending);
    answer(&mut mc, now, &mut driver);
    assert_eq!(settle(&mut driver), Poll::Pending);
    assert_eq!(driver.runtime_mut().done, vec![(0, true)]);

    // Five requests, a window of two: two are pulled, three wait in the channel.
    for token in 1..=5 {
        let sm = Body::SubmitSm(Box::default());
        driver.runtime_mut().requests.push_back((sm, token));
    }
    assert_eq!(settle(&mut driver), Poll::Pending);
    assert_eq!(driver.runtime_mut().requests.len(), 3);
    // Answers make room for the rest.
    for _ in 0..3 {
        answer(&mut mc, now, &mut driver);
        assert_eq!(settle(&mut driver), Poll::Pending);
    }
    let done: Vec<u32> = driver.runtime_mut().done.iter().map(|d| d.0).collect();
    assert_eq!(done, vec![0, 1, 2, 3, 4, 5]);

    // Two more go out, then the peer hangs up: both fail, the session
    // closes, and the driver is done.
    for token in 6..=7 {
        let sm = Body::SubmitSm(Box::default());
        driver.runtime_mut().requests.push_back((sm, token));
    }
    assert_eq!(settle(&mut driver), Poll::Pending);
    driver.io_mut().eof = true;
    // A request that reaches the channel as the session closes (a sender
    // holding a permit, tokio#7714) is failed too, not left behind.
    let sm = Body::SubmitSm(Box::default());
    driver.runtime_mut().requests.push_back((sm, 8));
    assert_eq!(settle(&mut driver), Poll::Ready(()));
    driver.finish();
    let rt = driver.runtime_mut();
    assert_eq!(&rt.done[6..], &[(6, false), (7, false), (8, false)]);
    let lost = CloseReason::Error(smpp_proto::session::SessionError::ConnectionLost);
    assert_eq!(rt.closed[0], lost);
    assert!(rt.delivered.is_empty());
}

#[test]
fn a_quick_answer_is_sent_from_the_connection_task() {
    #[allow(clippy::disallowed_methods)] // a test epoch; only differences matter
    let now = Instant::now();
    let config = Arc::new(SessionConfig::default());
    let rt = Fake::new(now, true);
    let mut driver = Driver::new(Pipe::default(), rt, Role::Mc, config.clone());
    let mut esme: Endpoint<u32> = Endpoint::new(Role::Esme, config, now);
    let exchange = |esme: &mut Endpoint<u32>, driver: &mut Driver<Pipe, Fake>| {
        to_driver(esme, now, driver);
        assert_eq!(settle(driver), Poll::Pending);
        from_driver(esme, now, driver)
    };
    // The bind goes to the application, which answers it by command.
    bind_to(&mut esme, now, &mut driver);
    // Submits are answered in the connection task; a query is delivered.
    for token in 2..=4 {
        esme.request(now, Body::SubmitSm(Box::default()), token);
    }
    esme.request(now, Body::QuerySm(Default::default()), 5);
    let done = exchange(&mut esme, &mut driver);
    let tokens: Vec<u32> = done.iter().map(|d| d.0).collect();
    assert_eq!(tokens, vec![2, 3, 4]);
    for (_, pdu) in &done {
        let Body::SubmitSmResp(resp) = &pdu.body else {
            panic!("{pdu:?}");
        };
        assert_eq!(resp.message_id.as_bytes(), b"quick");
    }
    // What the answers held (the connection's handle, in a real host) was
    // let go at the end of their round, not kept while the task waits.
    let rt = driver.runtime_mut();
    assert_eq!(rt.held, 0);
    assert!(rt.held_at_routed >= 1);
    let delivered = &driver.runtime_mut().delivered;
    assert_eq!(delivered.len(), 1);
    assert!(matches!(
        &delivered[0],
        Incoming::Request(pdu) if matches!(pdu.body, Body::QuerySm(_))
    ));
}

#[test]
fn an_answer_taken_for_later_is_sent_when_ready_from_the_connection_task() {
    #[allow(clippy::disallowed_methods)] // a test epoch; only differences matter
    let now = Instant::now();
    let config = Arc::new(SessionConfig::default());
    let rt = Fake::new(now, true);
    let mut driver = Driver::new(Pipe::default(), rt, Role::Mc, config.clone());
    let mut esme: Endpoint<u32> = Endpoint::new(Role::Esme, config, now);
    bind_to(&mut esme, now, &mut driver);
    // Two data_sm are taken for later, a submit_sm is answered now.
    esme.request(now, Body::DataSm(Box::default()), 2);
    esme.request(now, Body::DataSm(Box::default()), 3);
    esme.request(now, Body::SubmitSm(Box::default()), 4);
    to_driver(&mut esme, now, &mut driver);
    assert_eq!(settle(&mut driver), Poll::Pending);
    let done = from_driver(&mut esme, now, &mut driver);
    assert_eq!(done.iter().map(|d| d.0).collect::<Vec<_>>(), [4]);
    assert!(driver.runtime_mut().delivered.is_empty(), "not handed over");
    assert_eq!(driver.runtime_mut().later.len(), 2);
    // One is ready: the host's wake-up brings the driver back, which
    // writes its response.
    driver.runtime_mut().release(1);
    assert_eq!(settle(&mut driver), Poll::Pending);
    let done = from_driver(&mut esme, now, &mut driver);
    assert_eq!(done.iter().map(|d| d.0).collect::<Vec<_>>(), [2]);
    assert!(matches!(done[0].1.body, Body::DataSmResp(_)));
    driver.runtime_mut().release(1);
    assert_eq!(settle(&mut driver), Poll::Pending);
    let done = from_driver(&mut esme, now, &mut driver);
    assert_eq!(done.iter().map(|d| d.0).collect::<Vec<_>>(), [3]);
}

#[test]
fn a_large_read_is_answered_in_slices() {
    #[allow(clippy::disallowed_methods)] // a test epoch; only differences matter
    let now = Instant::now();
    let config = SessionConfig::default().with_max_inbound(256);
    let config = Arc::new(config.with_max_in_flight(256));
    let rt = Fake::new(now, true);
    let mut driver = Driver::new(Pipe::default(), rt, Role::Mc, config.clone());
    let mut esme: Endpoint<u32> = Endpoint::new(Role::Esme, config, now);
    bind_to(&mut esme, now, &mut driver);

    // A busy epoch later (slicing is tried once the first epoch
    // measured the rate without it), a window of 196-octet submits
    // arrives at once (the driver's reads grow from 2 to 16 KiB): the
    // answers leave in several writes, not one at the end.
    driver.runtime_mut().now += EPOCH / 2;
    esme.request(now, Body::SubmitSm(Box::default()), 999);
    to_driver(&mut esme, now, &mut driver);
    assert_eq!(settle(&mut driver), Poll::Pending);
    from_driver(&mut esme, now, &mut driver);
    driver.runtime_mut().now += EPOCH / 2;
    for token in 1..=200 {
        let sm = SubmitSm {
            short_message: vec![b'x'; 160].into(),
            ..Default::default()
        };
        esme.request(now, Body::SubmitSm(Box::new(sm)), token);
    }
    driver.io_mut().writes = 0;
    assert!(to_driver(&mut esme, now, &mut driver) > 35_000);
    assert_eq!(settle(&mut driver), Poll::Pending);
    let writes = driver.io_mut().writes;
    assert!(writes >= 8, "{writes} writes");
    let mut tokens = Vec::new();
    for (token, pdu) in from_driver(&mut esme, now, &mut driver) {
        assert_eq!(pdu.command_status, CommandStatus::OK);
        tokens.push(token);
    }
    assert_eq!(tokens, (1..=200).collect::<Vec<u32>>());
}

/// Reads every 100 µs for `epochs` epochs, of more octets in the mode
/// `pays`; returns the share of reads sliced.
fn sliced_share(pays: bool, epochs: u32) -> f64 {
    #[allow(clippy::disallowed_methods)] // a test epoch; only differences matter
    let mut now = Instant::now();
    let mut slicing = Slicing::default();
    let (mut on, mut reads) = (0u32, 0u32);
    let mut octets = 4000;
    for _ in 0..epochs * 100 {
        now += Duration::from_micros(100);
        let sliced = slicing.read(now, octets);
        on += u32::from(sliced);
        reads += 1;
        // The next read brings more in the mode that pays.
        octets = if sliced == pays { 6000 } else { 4000 };
    }
    f64::from(on) / f64::from(reads)
}

#[test]
fn slicing_is_kept_where_it_pays_and_dropped_where_it_costs() {
    let pays = sliced_share(true, 400);
    let costs = sliced_share(false, 400);
    assert!(pays > 0.8, "sliced {pays} where it pays");
    assert!(costs < 0.2, "sliced {costs} where it costs");
}

#[test]
fn an_idle_gap_is_no_measure() {
    #[allow(clippy::disallowed_methods)] // a test epoch; only differences matter
    let mut now = Instant::now();
    let mut slicing = Slicing::default();
    assert!(!slicing.read(now, 4000));
    // An hour of silence ends the epoch without rating slicing off...
    now += Duration::from_secs(3600);
    slicing.read(now, 4000);
    assert_eq!(slicing.rate, [0.0, 0.0]);
    // ...and a busy epoch then does.
    for _ in 0..11 {
        now += Duration::from_millis(1);
        slicing.read(now, 4000);
    }
    assert!(slicing.rate.iter().any(|r| *r > 0.0));
}

#[test]
fn a_connection_that_always_has_input_gives_its_thread_up() {
    #[allow(clippy::disallowed_methods)] // a test epoch; only differences matter
    let now = Instant::now();
    let config = Arc::new(SessionConfig::default());
    let mut driver = Driver::new(Pipe::default(), Fake::new(now, false), Role::Mc, config);
    // 3.2 MB of enquire_link: more than MAX_READS reads can take.
    let mut input = Vec::new();
    for seq in 1..=200_000 {
        let seq = smpp_proto::pdu::SequenceNumber::new(seq);
        let pdu = Pdu::request(seq, Body::EnquireLink(Default::default()));
        pdu.encode_to_vec(&mut input).unwrap();
    }
    driver.io_mut().inbox = input;
    let (poll, woke_itself) = poll_once(&mut driver);
    assert_eq!(poll, Poll::Pending);
    assert!(woke_itself, "no self-wake: the task would stall");
    assert!(
        !driver.io_mut().inbox.is_empty(),
        "it kept the thread for all of it"
    );
    // Polled on, it answers every one.
    assert_eq!(settle(&mut driver), Poll::Pending);
    assert!(driver.io_mut().inbox.is_empty());
    assert_eq!(driver.io_mut().written.len(), 200_000 * 16);
}

#[test]
fn a_quiet_connection_gives_its_buffers_back_and_reads_again_on_input() {
    #[allow(clippy::disallowed_methods)] // a test epoch; only differences matter
    let start = Instant::now();
    let config = Arc::new(SessionConfig::default());
    let rt = Fake::new(start, true);
    let mut driver = Driver::new(Pipe::default(), rt, Role::Mc, config.clone());
    let mut esme: Endpoint<u32> = Endpoint::new(Role::Esme, config, start);
    bind_to(&mut esme, start, &mut driver);
    assert!(
        !driver.rbuf.is_empty(),
        "bound, busy: the read chunk is held"
    );
    assert!(driver.wbuf.capacity() > 0, "and the write buffer");

    // Not yet quiet long enough: nothing is given back.
    driver.runtime_mut().now = start + QUIET / 2;
    assert_eq!(settle(&mut driver), Poll::Pending);
    assert!(!driver.rbuf.is_empty());

    // Quiet for QUIET: the buffers go.
    let later = start + QUIET + Duration::from_millis(1);
    driver.runtime_mut().now = later;
    assert_eq!(settle(&mut driver), Poll::Pending);
    assert!(driver.rbuf.is_empty(), "the read chunk was given back");
    assert_eq!(driver.wbuf.capacity(), 0, "the write buffer was given back");
    assert!(!driver.holding);

    // Input larger than the stack probe: all of it is read and answered.
    for token in 1..=8u32 {
        let sm = SubmitSm {
            short_message: vec![b'x'; 140].into(),
            ..Default::default()
        };
        esme.request(later, Body::SubmitSm(Box::new(sm)), token);
    }
    let sent = to_driver(&mut esme, later, &mut driver);
    assert!(sent > READ_PROBE, "{sent} octets fit the probe");
    assert_eq!(settle(&mut driver), Poll::Pending);
    let done = from_driver(&mut esme, later, &mut driver);
    assert_eq!(done.len(), 8, "every submit_sm answered");
    assert!(done
        .iter()
        .all(|(_, pdu)| pdu.command_status == CommandStatus::OK));
    assert!(!driver.rbuf.is_empty(), "input brought the read chunk back");
    assert!(driver.holding);
}

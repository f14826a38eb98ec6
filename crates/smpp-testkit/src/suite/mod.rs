//! The conformance suite: each test is a generic async function run by
//! [`conformance_suite!`](crate::conformance_suite) as a `#[test]` per
//! adapter (`A::block_on(suite::session::binds_of_each_kind::<A>())`).

use std::net::SocketAddr;
use std::time::Duration;

use smpp_async::ServerConfig;
use smpp_proto::pdu::{Bind, SubmitSm};
use smpp_proto::session::{BindKind, SessionConfig};

use crate::adapter::{timeout, Adapter, Connector, Serving};
use crate::Smsc;

pub mod async_only;
pub mod chaos;
pub mod hardening;
pub mod outbind;
pub mod pool;
pub mod reconnect;
pub mod session;
pub mod tls;

/// 127.0.0.1, port 0.
pub fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// How long anything that should happen may take before a test fails.
pub const LIMIT: Duration = Duration::from_secs(10);

/// The account the suite's [`Smsc`] accepts, with `password`.
pub fn creds(password: &str) -> Bind {
    Bind {
        system_id: "esme".into(),
        password: password.to_owned().into(),
        interface_version: 0x34,
        ..Default::default()
    }
}

/// A submit of `text`, asking for a receipt if `receipt`.
pub fn submit(text: &str, receipt: bool) -> SubmitSm {
    SubmitSm {
        source_addr: "447700900123".into(),
        destination_addr: "447700900456".into(),
        short_message: text.to_owned().into_bytes().into(),
        registered_delivery: u8::from(receipt),
        ..Default::default()
    }
}

/// A submit of 160 octets (the load of the chaos and hardening tests).
pub fn full_submit() -> SubmitSm {
    SubmitSm {
        short_message: vec![b'x'; 160].into(),
        ..submit("", false)
    }
}

/// Binding as `esme`/`secret` to `addr`.
pub fn to(addr: SocketAddr, kind: BindKind, config: SessionConfig) -> Connector {
    Connector {
        addr,
        kind,
        bind: creds("secret"),
        config,
    }
}

/// Starts `smsc` with `session` for its connections.
pub async fn start<A: Adapter>(smsc: Smsc, session: SessionConfig) -> Serving<A> {
    let config = ServerConfig::default().with_session(session);
    A::serve(local(), smsc, config, None).await
}

/// Connects and binds as `esme`/`secret`, within [`LIMIT`].
pub async fn connect<A: Adapter>(
    addr: SocketAddr,
    kind: BindKind,
    config: SessionConfig,
) -> (A::Client, A::Inbound) {
    timeout(LIMIT, A::connect(to(addr, kind, config), None))
        .await
        .expect("bind in time")
        .expect("bound")
}

/// Waits (polling) until `done`, at most [`LIMIT`].
pub async fn wait_for(what: &str, done: impl Fn() -> bool) {
    let polled = async {
        while !done() {
            crate::adapter::sleep(Duration::from_millis(5)).await;
        }
    };
    timeout(LIMIT, polled)
        .await
        .unwrap_or_else(|| panic!("{what} in time"));
}

/// Instantiates the whole suite as `#[test]`s: `async: $executor` for
/// `smpp_async` on an [`Executor`](crate::adapters::Executor), with the
/// tests only the async adapters can run; `blocking` for
/// [`Blocking`](crate::adapters::Blocking), with its own.
#[macro_export]
macro_rules! conformance_suite {
    (blocking) => {
        $crate::conformance_suite!(@common $crate::adapters::Blocking);
        $crate::conformance_suite!(@tests $crate::adapters::Blocking;
            // An async client's session lives while its Inbound does.
            session::dropping_the_client_unbinds_while_its_inbound_lives,
        );

    };
    (async: $executor:ty) => {
        $crate::conformance_suite!(@common $crate::adapters::Async<$executor>);
        $crate::conformance_suite!(@tests $crate::adapters::Async<$executor>;
            // "Call order" among concurrent calls: the async futures take
            // their places in the order they are made.
            pool::per_destination_order_survives_throttling,
        );
        $crate::conformance_suite!(@async $executor;
            answers_given_at_once_skip_the_handler_task_and_keep_its_guarantees,
            answers_polled_in_the_connection_task_come_once_each,
            dropping_the_server_future_unbinds_its_connections,
        );
    };
    (@async $executor:ty; $($test:ident),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                <$executor as $crate::adapters::Executor>::block_on(::std::boxed::Box::pin(
                    $crate::suite::async_only::$test::<$executor>(),
                ));
            }
        )*
    };
    (@common $adapter:ty) => {
        $crate::conformance_suite!(@tests $adapter;
            hardening::a_client_that_never_reads_is_disconnected_with_bounded_buffers,
            session::binds_of_each_kind_and_wrong_password,
            session::submit_then_receipt_and_other_requests,
            session::ten_thousand_concurrent_submits_through_window_64,
            session::a_full_window_waits_instead_of_failing,
            session::server_pushed_deliver_sm_is_answered,
            session::graceful_shutdown_unbinds_everyone,
            session::dropping_the_client_unbinds,
            session::session_init_timeout_and_connection_limit,
            session::enquire_link_keepalive_and_dead_peer_detection,
            session::peer_dying_mid_window_fails_every_pending_call,
            session::response_timeout_is_a_typed_error,
            session::a_panicking_handler_answers_system_error,
            session::inbound_backpressure_holds_the_peer_until_answered,
            session::idle_sessions_keep_alive_with_enquire_link,
            session::unframeable_input_gets_its_generic_nack_before_the_close,
            session::submits_waiting_behind_an_unbind_fail_as_closed,
            session::timers_fire_while_traffic_keeps_flowing,
            session::enquire_link_returns_the_round_trip_and_times_out_on_a_silent_peer,
            reconnect::backoff_grows_to_its_cap_with_jitter,
            reconnect::comes_back_after_the_connection_dies,
            reconnect::reconnects_after_the_server_restarts_on_the_same_port,
            reconnect::without_a_server_calls_are_not_connected_after_wait,
            reconnect::a_request_in_flight_when_the_connection_dies_is_not_resent,
            pool::spreads_submits_over_its_binds_and_merges_their_inbound,
            pool::a_dropped_bind_comes_back_while_the_others_carry_on,
            pool::tps_limit_spaces_submits_over_the_whole_pool,
            pool::a_long_message_under_a_tps_limit_completes,
            pool::no_tps_limit_by_default,
            pool::throttled_submits_are_retried_until_accepted,
            pool::a_throttled_member_pauses_doubling_on_repeats,
            pool::retries_exhausted_return_the_throttled_status,
            pool::message_parts_stay_on_one_member_through_throttling,
            pool::members_report_their_state_and_last_round_trip,
            outbind::binds_a_receiver_that_gets_deliveries,
            outbind::binds_a_transceiver_when_asked,
            outbind::a_refused_outbind_closes_the_connection,
            outbind::outbind_to_nobody_fails,
            tls::bind_submit_deliver_unbind_and_untrusted_certificate,
            hardening::non_smpp_bytes_get_generic_nack_and_a_close,
            hardening::slowloris_and_never_binding_connections_are_closed_by_the_init_timer,
            hardening::connection_limit_and_bind_flood,
            hardening::a_receiver_that_never_answers_deliver_sm_gets_timeouts_not_a_hang,
            hardening::many_idle_connections_are_held_and_released,
        );
    };
    (@tests $adapter:ty; $($module:ident :: $test:ident),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                <$adapter as $crate::adapter::Adapter>::block_on(
                    $crate::suite::$module::$test::<$adapter>(),
                );
            }
        )*
    };
}

/// Instantiates the chaos tests as `#[test]`s (`async: $executor` or
/// `blocking`, as [`conformance_suite!`]); give them a test target of their
/// own: they count the process's file descriptors and threads.
#[macro_export]
macro_rules! chaos_suite {
    (blocking) => {
        $crate::chaos_suite!(@tests $crate::adapters::Blocking);
    };
    (async: $executor:ty) => {
        $crate::chaos_suite!(@tests $crate::adapters::Async<$executor>);
    };
    (@tests $adapter:ty) => {
        $crate::chaos_suite!(@core $adapter);
        $crate::conformance_suite!(@tests $adapter; chaos::a_middlebox_that_blocks_both_ways);
    };
    (@core $adapter:ty) => {
        $crate::conformance_suite!(@tests $adapter;
            chaos::a_thousand_cuts_mid_window_resolve_every_call_and_reconnect,
            chaos::stalls_and_half_closes_are_detected_and_every_call_resolves,
        );
    };
}

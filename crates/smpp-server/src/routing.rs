//! Routing: where a submission goes, decided once per destination and
//! returned as data ([`Decision`]), so the one submission path acts on it
//! and tests read it.
//!
//! The simulator's router: the first configured [`Rule`] matching the
//! destination and the text decides (a refusal, or an outcome); otherwise
//! the outcome distribution picks a final state. The destination then goes
//! to a locally bound ESME when one registered a matching address range or
//! a configured route names one ([`Target::Esme`]), else the message gets
//! its simulated outcome ([`Target::Simulated`]). A gateway adds upstream
//! targets beside these.

use std::time::Duration;

use smpp_proto::message::coding::Alphabet;
use smpp_proto::message::{decode_text, DataCoding, DecodeOptions, MessageState};
use smpp_proto::pdu::{CommandStatus, EsmClass};

use crate::config::{Route, Rule, ServeConfig};

/// What a submission's destination gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Answer this error (after `delay`, when given).
    Refuse(CommandStatus, Option<Duration>),
    /// Accept (answering after `delay`, when given).
    Accept {
        /// The simulated final state and error code, when the message is
        /// not routed to an ESME.
        state: MessageState,
        error: u16,
        delay: Option<Duration>,
    },
}

/// Where an accepted message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// It reaches the simulated outcome by itself.
    Simulated,
    /// A bound receiver of this account gets it as a deliver_sm.
    Esme(String),
}

/// The rules, the outcome distribution and the configured routes.
#[derive(Debug)]
pub(crate) struct Router {
    rules: Vec<Rule>,
    outcomes: Vec<(MessageState, u32)>,
    routes: Vec<Route>,
    /// Some rule looks into the text (UCS-2 is then decoded to look).
    reads_text: bool,
    /// Some rule delays its answer: not every submission can be answered
    /// where it arrives.
    delays: bool,
}

impl Router {
    pub(crate) fn new(config: &ServeConfig) -> Router {
        Router::with(
            config.rules.clone(),
            config.outcomes.clone(),
            config.routes.clone(),
        )
    }

    /// A router of these rules, weights and routes.
    pub(crate) fn with(
        rules: Vec<Rule>,
        outcomes: Vec<(MessageState, u32)>,
        routes: Vec<Route>,
    ) -> Router {
        Router {
            reads_text: rules.iter().any(|r| r.contains.is_some()),
            delays: rules.iter().any(|r| r.delay.is_some()),
            rules,
            outcomes,
            routes,
        }
    }

    /// The same routes with other rules and weights.
    pub(crate) fn with_simulation(
        &self,
        rules: Vec<Rule>,
        outcomes: Vec<(MessageState, u32)>,
    ) -> Router {
        Router::with(rules, outcomes, self.routes.clone())
    }

    /// Its rules and weights.
    pub(crate) fn simulation(&self) -> (Vec<Rule>, Vec<(MessageState, u32)>) {
        (self.rules.clone(), self.outcomes.clone())
    }

    /// Whether some decision may delay its answer.
    pub(crate) fn may_delay(&self) -> bool {
        self.delays
    }

    /// Whether routes are configured.
    pub(crate) fn has_routes(&self) -> bool {
        !self.routes.is_empty()
    }

    /// Picks the outcome of a submission to `destination`: the first rule
    /// that matches the destination and the text (markers are looked for in
    /// the raw user data, and in its decoded text for UCS-2), else the
    /// outcome distribution, drawing from `random` (called at most once).
    pub(crate) fn decide(
        &self,
        destination: &str,
        esm_class: EsmClass,
        data_coding: u8,
        user_data: &[u8],
        random: impl FnOnce() -> u64,
    ) -> Decision {
        let user_data = esm_class.strip_udh(user_data);
        let decoded;
        let text = if self.reads_text && DataCoding(data_coding).alphabet() == Alphabet::Ucs2 {
            decoded = decode_text(
                DataCoding(data_coding),
                user_data,
                &DecodeOptions::default(),
            )
            .unwrap_or_default();
            decoded.as_bytes()
        } else {
            user_data
        };
        if let Some(rule) = self.rules.iter().find(|r| r.matches(destination, text)) {
            return match rule {
                Rule {
                    status: Some(status),
                    delay,
                    ..
                } => Decision::Refuse(*status, *delay),
                Rule {
                    state,
                    error,
                    delay,
                    ..
                } => Decision::Accept {
                    state: state.unwrap_or(MessageState::Delivered),
                    error: *error,
                    delay: *delay,
                },
            };
        }
        let total: u64 = self.outcomes.iter().map(|&(_, w)| u64::from(w)).sum();
        let mut state = MessageState::Delivered;
        if total > 0 {
            let mut pick = random() % total;
            for &(s, w) in &self.outcomes {
                if pick < u64::from(w) {
                    state = s;
                    break;
                }
                pick -= u64::from(w);
            }
        }
        let error = u16::from(state != MessageState::Delivered);
        Decision::Accept {
            state,
            error,
            delay: None,
        }
    }

    /// The account a configured route sends `destination` to (the longest
    /// matching prefix).
    pub(crate) fn route(&self, destination: &str) -> Option<&str> {
        self.routes
            .iter()
            .filter(|r| destination.starts_with(&r.prefix))
            .max_by_key(|r| r.prefix.len())
            .map(|r| r.account.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(rules: Vec<Rule>, outcomes: Vec<(MessageState, u32)>) -> Router {
        let mut config = ServeConfig::for_tests();
        config.rules = rules;
        config.outcomes = outcomes;
        config.routes = vec![
            Route {
                prefix: "44".into(),
                account: "uk".into(),
            },
            Route {
                prefix: "4470".into(),
                account: "mobile".into(),
            },
        ];
        Router::new(&config)
    }

    #[test]
    fn the_first_matching_rule_decides_else_the_distribution() {
        let refuse = Rule {
            prefix: Some("4479".into()),
            status: Some(CommandStatus::THROTTLED),
            ..Rule::default()
        };
        let fail = Rule {
            contains: Some("#FAIL".into()),
            state: Some(MessageState::Undeliverable),
            error: 7,
            delay: Some(Duration::from_secs(2)),
            ..Rule::default()
        };
        let r = router(vec![refuse, fail], vec![(MessageState::Expired, 1)]);
        let esm = EsmClass::DEFAULT;
        assert_eq!(
            r.decide("447900", esm, 0, b"#FAIL", || 0),
            Decision::Refuse(CommandStatus::THROTTLED, None)
        );
        let failed = r.decide("1", esm, 0, b"x #FAIL", || 0);
        assert_eq!(
            failed,
            Decision::Accept {
                state: MessageState::Undeliverable,
                error: 7,
                delay: Some(Duration::from_secs(2))
            }
        );
        assert!(r.may_delay());
        assert_eq!(
            r.decide("1", esm, 0, b"hello", || 0),
            Decision::Accept {
                state: MessageState::Expired,
                error: 1,
                delay: None
            }
        );
        // A marker in the UDH is not in the text.
        let udh = [4, b'#', b'F', b'A', b'I', b'L'];
        assert!(matches!(
            r.decide("1", esm.with_udhi(true), 0, &udh, || 0),
            Decision::Accept {
                state: MessageState::Expired,
                ..
            }
        ));
    }

    #[test]
    fn the_distribution_follows_the_weights() {
        let r = router(
            Vec::new(),
            vec![(MessageState::Delivered, 3), (MessageState::Rejected, 1)],
        );
        let states: Vec<MessageState> = (0..4)
            .map(|n| match r.decide("1", EsmClass::DEFAULT, 0, b"", || n) {
                Decision::Accept { state, .. } => state,
                other => panic!("{other:?}"),
            })
            .collect();
        use MessageState::{Delivered, Rejected};
        assert_eq!(states, [Delivered, Delivered, Delivered, Rejected]);
        assert!(!r.may_delay());
    }

    #[test]
    fn the_longest_route_prefix_wins() {
        let r = router(Vec::new(), Vec::new());
        assert!(r.has_routes());
        assert_eq!(r.route("447012"), Some("mobile"));
        assert_eq!(r.route("4420"), Some("uk"));
        assert_eq!(r.route("33"), None);
    }
}

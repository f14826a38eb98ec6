//! The adapter conformance suite (`smpp-testkit`) on the blocking adapter.

smpp_testkit::conformance_suite!(blocking);

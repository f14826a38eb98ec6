//! The adapter conformance suite (`smpp-testkit`) on tokio.

smpp_testkit::conformance_suite!(async: smpp_testkit::adapters::TokioExecutor);

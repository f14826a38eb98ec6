//! The conformance suite's chaos tests (`smpp-testkit`) on tokio, in a
//! process of their own (they count its file descriptors and tasks).

smpp_testkit::chaos_suite!(async: smpp_testkit::adapters::TokioExecutor);

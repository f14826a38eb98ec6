//! The adapter conformance suite (`smpp-testkit`) on smol and on async-std.

mod smol {
    smpp_testkit::conformance_suite!(async: smpp_testkit::adapters::SmolExecutor);
}

mod async_std {
    smpp_testkit::conformance_suite!(async: smpp_testkit::adapters::AsyncStdExecutor);
}

//! The conformance suite's chaos tests (`smpp-testkit`) on smol and on
//! async-std, in a process of their own (they count its file descriptors).

mod smol {
    smpp_testkit::chaos_suite!(async: smpp_testkit::adapters::SmolExecutor);
}

mod async_std {
    smpp_testkit::chaos_suite!(async: smpp_testkit::adapters::AsyncStdExecutor);
}

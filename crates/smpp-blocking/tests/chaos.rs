//! The conformance suite's chaos tests (`smpp-testkit`) on the blocking
//! adapter, in a process of their own (they count its descriptors and threads).

smpp_testkit::chaos_suite!(blocking);

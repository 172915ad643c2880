//! Nexmark on Riverbed: the event generator, every query and the benchmark
//! runner. Built by the Nexmark issue.

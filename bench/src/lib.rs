//! Riverbed's macro benchmark harness. The micro-benchmarks of the engine live
//! beside it in `state-store/benches/`; the report generator comes with the
//! benchmark issue.

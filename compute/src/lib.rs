//! Riverbed's compute layer: the typed dataflow API, the operators and the
//! parallel runtime whose state lives in `riverbed-state-store`. Built by the
//! compute issue; the crate exists now so the workspace has its final shape.

//! Query languages (being written).

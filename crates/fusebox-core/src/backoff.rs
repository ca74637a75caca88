//! Backoff sequences: fixed, exponential and jittered delays as reproducible iterators.

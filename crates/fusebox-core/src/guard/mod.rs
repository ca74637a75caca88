//! Spend guards: budget checks, spike detection and EWMA baselines.

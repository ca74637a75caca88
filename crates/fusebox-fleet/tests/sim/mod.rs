//! A deterministic simulation of a fleet: many real engines and breakers, one store, and
//! seeded faults between them.

pub mod check;
pub mod network;
pub mod plan;
pub mod run;

//! Multi-host harness (feature `testbed`).

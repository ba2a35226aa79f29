//! Exit statuses.

/// Success.
pub const OK: u8 = 0;
/// A renewal failed, or the command could not do its work.
pub const FAILURE: u8 = 1;
/// A usage error (clap's status for usage errors too).
pub const USAGE: u8 = 2;
/// The config is invalid or unreadable (`EX_CONFIG` from sysexits.h).
pub const CONFIG: u8 = 78;

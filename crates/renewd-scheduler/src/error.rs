//! The scheduler's one error type.

/// Why the scheduler loop stopped on its own.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchedulerError {
    /// The issuance pool's end of the work channel is gone, so nothing due can ever be
    /// dispatched. Retrying cannot help: the daemon must restart the pool and the loop.
    #[error("the issuance pool stopped taking work")]
    WorkChannelClosed,
}

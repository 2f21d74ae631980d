//! The one error type of netctl: every failure a command can meet, rendered as the message printed
//! on stderr before exiting with code 1.

use std::io;

/// What went wrong while running a netctl command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// netmaster could not be reached (connection refused, DNS, timeout, ...).
    #[error("unable to connect to netmaster at {url}: {reason}")]
    Connect { url: String, reason: String },
    /// netmaster answered with an error; the message is the server's own text.
    #[error("{0}")]
    Server(String),
    /// netmaster answered 2xx but the body was not what the API promises.
    #[error("invalid response from netmaster for {path}: {reason}")]
    Decode { path: String, reason: String },
    /// The command line is well formed for clap but invalid for Contiv (checked client side,
    /// with the original netctl's wording).
    #[error("{0}")]
    Invalid(String),
    /// Something this build of netctl does not do (login).
    #[error("{0}")]
    Unsupported(String),
    /// Writing to stdout failed.
    #[error("unable to write output: {0}")]
    Output(#[from] io::Error),
}

impl Error {
    /// Shorthand for a client-side validation error.
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }

    /// True when stdout was closed by the reader (`netctl net ls | head -1`), which is not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// Result of a netctl operation.
pub type Result<T> = std::result::Result<T, Error>;

//! netctl: Contiv's command line client, an HTTP(S) client of netmaster.
//!
//! `cli` holds the command tree (clap), `commands` one module per command group, `client` the HTTP
//! calls, `output` the tables and JSON. Exit codes follow Contiv's netctl: 0 on success, 1 on any
//! error (message on stderr), and clap's own code (2) for a malformed command line.

pub mod cli;
pub mod client;
pub mod commands;
pub mod error;
pub mod output;

use std::io::{self, Write};
use std::process::ExitCode;

pub use error::{Error, Result};

/// Entry point of the `netctl` binary: parse `std::env::args`, run, map the outcome to an exit code.
pub fn cli_main() -> ExitCode {
    let cli = match cli::parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(err) => {
            // --help and --version land here too, with exit code 0.
            let _ = err.print();
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
        }
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let result = commands::run(&cli, &mut out).and_then(|()| out.flush().map_err(Error::from));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.is_broken_pipe() => ExitCode::SUCCESS,
        Err(err) => {
            let _ = out.flush();
            eprintln!("{}", error_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// How an error is shown on stderr (Contiv's netctl logged errors as `ERRO[0000] message`).
pub fn error_line(err: &Error) -> String {
    format!("ERRO[0000] {err}")
}

//! Reading a password for `netctl login`: from a terminal without echo (so it is neither shown
//! nor left in the scrollback), or the first line of stdin when stdin is not a terminal or
//! `--password-stdin` says so (scripts).

use std::io::{BufRead, IsTerminal, Write};

use nix::sys::termios::{self, LocalFlags, SetArg};

use crate::error::{Error, Result};

/// The password: prompted for without echo on a terminal, else stdin's first line.
pub fn read(from_stdin: bool) -> Result<String> {
    let stdin = std::io::stdin();
    let line = if !from_stdin && stdin.is_terminal() {
        without_echo(&stdin, "password: ")?
    } else {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        line
    };
    let pw = line.trim_end_matches(['\r', '\n']).to_owned();
    if pw.is_empty() {
        return Err(Error::invalid("no password given"));
    }
    Ok(pw)
}

/// One line from the terminal on stdin with echo off; the terminal's settings are restored
/// even when reading fails. The prompt is shown only once echo is off, so nothing typed in
/// answer to it can be echoed.
fn without_echo(stdin: &std::io::Stdin, prompt: &str) -> Result<String> {
    let before = termios::tcgetattr(stdin)
        .map_err(|e| Error::invalid(format!("reading the terminal's settings: {e}")))?;
    let mut quiet = before.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    // Keep the newline echoed so the next output starts on its own line.
    quiet.local_flags.insert(LocalFlags::ECHONL);
    termios::tcsetattr(stdin, SetArg::TCSANOW, &quiet)
        .map_err(|e| Error::invalid(format!("turning the terminal's echo off: {e}")))?;
    let mut line = String::new();
    eprint!("{prompt}");
    let read = std::io::stderr()
        .flush()
        .and_then(|()| stdin.lock().read_line(&mut line));
    let restored = termios::tcsetattr(stdin, SetArg::TCSANOW, &before);
    read?;
    restored.map_err(|e| Error::invalid(format!("restoring the terminal's settings: {e}")))?;
    Ok(line)
}

//! Errors of the Linux driver. Every variant names the kernel object and the namespace it lives
//! in; they cross the trait boundary as [`DatapathError::Backend`].

use contiv_datapath::DatapathError;

/// A failure of one kernel operation.
#[derive(Debug, thiserror::Error)]
pub enum LinuxError {
    #[error("netlink {op} {object} in netns {ns}: {source}")]
    Netlink {
        op: &'static str,
        object: String,
        ns: String,
        #[source]
        source: Box<rtnetlink::Error>,
    },
    #[error("netns {ns}: {op}: {source}")]
    Netns {
        ns: String,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("sysctl {key} in netns {ns}: {source}")]
    Sysctl {
        key: String,
        ns: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{object} not found in netns {ns}")]
    NotFound { object: String, ns: String },
    #[error("source guard {op} in netns {ns}: {source}")]
    Guard {
        op: &'static str,
        ns: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("netlink worker thread for netns {ns} panicked")]
    ThreadPanicked { ns: String },
}

impl LinuxError {
    /// The kernel errno behind a netlink failure, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            LinuxError::Netlink { source, .. } => match source.as_ref() {
                rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
                _ => None,
            },
            LinuxError::Netns { source, .. } | LinuxError::Sysctl { source, .. } => {
                source.raw_os_error()
            }
            _ => None,
        }
    }

    /// True when the object was already gone (ENODEV, ENOENT, ESRCH, EADDRNOTAVAIL).
    pub fn is_absent(&self) -> bool {
        matches!(self, LinuxError::NotFound { .. })
            || matches!(
                self.errno(),
                Some(libc_errno::ENODEV)
                    | Some(libc_errno::ENOENT)
                    | Some(libc_errno::ESRCH)
                    | Some(libc_errno::EADDRNOTAVAIL)
            )
    }

    /// True when the kernel refused to create an object because one of that name exists.
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(libc_errno::EEXIST)
    }
}

/// The few errno values the driver interprets (avoids a libc dependency).
pub(crate) mod libc_errno {
    pub const ENOENT: i32 = 2;
    pub const ESRCH: i32 = 3;
    pub const EEXIST: i32 = 17;
    pub const ENODEV: i32 = 19;
    pub const EADDRNOTAVAIL: i32 = 99;
}

impl From<LinuxError> for DatapathError {
    fn from(e: LinuxError) -> Self {
        DatapathError::Backend {
            object: "linux datapath".into(),
            source: Box::new(e),
        }
    }
}

/// Collects teardown failures, treating "already gone" as success.
#[derive(Default)]
pub(crate) struct Errors(pub Vec<DatapathError>);

impl Errors {
    pub fn absorb<T>(&mut self, r: Result<T, LinuxError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) if e.is_absent() => None,
            Err(e) => {
                self.0.push(e.into());
                None
            }
        }
    }

    pub fn push(&mut self, e: DatapathError) {
        self.0.push(e);
    }

    pub fn finish(self) -> Result<(), DatapathError> {
        DatapathError::from_list(self.0)
    }
}

//! The one error type every datapath driver returns across the trait boundary.

use std::fmt;

/// A boxed driver-specific cause (netlink, OVSDB, I/O ...).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a datapath operation failed. Variants name the object concerned.
#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    /// The driver cannot provide what the network asks for (e.g. VLAN encap on the Linux driver).
    #[error("network {network}: unsupported: {reason}")]
    Unsupported { network: String, reason: String },
    /// The spec itself is inconsistent (gateway outside the subnet, bad MTU ...).
    #[error("invalid {object}: {reason}")]
    Invalid { object: String, reason: String },
    /// An operation referenced a network that was never ensured on this host.
    #[error("network {0} is not set up on this host")]
    NetworkNotFound(String),
    /// The backend failed on a named object (a link, a namespace, a table).
    #[error("{object}: {source}")]
    Backend {
        object: String,
        #[source]
        source: BoxError,
    },
    /// Best-effort operations (teardown) report every failure, not just the first.
    #[error("{}", ErrorList(.0))]
    Multiple(Vec<DatapathError>),
}

struct ErrorList<'a>(&'a [DatapathError]);

impl fmt::Display for ErrorList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} errors: ", self.0.len())?;
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, "; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl DatapathError {
    /// Folds collected teardown errors: none is `Ok`, one is itself, more is `Multiple`.
    pub fn from_list(mut errors: Vec<DatapathError>) -> Result<(), DatapathError> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(DatapathError::Multiple(errors)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_list_folds() {
        assert!(DatapathError::from_list(vec![]).is_ok());
        let one = DatapathError::from_list(vec![DatapathError::NetworkNotFound("t:n".into())]);
        assert!(matches!(one, Err(DatapathError::NetworkNotFound(_))));
        let two = DatapathError::from_list(vec![
            DatapathError::NetworkNotFound("a".into()),
            DatapathError::NetworkNotFound("b".into()),
        ])
        .unwrap_err();
        assert_eq!(
            two.to_string(),
            "2 errors: network a is not set up on this host; network b is not set up on this host"
        );
    }
}

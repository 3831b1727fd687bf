//! The one error type of the crate. Each variant maps to one Python exception class in the
//! bindings (IndexError, TypeError, ValueError, KeyError, MemoryError, OSError), so the variant
//! says *what kind* of bad input it was, and the message says *which* input.

/// Every fallible function in the crate returns this.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An id (or position, or offset) outside `0..size`. Python: `IndexError`.
    #[error("{what} {index} is out of range for {container} of size {size}")]
    IndexOutOfRange {
        /// What was out of range ("index", "offset", "position", ...).
        what: &'static str,
        /// The offending value, exactly.
        index: i128,
        /// What it indexes ("an embedding table", ...).
        container: &'static str,
        /// The container's size: valid values are `0..size`.
        size: usize,
    },
    /// Wrong element type (float ids, complex tables, ...). Python: `TypeError`.
    #[error("{0}")]
    DType(String),
    /// Wrong rank or shape. Python: `ValueError`.
    #[error("{0}")]
    Shape(String),
    /// Any other invalid argument value. Python: `ValueError`.
    #[error("{0}")]
    InvalidArgument(String),
    /// A missing key in a mapping (unknown word, ...). Python: `KeyError`.
    #[error("{0}")]
    Key(String),
    /// A device this build cannot use. Python: `ValueError` naming the cargo feature.
    #[error("device '{device}' is not available: {reason}")]
    UnsupportedDevice {
        /// The device as the caller named it.
        device: String,
        /// Why it cannot be used (the missing cargo feature, the driver's error).
        reason: String,
    },
    /// A size that cannot be allocated (overflows isize or is absurdly large). Python: `MemoryError`.
    #[error("{0}")]
    Memory(String),
    /// A malformed or corrupted file. Python: `ValueError`.
    #[error("{0}")]
    Format(String),
    /// File system failure. Python: `OSError` (or `FileNotFoundError`).
    #[error("{context}: {source}")]
    Io {
        /// What was being done, and to which path.
        context: String,
        #[source]
        /// The operating system's error.
        source: std::io::Error,
    },
    /// An error inside candle that our own validation did not anticipate. Python: `RuntimeError`.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
}

/// The crate's result alias.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn shape(msg: impl Into<String>) -> Self {
        Error::Shape(msg.into())
    }
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }
    pub(crate) fn dtype(msg: impl Into<String>) -> Self {
        Error::DType(msg.into())
    }
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Shorthand for returning `Error::InvalidArgument` with a formatted message (crate-internal).
macro_rules! bail_invalid {
    ($($arg:tt)*) => { return Err($crate::Error::InvalidArgument(format!($($arg)*))) };
}

/// Shorthand for returning `Error::Shape` with a formatted message (crate-internal).
macro_rules! bail_shape {
    ($($arg:tt)*) => { return Err($crate::Error::Shape(format!($($arg)*))) };
}
pub(crate) use {bail_invalid, bail_shape};

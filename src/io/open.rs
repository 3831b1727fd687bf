//! The one way a loader opens a file, and the one check a save makes on its target: only
//! regular files are read or replaced.
//!
//! - Reading a FIFO with no writer blocks forever (and `open` itself blocks until a writer
//!   comes); reading a device (`/dev/zero`, `/dev/urandom`) never ends. [`open_regular`] looks at
//!   the path first (`stat`, nothing is opened), then opens it with `O_NONBLOCK` (a FIFO that
//!   appears in between opens at once instead of blocking) and looks again at what it opened
//!   (`fstat` on the handle, closing that race): anything but a regular file is an
//!   [`Error::InvalidArgument`] naming the path and what it is.
//! - Saving replaces the target by renaming a new file over it: onto a FIFO, a socket or a device
//!   node that would silently swap a special file for a plain one. [`check_save_target`]
//!   refuses those the same way, and returns an existing regular file's metadata so the new
//!   file can keep its permission bits.
//!
//! Directories keep the operating system's answer (`IsADirectoryError`, an `OSError`), as
//! Python's own `open()` gives.

use std::fs::{File, Metadata};
use std::io::Read;
use std::path::Path;

use crate::{Error, Result};

/// What a non-regular file is, for messages.
fn kind_of(meta: &Metadata) -> &'static str {
    let ft = meta.file_type();
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if ft.is_socket() {
            return "a socket";
        }
        if ft.is_char_device() {
            return "a character device";
        }
        if ft.is_block_device() {
            return "a block device";
        }
    }
    if ft.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

fn not_regular(path: &Path, meta: &Metadata, doing: &str) -> Error {
    if meta.is_dir() {
        return Error::io(
            format!("cannot {doing} {}", path.display()),
            std::io::ErrorKind::IsADirectory.into(),
        );
    }
    Error::invalid(format!(
        "cannot {doing} {}: it is {}, not a regular file",
        path.display(),
        kind_of(meta)
    ))
}

/// Open `path` for reading, refusing anything but a regular file (see the module docs); never
/// blocks on a FIFO.
pub fn open_regular(path: &Path) -> Result<File> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    if !meta.is_file() {
        return Err(not_regular(path, &meta, "read"));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Without it, opening a FIFO swapped in since the stat waits for a writer. On a
        // regular file O_NONBLOCK changes nothing, so it is left set.
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options
        .open(path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io(format!("cannot stat {}", path.display()), e))?;
    if !meta.is_file() {
        return Err(not_regular(path, &meta, "read"));
    }
    Ok(file)
}

/// The whole content of the regular file `path` (see [`open_regular`]). The buffer is sized
/// from the file's length and reserved fallibly: a file larger than memory (a sparse file of
/// petabytes) is an [`Error::Memory`], not an abort.
pub fn read_regular(path: &Path) -> Result<Vec<u8>> {
    let mut file = open_regular(path)?;
    let len = file
        .metadata()
        .map_err(|e| Error::io(format!("cannot stat {}", path.display()), e))?
        .len();
    let len = usize::try_from(len).map_err(|_| {
        Error::Memory(format!(
            "{}: a file of {len} bytes does not fit in memory",
            path.display()
        ))
    })?;
    let mut data = crate::alloc::try_with_capacity::<u8>(len).map_err(|_| {
        Error::Memory(format!(
            "{}: cannot allocate {len} bytes to read it",
            path.display()
        ))
    })?;
    // A file that grows while it is read is read to its new end (the buffer grows then).
    file.read_to_end(&mut data)
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    Ok(data)
}

/// Check that a save may replace `path`: nothing there, or a regular file (whose metadata is
/// returned, so the new file can keep its permission bits). A FIFO, socket or device node is an
/// [`Error::InvalidArgument`]; a directory is left to the rename, which fails with the
/// operating system's error.
pub fn check_save_target(path: &Path) -> Result<Option<Metadata>> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(Some(meta)),
        Ok(meta) if meta.is_dir() => Ok(None),
        Ok(meta) => Err(not_regular(path, &meta, "save to")),
        // Nothing there (or a dangling link, which the rename replaces): a new file.
        Err(_) => Ok(None),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn special_files_are_refused_without_blocking() {
        for dev in ["/dev/null", "/dev/zero"] {
            assert!(matches!(
                read_regular(Path::new(dev)),
                Err(Error::InvalidArgument(m)) if m.contains(dev) && m.contains("character device")
            ));
            assert!(matches!(
                check_save_target(Path::new(dev)),
                Err(Error::InvalidArgument(_))
            ));
        }
        let dir = std::env::temp_dir().join(format!("ce-open-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(
            matches!(read_regular(&fifo), Err(Error::InvalidArgument(m)) if m.contains("FIFO"))
        );
        assert!(matches!(
            check_save_target(&fifo),
            Err(Error::InvalidArgument(_))
        ));
        // a directory: the OS's own error, an Io error
        assert!(matches!(read_regular(&dir), Err(Error::Io { .. })));
        assert!(matches!(check_save_target(&dir), Ok(None)));
        // a regular file reads whole; a missing one is NotFound
        let file = dir.join("f");
        std::fs::write(&file, b"abc").unwrap();
        assert_eq!(read_regular(&file).unwrap(), b"abc");
        assert!(check_save_target(&file).unwrap().is_some());
        assert!(matches!(
            read_regular(&dir.join("missing")),
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! Atomic file writes: the new content goes to a temporary file in the target's directory,
//! is synced, then renamed over the target, so a crash or an error never leaves a
//! half-written file under the target's name and a failed save keeps the old file.
//!
//! - **The target** must be nothing yet or a regular file ([`check_save_target`]): a FIFO,
//!   socket or device node is refused instead of being replaced by a plain file.
//! - **Permissions**: a new file gets `0666 & ~umask`, as `open()` gives; a file saved over
//!   keeps its permission bits (and, where the process may set them, its owner and group).
//! - **The temporary file** is unnamed where the OS offers it (Linux `O_TMPFILE`): a save
//!   killed half-way leaves nothing behind. It gets a name only once complete: the target's own
//!   name when there was no file (`linkat`, atomic), else a short name ([`TEMP_PREFIX`], 34
//!   bytes, so any legal target name still fits `NAME_MAX`) renamed over the target at once.
//!   Elsewhere (other systems, file systems without `O_TMPFILE`) the temporary file is named
//!   from the start. Every save first removes files of that pattern older than
//!   [`STALE_AFTER`] from the directory, so files of saves killed half-way do not accumulate.

use std::fs::{File, Metadata};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::io::open::check_save_target;
use crate::{Error, Result};

/// The name every temporary file of ours starts with (then 16 hex digits and `.tmp`).
pub const TEMP_PREFIX: &str = ".candle-embed-";
const TEMP_SUFFIX: &str = ".tmp";

/// A temporary file of ours this old belongs to a save that died: the next save in the same
/// directory removes it. (A live save writes continuously, so its file is always recent.)
pub const STALE_AFTER: Duration = Duration::from_secs(15 * 60);

/// A fresh temporary name in `dir`.
fn temp_name(dir: &Path) -> PathBuf {
    let tag = crate::rng::entropy_seed() ^ u64::from(std::process::id()).rotate_left(40);
    dir.join(format!("{TEMP_PREFIX}{tag:016x}{TEMP_SUFFIX}"))
}

fn is_temp_name(name: &str) -> bool {
    name.strip_prefix(TEMP_PREFIX)
        .and_then(|rest| rest.strip_suffix(TEMP_SUFFIX))
        .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Remove our temporary files older than [`STALE_AFTER`] from `dir` (best effort: a file
/// another process removes first, or one we may not remove, is left alone).
pub fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(is_temp_name) {
            continue;
        }
        let old = entry
            .metadata()
            .ok()
            .filter(Metadata::is_file)
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_AFTER);
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The directory `path` lives in ("." for a bare file name).
fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Write the bytes produced by `fill` to `path` atomically (see the module docs).
pub fn write_atomic(path: &Path, fill: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let existing = check_save_target(path)?;
    let dir = dir_of(path);
    remove_stale_temps(dir);
    #[cfg(target_os = "linux")]
    if let Some(file) = unnamed::create(dir)? {
        let file = write_and_sync(file, path, existing.as_ref(), fill)?;
        return unnamed::persist(&file, dir, path);
    }
    write_named(path, dir, existing.as_ref(), fill)
}

/// Fill `file`, give it the old file's permissions, flush and sync it.
fn write_and_sync(
    file: File,
    path: &Path,
    existing: Option<&Metadata>,
    fill: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<File> {
    let cannot = |what: &str, e| Error::io(format!("cannot {what} {}", path.display()), e);
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    fill(&mut w)?;
    let file = w
        .into_inner()
        .map_err(|e| cannot("write", e.into_error()))?;
    if let Some(old) = existing {
        keep_owner(&file, old);
        file.set_permissions(old.permissions())
            .map_err(|e| cannot("set the permissions of", e))?;
    }
    file.sync_all().map_err(|e| cannot("sync", e))?;
    Ok(file)
}

/// Give the new file the old one's owner and group where this process may (root saving over
/// another user's file); elsewhere the attempt fails and the file stays the saver's.
fn keep_owner(file: &File, old: &Metadata) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let _ = std::os::unix::fs::fchown(file, Some(old.uid()), Some(old.gid()));
    }
    #[cfg(not(unix))]
    let _ = (file, old);
}

/// The portable path: a named temporary file, renamed over the target.
fn write_named(
    path: &Path,
    dir: &Path,
    existing: Option<&Metadata>,
    fill: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    let tmp = temp_name(dir);
    let result = (|| {
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| Error::io(format!("cannot create a file in {}", dir.display()), e))?;
        write_and_sync(file, path, existing, fill)?;
        std::fs::rename(&tmp, path)
            .map_err(|e| Error::io(format!("cannot rename to {}", path.display()), e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    } else {
        sync_dir(dir);
    }
    result
}

/// Make the rename durable (best effort: not every system can sync a directory).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Linux: the temporary file is an `O_TMPFILE` inode, given a name only once complete.
#[cfg(target_os = "linux")]
mod unnamed {
    use std::ffi::CString;
    use std::fs::File;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    use std::path::Path;

    use super::{sync_dir, temp_name};
    use crate::{Error, Result};

    /// An unnamed file in `dir`, or `None` when this kernel or file system has no `O_TMPFILE`
    /// (or `/proc`, through which it gets its name): the caller then uses a named one.
    pub fn create(dir: &Path) -> Result<Option<File>> {
        if !Path::new("/proc/self/fd").is_dir() {
            return Ok(None);
        }
        match File::options()
            .write(true)
            .mode(0o666)
            .custom_flags(libc::O_TMPFILE)
            .open(dir)
        {
            Ok(f) => Ok(Some(f)),
            Err(e) => match e.raw_os_error() {
                // no O_TMPFILE here: an old kernel (EISDIR: it saw O_DIRECTORY + write), or a
                // file system without it
                Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL | libc::ENOSYS) => Ok(None),
                _ => Err(Error::io(
                    format!("cannot create a file in {}", dir.display()),
                    e,
                )),
            },
        }
    }

    fn c_path(p: &Path) -> Result<CString> {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| Error::invalid(format!("{} contains a NUL byte", p.display())))
    }

    /// `linkat` the unnamed `file` to `to`, through its `/proc/self/fd` entry.
    fn link(file: &File, to: &Path) -> std::io::Result<()> {
        let from = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        let to = c_path(to).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        // SAFETY: two valid NUL-terminated paths; AT_FDCWD is always a valid dirfd.
        let rc = unsafe {
            libc::linkat(
                libc::AT_FDCWD,
                from.as_ptr(),
                libc::AT_FDCWD,
                to.as_ptr(),
                libc::AT_SYMLINK_FOLLOW,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// Give the complete `file` the name `path`: directly when nothing is there (atomic:
    /// `linkat` never replaces), else through a short temporary name renamed over the target.
    pub fn persist(file: &File, dir: &Path, path: &Path) -> Result<()> {
        match link(file, path) {
            Ok(()) => {
                sync_dir(dir);
                return Ok(());
            }
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(Error::io(format!("cannot create {}", path.display()), e));
            }
            Err(_) => {}
        }
        // Named for the few microseconds until the rename; a save killed right there leaves
        // this name, which a later save removes once it is stale.
        let tmp = temp_name(dir);
        link(file, &tmp)
            .map_err(|e| Error::io(format!("cannot create a file in {}", dir.display()), e))?;
        let renamed = std::fs::rename(&tmp, path);
        if renamed.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        renamed.map_err(|e| Error::io(format!("cannot rename to {}", path.display()), e))?;
        sync_dir(dir);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_short_and_recognised() {
        let t = temp_name(Path::new("d"));
        let name = t.file_name().unwrap().to_str().unwrap();
        assert_eq!(name.len(), 34);
        assert!(is_temp_name(name));
        for other in [
            ".candle-embed-.tmp",
            ".candle-embed-0123456789abcdeg.tmp",
            "candle-embed-0123456789abcdef.tmp",
            ".candle-embed-0123456789abcdef.tmpx",
            "table.safetensors",
        ] {
            assert!(!is_temp_name(other), "{other}");
        }
    }

    /// The named path (the only one off Linux) keeps permissions, replaces whole, and leaves
    /// no file behind on success or failure.
    #[cfg(unix)]
    #[test]
    fn named_temporary_path_keeps_mode_and_cleans_up() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("ce-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("t.bin");
        std::fs::write(&target, b"old").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        let meta = check_save_target(&target).unwrap();
        write_named(&target, &dir, meta.as_ref(), |w| {
            w.write_all(b"new").map_err(|e| Error::io("w", e))
        })
        .unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let failed = write_named(&target, &dir, None, |_| Err(Error::invalid("boom")));
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("t.bin")]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

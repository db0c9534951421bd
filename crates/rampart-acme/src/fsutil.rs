//! Private folders and atomic file replacement.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

use crate::AcmeError;

/// Mode of the private key and the account file.
pub(crate) const SECRET_MODE: u32 = 0o600;
/// Mode of the certificate chain (public data; its folder is private anyway).
pub(crate) const PUBLIC_MODE: u32 = 0o644;
/// Mode of the state folders.
pub(crate) const DIR_MODE: u32 = 0o700;

/// Creates `dir` (and its parents) with mode 0700 if it does not exist. An existing folder
/// is left as it is, with a warning if others can read it.
pub(crate) fn ensure_private_dir(dir: &Path) -> Result<(), AcmeError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(DIR_MODE);
    builder
        .create(dir)
        .map_err(|e| AcmeError::io("create folder", dir, e))?;
    #[cfg(unix)]
    {
        let meta = fs::metadata(dir).map_err(|e| AcmeError::io("inspect folder", dir, e))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                dir = %dir.display(),
                mode = format_args!("{mode:o}"),
                "ACME state folder is readable by others; it holds private keys"
            );
        }
    }
    Ok(())
}

/// Replaces `path` with `contents` so that a reader sees either the old file or the new one,
/// never a part: the bytes go to a temporary file in the same folder, are synced, and the
/// temporary file is renamed over `path`. The new file gets exactly `mode`.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), AcmeError> {
    let tmp = temp_path(path);
    let result = write_new(&tmp, contents, mode)
        .map_err(|e| AcmeError::io("write", &tmp, e))
        .and_then(|()| fs::rename(&tmp, path).map_err(|e| AcmeError::io("replace", path, e)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Make the rename itself durable; a failure here loses nothing already visible.
    if let Some(dir) = path.parent()
        && let Ok(d) = fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

fn write_new(tmp: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(mode);
    let mut file = options.open(tmp)?;
    // The umask may have removed bits from `mode`; set it exactly.
    #[cfg(unix)]
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    #[cfg(not(unix))]
    let _ = mode;
    file.write_all(contents)?;
    file.sync_all()
}

fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn mode_of(p: &Path) -> u32 {
        fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0)
    }

    #[test]
    fn write_atomic_replaces_and_sets_mode() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("key.pem");
        write_atomic(&path, b"first", SECRET_MODE)?;
        assert_eq!(fs::read(&path)?, b"first");
        assert_eq!(mode_of(&path), 0o600);

        // A reader holding the old file keeps reading the old bytes after the replacement.
        let old = fs::File::open(&path)?;
        write_atomic(&path, b"second, longer", PUBLIC_MODE)?;
        assert_eq!(fs::read(&path)?, b"second, longer");
        assert_eq!(mode_of(&path), 0o644);
        assert_eq!(io::read_to_string(old)?, "first");

        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path())?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("key.pem")]);
        Ok(())
    }

    #[test]
    fn write_atomic_failure_keeps_old_file() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("cert.pem");
        write_atomic(&path, b"old", PUBLIC_MODE)?;
        // Renaming a file over a non-empty folder fails: the old content must survive and the
        // error must name the path.
        let blocked = dir.path().join("blocked");
        fs::create_dir(&blocked)?;
        fs::write(blocked.join("x"), b"x")?;
        let err = write_atomic(&blocked, b"new", PUBLIC_MODE)
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.starts_with("cannot replace ") && e.contains("blocked")),
            "{err:?}"
        );
        assert_eq!(fs::read(&path)?, b"old");
        let leftovers = fs::read_dir(dir.path())?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .count();
        assert_eq!(leftovers, 0);
        Ok(())
    }

    #[test]
    fn private_dir_is_0700() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let nested = dir.path().join("a/b");
        ensure_private_dir(&nested)?;
        assert_eq!(mode_of(&nested), 0o700);
        // Idempotent.
        ensure_private_dir(&nested)?;
        Ok(())
    }
}

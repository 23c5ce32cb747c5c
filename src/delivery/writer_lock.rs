//! One writer per data directory: only the process holding `postback.lock` delivers (and
//! refreshes X OAuth 2.0 tokens, which X revokes when two processes spend the same refresh
//! token). The OS releases the lock when the holder exits, also after a crash.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = "postback.lock";

/// Held for as long as this process delivers; dropping it releases the data directory.
#[derive(Debug)]
pub struct WriterLock {
    _file: File,
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{} already delivers from {}{}; stop it first, or give this one another --data-dir", .holder, .data_dir, .pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Held { pid: Option<u32>, holder: String, data_dir: String },
    #[error("cannot lock {path}: {source}; check that the data directory is writable")]
    Io { path: String, source: std::io::Error },
}

impl WriterLock {
    /// Takes the data directory's writer lock for this process, described as `holder`
    /// (`postback serve`, `Postback Desk`), or says who holds it.
    pub fn acquire(data_dir: &Path, holder: &str) -> Result<Self, LockError> {
        let path = data_dir.join(LOCK_FILE);
        let io = |source| LockError::Io { path: path.display().to_string(), source };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let mut file = crate::private_files::open_or_create(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0).map_err(io)?;
                file.seek(SeekFrom::Start(0)).map_err(io)?;
                writeln!(file, "{}\n{holder}", std::process::id()).map_err(io)?;
                file.sync_all().map_err(io)?;
                Ok(Self { _file: file, path })
            }
            Err(TryLockError::WouldBlock) => {
                let (pid, holder) = read_holder(&mut file);
                Err(LockError::Held { pid, holder, data_dir: data_dir.display().to_string() })
            }
            Err(TryLockError::Error(e)) => Err(io(e)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The pid and description the holder wrote (it may not have written them yet).
fn read_holder(file: &mut File) -> (Option<u32>, String) {
    let mut text = String::new();
    let _ = file.seek(SeekFrom::Start(0)).and_then(|_| file.read_to_string(&mut text));
    let mut lines = text.lines();
    let pid = lines.next().and_then(|l| l.trim().parse().ok());
    let holder = lines.next().map(str::trim).filter(|h| !h.is_empty()).unwrap_or("another Postback Desk process");
    (pid, holder.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_told_who_delivers() {
        let dir = tempfile::tempdir().unwrap();
        let first = WriterLock::acquire(dir.path(), "postback serve").unwrap();
        // flock is per open file description: a second open in this process conflicts too.
        let err = WriterLock::acquire(dir.path(), "Postback Desk").unwrap_err();
        match &err {
            LockError::Held { pid, holder, .. } => {
                assert_eq!(*pid, Some(std::process::id()));
                assert_eq!(holder, "postback serve");
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains(&format!("pid {}", std::process::id())), "{err}");
        drop(first);
        WriterLock::acquire(dir.path(), "Postback Desk").expect("free again once dropped");
    }
}

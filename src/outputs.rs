//! The files a command writes, checked before anything is read from the service or sent to it: no output may be
//! the state file (or its `-wal`/`-shm`), the input CSV, another output, or anything but a regular file (a device,
//! a FIFO, a directory); and each must be writable where it goes. Paths are compared as the files they name
//! (through symbolic links, `./`, hard links, and case on a file system that ignores it), not as text.
//!
//! A leaf: it knows paths and the file system, nothing of jobs, reports or SQLite.

use crate::files;
use std::path::{Path, PathBuf};

/// A file a command reads or keeps, that no output may replace.
#[derive(Clone, Debug)]
pub struct Kept {
    /// What it is, as the operator knows it: "the input CSV", "the state file".
    pub role: &'static str,
    pub path: PathBuf,
}

/// A file a command writes.
#[derive(Clone, Debug)]
pub struct Output {
    /// The option that names it: `--report`, `--html`.
    pub option: &'static str,
    pub path: PathBuf,
}

impl Output {
    /// What the file is, as the operator knows it.
    fn what(&self) -> &'static str {
        match self.option {
            "--state" => "the state file",
            "--summary-json" => "the summary JSON",
            "--html" => "the summary page",
            _ => "the report",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{what} {path} ({option}) is {role} ({kept}): it would be overwritten; give {option} another path")]
    Overwrites { what: &'static str, option: &'static str, path: String, role: &'static str, kept: String },
    #[error("{what} {path} ({option}) is {kind}: pcbulk writes to regular files only; give {option} a file path")]
    NotRegular { what: &'static str, option: &'static str, path: String, kind: &'static str },
    #[error("{what} {path} ({option}) cannot be written: {reason}; nothing was sent")]
    NotWritable { what: &'static str, option: &'static str, path: String, reason: String },
}

/// The state file and the files SQLite keeps beside it.
pub fn state_files(state: &Path) -> Vec<Kept> {
    let beside = |suffix: &str| {
        let mut name = state.as_os_str().to_os_string();
        name.push(suffix);
        PathBuf::from(name)
    };
    vec![
        Kept { role: "the state file", path: state.to_path_buf() },
        Kept { role: "the state file's write-ahead log", path: beside("-wal") },
        Kept { role: "the state file's shared memory", path: beside("-shm") },
    ]
}

/// Checks every output against the files kept and against each other, and that each can be written, before
/// anything is sent. Creates nothing that stays: a probe file in the output's directory is removed at once.
pub fn check(outputs: &[Output], kept: &[Kept]) -> Result<(), OutputError> {
    for (index, output) in outputs.iter().enumerate() {
        let path = output.path.display().to_string();
        let earlier = outputs[..index].iter().map(|other| Kept { role: "another output", path: other.path.clone() });
        for kept in kept.iter().cloned().chain(earlier) {
            if files::same_file(&output.path, &kept.path) {
                let kept_path = kept.path.display().to_string();
                let (what, option, role) = (output.what(), output.option, kept.role);
                return Err(OutputError::Overwrites { what, option, path, role, kept: kept_path });
            }
        }
        writable(output)?;
    }
    Ok(())
}

/// Refuses an existing path that is not a regular file; probes the directory an output goes to.
fn writable(output: &Output) -> Result<(), OutputError> {
    let path = output.path.display().to_string();
    let (what, option) = (output.what(), output.option);
    let not_writable = |reason: String| OutputError::NotWritable { what, option, path: path.clone(), reason };
    if let Ok(metadata) = std::fs::symlink_metadata(&output.path) {
        let metadata = match metadata.file_type().is_symlink() {
            true => std::fs::metadata(&output.path).map_err(|error| not_writable(error.to_string()))?,
            false => metadata,
        };
        if let Some(kind) = crate::files::not_regular(&metadata) {
            return Err(OutputError::NotRegular { what, option, path, kind });
        }
    }
    let directory = match output.path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !directory.is_dir() {
        return Err(not_writable(format!("its directory {} does not exist", directory.display())));
    }
    let probe = directory.join(format!(".pcbulk-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(error) => Err(not_writable(format!("cannot create a file in {} ({error})", directory.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(path: &Path) -> Output {
        Output { option: "--report", path: path.to_path_buf() }
    }

    #[test]
    fn an_output_that_is_a_kept_file_by_another_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a.csv.pcbulk.db");
        std::fs::write(&state, "x").unwrap();
        let other_name = dir.path().join(".").join("a.csv.pcbulk.db");
        let error = check(&[output(&other_name)], &state_files(&state)).unwrap_err();
        assert!(error.to_string().contains("is the state file"), "{error}");
        let wal = dir.path().join("a.csv.pcbulk.db-wal");
        let error = check(&[output(&wal)], &state_files(&state)).unwrap_err();
        assert!(error.to_string().contains("write-ahead log"), "{error}");
        #[cfg(unix)]
        {
            let link = dir.path().join("link.csv");
            std::os::unix::fs::symlink(&state, &link).unwrap();
            assert!(check(&[output(&link)], &state_files(&state)).is_err());
        }
    }

    #[test]
    fn a_directory_or_a_missing_directory_is_refused_and_a_new_file_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let error = check(&[output(dir.path())], &[]).unwrap_err();
        assert!(error.to_string().contains("a directory"), "{error}");
        let error = check(&[output(&dir.path().join("nowhere/r.csv"))], &[]).unwrap_err();
        assert!(error.to_string().contains("does not exist"), "{error}");
        check(&[output(&dir.path().join("r.csv"))], &[]).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the probe is gone");
    }

    #[cfg(unix)]
    #[test]
    fn a_device_is_refused() {
        let error = check(&[output(Path::new("/dev/null"))], &[]).unwrap_err();
        assert!(error.to_string().contains("a device"), "{error}");
    }
}

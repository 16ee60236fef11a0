//! Files as pcbulk makes and checks them: private files (mode 0600), what is not a regular file, whether two paths
//! name the same file. A leaf: it knows the file system, nothing of jobs, reports, CSV or SQLite.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Creates (or truncates) a file only its owner can read.
pub fn create_private(path: &Path) -> io::Result<fs::File> {
    private_options().truncate(true).open(path)
}

/// Opens a file, creating it (mode 0600) when absent, keeping what it holds.
pub fn create_or_open_private(path: &Path) -> io::Result<fs::File> {
    private_options().read(true).truncate(false).open(path)
}

fn private_options() -> fs::OpenOptions {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// What a file is, when it is not a regular file.
pub fn not_regular(metadata: &std::fs::Metadata) -> Option<&'static str> {
    let kind = metadata.file_type();
    if kind.is_file() {
        return None;
    }
    if kind.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return Some("a pipe (FIFO)");
        }
        if kind.is_char_device() || kind.is_block_device() {
            return Some("a device");
        }
        if kind.is_socket() {
            return Some("a socket");
        }
    }
    Some("not a regular file")
}

/// The last guard of every writer (reports, summaries, the state file): an existing path that is not a regular
/// file (a device, a FIFO, a directory) is never opened for writing nor renamed over.
pub fn refuse_non_regular(path: &Path) -> std::io::Result<()> {
    match std::fs::metadata(path) {
        Ok(metadata) => match not_regular(&metadata) {
            Some(kind) => Err(std::io::Error::other(format!("{} is {kind}, not a regular file", path.display()))),
            None => Ok(()),
        },
        Err(_) => Ok(()),
    }
}

/// Whether two paths name the same file: the same inode when both exist; else the same place once the directory
/// is resolved (links, `./`), ignoring case where the file system does.
pub fn same_file(one: &Path, other: &Path) -> bool {
    #[cfg(unix)]
    if let (Ok(first), Ok(second)) = (std::fs::metadata(one), std::fs::metadata(other)) {
        use std::os::unix::fs::MetadataExt;
        return first.dev() == second.dev() && first.ino() == second.ino();
    }
    match (resolved(one), resolved(other)) {
        (Some(first), Some(second)) if cfg!(any(target_os = "macos", windows)) => {
            first.to_string_lossy().to_lowercase() == second.to_string_lossy().to_lowercase()
        }
        (Some(first), Some(second)) => first == second,
        _ => false,
    }
}

/// The path with its directory resolved (the file itself may not exist yet).
fn resolved(path: &Path) -> Option<PathBuf> {
    if let Ok(path) = std::fs::canonicalize(path) {
        return Some(path);
    }
    let name = path.file_name()?;
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    Some(std::fs::canonicalize(directory).ok()?.join(name))
}

//! Scratch files: what a long pass over a log sets aside on disk instead of holding in memory
//! (the verifier's stream links, a bulk import's cold record states).

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A temporary file with no name: created in the temporary directory (`TMPDIR`) and unlinked
/// at once, so nothing is left behind however the process ends. `purpose` names it for the
/// moment it has a name (`citydb-<purpose>-…`).
pub fn unnamed_file(purpose: &str) -> Result<File, io::Error> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = format!(
        "citydb-{purpose}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let path = std::env::temp_dir().join(name);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek, SeekFrom, Write};

    use super::*;

    #[test]
    fn an_unnamed_file_holds_what_is_written_and_leaves_no_name() {
        let mut file = unnamed_file("test").unwrap();
        file.write_all(b"set aside").unwrap();
        file.seek(SeekFrom::Start(0)).unwrap();
        let mut back = String::new();
        file.read_to_string(&mut back).unwrap();
        assert_eq!(back, "set aside");
        let named = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("citydb-test-{}-", std::process::id()))
            });
        assert!(!named, "the file kept its name");
    }
}

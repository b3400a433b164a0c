//! Static files for the demo page, from one directory and nowhere else.
//!
//! Owns path resolution and file reads. Runs on the application runtime's blocking pool, never
//! on the I/O thread: an open or read that hangs (a FIFO, a slow disk, a network mount) must
//! not delay a single pong. Serves only regular files whose canonical path (symlinks resolved)
//! is inside the canonical directory, and at most `max_bytes` of them.

use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// What a lookup found.
#[derive(Debug)]
pub(crate) enum Found {
    /// The file's bytes and `Content-Type`.
    File(Vec<u8>, &'static str),
    /// Nothing servable: missing, outside the directory, or not a regular file.
    Nothing,
    /// A regular file larger than the cap.
    TooLarge {
        /// Its size in bytes (at least `max + 1`).
        size: u64,
        /// The cap.
        max: u64,
    },
}

/// Looks `path` (a request path, starting with `/`) up in `root`, which must be canonical.
/// Blocking: call it from `spawn_blocking`.
pub(crate) fn lookup(root: &Path, path: &str, max_bytes: u64) -> Found {
    let rel = Path::new(path.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Found::Nothing;
    }
    let Some(mut file) = inside(root, &root.join(rel)) else {
        return Found::Nothing;
    };
    let mut name = PathBuf::from(rel);
    if file.is_dir() {
        match inside(root, &file.join("index.html")) {
            Some(index) => file = index,
            None => return Found::Nothing,
        }
        name = PathBuf::from("index.html");
    }
    // Refuse FIFOs, sockets and devices before opening: opening a FIFO blocks until a writer
    // comes. Someone who can swap the file between here and `open` can write the directory,
    // and the open then only holds a blocking-pool thread.
    match std::fs::metadata(&file) {
        Ok(m) if m.is_file() => {}
        _ => return Found::Nothing,
    }
    let Ok(opened) = File::open(&file) else {
        return Found::Nothing;
    };
    match opened.metadata() {
        Ok(m) if m.is_file() => {
            if m.len() > max_bytes {
                return Found::TooLarge {
                    size: m.len(),
                    max: max_bytes,
                };
            }
        }
        _ => return Found::Nothing,
    }
    // The file may grow after the check: read one byte more than allowed at most.
    let mut bytes = Vec::new();
    if opened
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .is_err()
    {
        return Found::Nothing;
    }
    if bytes.len() as u64 > max_bytes {
        return Found::TooLarge {
            size: bytes.len() as u64,
            max: max_bytes,
        };
    }
    Found::File(bytes, content_type(&name))
}

/// `path` with every symlink resolved, if that is inside `root`.
fn inside(root: &Path, path: &Path) -> Option<PathBuf> {
    let canonical = path.canonicalize().ok()?;
    canonical.starts_with(root).then_some(canonical)
}

fn content_type(name: &Path) -> &'static str {
    match name.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript",
        "wasm" => "application/wasm",
        "css" => "text/css",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

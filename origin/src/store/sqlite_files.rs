//! SQLite's write-ahead log and its shared-memory index stay on disk when a database closes.
//!
//! By default the last connection to close a file in WAL mode deletes its `-wal` and `-shm`
//! files, and the next to open it creates them again. With thousands of tenants and only some
//! of their files open, a tenant's first request in a while pays for that: in the tenants
//! benchmark, opening a closed tenant's file took 1.85 ms (p50) in the server with the files
//! made anew and 1.24 ms with them kept (`docs/BENCHMARKS.md`). With `SQLITE_FCNTL_PERSIST_WAL`
//! the files stay; a clean close still checkpoints, and `journal_size_limit` (set on every
//! connection, `dialect.rs`) makes it truncate the log to nothing, so a closed tenant costs its
//! 32 KiB index on disk and no more.
//!
//! sqlx reaches connections only through its `Any` driver here, which exposes no handle, so the
//! setting is made by an auto-extension: a hook SQLite runs for every connection this process
//! opens, right after opening the main file.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int};
use std::sync::Once;

use libsqlite3_sys::{
    sqlite3, sqlite3_api_routines, sqlite3_auto_extension, sqlite3_file_control,
    SQLITE_FCNTL_PERSIST_WAL, SQLITE_OK,
};

/// Makes every SQLite connection this process opens from now on keep its write-ahead log and
/// index files on close. Idempotent.
pub(super) fn keep_log_files() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: `persist_wal` has the signature SQLite calls auto-extensions with and is a
        // `'static` function, so it stays valid for as long as SQLite may call it.
        let rc = unsafe { sqlite3_auto_extension(Some(persist_wal)) };
        // Fails only when SQLite cannot allocate the hook's list entry: files are then deleted
        // on close as by default, which is slower, never wrong.
        debug_assert_eq!(rc, SQLITE_OK);
    });
}

/// The auto-extension: sets `SQLITE_FCNTL_PERSIST_WAL` on the connection's main file.
unsafe extern "C" fn persist_wal(
    db: *mut sqlite3,
    _error: *mut *mut c_char,
    _api: *const sqlite3_api_routines,
) -> c_int {
    let mut on: c_int = 1;
    // SAFETY: SQLite passes the connection being opened, valid for this call; "main" is a
    // NUL-terminated string; `on` outlives the call, which only reads it. A connection whose
    // file ignores the setting (an in-memory database) answers SQLITE_NOTFOUND, which changes
    // nothing and is not an error of the open.
    unsafe {
        sqlite3_file_control(
            db,
            c"main".as_ptr(),
            SQLITE_FCNTL_PERSIST_WAL,
            (&raw mut on).cast(),
        );
    }
    SQLITE_OK
}

//! Golden-file checks of rendered output (unit tests only): `tests/golden/<name>` holds the
//! expected text; `UPDATE_GOLDEN=1` rewrites it from what the code renders now.

use std::path::PathBuf;

/// Asserts `text` equals the golden file `name` (or rewrites it under `UPDATE_GOLDEN`).
pub(crate) fn check(name: &str, text: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, text).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(&path).expect("golden file (UPDATE_GOLDEN=1 to create)");
    assert_eq!(text, want, "{name} differs from the golden file");
}

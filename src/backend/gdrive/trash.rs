//! `trash=show`: the mount's root holds a `.Trash` directory listing what was put in Drive's
//! trash (each item once, not again for everything inside a trashed folder), and the trashed
//! folders inside it list their trashed children. Elsewhere trashed items are hidden.

use super::DriveBackend;
use std::collections::HashSet;
use std::sync::Mutex;

/// The pseudo folder id of `.Trash` (`:` never occurs in Drive ids).
pub const TRASH: &str = "cloudmount:trash";
/// Its name in the mount's root.
pub const TRASH_DIR: &str = ".Trash";

/// The folders reached through `.Trash`.
#[derive(Debug, Default)]
pub struct TrashView {
    dirs: Mutex<HashSet<String>>,
}

impl TrashView {
    /// Folder `id` was reached through `.Trash`.
    pub fn mark(&self, id: &str) {
        self.dirs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string());
    }

    fn has(&self, id: &str) -> bool {
        self.dirs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(id)
    }
}

impl DriveBackend {
    /// The `q` listing folder `id`'s children as the mount shows them.
    pub(super) fn query_for(&self, id: &str) -> String {
        if id == TRASH {
            "trashed = true".to_string()
        } else if self.trash.has(id) {
            format!("'{id}' in parents and trashed = true")
        } else {
            format!("'{id}' in parents and trashed = false")
        }
    }
}

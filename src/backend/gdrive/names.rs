//! How Drive names become file names in the mount, and back.
//!
//! - A `/` in a Drive name is shown as `／` (U+FF0F, FULLWIDTH SOLIDUS), as rclone does; a
//!   name written through the mount has every `／` turned back into `/`. The names `.` and
//!   `..` are shown as `．` and `．．` (U+FF0E).
//! - A Google document is shown with its export format's extension added (`Plan` exported as
//!   DOCX is `Plan.docx`), unless the name already ends with it.
//! - **Duplicates.** Drive lets one folder hold several entries of the same name. The entry
//!   created first (by `createdTime`, then by id) keeps the name; every later one is shown as
//!   `STEM (ID8).EXT`, where ID8 is the first 8 characters of its file id (the whole id when
//!   two of them share those 8, and `ID~N` when a real entry has that name). A name thus never moves to another file while both exist, in
//!   any listing or mount; one exception is an older entry renamed away and back, which takes
//!   its name back from a younger one. Names are compared exactly (case matters).

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

/// Shown in place of `/`.
pub const SLASH: char = '\u{FF0F}';
const DOT: char = '\u{FF0E}';

/// The mount's name for Drive name `name`.
pub fn display(name: &str) -> String {
    match name {
        "" => "_".to_string(),
        "." => DOT.to_string(),
        ".." => format!("{DOT}{DOT}"),
        _ => name.replace('/', &SLASH.to_string()),
    }
}

/// The Drive name for mount name `name` (the reverse of [`display`]).
pub fn to_drive(name: &str) -> String {
    let dots: String = std::iter::repeat_n(DOT, name.chars().count()).collect();
    if !name.is_empty() && name.chars().count() <= 2 && name == dots {
        return ".".repeat(name.chars().count());
    }
    name.replace(SLASH, "/")
}

/// `name` with `.ext` added unless it ends with it already (any case).
pub fn with_extension(name: &str, ext: &str) -> String {
    let suffix = format!(".{ext}");
    if name.to_lowercase().ends_with(&suffix.to_lowercase()) {
        name.to_string()
    } else {
        format!("{name}{suffix}")
    }
}

/// `STEM (tag).EXT` for `name`.
fn tagged(name: &str, tag: &str) -> String {
    match name.rfind('.') {
        Some(dot) if dot > 0 => format!("{} ({tag}){}", &name[..dot], &name[dot..]),
        _ => format!("{name} ({tag})"),
    }
}

/// One entry of a folder, before duplicate names are told apart.
#[derive(Debug, Clone)]
pub struct Named {
    /// The shown name so far ([`display`], extension added).
    pub name: String,
    /// Creation time (older entries keep the plain name).
    pub created: SystemTime,
    /// File id.
    pub id: String,
}

/// The final names of `entries` (same order): unique, and stable as described above.
pub fn assign(entries: &[Named]) -> Vec<String> {
    let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        groups.entry(e.name.as_str()).or_default().push(i);
    }
    let mut out: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
    let taken: HashSet<&str> = groups.keys().copied().collect();
    let mut used: HashSet<String> = HashSet::new();
    for (name, mut idx) in groups {
        if idx.len() < 2 {
            continue;
        }
        idx.sort_by(|&a, &b| {
            (entries[a].created, &entries[a].id).cmp(&(entries[b].created, &entries[b].id))
        });
        let short: Vec<String> = idx
            .iter()
            .map(|&i| entries[i].id.chars().take(8).collect())
            .collect();
        for (n, &i) in idx.iter().enumerate().skip(1) {
            let id = &entries[i].id;
            let clash = short.iter().filter(|s| **s == short[n]).count() > 1;
            let mut candidate = tagged(name, if clash { id } else { &short[n] });
            let mut k = 0;
            while taken.contains(candidate.as_str()) || used.contains(&candidate) {
                k += 1;
                candidate = tagged(name, &format!("{id}~{k}"));
            }
            used.insert(candidate.clone());
            out[i] = candidate;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(s)
    }

    fn named(name: &str, s: u64, id: &str) -> Named {
        Named {
            name: name.into(),
            created: at(s),
            id: id.into(),
        }
    }

    #[test]
    fn slashes_and_dots_round_trip() {
        assert_eq!(display("a/b"), "a\u{FF0F}b");
        assert_eq!(to_drive(&display("a/b")), "a/b");
        assert_eq!(to_drive(&display("..")), "..");
        assert_eq!(to_drive(&display(".")), ".");
        assert_eq!(to_drive("plain.txt"), "plain.txt");
        assert_eq!(with_extension("Plan", "docx"), "Plan.docx");
        assert_eq!(with_extension("Plan.DOCX", "docx"), "Plan.DOCX");
    }

    #[test]
    fn the_oldest_duplicate_keeps_the_name_and_others_get_their_id() {
        let entries = vec![
            named("a.jpg", 20, "YOUNGER123"),
            named("a.jpg", 10, "OLDER99999"),
            named("b", 5, "B"),
            named("b", 6, "C"),
        ];
        let names = assign(&entries);
        assert_eq!(names, ["a (YOUNGER1).jpg", "a.jpg", "b", "b (C)"]);
        // Order of the listing does not matter.
        let mut rev = entries.clone();
        rev.reverse();
        let mut again = assign(&rev);
        again.reverse();
        assert_eq!(again, names);
    }

    #[test]
    fn shared_id_prefixes_and_taken_names_fall_back_to_the_whole_id() {
        let entries = vec![
            named("x", 1, "AAAAAAAA1"),
            named("x", 2, "AAAAAAAA2"),
            named("x", 3, "AAAAAAAA3"),
            named("y", 1, "Y1"),
            named("y", 2, "Y2"),
            named("y (Y2)", 0, "Z"),
        ];
        let names = assign(&entries);
        assert_eq!(names[..3], ["x", "x (AAAAAAAA2)", "x (AAAAAAAA3)"]);
        // "y (Y2)" is a real name, which keeps it; the duplicate gets another.
        assert_eq!(names[3..], ["y", "y (Y2~1)", "y (Y2)"]);
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzz::config())]

        /// Fuzz target: Drive names to mount names and back. A shown name is one path
        /// component (no `/`, never `.` or `..`, never empty), and maps back to the Drive name
        /// (names that already hold the lookalike characters excepted).
        #[test]
        fn fuzz_drive_names(name in crate::fuzz::text(&["report.pdf", "a/b", ".", "..", "x.tar.gz"])) {
            let shown = display(&name);
            proptest::prop_assert!(!shown.contains('/') && !shown.is_empty());
            proptest::prop_assert!(shown != "." && shown != "..");
            if !name.is_empty() && !name.contains(SLASH) && !name.contains(DOT) {
                proptest::prop_assert_eq!(to_drive(&shown), name);
            }
        }
    }
}

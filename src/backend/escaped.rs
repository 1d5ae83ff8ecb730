//! Key segments no file name can carry, shown under reversible escaped names.
//!
//! Object keys are bytes split at `/`. A segment can be a file name unless it is empty (from
//! `a//b`), `.` or `..`, holds a NUL byte, or is not UTF-8 (control characters such as CR and
//! LF are fine: Linux file names may hold them). Such a segment is shown as `%%` followed by
//! the segment with `%`, control characters, DEL and every byte that is not ASCII written as
//! `%XX`:
//!
//! | key segment | shown as |
//! |---|---|
//! | (empty, from `a//b`) | `%%` |
//! | `.` / `..` | `%%.` / `%%..` |
//! | `nul<0x00>name.txt` | `%%nul%00name.txt` |
//! | `bad<0xFF>` (not UTF-8) | `%%bad%FF` |
//! | `ctl<0x01>name.txt` | itself |
//!
//! A real name that already has that form (`%%x%00`) is escaped once more, so every shown
//! name stands for exactly one key and back; any other name beginning with `%%` is itself.
//! Names longer than 1,024 bytes (what FUSE carries) once escaped cannot be shown and are
//! hidden (with one log
//! line). Every operation on an escaped name reaches the key it stands for.

use std::borrow::Cow;

/// What begins an escaped name.
pub const MARK: &str = "%%";

/// Longest name shown: what FUSE carries (the mount's `name_max` may hide more).
const NAME_MAX: usize = 1024;

/// Whether `seg` cannot be a file name as it is.
pub(crate) fn unusable(seg: &[u8]) -> bool {
    match std::str::from_utf8(seg) {
        Err(_) => true,
        Ok(s) => s.is_empty() || s == "." || s == ".." || s.contains('\0'),
    }
}

fn kept(b: u8) -> bool {
    (0x20..0x7f).contains(&b) && b != b'%' && b != b'/'
}

/// `MARK` + `seg` with every byte but printable ASCII (other than `%` and `/`) as `%XX`.
fn encode(seg: &[u8]) -> String {
    let mut out = String::from(MARK);
    for &b in seg {
        if kept(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The bytes an escaped name's body stands for, if it is in the canonical form `encode` makes.
fn decode(body: &str) -> Option<Vec<u8>> {
    let b = body.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = body.get(i + 1..i + 3)?;
            // Two upper-case hex digits, nothing else (from_str_radix would take `+1`).
            if !hex
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c))
            {
                return None;
            }
            let v = u8::from_str_radix(hex, 16).ok()?;
            if kept(v) {
                return None;
            }
            out.push(v);
            i += 3;
        } else if kept(b[i]) {
            out.push(b[i]);
            i += 1;
        } else {
            return None;
        }
    }
    Some(out)
}

/// The segment a shown name stands for when it is an escape (`None`: the name is itself).
fn unescape(name: &str) -> Option<Vec<u8>> {
    let seg = decode(name.strip_prefix(MARK)?)?;
    let escaped = unusable(&seg) || std::str::from_utf8(&seg).is_ok_and(|s| unescape(s).is_some());
    escaped.then_some(seg)
}

/// The name key segment `seg` is shown under, or why it cannot be shown.
pub fn name_of(seg: &[u8]) -> Result<Cow<'_, str>, &'static str> {
    let name = match std::str::from_utf8(seg) {
        Ok(s) if !unusable(seg) && unescape(s).is_none() => Cow::Borrowed(s),
        _ => Cow::Owned(encode(seg)),
    };
    if name.len() > NAME_MAX {
        return Err("a name longer than 1,024 bytes");
    }
    Ok(name)
}

/// Whether full key `key` has a `.` or `..` segment. HTTP clients resolve dot segments in
/// URLs, even percent-encoded ones (`dir/%2E%2E/x` goes out as `x`), so no request with such
/// a key in its URL reaches it.
pub fn has_dot_segment(key: &[u8]) -> bool {
    key.split(|&b| b == b'/').any(|s| s == b"." || s == b"..")
}

/// The key a mount key (names joined by `/`, a directory's ending in `/`) stands for, when a
/// name in it is an escape; `None` when the key is the mount key itself.
pub fn store_key(mount_key: &str) -> Option<Vec<u8>> {
    if !mount_key.contains(MARK) {
        return None;
    }
    let (body, dir) = match mount_key.strip_suffix('/') {
        Some(b) => (b, true),
        None => (mount_key, false),
    };
    let mut out = Vec::with_capacity(mount_key.len());
    let mut any = false;
    for (i, name) in body.split('/').enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        match unescape(name) {
            Some(seg) => {
                any = true;
                out.extend_from_slice(&seg);
            }
            None => out.extend_from_slice(name.as_bytes()),
        }
    }
    if dir {
        out.push(b'/');
    }
    any.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_documented_names() {
        assert_eq!(name_of(b"ok.txt").unwrap(), "ok.txt");
        assert_eq!(name_of(b"").unwrap(), "%%");
        assert_eq!(name_of(b".").unwrap(), "%%.");
        assert_eq!(name_of(b"..").unwrap(), "%%..");
        assert_eq!(name_of(b"nul\x00name.txt").unwrap(), "%%nul%00name.txt");
        assert_eq!(name_of(b"ctl\x01\r\nname").unwrap(), "ctl\x01\r\nname");
        assert_eq!(name_of(b"bad\xff").unwrap(), "%%bad%FF");
        assert_eq!(name_of(b"100%.txt").unwrap(), "100%.txt");
        assert_eq!(
            name_of(b"%%plain").unwrap(),
            "%%plain",
            "not an escape: itself"
        );
        assert_eq!(
            name_of(b"%%x%00").unwrap(),
            "%%%25%25x%2500",
            "looks like an escape: escaped once more"
        );
        assert_eq!(
            name_of(b"%%x%01").unwrap(),
            "%%x%01",
            "no escape stands for it"
        );
        assert!(name_of(&[b'L'; 1025]).is_err());
        assert!(
            name_of(&[b'L'; 1024]).is_ok(),
            "the mount's name_max decides below that"
        );
        assert!(has_dot_segment(b"a/../b") && has_dot_segment(b"..") && has_dot_segment(b"a/./b"));
        assert!(!has_dot_segment(b"a/..b/c.") && !has_dot_segment(b"a//b"));
        assert!(name_of(&[0u8; 400]).is_err(), "1,202 bytes once escaped");
        assert_eq!(store_key("dir/ok.txt"), None);
        assert_eq!(store_key("dir/%%plain"), None);
        // Found by cargo fuzz: `%+1` is no escape (from_str_radix takes a sign).
        assert_eq!(store_key("d/%%1%+1J"), None);
        assert_eq!(name_of(b"%%1%+1J").unwrap(), "%%1%+1J");
        assert_eq!(store_key("dir/%%../x").unwrap(), b"dir/../x");
        assert_eq!(store_key("a/%%/b/").unwrap(), b"a//b/");
    }

    proptest! {
        #![proptest_config(crate::fuzz::config())]

        /// Every key segment shown is a valid name that leads back to it.
        #[test]
        fn fuzz_escaping_is_reversible(seg in proptest::collection::vec(any::<u8>(), 0..40)) {
            let seg: Vec<u8> = seg.into_iter().map(|b| if b == b'/' { b'%' } else { b }).collect();
            if let Ok(name) = name_of(&seg) {
                prop_assert!(!unusable(name.as_bytes()));
                prop_assert!(!name.contains('/'));
                let key = format!("d/{name}");
                let back = store_key(&key).unwrap_or_else(|| key.clone().into_bytes());
                prop_assert_eq!(&back[2..], &seg[..]);
            }
        }

        /// Any name a program makes stands for one key, and that key is shown as the name.
        #[test]
        fn fuzz_any_name_round_trips(name in "[%a-z.0-9A-F+ -]{0,12}") {
            // Names a program can make: not empty, `.` or `..`.
            let name = if unusable(name.as_bytes()) { format!("x{name}") } else { name };
            let key = format!("d/{name}");
            let seg = store_key(&key).unwrap_or_else(|| key.clone().into_bytes());
            prop_assert_eq!(name_of(&seg[2..]).unwrap(), name);
        }
    }
}

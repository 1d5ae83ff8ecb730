//! Identifiers and secrets: file ids shaped like Drive's, tokens, upload session ids.
//!
//! Nothing here needs to be cryptographically random; it needs to be unique within one
//! process and not obviously sequential, so that a client cannot accidentally rely on the
//! order or shape of ids. Uniqueness comes from a global counter run through a bijective mix
//! (splitmix64), so two calls never return the same value.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The 64 characters Drive uses in ids (URL-safe base64 alphabet).
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A per-process seed so that ids differ between runs.
fn seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        mix(t ^ (u64::from(std::process::id()) << 32))
    })
}

/// splitmix64's finaliser: a bijection on u64.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `len` characters of the id alphabet; the first 11 encode a unique 64-bit value.
pub(crate) fn unique(len: usize) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let unique = mix(n ^ seed());
    let mut out = String::with_capacity(len);
    let mut word = unique;
    let mut filler = mix(unique ^ 0x5851_F42D_4C95_7F2D);
    for i in 0..len {
        let bits = if i < 11 {
            let b = word & 63;
            word >>= 6;
            b
        } else {
            if i % 10 == 1 {
                filler = mix(filler);
            }
            let b = filler & 63;
            filler >>= 6;
            b
        };
        out.push(ALPHABET[bits as usize] as char);
    }
    out
}

/// A new file id: 28 characters of `[A-Za-z0-9_-]` starting with `1`, shaped like Drive's.
pub(crate) fn file_id() -> String {
    format!("1{}", unique(27))
}

/// A new shared drive id: 19 characters starting with `0A`, like Drive's.
pub(crate) fn drive_id() -> String {
    format!("0A{}", unique(17))
}

/// A new head revision id.
pub(crate) fn revision_id() -> String {
    format!("0B{}", unique(40))
}

/// An opaque secret with a recognisable prefix (`ya29.` access tokens, `1//` refresh tokens).
pub(crate) fn secret(prefix: &str) -> String {
    format!("{prefix}{}", unique(43))
}

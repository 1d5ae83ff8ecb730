//! Entry points of the cargo-fuzz targets in `fuzz/` (built only with the `fuzzing` feature,
//! on a nightly toolchain; docs/fuzzing.md). Each feeds one parser arbitrary input and panics
//! when a property the proptest target of the same parser checks does not hold, so libFuzzer
//! reports it as a crash.

use crate::config::MountConfig;

/// The first `\0`-separated part of `data` as text, and the rest.
fn split(data: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(data);
    match text.split_once('\0') {
        Some((a, b)) => (a.to_string(), b.to_string()),
        None => (text.into_owned(), String::new()),
    }
}

/// `-o` option lists: any input gives a config or an error.
pub fn option_list(data: &[u8]) {
    let mut c = MountConfig::default();
    let _ = crate::config::options::apply_option_list(&mut c, &String::from_utf8_lossy(data));
}

/// TOML config files: an error's line number is inside the file.
pub fn config_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut c = MountConfig::default();
    if let Err((Some(line), why)) = crate::config::file::apply_toml(&mut c, &text) {
        assert!(
            line >= 1 && line <= text.lines().count().max(1),
            "line {line} of a {}-line file: {why}",
            text.lines().count()
        );
    }
}

/// s3fs passwd files (text, `\0`, bucket) and AWS credentials files (text, `\0`, profile).
pub fn s3_credentials(data: &[u8]) {
    let (text, name) = split(data);
    let _ = crate::credentials::s3::parse_passwd(&text, &name);
    let _ = crate::credentials::s3::parse_profile(&text, &name);
}

/// blobfuse `connection.cfg` files.
pub fn connection_cfg(data: &[u8]) {
    let _ = crate::credentials::azure::parse_connection_cfg(&String::from_utf8_lossy(data));
}

/// SOURCE URLs: what parses prints back to the same source.
pub fn source_url(data: &[u8]) {
    let url = String::from_utf8_lossy(data);
    if let Ok(s) = crate::config::Source::parse(&url) {
        assert_eq!(crate::config::Source::parse(&s.to_string()), Ok(s));
    }
}

/// Key ↔ name escaping: every key segment shows as a usable name that leads back to it, and
/// every name stands for a key that shows as that name.
pub fn key_names(data: &[u8]) {
    use crate::backend::escaped::{name_of, store_key, unusable};
    let seg: Vec<u8> = data
        .iter()
        .map(|&b| if b == b'/' { b'%' } else { b })
        .collect();
    if let Ok(name) = name_of(&seg) {
        assert!(
            !unusable(name.as_bytes()) && !name.contains('/'),
            "{name:?}"
        );
        let key = format!("d/{name}");
        let back = store_key(&key).unwrap_or_else(|| key.clone().into_bytes());
        assert_eq!(&back[2..], &seg[..]);
    }
    if let Ok(name) = std::str::from_utf8(&seg) {
        if !unusable(name.as_bytes()) {
            let key = format!("d/{name}");
            let real = store_key(&key).unwrap_or_else(|| key.clone().into_bytes());
            if let Ok(shown) = name_of(&real[2..]) {
                assert_eq!(shown, name);
            }
        }
    }
}

/// Journal records: what parses prints back to the same record.
pub fn journal_record(data: &[u8]) {
    use crate::write::journal::Record;
    if let Ok(r) = Record::parse(&String::from_utf8_lossy(data)) {
        assert_eq!(Record::parse(&r.to_text()), Ok(r));
    }
}

/// Block cache `.meta` files: no panic, and decode∘encode is the identity.
pub fn cache_meta(data: &[u8]) {
    use crate::read::block_cache::meta::Meta;
    if let Some(m) = Meta::decode(data) {
        assert_eq!(m.encode(), data);
    }
}

/// Block cache `.pieces` files: no panic, and what decodes is exactly the file's records.
pub fn cache_pieces(data: &[u8]) {
    crate::read::block_cache::pieces::fuzz_property(data);
}

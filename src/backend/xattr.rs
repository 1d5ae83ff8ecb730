//! Extended attributes as one metadata value, in the format s3fs uses (`x-amz-meta-xattr` on
//! S3, `x-ms-meta-xattr` on Azure), so that both tools read each other's: a JSON object from
//! each attribute's name to its value in base64, names in byte order and no spaces
//! (`{"user.a":"YmFy","user.b":"AP8Q"}`), percent-encoded as a whole so that it is a valid
//! header value. `/` stays as it is, as s3fs writes it; everything else outside `A-Z a-z 0-9
//! - _ . ~` is encoded. Reading decodes any percent-encoding.

use base64::Engine;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::collections::BTreeMap;

/// Attribute name → value.
pub type Xattrs = BTreeMap<String, Vec<u8>>;

/// What is percent-encoded: all but unreserved characters and `/`.
const ENCODED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// The metadata value holding `attrs`.
pub fn encode(attrs: &Xattrs) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let map: BTreeMap<&str, String> = attrs
        .iter()
        .map(|(k, v)| (k.as_str(), b64.encode(v)))
        .collect();
    // A map of strings always serializes.
    let json = serde_json::to_string(&map).unwrap_or_else(|_| "{}".into());
    utf8_percent_encode(&json, ENCODED).to_string()
}

/// The attributes in metadata value `value`; `None` when it is not in this format (then it is
/// left alone: never rewritten from a misreading).
pub fn decode(value: &str) -> Option<Xattrs> {
    let json = percent_decode_str(value.trim()).decode_utf8().ok()?;
    let map: BTreeMap<String, String> = serde_json::from_str(&json).ok()?;
    let b64 = base64::engine::general_purpose::STANDARD;
    map.into_iter()
        .map(|(k, v)| Some((k, b64.decode(v.as_bytes()).ok()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_what_s3fs_writes() {
        // Written by s3fs 1.90 (`setfattr -n user.foo -v bar`, `-n user.bin -v 0x00ff10`,
        // `setfacl -m u:1000:r`), as moto stored it.
        let s3fs = "%7B%22system.posix_acl_access%22%3A%22AgAAAAEABgD/////AgAEAOgDAAAEAAQA/////xAABAD/////IAAEAP////8%3D%22%2C%22user.bin%22%3A%22AP8Q%22%2C%22user.foo%22%3A%22YmFy%22%7D";
        let attrs = decode(s3fs).expect("s3fs's format");
        assert_eq!(attrs["user.foo"], b"bar");
        assert_eq!(attrs["user.bin"], vec![0, 0xff, 0x10]);
        assert_eq!(attrs["system.posix_acl_access"].len(), 44);
        assert_eq!(encode(&attrs), s3fs, "byte for byte what s3fs writes");
    }

    #[test]
    fn any_name_and_value_round_trips_and_junk_is_not_read() {
        let mut attrs = Xattrs::new();
        attrs.insert("user.q\"uo,te:s\\".into(), b"\n\0{}".to_vec());
        attrs.insert("user.empty".into(), vec![]);
        attrs.insert("user.é".into(), vec![0xff; 300]);
        let v = encode(&attrs);
        assert!(v.bytes().all(|b| b.is_ascii_graphic()), "{v}");
        assert_eq!(decode(&v), Some(attrs));
        assert_eq!(decode(&encode(&Xattrs::new())), Some(Xattrs::new()));
        for junk in ["", "%7B", "{\"a\":\"!!\"}", "[1]", "%ZZ"] {
            assert_eq!(decode(junk), None, "{junk:?}");
        }
    }
}

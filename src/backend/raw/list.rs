//! Listings object_store cannot make: its LIST fails a whole page on one key it cannot parse
//! as a path (`a//b`, `.` or `..` segments, control characters…). S3's ListObjectsV2 is sent
//! with `encoding-type=url`, so every key arrives percent-encoded (control characters and
//! invalid UTF-8 included) and is decoded here as bytes; [`usable_name`] then says which names
//! the mount can show.

use super::{xml_blocks, xml_text};
use std::time::SystemTime;

/// One object of a raw listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawObject {
    /// The full key, as bytes (it need not be UTF-8).
    pub key: Vec<u8>,
    /// Size in bytes.
    pub size: u64,
    /// Last modification.
    pub mtime: SystemTime,
    /// Entity tag, quotes included.
    pub etag: Option<String>,
}

/// One page of a raw delimited listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawPage {
    /// Objects directly under the prefix.
    pub objects: Vec<RawObject>,
    /// Common prefixes (full, ending in the delimiter), as bytes.
    pub prefixes: Vec<Vec<u8>>,
    /// The continuation token of the next page.
    pub next_token: Option<String>,
}

/// `%XX` and `+` decoded (S3's `encoding-type=url`).
pub fn url_decode(s: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(&s.replace('+', " ")).collect()
}

/// A ListObjectsV2 answer to a request with `encoding-type=url`: keys are decoded when the
/// server says it encoded them (`<EncodingType>url</EncodingType>`), taken as they are when it
/// did not (a server that ignores the parameter).
pub fn parse_list_v2(xml: &str) -> RawPage {
    let encoded = xml_text(xml, "EncodingType").is_some_and(|e| e.trim() == "url");
    let url_decode = |s: &str| {
        if encoded {
            url_decode(s)
        } else {
            s.as_bytes().to_vec()
        }
    };
    let objects = xml_blocks(xml, "Contents")
        .into_iter()
        .filter_map(|c| {
            Some(RawObject {
                key: url_decode(&xml_text(c, "Key")?),
                size: xml_text(c, "Size")?.trim().parse().ok()?,
                mtime: xml_text(c, "LastModified")
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t.trim()).ok())
                    .map_or(SystemTime::UNIX_EPOCH, |t| {
                        SystemTime::from(t.with_timezone(&chrono::Utc))
                    }),
                etag: xml_text(c, "ETag"),
            })
        })
        .collect();
    let prefixes = xml_blocks(xml, "CommonPrefixes")
        .into_iter()
        .filter_map(|p| xml_text(p, "Prefix").map(|p| url_decode(&p)))
        .collect();
    let truncated = xml_text(xml, "IsTruncated").as_deref() == Some("true");
    RawPage {
        objects,
        prefixes,
        next_token: xml_text(xml, "NextContinuationToken").filter(|_| truncated),
    }
}

/// The name in an Azure `<Name>` element: percent-decoded when the service encoded it
/// (`<Name Encoded="true">`, for characters XML cannot carry).
fn azure_name(block: &str) -> Option<Vec<u8>> {
    const ENCODED: &str = "<Name Encoded=\"true\">";
    if let Some(start) = block.find(ENCODED) {
        let rest = &block[start + ENCODED.len()..];
        let text = &rest[..rest.find("</Name>")?];
        return Some(percent_encoding::percent_decode_str(text).collect());
    }
    xml_text(block, "Name").map(String::into_bytes)
}

/// An Azure List Blobs answer (`delimiter=/`): blobs and blob prefixes, and the marker of
/// the next page.
pub fn parse_list_blobs(xml: &str) -> RawPage {
    let objects = xml_blocks(xml, "Blob")
        .into_iter()
        .filter_map(|b| {
            Some(RawObject {
                key: azure_name(b)?,
                size: xml_text(b, "Content-Length")?.trim().parse().ok()?,
                mtime: xml_text(b, "Last-Modified")
                    .and_then(|t| chrono::DateTime::parse_from_rfc2822(t.trim()).ok())
                    .map_or(SystemTime::UNIX_EPOCH, |t| {
                        SystemTime::from(t.with_timezone(&chrono::Utc))
                    }),
                etag: xml_text(b, "Etag"),
            })
        })
        .collect();
    let prefixes = xml_blocks(xml, "BlobPrefix")
        .into_iter()
        .filter_map(azure_name)
        .collect();
    RawPage {
        objects,
        prefixes,
        next_token: xml_text(xml, "NextMarker").filter(|m| !m.trim().is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_listings_decode_encoded_names() {
        let xml = "<?xml version=\"1.0\"?><EnumerationResults><Prefix>d/</Prefix><Blobs>\
            <Blob><Name>d/a//b</Name><Properties><Last-Modified>Thu, 03 Dec 2026 10:00:00 GMT</Last-Modified><Etag>0x8D1</Etag><Content-Length>3</Content-Length></Properties></Blob>\
            <Blob><Name Encoded=\"true\">d/ctl%01</Name><Properties><Content-Length>1</Content-Length></Properties></Blob>\
            <BlobPrefix><Name>d/sub/</Name></BlobPrefix></Blobs><NextMarker>m2</NextMarker></EnumerationResults>";
        let p = parse_list_blobs(xml);
        assert_eq!(p.objects.len(), 2);
        assert_eq!(p.objects[0].key, b"d/a//b");
        assert_eq!(p.objects[0].etag.as_deref(), Some("0x8D1"));
        assert_ne!(p.objects[0].mtime, SystemTime::UNIX_EPOCH);
        assert_eq!(p.objects[1].key, b"d/ctl\x01");
        assert_eq!(p.prefixes, [b"d/sub/".to_vec()]);
        assert_eq!(p.next_token.as_deref(), Some("m2"));
        let last =
            parse_list_blobs("<EnumerationResults><Blobs/><NextMarker /></EnumerationResults>");
        assert_eq!(last.next_token, None);
    }

    #[test]
    fn url_encoded_listings_decode_to_bytes() {
        let xml = "<ListBucketResult><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>\
            <Contents><Key>dir/a%2F%2Fb</Key><Size>3</Size><LastModified>2026-12-03T10:00:00.000Z</LastModified><ETag>&quot;e&quot;</ETag></Contents>\
            <Contents><Key>dir/bad%FF+x</Key><Size>1</Size></Contents>\
            <CommonPrefixes><Prefix>dir/sub%01/</Prefix></CommonPrefixes>\
            <NextContinuationToken>tok</NextContinuationToken></ListBucketResult>";
        let p = parse_list_v2(xml);
        assert_eq!(p.objects[0].key, b"dir/a//b");
        assert_eq!(p.objects[0].etag.as_deref(), Some("\"e\""));
        assert_eq!(p.objects[1].key, b"dir/bad\xff x");
        assert_eq!(p.prefixes, [b"dir/sub\x01/".to_vec()]);
        assert_eq!(p.next_token.as_deref(), Some("tok"));
        let plain = parse_list_v2("<R><Contents><Key>a+b%20c</Key><Size>1</Size></Contents></R>");
        assert_eq!(
            plain.objects[0].key, b"a+b%20c",
            "not encoded: taken as it is"
        );
    }
}

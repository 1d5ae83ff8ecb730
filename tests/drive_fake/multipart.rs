//! `multipart/related` bodies of `uploadType=multipart`: a JSON metadata part and a media part.
//!
//! The body is parsed as bytes, so the media part is binary-safe. Drive expects exactly two
//! parts; the media part is found by searching for the closing delimiter from the end, so a
//! large upload costs no scan of its content. A media part sent with
//! `Content-Transfer-Encoding: base64` is decoded, as Drive does.

use super::http::ApiError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;

/// The two parts of a multipart upload.
pub(crate) struct Multipart {
    pub metadata: Bytes,
    pub media: Bytes,
    /// The media part's Content-Type.
    pub media_type: Option<String>,
}

/// The boundary of a `multipart/related; boundary=…` Content-Type (quoted or not).
pub(crate) fn boundary(content_type: &str) -> Option<String> {
    let mut parts = content_type.split(';');
    let kind = parts.next()?.trim().to_ascii_lowercase();
    if kind != "multipart/related" && kind != "multipart/mixed" {
        return None;
    }
    parts
        .find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("boundary")
                .then(|| v.trim().trim_matches('"').to_string())
        })
        .filter(|b| !b.is_empty())
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (from..=hay.len() - needle.len())
        .find(|&i| hay[i] == needle[0] && &hay[i..i + needle.len()] == needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (0..=hay.len() - needle.len())
        .rev()
        .find(|&i| hay[i] == needle[0] && &hay[i..i + needle.len()] == needle)
}

/// Splits a part (starting right after its delimiter line) into headers and the offset of
/// its body.
fn headers(body: &[u8], start: usize) -> Result<(Vec<(String, String)>, usize), ApiError> {
    let bad = || ApiError::bad_request("Malformed multipart body.");
    // A part without headers starts with the empty line.
    if body[start..].starts_with(b"\r\n") {
        return Ok((Vec::new(), start + 2));
    }
    if body[start..].starts_with(b"\n") {
        return Ok((Vec::new(), start + 1));
    }
    let (end, sep) = match (find(body, b"\r\n\r\n", start), find(body, b"\n\n", start)) {
        (Some(a), Some(b)) if b < a => (b, 2),
        (Some(a), _) => (a, 4),
        (None, Some(b)) => (b, 2),
        (None, None) => return Err(bad()),
    };
    let text = String::from_utf8_lossy(&body[start..end]);
    let hs = text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok((hs, end + sep))
}

/// Skips the rest of a delimiter line (transport padding and the line break).
fn after_line(body: &[u8], mut i: usize) -> usize {
    while i < body.len() && (body[i] == b' ' || body[i] == b'\t') {
        i += 1;
    }
    if body.get(i) == Some(&b'\r') {
        i += 1;
    }
    if body.get(i) == Some(&b'\n') {
        i += 1;
    }
    i
}

/// Parses a two-part `multipart/related` body.
pub(crate) fn parse(body: &Bytes, boundary: &str) -> Result<Multipart, ApiError> {
    let bad = || ApiError::bad_request("Malformed multipart body.");
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    // The first delimiter: at the very start or after a line break (preamble allowed).
    let first = if body.starts_with(delim) {
        0
    } else {
        find(body, &[b"\n", delim].concat(), 0).ok_or_else(bad)? + 1
    };
    let (_, meta_start) = headers(body, after_line(body, first + delim.len()))?;
    // The metadata part ends at the next delimiter.
    let second = find(body, &[b"\n", delim].concat(), meta_start).ok_or_else(bad)?;
    let meta_end = if second > meta_start && body[second - 1] == b'\r' {
        second - 1
    } else {
        second
    };
    let metadata = body.slice(meta_start..meta_end.max(meta_start));
    let second = second + 1;
    let (media_headers, media_start) = headers(body, after_line(body, second + delim.len()))?;
    // The media part ends at the closing delimiter, found from the end.
    let closing = [b"\n", delim, b"--"].concat();
    let close = rfind(body, &closing)
        .filter(|&c| c + 1 >= media_start)
        .ok_or_else(bad)?;
    let media_end = if close > media_start && body[close - 1] == b'\r' {
        close - 1
    } else {
        close
    };
    let mut media = body.slice(media_start..media_end.max(media_start));
    let header = |name: &str| {
        media_headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    if header("content-transfer-encoding").is_some_and(|e| e.eq_ignore_ascii_case("base64")) {
        let compact: Vec<u8> = media
            .iter()
            .copied()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        media = Bytes::from(STANDARD.decode(compact).map_err(|_| bad())?);
    }
    Ok(Multipart {
        metadata,
        media,
        media_type: header("content-type"),
    })
}

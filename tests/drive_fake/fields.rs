//! Partial responses: the `fields` parameter.
//!
//! Syntax as Google documents it: a comma list of field names, `a/b` to select inside an
//! object, `a(b,c)` for a sub-selection (applied to each element of an array), `*` for
//! everything at that level. Field names are checked against the resource, so a misspelled
//! field is a 400 `Invalid field selection X`, as on Drive. Without `fields`, each method
//! answers with Drive's default set, which for files is only `kind,id,name,mimeType` (plus
//! `driveId`/`resourceKey` when present): a client that forgets `fields` notices.

use super::http::{ApiError, Params};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A selection: everything, or some named members each with its own selection.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Sel {
    All,
    Some(BTreeMap<String, Sel>),
}

/// Default selection of files.get, files.create, files.update, files.copy.
pub(crate) const FILE_DEFAULT: &str = "kind,id,name,mimeType,driveId,resourceKey";
/// Default selection of files.list.
pub(crate) const LIST_DEFAULT: &str =
    "kind,incompleteSearch,nextPageToken,files(kind,id,name,mimeType,driveId,resourceKey)";
/// Default selection of changes.list.
pub(crate) const CHANGES_DEFAULT: &str = "kind,nextPageToken,newStartPageToken,changes(kind,changeType,time,removed,fileId,driveId,file(kind,id,name,mimeType,driveId,resourceKey))";

/// Every field of Drive v3's File resource (valid in a selection even when the fake never
/// fills them).
const FILE_FIELDS: &[&str] = &[
    "kind",
    "driveId",
    "fileExtension",
    "copyRequiresWriterPermission",
    "md5Checksum",
    "contentHints",
    "writersCanShare",
    "viewedByMe",
    "mimeType",
    "exportLinks",
    "parents",
    "thumbnailLink",
    "iconLink",
    "shared",
    "lastModifyingUser",
    "owners",
    "headRevisionId",
    "sharingUser",
    "webViewLink",
    "webContentLink",
    "size",
    "viewersCanCopyContent",
    "permissions",
    "hasThumbnail",
    "spaces",
    "folderColorRgb",
    "id",
    "name",
    "description",
    "starred",
    "trashed",
    "explicitlyTrashed",
    "createdTime",
    "modifiedTime",
    "modifiedByMeTime",
    "viewedByMeTime",
    "sharedWithMeTime",
    "quotaBytesUsed",
    "version",
    "originalFilename",
    "ownedByMe",
    "fullFileExtension",
    "properties",
    "appProperties",
    "isAppAuthorized",
    "teamDriveId",
    "capabilities",
    "hasAugmentedPermissions",
    "trashingUser",
    "thumbnailVersion",
    "trashedTime",
    "modifiedByMe",
    "permissionIds",
    "imageMediaMetadata",
    "videoMediaMetadata",
    "shortcutDetails",
    "contentRestrictions",
    "resourceKey",
    "linkShareMetadata",
    "labelInfo",
    "sha1Checksum",
    "sha256Checksum",
    "inheritedPermissionsDisabled",
    "downloadRestrictions",
];

/// What a selection applies to, for checking names.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Schema {
    File,
    FileList,
    Change,
    ChangeList,
    /// Not checked (about, nested objects).
    Open,
}

impl Schema {
    fn child(self, key: &str) -> Option<Schema> {
        match self {
            Schema::File => FILE_FIELDS.contains(&key).then_some(Schema::Open),
            Schema::FileList => match key {
                "kind" | "nextPageToken" | "incompleteSearch" => Some(Schema::Open),
                "files" => Some(Schema::File),
                _ => None,
            },
            Schema::ChangeList => match key {
                "kind" | "nextPageToken" | "newStartPageToken" => Some(Schema::Open),
                "changes" => Some(Schema::Change),
                _ => None,
            },
            Schema::Change => match key {
                "kind" | "changeType" | "time" | "removed" | "fileId" | "driveId" | "drive"
                | "teamDriveId" | "teamDrive" | "type" => Some(Schema::Open),
                "file" => Some(Schema::File),
                _ => None,
            },
            Schema::Open => Some(Schema::Open),
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.s.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }

    fn name(&mut self) -> Result<String, String> {
        self.skip_ws();
        let start = self.pos;
        while self
            .s
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_alphanumeric() || b"_*.-".contains(c))
        {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(String::from_utf8_lossy(&self.s[start..]).into_owned());
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
    }

    /// `list := item ("," item)*`, merged into `into`.
    fn list(&mut self, into: &mut BTreeMap<String, Sel>) -> Result<(), String> {
        loop {
            let mut path = vec![self.name()?];
            self.skip_ws();
            while self.s.get(self.pos) == Some(&b'/') {
                self.pos += 1;
                path.push(self.name()?);
                self.skip_ws();
            }
            let leaf = if self.s.get(self.pos) == Some(&b'(') {
                self.pos += 1;
                let mut sub = BTreeMap::new();
                self.list(&mut sub)?;
                self.skip_ws();
                if self.s.get(self.pos) != Some(&b')') {
                    return Err(path.join("/"));
                }
                self.pos += 1;
                Sel::Some(sub)
            } else {
                Sel::All
            };
            insert(into, &path, leaf);
            self.skip_ws();
            if self.s.get(self.pos) == Some(&b',') {
                self.pos += 1;
                continue;
            }
            return Ok(());
        }
    }
}

fn insert(into: &mut BTreeMap<String, Sel>, path: &[String], leaf: Sel) {
    let (first, rest) = match path.split_first() {
        Some(x) => x,
        None => return,
    };
    let sub = if rest.is_empty() {
        leaf
    } else {
        let mut m = BTreeMap::new();
        insert(&mut m, rest, leaf);
        Sel::Some(m)
    };
    match (into.get_mut(first), sub) {
        (Some(Sel::All), _) => {}
        (Some(Sel::Some(existing)), Sel::Some(new)) => {
            for (k, v) in new {
                insert(existing, &[k], v);
            }
        }
        (_, sub) => {
            into.insert(first.clone(), sub);
        }
    }
}

/// Parses a `fields` value; the error is the offending text.
pub(crate) fn parse(s: &str) -> Result<Sel, String> {
    let mut p = Parser {
        s: s.as_bytes(),
        pos: 0,
    };
    let mut m = BTreeMap::new();
    p.list(&mut m)?;
    p.skip_ws();
    if p.pos != p.s.len() {
        return Err(String::from_utf8_lossy(&p.s[p.pos..]).into_owned());
    }
    Ok(Sel::Some(m))
}

/// Checks names against `schema`; the error is the first unknown field's path.
pub(crate) fn validate(sel: &Sel, schema: Schema) -> Result<(), String> {
    let Sel::Some(m) = sel else {
        return Ok(());
    };
    for (k, sub) in m {
        if k == "*" {
            continue;
        }
        let child = schema.child(k).ok_or_else(|| k.clone())?;
        validate(sub, child).map_err(|e| format!("{k}/{e}"))?;
    }
    Ok(())
}

/// The selection a request asks for: its `fields`, or `default`. 400 on a bad selection.
pub(crate) fn select(params: &Params, default: &str, schema: Schema) -> Result<Sel, ApiError> {
    let spec = params.get("fields").unwrap_or(default);
    let bad = |f: String| {
        ApiError::new(
            400,
            "invalidParameter",
            format!("Invalid field selection {f}"),
        )
        .at("parameter", "fields")
    };
    let sel = parse(spec).map_err(bad)?;
    validate(&sel, schema).map_err(bad)?;
    Ok(sel)
}

/// Keeps only the selected members of `v` (selections apply to each element of arrays).
pub(crate) fn apply(v: &Value, sel: &Sel) -> Value {
    match (v, sel) {
        (_, Sel::All) => v.clone(),
        (Value::Array(items), s) => Value::Array(items.iter().map(|x| apply(x, s)).collect()),
        (Value::Object(_), Sel::Some(m)) if m.contains_key("*") => v.clone(),
        (Value::Object(o), Sel::Some(m)) => {
            let mut out = Map::new();
            for (k, s) in m {
                if let Some(x) = o.get(k) {
                    out.insert(k.clone(), apply(x, s));
                }
            }
            Value::Object(out)
        }
        _ => v.clone(),
    }
}

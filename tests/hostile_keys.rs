//! Keys other programs write that no filesystem name can carry as they are: `a//b`, `.` and
//! `..` segments, names over `name_max`, keys that are both a file and a prefix; and control
//! characters, which names may hold. The directory holding them lists, walks, reads, removes
//! and moves; unusable segments show escaped, and none of them reaches outside the mount.
//! Against moto, and Azurite (where keys no request can reach are hidden).

mod harness;
mod support;

use harness::{sh, MountCmd};

fn ok(cmd: &str) -> String {
    let (success, out, err) = sh(cmd);
    assert!(success, "`{cmd}` failed: {err}");
    out
}

fn sorted(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}

/// The object `key` as the server holds it (`None`: missing).
fn stored(s3: &support::S3Server, key: &str) -> Option<String> {
    let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
    let out = s3.boto(&format!(
        "import botocore\ntry:\n    print(c.get_object(Bucket='hostile', Key=bytes.fromhex('{hex}').decode())['Body'].read().decode(), end='')\nexcept botocore.exceptions.ClientError:\n    print('<missing>', end='')"
    ));
    (out != "<missing>").then_some(out)
}

#[test]
fn a_directory_with_every_kind_of_hostile_key_lists_reads_writes_removes_and_moves() {
    let s3 = support::S3Server::start_moto();
    s3.create_bucket("hostile");
    let long = "L".repeat(300);
    s3.boto(&format!(
        "for k in ['dir/ok.txt', 'dir/a//b.txt', 'dir/./dot.txt', 'dir/../escape.txt', \
             'dir/../../etc/passwd', '..', 'dir/..', 'dir/ctl\\x01name.txt', 'dir/{long}', \
             'dir/both', 'dir/both/inner.txt', 'dir/trail/', 'dir/sub/deep.txt', \
             'dir/%%', 'mv/a//b.txt', 'mv/ctl\\x02.txt', 'mv/plain.txt']:\n    \
             c.put_object(Bucket='hostile', Key=k, Body=b'content of ' + k.encode())"
    ));
    let m = MountCmd::s3(&s3, "hostile", &[]).mount();
    let mnt = m.path.display().to_string();
    let (_, listed, err) = sh(&format!("ls -A {mnt}/dir"));
    assert!(err.is_empty(), "ls failed: {err}\nlog:\n{}", m.log_text());
    let listed = sorted(&listed);
    // Every key shows, unusable names escaped (`%%` + the name with odd bytes as %XX); a
    // name that looks like an escape is escaped once more; `..` is both a file and a prefix;
    // control characters are fine in names.
    for want in [
        "ok.txt",
        "a",
        "%%.",
        "%%..",
        "%%...file",
        "ctl\u{1}name.txt",
        "both",
        "both.file",
        "trail",
        "sub",
        "%%%25%25",
    ] {
        assert!(
            listed.contains(&want.to_string()),
            "{want:?} not in {listed:?}"
        );
    }
    // Only the name longer than name_max (255 by default) is not listed.
    assert!(!listed.iter().any(|n| n.len() > 255), "{listed:?}");
    assert_eq!(listed.len(), 11, "{listed:?}");
    let root = sorted(&ok(&format!("ls -A {mnt}")));
    assert_eq!(root, ["%%..", "dir", "mv"], "log:\n{}", m.log_text());
    // find walks the whole tree without an error, and nothing leads outside the mount.
    let found = sorted(&ok(&format!("cd {mnt} && find . -type f")));
    for want in [
        "./dir/ok.txt",
        "./dir/sub/deep.txt",
        "./dir/a/%%/b.txt",
        "./dir/%%../escape.txt",
        "./dir/%%../%%../etc/passwd",
    ] {
        assert!(found.contains(&want.to_string()), "{want} not in {found:?}");
    }
    // Reads reach the right key.
    assert_eq!(
        ok(&format!("cat {mnt}/dir/ok.txt")),
        "content of dir/ok.txt"
    );
    assert_eq!(
        ok(&format!("cat {mnt}/dir/both.file")),
        "content of dir/both"
    );
    assert_eq!(
        ok(&format!("cat '{mnt}/dir/a/%%/b.txt'")),
        "content of dir/a//b.txt"
    );
    assert_eq!(
        ok(&format!("cat '{mnt}/dir/ctl\u{1}name.txt'")),
        "content of dir/ctl\u{1}name.txt"
    );
    assert_eq!(
        ok(&format!("cat '{mnt}/dir/%%%25%25'")),
        "content of dir/%%"
    );
    // A key with a dot segment reaches its own object (its URL path goes out as written),
    // never the key its dots would resolve to.
    assert_eq!(
        ok(&format!("cat '{mnt}/dir/%%../escape.txt'")),
        "content of dir/../escape.txt"
    );
    assert_eq!(
        ok(&format!("cat '{mnt}/dir/%%../%%../etc/passwd'")),
        "content of dir/../../etc/passwd"
    );
    assert_eq!(ok(&format!("cat '{mnt}/%%..'")), "content of ..");
    ok(&format!("printf dots > '{mnt}/dir/%%./dot.txt'"));
    assert_eq!(stored(&s3, "dir/./dot.txt").as_deref(), Some("dots"));
    // Writes reach the right key.
    ok(&format!("printf new > '{mnt}/dir/ctl\u{1}name.txt'"));
    assert_eq!(stored(&s3, "dir/ctl\x01name.txt").as_deref(), Some("new"));
    ok(&format!("printf made > '{mnt}/dir/a/%%/c.txt'"));
    assert_eq!(stored(&s3, "dir/a//c.txt").as_deref(), Some("made"));
    // rm and mv of single entries.
    ok(&format!("rm {mnt}/dir/ok.txt '{mnt}/dir/a/%%/b.txt'"));
    assert_eq!(stored(&s3, "dir/a//b.txt"), None);
    ok(&format!(
        "mv '{mnt}/dir/ctl\u{1}name.txt' {mnt}/dir/renamed.txt"
    ));
    assert_eq!(stored(&s3, "dir/renamed.txt").as_deref(), Some("new"));
    assert_eq!(stored(&s3, "dir/ctl\x01name.txt"), None);
    // mv of a directory holding escaped names moves every key.
    ok(&format!("mv {mnt}/mv {mnt}/moved"));
    assert_eq!(
        stored(&s3, "moved/a//b.txt").as_deref(),
        Some("content of mv/a//b.txt")
    );
    assert_eq!(
        stored(&s3, "moved/ctl\x02.txt").as_deref(),
        Some("content of mv/ctl\x02.txt")
    );
    assert_eq!(stored(&s3, "mv/a//b.txt"), None);
    assert_eq!(
        ok(&format!("cat '{mnt}/moved/ctl\u{2}.txt'")),
        "content of mv/ctl\u{2}.txt"
    );
    // mv of the directory moves every key, dot segments and the long name included.
    ok(&format!("mv {mnt}/dir {mnt}/dir2"));
    assert_eq!(
        stored(&s3, "dir2/../escape.txt").as_deref(),
        Some("content of dir/../escape.txt")
    );
    assert_eq!(
        stored(&s3, "dir2/sub/deep.txt").as_deref(),
        Some("content of dir/sub/deep.txt")
    );
    assert_eq!(
        stored(&s3, &format!("dir2/{long}")).as_deref(),
        Some(format!("content of dir/{long}").as_str())
    );
    assert_eq!(stored(&s3, "dir/../escape.txt"), None);
    assert_eq!(
        stored(&s3, "escape.txt"),
        None,
        "nothing reached the resolved key"
    );
    // rm -r removes every entry it sees, dot-segment keys included; the name longer than
    // name_max is not seen, so the directory stays with it.
    let (_, _, err) = sh(&format!("rm -rf {mnt}/dir2"));
    assert!(err.contains("not empty"), "{err}");
    let left = s3.boto(
        "print(sorted(o['Key'] for o in c.list_objects_v2(Bucket='hostile').get('Contents', [])))",
    );
    assert_eq!(
        left.trim(),
        format!("['..', 'dir2/{long}', 'moved/a//b.txt', 'moved/ctl\\x02.txt', 'moved/plain.txt']"),
        "rm -r: {err}\nlog:\n{}",
        m.log_text()
    );
    drop(m);
    // With name_max=1024 the long name shows, reads and goes.
    let m = MountCmd::s3(&s3, "hostile", &["name_max=1024"]).mount();
    let names: Vec<String> = std::fs::read_dir(m.p("dir2"))
        .expect("list dir2")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, std::slice::from_ref(&long));
    assert_eq!(
        std::fs::read(m.p(&format!("dir2/{long}"))).expect("a 300-byte name"),
        format!("content of dir/{long}").into_bytes()
    );
    std::fs::remove_dir_all(m.p("dir2")).expect("rm -r with the long name seen");
}

#[test]
fn an_azure_directory_with_hostile_blob_names_lists_and_serves_the_rest() {
    let az = support::Azurite::start();
    az.create_container("hostile");
    let long = "L".repeat(300);
    let names = [
        "dir/ok.txt".to_string(),
        "dir/a//b.txt".into(),
        // (Azurite answers 500 to any listing that would hold a control character.)
        format!("dir/{long}"),
        "dir/both".into(),
        "dir/both/inner.txt".into(),
        "dir/sub/deep.txt".into(),
    ];
    let mut stored = Vec::new();
    for n in &names {
        // Azure refuses some names itself; the ones it stores must not break the listing.
        if std::panic::catch_unwind(|| az.put_raw_blob("hostile", n, b"blob")).is_ok() {
            stored.push(n.clone());
        }
    }
    assert!(stored.iter().any(|n| n == "dir/a//b.txt"), "{stored:?}");
    let endpoint = format!("endpoint={}", az.blob_endpoint);
    let m = harness::MountCmd::new("az://hostile", &[&endpoint])
        .env("AZURE_STORAGE_ACCOUNT", &az.account)
        .env("AZURE_STORAGE_ACCESS_KEY", &az.key)
        .mount();
    let mnt = m.path.display().to_string();
    let (_, listed, err) = sh(&format!("ls -A {mnt}/dir"));
    assert!(err.is_empty(), "ls failed: {err}\nlog:\n{}", m.log_text());
    let listed = sorted(&listed);
    for want in ["ok.txt", "both", "both.file", "sub"] {
        assert!(
            listed.contains(&want.to_string()),
            "{want} not in {listed:?}"
        );
    }
    // No request here can reach an escaped key, so those are hidden (one log line each).
    assert!(
        !listed.iter().any(|n| n.starts_with("%%") || n.len() > 255),
        "{listed:?}"
    );
    let found = sorted(&ok(&format!("cd {mnt} && find . -type f")));
    assert!(m.log_text().contains("hidden"), "{}", m.log_text());
    assert!(
        found.contains(&"./dir/sub/deep.txt".to_string()),
        "{found:?}"
    );
    assert_eq!(ok(&format!("cat {mnt}/dir/ok.txt")), "blob");
    ok(&format!(
        "mv {mnt}/dir/sub {mnt}/moved && rm {mnt}/dir/ok.txt"
    ));
    assert_eq!(ok(&format!("cat {mnt}/moved/deep.txt")), "blob");
}

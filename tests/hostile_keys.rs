//! Keys other programs write that no filesystem name can carry: `a//b`, `.` and `..`
//! segments, control characters, names over 255 bytes, keys that are both a file and a prefix.
//! The directory holding them lists, walks, reads, removes and moves; the unusable keys are
//! hidden (one log line each), and none of them reaches outside the mount. Against moto.

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

#[test]
fn a_directory_with_every_kind_of_hostile_key_lists_reads_removes_and_moves() {
    let s3 = support::S3Server::start_moto();
    s3.create_bucket("hostile");
    let long = "L".repeat(300);
    s3.boto(&format!(
        "for k in ['dir/ok.txt', 'dir/a//b.txt', 'dir/./dot.txt', 'dir/../escape.txt', \
             'dir/../../etc/passwd', '..', 'dir/..', 'dir/ctl\\x01name.txt', 'dir/{long}', \
             'dir/both', 'dir/both/inner.txt', 'dir/trail/', 'dir/sub/deep.txt']:\n    \
             c.put_object(Bucket='hostile', Key=k, Body=b'content of ' + k.encode())"
    ));
    let m = MountCmd::s3(&s3, "hostile", &[]).mount();
    let mnt = m.path.display().to_string();
    let (_, listed, err) = sh(&format!("ls -A {mnt}/dir"));
    assert!(err.is_empty(), "ls failed: {err}\nlog:\n{}", m.log_text());
    let listed = sorted(&listed);
    assert!(listed.contains(&"ok.txt".to_string()), "{listed:?}");
    assert!(
        listed.contains(&"both".to_string()) && listed.contains(&"both.file".to_string()),
        "{listed:?}"
    );
    assert!(
        listed.contains(&"sub".to_string()) && listed.contains(&"trail".to_string()),
        "{listed:?}"
    );
    // `dir/a//b.txt` makes `a` a directory whose only entry (the empty name) is hidden.
    for bad in ["..", ".", "ctl\u{1}name.txt", "dot.txt"] {
        assert!(
            !listed.contains(&bad.to_string()),
            "{bad:?} listed: {listed:?}"
        );
    }
    assert!(!listed.iter().any(|n| n.len() > 255));
    // The root lists too, and never shows `..` as an entry of its own.
    let root = sorted(&ok(&format!("ls -A {mnt}")));
    assert_eq!(root, ["dir"], "log:\n{}", m.log_text());
    // find walks the whole tree without an error.
    let found = sorted(&ok(&format!("cd {mnt} && find . -type f")));
    assert!(
        found.contains(&"./dir/ok.txt".to_string())
            && found.contains(&"./dir/sub/deep.txt".to_string()),
        "{found:?}"
    );
    assert!(
        !found
            .iter()
            .any(|f| f.contains("passwd") || f.contains("escape")),
        "{found:?}"
    );
    assert_eq!(
        ok(&format!("cat {mnt}/dir/ok.txt")),
        "content of dir/ok.txt"
    );
    assert_eq!(
        ok(&format!("cat {mnt}/dir/both.file")),
        "content of dir/both"
    );
    ok(&format!("rm {mnt}/dir/ok.txt"));
    ok(&format!("mv {mnt}/dir/sub {mnt}/moved"));
    assert_eq!(
        ok(&format!("cat {mnt}/moved/deep.txt")),
        "content of dir/sub/deep.txt"
    );
    // Each hidden key was said once in the log.
    let log = m.log_text();
    assert!(log.contains("hidden"), "{log}");
}

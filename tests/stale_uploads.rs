//! `abort_stale_uploads`: multipart uploads left unfinished on S3 under the mounted prefix are
//! aborted at mount time once old enough; ones outside the prefix stay, and `0` aborts none.
//! Against moto, which reports every upload as started in 2010 (so age alone cannot be told
//! apart here: every upload is old enough).

mod harness;
mod support;

use harness::MountCmd;
use std::process::Command;
use std::time::Duration;

/// Run boto3 `script` against `s3` (the client is `c`); its stdout.
fn boto(s3: &support::S3Server, script: &str) -> String {
    let full = format!(
        "import boto3, sys\nc = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', \
         aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])\n{script}"
    );
    let out = Command::new("python3")
        .args(["-c", &full, &s3.endpoint, &s3.access_key, &s3.secret_key])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pending_keys(s3: &support::S3Server) -> Vec<String> {
    let out = boto(
        s3,
        "r = c.list_multipart_uploads(Bucket='stale')\nprint('\\n'.join(sorted(u['Key'] for u in r.get('Uploads', []))))",
    );
    out.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn unfinished_uploads_under_the_prefix_are_aborted_once_old_enough() {
    let s3 = support::S3Server::start_moto();
    s3.create_bucket("stale");
    boto(
        &s3,
        "for k in ['data/old.bin', 'data/sub/odd &<key>.bin', 'other/keep.bin']:\n    c.create_multipart_upload(Bucket='stale', Key=k)",
    );
    assert_eq!(pending_keys(&s3).len(), 3);
    // 0: never.
    let m = MountCmd::s3(&s3, "stale/data", &["abort_stale_uploads=0"]).mount();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(pending_keys(&s3).len(), 3, "log:\n{}", m.log_text());
    drop(m);
    let m = MountCmd::s3(&s3, "stale/data", &["abort_stale_uploads=1h"]).mount();
    let done = support::wait_until(Duration::from_secs(20), || {
        pending_keys(&s3) == ["other/keep.bin"]
    });
    assert!(
        done,
        "left: {:?}; log:\n{}",
        pending_keys(&s3),
        m.log_text()
    );
    assert!(m.log_text().contains("aborted"), "{}", m.log_text());
}

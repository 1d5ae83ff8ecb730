//! `abort_stale_uploads`: multipart uploads left unfinished on S3 under the mounted prefix are
//! aborted at mount time once old enough; ones outside the prefix stay, and `0` aborts none.
//! Against moto, which reports every upload as started in 2010 (so age alone cannot be told
//! apart here: every upload is old enough).

mod harness;
mod support;

use harness::MountCmd;
use std::time::Duration;

fn pending_keys(s3: &support::S3Server) -> Vec<String> {
    let out = s3.boto(
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
    s3.boto(
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

//! One slow GET must not block `ls` of another directory of the same mount.

mod harness;
mod support;

use bytes::Bytes;
use harness::MountCmd;
use std::time::Duration;
use support::{DelayProxy, S3Server};

#[test]
fn slow_read_does_not_block_listing_elsewhere() {
    let s3 = S3Server::start_moto();
    s3.create_bucket("conc");
    s3.put_objects(
        "conc",
        vec![
            ("slow/slow.bin".into(), Bytes::from(vec![1u8; 1 << 20])),
            ("other/x.txt".into(), Bytes::from_static(b"x")),
            ("other/y.txt".into(), Bytes::from_static(b"y")),
        ],
    );
    // Only the data GET of slow.bin waits; HEAD and LIST requests pass at once.
    let proxy = DelayProxy::start(
        &format!("127.0.0.1:{}", s3.port),
        "GET /conc/slow/slow.bin",
        Duration::from_secs(6),
    );
    let ep = format!("endpoint={}", proxy.endpoint());
    let m = MountCmd::new("s3://conc", &[&ep])
        .env("AWS_ACCESS_KEY_ID", &s3.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &s3.secret_key)
        .mount();

    let slow_path = m.p("slow/slow.bin");
    let reader = std::thread::spawn(move || std::fs::read(slow_path).map(|d| d.len()));
    assert!(
        support::wait_until(Duration::from_secs(5), || proxy.delayed_count() > 0),
        "the slow GET never started"
    );

    let names: Vec<String> = std::fs::read_dir(m.p("other"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2);
    assert_eq!(std::fs::read_to_string(m.p("other/x.txt")).unwrap(), "x");
    assert!(
        !reader.is_finished(),
        "ls answered while the slow read was still held up"
    );
    assert_eq!(
        reader.join().unwrap().unwrap(),
        1 << 20,
        "the slow read completes afterwards"
    );
}

//! Changes made outside the mount, through a real mount against moto: an open after the object
//! changed reads the new version (never "Stale file handle"), `ESTALE` is kept for a change
//! while the file is open, and a name created elsewhere shows once `negative_timeout` passed,
//! also in a directory whose listing is cached.

mod harness;
mod support;

use harness::MountCmd;
use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

fn put(s3: &support::S3Server, key: &str, byte: u8, len: usize) {
    s3.boto(&format!(
        "c.put_object(Bucket='fresh', Key='{key}', Body=bytes([{byte}]) * {len})"
    ));
}

#[test]
fn opens_see_changes_made_elsewhere_and_estale_is_only_for_changes_while_open() {
    let s3 = support::S3Server::start_moto();
    s3.create_bucket("fresh");
    put(&s3, "never-read.bin", 1, 4096);
    put(&s3, "read.bin", 1, 4096);
    put(&s3, "open.bin", 1, 12 << 20);
    let m = MountCmd::s3(&s3, "fresh", &["attr_timeout=1", "negative_timeout=1"]).mount();

    // Known (stat) but never read: changed elsewhere, the next open reads the new version
    // at once, within the attribute TTL (it answered "Stale file handle" before).
    assert_eq!(
        std::fs::metadata(m.p("never-read.bin")).unwrap().len(),
        4096
    );
    put(&s3, "never-read.bin", 2, 4096);
    let got = std::fs::read(m.p("never-read.bin")).expect("read after a change elsewhere");
    assert!(got.iter().all(|b| *b == 2), "the new version");

    // Read (the kernel keeps its pages), changed elsewhere: once the attribute TTL passed,
    // the open revalidates the ETag and the kernel drops the old pages.
    assert!(std::fs::read(m.p("read.bin"))
        .unwrap()
        .iter()
        .all(|b| *b == 1));
    put(&s3, "read.bin", 3, 4096);
    std::thread::sleep(Duration::from_millis(1300));
    let got = std::fs::read(m.p("read.bin")).unwrap();
    assert!(
        got.iter().all(|b| *b == 3),
        "the new version after attr_timeout"
    );

    // Changed while open, after the handle read from it: ESTALE for what is not in memory.
    let mut f = std::fs::File::open(m.p("open.bin")).unwrap();
    let mut buf = vec![0u8; 4096];
    f.read_exact(&mut buf).unwrap();
    put(&s3, "open.bin", 4, 12 << 20);
    f.seek(SeekFrom::Start(11 << 20)).unwrap();
    let e = f.read_exact(&mut buf).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ESTALE), "{e}");
    drop(f);
    let got = std::fs::read(m.p("open.bin")).expect("a new open reads the new version");
    assert!(got.iter().all(|b| *b == 4));

    // Created elsewhere: missing first (and remembered so), found once negative_timeout
    // passed although the directory's listing is cached.
    put(&s3, "dir/a", 5, 1);
    let names = || -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(m.p("dir"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(), vec!["a"]);
    assert!(!m.p("dir/b").exists());
    put(&s3, "dir/b", 6, 1);
    let found = support::wait_until(Duration::from_secs(5), || m.p("dir/b").exists());
    assert!(found, "dir/b shows once negative_timeout passed");
    assert_eq!(std::fs::read(m.p("dir/b")).unwrap(), vec![6]);
}

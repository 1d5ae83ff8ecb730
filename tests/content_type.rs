//! Content-Type from the file name, as s3fs sets it: uploads through the mount (small, and
//! multipart) are stored with the type `/etc/mime.types` gives their extension, unknown ones as
//! `application/octet-stream`, and a rename takes the type of the new name; `mime=off` sets
//! none; `mime=FILE` reads another table.
//! Against moto.

mod harness;
mod support;

use harness::{sh, MountCmd};

fn content_type(s3: &support::S3Server, key: &str) -> String {
    s3.boto(&format!(
        "print(c.head_object(Bucket='types', Key='{key}')['ContentType'], end='')"
    ))
}

fn write(m: &harness::Mounted, rel: &str, size: usize) {
    std::fs::write(m.p(rel), harness::pattern(size, 1)).unwrap_or_else(|e| panic!("{rel}: {e}"));
}

#[test]
fn uploads_take_their_content_type_from_the_file_name() {
    let s3 = support::S3Server::start_moto();
    s3.create_bucket("types");
    let m = MountCmd::s3(&s3, "types", &["upload_part_size=5M"]).mount();
    write(&m, "photo.JPG", 1000);
    write(&m, "notes.txt", 10);
    write(&m, "big.mp4", 12 << 20);
    write(&m, "Makefile", 10);
    write(&m, "data.nosuchext", 10);
    let (ok, _, err) = sh(&format!("echo more >> {0}/notes.txt", m.path.display()));
    assert!(ok, "{err}");
    write(&m, "moved.txt", 10);
    let (ok, _, err) = sh(&format!(
        "chmod 600 {0}/moved.txt && mv {0}/moved.txt {0}/moved.png",
        m.path.display()
    ));
    assert!(ok, "{err}");
    drop(m);
    // A rename takes the type of the new name, and keeps the file's mode.
    assert_eq!(content_type(&s3, "moved.png"), "image/png");
    let mode = s3.boto(
        "print(c.head_object(Bucket='types', Key='moved.png')['Metadata'].get('mode'), end='')",
    );
    assert_eq!(
        mode.parse::<u32>().ok().map(|m| m & 0o7777),
        Some(0o600),
        "{mode}"
    );
    assert_eq!(content_type(&s3, "photo.JPG"), "image/jpeg");
    assert_eq!(content_type(&s3, "notes.txt"), "text/plain");
    assert_eq!(
        content_type(&s3, "big.mp4"),
        "video/mp4",
        "multipart upload"
    );
    assert_eq!(content_type(&s3, "Makefile"), "application/octet-stream");
    assert_eq!(
        content_type(&s3, "data.nosuchext"),
        "application/octet-stream"
    );

    // Another table, and none.
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("types");
    std::fs::write(&table, "application/x-cloudmount-test  txt\n").unwrap();
    let opt = format!("mime={}", table.display());
    let m = MountCmd::s3(&s3, "types", &[&opt]).mount();
    write(&m, "other.txt", 10);
    drop(m);
    assert_eq!(
        content_type(&s3, "other.txt"),
        "application/x-cloudmount-test"
    );
    let m = MountCmd::s3(&s3, "types", &["mime=off"]).mount();
    write(&m, "plain.txt", 10);
    drop(m);
    assert_ne!(
        content_type(&s3, "plain.txt"),
        "text/plain",
        "mime=off sets none"
    );
}

#[test]
fn azure_blobs_get_the_type_of_their_name() {
    let az = support::Azurite::start();
    az.create_container("types");
    let endpoint = format!("endpoint={}", az.blob_endpoint);
    let m = MountCmd::new("az://types", &[&endpoint])
        .env("AZURE_STORAGE_ACCOUNT", &az.account)
        .env("AZURE_STORAGE_ACCESS_KEY", &az.key)
        .mount();
    write(&m, "photo.jpg", 100);
    write(&m, "notes.nosuchext", 100);
    drop(m);
    let store = az.store("types");
    let kind = |name: &'static str| {
        let store = store.clone();
        support::block_on(async move {
            use object_store::{Attribute, GetOptions};
            let opts = GetOptions {
                head: true,
                ..Default::default()
            };
            let got = store
                .get_opts(&object_store::path::Path::from(name), opts)
                .await
                .unwrap_or_else(|e| panic!("HEAD {name}: {e}"));
            got.attributes
                .get(&Attribute::ContentType)
                .map(|v| v.to_string())
        })
    };
    assert_eq!(kind("photo.jpg").as_deref(), Some("image/jpeg"));
    assert_eq!(
        kind("notes.nosuchext").as_deref(),
        Some("application/octet-stream")
    );
}

//! Writes through a real mount against Azurite: block blobs uploaded with Put Block and
//! Put Block List for large files, one Put Blob for small ones; renames and removals.

mod harness;
mod support;

use harness::{pattern, sh, MountCmd};
use object_store::path::Path as ObjPath;
use object_store::ObjectStoreExt;
use support::Azurite;

fn blob(az: &Azurite, container: &str, name: &str) -> Option<Vec<u8>> {
    let store = az.store(container);
    support::block_on(async move {
        let got = store.get(&ObjPath::from(name)).await.ok()?;
        Some(got.bytes().await.ok()?.to_vec())
    })
}

fn ok(cmd: &str) -> String {
    let (success, out, err) = sh(cmd);
    assert!(success, "`{cmd}` failed: {err}");
    out
}

#[test]
fn azure_writes_small_and_multipart_blobs_renames_and_removes() {
    let az = Azurite::start();
    az.create_container("wrt");
    let endpoint = format!("endpoint={}", az.blob_endpoint);
    let m = MountCmd::new("az://wrt", &[&endpoint, "upload_part_size=5M"])
        .env("AZURE_STORAGE_ACCOUNT", &az.account)
        .env("AZURE_STORAGE_ACCESS_KEY", &az.key)
        .mount();
    let mnt = m.path.display().to_string();

    ok(&format!("echo small > {mnt}/s.txt"));
    assert_eq!(blob(&az, "wrt", "s.txt").unwrap(), b"small\n");

    let local = tempfile::tempdir().unwrap();
    let data = pattern(23 << 20, 3);
    std::fs::write(local.path().join("big"), &data).unwrap();
    ok(&format!(
        "mkdir {mnt}/d && cp {}/big {mnt}/d/big",
        local.path().display()
    ));
    assert_eq!(
        support::md5_of_bytes(&blob(&az, "wrt", "d/big").unwrap()),
        support::md5_of_bytes(&data),
        "23 MiB in 5 MiB blocks"
    );
    // A 1-byte edit: one 5 MiB block sent, the other four copied (Put Block From URL).
    let mut data = data;
    let at = 12 << 20;
    let edit = format!("printf Q | dd of={mnt}/d/big bs=1 seek={at} conv=notrunc status=none");
    let (edited, _, err) = sh(&edit);
    assert!(edited, "{edit}: {err}\nlog:\n{}", m.log_text());
    data[at] = b'Q';
    assert_eq!(
        support::md5_of_bytes(&blob(&az, "wrt", "d/big").unwrap()),
        support::md5_of_bytes(&data),
        "edited in place"
    );
    let log = m.log_text();
    assert!(
        log.contains("uploaded the changed parts") && log.contains("sent=5242880"),
        "Put Block From URL used; log:\n{log}"
    );
    // An empty directory is a marker blob `m/`: it outlives the mount, and rmdir deletes it.
    ok(&format!("mkdir {mnt}/m"));
    drop(m);
    let remount = || {
        MountCmd::new("az://wrt", &[&endpoint, "upload_part_size=5M"])
            .env("AZURE_STORAGE_ACCOUNT", &az.account)
            .env("AZURE_STORAGE_ACCESS_KEY", &az.key)
            .mount()
    };
    let m = remount();
    let mnt = m.path.display().to_string();
    assert!(ok(&format!("ls {mnt}")).lines().any(|l| l == "m"), "kept");
    ok(&format!("rmdir {mnt}/m"));
    drop(m);
    let m = remount();
    let mnt = m.path.display().to_string();
    assert!(
        !ok(&format!("ls {mnt}")).lines().any(|l| l == "m"),
        "removed"
    );
    ok(&format!("mv {mnt}/d {mnt}/e && rm {mnt}/s.txt"));
    assert!(blob(&az, "wrt", "d/big").is_none() && blob(&az, "wrt", "s.txt").is_none());
    assert_eq!(
        support::md5_of_file(m.p("e/big")),
        support::md5_of_bytes(&data)
    );
}

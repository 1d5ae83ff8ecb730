//! Read path through a real mount against Azurite (Azure Blob) on loopback.

mod harness;
mod support;

use bytes::Bytes;
use harness::{sh, MountCmd};
use std::os::unix::fs::PermissionsExt;
use support::Azurite;

fn az_env(cmd: MountCmd, az: &Azurite) -> MountCmd {
    cmd.env("AZURE_STORAGE_ACCOUNT", &az.account)
        .env("AZURE_STORAGE_ACCESS_KEY", &az.key)
}

#[test]
fn azure_ls_stat_cat_find_md5_markers_and_clashes() {
    let az = Azurite::start();
    az.create_container("dset");
    let big: Vec<u8> = (0..(6u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    az.put_objects(
        "dset",
        vec![
            ("a.txt".into(), Bytes::from_static(b"hello\n")),
            ("big.bin".into(), Bytes::from(big.clone())),
            ("nested/deep/y.txt".into(), Bytes::from_static(b"deep")),
            ("same".into(), Bytes::from_static(b"file")),
            ("same/inner.txt".into(), Bytes::from_static(b"inner")),
        ],
    );
    az.put_raw_blob("dset", "empty-marker/", b"");

    let endpoint = format!("endpoint={}", az.blob_endpoint);
    let m = az_env(MountCmd::new("az://dset", &[&endpoint]), &az).mount();
    let (ok, out, err) = sh(&format!("ls -1 '{}'", m.path.display()));
    assert!(ok, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "a.txt",
            "big.bin",
            "empty-marker",
            "nested",
            "same",
            "same.file"
        ]
    );
    assert_eq!(std::fs::metadata(m.p("a.txt")).unwrap().len(), 6);
    assert_eq!(std::fs::read_to_string(m.p("a.txt")).unwrap(), "hello\n");
    assert_eq!(
        std::fs::read_to_string(m.p("nested/deep/y.txt")).unwrap(),
        "deep"
    );
    assert_eq!(std::fs::read_to_string(m.p("same.file")).unwrap(), "file");
    assert!(m.p("empty-marker").is_dir());
    let (ok, found, _) = sh(&format!("cd '{}' && find . | sort", m.path.display()));
    assert!(
        ok && found.contains("./nested/deep/y.txt") && found.contains("./same/inner.txt"),
        "{found}"
    );
    assert_eq!(
        support::md5_of_file(m.p("big.bin")),
        support::md5_of_bytes(&big)
    );
}

#[test]
fn azure_blobfuse_connection_cfg_and_a_10000_blob_prefix() {
    let az = Azurite::start();
    az.create_container("many");
    let objs = (0..10_000)
        .map(|i| (format!("p/f{i:05}"), Bytes::from_static(b"x")))
        .collect();
    az.put_objects("many", objs);

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("connection.cfg");
    std::fs::write(
        &cfg,
        format!(
            "# blobfuse format\naccountName {}\naccountKey {}\nauthType Key\ncontainerName many\nblobEndpoint {}\n",
            az.account, az.key, az.blob_endpoint
        ),
    )
    .unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
    let opt = format!("config_file={}", cfg.display());
    let m = MountCmd::new("az://many/p", &[&opt]).mount();
    let (ok, out, err) = sh(&format!(
        "ls -l '{}' | tail -n +2 | wc -l",
        m.path.display()
    ));
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "10000");
    assert_eq!(std::fs::read_to_string(m.p("f04242")).unwrap(), "x");
}

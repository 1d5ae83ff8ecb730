//! S3 credential sources against a server that checks signatures (moto with IAM auth).

mod harness;
mod support;

use bytes::Bytes;
use harness::MountCmd;
use support::S3Server;

fn server() -> S3Server {
    let s3 = S3Server::start_moto_auth();
    s3.create_bucket("creds");
    s3.put_objects(
        "creds",
        vec![("hello.txt".into(), Bytes::from_static(b"hi"))],
    );
    s3
}

#[test]
fn passwd_files_profiles_and_their_precedence() {
    let s3 = server();
    let ep = format!("endpoint={}", s3.endpoint);
    let good = format!("{}:{}", s3.access_key, s3.secret_key);

    // Explicit passwd_file: the bucket's own line wins over a (wrong) default line.
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("passwd");
    std::fs::write(&pw, format!("WRONGKEY:wrongsecret\ncreds:{good}\n")).unwrap();
    std::fs::set_permissions(&pw, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let opt = format!("passwd_file={}", pw.display());
    let m = MountCmd::new("s3://creds", &[&ep, &opt]).mount();
    assert_eq!(std::fs::read_to_string(m.p("hello.txt")).unwrap(), "hi");
    drop(m);

    // The default location ~/.passwd-s3fs, with no option at all.
    let m = MountCmd::new("s3://creds", &[&ep])
        .home_file(".passwd-s3fs", &format!("{good}\n"))
        .mount();
    assert_eq!(std::fs::read_to_string(m.p("hello.txt")).unwrap(), "hi");
    drop(m);

    // A named profile of ~/.aws/credentials.
    let creds = format!(
        "[default]\naws_access_key_id = NOPE\naws_secret_access_key = nope\n\n[ci]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        s3.access_key, s3.secret_key
    );
    let m = MountCmd::new("s3://creds", &[&ep, "profile=ci"])
        .home_file(".aws/credentials", &creds)
        .mount();
    assert_eq!(std::fs::read_to_string(m.p("hello.txt")).unwrap(), "hi");
    drop(m);

    // The environment variables win over ~/.passwd-s3fs (s3fs's order).
    let m = MountCmd::new("s3://creds", &[&ep])
        .home_file(".passwd-s3fs", "WRONGKEY:wrongsecret\n")
        .env("AWS_ACCESS_KEY_ID", &s3.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &s3.secret_key)
        .mount();
    assert_eq!(std::fs::read_to_string(m.p("hello.txt")).unwrap(), "hi");
    drop(m);

    // systemd's LoadCredential=passwd-s3fs:...: the file in $CREDENTIALS_DIRECTORY stands in
    // for passwd_file, ahead of a wrong ~/.passwd-s3fs.
    let cred_dir = tempfile::tempdir().unwrap();
    let cred = cred_dir.path().join("passwd-s3fs");
    std::fs::write(&cred, format!("{good}\n")).unwrap();
    std::fs::set_permissions(&cred, std::os::unix::fs::PermissionsExt::from_mode(0o400)).unwrap();
    let m = MountCmd::new("s3://creds", &[&ep])
        .home_file(".passwd-s3fs", "WRONGKEY:wrongsecret\n")
        .env(
            "CREDENTIALS_DIRECTORY",
            &cred_dir.path().display().to_string(),
        )
        .mount();
    assert_eq!(std::fs::read_to_string(m.p("hello.txt")).unwrap(), "hi");
    assert!(m.log_text().contains("LoadCredential"), "{}", m.log_text());
    drop(m);

    // A wrong default line alone is refused at mount time.
    let (code, err) = MountCmd::new("s3://creds", &[&ep])
        .home_file(".passwd-s3fs", "WRONGKEY:wrongsecret\n")
        .mount_err();
    assert_ne!(code, 0);
    assert!(
        err.contains("refused the credentials") && !err.contains("wrongsecret"),
        "{err}"
    );
}

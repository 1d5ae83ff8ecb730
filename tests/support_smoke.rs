//! Smoke tests of the test-server harness in tests/support/mod.rs.
mod support;

use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use support::*;

fn get_bytes(store: &dyn ObjectStore, key: &str) -> Result<Bytes, object_store::Error> {
    block_on(async {
        store
            .get(&ObjPath::parse(key).unwrap())
            .await?
            .bytes()
            .await
    })
}

fn list_all(store: &dyn ObjectStore) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = block_on(async {
        store
            .list(None)
            .map_ok(|m| (m.location.to_string(), m.size))
            .try_collect()
            .await
    })
    .expect("list");
    v.sort();
    v
}

#[test]
fn helpers() {
    let k = b64_decode(AZURITE_KEY).unwrap();
    assert_eq!(k.len(), 64);
    assert_eq!(b64_encode(&k), AZURITE_KEY);
    assert_eq!(b64_encode(b"ab"), "YWI=");
    assert_eq!(
        http_date(UNIX_EPOCH + Duration::from_secs(784_111_777)),
        "Sun, 06 Nov 1994 08:49:37 GMT"
    );
    assert_eq!(unescape_mountinfo(r"/tmp/a\040b\134c\011"), "/tmp/a b\\c\t");
    assert_eq!(encode_key("a b/ü+"), "a%20b/%C3%BC%2B");
    assert_eq!(md5_of_bytes(b"hello"), "5d41402abc4b2a76b9719d911017c592");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a file");
    std::fs::write(&f, b"hello").unwrap();
    assert_eq!(md5_of_file(&f), "5d41402abc4b2a76b9719d911017c592");
    assert!(is_mounted(std::path::Path::new("/proc")));
    assert!(!is_mounted(dir.path()));
    assert_ne!(free_port(), 0);
    let t = Instant::now();
    assert!(!wait_until(Duration::from_millis(200), || false));
    assert!(t.elapsed() >= Duration::from_millis(200));
    let mut n = 0;
    assert!(wait_until(Duration::from_secs(5), || {
        n += 1;
        n >= 3
    }));
}

#[test]
fn test_user_and_run_as() {
    let (uid, gid) = ensure_test_user("cloudmount-test");
    assert_ne!(uid, 0);
    assert_eq!(ensure_test_user("cloudmount-test"), (uid, gid));
    let out = run_as("cloudmount-test", &["id", "-u"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), uid.to_string());
}

#[test]
fn moto_roundtrip() {
    let s3 = S3Server::start_moto();
    s3.create_bucket("smoke-bucket");
    s3.create_bucket("smoke-bucket"); // idempotent
    let store = s3.store("smoke-bucket");
    block_on(store.put(
        &ObjPath::parse("hello.txt").unwrap(),
        PutPayload::from_static(b"hi"),
    ))
    .unwrap();
    assert_eq!(
        get_bytes(&*store, "hello.txt").unwrap(),
        Bytes::from_static(b"hi")
    );

    s3.put_raw_key("smoke-bucket", "dir/", b"");
    s3.put_objects(
        "smoke-bucket",
        vec![
            (
                "dir/a b+ü&=.txt".to_string(),
                Bytes::from_static(b"special"),
            ),
            ("dir2/".to_string(), Bytes::new()),
            ("x/y/z".to_string(), Bytes::from_static(b"z")),
        ],
    );
    assert_eq!(
        get_bytes(&*store, "dir/a b+ü&=.txt").unwrap(),
        Bytes::from_static(b"special")
    );
    let names: Vec<String> = list_all(&*store).into_iter().map(|(k, _)| k).collect();
    // object_store shows the markers "dir/" and "dir2/" as "dir" and "dir2"
    assert_eq!(
        names,
        ["dir", "dir/a b+ü&=.txt", "dir2", "hello.txt", "x/y/z"]
    );
}

#[test]
fn moto_auth_checks_signatures() {
    let s3 = S3Server::start_moto_auth();
    assert!(s3.auth);
    s3.create_bucket("auth-bucket");
    let store = s3.store("auth-bucket");
    let p = ObjPath::parse("dir/obj.bin").unwrap();
    block_on(store.put(&p, PutPayload::from_static(b"secret data"))).unwrap();
    assert_eq!(
        get_bytes(&*store, "dir/obj.bin").unwrap(),
        Bytes::from_static(b"secret data")
    );
    let head = block_on(store.head(&p)).unwrap();
    assert_eq!(head.size, 11);
    let lst = block_on(store.list_with_delimiter(Some(&ObjPath::parse("dir").unwrap()))).unwrap();
    assert_eq!(lst.objects.len(), 1);
    let lst = block_on(store.list_with_delimiter(None)).unwrap();
    assert_eq!(lst.common_prefixes, vec![ObjPath::parse("dir").unwrap()]);
    s3.put_raw_key("auth-bucket", "marker/", b"");
    s3.put_objects(
        "auth-bucket",
        vec![
            ("bulk/1".into(), Bytes::from_static(b"1")),
            ("bulk/a b+ü&=%.txt".into(), Bytes::from_static(b"special")),
        ],
    );
    assert_eq!(
        get_bytes(&*store, "bulk/a b+ü&=%.txt").unwrap(),
        Bytes::from_static(b"special")
    );
    let lst = block_on(store.list_with_delimiter(Some(&ObjPath::parse("bulk").unwrap()))).unwrap();
    assert_eq!(lst.objects.len(), 2);
    let mut mp = block_on(store.put_multipart(&ObjPath::parse("mp.bin").unwrap())).unwrap();
    block_on(mp.put_part(PutPayload::from(vec![7u8; 5 * 1024 * 1024]))).unwrap();
    block_on(mp.put_part(PutPayload::from_static(b"tail"))).unwrap();
    block_on(mp.complete()).unwrap();
    assert_eq!(
        get_bytes(&*store, "mp.bin").unwrap().len(),
        5 * 1024 * 1024 + 4
    );
    block_on(store.delete(&p)).unwrap();

    // wrong secret → 403 SignatureDoesNotMatch
    let bad = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(&s3.endpoint)
        .with_bucket_name("auth-bucket")
        .with_region("us-east-1")
        .with_access_key_id(&s3.access_key)
        .with_secret_access_key("definitely-wrong")
        .with_allow_http(true)
        .with_retry(object_store::RetryConfig {
            max_retries: 0,
            ..Default::default()
        })
        .build()
        .unwrap();
    let err = get_bytes(&bad, "hello.txt").expect_err("wrong secret must fail");
    let msg = err.to_string();
    assert!(
        msg.contains("403") || msg.contains("SignatureDoesNotMatch"),
        "{msg}"
    );
    let err = block_on(bad.put(&ObjPath::parse("x").unwrap(), PutPayload::from_static(b"x")))
        .expect_err("wrong secret put must fail");
    assert!(err.to_string().contains("SignatureDoesNotMatch"), "{err}");

    // unknown access key → 403 InvalidAccessKeyId
    let unknown = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(&s3.endpoint)
        .with_bucket_name("auth-bucket")
        .with_region("us-east-1")
        .with_access_key_id("AKIAUNKNOWNKEY000000")
        .with_secret_access_key(&s3.secret_key)
        .with_allow_http(true)
        .with_retry(object_store::RetryConfig {
            max_retries: 0,
            ..Default::default()
        })
        .build()
        .unwrap();
    let err = block_on(unknown.list_with_delimiter(None)).expect_err("unknown key must fail");
    assert!(err.to_string().contains("InvalidAccessKeyId"), "{err}");
}

#[test]
fn azurite_roundtrip() {
    let az = Azurite::start();
    az.create_container("smoke");
    az.create_container("smoke"); // idempotent
    let store = az.store("smoke");
    block_on(store.put(
        &ObjPath::parse("hello.txt").unwrap(),
        PutPayload::from_static(b"hi"),
    ))
    .unwrap();
    assert_eq!(
        get_bytes(&*store, "hello.txt").unwrap(),
        Bytes::from_static(b"hi")
    );
    az.put_raw_blob("smoke", "dir/", b"");
    az.put_raw_blob("smoke", "raw/with body", b"body");
    az.put_objects(
        "smoke",
        vec![
            (
                "dir/a b+ü&=.txt".to_string(),
                Bytes::from_static(b"special"),
            ),
            ("dir2/".to_string(), Bytes::new()),
        ],
    );
    assert_eq!(
        get_bytes(&*store, "dir/a b+ü&=.txt").unwrap(),
        Bytes::from_static(b"special")
    );
    assert_eq!(
        get_bytes(&*store, "raw/with body").unwrap(),
        Bytes::from_static(b"body")
    );
    let names: Vec<String> = list_all(&*store).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        names,
        [
            "dir",
            "dir/a b+ü&=.txt",
            "dir2",
            "hello.txt",
            "raw/with body"
        ]
    );
}

#[test]
fn delay_proxy_delays_only_matching_requests() {
    let s3 = S3Server::start_moto();
    s3.create_bucket("proxied");
    s3.put_objects(
        "proxied",
        vec![
            ("slow/object".into(), Bytes::from_static(b"slow")),
            ("fast/object".into(), Bytes::from_static(b"fast")),
        ],
    );
    let delay = Duration::from_secs(2);
    let proxy = DelayProxy::start(
        &format!("127.0.0.1:{}", s3.port),
        "GET /proxied/slow/",
        delay,
    );
    let store = s3.store_via("proxied", &proxy.endpoint());
    // a non-matching request is not delayed
    let t = Instant::now();
    assert_eq!(
        get_bytes(&*store, "fast/object").unwrap(),
        Bytes::from_static(b"fast")
    );
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "fast GET took {:?}",
        t.elapsed()
    );
    assert_eq!(proxy.delayed_count(), 0);

    let (slow_t, fast_t) = block_on(async {
        let s = store.clone();
        let slow = tokio::spawn(async move {
            let t = Instant::now();
            let b = s
                .get(&ObjPath::parse("slow/object").unwrap())
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(b, Bytes::from_static(b"slow"));
            t.elapsed()
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let t = Instant::now();
        let lst = store
            .list_with_delimiter(Some(&ObjPath::parse("fast").unwrap()))
            .await
            .unwrap();
        assert_eq!(lst.objects.len(), 1);
        let fast = t.elapsed();
        (slow.await.unwrap(), fast)
    });
    assert!(slow_t >= delay, "slow GET took only {slow_t:?}");
    assert!(
        fast_t < Duration::from_secs(1),
        "LIST during slow GET took {fast_t:?}"
    );
    assert_eq!(proxy.delayed_count(), 1);
    let port = proxy.port;
    drop(proxy);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "proxy still listening"
    );
}

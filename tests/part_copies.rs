//! Server-side part copies against the real servers, through the backend API: S3
//! UploadPartCopy against moto with SigV4 signatures verified, Azure Put Block From URL
//! against Azurite with its source condition enforced. The mounts' use of them is tested in
//! s3_write.rs and azure_write.rs.

mod harness;
mod support;

use cloudmount::backend::raw::azure::AzureRaw;
use cloudmount::backend::raw::s3::S3Raw;
use cloudmount::backend::{Backend, BackendError, ObjectStoreBackend, PartSource, PosixMeta};
use harness::pattern;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::ClientOptions;
use std::sync::Arc;
use support::{Azurite, S3Server};

const MIB: u64 = 1 << 20;

/// The stored 12 MiB object, the local file with its middle 5 MiB changed, and the plan
/// that copies the rest.
fn scenario() -> (Vec<u8>, Vec<u8>, Vec<PartSource>, tempfile::NamedTempFile) {
    let old = pattern(12 << 20, 5);
    let mut new = old.clone();
    new[(5 << 20)..(10 << 20)].copy_from_slice(&pattern(5 << 20, 6));
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &new).unwrap();
    let plan = vec![
        PartSource::Copy(0..5 * MIB),
        PartSource::Send(5 * MIB..10 * MIB),
        PartSource::Copy(10 * MIB..12 * MIB),
    ];
    (old, new, plan, file)
}

fn check(backend: &ObjectStoreBackend) {
    let (old, new, plan, file) = scenario();
    let meta = PosixMeta {
        mode: Some(0o100600),
        ..Default::default()
    };
    support::block_on(async {
        backend
            .put("obj", old.clone().into(), &meta)
            .await
            .expect("put");
        let etag = backend.head("obj").await.unwrap().etag.expect("an etag");
        assert!(backend.copies_parts());
        let done = backend
            .put_file_reusing("obj", file.as_file(), 12 * MIB, &plan, &etag, &meta)
            .await
            .expect("copy parts");
        assert_eq!(done.size, 12 * MIB);
        let got = backend.get_range("obj", 0..12 * MIB, None).await.unwrap();
        assert!(got[..] == new[..], "copied and sent parts joined in order");
        let stored = backend.head("obj").await.unwrap();
        assert_eq!(stored.meta.mode, Some(0o100600), "metadata stored");
    });
}

#[test]
fn s3_upload_part_copy_with_verified_signatures() {
    let s3 = S3Server::start_moto_auth();
    s3.create_bucket("parts");
    let store = Arc::new(
        AmazonS3Builder::new()
            .with_endpoint(&s3.endpoint)
            .with_bucket_name("parts")
            .with_region(&s3.region)
            .with_access_key_id(&s3.access_key)
            .with_secret_access_key(&s3.secret_key)
            .with_allow_http(true)
            .build()
            .unwrap(),
    );
    let options = ClientOptions::new().with_allow_http(true);
    let copier = S3Raw::new(
        store.clone(),
        &options,
        format!("{}/parts", s3.endpoint),
        "parts",
        &s3.region,
    )
    .unwrap();
    let backend = ObjectStoreBackend::new(store.clone(), Some(store), "root/dir", "s3".into())
        .with_raw(copier);
    check(&backend);
}

#[test]
fn azure_put_block_from_url_honours_the_source_version() {
    let az = Azurite::start();
    az.create_container("parts");
    let store = Arc::new(
        MicrosoftAzureBuilder::new()
            .with_endpoint(az.blob_endpoint.clone())
            .with_account(&az.account)
            .with_access_key(&az.key)
            .with_container_name("parts")
            .with_allow_http(true)
            .build()
            .unwrap(),
    );
    let options = ClientOptions::new().with_allow_http(true);
    let copier = AzureRaw::new(
        store.clone(),
        &options,
        &format!("{}/parts", az.blob_endpoint),
        &az.account,
    )
    .unwrap();
    let backend =
        ObjectStoreBackend::new(store.clone(), Some(store), "", "az".into()).with_raw(copier);
    check(&backend);
    // A version that is not the stored one: refused, nothing changes.
    let (_, _, plan, file) = scenario();
    support::block_on(async {
        let before = backend.get_range("obj", 0..12 * MIB, None).await.unwrap();
        let err = backend
            .put_file_reusing(
                "obj",
                file.as_file(),
                12 * MIB,
                &plan,
                "\"0x8DEADBEEF000000\"",
                &PosixMeta::default(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, BackendError::Changed(_)), "{err}");
        let after = backend.get_range("obj", 0..12 * MIB, None).await.unwrap();
        assert!(before == after, "the stored blob is untouched");
    });
}

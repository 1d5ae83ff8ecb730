//! Compile the vendored CSI spec (proto/csi.proto) into tonic services: protox parses it in
//! pure Rust (no protoc on the build machine), tonic-prost-build generates the code.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/csi.proto");
    let fds = protox::compile(["proto/csi.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Services and calls cloudmount does not implement answer UNIMPLEMENTED.
        .generate_default_stubs(true)
        // Requests that carry secrets get no Debug: nothing can print them by accident.
        .skip_debug([".csi.v1.NodePublishVolumeRequest"])
        .compile_fds(fds)?;
    Ok(())
}

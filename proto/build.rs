//! Compiles `proto/` into Rust with a protobuf compiler written in Rust, so
//! a build needs no `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/riverbed/store/v1/store.proto",
        "proto/riverbed/coordinator/v1/coordinator.proto",
        "proto/riverbed/coordinator/v1/workers.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        // `bytes` fields as `bytes::Bytes`: values move without a copy.
        .bytes(".")
        .compile_fds(fds)?;
    Ok(())
}

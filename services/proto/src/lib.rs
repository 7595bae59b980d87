//! Generated code for the `placement.v1` protobuf package: the four gRPC services, their messages and
//! the events that travel on the broker.

pub mod v1 {
    #![allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]
    tonic::include_proto!("placement.v1");
}

/// The encoded file descriptor set of every `.proto`, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/placement_descriptor.bin"));

pub use prost;
pub use prost_types;

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

pub mod stored;

/// The codec of every generated client and server: prost's, except that a body that does not decode is
/// the sender's fault. Prost's codec calls it INTERNAL, which for us means a bug of ours; a malformed
/// request (truncated, random bytes, a string that is not UTF-8) is INVALID_ARGUMENT naming what broke.
pub mod codec {
    use tonic::{
        Status,
        codec::{BufferSettings, DecodeBuf, Decoder},
    };
    use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

    #[derive(Debug, Clone)]
    pub struct Codec<T, U>(ProstCodec<T, U>);

    impl<T, U> Default for Codec<T, U> {
        fn default() -> Self {
            Self(ProstCodec::default())
        }
    }

    impl<T, U> tonic::codec::Codec for Codec<T, U>
    where
        T: prost::Message + Send + 'static,
        U: prost::Message + Default + Send + 'static,
    {
        type Encode = T;
        type Decode = U;
        type Encoder = ProstEncoder<T>;
        type Decoder = MessageDecoder<U>;

        fn encoder(&mut self) -> Self::Encoder {
            self.0.encoder()
        }

        fn decoder(&mut self) -> Self::Decoder {
            MessageDecoder(self.0.decoder())
        }
    }

    /// `field: why` from prost's description, which names the path of messages and fields, e.g.
    /// "failed to decode Protobuf message: LegalBasis.number: SubmitReferralRequest.legal_basis: invalid
    /// string value: data is not UTF-8 encoded" (innermost first); `message: why` when no field is named.
    pub fn undecodable(description: &str) -> String {
        let rest = description
            .strip_prefix("failed to decode Protobuf message: ")
            .unwrap_or(description);
        let mut path = Vec::new();
        let mut why = rest;
        for segment in rest.split(": ") {
            match segment.split_once('.') {
                Some((message, field))
                    if !segment.contains(' ') && message.chars().all(char::is_alphanumeric) =>
                {
                    path.push(field);
                    why = &why[segment.len()..];
                    why = why.strip_prefix(": ").unwrap_or(why);
                }
                _ => break,
            }
        }
        path.reverse();
        match path.is_empty() {
            true => format!("message: not a valid protobuf message ({why})"),
            false => format!("{}: not a valid protobuf message ({why})", path.join(".")),
        }
    }

    #[derive(Debug)]
    pub struct MessageDecoder<U>(ProstDecoder<U>);

    impl<U: prost::Message + Default> Decoder for MessageDecoder<U> {
        type Item = U;
        type Error = Status;

        fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
            self.0
                .decode(buf)
                .map_err(|status| Status::invalid_argument(undecodable(status.message())))
        }

        fn buffer_settings(&self) -> BufferSettings {
            self.0.buffer_settings()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::codec::undecodable;

    #[test]
    fn decode_errors_name_the_field() {
        assert_eq!(
            undecodable(
                "failed to decode Protobuf message: LegalBasis.number: SubmitReferralRequest.legal_basis: \
                 invalid string value: data is not UTF-8 encoded"
            ),
            "legal_basis.number: not a valid protobuf message (invalid string value: data is not UTF-8 encoded)"
        );
        assert_eq!(
            undecodable("failed to decode Protobuf message: buffer underflow"),
            "message: not a valid protobuf message (buffer underflow)"
        );
    }
}

//! Hostile requests to every RPC of every service, built from the proto descriptors, so a new RPC or field
//! is covered without touching this test: every integer field at 0, -1, `i32::MAX`, `u32::MAX` and
//! `i64::MAX`; every string overlong and not UTF-8; truncated, random and oversized bodies. Not one may
//! come back INTERNAL or UNKNOWN, reset the stream or panic a service, and every service answers afterwards.

use std::{collections::BTreeMap, time::Duration};

use futures::StreamExt;
use placement_cli::{clients::channel, devkeys};
use placement_platform::caller::{ALL_ROLES, NATIONAL_AUTHORITY, Role};
use placement_proto::prost::{Message, bytes::Buf, bytes::BufMut};
use placement_proto::prost_types::{
    DescriptorProto, FileDescriptorSet, MethodDescriptorProto, ServiceDescriptorProto,
    field_descriptor_proto::{Label, Type},
};
use tonic::{
    Code, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::http::uri::PathAndQuery,
};

use crate::support::Fixture;

/// A message on the wire: (field number, value) in order.
#[derive(Debug, Clone)]
struct Wire(Vec<(u32, Value)>);

#[derive(Debug, Clone)]
enum Value {
    Varint(u64),
    Bytes(Vec<u8>),
    Message(Wire),
}

impl Wire {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (number, value) in &self.0 {
            let (wire_type, payload) = match value {
                Value::Varint(v) => (0, varint(*v)),
                Value::Bytes(b) => (2, b.clone()),
                Value::Message(m) => (2, m.encode()),
            };
            out.extend(varint(u64::from(*number) << 3 | wire_type));
            if wire_type == 2 {
                out.extend(varint(payload.len() as u64));
            }
            out.extend(payload);
        }
        out
    }

    /// Every leaf, by its position path.
    fn leaves(&self) -> Vec<(Vec<usize>, Value)> {
        let mut out = Vec::new();
        for (i, (_, value)) in self.0.iter().enumerate() {
            match value {
                Value::Message(m) => {
                    for (mut path, leaf) in m.leaves() {
                        path.insert(0, i);
                        out.push((path, leaf));
                    }
                }
                leaf => out.push((vec![i], leaf.clone())),
            }
        }
        out
    }

    fn with(&self, path: &[usize], replacement: Value) -> Wire {
        let mut copy = self.clone();
        let slot = &mut copy.0[path[0]].1;
        *slot = match (slot.clone(), path.len()) {
            (_, 1) => replacement,
            (Value::Message(m), _) => Value::Message(m.with(&path[1..], replacement)),
            (other, _) => other,
        };
        copy
    }
}

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// Ids of real records, so requests get past "not found" to the checks behind it.
struct Known {
    by_field: BTreeMap<&'static str, String>,
}

impl Known {
    fn string_for(&self, field: &str) -> String {
        let key = self
            .by_field
            .keys()
            .find(|k| field == **k || field.ends_with(&format!("_{k}")))
            .copied();
        match key {
            Some(k) => self.by_field[k].clone(),
            None if field.ends_with("id") || field.ends_with("ids") || field.ends_with("key") => {
                uuid::Uuid::new_v4().to_string()
            }
            None if field.contains("token") => String::new(),
            None => "Fuzz value".to_string(),
        }
    }
}

/// A plausible message of type `name`: real ids, first enum values, this year's dates.
fn plausible(set: &Messages, name: &str, known: &Known, depth: usize) -> Wire {
    let Some(descriptor) = set.get(name) else {
        return Wire(Vec::new());
    };
    let year = i64::from(chrono::Datelike::year(&chrono::Utc::now()));
    let mut fields = Vec::new();
    for field in &descriptor.field {
        let number = u32::try_from(field.number()).expect("field numbers are positive");
        let field_name = field.name();
        let value = match field.r#type() {
            Type::String | Type::Bytes => Value::Bytes(known.string_for(field_name).into_bytes()),
            Type::Message if field.type_name() == ".google.protobuf.Timestamp" => {
                Value::Message(Wire(vec![(1, Value::Varint(1_700_000_000))]))
            }
            Type::Message if depth < 4 => {
                Value::Message(plausible(set, field.type_name(), known, depth + 1))
            }
            Type::Message => continue,
            Type::Enum | Type::Bool => Value::Varint(1),
            _ if field_name.contains("year") => Value::Varint(year.unsigned_abs() - 3),
            _ if field_name.contains("age") && field_name.starts_with("max") => Value::Varint(17),
            _ if field_name.contains("age") || field_name.contains("sequence") => Value::Varint(0),
            _ => Value::Varint(1),
        };
        fields.push((number, value));
        if field.label() == Label::Repeated && field.r#type() == Type::Message {
            // One element is enough; a second shows whether lists are walked, not only the head.
            let again = fields.last().cloned().expect("just pushed");
            fields.push(again);
        }
    }
    Wire(fields)
}

type Messages = BTreeMap<String, DescriptorProto>;

/// The hostile variants of `base`, each named for the failure message.
fn variants(base: &Wire, seed: &mut u64) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![
        ("plausible".to_string(), base.encode()),
        ("empty".to_string(), Vec::new()),
    ];
    for (path, leaf) in base.leaves() {
        let at = format!("{path:?}");
        match leaf {
            Value::Varint(_) => {
                for (what, v) in [
                    ("0", 0u64),
                    ("-1", u64::MAX),
                    ("i32::MAX", i32::MAX as u64),
                    ("u32::MAX", u64::from(u32::MAX)),
                    ("i64::MAX", i64::MAX as u64),
                ] {
                    out.push((
                        format!("{at} = {what}"),
                        base.with(&path, Value::Varint(v)).encode(),
                    ));
                }
            }
            Value::Bytes(_) => {
                for (what, v) in [
                    ("overlong", "x".repeat(5_000).into_bytes()),
                    ("not UTF-8", vec![0xff, 0xfe, b'a', 0xc3]),
                    ("beyond the request limit", "y".repeat(70_000).into_bytes()),
                ] {
                    out.push((
                        format!("{at} {what}"),
                        base.with(&path, Value::Bytes(v)).encode(),
                    ));
                }
            }
            Value::Message(_) => {}
        }
    }
    let whole = base.encode();
    for cut in [1, whole.len() / 2, whole.len().saturating_sub(1)] {
        if cut > 0 && cut < whole.len() {
            out.push((format!("truncated at {cut}"), whole[..cut].to_vec()));
        }
    }
    for n in 0..8 {
        let len = 1 + (next(seed) % 200) as usize;
        let body = (0..len).map(|_| (next(seed) & 0xff) as u8).collect();
        out.push((format!("random body {n}"), body));
    }
    out
}

/// xorshift: reproducible random bodies without another dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Sends bodies as they are and returns responses as bytes: the test speaks raw protobuf.
#[derive(Clone, Default)]
struct RawCodec;

struct RawEncoder;
struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

/// RPCs that only read, by the verb their names start with; every other RPC changes something.
const READS: [&str; 6] = ["Get", "List", "Search", "Watch", "Verify", "Export"];

/// The codes a hostile request may get. INTERNAL and UNKNOWN are our bugs; a panic or a reset stream
/// shows as one of them or as CANCELLED / UNAVAILABLE.
const ACCEPTABLE: [Code; 10] = [
    Code::Ok,
    Code::InvalidArgument,
    Code::NotFound,
    Code::AlreadyExists,
    Code::PermissionDenied,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::OutOfRange,
    Code::ResourceExhausted,
    Code::Unauthenticated,
];

async fn call(
    channel: tonic::transport::Channel,
    path: &str,
    method: &MethodDescriptorProto,
    token: &str,
    body: Vec<u8>,
) -> Status {
    let mut grpc = tonic::client::Grpc::new(channel);
    if let Err(e) = grpc.ready().await {
        panic!("{path}: channel not ready: {e}");
    }
    let mut request = tonic::Request::new(body);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("metadata"),
    );
    request.set_timeout(Duration::from_secs(10));
    let path = PathAndQuery::try_from(path.to_string()).expect("path");
    if method.server_streaming() {
        match grpc.server_streaming(request, path, RawCodec).await {
            Err(status) => status,
            Ok(response) => {
                let mut stream = response.into_inner();
                // An open stream that has nothing to say yet is an answer; the first item, if any, is
                // checked too (a watch refuses a bad position in the stream).
                match tokio::time::timeout(Duration::from_millis(300), stream.message()).await {
                    Ok(Err(status)) => status,
                    _ => Status::new(Code::Ok, ""),
                }
            }
        }
    } else {
        match grpc.unary(request, path, RawCodec).await {
            Ok(_) => Status::new(Code::Ok, ""),
            Err(status) => status,
        }
    }
}

async fn known_records(f: &Fixture) -> Known {
    let pirdop = f.agency("dsa-pirdop");
    let case = f.open_twins_case(pirdop).await;
    let service = f.demo.service("ftpc-vratsa");
    let referral = f.submit(pirdop, &case, service).await;
    let one = f.submission(&case, service, "fuzz-search");
    let search = (f.clients.referrals.clone())
        .submit_search(placement_cli::clients::as_agency(
            pirdop,
            placement_proto::v1::SubmitSearchRequest {
                case_id: one.case_id,
                service_ids: vec![service.to_string()],
                legal_basis: one.legal_basis,
                reason: one.reason,
                idempotency_key: one.idempotency_key,
                ..Default::default()
            },
        ))
        .await
        .expect("SubmitSearch")
        .into_inner();
    let mut by_field = BTreeMap::new();
    by_field.insert("search_id", search.id.clone());
    by_field.insert("service_ids", service.to_string());
    by_field.insert("case_id", case.id.clone());
    by_field.insert("record_id", case.id.clone());
    by_field.insert("referral_id", referral.id.clone());
    by_field.insert("service_id", service.to_string());
    by_field.insert("agency_id", pirdop.to_string());
    by_field.insert(
        "provider_agency_id",
        f.agency("provider-vratsa").to_string(),
    );
    by_field.insert("region_code", "VRC".to_string());
    by_field.insert("municipality_code", "VRC10".to_string());
    Known { by_field }
}

/// One hostile call to make.
struct Job {
    service: &'static str,
    channel: tonic::transport::Channel,
    path: String,
    method: MethodDescriptorProto,
    what: String,
    token: String,
    body: Vec<u8>,
}

/// What the calls are made with: the descriptors' messages, real ids, tokens and one channel per service.
struct Plan {
    messages: Messages,
    known: Known,
    /// Callers that get past the role and record rules of most RPCs: the national authority, the sending
    /// DSA and the receiving provider, each with every role.
    tokens: Vec<String>,
    /// The same agencies as `integration`, another system of the agency: it reads and changes nothing.
    read_only: Vec<String>,
    endpoints: Vec<(&'static str, tonic::transport::Channel)>,
}

impl Plan {
    async fn new(f: &Fixture, descriptors: &FileDescriptorSet) -> Plan {
        let mut messages = Messages::new();
        for file in &descriptors.file {
            for m in &file.message_type {
                messages.insert(format!(".{}.{}", file.package(), m.name()), m.clone());
            }
        }
        let signer = devkeys::signer(placement_e2e::dev_keys()).expect("the development signer");
        let agencies = [
            NATIONAL_AUTHORITY,
            f.agency("dsa-pirdop"),
            f.agency("provider-vratsa"),
        ];
        let tokens_with = |roles: &[Role]| -> Vec<String> {
            agencies
                .iter()
                .map(|a| devkeys::token(&signer, *a, roles))
                .collect()
        };
        Plan {
            messages,
            known: known_records(f).await,
            tokens: tokens_with(&ALL_ROLES),
            read_only: tokens_with(&[Role::Integration]),
            endpoints: f
                .stack
                .endpoints
                .all()
                .map(|(name, url)| (name, channel(url).expect("channel")))
                .collect(),
        }
    }

    /// The jobs for every method of `service` on every endpoint that serves it (none serving is a failure),
    /// after checking that `integration` changes nothing there.
    async fn jobs(
        &self,
        package: &str,
        service: &ServiceDescriptorProto,
        seed: &mut u64,
    ) -> Vec<Job> {
        let full = format!("{package}.{}", service.name());
        let mut jobs = Vec::new();
        let mut served = false;
        for (name, channel) in &self.endpoints {
            // Who serves this API: an UNIMPLEMENTED plausible call means not this one.
            let first = &service.method[0];
            let body = plausible(&self.messages, first.input_type(), &self.known, 0).encode();
            let path = format!("/{full}/{}", first.name());
            if call(channel.clone(), &path, first, &self.tokens[0], body)
                .await
                .code()
                == Code::Unimplemented
            {
                continue;
            }
            served = true;
            for method in &service.method {
                let path = format!("/{full}/{}", method.name());
                let base = plausible(&self.messages, method.input_type(), &self.known, 0);
                if !READS.iter().any(|r| method.name().starts_with(r)) {
                    for token in &self.read_only {
                        let code = call(channel.clone(), &path, method, token, base.encode())
                            .await
                            .code();
                        assert_ne!(
                            code,
                            Code::Ok,
                            "{path} succeeded for the read-only `integration` role"
                        );
                    }
                }
                for (what, body) in variants(&base, seed) {
                    for token in &self.tokens {
                        jobs.push(Job {
                            service: name,
                            channel: channel.clone(),
                            path: path.clone(),
                            method: method.clone(),
                            what: what.clone(),
                            token: token.clone(),
                            body: body.clone(),
                        });
                    }
                }
            }
        }
        assert!(served, "no service serves {full}");
        jobs
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_to_every_rpc_get_clear_statuses() {
    let f = Fixture::start().await;
    let descriptors = FileDescriptorSet::decode(placement_proto::FILE_DESCRIPTOR_SET)
        .expect("the embedded descriptor set decodes");
    let plan = Plan::new(&f, &descriptors).await;
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut jobs = Vec::new();
    for file in &descriptors.file {
        for service in &file.service {
            jobs.extend(plan.jobs(file.package(), service, &mut seed).await);
        }
    }
    let calls = jobs.len();
    let outcomes: Vec<(Code, bool, String)> = futures::stream::iter(jobs)
        .map(outcome)
        .buffer_unordered(8)
        .collect()
        .await;
    let mut by_code = BTreeMap::<String, usize>::new();
    for (code, _, _) in &outcomes {
        *by_code.entry(format!("{code:?}")).or_default() += 1;
    }
    eprintln!("fuzz: {calls} hostile calls: {by_code:?}");
    // The calls reach the services' own checks, not only the token check: some succeed, many are
    // refused for what they carry.
    for expected in ["Ok", "InvalidArgument", "NotFound", "PermissionDenied"] {
        assert!(
            by_code.contains_key(expected),
            "no call got {expected}: {by_code:?}"
        );
    }
    let failures: Vec<&str> = outcomes
        .iter()
        .filter(|(_, fault, _)| *fault)
        .map(|(_, _, failure)| failure.as_str())
        .collect();
    let logs = f.stack.logs();
    assert!(
        failures.is_empty(),
        "{} of {calls} hostile calls got a status that is our fault (or a decoding refusal that names no field):\n{}\n{}",
        failures.len(),
        failures.join("\n"),
        logs.lines()
            .filter(|l| l.contains("ERROR"))
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        !logs.contains("panicked"),
        "a service panicked:\n{}",
        logs.lines()
            .filter(|l| l.contains("panicked"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    for (name, _) in &plan.endpoints {
        assert_eq!(
            f.stack.health(name).await,
            Some(1),
            "{name} no longer serving after {calls} hostile calls"
        );
    }
}

/// What a hostile call got: its code, whether that is a fault of ours, and a line that says so.
async fn outcome(job: Job) -> (Code, bool, String) {
    let status = call(job.channel, &job.path, &job.method, &job.token, job.body).await;
    let code = status.code();
    // A string that is not UTF-8 is refused while decoding, naming the field — unless the call was
    // refused before its message was read: a register import checks the caller's standing first, and
    // takes the directory's one import place (ABORTED while another import holds it).
    let before_reading = job.path.ends_with("/ImportServices")
        && matches!(code, Code::PermissionDenied | Code::Aborted);
    let unnamed = job.what.ends_with("not UTF-8")
        && !before_reading
        && (code != Code::InvalidArgument || status.message().starts_with("message:"));
    let what = format!(
        "{} {} {}: {code:?} {}",
        job.service,
        job.path,
        job.what,
        status.message()
    );
    (code, unnamed || !ACCEPTABLE.contains(&code), what)
}

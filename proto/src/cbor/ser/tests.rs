//! The direct serializer against the `Value` path, on every serde shape kurir
//! uses and on each way the profile refuses a value.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use serde::Serialize;
use serde::ser::{self, SerializeMap, SerializeSeq, SerializeTupleVariant, Serializer};

use crate::cbor::{CborError, MAX_DEPTH, to_vec, to_vec_via_value};

/// A value that drives the serializer through one serde shape per variant.
#[derive(Debug, Clone)]
enum Node {
    Int(i64),
    UInt(u64),
    Small(i8, i16, u16, u32),
    Wide(i128),
    WideU(u128),
    Bool(bool),
    Unit,
    UnitStruct,
    Char(char),
    Text(String),
    Collected(String),
    Bytes(Vec<u8>),
    Float(f64),
    Float32(f32),
    Opt(Option<Box<Node>>),
    Seq(Vec<Node>),
    /// `serialize_seq(None)`.
    SeqUnsized(Vec<Node>),
    /// `serialize_seq` with a length hint that is wrong by the given amount.
    SeqMisjudged(Vec<Node>, usize),
    Tuple(Box<(Node, i64, Option<Node>)>),
    TupleStruct(Box<Pair>),
    /// Entries in the given order (keys may repeat); the length given or not.
    Map(Vec<(Node, Node)>, bool),
    IntMap(BTreeMap<i64, Node>),
    TextMap(BTreeMap<String, Node>),
    Record(Box<Record>),
    Variant(Box<Variants>),
    Internal(Box<Internal>),
    Flat(Box<Flat>),
    Transparent(Box<Wrapper>),
    /// ciborium's tag: tagged (`Some`) or not.
    Tag(Option<u64>, Box<Node>),
    /// ciborium's tag enum misused: 0 a signed tag number, 1 no value, 2 a
    /// second value.
    BadTag(u8, Box<Node>),
    /// A serializer error from the type itself.
    Custom(String),
    /// The node inside this many single-item arrays.
    Deep(usize, Box<Node>),
    /// A std type that asks `is_human_readable` (text if so, else 4 bytes).
    Ip([u8; 4]),
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Int(v) => s.serialize_i64(*v),
            Node::UInt(v) => s.serialize_u64(*v),
            Node::Small(a, b, c, d) => (a, b, c, d).serialize(s),
            Node::Wide(v) => s.serialize_i128(*v),
            Node::WideU(v) => s.serialize_u128(*v),
            Node::Bool(v) => s.serialize_bool(*v),
            Node::Unit => s.serialize_unit(),
            Node::UnitStruct => s.serialize_unit_struct("Nothing"),
            Node::Char(c) => s.serialize_char(*c),
            Node::Text(t) => s.serialize_str(t),
            Node::Collected(t) => s.collect_str(&format_args!("<{t}>")),
            Node::Bytes(b) => s.serialize_bytes(b),
            Node::Float(f) => s.serialize_f64(*f),
            Node::Float32(f) => s.serialize_f32(*f),
            Node::Opt(o) => o.serialize(s),
            Node::Seq(items) => items.serialize(s),
            Node::SeqUnsized(items) => {
                let mut seq = s.serialize_seq(None)?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            Node::SeqMisjudged(items, off) => {
                let mut seq = s.serialize_seq(Some(items.len() + off))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            Node::Tuple(t) => t.serialize(s),
            Node::TupleStruct(t) => t.serialize(s),
            Node::Map(entries, sized) => {
                let mut map = s.serialize_map(sized.then_some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Node::IntMap(m) => m.serialize(s),
            Node::TextMap(m) => m.serialize(s),
            Node::Record(r) => r.serialize(s),
            Node::Variant(v) => v.serialize(s),
            Node::Internal(v) => v.serialize(s),
            Node::Flat(v) => v.serialize(s),
            Node::Transparent(v) => v.serialize(s),
            Node::Tag(tag, v) => ciborium::tag::Captured(*tag, &**v).serialize(s),
            Node::BadTag(kind, v) => {
                let mut t = s.serialize_tuple_variant("@@TAG@@", 0, "@@TAGGED@@", 2)?;
                match kind {
                    0 => t.serialize_field(&-1i64)?,
                    1 => t.serialize_field(&7u8)?,
                    _ => {
                        t.serialize_field(&7u32)?;
                        t.serialize_field(&**v)?;
                        t.serialize_field(&**v)?;
                    }
                }
                t.end()
            }
            Node::Custom(msg) => Err(ser::Error::custom(msg)),
            Node::Deep(0, v) => v.serialize(s),
            Node::Ip(b) => std::net::Ipv4Addr::from(*b).serialize(s),
            Node::Deep(n, v) => {
                let mut seq = s.serialize_seq(Some(1))?;
                seq.serialize_element(&Node::Deep(n - 1, v.clone()))?;
                seq.end()
            }
        }
    }
}

#[derive(Debug, Clone, Serialize)]
struct Pair(Node, u8);

#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
struct Wrapper(Node);

/// A struct as kurir writes them: optional fields left out when empty, byte
/// strings, field names of different lengths.
#[derive(Debug, Clone, Serialize)]
struct Record {
    id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    #[serde(with = "crate::cbor::bytes")]
    blob: Vec<u8>,
    #[serde(with = "crate::cbor::bytes")]
    key: [u8; 4],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    items: Vec<Node>,
    child: Option<Node>,
    neg: i32,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    urgent: bool,
    #[serde(rename = "a_field_name_longer_than_twenty_three_bytes")]
    long: Option<i64>,
}

/// An externally tagged enum with each kind of variant.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
enum Variants {
    Unit,
    Newtype(Node),
    Tuple(Node, i64),
    Struct {
        x: Node,
        #[serde(skip_serializing_if = "Option::is_none")]
        y: Option<u64>,
    },
}

/// An internally tagged enum (as the API's requests and responses).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Internal {
    Ping,
    Carry(Record),
    Fields {
        n: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        more: Option<Node>,
    },
}

/// A flattened struct: serde writes it as a map of unknown length.
#[derive(Debug, Clone, Serialize)]
struct Flat {
    outer: u16,
    #[serde(flatten)]
    inner: Extra,
}

#[derive(Debug, Clone, Serialize)]
struct Extra {
    z: Node,
    #[serde(skip_serializing_if = "Option::is_none")]
    b: Option<String>,
}

/// Integers around every head width, both signs.
fn integer() -> impl Strategy<Value = i64> {
    let mut edges = vec![i64::MIN, i64::MAX];
    for b in [
        0i64,
        23,
        24,
        255,
        256,
        65_535,
        65_536,
        4_294_967_295,
        4_294_967_296,
    ] {
        edges.extend([b, -b, -1 - b, b + 1]);
    }
    prop_oneof![any::<i64>(), proptest::sample::select(edges)]
}

/// Integers at and beyond CBOR's 64-bit range.
fn wide() -> impl Strategy<Value = i128> {
    let max = i128::from(u64::MAX);
    proptest::sample::select(vec![
        max,
        max + 1,
        -max - 1,
        -max - 2,
        i128::MIN,
        i128::MAX,
        0,
    ])
}

/// Map keys from a small set, so that keys repeat and sort by length.
fn key() -> impl Strategy<Value = Node> {
    prop_oneof![
        4 => (-2i64..4).prop_map(Node::Int),
        4 => proptest::sample::select(vec!["a", "b", "aa", "op", "outer"])
            .prop_map(|t| Node::Text(t.to_owned())),
        1 => proptest::collection::vec(0..2u8, 0..2).prop_map(Node::Bytes),
        1 => any::<bool>().prop_map(Node::Bool),
    ]
}

/// A leaf; `flawed` adds the leaves the profile refuses.
fn leaf(flawed: bool) -> BoxedStrategy<Node> {
    let fine = prop_oneof![
        integer().prop_map(Node::Int),
        any::<u64>().prop_map(Node::UInt),
        any::<(i8, i16, u16, u32)>().prop_map(|(a, b, c, d)| Node::Small(a, b, c, d)),
        any::<bool>().prop_map(Node::Bool),
        Just(Node::Unit),
        Just(Node::UnitStruct),
        any::<char>().prop_map(Node::Char),
        "[a-z]{0,30}".prop_map(Node::Text),
        "[a-z]{0,3}".prop_map(Node::Collected),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Node::Bytes),
        Just(Node::Internal(Box::new(Internal::Ping))),
        Just(Node::Variant(Box::new(Variants::Unit))),
        any::<[u8; 4]>().prop_map(Node::Ip),
    ];
    if !flawed {
        return fine.boxed();
    }
    prop_oneof![
        30 => fine,
        1 => wide().prop_map(Node::Wide),
        1 => wide().prop_map(|v| Node::WideU(v.unsigned_abs())),
        1 => any::<f64>().prop_map(Node::Float),
        1 => any::<f32>().prop_map(Node::Float32),
        1 => "[a-z]{1,8}".prop_map(Node::Custom),
    ]
    .boxed()
}

/// A leaf refused for one of three reasons.
fn refused_leaf() -> impl Strategy<Value = Node> {
    prop_oneof![
        Just(Node::Float(0.5)),
        Just(Node::Tag(Some(1), Box::new(Node::Unit))),
        Just(Node::Deep(MAX_DEPTH + 1, Box::new(Node::Unit))),
        Just(Node::Unit),
    ]
}

fn record(inner: BoxedStrategy<Node>) -> impl Strategy<Value = Record> {
    (
        (any::<u64>(), proptest::option::of("[a-z]{0,5}")),
        (
            proptest::collection::vec(any::<u8>(), 0..30),
            any::<[u8; 4]>(),
        ),
        proptest::collection::vec(inner.clone(), 0..3),
        proptest::option::of(inner),
        (integer(), any::<bool>(), proptest::option::of(integer())),
    )
        .prop_map(
            |((id, note), (blob, key), items, child, (neg, urgent, long))| Record {
                id,
                note,
                blob,
                key,
                items,
                child,
                neg: neg as i32,
                urgent,
                long,
            },
        )
}

/// A tree of nodes, nested a few levels; `flawed` adds refused leaves, tags,
/// misused tags and nesting past the limit.
fn node(flawed: bool) -> impl Strategy<Value = Node> {
    leaf(flawed).prop_recursive(5, 48, 4, move |inner| {
        let entries = proptest::collection::vec((key(), inner.clone()), 0..5).prop_map(
            move |mut e| {
                if !flawed {
                    // Distinct keys (these keys differ exactly when their
                    // debug forms do).
                    let mut seen = std::collections::HashSet::new();
                    e.retain(|(k, _)| seen.insert(format!("{k:?}")));
                }
                e
            },
        );
        let plain = prop_oneof![
            inner.clone().prop_map(|n| Node::Opt(Some(Box::new(n)))),
            Just(Node::Opt(None)),
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Node::Seq),
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Node::SeqUnsized),
            (proptest::collection::vec(inner.clone(), 20..26), 1..5usize)
                .prop_map(|(v, off)| Node::SeqMisjudged(v, off)),
            (inner.clone(), integer(), proptest::option::of(inner.clone()))
                .prop_map(|t| Node::Tuple(Box::new(t))),
            (inner.clone(), any::<u8>()).prop_map(|(n, b)| Node::TupleStruct(Box::new(Pair(n, b)))),
            (entries, any::<bool>()).prop_map(|(e, sized)| Node::Map(e, sized)),
            proptest::collection::btree_map(integer(), inner.clone(), 0..4).prop_map(Node::IntMap),
            proptest::collection::btree_map("[a-z]{0,25}", inner.clone(), 0..4)
                .prop_map(Node::TextMap),
            record(inner.clone()).prop_map(|r| Node::Record(Box::new(r))),
            inner.clone().prop_map(|n| Node::Variant(Box::new(Variants::Newtype(n)))),
            (inner.clone(), integer())
                .prop_map(|(n, i)| Node::Variant(Box::new(Variants::Tuple(n, i)))),
            (inner.clone(), proptest::option::of(any::<u64>()))
                .prop_map(|(x, y)| Node::Variant(Box::new(Variants::Struct { x, y }))),
            record(inner.clone()).prop_map(|r| Node::Internal(Box::new(Internal::Carry(r)))),
            (integer(), proptest::option::of(inner.clone())).prop_map(|(n, more)| {
                Node::Internal(Box::new(Internal::Fields { n, more }))
            }),
            (any::<u16>(), inner.clone(), proptest::option::of("[a-z]{0,4}")).prop_map(
                |(outer, z, b)| Node::Flat(Box::new(Flat {
                    outer,
                    inner: Extra { z, b }
                }))
            ),
            inner.clone().prop_map(|n| Node::Transparent(Box::new(Wrapper(n)))),
            inner.clone().prop_map(|n| Node::Tag(None, Box::new(n))),
        ];
        if !flawed {
            return plain.boxed();
        }
        prop_oneof![
            12 => plain,
            1 => (any::<u64>(), inner.clone()).prop_map(|(t, n)| Node::Tag(Some(t), Box::new(n))),
            1 => (0..3u8, inner.clone()).prop_map(|(k, n)| Node::BadTag(k, Box::new(n))),
            1 => (proptest::collection::vec(((0i64..3).prop_map(Node::Int), inner.clone()), 2..4))
                .prop_map(|e| Node::Map(e, true)),
            1 => (MAX_DEPTH - 6..MAX_DEPTH + 2, inner).prop_map(|(d, n)| Node::Deep(d, Box::new(n))),
            // Several refused keys and values: which one is reported depends
            // on the order of the keys.
            1 => proptest::collection::vec((prop_oneof![key(), refused_leaf()], refused_leaf()), 2..5)
                .prop_map(|e| Node::Map(e, true)),
        ]
        .boxed()
    })
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        rng_seed: RngSeed::Fixed(0x6b75_7269_7263_626f),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Within the profile, the direct serializer writes exactly the bytes of
    /// the `Value` path, and they decode as deterministic CBOR.
    #[test]
    fn writes_the_bytes_of_the_value_path(node in node(false)) {
        let direct = to_vec(&node);
        prop_assert_eq!(&direct, &to_vec_via_value(&node));
        let bytes = direct.unwrap();
        prop_assert!(crate::cbor::decode_value(&bytes).is_ok());
    }

    /// With floats, tags, misused tags, custom errors, integers past 64 bits,
    /// duplicate keys and deep nesting in the mix, the same bytes or the same
    /// refusal as the `Value` path.
    #[test]
    fn refuses_what_the_value_path_refuses(node in node(true)) {
        prop_assert_eq!(to_vec(&node), to_vec_via_value(&node));
    }
}

/// Both paths on one value: the direct result, asserted equal to the
/// `Value` path's.
fn same<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CborError> {
    let direct = to_vec(value);
    assert_eq!(direct, to_vec_via_value(value));
    direct
}

fn message_bytes(m: &crate::message::Message) -> Result<Vec<u8>, CborError> {
    use crate::message::Message;
    match m {
        Message::OperationalNotice(m) => same(m),
        Message::ReadmissionRequest(m) => same(m),
        Message::ReadmissionReply(m) => same(m),
        Message::DeadlineExtensionRequest(m) => same(m),
        Message::DeadlineExtensionDecision(m) => same(m),
        Message::TransferArrangement(m) => same(m),
        Message::HandoverConfirmation(m) => same(m),
        Message::DataProtectionNotice(m) => same(m),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..config() })]

    /// Every kind of message body: the bytes of the `Value` path, and the
    /// ones `Message::encode` writes.
    #[test]
    fn message_bodies_write_the_bytes_of_the_value_path(message: crate::message::Message) {
        let bytes = message_bytes(&message).unwrap();
        prop_assert_eq!(message.encode().unwrap(), bytes);
    }
}

#[test]
fn api_values_write_the_bytes_of_the_value_path() {
    use crate::api::{ErrorCode, Request, Response};
    use crate::message::{Message, examples};
    let id = crate::ids::MessageId::new_v7(1_795_874_050_000, [1; 10]);
    for r in [
        Request::Whoami,
        Request::Status {
            msg_id: id,
            wait_ms: Some(300),
        },
        Request::Status {
            msg_id: id,
            wait_ms: None,
        },
        Request::Inbox {
            unread_only: true,
            kind: None,
            case_id: None,
        },
        Request::AuditExport,
    ] {
        let bytes = same(&r).unwrap();
        assert_eq!(Request::decode(&bytes).unwrap(), r);
    }
    for r in [
        Response::AuditBundle {
            bundle: vec![7; 300],
        },
        Response::error(ErrorCode::NotFound, "no such message".to_owned()),
    ] {
        let bytes = same(&r).unwrap();
        assert_eq!(Response::decode(&bytes).unwrap(), r);
    }
    for m in [
        Message::OperationalNotice(examples::notice()),
        Message::ReadmissionRequest(Box::new(examples::readmission_request())),
        Message::ReadmissionReply(examples::confirmation()),
    ] {
        assert_eq!(message_bytes(&m).unwrap(), m.encode().unwrap());
    }
}

/// Each serde shape, pinned to its bytes.
#[test]
fn each_shape_has_its_bytes() {
    let hex = |n: &Node| hex::encode(same(n).unwrap());
    let b = |n: Node| Box::new(n);
    // null, text, the inner value.
    assert_eq!(hex(&Node::Unit), "f6");
    assert_eq!(hex(&Node::UnitStruct), "f6");
    assert_eq!(hex(&Node::Opt(None)), "f6");
    assert_eq!(hex(&Node::Opt(Some(b(Node::Int(-1))))), "20");
    assert_eq!(hex(&Node::Char('é')), "62c3a9");
    assert_eq!(hex(&Node::Collected("a".into())), "633c613e");
    assert_eq!(hex(&Node::Variant(Box::new(Variants::Unit))), "64756e6974");
    assert_eq!(
        hex(&Node::Transparent(Box::new(Wrapper(Node::Bool(true))))),
        "f5"
    );
    assert_eq!(hex(&Node::Tag(None, b(Node::Int(1)))), "01");
    // Not human-readable: an IPv4 address is a 4-tuple, not "1.2.3.4".
    assert_eq!(hex(&Node::Ip([1, 2, 3, 4])), "8401020304");
    // {variant: inner}, {variant: [fields]}, {variant: {fields}}.
    assert_eq!(
        hex(&Node::Variant(Box::new(Variants::Newtype(Node::Int(5))))),
        "a1676e65777479706505"
    );
    assert_eq!(
        hex(&Node::Variant(Box::new(Variants::Tuple(Node::Int(5), -24)))),
        "a1657475706c65820537"
    );
    assert_eq!(
        hex(&Node::Variant(Box::new(Variants::Struct {
            x: Node::Int(5),
            y: None
        }))),
        "a166737472756374a1617805"
    );
    // Integers at the edges of CBOR's 64-bit range.
    assert_eq!(hex(&Node::Wide(i128::from(u64::MAX))), "1bffffffffffffffff");
    assert_eq!(
        hex(&Node::Wide(-1 - i128::from(u64::MAX))),
        "3bffffffffffffffff"
    );
    assert_eq!(
        hex(&Node::WideU(u128::from(u64::MAX))),
        "1bffffffffffffffff"
    );
    // A length hint that is wrong, or missing: the head counts the items.
    let items = vec![Node::Int(0); 23];
    let want = format!("97{}", "00".repeat(23));
    assert_eq!(hex(&Node::SeqMisjudged(items.clone(), 1)), want);
    assert_eq!(hex(&Node::SeqUnsized(items)), want);
    // Keys in bytewise order of their encodings: 1, 100, -1, "a", "aa".
    let entry = |k: Node| (k, Node::Unit);
    let map = vec![
        entry(Node::Text("aa".into())),
        entry(Node::Int(-1)),
        entry(Node::Text("a".into())),
        entry(Node::Int(100)),
        entry(Node::Int(1)),
    ];
    let want = "a5 01f6 1864f6 20f6 6161f6 626161f6".replace(' ', "");
    assert_eq!(hex(&Node::Map(map.clone(), true)), want);
    assert_eq!(hex(&Node::Map(map, false)), want);
}

/// Each refusal, with its exact error, the same as the `Value` path's.
#[test]
fn each_refusal_is_the_value_paths() {
    let b = |n: Node| Box::new(n);
    let refused = |n: Node| same(&n).unwrap_err();
    let in_seq = |n: Node| Node::Seq(vec![Node::Int(1), n]);
    assert_eq!(refused(Node::Float(1.5)), CborError::Unsupported("float"));
    assert_eq!(
        refused(in_seq(Node::Float32(0.0))),
        CborError::Unsupported("float")
    );
    // ciborium's tag, and integers past 64 bits (a bignum tag).
    assert_eq!(
        refused(Node::Tag(Some(1), b(Node::Int(0)))),
        CborError::Unsupported("tag")
    );
    assert_eq!(
        same(&ciborium::tag::Required::<u64, 2>(5)).unwrap_err(),
        CborError::Unsupported("tag")
    );
    assert_eq!(
        refused(Node::Wide(i128::from(u64::MAX) + 1)),
        CborError::Unsupported("tag")
    );
    assert_eq!(
        refused(Node::Wide(-2 - i128::from(u64::MAX))),
        CborError::Unsupported("tag")
    );
    assert_eq!(
        refused(Node::WideU(u128::MAX)),
        CborError::Unsupported("tag")
    );
    // ciborium's tag enum given a signed tag number, or no value.
    assert_eq!(
        refused(Node::BadTag(0, b(Node::Unit))),
        CborError::Schema("Custom(\"expected tag\")".into())
    );
    assert_eq!(
        refused(Node::BadTag(1, b(Node::Unit))),
        CborError::Schema("Custom(\"invalid tag input\")".into())
    );
    // A serializer error of the type.
    assert_eq!(
        refused(Node::Custom("boom".into())),
        CborError::Schema("Custom(\"boom\")".into())
    );
    // Nesting: MAX_DEPTH arrays around a leaf are fine, one more is not.
    let deep = |n: usize| Node::Deep(n, b(Node::Int(0)));
    let bytes = same(&deep(MAX_DEPTH)).unwrap();
    assert_eq!(bytes.len(), MAX_DEPTH + 1);
    assert_eq!(
        refused(deep(MAX_DEPTH + 1)),
        CborError::Malformed(format!(
            "arrays and maps nest deeper than {MAX_DEPTH} levels"
        ))
    );
    // A map given the same key twice.
    let dup = vec![(Node::Int(1), Node::Unit), (Node::Int(1), Node::Bool(true))];
    assert_eq!(
        refused(Node::Map(dup.clone(), true)),
        CborError::DuplicateKey
    );
    assert_eq!(refused(Node::Map(dup, false)), CborError::DuplicateKey);
    // Which refusal when there are several: a serde error before any other,
    // a duplicate key before a flawed value, and values in key order.
    assert_eq!(
        refused(Node::Seq(vec![
            Node::Float(1.0),
            Node::Custom("late".into())
        ])),
        CborError::Schema("Custom(\"late\")".into())
    );
    let flawed_dup = vec![(Node::Int(1), Node::Float(0.0)), (Node::Int(1), Node::Unit)];
    assert_eq!(
        refused(Node::Map(flawed_dup, true)),
        CborError::DuplicateKey
    );
    let two_flaws = vec![
        (Node::Int(2), Node::Float(0.0)),
        (Node::Int(1), deep(MAX_DEPTH)),
    ];
    assert!(matches!(
        refused(Node::Map(two_flaws, true)),
        CborError::Malformed(_)
    ));
}

/// A large byte string deep in maps whose entries come out of key order
/// (an attachment's body in a message in a request): the bytes of the value
/// path, with the largest entry anywhere among its siblings, in maps of
/// known and unknown length.
#[test]
fn a_large_entry_lands_where_its_key_orders_it() {
    let body = |n: usize| Node::Bytes((0..n).map(|i| (i % 251) as u8).collect());
    for place in 0..3 {
        let mut entries = vec![
            (Node::Text("zz".into()), Node::Int(-7)),
            (Node::Text("a".into()), Node::Text("short".into())),
            (Node::Text("mid".into()), Node::Bytes(vec![9; 30])),
        ];
        entries.insert(place, (Node::Text("body".into()), body(100_000)));
        for known in [true, false] {
            let inner = Node::Map(entries.clone(), known);
            let middle = Node::Map(
                vec![
                    (Node::Text("zzz".into()), Node::UInt(1)),
                    (Node::Text("m".into()), inner),
                    (Node::Text("b".into()), Node::Bool(true)),
                ],
                !known,
            );
            let outer = Node::Map(
                vec![(Node::UInt(300), middle), (Node::UInt(2), body(70))],
                known,
            );
            let bytes = same(&outer).unwrap();
            assert!(bytes.len() > 100_000);
        }
    }
}

//! The shape of a topology file, checked over the YAML events before serde reads it, so
//! that every unknown field (with the nearest allowed one), every tag outside YAML's
//! core schema (`!!binary`, `!!timestamp`, local tags) and every merge key (`<<`) is
//! reported at once, each at its line:column. serde stops at its first error; this pass
//! streams the events and keeps only the path to the current node, so its memory does
//! not grow with the file.

use granit_parser::{Event, Marker, Parser, ScalarStyle, Span};

use super::diagnostic::Diagnostic;
use super::suggest;

/// What a place of the file may hold.
#[derive(Debug)]
pub enum Shape {
    /// A value this pass does not look into (scalars, lists of scalars, sysctls).
    Any,
    /// A mapping of these fields (a `Raw*` struct).
    Fields(&'static [(&'static str, Shape)]),
    /// A mapping whose keys the file names (nodes, interfaces), each value of this shape.
    Named(&'static Shape),
    /// A sequence of items of this shape.
    Items(&'static Shape),
}

const INTERFACE: Shape = Shape::Fields(&[
    ("addresses", Shape::Any),
    ("mtu", Shape::Any),
    ("mac", Shape::Any),
    ("up", Shape::Any),
    ("bridge", Shape::Any),
    ("ipv6_autoconf", Shape::Any),
    ("rate", Shape::Any),
    ("burst", Shape::Any),
    ("latency", Shape::Any),
    ("delay", Shape::Any),
    ("jitter", Shape::Any),
    ("loss", Shape::Any),
]);
const STORE_TLS: Shape = Shape::Fields(&[("ca", Shape::Any), ("cert", Shape::Any), ("key", Shape::Any)]);
/// `agent: false` is a scalar, which this pass does not look into; a mapping has these fields.
const AGENT: Shape = Shape::Fields(&[("mode", Shape::Any)]);
const VXLAN: Shape = Shape::Fields(&[
    ("vni", Shape::Any),
    ("port", Shape::Any),
    ("underlay", Shape::Any),
    ("dev", Shape::Any),
    ("local", Shape::Any),
    ("remote", Shape::Any),
    ("group", Shape::Any),
    ("learning", Shape::Any),
    ("proxy", Shape::Any),
    ("l2miss", Shape::Any),
    ("l3miss", Shape::Any),
    ("ttl", Shape::Any),
    ("mtu", Shape::Any),
    ("mac", Shape::Any),
    ("up", Shape::Any),
    ("bridge", Shape::Any),
    ("store", Shape::Any),
    ("store_tls", STORE_TLS),
    ("agent", AGENT),
]);
const ROUTE: Shape = Shape::Fields(&[("to", Shape::Any), ("via", Shape::Any), ("dev", Shape::Any)]);
const NEIGHBOUR: Shape = Shape::Fields(&[("ip", Shape::Any), ("mac", Shape::Any), ("dev", Shape::Any)]);
const FDB: Shape = Shape::Fields(&[("mac", Shape::Any), ("dev", Shape::Any), ("dst", Shape::Any)]);
const MASQUERADE: Shape = Shape::Fields(&[("from", Shape::Any), ("out", Shape::Any), ("to", Shape::Any)]);
const PUBLISH: Shape = Shape::Fields(&[("protocol", Shape::Any), ("on", Shape::Any), ("to", Shape::Any)]);
const NAT: Shape = Shape::Fields(&[("masquerade", Shape::Items(&MASQUERADE)), ("publish", Shape::Items(&PUBLISH))]);
const NODE_DAEMON: Shape = Shape::Fields(&[
    ("store", Shape::Any),
    ("store_tls", STORE_TLS),
    ("public_ip", Shape::Any),
    ("ip_masq", Shape::Any),
]);
const NODE: Shape = Shape::Fields(&[
    ("interfaces", Shape::Named(&INTERFACE)),
    ("bridges", Shape::Named(&INTERFACE)),
    ("routes", Shape::Items(&ROUTE)),
    ("sysctls", Shape::Any),
    ("nat", NAT),
    ("vxlans", Shape::Named(&VXLAN)),
    ("neighbours", Shape::Items(&NEIGHBOUR)),
    ("fdb", Shape::Items(&FDB)),
    ("node", NODE_DAEMON),
]);
const LINK: Shape = Shape::Fields(&[("endpoints", Shape::Any)]);
const PING: Shape = Shape::Fields(&[("from", Shape::Any), ("to", Shape::Any)]);
const TCP: Shape =
    Shape::Fields(&[("from", Shape::Any), ("to", Shape::Any), ("listen", Shape::Any), ("on", Shape::Any)]);
const FDB_CHECK: Shape = Shape::Fields(&[("bridge", Shape::Any), ("learned", Shape::Any)]);
const OVERLAY: Shape =
    Shape::Fields(&[("from", Shape::Any), ("to", Shape::Any), ("vxlan", Shape::Any), ("vni", Shape::Any)]);
const PINGALL: Shape = Shape::Fields(&[("nodes", Shape::Any)]);
/// A check is a mapping of one key, its kind.
const CHECK: Shape = Shape::Fields(&[
    ("ping", PING),
    ("tcp", TCP),
    ("udp", TCP),
    ("fdb", FDB_CHECK),
    ("overlay", OVERLAY),
    ("pingall", PINGALL),
]);
pub const TOPOLOGY: Shape = Shape::Fields(&[
    ("extends", Shape::Any),
    ("name", Shape::Any),
    ("nodes", Shape::Named(&NODE)),
    ("host", NODE),
    ("links", Shape::Items(&LINK)),
    ("checks", Shape::Items(&CHECK)),
]);

/// One open collection on the path to the current event.
enum Frame {
    Mapping { shape: &'static Shape, value: Option<&'static Shape> },
    Sequence { item: &'static Shape },
}

/// The errors of shape, tags and merge keys in `source`. A file the parser cannot read
/// gives none here: serde reports its syntax error with its own message.
pub fn check(source: &str) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    for event in Parser::new_from_str(source) {
        let Ok((event, span)) = event else { return Vec::new() };
        match event {
            Event::DocumentStart(..) => stack.clear(),
            Event::MappingStart(_, _, ref tag) | Event::SequenceStart(_, _, ref tag) => {
                if tag.as_deref().is_some_and(|t| !t.is_yaml_core_schema()) {
                    errors.push(tag_error(&span));
                }
                let shape = next_shape(&mut stack, &mut errors, None, &span);
                stack.push(match (&event, shape) {
                    (Event::MappingStart(..), shape) => Frame::Mapping { shape, value: None },
                    (_, Shape::Items(item)) => Frame::Sequence { item },
                    _ => Frame::Sequence { item: &Shape::Any },
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
            }
            Event::Scalar(text, style, _, tag) => {
                if tag.as_deref().is_some_and(|t| !t.is_yaml_core_schema()) {
                    errors.push(tag_error(&span));
                }
                next_shape(&mut stack, &mut errors, Some((&text, style)), &span);
            }
            Event::Alias(_) => {
                next_shape(&mut stack, &mut errors, None, &span);
            }
            _ => {}
        }
    }
    errors
}

/// The shape of the node an event opens or is; for a mapping key, checks the key.
fn next_shape(
    stack: &mut [Frame],
    errors: &mut Vec<Diagnostic>,
    scalar: Option<(&str, ScalarStyle)>,
    span: &Span,
) -> &'static Shape {
    match stack.last_mut() {
        None => &TOPOLOGY,
        Some(Frame::Sequence { item }) => item,
        // The value is taken; the mapping waits for its next key.
        Some(Frame::Mapping { value: value @ Some(_), .. }) => value.take().unwrap_or(&Shape::Any),
        Some(Frame::Mapping { shape, value }) => {
            let value_shape = match scalar {
                Some(("<<", ScalarStyle::Plain)) => {
                    errors.push(at(&span.start, "merge keys (`<<`) are not supported: write the fields out"));
                    &Shape::Any
                }
                Some((key, _)) => key_shape(shape, key, &span.start, errors),
                // A collection or an alias as a key: serde reports what is wrong with it.
                None => &Shape::Any,
            };
            *value = Some(value_shape);
            // The key's own shape: a scalar, or a collection looked into no further.
            &Shape::Any
        }
    }
}

fn key_shape(shape: &'static Shape, key: &str, start: &Marker, errors: &mut Vec<Diagnostic>) -> &'static Shape {
    match shape {
        Shape::Fields(fields) => match fields.iter().find(|(name, _)| *name == key) {
            Some((_, shape)) => shape,
            None => {
                let names: Vec<&str> = fields.iter().map(|(name, _)| *name).collect();
                let message = match suggest::nearest(key, names.iter().copied()) {
                    Some(near) => format!("unknown field `{key}`, did you mean `{near}`?"),
                    None => format!("unknown field `{key}`, expected one of {}", names.join(", ")),
                };
                errors.push(at(start, message));
                &Shape::Any
            }
        },
        Shape::Named(value) => value,
        Shape::Any | Shape::Items(_) => &Shape::Any,
    }
}

fn tag_error(span: &Span) -> Diagnostic {
    at(
        span.tag_start.as_ref().unwrap_or(&span.start),
        "tags other than YAML's core schema (such as `!!binary`) are not supported",
    )
}

fn at(marker: &Marker, message: impl Into<String>) -> Diagnostic {
    Diagnostic { line: marker.line() as u64, column: marker.col() as u64 + 1, message: message.into() }
}

#[cfg(test)]
mod tests {
    use serde::de::{self, Deserialize, Deserializer, Visitor};

    use super::*;
    use crate::model::raw::*;

    /// A deserializer that only records the field (or variant) names serde asks for.
    struct Capture<'a>(&'a mut &'static [&'static str]);

    impl<'de> Deserializer<'de> for Capture<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("captured"))
        }
        fn deserialize_enum<V: Visitor<'de>>(
            self,
            _: &'static str,
            variants: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = variants;
            Err(de::Error::custom("captured"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map identifier ignored_any
        }
    }

    fn serde_fields<T: for<'de> Deserialize<'de>>() -> Vec<&'static str> {
        let mut fields: &'static [&'static str] = &[];
        let _ = T::deserialize(Capture(&mut fields));
        fields.to_vec()
    }

    fn shape_fields(shape: &Shape) -> Vec<&'static str> {
        match shape {
            Shape::Fields(fields) => fields.iter().map(|(name, _)| *name).collect(),
            _ => Vec::new(),
        }
    }

    /// The shapes here and the `Raw*` types serde reads must name the same fields.
    #[test]
    fn shapes_follow_the_raw_types() {
        let pairs: [(Vec<&str>, &Shape); 18] = [
            (serde_fields::<RawTopology>(), &TOPOLOGY),
            (serde_fields::<RawNode>(), &NODE),
            (serde_fields::<RawInterface>(), &INTERFACE),
            (serde_fields::<RawVxlan>(), &VXLAN),
            (serde_fields::<RawStoreTls>(), &STORE_TLS),
            (serde_fields::<RawAgentOptions>(), &AGENT),
            (serde_fields::<RawNodeDaemon>(), &NODE_DAEMON),
            (serde_fields::<RawRoute>(), &ROUTE),
            (serde_fields::<RawNeighbour>(), &NEIGHBOUR),
            (serde_fields::<RawFdbEntry>(), &FDB),
            (serde_fields::<RawNat>(), &NAT),
            (serde_fields::<RawMasquerade>(), &MASQUERADE),
            (serde_fields::<RawPublish>(), &PUBLISH),
            (serde_fields::<RawLink>(), &LINK),
            (serde_fields::<RawCheck>(), &CHECK),
            (serde_fields::<RawPing>(), &PING),
            (serde_fields::<RawTcp>(), &TCP),
            (serde_fields::<RawOverlay>(), &OVERLAY),
        ];
        for (serde, shape) in pairs {
            assert!(!serde.is_empty());
            assert_eq!(serde, shape_fields(shape));
        }
        assert_eq!(serde_fields::<RawFdbCheck>(), shape_fields(&FDB_CHECK));
    }

    #[test]
    fn reports_every_unknown_field_tag_and_merge_key() {
        let found = check("name: x\nnodez: {}\nhost: {bridges: {br0: {mtuu: 1}}, nat: {masq: []}}\nx: !!binary eA==\n");
        let found: Vec<String> = found.iter().map(|d| format!("{}:{}: {}", d.line, d.column, d.message)).collect();
        assert_eq!(
            found,
            [
                "2:1: unknown field `nodez`, did you mean `nodes`?",
                "3:24: unknown field `mtuu`, did you mean `mtu`?",
                "3:41: unknown field `masq`, expected one of masquerade, publish",
                "4:1: unknown field `x`, expected one of extends, name, nodes, host, links, checks",
                "4:4: tags other than YAML's core schema (such as `!!binary`) are not supported",
            ]
        );
        assert!(check("name: x\nnodes: {A: &a {sysctls: {}}, B: {<<: *a}}\n")[0].message.starts_with("merge keys"));
        assert!(check("name: [unclosed\n").is_empty(), "syntax errors are serde's to report");
    }
}

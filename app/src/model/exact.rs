//! JSON the action digest can tell apart from any other JSON, or a refusal naming the field.
//!
//! The digest canonicalises with RFC 8785, which writes every number as a double: integers
//! past ±2^53 collapse onto a neighbour while the console shows the number as sent. And a
//! parsed object keeps only the last of duplicate keys, so a body could carry a value that
//! nobody is shown. Both are refused here, from the raw text, before anything is stored.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// 2^53: up to it, every integer has a double of its own.
const EXACT_INTEGER_LIMIT: u64 = 1 << 53;

/// Keys longer than this are cut in messages (a key may be as long as the body).
const KEY_SHOWN_CHARS: usize = 64;

/// One step from a document's root to a value inside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathSegment {
    Key(String),
    Index(usize),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InexactProblem {
    /// An integer, as sent, beyond ±2^53.
    IntegerTooLarge(String),
    /// A number too large for JSON integers, read as a double of magnitude 2^53 or more.
    NumberTooLarge(String),
    /// The key appears more than once in the object at the path.
    DuplicateKey(String),
    NotJson(String),
}

/// Why a JSON document was refused, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct InexactJson {
    /// From the root to the offending value; for a duplicate key, to the object holding it.
    pub at: Vec<PathSegment>,
    pub problem: InexactProblem,
}

impl InexactJson {
    /// The field at fault, such as `payload.items[3].id`, or `labels.env` for a duplicate key.
    pub fn field(&self) -> String {
        let mut path = render_path(&self.at);
        if let InexactProblem::DuplicateKey(key) = &self.problem {
            push_key(&mut path, key);
        }
        path
    }
}

impl fmt::Display for InexactJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let place = if self.at.is_empty() {
            "the body".to_string()
        } else {
            render_path(&self.at)
        };
        match &self.problem {
            InexactProblem::IntegerTooLarge(number) => write!(
                f,
                "{place}: the integer {number} is beyond ±2^53 and cannot be represented exactly; send it as a string"
            ),
            InexactProblem::NumberTooLarge(number) => write!(
                f,
                "{place}: the number {number} is too large to be represented exactly (±2^53 or more); send it as a string"
            ),
            InexactProblem::DuplicateKey(key) => {
                write!(f, "{place}: the key `{}` appears twice", shown_key(key))
            }
            InexactProblem::NotJson(detail) => write!(f, "the body is not valid JSON: {detail}"),
        }
    }
}

/// Checks `body` (JSON text) in one streaming pass: every integer within ±2^53, no object
/// with a key twice. Nesting is bounded by serde_json's recursion limit (128).
pub fn check_exact_json(body: &[u8]) -> Result<(), InexactJson> {
    let mut failure = None;
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let walked = Walk { failure: &mut failure }
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end());
    match (walked, failure) {
        (_, Some(mut failure)) => {
            // Segments were pushed while unwinding, innermost first.
            failure.at.reverse();
            Err(failure)
        }
        (Err(err), None) => Err(InexactJson {
            at: Vec::new(),
            problem: InexactProblem::NotJson(err.to_string()),
        }),
        (Ok(()), None) => Ok(()),
    }
}

/// Visits one value. On a problem it fills `failure` and fails; each enclosing array or
/// object then adds its step, so the path costs nothing unless something is refused.
struct Walk<'f> {
    failure: &'f mut Option<InexactJson>,
}

impl Walk<'_> {
    fn refuse<E: de::Error>(self, problem: InexactProblem) -> Result<(), E> {
        *self.failure = Some(InexactJson {
            at: Vec::new(),
            problem,
        });
        Err(E::custom("inexact JSON"))
    }
}

fn add_step(failure: &mut Option<InexactJson>, step: PathSegment) {
    if let Some(failure) = failure {
        failure.at.push(step);
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, number: u64) -> Result<(), E> {
        if number > EXACT_INTEGER_LIMIT {
            return self.refuse(InexactProblem::IntegerTooLarge(number.to_string()));
        }
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, number: i64) -> Result<(), E> {
        if number.unsigned_abs() > EXACT_INTEGER_LIMIT {
            return self.refuse(InexactProblem::IntegerTooLarge(number.to_string()));
        }
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, number: f64) -> Result<(), E> {
        // serde_json reads integers past the 64-bit range as doubles too; from 2^53 on a
        // double cannot say which integer was sent.
        if number.abs() >= EXACT_INTEGER_LIMIT as f64 {
            return self.refuse(InexactProblem::NumberTooLarge(format!("{number:e}")));
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        let Walk { failure } = self;
        let mut index = 0;
        loop {
            match items.next_element_seed(Walk { failure: &mut *failure }) {
                Ok(Some(())) => index += 1,
                Ok(None) => return Ok(()),
                Err(err) => {
                    add_step(failure, PathSegment::Index(index));
                    return Err(err);
                }
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<(), A::Error> {
        let Walk { failure } = self;
        // Keys without escapes borrow from the body.
        let mut seen: HashSet<Cow<'de, str>> = HashSet::new();
        while let Some(key) = entries.next_key_seed(KeySeed)? {
            if seen.contains(key.as_ref()) {
                *failure = Some(InexactJson {
                    at: Vec::new(),
                    problem: InexactProblem::DuplicateKey(key.into_owned()),
                });
                return Err(de::Error::custom("duplicate key"));
            }
            if let Err(err) = entries.next_value_seed(Walk { failure: &mut *failure }) {
                add_step(failure, PathSegment::Key(key.into_owned()));
                return Err(err);
            }
            seen.insert(key);
        }
        Ok(())
    }
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(key))
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key.to_owned()))
    }

    fn visit_string<E: de::Error>(self, key: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key))
    }
}

fn render_path(steps: &[PathSegment]) -> String {
    let mut path = String::new();
    for step in steps {
        match step {
            PathSegment::Key(key) => push_key(&mut path, key),
            PathSegment::Index(index) => path.push_str(&format!("[{index}]")),
        }
    }
    path
}

/// `.key` for plain keys; `["odd key"]` for keys that would make the path ambiguous.
fn push_key(path: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key.chars().count() <= KEY_SHOWN_CHARS
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
    } else {
        path.push_str(&format!("[\"{}\"]", shown_key(key)));
    }
}

fn shown_key(key: &str) -> String {
    let mut shown: String = key.chars().take(KEY_SHOWN_CHARS).flat_map(char::escape_debug).collect();
    if key.chars().nth(KEY_SHOWN_CHARS).is_some() {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    fn refusal(body: &str) -> InexactJson {
        match check_exact_json(body.as_bytes()) {
            Err(refusal) => refusal,
            Ok(()) => panic!("accepted {body}"),
        }
    }

    #[test]
    fn integers_up_to_two_to_the_53_pass() {
        for body in [
            r#"{"n": 9007199254740992}"#,
            r#"{"n": -9007199254740992}"#,
            r#"[0, 1.5, -2.25e10, "9007199254740993", true, null, {}]"#,
            "9007199254740992",
        ] {
            assert_eq!(check_exact_json(body.as_bytes()), Ok(()), "{body}");
        }
    }

    #[test]
    fn integers_past_two_to_the_53_are_named_by_path() {
        let refused = refusal(r#"{"payload": {"n": 9007199254740993}}"#);
        assert_eq!(refused.field(), "payload.n");
        assert_eq!(
            refused.to_string(),
            "payload.n: the integer 9007199254740993 is beyond ±2^53 and cannot be represented exactly; send it as a string"
        );
        let nested = refusal(r#"{"payload": {"items": [{}, {}, {}, {"id": -9007199254740993}]}}"#);
        assert_eq!(nested.field(), "payload.items[3].id");
        assert_eq!(
            nested.problem,
            InexactProblem::IntegerTooLarge("-9007199254740993".into())
        );
        let past_u64 = refusal(r#"{"n": 184467440737095516160}"#);
        assert_eq!(past_u64.field(), "n");
        assert!(matches!(past_u64.problem, InexactProblem::NumberTooLarge(_)));
        assert!(matches!(
            refusal(r#"{"n": 1e300}"#).problem,
            InexactProblem::NumberTooLarge(_)
        ));
        assert_eq!(refusal("[1, [2, 12345678901234567]]").field(), "[1][1]");
    }

    #[test]
    fn duplicate_keys_are_named_with_their_object() {
        let refused = refusal(r#"{"labels": {"env": "dev", "team": "x", "env": "prod"}}"#);
        assert_eq!(refused.field(), "labels.env");
        assert_eq!(refused.to_string(), "labels: the key `env` appears twice");
        // The same key spelled with an escape is the same key.
        assert_eq!(
            refusal(r#"{"a": 1, "\u0061": 2}"#).to_string(),
            "the body: the key `a` appears twice"
        );
        assert_eq!(
            refusal(r#"{"payload": {"app.kubernetes.io/name": 1, "app.kubernetes.io/name": 2}}"#).field(),
            "payload[\"app.kubernetes.io/name\"]"
        );
        // The same key in different objects is fine.
        assert_eq!(
            check_exact_json(br#"{"a": {"k": 1}, "b": {"k": 1}, "k": [{"k": 1}, {"k": 2}]}"#),
            Ok(())
        );
    }

    #[test]
    fn text_that_is_not_json_is_refused_and_depth_is_bounded() {
        assert!(matches!(refusal("{\"a\": ").problem, InexactProblem::NotJson(_)));
        assert!(matches!(refusal("{} {}").problem, InexactProblem::NotJson(_)));
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(check_exact_json(deep.as_bytes()), Ok(()));
        let too_deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(refusal(&too_deep).problem, InexactProblem::NotJson(_)));
    }

    fn exact_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-(1_i64 << 53)..=(1_i64 << 53)).prop_map(Value::from),
            (-1e15_f64..1e15).prop_map(Value::from),
            ".{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(".{0,6}", inner, 0..6)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    proptest! {
        #[test]
        fn documents_serde_json_writes_pass(document in exact_json()) {
            let text = serde_json::to_string(&document).unwrap_or_default();
            prop_assert_eq!(check_exact_json(text.as_bytes()), Ok(()));
        }

        #[test]
        fn an_integer_passes_exactly_when_within_two_to_the_53(number in -(1_i128 << 70)..(1_i128 << 70)) {
            let verdict = check_exact_json(format!("{{\"n\": {number}}}").as_bytes());
            prop_assert_eq!(verdict.is_ok(), number.unsigned_abs() <= 1 << 53, "{:?}", verdict);
        }

        #[test]
        fn the_path_leads_to_the_planted_integer(
            steps in prop::collection::vec(prop_oneof![
                "[a-z_]{1,8}".prop_map(PathSegment::Key),
                (0_usize..4).prop_map(PathSegment::Index),
            ], 0..6),
        ) {
            let mut document = json!(9007199254740993_u64);
            for step in steps.iter().rev() {
                document = match step {
                    PathSegment::Key(key) => json!({ "~before": 1, key.as_str(): document, "~after": [2] }),
                    PathSegment::Index(index) => {
                        let mut items = vec![json!({"x": 1}); *index];
                        items.push(document);
                        items.push(json!(3));
                        Value::Array(items)
                    }
                };
            }
            let text = serde_json::to_string(&document).unwrap_or_default();
            let refused = check_exact_json(text.as_bytes());
            prop_assert_eq!(refused.map_err(|refusal| refusal.at), Err(steps));
        }

        #[test]
        fn any_bytes_get_an_answer(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = check_exact_json(&bytes);
        }
    }
}

//! Request parameters: a form body or a query decoded once, checked against the rule of
//! the type it is read into, and deserialized into that type. Every request read from
//! parameters is read here (the HTTP extractors in `http/params.rs`, and the pending
//! authorization request the sign-in pages carry), so that one rule holds everywhere
//! (OAuth 2.1 §3.1, RFC 6749 §3.1): a parameter sent without a value counts as omitted, a
//! parameter may be given once unless its type reads a list of it, and unknown
//! parameters are ignored.
//!
//! The typed requests derive `Deserialize` (read here) and `ToSchema` or `IntoParams`
//! (documented in `openapi.json`): what is published is what is parsed.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, DeserializeOwned, Deserializer, IntoDeserializer, Visitor};

/// A request type read from parameters.
pub trait Parameters: DeserializeOwned {
    /// Parameters that may be given more than once; the type reads each as a list
    /// (RFC 8707 §2 lets a client name several resources).
    const REPEATABLE: &'static [&'static str] = &[];

    /// What a value of the tag of an enum that names none of its variants is refused as.
    const UNKNOWN_VARIANT: ParamError = ParamError::Malformed;
}

/// Why parameters could not be read. The texts name only parameters this server knows,
/// in its own spelling, so that no answer echoes what a request sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamError {
    /// A parameter given more than once that may be given only once; named when it is
    /// one of ours.
    Repeated(Option<&'static str>),
    /// A required parameter is missing.
    Missing(&'static str),
    /// A `grant_type` this server does not offer (RFC 6749 §5.2
    /// `unsupported_grant_type`); the text says which it offers.
    UnsupportedGrantType(&'static str),
    /// A parameter whose value the type does not take.
    Malformed,
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamError::Repeated(Some(name)) => write!(f, "parameter {name} is repeated"),
            ParamError::Repeated(None) => f.write_str("a parameter is repeated"),
            ParamError::Missing(name) => write!(f, "missing parameter {name}"),
            ParamError::UnsupportedGrantType(why) => f.write_str(why),
            ParamError::Malformed => f.write_str("a parameter has a value that is not accepted"),
        }
    }
}

/// Parameters of the endpoints served here: only these are named in an error.
const KNOWN: [&str; 33] = [
    "token",
    "token_type_hint",
    "grant_type",
    "refresh_token",
    "scope",
    "resource",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "code",
    "redirect_uri",
    "code_verifier",
    "username",
    "password",
    "request",
    "csrf_token",
    "decision",
    "response_type",
    "state",
    "code_challenge",
    "code_challenge_method",
    "error",
    "iss",
    "subject_token",
    "subject_token_type",
    "actor_token",
    "actor_token_type",
    "requested_token_type",
    "audience",
    "assertion",
    "nonce",
    "prompt",
];

fn known(name: &str) -> Option<&'static str> {
    KNOWN.iter().find(|known| **known == name).copied()
}

/// Decoded parameters, before they are read into a type: names and values borrowed from
/// the bytes where no percent-decoding was needed, in the order sent. `Debug` shows
/// names only: values include tokens and secrets.
pub struct Decoded<'a>(Vec<(Cow<'a, str>, Field<'a>)>);

/// One parameter's value, or the list of a repeatable parameter's values.
enum Field<'a> {
    One(Cow<'a, str>),
    Many(Vec<Cow<'a, str>>),
}

impl fmt::Debug for Decoded<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| name))
            .finish()
    }
}

/// Decodes `application/x-www-form-urlencoded` bytes (a body or a query): empty values
/// are dropped as omitted, then a name given twice is refused unless it is in
/// `repeatable`, whose values are kept as a list in their order.
pub fn decode<'a>(bytes: &'a [u8], repeatable: &[&str]) -> Result<Decoded<'a>, ParamError> {
    // A request carries a handful of parameters: a list searched in place beats a map.
    let mut fields: Vec<(Cow<'a, str>, Field<'a>)> = Vec::with_capacity(8);
    for (name, value) in url::form_urlencoded::parse(bytes) {
        if value.is_empty() {
            continue;
        }
        let given = fields.iter_mut().find(|(known, _)| *known == name);
        match given {
            Some((_, Field::Many(values))) => values.push(value),
            Some(_) => return Err(ParamError::Repeated(known(&name))),
            None if repeatable.contains(&name.as_ref()) => {
                fields.push((name, Field::Many(vec![value])));
            }
            None => fields.push((name, Field::One(value))),
        }
    }
    Ok(Decoded(fields))
}

impl Decoded<'_> {
    /// The parameters read into `T`; those `T` does not name are ignored.
    pub fn read<T: Parameters>(&self) -> Result<T, ParamError> {
        let entries = self
            .0
            .iter()
            .map(|(name, field)| (name.as_ref(), FieldDeserializer(field)));
        T::deserialize(MapDeserializer::new(entries)).map_err(|err| match err {
            Refusal::Missing(name) => {
                known(name).map_or(ParamError::Malformed, ParamError::Missing)
            }
            Refusal::UnknownVariant => T::UNKNOWN_VARIANT,
            Refusal::Malformed => ParamError::Malformed,
        })
    }
}

/// Reads `T` from a query or body: [`decode`] by `T`'s rule, then [`Decoded::read`].
pub fn parse<T: Parameters>(bytes: &[u8]) -> Result<T, ParamError> {
    decode(bytes, T::REPEATABLE)?.read()
}

/// Why a type could not be read from the parameters, as serde reports it, in words of
/// our own: serde's default texts can quote the value sent (`unknown variant ...`), so
/// no text is kept at all.
#[derive(Debug)]
enum Refusal {
    Missing(&'static str),
    UnknownVariant,
    Malformed,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Missing(name) => write!(f, "missing parameter {name}"),
            Refusal::UnknownVariant => f.write_str("unknown variant"),
            Refusal::Malformed => f.write_str("malformed parameter"),
        }
    }
}

impl std::error::Error for Refusal {}

impl de::Error for Refusal {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Refusal::Malformed
    }

    fn missing_field(field: &'static str) -> Self {
        Refusal::Missing(field)
    }

    fn unknown_variant(_: &str, _: &'static [&'static str]) -> Self {
        Refusal::UnknownVariant
    }
}

/// A parameter's value as serde reads it: text, or a list of texts for a repeatable
/// parameter. Values are only ever text, so every type reads them as text.
struct FieldDeserializer<'a, 'b>(&'b Field<'a>);

impl<'de> IntoDeserializer<'de, Refusal> for FieldDeserializer<'_, '_> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> Deserializer<'de> for FieldDeserializer<'_, '_> {
    type Error = Refusal;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        match self.0 {
            Field::One(value) => visitor.visit_str(value),
            Field::Many(values) => {
                let items = values.iter().map(|value| value.as_ref());
                visitor.visit_seq(SeqDeserializer::new(items))
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Refusal> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Refusal> {
        match self.0 {
            Field::One(value) => visitor.visit_enum(value.as_ref().into_deserializer()),
            Field::Many(_) => Err(Refusal::Malformed),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

/// Reads a list of repeatable parameters that may be absent.
pub fn absent_is_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    Option::<Vec<T>>::deserialize(deserializer).map(Option::unwrap_or_default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Sample {
        token: String,
        token_type_hint: Option<String>,
        #[serde(default)]
        resource: Vec<String>,
    }

    impl Parameters for Sample {
        const REPEATABLE: &'static [&'static str] = &["resource"];
    }

    fn read(body: &str) -> Result<Sample, ParamError> {
        decode(body.as_bytes(), &["resource"])?.read()
    }

    #[test]
    fn repeated_parameter_is_refused_and_named() {
        assert_eq!(
            read("token=a&token=b"),
            Err(ParamError::Repeated(Some("token")))
        );
        assert_eq!(
            ParamError::Repeated(Some("token")).to_string(),
            "parameter token is repeated"
        );
    }

    #[test]
    fn repeatable_parameters_are_lists_in_order() {
        let sample = read("token=t&resource=urn%3Aa&resource=urn%3Ab").unwrap();
        assert_eq!(sample.resource, ["urn:a", "urn:b"]);
        assert_eq!(
            read("token=t&resource=urn%3Aa").unwrap().resource,
            ["urn:a"]
        );
        assert!(read("token=t").unwrap().resource.is_empty());
    }

    #[test]
    fn empty_values_count_as_omitted() {
        let sample = read("token=t&token_type_hint=").unwrap();
        assert_eq!(sample.token_type_hint, None);
        assert_eq!(read("token="), Err(ParamError::Missing("token")));
        // Omitted, so not repeated either.
        assert_eq!(read("token=&token=t").unwrap().token, "t");
    }

    #[test]
    fn values_are_percent_decoded() {
        assert_eq!(read("token=a%2Bb+c").unwrap().token, "a+b c");
    }

    #[test]
    fn garbage_bytes_do_not_fail_the_decoder() {
        let decoded = decode(&[0xff, b'=', 0xfe, b'&', b'&', b'='], &[]).unwrap();
        assert_eq!(decoded.read::<Sample>(), Err(ParamError::Missing("token")));
    }

    #[test]
    fn odd_names_are_never_echoed() {
        let err = decode(b"%3Cscript%3E=1&%3Cscript%3E=2", &[]).unwrap_err();
        assert_eq!(err, ParamError::Repeated(None));
        assert!(!err.to_string().contains("script"));
    }

    #[test]
    fn unknown_variants_are_not_echoed() {
        #[derive(Debug, Deserialize)]
        #[serde(tag = "grant_type", rename_all = "snake_case")]
        enum Grant {
            ClientCredentials {},
        }
        impl Parameters for Grant {
            const UNKNOWN_VARIANT: ParamError = ParamError::UnsupportedGrantType("no");
        }
        let err = parse::<Grant>(b"grant_type=attacker_text").unwrap_err();
        assert!(matches!(err, ParamError::UnsupportedGrantType(_)));
        assert_eq!(err, ParamError::UnsupportedGrantType("no"));
        assert!(!err.to_string().contains("attacker"));
        assert!(parse::<Grant>(b"grant_type=client_credentials").is_ok());
        assert_eq!(
            parse::<Grant>(b"").unwrap_err(),
            ParamError::Missing("grant_type")
        );
    }

    #[test]
    fn debug_shows_names_only() {
        let decoded = decode(b"token=secret-token-value", &[]).unwrap();
        let shown = format!("{decoded:?}");
        assert!(!shown.contains("secret-token-value"));
        assert!(shown.contains("token"));
    }
}

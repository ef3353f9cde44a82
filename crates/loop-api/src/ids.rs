//! IDs of the service's objects, parsed where they arrive.
//!
//! Every ID the server issues is its kind's prefix, an underscore and 32 lowercase hex
//! digits (128 random bits): `tn_` tenant, `us_` user, `rb_` role binding, `dv_` device,
//! `tk_` token, `vt_` vault, `se_` session, `jb_` job, `po_` policy, `pi_` protected item. Requests carry them as these types, so an ID of
//! another shape is refused as the request is read (a path answers 404, as for any path
//! that names nothing; a body or query answers 400) and never reaches a lookup. On the wire
//! an ID is the plain string, and the OpenAPI document gives it as a string with a pattern.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Hex digits after the prefix: 16 random bytes.
const HEX_DIGITS: usize = 32;

/// True when `s` is `prefix`, `_` and [`HEX_DIGITS`] lowercase hex digits.
fn has_shape(prefix: &str, s: &str) -> bool {
    s.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|hex| {
            hex.len() == HEX_DIGITS && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
}

/// A string that is not an ID of the expected kind. Its message does not repeat the value,
/// which may be anything a client sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidId {
    /// The kind of object, e.g. "tenant".
    pub what: &'static str,
    pub prefix: &'static str,
}

impl std::fmt::Display for InvalidId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "not a {} ID: expected {}_ and {HEX_DIGITS} lowercase hex digits",
            self.what, self.prefix
        )
    }
}

impl std::error::Error for InvalidId {}

macro_rules! ids {
    ($(
        $(#[$meta:meta])*
        pub struct $name:ident($prefix:literal, $what:literal);
    )*) => {
        $(
            $(#[$meta])*
            #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
            pub struct $name(String);

            impl $name {
                /// The prefix that names the kind, without its underscore.
                pub const PREFIX: &'static str = $prefix;

                pub fn parse(s: &str) -> Result<$name, InvalidId> {
                    $name::from_string(s.to_string())
                }

                fn from_string(s: String) -> Result<$name, InvalidId> {
                    if has_shape($prefix, &s) {
                        Ok($name(s))
                    } else {
                        Err(InvalidId { what: $what, prefix: $prefix })
                    }
                }

                pub fn as_str(&self) -> &str {
                    &self.0
                }
            }

            impl std::fmt::Display for $name {
                fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.pad(&self.0)
                }
            }

            impl std::str::FromStr for $name {
                type Err = InvalidId;

                fn from_str(s: &str) -> Result<$name, InvalidId> {
                    $name::parse(s)
                }
            }

            impl AsRef<str> for $name {
                fn as_ref(&self) -> &str {
                    &self.0
                }
            }

            impl From<$name> for String {
                fn from(id: $name) -> String {
                    id.0
                }
            }

            impl Serialize for $name {
                fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    s.serialize_str(&self.0)
                }
            }

            impl<'de> Deserialize<'de> for $name {
                fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                    $name::from_string(String::deserialize(d)?).map_err(serde::de::Error::custom)
                }
            }

            #[cfg(feature = "openapi")]
            impl utoipa::PartialSchema for $name {
                fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                    id_schema($prefix, $what)
                }
            }

            #[cfg(feature = "openapi")]
            impl utoipa::ToSchema for $name {}
        )*
    };
}

#[cfg(feature = "openapi")]
fn id_schema(prefix: &str, what: &str) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(format!("^{prefix}_[0-9a-f]{{{HEX_DIGITS}}}$")))
        .description(Some(format!(
            "A {what} ID: `{prefix}_` and {HEX_DIGITS} lowercase hex digits."
        )))
        .into()
}

ids! {
    pub struct TenantId("tn", "tenant");
    pub struct UserId("us", "user");
    pub struct RoleBindingId("rb", "role binding");
    pub struct DeviceId("dv", "device");
    pub struct TokenId("tk", "token");
    pub struct VaultId("vt", "vault");
    pub struct SessionId("se", "session");
    pub struct JobId("jb", "job");
    pub struct PolicyId("po", "policy");
    pub struct ItemId("pi", "protected item");
    pub struct TargetId("nt", "notification target");
    pub struct EventId("ev", "event");
    pub struct DeliveryId("dl", "delivery");
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn an_id_parses_only_in_its_own_shape() {
        let id = format!("vt_{HEX}");
        assert_eq!(VaultId::parse(&id).unwrap().as_str(), id);
        assert_eq!(id.parse::<VaultId>().unwrap().to_string(), id);
        for bad in [
            format!("tn_{HEX}"),
            format!("vt{HEX}"),
            format!("vt_{}", HEX.to_uppercase()),
            format!("vt_{HEX}0"),
            format!("vt_{}", &HEX[1..]),
            format!(" vt_{HEX}"),
            "vt_../../etc/passwd".to_string(),
            "vt_".to_string(),
            String::new(),
        ] {
            let e = VaultId::parse(&bad).unwrap_err();
            assert_eq!(
                e.to_string(),
                "not a vault ID: expected vt_ and 32 lowercase hex digits"
            );
        }
    }

    #[test]
    fn ids_travel_as_plain_strings_and_are_checked_when_read() {
        let id = TenantId::parse(&format!("tn_{HEX}")).unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"tn_{HEX}\""));
        let back: TenantId = serde_json::from_str(&format!("\"tn_{HEX}\"")).unwrap();
        assert_eq!(back, id);
        let e = serde_json::from_str::<TenantId>("\"tn_nope\"").unwrap_err();
        assert!(e.to_string().contains("not a tenant ID"), "{e}");
        assert!(serde_json::from_str::<TenantId>("42").is_err());
    }
}

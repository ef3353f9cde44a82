//! The derives every wire type shares, and closed sets of strings as enums.

/// Applies the wire derives (and the OpenAPI schema derive, when enabled) to each item.
macro_rules! wire {
    ($($item:item)*) => {
        $(
            #[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
            #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
            $item
        )*
    };
}

/// Defines a closed set of values that travels as one of a fixed list of strings: the
/// variant's name in kebab-case (serde `rename_all`, which the OpenAPI enum schema follows
/// too), also given as the string `as_str`, [`Display`](std::fmt::Display) and
/// [`FromStr`](std::str::FromStr) use. The two spellings must agree; a test holds them to
/// the strings these fields carried when they were plain strings, so the JSON is unchanged.
macro_rules! closed_set {
    ($(
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
        }
    )*) => {
        $(
            $(#[$meta])*
            #[derive(
                Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize,
                serde::Deserialize,
            )]
            #[serde(rename_all = "kebab-case")]
            #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
            pub enum $name {
                $($(#[$vmeta])* $variant,)+
            }

            impl $name {
                /// Every value, in declaration order.
                pub const ALL: &'static [$name] = &[$($name::$variant),+];

                pub fn as_str(self) -> &'static str {
                    match self {
                        $($name::$variant => $text,)+
                    }
                }
            }

            impl std::fmt::Display for $name {
                fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    // `pad`, so that widths in format strings (`{:<8}`) apply.
                    f.pad(self.as_str())
                }
            }

            impl std::str::FromStr for $name {
                type Err = $crate::UnknownValue;

                fn from_str(s: &str) -> Result<$name, $crate::UnknownValue> {
                    match s {
                        $($text => Ok($name::$variant),)+
                        _ => Err($crate::UnknownValue {
                            what: $what,
                            value: s.to_string(),
                            expected: &[$($text),+],
                        }),
                    }
                }
            }
        )*
    };
}

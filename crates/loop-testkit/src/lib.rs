//! `loop-testkit`: what the test suites of every crate share.
//!
//! - [`browser`]: a real headless Chromium driven over WebDriver (feature `browser`);
//! - [`data`]: deterministic generated file contents (incompressible noise, compressible text);
//! - [`tree`]: file trees with every kind of node and metadata, and their comparison;
//! - [`garage`]: a real Garage S3 server per test;
//! - [`haproxy`]: a real HAProxy in front of server nodes (TCP, PROXY protocol v2);
//! - [`postgres`]: a real PostgreSQL cluster the test processes share, a database per test;
//! - [`smtp`]: a real SMTP server that keeps what it receives;
//! - [`stripe`]: a strict stand-in for the payment processor's API (no real one is reachable);
//! - [`webhook`]: an HTTP receiver for webhooks that keeps what it receives;
//! - [`assert_no_debug!`]: types that must never print themselves.
//!
//! A test that needs a component this machine lacks skips loudly, except under CI ([`in_ci`]),
//! where it fails. The servers under test have their own harnesses: `loop-server`'s tests run
//! the service in process (with a clock they can move), `loop-cli`'s run the `loop` binary.

#[cfg(feature = "browser")]
pub mod browser;
pub mod data;
pub mod garage;
pub mod haproxy;
pub mod postgres;
pub mod smtp;
pub mod stripe;
pub mod tree;
pub mod webhook;

/// True under CI (`CI` set to anything but empty, `0` or `false`), where a missing component
/// fails a test instead of skipping it.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Fails to compile when any of the types implements `Debug`: for types that carry keys,
/// passwords, codes or tokens. (Where a type has `Debug`, the second implementation below
/// also applies, and the call cannot choose between them.)
#[macro_export]
macro_rules! assert_no_debug {
    ($($t:ty),+ $(,)?) => {{
        trait NoDebug<A> {
            fn check() {}
        }
        impl<T: ?Sized> NoDebug<()> for T {}
        struct WithDebug;
        impl<T: ?Sized + ::std::fmt::Debug> NoDebug<WithDebug> for T {}
        $(<$t as NoDebug<_>>::check();)+
    }};
}

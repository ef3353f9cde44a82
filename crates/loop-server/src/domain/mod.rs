//! The service's vocabulary as parsed types: a value of these types is valid by construction,
//! so handlers parse at the edge and the rest of the code never re-checks. The requests that
//! create and change things are parsed in [`requests`].

mod items;
mod requests;

pub use items::{DEFAULT_WINDOW_SECONDS, check_item};
pub use loop_api::{Role, TenantKind, TokenPermission};
pub use requests::{
    NewDevice, NewTenant, NewToken, NewUser, NewVault, TenantChanges, UserChanges,
    check_maintenance, check_policy, quota_bytes, retention_lock_days,
};

/// A user-visible validation failure; the message is safe to show to the client.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn invalid(msg: impl Into<String>) -> Invalid {
    Invalid(msg.into())
}

/// A fresh random ID with a prefix naming its kind: `tn_` tenant, `us_` user, `rb_` role
/// binding, `dv_` device, `tk_` token, `vt_` vault, `se_` session. 128 random bits.
pub fn new_id(prefix: &str) -> String {
    use rand::Rng as _;
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    format!("{prefix}_{}", hex::encode(b))
}

/// A random 256-bit secret (tokens, session IDs, invites) with its kind prefix.
pub fn new_secret(prefix: &str) -> String {
    use rand::Rng as _;
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    format!("{prefix}_{}", hex::encode(b))
}

/// How secrets are stored: their BLAKE3 hash. Secrets have 256 random bits, so a fast hash
/// is enough (no dictionary to attack).
pub fn secret_hash(secret: &str) -> String {
    blake3::derive_key(
        "loop-backup 2026-11-30 stored secret hash v1",
        secret.as_bytes(),
    )
    .iter()
    .map(|b| format!("{b:02x}"))
    .collect()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// A new or changed address: [`EmailAddress::lookup`]'s rules, and one the mail client
    /// will take (`ops@example..com` it refuses at sending time, and a notification target
    /// naming it would fail for everyone on it).
    pub fn parse(s: &str) -> Result<EmailAddress, Invalid> {
        let e = EmailAddress::lookup(s)?;
        if e.0.parse::<lettre::Address>().is_err() {
            return Err(invalid("e-mail address is not valid"));
        }
        Ok(e)
    }

    /// An address as accounts are found by it (a sign-in, a password reset): trimmed, in
    /// lower case, one `@` between non-empty parts. Looser than [`EmailAddress::parse`], so an
    /// account stored under an address the stricter rule now refuses still signs in.
    pub fn lookup(s: &str) -> Result<EmailAddress, Invalid> {
        let s = s.trim().to_lowercase();
        let bad = || invalid("e-mail address is not valid");
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = s.split_once('@').ok_or_else(bad)?;
        if local.is_empty() || domain.is_empty() || domain.contains('@') || local.len() > 64 {
            return Err(bad());
        }
        Ok(EmailAddress(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A display name (tenant, vault, device, token, person): 1 to 200 characters, no control
/// characters.
pub fn parse_name(what: &str, s: &str) -> Result<String, Invalid> {
    use unicode_normalization::UnicodeNormalization as _;
    // NFC, so that two spellings of the same name are the same string.
    let t: String = s.trim().nfc().collect();
    if t.is_empty()
        || t.chars().count() > 200
        || t.chars().any(|c| c.is_control() || is_invisible_format(c))
    {
        return Err(invalid(format!(
            "{what} must be 1 to 200 characters without control, bidirectional or zero-width \
             characters"
        )));
    }
    Ok(t)
}

/// Characters that change how the text around them is shown without showing themselves:
/// bidirectional marks, embeddings, overrides and isolates (a name that reads other than it
/// is stored), and zero-width characters (two names that look the same but differ).
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// A business address: up to 1000 characters; newlines allowed.
pub fn parse_address(s: &str) -> Result<String, Invalid> {
    if s.chars().count() > 1000 || s.chars().any(|c| c.is_control() && c != '\n') {
        return Err(invalid(
            "business address is too long or has control characters",
        ));
    }
    Ok(s.trim().to_string())
}

/// A new password: 12 to 1024 characters. Length is the rule that matters (NIST 800-63B).
pub fn check_new_password(p: &str) -> Result<(), Invalid> {
    let n = p.chars().count();
    if !(12..=1024).contains(&n) {
        return Err(invalid("password must be 12 to 1024 characters"));
    }
    Ok(())
}

/// A tenant's place in the tree: `/`, then the ID of each tenant from the provider down to
/// this one, each followed by `/` (`/tn_p/tn_a/tn_c/`). A tenant's subtree is every tenant
/// whose path starts with its own; this type is the one place that rule is written.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TenantPath(String);

impl TenantPath {
    /// The provider's path, the root of the tree.
    pub fn root(id: &str) -> TenantPath {
        TenantPath(format!("/{id}/"))
    }

    /// The path of this tenant's child `id`.
    pub fn child(&self, id: &str) -> TenantPath {
        TenantPath(format!("{}{id}/", self.0))
    }

    /// True when `other` is this tenant or one below it.
    pub fn contains(&self, other: &TenantPath) -> bool {
        other.0.starts_with(&self.0)
    }

    /// True for the provider's path, whose subtree is the whole service.
    pub fn is_root(&self) -> bool {
        self.0.matches('/').count() == 2
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The IDs on the path, the provider's first and this tenant's last.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|s| !s.is_empty())
    }

    /// The parent's path; `None` for the provider.
    pub fn parent(&self) -> Option<TenantPath> {
        let inner = &self.0[..self.0.len() - 1];
        let cut = inner.rfind('/')?;
        (cut > 0).then(|| TenantPath(self.0[..=cut].to_string()))
    }
}

impl std::str::FromStr for TenantPath {
    type Err = loop_api::UnknownValue;

    /// A stored path; anything but `/`-separated, non-empty segments is damage.
    fn from_str(s: &str) -> Result<TenantPath, loop_api::UnknownValue> {
        let inner = s.strip_prefix('/').and_then(|s| s.strip_suffix('/'));
        match inner {
            Some(inner) if inner.split('/').all(|seg| !seg.is_empty()) => {
                Ok(TenantPath(s.to_string()))
            }
            _ => Err(loop_api::UnknownValue {
                what: "tenant path",
                value: s.to_string(),
                expected: &["/ID/ID/.../"],
            }),
        }
    }
}

/// The tenants a listing covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TenantScope {
    /// The one tenant a caller named (`?tenant_id=`), without the tenants below it.
    One(String),
    /// Every tenant in these subtrees (none: no tenant at all).
    Subtrees(Vec<TenantPath>),
}

/// The tree's shape, which the wire type [`TenantKind`] does not know.
pub trait TenantTree {
    /// Provider → partner → customer, and a provider may also serve customers directly.
    fn may_have_child(self, child: TenantKind) -> bool;
}

impl TenantTree for TenantKind {
    fn may_have_child(self, child: TenantKind) -> bool {
        matches!(
            (self, child),
            (TenantKind::Provider, TenantKind::Partner)
                | (TenantKind::Provider, TenantKind::Customer)
                | (TenantKind::Partner, TenantKind::Customer)
        )
    }
}

/// Declares [`Permission`] and its list of every value from one list of variants.
macro_rules! permissions {
    ($($(#[$meta:meta])* $variant:ident,)+) => {
        /// What a request may need. Roles are sets of these; see [`RoleRules::grants`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Permission {
            $($(#[$meta])* $variant,)+
        }

        impl Permission {
            /// Every permission, in declaration order.
            pub const ALL: &'static [Permission] = &[$(Permission::$variant),+];
        }
    };
}

permissions! {
    TenantRead,
    TenantCreate,
    /// Change a tenant's name or time zone.
    TenantWrite,
    UserRead,
    UserWrite,
    RoleGrant,
    DeviceRead,
    DeviceWrite,
    TokenRead,
    TokenWrite,
    VaultRead,
    VaultWrite,
    /// Read the files inside a managed vault's snapshots: browse and download them. Not an
    /// auditor's: they see that backups exist and when, not what they hold.
    VaultContents,
    SessionRead,
    SessionRevoke,
    AuditRead,
    JobRead,
    /// Cancel a job.
    JobWrite,
    /// See notification targets, their deliveries and the tenant's events.
    NotifyRead,
    /// Create, change, test and delete notification targets.
    NotifyWrite,
    /// Destroy a tenant's keys (crypto-shredding). Provider-admins only: not even the
    /// tenant's own admin or its partner may make its backups unreadable.
    TenantErase,
    /// See plans, a subscription and its invoices.
    BillingRead,
    /// On a provider or partner: sell plans, subscribe its customers, record payments. On a
    /// customer: end its subscription.
    BillingWrite,
}

impl Permission {
    /// True for permissions that only read: what an auditor holds. An erased tenant is
    /// read-only: every other permission (but erasing it again) is refused there.
    pub fn only_reads(self) -> bool {
        use Permission::*;
        matches!(
            self,
            TenantRead
                | UserRead
                | DeviceRead
                | TokenRead
                | VaultRead
                | SessionRead
                | AuditRead
                | JobRead
                | NotifyRead
                | BillingRead
        )
    }
}

/// What a role allows, which is the server's business: the wire type [`Role`] is only a name.
pub trait RoleRules {
    /// The role's permissions, on the tenant it is bound to and that tenant's subtree.
    fn grants(self, p: Permission) -> bool;
    /// Where the role may be bound: the two top roles only on their own kind of tenant.
    fn bindable_on(self, kind: TenantKind) -> bool;
}

impl RoleRules for Role {
    fn grants(self, p: Permission) -> bool {
        use Permission::*;
        match self {
            Role::ProviderAdmin => true,
            Role::PartnerAdmin | Role::Admin => p != TenantErase,
            Role::Operator => matches!(
                p,
                TenantRead
                    | UserRead
                    | DeviceRead
                    | DeviceWrite
                    | TokenRead
                    | TokenWrite
                    | VaultRead
                    | VaultWrite
                    | VaultContents
                    | JobRead
                    | JobWrite
                    | NotifyRead
                    | NotifyWrite
            ),
            Role::Auditor => p.only_reads(),
            Role::Billing => matches!(p, TenantRead | BillingRead | BillingWrite),
        }
    }

    fn bindable_on(self, kind: TenantKind) -> bool {
        match self {
            Role::ProviderAdmin => kind == TenantKind::Provider,
            Role::PartnerAdmin => kind == TenantKind::Partner,
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses_are_normalised_and_checked() {
        assert_eq!(
            EmailAddress::parse(" Ana@Example.COM ").unwrap().as_str(),
            "ana@example.com"
        );
        assert!(EmailAddress::parse("admin@localhost").is_ok());
        for bad in [
            "",
            "a",
            "@x",
            "a@",
            "a b@x",
            "a@b@c",
            "ops@example..com",
            "ops@.example.com",
            "a..b@example.com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad}");
            // Only the mail client's rules are new: what was stored before is still found.
            if bad.contains("..") || bad.contains("@.") {
                assert!(EmailAddress::lookup(bad).is_ok(), "{bad}");
            }
        }
    }

    /// The IDs the server makes are the shape requests are held to (`loop_api::TenantId`,
    /// ...), so every ID a client was given can be sent back.
    #[test]
    fn new_ids_parse_as_their_wire_types() {
        use loop_api::{DeviceId, RoleBindingId, SessionId, TenantId, TokenId, UserId, VaultId};
        assert!(TenantId::parse(&new_id(TenantId::PREFIX)).is_ok());
        assert!(UserId::parse(&new_id(UserId::PREFIX)).is_ok());
        assert!(RoleBindingId::parse(&new_id(RoleBindingId::PREFIX)).is_ok());
        assert!(DeviceId::parse(&new_id(DeviceId::PREFIX)).is_ok());
        assert!(TokenId::parse(&new_id(TokenId::PREFIX)).is_ok());
        assert!(VaultId::parse(&new_id(VaultId::PREFIX)).is_ok());
        assert!(SessionId::parse(&new_id(SessionId::PREFIX)).is_ok());
        assert!(VaultId::parse(&new_id(TenantId::PREFIX)).is_err());
    }

    #[test]
    fn a_subtree_holds_its_root_and_what_lies_below_and_nothing_else() {
        let p: TenantPath = "/tn_p/".parse().unwrap();
        let a = p.child("tn_a");
        let c = a.child("tn_c");
        assert_eq!(c.as_str(), "/tn_p/tn_a/tn_c/");
        assert!(p.is_root() && !a.is_root());
        assert!(p.contains(&c) && a.contains(&c) && c.contains(&c));
        assert!(!c.contains(&a));
        // A sibling whose ID begins with the same letters is not below.
        assert!(!a.contains(&p.child("tn_ab")));
        for bad in ["", "/", "//", "tn_p/", "/tn_p", "/tn_p//tn_a/"] {
            assert!(bad.parse::<TenantPath>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn read_only_roles_cannot_write() {
        for p in [
            Permission::UserWrite,
            Permission::VaultWrite,
            Permission::TokenWrite,
        ] {
            assert!(!Role::Auditor.grants(p));
            assert!(!Role::Billing.grants(p));
        }
        assert!(!Role::Operator.grants(Permission::RoleGrant));
        assert!(Role::Admin.grants(Permission::AuditRead));
    }

    #[test]
    fn only_a_provider_admin_may_erase_a_tenant() {
        for &r in Role::ALL {
            assert_eq!(
                r.grants(Permission::TenantErase),
                r == Role::ProviderAdmin,
                "{r}"
            );
        }
    }

    #[test]
    fn the_tree_has_three_levels() {
        assert!(TenantKind::Provider.may_have_child(TenantKind::Partner));
        assert!(TenantKind::Partner.may_have_child(TenantKind::Customer));
        assert!(!TenantKind::Customer.may_have_child(TenantKind::Customer));
        assert!(!TenantKind::Partner.may_have_child(TenantKind::Partner));
    }
}

//! The create and update requests of the JSON API, checked once.
//!
//! Each wire request (`loop_api::CreateUser`, ...) has a `parse` here that checks every field
//! that can be checked without the database and returns a value the handler can use as it
//! is, or the `400 invalid_request` the field deserves. A handler authorizes, parses, and then
//! checks only what needs the database or the configuration (does the device exist in this
//! tenant, is the address taken, is there such a destination).

use loop_api::{
    CreateDevice, CreateTenant, CreateToken, CreateUser, CreateVault, DeviceId, KeyCustody, Role,
    SecretText, TenantId, TenantKind, TokenKind, TokenPermission, UpdateTenant, UpdateUser,
    VaultId,
};

use super::{EmailAddress, Invalid, check_new_password, parse_address, parse_name};

/// A partner or customer to create under `parent_id`. Whether the parent may have a child of
/// this kind depends on the parent, so the handler decides.
#[derive(Debug)]
pub struct NewTenant {
    pub parent_id: TenantId,
    pub kind: TenantKind,
    pub name: String,
    /// A known IANA zone, by its canonical name; `None`: the parent's.
    pub time_zone: Option<String>,
    /// The plan a customer subscribes to (its trial starts).
    pub plan_id: Option<String>,
}

impl NewTenant {
    pub fn parse(req: CreateTenant) -> Result<NewTenant, Invalid> {
        Ok(NewTenant {
            name: parse_name("tenant name", &req.name)?,
            parent_id: req.parent_id,
            kind: req.kind,
            time_zone: req.time_zone.as_deref().map(parse_time_zone).transpose()?,
            plan_id: req.plan_id,
        })
    }
}

/// Changes to a tenant, each checked as on creation.
#[derive(Debug)]
pub struct TenantChanges {
    pub name: Option<String>,
    pub time_zone: Option<String>,
}

impl TenantChanges {
    pub fn parse(req: UpdateTenant) -> Result<TenantChanges, Invalid> {
        Ok(TenantChanges {
            name: (req.name.as_deref())
                .map(|v| parse_name("tenant name", v))
                .transpose()?,
            time_zone: req.time_zone.as_deref().map(parse_time_zone).transpose()?,
        })
    }
}

/// A known IANA zone, by its canonical name.
fn parse_time_zone(name: &str) -> Result<String, Invalid> {
    loop_api::schedule::parse_time_zone(name)
        .map(|z| z.name().to_string())
        .map_err(Invalid)
}

/// A user to create, or to invite when there is no password.
#[derive(Debug)]
pub struct NewUser {
    pub tenant_id: TenantId,
    pub email: EmailAddress,
    pub first_name: String,
    pub last_name: String,
    pub business_address: String,
    /// Meets the password rules. Who may set one is the caller's business: the handler's.
    pub password: Option<SecretText>,
    pub role: Option<Role>,
}

impl NewUser {
    pub fn parse(req: CreateUser) -> Result<NewUser, Invalid> {
        let email = EmailAddress::parse(&req.email)?;
        if let Some(p) = &req.password {
            check_new_password(p.expose())?;
        }
        Ok(NewUser {
            email,
            first_name: parse_name("first name", &req.first_name)?,
            last_name: parse_name("last name", &req.last_name)?,
            business_address: parse_address(&req.business_address)?,
            tenant_id: req.tenant_id,
            password: req.password,
            role: req.role,
        })
    }
}

/// The fields of a user to change; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct UserChanges {
    pub email: Option<EmailAddress>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub business_address: Option<String>,
    pub language: Option<loop_api::Language>,
    /// `Some(None)`: back to the tenant's zone.
    pub time_zone: Option<Option<String>>,
}

impl UserChanges {
    pub fn parse(req: UpdateUser) -> Result<UserChanges, Invalid> {
        Ok(UserChanges {
            email: req.email.as_deref().map(EmailAddress::parse).transpose()?,
            first_name: (req.first_name.as_deref())
                .map(|v| parse_name("first name", v))
                .transpose()?,
            last_name: (req.last_name.as_deref())
                .map(|v| parse_name("last name", v))
                .transpose()?,
            business_address: req
                .business_address
                .as_deref()
                .map(parse_address)
                .transpose()?,
            language: req.language,
            time_zone: match req.time_zone.as_deref().map(str::trim) {
                None => None,
                Some("") => Some(None),
                Some(name) => Some(Some(parse_time_zone(name)?)),
            },
        })
    }
}

#[derive(Debug)]
pub struct NewDevice {
    pub tenant_id: TenantId,
    pub name: String,
}

impl NewDevice {
    pub fn parse(req: CreateDevice) -> Result<NewDevice, Invalid> {
        Ok(NewDevice {
            name: parse_name("device name", &req.name)?,
            tenant_id: req.tenant_id,
        })
    }
}

/// Whom a token is for: the kind and the device travel as two fields, which must agree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenHolder {
    Device(DeviceId),
    Api,
}

impl TokenHolder {
    pub fn kind(&self) -> TokenKind {
        match self {
            TokenHolder::Device(_) => TokenKind::Device,
            TokenHolder::Api => TokenKind::Api,
        }
    }

    pub fn device_id(&self) -> Option<&DeviceId> {
        match self {
            TokenHolder::Device(d) => Some(d),
            TokenHolder::Api => None,
        }
    }
}

/// A token's lifetime is 1 to this many days, or unlimited.
pub const MAX_TOKEN_DAYS: u32 = 3650;

#[derive(Debug)]
pub struct NewToken {
    pub tenant_id: TenantId,
    pub name: String,
    pub holder: TokenHolder,
    /// Empty: every vault of the tenant. Whether they are the tenant's is for the handler.
    pub vault_ids: Vec<VaultId>,
    /// At least one, sorted, each once.
    pub permissions: Vec<TokenPermission>,
    /// `None`: the token does not expire.
    pub expires_in_days: Option<u32>,
}

impl NewToken {
    pub fn parse(req: CreateToken) -> Result<NewToken, Invalid> {
        let mut permissions = req.permissions;
        permissions.sort();
        permissions.dedup();
        if permissions.is_empty() {
            return Err(Invalid("a token needs at least one permission".into()));
        }
        let holder = match (req.kind, req.device_id) {
            (TokenKind::Device, Some(d)) => TokenHolder::Device(d),
            (TokenKind::Device, None) => {
                return Err(Invalid("a device token needs device_id".into()));
            }
            (TokenKind::Api, None) => TokenHolder::Api,
            (TokenKind::Api, Some(_)) => return Err(Invalid("an API token has no device".into())),
        };
        if permissions.contains(&TokenPermission::Replicate) && holder != TokenHolder::Api {
            return Err(Invalid(
                "replicate is for API tokens, which another server holds".into(),
            ));
        }
        // No expiry is said by leaving the field out, never by a number that looks like one.
        if req
            .expires_in_days
            .is_some_and(|d| d == 0 || d > MAX_TOKEN_DAYS)
        {
            return Err(Invalid(format!(
                "expires_in_days is 1 to {MAX_TOKEN_DAYS}; leave it out for a token that does \
                 not expire"
            )));
        }
        Ok(NewToken {
            name: parse_name("token name", &req.name)?,
            tenant_id: req.tenant_id,
            holder,
            vault_ids: req.vault_ids,
            permissions,
            expires_in_days: req.expires_in_days,
        })
    }
}

#[derive(Debug)]
pub struct NewVault {
    pub tenant_id: TenantId,
    pub name: String,
    /// A destination's name; whether the server has it is for the handler.
    pub destination: String,
    /// At most `i64::MAX`, which the database stores.
    pub quota_bytes: Option<u64>,
    pub key_custody: KeyCustody,
    pub retention_lock_days: Option<u32>,
}

/// The longest retention lock: a hundred years.
pub const MAX_RETENTION_LOCK_DAYS: u32 = 36_500;

/// Checks a retention lock's length in days.
pub fn retention_lock_days(days: u32) -> Result<u32, Invalid> {
    if (1..=MAX_RETENTION_LOCK_DAYS).contains(&days) {
        Ok(days)
    } else {
        Err(Invalid(format!(
            "a retention lock is 1 to {MAX_RETENTION_LOCK_DAYS} days"
        )))
    }
}

/// Checks a vault's quota: the database stores at most `i64::MAX`.
pub fn quota_bytes(q: Option<u64>) -> Result<Option<u64>, Invalid> {
    if q.is_some_and(|q| q > i64::MAX as u64) {
        return Err(Invalid("quota_bytes is too large".into()));
    }
    Ok(q)
}

impl NewVault {
    pub fn parse(req: CreateVault) -> Result<NewVault, Invalid> {
        Ok(NewVault {
            retention_lock_days: req
                .retention_lock_days
                .map(retention_lock_days)
                .transpose()?,
            name: parse_name("vault name", &req.name)?,
            tenant_id: req.tenant_id,
            destination: req.destination,
            quota_bytes: quota_bytes(req.quota_bytes)?,
            key_custody: req.key_custody.unwrap_or(KeyCustody::Managed),
        })
    }
}

/// Checks a retention policy's settings: rules that remove something (an empty set would
/// keep everything, which is having no policy), a `within` the engine reads, sane bounds.
/// Checks a policy's maintenance settings: schedules that read, a share in 0..=100, a
/// re-verify age of at most a year.
pub fn check_maintenance(m: &loop_api::Maintenance) -> Result<(), Invalid> {
    for (what, s) in [
        ("retention_schedule", &m.retention_schedule),
        ("verify_schedule", &m.verify_schedule),
    ] {
        if let Some(s) = s {
            loop_api::schedule::Schedule::parse(s).map_err(|e| Invalid(format!("{what}: {e}")))?;
        }
    }
    if !(0.0..=100.0).contains(&m.verify_read_data_percent) {
        return Err(Invalid(
            "verify_read_data_percent must be between 0 and 100".into(),
        ));
    }
    if m.reverify_after_days.is_some_and(|d| d == 0 || d > 366) {
        return Err(Invalid("reverify_after_days is 1 to 366".into()));
    }
    Ok(())
}

pub fn check_policy(
    keep: &loop_api::KeepRules,
    max_unused_percent: f64,
    grace_seconds: u64,
) -> Result<(), Invalid> {
    if keep.is_empty() {
        return Err(Invalid(
            "keep at least something: give one of last, hourly, daily, weekly, monthly, \
             yearly, within or tags (without a policy, every snapshot is kept)"
                .into(),
        ));
    }
    if let Some(w) = &keep.within {
        loop_repo::forget::parse_within(w).map_err(|e| Invalid(format!("within: {e}")))?;
    }
    if keep.tags.len() > 32 || keep.tags.iter().any(|t| t.is_empty() || t.len() > 128) {
        return Err(Invalid("tags: at most 32, each 1 to 128 characters".into()));
    }
    if !(0.0..=100.0).contains(&max_unused_percent) {
        return Err(Invalid(
            "prune_max_unused_percent must be between 0 and 100".into(),
        ));
    }
    if grace_seconds > 30 * 86_400 {
        return Err(Invalid("prune_grace_seconds is at most 30 days".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(kind: TokenKind, device: Option<&str>, perms: &[TokenPermission]) -> CreateToken {
        CreateToken {
            tenant_id: TenantId::parse(&format!("tn_{}", "1".repeat(32))).unwrap(),
            name: " nightly ".into(),
            kind,
            device_id: device.map(|d| DeviceId::parse(d).unwrap()),
            vault_ids: Vec::new(),
            permissions: perms.to_vec(),
            expires_in_days: None,
        }
    }

    fn refusal(r: Result<NewToken, Invalid>) -> String {
        r.expect_err("refused").0
    }

    #[test]
    fn a_new_token_has_a_holder_that_matches_its_kind_and_at_least_one_permission() {
        use TokenPermission::*;
        let device = format!("dv_{}", "2".repeat(32));
        let t = NewToken::parse(token(
            TokenKind::Device,
            Some(&device),
            &[Restore, Backup, Restore],
        ))
        .unwrap();
        assert_eq!(t.holder.kind(), TokenKind::Device);
        assert_eq!(t.holder.device_id().map(DeviceId::as_str), Some(&*device));
        assert_eq!(t.permissions, [Backup, Restore]);
        assert_eq!(t.name, "nightly");

        assert_eq!(
            refusal(NewToken::parse(token(TokenKind::Device, None, &[Backup]))),
            "a device token needs device_id"
        );
        assert_eq!(
            refusal(NewToken::parse(token(
                TokenKind::Api,
                Some(&device),
                &[Backup]
            ))),
            "an API token has no device"
        );
        assert_eq!(
            refusal(NewToken::parse(token(TokenKind::Api, None, &[]))),
            "a token needs at least one permission"
        );
        for days in [0, MAX_TOKEN_DAYS + 1] {
            let mut req = token(TokenKind::Api, None, &[Backup]);
            req.expires_in_days = Some(days);
            assert!(refusal(NewToken::parse(req)).starts_with("expires_in_days is 1 to 3650"));
        }
    }

    #[test]
    fn a_new_user_is_checked_field_by_field() {
        let req = |email: &str, password: Option<&str>| CreateUser {
            tenant_id: TenantId::parse(&format!("tn_{}", "1".repeat(32))).unwrap(),
            email: email.into(),
            first_name: "Ana".into(),
            last_name: "Silva".into(),
            business_address: String::new(),
            password: password.map(SecretText::new),
            role: None,
        };
        let u = NewUser::parse(req(" Ana@Example.com ", None)).unwrap();
        assert_eq!(u.email.as_str(), "ana@example.com");
        assert!(NewUser::parse(req("ana", None)).is_err());
        let e = NewUser::parse(req("ana@example.com", Some("short"))).unwrap_err();
        assert_eq!(e.0, "password must be 12 to 1024 characters");
        let mut bad_name = req("ana@example.com", None);
        bad_name.last_name = "\u{202E}avlis".into();
        assert!(
            NewUser::parse(bad_name)
                .unwrap_err()
                .0
                .starts_with("last name")
        );
    }
}

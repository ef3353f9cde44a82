//! Arguments of `loop user`.

use clap::Subcommand;
use loop_api::{Role, RoleBindingId, TenantId, UserId};

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// List users
    List {
        #[arg(long)]
        tenant: Option<TenantId>,
    },
    /// Create a user (password from LOOP_NEW_USER_PASSWORD) or, with --invite, invite one
    Create {
        #[arg(long)]
        tenant: TenantId,
        #[arg(long)]
        email: String,
        #[arg(long)]
        first_name: String,
        #[arg(long)]
        last_name: String,
        #[arg(long, default_value = "")]
        address: String,
        /// Bind this role on the user's tenant
        #[arg(long)]
        role: Option<Role>,
        /// No password: the invitation goes to the address by e-mail (an administrator of
        /// the whole service is shown a one-time invite token instead)
        #[arg(long)]
        invite: bool,
    },
    /// Accept an invitation and choose your password (the code from LOOP_INVITE_TOKEN, the
    /// password from LOOP_NEW_USER_PASSWORD, else both asked for)
    AcceptInvite {
        #[arg(long)]
        server: String,
    },
    /// Confirm a new e-mail address (the code from LOOP_EMAIL_TOKEN, else asked for)
    ConfirmEmail {
        #[arg(long)]
        server: String,
    },
    /// Change a user's name, e-mail, business address or language (a new address of an
    /// account changes once its owner confirms it)
    Update {
        id: UserId,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        first_name: Option<String>,
        #[arg(long)]
        last_name: Option<String>,
        #[arg(long)]
        address: Option<String>,
        /// The language of the mail the service sends the user: en or nl
        #[arg(long)]
        language: Option<loop_api::Language>,
        /// The IANA time zone the console shows the user's times in (Europe/Amsterdam);
        /// "" for the tenant's
        #[arg(long)]
        time_zone: Option<String>,
    },
    /// Disable a user (their sessions end)
    Disable { id: UserId },
    /// Enable a disabled user
    Enable { id: UserId },
    /// Erase a person on request: their name, e-mail, address, sessions and IP addresses
    /// go; the account stays as a pseudonym, so the audit log still verifies
    Erase {
        id: UserId,
        /// The user's e-mail address again, to confirm
        #[arg(long)]
        confirm: String,
    },
    /// Restrict processing of a person's data (kept, but left out of announcements and
    /// summary reports), or lift the restriction
    Restrict {
        id: UserId,
        #[arg(long)]
        lift: bool,
    },
    /// List a user's role bindings
    Roles { id: UserId },
    /// Bind a role on a tenant
    Grant {
        id: UserId,
        #[arg(long)]
        tenant: TenantId,
        #[arg(long)]
        role: Role,
    },
    /// Remove a role binding
    Revoke { id: UserId, binding: RoleBindingId },
}

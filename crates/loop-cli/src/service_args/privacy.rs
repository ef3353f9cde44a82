//! Arguments of `loop privacy`.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Subcommand, Debug)]
pub enum PrivacyCommand {
    /// Show the privacy policy in force
    Policy,
    /// Acknowledge the privacy policy in force (shown at sign-in until you do)
    Accept,
    /// Publish a new version of the privacy policy (the provider's admins)
    Publish {
        /// The version's name, such as 2026-12
        #[arg(long)]
        version: String,
        /// Where its text is published
        #[arg(long)]
        url: String,
        /// What changed
        #[arg(long, default_value = "")]
        summary: String,
    },
    /// Show your consent to product news (marketing), or give (on) or withdraw (off) it
    Consent { set: Option<OnOff> },
    /// Data-subject requests a controller recorded for people of its tenants
    #[command(subcommand)]
    Request(RequestCommand),
    /// The provider's sub-processors
    #[command(subcommand)]
    Subprocessor(SubprocessorCommand),
    /// The records of processing for a tenant: personal data held, where it lives,
    /// retention, sub-processors, open requests
    Report {
        #[arg(long)]
        tenant: loop_api::TenantId,
    },
    /// Ask for an archive of everything held on you (or, with --user, on a user of a
    /// tenant you administer); waits until it is made and writes the zip file
    Export {
        #[arg(long)]
        user: Option<loop_api::UserId>,
        /// Where to write the zip file
        #[arg(long)]
        output: PathBuf,
        /// Give up waiting for the archive after this many seconds (it is still made, and
        /// kept on the server for its owner)
        #[arg(long, default_value_t = 1800)]
        wait_secs: u64,
    },
    /// Mail product news to every user who consented (the provider's admins)
    Announce {
        #[arg(long)]
        subject: String,
        /// The message's text, from this file
        #[arg(long)]
        text_file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum RequestCommand {
    /// Record a request a person made about their data (due in one month)
    Add {
        /// The person (a user of a tenant whose users you administer)
        #[arg(long)]
        user: loop_api::UserId,
        #[arg(long)]
        kind: loop_api::SubjectRequestKind,
        /// What they asked
        #[arg(long, default_value = "")]
        details: String,
    },
    /// The requests recorded, open ones first by due date
    List {
        #[arg(long)]
        tenant: Option<loop_api::TenantId>,
        /// Only the open ones
        #[arg(long)]
        open: bool,
        /// Only the open ones past their due date
        #[arg(long)]
        overdue: bool,
    },
    /// Close a request with the action taken
    Close {
        id: String,
        /// What was done (or why it was refused)
        #[arg(long)]
        action: String,
        /// It was refused
        #[arg(long)]
        refused: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum SubprocessorCommand {
    /// The register
    List,
    /// Add one; the controllers' admins are told (the provider's admins)
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        purpose: String,
        #[arg(long)]
        location: String,
    },
    /// Remove one; the controllers' admins are told (the provider's admins)
    Remove { id: String },
}

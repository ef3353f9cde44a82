//! `[privacy]`: how long personal data is kept, beyond what other sections set.

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    /// The IP address and browser of an audited action are removed this many days after
    /// the event (the event itself stays, and its chain still verifies).
    pub audit_personal_days: u64,
    /// A personal-data archive ("download my data") can be downloaded this many days after
    /// it is ready; then it is deleted.
    pub export_days: u64,
    /// The record of a message the server sent, dropped or gave up on (its kind, the
    /// account, when and how it went) is deleted this many days after that; the mail
    /// itself is never kept.
    pub mail_days: u64,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig {
            audit_personal_days: 365,
            export_days: 7,
            mail_days: 90,
        }
    }
}

//! `[residency]`: where the embedded destination's data lives, and the jurisdictions tree.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResidencyConfig {
    /// The jurisdiction of the embedded local destination (used when no `[[destinations]]`
    /// are configured), like `nl`; `LOOP_JURISDICTION`.
    pub embedded_jurisdiction: String,
    /// Extends the built-in tree of jurisdictions (which puts the EU's member states under
    /// `eu`): each entry says that the key lies within the value, like `eu = "europe"`.
    pub parents: BTreeMap<String, String>,
}

impl Default for ResidencyConfig {
    fn default() -> Self {
        ResidencyConfig {
            embedded_jurisdiction: "local".into(),
            parents: BTreeMap::new(),
        }
    }
}

//! Data residency: the tree of jurisdictions, and the sets of them a tenant allows.
//!
//! Every destination has a jurisdiction (`nl`, `eu`, `us`, ...). Jurisdictions form a tree in
//! which a region contains the places inside it: the built-in tree puts the 27 member states
//! of the European Union under `eu`, and the configuration (`[residency.parents]`) adds more.
//! A tenant may allow a set of jurisdictions; allowing one admits it and everything below it.
//! Each tenant on the path from the provider down may set one, and what a tenant may use is
//! what every one of those sets admits, so a set lower in the tree can only narrow.

use std::collections::{BTreeMap, BTreeSet};

/// The member states of the European Union (ISO 3166-1 alpha-2, lowercase).
const EU: &[&str] = &[
    "at", "be", "bg", "cy", "cz", "de", "dk", "ee", "es", "fi", "fr", "gr", "hr", "hu", "ie", "it",
    "lt", "lu", "lv", "mt", "nl", "pl", "pt", "ro", "se", "si", "sk",
];

/// Whether `s` is a well-formed jurisdiction label: a lowercase letter, then up to 31
/// lowercase letters, digits and dashes.
pub fn valid_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// The tree: each jurisdiction's parent, if it has one. Any well-formed label is a
/// jurisdiction; one the tree does not name is a root with nothing inside it.
#[derive(Clone, Debug)]
pub struct Jurisdictions {
    parent: BTreeMap<String, String>,
}

impl Jurisdictions {
    /// The built-in tree extended by `parents` (child → parent). A child that already has a
    /// parent, a malformed label or a cycle is an error.
    pub fn new(parents: &BTreeMap<String, String>) -> Result<Jurisdictions, String> {
        let mut parent: BTreeMap<String, String> = EU
            .iter()
            .map(|c| (c.to_string(), "eu".to_string()))
            .collect();
        for (child, p) in parents {
            for label in [child, p] {
                if !valid_label(label) {
                    return Err(format!("{label:?} is not a jurisdiction label"));
                }
            }
            if let Some(old) = parent.get(child)
                && old != p
            {
                return Err(format!("{child} already lies within {old}"));
            }
            parent.insert(child.clone(), p.clone());
        }
        let tree = Jurisdictions { parent };
        for child in tree.parent.keys() {
            let mut seen = BTreeSet::new();
            let mut at = child.as_str();
            while let Some(p) = tree.parent.get(at) {
                if !seen.insert(at) {
                    return Err(format!("{child} lies within itself"));
                }
                at = p;
            }
        }
        Ok(tree)
    }

    /// `j` and the regions that contain it, innermost first.
    fn up<'a>(&'a self, j: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        std::iter::successors(Some(j), move |at| self.parent.get(*at).map(String::as_str))
    }

    /// Whether `inner` is `outer` or lies inside it.
    pub fn within(&self, inner: &str, outer: &str) -> bool {
        self.up(inner).any(|j| j == outer)
    }

    /// Whether a tenant whose path sets `chain` (provider first; `None` where a tenant sets
    /// nothing) may place data in `j`.
    pub fn admits(&self, chain: &[Option<Vec<String>>], j: &str) -> bool {
        chain
            .iter()
            .flatten()
            .all(|set| set.iter().any(|a| self.within(j, a)))
    }

    /// Whether everything `set` admits is admitted by `chain`: `set` narrows it.
    pub fn narrows(&self, chain: &[Option<Vec<String>>], set: &[String]) -> bool {
        set.iter().all(|j| self.admits(chain, j))
    }

    /// What `chain` admits, as the fewest jurisdictions: `None` when it admits any.
    pub fn effective(&self, chain: &[Option<Vec<String>>]) -> Option<Vec<String>> {
        let mut acc: Option<BTreeSet<String>> = None;
        for set in chain.iter().flatten() {
            acc = Some(match acc {
                None => set.iter().cloned().collect(),
                Some(prev) => {
                    let mut out = BTreeSet::new();
                    for a in &prev {
                        for b in set {
                            if self.within(a, b) {
                                out.insert(a.clone());
                            } else if self.within(b, a) {
                                out.insert(b.clone());
                            }
                        }
                    }
                    out
                }
            });
        }
        acc.map(|s| {
            // Drop what another member already contains.
            s.iter()
                .filter(|j| !s.iter().any(|o| o != *j && self.within(j, o)))
                .cloned()
                .collect()
        })
    }
}

/// A tenant's stored set: space-separated labels, or nothing.
pub fn parse_stored(s: Option<String>) -> Option<Vec<String>> {
    s.map(|s| s.split_whitespace().map(String::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> Jurisdictions {
        let parents = BTreeMap::from([
            ("eu".to_string(), "europe".to_string()),
            ("uk".to_string(), "europe".to_string()),
            ("nl-ams".to_string(), "nl".to_string()),
        ]);
        Jurisdictions::new(&parents).unwrap()
    }

    fn set(s: &[&str]) -> Option<Vec<String>> {
        Some(s.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn a_region_admits_what_lies_inside_it_and_nothing_beside_it() {
        let t = tree();
        let eu = [set(&["eu"])];
        for inside in ["eu", "nl", "de", "nl-ams"] {
            assert!(t.admits(&eu, inside), "{inside}");
        }
        for outside in ["us", "uk", "europe", "local", "ch"] {
            assert!(!t.admits(&eu, outside), "{outside}");
        }
        let nl = [set(&["nl"])];
        assert!(t.admits(&nl, "nl-ams"));
        assert!(!t.admits(&nl, "de"));
        assert!(!t.admits(&nl, "eu"));
        assert!(t.admits(&[None, None], "us"), "no set admits anything");
    }

    #[test]
    fn every_set_on_the_path_must_admit() {
        let t = tree();
        // The provider allows Europe; a partner, the EU; the customer widened to "uk" on its
        // own, which the partner's set still refuses.
        let chain = [set(&["europe"]), set(&["eu"]), set(&["uk", "nl"])];
        assert!(t.admits(&chain, "nl"));
        assert!(!t.admits(&chain, "uk"));
        assert!(!t.admits(&chain, "de"));
        assert_eq!(t.effective(&chain), set(&["nl"]));
        assert!(t.narrows(&chain[..2], &["nl".into(), "de".into()]));
        assert!(!t.narrows(&chain[..2], &["uk".into()]));
        assert!(!t.narrows(&chain[..2], &["europe".into()]));
    }

    #[test]
    fn the_effective_set_is_the_fewest_jurisdictions() {
        let t = tree();
        assert_eq!(t.effective(&[None]), None);
        assert_eq!(
            t.effective(&[set(&["eu", "us"]), set(&["de", "nl", "nl-ams", "uk"])]),
            set(&["de", "nl"])
        );
        assert_eq!(t.effective(&[set(&["nl"]), set(&["europe"])]), set(&["nl"]));
    }

    #[test]
    fn the_configured_tree_is_checked() {
        let bad = |k: &str, v: &str| {
            Jurisdictions::new(&BTreeMap::from([(k.to_string(), v.to_string())])).unwrap_err()
        };
        assert!(bad("nl", "europe").contains("already lies within eu"));
        assert!(bad("EU", "world").contains("not a jurisdiction label"));
        assert!(bad("x", "x").contains("within itself"));
        let cycle = BTreeMap::from([
            ("a".to_string(), "b".to_string()),
            ("b".to_string(), "a".to_string()),
        ]);
        assert!(Jurisdictions::new(&cycle).is_err());
        assert!(valid_label("us-east-1") && !valid_label("1us") && !valid_label(""));
    }
}

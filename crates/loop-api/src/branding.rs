//! A partner's look of the console (white label): its product name, colour and logo, which
//! the console shows to everyone signed in to that partner or to a tenant below it.

use chrono::{DateTime, Utc};

wire! {
    /// The branding a partner (or the provider) set for itself and every tenant below it;
    /// the nearest one up the tree applies.
    pub struct Branding {
        pub tenant_id: String,
        /// Shown in place of "Loop Backup" in the console's header and page titles.
        pub product_name: String,
        /// `#rrggbb`: the colour of the console's header; links and buttons take it too,
        /// darkened where needed to keep a contrast of 4.5:1 with the page.
        pub accent: String,
        /// A logo is set: the header shows it before the product name.
        pub has_logo: bool,
        pub updated_at: DateTime<Utc>,
    }

    /// The branding that applies to a tenant: its own, else the nearest one above it
    /// (`tenant_id` says whose); none: the console's own look.
    pub struct AppliedBranding {
        #[serde(default)]
        pub branding: Option<Branding>,
    }

    /// `PUT /api/v1/tenants/{id}/branding`: replaces the tenant's branding.
    pub struct SetBranding {
        /// 1 to 100 characters.
        pub product_name: String,
        /// `#rrggbb`.
        pub accent: String,
        /// A PNG image, base64, of at most 64 KiB and 1024×1024 pixels. Left out: no logo.
        #[serde(default)]
        pub logo_png: Option<String>,
    }
}

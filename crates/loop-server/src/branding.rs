//! White label: a partner (or the provider) gives the console its own product name, colour
//! and logo, and everyone signed in to it or to a tenant below it sees them (the nearest
//! branding up the tree applies). The API and the console both change it here; each change
//! is audited.
//!
//! The colour is never trusted to be readable: the header's text is black or white,
//! whichever contrasts more with it (one of them always reaches 4.5:1), and links and
//! buttons use the colour darkened until it reaches 4.5:1 against the white page. The logo
//! must read as a PNG (its signature and header are checked) and is only ever served as
//! `image/png` with `nosniff` and a sandboxing policy, so a browser never runs what else it
//! might hold; it and the style sheet are files of the server's own, at addresses that carry
//! their hash.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use loop_api::{Branding, TenantKind};

use crate::auth::Caller;
use crate::db::{self, brandings::BrandingRow};
use crate::domain::{Permission, TenantPath, parse_name};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// A logo's size at most.
pub const MAX_LOGO_BYTES: usize = 64 * 1024;
/// A logo's width and height at most, in pixels.
const MAX_LOGO_SIDE: u32 = 1024;
/// The contrast text and links keep with their background (WCAG 2.1 AA).
const MIN_CONTRAST: f64 = 4.5;

/// A colour, `#rrggbb`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rgb(pub [u8; 3]);

impl Rgb {
    pub const BLACK: Rgb = Rgb([0, 0, 0]);
    pub const WHITE: Rgb = Rgb([255, 255, 255]);

    /// `#rrggbb` (either case).
    pub fn parse(text: &str) -> Option<Rgb> {
        let hex = text.trim().strip_prefix('#')?;
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
        Some(Rgb([byte(0)?, byte(2)?, byte(4)?]))
    }

    pub fn hex(self) -> String {
        let [r, g, b] = self.0;
        format!("#{r:02x}{g:02x}{b:02x}")
    }

    /// Relative luminance (WCAG 2.1).
    fn luminance(self) -> f64 {
        let lin = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        let [r, g, b] = self.0;
        0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
    }

    /// The contrast ratio of two colours, 1 to 21.
    pub fn contrast(self, other: Rgb) -> f64 {
        let (a, b) = (self.luminance(), other.luminance());
        (a.max(b) + 0.05) / (a.min(b) + 0.05)
    }

    /// Black or white, whichever is more readable on this colour.
    pub fn ink(self) -> Rgb {
        if self.contrast(Rgb::BLACK) >= self.contrast(Rgb::WHITE) {
            Rgb::BLACK
        } else {
            Rgb::WHITE
        }
    }

    /// This colour, darkened in small steps until it keeps `MIN_CONTRAST` against white.
    pub fn readable_on_white(self) -> Rgb {
        let mut c = self;
        while c.contrast(Rgb::WHITE) < MIN_CONTRAST {
            c = Rgb(c.0.map(|v| (u16::from(v) * 15 / 16) as u8));
        }
        c
    }
}

/// The width and height of a PNG, when `bytes` are one: its signature, then its `IHDR`
/// chunk.
pub fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    let rest = bytes.strip_prefix(SIGNATURE)?;
    if rest.len() < 16 || &rest[4..8] != b"IHDR" {
        return None;
    }
    let word = |i: usize| u32::from_be_bytes(rest[i..i + 4].try_into().unwrap());
    Some((word(8), word(12)))
}

fn check_logo(bytes: &[u8]) -> ApiResult<()> {
    if bytes.len() > MAX_LOGO_BYTES {
        return Err(ApiError::bad_request(format!(
            "a logo is at most {} KiB",
            MAX_LOGO_BYTES / 1024
        )));
    }
    match png_size(bytes) {
        Some((w, h)) if (1..=MAX_LOGO_SIDE).contains(&w) && (1..=MAX_LOGO_SIDE).contains(&h) => {
            Ok(())
        }
        Some(_) => Err(ApiError::bad_request(format!(
            "a logo is at most {MAX_LOGO_SIDE}×{MAX_LOGO_SIDE} pixels"
        ))),
        None => Err(ApiError::bad_request("a logo is a PNG image")),
    }
}

/// A branding as the console uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Brand {
    pub tenant_id: String,
    pub product_name: String,
    pub accent: Rgb,
    pub logo: Option<Vec<u8>>,
    /// A hash of all of it: the address of its files changes with it.
    pub hash: String,
}

impl Brand {
    /// The branding kept in `row`; `None` when it does not read (changed behind the
    /// server's back), so a page falls back to the console's own look.
    pub fn of(row: BrandingRow) -> Option<Brand> {
        let accent = Rgb::parse(&row.accent)?;
        let logo = match &row.logo_png {
            Some(b) => Some(STANDARD.decode(b).ok()?),
            None => None,
        };
        let mut h = blake3::Hasher::new();
        h.update(row.product_name.as_bytes());
        h.update(&[0]);
        h.update(&accent.0);
        h.update(logo.as_deref().unwrap_or_default());
        let hash = h.finalize().to_hex()[..16].to_string();
        Some(Brand {
            tenant_id: row.tenant_id,
            product_name: row.product_name,
            accent,
            logo,
            hash,
        })
    }

    /// The address of its style sheet.
    pub fn style(&self) -> String {
        format!("/assets/brand-{}-{}.css", self.tenant_id, self.hash)
    }

    /// The address of its logo, when it has one.
    pub fn logo_address(&self) -> Option<String> {
        self.logo
            .as_ref()
            .map(|_| format!("/assets/brand-{}-{}.png", self.tenant_id, self.hash))
    }

    /// Its style sheet: the console's colours, overridden.
    pub fn css(&self) -> String {
        let link = self.accent.readable_on_white();
        format!(
            ":root {{ --brand: {}; --brand-ink: {}; --accent: {}; --accent-ink: {}; }}\n",
            self.accent.hex(),
            self.accent.ink().hex(),
            link.hex(),
            link.ink().hex(),
        )
    }
}

/// The branding that applies to the tenant at `path`: its own, else the nearest above it.
pub async fn nearest(state: &AppState, path: &TenantPath) -> ApiResult<Option<Brand>> {
    let ids: Vec<&str> = path.ids().collect();
    Ok(db::brandings::nearest(&state.db.pool, &ids)
        .await?
        .and_then(Brand::of))
}

/// The tenant's own branding, as the API shows it.
pub fn shown(row: &BrandingRow) -> Branding {
    Branding {
        tenant_id: row.tenant_id.clone(),
        product_name: row.product_name.clone(),
        accent: row.accent.clone(),
        has_logo: row.logo_png.is_some(),
        updated_at: db::time(row.updated_at),
    }
}

/// Sets tenant `id`'s branding (tenant-write there; a partner or the provider only).
pub async fn set(
    state: &AppState,
    caller: &Caller,
    id: &str,
    product_name: &str,
    accent: &str,
    logo: Option<Vec<u8>>,
) -> ApiResult<Branding> {
    let t = caller.tenant(state, Permission::TenantWrite, id).await?;
    if t.tenant.kind == TenantKind::Customer {
        return Err(ApiError::bad_request(
            "a partner or the provider brands the console, not a customer",
        ));
    }
    let product_name = parse_name("product name", product_name)?;
    let accent = Rgb::parse(accent)
        .ok_or_else(|| ApiError::bad_request("the colour is #rrggbb"))?
        .hex();
    if let Some(l) = &logo {
        check_logo(l)?;
    }
    let now = state.now();
    let row = BrandingRow {
        tenant_id: t.tenant.id.clone(),
        product_name,
        accent,
        logo_png: logo.as_ref().map(|l| STANDARD.encode(l)),
        updated_at: now,
    };
    let mut tx = state.db.begin().await?;
    db::brandings::put(&mut tx, &row).await?;
    let event = caller.event(
        &row.tenant_id,
        "tenant.branding",
        "tenant",
        Some(&row.tenant_id),
        serde_json::json!({
            "product_name": row.product_name, "accent": row.accent,
            "logo_bytes": logo.as_ref().map(Vec::len),
        }),
    );
    db::audit::commit_audited(tx, event, now).await?;
    Ok(shown(&row))
}

/// Removes tenant `id`'s branding (tenant-write there): it and the tenants below it take
/// the nearest one above, or the console's own look. Audited whether or not it had one.
pub async fn clear(state: &AppState, caller: &Caller, id: &str) -> ApiResult<()> {
    let t = caller.tenant(state, Permission::TenantWrite, id).await?;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    let removed = db::brandings::remove(&mut tx, &t.tenant.id).await?;
    let event = caller.event(
        &t.tenant.id,
        "tenant.branding_clear",
        "tenant",
        Some(&t.tenant.id),
        serde_json::json!({ "removed": removed }),
    );
    db::audit::commit_audited(tx, event, now).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contrast_follows_wcag_known_answers() {
        let ratio = |a: &str, b: &str| Rgb::parse(a).unwrap().contrast(Rgb::parse(b).unwrap());
        assert!((ratio("#000000", "#ffffff") - 21.0).abs() < 1e-9);
        assert!((ratio("#777777", "#ffffff") - 4.48).abs() < 0.01);
        // The lightest grey that passes AA on white, as WebAIM publishes it.
        assert!((ratio("#767676", "#ffffff") - 4.54).abs() < 0.01);
        assert!((ratio("#ffffff", "#ffffff") - 1.0).abs() < 1e-9);
    }

    #[test]
    fn every_colour_gets_readable_ink_and_links() {
        for c in [
            "#ffd400", "#000000", "#ffffff", "#777777", "#808080", "#00ff00", "#0a58ca", "#ff0000",
            "#7f7f7f", "#767676",
        ] {
            let c = Rgb::parse(c).unwrap();
            assert!(c.contrast(c.ink()) >= MIN_CONTRAST, "{} ink", c.hex());
            let link = c.readable_on_white();
            assert!(
                link.contrast(Rgb::WHITE) >= MIN_CONTRAST,
                "{} link",
                c.hex()
            );
            assert!(
                link.contrast(link.ink()) >= MIN_CONTRAST,
                "{} button",
                c.hex()
            );
        }
        // A dark colour is kept as it is.
        let blue = Rgb::parse("#0A58CA").unwrap();
        assert_eq!(blue.readable_on_white(), blue);
        assert_eq!(blue.ink(), Rgb::WHITE);
        assert_eq!(Rgb::parse("#ffd400").unwrap().ink(), Rgb::BLACK);
    }

    #[test]
    fn colours_read_only_as_six_hex_digits() {
        assert_eq!(Rgb::parse("#0A58ca"), Some(Rgb([0x0a, 0x58, 0xca])));
        for bad in ["0a58ca", "#0a58c", "#0a58cag", "#0a58cg", "red", "#ééé", ""] {
            assert_eq!(Rgb::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_logo_is_a_png_of_bounded_size() {
        let png = |w: u32, h: u32| {
            let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
            b.extend_from_slice(&w.to_be_bytes());
            b.extend_from_slice(&h.to_be_bytes());
            b.extend_from_slice(&[8, 6, 0, 0, 0]);
            b
        };
        assert_eq!(png_size(&png(120, 40)), Some((120, 40)));
        assert!(check_logo(&png(120, 40)).is_ok());
        assert!(check_logo(&png(2000, 40)).is_err());
        assert!(check_logo(&png(0, 40)).is_err());
        assert!(check_logo(b"<svg onload=alert(1)>").is_err());
        assert!(check_logo(&png(120, 40)[..20]).is_err());
        let mut big = png(120, 40);
        big.resize(MAX_LOGO_BYTES + 1, 0);
        assert!(check_logo(&big).is_err());
    }
}

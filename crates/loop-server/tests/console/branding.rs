//! White label in the browser: a partner's admin gives the console a product name, a colour
//! and a logo; the admin of a customer below that partner then sees them in every page's
//! header and title (the logo loaded under the page's policy, the header in the colour, its
//! text readable), while a customer of the provider sees the console's own look. A light
//! colour still passes axe. Another partner cannot brand this one, not even by URL.

use loop_testkit::browser::{Browser, png_image};
use serde_json::{Value, json};

use super::support::console::session_cookie;
use super::support::{Caller, Server, USER_PASSWORD};
use super::{browser, sign_in};

/// A tenant of `kind` below `parent`, with a user of `role` in it; answers (tenant, email).
fn tenant_with_user(
    root: &Caller<'_>,
    parent: &str,
    kind: &str,
    name: &str,
    role: &str,
) -> (String, String) {
    let t = root
        .post(
            "/api/v1/tenants",
            json!({ "parent_id": parent, "kind": kind, "name": name }),
        )
        .expect(201);
    let id = t["id"].as_str().unwrap().to_string();
    let email = format!("{role}@{}.example", name.to_lowercase().replace(' ', "-"));
    root.post(
        "/api/v1/users",
        json!({ "tenant_id": id, "email": email, "first_name": "Pat", "last_name": name,
                "password": USER_PASSWORD, "role": role }),
    )
    .expect(201);
    (id, email)
}

/// The computed style `property` of the element matching `css`.
fn style(b: &Browser, css: &str, property: &str) -> Value {
    b.run(&format!(
        "return getComputedStyle(document.querySelector({css:?})).{property};"
    ))
}

#[test]
fn a_partners_customers_see_its_name_colour_and_logo() {
    let server = Server::start();
    let root = server.admin();
    let provider = root.provider_tenant_id();
    let (partner, partner_admin) =
        tenant_with_user(&root, &provider, "partner", "Northwind IT", "partner-admin");
    let (_, customer_admin) = tenant_with_user(&root, &partner, "customer", "Contoso", "admin");
    let (_, direct_admin) = tenant_with_user(&root, &provider, "customer", "Fabrikam", "admin");
    let dir = tempfile::tempdir().unwrap();
    let logo = dir.path().join("logo.png");
    let logo_bytes = png_image(120, 40, [0x12, 0x34, 0x56]);
    std::fs::write(&logo, &logo_bytes).unwrap();
    let Some(b) = browser(&server) else {
        return;
    };

    sign_in(&b, &partner_admin, USER_PASSWORD);
    b.click(&format!("nav.tenant a[href='/t/{partner}/branding']"));
    // Not a PNG: refused, nothing set.
    let not_png = dir.path().join("logo.svg");
    std::fs::write(&not_png, b"<svg xmlns='http://www.w3.org/2000/svg'/>").unwrap();
    b.fill("#product_name", "Northwind Backup");
    b.choose_file("#logo", &not_png);
    b.click("form[enctype] button[type=submit]");
    assert!(b.text("[role=alert]").contains("PNG"), "{}", b.text("main"));
    assert!(
        root.get(&format!("/api/v1/tenants/{partner}/branding"))
            .expect(200)["branding"]
            .is_null()
    );

    b.fill("#product_name", "Northwind Backup");
    // A light yellow: the header's text must turn black, links a darker shade.
    b.run("document.getElementById('accent').value = '#ffd400';");
    b.choose_file("#logo", &logo);
    b.click("form[enctype] button[type=submit]");
    assert!(
        b.text("[role=status]").contains("saved"),
        "{}",
        b.text("main")
    );
    let set = root
        .get(&format!("/api/v1/tenants/{partner}/branding"))
        .expect(200)["branding"]
        .clone();
    assert_eq!(set["product_name"], "Northwind Backup");
    assert_eq!(set["accent"], "#ffd400");
    assert_eq!(set["has_logo"], true);

    // The customer's admin sees it on every page.
    let c = browser(&server).unwrap();
    sign_in(&c, &customer_admin, USER_PASSWORD);
    for page in ["", "/account"] {
        if !page.is_empty() {
            c.goto(page);
        }
        assert!(c.title().ends_with("Northwind Backup"), "{}", c.title());
        assert_eq!(c.text("header .product"), "Northwind Backup");
        assert_eq!(
            style(&c, "header.top", "backgroundColor"),
            "rgb(255, 212, 0)"
        );
        assert_eq!(style(&c, "header .who", "color"), "rgb(0, 0, 0)");
        // The logo loaded (the page's policy allows the server's own images only).
        let loaded = c.run(
            "const i = document.querySelector('header .product img'); \
             return i.complete && i.naturalWidth;",
        );
        assert_eq!(loaded, 120, "the logo is shown");
    }
    // Links are a darker shade of the colour, readable on white.
    let link = style(&c, "main a", "color");
    assert_ne!(link, "rgb(255, 212, 0)");
    // The logo's address serves exactly the PNG uploaded.
    let src = c.attr("header .product img", "src").unwrap();
    let path = &src[src.find("/assets/").unwrap()..];
    let (status, headers, served) = server.download(path, "");
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'none'; sandbox"
    );
    // A name that is not a tenant's and a hash is not looked up: not found.
    for wrong in [
        "/assets/brand-x-0123456789abcdef.css",
        &path.replace(".png", ".css").replace("-", "-x"),
    ] {
        assert_eq!(server.page(wrong, "", "en").status, 404, "{wrong}");
    }
    assert!(served == logo_bytes, "the logo served is the one uploaded");

    // A customer of the provider sees the console's own look.
    let d = browser(&server).unwrap();
    sign_in(&d, &direct_admin, USER_PASSWORD);
    assert_eq!(d.text("header .product"), "Loop Backup");
    assert!(!d.has("header .product img"));

    // Removed: back to the console's own look, and the old files are gone.
    b.goto(&format!("/t/{partner}/branding"));
    b.click(&format!(
        "form[action='/t/{partner}/branding/clear'] button"
    ));
    assert!(b.text("[role=status]").contains("removed"));
    c.goto("/account");
    assert_eq!(c.text("header .product"), "Loop Backup");
    assert_eq!(server.page(path, "", "en").status, 404);
}

#[test]
fn only_a_partner_brands_itself_and_nobody_else() {
    let server = Server::start();
    let root = server.admin();
    let provider = root.provider_tenant_id();
    let (north, north_admin) =
        tenant_with_user(&root, &provider, "partner", "North", "partner-admin");
    let (south, _) = tenant_with_user(&root, &provider, "partner", "South", "partner-admin");
    let (customer, customer_admin) = tenant_with_user(&root, &north, "customer", "Acme", "admin");
    let north_caller = server.sign_in(&north_admin, USER_PASSWORD);
    let brand = json!({ "product_name": "Their Backup", "accent": "#123456" });
    // Another partner's branding is as absent as one that does not exist.
    north_caller
        .put(&format!("/api/v1/tenants/{south}/branding"), brand.clone())
        .expect(404);
    // A customer's admin cannot brand their own tenant.
    let customer_caller = server.sign_in(&customer_admin, USER_PASSWORD);
    let refused = customer_caller
        .put(
            &format!("/api/v1/tenants/{customer}/branding"),
            brand.clone(),
        )
        .status;
    assert_eq!(refused, 400);
    // Nor may north post the page's form at south's address.
    let cookie = session_cookie(&north_caller.secret);
    let token = server
        .page(&format!("/t/{north}/branding"), &cookie, "en")
        .form_token();
    let posted = server.post_multipart(
        &format!("/t/{south}/branding"),
        &cookie,
        &[
            ("csrf", token.as_bytes()),
            ("product_name", b"Their Backup"),
            ("accent", b"#123456"),
        ],
    );
    assert_eq!(posted.status, 404, "{}", posted.body);
    assert!(!posted.body.contains("South"), "{}", posted.body);
    assert!(
        root.get(&format!("/api/v1/tenants/{south}/branding"))
            .expect(200)["branding"]
            .is_null()
    );
    // The same form at north's own address works, and without its token is refused.
    let fields: [(&str, &[u8]); 2] = [("product_name", b"North Backup"), ("accent", b"#123456")];
    let untokened = server.post_multipart(&format!("/t/{north}/branding"), &cookie, &fields);
    assert_eq!(untokened.status, 403, "{}", untokened.body);
    let mut with_token = vec![("csrf", token.as_bytes())];
    with_token.extend(fields);
    let saved = server.post_multipart(&format!("/t/{north}/branding"), &cookie, &with_token);
    assert_eq!(saved.status, 303, "{}", saved.body);
    // Through the API a logo of up to 64 KiB fits, in base64; a larger one is refused.
    use base64::Engine as _;
    let sized = |len: usize| {
        let mut png = png_image(64, 32, [1, 2, 3]);
        png.resize(len, 0);
        json!({ "product_name": "North Backup", "accent": "#123456",
                "logo_png": base64::engine::general_purpose::STANDARD.encode(png) })
    };
    north_caller
        .put(
            &format!("/api/v1/tenants/{north}/branding"),
            sized(64 * 1024),
        )
        .expect(200);
    let too_big = north_caller.put(
        &format!("/api/v1/tenants/{north}/branding"),
        sized(64 * 1024 + 1),
    );
    assert_eq!(too_big.status, 400, "{}", too_big.body);
    // And its customer reads which branding applies to it: north's.
    let applied = customer_caller
        .get(&format!("/api/v1/tenants/{customer}/branding"))
        .expect(200);
    assert_eq!(applied["branding"]["product_name"], "North Backup");
    assert_eq!(applied["branding"]["tenant_id"], north.as_str());
}

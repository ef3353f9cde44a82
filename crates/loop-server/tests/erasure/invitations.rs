//! An erased tenant's open invitations: withdrawn, holding no address.

use super::*;

/// A tenant that invited an address which is an account at another tenant, and one which is
/// nobody's yet, is erased: the erasure goes through, neither invitation can be accepted any
/// more, and the free address can still become an account anywhere.
#[test]
fn an_erased_tenants_invitations_are_withdrawn_and_hold_no_address() {
    let server = Server::start();
    let root = server.admin();
    let (other, acme) = (root.customer_tenant("Other"), root.customer_tenant("Acme"));
    root.user_in(&other, "taken@other.example", "Pat", "operator");
    root.user_in(&acme, "admin@acme.example", "Pat", "admin");
    // Acme's admin invites the taken address (only a caller who sees every tenant is told
    // an address is taken; the invitation goes by mail); the root, the free one, and is
    // given the invitation's code.
    let acme_admin = server.sign_in("admin@acme.example", USER_PASSWORD);
    let invited = acme_admin.invite(&acme, "taken@other.example");
    assert_eq!(invited["user"]["status"], "invited");
    let invite = root.invite(&acme, "free@nowhere.example")["invite_token"]
        .as_str()
        .unwrap()
        .to_string();

    erase_acme(&root, &acme);

    server
        .call(
            "post",
            "/api/v1/auth/accept-invite",
            None,
            Some(&json!({ "invite_token": invite, "password": "invitee-password-1" })),
        )
        .expect_problem(404, "not_found");
    root.user_in(&other, "free@nowhere.example", "Pat", "auditor");
    server.sign_in("taken@other.example", USER_PASSWORD);
}

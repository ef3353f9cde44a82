//! The audit walk's requests to the billing routes (plans, subscriptions, invoices).

use super::*;

use super::audit_log::AuditWalk;

impl AuditWalk<'_> {
    /// A valid request to the billing route `method path`: its path and body.
    pub(super) fn billing_request(&mut self, method: &str, path: &str) -> (String, Option<Value>) {
        match (method, path) {
            ("post", "/api/v1/plans") => {
                self.made += 1;
                (path.into(), Some(self.plan_body()))
            }
            ("delete", "/api/v1/plans/{id}") => {
                let plan = self.plan();
                (format!("/api/v1/plans/{plan}"), None)
            }
            ("put", "/api/v1/tenants/{id}/subscription") => {
                let plan = self.plan();
                (
                    format!("/api/v1/tenants/{}/subscription", self.tenant_id),
                    Some(json!({ "plan_id": plan })),
                )
            }
            ("post", "/api/v1/tenants/{id}/subscription/end") => {
                // Another customer's, so the walk's own subscription stays.
                let (plan, provider) = (self.plan(), self.admin.provider_tenant_id());
                let ending = self.created(
                    "/api/v1/tenants",
                    json!({ "parent_id": provider, "kind": "customer", "name": "Ending",
                            "plan_id": plan }),
                );
                (
                    format!("/api/v1/tenants/{ending}/subscription/end"),
                    Some(json!({ "confirm": "Ending" })),
                )
            }
            ("post", "/api/v1/invoices/{id}/payment") => {
                let tenant = self.tenant_id.clone();
                let invoice = self.invoice(&tenant);
                (
                    format!("/api/v1/invoices/{invoice}/payment"),
                    Some(json!({ "reference": "transfer 1" })),
                )
            }
            ("post", "/api/v1/tenants/{id}/subscription/payment-method") => (
                format!(
                    "/api/v1/tenants/{}/subscription/payment-method",
                    self.tenant_id
                ),
                None,
            ),
            ("post", "/api/v1/signup") => {
                let plan = self.server.signup_plan(&self.admin);
                (
                    path.into(),
                    Some(json!({
                        "organisation": "Self Service", "first_name": "Sign",
                        "last_name": "Up", "email": "signup@audit.example",
                        "password": "signup-password-1", "plan_id": plan,
                    })),
                )
            }
            ("post", "/api/v1/signup/confirm") => {
                let plan = self.server.signup_plan(&self.admin);
                let token = self.server.plant_signup(&plan, "signed@audit.example");
                (path.into(), Some(json!({ "token": token })))
            }
            _ => panic!("{method} {path}: not a billing route"),
        }
    }

    /// The processor's webhook telling that the walk's customer entered a card: a signed
    /// event, posted without a session.
    pub(super) fn stripe_webhook(&mut self) -> Reply {
        let page = self
            .admin
            .post(
                &format!(
                    "/api/v1/tenants/{}/subscription/payment-method",
                    self.tenant_id
                ),
                json!({}),
            )
            .expect(200);
        let (body, sig) = support::stripe::setup_event(
            &self.server.stripe,
            page["url"].as_str().unwrap(),
            support::stripe::Card::Pays,
        );
        support::stripe::post_webhook(self.server, &body, &sig)
    }

    /// A valid new plan of the provider.
    fn plan_body(&self) -> Value {
        json!({ "issuer_id": self.admin.provider_tenant_id(), "name": format!("plan {}", self.made),
                "price_cents": 999, "currency": "EUR" })
    }

    /// A new plan of the provider.
    fn plan(&mut self) -> String {
        self.made += 1;
        self.created("/api/v1/plans", self.plan_body())
    }

    /// An open invoice of `tenant`, issued by the provider.
    fn invoice(&mut self, tenant: &str) -> String {
        let plan = self.plan();
        let provider = self.admin.provider_tenant_id();
        self.server.plant_invoice(&provider, tenant, &plan)
    }
}

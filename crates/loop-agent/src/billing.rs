//! The billing operations of the management API (plans, subscriptions, invoices, charges)
//! and the deletion certificate that ends a customer.

use loop_api::*;
use reqwest::Method;

use crate::api::{ApiClient, ApiError};

impl ApiClient {
    /// An erased tenant's deletion certificate.
    pub fn erasure_certificate(&self, id: &TenantId) -> Result<DeletionCertificate, ApiError> {
        self.get(&format!("/api/v1/tenants/{id}/erasure-certificate"))
    }

    pub fn plans(&self) -> Result<Vec<Plan>, ApiError> {
        self.get_pages("/api/v1/plans", &(), None)
    }

    pub fn create_plan(&self, r: &CreatePlan) -> Result<Plan, ApiError> {
        self.call(Method::POST, "/api/v1/plans", Some(r))
    }

    pub fn delete_plan(&self, id: &str) -> Result<(), ApiError> {
        self.call_empty::<()>(Method::DELETE, &format!("/api/v1/plans/{id}"), None)
    }

    pub fn subscription(&self, tenant: &TenantId) -> Result<Subscription, ApiError> {
        self.get(&format!("/api/v1/tenants/{tenant}/subscription"))
    }

    pub fn set_subscription(
        &self,
        tenant: &TenantId,
        r: &SetSubscription,
    ) -> Result<Subscription, ApiError> {
        let path = format!("/api/v1/tenants/{tenant}/subscription");
        self.call(Method::PUT, &path, Some(r))
    }

    pub fn end_subscription(
        &self,
        tenant: &TenantId,
        r: &EndSubscription,
    ) -> Result<Subscription, ApiError> {
        let path = format!("/api/v1/tenants/{tenant}/subscription/end");
        self.call(Method::POST, &path, Some(r))
    }

    /// The payment processor's page where the customer enters a card.
    pub fn payment_setup(&self, tenant: &TenantId) -> Result<PaymentSetup, ApiError> {
        let path = format!("/api/v1/tenants/{tenant}/subscription/payment-method");
        self.call::<(), _>(Method::POST, &path, None)
    }

    pub fn charges(&self, tenant: &TenantId) -> Result<Vec<Charge>, ApiError> {
        self.get(&format!("/api/v1/tenants/{tenant}/charges"))
    }

    pub fn invoices(&self, tenant: &TenantId) -> Result<Vec<Invoice>, ApiError> {
        self.get_pages(&format!("/api/v1/tenants/{tenant}/invoices"), &(), None)
    }

    pub fn invoice(&self, id: &str) -> Result<Invoice, ApiError> {
        self.get(&format!("/api/v1/invoices/{id}"))
    }

    /// The invoice as the HTML page to print.
    pub fn invoice_html(&self, id: &str) -> Result<String, ApiError> {
        self.get_text(&format!("/api/v1/invoices/{id}"), &[("format", "html")])
    }

    pub fn record_payment(&self, id: &str, r: &RecordPayment) -> Result<Invoice, ApiError> {
        let path = format!("/api/v1/invoices/{id}/payment");
        self.call(Method::POST, &path, Some(r))
    }
}

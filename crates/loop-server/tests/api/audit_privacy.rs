//! The audit walk's requests to the privacy routes (policy, consent, restriction,
//! announcements).

use super::*;

use super::audit_log::{AuditWalk, Call};

impl AuditWalk<'_> {
    /// A valid request to the privacy route `method path`, as the admin or as Sam.
    pub(super) fn privacy_request(&mut self, method: &str, path: &str) -> Call {
        let as_sam = |body: Value| Call {
            bearer: Some(self.sam.secret.clone()),
            path: path.into(),
            body: Some(body),
        };
        match (method, path) {
            ("post", "/api/v1/me/policy-acknowledgement") => {
                let p = self
                    .server
                    .call("get", "/api/v1/privacy/policy", None, None)
                    .expect(200);
                as_sam(json!({ "version": p["version"] }))
            }
            ("put", "/api/v1/me/marketing-consent") => as_sam(json!({ "given": true })),
            ("put", "/api/v1/users/{id}/restriction") => Call {
                bearer: Some(self.admin.secret.clone()),
                path: format!("/api/v1/users/{}/restriction", self.sam.user_id),
                body: Some(json!({ "restricted": true })),
            },
            ("post", "/api/v1/privacy/policies") => {
                self.made += 1;
                Call {
                    bearer: Some(self.admin.secret.clone()),
                    path: path.into(),
                    body: Some(json!({ "version": format!("v{}", self.made),
                                       "url": "https://provider.example/privacy" })),
                }
            }
            ("post", "/api/v1/announcements") => Call {
                bearer: Some(self.admin.secret.clone()),
                path: path.into(),
                body: Some(json!({ "subject": "News", "text": "Faster restores." })),
            },
            ("post", "/api/v1/subject-requests") => Call {
                bearer: Some(self.admin.secret.clone()),
                path: path.into(),
                body: Some(json!({ "user_id": self.sam.user_id, "kind": "rectification" })),
            },
            ("post", "/api/v1/subject-requests/{id}/close") => {
                let r = self.created(
                    "/api/v1/subject-requests",
                    json!({ "user_id": self.sam.user_id, "kind": "access" }),
                );
                Call {
                    bearer: Some(self.admin.secret.clone()),
                    path: format!("/api/v1/subject-requests/{r}/close"),
                    body: Some(json!({ "outcome": "done", "action": "Sent the archive." })),
                }
            }
            ("post", "/api/v1/subprocessors") => {
                self.made += 1;
                Call {
                    bearer: Some(self.admin.secret.clone()),
                    path: path.into(),
                    body: Some(json!({ "name": format!("Processor {}", self.made),
                                       "purpose": "hosting", "location": "EU" })),
                }
            }
            ("delete", "/api/v1/subprocessors/{id}") => {
                self.made += 1;
                let s = self.created(
                    "/api/v1/subprocessors",
                    json!({ "name": format!("Processor {}", self.made), "purpose": "mail",
                            "location": "EU" }),
                );
                Call {
                    bearer: Some(self.admin.secret.clone()),
                    path: format!("/api/v1/subprocessors/{s}"),
                    body: None,
                }
            }
            ("post", "/api/v1/me/data-export") => Call {
                bearer: Some(self.sam.secret.clone()),
                path: path.into(),
                body: None,
            },
            ("post", "/api/v1/users/{id}/data-export") => Call {
                bearer: Some(self.admin.secret.clone()),
                path: format!("/api/v1/users/{}/data-export", self.sam.user_id),
                body: None,
            },
            other => panic!("not a privacy route: {other:?}"),
        }
    }

    /// Sam's mail client unsubscribes with the link of a marketing message (no session).
    pub(super) fn unsubscribe(&mut self) -> Reply {
        let token = self.server.plant_unsubscribe_link(&self.sam.user_id);
        self.server.send(
            self.server
                .request(
                    reqwest::Method::POST,
                    &format!("/api/v1/unsubscribe/{token}"),
                )
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body("List-Unsubscribe=One-Click"),
        )
    }
}

//! Self-service sign-up: a customer starts its own free trial, confirmed by a code mailed to
//! its address.

use crate::{Language, SecretText};

wire! {
    /// `POST /api/v1/signup`: a new organisation asks for a trial. The answer is the same
    /// whether or not the address already has an account; the mail says which.
    pub struct SignUp {
        /// The organisation's name: the new customer tenant's.
        pub organisation: String,
        pub first_name: String,
        pub last_name: String,
        pub email: String,
        /// The first administrator's password (12 to 1024 characters).
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        pub password: SecretText,
        #[serde(default)]
        pub business_address: String,
        /// A plan offered on the sign-up (`GET /api/v1/signup/plans`); may be left out when
        /// there is one.
        #[serde(default)]
        pub plan_id: Option<String>,
        /// The language of the mail (default `en`).
        #[serde(default)]
        pub language: Option<Language>,
    }

    /// `POST /api/v1/signup/confirm`: the code from the sign-up mail.
    pub struct ConfirmSignUp {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        pub token: SecretText,
    }

    /// What a confirmed sign-up made: the customer, its administrator and the trial's end.
    pub struct SignedUp {
        pub tenant_id: String,
        pub user_id: String,
        pub trial_ends_at: chrono::DateTime<chrono::Utc>,
    }

    /// `POST /api/v1/signup`'s answer.
    pub struct SignUpAccepted {
        /// Always `confirmation_sent`: the code goes to the address, if it can be used.
        pub status: String,
    }
}

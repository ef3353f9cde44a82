//! Recovering an account by mail: a forgotten password, reset with a code mailed to the
//! account's address.

use crate::SecretText;

wire! {
    /// `POST /api/v1/auth/password-reset`: mail a link that sets a new password to this
    /// address, if it is an active account's. The answer is the same either way.
    pub struct RequestPasswordReset {
        pub email: String,
    }

    /// `POST /api/v1/auth/password-reset`'s answer, whatever the address.
    pub struct PasswordResetRequested {
        /// Always `reset_sent`: the link goes to the address, if it has an account.
        pub status: String,
    }

    /// `POST /api/v1/auth/password-reset/confirm`: the code from the mail and the new
    /// password (12 to 1024 characters).
    pub struct ResetPassword {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        pub token: SecretText,
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        pub password: SecretText,
    }
}

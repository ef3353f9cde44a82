//! Arguments of `loop signup`.

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum SignupCommand {
    /// The plans a server offers on its self-service sign-up
    Plans {
        #[arg(long)]
        server: String,
    },
    /// Ask for a free trial for your organisation (the password from LOOP_NEW_USER_PASSWORD,
    /// else asked for); a confirmation code goes to the address
    Request {
        #[arg(long)]
        server: String,
        #[arg(long)]
        organisation: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        first_name: String,
        #[arg(long)]
        last_name: String,
        #[arg(long, default_value = "")]
        address: String,
        /// One of the plans offered (needed when there are several)
        #[arg(long)]
        plan: Option<String>,
        /// The language of the mail: en or nl
        #[arg(long)]
        language: Option<loop_api::Language>,
    },
    /// Confirm the sign-up with the mailed code (from LOOP_SIGNUP_TOKEN, else asked for):
    /// the organisation, its administrator and the trial are made
    Confirm {
        #[arg(long)]
        server: String,
    },
}

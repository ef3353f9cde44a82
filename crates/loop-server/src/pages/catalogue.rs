//! Every word the console shows, in English and Dutch. A message is a name in [`M`]; a page
//! asks for it in the reader's language with [`M::text`], or with [`M::fill`] when it has
//! places (`{0}`, `{1}`) for values. A new language is a new column here.

macro_rules! catalogue {
    ($(#[$doc:meta])* $words:ident { $($name:ident: $en:literal, $nl:literal;)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $words { $($name),* }

        impl $words {
            /// Every message, for the catalogue's own checks.
            #[cfg(test)]
            pub const ALL: &'static [$words] = &[$($words::$name),*];

            /// The message in `lang`.
            pub fn text(self, lang: loop_api::Language) -> &'static str {
                match (self, lang) {
                    $(($words::$name, loop_api::Language::En) => $en, ($words::$name, loop_api::Language::Nl) => $nl,)*
                }
            }

            /// The message in `lang` with its places `{0}`, `{1}`, … taken by `values`.
            pub fn fill(self, lang: loop_api::Language, values: &[&str]) -> String {
                $crate::pages::catalogue::fill(self.text(lang), values)
            }
        }

        #[cfg(test)]
        #[test]
        fn every_message_exists_in_both_languages_with_the_same_places() {
            for m in $words::ALL {
                $crate::pages::catalogue::tests::check_both_languages(
                    &format!("{m:?}"),
                    m.text(loop_api::Language::En),
                    m.text(loop_api::Language::Nl),
                );
            }
        }
    };
}
pub(crate) use catalogue;

/// `text` with its places `{0}`, `{1}`, … taken by `values`.
pub fn fill(text: &str, values: &[&str]) -> String {
    // One pass over the message: a value is never read again, so a value that itself
    // holds `{1}` stays as it is.
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let place = after
            .find('}')
            .and_then(|close| Some((after[..close].parse::<usize>().ok()?, close)));
        match place {
            Some((i, close)) => {
                out.push_str(values.get(i).copied().unwrap_or(""));
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

catalogue! {
    /// A message of the console.
    M {
    // The frame of every page.
    Product: "Loop Backup", "Loop Backup";
    SkipToContent: "Skip to the content", "Naar de inhoud";
    MainMenu: "Main menu", "Hoofdmenu";
    Dashboard: "Dashboard", "Overzicht";
    Account: "Account", "Account";
    SignedInAs: "Signed in as {0}", "Ingelogd als {0}";
    SignOut: "Sign out", "Uitloggen";
    NotFound: "Not found", "Niet gevonden";
    NotFoundText: "There is nothing here, or you may not see it.",
        "Hier is niets, of u mag het niet zien.";
    Failed: "That did not work", "Dat is niet gelukt";
    BackToDashboard: "Back to the dashboard", "Terug naar het overzicht";
    FormExpired: "This form has expired. Open the page again and repeat what you did.",
        "Dit formulier is verlopen. Open de pagina opnieuw en doe het nog eens.";

    // Signing in.
    SignIn: "Sign in", "Inloggen";
    Email: "E-mail address", "E-mailadres";
    Password: "Password", "Wachtwoord";
    RememberMe: "Remember me on this device", "Onthoud mij op dit apparaat";
    WrongCredentials: "The e-mail address or the password is wrong.",
        "Het e-mailadres of het wachtwoord klopt niet.";
    Throttled: "Too many failed attempts. Try again in {0} seconds.",
        "Te veel mislukte pogingen. Probeer het over {0} seconden opnieuw.";
    CodeTitle: "Authenticator code", "Code uit de authenticator-app";
    CodeHelp: "Enter the six-digit code your authenticator app shows for this account.",
        "Voer de code van zes cijfers in die uw authenticator-app voor dit account toont.";
    Code: "Code", "Code";
    Continue: "Continue", "Verder";
    WrongCode: "That code is wrong or was already used. Wait for the next one.",
        "Die code klopt niet of is al gebruikt. Wacht op de volgende.";
    ChallengeGone: "Too long ago or too many codes: sign in again.",
        "Te lang geleden of te veel codes: log opnieuw in.";

    // Signing up.
    SignUp: "Sign up", "Aanmelden";
    SignUpIntro: "Start a free trial of Loop Backup for your organisation. We mail you a link to \
                  confirm your address; the trial starts when you open it.",
        "Start een gratis proefperiode van Loop Backup voor uw organisatie. We mailen u een \
         link om uw adres te bevestigen; de proefperiode begint wanneer u die opent.";
    Organisation: "Organisation", "Organisatie";
    FirstName: "First name", "Voornaam";
    LastName: "Last name", "Achternaam";
    BusinessAddress: "Business address (optional)", "Bedrijfsadres (niet verplicht)";
    NewPassword: "Password (at least 12 characters)", "Wachtwoord (minstens 12 tekens)";
    Plan: "Plan", "Abonnement";
    PlanPrice: "{0} ({1} a month)", "{0} ({1} per maand)";
    StartTrial: "Start the trial", "Start de proefperiode";
    CheckMail: "Check your mail", "Kijk in uw mailbox";
    LinkSent: "If the address can be used, a message with a link to confirm it is on its way \
               to {0}. The link works once, for 7 days.",
        "Als het adres gebruikt kan worden, is er een bericht met een link om het te \
         bevestigen onderweg naar {0}. De link werkt eenmaal, 7 dagen lang.";
    ConfirmSignUp: "Confirm your sign-up", "Bevestig uw aanmelding";
    ConfirmAndStart: "Confirm and start the trial", "Bevestig en start de proefperiode";
    TrialStarted: "Your trial started", "Uw proefperiode is begonnen";
    TrialEnds: "It ends on {0}.", "Ze eindigt op {0}.";
    SignInToStart: "Sign in with your address and the password you chose.",
        "Log in met uw adres en het wachtwoord dat u koos.";
    OrFromTerminal: "From a terminal:", "Vanuit een terminal:";

    // The account.
    Profile: "Profile", "Profiel";
    Language: "Language", "Taal";
    English: "English", "Engels";
    Dutch: "Dutch", "Nederlands";
    Save: "Save", "Opslaan";
    Saved: "Saved.", "Opgeslagen.";
    PendingEmail: "{0} waits for confirmation: open the link we mailed to it.",
        "{0} wacht op bevestiging: open de link die we ernaartoe mailden.";
    ChangePassword: "Change the password", "Wachtwoord wijzigen";
    CurrentPassword: "Current password", "Huidig wachtwoord";
    EmailPassword: "Current password (to change the e-mail address)",
        "Huidig wachtwoord (om het e-mailadres te wijzigen)";
    PasswordChanged: "The password is changed; every other session of yours has ended.",
        "Het wachtwoord is gewijzigd; al uw andere sessies zijn beëindigd.";
    Authenticator: "Authenticator app", "Authenticator-app";
    AuthenticatorOn: "Sign-in asks for a code from your authenticator app.",
        "Bij het inloggen wordt om een code uit uw authenticator-app gevraagd.";
    AuthenticatorOff: "Sign-in asks only for your password.",
        "Bij het inloggen wordt alleen om uw wachtwoord gevraagd.";
    SetUpAuthenticator: "Set up an authenticator app", "Een authenticator-app instellen";
    AuthenticatorPassword: "Give your password to begin. The app's key is shown once, on the \
         next page.",
        "Geef uw wachtwoord om te beginnen. De sleutel voor de app wordt eenmaal getoond, op de \
         volgende pagina.";
    ScanCode: "Scan this code with your authenticator app, or type the key below into it. Then \
         give the code the app shows.",
        "Scan deze code met uw authenticator-app, of typ de sleutel hieronder erin. Geef daarna \
         de code die de app toont.";
    QrLabel: "QR code for your authenticator app", "QR-code voor uw authenticator-app";
    SecretKey: "Key", "Sleutel";
    OpenInApp: "Open in an authenticator app on this device",
        "Openen in een authenticator-app op dit apparaat";
    TurnOn: "Turn on", "Inschakelen";
    AuthenticatorEnabled: "Your authenticator app is on: sign-in asks for its code from now on.",
        "Uw authenticator-app staat aan: bij het inloggen wordt voortaan om de code gevraagd.";
    EnrolmentGone: "This set-up was started again elsewhere. Begin again here.",
        "Dit instellen is elders opnieuw begonnen. Begin hier opnieuw.";
    Privacy: "Privacy", "Privacy";
    PolicyAccepted: "You acknowledged privacy policy version {0}.",
        "U heeft versie {0} van de privacyverklaring erkend.";
    PolicyToAccept: "Privacy policy version {0} is in force and you have not acknowledged it yet.",
        "Versie {0} van de privacyverklaring geldt en u heeft die nog niet erkend.";
    ReadPolicy: "Read the privacy policy", "Lees de privacyverklaring";
    Acknowledge: "I have read it", "Ik heb die gelezen";
    NoPolicy: "No privacy policy is published yet.", "Er is nog geen privacyverklaring gepubliceerd.";
    Acknowledged: "Acknowledged.", "Erkend.";
    MarketingOn: "You receive product news by mail.", "U ontvangt productnieuws per mail.";
    MarketingOff: "You receive no product news. Service messages still come.",
        "U ontvangt geen productnieuws. Berichten over de dienst komen wel.";
    WithdrawConsent: "Stop the product news", "Stop het productnieuws";
    GiveConsent: "Send me product news", "Stuur mij productnieuws";
    ConsentChanged: "Your choice is saved.", "Uw keuze is opgeslagen.";
    MyData: "Download my data", "Mijn gegevens downloaden";
    MyDataHelp: "A zip file of everything the service keeps about you, ready in a minute, \
                 downloadable for 7 days.",
        "Een zip-bestand met alles wat de dienst over u bewaart, binnen een minuut klaar en \
         7 dagen te downloaden.";
    MakeArchive: "Make the archive", "Maak het archief";
    ArchiveRequested: "The archive is being made. Reload this page to download it.",
        "Het archief wordt gemaakt. Laad deze pagina opnieuw om het te downloaden.";
    ArchivePreparing: "being made", "wordt gemaakt";
    ArchiveExpired: "expired", "verlopen";
    Download: "Download", "Downloaden";
    Requested: "Requested", "Aangevraagd";
    State: "State", "Status";

    // Sessions.
    Sessions: "Sessions", "Sessies";
    YourSessions: "Your sessions", "Uw sessies";
    TenantSessions: "Sessions of {0}", "Sessies van {0}";
    Started: "Started", "Begonnen";
    LastSeen: "Last seen", "Laatst gezien";
    Browser: "Browser", "Browser";
    Address: "Address", "Adres";
    Person: "Person", "Persoon";
    ThisSession: "this session", "deze sessie";
    Ended: "ended", "beëindigd";
    Revoke: "Sign out", "Uitloggen";
    RevokeSession: "Sign out the session of {0}", "Sessie van {0} uitloggen";
    Revoked: "That session is signed out.", "Die sessie is uitgelogd.";
    NoSessions: "No sessions.", "Geen sessies.";

    // The audit log.
    AuditLog: "Audit log", "Auditlog";
    AuditOf: "Audit log of {0}", "Auditlog van {0}";
    Action: "Action", "Handeling";
    Actor: "Actor", "Actor";
    Object: "Object", "Object";
    Outcome: "Outcome", "Uitkomst";
    Time: "Time", "Tijd";
    Since: "From (date)", "Vanaf (datum)";
    Until: "Before (date)", "Voor (datum)";
    Filter: "Filter", "Filteren";
    NoEvents: "No events match.", "Geen gebeurtenissen gevonden.";
    OlderEvents: "Older events", "Oudere gebeurtenissen";
    ExportCsv: "Export as CSV", "Exporteren als CSV";
    ExportJsonl: "Export as JSON Lines", "Exporteren als JSON Lines";
    VerifyChain: "Verify the chain", "Controleer de keten";
    ChainIntact: "The chain is intact: {0} events, up to event {1}, which matches the head the \
                  server keeps.",
        "De keten is intact: {0} gebeurtenissen, tot en met gebeurtenis {1}, die overeenkomt \
         met de kop die de server bewaart.";
    ChainBroken: "The chain is broken at event {0}: {1}.",
        "De keten is verbroken bij gebeurtenis {0}: {1}.";
    ChainEmpty: "The log has no events yet.", "Het log heeft nog geen gebeurtenissen.";
    BadDate: "A date is written as YYYY-MM-DD.", "Een datum schrijft u als JJJJ-MM-DD.";

    // The tenant tree.
    Customers: "Customers", "Klanten";
    TenantsUnder: "Tenants of {0}", "Tenants van {0}";
    Tenant: "Tenant", "Tenant";
    Kind: "Kind", "Soort";
    Subscription: "Subscription", "Abonnement";
    Health: "Health", "Gezondheid";
    ItemsFailing: "{0} of {1} items failing", "{0} van {1} items falen";
    ItemsOk: "{0} items, all well", "{0} items, alles in orde";
    NoTenants: "No tenants below this one yet.", "Nog geen tenants hieronder.";
    NewTenant: "New tenant", "Nieuwe tenant";
    Name: "Name", "Naam";
    Create: "Create", "Aanmaken";
    KindCustomer: "customer", "klant";
    KindPartner: "partner", "partner";
    Created: "Created.", "Aangemaakt.";

    // Users and invitations.
    Users: "Users", "Gebruikers";
    UsersOf: "Users of {0}", "Gebruikers van {0}";
    Role: "Role", "Rol";
    NoRole: "no role", "geen rol";
    Status: "Status", "Status";
    Invite: "Invite", "Uitnodigen";
    InviteSomeone: "Invite someone", "Iemand uitnodigen";
    InviteHelp: "We mail an invitation to the address; its owner chooses a password within 7 days.",
        "We mailen een uitnodiging naar het adres; de eigenaar kiest binnen 7 dagen een wachtwoord.";
    RemoveRole: "Remove the role {0} of {1}", "De rol {0} van {1} intrekken";
    RoleFor: "Another role for {0}", "Nog een rol voor {0}";
    AddRole: "Add", "Toevoegen";
    RolesChanged: "The roles are changed.", "De rollen zijn gewijzigd.";
    Invited: "The invitation is on its way.", "De uitnodiging is onderweg.";
    AcceptInvitation: "Accept the invitation", "De uitnodiging aannemen";
    ChoosePassword: "Choose the password you will sign in with.",
        "Kies het wachtwoord waarmee u gaat inloggen.";
    SetPassword: "Set the password", "Wachtwoord instellen";
    InvitationAccepted: "Your password is set. Sign in with your address and that password.",
        "Uw wachtwoord is ingesteld. Log in met uw adres en dat wachtwoord.";
    // A forgotten password.
    ForgotPassword: "Forgot your password?", "Wachtwoord vergeten?";
    ResetHelp: "Give the address you sign in with: a link to choose a new password goes to it.",
        "Geef het adres waarmee u inlogt: er gaat een link naartoe om een nieuw \
         wachtwoord te kiezen.";
    SendLink: "Send the link", "Stuur de link";
    ResetSent: "If {0} is the address of an account, a link to choose a new password is on its \
         way. It works once, for an hour.",
        "Als {0} het adres van een account is, is er een link onderweg om een nieuw wachtwoord \
         te kiezen. Die werkt eenmaal, een uur lang.";
    ResetThrottled: "Too many links were asked for from here or for this address. Try again \
         in {0} seconds.",
        "Er zijn te veel links gevraagd vanaf hier of voor dit adres. Probeer het over {0} \
         seconden opnieuw.";
    NewPasswordTitle: "Choose a new password", "Kies een nieuw wachtwoord";
    PasswordResetDone: "Your new password is set, and every session of the account has ended. \
         Sign in with it.",
        "Uw nieuwe wachtwoord is ingesteld en elke sessie van het account is beëindigd. Log \
         ermee in.";
    ResetLinkInvalid: "This link is unknown, used or expired. Ask for a new one here.",
        "Deze link is onbekend, gebruikt of verlopen. Vraag hier een nieuwe aan.";

    // Tokens.
    TokensOf: "Tokens of {0}", "Tokens van {0}";
    Tokens: "Tokens", "Tokens";
    NoTokens: "No tokens yet.", "Nog geen tokens.";
    Holder: "Held by", "In handen van";
    MayDo: "May", "Mag";
    ApiToken: "a program (API token)", "een programma (API-token)";
    EveryVault: "every vault", "elke kluis";
    Expires: "Expires", "Verloopt";
    LastUsed: "Last used", "Laatst gebruikt";
    NeverUsed: "not yet", "nog niet";
    RevokedState: "revoked", "ingetrokken";
    Live: "in use", "in gebruik";
    RevokeButton: "Revoke", "Intrekken";
    RevokeToken: "Revoke the token {0}", "Het token {0} intrekken";
    TokenRevoked: "The token is revoked: it no longer works.",
        "Het token is ingetrokken: het werkt niet meer.";
    NewApiToken: "A token for a program", "Een token voor een programma";
    VaultsHelp: "Only these vaults (none ticked: every vault)",
        "Alleen deze kluizen (niets aangevinkt: elke kluis)";
    ExpiresInDays: "Expires after this many days (empty: never)",
        "Verloopt na zoveel dagen (leeg: nooit)";
    MakeToken: "Make the token", "Het token maken";
    TokenShownOnce: "The token {0} is made. Its secret is shown once, here: copy it now.",
        "Het token {0} is gemaakt. Het geheim wordt eenmaal getoond, hier: kopieer het nu.";

    // Devices.
    DevicesOf: "Devices of {0}", "Apparaten van {0}";
    Online: "online", "online";
    Offline: "offline", "offline";
    NeverSeen: "never seen", "nooit gezien";
    AgentVersion: "Agent", "Agent";
    Items: "Items", "Items";
    Notifications: "Notifications", "Meldingen";
    Policies: "Retention", "Bewaarbeleid";
    Branding: "Branding", "Huisstijl";
    NoDevices: "No devices yet.", "Nog geen apparaten.";
    EnrolDevice: "Enrol a device", "Een apparaat aanmelden";
    EnrolHelp: "Make a code, then run this on the machine; the code works once, for an hour.",
        "Maak een code en voer dit uit op de machine; de code werkt eenmaal, een uur lang.";
    MakeCode: "Make a code", "Maak een code";
    CodeShownOnce: "This code is shown once and works until {0}:",
        "Deze code wordt eenmaal getoond en werkt tot {0}:";
    EnrolOnTheMachine: "On the machine, run this and give the code when it asks:",
        "Voer dit uit op de machine en geef de code wanneer erom gevraagd wordt:";

    // The dashboard.
    Problems: "Needs attention", "Vraagt aandacht";
    NoProblems: "Every protected item is backed up on time.",
        "Elk beschermd item heeft op tijd een back-up.";
    ProtectedItems: "Protected items", "Beschermde items";
    NoItems: "Nothing is protected yet: enrol a device and give it an item to back up.",
        "Er wordt nog niets beschermd: meld een apparaat aan en geef het iets om te back-uppen.";
    Item: "Item", "Item";
    Device: "Device", "Apparaat";
    LastResult: "Last result", "Laatste resultaat";
    LastSuccess: "Last good backup", "Laatste goede back-up";
    Never: "never", "nooit";
    AgoMinutes: "{0} min ago", "{0} min geleden";
    AgoHours: "{0} h ago", "{0} u geleden";
    AgoDays: "{0} days ago", "{0} dagen geleden";
    HealthOk: "OK", "In orde";
    HealthWarning: "Warning", "Waarschuwing";
    HealthFailed: "Failed", "Mislukt";
    HealthMissed: "Missed", "Gemist";
    HealthNone: "Not run yet", "Nog niet gedraaid";
    Devices: "Devices", "Apparaten";
    DevicesOnline: "{0} of {1} online", "{0} van {1} online";
    Storage: "Storage", "Opslag";
    StorageOf: "{0} of {1}", "{0} van {1}";
    NoQuota: "{0}, no quota", "{0}, geen quotum";
    StoredOverTime: "Stored bytes, last 30 days", "Opgeslagen bytes, laatste 30 dagen";
    JobsPerDay: "Job outcomes per day, last 14 days", "Uitkomsten van taken per dag, laatste 14 dagen";
    NoData: "No data yet.", "Nog geen gegevens.";
    Succeeded: "succeeded", "gelukt";
    FailedJobs: "failed", "mislukt";
    OtherJobs: "other", "overig";
    ChartStoredDesc: "Stored bytes per day: from {0} on {1} to {2} on {3}.",
        "Opgeslagen bytes per dag: van {0} op {1} tot {2} op {3}.";
    ChartJobsDesc: "{0} jobs in {1} days: {2} succeeded, {3} failed, {4} other.",
        "{0} taken in {1} dagen: {2} gelukt, {3} mislukt, {4} overig.";

    // Vaults and snapshots.
    Vaults: "Vaults", "Kluizen";
    VaultsOf: "Vaults of {0}", "Kluizen van {0}";
    NoVaults: "This tenant has no vaults yet.", "Deze tenant heeft nog geen kluizen.";
    VaultNamed: "Vault {0}", "Kluis {0}";
    Location: "Location", "Locatie";
    Jurisdiction: "Jurisdiction", "Rechtsgebied";
    Key: "Key", "Sleutel";
    KeyManaged: "Held by the service", "Bewaard door de dienst";
    KeyCustomer: "Held by the customer", "Bewaard door de klant";
    Used: "Used", "Gebruikt";
    RetentionLock: "Retention lock", "Bewaarslot";
    LockDays: "{0} days", "{0} dagen";
    NoLock: "None", "Geen";
    Replicas: "Replicas", "Replica's";
    NoReplicas: "This vault has no replica.", "Deze kluis heeft geen replica.";
    LastSynced: "Last replicated", "Laatst gerepliceerd";
    Behind: "Behind", "Achterstand";
    BehindBy: "{0} objects, {1}", "{0} objecten, {1}";
    Verified: "Verified", "Gecontroleerd";
    Whole: "Whole", "Compleet";
    Damaged: "Damaged", "Beschadigd";
    Snapshots: "Snapshots", "Momentopnamen";
    NoSnapshots: "This vault holds no snapshot yet.", "Deze kluis bevat nog geen momentopname.";
    CustomerKeyText: "This vault is encrypted with a key only the customer holds, so the service \
        cannot list or open its snapshots. Use loop snapshots and loop restore on a device that \
        has the passphrase.",
        "Deze kluis is versleuteld met een sleutel die alleen de klant heeft; de dienst kan de \
        momentopnamen dus niet tonen of openen. Gebruik loop snapshots en loop restore op een \
        apparaat dat het wachtwoord kent.";
    Host: "Host", "Machine";
    Paths: "Paths", "Paden";
    Files: "Files", "Bestanden";
    Size: "Size", "Grootte";
    SnapshotOf: "Snapshot of {0}, {1}", "Momentopname van {0}, {1}";
    SearchByName: "Search by name", "Zoeken op naam";
    Search: "Search", "Zoeken";
    DownloadZip: "Download this folder as .zip", "Deze map downloaden als .zip";
    DownloadTarZst: "as .tar.zst", "als .tar.zst";
    Where: "Folder path", "Pad van de map";
    Top: "Top", "Begin";
    Folder: "Folder", "Map";
    FileKind: "File", "Bestand";
    SymlinkKind: "Link", "Koppeling";
    OtherKind: "Other", "Overig";
    Modified: "Modified", "Gewijzigd";
    EmptyFolder: "This folder is empty.", "Deze map is leeg.";
    EntriesShown: "{0} to {1} of {2}", "{0} tot {1} van {2}";
    NextEntries: "Next {0}", "Volgende {0}";
    Found: "{0} found.", "{0} gevonden.";
    FoundFirst: "The first {0} found; search more precisely for the rest.",
        "De eerste {0} gevonden; zoek preciezer voor de rest.";

    // Jobs.
    Jobs: "Jobs", "Taken";
    JobsOf: "Jobs of {0}", "Taken van {0}";
    NoJobs: "No jobs yet.", "Nog geen taken.";
    Job: "Job", "Taak";
    JobTitle: "Job: {0}", "Taak: {0}";
    Target: "Works on", "Werkt aan";
    Finished: "Finished", "Klaar";
    Progress: "Progress", "Voortgang";
    JobDone: "{0} of {1} files, {2} of {3}", "{0} van {1} bestanden, {2} van {3}";
    Error: "Error", "Fout";
    Log: "Log", "Logboek";
    Level: "Level", "Niveau";
    Message: "Message", "Bericht";
    CancelJob: "Cancel this job", "Deze taak annuleren";
    CancelAsked: "Cancelling: a running job stops at its next check.",
        "Wordt geannuleerd: een lopende taak stopt bij de volgende controle.";
    BackUpNow: "Back up now", "Nu back-up maken";
    JobQueued: "Queued", "In de wachtrij";
    JobRunning: "Running", "Bezig";
    JobSucceeded: "Succeeded", "Gelukt";
    JobWarned: "Succeeded with warnings", "Gelukt met waarschuwingen";
    JobFailed: "Failed", "Mislukt";
    JobCancelled: "Cancelled", "Geannuleerd";
    JobMissed: "Missed", "Gemist";
    JobSkipped: "Skipped", "Overgeslagen";
    JobAbandoned: "Abandoned", "Opgegeven";
    RestoreToDevice: "Restore to a device", "Terugzetten op een apparaat";
    RestoreInto: "Into this folder on the device", "In deze map op het apparaat";
    RestoreFolder: "Restore {0}", "{0} terugzetten";
}
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use loop_api::Language;

    /// Places a message has, as the set of their numbers.
    fn places(s: &str) -> Vec<usize> {
        let mut out: Vec<usize> = (0..10)
            .filter(|i| s.contains(&format!("{{{i}}}")))
            .collect();
        out.sort();
        out
    }

    /// Each of `texts` (a message's English and Dutch) is there, with the same places,
    /// numbered from 0 without gaps. Every catalogue of the console is checked with this.
    pub fn check_both_languages(name: &str, en: &str, nl: &str) {
        assert!(!en.trim().is_empty() && !nl.trim().is_empty(), "{name}");
        assert_eq!(places(en), places(nl), "{name}");
        assert_eq!(
            places(en),
            (0..places(en).len()).collect::<Vec<_>>(),
            "{name}"
        );
    }

    #[test]
    fn fill_puts_each_value_in_its_place() {
        assert_eq!(
            M::DevicesOnline.fill(Language::Nl, &["3", "7"]),
            "3 van 7 online"
        );
        assert_eq!(
            M::ChartJobsDesc.fill(Language::En, &["9", "14", "7", "1", "1"]),
            "9 jobs in 14 days: 7 succeeded, 1 failed, 1 other."
        );
        // A value is put in once, never read as a place itself.
        assert_eq!(
            M::StorageOf.fill(Language::En, &["{1}", "2 GB"]),
            "{1} of 2 GB"
        );
    }
}

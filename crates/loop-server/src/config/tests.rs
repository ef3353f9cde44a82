use super::*;

#[test]
fn a_file_with_destinations_parses_and_env_overrides_it() {
    let text = r#"
listen = "127.0.0.1:9000"
[[destinations]]
name = "eu-disk"
jurisdiction = "eu"
backend = "local"
path = "/srv/loop"
[[destinations]]
name = "us-s3"
jurisdiction = "us"
backend = "s3"
bucket = "b"
access_key_id = "k"
secret_access_key = "s"
"#;
    let mut c: Config = toml::from_str(text).unwrap();
    assert_eq!(c.destinations().len(), 2);
    assert!(matches!(
        c.destinations[1].backend,
        BackendConfig::S3 { .. }
    ));
    c.apply_env(|k| (k == "LOOP_LISTEN").then(|| "127.0.0.1:9001".to_string()))
        .unwrap();
    assert_eq!(c.listen.port(), 9001);
    assert!(!format!("{c:?}").contains("\"s\""));
}

#[test]
fn connection_budgets_come_from_the_file_and_the_environment() {
    let text = "[connections]\nidle_seconds = 5\nmax_per_client = 3\n";
    let mut c: Config = toml::from_str(text).unwrap();
    assert_eq!(
        (c.connections.idle_seconds, c.connections.max_per_client),
        (5, 3)
    );
    assert_eq!(
        c.connections.body_read_seconds, 60,
        "unset keys keep defaults"
    );
    c.apply_env(|k| match k {
        "LOOP_CONNECTIONS_BODY_READ_SECONDS" => Some("7".into()),
        "LOOP_CONNECTIONS_MAX" => Some("9".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!((c.connections.body_read_seconds, c.connections.max), (7, 9));
    c.connections.idle_seconds = 0;
    assert!(
        c.validate().is_err(),
        "a zero timeout would close every connection"
    );
}

#[test]
fn a_replication_pace_is_read_and_zero_is_refused() {
    let c: Config = toml::from_str("[replication]\nbytes_per_sec = 1048576").unwrap();
    assert_eq!(c.replication.bytes_per_sec, Some(1_048_576));
    c.validate().unwrap();
    let zero: Config = toml::from_str("[replication]\nbytes_per_sec = 0").unwrap();
    let e = zero.validate().unwrap_err().to_string();
    assert!(e.contains("replication.bytes_per_sec"), "{e}");
}

#[test]
fn an_unknown_key_is_refused() {
    assert!(toml::from_str::<Config>("lisen = \"x\"").is_err());
}

#[test]
fn the_embedded_destination_takes_its_jurisdiction_from_the_configuration() {
    let c = Config::default();
    assert_eq!(c.destinations()[0].jurisdiction, "local");
    let mut c: Config = toml::from_str(
        "[residency]\nembedded_jurisdiction = \"de\"\n[residency.parents]\neu = \"europe\"\n",
    )
    .unwrap();
    assert_eq!(c.destinations()[0].jurisdiction, "de");
    c.validate().unwrap();
    c.apply_env(|k| (k == "LOOP_JURISDICTION").then(|| "nl".to_string()))
        .unwrap();
    assert_eq!(c.destinations()[0].jurisdiction, "nl");
    // A malformed label, or a tree the built-in one contradicts, is refused at start.
    c.residency.embedded_jurisdiction = "The Netherlands".into();
    assert!(c.validate().is_err());
    c.residency.embedded_jurisdiction = "nl".into();
    c.residency.parents.insert("nl".into(), "benelux".into());
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("nl already lies within eu"), "{err}");
}

#[test]
fn a_mistyped_line_is_placed_but_not_shown() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.toml");
    std::fs::write(&file, "[mail]\npasword = \"hunter2-secret\"\n").unwrap();
    let e = Config::load(Some(&file)).unwrap_err().to_string();
    assert!(e.contains("line 2"), "{e}");
    assert!(e.contains("pasword"), "the key is named: {e}");
    assert!(!e.contains("hunter2"), "{e}");
    // A secret of the wrong type: the error names the line and the type, not the value.
    for text in [
        "[mail]\npassword = 84736251\n",
        "admin_password = 123456789012\n",
        "[mail]\npassword = [\"hunter2-in-a-list\"]\n",
        "[database]\nmax_connections = \"hunter2-as-a-string \\\" with a quote\"\n",
    ] {
        std::fs::write(&file, text).unwrap();
        let e = Config::load(Some(&file)).unwrap_err().to_string();
        assert!(e.contains("line") && e.contains("expected"), "{e}");
        for secret in ["84736251", "123456789012", "hunter2"] {
            assert!(!e.contains(secret), "{e}");
        }
    }
}

/// A mistyped optional key of a destination would fall back to its default (vaults at the
/// bucket's root, presigned URLs valid 15 minutes): it stops the server instead, as does a
/// key of the other backend.
#[test]
fn a_destination_key_that_is_mistyped_or_of_another_backend_is_refused() {
    let s3 = |extra: &str| {
        format!(
            "[[destinations]]\nname = \"s3\"\njurisdiction = \"eu\"\nbackend = \"s3\"\n\
             bucket = \"b\"\naccess_key_id = \"k\"\nsecret_access_key = \"s3cret\"\n{extra}"
        )
    };
    for (text, expected) in [
        (s3("prefx = \"prod\"\n"), "prefx"),
        (s3("direct_url_sec = 60\n"), "direct_url_sec"),
        (
            s3("path = \"/srv\"\n"),
            "`path` is not a key of a s3 destination",
        ),
        (
            "[[destinations]]\nname = \"disk\"\njurisdiction = \"eu\"\nbackend = \"local\"\n\
             path = \"/srv\"\nbucket = \"b\"\n"
                .to_string(),
            "`bucket` is not a key of a local destination",
        ),
        (
            "[[destinations]]\nname = \"x\"\njurisdiction = \"eu\"\nbackend = \"ftp\"\n"
                .to_string(),
            "not one of local, s3",
        ),
        (
            s3("").replace("bucket = \"b\"\n", ""),
            "`bucket` is missing",
        ),
    ] {
        let e = toml::from_str::<Config>(&text).unwrap_err().to_string();
        assert!(e.contains(expected), "{text}: {e}");
        assert!(!e.contains("s3cret"), "{e}");
    }
    let c: Config = toml::from_str(&s3("prefix = \"prod\"\ndirect = true\n")).unwrap();
    match &c.destinations()[0].backend {
        BackendConfig::S3 {
            prefix,
            direct,
            direct_url_secs,
            retries,
            ..
        } => assert_eq!(
            (prefix.as_str(), *direct, *direct_url_secs, *retries),
            (
                "prod",
                true,
                900,
                loop_repo::RetryBudget::default().max_retries
            )
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_zero_that_would_switch_a_guard_off_or_lock_everyone_out_is_refused() {
    for (text, name) in [
        ("[signin]\nwindow_minutes = 0", "signin.window_minutes"),
        (
            "[signin]\nmax_failures_per_account = 0",
            "signin.max_failures_per_account",
        ),
        (
            "[signin]\nmax_failures_per_ip = 0",
            "signin.max_failures_per_ip",
        ),
        ("[session]\nremember_days = 0", "session.remember_days"),
        ("[jobs]\nlease_seconds = 0", "jobs.lease_seconds"),
        ("[limits]\nclaim_lease_secs = 0", "limits.claim_lease_secs"),
        (
            "[notify]\nwebhook_timeout_seconds = 0",
            "notify.webhook_timeout_seconds",
        ),
        (
            "[database]\nmax_connections = 0",
            "database.max_connections",
        ),
    ] {
        let c: Config = toml::from_str(text).unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains(name), "{text}: {e}");
    }
    Config::default().validate().unwrap();
}

#[test]
fn an_empty_metrics_token_and_events_kept_no_day_are_refused() {
    let c: Config = toml::from_str("[metrics]\ntoken = \" \"").unwrap();
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("metrics.token"), "{e}");
    let c: Config = toml::from_str("[notify]\nkeep_days = 0").unwrap();
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("notify.keep_days"), "{e}");
    let c: Config =
        toml::from_str("[metrics]\ntoken = \"t0ken\"\n[notify]\nkeep_days = 1").unwrap();
    c.validate().unwrap();
}

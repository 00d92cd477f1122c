//! The `tessera` command, run as a process.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::Write as _;
use std::process::{Command, Stdio};

fn tessera(dir: &std::path::Path, args: &[&str], stdin: &str) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .env("TESSERA_DATA_DIR", dir)
        .env("TESSERA_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tessera");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn tenants_users_and_keys_are_managed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = tessera(
        dir.path(),
        &["tenant", "create", "acme", "--name", "Acme Inc"],
        "",
    );
    assert!(ok, "{out}");
    let (ok, out) = tessera(dir.path(), &["tenant", "list"], "");
    assert!(ok && out.contains("acme\tAcme Inc"), "{out}");
    let (ok, out) = tessera(
        dir.path(),
        &[
            "user",
            "create",
            "--tenant",
            "acme",
            "--email",
            "ann@example.com",
        ],
        "correct horse battery staple\n",
    );
    assert!(ok, "{out}");
    let (ok, out) = tessera(
        dir.path(),
        &[
            "user",
            "create",
            "--tenant",
            "acme",
            "--email",
            "bob@example.com",
        ],
        "password1234\n",
    );
    assert!(!ok && out.contains("too easy to guess"), "{out}");
    // Through the same account service as every creation: the address is taken once, and a
    // name follows registration's rule.
    let (ok, out) = tessera(
        dir.path(),
        &[
            "user",
            "create",
            "--tenant",
            "acme",
            "--email",
            "ANN@example.com",
        ],
        "correct horse battery staple\n",
    );
    assert!(
        !ok && out.contains("already has an account in tenant acme"),
        "{out}"
    );
    let long = "n".repeat(101);
    let (ok, out) = tessera(
        dir.path(),
        &[
            "user",
            "create",
            "--tenant",
            "acme",
            "--email",
            "cy@example.com",
            "--name",
            &long,
        ],
        "correct horse battery staple\n",
    );
    assert!(!ok && out.contains("at most 100 characters"), "{out}");
    for _ in 0..2 {
        let (ok, out) = tessera(dir.path(), &["keys", "rotate"], "");
        assert!(ok && out.contains("new current key"), "{out}");
    }
    let (ok, out) = tessera(dir.path(), &["keys", "list"], "");
    assert!(
        ok && out.contains("current") && out.contains("retired"),
        "{out}"
    );
}

/// The lines of `tessera tenant show` that give settings, for comparison.
fn shown_settings(dir: &std::path::Path, slug: &str) -> Vec<String> {
    let (ok, out) = tessera(dir, &["tenant", "show", slug], "");
    assert!(ok, "{out}");
    out.lines()
        .filter(|l| !l.starts_with("created: "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_tenant_is_created_with_its_settings_and_changed_later() {
    let dir = tempfile::tempdir().unwrap();
    // A malformed origin stops the creation before anything is written.
    let (ok, out) = tessera(
        dir.path(),
        &[
            "tenant",
            "create",
            "acme",
            "--registration",
            "closed",
            "--cors-origin",
            "https://app.acme.test/login",
        ],
        "",
    );
    assert!(!ok && out.contains("invalid CORS origin"), "{out}");
    let (ok, out) = tessera(dir.path(), &["tenant", "show", "acme"], "");
    assert!(!ok && out.contains("no tenant acme"), "{out}");

    let (ok, out) = tessera(
        dir.path(),
        &[
            "tenant",
            "create",
            "acme",
            "--registration",
            "closed",
            "--require-mfa",
            "--cors-origin",
            "https://App.Acme.test/",
            "--app-url",
            "https://app.acme.test/home",
            "--rp-id",
            "acme.test",
            "--webauthn-origin",
            "https://login.acme.test",
        ],
        "",
    );
    assert!(ok, "{out}");
    assert_eq!(
        shown_settings(dir.path(), "acme"),
        [
            "slug: acme",
            "name: acme",
            "cors origins: https://app.acme.test",
            "app url: https://app.acme.test/home",
            "webauthn: rp id acme.test, origin https://login.acme.test",
            "registration: closed",
            "require verified email: off",
            "require mfa: on",
            "exist email: on",
        ]
    );

    // What is not given stays as it is.
    let (ok, out) = tessera(
        dir.path(),
        &[
            "tenant",
            "update",
            "acme",
            "--name",
            "Acme Inc",
            "--registration",
            "open",
            "--require-mfa",
            "off",
            "--require-verified-email",
            "on",
            "--no-app-url",
        ],
        "",
    );
    assert!(ok && out.starts_with("updated tenant acme"), "{out}");
    let updated = [
        "slug: acme",
        "name: Acme Inc",
        "cors origins: https://app.acme.test",
        "app url: -",
        "webauthn: rp id acme.test, origin https://login.acme.test",
        "registration: open",
        "require verified email: on",
        "require mfa: off",
        "exist email: on",
    ];
    assert_eq!(shown_settings(dir.path(), "acme"), updated);

    // Refused, changing nothing: no change given, a malformed origin, an unknown tenant.
    for (args, error) in [
        (&["tenant", "update", "acme"][..], "required"),
        (
            &[
                "tenant",
                "update",
                "acme",
                "--registration",
                "closed",
                "--cors-origin",
                "*",
            ][..],
            "invalid CORS origin",
        ),
        (
            &[
                "tenant",
                "update",
                "acme",
                "--no-cors-origins",
                "--cors-origin",
                "https://a.test",
            ][..],
            "cannot be used with",
        ),
        (
            &["tenant", "update", "nope", "--registration", "closed"][..],
            "no tenant nope",
        ),
        (
            &["tenant", "update", "acme", "--name", " "][..],
            "cannot be blank",
        ),
        (
            &[
                "tenant",
                "update",
                "acme",
                "--app-url",
                "javascript:alert(1)",
            ][..],
            "invalid app URL",
        ),
        (
            &[
                "tenant",
                "update",
                "acme",
                "--rp-id",
                "acme.test",
                "--webauthn-origin",
                "https://acme.example",
            ][..],
            "the origin's host must be the RP ID or a subdomain of it",
        ),
        (
            &["tenant", "update", "acme", "--rp-id", "acme.test"][..],
            "--webauthn-origin",
        ),
    ] {
        let (ok, out) = tessera(dir.path(), args, "");
        assert!(!ok && out.contains(error), "{args:?}: {out}");
    }
    assert_eq!(shown_settings(dir.path(), "acme"), updated);

    // A list of origins replaces the old one; `--no-cors-origins` empties it.
    let (ok, out) = tessera(
        dir.path(),
        &[
            "tenant",
            "update",
            "acme",
            "--cors-origin",
            "https://a.test",
            "--cors-origin",
            "http://localhost:3000",
        ],
        "",
    );
    assert!(
        ok && out.contains("cors origins: https://a.test http://localhost:3000"),
        "{out}"
    );
    let (ok, out) = tessera(
        dir.path(),
        &["tenant", "update", "acme", "--no-cors-origins"],
        "",
    );
    assert!(ok && out.contains("cors origins: \n"), "{out}");
}

/// `tessera keys edge-identity` prints a Worker secret and the public key that checks what
/// it signs; two runs make two keys.
#[test]
fn an_edge_identity_key_is_made_with_its_public_half() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = tessera(dir.path(), &["keys", "edge-identity"], "");
    assert!(ok, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("IDENTITY_KEY"), "{out}");
    let key = tessera_core::identity::IdentityKey::parse(lines[1]).expect("a seed");
    let public = key.public();
    assert_eq!(lines[3], public.to_text(), "{out}");
    assert!(lines[2].contains(&public.key_id()), "{out}");
    let (_, again) = tessera(dir.path(), &["keys", "edge-identity"], "");
    assert_ne!(again.lines().nth(1), Some(lines[1]));
}

/// Issue 25, item 4: a role is `user` or `admin`, nothing else.
#[test]
fn an_unknown_role_is_refused_with_the_roles_there_are() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = tessera(
        dir.path(),
        &[
            "user",
            "create",
            "--email",
            "ann@example.com",
            "--role",
            "wizard",
        ],
        "correct horse battery staple\n",
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("no role 'wizard'") && out.contains("user, admin"),
        "{out}"
    );
    let (ok, out) = tessera(
        dir.path(),
        &[
            "user",
            "create",
            "--email",
            "ann@example.com",
            "--role",
            "admin",
        ],
        "correct horse battery staple\n",
    );
    assert!(ok, "{out}");
}

#[test]
fn sql_looking_tenant_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "x; drop schema public cascade",
        "acme\"; --",
        "ten ant",
        "a'b",
    ] {
        let (ok, out) = tessera(dir.path(), &["tenant", "create", name], "");
        assert!(!ok && out.contains("invalid tenant"), "{name}: {out}");
    }
    let (_, out) = tessera(dir.path(), &["tenant", "list"], "");
    assert!(!out.contains("drop"), "{out}");
}

#[test]
fn a_wrong_setting_stops_start_up_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("serve")
        .env("TESSERA_DATA_DIR", dir.path())
        .env("TESSERA_BIND", "not-an-address")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("TESSERA_BIND"));
}

/// Issue 25, item 4: a second server on one machine is told which address is taken and which
/// variable sets it.
#[test]
fn a_taken_address_is_named_with_its_variable() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    for variable in ["TESSERA_BIND", "TESSERA_OPS_BIND"] {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
        command
            .arg("serve")
            .env("TESSERA_DATA_DIR", dir.path())
            .env("TESSERA_BIND", "127.0.0.1:0")
            .env("TESSERA_OPS_BIND", "127.0.0.1:0")
            .env(variable, &address)
            .env("TESSERA_LOG", "warn");
        let output = command.output().unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("cannot listen on {address} ({variable})")),
            "{stderr}"
        );
    }
}

/// `tessera serve` with `vars`, read up to its "listening on" line: the child, its standard
/// error from there on, what it printed so far, and its address.
fn serving(
    dir: &std::path::Path,
    vars: &[(&str, &str)],
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStderr>,
    String,
    String,
) {
    use std::io::{BufRead as _, BufReader};
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    command
        .arg("serve")
        .env("TESSERA_DATA_DIR", dir)
        .env("TESSERA_BIND", "127.0.0.1:0")
        .env("TESSERA_OPS_BIND", "127.0.0.1:0")
        .env("TESSERA_LOG", "warn")
        .stderr(Stdio::piped());
    for (name, value) in vars {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while !line.contains("listening on") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "serve exited before listening: {seen}"
        );
        seen.push_str(&line);
    }
    let address = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .trim_start_matches("http://")
        .to_owned();
    (child, stderr, seen, address)
}

#[test]
fn serve_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, _stderr, _, address) = serving(dir.path(), &[]);
    assert!(std::net::TcpStream::connect(&address).is_ok());
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
}

/// Issue 25, item 4: `TESSERA_DEV=1` says so at start-up and logs one readable line per
/// request (method, path, status, code, time), a refusal included.
#[test]
fn development_mode_logs_a_line_per_request() {
    use std::io::{BufRead as _, Write as _};
    let dir = tempfile::tempdir().unwrap();
    let (mut child, mut stderr, mut seen, address) = serving(
        dir.path(),
        &[
            ("TESSERA_OPS_BIND", "off"),
            ("TESSERA_DEV", "1"),
            ("TESSERA_LOG", "info"),
            ("TESSERA_LOG_FORMAT", "pretty"),
        ],
    );
    let mut line = String::new();
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    let body = r#"{"tenant":"default","email":"nobody@example.com","password":"not the password"}"#;
    write!(
        stream,
        "POST /api/auth/login HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "{seen}");
        seen.push_str(&line);
        if line.contains("POST /api/auth/login 401 invalid_credentials") {
            break;
        }
    }
    assert!(seen.contains("Development mode (TESSERA_DEV=1)"), "{seen}");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait().unwrap();
}

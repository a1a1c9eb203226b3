//! Parsing and checking of web config files, without sockets (the served behaviour is pinned by
//! `server/tests/web_config.rs`).

use std::path::{Path, PathBuf};

use super::*;

const CFG: &str = "/etc/ember/web.yml";

fn parse(yaml: &str) -> Result<WebConfig, WebConfigError> {
    WebConfig::parse(Path::new(CFG), yaml)
}

fn err(yaml: &str) -> String {
    match parse(yaml) {
        Ok(c) => panic!("accepted: {c:?}"),
        Err(e) => e.to_string(),
    }
}

fn hash() -> String {
    bcrypt::hash("pw", 4).unwrap()
}

#[test]
fn empty_file_is_plain_http_without_auth() {
    for text in [
        "",
        "# nothing\n",
        "{}",
        "tls_server_config:\nbasic_auth_users:\n",
    ] {
        let c = parse(text).unwrap();
        assert!(
            c.tls.is_none() && c.users.is_empty() && c.headers.is_empty(),
            "{text:?}"
        );
        assert!(c.http2);
    }
}

#[test]
fn unknown_field_is_an_error_naming_it_and_the_file() {
    for (yaml, field) in [
        ("tls_server_confg: {}\n", "tls_server_confg"),
        ("tls_server_config:\n  cert_fil: a\n", "cert_fil"),
        ("http_server_config:\n  http3: true\n", "http3"),
        ("rate_limit:\n  bursts: 1\n", "bursts"),
    ] {
        let e = err(yaml);
        assert!(e.contains(field) && e.contains(CFG), "{e}");
    }
}

#[test]
fn relative_paths_are_taken_from_the_config_directory() {
    let c = parse("tls_server_config:\n  cert_file: c.pem\n  key_file: /abs/k.pem\n").unwrap();
    let t = c.tls.unwrap();
    assert_eq!(t.cert, PemSource::File(PathBuf::from("/etc/ember/c.pem")));
    assert_eq!(t.key, PemSource::File(PathBuf::from("/abs/k.pem")));
    assert_eq!(t.min_version, TlsVersion::Tls12);
    assert_eq!(t.max_version, TlsVersion::Tls13);
    assert!(t.prefer_server_cipher_suites);
    assert_eq!(t.client_auth, ClientAuth::NoClientCert);
}

#[test]
fn tls_section_without_cert_or_key_fields_leaves_tls_off() {
    let c = parse("tls_server_config:\n  min_version: TLS13\n").unwrap();
    assert!(c.tls.is_none());
}

#[test]
fn tls_needs_both_cert_and_key() {
    assert!(err("tls_server_config:\n  cert_file: c.pem\n").contains("key_file"));
    assert!(err("tls_server_config:\n  key_file: k.pem\n").contains("cert_file"));
    assert!(
        err("tls_server_config:\n  client_auth_type: RequestClientCert\n").contains("cert_file")
    );
}

#[test]
fn client_auth_types_parse_by_go_name() {
    for (name, want) in CLIENT_AUTH_TYPES {
        let c = parse(&format!(
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: {name}\n  client_ca_file: ca\n"
        ));
        match want {
            ClientAuth::NoClientCert => assert!(c.is_err()),
            _ => assert_eq!(c.unwrap().tls.unwrap().client_auth, *want),
        }
    }
    let e = err("tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: Maybe\n");
    assert!(e.contains("client_auth_type") && e.contains("Maybe"), "{e}");
}

#[test]
fn client_ca_needs_a_client_auth_type_and_verification_needs_a_ca() {
    let e = err("tls_server_config:\n  cert_file: c\n  key_file: k\n  client_ca_file: ca\n");
    assert!(e.contains("NoClientCert"), "{e}");
    let e = err(
        "tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: RequireAndVerifyClientCert\n",
    );
    assert!(e.contains("client_ca_file"), "{e}");
    // Unverified policies need no CA.
    parse("tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: RequireAnyClientCert\n")
        .unwrap();
}

#[test]
fn versions_suites_and_curves_must_be_known_names() {
    let base = "tls_server_config:\n  cert_file: c\n  key_file: k\n";
    assert!(err(&format!("{base}  min_version: TLS111\n")).contains("TLS111"));
    assert!(err(&format!("{base}  cipher_suites: [TLS_INVENTED]\n")).contains("TLS_INVENTED"));
    assert!(err(&format!("{base}  curve_preferences: [CurveP999]\n")).contains("CurveP999"));
    let c = parse(&format!(
        "{base}  min_version: TLS10\n  max_version: TLS12\n  curve_preferences: [CurveP521, X25519]\n  \
         cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n"
    ))
    .unwrap();
    let t = c.tls.unwrap();
    assert_eq!(t.min_version, TlsVersion::Tls10);
    assert_eq!(t.curve_preferences, ["CurveP521", "X25519"]);
}

#[test]
fn http2_needs_an_http2_cipher_when_suites_are_listed() {
    let base = "tls_server_config:\n  cert_file: c\n  key_file: k\n  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]\n";
    assert!(err(base).contains("HTTP/2"));
    parse(&format!("{base}http_server_config:\n  http2: false\n")).unwrap();
    parse(&format!("{base}  min_version: TLS13\n")).unwrap();
}

#[test]
fn headers_are_limited_to_prometheus_set_and_values() {
    let c = parse(
        "http_server_config:\n  headers:\n    X-Frame-Options: sameorigin\n    Strict-Transport-Security: max-age=31536000\n    X-XSS-Protection: ''\n",
    )
    .unwrap();
    let names: Vec<&str> = c.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["strict-transport-security", "x-frame-options"]);
    let e = err("http_server_config:\n  headers:\n    Content-Type: foo\n");
    assert!(
        e.contains("Content-Type") && e.contains("cannot be set"),
        "{e}"
    );
    let e = err("http_server_config:\n  headers:\n    X-Frame-Options: allow\n");
    assert!(e.contains("allow"), "{e}");
    let e = err("http_server_config:\n  headers:\n    X-Content-Type-Options: ''\n");
    assert!(e.contains("X-Content-Type-Options"), "{e}");
}

#[test]
fn user_hashes_must_be_bcrypt() {
    let c = parse(&format!("basic_auth_users:\n  alice: '{}'\n", hash())).unwrap();
    assert_eq!(c.users.len(), 1);
    let e = err("basic_auth_users:\n  bob: plaintext\n");
    assert!(
        e.contains("basic_auth_users.bob") && e.contains("bcrypt"),
        "{e}"
    );
}

#[test]
fn rate_limit_reads_go_durations() {
    let c = parse("rate_limit:\n  burst: 5\n  interval: 1m30s\n").unwrap();
    assert_eq!(
        c.rate_limit,
        Some(RateLimit {
            burst: 5,
            interval: Duration::from_secs(90)
        })
    );
    assert_eq!(parse("rate_limit:\n  burst: 5\n").unwrap().rate_limit, None);
    assert!(err("rate_limit:\n  interval: 5x\n").contains("rate_limit.interval"));
    assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
    assert_eq!(parse_go_duration("250ms"), Ok(Duration::from_millis(250)));
    assert!(parse_go_duration("-1s").is_err());
    assert!(parse_go_duration("s").is_err());
}

#[test]
fn broken_yaml_is_an_error_not_a_panic() {
    for text in [
        "tls_server_config: [",
        "basic_auth_users: 3\n",
        ":\n-",
        "\u{0}",
    ] {
        let e = err(text);
        assert!(e.contains(CFG), "{e}");
    }
}

fn write_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let k = rcgen::KeyPair::generate().unwrap();
    let c = rcgen::CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .self_signed(&k)
        .unwrap();
    let (cp, kp) = (dir.join("c.pem"), dir.join("k.pem"));
    std::fs::write(&cp, c.pem()).unwrap();
    std::fs::write(&kp, k.serialize_pem()).unwrap();
    (cp, kp)
}

#[test]
fn loading_reads_certificates_and_reports_missing_files_by_name() {
    let dir = tempfile::tempdir().unwrap();
    write_cert(dir.path());
    let cfg = dir.path().join("web.yml");
    std::fs::write(
        &cfg,
        "tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n",
    )
    .unwrap();
    let l = Loaded::load(&cfg).unwrap();
    let tls = l.tls.unwrap();
    assert_eq!(tls.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
    std::fs::write(
        &cfg,
        "tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\nhttp_server_config:\n  http2: false\n",
    )
    .unwrap();
    let tls = Loaded::load(&cfg).unwrap().tls.unwrap();
    assert_eq!(tls.alpn_protocols, [b"http/1.1".to_vec()]);
    std::fs::write(
        &cfg,
        "tls_server_config:\n  cert_file: nope.pem\n  key_file: k.pem\n",
    )
    .unwrap();
    let e = Loaded::load(&cfg).unwrap_err().to_string();
    assert!(e.contains("nope.pem") && e.contains("web.yml"), "{e}");
    // A key that is not PEM.
    std::fs::write(
        &cfg,
        "tls_server_config:\n  cert_file: c.pem\n  key_file: web.yml\n",
    )
    .unwrap();
    let e = Loaded::load(&cfg).unwrap_err().to_string();
    assert!(e.contains("key_file"), "{e}");
}

#[test]
fn suites_rustls_lacks_leave_tls13_only_or_fail() {
    let dir = tempfile::tempdir().unwrap();
    write_cert(dir.path());
    let cfg = dir.path().join("web.yml");
    let base = "tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n  cipher_suites: [TLS_RSA_WITH_AES_128_GCM_SHA256]\nhttp_server_config:\n  http2: false\n";
    std::fs::write(&cfg, base).unwrap();
    Loaded::load(&cfg).unwrap();
    std::fs::write(
        &cfg,
        base.replace("k.pem\n", "k.pem\n  max_version: TLS12\n"),
    )
    .unwrap();
    let e = Loaded::load(&cfg).unwrap_err().to_string();
    assert!(e.contains("cipher_suites"), "{e}");
    std::fs::write(
        &cfg,
        base.replace("k.pem\n", "k.pem\n  max_version: TLS11\n"),
    )
    .unwrap();
    assert!(
        Loaded::load(&cfg)
            .unwrap_err()
            .to_string()
            .contains("max_version")
    );
    std::fs::write(
        &cfg,
        base.replace("k.pem\n", "k.pem\n  curve_preferences: [CurveP521]\n"),
    )
    .unwrap();
    assert!(
        Loaded::load(&cfg)
            .unwrap_err()
            .to_string()
            .contains("curve_preferences")
    );
}

#[test]
fn file_changes_are_picked_up_and_breakage_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("web.yml");
    std::fs::write(&cfg, "").unwrap();
    let w = WebConfigFile::open(&cfg).unwrap();
    assert!(w.current().unwrap().config.users.is_empty());
    std::fs::write(&cfg, format!("basic_auth_users:\n  alice: '{}'\n", hash())).unwrap();
    assert_eq!(w.current().unwrap().config.users.len(), 1);
    std::fs::write(&cfg, "basic_auth_users: [\n").unwrap();
    assert!(w.current().is_err());
    std::fs::write(&cfg, "").unwrap();
    assert!(w.current().unwrap().config.users.is_empty());
}

#[test]
fn subject_alt_names_are_read_as_strings() {
    let k = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(vec!["client.example".into()]).unwrap();
    p.subject_alt_names
        .push(rcgen::SanType::IpAddress("10.0.0.1".parse().unwrap()));
    p.subject_alt_names
        .push(rcgen::SanType::Rfc822Name("a@b.c".try_into().unwrap()));
    p.subject_alt_names
        .push(rcgen::SanType::URI("spiffe://x/y".try_into().unwrap()));
    let c = p.self_signed(&k).unwrap();
    assert_eq!(
        tls::subject_alt_names(c.der()).unwrap(),
        ["client.example", "10.0.0.1", "a@b.c", "spiffe://x/y"]
    );
    assert!(tls::subject_alt_names(b"junk").is_err());
}

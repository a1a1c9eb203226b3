//! `--web.config.file` end to end: the real `ember` binary serving TLS and basic auth from a web config
//! written in the test (certificates from an in-test CA made with rcgen, bcrypt hashes made in-test),
//! checked with a Rust HTTPS client and with Prometheus' own `promtool` as peers.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Proc, peer_available, spawn_ember};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

const PASSWORD: &str = "s3cret pass";

/// A CA that signs the server's and clients' certificates.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// PEM certificate and key.
struct Leaf {
    cert: String,
    key: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        Ca {
            issuer: CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    fn leaf(&self, sans: &[&str], usage: ExtendedKeyUsagePurpose) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut p =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        p.distinguished_name.push(DnType::CommonName, sans[0]);
        p.extended_key_usages = vec![usage];
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    fn server(&self) -> Leaf {
        self.leaf(
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }
}

/// An HTTPS client trusting `ca`, optionally presenting a client certificate.
fn tls_agent(ca: &Ca, client: Option<&Leaf>) -> ureq::Agent {
    use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};
    let roots = RootCerts::Specific(Arc::new(vec![
        Certificate::from_pem(ca.pem().as_bytes()).unwrap(),
    ]));
    let client = client.map(|l| {
        ClientCert::new_with_certs(
            &[Certificate::from_pem(l.cert.as_bytes()).unwrap()],
            PrivateKey::from_pem(l.key.as_bytes()).unwrap(),
        )
    });
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .tls_config(
            TlsConfig::builder()
                .root_certs(roots)
                .client_cert(client)
                .build(),
        )
        .build()
        .into()
}

/// A response's status and selected headers, or the transport error as text.
struct Answer {
    status: u16,
    www_authenticate: Option<String>,
    frame_options: Option<String>,
    body: String,
}

fn https_get(agent: &ureq::Agent, url: &str, auth: Option<(&str, &str)>) -> Result<Answer, String> {
    use base64::Engine as _;
    let mut req = agent.get(url);
    if let Some((u, p)) = auth {
        let enc = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        req = req.header("Authorization", format!("Basic {enc}"));
    }
    let mut r = req.call().map_err(|e| e.to_string())?;
    let h = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    Ok(Answer {
        status: r.status().as_u16(),
        www_authenticate: h("www-authenticate"),
        frame_options: h("x-frame-options"),
        body: r.body_mut().read_to_string().unwrap_or_default(),
    })
}

/// Writes the files of a TLS + basic-auth setup into `dir`; returns the web config's path.
fn write_setup(dir: &Path, ca: &Ca, server: &Leaf, extra_yaml: &str) -> PathBuf {
    std::fs::write(dir.join("server.crt"), &server.cert).unwrap();
    std::fs::write(dir.join("server.key"), &server.key).unwrap();
    std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
    let hash = bcrypt::hash(PASSWORD, 8).unwrap();
    let cfg = dir.join("web.yml");
    // Relative file names: read from the config file's directory, not the working directory.
    std::fs::write(
        &cfg,
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n{extra_yaml}\
             http_server_config:\n  headers:\n    X-Frame-Options: deny\n\
             basic_auth_users:\n  alice: '{hash}'\n"
        ),
    )
    .unwrap();
    cfg
}

/// Starts ember with `cfg` and waits until `/-/ready` answers 200 over HTTPS with credentials.
fn start_with(dir: &Path, cfg: &Path, agent: &ureq::Agent) -> (Proc, u16) {
    let arg = format!("--web.config.file={}", cfg.display());
    let (proc, port) = spawn_ember(&dir.join("data"), &[&arg]);
    let url = format!("https://127.0.0.1:{port}/-/ready");
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if https_get(agent, &url, Some(("alice", PASSWORD))).is_ok_and(|a| a.status == 200) {
            return (proc, port);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("ember did not become ready over HTTPS within 60 s");
}

#[test]
fn tls_and_basic_auth_guard_every_request() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Ember test CA");
    let cfg = write_setup(dir.path(), &ca, &ca.server(), "");
    let agent = tls_agent(&ca, None);
    let (proc, port) = start_with(dir.path(), &cfg, &agent);
    let url = format!("https://127.0.0.1:{port}/api/v1/query?query=1");

    let ok = https_get(&agent, &url, Some(("alice", PASSWORD))).unwrap();
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.body.contains(r#""status":"success""#), "{}", ok.body);
    assert_eq!(ok.frame_options.as_deref(), Some("deny"));
    // Cached after the first check: the same credentials again still pass.
    assert_eq!(
        https_get(&agent, &url, Some(("alice", PASSWORD)))
            .unwrap()
            .status,
        200
    );

    for auth in [
        Some(("alice", "wrong")),
        Some(("mallory", PASSWORD)),
        Some(("alice", "")),
        None,
    ] {
        let a = https_get(&agent, &url, auth).unwrap();
        assert_eq!(a.status, 401, "{auth:?}");
        assert_eq!(a.www_authenticate.as_deref(), Some("Basic"), "{auth:?}");
        assert_eq!(a.frame_options.as_deref(), Some("deny"), "{auth:?}");
        assert!(!a.body.contains("success"));
    }
    // Health endpoints sit behind authentication too, as in Prometheus.
    let h = format!("https://127.0.0.1:{port}/-/healthy");
    assert_eq!(https_get(&agent, &h, None).unwrap().status, 401);

    // Plain HTTP on the TLS port is refused: no route answers it.
    let plain = common::get(port, "/api/v1/query?query=1");
    assert!(plain.as_ref().is_none_or(|(c, _)| *c == 400), "{plain:?}");
    // A client that does not trust the server's CA cannot connect.
    let stranger = tls_agent(&Ca::new("Other CA"), None);
    assert!(https_get(&stranger, &url, Some(("alice", PASSWORD))).is_err());

    common::stop(proc, "ember");
}

#[test]
fn unknown_field_stops_startup_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("web.yml");
    std::fs::write(
        &cfg,
        "tls_server_config:\n  cert_file: a\n  certfile_typo: b\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ember"))
        .arg("--web.listen-address=127.0.0.1:0")
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.config.file={}", cfg.display()))
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("certfile_typo"), "{err}");
    assert!(err.contains(&cfg.display().to_string()), "{err}");

    // A file that is missing altogether fails the same way.
    let out = Command::new(env!("CARGO_BIN_EXE_ember"))
        .arg("--web.listen-address=127.0.0.1:0")
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg("--web.config.file=/nonexistent/web.yml")
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/web.yml"));
}

#[test]
fn client_certificates_are_required_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Ember test CA");
    let client = ca.leaf(&["client-one"], ExtendedKeyUsagePurpose::ClientAuth);
    let cfg = write_setup(
        dir.path(),
        &ca,
        &ca.server(),
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  \
         client_allowed_sans: [client-one, client-three]\n",
    );
    let agent = tls_agent(&ca, Some(&client));
    let (proc, port) = start_with(dir.path(), &cfg, &agent);
    let url = format!("https://127.0.0.1:{port}/api/v1/query?query=1");
    assert_eq!(
        https_get(&agent, &url, Some(("alice", PASSWORD)))
            .unwrap()
            .status,
        200
    );

    // No certificate, one from another CA, and one from the right CA with a name not allowed.
    let other = Ca::new("Other CA").leaf(&["client-one"], ExtendedKeyUsagePurpose::ClientAuth);
    let unlisted = ca.leaf(&["client-two"], ExtendedKeyUsagePurpose::ClientAuth);
    for (what, client) in [
        ("no certificate", None),
        ("foreign CA", Some(&other)),
        ("name not in client_allowed_sans", Some(&unlisted)),
    ] {
        let r = https_get(&tls_agent(&ca, client), &url, Some(("alice", PASSWORD)));
        assert!(r.is_err(), "{what}: got {:?}", r.map(|a| a.status));
    }
    common::stop(proc, "ember");
}

#[test]
fn edits_to_the_config_and_certificates_apply_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Ember test CA");
    let cfg = write_setup(dir.path(), &ca, &ca.server(), "");
    let agent = tls_agent(&ca, None);
    let (proc, port) = start_with(dir.path(), &cfg, &agent);
    let url = format!("https://127.0.0.1:{port}/api/v1/query?query=1");

    // A new password for alice, written as a new file renamed into place.
    let text = std::fs::read_to_string(&cfg).unwrap();
    let old_hash = text
        .lines()
        .last()
        .unwrap()
        .split('\'')
        .nth(1)
        .unwrap()
        .to_string();
    let new_hash = bcrypt::hash("rotated", 8).unwrap();
    std::fs::write(
        dir.path().join("web.yml.new"),
        text.replace(&old_hash, &new_hash),
    )
    .unwrap();
    std::fs::rename(dir.path().join("web.yml.new"), &cfg).unwrap();
    assert_eq!(
        https_get(&agent, &url, Some(("alice", "rotated")))
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        https_get(&agent, &url, Some(("alice", PASSWORD)))
            .unwrap()
            .status,
        401
    );

    // A certificate from a new CA: new connections get it, so only clients trusting that CA connect.
    let ca2 = Ca::new("Rotated CA");
    let server2 = ca2.server();
    std::fs::write(dir.path().join("server.key.new"), &server2.key).unwrap();
    std::fs::write(dir.path().join("server.crt.new"), &server2.cert).unwrap();
    std::fs::rename(
        dir.path().join("server.key.new"),
        dir.path().join("server.key"),
    )
    .unwrap();
    std::fs::rename(
        dir.path().join("server.crt.new"),
        dir.path().join("server.crt"),
    )
    .unwrap();
    let agent2 = tls_agent(&ca2, None);
    assert_eq!(
        https_get(&agent2, &url, Some(("alice", "rotated")))
            .unwrap()
            .status,
        200
    );
    assert!(https_get(&tls_agent(&ca, None), &url, Some(("alice", "rotated"))).is_err());

    // A broken edit refuses service rather than keeping the old users; fixing it restores them.
    let good = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("{good}bogus_field: 1\n")).unwrap();
    // On a kept-alive connection the request answers 500; a new connection's handshake is refused,
    // since the TLS configuration comes from the same file.
    let broken = https_get(&agent2, &url, Some(("alice", "rotated")));
    assert!(broken.as_ref().is_err() || broken.as_ref().is_ok_and(|a| a.status == 500));
    assert!(https_get(&tls_agent(&ca2, None), &url, Some(("alice", "rotated"))).is_err());
    std::fs::write(&cfg, &good).unwrap();
    assert_eq!(
        https_get(&agent2, &url, Some(("alice", "rotated")))
            .unwrap()
            .status,
        200
    );
    common::stop(proc, "ember");
}

/// Whether this promtool has `query instant --http.config.file` (Prometheus 2.43 and later).
fn promtool_has_http_config() -> bool {
    Command::new("promtool")
        .args(["query", "instant", "--help"])
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stderr).contains("http.config.file")
                || String::from_utf8_lossy(&o.stdout).contains("http.config.file")
        })
}

/// `promtool query instant` against ember over TLS with basic auth. Newer promtool takes an HTTP
/// client config file; older (Debian's 2.42) takes the credentials in the URL and the CA through
/// Go's SSL_CERT_FILE.
fn promtool_query(dir: &Path, port: u16, user: &str, pass: &str) -> std::process::Output {
    let ca = dir.join("ca.crt");
    let mut cmd = Command::new("promtool");
    if promtool_has_http_config() {
        let client = dir.join("promtool-http.yml");
        std::fs::write(
            &client,
            format!(
                "tls_config:\n  ca_file: {}\nbasic_auth:\n  username: {user}\n  password: '{pass}'\n",
                ca.display()
            ),
        )
        .unwrap();
        cmd.args(["query", "instant"])
            .arg(format!("--http.config.file={}", client.display()))
            .arg(format!("https://127.0.0.1:{port}"));
    } else {
        // Percent-encode everything but letters and digits: URL userinfo decoding keeps '+' literal.
        let enc: String = pass
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        cmd.env("SSL_CERT_FILE", &ca)
            .args(["query", "instant"])
            .arg(format!("https://{user}:{enc}@127.0.0.1:{port}"));
    }
    cmd.arg("vector(42)").output().unwrap()
}

#[test]
fn promtool_queries_over_tls_with_basic_auth() {
    if !peer_available("promtool") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Ember test CA");
    let cfg = write_setup(dir.path(), &ca, &ca.server(), "");
    let (proc, port) = start_with(dir.path(), &cfg, &tls_agent(&ca, None));

    let out = promtool_query(dir.path(), port, "alice", PASSWORD);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "promtool failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("=> 42"), "{stdout}");

    let out = promtool_query(dir.path(), port, "alice", "wrong");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
    common::stop(proc, "ember");
}

/// Runs `promtool check web-config` and Ember's own check (parse and load) on the same files: they
/// must agree on what is valid, over the fields Debian's promtool 2.42 knows.
#[test]
fn promtool_and_ember_agree_on_valid_web_configs() {
    if !peer_available("promtool") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Ember test CA");
    write_setup(dir.path(), &ca, &ca.server(), "");
    let tls = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
    let hash = bcrypt::hash("x", 4).unwrap();
    let mut cases: Vec<(String, String)> = vec![
        ("empty".into(), String::new()),
        ("tls".into(), tls.into()),
        ("users".into(), format!("basic_auth_users:\n  a: '{hash}'\n")),
        ("unknown top-level field".into(), "tls_server_confg: {}\n".into()),
        ("unknown tls field".into(), format!("{tls}  key_fil: x\n")),
        ("missing key".into(), "tls_server_config:\n  cert_file: server.crt\n".into()),
        ("missing cert file".into(), "tls_server_config:\n  cert_file: nope.crt\n  key_file: server.key\n".into()),
        ("cert as key".into(), "tls_server_config:\n  cert_file: server.crt\n  key_file: server.crt\n".into()),
        ("bad client auth".into(), format!("{tls}  client_auth_type: Sometimes\n")),
        ("ca without policy".into(), format!("{tls}  client_ca_file: ca.crt\n")),
        ("verify with ca".into(), format!("{tls}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n")),
        ("request cert".into(), format!("{tls}  client_auth_type: RequestClientCert\n")),
        ("plain-text password".into(), "basic_auth_users:\n  a: hunter2\n".into()),
        ("bad header".into(), "http_server_config:\n  headers:\n    Content-Type: x\n".into()),
        ("bad header value".into(), "http_server_config:\n  headers:\n    X-Frame-Options: allow\n".into()),
        ("good headers".into(), "http_server_config:\n  headers:\n    X-Frame-Options: deny\n    Content-Security-Policy: default-src 'self'\n".into()),
        ("unknown version".into(), format!("{tls}  min_version: TLS14\n")),
        ("tls13 only".into(), format!("{tls}  min_version: TLS13\n")),
        ("unknown curve".into(), format!("{tls}  curve_preferences: [CurveP999]\n")),
        ("curves".into(), format!("{tls}  curve_preferences: [X25519, CurveP256, CurveP521]\n")),
        ("unknown cipher".into(), format!("{tls}  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n")),
        ("http2 off".into(), format!("{tls}http_server_config:\n  http2: false\n")),
    ];
    // Every cipher suite name Ember accepts, each alone (with HTTP/2 off, which Go checks only when
    // serving) and with TLS 1.3 allowed so suites rustls lacks still leave a usable server.
    for (name, _) in ember_server::web_config::GO_CIPHER_SUITES {
        cases.push((
            format!("cipher {name}"),
            format!("{tls}  cipher_suites: [{name}]\nhttp_server_config:\n  http2: false\n"),
        ));
    }
    let mut disagreements = Vec::new();
    for (i, (what, yaml)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("case{i}.yml"));
        std::fs::write(&path, yaml).unwrap();
        let out = Command::new("promtool")
            .args(["check", "web-config"])
            .arg(&path)
            .output()
            .unwrap();
        let theirs = out.status.success();
        let ours = ember_server::web_config::WebConfigFile::open(&path);
        if theirs != ours.is_ok() {
            disagreements.push(format!(
                "{what}: promtool {} ({}), ember {:?}",
                if theirs { "accepts" } else { "rejects" },
                String::from_utf8_lossy(&out.stdout).trim(),
                ours.err().map(|e| e.to_string())
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

#[test]
fn basic_auth_without_tls_serves_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("web.yml");
    let hash = bcrypt::hash(PASSWORD, 6).unwrap();
    std::fs::write(
        &cfg,
        format!(
            "basic_auth_users:\n  alice: '{hash}'\nrate_limit:\n  burst: 1000\n  interval: 1ms\n"
        ),
    )
    .unwrap();
    let arg = format!("--web.config.file={}", cfg.display());
    let (proc, port) = spawn_ember(&dir.path().join("data"), &[&arg]);
    let agent = common::agent();
    let url = format!("http://127.0.0.1:{port}/-/healthy");
    let start = Instant::now();
    while https_get(&agent, &url, Some(("alice", PASSWORD))).map_or(true, |a| a.status != 200) {
        assert!(start.elapsed() < Duration::from_secs(60), "not serving");
        std::thread::sleep(Duration::from_millis(100));
    }
    let denied = https_get(&agent, &url, None).unwrap();
    assert_eq!(denied.status, 401);
    assert_eq!(denied.www_authenticate.as_deref(), Some("Basic"));
    common::stop(proc, "ember");
}

/// Real Prometheus scrapes ember's `/metrics` over HTTPS with basic auth (its scrape client is the
/// same Go HTTP client config users point at Ember), and remote-writes to it the same way.
#[test]
fn prometheus_scrapes_and_remote_writes_over_tls_with_basic_auth() {
    if !peer_available("prometheus") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Ember test CA");
    let cfg = write_setup(dir.path(), &ca, &ca.server(), "");
    let arg = format!("--web.config.file={}", cfg.display());
    let (ember, port) = spawn_ember(
        &dir.path().join("data"),
        &[&arg, "--web.enable-remote-write-receiver"],
    );
    let agent = tls_agent(&ca, None);
    let ready = format!("https://127.0.0.1:{port}/-/ready");
    let start = Instant::now();
    while https_get(&agent, &ready, Some(("alice", PASSWORD))).map_or(true, |a| a.status != 200) {
        assert!(start.elapsed() < Duration::from_secs(60), "ember not ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    let ca_file = dir.path().join("ca.crt");
    let client = format!(
        "    tls_config:\n      ca_file: {}\n    basic_auth:\n      username: alice\n      password: '{PASSWORD}'\n",
        ca_file.display()
    );
    let prom_dir = dir.path().join("prom");
    std::fs::create_dir_all(&prom_dir).unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: ember\n    scheme: https\n    \
         static_configs:\n      - targets: ['127.0.0.1:{port}']\n{client}\
         remote_write:\n  - url: https://127.0.0.1:{port}/api/v1/write\n{client}"
    );
    let (prom, prom_port) = common::start_prometheus(&prom_dir, &config, &[]);
    // Prometheus sees the scrape succeed, and its remote write lands in ember: `up` for job ember is
    // queryable from ember itself.
    let start = Instant::now();
    loop {
        let (_, body) =
            common::get(prom_port, "/api/v1/query?query=up%7Bjob%3D%22ember%22%7D").unwrap();
        let scraped = body.contains(r#""value":["#) && body.contains(r#","1"]"#);
        let q = format!("https://127.0.0.1:{port}/api/v1/query?query=up%7Bjob%3D%22ember%22%7D");
        let written = https_get(&agent, &q, Some(("alice", PASSWORD)))
            .is_ok_and(|a| a.body.contains(r#","1"]"#));
        if scraped && written {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "within 60 s: scraped={scraped} written={written}; prometheus says {body}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(prom);
    common::stop(ember, "ember");
}

//! Scraping over TLS end to end: one `ember` serves HTTPS with a required client certificate and basic
//! auth (`--web.config.file`), another scrapes it with `tls_config` and `basic_auth` from its
//! `prometheus.yml` (relative file names, read from the configuration's directory). Wrong credentials and
//! an untrusted server certificate leave the target down with the reason in `/api/v1/targets`.

mod common;

use std::time::{Duration, Instant};

use common::{spawn_ember, start_ember, stop};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use serde_json::Value;

fn ca() -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(DnType::CommonName, "scrape test CA");
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

/// PEM certificate and key signed by `ca`.
fn leaf(
    ca: &CertifiedIssuer<'static, KeyPair>,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut p =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, sans[0]);
    p.extended_key_usages = vec![usage];
    let cert = p.signed_by(&key, ca).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn targets(port: u16) -> Vec<Value> {
    let (code, body) = common::get(port, "/api/v1/targets?state=active").unwrap();
    assert_eq!(code, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    v["data"]["activeTargets"].as_array().unwrap().clone()
}

fn target<'a>(ts: &'a [Value], job: &str) -> &'a Value {
    ts.iter().find(|t| t["scrapePool"] == job).unwrap()
}

#[test]
fn https_target_with_client_cert_and_basic_auth_is_scraped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = ca();
    let (server_cert, server_key) = leaf(
        &ca,
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (client_cert, client_key) = leaf(&ca, &["scraper"], ExtendedKeyUsagePurpose::ClientAuth);
    for (name, text) in [
        ("ca.crt", ca.pem()),
        ("server.crt", server_cert),
        ("server.key", server_key),
        ("client.crt", client_cert),
        ("client.key", client_key),
        ("password.txt", "s3cret\n".to_string()),
    ] {
        std::fs::write(d.join(name), text).unwrap();
    }
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let web = d.join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
             client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n\
             basic_auth_users:\n  alice: '{hash}'\n"
        ),
    )
    .unwrap();
    let web_flag = format!("--web.config.file={}", web.display());
    let (secure, secure_port) = spawn_ember(&d.join("secure-data"), &[&web_flag]);

    let tls = "    tls_config: {ca_file: ca.crt, cert_file: client.crt, key_file: client.key}\n";
    let cfg = d.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global: {{scrape_interval: 1s}}\nscrape_configs:\n\
             \x20 - job_name: secure\n    scheme: https\n{tls}    basic_auth: {{username: alice, password_file: password.txt}}\n\
             \x20   static_configs: [{{targets: ['127.0.0.1:{secure_port}']}}]\n\
             \x20 - job_name: wrong_password\n    scheme: https\n{tls}    basic_auth: {{username: alice, password: nope}}\n\
             \x20   static_configs: [{{targets: ['127.0.0.1:{secure_port}']}}]\n\
             \x20 - job_name: untrusted\n    scheme: https\n\
             \x20   static_configs: [{{targets: ['127.0.0.1:{secure_port}']}}]\n"
        ),
    )
    .unwrap();
    let cfg_flag = format!("--config.file={}", cfg.display());
    let (scraper, port) = start_ember(&d.join("scraper-data"), &[&cfg_flag]);

    let start = Instant::now();
    loop {
        let ts = targets(port);
        let settled = ["secure", "wrong_password", "untrusted"]
            .iter()
            .all(|j| target(&ts, j)["health"] != "unknown");
        if settled && target(&ts, "secure")["health"] == "up" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "targets did not settle: {ts:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let ts = targets(port);
    assert_eq!(target(&ts, "secure")["lastError"], "");
    assert_eq!(
        target(&ts, "secure")["scrapeUrl"],
        format!("https://127.0.0.1:{secure_port}/metrics")
    );
    let wrong = target(&ts, "wrong_password");
    assert_eq!(wrong["health"], "down");
    assert!(
        wrong["lastError"].as_str().unwrap().contains("401"),
        "{wrong}"
    );
    let untrusted = target(&ts, "untrusted");
    assert_eq!(untrusted["health"], "down");
    assert!(
        untrusted["lastError"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("certificate"),
        "{untrusted}"
    );
    // The secure server's own metrics arrived under the scraping job.
    let (_, body) = common::get(
        port,
        "/api/v1/query?query=prometheus_tsdb_head_series%7Bjob%3D%22secure%22%7D",
    )
    .unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 1, "{body}");
    stop(scraper, "scraper");
    stop(secure, "secure");
}

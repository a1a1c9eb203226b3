//! The machinery of the envelope comparison: what a request is ([`Case`]), how it is sent ([`ask`]), and
//! what must agree between the two answers ([`Check`], [`compare`]).

use serde_json::Value;

#[derive(Clone, Copy, Debug)]
pub enum Method {
    Get,
    /// Parameters as an `application/x-www-form-urlencoded` body.
    Post,
    /// Parameters in the body and this raw query string in the URL as well.
    PostWithQuery(&'static str),
    /// Another method, parameters in the URL.
    Other(&'static str),
    /// GET with an `Origin` header, as a browser sends cross-origin.
    GetFromOrigin(&'static str),
    /// GET with `Accept-Encoding: gzip`, sent by hand because the client decompresses (and drops
    /// `Content-Encoding`) on its own: only the status and the headers are compared.
    GetAcceptingGzip,
}

/// What must agree between Prometheus 2.42 and Ember for one request.
#[derive(Clone, Copy, Debug)]
pub enum Check {
    /// Status code, content type, `status`, `errorType`, shape, data (result sets) and `error` text;
    /// bodies byte for byte when not JSON.
    Same,
    /// As `Same` except at JSON pointer `at`, which changed after 2.42: there Ember must answer `ember`
    /// (what 3.x answers).
    Changed {
        at: &'static str,
        ember: &'static str,
        why: &'static str,
    },
    /// As `Same` after removing JSON pointers `drop` from both answers: fields 3.x added.
    Without {
        drop: &'static [&'static str],
        why: &'static str,
    },
    /// Status code, `status`, `errorType` and shape after removing JSON pointers `drop`; not the
    /// values (they describe the process).
    ShapeOnly {
        drop: &'static [&'static str],
        why: &'static str,
    },
    /// Status code and `status` only: the data is the server's own (its flags).
    StatusOnly { why: &'static str },
    /// 3.x answers with another status than 2.42: only Ember's status (3.x's) is checked.
    EmberOnly { status: u16, why: &'static str },
    /// No known difference is open at the moment; the variant stays for the next one.
    #[allow(dead_code)]
    /// A known Ember bug, written up in /tmp/envelope-bugs.md: reported, not asserted. `once_fixed` is
    /// the check that applies when it is fixed (the run says when the answers agree).
    KnownBug {
        what: &'static str,
        once_fixed: &'static Check,
    },
}

impl Check {
    /// Why the case compares less than everything, for the report.
    pub fn why(&self) -> Option<&'static str> {
        match *self {
            Check::Same => None,
            Check::Changed { why, .. }
            | Check::Without { why, .. }
            | Check::ShapeOnly { why, .. }
            | Check::StatusOnly { why }
            | Check::EmberOnly { why, .. } => Some(why),
            Check::KnownBug { what, .. } => Some(what),
        }
    }
}

/// An `error` text that changed after 2.42; Ember must give 3.x's.
pub fn error_changed(ember: &'static str, why: &'static str) -> Check {
    Check::Changed {
        at: "/error",
        ember,
        why,
    }
}

pub struct Case {
    pub name: &'static str,
    pub method: Method,
    pub path: &'static str,
    pub params: Vec<(&'static str, String)>,
    pub check: Check,
}

#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The media type, without parameters.
    media: String,
    /// `Allow` (on 405) and `Access-Control-Allow-Origin` (CORS).
    allow: Option<String>,
    cors_origin: Option<String>,
    /// Only read for [`Method::GetAcceptingGzip`].
    content_encoding: Option<String>,
    pub body: String,
}

pub fn ask(port: u16, case: &Case) -> Answer {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(case.params.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    let base = format!("http://127.0.0.1:{port}{}", case.path);
    let agent = crate::common::agent();
    let res = match case.method {
        Method::GetAcceptingGzip => {
            return ask_raw(
                port,
                &format!("{}?{query}", case.path),
                "Accept-Encoding: gzip",
            );
        }
        Method::Get if query.is_empty() => agent.get(&base).call(),
        Method::Get => agent.get(format!("{base}?{query}")).call(),
        Method::Post => agent
            .post(&base)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send(query.as_bytes()),
        Method::PostWithQuery(url_query) => agent
            .post(format!("{base}?{url_query}"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send(query.as_bytes()),
        Method::GetFromOrigin(origin) => agent
            .get(format!("{base}?{query}"))
            .header("Origin", origin)
            .call(),
        Method::Other(method) => {
            let url = if query.is_empty() {
                base
            } else {
                format!("{base}?{query}")
            };
            let req = ureq::http::Request::builder()
                .method(method)
                .uri(url)
                .body(())
                .unwrap();
            agent.run(req)
        }
    };
    let mut r = res.unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (allow, cors_origin) = (header("allow"), header("access-control-allow-origin"));
    let media = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    Answer {
        status: r.status().as_u16(),
        media,
        allow,
        cors_origin,
        content_encoding: None,
        body: r.body_mut().read_to_string().unwrap_or_default(),
    }
}

/// A GET written and read by hand over one connection: status and headers; the body is left unread.
pub fn ask_raw(port: u16, path_and_query: &str, header: &str) -> Answer {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        conn,
        "GET {path_and_query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{header}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut headers = std::collections::HashMap::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let media = headers
        .get("content-type")
        .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
        .unwrap_or_default();
    Answer {
        status,
        media,
        allow: headers.get("allow").cloned(),
        cors_origin: headers.get("access-control-allow-origin").cloned(),
        content_encoding: headers.get("content-encoding").cloned(),
        body: String::new(),
    }
}

/// The JSON shape of `v`: objects keep their keys with the shapes of their values, arrays become the
/// sorted set of their elements' shapes, scalars become their type's name.
pub fn shape(v: &Value) -> Value {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Array(a) => {
            let mut shapes: Vec<Value> = a.iter().map(shape).collect();
            shapes.sort_by_key(|s| s.to_string());
            shapes.dedup();
            Value::Array(shapes)
        }
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
    }
}

/// `v` with instant-vector results in label order: PromQL promises no order for them (only `sort*`
/// does). Query answers are compared byte for byte as well, which does check the order.
pub fn canonical(mut v: Value, query: Option<&str>) -> Value {
    let sorted_by_query = query.is_some_and(|q| q.contains("sort"));
    if v["data"]["resultType"] == "vector"
        && !sorted_by_query
        && let Some(r) = v["data"]["result"].as_array_mut()
    {
        r.sort_by_key(|s| s["metric"].to_string());
    }
    v
}

/// Removes the value at JSON pointer `pointer` from `v`, returning it.
pub fn take(v: &mut Value, pointer: &str) -> Option<Value> {
    let (parent, key) = pointer.rsplit_once('/')?;
    match v.pointer_mut(parent)? {
        Value::Object(o) => o.remove(key),
        Value::Array(a) => {
            let i: usize = key.parse().ok()?;
            (i < a.len()).then(|| a.remove(i))
        }
        _ => None,
    }
}

/// Compares the two answers to `case`; the differences found, empty if none.
pub fn compare(case: &Case, prom: &Answer, ember: &Answer) -> Vec<String> {
    let check = match case.check {
        Check::KnownBug { once_fixed, .. } => *once_fixed,
        c => c,
    };
    let mut diffs = Vec::new();
    let mut differ = |what: &str, p: &dyn std::fmt::Display, e: &dyn std::fmt::Display| {
        diffs.push(format!("{what}: prometheus {p} / ember {e}"));
    };
    if let Check::EmberOnly { status, .. } = check {
        if ember.status != status {
            differ("Ember's HTTP status (want 3.x's)", &status, &ember.status);
        }
        return diffs;
    }
    if prom.status != ember.status {
        differ("HTTP status", &prom.status, &ember.status);
    }
    let status_only = matches!(check, Check::StatusOnly { .. });
    if !status_only && prom.media != ember.media {
        differ("content type", &prom.media, &ember.media);
    }
    let show = |h: &Option<String>| format!("{h:?}");
    if !status_only && prom.cors_origin != ember.cors_origin {
        differ(
            "Access-Control-Allow-Origin",
            &show(&prom.cors_origin),
            &show(&ember.cors_origin),
        );
    }
    // Go's router and axum list the methods in different orders, and axum adds HEAD to every GET
    // route, which is harmless.
    let methods = |h: &Option<String>| {
        let mut m: Vec<String> = h
            .iter()
            .flat_map(|v| v.split(',').map(|m| m.trim().to_string()))
            .filter(|m| m != "HEAD")
            .collect();
        m.sort();
        m
    };
    if !status_only && methods(&prom.allow) != methods(&ember.allow) {
        differ("Allow", &show(&prom.allow), &show(&ember.allow));
    }
    if let Method::GetAcceptingGzip = case.method {
        if prom.content_encoding != ember.content_encoding {
            differ(
                "Content-Encoding",
                &show(&prom.content_encoding),
                &show(&ember.content_encoding),
            );
        }
        return diffs;
    }
    if prom.media != "application/json" || ember.media != "application/json" {
        if matches!(check, Check::Same) && prom.body != ember.body {
            differ(
                "body",
                &format!("{:?}", prom.body),
                &format!("{:?}", ember.body),
            );
        }
        return diffs;
    }
    let parse = |a: &Answer, who: &str| -> Value {
        serde_json::from_str(&a.body).unwrap_or_else(|e| {
            panic!(
                "{}: {who} answered invalid JSON ({e}): {}",
                case.name, a.body
            )
        })
    };
    let query = case
        .params
        .iter()
        .find(|(k, _)| *k == "query")
        .map(|(_, v)| v.as_str());
    let mut p = canonical(parse(prom, "prometheus"), query);
    let mut e = canonical(parse(ember, "ember"), query);
    for key in ["status", "errorType"] {
        if p[key] != e[key] {
            differ(key, &p[key], &e[key]);
        }
    }
    if status_only {
        return diffs;
    }
    match check {
        Check::Without { drop, .. } | Check::ShapeOnly { drop, .. } => {
            for pointer in drop {
                take(&mut p, pointer);
                take(&mut e, pointer);
            }
        }
        Check::Changed {
            at, ember: want, ..
        } => {
            // Both must have something there; Ember the 3.x value.
            let theirs = take(&mut p, at);
            let ours = take(&mut e, at);
            if theirs.is_none() {
                differ(&format!("{at} present"), &"no", &"-");
            }
            if ours.as_ref().and_then(Value::as_str) != Some(want) {
                differ(
                    &format!("Ember's {at} (want 3.x's {want:?})"),
                    &"-",
                    &ours.unwrap_or(Value::Null),
                );
            }
        }
        _ => {}
    }
    if shape(&p) != shape(&e) {
        differ("shape", &shape(&p), &shape(&e));
    }
    if matches!(
        check,
        Check::Same | Check::Without { .. } | Check::Changed { .. }
    ) && p != e
    {
        differ("answer", &p, &e);
    }
    // Ember writes query results by hand to match Prometheus' codec byte for byte (escapes included).
    if matches!(check, Check::Same)
        && case.path.starts_with("/api/v1/query")
        && prom.status == 200
        && prom.body.trim_end() != ember.body.trim_end()
    {
        differ("bytes", &prom.body.trim_end(), &ember.body.trim_end());
    }
    diffs
}

impl Case {
    pub fn new(
        name: &'static str,
        method: Method,
        path: &'static str,
        params: Vec<(&'static str, String)>,
        check: Check,
    ) -> Case {
        Case {
            name,
            method,
            path,
            params,
            check,
        }
    }
}

//! The request side of a web config: the rate limit, HTTP basic auth against bcrypt hashes, and the
//! extra response headers. Runs as a layer in front of every route ([`layer`]). Does not touch TLS.
//!
//! bcrypt is slow on purpose (tens of milliseconds a check) and clients such as Grafana send
//! credentials with every request, so results are cached, keyed by an HMAC of user, stored hash and
//! password under a key made at start-up: the cache never holds a password, and an entry cannot be
//! matched without that key. Checks that miss the cache run one at a time on the blocking pool, as
//! Prometheus serialises them, so a flood of bad passwords costs one core at most.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use super::{RateLimit, WebConfigFile};

/// Entries kept; past it a tenth are dropped. A server has few distinct users.
const CACHE_ENTRIES: usize = 256;

pub(super) struct BasicAuth {
    key: ring::hmac::Key,
    cache: Mutex<HashMap<[u8; 32], bool>>,
    /// One bcrypt check at a time.
    gate: tokio::sync::Semaphore,
}

impl BasicAuth {
    pub(super) fn new() -> BasicAuth {
        let rng = ring::rand::SystemRandom::new();
        let key = ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng)
            // Without an OS random source nothing about TLS works either; a fixed key still keeps
            // plain passwords out of memory.
            .unwrap_or_else(|_| ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"ember-web-config"));
        BasicAuth {
            key,
            cache: Mutex::new(HashMap::new()),
            gate: tokio::sync::Semaphore::new(1),
        }
    }

    fn cache_key(&self, user: &[u8], hash: &str, pass: &[u8]) -> [u8; 32] {
        let mut ctx = ring::hmac::Context::with_key(&self.key);
        // Length prefixes keep ("ab","c") and ("a","bc") apart.
        for part in [user, hash.as_bytes(), pass] {
            ctx.update(&(part.len() as u64).to_le_bytes());
            ctx.update(part);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    fn cached(&self, key: &[u8; 32]) -> Option<bool> {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied()
    }

    fn remember(&self, key: [u8; 32], ok: bool) {
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if c.len() >= CACHE_ENTRIES {
            // Refusals go first: a spray of wrong passwords must not push out the users who got in.
            c.retain(|_, ok| *ok);
            if c.len() >= CACHE_ENTRIES {
                let drop: Vec<[u8; 32]> = c.keys().take(CACHE_ENTRIES / 10).copied().collect();
                for k in drop {
                    c.remove(&k);
                }
            }
        }
        c.insert(key, ok);
    }

    /// Whether `headers` carry the credentials of one of `users` (user name to bcrypt hash).
    pub(super) async fn allows(
        &self,
        users: &std::collections::BTreeMap<String, String>,
        headers: &HeaderMap,
    ) -> bool {
        let Some((user, pass)) = basic_credentials(headers) else {
            return false;
        };
        let known = std::str::from_utf8(&user)
            .ok()
            .and_then(|u| users.get(u))
            .cloned();
        // Unknown users share one key per password; the empty "hash" can never be a user's.
        let key = self.cache_key(&user, known.as_deref().unwrap_or(""), &pass);
        if let Some(ok) = self.cached(&key) {
            return ok;
        }
        let Ok(_permit) = self.gate.acquire().await else {
            return false;
        };
        // Another request may have checked the same credentials while this one waited.
        if let Some(ok) = self.cached(&key) {
            return ok;
        }
        // An unknown user is checked against a configured user's hash and refused whatever the
        // outcome: the same work at a cost in use, so timing does not tell which names exist.
        let (hash, is_user) = match known {
            Some(h) => (h, true),
            None => match users.values().next() {
                Some(h) => (h.clone(), false),
                None => return false,
            },
        };
        let ok = tokio::task::spawn_blocking(move || {
            bcrypt::verify(&pass, &hash).unwrap_or(false) && is_user
        })
        .await
        .unwrap_or(false);
        self.remember(key, ok);
        ok
    }
}

/// User and password of an `Authorization: Basic` header, as Go's `Request.BasicAuth` reads it
/// (scheme case-insensitive, standard base64, split at the first colon).
fn basic_credentials(headers: &HeaderMap) -> Option<(Vec<u8>, Vec<u8>)> {
    let v = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = v.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest)
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

/// Go's `rate.Limiter` as Prometheus uses it: a bucket of `burst` tokens, one added per `interval`.
pub(super) struct RateLimiter {
    limit: RateLimit,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    pub(super) fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            limit,
            state: Mutex::new((f64::from(limit.burst), Instant::now())),
        }
    }

    fn allow(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(s.1).as_secs_f64() / self.limit.interval.as_secs_f64();
        s.0 = (s.0 + refill).min(f64::from(self.limit.burst));
        s.1 = now;
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Wraps `app` so every request passes the web config's checks first.
pub(super) fn layer(app: Router, web: Arc<WebConfigFile>) -> Router {
    app.layer(axum::middleware::from_fn_with_state(web, check))
}

/// A plain-text answer shaped like Go's `http.Error`.
fn go_error(code: StatusCode) -> Response {
    let mut r = (
        code,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        format!("{}\n", code.canonical_reason().unwrap_or("")),
    )
        .into_response();
    if code == StatusCode::UNAUTHORIZED {
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
    }
    r
}

async fn check(State(web): State<Arc<WebConfigFile>>, req: Request, next: Next) -> Response {
    let loaded = match web.current() {
        Ok(l) => l,
        // Logged when the reload failed.
        Err(_) => return go_error(StatusCode::INTERNAL_SERVER_ERROR),
    };
    let cfg = &loaded.config;
    let mut resp = if web.limiter.as_ref().is_some_and(|l| !l.allow()) {
        go_error(StatusCode::TOO_MANY_REQUESTS)
    } else if cfg.users.is_empty() || web.auth.allows(&cfg.users, req.headers()).await {
        next.run(req).await
    } else {
        go_error(StatusCode::UNAUTHORIZED)
    };
    // Set before the handler runs in Prometheus, so a handler's own value wins; the same here.
    for (name, value) in &cfg.headers {
        if !resp.headers().contains_key(name) {
            resp.headers_mut().insert(name.clone(), value.clone());
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn basic_credentials_read_as_go_reads_them() {
        let mut h = HeaderMap::new();
        let enc = base64::engine::general_purpose::STANDARD.encode("al:ice:pw");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("bAsIc {enc}")).unwrap(),
        );
        assert_eq!(
            basic_credentials(&h),
            Some((b"al".to_vec(), b"ice:pw".to_vec()))
        );
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert_eq!(basic_credentials(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!"));
        assert_eq!(basic_credentials(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic"));
        assert_eq!(basic_credentials(&h), None);
    }

    #[test]
    fn rate_limiter_allows_burst_then_refuses() {
        let l = RateLimiter::new(RateLimit {
            burst: 2,
            interval: Duration::from_secs(3600),
        });
        assert!(l.allow());
        assert!(l.allow());
        assert!(!l.allow());
        let zero = RateLimiter::new(RateLimit {
            burst: 0,
            interval: Duration::from_secs(1),
        });
        assert!(
            !zero.allow(),
            "burst 0 refuses everything, as Go's limiter does"
        );
    }

    #[tokio::test]
    async fn cached_result_is_reused_and_keyed_by_password() {
        let auth = BasicAuth::new();
        let hash = bcrypt::hash("secret", 4).unwrap();
        let users = [("alice".to_string(), hash)].into_iter().collect();
        let h = |pw: &str| {
            let mut h = HeaderMap::new();
            let enc = base64::engine::general_purpose::STANDARD.encode(format!("alice:{pw}"));
            h.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(&format!("Basic {enc}")).unwrap(),
            );
            h
        };
        assert!(auth.allows(&users, &h("secret")).await);
        assert!(!auth.allows(&users, &h("wrong")).await);
        assert_eq!(auth.cache.lock().unwrap().len(), 2);
        assert!(auth.allows(&users, &h("secret")).await);
        assert!(!auth.allows(&users, &h("wrong")).await);
        assert_eq!(auth.cache.lock().unwrap().len(), 2);
        assert!(!auth.allows(&users, &HeaderMap::new()).await);
    }

    #[test]
    fn cache_stays_bounded() {
        let auth = BasicAuth::new();
        for i in 0..(CACHE_ENTRIES * 3) {
            auth.remember(auth.cache_key(b"u", "h", &i.to_le_bytes()), true);
        }
        assert!(auth.cache.lock().unwrap().len() <= CACHE_ENTRIES);
    }

    #[test]
    fn wrong_password_spray_keeps_good_entries_cached() {
        let auth = BasicAuth::new();
        let good = auth.cache_key(b"alice", "h", b"right");
        auth.remember(good, true);
        for i in 0..(CACHE_ENTRIES * 3) {
            auth.remember(auth.cache_key(b"alice", "h", &i.to_le_bytes()), false);
        }
        assert_eq!(auth.cached(&good), Some(true));
        assert!(auth.cache.lock().unwrap().len() <= CACHE_ENTRIES);
    }
}

//! Serving a router under a web config: plain HTTP or TLS, with the request checks of
//! [`super::auth`] in front. TLS connections are accepted by a task of their own that runs each
//! handshake concurrently (a slow client cannot hold up others) with the configuration in force when
//! the connection arrived, so new certificates apply to the next connection. Does not parse the file.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;

use super::{WebConfigFile, auth};

/// A handshake not finished in this time is dropped (Go's server bounds it by its read timeout).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` completes, then lets open requests finish. Without a
/// web config this is plain `axum::serve`; with one, requests pass its checks and, if it sets TLS up,
/// connections are TLS.
pub async fn serve<F>(
    listener: TcpListener,
    app: Router,
    web: Option<Arc<WebConfigFile>>,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let Some(web) = web else {
        return axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
    };
    let app = auth::layer(app, web.clone());
    let http2 = web.current().map(|l| l.config.http2).unwrap_or(false);
    if web.serves_tls() {
        tracing::info!(file = %web.path().display(), http2, "TLS is enabled");
        axum::serve(TlsListener::new(listener, web), app)
            .with_graceful_shutdown(shutdown)
            .await
    } else {
        tracing::info!(file = %web.path().display(), "TLS is disabled");
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

/// Hands axum connections whose TLS handshake is done.
struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: io::Result<SocketAddr>,
    acceptor: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        // The accept task owns the socket: ending it releases the port.
        self.acceptor.abort();
    }
}

impl TlsListener {
    fn new(listener: TcpListener, web: Arc<WebConfigFile>) -> TlsListener {
        let local = listener.local_addr();
        let (tx, ready) = mpsc::channel(64);
        let acceptor = tokio::spawn(accept_loop(listener, web, tx));
        TlsListener {
            ready,
            local,
            acceptor,
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept task only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        match &self.local {
            Ok(a) => Ok(*a),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    web: Arc<WebConfigFile>,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let (tcp, addr) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: back off rather than spin (as axum does).
                tracing::error!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let config = match web.current() {
            Ok(l) => match &l.tls {
                Some(c) => c.clone(),
                None => {
                    tracing::error!(
                        file = %web.path().display(),
                        "the web config no longer sets TLS up; refusing connections until it does or Ember restarts"
                    );
                    continue;
                }
            },
            // Logged when the reload failed; the connection is dropped.
            Err(_) => continue,
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(tcp, config)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send((tls, addr)).await;
                }
                Ok(Err(e)) => tracing::debug!(%addr, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
            }
        });
    }
}

async fn handshake(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
) -> io::Result<TlsStream<TcpStream>> {
    // A TLS connection starts with a handshake record (type 22); a letter means someone spoke plain
    // HTTP. Tell them in HTTP, as Go's server does, rather than leave them with a reset connection.
    let mut first = [0u8; 1];
    if tcp.peek(&mut first).await? == 1 && first[0].is_ascii_uppercase() {
        let mut tcp = tcp;
        tcp.write_all(
            b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n\
              This port serves HTTPS; the request came as plain HTTP.\n",
        )
        .await?;
        let _ = tcp.shutdown().await;
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "plain HTTP request on the TLS port",
        ));
    }
    tokio_rustls::TlsAcceptor::from(config).accept(tcp).await
}

//! The accept loop: HTTP/1.1 connections on the loopback listener, each served by the axum router through hyper.
//!
//! Why not `axum::serve`: a PUT that is applied and then answered by a dropped connection needs the connection to
//! close with no status line at all. Here the service returns an error for a response marked `DropConnection`, and
//! hyper then aborts the connection without writing anything. Shutdown is graceful: stop accepting, let connections
//! finish their request in flight (bounded by `GRACE`).

use super::respond::DropConnection;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How long a graceful shutdown waits for connections to finish.
const GRACE: Duration = Duration::from_secs(5);

/// The error a service returns to make hyper drop the connection.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped on purpose after the request was applied")]
struct DroppedOnPurpose;

/// Serves `router` on `listener` until `stop` is cancelled.
pub(crate) async fn serve(listener: TcpListener, router: Router, stop: CancellationToken) {
    let graceful = GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::debug!(%error, "sandbox: accept failed");
                    continue;
                }
            },
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let router = router.clone();
            async move {
                let Ok(response) = router.oneshot(request.map(axum::body::Body::new)).await;
                if response.extensions().get::<DropConnection>().is_some() {
                    return Err(DroppedOnPurpose);
                }
                Ok(response)
            }
        });
        let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "sandbox: connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(GRACE, graceful.shutdown()).await.is_err() {
        tracing::debug!("sandbox: connections still open after the grace period");
    }
}

//! The management endpoint: plain HTTP on its own loopback port, for tests and scripts
//! that drive the binary (in-process tests use [`TestCaHandle`](crate::TestCaHandle)).
//!
//! ```text
//! GET    /counts          Counts as JSON
//! POST   /counts/reset    zero the counts
//! GET    /roots/{n}       issuing root n as PEM (0: primary, 1: alternate)
//! GET    /tls-root        the HTTPS trust root as PEM
//! GET    /fault-plan      the current plan as JSON
//! POST   /fault-plan      replace the plan (JSON when the body starts with `{`, else TOML)
//! POST   /ari             add an AriOverride (JSON)
//! DELETE /ari             drop every override
//! GET    /certificates    the issued certificates as JSON
//! ```

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming as Body;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tracing::debug;

use crate::ari::AriOverride;
use crate::ca::Ca;
use crate::counts::Counts;
use crate::faults::FaultPlan;
use crate::handle::certificates;

/// Serves the management endpoint until the CA stops.
pub(crate) async fn run(ca: Arc<Ca>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            () = ca.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            ca.sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let ca2 = Arc::clone(&ca);
        ca.spawn(async move {
            let service = service_fn(move |req| {
                let ca = Arc::clone(&ca2);
                async move { Ok::<_, Infallible>(answer(&ca, req).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                debug!(error = %e, "management connection failed");
            }
        });
    }
}

fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    r
}

fn json<T: serde::Serialize>(value: &T) -> Response<Full<Bytes>> {
    match serde_json::to_vec_pretty(value) {
        Ok(body) => reply(StatusCode::OK, "application/json", body),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    reply(status, "text/plain", body + "\n")
}

async fn answer(ca: &Ca, req: Request<Body>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, 1 << 20).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("body: {e}")),
    };
    let path = parts.uri.path();
    match (&parts.method, path) {
        (&Method::GET, "/counts") => json(&*ca.counts()),
        (&Method::POST, "/counts/reset") => {
            *ca.counts() = Counts::default();
            json(&*ca.counts())
        }
        (&Method::GET, "/tls-root") => reply(
            StatusCode::OK,
            "application/x-pem-file",
            ca.authority.tls_root_pem.clone(),
        ),
        (&Method::GET, p) if p.starts_with("/roots/") => {
            let root = p["/roots/".len()..]
                .parse::<usize>()
                .ok()
                .and_then(|n| ca.authority.hierarchies.get(n));
            match root {
                Some(h) => reply(StatusCode::OK, "application/x-pem-file", h.root_pem.clone()),
                None => text(StatusCode::NOT_FOUND, "no such root".into()),
            }
        }
        (&Method::GET, "/fault-plan") => json(ca.faults().plan()),
        (&Method::POST, "/fault-plan") => {
            let text_body = String::from_utf8_lossy(&body);
            let parsed = if text_body.trim_start().starts_with('{') {
                FaultPlan::from_json_str(&text_body)
            } else {
                FaultPlan::from_toml_str(&text_body)
            };
            match parsed {
                Ok(plan) => {
                    ca.set_fault_plan(plan);
                    json(ca.faults().plan())
                }
                Err(e) => text(StatusCode::BAD_REQUEST, e.to_string()),
            }
        }
        (&Method::POST, "/ari") => match serde_json::from_slice::<AriOverride>(&body) {
            Ok(o) => {
                ca.ari_overrides().push(o);
                json(&*ca.ari_overrides())
            }
            Err(e) => text(StatusCode::BAD_REQUEST, format!("ARI override: {e}")),
        },
        (&Method::DELETE, "/ari") => {
            ca.ari_overrides().clear();
            json(&*ca.ari_overrides())
        }
        (&Method::GET, "/certificates") => json(&certificates(ca)),
        _ => text(StatusCode::NOT_FOUND, format!("nothing at {path}")),
    }
}

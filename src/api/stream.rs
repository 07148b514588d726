//! Streamed exports: the caller is authorized and the export decided in a read transaction,
//! then its rows are written as they are read, in chunks, to the response; an export that
//! began is recorded in the audit trail when it ends.

use super::{AppState, Auth, Origin};
use crate::db::Conn;
use crate::error::{ApiError, ApiResult};
use crate::reports::export::{table_writer, Cell, Export, Format, TableWriter};
use crate::store::audit;
use crate::store::scope::Principal;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::HttpResponse;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// Counts the rows written through it.
struct Counted {
    inner: Box<dyn TableWriter>,
    rows: Arc<AtomicU64>,
}

impl TableWriter for Counted {
    fn row(&mut self, cells: &[Cell]) -> io::Result<()> {
        self.inner.row(cells)?;
        self.rows.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn finish(self: Box<Self>) -> io::Result<()> {
        self.inner.finish()
    }
}

/// Sends what is written in chunks to the response; fails once the client is gone.
struct ChunkWriter {
    buf: Vec<u8>,
    tx: mpsc::Sender<io::Result<Bytes>>,
}

const CHUNK: usize = 64 * 1024;

impl Write for ChunkWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

type Started = Arc<Mutex<Option<oneshot::Sender<ApiResult<(String, Format)>>>>>;

/// Runs `plan` for the caller in a read transaction; once it has decided the export (or
/// refused it, answered as problem+json), streams the rows from the same transaction. An
/// export that began is recorded in the audit trail when it ends, with its rows and whether
/// it was complete.
pub(crate) async fn stream<F>(
    state: &AppState,
    auth: Auth,
    origin: Origin,
    format: Format,
    plan: F,
) -> ApiResult<HttpResponse>
where
    F: FnOnce(&mut Conn<'_>, &Principal) -> ApiResult<Export> + Send + 'static,
{
    let (started_tx, started_rx) = oneshot::channel();
    let started: Started = Arc::new(Mutex::new(Some(started_tx)));
    let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(8);
    // Rows are read where reports read (the replica, when there is one); the audit entry
    // is written on the primary.
    let read_pool = state.reports_pool().await?;
    let pool = state.pool.clone();
    let claims = auth.0;
    let job_started = started.clone();
    let job_tx = tx.clone();
    let began: Arc<Mutex<Option<(audit::Actor, audit::Action)>>> = Arc::default();
    let job_began = began.clone();
    let rows = Arc::new(AtomicU64::new(0));
    let job_rows = rows.clone();
    actix_web::rt::spawn(async move {
        let result = read_pool
            .run(move |conn| {
                conn.read_transaction(|conn| {
                    let who = Principal::load(conn, &claims)?;
                    let export = plan(conn, &who)?;
                    let mut action = audit::Action::new("export", origin.target.clone()).with(
                        serde_json::json!({"title": export.title, "format": format.extension()}),
                    );
                    if let Some((id, path)) = &export.area {
                        action = action.in_area(*id, path);
                    }
                    if let Ok(mut b) = job_began.lock() {
                        *b = Some((origin.of(&who), action));
                    }
                    let start = job_started.lock().ok().and_then(|mut s| s.take());
                    if let Some(s) = start {
                        let _ = s.send(Ok((export.filename.clone(), format)));
                    }
                    let sink = ChunkWriter {
                        buf: Vec::with_capacity(CHUNK),
                        tx: job_tx,
                    };
                    let out = table_writer(format, &export.title, export.headers, sink)
                        .map_err(crate::reports::Error::from)?;
                    let mut out = Counted {
                        inner: out,
                        rows: job_rows,
                    };
                    (export.rows)(conn, &mut out)?;
                    out.inner.finish().map_err(crate::reports::Error::from)?;
                    Ok::<_, ApiError>(())
                })
            })
            .await;
        let complete = result.is_ok();
        if let Err(e) = result {
            let waiting = started.lock().ok().and_then(|mut s| s.take());
            match waiting {
                Some(s) => {
                    let _ = s.send(Err(e));
                }
                None => {
                    tracing::warn!(error = %e, "export stopped midway");
                    let _ = tx
                        .send(Err(io::Error::other("the export failed midway")))
                        .await;
                }
            }
        }
        let began = began.lock().ok().and_then(|mut b| b.take());
        if let Some((actor, action)) = began {
            let mut detail = action.detail.clone();
            detail["rows"] = rows.load(Ordering::Relaxed).into();
            detail["complete"] = complete.into();
            let action = action.with(detail);
            let recorded = pool
                .tx(move |conn| audit::record(conn, &actor, &action).map_err(ApiError::from))
                .await;
            if let Err(e) = recorded {
                tracing::error!(error = %e, "an export could not be recorded in the audit trail");
            }
        }
    });
    let (name, format) = started_rx
        .await
        .map_err(|_| ApiError::internal(anyhow::anyhow!("export task ended without answer")))??;
    let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}.{}\"", format.extension()),
        ))
        .streaming(body))
}

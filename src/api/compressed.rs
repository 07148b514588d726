//! Large JSON answers compressed harder than the `Compress` middleware does: it uses gzip's
//! fastest level and brotli's quality 3, made for streams. A first download's pages go once
//! to each phone, often over a 2G link, and are worth a few milliseconds of the server's
//! time (BENCHMARKS.md, "The field app"). Smaller answers go through the middleware as
//! before.

use crate::error::{ApiError, ApiResult};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;
use std::io::Write;

/// Answers at least this large are compressed here.
pub const MIN_BYTES: usize = 16 * 1024;
const BROTLI_QUALITY: u32 = 5;
/// 4 MiB: a whole page stays within reach of the compressor.
const BROTLI_WINDOW: u32 = 22;
const GZIP_LEVEL: u32 = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Brotli,
    Gzip,
    Identity,
}

impl Coding {
    fn name(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Gzip => "gzip",
            Coding::Identity => "identity",
        }
    }
}

/// The coding to send: brotli when the client takes it, else gzip, else none (a coding
/// with `q=0` is refused).
fn coding(accept: Option<&str>) -> Coding {
    let takes = |name: &str| {
        accept.is_some_and(|a| {
            a.split(',').any(|item| {
                let mut parts = item.split(';').map(str::trim);
                let token = parts.next().unwrap_or("");
                let refused = parts.any(|p| {
                    p.strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                        .is_some_and(|q| q <= 0.0)
                });
                token.eq_ignore_ascii_case(name) && !refused
            })
        })
    };
    if takes("br") {
        Coding::Brotli
    } else if takes("gzip") {
        Coding::Gzip
    } else {
        Coding::Identity
    }
}

fn compress(body: &[u8], coding: Coding) -> std::io::Result<Vec<u8>> {
    match coding {
        Coding::Brotli => {
            let mut out = Vec::with_capacity(body.len() / 4);
            {
                let mut w = brotli::CompressorWriter::new(
                    &mut out,
                    64 * 1024,
                    BROTLI_QUALITY,
                    BROTLI_WINDOW,
                );
                w.write_all(body)?;
            }
            Ok(out)
        }
        Coding::Gzip => {
            let mut w = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 4),
                flate2::Compression::new(GZIP_LEVEL),
            );
            w.write_all(body)?;
            w.finish()
        }
        Coding::Identity => Ok(body.to_vec()),
    }
}

/// `value` as a JSON answer, compressed here when it is large, on a blocking thread.
pub async fn json<T: Serialize + Send + 'static>(
    req: &HttpRequest,
    value: T,
) -> ApiResult<HttpResponse> {
    let accept = req
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (body, coding) = actix_web::web::block(move || {
        let body = serde_json::to_vec(&value)?;
        if body.len() < MIN_BYTES {
            return Ok::<_, std::io::Error>((body, None));
        }
        match coding(accept.as_deref()) {
            // Left to the middleware, which may still find a coding the client takes.
            Coding::Identity => Ok((body, None)),
            c => Ok((compress(&body, c)?, Some(c))),
        }
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    let mut res = HttpResponse::Ok();
    res.content_type("application/json");
    // The middleware leaves an answer that names its coding as it is.
    if let Some(c) = coding {
        res.insert_header((header::VARY, "accept-encoding"));
        res.insert_header((header::CONTENT_ENCODING, c.name()));
    }
    Ok(res.body(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brotli_is_preferred_and_a_refused_coding_is_not_sent() {
        assert_eq!(coding(Some("gzip, deflate, br, zstd")), Coding::Brotli);
        assert_eq!(coding(Some("gzip, deflate")), Coding::Gzip);
        assert_eq!(coding(Some("gzip;q=0.5, br;q=0")), Coding::Gzip);
        assert_eq!(coding(Some("BR")), Coding::Brotli);
        assert_eq!(coding(Some("identity")), Coding::Identity);
        assert_eq!(coding(None), Coding::Identity);
    }

    #[test]
    fn what_is_compressed_comes_back_whole() {
        use std::io::Read;
        let body = br#"{"rows":[1,2,3]}"#.repeat(2000);
        let mut back = Vec::new();
        brotli::Decompressor::new(&compress(&body, Coding::Brotli).unwrap()[..], 4096)
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, body);
        back.clear();
        flate2::read::GzDecoder::new(&compress(&body, Coding::Gzip).unwrap()[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, body);
    }
}

//! The canvassers' field app at `/field/`: an offline-first web app (plain JavaScript
//! modules, a manifest and a service worker) embedded in the binary. It speaks only the
//! documented sync protocol; see `docs/FIELD-APP.md`.

use actix_web::http::header;
use actix_web::{web, HttpResponse, ResponseError};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// Only this origin: no outside scripts, styles, images or connections.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; connect-src 'self'; worker-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const JS: &str = "text/javascript; charset=utf-8";

/// The app shell: file name, media type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "",
        "text/html; charset=utf-8",
        include_bytes!("../field/index.html"),
    ),
    ("app.js", JS, include_bytes!("../field/app.js")),
    ("sync.js", JS, include_bytes!("../field/sync.js")),
    ("text.js", JS, include_bytes!("../field/text.js")),
    (
        "duplicates.js",
        JS,
        include_bytes!("../field/duplicates.js"),
    ),
    (
        "vocabulary.js",
        JS,
        include_bytes!("../field/vocabulary.js"),
    ),
    ("idbstore.js", JS, include_bytes!("../field/idbstore.js")),
    ("memstore.js", JS, include_bytes!("../field/memstore.js")),
    ("schedule.js", JS, include_bytes!("../field/schedule.js")),
    ("units.js", JS, include_bytes!("../field/units.js")),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../field/app.css"),
    ),
    (
        "manifest.webmanifest",
        "application/manifest+json",
        include_bytes!("../field/manifest.webmanifest"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_bytes!("../field/icon.svg"),
    ),
    (
        "icon-192.png",
        "image/png",
        include_bytes!("../field/icon-192.png"),
    ),
    (
        "icon-512.png",
        "image/png",
        include_bytes!("../field/icon-512.png"),
    ),
];
const WORKER: &str = include_str!("../field/sw.js");

static RELEASE: OnceLock<String> = OnceLock::new();

/// Sets the release label (`Settings::field_release`) before the version is first asked for;
/// the first label set in a process stays.
pub fn set_release(label: &str) {
    let _ = RELEASE.set(label.to_owned());
}

/// The version of the shell: a hash of every file and of the release label. The worker
/// carries it, so a binary with other files (or another label) gives browsers a new worker,
/// which replaces the cached shell when the app lets it.
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut h = Sha256::new();
        h.update(
            RELEASE
                .get()
                .map(String::as_str)
                .unwrap_or_default()
                .as_bytes(),
        );
        for (name, _, bytes) in ASSETS {
            h.update(name.as_bytes());
            h.update(bytes);
        }
        h.update(WORKER.as_bytes());
        hex::encode(&h.finalize()[..6])
    })
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/field",
        web::get().to(|| async {
            HttpResponse::Found()
                .insert_header((header::LOCATION, "/field/"))
                .finish()
        }),
    )
    .route("/field/sw.js", web::get().to(worker))
    .route("/field/{file:.*}", web::get().to(asset));
}

/// The service worker keeps the offline copy; online, the browser asks again each time.
fn respond(content_type: &str, body: impl actix_web::body::MessageBody + 'static) -> HttpResponse {
    super::embedded(content_type, CSP, body)
}

async fn asset(file: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|(name, _, _)| *name == file.as_str()) {
        // The page names the shell's version, which the app reports at each sync, and asks
        // for every module at once rather than as each import is found.
        Some(("", content_type, bytes)) => respond(
            content_type,
            String::from_utf8_lossy(bytes)
                .replace("__VERSION__", version())
                .replace("__PRELOAD__", &preloads()),
        ),
        Some((_, content_type, bytes)) => respond(content_type, *bytes),
        None => crate::error::ApiError::not_found("file").error_response(),
    }
}

/// A `modulepreload` link for each module the app imports.
fn preloads() -> String {
    ASSETS
        .iter()
        .filter(|(name, kind, _)| *kind == JS && *name != "app.js")
        .map(|(name, _, _)| format!("<link rel=\"modulepreload\" href=\"/field/{name}\">"))
        .collect::<Vec<_>>()
        .join("\n  ")
}

async fn worker() -> HttpResponse {
    respond(JS, WORKER.replace("__VERSION__", version()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_preloads_every_module_the_app_imports() {
        let page = String::from_utf8_lossy(ASSETS[0].2).replace("__PRELOAD__", &preloads());
        for (name, kind, _) in ASSETS.iter().filter(|(_, kind, _)| *kind == JS) {
            let preload = format!("<link rel=\"modulepreload\" href=\"/field/{name}\">");
            // app.js is the page's own script; every other module is preloaded.
            assert_eq!(
                page.contains(&preload),
                *name != "app.js",
                "{name} ({kind})"
            );
        }
        assert!(page.contains("<script type=\"module\" src=\"/field/app.js\">"));
    }
}

//! The supervisors' dashboard and console (docs/CONSOLE.md): one page and its scripts and styles, embedded in the binary
//! so that it works on an office network without internet.

use actix_web::{web, HttpResponse};

const INDEX: &str = include_str!("../web/index.html");
const SCRIPT: &str = include_str!("../web/app.js");
const API: &str = include_str!("../web/api.js");
const CONSOLE: &str = include_str!("../web/console.js");
const STYLE: &str = include_str!("../web/app.css");

/// Only this origin: no outside scripts, styles or connections.
const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route("/assets/app.js", web::get().to(script))
        .route("/assets/api.js", web::get().to(|| async { asset(JS, API) }))
        .route(
            "/assets/console.js",
            web::get().to(|| async { asset(JS, CONSOLE) }),
        )
        .route("/assets/app.css", web::get().to(style));
}

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    super::embedded(content_type, CSP, body)
}

async fn index() -> HttpResponse {
    asset("text/html; charset=utf-8", INDEX)
}

const JS: &str = "text/javascript; charset=utf-8";

async fn script() -> HttpResponse {
    asset(JS, SCRIPT)
}

async fn style() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE)
}

//! Login, token verification, refresh rotation and revocation.

mod common;

use common::{TestApp, World, PASSWORD, SECRET};
use jsonwebtoken::{encode, EncodingKey, Header};
use reqwest::Method;
use serde_json::json;

fn claims(sub: &str, sid: &str, exp_offset: i64) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": sub, "role": "admin", "sid": sid, "iat": now - 10, "exp": now + exp_offset})
}

fn b64(v: &serde_json::Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn login_gives_tokens_and_wrong_password_does_not() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let me = app.get("/api/v1/me", &admin).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["username"], "admin");
    assert_eq!(me.body["role"], "admin");

    let ok = app.login("admin", PASSWORD).await;
    assert_eq!(ok.body["token_type"], "Bearer");
    assert_eq!(ok.body["expires_in"], 15 * 60);
    assert!(ok.body["refresh_token"].as_str().unwrap().len() >= 40);

    app.login("admin", "wrong password")
        .await
        .assert_problem(401, "invalid_credentials");
    app.login("nobody", PASSWORD)
        .await
        .assert_problem(401, "invalid_credentials");
    // The stored password is a salted argon2 hash.
    let stored: String = app
        .db(|conn| {
            use diesel::prelude::*;
            use gocua::db::schema::users;
            gocua::with_conn!(conn, |c| users::table
                .select(users::password_hash)
                .first::<String>(c))
            .unwrap()
        })
        .await;
    assert!(stored.starts_with("$argon2id$"), "{stored}");
}

#[tokio::test]
async fn missing_expired_forged_and_none_tokens_get_401() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let login = app.login("admin", PASSWORD).await;
    let uid = login.body["user_id"].as_str().unwrap().to_owned();
    // The session id of a real login, read from its token.
    let payload = admin.split('.').nth(1).unwrap();
    use base64::Engine;
    let real: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    let sid = real["sid"].as_str().unwrap().to_owned();

    let none = app
        .request(Method::GET, "/api/v1/me", None, None, &[])
        .await;
    none.assert_problem(401, "missing_token");
    assert_eq!(none.headers["www-authenticate"], "Bearer");

    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let expired = encode(&Header::default(), &claims(&uid, &sid, -3600), &key).unwrap();
    app.get("/api/v1/me", &expired)
        .await
        .assert_problem(401, "token_expired");

    let valid = encode(&Header::default(), &claims(&uid, &sid, 600), &key).unwrap();
    assert_eq!(
        app.get("/api/v1/me", &valid).await.status,
        200,
        "a token signed with our key works"
    );

    let other_key = EncodingKey::from_secret(b"another-secret-another-secret-another");
    let forged = encode(&Header::default(), &claims(&uid, &sid, 600), &other_key).unwrap();
    app.get("/api/v1/me", &forged)
        .await
        .assert_problem(401, "invalid_token");

    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims(&uid, &sid, 600))
    );
    app.get("/api/v1/me", &alg_none)
        .await
        .assert_problem(401, "invalid_token");

    app.get("/api/v1/me", "garbage")
        .await
        .assert_problem(401, "invalid_token");
    let basic = app
        .request(
            Method::GET,
            "/api/v1/me",
            None,
            None,
            &[("authorization", "Basic YTpi")],
        )
        .await;
    basic.assert_problem(401, "invalid_token");
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_chain() {
    let app = TestApp::spawn().await;
    app.admin().await;
    let first = app.login("admin", PASSWORD).await;
    let r1 = first.body["refresh_token"].as_str().unwrap().to_owned();
    let access1 = first.body["access_token"].as_str().unwrap().to_owned();

    let second = app
        .request(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": r1})),
            &[],
        )
        .await;
    assert_eq!(second.status, 200, "{}", second.text);
    let r2 = second.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2);
    let access2 = second.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.get("/api/v1/me", &access2).await.status, 200);

    // Replaying the rotated token: refused, and the whole session is revoked.
    let reuse = app
        .request(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": r1})),
            &[],
        )
        .await;
    reuse.assert_problem(401, "refresh_token_reused");
    let after = app
        .request(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": r2})),
            &[],
        )
        .await;
    after.assert_problem(401, "session_revoked");
    app.get("/api/v1/me", &access2)
        .await
        .assert_problem(401, "session_revoked");
    app.get("/api/v1/me", &access1)
        .await
        .assert_problem(401, "session_revoked");

    // Only hashes are stored.
    let r2_stored = app
        .db(move |conn| {
            use diesel::prelude::*;
            use gocua::db::schema::refresh_tokens;
            gocua::with_conn!(conn, |c| refresh_tokens::table
                .filter(refresh_tokens::token_hash.eq(&r2))
                .count()
                .get_result::<i64>(c))
            .unwrap()
        })
        .await;
    assert_eq!(r2_stored, 0);

    let unknown = app
        .request(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": "nope"})),
            &[],
        )
        .await;
    unknown.assert_problem(401, "invalid_refresh_token");
}

#[tokio::test]
async fn logout_and_deactivation_revoke_access() {
    let w = World::new().await;
    let app = &w.app;
    let canvasser = app.user(&w.admin, "canbo", "canvasser", &[&w.v1]).await;
    let login = app.login("canbo", PASSWORD).await;
    let refresh = login.body["refresh_token"].as_str().unwrap().to_owned();
    let access = login.body["access_token"].as_str().unwrap().to_owned();

    let out = app
        .request(
            Method::POST,
            "/api/v1/auth/logout",
            None,
            Some(json!({"refresh_token": refresh})),
            &[],
        )
        .await;
    assert_eq!(out.status, 204);
    app.get("/api/v1/me", &access)
        .await
        .assert_problem(401, "session_revoked");
    let again = app
        .request(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh})),
            &[],
        )
        .await;
    again.assert_problem(401, "session_revoked");

    // Deactivating a user ends their other sessions and refuses new logins.
    assert_eq!(app.get("/api/v1/me", &canvasser).await.status, 200);
    let me = app.get("/api/v1/me", &canvasser).await;
    let id = me.body["id"].as_str().unwrap();
    let r = app
        .request(
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            Some(&w.admin),
            Some(json!({"active": false})),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["active"], false);
    app.get("/api/v1/me", &canvasser)
        .await
        .assert_problem(401, "user_inactive");
    app.login("canbo", PASSWORD)
        .await
        .assert_problem(401, "user_inactive");
}

/// A login from a client address, as a proxy in front of gocua says (the server below trusts
/// 127.0.0.1 as its proxy).
async fn login_from(app: &TestApp, from: &str, username: &str, password: &str) -> common::Res {
    app.request(
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(json!({"username": username, "password": password})),
        &[("x-forwarded-for", from)],
    )
    .await
}

#[tokio::test]
async fn guessing_is_spaced_out_per_address_and_the_real_user_still_logs_in() {
    let app = TestApp::spawn_with(|s| {
        s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        s.login_free_failures = 3;
        s.login_address_failures = 8;
    })
    .await;
    app.admin().await;
    let (attacker, user) = ("203.0.113.5", "198.51.100.7");
    let sessions = app.count("sessions").await;
    // A known and an unknown username answer alike, attempt by attempt.
    for name in ["admin", "nobody"] {
        for _ in 0..4 {
            login_from(&app, attacker, name, "guess")
                .await
                .assert_problem(401, "invalid_credentials");
        }
        // Now even the right password waits, and is not looked at.
        let r = login_from(&app, attacker, name, PASSWORD).await;
        r.assert_problem(429, "too_many_attempts");
        assert_eq!(r.headers["retry-after"], "1", "{:?}", r.headers);
        assert!(r.body["detail"]
            .as_str()
            .unwrap()
            .contains("try again in 1 s"));
    }
    assert_eq!(app.count("sessions").await, sessions, "nothing opened");
    // The real user, elsewhere, is not held back.
    let r = login_from(&app, user, "admin", PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // From the attacker's address, the right password works once the wait is over.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = login_from(&app, attacker, "admin", PASSWORD).await;
        if r.status == 200 {
            break;
        }
        r.assert_problem(429, "too_many_attempts");
        assert!(std::time::Instant::now() < deadline, "still refused");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(app.count("sessions").await, sessions + 2);
    // One more failure from that address, on any account, is past its limit (8): spraying
    // usernames is spaced out too, and other addresses are not.
    login_from(&app, attacker, "x1", "guess")
        .await
        .assert_problem(401, "invalid_credentials");
    login_from(&app, attacker, "x2", "guess")
        .await
        .assert_problem(429, "too_many_attempts");
    login_from(&app, user, "x2", "guess")
        .await
        .assert_problem(401, "invalid_credentials");
    // The audit trail holds each failure and each refusal, from where they came.
    let count = |action: &str, from: &str| {
        format!(
            "SELECT count(*) AS n FROM audit_log WHERE action = '{action}' AND address = '{from}'"
        )
    };
    assert_eq!(app.number(count("login_failed", attacker)).await, 9);
    assert_eq!(app.number(count("login_failed", user)).await, 1);
    let refused = app.number(count("login_throttled", attacker)).await;
    assert!(refused >= 3, "{refused}");
}

#[tokio::test]
async fn tokens_of_a_rotated_key_still_work_and_name_their_key() {
    let new_key = "a new signing key of at least thirty-two bytes";
    let app = TestApp::spawn_with(|s| {
        s.jwt_secret = Some(new_key.into());
        s.jwt_previous_secrets = vec![SECRET.into()];
    })
    .await;
    let token = app.admin().await;
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(
        header.kid.as_deref(),
        Some(gocua::auth::key_id(&new_key.into()).as_str())
    );
    // The same session's claims signed with the previous key, as a token issued before the
    // rotation: accepted, whether it names its key or not.
    let me = app.get("/api/v1/me", &token).await;
    assert_eq!(me.status, 200, "{}", me.text);
    let claims: serde_json::Value = {
        use base64::Engine;
        let payload = token.split('.').nth(1).unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    };
    let sign = |key: &str, kid: Option<String>| {
        let h = Header {
            kid,
            ..Header::default()
        };
        encode(&h, &claims, &EncodingKey::from_secret(key.as_bytes())).unwrap()
    };
    let old_kid = Some(gocua::auth::key_id(&SECRET.into()));
    let r = app.get("/api/v1/me", &sign(SECRET, old_kid.clone())).await;
    assert_eq!(r.body["username"], "admin", "{}", r.text);
    // Without a key id only the current key is tried.
    let r = app.get("/api/v1/me", &sign(new_key, None)).await;
    assert_eq!(r.body["username"], "admin", "{}", r.text);
    app.get("/api/v1/me", &sign(SECRET, None))
        .await
        .assert_problem(401, "invalid_token");
    // A key that was never ours fails, even naming one of our ids.
    let forged = sign("some other key of thirty-two bytes!!", old_kid);
    app.get("/api/v1/me", &forged)
        .await
        .assert_problem(401, "invalid_token");
}

//! The console in headless Chromium (docs/CONSOLE.md), checked through the API: a supervisor
//! makes a canvasser for one village, who logs in to the field app with the one-time
//! password, must change it and sees only that village; accounts from a spreadsheet and
//! their printed sheet; a target set in the table shows on the progress bar; a conflict
//! resolved on screen is closed and the device receives the value; coverage marks the
//! villages nobody covers; the audit trail; the household register; a deactivation that
//! asks first. Screenshots go to `docs/img/console-*.png`.
//!
//! Without chromedriver the test is skipped locally and fails in CI (`CI` set).

mod common;

use common::browser::{save, Browser};
use common::World;
use serde_json::json;

async fn shot(b: &Browser, name: &str) {
    save(&b.screenshot().await, name);
}

/// A file for an upload, in a folder of its own.
fn file(name: &str, body: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, body).unwrap();
    let path = path.to_str().unwrap().to_owned();
    (dir, path)
}

async fn open_screen(b: &Browser, name: &str, ready: &str) {
    b.click(&format!("#screens button[data-screen={name}]"))
        .await;
    b.wait_for(&format!(
        "return document.getElementById('console').dataset.screen === '{name}' && {ready}"
    ))
    .await;
}

#[tokio::test]
async fn a_campaign_is_run_from_the_console() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let w = World::new().await;
    let app = &w.app;
    let campaign = w.campaign().await;
    app.user(&w.admin, "xa", "supervisor", &[&w.hoa_tham]).await;
    let xa = app.token("xa").await;

    // The supervisor logs in: one commune, its progress.
    b.dashboard_login(&app.base, "xa", common::PASSWORD).await;
    b.wait_for("return document.querySelectorAll('#areas .area-row').length === 2")
        .await;

    // The team: a canvasser for Nà Pàn, with a one-time password.
    open_screen(&b, "team", "document.getElementById('team') !== null").await;
    b.click("#new-user").await;
    b.type_into("#new-username", "cb.napan").await;
    b.type_into("#new-full-name", "Lò Thị Hoa").await;
    b.type_into("#new-phone", "0912345678").await;
    let pick = format!(".picker-list li[data-id='{}'] input", w.v1);
    b.wait_for(&format!(
        "return document.querySelector(\"{pick}\") !== null"
    ))
    .await;
    b.click(&pick).await;
    b.click("#create-user").await;
    let otp = b
        .wait_for(
            "const c = document.querySelector('#one-time code.otp'); return c && c.textContent",
        )
        .await;
    let otp = otp.as_str().unwrap().to_owned();
    let made = app.listed_user(&xa, "cb.napan").await;
    assert_eq!(made["area_ids"], json!([w.v1]));
    assert_eq!(made["must_change_password"], true);
    assert_eq!(made["full_name"], "Lò Thị Hoa");
    shot(&b, "console-team.png").await;

    // The canvasser's first login on the field app: a new password first, then only Nà Pàn.
    b.field_login(&app.base, "cb.napan", &otp).await;
    b.wait_for("return document.getElementById('new-password') !== null")
        .await;
    shot(&b, "console-first-login.png").await;
    b.type_into("#new1", "mật khẩu của Hoa").await;
    b.type_into("#new2", "mật khẩu của Hoa").await;
    b.click("#new-password button[type=submit]").await;
    let villages = b
        .wait_for(
            "const r = window.gocua.engine.meta.reference; \
             return r && !window.gocua.engine.mustChangePassword && r.areas.filter(a => a.level === 'village').map(a => a.id)",
        )
        .await;
    assert_eq!(villages, json!([w.v1]));
    assert_eq!(app.login("cb.napan", &otp).await.status, 401);
    assert_eq!(app.login("cb.napan", "mật khẩu của Hoa").await.status, 200);
    let cb = app.token_with("cb.napan", "mật khẩu của Hoa").await;

    // Back on the console: a target for Nà Pàn in the table shows on its progress bar.
    b.goto(&format!("{}/", app.base)).await;
    b.wait_for("return document.querySelectorAll('#areas .area-row').length === 2")
        .await;
    let bar = format!("#areas .area-row[data-id='{}'] .bar .label", w.v1);
    let text = b
        .script(&format!(
            "return document.querySelector(\"{bar}\").textContent"
        ))
        .await;
    assert!(
        text.as_str().unwrap().contains("chưa có chỉ tiêu"),
        "{text}"
    );
    open_screen(
        &b,
        "campaigns",
        "document.getElementById('targets') !== null",
    )
    .await;
    let row = format!("#targets tr[data-id='{}']", w.v1);
    b.type_into(&format!("{row} .t-value"), "70").await;
    b.click(&format!("{row} .t-save")).await;
    b.wait_for(&format!(
        "const r = document.querySelector(\"{row}\"); return r && r.textContent.includes('70%')"
    ))
    .await;
    let targets = app
        .get(&format!("/api/v1/campaigns/{campaign}/targets"), &xa)
        .await;
    assert_eq!(targets.body["items"][0]["area_id"], w.v1.as_str());
    assert_eq!(targets.body["items"][0]["value"], 70.0);
    shot(&b, "console-campaigns.png").await;
    b.click("#screens button[data-screen=progress]").await;
    b.wait_for(&format!(
        "const e = document.querySelector(\"{bar}\"); return e && e.textContent.includes('đạt') && e.textContent.includes('chỉ tiêu') && !e.textContent.includes('chưa có')"
    ))
    .await;

    // A conflict of two phones, resolved on screen: closed, and the phone gets the value.
    let (a, mut d, h) = app
        .conflicting_phones(
            &cb,
            &cb,
            &w.v1,
            json!({"phone": "0912000111"}),
            json!({"phone": "0912000222"}),
        )
        .await;
    open_screen(
        &b,
        "conflicts",
        "document.querySelectorAll('#conflicts tbody tr').length === 1",
    )
    .await;
    shot(&b, "console-conflicts.png").await;
    b.click("#conflicts tbody tr .take").await;
    b.wait_for("return document.getElementById('conflicts') !== null && document.querySelectorAll('#conflicts tbody tr').length === 0")
        .await;
    let open = app.get("/api/v1/conflicts?status=open", &xa).await;
    assert_eq!(open.body["total"], 0, "{}", open.text);
    let done = app.get("/api/v1/conflicts?status=resolved", &xa).await;
    assert_eq!(done.body["items"][0]["resolution"], "take_other");
    app.sync(&mut d).await;
    assert_eq!(d.copy[&format!("household/{h}")].1["phone"], "0912000111");

    // The phone reports changes it cannot send; coverage marks the village nobody covers.
    let r = app
        .post(
            "/api/v1/sync/report",
            &cb,
            json!({"device_id": a.id, "app_version": "field-1", "pending_changes": 3, "oldest_pending_at": "2020-09-01T00:00:00Z",
                   "storage_free_bytes": 30 * 1024 * 1024, "last_errors": [{"at": "2020-09-01T02:00:00Z", "code": "storage_full"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    open_screen(
        &b,
        "coverage",
        "document.querySelectorAll('#coverage tbody tr').length === 2",
    )
    .await;
    let rows = b
        .script(
            "return Array.from(document.querySelectorAll('#coverage tbody tr')).map(r => [r.dataset.id, r.className, r.textContent])",
        )
        .await;
    assert_eq!(rows[0][0], w.v2.as_str());
    assert_eq!(rows[0][1], "uncovered");
    assert_eq!(rows[1][0], w.v1.as_str());
    assert!(rows[1][2].as_str().unwrap().contains("cb.napan"), "{rows}");
    assert!(rows[1][2].as_str().unwrap().contains('3'), "{rows}");
    // And that the phone is in trouble: little room left, an edit it could not store.
    let trouble = b
        .script(&format!(
            "return document.querySelector('#coverage tr[data-id=\"{}\"] .phone.trouble').textContent",
            w.v1
        ))
        .await;
    assert_eq!(
        trouble.as_str().unwrap(),
        format!(
            "cb.napan: còn 30.0 MB bộ nhớ · lỗi storage_full lúc {}",
            b.script("return new Date('2020-09-01T02:00:00Z').toLocaleString('vi-VN', { timeZone: 'Asia/Ho_Chi_Minh', hour: '2-digit', minute: '2-digit', day: '2-digit', month: '2-digit', year: 'numeric' })")
                .await
                .as_str()
                .unwrap()
        )
    );
    shot(&b, "console-coverage.png").await;
    // Sorted by households, most first: Nà Pàn's one household leads. Each click draws
    // the table anew: the next waits for it.
    let sorted = "#coverage th button[data-column='3']";
    b.click(sorted).await;
    b.wait_for(&format!(
        "const e = document.querySelector(\"{sorted}\"); return e && e.textContent.includes('▲')"
    ))
    .await;
    b.click(sorted).await;
    b.wait_for(&format!(
        "const e = document.querySelector(\"{sorted}\"); return e && e.textContent.includes('▼') && \
         document.querySelector('#coverage tbody tr').dataset.id === '{}'",
        w.v1
    ))
    .await;

    // Deactivating a canvasser whose phone has changes waiting asks first.
    open_screen(&b, "team", "document.getElementById('team') !== null").await;
    b.click("#team tr[data-username='cb.napan'] .deactivate")
        .await;
    let asked = b
        .wait_for(
            "const c = document.getElementById('confirm-deactivate'); return c && c.textContent",
        )
        .await;
    assert!(
        asked.as_str().unwrap().contains("3 thay đổi chưa gửi"),
        "{asked}"
    );
    assert_eq!(app.listed_user(&xa, "cb.napan").await["active"], true);
    b.click("#confirm").await;
    b.wait_for("const r = document.querySelector(\"#team tr[data-username='cb.napan']\"); return r && r.classList.contains('inactive')")
        .await;
    assert_eq!(app.listed_user(&xa, "cb.napan").await["active"], false);
    app.get("/api/v1/me", &cb)
        .await
        .assert_problem(401, "user_inactive");

    // Accounts from a spreadsheet, and their printed sheet.
    let (_dir, path) = file(
        "tai-khoan.csv",
        "Tên đăng nhập,Họ tên,Vai trò,Địa bàn,Điện thoại\n\
         cb.kh1,Hà Văn Một,Cán bộ,Xã Hoa Thám / Khuổi Hẩu,0912000001\n\
         cb.kh2,Hà Văn Hai,Cán bộ,Xã Hoa Thám / Khuổi Hẩu,\n\
         cb.np2,Lò Văn Ba,Cán bộ,Xã Hoa Thám / Thôn Nà Pàn,\n",
    );
    b.click("#import-users").await;
    b.type_into("#accounts-file", &path).await;
    b.click("#accounts-check").await;
    b.wait_for("return document.getElementById('accounts-apply') !== null")
        .await;
    b.click("#accounts-apply").await;
    let passwords = b
        .wait_for("const c = document.querySelectorAll('#accounts code.otp'); return c.length === 3 && Array.from(c).map(e => e.textContent)")
        .await;
    for (u, p) in ["cb.kh1", "cb.kh2", "cb.np2"]
        .iter()
        .zip(passwords.as_array().unwrap())
    {
        let r = app.login(u, p.as_str().unwrap()).await;
        assert_eq!(
            (r.status.as_u16(), &r.body["must_change_password"]),
            (200, &json!(true))
        );
    }
    b.wait_for("return document.querySelectorAll('#sheet .account-card img').length === 3")
        .await;
    b.cdp("Emulation.setEmulatedMedia", json!({"media": "print"}))
        .await;
    shot(&b, "console-sheet.png").await;
    b.cdp("Emulation.setEmulatedMedia", json!({"media": ""}))
        .await;

    // The audit trail of the commune.
    open_screen(
        &b,
        "audit",
        "document.querySelectorAll('#audit tbody tr').length > 0",
    )
    .await;
    let actions = b
        .script("return Array.from(document.querySelectorAll('#audit tbody tr td:nth-child(2)')).map(e => e.textContent)")
        .await;
    for a in [
        "Tạo tài khoản",
        "Đặt chỉ tiêu",
        "Xử lý xung đột",
        "Sửa tài khoản",
    ] {
        assert!(
            actions.as_array().unwrap().iter().any(|x| x == a),
            "{a}: {actions}"
        );
    }
    b.click("#audit-action").await;
    b.script(
        "const s = document.getElementById('audit-action'); s.value = 'target_set'; return true",
    )
    .await;
    b.click("#audit-filter").await;
    b.wait_for("const r = document.querySelectorAll('#audit tbody tr'); return r.length === 1 && r[0].textContent.includes('Đặt chỉ tiêu')")
        .await;
    shot(&b, "console-audit.png").await;

    // The household register: checked, then imported.
    let (_dir2, register) = file(
        "so-ho.csv",
        "Mã hộ,Thôn,Chủ hộ,Địa chỉ,Họ tên,Năm sinh\n\
         NP-01,Nà Pàn,Hoàng Văn Tám,Số 9,Hoàng Văn Tám,1968\n\
         KH-01,Khuổi Hẩu,Hà Văn Bình,Số 1,Hà Văn Bình,1970\n",
    );
    open_screen(
        &b,
        "register",
        "document.getElementById('register-file') !== null",
    )
    .await;
    b.type_into("#register-file", &register).await;
    b.click("#register-check").await;
    b.wait_for("return document.getElementById('register-apply') !== null")
        .await;
    shot(&b, "console-import.png").await;
    let before = app.count("households").await;
    b.click("#register-apply").await;
    b.wait_for("const r = document.getElementById('register-report'); return r.textContent.includes('Đã nhập')")
        .await;
    assert_eq!(app.count("households").await, before + 2);

    // On a phone's screen the console is usable: the coverage table folds into cards.
    b.phone().await;
    open_screen(
        &b,
        "coverage",
        "document.querySelectorAll('#coverage tbody tr').length === 2",
    )
    .await;
    let width = b
        .script("return document.documentElement.scrollWidth")
        .await;
    assert!(
        width.as_i64().unwrap() <= 390,
        "no sideways scrolling: {width}"
    );
    shot(&b, "console-phone.png").await;
}

#[tokio::test]
async fn an_admin_sets_up_a_campaign_from_an_empty_database() {
    let Some(b) = Browser::start().await else {
        return;
    };
    // The official units and the commune's villages; no campaign, no supervisor.
    let w = World::new().await;
    let app = &w.app;
    b.dashboard_login(&app.base, "admin", common::PASSWORD)
        .await;
    b.wait_for(
        "return document.getElementById('error').textContent.includes('Chưa có chiến dịch')",
    )
    .await;

    // The campaign.
    open_screen(
        &b,
        "campaigns",
        "document.getElementById('new-campaign') !== null",
    )
    .await;
    b.click("#new-campaign").await;
    b.type_into("#c-name", "Bluezone 2020").await;
    b.script(
        "document.getElementById('c-starts').value = '2020-08-01'; \
         document.getElementById('c-ends').value = '2020-12-31'; \
         document.getElementById('c-denominator').value = 'smartphone'; return true",
    )
    .await;
    b.click("#save-campaign").await;
    b.wait_for("return document.querySelectorAll('#campaigns tbody tr').length === 1 && document.getElementById('targets') !== null")
        .await;
    let list = app.get("/api/v1/campaigns", &w.admin).await;
    let campaign = list.body["items"][0].clone();
    assert_eq!(
        (campaign["name"].as_str(), campaign["denominator"].as_str()),
        (Some("Bluezone 2020"), Some("smartphone"))
    );

    // The province's target.
    let province = app.area(&w.admin, "20").await;
    let row = format!("#targets tr[data-id='{province}']");
    b.type_into(&format!("{row} .t-value"), "60").await;
    b.click(&format!("{row} .t-save")).await;
    b.wait_for(&format!(
        "const r = document.querySelector(\"{row}\"); return r && r.textContent.includes('60%')"
    ))
    .await;
    let targets = app
        .get(
            &format!(
                "/api/v1/campaigns/{}/targets",
                campaign["id"].as_str().unwrap()
            ),
            &w.admin,
        )
        .await;
    assert_eq!(targets.body["items"][0]["area_id"], province.as_str());

    // The commune's supervisor, found by searching the commune's name without accents.
    open_screen(&b, "team", "document.getElementById('team') !== null").await;
    b.click("#new-user").await;
    b.type_into("#new-username", "xa.hoatham").await;
    b.type_into("#new-full-name", "UBND xã Hoa Thám").await;
    b.script("document.getElementById('new-role').value = 'supervisor'; return true")
        .await;
    b.type_into(".picker-search", "hoa tham").await;
    let pick = format!(".picker-list li[data-id='{}'] input", w.hoa_tham);
    b.wait_for(&format!(
        "return document.querySelector(\"{pick}\") !== null"
    ))
    .await;
    b.click(&pick).await;
    b.click("#create-user").await;
    b.wait_for("return document.querySelector('#one-time code.otp') !== null")
        .await;
    let made = app.listed_user(&w.admin, "xa.hoatham").await;
    assert_eq!(
        (made["role"].as_str(), &made["area_ids"]),
        (Some("supervisor"), &json!([w.hoa_tham]))
    );
}

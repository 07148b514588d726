//! The official unit list imports exactly as published, and a second import changes nothing.

mod common;

use common::{unit_data, TestApp};
use serde_json::json;

async fn import_file(app: &TestApp, admin: &str, data: Vec<u8>) -> common::Res {
    app.post_csv("/api/v1/areas/import", admin, data).await
}

#[tokio::test]
async fn the_full_official_list_imports_once() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let data = std::fs::read(unit_data("units-2025-01-04.csv")).unwrap();

    // Expected figures, computed from the file here rather than copied from the server.
    let text = String::from_utf8(data.clone()).unwrap();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let distinct = |col: usize| {
        let mut v: Vec<&str> = rows
            .iter()
            .map(|r| r[col].trim())
            .filter(|c| !c.is_empty())
            .collect();
        v.sort();
        v.dedup();
        v.len()
    };
    let (provinces, districts, communes) = (distinct(1), distinct(3), distinct(5));
    let empty_districts = rows.iter().filter(|r| r[5].trim().is_empty()).count();
    assert!(
        empty_districts > 0,
        "the list has districts without communes"
    );

    let first = import_file(&app, &admin, data.clone()).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let units = provinces + districts + communes;
    assert_eq!(
        first.body,
        json!({"units": units, "inserted": units, "updated": 0, "unchanged": 0,
            "provinces": provinces, "districts": districts, "communes": communes})
    );
    assert_eq!(app.count("areas").await as usize, units);

    let second = import_file(&app, &admin, data).await;
    assert_eq!(
        second.body,
        json!({"units": units, "inserted": 0, "updated": 0, "unchanged": units,
            "provinces": provinces, "districts": districts, "communes": communes})
    );
    assert_eq!(app.count("areas").await as usize, units);

    // Names are cleaned of stray and doubled spaces.
    let r = app.get("/api/v1/areas?code=04138", &admin).await;
    assert_eq!(r.body["items"][0]["name"], "Xã Cò Nòi", "{}", r.text);
    assert_eq!(r.body["items"][0]["kind"], "Xã");
    // Bình Gia: 19 communes, 06067 to 06121, under district 181 of Lạng Sơn (20).
    let bg = app.get("/api/v1/areas?code=181", &admin).await;
    let bg_id = bg.body["items"][0]["id"].as_str().unwrap().to_owned();
    let lang_son = app.get("/api/v1/areas?code=20", &admin).await;
    assert_eq!(
        bg.body["items"][0]["parent_id"],
        lang_son.body["items"][0]["id"]
    );
    let kids = app
        .get(
            &format!("/api/v1/areas?parent={bg_id}&per_page=100"),
            &admin,
        )
        .await;
    assert_eq!(kids.body["total"], 19);
    let codes: Vec<&str> = kids.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes.first(), Some(&"06067"));
    assert_eq!(codes.last(), Some(&"06121"));
    // A district with no communes is kept.
    let con_co = app.get("/api/v1/areas?code=471", &admin).await;
    assert_eq!(con_co.body["items"][0]["name"], "Huyện Cồn Cỏ");
    let id = con_co.body["items"][0]["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/api/v1/areas?parent={id}"), &admin)
            .await
            .body["total"],
        0
    );
    // Top level for an admin: the provinces.
    assert_eq!(
        app.get("/api/v1/areas", &admin).await.body["total"].as_u64(),
        Some(provinces as u64)
    );
    // Name search ignores diacritics.
    let r = app
        .get("/api/v1/areas?q=binh%20gia&level=district", &admin)
        .await;
    let mut codes: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["code"].as_str().unwrap())
        .collect();
    codes.sort();
    // Bình Gia, Gia Bình and Bình Giang: every word starts a word of the name.
    assert_eq!(codes, ["181", "263", "296"], "{}", r.text);
}

#[tokio::test]
async fn a_changed_name_updates_and_a_bad_file_changes_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    app.import_districts(&admin, &["181"]).await;
    let header = "Tỉnh Thành Phố,Mã TP,Quận Huyện,Mã QH,Phường Xã,Mã PX,Cấp,Tên Tiếng Anh\n";
    let renamed =
        format!("{header}Tỉnh Lạng Sơn,20,Huyện Bình Gia,181,Xã Hoa Thám Mới,06073,Xã,\n");
    let r = import_file(&app, &admin, renamed.into_bytes()).await;
    assert_eq!(
        (
            r.body["inserted"].as_i64(),
            r.body["updated"].as_i64(),
            r.body["unchanged"].as_i64()
        ),
        (Some(0), Some(1), Some(2))
    );
    assert_eq!(
        app.get("/api/v1/areas?code=06073", &admin).await.body["items"][0]["name"],
        "Xã Hoa Thám Mới"
    );

    let before = app.count("areas").await;
    let bad = format!("{header}Tỉnh Lạng Sơn,20,Huyện Bình Gia,181,Xã Mới,0607,Xã,\n");
    let r = import_file(&app, &admin, bad.into_bytes()).await;
    r.assert_problem(400, "bad_unit_list");
    assert!(
        r.body["detail"].as_str().unwrap().contains("line 2"),
        "{}",
        r.text
    );
    let clash = format!("{header}Tỉnh Lạng Sơn,20,Huyện Bình Gia,181,Xã A,09999,Xã,\nTỉnh Lạng Sơn,20,Huyện Khác,181,Xã B,09998,Xã,\n");
    import_file(&app, &admin, clash.into_bytes())
        .await
        .assert_problem(400, "bad_unit_list");
    import_file(&app, &admin, b"just,some\ntext".to_vec())
        .await
        .assert_problem(400, "bad_unit_list");
    assert_eq!(app.count("areas").await, before);

    let canvasser = app.user(&admin, "canbo", "canvasser", &[]).await;
    import_file(&app, &canvasser, header.as_bytes().to_vec())
        .await
        .assert_problem(403, "forbidden");
}

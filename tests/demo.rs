//! The demo seed: Bình Gia's 19 communes, the campaign and its households, carried over to
//! today's map (8 communes of Lạng Sơn), and the four logins.

mod common;

use common::TestApp;

#[tokio::test]
async fn demo_seeds_an_empty_database_once() {
    let app = TestApp::spawn().await;
    let pool = app.pool.clone();
    let info = tokio::task::spawn_blocking(move || gocua::demo::seed_pool(&pool).unwrap())
        .await
        .unwrap()
        .unwrap();
    let logins: Vec<&str> = info.logins.iter().map(|l| l.username).collect();
    assert_eq!(logins, ["admin", "huyen", "xa", "canbo"]);
    let pool = app.pool.clone();
    let again = tokio::task::spawn_blocking(move || gocua::demo::seed_pool(&pool).unwrap())
        .await
        .unwrap();
    assert!(again.is_none(), "a second seed does nothing");

    let login = app.login("xa", gocua::demo::PASSWORD).await;
    assert_eq!(login.status, 200, "{}", login.text);
    let xa = login.body["access_token"].as_str().unwrap().to_owned();
    let top = app.get("/api/v1/areas", &xa).await;
    assert_eq!(top.body["items"][0]["code"], "06073");
    assert_eq!(top.body["items"][0]["name"], "Xã Hoa Thám");
    let hoa_tham = top.body["items"][0]["id"].as_str().unwrap().to_owned();
    let villages = app
        .get(&format!("/api/v1/areas?parent={hoa_tham}"), &xa)
        .await;
    let village_ids: Vec<&str> = villages.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    let list = app.get("/api/v1/households?per_page=500", &xa).await;
    let items = list.body["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert_eq!(list.body["total"].as_u64(), Some(items.len() as u64));
    assert!(
        items
            .iter()
            .all(|h| village_ids.contains(&h["area_id"].as_str().unwrap())),
        "only Hoa Thám's households"
    );

    let huyen = app.login("huyen", gocua::demo::PASSWORD).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let communes = app
        .get("/api/v1/areas?level=commune&per_page=100", &huyen)
        .await;
    assert_eq!(communes.body["total"], 8, "Bình Gia's 19 communes became 8");
    let all = app.get("/api/v1/households?per_page=1", &huyen).await;
    assert_eq!(all.body["total"].as_u64(), Some(info.households as u64));
    let canbo = app.login("canbo", gocua::demo::PASSWORD).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mine = app.get("/api/v1/households?per_page=1", &canbo).await;
    assert!(mine.body["total"].as_u64().unwrap() < list.body["total"].as_u64().unwrap());
    let camps = app.get("/api/v1/campaigns", &canbo).await;
    assert_eq!(camps.body["items"][0]["name"], "Bluezone 2020");
    let targets = app
        .get(
            &format!(
                "/api/v1/campaigns/{}/targets",
                camps.body["items"][0]["id"].as_str().unwrap()
            ),
            &huyen,
        )
        .await;
    let items = targets.body["items"].as_array().unwrap();
    assert_eq!(
        items.len(),
        1,
        "the province's, set again: {}",
        targets.text
    );
    assert_eq!(items[0]["value"], 60.0);

    // The 2020 figures by former commune stay readable on the map of 2020.
    let campaign = camps.body["items"][0]["id"].as_str().unwrap();
    let district = app
        .get("/api/v1/areas?code=181&as_of=2020-12-31", &huyen)
        .await;
    assert_eq!(district.body["total"], 1, "{}", district.text);
    let district = district.body["items"][0]["id"].as_str().unwrap();
    let then = app
        .get(
            &format!(
                "/api/v1/reports/progress?campaign={campaign}&area={district}&as_of=2020-12-31"
            ),
            &huyen,
        )
        .await;
    assert_eq!(then.status, 200, "{}", then.text);
    assert_eq!(then.body["children"].as_array().unwrap().len(), 19);
    assert_eq!(then.body["area"]["households"], info.households);
    assert_eq!(then.body["area"]["target"]["value"], 60.0);
    app.assert_tallies().await;
}

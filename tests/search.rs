//! Search of names and addresses ignores Vietnamese diacritics and case, and finds nothing else.

mod common;

use common::World;
use serde_json::json;

#[tokio::test]
async fn diacritic_insensitive_search() {
    let w = World::new().await;
    let app = &w.app;
    let manh = app
        .household(&w.admin, &w.v1, "Hoàng Văn Mạnh", "Thôn Nà Pàn")
        .await;
    let dao = app
        .household(&w.admin, &w.v1, "Đinh Thị Đào", "Bản Đon")
        .await;
    let hung = app
        .household(&w.admin, &w.v2, "Nông Văn Hùng", "Khuổi Hẩu")
        .await;
    let member_of_hung = app
        .post(
            "/api/v1/members",
            &w.admin,
            json!({"household_id": hung["id"], "full_name": "Lương Thị Ánh"}),
        )
        .await;
    assert_eq!(member_of_hung.status, 201);

    let ids = |q: &'static str| {
        let admin = w.admin.clone();
        async move {
            let r = app.get(&format!("/api/v1/households?q={q}"), &admin).await;
            assert_eq!(r.status, 200, "{}", r.text);
            let mut v: Vec<String> = r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["id"].as_str().unwrap().to_owned())
                .collect();
            v.sort();
            v
        }
    };
    let id = |h: &serde_json::Value| h["id"].as_str().unwrap().to_owned();
    assert_eq!(ids("hoang%20van%20manh").await, vec![id(&manh)]);
    assert_eq!(ids("HOANG%20MANH").await, vec![id(&manh)]);
    assert_eq!(ids("Ho%C3%A0ng").await, vec![id(&manh)]);
    assert_eq!(ids("dao").await, vec![id(&dao)]);
    assert_eq!(
        ids("%C4%91on").await,
        vec![id(&dao)],
        "đ in the query matches too"
    );
    assert_eq!(
        ids("na%20pan").await,
        vec![id(&manh)],
        "addresses are searched"
    );
    assert_eq!(
        ids("luong%20anh").await,
        vec![id(&hung)],
        "member names are searched"
    );
    let mut both = vec![id(&manh), id(&hung)];
    both.sort();
    assert_eq!(ids("van").await, both);
    assert_eq!(
        ids("manh%20hung").await,
        Vec::<String>::new(),
        "every word must match the same household"
    );
    assert_eq!(ids("nguyen").await, Vec::<String>::new());
    assert_eq!(
        ids("ao").await,
        Vec::<String>::new(),
        "words match from their start"
    );
    assert_eq!(
        ids("%25").await,
        Vec::<String>::new(),
        "LIKE wildcards are literal"
    );
    assert_eq!(ids("_").await, Vec::<String>::new());

    // Renaming updates the search key.
    let path = format!("/api/v1/households/{}", id(&manh));
    let r = app
        .patch(
            &path,
            &w.admin,
            json!({"head_name": "Triệu Văn Quang"}),
            "\"1\"",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(ids("hoang").await, Vec::<String>::new());
    assert_eq!(ids("trieu%20quang").await, vec![id(&manh)]);
    // An edit of other fields keeps the key (it is made again only from new names).
    let r = app
        .patch(
            &path,
            &w.admin,
            json!({"notes": "Nhà sàn", "phone": "0912345678"}),
            "\"2\"",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(ids("trieu%20quang").await, vec![id(&manh)]);
    assert_eq!(ids("na%20pan").await, vec![id(&manh)]);

    // Members likewise: notes keep the key, a new name replaces it.
    let member = format!(
        "/api/v1/members/{}",
        member_of_hung.body["id"].as_str().unwrap()
    );
    let r = app
        .patch(&member, &w.admin, json!({"notes": "ốm"}), "\"2\"")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(ids("luong%20anh").await, vec![id(&hung)]);
    let r = app
        .patch(
            &member,
            &w.admin,
            json!({"full_name": "Lý Thị Mai"}),
            "\"3\"",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(ids("luong%20anh").await, Vec::<String>::new());
    assert_eq!(ids("ly%20mai").await, vec![id(&hung)]);
}

//! The commune's household register imported over real HTTP (and from the command line):
//! a register as communes keep it, its dry run, the import, the same file again, one cell
//! changed, a household a phone registered first, a device's pull, and every refusal naming
//! its line and column and writing nothing.

mod common;

use common::client::Device;
use common::{TestApp, World};
use serde_json::Value;
use std::process::Command;

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// A register as a commune keeps it: title rows, header names written loosely, household
/// cells repeated or on the first row only, phones written four ways, an ignored column.
fn register_csv() -> String {
    "DANH SÁCH HỘ GIA ĐÌNH XÃ HOA THÁM\n\
     Ngày lập: 01/08/2020,,,\n\
     \n\
     STT,MÃ HỘ,Thôn/Bản,chủ hộ:,Địa  chỉ,Điện thoại hộ,Họ và tên,Ngày sinh,Giới tính,Điện thoại,Điện thoại thông minh,Đối tượng ưu tiên,Ghi chú\n\
     1,NP-01,Nà Pàn,Hoàng Văn Mạnh,Số 9,0912 345 678,Hoàng Văn Mạnh,1968,Nam,912345678,Có,,chủ hộ\n\
     2,NP-01,,,,,Lý Thị Hoa,12/03/1972,Nữ,+84912000111,Không,Cách ly tại nhà,\n\
     3,NP-02,Thôn Nà Pàn,Nông Văn Tư,Số 10,0913.111.222,Nông Văn Tư,1955,Nam,,,Phải xét nghiệm,\n\
     4,NP-02,Thôn Nà Pàn,Nông Văn Tư,Số 10,0913.111.222,Nông Thị Lan,2001,Nữ,0913-111-333,Có,,\n\
     5,KH-01,khuổi hẩu,Hà Văn Bình,Số 1,,,,,,,,\n"
        .to_owned()
}

async fn import(
    app: &TestApp,
    token: &str,
    query: &str,
    body: Vec<u8>,
    media: &str,
) -> common::Res {
    let res = app
        .client
        .post(format!("{}/api/v1/households/import?{query}", app.base))
        .bearer_auth(token)
        .header("content-type", media)
        .body(body)
        .send()
        .await
        .unwrap();
    TestApp::read(res).await
}

async fn csv(app: &TestApp, token: &str, query: &str, body: &str) -> common::Res {
    import(app, token, query, body.as_bytes().to_vec(), "text/csv").await
}

/// The households of a village as the API lists them, by `Mã hộ`.
async fn households(w: &World, village: &str) -> Vec<Value> {
    let r = w
        .app
        .get(
            &format!("/api/v1/households?area={village}&per_page=100"),
            &w.admin,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut items: Vec<Value> = r.body["items"].as_array().unwrap().clone();
    items.sort_by_key(|h| h["external_id"].as_str().unwrap_or("").to_owned());
    items
}

#[tokio::test]
async fn a_register_is_checked_imported_and_found_again() {
    let w = World::new().await;
    let app = &w.app;

    // The dry run answers what the import would do, and writes nothing.
    let dry = csv(app, &w.admin, "commune=06073&dry_run=true", &register_csv()).await;
    assert_eq!(dry.status, 200, "{}", dry.text);
    let r = &dry.body;
    assert_eq!(r["dry_run"], true);
    assert_eq!(r["written"], false);
    assert_eq!(r["commune"]["code"], "06073");
    assert_eq!(r["households"]["create"], 3);
    assert_eq!(r["persons"]["create"], 4);
    assert_eq!(r["errors"].as_array().unwrap().len(), 0, "{}", dry.text);
    assert_eq!(r["ignored_columns"], serde_json::json!(["STT", "Ghi chú"]));
    let items = r["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["code"], "NP-01");
    assert_eq!(items[0]["line"], 5);
    assert_eq!(items[0]["persons"][1]["line"], 6);
    assert_eq!(items[0]["persons"][1]["full_name"], "Lý Thị Hoa");
    assert_eq!(app.count("households").await, 0, "a dry run writes nothing");

    // The import.
    let done = csv(app, &w.admin, "commune=06073", &register_csv()).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.body["written"], true);
    let np = households(&w, &w.v1).await;
    assert_eq!(np.len(), 2);
    assert_eq!(np[0]["external_id"], "NP-01");
    assert_eq!(np[0]["head_name"], "Hoàng Văn Mạnh");
    assert_eq!(np[0]["phone"], "0912345678");
    assert_eq!(np[1]["phone"], "0913111222");
    let kh = households(&w, &w.v2).await;
    assert_eq!(
        (kh.len(), kh[0]["external_id"].as_str()),
        (1, Some("KH-01"))
    );
    let detail = app
        .get(
            &format!("/api/v1/households/{}", np[0]["id"].as_str().unwrap()),
            &w.admin,
        )
        .await;
    let members = detail.body["members"].as_array().unwrap();
    let hoa = members
        .iter()
        .find(|m| m["full_name"] == "Lý Thị Hoa")
        .unwrap();
    assert_eq!(hoa["birth_year"], 1972);
    assert_eq!(hoa["sex"], "female");
    assert_eq!(hoa["phone"], "+84912000111");
    assert_eq!(hoa["smartphone"], "no");
    assert_eq!(hoa["priority"], "quarantine_home");
    let manh = members
        .iter()
        .find(|m| m["full_name"] == "Hoàng Văn Mạnh")
        .unwrap();
    assert_eq!(
        manh["phone"], "0912345678",
        "a phone Excel kept as a number gets its 0 back"
    );
    let audit = app
        .get("/api/v1/audit?action=households_imported", &w.admin)
        .await;
    assert_eq!(
        audit.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        audit.text
    );
    let detail: Value =
        serde_json::from_str(audit.body["items"][0]["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["households"]["create"], 3);
    app.assert_tallies().await;

    // The same file again changes nothing.
    let changes = app.count("changes").await;
    let again = csv(app, &w.admin, "commune=06073", &register_csv()).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["households"]["unchanged"], 3);
    assert_eq!(again.body["persons"]["unchanged"], 4);
    assert_eq!(again.body["written"], false);
    assert_eq!(
        again.body["items"].as_array().unwrap().len(),
        3,
        "each household is listed"
    );
    assert_eq!(app.count("changes").await, changes);
    assert_eq!(app.count("households").await, 3);

    // One cell changed: that field only, as one new version.
    let changed = register_csv().replace("Hà Văn Bình,Số 1", "Hà Văn Bình,Số 2");
    let one = csv(app, &w.admin, "commune=06073", &changed).await;
    assert_eq!(one.status, 200, "{}", one.text);
    assert_eq!(one.body["households"]["update"], 1);
    let item = |r: &common::Res, code: &str| {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["code"] == code)
            .unwrap()
            .clone()
    };
    assert_eq!(item(&one, "KH-01")["action"], "update");
    assert_eq!(
        item(&one, "KH-01")["fields"],
        serde_json::json!(["address"])
    );
    assert_eq!(item(&one, "NP-01")["action"], "unchanged");
    assert_eq!(app.count("changes").await, changes + 1);
    let kh = households(&w, &w.v2).await;
    assert_eq!(
        (kh[0]["address"].as_str(), kh[0]["version"].as_i64()),
        (Some("Số 2"), Some(2))
    );
    app.assert_tallies().await;

    // The households export opens in the import as it is: nothing changes.
    for ext in ["csv", "xlsx"] {
        let res = app
            .client
            .get(format!(
                "{}/api/v1/households.{ext}?area={}",
                app.base, w.hoa_tham
            ))
            .bearer_auth(&w.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let media = if ext == "csv" { "text/csv" } else { XLSX };
        let export = res.bytes().await.unwrap().to_vec();
        let changes = app.count("changes").await;
        let r = import(app, &w.admin, "commune=06073", export, media).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["households"]["unchanged"], 3, "{ext}: {}", r.text);
        assert_eq!(r.body["written"], false);
        assert_eq!(app.count("changes").await, changes);
    }
}

#[tokio::test]
async fn a_household_registered_on_a_phone_first_is_matched_not_copied() {
    let w = World::new().await;
    let app = &w.app;
    let phone = app
        .household(&w.admin, &w.v1, "Hoàng văn mạnh", "số 9")
        .await;
    let id = phone["id"].as_str().unwrap().to_owned();
    let r = csv(app, &w.admin, "commune=06073", &register_csv()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["households"]["matched"], 1);
    assert_eq!(r.body["households"]["create"], 2);
    let warning = r.body["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == "differs")
        .expect("the differing head name is a warning");
    assert_eq!(warning["line"], 5);
    let np = households(&w, &w.v1).await;
    assert_eq!(np.len(), 2, "no second copy");
    let matched = np.iter().find(|h| h["id"] == id.as_str()).unwrap();
    assert_eq!(matched["external_id"], "NP-01");
    assert_eq!(
        matched["head_name"], "Hoàng văn mạnh",
        "its own values stay"
    );
    assert_eq!(
        matched["phone"], "0912345678",
        "the file fills its empty fields"
    );
    app.assert_tallies().await;
    app.assert_duplicate_keys().await;
}

#[tokio::test]
async fn a_canvassers_device_pulls_the_imported_households_once() {
    let w = World::new().await;
    let app = &w.app;
    let canbo = app.user(&w.admin, "canbo", "canvasser", &[&w.v1]).await;
    let mut d = Device::new(&canbo);
    app.pull_all(&mut d).await;
    let r = csv(app, &w.admin, "commune=06073", &register_csv()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut households = 0;
    for _ in 0..100 {
        let page = app.get(&d.pull_path(100), &canbo).await;
        households += page.body["changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["entity"] == "household")
            .count();
        if !d.on_pull(&page.body) {
            break;
        }
    }
    assert_eq!(households, 2, "each household of its village once");
    let codes: Vec<&str> = d
        .copy
        .iter()
        .filter(|(k, _)| k.starts_with("household/"))
        .map(|(_, (_, data))| data["external_id"].as_str().unwrap())
        .collect();
    assert_eq!(codes.len(), 2);
    assert!(codes.contains(&"NP-01") && codes.contains(&"NP-02"));
    let persons = d.copy.keys().filter(|k| k.starts_with("member/")).count();
    assert_eq!(persons, 4);
}

/// A refusal: its status, code, line and column, and nothing written.
async fn refused(
    w: &World,
    token: &str,
    query: &str,
    body: Vec<u8>,
    media: &str,
    want: (u16, &str, Option<u64>, Option<&str>),
) -> Value {
    let before = w.app.count("households").await;
    let r = import(&w.app, token, query, body, media).await;
    assert_eq!(r.status, want.0, "{}", r.text);
    assert_eq!(
        w.app.count("households").await,
        before,
        "nothing written: {}",
        r.text
    );
    match r.body.get("report") {
        Some(report) => {
            let e = report["errors"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["code"] == want.1)
                .unwrap_or_else(|| panic!("no {} in {}", want.1, r.text))
                .clone();
            assert_eq!(e["line"].as_u64(), want.2, "{e}");
            assert_eq!(e["column"].as_str(), want.3, "{e}");
            e
        }
        None => {
            assert_eq!(r.body["code"], want.1, "{}", r.text);
            if let Some(line) = want.2 {
                assert!(
                    r.body["detail"]
                        .as_str()
                        .unwrap()
                        .starts_with(&format!("line {line}:")),
                    "{}",
                    r.text
                );
            }
            r.body.clone()
        }
    }
}

#[tokio::test]
async fn bad_registers_are_refused_with_their_line_and_column() {
    let w = World::new().await;
    let file = register_csv();
    let c = |s: String| s.into_bytes();
    let e = refused(
        &w,
        &w.admin,
        "commune=06073",
        c(file.replace("1,NP-01,Nà Pàn", "1,NP-01,Nà Pàm")),
        "text/csv",
        (422, "unknown_village", Some(5), Some("Thôn")),
    )
    .await;
    assert!(
        e["message"].as_str().unwrap().contains("Thôn Khuổi Hẩu"),
        "lists the villages: {e}"
    );
    refused(
        &w,
        &w.admin,
        "commune=06073",
        c(file.replace("5,KH-01,khuổi hẩu", "5,KH-01,Bản Chu")),
        "text/csv",
        (422, "unknown_village", Some(9), Some("Thôn")),
    )
    .await;
    refused(
        &w,
        &w.admin,
        "commune=06073",
        c(file.replace(
            "3,NP-02,Thôn Nà Pàn,Nông Văn Tư,Số 10",
            "3,NP-02,Thôn Nà Pàn,Nông Văn Tư,Số 12",
        )),
        "text/csv",
        (422, "conflicting_value", Some(8), Some("Địa chỉ")),
    )
    .await;
    refused(
        &w,
        &w.admin,
        "commune=06073",
        c(file.replace("2001", "2201")),
        "text/csv",
        (422, "range", Some(8), Some("Năm sinh")),
    )
    .await;
    refused(
        &w,
        &w.admin,
        "commune=06073",
        c(file.replace("0913-111-333", "09x3")),
        "text/csv",
        (422, "format", Some(8), Some("Điện thoại")),
    )
    .await;
    refused(
        &w,
        &w.admin,
        "commune=06073",
        c(file.replace("Phải xét nghiệm", "Sốt cao")),
        "text/csv",
        (422, "choice", Some(7), Some("Đối tượng ưu tiên")),
    )
    .await;
    refused(
        &w,
        &w.admin,
        "commune=06073",
        c(file.replace("MÃ HỘ", "Số hộ")),
        "text/csv",
        (422, "no_header", Some(1), Some("Mã hộ")),
    )
    .await;
    refused(
        &w,
        &w.admin,
        "commune=06073",
        Vec::new(),
        "text/csv",
        (400, "empty_file", None, None),
    )
    .await;
    // A `Xã` column that no row fills, and no commune named with the import.
    refused(
        &w,
        &w.admin,
        "skip_errors=true",
        c("Mã hộ,Thôn,Xã,Chủ hộ,Địa chỉ\nH1,Nà Pàn,,Lò Văn A,Số 1\n".to_owned()),
        "text/csv",
        (422, "required", Some(1), Some("Xã")),
    )
    .await;
    // A file with no register in it is refused whatever `skip_errors` says.
    refused(
        &w,
        &w.admin,
        "commune=06073&skip_errors=true",
        c(file.replace("MÃ HỘ", "Số hộ")),
        "text/csv",
        (422, "no_header", Some(1), Some("Mã hộ")),
    )
    .await;
    refused(
        &w,
        &w.admin,
        "commune=06073",
        vec![0u8, 159, 146, 150, 0, 1],
        "text/csv",
        (400, "not_a_register", None, None),
    )
    .await;
    let latin1: Vec<u8> = file
        .chars()
        .map(|ch| if (ch as u32) < 256 { ch as u8 } else { b'?' })
        .collect();
    refused(
        &w,
        &w.admin,
        "commune=06073",
        latin1,
        "text/csv",
        (400, "not_utf8", Some(1), None),
    )
    .await;
    refused(
        &w,
        &w.admin,
        "commune=06073",
        file.clone().into_bytes(),
        "application/json",
        (415, "unsupported_media_type", None, None),
    )
    .await;
    // A supervisor of another commune.
    let other = w
        .app
        .user(&w.admin, "xa2", "supervisor", &[&w.hung_dao])
        .await;
    refused(
        &w,
        &other,
        "commune=06073",
        file.clone().into_bytes(),
        "text/csv",
        (422, "out_of_scope", Some(4), Some("Xã")),
    )
    .await;
    let canbo = w.app.user(&w.admin, "canbo", "canvasser", &[&w.v1]).await;
    let r = csv(&w.app, &canbo, "commune=06073", &file).await;
    r.assert_problem(403, "forbidden");
    // A formula cell of a workbook.
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (col, h) in [
        "Mã hộ",
        "Thôn",
        "Chủ hộ",
        "Địa chỉ",
        "Năm sinh",
        "Họ và tên",
    ]
    .iter()
    .enumerate()
    {
        sheet.write_string(0, col as u16, *h).unwrap();
    }
    for (col, v) in ["H1", "Nà Pàn", "Lò Văn A", "Số 1"].iter().enumerate() {
        sheet.write_string(1, col as u16, *v).unwrap();
    }
    sheet.write_formula(1, 4, "=1960+8").unwrap();
    sheet.write_string(1, 5, "Lò Văn A").unwrap();
    refused(
        &w,
        &w.admin,
        "commune=06073",
        book.save_to_buffer().unwrap(),
        XLSX,
        (422, "formula", Some(2), Some("Năm sinh")),
    )
    .await;
    // More than 16 MiB.
    let huge = vec![b'a'; (16 << 20) + 1];
    let r = import(&w.app, &w.admin, "commune=06073", huge, "text/csv").await;
    r.assert_problem(413, "body_too_large");
    assert_eq!(w.app.count("households").await, 0);

    // With skip_errors, the households without errors are written.
    let bad = file.replace("2001", "2201");
    let r = csv(&w.app, &w.admin, "commune=06073&skip_errors=true", &bad).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["skipped"], serde_json::json!(["NP-02"]));
    assert_eq!(r.body["households"]["create"], 2);
    assert_eq!(w.app.count("households").await, 2);
}

#[tokio::test]
async fn an_xlsx_register_with_excel_dates_and_the_template_round_trip() {
    let w = World::new().await;
    let app = &w.app;
    // The template names the commune's villages on its second sheet and holds one example
    // household: imported as it is, it creates that household.
    let res = app
        .client
        .get(format!(
            "{}/api/v1/households/import/template.xlsx?commune=06073",
            app.base
        ))
        .bearer_auth(&w.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let template = res.bytes().await.unwrap().to_vec();
    use calamine::Reader;
    let mut book = calamine::Xlsx::new(std::io::Cursor::new(template.clone())).unwrap();
    assert_eq!(book.sheet_names(), ["Sổ hộ", "Thôn"]);
    let villages = book.worksheet_range("Thôn").unwrap();
    let names: Vec<String> = villages.rows().skip(1).map(|r| r[0].to_string()).collect();
    assert_eq!(names, ["Thôn Khuổi Hẩu", "Thôn Nà Pàn"]);
    let r = import(app, &w.admin, "", template, XLSX).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (
            r.body["households"]["create"].as_u64(),
            r.body["persons"]["create"].as_u64()
        ),
        (Some(1), Some(2))
    );

    // A workbook whose birth dates are Excel dates and whose phones are numbers.
    let mut book = rust_xlsxwriter::Workbook::new();
    let date = rust_xlsxwriter::Format::new().set_num_format("dd/mm/yyyy");
    let sheet = book.add_worksheet();
    sheet
        .write_string(0, 0, "SỔ HỘ KHẨU THÔN KHUỔI HẨU")
        .unwrap();
    for (col, h) in [
        "Ma ho",
        "Thon",
        "Chu ho",
        "Dia chi",
        "Dien thoai ho",
        "Ho va ten",
        "Ngay sinh",
    ]
    .iter()
    .enumerate()
    {
        sheet.write_string(2, col as u16, *h).unwrap();
    }
    let born = rust_xlsxwriter::ExcelDateTime::from_ymd(1987, 12, 31).unwrap();
    sheet.write_number(3, 0, 7.0).unwrap();
    sheet.write_string(3, 1, "Khuổi Hẩu").unwrap();
    sheet.write_string(3, 2, "Lý Văn Tâm").unwrap();
    sheet.write_string(3, 3, "Số 3").unwrap();
    sheet.write_number(3, 4, 912888777.0).unwrap();
    sheet.write_string(3, 5, "Lý Văn Tâm").unwrap();
    sheet
        .write_datetime_with_format(3, 6, &born, &date)
        .unwrap();
    let r = import(
        app,
        &w.admin,
        "commune=Hoa Thám",
        book.save_to_buffer().unwrap(),
        XLSX,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let kh = households(&w, &w.v2).await;
    assert_eq!(kh[0]["external_id"], "7");
    assert_eq!(kh[0]["phone"], "0912888777");
    let detail = app
        .get(
            &format!("/api/v1/households/{}", kh[0]["id"].as_str().unwrap()),
            &w.admin,
        )
        .await;
    assert_eq!(detail.body["members"][0]["birth_year"], 1987);
}

#[tokio::test]
async fn the_command_line_imports_a_register_after_a_dry_run() {
    let w = World::new().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("so-ho.csv");
    std::fs::write(&path, register_csv()).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_gocua"))
            .args([
                "households",
                "import",
                path.to_str().unwrap(),
                "--commune",
                "06073",
            ])
            .args(args)
            .env("GOCUA_DATABASE_URL", &w.app.db.url)
            .env("GOCUA_LOG_LEVEL", "warn")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = run(&["--dry-run"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("households: 3 new, 0 updated, 0 matched, 0 unchanged"),
        "{out}"
    );
    assert_eq!(w.app.count("households").await, 0);
    let (ok, out, err) = run(&[]);
    assert!(ok, "{out}{err}");
    assert!(
        out.starts_with("Commune: Xã Hoa Thám (06073)\nImported households: 3 new"),
        "{out}"
    );
    assert_eq!(w.app.count("households").await, 3);
    std::fs::write(&path, register_csv().replace("2001", "2201")).unwrap();
    let (ok, out, err) = run(&[]);
    assert!(!ok && err.contains("nothing was written"), "{out}{err}");
    assert!(out.contains("error: line 8, Năm sinh"), "{out}");
}

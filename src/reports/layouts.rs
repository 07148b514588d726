//! What each export's table holds: its Vietnamese column headers and how a row of a report
//! or list becomes cells.

use crate::domain::household::{AdoptionStatus, Outcome, Priority};
use crate::domain::vocabulary::{field, label, AreaLevel, Denominator, TargetKind};
use crate::reports::activity::ActivityRow;
use crate::reports::coverage::CoverageRow;
use crate::reports::export::Cell;
use crate::reports::lists::{HouseholdToVisit, PriorityPerson};
use crate::reports::progress::{NotYetAssigned, ProgressRow};
use crate::store::households::HouseholdItem;

pub const PROGRESS_HEADERS: &[&str] = &[
    "Mã",
    "Đơn vị",
    "Cấp",
    "Số hộ",
    "Số hộ đã thăm",
    "Số nhân khẩu",
    "Số người có điện thoại thông minh",
    "Số người đã cài đặt",
    "Mẫu số",
    "Tỷ lệ (%)",
    "Loại chỉ tiêu",
    "Chỉ tiêu",
    "Số cài đặt theo chỉ tiêu",
    "Còn thiếu",
    "Đạt chỉ tiêu (%)",
    "Xếp hạng",
    "Đối tượng ưu tiên",
    "Ưu tiên đã cài",
    "Ưu tiên chưa cài",
];

pub fn progress_cells(r: &ProgressRow) -> Vec<Cell> {
    vec![
        r.code.clone().into(),
        r.name.clone().into(),
        label(AreaLevel::SET, &r.level).into(),
        r.households.into(),
        r.households_visited.into(),
        r.persons.into(),
        r.smartphone_owners.into(),
        r.installed.into(),
        label(Denominator::SET, &r.denominator).into(),
        r.rate.into(),
        r.target
            .as_ref()
            .map(|t| label(TargetKind::SET, &t.kind))
            .into(),
        r.target.as_ref().map(|t| t.value).into(),
        r.target_installs.into(),
        r.remaining.into(),
        r.target_progress.into(),
        r.rank.into(),
        r.priority_total.into(),
        r.priority_installed.into(),
        r.priority_pending.into(),
    ]
}

/// The row of villages waiting to be placed, under the same headers.
pub fn not_yet_assigned_cells(n: &NotYetAssigned) -> Vec<Cell> {
    let mut cells = vec![
        Cell::Empty,
        format!("Chưa xếp ({} thôn chờ phân về xã mới)", n.villages).into(),
        Cell::Empty,
        n.households.into(),
        Cell::Empty,
        n.persons.into(),
        Cell::Empty,
        n.installed.into(),
    ];
    cells.resize(16, Cell::Empty);
    cells.extend([
        n.priority_total.into(),
        n.priority_installed.into(),
        (n.priority_total - n.priority_installed).into(),
    ]);
    cells
}

pub const ACTIVITY_HEADERS: &[&str] = &[
    "Ngày",
    "Tài khoản",
    field::FULL_NAME,
    "Số lần thăm",
    "Số hộ",
    "Số cài đặt",
    "Trung vị phút giữa hai lần thăm",
    "Số lần thăm xa nhà",
    "Số lần thăm quá gần lần trước",
];

pub fn activity_cells(r: &ActivityRow) -> Vec<Cell> {
    vec![
        r.day.into(),
        r.username.clone().into(),
        r.full_name.clone().into(),
        r.visits.into(),
        r.households.into(),
        r.installs.into(),
        r.median_minutes_between_visits.into(),
        r.far_visits.into(),
        r.too_soon_visits.into(),
    ]
}

pub const PRIORITY_HEADERS: &[&str] = &[
    field::FULL_NAME,
    field::PRIORITY,
    field::BIRTH_YEAR,
    field::PHONE,
    field::STATUS,
    field::HEAD_NAME,
    field::ADDRESS,
    field::VILLAGE,
    field::HOUSEHOLD_PHONE,
    "Lần thăm gần nhất",
    "Kết quả lần thăm gần nhất",
];

pub fn priority_cells(p: &PriorityPerson) -> Vec<Cell> {
    vec![
        p.full_name.clone().into(),
        label(Priority::SET, &p.priority).into(),
        p.birth_year.map(i64::from).into(),
        p.phone.clone().into(),
        label(
            AdoptionStatus::SET,
            p.status.as_deref().unwrap_or("not_yet"),
        )
        .into(),
        p.head_name.clone().into(),
        p.address.clone().into(),
        p.village.clone().into(),
        p.household_phone.clone().into(),
        p.last_visit.as_ref().map(|v| v.visited_at).into(),
        p.last_visit
            .as_ref()
            .map(|v| label(Outcome::SET, &v.outcome))
            .into(),
    ]
}

pub const TO_VISIT_HEADERS: &[&str] = &[
    field::HEAD_NAME,
    field::ADDRESS,
    field::VILLAGE,
    field::PHONE,
    "Số nhân khẩu",
    "Số đối tượng ưu tiên",
    "Lần thăm gần nhất",
    "Kết quả lần thăm gần nhất",
];

pub fn to_visit_cells(h: &HouseholdToVisit) -> Vec<Cell> {
    vec![
        h.head_name.clone().into(),
        h.address.clone().into(),
        h.village.clone().into(),
        h.phone.clone().into(),
        h.members.into(),
        h.priority_members.into(),
        h.last_visit.as_ref().map(|v| v.visited_at).into(),
        h.last_visit
            .as_ref()
            .map(|v| label(Outcome::SET, &v.outcome))
            .into(),
    ]
}

/// The household list's columns: the register's (docs/IMPORT.md) first, so that an export
/// opens in the household import as it is; gocua's own id last.
pub const HOUSEHOLD_HEADERS: &[&str] = &[
    field::HOUSEHOLD_CODE,
    field::VILLAGE,
    field::HEAD_NAME,
    field::ADDRESS,
    field::HOUSEHOLD_PHONE,
    "Số nhân khẩu",
    field::LAT,
    field::LON,
    field::NOTES,
    "Mã gocua",
];

/// A household of the list export, its village named.
pub fn household_cells(i: &HouseholdItem, village: Option<String>) -> Vec<Cell> {
    let h = &i.household;
    vec![
        h.external_id.clone().into(),
        village.into(),
        h.head_name.clone().into(),
        h.address.clone().into(),
        h.phone.clone().into(),
        i.member_count.into(),
        h.lat.into(),
        h.lon.into(),
        h.notes.clone().into(),
        h.id.0.to_string().into(),
    ]
}

pub const COVERAGE_HEADERS: &[&str] = &[
    field::VILLAGE,
    field::COMMUNE,
    "Cán bộ phụ trách",
    "Lần đồng bộ gần nhất",
    "Số hộ",
    "Số hộ đã thăm",
    "Lần thăm gần nhất",
    "Thay đổi chờ gửi",
    "Thay đổi chờ lâu nhất từ",
];

pub fn coverage_cells(r: &CoverageRow) -> Vec<Cell> {
    let names: Vec<String> = r
        .canvassers
        .iter()
        .map(|c| match c.full_name.is_empty() {
            true => c.username.clone(),
            false => format!("{} ({})", c.full_name, c.username),
        })
        .collect();
    vec![
        r.name.clone().into(),
        r.commune.clone().into(),
        match names.is_empty() {
            true => "Chưa có ai phụ trách".to_owned().into(),
            false => names.join("; ").into(),
        },
        r.canvassers
            .iter()
            .filter_map(|c| c.last_sync_at)
            .max()
            .into(),
        r.households.into(),
        r.households_visited.into(),
        r.last_visit_at.into(),
        r.pending_changes.into(),
        r.oldest_pending_at.into(),
    ]
}

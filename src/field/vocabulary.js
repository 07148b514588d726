// The value sets and their Vietnamese labels, made by `gocua vocabulary` from
// src/domain/vocabulary.rs and src/domain/household/values.rs: edit them there.
export const VALUES = {
  "activity_flag": [
    "far_from_household",
    "too_soon_after_previous"
  ],
  "adoption_status": [
    "not_yet",
    "installed",
    "installed_with_help",
    "already_installed",
    "refused",
    "no_smartphone",
    "incompatible",
    "later"
  ],
  "area_level": [
    "province",
    "district",
    "commune",
    "village"
  ],
  "conflict_reason": [
    "concurrent_edit",
    "deleted"
  ],
  "conflict_status": [
    "open",
    "resolved"
  ],
  "denominator": [
    "registered",
    "smartphone"
  ],
  "duplicate_rule": [
    "phone",
    "name_address",
    "name_person"
  ],
  "duplicate_status": [
    "open",
    "merged",
    "dismissed"
  ],
  "outcome": [
    "met",
    "not_home",
    "refused",
    "come_back_later",
    "moved_away"
  ],
  "priority": [
    "none",
    "quarantine_centralized",
    "quarantine_home",
    "testing_required"
  ],
  "resolution": [
    "keep",
    "take_other",
    "set",
    "superseded"
  ],
  "sex": [
    "male",
    "female",
    "other"
  ],
  "smartphone": [
    "yes",
    "no",
    "unknown"
  ],
  "target_kind": [
    "rate_registered",
    "rate_smartphone",
    "count"
  ]
};
export const LABELS = {
  "activity_flag": {
    "far_from_household": "Xa nhà",
    "too_soon_after_previous": "Quá gần lần thăm trước"
  },
  "adoption_status": {
    "already_installed": "Đã có sẵn",
    "incompatible": "Máy không tương thích",
    "installed": "Đã cài",
    "installed_with_help": "Đã cài (có hỗ trợ)",
    "later": "Sẽ cài sau",
    "no_smartphone": "Không có ĐTTM",
    "not_yet": "Chưa cài",
    "refused": "Từ chối cài"
  },
  "area_level": {
    "commune": "Xã",
    "district": "Huyện",
    "province": "Tỉnh",
    "village": "Thôn"
  },
  "conflict_reason": {
    "concurrent_edit": "Sửa cùng lúc",
    "deleted": "Sửa bản ghi đã xóa"
  },
  "conflict_status": {
    "open": "Chờ xem xét",
    "resolved": "Đã xử lý"
  },
  "denominator": {
    "registered": "Nhân khẩu đăng ký",
    "smartphone": "Người có điện thoại thông minh"
  },
  "duplicate_rule": {
    "name_address": "Cùng tên chủ hộ và địa chỉ",
    "name_person": "Cùng tên chủ hộ và một nhân khẩu",
    "phone": "Cùng số điện thoại"
  },
  "duplicate_status": {
    "dismissed": "Không trùng",
    "merged": "Đã gộp",
    "open": "Chưa xem"
  },
  "outcome": {
    "come_back_later": "Hẹn quay lại",
    "met": "Gặp",
    "moved_away": "Đã chuyển đi",
    "not_home": "Vắng nhà",
    "refused": "Từ chối tiếp"
  },
  "priority": {
    "none": "Không ưu tiên",
    "quarantine_centralized": "Cách ly tập trung",
    "quarantine_home": "Cách ly tại nhà",
    "testing_required": "Phải xét nghiệm"
  },
  "resolution": {
    "keep": "Giữ giá trị hiện tại",
    "set": "Nhập giá trị khác",
    "superseded": "Bị thay bởi lần ghi sau",
    "take_other": "Lấy giá trị kia"
  },
  "sex": {
    "female": "Nữ",
    "male": "Nam",
    "other": "Khác"
  },
  "smartphone": {
    "no": "Không có ĐTTM",
    "unknown": "Chưa rõ ĐTTM",
    "yes": "Có ĐTTM"
  },
  "target_kind": {
    "count": "Số lượng",
    "rate_registered": "Tỷ lệ trên nhân khẩu",
    "rate_smartphone": "Tỷ lệ trên người có điện thoại thông minh"
  }
};
/// Each field's label, by its name in the API.
export const FIELDS = {
  "address": "Địa chỉ",
  "area_id": "Thôn",
  "birth_year": "Năm sinh",
  "commune": "Xã",
  "external_id": "Mã hộ",
  "full_name": "Họ tên",
  "head_name": "Chủ hộ",
  "household_phone": "Điện thoại hộ",
  "lat": "Vĩ độ",
  "lon": "Kinh độ",
  "notes": "Ghi chú",
  "outcome": "Kết quả",
  "person_code": "Mã nhân khẩu",
  "phone": "Điện thoại",
  "priority": "Đối tượng ưu tiên",
  "sex": "Giới tính",
  "smartphone": "Điện thoại thông minh",
  "status": "Trạng thái cài đặt",
  "village": "Thôn",
  "visited_at": "Thời điểm thăm"
};
/// The statuses that count as "has the app".
export const INSTALLED = ["installed","installed_with_help","already_installed"];
/// The outcomes that call for another visit.
export const REVISIT = ["not_home","come_back_later"];
/// A phone with less storage than this left is in trouble (bytes).
export const LOW_STORAGE_BYTES = 52428800;
/// The label of `value` in the set `set`, or the value itself when it has none.
export const label = (set, value) => LABELS[set]?.[value] ?? value ?? "";
/// The label of the field `name`, or the name itself when it has none.
export const fieldLabel = (name) => FIELDS[name] ?? name ?? "";

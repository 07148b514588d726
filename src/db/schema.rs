// The tables, shared by both backends (see `db::sql` for `Uid` and `Ts`).

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql::*;
    areas (id) {
        id -> Uid,
        code -> Nullable<Text>,
        name -> Text,
        level -> Text,
        kind -> Nullable<Text>,
        parent_id -> Nullable<Uid>,
        path -> Text,
        search_key -> Text,
        retired_at -> Nullable<Ts>,
        successor_id -> Nullable<Uid>,
        created_at -> Ts,
        updated_at -> Ts,
        valid_from -> Nullable<Date>,
        valid_to -> Nullable<Date>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql::*;
    reorganizations (id) {
        id -> Uid,
        effective -> Date,
        digest -> Text,
        source -> Text,
        report -> Text,
        applied_by -> Nullable<Uid>,
        applied_at -> Ts,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql::*;
    area_links (from_id, to_id) {
        from_id -> Uid,
        to_id -> Uid,
        kind -> Text,
        note -> Text,
        reorganization_id -> Uid,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql::*;
    area_moves (id) {
        id -> Uid,
        area_id -> Uid,
        from_parent_id -> Uid,
        from_path -> Text,
        from_name -> Text,
        to_parent_id -> Uid,
        to_path -> Text,
        effective -> Date,
        moved_by -> Nullable<Uid>,
        moved_at -> Ts,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql::*;
    village_candidates (village_id, commune_id) {
        village_id -> Uid,
        commune_id -> Uid,
        reorganization_id -> Uid,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql::*;
    users (id) {
        id -> Uid,
        username -> Text,
        full_name -> Text,
        password_hash -> Text,
        role -> Text,
        active -> Bool,
        created_at -> Ts,
        updated_at -> Ts,
        must_change_password -> Bool,
        phone -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql::*;
    user_areas (user_id, area_id) {
        user_id -> Uid,
        area_id -> Uid,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql::*;
    sessions (id) {
        id -> Uid,
        user_id -> Uid,
        created_at -> Ts,
        expires_at -> Ts,
        revoked_at -> Nullable<Ts>,
        revoked_reason -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql::*;
    refresh_tokens (token_hash) {
        token_hash -> Text,
        session_id -> Uid,
        created_at -> Ts,
        used_at -> Nullable<Ts>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql::*;
    campaigns (id) {
        id -> Uid,
        name -> Text,
        description -> Text,
        starts_on -> Date,
        ends_on -> Date,
        created_at -> Ts,
        updated_at -> Ts,
        denominator -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql::*;
    targets (campaign_id, area_id) {
        campaign_id -> Uid,
        area_id -> Uid,
        kind -> Text,
        value -> Double,
        updated_at -> Ts,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql::*;
    households (id) {
        id -> Uid,
        area_id -> Uid,
        address -> Text,
        head_name -> Text,
        phone -> Nullable<Text>,
        lat -> Nullable<Double>,
        lon -> Nullable<Double>,
        notes -> Text,
        version -> BigInt,
        field_meta -> Text,
        search_key -> Text,
        created_by -> Uid,
        created_at -> Ts,
        updated_at -> Ts,
        deleted_at -> Nullable<Ts>,
        anonymized_at -> Nullable<Ts>,
        external_id -> Nullable<Text>,
        merged_into -> Nullable<Uid>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql::*;
    members (id) {
        id -> Uid,
        household_id -> Uid,
        full_name -> Text,
        birth_year -> Nullable<Integer>,
        sex -> Nullable<Text>,
        phone -> Nullable<Text>,
        smartphone -> Text,
        priority -> Text,
        notes -> Text,
        version -> BigInt,
        field_meta -> Text,
        search_key -> Text,
        created_at -> Ts,
        updated_at -> Ts,
        deleted_at -> Nullable<Ts>,
        anonymized_at -> Nullable<Ts>,
        birth_decade -> Nullable<Integer>,
        external_id -> Nullable<Text>,
        merged_into -> Nullable<Uid>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql::*;
    adoptions (member_id, campaign_id) {
        member_id -> Uid,
        campaign_id -> Uid,
        household_id -> Uid,
        status -> Text,
        recorded_at -> Ts,
        recorded_by -> Uid,
        version -> BigInt,
        field_meta -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql::*;
    visits (id) {
        id -> Uid,
        household_id -> Uid,
        campaign_id -> Uid,
        canvasser_id -> Uid,
        visited_at -> Ts,
        outcome -> Text,
        notes -> Text,
        lat -> Nullable<Double>,
        lon -> Nullable<Double>,
        created_at -> Ts,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql::*;
    changes (id) {
        id -> BigInt,
        txid -> BigInt,
        entity -> Text,
        entity_id -> Uid,
        household_id -> Nullable<Uid>,
        area_id -> Nullable<Uid>,
        op -> Text,
        version -> BigInt,
        created_at -> Ts,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql::*;
    devices (id) {
        id -> Uid,
        user_id -> Uid,
        last_seq -> BigInt,
        max_skew_ms -> BigInt,
        created_at -> Ts,
        updated_at -> Ts,
        app_version -> Nullable<Text>,
        pending_changes -> Nullable<BigInt>,
        oldest_pending_at -> Nullable<Ts>,
        reported_at -> Nullable<Ts>,
        storage_used_bytes -> Nullable<BigInt>,
        storage_free_bytes -> Nullable<BigInt>,
        last_errors -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql::*;
    device_batches (device_id, last_seq) {
        device_id -> Uid,
        last_seq -> BigInt,
        first_seq -> BigInt,
        op_hashes -> Text,
        results -> Text,
        created_at -> Ts,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql::*;
    conflicts (id) {
        id -> Uid,
        household_id -> Uid,
        area_id -> Uid,
        entity -> Text,
        entity_id -> Uid,
        campaign_id -> Nullable<Uid>,
        field -> Text,
        reason -> Text,
        kept_value -> Text,
        kept_by -> Text,
        kept_hlc -> Text,
        lost_value -> Text,
        lost_by -> Text,
        lost_hlc -> Text,
        visible_from -> Nullable<BigInt>,
        visible_to -> Nullable<BigInt>,
        device_id -> Nullable<Uid>,
        seq -> Nullable<BigInt>,
        status -> Text,
        resolution -> Nullable<Text>,
        resolved_value -> Nullable<Text>,
        resolved_by -> Nullable<Uid>,
        resolved_at -> Nullable<Ts>,
        created_at -> Ts,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql::*;
    sync_horizon (id) {
        id -> Integer,
        txid -> BigInt,
        change_id -> BigInt,
        pruned_at -> Ts,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql::*;
    tally_villages (area_id) {
        area_id -> Uid,
        households -> BigInt,
        persons -> BigInt,
        smartphone -> BigInt,
        priority -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql::*;
    tally_campaigns (campaign_id, area_id) {
        area_id -> Uid,
        campaign_id -> Uid,
        visited -> BigInt,
        revisit -> BigInt,
        installed -> BigInt,
        priority_installed -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql::*;
    tally_days (campaign_id, area_id, day) {
        area_id -> Uid,
        campaign_id -> Uid,
        day -> Date,
        installed -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql::*;
    tally_state (id) {
        id -> Integer,
        built_at -> Ts,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql::*;
    audit_log (id) {
        id -> BigInt,
        at -> Ts,
        action -> Text,
        actor_id -> Nullable<Uid>,
        actor -> Text,
        area_id -> Nullable<Uid>,
        area_path -> Nullable<Text>,
        subject -> Text,
        detail -> Text,
        address -> Nullable<Text>,
        request_id -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql::*;
    duplicate_placeholders (kind, key, scope_id) {
        kind -> Text,
        scope_id -> Uid,
        key -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql::*;
    duplicate_keys (kind, scope_id, key, household_id, source_id) {
        kind -> Text,
        scope_id -> Uid,
        key -> Text,
        household_id -> Uid,
        source_id -> Uid,
        village_id -> Uid,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql::*;
    duplicates (id) {
        id -> Uid,
        household_a -> Uid,
        household_b -> Uid,
        area_a -> Uid,
        area_b -> Uid,
        rule -> Text,
        status -> Text,
        reason -> Nullable<Text>,
        kept_id -> Nullable<Uid>,
        resolved_by -> Nullable<Uid>,
        resolved_at -> Nullable<Ts>,
        created_at -> Ts,
    }
}

diesel::joinable!(duplicate_keys -> households (household_id));
diesel::joinable!(user_areas -> users (user_id));
diesel::joinable!(conflicts -> households (household_id));
diesel::joinable!(conflicts -> areas (area_id));
diesel::joinable!(device_batches -> devices (device_id));
diesel::joinable!(user_areas -> areas (area_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::joinable!(targets -> campaigns (campaign_id));
diesel::joinable!(targets -> areas (area_id));
diesel::joinable!(households -> areas (area_id));
diesel::joinable!(village_candidates -> areas (commune_id));
diesel::joinable!(members -> households (household_id));
diesel::joinable!(adoptions -> members (member_id));
diesel::joinable!(adoptions -> campaigns (campaign_id));
diesel::joinable!(visits -> households (household_id));
diesel::joinable!(visits -> campaigns (campaign_id));

diesel::allow_tables_to_appear_in_same_query!(
    duplicate_keys,
    duplicate_placeholders,
    duplicates,
    areas,
    users,
    user_areas,
    sessions,
    refresh_tokens,
    campaigns,
    targets,
    households,
    members,
    adoptions,
    visits,
    changes,
    devices,
    device_batches,
    conflicts,
    sync_horizon,
    reorganizations,
    area_links,
    area_moves,
    village_candidates,
    tally_villages,
    tally_campaigns,
    tally_days,
    tally_state,
    audit_log,
);

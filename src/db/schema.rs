//! The one portable schema, kept by hand for both backends (see migrations/).

diesel::table! {
    countries (iso3) {
        iso3 -> Text,
        iso2 -> Text,
        m49 -> Text,
        name_en -> Text,
        name_fr -> Text,
        name_es -> Text,
        region_code -> Text,
        subregion_code -> Text,
        intermediate_code -> Text,
        development -> Text,
        ldc -> Bool,
        ldc_2008 -> Bool,
        lldc -> Bool,
        sids -> Bool,
        income_fy09 -> Text,
        income_fy23 -> Text,
    }
}

diesel::table! {
    survey_versions (survey_id, version) {
        survey_id -> Text,
        version -> Text,
        title -> Text,
        source -> Text,
        loaded_at -> Timestamp,
    }
}

diesel::table! {
    access_tokens (id) {
        id -> Text,
        survey_id -> Text,
        country_iso3 -> Text,
        token_hash -> Text,
        holder_name -> Nullable<Text>,
        holder_email -> Nullable<Text>,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    responses (id) {
        id -> Text,
        survey_id -> Text,
        country_iso3 -> Text,
        status -> Text,
        survey_version -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        submitted_at -> Nullable<Timestamp>,
        submitted_by -> Nullable<Text>,
    }
}

diesel::table! {
    section_states (response_id, section_id) {
        response_id -> Text,
        section_id -> Text,
        version -> Integer,
        updated_at -> Timestamp,
        updated_by -> Text,
    }
}

diesel::table! {
    answers (response_id, question_id, item) {
        response_id -> Text,
        question_id -> Text,
        item -> Text,
        value -> Text,
        num -> Nullable<Double>,
        section_id -> Text,
        updated_at -> Timestamp,
        updated_by -> Text,
    }
}

diesel::table! {
    save_log (id) {
        id -> Text,
        response_id -> Text,
        section_id -> Text,
        token_id -> Text,
        version -> Integer,
        changed_questions -> Integer,
        saved_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    countries,
    survey_versions,
    access_tokens,
    responses,
    section_states,
    answers,
    save_log,
);

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
        first_used_at -> Nullable<Timestamp>,
        unit -> Text,
        expires_at -> Nullable<Timestamp>,
        revoked_by -> Nullable<Text>,
        role -> Text,
        sections -> Text,
    }
}

diesel::table! {
    attempt_counters (key) {
        key -> Text,
        window_start -> Timestamp,
        count -> Integer,
    }
}

diesel::table! {
    trusted_devices (token_hash) {
        token_hash -> Text,
        user_id -> Text,
        created_at -> Timestamp,
        last_used_at -> Timestamp,
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
        unit -> Text,
        counted_version -> Nullable<Integer>,
        version_count -> Integer,
        sent_back_message -> Nullable<Text>,
        sent_back_by -> Nullable<Text>,
        sent_back_at -> Nullable<Timestamp>,
        has_saves -> Bool,
    }
}

diesel::table! {
    section_states (response_id, section_id) {
        response_id -> Text,
        section_id -> Text,
        version -> Integer,
        updated_at -> Timestamp,
        updated_by -> Text,
        ready_at -> Nullable<Timestamp>,
        ready_by -> Nullable<Text>,
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
        visible -> Bool,
    }
}

diesel::table! {
    hidden_questions (response_id, question_id) {
        response_id -> Text,
        question_id -> Text,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        role -> Text,
        password_hash -> Nullable<Text>,
        setup_token_hash -> Nullable<Text>,
        setup_expires_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        last_login_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    survey_owners (survey_id, user_id) {
        survey_id -> Text,
        user_id -> Text,
    }
}

diesel::table! {
    sessions (id_hash) {
        id_hash -> Text,
        user_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    contacts (id) {
        id -> Text,
        survey_id -> Text,
        country_iso3 -> Text,
        name -> Text,
        email -> Text,
        language -> Text,
        office -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        role -> Text,
        sections -> Text,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        kind -> Text,
        survey_id -> Text,
        country_iso3 -> Text,
        contact_id -> Nullable<Text>,
        recipient -> Text,
        subject -> Text,
        body_text -> Text,
        body_html -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        claimed_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    deadline_extensions (survey_id, country_iso3) {
        survey_id -> Text,
        country_iso3 -> Text,
        closes_at -> Timestamp,
        set_by -> Text,
        set_at -> Timestamp,
    }
}

diesel::table! {
    response_events (id) {
        id -> Text,
        response_id -> Text,
        kind -> Text,
        user_id -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    entry_links (token_id) {
        token_id -> Text,
        entered_by -> Text,
        channel -> Text,
    }
}

diesel::table! {
    response_versions (response_id, number) {
        response_id -> Text,
        number -> Integer,
        survey_version -> Text,
        content -> Text,
        digest -> Text,
        submitted_at -> Timestamp,
        submitted_by -> Text,
        signed_off_by -> Nullable<Text>,
        signed_off_name -> Nullable<Text>,
        signed_off_title -> Nullable<Text>,
        channel -> Text,
        entered_by -> Nullable<Text>,
        recalled_at -> Nullable<Timestamp>,
        returned_at -> Nullable<Timestamp>,
        accepted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    version_answers (response_id, version, question_id, item) {
        response_id -> Text,
        version -> Integer,
        question_id -> Text,
        item -> Text,
        value -> Text,
        num -> Nullable<Double>,
        updated_by -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    queries (id) {
        id -> Text,
        response_id -> Text,
        question_id -> Text,
        version -> Integer,
        status -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        closed_by -> Nullable<Text>,
        closed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    query_messages (id) {
        id -> Text,
        query_id -> Text,
        author_kind -> Text,
        author -> Text,
        author_name -> Text,
        body -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    audit_log (chain, seq) {
        chain -> Text,
        seq -> BigInt,
        at -> Timestamp,
        country_iso3 -> Text,
        actor -> Text,
        kind -> Text,
        detail -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    audit_pending (id) {
        id -> BigInt,
        chain -> Text,
        at -> Timestamp,
        country_iso3 -> Text,
        actor -> Text,
        kind -> Text,
        detail -> Text,
    }
}

diesel::table! {
    audit_heads (chain) {
        chain -> Text,
        seq -> BigInt,
        hash -> Text,
    }
}

diesel::table! {
    files (id) {
        id -> Text,
        response_id -> Text,
        question_id -> Text,
        name -> Text,
        declared_type -> Text,
        detected_type -> Text,
        size -> BigInt,
        sha256 -> Text,
        content -> Binary,
        created_at -> Timestamp,
        created_by -> Text,
    }
}

diesel::table! {
    carried_from (response_id) {
        response_id -> Text,
        from_response_id -> Text,
        from_version -> Integer,
        carried_at -> Timestamp,
    }
}

diesel::table! {
    carried_answers (response_id, question_id) {
        response_id -> Text,
        question_id -> Text,
        from_question_id -> Text,
        items -> Text,
        confirmed_at -> Nullable<Timestamp>,
        confirmed_by -> Nullable<Text>,
    }
}

diesel::joinable!(trusted_devices -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    hidden_questions,
    attempt_counters,
    trusted_devices,
    users,
    survey_owners,
    sessions,
    contacts,
    outbox,
    deadline_extensions,
    response_events,
    countries,
    survey_versions,
    access_tokens,
    responses,
    section_states,
    answers,
    entry_links,
    response_versions,
    version_answers,
    queries,
    query_messages,
    audit_log,
    audit_heads,
    audit_pending,
    files,
    carried_from,
    carried_answers,
);

diesel::table! {
    definition_changes (id) {
        id -> Text,
        survey_id -> Text,
        from_version -> Text,
        to_version -> Text,
        changed_at -> Timestamp,
        accepted_orphans -> Bool,
        report -> Text,
    }
}

diesel::table! {
    definition_notices (change_id, response_id, section_id) {
        change_id -> Text,
        response_id -> Text,
        section_id -> Text,
        noted_at -> Timestamp,
    }
}

diesel::table! {
    orphaned_answers (change_id, response_id, question_id, item) {
        change_id -> Text,
        response_id -> Text,
        question_id -> Text,
        item -> Text,
        value -> Text,
        num -> Nullable<Double>,
        section_id -> Text,
        updated_at -> Timestamp,
        updated_by -> Text,
        reason -> Text,
    }
}

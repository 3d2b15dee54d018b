//! The tables, shared by both backends. Mirrors migrations/postgres and migrations/sqlite.

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::UtcTime;

    queues (name) {
        name -> Text,
        max_retries -> Integer,
        lease_seconds -> Integer,
        unique_reference -> Bool,
        created_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    queue_items (id) {
        id -> Uuid,
        queue_name -> Text,
        status -> Text,
        data -> Nullable<Text>,
        reference -> Nullable<Text>,
        message -> Nullable<Text>,
        created_by -> Nullable<Text>,
        created_date -> UtcTime,
        start_date -> Nullable<UtcTime>,
        end_date -> Nullable<UtcTime>,
        retry_count -> Integer,
        lease_expires_at -> Nullable<UtcTime>,
        robot_id -> Nullable<Text>,
        updated_at -> UtcTime,
        version -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::Uuid;

    queue_references (queue_name, reference) {
        queue_name -> Text,
        reference -> Text,
        item_id -> Uuid,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    workflows (id) {
        id -> Uuid,
        name -> Text,
        description -> Nullable<Text>,
        workflow_json -> Text,
        version -> Integer,
        metadata -> Text,
        created_at -> UtcTime,
        updated_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::Uuid;

    agents (id) {
        id -> Uuid,
        workflow_id -> Uuid,
        node_id -> Text,
        position -> Integer,
        name -> Text,
        agent_type -> Text,
        disabled -> Bool,
        sources -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    messages (id) {
        id -> Uuid,
        agent_id -> Uuid,
        job_id -> Nullable<Uuid>,
        payload -> Text,
        created_at -> UtcTime,
        expires_at -> Nullable<UtcTime>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    jobs (id) {
        id -> Uuid,
        workflow_id -> Uuid,
        workflow_name -> Text,
        status -> Text,
        priority -> Integer,
        execution_mode -> Text,
        input -> Text,
        output -> Nullable<Text>,
        origin_kind -> Text,
        origin_ref -> Nullable<Text>,
        robot_id -> Nullable<Text>,
        created_at -> UtcTime,
        claimed_at -> Nullable<UtcTime>,
        started_at -> Nullable<UtcTime>,
        completed_at -> Nullable<UtcTime>,
        lease_expires_at -> Nullable<UtcTime>,
        retry_count -> Integer,
        max_retries -> Integer,
        error_message -> Nullable<Text>,
        error_type -> Nullable<Text>,
        cancel_requested -> Nullable<Text>,
        node_executions -> Text,
        updated_at -> UtcTime,
        version -> BigInt,
        duration_ms -> Nullable<BigInt>,
        attempt -> Integer,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    triggers (id) {
        id -> Uuid,
        name -> Text,
        trigger_type -> Text,
        workflow_id -> Uuid,
        process_status -> Text,
        enabled -> Bool,
        is_blocking -> Bool,
        priority -> Integer,
        execution_mode -> Text,
        cron_expression -> Nullable<Text>,
        timezone -> Nullable<Text>,
        queue_name -> Nullable<Text>,
        min_batch_size -> Nullable<Integer>,
        process_args -> Text,
        metadata -> Text,
        schedule_name -> Nullable<Text>,
        next_run -> Nullable<UtcTime>,
        last_run -> Nullable<UtcTime>,
        run_count -> BigInt,
        failure_count -> BigInt,
        current_job_id -> Nullable<Uuid>,
        created_at -> UtcTime,
        updated_at -> UtcTime,
        version -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    robots (robot_id) {
        robot_id -> Text,
        hostname -> Nullable<Text>,
        status -> Text,
        cpu_percent -> Double,
        memory_mb -> Double,
        memory_percent -> Double,
        current_job_id -> Nullable<Uuid>,
        last_heartbeat -> Nullable<UtcTime>,
        capabilities -> Text,
        token_hash -> Nullable<Text>,
        created_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    flows (flow_id) {
        flow_id -> Text,
        config -> Text,
        workflow_id -> Uuid,
        status -> Text,
        current_job_id -> Nullable<Uuid>,
        next_run_at -> Nullable<UtcTime>,
        created_at -> UtcTime,
        updated_at -> UtcTime,
        version -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    events (seq) {
        seq -> BigInt,
        id -> Uuid,
        event_type -> Text,
        timestamp -> UtcTime,
        title -> Text,
        details -> Nullable<Text>,
        robot_id -> Nullable<Text>,
        job_id -> Nullable<Uuid>,
        workflow_id -> Nullable<Uuid>,
        job_status -> Nullable<Text>,
        data -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::UtcTime;

    users (username) {
        username -> Text,
        password_hash -> Text,
        roles -> Text,
        created_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    api_keys (id) {
        id -> Uuid,
        name -> Text,
        key_hash -> Text,
        roles -> Text,
        created_at -> UtcTime,
        revoked_at -> Nullable<UtcTime>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::UtcTime;

    revoked_tokens (jti) {
        jti -> Text,
        expires_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::UtcTime;

    auth_failures (ip) {
        ip -> Text,
        window_start -> UtcTime,
        failures -> Integer,
        password_failures -> Integer,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::UtcTime;

    ip_bans (ip) {
        ip -> Text,
        banned_until -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    webhooks (token_hash) {
        token_hash -> Text,
        workflow_id -> Uuid,
        priority -> Integer,
        execution_mode -> Text,
        created_at -> UtcTime,
    }
}

diesel::joinable!(queue_items -> queues (queue_name));
diesel::joinable!(agents -> workflows (workflow_id));
diesel::joinable!(messages -> agents (agent_id));
diesel::joinable!(webhooks -> workflows (workflow_id));

diesel::allow_tables_to_appear_in_same_query!(
    queues,
    queue_items,
    queue_references,
    workflows,
    agents,
    messages,
    jobs,
    triggers,
    robots,
    flows,
    events,
    users,
    api_keys,
    revoked_tokens,
    auth_failures,
    ip_bans,
    webhooks,
);

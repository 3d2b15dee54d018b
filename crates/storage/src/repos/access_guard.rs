//! `AccessGuardRepository`: token revocation, failed-authentication counts and IP bans, shared
//! by every server through the database.

use async_trait::async_trait;
use baton_domain::ports::AccessGuardRepository;
use baton_domain::{RepoResult, Timestamp};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::Db;
use crate::schema::{auth_failures, ip_bans, revoked_tokens};
use crate::sql_types::DbTime;

#[async_trait]
impl AccessGuardRepository for Db {
    async fn revoke_token(&self, jti: &str, expires_at: Timestamp) -> RepoResult<bool> {
        let jti = jti.to_owned();
        // ON CONFLICT DO NOTHING makes the first revocation win atomically: of two concurrent
        // refreshes with one token, exactly one inserts a row.
        let inserted: usize = crate::with_conn!(self, |conn| {
            Ok(diesel::insert_into(revoked_tokens::table)
                .values((
                    revoked_tokens::jti.eq(&jti),
                    revoked_tokens::expires_at.eq(DbTime(expires_at)),
                ))
                .on_conflict_do_nothing()
                .execute(conn)
                .await?)
        })?;
        Ok(inserted == 1)
    }

    async fn is_token_revoked(&self, jti: &str) -> RepoResult<bool> {
        let jti = jti.to_owned();
        let found: i64 = crate::with_conn!(self, |conn| {
            Ok(revoked_tokens::table
                .filter(revoked_tokens::jti.eq(&jti))
                .count()
                .get_result(conn)
                .await?)
        })?;
        Ok(found > 0)
    }

    async fn purge_expired_revocations(&self, now: Timestamp) -> RepoResult<u64> {
        let deleted: usize = crate::with_conn!(self, |conn| {
            Ok(diesel::delete(
                revoked_tokens::table.filter(revoked_tokens::expires_at.le(DbTime(now))),
            )
            .execute(conn)
            .await?)
        })?;
        Ok(deleted as u64)
    }

    async fn record_auth_failure(
        &self,
        ip: &str,
        now: Timestamp,
        window_start: Timestamp,
    ) -> RepoResult<u32> {
        let ip = ip.to_owned();
        // Insert-or-increment in one statement, so concurrent failures from one address are all
        // counted: a window that started before `window_start` restarts at 1.
        let failures: i32 = crate::with_conn!(self, |conn| {
            use diesel::upsert::excluded;
            let expired = auth_failures::window_start.lt(DbTime(window_start));
            Ok(diesel::insert_into(auth_failures::table)
                .values((
                    auth_failures::ip.eq(&ip),
                    auth_failures::window_start.eq(DbTime(now)),
                    auth_failures::failures.eq(1),
                ))
                .on_conflict(auth_failures::ip)
                .do_update()
                .set((
                    auth_failures::failures.eq(diesel::dsl::case_when(
                        expired,
                        1.into_sql::<diesel::sql_types::Integer>(),
                    )
                    .otherwise(auth_failures::failures + 1)),
                    auth_failures::window_start.eq(diesel::dsl::case_when(
                        auth_failures::window_start.lt(DbTime(window_start)),
                        excluded(auth_failures::window_start),
                    )
                    .otherwise(auth_failures::window_start)),
                ))
                .returning(auth_failures::failures)
                .get_result(conn)
                .await?)
        })?;
        Ok(u32::try_from(failures).unwrap_or(0))
    }

    async fn clear_auth_failures(&self, ip: &str) -> RepoResult<()> {
        let ip = ip.to_owned();
        crate::with_conn!(self, |conn| {
            diesel::delete(auth_failures::table.find(&ip))
                .execute(conn)
                .await?;
            Ok(())
        })?;
        Ok(())
    }

    async fn ban_ip(&self, ip: &str, until: Timestamp) -> RepoResult<()> {
        let ip = ip.to_owned();
        // A transaction keeps "extend, never shorten" atomic on both backends.
        crate::transaction!(self, |conn| {
            let current: Option<DbTime> = ip_bans::table
                .find(&ip)
                .select(ip_bans::banned_until)
                .first(conn)
                .await
                .optional()?;
            match current {
                Some(existing) if existing.0 >= until => {}
                Some(_) => {
                    diesel::update(ip_bans::table.find(&ip))
                        .set(ip_bans::banned_until.eq(DbTime(until)))
                        .execute(conn)
                        .await?;
                }
                None => {
                    diesel::insert_into(ip_bans::table)
                        .values((ip_bans::ip.eq(&ip), ip_bans::banned_until.eq(DbTime(until))))
                        .on_conflict(ip_bans::ip)
                        .do_update()
                        .set(ip_bans::banned_until.eq(DbTime(until)))
                        .execute(conn)
                        .await?;
                }
            }
            Ok(())
        })?;
        Ok(())
    }

    async fn active_ban(&self, ip: &str, now: Timestamp) -> RepoResult<Option<Timestamp>> {
        let ip = ip.to_owned();
        let until: Option<DbTime> = crate::with_conn!(self, |conn| {
            Ok(ip_bans::table
                .find(&ip)
                .filter(ip_bans::banned_until.gt(DbTime(now)))
                .select(ip_bans::banned_until)
                .first(conn)
                .await
                .optional()?)
        })?;
        Ok(until.map(|t| t.0))
    }
}

//! `AccessGuardRepository`: token revocation, failed-authentication counts and IP bans, shared
//! by every server through the database.

use std::collections::BTreeMap;

use async_trait::async_trait;
use baton_domain::ports::{AccessGuardRepository, FailureKind};
use baton_domain::{RepoError, RepoResult, Timestamp};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::Db;
use crate::failure_batch::{AuthFailure, FailureWriter};
use crate::repos::batch::LoadMany;
use crate::schema::{auth_failures, ip_bans, revoked_tokens};
use crate::sql_types::DbTime;

/// One address's failures of a batch, as the row the upsert adds to its count.
#[derive(Insertable)]
#[diesel(table_name = auth_failures)]
struct FailureRow {
    ip: String,
    /// Where the address's window starts if this batch opens it: its first failure here.
    window_start: DbTime,
    failures: i32,
    password_failures: i32,
}

impl FailureWriter for Db {
    fn write_auth_failures(
        &self,
        failures: &[AuthFailure],
    ) -> impl std::future::Future<Output = RepoResult<Vec<u32>>> + Send {
        Db::write_auth_failures(self, failures)
    }
}

impl Db {
    /// Counts `failures` in one statement and one transaction, and returns each failure's count:
    /// its address's failures of every kind within the window, up to and including it.
    ///
    /// The failures are summed per address first (PostgreSQL refuses an upsert that touches
    /// one row twice), and the rows are written in address order, so that two batches, from
    /// this server and another, lock the rows they share in the same order and never deadlock.
    /// An address's row restarts at this batch's count when its window started before the
    /// batch's earliest `window_start`: the failures of one batch arrive within milliseconds of
    /// each other, so one threshold serves them all. The k failures of one address in a batch
    /// whose upsert left the count at n get n - k + 1, …, n, in the order given: every
    /// concurrent failure gets a count of its own, so exactly one of them is the one that
    /// reaches the limit.
    pub(crate) async fn write_auth_failures(
        &self,
        failures: &[AuthFailure],
    ) -> RepoResult<Vec<u32>> {
        let Some(threshold) = failures.iter().map(|f| f.window_start).min() else {
            return Ok(Vec::new());
        };
        let mut per_ip: BTreeMap<&str, FailureRow> = BTreeMap::new();
        for failure in failures {
            let row = per_ip.entry(&failure.ip).or_insert_with(|| FailureRow {
                ip: failure.ip.clone(),
                window_start: DbTime(failure.now),
                failures: 0,
                password_failures: 0,
            });
            row.window_start = DbTime(row.window_start.0.min(failure.now));
            row.failures += 1;
            if failure.kind == FailureKind::Password {
                row.password_failures += 1;
            }
        }
        let batch_counts: BTreeMap<&str, i32> =
            per_ip.iter().map(|(ip, row)| (*ip, row.failures)).collect();
        let rows: Vec<FailureRow> = per_ip.into_values().collect();
        let totals: Vec<(String, i32)> = crate::transaction!(self, |conn| {
            use diesel::dsl::case_when;
            use diesel::upsert::excluded;
            let expired = || auth_failures::window_start.lt(DbTime(threshold));
            let query = diesel::insert_into(auth_failures::table)
                .values(rows)
                .on_conflict(auth_failures::ip)
                .do_update()
                .set((
                    auth_failures::failures.eq(case_when(
                        expired(),
                        excluded(auth_failures::failures),
                    )
                    .otherwise(auth_failures::failures + excluded(auth_failures::failures))),
                    auth_failures::password_failures.eq(case_when(
                        expired(),
                        excluded(auth_failures::password_failures),
                    )
                    .otherwise(
                        auth_failures::password_failures
                            + excluded(auth_failures::password_failures),
                    )),
                    auth_failures::window_start.eq(case_when(
                        expired(),
                        excluded(auth_failures::window_start),
                    )
                    .otherwise(auth_failures::window_start)),
                ))
                .returning((auth_failures::ip, auth_failures::failures));
            Ok(conn.load_many(query).await?)
        })?;
        let totals: BTreeMap<String, i32> = totals.into_iter().collect();
        // Hands out each address's counts in order: its first failure here gets the lowest.
        let mut next: BTreeMap<&str, i32> = BTreeMap::new();
        failures
            .iter()
            .map(|failure| {
                let ip = failure.ip.as_str();
                let (Some(total), Some(in_batch)) = (totals.get(ip), batch_counts.get(ip)) else {
                    return Err(RepoError::Internal(
                        "the failure count returned no row for an address".to_owned(),
                    ));
                };
                let seen = next.entry(ip).or_insert(0);
                *seen += 1;
                Ok(u32::try_from(total - in_batch + *seen).unwrap_or(0))
            })
            .collect()
    }
}

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
        kind: FailureKind,
        now: Timestamp,
        window_start: Timestamp,
    ) -> RepoResult<u32> {
        let failure = AuthFailure {
            ip: ip.to_owned(),
            kind,
            now,
            window_start,
        };
        match &self.failure_batch {
            Some(batch) => batch.record(failure).await,
            None => {
                let counts = self
                    .write_auth_failures(std::slice::from_ref(&failure))
                    .await?;
                counts.into_iter().next().ok_or_else(|| {
                    RepoError::Internal("no count for a failed authentication".to_owned())
                })
            }
        }
    }

    async fn clear_key_failures(&self, ip: &str) -> RepoResult<()> {
        let ip = ip.to_owned();
        // The total drops to the password failures, which a valid key does not forgive.
        crate::with_conn!(self, |conn| {
            diesel::update(auth_failures::table.find(&ip))
                .set(auth_failures::failures.eq(auth_failures::password_failures))
                .execute(conn)
                .await?;
            Ok(())
        })?;
        Ok(())
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

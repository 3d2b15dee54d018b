//! `UserRepository` and `ApiKeyRepository`.

use async_trait::async_trait;
use baton_domain::auth::{ApiKey, Role, User, Username};
use baton_domain::ids::ApiKeyId;
use baton_domain::ports::{ApiKeyRepository, UserDeletion, UserRepository};
use baton_domain::{RepoError, RepoResult, Timestamp};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::rows::{roles_to_text, text_to_roles};
use crate::db::Db;
use crate::error::{DbResult, corrupt};
use crate::pool::Backend;
use crate::schema::{api_keys, users};
use crate::sql_types::{DbTime, DbUuid};

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
struct UserRow {
    username: String,
    password_hash: String,
    roles: String,
    created_at: DbTime,
}

impl UserRow {
    fn from_domain(user: &User) -> Self {
        Self {
            username: user.username.as_str().to_owned(),
            password_hash: user.password_hash.clone(),
            roles: roles_to_text(&user.roles),
            created_at: DbTime(user.created_at),
        }
    }

    fn into_domain(self) -> DbResult<User> {
        Ok(User {
            username: Username::parse(self.username).map_err(|e| corrupt("username", e))?,
            password_hash: self.password_hash,
            roles: text_to_roles(&self.roles)?,
            created_at: self.created_at.0,
        })
    }
}

#[async_trait]
impl UserRepository for Db {
    async fn insert_user(&self, user: &User) -> RepoResult<()> {
        let row = UserRow::from_domain(user);
        crate::with_conn!(self, |conn| {
            diesel::insert_into(users::table)
                .values(&row)
                .execute(conn)
                .await?;
            Ok(())
        })
        .map_err(|e: crate::error::DbError| match e.0 {
            RepoError::Conflict(_) => {
                RepoError::Conflict(format!("user '{}' already exists", user.username))
            }
            other => other,
        })
    }

    async fn get_user(&self, username: &Username) -> RepoResult<User> {
        let name = username.as_str().to_owned();
        let row: Option<UserRow> = crate::with_conn!(self, |conn| {
            Ok(users::table
                .find(&name)
                .select(UserRow::as_select())
                .first(conn)
                .await
                .optional()?)
        })?;
        Ok(row.ok_or(RepoError::NotFound("user"))?.into_domain()?)
    }

    async fn list_users(&self) -> RepoResult<Vec<User>> {
        let rows: Vec<UserRow> = crate::with_conn!(self, |conn| {
            Ok(users::table
                .order(users::username.asc())
                .select(UserRow::as_select())
                .load(conn)
                .await?)
        })?;
        Ok(rows
            .into_iter()
            .map(UserRow::into_domain)
            .collect::<DbResult<_>>()?)
    }

    async fn delete_user_unless_last_admin(&self, username: &Username) -> RepoResult<UserDeletion> {
        let name = username.as_str().to_owned();
        let lock_admins = lock_admins_sql(self.backend());
        let deletion = crate::transaction!(self, |conn| {
            let admins: Vec<NameRow> = diesel::sql_query(&lock_admins).load(conn).await?;
            if admins.iter().any(|a| a.username == name) && admins.len() <= 1 {
                return Ok(UserDeletion::LastAdmin);
            }
            let deleted = diesel::delete(users::table.find(&name))
                .execute(conn)
                .await?;
            if deleted == 0 {
                return Err(RepoError::NotFound("user").into());
            }
            Ok(UserDeletion::Deleted)
        })?;
        Ok(deletion)
    }

    async fn count_users(&self) -> RepoResult<u64> {
        let count: i64 = crate::with_conn!(self, |conn| Ok(users::table
            .count()
            .get_result(conn)
            .await?))?;
        Ok(super::rows::to_u64(count, "user count")?)
    }
}

/// The admins' names, read at the start of a transaction that may delete one of them. On
/// PostgreSQL each admin row is locked (`FOR UPDATE`, in name order so that two such
/// transactions cannot deadlock): a second transaction deleting another admin waits until the
/// first commits, then reads the admins again without the deleted one. On SQLite the immediate
/// transaction already keeps every other writer out. Roles are stored as a comma-separated list
/// (`roles_to_text`), so the admin role is the name `admin` between commas.
fn lock_admins_sql(backend: Backend) -> String {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    format!(
        "SELECT username FROM users WHERE ',' || roles || ',' LIKE '%,{},%' ORDER BY username{lock}",
        Role::Admin.as_str()
    )
}

#[derive(QueryableByName)]
struct NameRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    username: String,
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
struct ApiKeyRow {
    id: DbUuid,
    name: String,
    key_hash: String,
    roles: String,
    created_at: DbTime,
    revoked_at: Option<DbTime>,
}

impl ApiKeyRow {
    fn from_domain(key: &ApiKey) -> Self {
        Self {
            id: DbUuid(*key.id.as_uuid()),
            name: key.name.clone(),
            key_hash: key.key_hash.clone(),
            roles: roles_to_text(&key.roles),
            created_at: DbTime(key.created_at),
            revoked_at: key.revoked_at.map(DbTime),
        }
    }

    fn into_domain(self) -> DbResult<ApiKey> {
        Ok(ApiKey {
            id: ApiKeyId::from_uuid(self.id.0),
            name: self.name,
            key_hash: self.key_hash,
            roles: text_to_roles(&self.roles)?,
            created_at: self.created_at.0,
            revoked_at: self.revoked_at.map(|t| t.0),
        })
    }
}

#[async_trait]
impl ApiKeyRepository for Db {
    async fn insert_api_key(&self, key: &ApiKey) -> RepoResult<()> {
        let row = ApiKeyRow::from_domain(key);
        crate::with_conn!(self, |conn| {
            diesel::insert_into(api_keys::table)
                .values(&row)
                .execute(conn)
                .await?;
            Ok(())
        })
        .map_err(Into::into)
    }

    async fn find_api_key_by_hash(&self, key_hash: &str) -> RepoResult<ApiKey> {
        let hash = key_hash.to_owned();
        let row: Option<ApiKeyRow> = crate::with_conn!(self, |conn| {
            Ok(api_keys::table
                .filter(api_keys::key_hash.eq(&hash))
                .filter(api_keys::revoked_at.is_null())
                .select(ApiKeyRow::as_select())
                .first(conn)
                .await
                .optional()?)
        })?;
        Ok(row.ok_or(RepoError::NotFound("API key"))?.into_domain()?)
    }

    async fn list_api_keys(&self) -> RepoResult<Vec<ApiKey>> {
        let rows: Vec<ApiKeyRow> = crate::with_conn!(self, |conn| {
            Ok(api_keys::table
                .order((api_keys::created_at.asc(), api_keys::id.asc()))
                .select(ApiKeyRow::as_select())
                .load(conn)
                .await?)
        })?;
        Ok(rows
            .into_iter()
            .map(ApiKeyRow::into_domain)
            .collect::<DbResult<_>>()?)
    }

    async fn revoke_api_key(&self, id: ApiKeyId, now: Timestamp) -> RepoResult<()> {
        let id = DbUuid(*id.as_uuid());
        let updated: usize = crate::with_conn!(self, |conn| {
            Ok(diesel::update(
                api_keys::table
                    .find(id)
                    .filter(api_keys::revoked_at.is_null()),
            )
            .set(api_keys::revoked_at.eq(DbTime(now)))
            .execute(conn)
            .await?)
        })?;
        if updated == 0 {
            return Err(RepoError::NotFound("API key"));
        }
        Ok(())
    }
}
